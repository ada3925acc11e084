#!/usr/bin/env bash
# The README's first command: build irc, then `irc run models/svg-small.toml`
# (ingest the bundled icons with the synthetic scenes mixed in, train the
# tokenizer, train the model, evaluate held-out prompts, write the report).
# Then a look inside the compiler: its decisions, the IR drawn as a graph,
# the generated C, and a forward pass checked against the reference
# interpreter. Arguments go to `irc run` (e.g. --quick for a first look in
# about two minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
irc=target/release/irc

$irc run models/svg-small.toml "$@"

out=build/svg-small
$irc build models/svg-small.toml -o $out
$irc inspect $out | head -40
$irc inspect $out --html > $out/graph.html
$irc init models/svg-small.toml -o $out/init.safetensors --seed 1
printf '1 2 3 4 5 6 7 8\n9 10 11 12 13 14 15 16\n' > $out/tokens.txt
$irc forward models/svg-small.toml --weights $out/init.safetensors --tokens $out/tokens.txt \
    --out $out/logits.safetensors --check --build-dir $out

run=runs/svg_small
if [[ " $* " == *" --quick "* ]]; then run=runs/svg_small-quick; fi
echo
echo "the run's report:      $run/report.html"
echo "training metrics:      $run/metrics.jsonl"
echo "read the generated C:  $out/model.c  ($out/irc_model.h is its ABI)"
echo "see the graph:         $out/graph.html"
