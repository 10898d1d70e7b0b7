"""Test-session setup shared by tests/ and the doctests in skbalance/."""

import os

# scikit-learn's array API dispatch needs SciPy's array API support, which
# SciPy reads once, at import: set it before anything imports SciPy.
os.environ.setdefault("SCIPY_ARRAY_API", "1")
