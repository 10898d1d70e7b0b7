"""Input checks shared by every estimator, and the messages they raise.

One check per kind of input, so that every estimator accepts and rejects the
same things with the same words: sample weights, bounds, step counts, and the
messages about columns and levels.
"""

import math
from numbers import Integral

import numpy as np

__all__ = [
    "check_bounds",
    "check_nonnegative_int",
    "check_sample_weight",
    "column_label",
    "is_missing",
    "level_repr",
    "missing_values_message",
    "plain",
    "unknown_column_error",
]


def plain(value):
    """A NumPy scalar (or a tuple of them) as the Python value, for messages:
    ``2``, not ``np.int32(2)``."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return tuple(plain(v) for v in value)
    return value


def column_label(column):
    """How a column is named in messages: 'age', column 0."""
    column = plain(column)
    return repr(column) if isinstance(column, str) else f"column {column!r}"


def is_missing(value):
    """Whether a level is missing: None, or a float NaN (numpy's included)."""
    if value is None:
        return True
    try:
        return bool(isinstance(value, (float, np.floating)) and math.isnan(value))
    except TypeError:
        return False


def level_repr(level):
    """How a level is named in messages."""
    return "missing (NaN)" if is_missing(level) else repr(plain(level))


def missing_values_message(column, n_missing, n_rows=None, *, hint="missing='level'"):
    """The message for missing values in a column of levels.

    ``hint`` names the caller's way to keep missing values as a level (the
    parameter, or the command line's flag); None when there is none.
    """
    where = f" in {n_rows} rows" if n_rows is not None else ""
    advice = ("; fill or drop them." if hint is None else
              f"; fill them, or pass {hint} to treat missing as a level of its own (its "
              "target keyed by None).")
    return f"Column {column!r} has {n_missing} missing value(s) (NaN/None){where}{advice}"


def unknown_column_error(column, columns=None, n_columns=None):
    """The ValueError for a column the data do not have."""
    if columns is not None:
        return ValueError(f"Unknown column {column!r}: the data has columns {list(columns)}.")
    return ValueError(
        f"Unknown column {column!r}: with array input, columns are keyed by position "
        f"0..{n_columns - 1}; pass a DataFrame to use names."
    )


def check_bounds(bounds, around=1.0):
    """``(low, high)`` as floats with ``0 <= low <= around <= high`` and ``low < high``.

    ``around``: a value the bounds must hold (1 for factors over base weights
    rescaled to the total; None: any, for bounds on the base weights
    themselves, checked once the total is known). Returns None when
    ``bounds`` is None.
    """
    if bounds is None:
        return None
    try:
        low, high = (float(b) for b in bounds)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"bounds must be a pair (low, high); got {bounds!r}.") from exc
    middle = low if around is None else around
    if not (0 <= low <= middle <= high and low < high) or math.isnan(high):
        rule = "0 <= low <= 1 <= high" if around is not None else "0 <= low"
        raise ValueError(f"bounds must satisfy {rule} and low < high; got {bounds!r}.")
    return low, high


def check_nonnegative_int(value, name):
    """``value`` as an int, or a ValueError naming ``name``.

    The one rule for every step count (``k``, ``n_steps``, ``n_iter``,
    ``max_iter``): an integer (NumPy's too), not a bool, at least 0: the rule
    of the estimators' ``Interval(Integral, 0, None)``.
    """
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 0:
        raise ValueError(f"{name} must be a nonnegative integer; got {value!r}.")
    return int(value)


def check_sample_weight(sample_weight, n_rows, *, xp=None, device=None, dtype=None):
    """Validated base weights: finite, nonnegative, with a positive sum.

    A zero weight means "this row does not count" (scikit-learn's and survey
    practice's reading): the row stays, with no influence on any fit.

    Parameters
    ----------
    sample_weight : array-like of shape (n_rows,) or None
        The weights; None gives 1 for every row.
    n_rows : int
        Number of rows they must match.
    xp : namespace or None, default=None
        The Array API namespace to return them in; None for NumPy float64
        (a view of the input when it already is one; never written to).
    device, dtype : optional
        Device and float dtype in ``xp``.

    Returns
    -------
    weights : array of shape (n_rows,)
        In NumPy (float64) or in ``xp``.
    """
    if xp is None:
        if sample_weight is None:
            return np.ones(n_rows)
        try:
            base = np.asarray(sample_weight, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"sample_weight must be numeric; got values of type "
                f"{np.asarray(sample_weight).dtype} ({exc})."
            ) from exc
    else:
        if sample_weight is None:
            return xp.ones(n_rows, dtype=dtype, device=device)
        base = sample_weight
        if isinstance(base, np.ndarray) or not hasattr(base, "__array_namespace__"):
            base = np.asarray(base, dtype=np.float64)
        base = xp.astype(xp.asarray(base, device=device), dtype)
    if tuple(base.shape) != (n_rows,):
        raise ValueError(f"sample_weight must have shape ({n_rows},), got {tuple(base.shape)}.")
    if xp is None:
        smallest = float(base.min()) if base.size else 0.0
        with np.errstate(over="ignore"):  # an overflowing sum is reported below
            total = float(base.sum())
    else:
        smallest, total = float(xp.min(base)), float(xp.sum(base))
    if smallest >= 0 and math.isfinite(total) and total > 0:
        return base  # two reductions, no temporary: the common case
    host = np.asarray(base) if xp is None else None
    if host is not None:
        bad = ~np.isfinite(host) | (host < 0)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"sample_weight must be finite and nonnegative: {int(bad.sum())} are not "
                f"(first at row {first}: {float(host[first])!r})."
            )
        if math.isinf(total):
            raise ValueError(
                "sample_weight sums to infinity in float64; rescale the weights."
            )
    elif not (smallest >= 0 and math.isfinite(total)):
        raise ValueError("sample_weight must be finite and nonnegative.")
    raise ValueError(
        "sample_weight sums to 0: every weight is zero; at least one row needs a "
        "positive weight."
    )
