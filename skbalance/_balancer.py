"""MarginalBalancer: raking weights to known marginal distributions."""

import copy
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import pandas as pd
from array_api_compat import array_namespace
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._columns import as_table, column_label, encode_column, get_column
from ._targets import Margin, margin_label, margin_name, parse_targets
from .kernels import encode_cells, group_sum, rake_cells
from .utils._array_api import (
    check_same_namespace,
    device_of,
    dispatch_namespace,
    float_dtype,
    from_numpy,
    to_numpy,
)

__all__ = ["MarginalBalancer", "compute_balancing_weights"]

# The reachability diagnosis solves a linear program over the cells; above
# this many cells it is skipped (the warning then says so).
_MAX_CELLS_FOR_DIAGNOSIS = 200_000


def _base_weights(sample_weight, n_rows):
    """Validated float64 base weights (a view of the input when it already is
    one; never written to)."""
    if sample_weight is None:
        return np.ones(n_rows)
    base = np.asarray(sample_weight, dtype=np.float64)
    if base.ndim != 1 or base.shape[0] != n_rows:
        raise ValueError(
            f"sample_weight must have shape ({n_rows},), got {base.shape}."
        )
    if base.size and base.min() > 0 and np.isfinite(base.sum()):
        return base  # two reductions, no temporary: the common case
    bad = ~np.isfinite(base) | (base <= 0)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"Base weights must be positive and finite: {int(bad.sum())} are not "
            f"(first at row {first}: {float(base[first])!r}). Rows with zero weight "
            "have no place in a raking fit: drop them instead."
        )
    return base


def _column(weights):
    """Weights as one column, in their namespace."""
    if isinstance(weights, np.ndarray):
        return weights.reshape(-1, 1)
    return array_namespace(weights).reshape(weights, (-1, 1))


def _kish(weights):
    """Kish's effective sample size, (sum w)^2 / sum w^2, in any namespace."""
    if isinstance(weights, np.ndarray):
        return float(weights.sum() ** 2 / np.dot(weights, weights))
    xp = array_namespace(weights)
    return float(xp.sum(weights)) ** 2 / float(xp.sum(weights * weights))


def _check_bounds(bounds):
    if bounds is None:
        return None
    try:
        low, high = (float(b) for b in bounds)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"bounds must be a pair (low, high); got {bounds!r}.") from exc
    if not (0 <= low <= 1 <= high and low < high) or np.isnan(high):
        raise ValueError(
            f"bounds must satisfy 0 <= low <= 1 <= high and low < high; got {bounds!r}."
        )
    return low, high


def _level_repr(level):
    return "missing (NaN)" if _is_nan(level) else repr(level)


def _is_nan(level):
    return isinstance(level, float) and np.isnan(level)


@dataclass
class _Problem:
    """The cell table of one fit: everything the iterations need."""

    margins: list
    cell_of_row: np.ndarray
    cell_rows: np.ndarray
    cell_base: np.ndarray
    margin_codes: list  # per margin, the target-level index of each cell
    total: object
    base: np.ndarray  # the validated base weights of the rows

    def importance_factors(self):
        """Per-cell product of every margin's target / base-weighted share.

        The importance-weighting (IPWI) baseline: all marginal ratios at
        once, no iteration.
        """
        mass = self.cell_base / self.cell_base.sum()
        factors = np.ones_like(mass)
        for margin, codes in zip(self.margins, self.margin_codes):
            share = np.bincount(codes, mass, minlength=margin.proportions.shape[0])
            ratio = np.divide(margin.proportions, share, out=np.zeros_like(share),
                              where=share > 0)
            factors *= ratio[codes]
        return factors


def _joint_levels(columns, cell_codes, encoded):
    """Per-cell code of a joint margin and the observed level tuples."""
    codes = [cell_codes[c] for c in columns]
    sizes = [encoded[c][1].shape[0] for c in columns]
    combo_of_cell, _, combo_codes = encode_cells(codes, sizes, return_cell_codes=True)
    arrays = [encoded[c][1][code] for c, code in zip(columns, combo_codes)]
    return combo_of_cell, pd.MultiIndex.from_arrays(arrays)


