#!/usr/bin/env bash
# Data-parallel scaling on this machine: models/bench-s.toml trained on
# synthetic scenes by one process (1 thread) and by `mpirun -np 2` (1 thread
# a rank), the same recipe (grad_accum = 2: one micro-batch a rank a step),
# interleaved ROUNDS times, and the 2 ranks again with the all-reduce after
# the backward instead of overlapped with it ([train] overlap_allreduce =
# false). Prints the median tokens/s of each (over the steps after the
# first 3, then over the rounds), the median all-reduce seconds a step and
# the seconds a step waits for it after the backward, overlapped and not,
# the largest train-loss difference between the runs, and
# the gradient bytes a step of models/bench-m.toml with the ring all-reduce
# time N machines would need on 10 and 100 Gb/s links.
#
#   bash benches/mpi.sh            # ROUNDS=3 STEPS=40 by default
set -euo pipefail
cd "$(dirname "$0")/.."
IRC=${IRC:-$PWD/target/release/irc}
ROUNDS=${ROUNDS:-3}
STEPS=${STEPS:-40}
command -v mpirun >/dev/null || { echo "mpirun not found: install OpenMPI (openmpi-bin libopenmpi-dev)"; exit 1; }
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
{
    cat models/bench-s.toml
    cat <<SPEC

[data]
synthetic = 2000
packing = "rows"
seed = 7

[tokenizer]
vocab_size = 1024

[train]
grad_accum = 2
steps = $STEPS
lr = 1e-3
warmup = 5
eval_samples = 0
eval_batches = 4
threads = 1
SPEC
} > "$W/bench.toml"
# The same recipe on 2 threads in one process: what the 2 cores give
# without MPI (results do not depend on threads).
sed 's/^threads = 1$/threads = 2/' "$W/bench.toml" > "$W/bench2.toml"
# The 2 ranks with the all-reduce after the backward ([train] is last).
{ cat "$W/bench.toml"; echo "overlap_allreduce = false"; } > "$W/blocking.toml"
# The machine is shared with other work: ranks are not bound to cores.
MPI=(mpirun --oversubscribe --bind-to none -np 2)
for r in $(seq "$ROUNDS"); do
    "$IRC" train "$W/bench.toml" -o "$W/one-$r" --quiet >/dev/null 2>&1
    "$IRC" train "$W/bench2.toml" -o "$W/thr-$r" --quiet >/dev/null 2>&1
    "${MPI[@]}" "$IRC" train "$W/bench.toml" -o "$W/two-$r" --quiet >/dev/null 2>&1
    "${MPI[@]}" "$IRC" train "$W/blocking.toml" -o "$W/blk-$r" --quiet >/dev/null 2>&1
done
python3 - "$W" "$ROUNDS" <<'PY'
import json, statistics as st, sys
w, rounds = sys.argv[1], int(sys.argv[2])
def lines(run): return [json.loads(l) for l in open(f"{w}/{run}/metrics.jsonl")]
def tps(run): return st.median(l["tokens_per_s"] for l in lines(run)[3:])
one = [tps(f"one-{r}") for r in range(1, rounds + 1)]
two = [tps(f"two-{r}") for r in range(1, rounds + 1)]
thr = [tps(f"thr-{r}") for r in range(1, rounds + 1)]
blk = [tps(f"blk-{r}") for r in range(1, rounds + 1)]
def med(k, run="two"): return st.median(l[k] for r in range(1, rounds + 1) for l in lines(f"{run}-{r}")[3:])
ar, wait = med("allreduce_s", "blk"), med("wait_s", "blk")
step = st.median(2 * 128 * 8 / l["tokens_per_s"] for r in range(1, rounds + 1) for l in lines(f"two-{r}")[3:])
a, b = lines("one-1"), lines("two-1")
dl = max(abs(x["train_loss"] - y["train_loss"]) for x, y in zip(a, b))
rel = max(abs(x["train_loss"] - y["train_loss"]) / abs(x["train_loss"]) for x, y in zip(a, b))
dv = abs(a[-1]["val_loss"] - b[-1]["val_loss"])
print("tokens/s by round: 1 process x 1 thread, 2 ranks x 1 thread, 1 process x 2 threads; all-reduce ms a step (2 ranks)")
for r in range(1, rounds + 1):
    ms = st.median(l["allreduce_s"] for l in lines(f"two-{r}")[3:]) * 1e3
    print(f"{r:>5}  {one[r - 1]:>21.0f}  {two[r - 1]:>18.0f}  {thr[r - 1]:>21.0f}  {ms:>30.2f}")
