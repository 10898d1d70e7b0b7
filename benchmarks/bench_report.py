"""The covariate-balance report next to a plain computation of its numbers (issue 24, item 3).

A sample of ``--rows`` rows and a target of as many, 20 covariates (10
numeric, 10 of eight levels), base and balanced weights: ``covariate_balance``
against a plain NumPy/pandas computation of the same quantities (for each
numeric covariate the weighted means and variances of both sample weightings
and the target, and the Kolmogorov-Smirnov distances from one sort of the
pooled values; for each categorical one the weighted shares of every level
on the three sides). Alternating pairs; medians of wall and CPU time and of
the per-pair ratios, the BLAS thread setting and the load. Goal: within 1.5x.

Usage::

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_report.py [--rows 1000000]
"""

import argparse

import numpy as np
import pandas as pd
from bench_front_mile import paired
from bench_front_mile import report as summarize

import skbalance as skb


def frame(n, rng, shift):
    columns = {f"x{j}": rng.normal(shift * j / 10, 1, n) for j in range(10)}
    columns.update({f"c{j}": rng.choice([f"l{k}" for k in range(8)], n) for j in range(10)})
    return pd.DataFrame(columns)


def plain(sample, target, base, balanced, target_weight):
    """The report's numbers by hand: moments, KS and shares."""
    out = []
    for column in sample.columns:
        x, y = sample[column].to_numpy(), target[column].to_numpy()
        if column.startswith("x"):
            for w in (base, balanced, None):
                values, weights = (y, target_weight) if w is None else (x, w)
                mean = np.dot(weights, values) / weights.sum()
                out.append(np.dot(weights, (values - mean) ** 2) / weights.sum())
            values, position = np.unique(np.concatenate([x, y]), return_inverse=True)
            t = np.bincount(position[len(x):], target_weight / target_weight.sum(),
                            minlength=len(values))
            for w in (base, balanced):
                s = np.bincount(position[:len(x)], w / w.sum(), minlength=len(values))
                out.append(np.abs(np.cumsum(s - t)).max())
        else:
            # each side factorized once, its levels aligned (no sort of the rows)
            codes, levels = pd.factorize(x)
            t_codes, t_levels = pd.factorize(y)
            t_codes = pd.Index(levels).get_indexer(t_levels)[t_codes]
            for w, c in ((base, codes), (balanced, codes), (target_weight, t_codes)):
                out.append(np.bincount(c, w, minlength=len(levels)) / w.sum())
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--pairs", type=int, default=4)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    sample, target = frame(args.rows, rng, 1.0), frame(args.rows, rng, 0.0)
    base = rng.uniform(1, 3, args.rows)
    balanced = base * rng.uniform(0.5, 1.5, args.rows)
    target_weight = rng.uniform(1, 2, args.rows)

    def report():
        skb.covariate_balance(sample, balanced, target, sample_weight=base,
                              target_weight=target_weight)

    def by_hand():
        plain(sample, target, base, balanced, target_weight)

    a, b = paired(report, by_hand, args.pairs)
    print(f"{args.rows} rows x 20 covariates (10 numeric, 10 x 8 levels), target as many")
    summarize("covariate_balance", a, "plain NumPy/pandas", b)

if __name__ == "__main__":
    main()
