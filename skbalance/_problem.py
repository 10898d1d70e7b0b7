"""The cell problem: rows reduced to distinct cells, margins matched to targets.

Rows with the same level on every balancing column share one balancing
factor, so a balancing fit, its diagnostics and its linearized variance all
work on the table of cells (the rows themselves when nearly every row has a
combination of its own). :class:`CellProblem` is that table, and
:func:`k_step_residual` is the one place where the k-step residual operator
``C_k`` of THEORY section 3 is written: the estimators apply it to the cells
of a sample, :mod:`skbalance.theory` to the cells of a probability table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from ._targets import Margin, is_numeric, margin_label, parse_targets
from .kernels import (
    ConstraintMatrix,
    MarginBlocks,
    SplitColumn,
    distinct_row_count,
    encode_cells,
    group_sum,
    group_sums,
    numeric_scaling,
)
from .utils._array_api import to_numpy
from .utils._validation import check_nonnegative_int, level_repr, plain
from .utils._warnings import warn

__all__ = [
    "CellProblem",
    "balancing_steps",
    "build_problem",
    "ipwi_residual",
    "calibration_residual",
    "k_step_residual",
    "level_means",
    "match_rows",
    "reachability",
    "regression_fit",
    "row_factors",
]

# The reachability diagnosis solves a linear program over the cells; above
# this many cells it is skipped (the warning then says so).
MAX_CELLS_FOR_DIAGNOSIS = 200_000


def level_means(mass, codes, values, n_levels):
    """Mass-weighted mean of a cell function within each level, at every cell.

    ``values`` may hold several functions as columns. Levels without mass get
    mean 0 (their cells carry no mass either).
    """
    if values.ndim == 2:
        indicator = _indicator(codes, n_levels)
        return _columns_level_means(indicator, indicator @ mass, mass, codes, values)
    level_mass = np.bincount(codes, mass, minlength=n_levels)
    total = np.bincount(codes, mass * values, minlength=n_levels)
    means = np.divide(total, level_mass, out=np.zeros_like(total), where=level_mass > 0)
    return means[codes]


def _columns_level_means(indicator, level_mass, mass, codes, values):
    """level_means of several functions (columns) with a prepared indicator."""
    total = indicator @ (mass[:, None] * values)
    means = np.divide(total, level_mass[:, None], out=np.zeros_like(total),
                      where=level_mass[:, None] > 0)
    return means[codes]


def _indicator(codes, n_levels):
    """The (levels x cells) 0/1 matrix of a margin."""
    from scipy import sparse

    return sparse.csr_array((np.ones(codes.shape[0]), (codes, np.arange(codes.shape[0]))),
                            shape=(n_levels, codes.shape[0]))


def k_step_residual(mass, codes, sizes, g, steps):
    """``C_k g``: the first-order error of k balancing steps, on cells.

    For step ``k`` down to 1, subtract from ``g`` its ``mass``-weighted mean
    within the level of that step's margin (margins visited cyclically in
    order, the first margin at step 1). THEORY section 3: the k-step balanced
    estimate of ``E[h]`` errs by ``(P_n - P)(C_k h)`` to first order.

    Parameters
    ----------
    mass : ndarray of shape (n_cells,)
        Nonnegative mass of every cell (the measure of the conditional means).
    codes : list of ndarray, each of shape (n_cells,)
        For every margin, the level of each cell (integers); for a numeric
        constraint, the value of each cell (floats): its step removes the
        ``mass``-weighted regression of ``g`` on ``(1, x)`` (the
        linearization of the exact projection onto that constraint).
    sizes : list of int
        Number of levels of every margin (ignored for numeric constraints).
    g : ndarray of shape (n_cells,) or (n_cells, n_functions)
        The cell function (or several, as columns).
    steps : int
        Number of balancing steps ``k``.

    Returns
    -------
    ndarray of the shape of ``g``
    """
    n_margins = len(codes)
    numeric = [np.issubdtype(c.dtype, np.floating) for c in codes]
    if g.ndim == 1:
        for step in range(steps, 0, -1):
            j = (step - 1) % n_margins
            g = g - (regression_fit(mass, codes[j], g) if numeric[j]
                     else level_means(mass, codes[j], g, sizes[j]))
        return g
    # several functions: one sparse (levels x cells) product per step
    used = [j for j in range(min(steps, n_margins)) if not numeric[j]]
    indicators = {j: _indicator(codes[j], sizes[j]) for j in used}
    level_mass = {j: indicators[j] @ mass for j in used}
    for step in range(steps, 0, -1):
        j = (step - 1) % n_margins
        if numeric[j]:
            g = g - regression_fit(mass, codes[j], g)
        else:
            g = g - _columns_level_means(indicators[j], level_mass[j], mass, codes[j], g)
    return g


def regression_fit(mass, x, g):
    """Fitted values of the ``mass``-weighted regression of ``g`` on ``(1, x)``.

    ``g`` may hold several functions as columns.
    """
    total = mass.sum()
    x_bar = float(mass @ x) / total
    centred = x - x_bar
    spread = float(mass @ (centred * centred))
    g_bar = (mass @ g) / total
    slope = (centred * mass) @ g / spread if spread > 0 else 0.0 * g_bar
    if g.ndim == 1:
        return g_bar + slope * centred
    return g_bar[None, :] + centred[:, None] * slope[None, :]


def calibration_residual(mass, codes, sizes, g):
    """``g`` minus its ``mass``-weighted regression on every constraint at once.

    The linearization residual of calibration (R survey's ``calibrate``):
    an intercept, the level indicators of every margin and every numeric
    column, collinear columns allowed (a pseudo-inverse). ``g`` may hold
    several functions as columns.
    """
    numeric = [np.issubdtype(code.dtype, np.floating) for code in codes]
    targets = [np.float64(0.0) if num else np.zeros(size) for num, size in zip(numeric, sizes)]
    scaled = []  # numeric columns standardised, for the conditioning of the solve
    for code, num in zip(codes, numeric):
        centre, scale = numeric_scaling(mass, code) if num else (0, 1)
        scaled.append((code - centre) / scale if num else code)
    design = ConstraintMatrix(scaled, targets)
    inverse = np.linalg.pinv(design.gram(mass), rcond=1e-13, hermitian=True)
    if g.ndim == 1:
        return g - design.dot(inverse @ design.transpose_dot(mass * g))
    return np.column_stack([
        column - design.dot(inverse @ design.transpose_dot(mass * column)) for column in g.T])



def balancing_steps(balancer):
    """The ``k`` of a fitted balancer's residual operator ``C_k``.

    Its ``n_iter_``, or ``math.inf`` when the fit finished with Newton steps
    (``n_newton_iter_ > 0``): its weights are then the limit of raking, not
    the k-step estimator, and ``C_k`` is the limit's, the regression residual
    on every margin.
    """
    return math.inf if getattr(balancer, "n_newton_iter_", 0) > 0 else balancer.n_iter_


def ipwi_residual(mass, codes, sizes, g):
    """``(I - sum_j E[. | margin j]) g``: the residual of importance weighting."""
    return g - sum(level_means(mass, c, g, s) for c, s in zip(codes, sizes))


@dataclass
class CellProblem:
    """The cell table behind a balancing fit.

    What an estimator built on a balancer needs besides the weights:
    :meth:`MarginalBalancer.fit_problem` returns it. A cell is a group of
    rows with one level on every balancing column: every distinct
    combination once, except when nearly every row has a combination of its
    own (too many combinations for a dense table, and a sample of rows 95%
    distinct), where every row is a cell of its own (``cell_of_row`` is
    ``arange(n_rows)``): numbering them would cost more than it saves, and
    every statistic of the cells is the same either way.

    Parameters
    ----------
    margins : list of Margin
        The target margins, in the order they are visited; each has ``key``,
        ``columns``, ``levels`` and ``proportions``.
    cell_of_row : array of int of shape (n_rows,)
        The cell of every row, in the rows' namespace.
    cell_rows : ndarray of shape (n_cells,)
        Number of rows in every cell.
    cell_base : ndarray of shape (n_cells,)
        Sum of the base weights of every cell (float64).
    margin_codes : list of ndarray
        For every margin, the index of each cell's level in its targets; for
        a numeric target (:class:`~skbalance.Total`, :class:`~skbalance.Mean`),
        every cell's value of the column (floats: the numeric columns take
        part in forming the cells).
    total : float or None
        The population total when the targets were counts.
    rows : Rows
        The rows the cells were formed from (their base weights, namespace
        and device).
    distance : {"raking", "linear", "logit"}, default="raking"
        The distance of the fit. Raking takes steps, and its residual after
        ``k`` steps is ``C_k``; linear and logit meet every constraint at
        once, and their residual is the regression residual on all of them.
    n_combinations : int or None, default=None
        When every row is a cell of its own: the number of distinct
        combinations of levels among the rows. None when the cells are the
        distinct combinations.

    Examples
    --------
    >>> import pandas as pd
    >>> import skbalance as skb
    >>> X = pd.DataFrame({"g": ["a", "b", "b", "b"], "h": ["u", "u", "v", "v"]})
    >>> bal = skb.MarginalBalancer(targets={"g": {"a": .5, "b": .5}, "h": {"u": .5, "v": .5}})
    >>> problem = bal.fit_problem(X)
    >>> problem.cell_rows.tolist()  # cells numbered by their keys; (a, v) is empty
    [1, 0, 1, 2]
    >>> [codes.tolist() for codes in problem.margin_codes]
    [[0, 0, 1, 1], [0, 1, 0, 1]]
    """

    margins: list
    cell_of_row: object
    cell_rows: np.ndarray
    cell_base: np.ndarray
    margin_codes: list
    total: object
    rows: object
    distance: str = "raking"
    n_combinations: int | None = None

    @property
    def method(self) -> str:
        """Deprecated: the old name of :attr:`distance` (removed in 0.3)."""
        warn("CellProblem.method was renamed distance in 0.2 and will be removed in 0.3.",
             FutureWarning)
        return self.distance

    @property
    def base(self) -> Any:
        """The validated base weights of the rows, in the rows' namespace."""
        return self.rows.base

    @property
    def n_cells(self) -> int:
        """Number of cells (observed or not)."""
        return self.cell_base.shape[0]

    @cached_property
    def level_blocks(self) -> MarginBlocks:
        """The codes of the margins with levels (not numeric), in blocks.

        :class:`~skbalance.kernels.MarginBlocks` over every margin that has
        levels, in order: made once, for the solver and the statistics of
        the fit.
        """
        levels = [j for j, margin in enumerate(self.margins) if not is_numeric(margin)]
        return MarginBlocks([self.margin_codes[j] for j in levels],
                            [self.margins[j].proportions.shape[0] for j in levels])

    @property
    def rows_are_cells(self) -> bool:
        """Whether every row is a cell of its own (``cell_of_row`` is ``arange``)."""
        return self.n_combinations is not None

    @property
    def n_observed(self) -> int:
        """Number of distinct combinations of levels that rows have."""
        if self.rows_are_cells:
            return self.n_combinations
        return int(np.count_nonzero(self.cell_rows))

    @property
    def targets(self) -> list:
        """Every margin's target: its proportions, or a numeric column's mean."""
        return [m.mean if is_numeric(m) else m.proportions for m in self.margins]

    @property
    def level_counts(self) -> list[int]:
        """Number of target levels of every margin (0 for a numeric target)."""
        return [0 if is_numeric(m) else m.proportions.shape[0] for m in self.margins]

    def importance_factors(self) -> np.ndarray:
        """Per-cell product of every margin's target over base-weighted share.

        The importance-weighting (IPWI) baseline: all marginal ratios at
        once, no iteration.

        Returns
        -------
        factors : ndarray of shape (n_cells,)
            Weight over base weight of every cell.

        Examples
        --------
        >>> import pandas as pd
        >>> import skbalance as skb
        >>> X = pd.DataFrame({"g": ["a", "b", "b", "b"]})
        >>> bal = skb.MarginalBalancer(targets={"g": {"a": 0.5, "b": 0.5}})
        >>> bal.fit_problem(X).importance_factors().round(3).tolist()
        [2.0, 0.667]
        """
        numeric = [m for m in self.margins if is_numeric(m)]
        if numeric:
            raise ValueError(
                f"Importance weighting has no factor for the numeric target of "
                f"{margin_label(numeric[0].key)}: use baseline=None (the balanced weights) or "
                "'empirical'."
            )
        mass = self.cell_base / self.cell_base.sum()
        factors = np.ones_like(mass)
        for margin, codes in zip(self.margins, self.margin_codes):
            share = np.bincount(codes, mass, minlength=margin.proportions.shape[0])
            ratio = np.divide(margin.proportions, share, out=np.zeros_like(share),
                              where=share > 0)
            factors *= ratio[codes]
        return factors

    def cell_means(self, values: Any) -> np.ndarray:
        """Base-weighted mean of a row array within every cell.

        Parameters
        ----------
        values : array of shape (n_rows,)
            Row values, in the rows' namespace.

        Returns
        -------
        means : ndarray of shape (n_cells,)
            On the host; 0 for cells without base weight.

        Examples
        --------
        >>> import numpy as np
        >>> import pandas as pd
        >>> import skbalance as skb
        >>> X = pd.DataFrame({"g": ["a", "b", "b"]})
        >>> problem = skb.MarginalBalancer().fit_problem(X)
        >>> problem.cell_means(np.array([1.0, 2.0, 4.0])).tolist()
        [1.0, 3.0]
        """
        total = to_numpy(group_sum(self.cell_of_row, self.base * values,
                                   self.n_cells)).astype(np.float64, copy=False)
        return np.divide(total, self.cell_base, out=np.zeros_like(total),
                         where=self.cell_base > 0)

    def residuals(self, values: Any, steps: int | float) -> Any:
        """``C_k`` applied to a row array, with base-weighted conditional means.

        The conditional means are constant within a cell, so the recursion
        runs on the cell table (cost ``steps x n_cells``); the within-cell
        part of ``values`` passes through untouched.

        Parameters
        ----------
        values : array of shape (n_rows,)
            Row values (e.g. ``y - estimate``), in the rows' namespace.
        steps : int or math.inf
            Number of balancing steps ``k`` (``math.inf``: the limit).

        Returns
        -------
        residuals : array of shape (n_rows,)
            ``C_k values`` at every row, in the rows' namespace.

        Examples
        --------
        One step on the only margin removes the level means:

        >>> import numpy as np
        >>> import pandas as pd
        >>> import skbalance as skb
        >>> X = pd.DataFrame({"g": ["a", "b", "b"]})
        >>> problem = skb.MarginalBalancer().fit_problem(X)
        >>> problem.residuals(np.array([1.0, 2.0, 4.0]), 1).tolist()
        [0.0, -1.0, 1.0]
        """
        return values - self.rows.gather(self.cell_correction(values, steps),
                                         self.cell_of_row)

    def cell_correction(self, values: Any, steps: int | float) -> np.ndarray:
        """The part of ``values`` that ``C_k`` removes, per cell.

        ``residuals(values, steps) = values - cell_correction(values, steps)[cell]``:
        the cell mean minus its k-step residual. Estimators that only need
        sums of the residuals over groups of rows use it to skip the rows.

        Parameters
        ----------
        values : array of shape (n_rows,), or a list of them
            Row values, in the rows' namespace.
        steps : int or math.inf
            Number of balancing steps ``k``, or ``math.inf``: the limit of
            infinitely many (the regression residual on every constraint: a
            fit that finished with Newton steps, see :func:`balancing_steps`).
            With ``distance`` "linear" or "logit", any positive number is the
            limit (0: no correction). Importance weighting has its own
            operator, :meth:`ipwi_correction`.

        Returns
        -------
        correction : ndarray of shape (n_cells,) or (n_cells, len(values))
            On the host.

        Examples
        --------
        >>> import numpy as np
        >>> import pandas as pd
        >>> import skbalance as skb
        >>> X = pd.DataFrame({"g": ["a", "b", "b"]})
        >>> problem = skb.MarginalBalancer().fit_problem(X)
        >>> problem.cell_correction(np.array([1.0, 2.0, 4.0]), 1).tolist()
        [1.0, 3.0]
        """
        if isinstance(steps, str) and steps in ("limit", "ipwi"):  # the old spellings
            warn(f"steps={steps!r} is deprecated since 0.2 and will be refused in 0.3: pass "
                 "math.inf for the limit; importance weighting is ipwi_correction(values).",
                 FutureWarning)
            if steps == "ipwi":
                return self.ipwi_correction(values)
            steps = math.inf
        elif steps != math.inf:
            steps = check_nonnegative_int(steps, "steps")
        means = self._cell_means_of(values)
        if steps == math.inf or (self.distance != "raking" and steps != 0):  # all at once
            g = calibration_residual(self.cell_base, self.margin_codes, self.level_counts,
                                     means)
        else:
            g = k_step_residual(self.cell_base, self.margin_codes, self.level_counts,
                                means, steps)
        return means - g

    def ipwi_correction(self, values: Any) -> np.ndarray:
        """The part of ``values`` that importance weighting's residual removes, per cell.

        The IPWI baseline's operator ``I - sum_j E[. | margin j]`` in place of
        ``C_k`` (THEORY section 2), as :meth:`cell_correction` gives it.

        Parameters
        ----------
        values : array of shape (n_rows,), or a list of them
            Row values, in the rows' namespace.

        Returns
        -------
        correction : ndarray of shape (n_cells,) or (n_cells, len(values))
            On the host.

        Examples
        --------
        With one margin, importance weighting removes the level means:

        >>> import numpy as np
        >>> import pandas as pd
        >>> import skbalance as skb
        >>> X = pd.DataFrame({"g": ["a", "b", "b"]})
        >>> problem = skb.MarginalBalancer().fit_problem(X)
        >>> problem.ipwi_correction(np.array([1.0, 2.0, 4.0])).tolist()
        [1.0, 3.0]
        """
        means = self._cell_means_of(values)
        return means - ipwi_residual(self.cell_base, self.margin_codes, self.level_counts,
                                     means)

    def _cell_means_of(self, values):
        """Cell means of one row array, or of several as columns (a
        :class:`~skbalance.kernels.SplitColumn` gives all its parts)."""
        if isinstance(values, list) and any(isinstance(v, SplitColumn) for v in values):
            totals = group_sums(to_numpy(self.cell_of_row), values, self.n_cells,
                                weights=to_numpy(self.base))
            cell_base = self.cell_base[:, None]
            return np.divide(totals, cell_base, out=np.zeros_like(totals),
                             where=cell_base > 0)
        if isinstance(values, list):
            return np.column_stack([self.cell_means(v) for v in values])
        return self.cell_means(values)


