"""Access and integer-encode the balancing columns of a frame or an array."""

import numpy as np
import pandas as pd

__all__ = ["as_table", "column_label", "encode_column", "get_column"]


def as_table(X):
    """Return X as a DataFrame or a 2-D ndarray, without copying a DataFrame."""
    if isinstance(X, pd.DataFrame):
        table = X
    else:
        if hasattr(X, "toarray") or hasattr(X, "tocsr"):
            raise TypeError(
                "Sparse input is not supported: balancing columns are categorical; "
                "pass a DataFrame or a dense 2-D array of level codes."
            )
        try:
            table = np.asarray(X)
        except (TypeError, RuntimeError, ValueError) as exc:
            raise TypeError(
                f"Cannot read a {type(X).__name__} as a NumPy array ({exc}). To balance "
                "arrays where they live (CuPy, torch, ...), turn on scikit-learn's "
                "array API dispatch: sklearn.set_config(array_api_dispatch=True)."
            ) from exc
        if table.ndim != 2:
            raise ValueError(
                f"Expected a 2-D array or a DataFrame, got an array with {table.ndim} "
                "dimension(s). Reshape your data with X.reshape(-1, 1) if it is a "
                "single column."
            )
    n_rows, n_columns = table.shape
    if n_rows == 0:
        raise ValueError(
            f"Found array with 0 sample(s) (shape={table.shape}) while a minimum of 1 "
            "is required."
        )
    if n_columns == 0:
        raise ValueError(
            f"Found array with 0 feature(s) (shape={table.shape}) while a minimum of 1 "
            "is required."
        )
    dtypes = table.dtypes if isinstance(table, pd.DataFrame) else [table.dtype]
    if any(np.dtype(d).kind == "c" for d in dtypes if isinstance(d, np.dtype)):
        raise ValueError("Complex data not supported: levels must be real or labels.")
    return table


def column_label(column):
    """How a column is named in messages."""
    return repr(column) if isinstance(column, str) else f"column {column!r}"


def get_column(table, column):
    """One column of a DataFrame (by label) or of an array (by position)."""
    if isinstance(table, pd.DataFrame):
        if column not in table.columns:
            raise KeyError(
                f"Unknown column {column!r}: the data has columns {list(table.columns)}."
            )
        return table[column]
    if not isinstance(column, (int, np.integer)) or isinstance(column, bool):
        raise KeyError(
            f"Unknown column {column!r}: with array input, margins are keyed by "
            f"column position 0..{table.shape[1] - 1}; pass a DataFrame to use names."
        )
    if not 0 <= column < table.shape[1]:
        raise KeyError(
            f"Unknown column {column!r}: the data has {table.shape[1]} columns."
        )
    return table[:, column]


def encode_column(values, column, missing="error"):
    """Integer codes of one column's levels.

    Parameters
    ----------
    values : pandas.Series or ndarray
    column : label used in error messages.
    missing : {"error", "level"}
        Raise on missing values, or treat them as one more level (NaN).

    Returns
    -------
    codes : ndarray of int64, shape (n_rows,)
    levels : pandas.Index
        ``levels[codes[i]]`` is the level of row ``i``; a categorical column
        keeps all its categories, observed or not.
    """
    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy().astype(np.int64)
        levels = pd.Index(values.cat.categories, tupleize_cols=False)
        if codes.size and codes.min() < 0:  # categoricals code missing as -1
            codes = np.where(codes < 0, levels.shape[0], codes)
            levels = levels.append(pd.Index([np.nan], dtype=object))
    else:
        # Missing values get a code of their own, so finding them costs a
        # look at the (few) levels instead of a pass over the rows.
        codes, levels = pd.factorize(values, use_na_sentinel=False)
        codes = codes.astype(np.int64, copy=False)
        levels = pd.Index(levels, tupleize_cols=False)
    if levels.dtype.kind in "fc" and np.isinf(levels.to_numpy()).any():
        raise ValueError(
            f"Balancing column {column_label(column)} contains inf; levels must be "
            "finite (or NaN with missing='level')."
        )
    if missing != "level" and levels.hasnans:
        nan_codes = np.flatnonzero(levels.isna())
        n_missing = int(np.count_nonzero(np.isin(codes, nan_codes)))
        raise ValueError(
            f"Balancing column {column_label(column)} has {n_missing} missing "
            f"value(s) (NaN/None) in {codes.shape[0]} rows; fill them, or pass "
            "missing='level' to treat missing as a level of its own (its "
            "target keyed by None)."
        )
    return codes, levels
