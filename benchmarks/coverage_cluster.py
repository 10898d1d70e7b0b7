"""Coverage of 95% intervals on repeated one-stage cluster samples of apipop.

As apiclus1 was drawn: 15 of the 757 California school districts by simple
random sampling, every school of each; each sample raked to the population
counts of school type and "met the school-wide growth target". For each
sample, the interval for the mean of api00 from three standard errors: iid
(ignores the clusters), linearization (cluster design with fpc), and JK1 (every
replicate re-raked). Samples that cannot be raked (no high school drawn, or a
jackknife replicate left without a level) are redrawn, and counted.

Also reports why coverage falls short of 95% on this population: the bias and
spread of the raked mean, the root mean square of its SE, and coverage by the
size of the largest district drawn.

Usage::

    python benchmarks/coverage_cluster.py --samples 500 --seed 0
"""

import argparse
import warnings

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning

import skbalance as skb


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    population = skb.datasets.load_api("pop")
    truth = population["api00"].mean()
    targets = skb.datasets.api_population_targets(["stype", "sch.wide"])
    districts = np.sort(population["dnum"].unique())
    sizes = population.groupby("dnum").size()
    schools_of = {d: rows for d, rows in population.groupby("dnum")}
    balancer = skb.MarginalBalancer(targets=targets, tol=1e-10)
    designs = {
        "iid": None,
        "linearized": skb.SurveyDesign(clusters="dnum", fpc="fpc"),
        "jk1": skb.SurveyDesign(clusters="dnum", fpc="fpc", replicates="jk1"),
    }
    rng = np.random.default_rng(args.seed)
    rows, skipped = [], 0
    while len(rows) < args.samples:
        drawn = rng.choice(districts, size=15, replace=False)
        sample = pd.concat([schools_of[d] for d in drawn], ignore_index=True)
        sample = sample.assign(pw=len(districts) / 15, fpc=len(districts))
        row = {"largest_district": int(sizes.loc[drawn].max())}
        try:
            for name, design in designs.items():
                with warnings.catch_warnings():
                    warnings.simplefilter("error", ConvergenceWarning)
                    result = skb.BalancedFunctionalEstimator(balancer, design=design).fit(
                        sample, sample["api00"], sample_weight=sample["pw"]).results_.iloc[0]
                row[f"{name}_covers"] = result.ci_low <= truth <= result.ci_high
                row[f"{name}_se"] = result.std_error
                row["estimate"] = result.estimate
        except (ValueError, ConvergenceWarning):
            skipped += 1
            continue
        rows.append(row)
    table = pd.DataFrame(rows)

    print(f"{args.samples} samples of 15 districts (seed {args.seed}); {skipped} redrawn "
          "because they could not be raked\n")
    print("| standard error | 95% interval coverage |")
    print("|---|---:|")
    for name in designs:
        print(f"| {name} | {table[f'{name}_covers'].mean():.3f} |")
    error = table["estimate"] - truth
    print(f"\nraked mean: bias {error.mean():+.2f}, SD {table['estimate'].std():.2f}; "
          f"root mean square SE: linearized {np.sqrt((table['linearized_se'] ** 2).mean()):.2f},"
          f" jk1 {np.sqrt((table['jk1_se'] ** 2).mean()):.2f}")
    print(f"district sizes: largest {sizes.max()}, median {sizes.median():g} schools")
    print("\nlinearized coverage by the largest district drawn:")
    for low, high in [(0, 50), (50, 100), (100, 10_000)]:
        inside = (table["largest_district"] >= low) & (table["largest_district"] < high)
        if inside.any():
            print(f"  {low}-{high - 1} schools: {table.loc[inside, 'linearized_covers'].mean():.3f}"
                  f" ({int(inside.sum())} samples)")


if __name__ == "__main__":
    main()
