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
size of the largest district drawn; and the coverage of the same standard
errors with fewer degrees of freedom than the 14 (PSUs minus strata) of R
survey:

* ``df="satterthwaite"`` (the estimator's option): ``(sum c_j)^2 / sum c_j^2``
  with ``c_j`` each cluster's (or replicate's) part of the variance (a plug-in
  Satterthwaite approximation, conservative: about ``n / 3`` degrees of
  freedom even for equal normal clusters);
* "working model" (an experiment): ``tr(M S)^2 / tr(M S M S)``, ``S`` the
  covariance of the cluster totals of the calibration residuals when unit
  residuals are independent with equal variance (Bell and McCaffrey's idea,
  without their leverage adjustment), ``M`` the centring;
* Bell-McCaffrey: the degrees of freedom of the bias-reduced (CR2)
  variance, ``linearization="cr2", df="bell-mccaffrey"``.

The row "cr2" is that bias-reduced linearization: each district's calibration
residuals scaled by ``(I - H_gg)^(-1/2)`` (its leverage in the calibration).

``--balanced`` replaces apipop by a synthetic population of the same shape
with equal districts (757 of 8 schools, normal district and school effects,
school type and the growth target drawn per school): there the 14 design
degrees of freedom are right, and the coverage with Satterthwaite's shows how
conservative it is when clusters are alike.

Usage::

    python benchmarks/coverage_cluster.py --samples 500 --seed 0
    python benchmarks/coverage_cluster.py --samples 500 --seed 0 --balanced
"""

import argparse
import warnings

import numpy as np
import pandas as pd
from scipy.stats import t as student_t
from sklearn.exceptions import ConvergenceWarning

import skbalance as skb


def balanced_population(seed, n_districts=757, size=8):
    """Equal districts: api00 = 650 + district effect + school effect."""
    rng = np.random.default_rng(seed + 1000)
    district = np.repeat(np.arange(n_districts), size)
    effect = rng.normal(0, 50, n_districts)[district]
    stype = rng.choice(["E", "M", "H"], district.shape[0], p=[0.7, 0.17, 0.13])
    wide = np.where(rng.random(district.shape[0]) < 0.8, "Yes", "No")
    api00 = 650 + effect + 30 * (stype == "E") + 25 * (wide == "Yes") + rng.normal(
        0, 60, district.shape[0])
    return pd.DataFrame({"dnum": district, "stype": stype, "sch.wide": wide,
                         "api00": api00})


def working_model_df(sample, weights):
    """Satterthwaite degrees of freedom of the linearized variance when unit
    residuals are independent with equal variance."""
    cluster = pd.factorize(sample["dnum"])[0]
    n_clusters = cluster.max() + 1
    totals = np.zeros((n_clusters, len(sample)))
    totals[cluster, np.arange(len(sample))] = weights
    X = pd.get_dummies(sample[["stype", "sch.wide"]]).astype(float).to_numpy()
    d = sample["pw"].to_numpy()
    hat = X @ np.linalg.pinv(X.T @ (d[:, None] * X)) @ (X.T * d)
    totals = totals - totals @ hat  # cluster totals of the calibration residuals
    centred = (np.eye(n_clusters) - 1.0 / n_clusters) @ (totals @ totals.T)
    return np.trace(centred) ** 2 / np.trace(centred @ centred)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--balanced", action="store_true",
                        help="a synthetic population of equal districts instead of apipop")
    args = parser.parse_args()

    population = (balanced_population(args.seed) if args.balanced
                  else skb.datasets.load_api("pop"))
    truth = population["api00"].mean()
    targets = {column: population[column].value_counts().to_dict()
               for column in ("stype", "sch.wide")}
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
                if design is not None:
                    with warnings.catch_warnings():
                        warnings.simplefilter("error", ConvergenceWarning)
                        result = skb.BalancedFunctionalEstimator(
                            balancer, design=design, df="satterthwaite").fit(
                            sample, sample["api00"], sample_weight=sample["pw"]).results_
                    row[f"{name}_df"] = float(result["df"].iloc[0])
            with warnings.catch_warnings():
                warnings.simplefilter("error", ConvergenceWarning)
                cr2 = skb.BalancedFunctionalEstimator(
                    balancer, design=designs["linearized"], linearization="cr2",
                    df="bell-mccaffrey").fit(
                    sample, sample["api00"], sample_weight=sample["pw"]).results_.iloc[0]
            row["cr2_se"], row["cr2_bm_df"] = cr2.std_error, cr2.df
            with warnings.catch_warnings():
                warnings.simplefilter("error", ConvergenceWarning)
                row["cr2_df"] = skb.BalancedFunctionalEstimator(
                    balancer, design=designs["linearized"], linearization="cr2",
                    df="satterthwaite").fit(
                    sample, sample["api00"], sample_weight=sample["pw"]).df_
            fitted = skb.BalancedFunctionalEstimator(balancer).fit(
                sample, sample["api00"], sample_weight=sample["pw"])
            row["df_model"] = working_model_df(sample, fitted.weights_)
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
    print("\nthe same standard errors with fewer degrees of freedom (median df: "
          f"satterthwaite {table['linearized_df'].median():.1f} linearized, "
          f"{table['jk1_df'].median():.1f} jk1; working model "
          f"{table['df_model'].median():.1f})\n")
    print("| standard error | 14 df (R survey) | df='satterthwaite' | working model | "
          "Bell-McCaffrey |")
    print("|---|---:|---:|---:|---:|")
    for name in ("linearized", "jk1", "cr2"):
        cells = []
        for df in (14, table[f"{name}_df"], table["df_model"], table["cr2_bm_df"]):
            half = student_t.ppf(0.975, df) * table[f"{name}_se"]
            covers = (table["estimate"] - half <= truth) & (truth <= table["estimate"] + half)
            cells.append(f"{covers.mean():.3f}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"(median df: Bell-McCaffrey {table['cr2_bm_df'].median():.1f}, Satterthwaite of "
          f"the cr2 parts {table['cr2_df'].median():.1f})")
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