print(f"best of the rounds: {max(one):.0f}, {max(two):.0f} ({max(two) / max(one):.2f}x), {max(thr):.0f} ({max(thr) / max(one):.2f}x)")
print(f"tokens/s, 1 process x 1 thread: {st.median(one):.0f} (rounds {', '.join(f'{x:.0f}' for x in one)})")
print(f"tokens/s, 2 ranks x 1 thread:   {st.median(two):.0f} (rounds {', '.join(f'{x:.0f}' for x in two)})")
print(f"tokens/s, 1 process x 2 threads: {st.median(thr):.0f} (rounds {', '.join(f'{x:.0f}' for x in thr)})")
print(f"2 ranks against 1 process: {st.median(two) / st.median(one):.2f}x; a 2-rank step {step * 1e3:.0f} ms (overlapped); after the backward, the all-reduce takes {ar * 1e3:.2f} ms and waiting for the other rank {wait * 1e3:.2f} ms (medians)")
print(f"train loss, largest difference over {len(a)} steps: {dl:.3g} (relative {rel:.3g}); final val loss difference {dv:.3g}")
print("overlap: tokens/s by round, 2 ranks overlapped, after the backward; ms a step waiting for the all-reduce after the backward, overlapped, after")
for r in range(1, rounds + 1):
    w2 = st.median(l["allreduce_wait_s"] for l in lines(f"two-{r}")[3:]) * 1e3
    wb = st.median(l["allreduce_wait_s"] for l in lines(f"blk-{r}")[3:]) * 1e3
    print(f"{r:>5}  {two[r - 1]:>8.0f}  {blk[r - 1]:>8.0f}  {w2:>8.2f}  {wb:>8.2f}")
print(f"overlapped: {st.median(two):.0f} tokens/s, waits {med('allreduce_wait_s') * 1e3:.2f} ms a step after the backward, {med('allreduce_s') * 1e3:.2f} ms in MPI calls in all")
print(f"after the backward: {st.median(blk):.0f} tokens/s, waits {med('allreduce_wait_s', 'blk') * 1e3:.2f} ms a step (barrier {wait * 1e3:.2f} + all-reduce {ar * 1e3:.2f})")
same = all(x["train_loss"] == y["train_loss"] for r in range(1, rounds + 1) for x, y in zip(lines(f"two-{r}"), lines(f"blk-{r}")))
print(f"train losses overlapped and not: {'identical' if same else 'DIFFERENT'} in every round")
print("step  loss 1 process  loss 2 ranks")
for x, y in zip(a, b):
    if x["step"] in (1, 2, 5, 10, 20, 30, 40) or x["step"] == len(a):
        print(f"{x['step']:>4}  {x['train_loss']:.6f}        {y['train_loss']:.6f}")
PY
# bench-m's gradient (every parameter's, in f32), and its step here: one
# micro-batch of 8 x 256 tokens on the 2 cores, 4 steps.
{
    cat models/bench-m.toml
    printf '\n[data]\nsynthetic = 400\npacking = "rows"\n\n[tokenizer]\nvocab_size = 2048\n\n[train]\nsteps = 4\neval_samples = 0\neval_batches = 1\nthreads = 2\n'
} > "$W/bench-m.toml"
"$IRC" train "$W/bench-m.toml" -o "$W/bench-m" --quiet >/dev/null 2>&1
python3 - "$W/bench-m" <<'PY'
import json, sys, statistics as st
m = json.load(open(sys.argv[1] + "/build/inspect.json"))["memory"]
n = m["param_floats"]
b = 4 * n
lines = [json.loads(l) for l in open(sys.argv[1] + "/metrics.jsonl")]
step = st.median(8 * 256 / l["tokens_per_s"] for l in lines[1:])
print(f"bench-m: {n} parameters, {b} gradient bytes ({b / 2**20:.1f} MiB) a step; a step of 8 x 256 tokens takes {step:.2f} s here (2 threads, median of {len(lines) - 1})")
print("ranks N  ring all-reduce 10 Gb/s  100 Gb/s   (2(N-1)/N x bytes / bandwidth)")
for N in (2, 4, 8, 16, 64):
    f = 2 * (N - 1) / N * b
    print(f"{N:>7}  {f / 1.25e9 * 1e3:>10.1f} ms  {f / 12.5e9 * 1e3:>14.1f} ms")
PY
