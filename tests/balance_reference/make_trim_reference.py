"""Reference trimmed weights from balance's own ``trim_weights`` (issue 21, item 3).

Run in an environment with balance (0.23.0 made the stored numbers)::

    python tests/balance_reference/make_trim_reference.py

200 lognormal weights (numpy's default_rng(3), stored with the results) are
trimmed by ``balance.adjustment.trim_weights`` with a mean ratio and with
percentiles (both tails, one tail), keeping the sum; writes
``trim_reference.json``. The tests read the JSON and need no balance.
"""
import json
from pathlib import Path

import balance
import numpy as np
from balance.adjustment import trim_weights

weights = np.random.default_rng(3).lognormal(0, 1, 200)
cases = {"mean_ratio_3": dict(weight_trimming_mean_ratio=3),
         "percentile_0.05": dict(weight_trimming_percentile=0.05),
         "percentile_upper_0.1": dict(weight_trimming_percentile=(0, 0.1)),
         "percentile_lower_0.02": dict(weight_trimming_percentile=(0.02, 0))}
out = {"balance": balance.__version__, "weights": [float(f"{w:.17g}") for w in weights],
       "cases": {}}
for name, options in cases.items():
    trimmed = trim_weights(weights, keep_sum_of_weights=True, **options).to_numpy()
    out["cases"][name] = {"call": f"trim_weights(weights, keep_sum_of_weights=True, "
                                  f"**{options})",
                          "trimmed": [float(f"{w:.17g}") for w in trimmed]}
Path(__file__).with_name("trim_reference.json").write_text(json.dumps(out) + "\n")
print({k: round(max(v["trimmed"]), 4) for k, v in out["cases"].items()})
