"""Type aliases of the public signatures.

The optional libraries (polars, dask) are named for type checkers only: the
aliases cost nothing at run time and import nothing.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING, Literal, Union

import numpy.typing as npt

if TYPE_CHECKING:
    import dask.dataframe as dd
    import pandas as pd
    import polars as pl

__all__ = ["Distance", "Spec", "Table", "Vector"]

#: Rows to balance: a pandas, polars or dask DataFrame, or a 2-D array (NumPy,
#: or any Array API library's, such as CuPy or torch).
Table = Union["pd.DataFrame", "pl.DataFrame", "dd.DataFrame", npt.ArrayLike]

#: One value per row: a 1-D array, a pandas or dask Series, or a list.
Vector = Union["pd.Series", "dd.Series", npt.ArrayLike]

#: The distance of a balancing fit.
Distance = Literal["raking", "linear", "logit"]

#: A design column: a label of X, the values, or one of either per stage
#: (a run-time alias: on Python 3.10 ``|`` cannot join a forward reference).
Spec = Union[Hashable, Vector, list, None]  # noqa: UP007
