"""numpy's sgemm (OpenBLAS in numpy's wheels) at the shapes of `irc bench`.

    python3 benches/blas.py SHAPES.json THREADS SECONDS

SHAPES.json is a list of {"batch", "m", "n", "k", "trans_a", "trans_b", "b_batched"}
(codegen::GemmShape as `irc bench` writes it). Each is timed as the plain product
C = op(A) op(B) in float32 into a preallocated C (numpy.matmul with out=; a transposed
operand is a transposed view, which numpy hands to BLAS as a transpose flag, not a copy):
the best call of at least 3 after one warm-up, calls repeated for about SECONDS, the same
rule as benches/c/bench_gemm.c. The thread count is pinned by the caller through
OMP_NUM_THREADS / OPENBLAS_NUM_THREADS / MKL_NUM_THREADS (read when numpy loads BLAS).

Prints one JSON object: {"library", "gflops": [...], "rss_kb"}, or {"not_importable": why}
when numpy cannot be imported (exit status 0 either way: a benchmark row, not a failure).
"""

import json
import os
import sys
import time


def blas_name(np):
    try:
        cfg = np.show_config(mode="dicts")
        b = cfg["Build Dependencies"]["blas"]
        return "numpy %s (%s %s)" % (np.__version__, b.get("name", "?"), b.get("version", ""))
    except Exception:  # older numpy: no dict mode
        return "numpy %s" % np.__version__


def peak_rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def main():
    shapes_file, threads, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))
    try:
        import numpy as np
    except Exception as e:  # ImportError, or a broken install
        print(json.dumps({"not_importable": "numpy: %s" % e}))
        return
    with open(shapes_file) as f:
        shapes = json.load(f)
    out = []
    for s in shapes:
        bt, m, n, k = s["batch"], s["m"], s["n"], s["k"]
        rng = np.random.default_rng(1)
        lead = (bt,) if bt > 1 else ()
        a = rng.random(lead + ((k, m) if s["trans_a"] else (m, k)), dtype=np.float32) - 0.5
        blead = lead if s["b_batched"] else ()
        b = rng.random(blead + ((n, k) if s["trans_b"] else (k, n)), dtype=np.float32) - 0.5
        c = np.empty(lead + (m, n), dtype=np.float32)
        opa = np.swapaxes(a, -1, -2) if s["trans_a"] else a
        opb = np.swapaxes(b, -1, -2) if s["trans_b"] else b
        np.matmul(opa, opb, out=c)  # warm-up
        best, total, rep = 1e30, 0.0, 0
        while rep < 1000 and (rep < 3 or total < seconds):
            t0 = time.perf_counter()
            np.matmul(opa, opb, out=c)
            t = time.perf_counter() - t0
            total += t
            best = min(best, t)
            rep += 1
        out.append(2.0 * bt * m * n * k / best * 1e-9)
    print(json.dumps({"library": blas_name(np), "gflops": out, "rss_kb": peak_rss_kb()}))


if __name__ == "__main__":
    main()
