"""Write skbalance's raking weights of the simulated sample (for make_reference.py)."""
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parents[2]))
from tests.test_covariate_balance import skbalance_weights  # noqa: E402

pd.DataFrame({"weight": skbalance_weights()}).to_csv(sys.argv[1], index=False,
                                                      float_format="%.17g")
