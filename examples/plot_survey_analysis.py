"""
A whole survey analysis: design, raking, domains, regression, median, test
==========================================================================

One analysis of the California schools cluster sample (``apiclus1``: 15
school districts drawn at random, every school of each) from start to end,
each step the R survey call of the "Coming from R survey" page, each standard
error counting the design (clusters, fpc) and the raking:

1. the design and the raking to the population counts of school type and
   "met the school-wide growth target";
2. the mean API score by school type and target (two domain columns), and
   the difference between two domains with its standard error;
3. a regression of the score on English learners, free meals and mobility
   (R's ``svyglm``);
4. the quartiles of the score (R's ``svyquantile``);
5. the Rao-Scott test of association between the growth target and the
   school type (R's ``svychisq``).
"""

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import skbalance as skb

sample = skb.datasets.load_api("clus1")
targets = skb.datasets.api_population_targets(["stype", "sch.wide"])
design = skb.SurveyDesign(clusters="dnum", fpc="fpc")  # svydesign(id=~dnum, fpc=~fpc)
raking = skb.MarginalBalancer(targets=targets, tol=1e-12)  # calibrate(..., "raking")

# %%
# Means by two domains, and a contrast
# ------------------------------------
by_two = skb.BalancedFunctionalEstimator(raking, design=design,
                                         domain=["stype", "sch.wide"])
by_two.fit(sample, sample["api00"], sample_weight=sample["pw"])
print(by_two.results_[["domain", "estimate", "std_error", "ci_low", "ci_high", "n"]])
weights = [1.0 if d == ("E", "Yes") else -1.0 if d == ("E", "No") else 0.0
           for d in by_two.results_["domain"]]
print("\nelementary schools, met the target minus not:")
print(by_two.contrast(weights).round(3))

# %%
# A regression with design-based standard errors
# ----------------------------------------------
model = skb.SurveyRegressor(raking, design=design, features=["ell", "meals", "mobility"])
model.fit(sample, sample["api00"], sample_weight=sample["pw"])
print(model.results_.round(4))

# %%
# Quartiles, and a test of association
# ------------------------------------
quartiles = skb.BalancedFunctionalEstimator(raking, design=design, statistic="quantile",
                                            quantiles=[0.25, 0.5, 0.75])
quartiles.fit(sample, sample["api00"], sample_weight=sample["pw"])
print(quartiles.results_[["level", "estimate", "ci_low", "ci_high", "std_error"]])
test = skb.chisq_test(sample, "sch.wide", "stype", design=design,
                      sample_weight=sample["pw"], baseline="empirical")
print("\nRao-Scott F test of sch.wide by stype:")
print(test.round(6))

# %%
# The domain means and their 95% intervals
# ----------------------------------------
results = by_two.results_
labels = [f"{a}, {b}" for a, b in results["domain"]]
positions = np.arange(len(labels))
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.errorbar(positions, results["estimate"],
            yerr=[results["estimate"] - results["ci_low"],
                  results["ci_high"] - results["estimate"]], fmt="o", capsize=4)
ax.set_xticks(positions, labels)
ax.set_xlabel("school type, met the growth target")
ax.set_ylabel("mean API score (raked)")
ax.set_title("Domain means with design-based 95% intervals")
fig.tight_layout()
here = Path(__file__).parent if "__file__" in globals() else Path.cwd()
output = Path(os.environ.get("SKBALANCE_FIGURE_DIR", here)) / "plot_survey_analysis.png"
fig.savefig(output, dpi=110)
plt.show()
