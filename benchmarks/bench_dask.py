"""Raking 100 million rows generated lazily by Dask.

The rows never exist all at once: each partition is generated from its own
seed when a task needs it. ``MarginalBalancer.fit`` reduces the frame to the
cell table in one distributed group-by, iterates in memory, and returns lazy
weights; the benchmark then streams through the weights once (their sum) to
time the map step too. Peak memory is the resident set size of this process
(the threaded scheduler runs here), sampled every 5 ms, against the size
the data would take in memory.

Usage::

    pip install -e ".[dask]"
    python benchmarks/bench_dask.py [--rows 100000000] [--partitions 100]
"""

import argparse
import os
import threading
import time

import numpy as np
import pandas as pd

import skbalance as skb

LEVELS = {"age": 5, "sex": 2, "region": 10, "education": 4, "income": 6}


def partition(index, rows):
    """One partition: correlated integer-coded columns and base weights."""
    rng = np.random.default_rng(1000 + index)
    latent = rng.normal(size=rows)
    columns = {}
    for j, (name, n_levels) in enumerate(LEVELS.items()):
        score = latent * (0.3 + 0.1 * j) + rng.normal(size=rows)
        cuts = np.linspace(-1.5, 1.5, n_levels - 1)
        columns[name] = np.searchsorted(cuts, score).astype(np.int8)
    columns["w"] = rng.lognormal(0.0, 0.4, size=rows)
    return pd.DataFrame(columns)


def rss():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def main():
    import dask
    import dask.dataframe as dd

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000_000)
    parser.add_argument("--partitions", type=int, default=100)
    args = parser.parse_args()

    per_partition = args.rows // args.partitions
    frame = dd.from_map(partition, range(args.partitions), rows=per_partition,
                        meta=partition(0, 0))
    n_rows = per_partition * args.partitions
    # Proportions of a fixed reweighting, computed on one partition: reachable.
    sample = partition(0, 200_000)
    tilt = sample["w"] * np.exp(0.2 * (sample["age"] - 2))
    targets = {name: (tilt.groupby(sample[name]).sum() / tilt.sum()).to_dict()
               for name in LEVELS}

    start_rss, peak = rss(), [0]
    done = threading.Event()

    def sample_memory():
        while not done.is_set():
            peak[0] = max(peak[0], rss())
            time.sleep(0.005)

    watcher = threading.Thread(target=sample_memory, daemon=True)
    watcher.start()
    with dask.config.set(scheduler="threads"):
        started = time.perf_counter()
        bal = skb.MarginalBalancer(targets=targets, tol=1e-10)
        bal.fit(frame[list(LEVELS)], sample_weight=frame["w"])
        fitted = time.perf_counter()
        total = float(bal.weights_.sum().compute())
        mapped = time.perf_counter()
    done.set()
    watcher.join()

    data_bytes = n_rows * (len(LEVELS) * 8 + 8)  # as int64 codes and float64 weights
    print(f"rows: {n_rows:,} in {args.partitions} partitions (generated lazily)")
    print(f"fit (distributed group-by to {bal.n_cells_:,} cells, {bal.n_iter_} steps): "
          f"{fitted - started:.1f} s")
    print(f"weights streamed once (sum {total:.6g}): {mapped - fitted:.1f} s")
    print(f"converged: {bal.converged_}, largest marginal error "
          f"{bal.marginal_error_[-1].max():.1e}, Kish design effect {bal.design_effect_:.4f}")
    added = (peak[0] - start_rss) / 2**20
    print(f"peak memory added: {added:.0f} MiB; data size in memory: "
          f"{data_bytes / 2**20:,.0f} MiB; ratio {added * 2**20 / data_bytes:.3f}")


if __name__ == "__main__":
    main()
