"""The front mile's costs (issue 21): propensity weighting and a recipe's replicates.

``--part propensity``: PropensityBalancer on ``--rows`` sample rows against as
many reference rows (3 numeric covariates, 2 five-level categorical ones),
its default classifier (standardized columns, Newton logistic regression),
against that classifier's own ``fit`` + ``predict_proba`` on the same encoded
rows (the floor: skbalance adds the encoding, the checks
and the weights). Goal: within 1.5x.

``--part recipe``: the mean of an outcome with a recipe (propensity, then
raking on two margins) and 100 bootstrap replicates, each re-running the
whole recipe (the propensity model refitted), against one run of the recipe.
Goal: within 100x.

Runs alternate (A B / B A) for ``--pairs`` pairs; medians of wall and CPU
time and of the per-pair ratios are printed with the BLAS thread setting and
the load.

Usage::

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_front_mile.py --part propensity
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_front_mile.py --part recipe
"""

import argparse
import os
import time

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import skbalance as skb


def timed(function):
    """Wall and CPU seconds of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    function()
    return time.perf_counter() - wall, time.process_time() - cpu


def frames(n, seed=0):
    """A population-like reference and an opt-in sample that leans young and north."""
    rng = np.random.default_rng(seed)

    def draw(size, shift):
        return pd.DataFrame({
            "age": rng.normal(45 - 5 * shift, 12, size),
            "income": rng.lognormal(3 + 0.2 * shift, 0.5, size),
            "hours": rng.normal(38, 6, size),
            "region": rng.choice(list("nsewc"), size,
                                 p=[0.2 + 0.1 * shift, 0.2, 0.2, 0.2, 0.2 - 0.1 * shift]),
            "education": rng.choice(list("abcde"), size)})
    return draw(n, 1.0), draw(n, 0.0)


def paired(first, second, pairs):
    """Alternating runs: (wall, CPU) of each, per pair."""
    times = {"first": [], "second": []}
    for pair in range(pairs):
        order = (("first", first), ("second", second))
        for name, function in (order if pair % 2 == 0 else order[::-1]):
            times[name].append(timed(function))
    return np.asarray(times["first"]), np.asarray(times["second"])


def report(label_a, a, label_b, b):
    ratios = a[:, 0] / b[:, 0]
    print(f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, load "
          f"{os.getloadavg()[0]:.2f}, {len(a)} alternating pairs (medians)")
    for label, values in ((label_a, a), (label_b, b)):
        wall, cpu = np.median(values, axis=0)
        print(f"{label:44s} {wall:7.2f} s wall {cpu:7.2f} s CPU")
    print(f"per-pair ratio (wall): median {np.median(ratios):.2f}x, range "
          f"{ratios.min():.2f}-{ratios.max():.2f}x")


def propensity(args):
    sample, reference = frames(args.rows)
    ipw = skb.PropensityBalancer(reference)
    # the floor: the same classifier on the same encoded rows
    encoded = pd.get_dummies(pd.concat([sample, reference], ignore_index=True),
                             columns=["region", "education"], dtype=float).to_numpy()
    labels = np.r_[np.ones(len(sample)), np.zeros(len(reference))]
    weights = np.ones(len(labels))

    def classifier_alone():  # PropensityBalancer's default classifier
        model = make_pipeline(StandardScaler(),
                              LogisticRegression(solver="newton-cholesky", max_iter=1000))
        model.fit(encoded, labels, logisticregression__sample_weight=weights)
        model.predict_proba(encoded[: len(sample)])

    a, b = paired(lambda: ipw.fit(sample), classifier_alone, args.pairs)
    print(f"{args.rows} sample rows, {args.rows} reference rows, 3 numeric + 2 x 5 levels")
    report("PropensityBalancer.fit", a, "its classifier's fit + predict_proba", b)


def recipe(args):
    sample, reference = frames(args.rows)
    rng = np.random.default_rng(1)
    sample["y"] = sample["age"] + rng.normal(0, 5, len(sample))
    sample["stratum"] = rng.integers(0, 20, len(sample))
    sample["psu"] = sample["stratum"] * 50 + rng.integers(0, 50, len(sample))
    margins = {"region": reference["region"].value_counts(),
               "education": reference["education"].value_counts()}
    steps = [("propensity", skb.PropensityBalancer(reference, columns=["age", "income"])),
             ("rake", skb.MarginalBalancer(targets=margins))]
    design = skb.SurveyDesign(strata="stratum", clusters="psu", nest=True,
                              replicates="subbootstrap", n_replicates=100, random_state=0)

    def one_run():
        skb.WeightingRecipe(steps).fit(sample)

    def replicated():
        skb.BalancedFunctionalEstimator(skb.WeightingRecipe(steps), design=design).fit(
            sample, sample["y"])

    a, b = paired(replicated, one_run, args.pairs)
    print(f"{args.rows} sample and reference rows; 100 subbootstrap replicates")
    report("mean with 100 replicates re-running the recipe", a, "one run of the recipe", b)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=["propensity", "recipe"], required=True)
    parser.add_argument("--rows", type=int, default=None,
                        help="sample rows (default 1,000,000 for propensity, 20,000 for "
                             "recipe)")
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args()
    if args.rows is None:
        args.rows = 1_000_000 if args.part == "propensity" else 20_000
    propensity(args) if args.part == "propensity" else recipe(args)


if __name__ == "__main__":
    main()
