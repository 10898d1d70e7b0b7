"""Design-based standard errors: their cost next to the raking fit, and next to a floor.

Balancing columns are strings, as read from a CSV (``--categorical`` makes
them pandas categoricals, whose codes make the raking fit itself 5-10x faster).

* ``clustered``: 1,000,000 rows in 2,000 PSUs within 50 strata, 5 balancing
  columns (5, 2, 10, 4, 6 levels), 10 outcomes. Linearized SEs (strata and
  clusters) and 100 Rao-Wu bootstrap replicates, each replicate re-raked;
  with the rows sorted by PSU and with the same rows shuffled. Each is timed
  against the raking fit of the same rows (the ratio per pair).
* ``acs``: the shape of the American Community Survey person file: 3,000,000
  rows with 80 supplied successive-difference replicate weight columns, raked
  on 4 margins, mean and SE of 10 outcomes; timed against the raking fit and
  against a floor for the replicate part of the same job: the 80 replicates'
  totals per cell (one ``bincount`` per replicate column) and one matrix
  product for the outcomes' replicate totals. Peak memory is compared with the
  size of the replicate columns themselves.

Runs alternate (A B / B A) for ``--pairs`` pairs: medians of wall and CPU time
and of the per-pair wall ratios, with the BLAS thread setting and the load.
Peak memory is the resident set size sampled every 2 ms above the level
before the call (so native allocations count), in one extra run.

Usage::

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_design.py          # both cases
    python benchmarks/bench_design.py --cases clustered --rows 200000
"""

import argparse
import os
import threading
import time

import numpy as np
import pandas as pd
from bench_front_mile import paired

import skbalance as skb


def _rss():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(function):
    """Wall and CPU seconds of one call, and its peak extra memory (bytes)."""
    start_rss, peak, running = _rss(), [0], [True]

    def sample():
        while running[0]:
            peak[0] = max(peak[0], _rss())
            time.sleep(0.002)

    watcher = threading.Thread(target=sample)
    watcher.start()
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        function()
    finally:  # the watcher stops even when the call fails
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        running[0] = False
        watcher.join()
    return wall, cpu, max(peak[0] - start_rss, 0)


def _balancing_columns(rng, n_rows, sizes, categorical=False):
    """Correlated level columns: strings (as read from a CSV) or categoricals."""
    latent = rng.normal(size=n_rows)
    columns = {}
    for j, size in enumerate(sizes):
        score = latent + rng.normal(size=n_rows)
        edges = np.quantile(score, np.linspace(0, 1, size + 1)[1:-1])
        column = pd.Categorical.from_codes(np.searchsorted(edges, score),
                                           [f"L{k}" for k in range(size)])
        columns[f"c{j}"] = column if categorical else np.asarray(column).astype(object)
    return pd.DataFrame(columns), latent


def _targets(frame, rng):
    """Targets a little away from the sample's shares (so raking has work)."""
    targets = {}
    for column in frame.columns:
        shares = frame[column].value_counts(normalize=True, sort=False)
        tilted = shares * np.exp(0.2 * rng.normal(size=shares.shape[0]))
        targets[column] = tilted / tilted.sum()
    return targets


def clustered(n_rows, pairs, categorical, shuffled):
    rng = np.random.default_rng(0)
    frame, latent = _balancing_columns(rng, n_rows, [5, 2, 10, 4, 6], categorical)
    psu = np.sort(rng.integers(0, 2000, size=n_rows))
    frame["psu"] = psu
    frame["stratum"] = psu // 40
    effect = rng.normal(size=2000)[psu]
    outcomes = pd.DataFrame({f"y{k}": latent * (k % 3) + effect + rng.normal(size=n_rows)
                             for k in range(10)})
    base = rng.uniform(1, 3, size=n_rows)
    targets = _targets(frame[[f"c{j}" for j in range(5)]], rng)
    if shuffled:  # the same rows in another order
        order = np.random.default_rng(1).permutation(n_rows)
        frame, outcomes = frame.iloc[order].reset_index(drop=True), outcomes.iloc[
            order].reset_index(drop=True)
        base = base[order]
    balancer = skb.MarginalBalancer(targets=targets, tol=1e-10)

    def fit():
        balancer.fit(frame, sample_weight=base)

    rows, results = [], {}
    for label, design in [
        ("linearized SE, 10 outcomes", skb.SurveyDesign(strata="stratum", clusters="psu")),
        ("100 bootstrap replicates, 10 outcomes",
         skb.SurveyDesign(strata="stratum", clusters="psu", replicates="subbootstrap",
                          n_replicates=100, random_state=0)),
    ]:
        estimator = skb.BalancedFunctionalEstimator(balancer, design=design)

        def estimate(estimator=estimator):
            estimator.fit(frame, outcomes, sample_weight=base)

        fits, estimates = paired(fit, estimate, pairs)
        memory = measure(estimate)[2]
        rows.append((label, estimates, fits, memory))
        results[label] = estimator.results_
    return rows, results


