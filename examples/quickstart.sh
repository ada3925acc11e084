#!/usr/bin/env bash
# The README's first command: build irc, compile the bundled SVG model, show
# what the compiler decided, check a forward pass against the reference
# interpreter, then train the model on the bundled icon corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
irc=target/release/irc
out=build/svg-small

$irc build models/svg-small.toml -o $out
$irc inspect $out | head -40
$irc inspect $out --html > $out/graph.html
$irc init models/svg-small.toml -o $out/init.safetensors --seed 1
printf '1 2 3 4 5 6 7 8\n9 10 11 12 13 14 15 16\n' > $out/tokens.txt
$irc forward models/svg-small.toml --weights $out/init.safetensors --tokens $out/tokens.txt \
    --out $out/logits.safetensors --check --build-dir $out

$irc train models/svg-small.toml
$irc eval runs/svg_small -n 8
$irc report runs/svg_small
echo
echo "read the generated C:  $out/model.c  ($out/irc_model.h is its ABI)"
echo "see the graph:         $out/graph.html"
echo "training metrics:      runs/svg_small/metrics.jsonl"
echo "the run's report:      runs/svg_small/report.html"