def _match_levels(margin, observed, code_of_cell, cell_rows):
    """Map observed levels onto the margin's target levels, checking both ways."""
    label = margin_label(margin.key)
    position = margin.levels.get_indexer(observed)
    rows = np.bincount(code_of_cell, cell_rows, minlength=observed.shape[0])
    unmatched = np.flatnonzero((position < 0) & (rows > 0))
    if unmatched.size:
        first = observed[unmatched[0]]
        hint = ""
        if not isinstance(margin.levels, pd.MultiIndex):
            target_types = {type(v).__name__ for v in margin.levels[:5]}
            hint = (
                f" (data levels are {observed.dtype}, target levels are "
                f"{'/'.join(sorted(target_types))})"
            )
        raise ValueError(
            f"{label} has level {_level_repr(first)} in {int(rows[unmatched[0]])} "
            f"row(s) but no target; {unmatched.size} data level(s) have no target{hint}."
        )
    # Levels without a target occur only in empty cells (else we raised
    # above); those cells carry no mass, so any valid code will do.
    code = np.maximum(position, 0)[code_of_cell]
    rows_per_target = np.bincount(code, cell_rows, minlength=margin.levels.shape[0])
    absent = np.flatnonzero((rows_per_target == 0) & (margin.proportions > 0))
    if absent.size:
        level = margin.levels[absent[0]]
        raise ValueError(
            f"Level {_level_repr(level)} of {label} has a positive target "
            f"({margin.proportions[absent[0]]:.6g} of the total) but no row in the "
            "data; give it target 0 or collapse it with another level."
        )
    return code


def _uniform_margins(encoded):
    """targets=None: uniform over the observed levels of every column."""
    margins = []
    for column, (codes, levels) in encoded.items():
        observed = to_numpy(group_sum(codes, None, levels.shape[0])) > 0
        kept = levels[observed]
        margins.append(
            Margin(column, (column,), kept, np.full(kept.shape[0], 1.0 / kept.shape[0]))
        )
    return margins


def _frame_column(table, column, missing):
    return encode_column(get_column(table, column), column, missing)


def _is_dask(X):
    return type(X).__module__.startswith("dask") and hasattr(X, "npartitions")


def _balancing_columns(frame, targets):
    """The columns the targets mention (every column when targets is None)."""
    if targets is None:
        return list(frame.columns)
    margins, _ = parse_targets(targets)
    columns = list(dict.fromkeys(c for m in margins for c in m.columns))
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KeyError(
            f"Unknown column {missing[0]!r}: the data has columns {list(frame.columns)}."
        )
    return columns


_WEIGHT = "__skbalance_base__"


def _cell_table(frame, columns, sample_weight):
    """Rows, base-weight sum and sum of squares per observed cell.

    Works on pandas and dask frames alike (for dask, one distributed
    group-by; the result is a lazy frame to compute).
    """
    if sample_weight is None:
        frame = frame[columns].assign(**{_WEIGHT: 1.0})
    elif _is_dask(frame):
        frame = frame[columns].assign(**{_WEIGHT: sample_weight})
    else:
        base = _base_weights(sample_weight, frame.shape[0])
        frame = frame[columns].assign(**{_WEIGHT: base})
    frame = frame.assign(__squares=frame[_WEIGHT] ** 2)
    grouped = frame.groupby(columns, observed=True, dropna=False, sort=False)
    cells = grouped.agg(
        rows=(_WEIGHT, "count"), base=(_WEIGHT, "sum"), base_squares=("__squares", "sum"),
        smallest=(_WEIGHT, "min"),
    ).reset_index()
    return cells


def _merge_cells(old, new, columns):
    both = pd.concat([old, new], ignore_index=True)
    grouped = both.groupby(columns, observed=True, dropna=False, sort=False)
    return grouped.agg(rows=("rows", "sum"), base=("base", "sum"),
                       base_squares=("base_squares", "sum"),
                       smallest=("smallest", "min")).reset_index()


def _gather(values, index, dtype=None):
    """``values[index]`` for a small host array and row codes in any namespace
    (as ``dtype`` there, when given)."""
    if isinstance(index, np.ndarray):
        return values[index]
    xp = array_namespace(index)
    return xp.take(from_numpy(values, xp, device_of(index), dtype), index)


def _device_table(X, xp):
    """Shape checks for a 2-D array that stays on its device."""
    if X.ndim != 2:
        raise ValueError(
            f"Expected a 2-D array or a DataFrame, got an array with {X.ndim} "
            "dimension(s). Reshape your data with X.reshape(-1, 1) if it is a "
            "single column."
        )
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(
            f"Found array with shape {tuple(X.shape)} while a minimum of 1 sample and "
            "1 feature is required."
        )
    return X