def acs(n_rows, pairs, categorical):
    rng = np.random.default_rng(1)
    frame, latent = _balancing_columns(rng, n_rows, [9, 2, 7, 5], categorical)
    base = rng.uniform(5, 60, size=n_rows)
    perturbation = np.array([1 - np.sqrt(2) / 2, 1.0, 1 + np.sqrt(2) / 2])
    names = [f"pwgtp{r}" for r in range(1, 81)]
    replicate = pd.DataFrame(
        {name: base * perturbation[rng.integers(0, 3, size=n_rows)] for name in names})
    outcomes = pd.DataFrame({f"y{k}": latent * (k % 4) + rng.normal(size=n_rows)
                             for k in range(10)})
    data = pd.concat([frame, replicate], axis=1)
    del replicate
    replicate_bytes = n_rows * 80 * 8
    balancer = skb.MarginalBalancer(targets=_targets(frame, rng), tol=1e-10)
    design = skb.SurveyDesign(weights=base, replicates="successive-difference",
                              replicate_weights=names)
    estimator = skb.BalancedFunctionalEstimator(balancer, design=design)
    cells = pd.MultiIndex.from_frame(frame).factorize()[0]  # the cells, found once
    outcome_values = outcomes.to_numpy()

    def floor():
        weights = data[names].to_numpy()  # column-major: each replicate contiguous
        per_cell = [np.bincount(cells, weights[:, r]) for r in range(weights.shape[1])]
        return per_cell, outcome_values.T @ weights

    def fit():
        balancer.fit(data[frame.columns], sample_weight=base)

    def estimate():
        estimator.fit(data, outcomes)

    floors, estimates = paired(floor, estimate, pairs)
    fits, _ = paired(fit, lambda: None, pairs)
    memory = measure(estimate)[2]
    return (estimates, floors, fits, memory), estimator.results_, replicate_bytes


def _line(label, values, reference, reference_label):
    wall, cpu = np.median(values, axis=0)
    ratios = values[:, 0] / reference[:, 0]
    return (f"| {label} | {wall:.3f} | {cpu:.3f} | {np.median(ratios):.2f}x "
            f"({ratios.min():.2f}-{ratios.max():.2f}) {reference_label} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", default="clustered,acs")
    parser.add_argument("--rows", type=int, default=None,
                        help="rows (default 1,000,000 clustered, 3,000,000 acs)")
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--categorical", action="store_true",
                        help="balancing columns as pandas categoricals (read from their "
                        "codes: a much faster raking fit) instead of strings")
    args = parser.parse_args()
    kind = "categorical" if args.categorical else "string"
    cases = args.cases.split(",")
    print(f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f} at the start; "
          f"{args.pairs} alternating pairs, medians")
    if "clustered" in cases:
        for shuffled in (False, True):
            order = "shuffled" if shuffled else "sorted by PSU"
            rows, results = clustered(args.rows or 1_000_000, args.pairs, args.categorical,
                                      shuffled)
            print(f"\n### clustered, rows {order}: 2,000 PSUs in 50 strata, 5 {kind} "
                  "margins\n")
            print("| job | wall s | CPU s | ratio per pair (range) | peak extra MB |")
            print("|---|---:|---:|---|---:|")
            for label, estimates, fits, memory in rows:
                print(_line(label, estimates, fits, "the fit") + f" {memory / 1e6:.0f} |")
            print(_line("raking fit alone", rows[0][2], rows[0][2], "") + " |")
            largest = results["linearized SE, 10 outcomes"]["std_error"].max()
            print(f"\nlargest linearized SE among the 10 outcomes: {largest:.6g}")
    if "acs" in cases:
        (estimates, floors, fits, memory), results, replicate_bytes = acs(
            args.rows or 3_000_000, args.pairs, args.categorical)
        print(f"\n### acs: 80 successive-difference replicate columns, 4 {kind} margins\n")
        print("| job | wall s | CPU s | ratio per pair (range) |")
        print("|---|---:|---:|---|")
        print(_line("80 SDR replicates, 10 outcomes", estimates, floors, "the floor"))
        print(_line("floor: 80 bincounts by cell + Y^T W", floors, floors, ""))
        print(_line("raking fit alone", fits, fits, ""))
        print(f"\nestimate / fit (medians): "
              f"{np.median(estimates[:, 0]) / np.median(fits[:, 0]):.2f}x; peak extra memory "
              f"of the estimate {memory / 1e6:.0f} MB, {memory / replicate_bytes:.2f}x the "
              f"replicate columns ({replicate_bytes / 1e6:.0f} MB); largest SE "
              f"{results['std_error'].max():.6g}")


if __name__ == "__main__":
    main()
