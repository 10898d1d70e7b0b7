"""Reference inverse-propensity weights from balance's own ``ipw`` (issue 21, item 1).

Run in an environment with balance (0.23.0 and scikit-learn 1.3.2 made the
stored numbers)::

    python tests/balance_reference/make_ipw_reference.py

It reads ``sim_data_01.csv.gz`` (balance's simulated sample of 1,000 rows and
target of 10,000, see ``export_data.py``), calls
``balance.weighting_methods.ipw.ipw`` with a scikit-learn classifier, its
transformations off and design weights of 1 (sample) and 2 (target), and
writes ``ipw_reference.json``: per case, the call and the 1,000 weights.
The tests read the JSON and need neither balance nor this script.
"""
import json
from pathlib import Path

import balance
import numpy as np
import pandas as pd
import sklearn
from balance.weighting_methods.ipw import ipw
from sklearn.linear_model import LogisticRegression

HERE = Path(__file__).parent
frame = pd.read_csv(HERE / "sim_data_01.csv.gz")
sample = frame[frame.source == "sample"].drop(columns="source").reset_index(drop=True)
target = frame[frame.source == "target"].drop(columns="source").reset_index(drop=True)
sample_weights = pd.Series(np.ones(len(sample)))
target_weights = pd.Series(np.full(len(target), 2.0))
tight = dict(solver="newton-cholesky", tol=1e-12, max_iter=1000)  # converged: the same optimum
cases = {
    # the same matrix on both sides: the one numeric column, L2 logistic regression
    "income_lr": dict(variables=["income"], model=LogisticRegression(**tight),
                      weight_trimming_mean_ratio=None),
    # balance's default trimming (20 times the mean), same model
    "income_lr_trim20": dict(variables=["income"], model=LogisticRegression(**tight),
                             weight_trimming_mean_ratio=20),
    # a categorical: patsy's coding without intercept ("- 1") gives the first
    # factor an indicator per level, as skbalance's encoding; no intercept in
    # the model, so both fit the same matrix
    "age_income_lr": dict(variables=["age_group", "income"],
                          model=LogisticRegression(fit_intercept=False, **tight),
                          weight_trimming_mean_ratio=None),
}
out = {"balance": balance.__version__, "sklearn": sklearn.__version__, "cases": {}}
for name, options in cases.items():
    result = ipw(sample, sample_weights, target, target_weights, transformations=None,
                 na_action="drop", **options)
    weights = result["weight"].to_numpy()
    shown = {k: (repr(v) if not isinstance(v, (int, float, list, type(None))) else v)
             for k, v in options.items()}
    out["cases"][name] = {
        "call": f"ipw(sample, ones, target, twos, transformations=None, na_action='drop', "
                f"**{shown})",
        "weights": [float(f"{w:.17g}") for w in weights]}
(HERE / "ipw_reference.json").write_text(json.dumps(out, indent=1) + "\n")
print({k: np.round(v["weights"][:3], 6).tolist() for k, v in out["cases"].items()})