def _device_column(table, column, missing):
    """Codes (on the table's device) and host levels of one column."""
    xp, where = array_namespace(table), device_of(table)
    if isinstance(column, bool) or not isinstance(column, (int, np.integer)) or not (
        0 <= column < table.shape[1]
    ):
        raise KeyError(
            f"Unknown column {column!r}: with array input, margins are keyed by "
            f"column position 0..{table.shape[1] - 1}."
        )
    values = table[:, column]
    n_missing = 0
    if xp.isdtype(values.dtype, "real floating"):
        if bool(xp.any(xp.isinf(values))):
            raise ValueError(
                f"Balancing column {column_label(column)} contains inf; levels must be "
                "finite (or NaN with missing='level')."
            )
        is_nan = xp.isnan(values)
        n_missing = int(xp.sum(xp.astype(is_nan, xp.int64)))
        if n_missing and missing != "level":
            raise ValueError(
                f"Balancing column {column_label(column)} has {n_missing} missing "
                f"value(s) (NaN/None) in {values.shape[0]} rows; fill them, or pass "
                "missing='level' to treat missing as a level of its own (its "
                "target keyed by None)."
            )
        if n_missing:  # one level for all NaNs (unique_inverse keeps NaNs apart)
            infinity = xp.asarray(float("inf"), dtype=values.dtype, device=where)
            values = xp.where(is_nan, infinity, values)
    uniques, codes = xp.unique_inverse(values)
    levels = to_numpy(uniques)
    if n_missing:
        levels = np.where(np.isinf(levels), np.nan, levels)
    return xp.astype(codes, xp.int64), pd.Index(levels, tupleize_cols=False)


def _rows(X, sample_weight):
    """The rows to balance, in their namespace: (xp, on_device, table, base, encode).

    Arrays of a non-NumPy library stay on their device when scikit-learn's
    array API dispatch is on; everything else is read as pandas or NumPy.
    """
    xp, on_device = dispatch_namespace(X)
    if on_device:  # only cell-sized arrays will visit the host
        table = _device_table(X, xp)
        base = _device_base_weights(xp, sample_weight, table.shape[0], device_of(X),
                                    float_dtype(xp, X))
        return xp, True, table, base, _device_column
    table = as_table(X)
    return None, False, table, _base_weights(sample_weight, table.shape[0]), _frame_column


def _device_base_weights(xp, sample_weight, n_rows, where, dtype):
    if sample_weight is None:
        return xp.ones(n_rows, dtype=dtype, device=where)
    base = sample_weight
    if isinstance(base, np.ndarray) or not (
        hasattr(base, "__array_namespace__") or type(base).__module__.startswith(("cupy", "torch"))
    ):
        base = np.asarray(base, dtype=np.float64)
    base = xp.astype(xp.asarray(base, device=where), dtype)
    if base.ndim != 1 or base.shape[0] != n_rows:
        raise ValueError(f"sample_weight must have shape ({n_rows},), got {base.shape}.")
    if not (float(xp.min(base)) > 0 and math.isfinite(float(xp.sum(base)))):
        bad = int(xp.sum(xp.astype(~(xp.isfinite(base) & (base > 0)), xp.int64)))
        raise ValueError(
            f"Base weights must be positive and finite: {bad} are not. Rows with zero "
            "weight have no place in a raking fit: drop them instead."
        )
    return base


def _build_problem(table, targets, missing, base, encode=_frame_column):
    """Encode the balancing columns, form the cells, map the margins.

    ``encode(table, column, missing)`` gives a column's integer codes (in
    the table's namespace) and its levels (a host pandas Index); everything
    of the cells' size is brought to NumPy, the row-level arrays stay put.
    """
    if targets is None:
        columns = list(table.columns) if isinstance(table, pd.DataFrame) else list(
            range(table.shape[1])
        )
        margins, total = None, None
    else:
        margins, total = parse_targets(targets)
        columns = list(dict.fromkeys(c for m in margins for c in m.columns))
    encoded = {column: encode(table, column, missing) for column in columns}
    if margins is None:
        margins = _uniform_margins(encoded)
    cell_of_row, n_cells, codes_of_cells, cell_rows = encode_cells(
        [encoded[c][0] for c in columns], [encoded[c][1].shape[0] for c in columns],
        return_cell_codes=True, return_counts=True,
    )
    cell_codes = {c: to_numpy(codes) for c, codes in zip(columns, codes_of_cells)}
    cell_rows = to_numpy(cell_rows)
    cell_base = to_numpy(group_sum(cell_of_row, base, n_cells)).astype(np.float64)

    margin_codes = []
    for margin in margins:
        if len(margin.columns) == 1:
            column = margin.columns[0]
            code_of_cell, observed = cell_codes[column], encoded[column][1]
        else:
            code_of_cell, observed = _joint_levels(margin.columns, cell_codes, encoded)
        margin_codes.append(_match_levels(margin, observed, code_of_cell, cell_rows))
    return _Problem(margins, cell_of_row, cell_rows, cell_base, margin_codes, total, base)