def _joint_levels(columns, cell_codes, encoded):
    """Per-cell code of a joint margin and the observed level tuples."""
    codes = [cell_codes[c] for c in columns]
    sizes = [encoded[c][1].shape[0] for c in columns]
    combo_of_cell, _, combo_codes = encode_cells(codes, sizes, return_cell_codes=True)
    return combo_of_cell, joint_index(columns, combo_codes, encoded)


def joint_index(columns, combo_codes, encoded):
    """The level tuples of a joint margin from per-column codes of its combinations."""
    arrays = [encoded[c][1][to_numpy(code)] for c, code in zip(columns, combo_codes)]
    return pd.MultiIndex.from_arrays(arrays)


def _match_levels(margin, observed, code_of_cell, cell_rows, cell_base, chunks=False):
    """Map observed levels onto the margin's target levels, checking both ways.

    A level without a target is an error when a row of positive base weight
    has it; rows of zero weight do not count, whatever their level.
    """
    label = margin_label(margin.key)
    position = margin.levels.get_indexer(observed)
    mass = np.bincount(code_of_cell, cell_base, minlength=observed.shape[0])
    unmatched = np.flatnonzero((position < 0) & (mass > 0))

    def rows():  # per observed level, for the messages only
        return np.bincount(code_of_cell, cell_rows, minlength=observed.shape[0])

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
            f"{label} has level {level_repr(first)} in {int(rows()[unmatched[0]])} "
            f"row(s) but no target; {unmatched.size} data level(s) have no target{hint}."
        )
    # Levels without a target occur only in cells without mass (else we
    # raised above); their weights are 0 whatever the code, so any will do.
    target_of_observed = np.maximum(position, 0)
    n_levels = margin.levels.shape[0]
    # per target level: sums over its observed levels (no second pass over cells)
    mass_per_target = np.bincount(target_of_observed, mass, minlength=n_levels)
    absent = np.flatnonzero((mass_per_target <= 0) & (margin.proportions > 0))
    if absent.size:
        j = absent[0]
        rows_per_target = np.bincount(target_of_observed, rows(), minlength=n_levels)
        data = "the chunks seen so far" if chunks else "the data"
        where = (f"no row in {data}" if rows_per_target[j] == 0 else
                 f"only rows of zero base weight ({int(rows_per_target[j])}) in {data}")
        advice = ("; the chunk is kept, and a later chunk with rows of that level completes "
                  "the fit (or give it target 0, or collapse it with another level)."
                  if chunks else "; give it target 0 or collapse it with another level.")
        raise ValueError(
            f"Level {level_repr(margin.levels[j])} of {label} has a positive target "
            f"({margin.proportions[j]:.6g} of the total) but {where}{advice}"
        )
    if np.array_equal(target_of_observed, np.arange(n_levels)):
        return code_of_cell  # the observed levels are the targets', in order
    return target_of_observed[code_of_cell]


