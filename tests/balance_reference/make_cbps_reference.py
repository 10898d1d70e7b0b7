"""Reference CBPS weights from balance's own ``cbps`` (issue 21, item 2).

Run in an environment with balance (0.23.0 made the stored numbers)::

    python tests/balance_reference/make_cbps_reference.py

balance's just-identified CBPS (``cbps_method="exact"``, transformations
off, no trimming) on its simulated data (``sim_data_01.csv.gz``: age group
and income; sample design weights 1, target 2). Writes
``cbps_reference.json``: the call, the 1,000 weights, and how far those
weights leave the balance conditions (the largest relative gap between a
weighted sample share or mean and the target's), which bounds how closely
any exact solution can agree with them.
"""
import json
from pathlib import Path

import balance
import numpy as np
import pandas as pd
from balance.weighting_methods.cbps import cbps

HERE = Path(__file__).parent
frame = pd.read_csv(HERE / "sim_data_01.csv.gz")
sample = frame[frame.source == "sample"].drop(columns="source").reset_index(drop=True)
target = frame[frame.source == "target"].drop(columns="source").reset_index(drop=True)
result = cbps(sample, pd.Series(np.ones(len(sample))), target,
              pd.Series(np.full(len(target), 2.0)), variables=["age_group", "income"],
              transformations=None, cbps_method="exact", weight_trimming_mean_ratio=None,
              na_action="drop")
w = result["weight"].to_numpy()
gaps = [abs(np.average(sample.income, weights=w) / target.income.mean() - 1)]
for level, share in target.age_group.value_counts(normalize=True).items():
    gaps.append(abs(w[sample.age_group == level].sum() / w.sum() / share - 1))
out = {"balance": balance.__version__,
       "call": "cbps(sample, ones, target, twos, variables=['age_group', 'income'], "
               "transformations=None, cbps_method='exact', weight_trimming_mean_ratio=None, "
               "na_action='drop')",
       "largest_balance_gap": max(gaps),
       "weights": [float(f"{v:.17g}") for v in w]}
(HERE / "cbps_reference.json").write_text(json.dumps(out) + "\n")
print(out["largest_balance_gap"])