def _targets_reachable(base_mass, codes, targets, bounds):
    """Whether some weighting of the observed cells meets every margin.

    A feasibility linear program over the cell masses (within the bounds, if
    any). Returns None when the table is too large to decide quickly.
    """
    observed = base_mass > 0  # cells without rows cannot take any mass
    base_mass = base_mass[observed]
    codes = [c[observed] for c in codes]
    if base_mass.shape[0] > _MAX_CELLS_FOR_DIAGNOSIS:
        return None
    from scipy import sparse
    from scipy.optimize import linprog

    n_cells = base_mass.shape[0]
    offsets = np.cumsum([0] + [t.shape[0] for t in targets])
    rows = np.concatenate([c + off for c, off in zip(codes, offsets)])
    cols = np.tile(np.arange(n_cells), len(codes))
    A = sparse.csr_array(
        (np.ones(rows.shape[0]), (rows, cols)), shape=(offsets[-1], n_cells)
    )
    if bounds is None:
        box = [(0, None)] * n_cells
    else:
        box = list(zip(bounds[0] * base_mass, bounds[1] * base_mass))
    result = linprog(
        np.zeros(n_cells), A_eq=A, b_eq=np.concatenate(targets), bounds=box,
        method="highs",
    )
    return bool(result.status == 0)