def _uniform_margins(encoded, base):
    """targets=None: uniform over the levels with base weight, every column."""
    margins = []
    for column, (codes, levels) in encoded.items():
        observed = to_numpy(group_sum(codes, base, levels.shape[0])) > 0
        kept = levels[observed]
        margins.append(
            Margin(column, (column,), kept, np.full(kept.shape[0], 1.0 / kept.shape[0]))
        )
    return margins


def balancing_columns(targets, available, target_type="auto"):
    """The columns the targets mention, in order (every column when None)."""
    if targets is None:
        return list(available)
    margins, _ = parse_targets(targets, target_type, known_columns=list(available))
    return _columns_of(margins)


def _columns_of(margins):
    """Every column the margins span, once each, in order."""
    return list(dict.fromkeys(c for m in margins for c in m.columns))


def build_problem(rows, targets, missing, target_type="auto", chunks=False):
    """Encode the balancing columns, form the cells, map the margins.

    Parameters
    ----------
    rows : Rows
        The rows to balance (``rows.encode`` gives a column's codes in the
        rows' namespace and its levels on the host).
    targets : mapping, DataFrame or None
        The targets as the user gave them.
    missing : {"error", "level"}
        How missing values in a balancing column are treated.
    target_type : {"auto", "proportion", "count"}, default="auto"
        How the target values are read (see :func:`parse_targets`).
    chunks : bool, default=False
        Whether the rows are the chunks seen so far (``partial_fit``): a
        level they lack may come with a later chunk, and the messages say so.

    Returns
    -------
    CellProblem
        Everything of the cells' size is on the host; the row-level arrays
        stay where the rows live.
    """
    if targets is None:
        margins, total = None, None
        columns = rows.columns
    else:
        margins, total = parse_targets(targets, target_type, known_columns=rows.columns)
        columns = _columns_of(margins)
        rows.check_columns(columns)
    numeric_columns = {m.columns[0] for m in margins or [] if is_numeric(m)}
    encoded = {column: (_encode_numeric(rows, column) if column in numeric_columns
                        else rows.encode(column, missing)) for column in columns}
    if margins is None:
        margins = _uniform_margins(encoded, rows.base)
    row_codes = [encoded[c][0] for c in columns]
    sizes = [encoded[c][1].shape[0] for c in columns]
    n_combinations = distinct_row_count(row_codes, sizes)
    if n_combinations is None:
        cell_of_row, n_cells, codes_of_cells, cell_rows = encode_cells(
            row_codes, sizes, return_cell_codes=True, return_counts=True)
        cell_codes = {c: to_numpy(codes) for c, codes in zip(columns, codes_of_cells)}
        cell_rows = to_numpy(cell_rows).astype(np.int64, copy=False)
        cell_base = to_numpy(group_sum(cell_of_row, rows.base, n_cells)).astype(np.float64,
                                                                                copy=False)
    else:  # nearly every row has a combination of its own: every row is a cell
        cell_of_row = np.arange(row_codes[0].shape[0])
        cell_codes = {c: np.asarray(codes, dtype=np.int64) for c, codes in zip(columns, row_codes)}
        cell_rows = np.ones(cell_of_row.shape[0], dtype=np.int64)
        cell_base = np.array(rows.base, dtype=np.float64)

    margin_codes = []
    for margin in margins:
        if is_numeric(margin):  # the value of every cell
            column = margin.columns[0]
            margin_codes.append(encoded[column][1].to_numpy(dtype=np.float64)[
                cell_codes[column]])
            continue
        if len(margin.columns) == 1:
            column = margin.columns[0]
            code_of_cell, observed = cell_codes[column], encoded[column][1]
        else:
            code_of_cell, observed = _joint_levels(margin.columns, cell_codes, encoded)
        margin_codes.append(
            _match_levels(margin, observed, code_of_cell, cell_rows, cell_base, chunks)
        )
    return CellProblem(margins, cell_of_row, cell_rows, cell_base, margin_codes, total, rows,
                       n_combinations=n_combinations)


