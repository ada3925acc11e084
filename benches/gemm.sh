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

# The blocking follows this machine's caches, as `irc build` with target = "native" reads them
# (compiler/schedule/caches.rs): L1d and L2 of cpu0, its share of L3.
cache=/sys/devices/system/cpu/cpu0/cache
bytes() { # "48K" -> 49152
    case $1 in *K) echo $(( ${1%K} * 1024 ));; *M) echo $(( ${1%M} * 1048576 ));; *) echo "$1";; esac
}
l1d=32768 l2=524288 l3=2097152
for d in "$cache"/index*; do
    [ -r "$d/size" ] || continue
    size=$(bytes "$(cat "$d/size")")
    case "$(cat "$d/level"):$(cat "$d/type")" in
        1:Data) l1d=$size ;;
        2:*) l2=$size ;;
        3:Unified)
            sharing=$(tr ',' '\n' < "$d/shared_cpu_list" | awk -F- '{n += NF == 2 ? $2 - $1 + 1 : 1} END {print n}')
            l3=$(( size / sharing )) ;;
    esac
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$cc" -std=c11 -O3 -march=native -fopenmp -D "IRC_TARGET_$IRC_TARGET" \
    -D "IRC_L1D_BYTES=$l1d" -D "IRC_L2_BYTES=$l2" -D "IRC_L3_BYTES_PER_CORE=$l3" -I "$root/runtime-c" \
    "$root/benches/c/gemm_bench.c" -lm -o "$tmp/gemm_bench"
"$tmp/gemm_bench" "$@"
