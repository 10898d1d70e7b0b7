"""Raking on object-dtype strings, as pandas 2's ``read_csv`` gives them (issue 24, item 6).

The ``five`` case of ``bench_raking.py`` (1,000,000 rows x 5 correlated string
columns of 5, 2, 10, 4 and 6 levels) is written to CSV and read twice: with
object dtype (a fresh Python string per cell, what pandas 2 reads by default)
and as pyarrow-backed strings (pandas 3's default storage). The raking fit of
each (``MarginalBalancer.fit``, tol 1e-10) runs in alternating pairs; medians
of wall and CPU time and the per-pair ratio object / pyarrow, with the BLAS
thread setting and the load. Goal: within 1.5x.

Usage::

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_strings.py [--pairs 7]
"""

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from bench_front_mile import paired, report
from bench_raking import make_case

import skbalance as skb


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--pairs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        data_path, targets_path = make_case("five", args.rows, directory)
        targets = json.loads(Path(targets_path).read_text())
        columns = list(targets)
        objects = pd.read_csv(data_path, usecols=columns, dtype=object)
        arrow = pd.read_csv(data_path, usecols=columns,
                            dtype=pd.StringDtype("pyarrow", na_value=np.nan))
    assert all(objects[c].dtype == object for c in columns)

    def fit(frame):
        return skb.MarginalBalancer(targets=targets, tol=1e-10).fit(frame)

    difference = float(np.abs(fit(objects).weights_ - fit(arrow).weights_).max())
    a, b = paired(lambda: fit(objects), lambda: fit(arrow), args.pairs)
    print(f"{args.rows:,} rows x 5 string columns; largest weight difference between the "
          f"two fits: {difference:.1e}")
    report("fit, object strings (pandas 2's read_csv)", a, "fit, pyarrow strings", b)


if __name__ == "__main__":
    main()