def _encode_numeric(rows, column):
    """Codes and values of a numeric target's column: finite numbers, no missing."""
    try:
        codes, levels = rows.encode(column, "error", hint=None)
    except ValueError as exc:
        if "inf" not in str(exc):
            raise
        raise ValueError(f"Column {column!r} has a numeric target (Total or Mean) "
                         "but contains inf; its values must be finite.") from exc
    if levels.dtype.kind not in "biuf":
        example = next((v for v in levels if not isinstance(v, (int, float, np.number))),
                       levels[0] if len(levels) else None)
        raise ValueError(
            f"Column {column!r} has a numeric target (Total or Mean) but holds "
            f"{levels.dtype} values such as {plain(example)!r}; it must hold numbers."
        )
    return codes, levels.astype(np.float64)


def match_rows(rows, margin, encoded, missing):
    """Every row's level of one margin, as a position in its target levels.

    ``encoded`` maps a column to ``rows.encode(column)`` (filled on demand,
    so that columns shared by several margins are read once). Returns the
    row codes of the observed levels and, per observed level, its position
    among the targets; a level in some row without a target raises.
    """
    for column in margin.columns:
        if column not in encoded:
            encoded[column] = rows.encode(column, missing)
    if len(margin.columns) == 1:
        codes, observed = encoded[margin.columns[0]]
    else:
        codes, _, combo_codes = encode_cells(
            [encoded[c][0] for c in margin.columns],
            [encoded[c][1].shape[0] for c in margin.columns],
            return_cell_codes=True,
        )
        observed = joint_index(margin.columns, combo_codes, encoded)
    position = margin.levels.get_indexer(observed)
    counts = to_numpy(group_sum(codes, None, observed.shape[0]))
    unseen = np.flatnonzero((position < 0) & (counts > 0))
    if unseen.size:
        raise ValueError(
            f"{margin_label(margin.key)} has level {level_repr(observed[unseen[0]])} "
            f"in {int(counts[unseen[0]])} row(s), which has no target and no factor "
            "from fit."
        )
    return codes, position


