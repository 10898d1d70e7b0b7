"""Design-based standard errors: their cost next to the raking fit itself.

Two cases, timed in one process (best of ``--repeat``), each against the raking
fit of the same rows and margins:

Balancing columns are strings, as read from a CSV (``--categorical`` makes
them pandas categoricals, whose codes make the raking fit itself 5-10x faster).

* ``clustered``: 1,000,000 rows in 2,000 PSUs within 50 strata, 5 balancing
  columns (5, 2, 10, 4, 6 levels), 10 outcomes. Linearized SEs (strata and
  clusters) and 100 Rao-Wu bootstrap replicates, each replicate re-raked.
* ``acs``: the shape of the American Community Survey person file: 3,000,000
  rows with 80 supplied successive-difference replicate weight columns, raked
  on 4 margins, mean and SE of 10 outcomes. Peak memory is compared with the
  size of the replicate columns themselves.

Usage::

    python benchmarks/bench_design.py                 # both cases
    python benchmarks/bench_design.py --cases clustered --rows 200000

Memory is the resident set size sampled every 2 ms above the level before
the call (so native allocations count).
"""

import argparse
import os
import threading
import time

import numpy as np
import pandas as pd

import skbalance as skb


def _rss():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(function, repeat):
    """Best wall time of ``repeat`` calls and the peak extra memory (bytes)."""
    best, peak_extra = np.inf, 0
    for _ in range(repeat):
        start_rss, peak, running = _rss(), [0], [True]

        def sample():
            while running[0]:
                peak[0] = max(peak[0], _rss())
                time.sleep(0.002)

        watcher = threading.Thread(target=sample)
        watcher.start()
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
        running[0] = False
        watcher.join()
        peak_extra = max(peak_extra, peak[0] - start_rss)
    return best, peak_extra, result


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


def clustered(n_rows, repeat, categorical):
    rng = np.random.default_rng(0)
    frame, latent = _balancing_columns(rng, n_rows, [5, 2, 10, 4, 6], categorical)
    psu = np.sort(rng.integers(0, 2000, size=n_rows))
    frame["psu"] = psu
    frame["stratum"] = psu // 40
    effect = rng.normal(size=2000)[psu]
    outcomes = pd.DataFrame({f"y{k}": latent * (k % 3) + effect + rng.normal(size=n_rows)
                             for k in range(10)})
    base = rng.uniform(1, 3, size=n_rows)
    balancer = skb.MarginalBalancer(targets=_targets(frame[[f"c{j}" for j in range(5)]], rng),
                                    tol=1e-10)
    fit_s, fit_mem, _ = measure(lambda: balancer.fit(frame, sample_weight=base), repeat)
    rows = [("raking fit alone", fit_s, fit_mem)]
    for label, design in [
        ("linearized SE, 10 outcomes", skb.SurveyDesign(strata="stratum", clusters="psu")),
        ("100 bootstrap replicates, 10 outcomes",
         skb.SurveyDesign(strata="stratum", clusters="psu", replicates="subbootstrap",
                          n_replicates=100, random_state=0)),
    ]:
        estimator = skb.BalancedFunctionalEstimator(balancer, design=design)
        seconds, memory, fitted = measure(
            lambda: estimator.fit(frame, outcomes, sample_weight=base), repeat)
        rows.append((label, seconds, memory))
    return rows, fitted.results_


def acs(n_rows, repeat, categorical):
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
    fit_s, fit_mem, _ = measure(lambda: balancer.fit(data[frame.columns],
                                                     sample_weight=base), repeat)
    design = skb.SurveyDesign(weights=base, replicates="successive-difference",
                              replicate_weights=names)
    estimator = skb.BalancedFunctionalEstimator(balancer, design=design)
    seconds, memory, fitted = measure(lambda: estimator.fit(data, outcomes), repeat)
    rows = [("raking fit alone", fit_s, fit_mem),
            ("80 SDR replicates, 10 outcomes", seconds, memory)]
    return rows, fitted.results_, replicate_bytes


def _print(title, rows, note=""):
    fit = rows[0][1]
    print(f"\n### {title}\n")
    print("| job | seconds | x raking fit | peak extra memory (MB) |")
    print("|---|---:|---:|---:|")
    for label, seconds, memory in rows:
        print(f"| {label} | {seconds:.3f} | {seconds / fit:.2f} | {memory / 1e6:.0f} |")
    if note:
        print(f"\n{note}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", default="clustered,acs")
    parser.add_argument("--rows", type=int, default=None,
                        help="rows (default 1,000,000 clustered, 3,000,000 acs)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--categorical", action="store_true",
                        help="balancing columns as pandas categoricals (read from their "
                        "codes: a much faster raking fit) instead of strings")
    args = parser.parse_args()
    kind = "categorical" if args.categorical else "string"
    cases = args.cases.split(",")
    if "clustered" in cases:
        rows, results = clustered(args.rows or 1_000_000, args.repeat, args.categorical)
        _print(f"clustered: 2,000 PSUs in 50 strata, 5 {kind} margins", rows)
        print(f"\nlargest SE among the 10 outcomes: {results['std_error'].max():.4g}")
    if "acs" in cases:
        rows, results, replicate_bytes = acs(args.rows or 3_000_000, args.repeat,
                                             args.categorical)
        _print(f"acs: 80 successive-difference replicate columns, 4 {kind} margins", rows,
               f"replicate columns themselves: {replicate_bytes / 1e6:.0f} MB; peak extra "
               f"memory of the estimate / that: {rows[1][2] / replicate_bytes:.2f}")


if __name__ == "__main__":
    main()
