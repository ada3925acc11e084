#!/usr/bin/env bash
# llama.cpp beside irc on the same trained model: `irc export --gguf` writes
# the file (nothing is converted by llama.cpp's scripts), llama.cpp's
# llama-simple generates greedily from it, `irc generate --temperature 0`
# from the run, on the same prompt; the texts must agree.
#
#   bash benches/llama_cpp.sh RUN [PROMPT] [f32|q8_0]
#
# llama.cpp is built when first asked, from the llama.cpp vendored in the
# llama-cpp-python source package on PyPI (version pinned below), into
# $IRC_LLAMA_CPP (default ~/.cache/irc/llama.cpp), never into this tree.
# Without cmake or a C++ compiler, or without the package index, it says
# so and exits 0. N=64 sets how many tokens are generated.
set -euo pipefail
cd "$(dirname "$0")/.."

RUN=${1:?usage: bash benches/llama_cpp.sh RUN [PROMPT] [f32|q8_0]}
PROMPT=${2:-}
TYPE=${3:-f32}
N=${N:-64}
VERSION=0.3.36
WORK=${IRC_LLAMA_CPP:-${XDG_CACHE_HOME:-$HOME/.cache}/irc/llama.cpp}
BIN="$WORK/build/bin/llama-simple"

skip() {
    echo "SKIPPED: $*"
    exit 0
}

[ -f "$RUN/build/spec.toml" ] || { echo "error: $RUN: not a run folder (no build/spec.toml)" >&2; exit 1; }
if [ ! -x "$BIN" ]; then
    command -v cmake >/dev/null || skip "llama.cpp comparison: no cmake (apt-get install cmake, or pip install cmake)"
    command -v c++ >/dev/null || skip "llama.cpp comparison: no C++ compiler (apt-get install g++)"
    mkdir -p "$WORK"
    if [ ! -f "$WORK/src/CMakeLists.txt" ]; then
        # Only this package from source (its build dependencies are not
        # needed: nothing is built by pip).
        python3 -m pip download -q --disable-pip-version-check --no-deps \
            --no-binary llama-cpp-python "llama-cpp-python==$VERSION" -d "$WORK" ||
            skip "llama.cpp comparison: could not download llama-cpp-python $VERSION"
        tar xzf "$WORK/llama_cpp_python-$VERSION.tar.gz" -C "$WORK"
        rm -rf "$WORK/src"
        mv "$WORK/llama_cpp_python-$VERSION/vendor/llama.cpp" "$WORK/src"
        rm -rf "$WORK/llama_cpp_python-$VERSION"
    fi
    echo "building llama.cpp's llama-simple (llama-cpp-python $VERSION) in $WORK/build ..."
    cmake -S "$WORK/src" -B "$WORK/build" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF \
        -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF \
        -DGGML_NATIVE=ON >"$WORK/cmake.log" 2>&1 ||
        { tail -20 "$WORK/cmake.log"; skip "llama.cpp comparison: cmake failed ($WORK/cmake.log)"; }
    nice -n 10 cmake --build "$WORK/build" --target llama-simple -j"$(nproc)" >"$WORK/build.log" 2>&1 ||
        { tail -20 "$WORK/build.log"; skip "llama.cpp comparison: the build failed ($WORK/build.log)"; }
fi

IRC=target/release/irc
[ -x "$IRC" ] || cargo build --release --quiet
CKPT="$RUN/latest.safetensors"
[ -f "$CKPT" ] || CKPT=$(ls -1 "$RUN"/checkpoints/step-*.safetensors | sort -V | tail -1)
GGUF="$WORK/$(basename "$RUN")-$TYPE.gguf"
"$IRC" export "$RUN/build/spec.toml" --weights "$CKPT" --tokenizer "$RUN/data/tokenizer.json" \
    --gguf "$GGUF" --type "$TYPE"

# irc prints the prompt, then what it generates (up to </svg> or <eos>).
irc_text=$("$IRC" generate "$RUN" --prompt "$PROMPT" --temperature 0 --max-tokens "$N" 2>/dev/null)
# llama-simple prints the prompt's tokens (the <eos> it puts first
# included), then each new one, and stops at <eos>.
llama_text=$("$BIN" -m "$GGUF" -n "$N" "$PROMPT" 2>/dev/null)
llama_text=${llama_text#<eos>}

echo "irc:       ${irc_text:0:300}"
echo "llama.cpp: ${llama_text:0:300}"
# irc stops at the first </svg>; llama.cpp goes on: compare what both wrote.
n=${#irc_text}
[ ${#llama_text} -lt "$n" ] && n=${#llama_text}
if [ "${irc_text:0:$n}" == "${llama_text:0:$n}" ] && [ "$n" -gt ${#PROMPT} ]; then
    echo "same greedy text ($TYPE): $((n - ${#PROMPT})) characters after the prompt"
else
    i=0
    while [ "$i" -lt "$n" ] && [ "${irc_text:$i:1}" == "${llama_text:$i:1}" ]; do i=$((i + 1)); done
    echo "DIFFERENT ($TYPE): the texts part at character $i" >&2
    exit 1
fi