class MarginalBalancer(TransformerMixin, BaseEstimator):
    """Raking weights that reproduce known marginal distributions.

    Rescales base weights one margin at a time (raking, iterative
    proportional fitting) until the weighted distribution of every balancing
    column matches its target. Rows with the same levels on every balancing
    column share one factor, so the iterations run on the table of distinct
    cells and cost nothing per row.

    Parameters
    ----------
    targets : dict, pandas.DataFrame or None, default=None
        ``{column: {level: value}}``. Values are proportions (each margin
        summing to 1 within 1e-6; then the weights sum to the sum of the base
        weights) or population counts (all margins with one total; then the
        weights sum to that total). A margin may be a pandas Series indexed
        by level. A key may be a tuple of columns, a joint margin whose levels
        are tuples (or a Series with a MultiIndex). A DataFrame is read as a
        long table with columns ``column``, ``level`` and ``value``. ``None``
        balances every column of ``X`` to uniform over its observed levels.
        Margins are visited in the order given. With array input, columns
        are keyed by position.
    max_iter : int, default=1000
        Largest number of single-margin steps (the paper's ``k``; a sweep
        over ``M`` margins is ``M`` steps).
    tol : float, default=1e-8
        Stop after the first step whose largest absolute marginal error, in
        proportions, is at most ``tol``. ``tol=0`` runs exactly ``max_iter``
        steps: the k-step balanced estimator.
    bounds : tuple of (float, float) or None, default=None
        ``(low, high)`` limits on each weight divided by its base weight
        rescaled to the target total, with ``0 <= low <= 1 <= high``.
        Enforced inside the fit (bounded raking: the closest weights in the
        raking distance that meet the margins within the bounds).
    missing : {"error", "level"}, default="error"
        Missing values in a balancing column raise an error, or form a level
        of their own, whose target is keyed by ``None``.

    Attributes
    ----------
    weights_ : ndarray of shape (n_samples,)
        Balancing weights of the training rows.
    factors_ : dict
        For every margin, a Series of per-level factors: a row's weight is
        its base weight times ``weight_scale_`` times the product of its
        levels' factors (truncated to ``bounds``).
    weight_scale_ : float
        Target total over the sum of the training base weights.
    n_iter_ : int
        Single-margin steps taken.
    converged_ : bool
        Whether the largest marginal error reached ``tol`` (with ``tol=0``:
        is at most 1e-10 after ``max_iter`` steps).
    marginal_error_ : ndarray of shape (n_iter\\_ + 1, n_margins)
        Largest absolute error of every margin, in proportions, before the
        first step (row 0) and after every step. The first and last rows are
        measured in full; after the other steps, the margin that the next
        step fits is always measured (so each margin once per sweep), the
        others only when the stop rule needs them, and entries not measured
        are NaN. ``np.nanmax(marginal_error_, axis=1)`` is above ``tol`` on
        every row but the last when the fit converged.
    targets_reachable_ : bool or None
        Set when the fit did not converge: whether any weighting of the
        observed cells (within the bounds) meets every margin; None when it
        was not decided (converged, or too many cells).
    margins_ : list
        Margin keys, in the order they are visited.
    categories_ : dict
        For every margin, the Index of its target levels.
    n_cells_ : int
        Number of distinct observed cells.
    effective_sample_size_ : float
        Kish's effective sample size of the weights, ``(sum w)^2 / sum w^2``.
    design_effect_ : float
        Kish's design effect due to weighting, ``n / effective_sample_size_``.
    diagnostics_ : pandas.DataFrame
        Per margin and level: rows, sample share, base-weighted share,
        weighted share, target, residual and factor.
    n_features_in_ : int
        Number of columns seen in fit.
    feature_names_in_ : ndarray of shape (n_features_in\\_,)
        Column names seen in fit, when they are all strings.

    See Also
    --------
    compute_balancing_weights : The same as a function.

    Notes
    -----
    ``X`` may also be a 2-D array from any Array API library (CuPy, torch,
    ...) when scikit-learn's ``array_api_dispatch`` is on: the weights then
    stay on the input's device. A dask DataFrame is reduced to the cell
    table by one distributed group-by; ``weights_`` is then a lazy dask
    Series. :meth:`partial_fit` accumulates the cell table over chunks.

    Examples
    --------
    >>> import pandas as pd
    >>> import skbalance as skb
    >>> X = pd.DataFrame({"sex": ["F", "F", "M", "M", "M"],
    ...                   "age": ["young", "old", "young", "old", "old"]})
    >>> bal = skb.MarginalBalancer(targets={"sex": {"F": 0.5, "M": 0.5},
    ...                                     "age": {"young": 0.5, "old": 0.5}})
    >>> bal.fit(X).weights_.round(3).tolist()
    [1.464, 1.036, 1.036, 0.732, 0.732]
    >>> bal.converged_
    True
    """

    _parameter_constraints: dict = {
        "targets": [Mapping, pd.DataFrame, None],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "bounds": [tuple, list, None],
        "missing": [StrOptions({"error", "level"})],
    }

    def __init__(self, *, targets=None, max_iter=1000, tol=1e-8, bounds=None, missing="error"):
        self.targets = targets
        self.max_iter = max_iter
        self.tol = tol
        self.bounds = bounds
        self.missing = missing

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        tags.input_tags.allow_nan = self.missing == "level"
        tags.target_tags.required = False
        tags.array_api_support = True
        return tags

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Compute raking weights for the rows of ``X``.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            The balancing columns (others are ignored).
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), default=None
            Positive base (design) weights; 1 for every row when None.

        Returns
        -------
        self : MarginalBalancer
            The fitted balancer.

        Examples
        --------
        >>> import pandas as pd
        >>> import skbalance as skb
        >>> X = pd.DataFrame({"g": ["a", "b", "b", "b"]})
        >>> bal = skb.MarginalBalancer(targets={"g": {"a": 0.5, "b": 0.5}}).fit(X)
        >>> bal.n_iter_, bal.converged_
        (1, True)
        """
        self._fit(X, sample_weight)
        return self

    def _fit(self, X, sample_weight):
        """Fit, and return the cell problem (for estimators built on top)."""
        if _is_dask(X):
            return self._fit_dask(X, sample_weight)
        xp, on_device, table, base, encode = _rows(X, sample_weight)
        validate_data(self, table, skip_check_array=True, reset=True)
        problem = _build_problem(table, self.targets, self.missing, base, encode=encode)
        result = self._rake(problem)
        self.weights_ = _gather(self.weight_scale_ * result.cell_factors,
                                problem.cell_of_row, getattr(base, "dtype", None))
        self.weights_ *= base
        self.effective_sample_size_ = _kish(self.weights_)
        self.design_effect_ = table.shape[0] / self.effective_sample_size_
        self._namespace = xp.__name__ if on_device else None
        if on_device:  # every fitted array follows the data
            self.marginal_error_ = from_numpy(self.marginal_error_, xp, device_of(X),
                                              base.dtype)
        return problem

    def _rake(self, problem):
        """Rake the cell problem and set every cell-level fitted attribute."""
        bounds = _check_bounds(self.bounds)
        base_total = float(problem.cell_base.sum())
        base_mass = problem.cell_base / base_total
        targets = [m.proportions for m in problem.margins]
        result = rake_cells(
            base_mass, problem.margin_codes, targets,
            max_iter=self.max_iter, tol=self.tol, bounds=bounds,
        )
        target_total = base_total if problem.total is None else problem.total
        self.weight_scale_ = target_total / base_total
        self.margins_ = [m.key for m in problem.margins]
        self.categories_ = {m.key: m.levels for m in problem.margins}
        self.factors_ = {
            m.key: pd.Series(a, index=m.levels, name="factor")
            for m, a in zip(problem.margins, result.level_factors)
        }
        self.n_iter_ = result.n_iter
        self.converged_ = result.converged
        self.marginal_error_ = result.errors
        self.n_cells_ = int(np.count_nonzero(problem.cell_rows))
        self.total_ = target_total
        self._margins = problem.margins
        self._bounds = bounds
        self._diagnostic_data = self._diagnostic_columns(
            problem, base_mass, result.cell_factors
        )
        self.targets_reachable_ = None
        self._namespace = None
        self._report(result, base_mass, problem)
        return result

    def _fit_cells(self, cells, columns):
        """Fit from a cell table (one row per observed cell, with ``rows``,
        ``base`` and ``base_squares``): the distributed and streaming paths."""
        for column in columns:  # count missing rows, not cells
            missing = cells[column].isna().to_numpy()
            if missing.any() and self.missing != "level":
                n_missing = int(cells["rows"].to_numpy()[missing].sum())
                raise ValueError(
                    f"Balancing column {column_label(column)} has {n_missing} missing "
                    "value(s) (NaN/None); fill them, or pass missing='level' to treat "
                    "missing as a level of its own (its target keyed by None)."
                )
        base = cells["base"].to_numpy(dtype=np.float64)
        smallest = cells["smallest"].to_numpy(dtype=np.float64)
        if not (np.all(smallest > 0) and np.all(np.isfinite(base))):
            raise ValueError(
                "Base weights must be positive and finite; some are not. Rows with zero "
                "weight have no place in a raking fit: drop them instead."
            )
        problem = _build_problem(cells[columns], self.targets, self.missing, base)
        problem.cell_rows = group_sum(problem.cell_of_row, cells["rows"].to_numpy(
            dtype=np.float64), problem.cell_base.shape[0])
        result = self._rake(problem)
        scale = self.weight_scale_ * result.cell_factors
        squares = group_sum(problem.cell_of_row, cells["base_squares"].to_numpy(
            dtype=np.float64), problem.cell_base.shape[0])
        total = float(np.sum(scale * problem.cell_base))
        self.effective_sample_size_ = total**2 / float(np.sum(scale**2 * squares))
        n_rows = float(problem.cell_rows.sum())
        self.design_effect_ = n_rows / self.effective_sample_size_
        return problem

    def _fit_dask(self, X, sample_weight):
        """One distributed group-by to the cell table; iterations in memory."""
        validate_data(self, X._meta, skip_check_array=True, reset=True)
        columns = _balancing_columns(X, self.targets)
        cells = _cell_table(X, columns, sample_weight).compute()
        problem = self._fit_cells(cells, columns)
        self.weights_ = self.compute_weights(X, sample_weight)
        return problem

    def partial_fit(self, X, y=None, sample_weight=None):
        """Add a chunk of rows to the cell table and refit the factors.

        For data that arrive in chunks: the rows are reduced to the cell
        table (rows, base weight per observed cell) and added to what earlier
        chunks gave; the factors are refitted on the accumulated table (the
        iterations cost nothing per row). The result equals ``fit`` on all
        the rows at once; use :meth:`compute_weights` for the weights of any
        rows.

        Parameters
        ----------
        X : DataFrame (pandas or dask)
            A chunk of rows with the balancing columns.
        y : None
            Ignored.
        sample_weight : array-like or dask Series of shape (n_samples,), default=None
            Positive base weights of the chunk.

        Returns
        -------
        self : MarginalBalancer
            The balancer, fitted on every chunk so far.

        Examples
        --------
        >>> import pandas as pd
        >>> import skbalance as skb
        >>> bal = skb.MarginalBalancer(targets={"g": {"a": 0.5, "b": 0.5}})
        >>> for chunk in (pd.DataFrame({"g": ["a", "b"]}), pd.DataFrame({"g": ["b", "b"]})):
        ...     bal = bal.partial_fit(chunk)
        >>> bal.factors_["g"].round(3).tolist()
        [2.0, 0.667]
        """
        first = not hasattr(self, "_accumulated_cells")
        frame = X if _is_dask(X) else as_table(X)
        if not isinstance(frame, pd.DataFrame) and not _is_dask(frame):
            frame = pd.DataFrame(frame)
        meta = frame._meta if _is_dask(frame) else frame
        validate_data(self, meta, skip_check_array=True, reset=first)
        if first:
            self._partial_columns = _balancing_columns(frame, self.targets)
        columns = self._partial_columns
        cells = _cell_table(frame, columns, sample_weight)
        if _is_dask(cells):
            cells = cells.compute()
        if not first:
            cells = _merge_cells(self._accumulated_cells, cells, columns)
        self._accumulated_cells = cells
        self._fit_cells(cells, columns)
        return self

    def _report(self, result, base_mass, problem):
        """Warn about unreachable targets or a fit that stopped short of tol."""
        problems = []
        if result.starved_levels:
            j, level = result.starved_levels[0]
            margin = problem.margins[j]
            problems.append(
                f"level {_level_repr(margin.levels[level])} of "
                f"{margin_label(margin.key)} lost all its weight (other targets set to "
                "0 every cell it has), so its target cannot be met"
            )
        if result.infeasible_levels:
            j, level = result.infeasible_levels[0]
            margin = problem.margins[j]
            problems.append(
                f"bounds {self._bounds} and margins cannot both hold: level "
                f"{_level_repr(margin.levels[level])} of {margin_label(margin.key)} "
                "needs factors outside the bounds"
            )
        if self.tol > 0 and not result.converged:
            self.targets_reachable_ = _targets_reachable(
                base_mass, problem.margin_codes, [m.proportions for m in problem.margins],
                self._bounds,
            )
            residual = ", ".join(
                f"{margin_name(k)}: {e:.3g}" for k, e in zip(self.margins_, result.errors[-1])
            )
            message = (
                f"Raking did not reach tol={self.tol:g} in {result.n_iter} steps; "
                f"largest marginal error per margin: {residual}."
            )
            if self.targets_reachable_ is False:
                message += (
                    " No weighting of the observed cells"
                    + (" within the bounds" if self._bounds else "")
                    + " meets every margin (structural zeros or bounds too tight):"
                    " the targets are unreachable."
                )
            elif self.targets_reachable_:
                message += " The targets are reachable: increase max_iter."
            problems.insert(0, message)
        if problems:
            warnings.warn(" ".join(p[0].upper() + p[1:] for p in problems), ConvergenceWarning)
            self.converged_ = False

    def _diagnostic_columns(self, problem, base_mass, cell_factors):
        """Per margin, the level statistics behind ``diagnostics_`` (cheap)."""
        columns = []
        n_rows = problem.cell_rows.sum()
        weighted_mass = base_mass * cell_factors
        weighted_total = weighted_mass.sum()
        for margin, code in zip(problem.margins, problem.margin_codes):
            n_levels = margin.levels.shape[0]
            rows = np.bincount(code, problem.cell_rows, minlength=n_levels)
            weighted = np.bincount(code, weighted_mass, minlength=n_levels) / weighted_total
            columns.append({
                "n_rows": rows.astype(np.int64),
                "sample_share": rows / n_rows,
                "base_share": np.bincount(code, base_mass, minlength=n_levels),
                "weighted_share": weighted,
                "target_share": margin.proportions,
                "residual": weighted - margin.proportions,
            })
        return columns

    @property
    def diagnostics_(self):
        """Per margin and level: rows, shares before and after, target, residual.

        A DataFrame with columns ``margin``, ``level``, ``n_rows``,
        ``sample_share`` (share of rows), ``base_share`` (share of the base
        weights), ``weighted_share`` (share of the balancing weights),
        ``target_share``, ``residual`` (weighted minus target) and ``factor``.
        Built on access from statistics kept at fit.
        """
        check_is_fitted(self, "factors_")
        frames = []
        for margin, columns in zip(self._margins, self._diagnostic_data):
            frames.append(pd.DataFrame({
                "margin": margin_name(margin.key),
                "level": list(margin.levels),
                **{name: values for name, values in columns.items()
                   if name in ("n_rows", "sample_share", "base_share",
                               "weighted_share", "target_share", "residual")},
                "factor": self.factors_[margin.key].to_numpy(),
            }))
        return pd.concat(frames, ignore_index=True)

    def compute_weights(self, X, sample_weight=None):
        """Compute the weights of new rows with the factors learned in fit.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Rows with the balancing columns seen in fit.
        sample_weight : array-like of shape (n_samples,), default=None
            Base weights of these rows; 1 for every row when None.

        Returns
        -------
        weights : ndarray of shape (n_samples,)
            ``sample_weight * weight_scale_ * factors`` of every row.

        Examples
        --------
        >>> import pandas as pd
        >>> import skbalance as skb
        >>> X = pd.DataFrame({"sex": ["F", "M", "M", "M"]})
        >>> bal = skb.MarginalBalancer(targets={"sex": {"F": 0.5, "M": 0.5}}).fit(X)
        >>> bal.compute_weights(pd.DataFrame({"sex": ["M", "F"]})).tolist()
        [0.6666666666666666, 2.0]
        """
        return self._weights(X, sample_weight, "compute_weights")

    def _weights(self, X, sample_weight, method):
        """compute_weights, with the public method's name for error messages."""
        if _is_dask(X):
            return self._dask_weights(X, sample_weight)
        check_is_fitted(self)
        _, _, table, base, encode = _rows(X, sample_weight)
        validate_data(self, table, skip_check_array=True, reset=False)
        check_same_namespace(self, X, method)
        encoded, factor = {}, None
        for margin in self._margins:
            for column in margin.columns:
                if column not in encoded:
                    encoded[column] = encode(table, column, self.missing)
            row_factors = self._row_factors(margin, encoded, getattr(base, "dtype", None)
                                            if not isinstance(base, np.ndarray) else None)
            factor = row_factors if factor is None else factor * row_factors
        if self._bounds is not None:
            low, high = self._bounds
            factor = np.clip(factor, low, high) if isinstance(factor, np.ndarray) else (
                array_namespace(factor).clip(factor, low, high)
            )
        return base * (self.weight_scale_ * factor)

    def _dask_weights(self, X, sample_weight):
        """A lazy dask Series of weights, partition by partition."""
        check_is_fitted(self, "factors_")
        fitted = copy.copy(self)  # what the workers need, without lazy weights
        fitted.__dict__.pop("weights_", None)
        fitted.__dict__.pop("_accumulated_cells", None)
        columns = list(X.columns)

        def weigh(part):
            base = None if sample_weight is None else part[_WEIGHT]
            values = fitted.compute_weights(part[columns], sample_weight=base)
            return pd.Series(values, index=part.index, name="weight")

        frame = X if sample_weight is None else X.assign(**{_WEIGHT: sample_weight})
        return frame.map_partitions(weigh, meta=("weight", "f8"))

    def _row_factors(self, margin, encoded, dtype=None):
        """Factor of every row's level of one margin; unseen levels raise."""
        if len(margin.columns) == 1:
            codes, observed = encoded[margin.columns[0]]
        else:
            codes, _, combo_codes = encode_cells(
                [encoded[c][0] for c in margin.columns],
                [encoded[c][1].shape[0] for c in margin.columns],
                return_cell_codes=True,
            )
            observed = pd.MultiIndex.from_arrays(
                [encoded[c][1][to_numpy(code)] for c, code in zip(margin.columns, combo_codes)]
            )
        position = margin.levels.get_indexer(observed)
        rows = to_numpy(group_sum(codes, None, observed.shape[0]))
        unseen = np.flatnonzero((position < 0) & (rows > 0))
        if unseen.size:
            raise ValueError(
                f"{margin_label(margin.key)} has level {_level_repr(observed[unseen[0]])} "
                f"in {int(rows[unseen[0]])} row(s), which has no target and no factor "
                "from fit."
            )
        factors = self.factors_[margin.key].to_numpy()
        return _gather(factors[position], codes, dtype)

    def transform(self, X, sample_weight=None):
        """The weights of ``X`` as one column.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Rows with the balancing columns seen in fit.
        sample_weight : array-like of shape (n_samples,), default=None
            Base weights of these rows; 1 for every row when None.

        Returns
        -------
        weights : ndarray of shape (n_samples, 1)
            A DataFrame with one column ``weight`` after
            ``set_output(transform="pandas")``.

        Examples
        --------
        >>> import pandas as pd
        >>> import skbalance as skb
        >>> X = pd.DataFrame({"sex": ["F", "M", "M", "M"]})
        >>> bal = skb.MarginalBalancer(targets={"sex": {"F": .5, "M": .5}})
        >>> bal.set_output(transform="pandas").fit_transform(X)["weight"].tolist()
        [2.0, 0.6666666666666666, 0.6666666666666666, 0.6666666666666666]
        """
        weights = self._weights(X, sample_weight, "transform")
        return _column(weights)

    def fit_transform(self, X, y=None, sample_weight=None):
        """Fit, then return the training weights ``weights_`` as one column.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            The balancing columns.
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), default=None
            Positive base weights.

        Returns
        -------
        weights : ndarray of shape (n_samples, 1)
            ``weights_`` as a column.

        Examples
        --------
        >>> import numpy as np
        >>> import skbalance as skb
        >>> skb.MarginalBalancer().fit_transform(np.array([[0], [1], [1]])).ravel().tolist()
        [1.5, 0.75, 0.75]
        """
        return _column(self.fit(X, sample_weight=sample_weight).weights_)

    def get_feature_names_out(self, input_features=None):
        """The name of the output column: ``["weight"]``.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Ignored; present for API consistency.

        Returns
        -------
        feature_names_out : ndarray of str objects
            ``array(["weight"], dtype=object)``.

        Examples
        --------
        >>> import skbalance as skb
        >>> skb.MarginalBalancer().get_feature_names_out().tolist()
        ['weight']
        """
        return np.asarray(["weight"], dtype=object)


