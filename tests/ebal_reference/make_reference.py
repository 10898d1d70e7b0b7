"""Reference entropy-balancing weights from the ``ebal`` package (issue 21, item 7).

Run in an environment with ebal (1.0.0 made the stored numbers)::

    python tests/ebal_reference/make_reference.py

It draws 500 rows (three covariates, a treatment that depends on two of
them, numpy's default_rng(0)), calls ``ebal.ebal_bin(PCA=False,
constraint_tolerance=1e-13, max_iterations=1000).ebalance(T, X, Y)`` (the
ATT: control weights that sum to 1 and give the treated means; the treated
rows get 1 / n_treated) and writes ``ebal_reference.json`` with the rows,
the treatment and the weights. The tests read the JSON and need no ebal.
"""
import json
from pathlib import Path

import ebal
import numpy as np

rng = np.random.default_rng(0)
n = 500
X = np.column_stack([rng.normal(0, 1, n), rng.exponential(1, n), rng.binomial(1, 0.4, n) * 1.0])
treated = rng.random(n) < 1 / (1 + np.exp(-(X[:, 0] + 0.5 * X[:, 1] - 1)))
fit = ebal.ebal_bin(PCA=False, constraint_tolerance=1e-13, max_iterations=1000,
                    print_level=-1).ebalance(treated * 1, X, np.zeros(n))
assert fit["converged"]
out = {"ebal": ebal.__version__,
       "call": "ebal_bin(PCA=False, constraint_tolerance=1e-13, max_iterations=1000)"
               ".ebalance(treated, X, zeros)",
       "columns": ["x1", "x2", "x3"],
       "X": [[float(f"{v:.17g}") for v in row] for row in X],
       "treated": [bool(t) for t in treated],
       "weights": [float(f"{w:.17g}") for w in fit["w"]]}
Path(__file__).with_name("ebal_reference.json").write_text(json.dumps(out) + "\n")
print(int(treated.sum()), "treated;", fit["maxdiff"])
