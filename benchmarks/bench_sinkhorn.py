"""Sinkhorn benchmark: skbalance against POT and the two-mat-vec limit.

For n x n problems (n = 2048 and 4096) in float64 and float32, at a fixed
number of iterations (one iteration = a row step and a column step):

* scaling path: ``skbalance.sinkhorn(K, max_iter=2 * iterations, tol=0)``
  against POT's ``ot.sinkhorn(a, b, M, reg, method="sinkhorn")`` and the
  limit: a loop of two plain NumPy matrix-vector products per iteration;
* logits path: ``skbalance.sinkhorn(-M / reg, logits=True, ...)`` against
  POT's ``method="sinkhorn_log"``.

Both run in this process on the same matrices; skbalance's time includes
making the plan (POT returns one). The table reports the best
wall time of ``--repeat`` runs, ratios, and how far the plans agree.

Usage::

    pip install -e ".[bench]" pot
    python benchmarks/bench_sinkhorn.py [--sizes 2048,4096] [--iterations 50]
"""

import argparse
import time
import warnings

import numpy as np

import skbalance as skb


def _with_plan(result):
    """The result with its plan made: what POT returns, and what a caller reads."""
    result.plan
    return result


def best_time(function, repeat):
    best, result = np.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def two_matvec_limit(K, a, b, iterations):
    u, v = np.ones_like(a), np.ones_like(b)
    for _ in range(iterations):
        u = a / (K @ v)
        v = b / (u @ K)
    return u, v


def problem(n, dtype, reg):
    rng = np.random.default_rng(0)
    x, y = rng.uniform(size=(n, 2)), rng.uniform(size=(n, 2))
    M = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    M /= M.max()
    a = np.full(n, 1.0 / n)
    return M.astype(dtype), a.astype(dtype), a.astype(dtype), reg


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2048,4096")
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--reg", type=float, default=0.05)
    args = parser.parse_args()
    try:
        import ot
    except ImportError:
        ot = None
    # Fixed iteration counts are the point here; POT warns that it stopped.
    warnings.filterwarnings("ignore", message="Sinkhorn did not converge")

    rows = []
    for n in map(int, args.sizes.split(",")):
        for dtype in (np.float64, np.float32):
            M, a, b, reg = problem(n, dtype, args.reg)
            K = np.exp(-M / dtype(reg))
            logits = -M / dtype(reg)
            it = args.iterations
            limit, _ = best_time(lambda: two_matvec_limit(K, a, b, it), args.repeat)
            ours, result = best_time(
                lambda: _with_plan(skb.sinkhorn(K, a, b, max_iter=2 * it, tol=0)), args.repeat)
            ours_log, result_log = best_time(
                lambda: _with_plan(skb.sinkhorn(logits, a, b, max_iter=2 * it, tol=0,
                                                logits=True)),
                args.repeat)
            plan = result.plan
            agreement = float(np.abs(result_log.plan - plan).max() / plan.max())
            row = {"n": n, "dtype": np.dtype(dtype).name, "limit": limit, "ours": ours,
                   "ours_log": ours_log, "agree_log": agreement}
            if ot is not None:
                pot, pot_plan = best_time(
                    lambda: ot.sinkhorn(a, b, M, reg, method="sinkhorn", numItermax=it,
                                        stopThr=0.0), args.repeat)
                pot_log, pot_log_plan = best_time(
                    lambda: ot.sinkhorn(a, b, M, reg, method="sinkhorn_log",
                                        numItermax=it, stopThr=0.0), args.repeat)
                row.update(pot=pot, pot_log=pot_log,
                           agree_pot=float(np.abs(pot_plan - plan).max() / plan.max()))
            rows.append(row)
            print(row, flush=True)

    print(f"\nSinkhorn, {args.iterations} iterations (2 single-margin steps each), "
          f"reg {args.reg}, best of {args.repeat}\n")
    print("| n | dtype | two-mat-vec limit (s) | skbalance (s) | x limit | POT sinkhorn (s)"
          " | POT / skbalance | skbalance logits (s) | POT sinkhorn_log (s) "
          "| POT log / skbalance logits | max plan difference vs POT |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        pot = (f"{r['pot']:.3f} | {r['pot'] / r['ours']:.2f}" if "pot" in r else "- | -")
        pot_log = (f"{r['pot_log']:.3f} | {r['pot_log'] / r['ours_log']:.2f}"
                   if "pot_log" in r else "- | -")
        agree = f"{r['agree_pot']:.1e}" if "agree_pot" in r else "-"
        print(f"| {r['n']} | {r['dtype']} | {r['limit']:.3f} | {r['ours']:.3f} | "
              f"{r['ours'] / r['limit']:.2f} | {pot} | {r['ours_log']:.3f} | {pot_log} | "
              f"{agree} |")


if __name__ == "__main__":
    main()