def compute_balancing_weights(
    X, targets=None, *, sample_weight=None, max_iter=1000, tol=1e-8, bounds=None,
    missing="error",
):
    """Raking weights of the rows of ``X``: the function form of MarginalBalancer.

    Parameters
    ----------
    X : DataFrame or array-like of shape (n_samples, n_features)
        The balancing columns.
    targets : dict, pandas.DataFrame or None, default=None
        Target margins; see :class:`MarginalBalancer`.
    sample_weight : array-like of shape (n_samples,), default=None
        Positive base weights.
    max_iter : int, default=1000
        Largest number of single-margin steps.
    tol : float, default=1e-8
        Largest absolute marginal error accepted; 0 runs exactly ``max_iter``.
    bounds : tuple of (float, float) or None, default=None
        Limits on the weight to rescaled base weight ratios.
    missing : {"error", "level"}, default="error"
        How missing values in a balancing column are treated.

    Returns
    -------
    weights : ndarray of shape (n_samples,)
        The balancing weights.

    Examples
    --------
    >>> import pandas as pd
    >>> import skbalance as skb
    >>> X = pd.DataFrame({"g": ["a", "b", "b", "b"]})
    >>> skb.compute_balancing_weights(X, targets={"g": {"a": 0.5, "b": 0.5}}).tolist()
    [2.0, 0.6666666666666666, 0.6666666666666666, 0.6666666666666666]
    """
    balancer = MarginalBalancer(
        targets=targets, max_iter=max_iter, tol=tol, bounds=bounds, missing=missing
    )
    return balancer.fit(X, sample_weight=sample_weight).weights_
