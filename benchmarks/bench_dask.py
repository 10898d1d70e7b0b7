"""Raking, and a raked mean with its design-based SE, on 100 million rows
generated lazily by Dask.

The rows never exist all at once: each partition is generated from its own
seed when a task needs it.

``--part rake``: ``MarginalBalancer.fit`` reduces the frame to the cell table
in one distributed group-by, iterates in memory, and returns lazy weights;
the benchmark then streams through the weights once (their sum) to time the
map step too.

``--part estimate``: ``BalancedFunctionalEstimator`` with a stratified
cluster design (50 strata, 2,000 PSUs; a stratum lies in one region, as
geographic strata do) reduces the frame in one distributed group-by to the
groups of rows that share cell, PSU and stratum, and computes the raked mean
of an outcome and its linearized SE from them. ``--check-partitions K``
first computes the same estimate from the first K partitions both ways (in
memory, and from the groups) and prints the largest relative difference of
every number of the results.

Peak memory is the resident set size of this process (the threaded
scheduler runs here), sampled every 2 ms, against the size the data would
take in memory. BLAS threads do not matter here (group-bys and bincounts).

Usage::

    pip install -e ".[dask]"
    python benchmarks/bench_dask.py [--part rake|estimate] [--rows 100000000] \\
        [--partitions 100] [--check-partitions 2]
"""

import argparse
import os
import time

import numpy as np
import pandas as pd
from bench_design import measure  # wall, CPU and peak extra memory of one call

import skbalance as skb

LEVELS = {"age": 5, "sex": 2, "region": 10, "education": 4, "income": 6}
N_STRATA, PSUS_PER_STRATUM = 50, 40


def partition(index, rows):
    """One partition: correlated integer-coded columns, a stratified cluster
    design (each stratum in one region), an outcome and base weights."""
    rng = np.random.default_rng(1000 + index)
    latent = rng.normal(size=rows)
    columns = {}
    stratum = rng.integers(0, N_STRATA, size=rows)
    for j, (name, n_levels) in enumerate(LEVELS.items()):
        score = latent * (0.3 + 0.1 * j) + rng.normal(size=rows)
        cuts = np.linspace(-1.5, 1.5, n_levels - 1)
        columns[name] = np.searchsorted(cuts, score).astype(np.int8)
    columns["region"] = (stratum % LEVELS["region"]).astype(np.int8)
    columns["stratum"] = stratum.astype(np.int16)
    psu_in_stratum = rng.integers(0, PSUS_PER_STRATUM, size=rows)
    columns["psu"] = (stratum * PSUS_PER_STRATUM + psu_in_stratum).astype(np.int32)
    cluster_effect = np.sin(columns["psu"] * 0.7)  # outcomes alike within a PSU
    columns["y"] = 50 + 5 * latent + 3 * cluster_effect + rng.normal(size=rows)
    columns["w"] = rng.lognormal(0.0, 0.4, size=rows)
    return pd.DataFrame(columns)


def lazy_frame(n_partitions, per_partition):
    import dask.dataframe as dd

    return dd.from_map(partition, range(n_partitions), rows=per_partition,
                       meta=partition(0, 0))


def reachable_targets():
    """Proportions of a fixed reweighting, computed on one partition."""
    sample = partition(0, 200_000)
    tilt = sample["w"] * np.exp(0.2 * (sample["age"] - 2))
    return {name: (tilt.groupby(sample[name]).sum() / tilt.sum()).to_dict()
            for name in LEVELS}


