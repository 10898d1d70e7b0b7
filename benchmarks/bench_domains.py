"""Domain estimates at scale: their cost next to the raking fit (issue 20, item 7).

1,000,000 rows in 2,000 PSUs within 50 strata, raked on 3 margins; the mean
of one outcome in every level of a domain column with ``--domains`` levels
(ZIP codes or counties in practice), linearized SEs. Reports the raking fit
alone and the domain estimates (fit included), run in alternating pairs
(fit, estimates / estimates, fit): medians of wall and CPU time, the peak
extra memory of each (resident set size sampled every 2 ms), and the median
and range of the per-pair ratios. The goal the issue set: 1,000 domains
within 3x the raking fit, memory growing with rows + domains x PSUs, not
rows x domains.

Usage::

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_domains.py --domains 50
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_domains.py --domains 1000
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_domains.py --domains 1000 \
        --replicates subbootstrap

``--replicates`` gives replicate SEs instead (80 built replicates, each
re-raked), ``--domains 1`` the cost of a design-based estimate without domains.

State the machine's load (``uptime``) and the BLAS threads beside the numbers.
"""

import argparse
import os

import numpy as np
import pandas as pd
from bench_design import measure  # wall, CPU and peak extra memory of one call

import skbalance as skb


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--domains", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pairs", type=int, default=6,
                        help="alternating (fit, estimates) pairs; medians are reported")
    parser.add_argument("--replicates", default=None,
                        help="a kind of built replicates (80 of them), e.g. subbootstrap")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    n = args.rows
    psu = rng.integers(0, 2000, n)
    frame = pd.DataFrame({
        "stratum": psu % 50, "psu": psu,
        "a": rng.choice(["a0", "a1", "a2", "a3", "a4"], n),
        "b": rng.choice(["b0", "b1"], n),
        "c": rng.choice([f"c{k}" for k in range(10)], n),
        "domain": rng.integers(0, args.domains, n),
        "y": rng.normal(50, 10, n), "w": rng.uniform(1, 3, n)})
    targets = {c: (frame[c].value_counts(normalize=True) * 0.9
                   + 0.1 / frame[c].nunique()).to_dict() for c in ("a", "b", "c")}
    balancer = skb.MarginalBalancer(targets=targets, tol=1e-8)
    design = skb.SurveyDesign(strata="stratum", clusters="psu", nest=True,
                              replicates=args.replicates,
                              n_replicates=80, random_state=0)

    def fit():
        balancer.fit(frame[["a", "b", "c"]], sample_weight=frame["w"])

    def domains():
        skb.BalancedFunctionalEstimator(balancer, design=design, domain="domain").fit(
            frame, frame["y"], sample_weight=frame["w"])

    fit()  # warm
    domains()
    runs = {"fit": [], "domains": []}
    for pair in range(args.pairs):  # A B, then B A
        order = ("fit", "domains") if pair % 2 == 0 else ("domains", "fit")
        for name in order:
            runs[name].append(measure(fit if name == "fit" else domains))
    fit_runs, domain_runs = np.asarray(runs["fit"]), np.asarray(runs["domains"])
    ratios = domain_runs[:, 0] / fit_runs[:, 0]
    print(f"{n} rows, {args.domains} domains, "
          f"{args.replicates or 'linearized'} SEs, OPENBLAS_NUM_THREADS="
          f"{os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, load "
          f"{os.getloadavg()[0]:.2f}, {args.pairs} alternating pairs (medians)")
    for label, values in (("raking fit:      ", fit_runs), ("domain estimates:", domain_runs)):
        wall, cpu, memory = np.median(values, axis=0)
        print(f"{label} {wall:6.2f} s wall, {cpu:6.2f} s CPU, "
              f"{values[:, 2].max() / 2**20:7.0f} MB peak")
    print(f"per-pair ratio (estimates / fit, wall): median {np.median(ratios):.1f}x, "
          f"range {ratios.min():.1f}-{ratios.max():.1f}x")

if __name__ == "__main__":
    main()
