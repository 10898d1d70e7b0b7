"""Reference ASMD values from balance's own ``asmd`` on its simulated data.

Run in an environment with balance (0.23.0 made the stored numbers)::

    python tests/balance_reference/make_reference.py SKBALANCE_WEIGHTS.csv

``SKBALANCE_WEIGHTS.csv`` holds the weights that skbalance computes in
``tests/test_covariate_balance.py::skbalance_weights`` (one column, ``weight``),
written by ``python tests/balance_reference/write_weights.py``. The tests read
``asmd_reference.json`` and need neither balance nor this script.
"""
import json
import sys
from pathlib import Path

import balance
import numpy as np
import pandas as pd
from balance import Sample

here = Path(__file__).parent
data = pd.read_csv(here / "sim_data_01.csv.gz")
covariates = ["gender", "age_group", "income"]
sample = data[data.source == "sample"][covariates].reset_index(drop=True)
target = data[data.source == "target"][covariates].reset_index(drop=True)
skbalance_weights = pd.read_csv(sys.argv[1])["weight"].to_numpy()


def frame(rows, weights):
    out = rows.assign(id=np.arange(len(rows)).astype(str), w=weights)
    return Sample.from_frame(out, id_column="id", weight_column="w")


def asmd(sample_weights, target_weights, **kwargs):
    pair = frame(sample, sample_weights).set_target(frame(target, target_weights))
    table = pair.covars().asmd(**kwargs)
    return {str(k): float(v) for k, v in table.loc["self"].items()}


ones_s, ones_t = np.ones(len(sample)), np.ones(len(target))
target_varied = 1.0 + np.arange(len(target)) % 3
pair = frame(sample, ones_s).set_target(frame(target, ones_t))
rake_weights = pair.adjust(method="rake").weights().df.iloc[:, 0].to_numpy().astype(float)
cases = {
    "unweighted": {"sample_weights": "ones", "target_weights": "ones",
                   "asmd": asmd(ones_s, ones_t),
                   "by_covariate": asmd(ones_s, ones_t, aggregate_by_main_covar=True)},
    "balance_rake": {"sample_weights": "balance_rake", "target_weights": "ones",
                     "asmd": asmd(rake_weights, ones_t),
                     "by_covariate": asmd(rake_weights, ones_t, aggregate_by_main_covar=True)},
    "skbalance_rake": {"sample_weights": "skbalance", "target_weights": "ones",
                       "asmd": asmd(skbalance_weights, ones_t),
                       "by_covariate": asmd(skbalance_weights, ones_t,
                                            aggregate_by_main_covar=True)},
    "target_weighted": {"sample_weights": "balance_rake", "target_weights": "1 + i % 3",
                        "asmd": asmd(rake_weights, target_varied),
                        "by_covariate": asmd(rake_weights, target_varied,
                                             aggregate_by_main_covar=True)},
}
out = {
    "source": f"balance {balance.__version__}: Sample.from_frame(...).set_target(...)"
              ".covars().asmd() (std_type='target'), data load_data('sim_data_01')",
    "balance_rake_weights": rake_weights.tolist(),
    "cases": cases,
}
(here / "asmd_reference.json").write_text(json.dumps(out, indent=1))
print(json.dumps(cases, indent=1))
