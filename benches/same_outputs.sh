#!/usr/bin/env bash
# Same outputs from two irc binaries: for each model and SIMD path, build with
# both and compare byte for byte the forward logits, the loss and gradients of
# one batch, a few training steps (losses, grad norms, final weights) and
# greedy generated text. A refactor of the code generator must pass this.
#
#   benches/same_outputs.sh OLD_IRC NEW_IRC [WORKDIR]
#   MODELS="tiny-gpt2 tiny-llama svg-small" TARGETS="avx512 avx2 scalar" STEPS=3
set -euo pipefail
old=$(realpath "$1") new=$(realpath "$2")
work=${3:-$(mktemp -d)}
root=$(cd "$(dirname "$0")/.." && pwd)
models=${MODELS:-tiny-gpt2 tiny-llama svg-small}
targets=${TARGETS:-avx512 avx2 scalar}
steps=${STEPS:-3}
mkdir -p "$work"
cd "$work"
# A small text corpus, so training needs no data download and is quick.
for i in $(seq 1 60); do
    echo "the quick brown fox $i jumps over the lazy dog; pack my box with five dozen liquor jugs $((i * 7))"
done > corpus.txt
fail=0
same() { # what, file A, file B
    if cmp -s "$2" "$3"; then echo "  same     $1"; else echo "  DIFFERENT $1 ($2 vs $3)"; fail=1; fi
}
for model in $models; do
    vocab=$(sed -n 's/^vocab_size *= *\([0-9]*\).*/\1/p' "$root/models/$model.toml" | head -1)
    seq=$(sed -n 's/^seq_len *= *\([0-9]*\).*/\1/p' "$root/models/$model.toml" | head -1)
    # Token ids below the vocabulary, two sequences of at most 16 tokens.
    awk -v v="$vocab" 'BEGIN { for (r = 0; r < 2; r++) { s = ""; for (c = 0; c < 16; c++) s = s (c ? " " : "") (r * 37 + c * 11 + 3) % v; print s } }' > "tok-$model.txt"
    awk -v v="$vocab" 'BEGIN { for (r = 0; r < 2; r++) { s = ""; for (c = 0; c < 16; c++) s = s (c ? " " : "") (c == 5 ? -100 : (r * 41 + c * 13 + 5) % v); print s } }' > "tgt-$model.txt"
    for target in $targets; do
        name="$model-$target"
        # The model and build sections of the bundled spec, this SIMD path,
        # and a quick recipe over the text corpus.
        awk -v t="$target" '
            /^\[/ { skip = ($0 !~ /^\[(model|build)\]/) }
            !skip { print }
            /^\[build\]/ { print "target = \"" t "\"" }' "$root/models/$model.toml" > "$name.toml"
        # Training needs a tokenizer, whose vocabulary has at least 258 ids.
        tvocab=$((vocab < 300 ? 300 : vocab))
        sed "s/^vocab_size *= *[0-9]*/vocab_size = $tvocab/" "$name.toml" > "$name-train.toml"
        cat >> "$name-train.toml" <<SPEC
[data]
source = ["corpus.txt"]
format = "text"
packing = "stream"
val_ratio = 0.2
seed = 3
[tokenizer]
vocab_size = $tvocab
[train]
steps = $steps
lr = 3e-3
warmup = 1
eval_every = $steps
out = "run-$name"
SPEC
        echo "$name (seq_len $seq)"
        for side in old new; do
            irc=${!side}
            "$irc" init "$name.toml" --out "w-$name.safetensors" --seed 7 >/dev/null
            "$irc" forward "$name.toml" --build-dir "build-$side-$name" --weights "w-$name.safetensors" \
                --tokens "tok-$model.txt" --out "logits-$side-$name.safetensors" >/dev/null
            "$irc" grad "$name.toml" --build-dir "build-$side-$name" --weights "w-$name.safetensors" \
                --tokens "tok-$model.txt" --targets "tgt-$model.txt" --out "grad-$side-$name.safetensors" >/dev/null
            "$irc" train "$name-train.toml" --out "run-$side-$name" --quiet >/dev/null
            # Timing fields aside, every metric of every step.
            grep -o '"\(step\|train_loss\|val_loss\|lr\|grad_norm\)":[^,}]*' "run-$side-$name/metrics.jsonl" > "metrics-$side-$name.txt"
            "$irc" generate "run-$side-$name" --prompt "the quick" --temperature 0 --max-tokens 24 > "gen-$side-$name.txt"
        done
        same logits "logits-old-$name.safetensors" "logits-new-$name.safetensors"
        same gradients "grad-old-$name.safetensors" "grad-new-$name.safetensors"
        same "training metrics" "metrics-old-$name.txt" "metrics-new-$name.txt"
        same "trained weights" "run-old-$name/latest.safetensors" "run-new-$name/latest.safetensors"
        same "generated text" "gen-old-$name.txt" "gen-new-$name.txt"
    done
done
[ "$fail" = 0 ] && echo "all the same" || { echo "outputs differ"; exit 1; }