def reachability(base_mass, codes, targets, bounds, room=1e-4, zero=1e-7):
    """Whether the targets are reachable, and which observed cells must vanish.

    ``codes`` and ``targets`` as in ``kernels.calibrate_cells``: a margin's
    level codes and proportions, or a numeric column's values and target mean.
    One linear program over the masses ``x`` of the observed cells (within the
    bounds, if any) that meet every margin: maximise ``sum z`` with
    ``0 <= z_c <= min(x_c, room)``. It is feasible exactly when the targets
    are reachable (``z = 0`` always fits). A cell that some solution keeps
    positive gets ``z_c > 0`` (solutions mix); a cell at ``z_c <= zero`` is at
    weight 0 in every solution (or nearly), and raking then converges only
    like 1/k.

    Returns
    -------
    reachable : bool or None
        None when the table is too large to decide quickly.
    vanish : ndarray of int or None
        Indices of the cells that must vanish (empty when none); None when
        not reachable or not decided.
    """
    observed = np.flatnonzero(base_mass > 0)  # cells without rows take no mass
    n = observed.shape[0]
    if n > MAX_CELLS_FOR_DIAGNOSIS:
        return None, None
    from scipy import sparse
    from scipy.optimize import linprog

    # one row per level of every margin, per numeric constraint, and the total
    blocks, wanted = [sparse.csr_array(np.ones((1, n)))], [np.ones(1)]
    for code, target in zip(codes, targets):
        if np.ndim(target) == 0:
            blocks.append(sparse.csr_array(code[observed][None, :]))
            wanted.append(np.array([float(target)]))
        else:
            blocks.append(sparse.csr_array((np.ones(n), (code[observed], np.arange(n))),
                                           shape=(target.shape[0], n)))
            wanted.append(target)
    margins = sparse.vstack(blocks, format="csr")
    A_eq = sparse.hstack([margins, sparse.csr_array((margins.shape[0], n))])
    A_ub = sparse.hstack([-sparse.eye_array(n), sparse.eye_array(n)])  # z - x <= 0
    mass = base_mass[observed]
    box = ([(0, None)] * n if bounds is None else
           list(zip(bounds[0] * mass, bounds[1] * mass)))
    result = linprog(np.r_[np.zeros(n), -np.ones(n)], A_ub=A_ub, b_ub=np.zeros(n),
                     A_eq=A_eq, b_eq=np.concatenate(wanted),
                     bounds=box + [(0, room)] * n, method="highs")
    if result.status != 0:
        return False, None
    return True, observed[result.x[n:] <= zero]


def row_factors(rows, margins, factors, missing, bounds=None):
    """Every row's balancing factor: the product of its levels' factors.

    Parameters
    ----------
    rows : Rows
    margins : list of Margin
    factors : dict
        Margin key to the per-level factors (an array or a Series, as ``factors_``).
    missing : {"error", "level"}
    bounds : tuple or None
        Limits the product is clipped to.

    Returns
    -------
    array of shape (n_rows,), in the rows' namespace.
    """
    encoded, product = {}, None
    for margin in margins:
        codes, position = match_rows(rows, margin, encoded, missing)
        level_factors = np.asarray(factors[margin.key])
        factor = rows.gather(level_factors[position], codes)
        product = factor if product is None else product * factor
    if bounds is not None:
        low, high = bounds
        if isinstance(product, np.ndarray):
            return np.clip(product, low, high)
        return rows.xp.clip(product, low, high)
    return product