def rake(args, per_partition):
    import dask

    frame = lazy_frame(args.partitions, per_partition)
    n_rows = per_partition * args.partitions
    targets = reachable_targets()
    bal = skb.MarginalBalancer(targets=targets, tol=1e-10)
    times = {}

    def fit_and_stream():
        started = time.perf_counter()
        bal.fit(frame[list(LEVELS)], sample_weight=frame["w"])
        times["fit"] = time.perf_counter() - started
        times["total"] = float(bal.weights_.sum().compute())
        times["map"] = time.perf_counter() - started - times["fit"]

    with dask.config.set(scheduler="threads"):
        added = measure(fit_and_stream)[2] / 2**20
    data_bytes = n_rows * (len(LEVELS) * 8 + 8)  # as int64 codes and float64 weights
    print(f"rows: {n_rows:,} in {args.partitions} partitions (generated lazily)")
    print(f"fit (distributed group-by to {bal.n_cells_:,} cells, {bal.n_iter_} steps): "
          f"{times['fit']:.1f} s")
    print(f"weights streamed once (sum {times['total']:.6g}): {times['map']:.1f} s")
    print(f"converged: {bal.converged_}, largest marginal error "
          f"{bal.marginal_error_[-1].max():.1e}, Kish design effect {bal.design_effect_:.4f}")
    print(f"peak memory added: {added:.0f} MiB; data size in memory: "
          f"{data_bytes / 2**20:,.0f} MiB; ratio {added * 2**20 / data_bytes:.3f}")


def estimator(targets):
    design = skb.SurveyDesign(clusters="psu", strata="stratum", weights="w")
    return skb.BalancedFunctionalEstimator(skb.MarginalBalancer(targets=targets, tol=1e-10),
                                           design=design)


NUMBERS = ["estimate", "std_error", "ci_low", "ci_high", "deff", "df", "n"]


def check(targets, n_partitions, per_partition):
    """The largest relative difference between the estimate from the rows in
    memory and from the groups of the same rows as a dask frame."""
    import dask

    frame = lazy_frame(n_partitions, per_partition)
    rows = pd.concat([partition(i, per_partition) for i in range(n_partitions)],
                     ignore_index=True)
    in_memory = estimator(targets).fit(rows, rows["y"]).results_[NUMBERS]
    with dask.config.set(scheduler="threads"):
        grouped = estimator(targets).fit(frame, "y").results_[NUMBERS]
    expected, got = in_memory.to_numpy(np.float64), grouped.to_numpy(np.float64)
    return float(np.max(np.abs(got - expected) / np.abs(expected))), len(rows)


def estimate(args, per_partition):
    import dask

    targets = reachable_targets()
    if args.check_partitions:
        difference, n_checked = check(targets, args.check_partitions, per_partition)
        print(f"check on {n_checked:,} rows: in memory vs from the groups, largest relative "
              f"difference of estimate, SE, interval, deff, df, n: {difference:.1e}")
    frame = lazy_frame(args.partitions, per_partition)
    n_rows = per_partition * args.partitions
    est = estimator(targets)
    with dask.config.set(scheduler="threads"):
        wall, cpu, added = measure(lambda: est.fit(frame, "y"))
    added /= 2**20
    data_bytes = n_rows * ((len(LEVELS) + 2) * 8 + 2 * 8)  # int64 codes, float64 y and w
    row = est.results_.iloc[0]
    print(f"rows: {n_rows:,} in {args.partitions} partitions (generated lazily); "
          f"{N_STRATA} strata, {N_STRATA * PSUS_PER_STRATUM:,} PSUs")
    print(f"raked mean {row['estimate']:.6f}, SE {row['std_error']:.3e}, df {row['df']}, "
          f"deff {row['deff']:.3f}, n {row['n']:,}; {est.balancer_.n_iter_} raking steps, "
          f"converged {est.balancer_.converged_}")
    print(f"fit and estimate: {wall:.1f} s wall, {cpu:.1f} s CPU (threaded scheduler, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} at the end)")
    print(f"peak memory added: {added:.0f} MiB; data size in memory: "
          f"{data_bytes / 2**20:,.0f} MiB; share held at once "
          f"{added * 2**20 / data_bytes:.3f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["rake", "estimate"], default="rake")
    parser.add_argument("--rows", type=int, default=100_000_000)
    parser.add_argument("--partitions", type=int, default=100)
    parser.add_argument("--check-partitions", type=int, default=0,
                        help="estimate: first compare in memory and from the groups on "
                             "this many partitions")
    args = parser.parse_args()
    per_partition = args.rows // args.partitions
    (rake if args.part == "rake" else estimate)(args, per_partition)


if __name__ == "__main__":
    main()
