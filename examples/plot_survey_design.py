"""
Standard errors that respect the sampling design
================================================

apiclus1, the sample shipped with skbalance, was drawn as R survey's data
describes it: 15 of California's 757 school districts at random, then every
school of each. Schools of one district are alike, so 183 schools carry far
less information than 183 independent draws. Here we redraw such cluster
samples from the population (which is known), rake each to the population
counts of school type and "met the school-wide growth target", and compare
how often the 95% interval of the mean of ``api00`` covers the truth with
three standard errors: the one that treats schools as independent (``iid``),
the design-based linearization, and the JK1 jackknife that re-rakes every
replicate.

The iid interval is far too narrow. The design-based intervals are honest
about the clustering; with 15 districts of very unequal sizes (one holds 552
schools, half hold 4 or fewer) the ratio estimator is itself skewed, so even
they fall short of 95% on this population, the jackknife less so. With so
few, so unequal clusters, ``df="satterthwaite"`` (degrees of freedom from each
district's part of the variance) widens the intervals to about 92% (linearized)
and 95% (JK1): see ``benchmarks/coverage_cluster.py``.
"""

import os
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning

import skbalance as skb

population = skb.datasets.load_api("pop")
truth = population["api00"].mean()
targets = skb.datasets.api_population_targets(["stype", "sch.wide"])
districts = np.sort(population["dnum"].unique())
schools_of = {d: rows for d, rows in population.groupby("dnum")}
balancer = skb.MarginalBalancer(targets=targets, tol=1e-10)
designs = {
    "iid (ignores the clusters)": None,
    "linearization": skb.SurveyDesign(clusters="dnum", fpc="fpc"),
    "JK1 jackknife": skb.SurveyDesign(clusters="dnum", fpc="fpc", replicates="jk1"),
}
n_samples = int(os.environ.get("SKBALANCE_EXAMPLE_SAMPLES", 150))
rng = np.random.default_rng(0)
intervals = {name: [] for name in designs}
skipped = 0
while len(intervals["linearization"]) < n_samples:
    drawn = rng.choice(districts, size=15, replace=False)
    sample = pd.concat([schools_of[d] for d in drawn], ignore_index=True)
    sample = sample.assign(pw=len(districts) / 15, fpc=len(districts))
    rows = {}
    try:
        for name, design in designs.items():
            estimator = skb.BalancedFunctionalEstimator(balancer, design=design)
            with warnings.catch_warnings():
                # an unreachable target: skip the sample
                warnings.simplefilter("error", ConvergenceWarning)
                result = estimator.fit(sample, sample["api00"],
                                       sample_weight=sample["pw"]).results_
            rows[name] = result[["estimate", "ci_low", "ci_high"]].iloc[0].to_numpy()
    except (ValueError, ConvergenceWarning):
        # No high school drawn, or a jackknife replicate without any school of a
        # level: that sample cannot be raked (R survey stops there too).
        skipped += 1
        continue
    for name, row in rows.items():
        intervals[name].append(row)

fig, axes = plt.subplots(1, 3, figsize=(11, 4.5), sharey=True)
shown = 40
for ax, (name, rows) in zip(axes, intervals.items()):
    rows = np.array(rows)
    covered = (rows[:, 1] <= truth) & (truth <= rows[:, 2])
    for i, (estimate, low, high) in enumerate(rows[:shown]):
        ax.plot([i, i], [low, high], color="tab:blue" if covered[i] else "tab:red", lw=2)
        ax.plot(i, estimate, "k.", ms=4)
    ax.axhline(truth, color="k", lw=1)
    ax.set_title(f"{name}\ncoverage {covered.mean():.0%} of {len(rows)} samples")
    ax.set_xlabel("sample")
axes[0].set_ylabel("raked mean of api00, 95% interval")
fig.suptitle("15-district cluster samples of California schools, raked to the population"
             f" ({skipped} sample(s) that cannot be raked skipped)")
fig.tight_layout()
here = Path(__file__).parent if "__file__" in globals() else Path.cwd()
output = Path(os.environ.get("SKBALANCE_FIGURE_DIR", here)) / "plot_survey_design.png"
fig.savefig(output, dpi=110)
