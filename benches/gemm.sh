#!/bin/sh
# Build and run benches/c/gemm_bench.c for the best SIMD target this host supports.
# Override with IRC_TARGET=AVX512|AVX2|NEON|SCALAR, the compiler with CC.
# `bash benches/gemm.sh decode` runs only the decode (M = 1) table and the small-M crossover.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cc=${CC:-cc}

if [ -z "${IRC_TARGET:-}" ]; then
    flags=$(grep -m1 -E '^(flags|Features)' /proc/cpuinfo 2>/dev/null || true)
    has() { printf '%s\n' "$flags" | grep -qw "$1"; }
    if has avx512f && has avx512bw && has avx512dq && has avx512vl; then IRC_TARGET=AVX512
    elif has avx2 && has fma; then IRC_TARGET=AVX2
    elif [ "$(uname -m)" = aarch64 ]; then IRC_TARGET=NEON
    else IRC_TARGET=SCALAR
    fi
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$cc" -std=c11 -O3 -march=native -fopenmp -D "IRC_TARGET_$IRC_TARGET" -I "$root/runtime-c" \
    "$root/benches/c/gemm_bench.c" -lm -o "$tmp/gemm_bench"
"$tmp/gemm_bench" "$@"
