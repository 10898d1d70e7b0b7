"""
Calibrating to a known total
============================

The California schools of ``apipop`` all have last year's score (``api99``),
so its population total is known, and it predicts this year's (``api00``)
closely. Calibrating a sample's weights to that total, on top of the counts
of school type, removes most of the sampling error of the mean of
``api00``: here we draw 400 simple random samples of 200 schools, estimate
the mean of ``api00`` with weights raked to the school-type counts alone,
and with weights also calibrated to the total of ``api99`` (raking, and GREG:
the linear distance), and compare the spread of the estimates with the
standard errors the estimator reports, and how often the 95% intervals cover
the truth.

The spread of the estimates falls from about 8.7 points to 2.0, and raking and
GREG agree closely. The linearized standard error (about 1.8) is a little
below that spread in samples of 200 (the residual variance of a regression
estimator is estimated with some downward bias), so the calibrated intervals
cover about 92% rather than 95%.
"""

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import skbalance as skb

population = skb.datasets.load_api("pop")
truth = population["api00"].mean()
counts = population["stype"].value_counts().to_dict()
api99_total = population["api99"].sum()
methods = {
    "raked to school type": ({"stype": counts}, "raking"),
    "+ total of api99 (raking)": ({"stype": counts, "api99": skb.Total(api99_total)},
                                  "raking"),
    "+ total of api99 (GREG)": ({"stype": counts, "api99": skb.Total(api99_total)},
                                "linear"),
}

rng = np.random.default_rng(0)
n, n_samples = 200, 400
estimates = {name: [] for name in methods}
errors = {name: [] for name in methods}
covered = {name: 0 for name in methods}
for _ in range(n_samples):
    sample = population.iloc[rng.choice(len(population), n, replace=False)]
    sample = sample.assign(fpc=len(population))
    for name, (targets, method) in methods.items():
        bal = skb.MarginalBalancer(targets=targets, distance=method, tol=1e-10)
        est = skb.BalancedFunctionalEstimator(bal, design=skb.SurveyDesign(fpc="fpc"))
        est.fit(sample, sample["api00"])
        low, high = est.confidence_interval(0.05)
        estimates[name].append(est.estimate_)
        errors[name].append(est.std_error_)
        covered[name] += low <= truth <= high

fig, ax = plt.subplots(figsize=(7, 4))
bins = np.linspace(truth - 40, truth + 40, 81)
for name, color in zip(methods, ["tab:gray", "tab:blue", "tab:orange"]):
    values = np.asarray(estimates[name])
    label = (f"{name}: SD {values.std():.1f}, mean SE {np.mean(errors[name]):.1f}, "
             f"coverage {covered[name] / n_samples:.0%}")
    ax.hist(values, bins=bins, histtype="step", linewidth=2, color=color, label=label)
    print(label)
ax.axvline(truth, color="black", linestyle="--", label="truth")
ax.set_xlabel(f"estimated mean of api00 ({n_samples} samples of {n} schools)")
ax.set_ylabel("samples")
ax.legend(fontsize=7, loc="upper left")
ax.set_title("Calibrating to a known total removes most of the error")
fig.tight_layout()

here = Path(__file__).parent if "__file__" in globals() else Path.cwd()
folder = Path(os.environ.get("SKBALANCE_FIGURE_DIR", here))
fig.savefig(folder / "plot_calibration.png", dpi=100)
