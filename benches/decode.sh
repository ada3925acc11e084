#!/usr/bin/env bash
# Decode speed and memory of one model with f32, q8_0 and bf16 weights
# (`[build].weights`), and llama.cpp's q8_0 beside them, in plain C/C++
# processes (benches/decode_host.c, benches/llama_decode.cpp): each loads its
# weights (irc: the same f32 checkpoint, packed when loaded; llama.cpp: a
# q8_0 GGUF that `irc export --gguf` wrote from it), prefills 16 tokens and
# decodes greedily to the end of the context, 5 times; the median rate, the
# resident memory after it (VmRSS) and the peak (VmHWM). The variants run
# interleaved, ROUNDS times each, on 1 and 2 threads; the table gives the
# medians over the rounds.
#
#   bash benches/decode.sh SPEC TOKENIZER.json [ROUNDS]
#
# llama.cpp comes from $IRC_LLAMA_CPP (default ~/.cache/irc/llama.cpp), as
# benches/llama_cpp.sh builds it (src/ and build/bin/); without it the
# llama.cpp column is left out.
set -euo pipefail
cd "$(dirname "$0")/.."

SPEC=${1:?usage: bash benches/decode.sh SPEC TOKENIZER.json [ROUNDS]}
TOK=${2:?usage: bash benches/decode.sh SPEC TOKENIZER.json [ROUNDS]}
ROUNDS=${3:-5}
LLAMA=${IRC_LLAMA_CPP:-${XDG_CACHE_HOME:-$HOME/.cache}/irc/llama.cpp}
IRC=target/release/irc
[ -x "$IRC" ] || cargo build --release --quiet
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

name=$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$SPEC" | head -1)
NAME_UC=$(echo "$name" | tr '[:lower:]' '[:upper:]')
"$IRC" init "$SPEC" -o "$W/w.safetensors" >/dev/null
variants=()
for fmt in f32 q8_0 bf16; do
    # A batch-1 build, as irc generate makes; the weights format in [build].
    awk -v fmt="$fmt" '/^\[build\]/ { print; print "weights = \"" fmt "\""; inb = 1; next }
        /^\[/ { inb = 0 } inb && /^(batch|seq_len|weights) *=/ { next } { print }' "$SPEC" >"$W/$fmt.toml"
    grep -q '^\[build\]' "$W/$fmt.toml" || printf '\n[build]\nweights = "%s"\n' "$fmt" >>"$W/$fmt.toml"
    "$IRC" build "$W/$fmt.toml" -o "$W/build-$fmt" >/dev/null
    cc -O2 -std=c11 -Wall -Wextra -Werror benches/decode_host.c -DMODEL="$name" -DMODEL_UC="$NAME_UC" \
        -I"$W/build-$fmt" -Iruntime-c "$W/build-$fmt/libirc_model.a" -fopenmp -lm -o "$W/irc-$fmt"
    variants+=("irc-$fmt")
done
if [ -f "$LLAMA/build/bin/libllama.so" ]; then
    c++ -O2 -std=c++17 benches/llama_decode.cpp -I"$LLAMA/src/include" -I"$LLAMA/src/ggml/include" \
        -L"$LLAMA/build/bin" -lllama -lggml -lggml-base -Wl,-rpath,"$LLAMA/build/bin" -o "$W/llama-q8_0"
    "$IRC" export "$SPEC" --weights "$W/w.safetensors" --tokenizer "$TOK" --gguf "$W/w-q8_0.gguf" \
        --type q8_0 >/dev/null 2>&1
    variants+=("llama-q8_0")
else
    echo "note: no llama.cpp in $LLAMA (bash benches/llama_cpp.sh builds it); irc alone" >&2
fi

for t in 1 2; do
    for r in $(seq "$ROUNDS"); do
        for v in "${variants[@]}"; do
            if [ "$v" = llama-q8_0 ]; then
                out=$("$W/$v" "$W/w-q8_0.gguf" "$t" 5)
            else
                out=$("$W/$v" "$W/w.safetensors" "$t" 5 "$W/logits-$v.f32")
            fi
            echo "$t $v $out" >>"$W/runs"
        done
    done
done
python3 - "$W/runs" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    t, v, _, rate, _, rss, _, hwm = line.split()
    rows.setdefault((int(t), v), []).append((float(rate), int(rss), int(hwm)))
print(f"{'threads':>7}  {'variant':<11} {'decode tok/s':>12} {'vs irc-f32':>10} {'RSS MiB':>8} {'peak MiB':>8}  rounds")
for (t, v), rs in sorted(rows.items()):
    med = lambda i: statistics.median(r[i] for r in rs)
    base = statistics.median(r[0] for r in rows[(t, "irc-f32")])
    print(f"{t:>7}  {v:<11} {med(0):>12.0f} {med(0) / base:>9.2f}x {med(1) / 1024:>8.1f} {med(2) / 1024:>8.1f}  {len(rs)}")
EOF
