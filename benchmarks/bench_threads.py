"""BLAS threads on a busy machine: the vector work with one thread (issue 24, item 1).

Three paths whose products are vectors (dots, weighted sums, matrix-vector
products), each timed in a fresh process:

- ``sinkhorn``: ``skb.sinkhorn`` to marginal error 1e-9 from logits (cosine
  scores of random unit vectors / T), 1024 x 1024, T = 1e-2;
- ``se``: ``BalancedFunctionalEstimator.fit`` (raking on 2 margins and the
  linearized SE through a clustered design) of 10 outcomes, 200k rows;
- ``report``: ``skb.covariate_balance`` of 10 numeric covariates, 200k rows
  and a target of as many.

Contenders, alternating (A B C, then C B A): the code at ``--before`` (a
checkout of the previous main, put first on ``PYTHONPATH``), this checkout,
and this checkout with ``OPENBLAS_NUM_THREADS=1`` (every product on one
thread: the floor the issue measured). ``--busy N`` runs N spinning
processes meanwhile, as a shared machine has (the load is printed). Medians
of wall and CPU time per contender and of the per-pair ratios to the floor.

Usage::

    git worktree add /tmp/before <previous main>
    python benchmarks/bench_threads.py --before /tmp/before [--busy 2] [--pairs 5]
"""

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import time

import numpy as np

PATHS = ("sinkhorn", "se", "report")


def run_path(path):
    """Time one path in this process: (wall, CPU) of its second run."""
    import pandas as pd

    import skbalance as skb

    rng = np.random.default_rng(0)
    if path == "sinkhorn":
        x, y = rng.normal(size=(1024, 64)), rng.normal(size=(1024, 64))
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        y /= np.linalg.norm(y, axis=1, keepdims=True)
        logits = x @ y.T / 1e-2

        def job():
            result = skb.sinkhorn(logits, logits=True, tol=1e-9, max_iter=20_000)
            assert result.converged
    elif path == "se":
        n = 200_000
        X = pd.DataFrame({"a": rng.integers(0, 4, n), "b": rng.integers(0, 3, n),
                          "psu": rng.integers(0, 400, n)})
        Y = rng.normal(size=(n, 10))
        est = skb.BalancedFunctionalEstimator(
            skb.MarginalBalancer(targets={"a": {i: 0.25 for i in range(4)},
                                          "b": {i: 1 / 3 for i in range(3)}}),
            design=skb.SurveyDesign(clusters="psu"))

        def job():
            est.fit(X, Y)
    else:
        n = 200_000
        sample = pd.DataFrame({f"x{j}": rng.normal(0, 1, n) for j in range(10)})
        target = pd.DataFrame({f"x{j}": rng.normal(0.1, 1, n) for j in range(10)})
        weights = rng.uniform(0.5, 2, n)

        def job():
            skb.covariate_balance(sample, weights, target)
    job()  # imports, caches
    wall, cpu = time.perf_counter(), time.process_time()
    job()
    return time.perf_counter() - wall, time.process_time() - cpu


def contender(path, source, one_thread):
    env = dict(os.environ)
    env.pop("OPENBLAS_NUM_THREADS", None)
    if one_thread:
        env["OPENBLAS_NUM_THREADS"] = "1"
    if source:
        env["PYTHONPATH"] = source + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, __file__, "--worker", path], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def spin():
    while True:
        pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", help="a checkout of the code to compare with")
    parser.add_argument("--busy", type=int, default=0, help="spinning processes meanwhile")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--paths", nargs="*", default=list(PATHS), choices=PATHS)
    parser.add_argument("--worker", choices=PATHS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(run_path(args.worker)))
        return
    spinners = [multiprocessing.Process(target=spin, daemon=True) for _ in range(args.busy)]
    for process in spinners:
        process.start()
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    contenders = [("after, one BLAS thread everywhere", here, True), ("after", here, False)]
    if args.before:
        contenders.append(("before", args.before, False))
    try:
        time.sleep(2 if args.busy else 0)
        print(f"{os.cpu_count()} cores, {args.busy} spinning processes, {args.pairs} "
              "alternating rounds, fresh process per run (medians)")
        for path in args.paths:
            times = {name: [] for name, _, _ in contenders}
            loads = []
            for round_ in range(args.pairs):
                order = contenders if round_ % 2 == 0 else contenders[::-1]
                for name, source, one_thread in order:
                    times[name].append(contender(path, source, one_thread))
                loads.append(os.getloadavg()[0])
            floor = np.asarray(times[contenders[0][0]])[:, 0]
            print(f"\n{path} (load {np.median(loads):.1f})")
            for name, _, _ in contenders:
                values = np.asarray(times[name])
                wall, cpu = np.median(values, axis=0)
                ratio = np.median(values[:, 0] / floor)
                print(f"  {name:36s} {wall * 1e3:8.1f} ms wall {cpu * 1e3:8.1f} ms CPU"
                      f"   {ratio:5.2f}x the one-thread run")
    finally:
        for process in spinners:
            process.terminate()


if __name__ == "__main__":
    main()
