"""Write balance's simulated data (balance.datasets.load_data("sim_data_01")) to a CSV.

Run in an environment with balance installed (not a test dependency)::

    python tests/balance_reference/export_data.py

balance (MIT licence, https://github.com/facebookresearch/balance) generates
these rows with fixed seeds; the file keeps the covariates the tests need.
"""
from pathlib import Path

import pandas as pd
from balance import load_data

target, sample = load_data("sim_data_01")
frame = pd.concat([sample.assign(source="sample"), target.assign(source="target")])
frame = frame[["source", "gender", "age_group", "income"]]
path = Path(__file__).with_name("sim_data_01.csv.gz")
frame.to_csv(path, index=False, float_format="%.17g")
print(path, frame.shape)
