"""MarginalBalancer: raking and calibration weights to known margins and totals.

One fit path: the rows are read once (``_rows.read_rows``), reduced to a
:class:`CellProblem` (``_problem``; for dask frames and chunks, from a cell
table, ``_streaming``), balanced by the one solver entry (``_solve.solve``),
and the estimator sets its fitted attributes from the one result here.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Hidden, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._covariate_balance import balance_table
from ._problem import balancing_columns, build_problem
from ._report import diagnostics_frame
from ._rows import as_column, is_dask, kish_effective_size, read_rows
from ._solve import FitSettings, confirm_convergence, new_row_factors, solve
from ._streaming import (
    add_chunk,
    cell_table,
    cell_table_rows,
    cells_effective_size,
    dask_weights,
    positional_weights,
)
from ._targets import Mean, is_numeric, targets_from_frame
from ._typing import Distance, Table, Vector
from .kernels import group_sum
from .utils._array_api import check_same_namespace
from .utils._warnings import warn

if TYPE_CHECKING:
    from typing_extensions import Self

    from ._problem import CellProblem

__all__ = ["MarginalBalancer", "compute_balancing_weights", "post_stratification"]


class MarginalBalancer(TransformerMixin, BaseEstimator):
    """Raking and calibration weights that reproduce known margins and totals.

    Rescales base weights one margin at a time (raking, iterative
    proportional fitting) until the weighted distribution of every balancing
    column matches its target; numeric columns may be calibrated to a total
    or a mean, and ``distance`` chooses the distance (THEORY section 7). Rows
    with the same levels (and values) share one factor, so the iterations run
    on the table of distinct cells (on the rows themselves when nearly every
    row has a combination of its own).

    Parameters
    ----------
    targets : dict, pandas.DataFrame or None, default=None
        ``{column: {level: value}}``. Values are proportions (the weights then
        sum to the base weights' sum) or population counts (all margins with one
        total, which the weights then sum to). A margin may be a pandas Series indexed
        by level. A key may be a tuple of columns, a joint margin whose levels
        are tuples (or a Series with a MultiIndex). A DataFrame is read as a
        long table with columns ``column``, ``level`` and ``value``. ``None``
        balances every column of ``X`` to uniform over its observed levels.
        A numeric column may take ``skb.Total(value)`` (count targets give the
        population size) or ``skb.Mean(value)``. Margins are visited in the
        order given. With array input, columns are keyed by position.
    max_iter : int, default=1000
        Largest number of single-margin steps (the paper's ``k``; a sweep
        over ``M`` margins is ``M`` steps).
    tol : float, default=1e-8
        Stop after the first step whose largest absolute marginal error, in
        proportions, is at most ``tol``. ``tol=0`` runs exactly ``max_iter``
        steps: the k-step balanced estimator. A numeric target's error is
        its weighted mean's, in units of the column's median absolute deviation
        (robust: a few extreme values cannot make a large miss look small).
        With "linear" and "logit", ``max_iter`` and ``tol`` bound the Newton
        iterations (``tol=0``: until the errors stop shrinking).
    bounds : tuple of (float, float) or None, default=None
        ``(low, high)`` limits on each weight divided by its base weight
        rescaled to the target total, with ``0 <= low <= 1 <= high``.
        Enforced inside the fit (bounded raking: the closest weights in the
        raking distance that meet the margins within the bounds).
    bounds_relative_to : {"rescaled", "base"}, default="rescaled"
        What ``bounds`` limit each weight against: its base weight rescaled
        to the target total (the default, so that ``(0.5, 2)`` means the same
        whatever the base weights sum to), or the base weight itself (R
        survey's ``calibrate(bounds=)``: with count targets, R's bounds are
        ours times ``sum(base) / total``; in replicates, each replicate's own
        base weights, as R).
    missing : {"error", "level"}, default="error"
        Missing values in a balancing column raise an error, or form a level
        of their own, whose target is keyed by ``None``.
    target_type : {"auto", "proportion", "count"}, default="auto"
        How target values are read. Proportions off from 1 by up to 1% (rounded
        percentages) are normalised with a warning; more is an error. "auto":
        proportions when every margin sums to 1 within 1%, else counts.
    distance : {"raking", "linear", "logit"}, default="raking"
        The distance between the weights and the base weights that the fit
        minimises (R survey's ``calfun``). "raking": one exact projection per
        step (the exponential tilt for a numeric target). "linear" (GREG,
        chi-square distance) and "logit" (weight ratios strictly inside
        ``bounds``, which it needs) meet every constraint at once by Newton's
        method; linear weights may be negative (a warning says so).
    solver : {"auto", "steps"}, default="auto"
        How raking reaches ``tol > 0`` without bounds. "auto": single-margin
        steps until the error is below 1e-3, then Newton steps on all margins
        at once (the same limit in far fewer passes when margins are many;
        Newton steps that do not reach ``tol`` are discarded and plain steps
        go on). "steps": only single-margin steps, so that the weights are
        exactly the k-step estimator with ``k = n_iter_``. ``tol=0`` always
        takes exactly ``max_iter`` single-margin steps.
    method : {"raking", "linear", "logit"}
        Deprecated since 0.2, removed in 0.3: the old name of ``distance``.

    Attributes
    ----------
    weights_ : ndarray of shape (n_samples,)
        Balancing weights of the training rows.
    factors_ : dict
        For every margin, a Series of per-level factors: a row's weight is
        its base weight times ``weight_scale_`` times the product of its
        levels' factors (truncated to ``bounds``). Raking only; with numeric
        targets the factor also has the parts in ``coef_`` and ``intercept_``.
    coef_, intercept_ : dict, float
        Per margin a Series of level coefficients, per numeric column a
        slope: a row's weight over ``base * weight_scale_`` is ``F(intercept_ +
        its levels' coefficients + slope * value)``, ``F`` being ``exp``,
        ``1 + u`` or the logit (truncated to ``bounds``).
    weight_scale_ : float
        Target total over the sum of the training base weights.
    n_iter_ : int
        Steps taken: single-margin steps, then (``tol > 0``, no bounds, once
        the error is below 1e-3) Newton steps on all margins at once, each
        about one sweep's work; for linear and logit, Newton iterations.
    n_newton_iter_ : int
        How many of ``n_iter_`` were Newton steps (0: plain raking steps).
    converged_ : bool
        Whether the largest marginal error reached ``tol`` (with ``tol=0``:
        is at most 1e-10 after ``max_iter`` steps).
    marginal_error_ : ndarray of shape (n_iter\\_ + 1, n_margins)
        Largest absolute error of every margin, in proportions, before the
        first step (row 0) and after every step. The first and last rows are
        measured in full; in between, each margin at least once per sweep and
        the others when the stop rule needs them (NaN where not measured).
    targets_reachable_ : bool or None
        Set when the fit did not converge: whether any weighting of the
        observed cells (within the bounds) meets every margin; None when it
        was not decided (converged, or too many cells).
    margins_ : list
        Margin keys, in the order they are visited.
    categories_ : dict
        For every margin key, the pandas Index of its target levels.
    total_ : float
        Sum of the weights: the population total for count targets, else
        the sum of the base weights.
    n_cells_ : int
        Number of distinct observed cells.
    effective_sample_size_ : float
        Kish's effective sample size of the weights, ``(sum w)^2 / sum w^2``.
    design_effect_ : float
        Kish's, of weighting alone: ``n / effective_sample_size_`` (not an estimate's).
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
    Estimators built on a balancer use its public contract: :meth:`fit_problem`
    returns the :class:`~skbalance.CellProblem` behind ``weights_`` and
    ``n_iter_``. ``X`` may also be a 2-D array from any Array API library
    (CuPy, torch, ...) when scikit-learn's ``array_api_dispatch`` is on: the
    weights then stay on the input's device. A dask DataFrame is reduced to
    the cell table by one distributed group-by; ``weights_`` is then a lazy
    dask Series. :meth:`partial_fit` accumulates the cell table over chunks.

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
        "bounds_relative_to": [StrOptions({"rescaled", "base"})],
        "missing": [StrOptions({"error", "level"})],
        "target_type": [StrOptions({"auto", "proportion", "count"})],
        "distance": [StrOptions({"raking", "linear", "logit"})],
        "solver": [StrOptions({"auto", "steps"})],
        "method": [StrOptions({"raking", "linear", "logit"}),
                   Hidden(StrOptions({"deprecated"}))],
    }

    def __init__(self, *, targets: Mapping | pd.DataFrame | None = None, max_iter: int = 1000,
                 tol: float = 1e-8, bounds: tuple[float, float] | None = None,
                 bounds_relative_to: Literal["rescaled", "base"] = "rescaled",
                 missing: Literal["error", "level"] = "error",
                 target_type: Literal["auto", "proportion", "count"] = "auto",
                 distance: Distance = "raking", solver: Literal["auto", "steps"] = "auto",
                 method: str = "deprecated") -> None:
        self.targets = targets
        self.max_iter = max_iter
        self.tol = tol
        self.bounds = bounds
        self.bounds_relative_to = bounds_relative_to
        self.missing = missing
        self.target_type = target_type
        self.distance = distance
        self.solver = solver
        self.method = method

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        tags.input_tags.allow_nan = self.missing == "level"
        tags.target_tags.required = False
        tags.array_api_support = True
        return tags

    def fit(self, X: Table, y: None = None, sample_weight: Vector | None = None) -> Self:
        """Compute raking weights for the rows of ``X``.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            The balancing columns (others are ignored).
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), default=None
            Nonnegative base (design) weights; 1 for every row when None. A
            row of weight 0 gets weight 0 and does not influence the fit.

        Returns
        -------
        self : MarginalBalancer
            The fitted balancer.

        Examples
        --------
        >>> import pandas as pd
        >>> import skbalance as skb
        >>> bal = skb.MarginalBalancer(targets={"g": {"a": 0.5, "b": 0.5}})
        >>> bal.fit(pd.DataFrame({"g": ["a", "b", "b", "b"]})).n_iter_
        1
        """
        self.fit_problem(X, sample_weight=sample_weight)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_problem(self, X: Table, sample_weight: Vector | None = None) -> CellProblem:
        """Fit, and return the cell problem behind the weights.

        The contract for estimators built on a balancer: the :class:`~skbalance.CellProblem`
        holds the cells, base weights and levels, and the k-step residual operator.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            The balancing columns.
        sample_weight : array-like of shape (n_samples,), default=None
            Nonnegative base weights.

        Returns
        -------
        problem : CellProblem
            The fitted cell problem (the fitted attributes are set as by
            :meth:`fit`).

        Examples
        --------
        >>> import pandas as pd
        >>> import skbalance as skb
        >>> bal = skb.MarginalBalancer(targets={"g": {"a": 0.5, "b": 0.5}})
        >>> bal.fit_problem(pd.DataFrame({"g": ["a", "b", "b", "b"]})).cell_rows.tolist()
        [1, 3]
        """
        for stale in ("_accumulated_cells", "_partial_columns"):  # fit starts afresh
            self.__dict__.pop(stale, None)
        rows = read_rows(X, sample_weight)
        validate_data(self, rows.fit_table, skip_check_array=True, reset=True)
        self._namespace = rows.namespace_name
        if rows.lazy:  # one distributed group-by to the cell table; lazy weights
            columns = balancing_columns(self.targets, rows.columns, self.target_type)
            rows.check_columns(columns)
            if sample_weight is not None:  # matched to the rows once, for both uses
                sample_weight = positional_weights(rows.table, sample_weight)
            cells = cell_table(rows.table, columns, sample_weight).compute()
            problem = self._fit_cells(cells, columns)
            self.weights_ = self._lazy_weights(rows.table, sample_weight)
            return problem
        problem = build_problem(rows, self.targets, self.missing, self.target_type)
        fit = self._balance(problem)
        self.weights_ = self._scaled(rows.base, rows.gather(fit.cell_factors,
                                                            problem.cell_of_row))
        self.converged_ = confirm_convergence(self.weights_, problem, fit)
        self.effective_sample_size_ = kish_effective_size(self.weights_)
        self.design_effect_ = rows.n_counted / self.effective_sample_size_
        if rows.on_device:  # every fitted array follows the data
            self.marginal_error_ = rows.to_rows(self.marginal_error_)
        return problem

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X: Table, y: None = None,
                    sample_weight: Vector | None = None) -> Self:
        """Add a chunk of rows to the cell table and refit the factors.

        For data that arrive in chunks: the rows are reduced to the cell
        table (rows, base weight per observed cell) and added to what earlier
        chunks gave; the factors are refitted on the accumulated table (the
        iterations cost nothing per row). The result equals ``fit`` on all
        the rows at once; use :meth:`compute_weights` for the weights of any
        rows. :meth:`fit` discards the chunks accumulated so far.

        Parameters
        ----------
        X : DataFrame (pandas, polars or dask) or array-like of shape (n_samples, n_features)
            A chunk of rows with the balancing columns.
        y : None
            Ignored.
        sample_weight : array-like or dask Series of shape (n_samples,), default=None
            Nonnegative base weights of the chunk.

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
        rows = read_rows(X)
        validate_data(self, rows.fit_table, skip_check_array=True, reset=first)
        if first:
            self._partial_columns = balancing_columns(self.targets, rows.columns,
                                                      self.target_type)
            self._namespace = None  # the cell table lives on the host
        self._accumulated_cells = add_chunk(getattr(self, "_accumulated_cells", None), rows,
                                            self._partial_columns, sample_weight)
        self._fit_cells(self._accumulated_cells, self._partial_columns, chunks=True)
        return self

    def _fit_cells(self, cells, columns, chunks=False):
        """Fit from a cell table (``_streaming.cell_table``): dask, and chunks."""
        problem = build_problem(cell_table_rows(cells, columns, self.missing),
                                self.targets, self.missing, self.target_type, chunks=chunks)
        problem.cell_rows = group_sum(problem.cell_of_row,
                                      cells["rows"].to_numpy(dtype=np.float64),
                                      problem.n_cells).astype(np.int64)
        fit = self._balance(problem)
        cell_weights = self._scaled(problem.base, fit.cell_factors[problem.cell_of_row])
        self.converged_ = confirm_convergence(cell_weights, problem, fit)
        self.effective_sample_size_ = cells_effective_size(
            cells, problem, fit.cell_factors)  # Kish's size ignores a common scale
        self.design_effect_ = float(cells["positive"].sum()) / self.effective_sample_size_
        return problem

    def _balance(self, problem):
        """Balance the cell problem and set every fitted attribute of the cells."""
        distance = self.distance
        if self.method != "deprecated":
            warn("MarginalBalancer's parameter method was renamed distance in 0.2 and will "
                 "be removed in 0.3: pass distance=... instead.", FutureWarning)
            distance = self.method
        settings = FitSettings(distance=distance, max_iter=self.max_iter, tol=self.tol,
                               bounds=self.bounds, accelerate=self.solver == "auto",
                               bounds_relative_to=self.bounds_relative_to)
        fit = solve(problem, settings)
        self._fit = fit
        self.total_ = fit.total
        self.weight_scale_ = fit.total / fit.base_total
        self.margins_ = [m.key for m in fit.margins]
        self.categories_ = {m.key: m.levels for m in fit.margins if not is_numeric(m)}
        self.coef_, self.intercept_, self.factors_ = fit.coefficients()
        self.n_iter_ = fit.n_iter
        self.n_newton_iter_ = fit.n_newton_iter
        self.converged_ = fit.converged
        self.marginal_error_ = fit.errors
        self.n_cells_ = problem.n_observed
        self.targets_reachable_ = fit.reachable
        return fit

    def compute_weights(self, X: Table, sample_weight: Vector | None = None) -> Any:
        """Compute the weights of new rows with the factors learned in fit.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Rows with the balancing columns (in a DataFrame found by name).
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
        """compute_weights (columns by name in a DataFrame), transform (strict check)."""
        check_is_fitted(self, "factors_")
        if is_dask(X):
            return self._lazy_weights(X, sample_weight)
        rows = read_rows(X, sample_weight)
        if method == "transform" or not rows.named:  # else by name
            validate_data(self, rows.fit_table, skip_check_array=True, reset=False)
        check_same_namespace(X, self._namespace, f"{type(self).__name__}.{method}")
        return self._scaled(rows.base, new_row_factors(rows, self._fit, self.missing))

    def _lazy_weights(self, X, sample_weight, weight_column=None):
        """A lazy dask Series of the weights of a dask frame's rows."""
        fitted = copy.copy(self)  # what the workers need, without lazy weights or chunks
        for name in ("weights_", "_accumulated_cells"):
            fitted.__dict__.pop(name, None)
        return dask_weights(X, sample_weight, fitted.compute_weights, weight_column)

    def _scaled(self, base, factor):
        """``base * weight_scale_ * factor`` with no intermediate beyond a weight."""
        return base / self._fit.base_total * factor * self.total_

    def transform(self, X: Table, sample_weight: Vector | None = None) -> Any:
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
        return as_column(self._weights(X, sample_weight, "transform"))

    def fit_transform(self, X: Table, y: Vector | None = None,
                      sample_weight: Vector | None = None) -> Any:
        """Fit, then return the training weights ``weights_`` as one column.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            The balancing columns.
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), default=None
            Nonnegative base weights.

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
        if y is not None:  # a Pipeline passes y: its next step would see only the weights
            warn(
                f"{type(self).__name__}.fit_transform was given y, as a Pipeline does: the "
                "next step then receives the weight column as its only feature, not your "
                "features with weights. To fit a model with balancing weights, use "
                "skb.BalancedEstimator(balancer, model); to get the weights, fit the "
                "balancer and read weights_.", UserWarning)
        return as_column(self.fit(X, sample_weight=sample_weight).weights_)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
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
        >>> skb.MarginalBalancer().fit([[0], [1]]).get_feature_names_out().tolist()
        ['weight']
        """
        check_is_fitted(self, "factors_")
        return np.asarray(["weight"], dtype=object)

    @property
    def diagnostics_(self) -> pd.DataFrame:
        """Per margin and level: rows, shares before and after, target, residual.

        A DataFrame with columns ``margin``, ``level``, ``n_rows``,
        ``sample_share`` (share of rows), ``base_share`` (share of the base
        weights), ``weighted_share`` (share of the balancing weights),
        ``target_share``, ``residual`` (weighted minus target) and ``factor``.
        A numeric target has one row, level ``"(total)"`` or ``"(mean)"``,
        whose shares are the column's means (its factor is NaN: see
        ``coef_``). Built on access from statistics kept at fit.
        """
        check_is_fitted(self, "factors_")
        return diagnostics_frame(self._fit.margins, self._fit.level_stats, self.factors_)

    def balance_report(self, X: Table, target: Table | Mapping | None = None, *,
                       sample_weight: Vector | None = None,
                       target_weight: Vector | None = None,
                       covariates: list | None = None) -> pd.DataFrame:
        """Covariate balance of ``X`` before and after this balancer's weights.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Rows with the balancing columns (usually those of ``fit``), and
            any other covariates to judge.
        target : DataFrame, array-like, dict or None, default=None
            Population rows with the same columns (every common column is
            compared), target margins, or None: the fitted targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Base weights of ``X`` (as given to ``fit``).
        target_weight : array-like, default=None
            Weights of the target rows.
        covariates : list, default=None
            The columns to compare.

        Returns
        -------
        report : pandas.DataFrame
            See :func:`skbalance.covariate_balance`; the balancing columns
            are read as categorical.

        Examples
        --------
        >>> import pandas as pd
        >>> import skbalance as skb
        >>> X = pd.DataFrame({"g": ["a", "b", "b", "b"]})
        >>> bal = skb.MarginalBalancer(targets={"g": {"a": 0.5, "b": 0.5}}).fit(X)
        >>> report = bal.balance_report(X)
        >>> report.loc[("g", "(all)"), ["asmd_before", "asmd_after"]].round(4).tolist()
        [0.5, 0.0]
        """
        weights = self.compute_weights(X, sample_weight=sample_weight)
        margins = self._fit.margins
        categorical = [c for m in margins if not is_numeric(m) for c in m.columns]
        return balance_table(X, weights, margins if target is None else target,
                             sample_weight=sample_weight, target_weight=target_weight,
                             covariates=covariates, categorical=categorical)


def fit_from_groups(balancer, X, groups, columns, sample_weight, weight_column=None):
    """Fit ``balancer`` on a dask frame from its table of groups.

    ``groups`` is :func:`~skbalance._streaming.cell_table` of ``X`` on keys
    that refine the cells (``columns`` and others): the cells are sums of
    groups, so the fit equals ``balancer.fit(X, sample_weight=sample_weight)``;
    its ``weights_`` are the rows', lazily (base weights: ``sample_weight``
    by position, or the column ``weight_column`` of ``X``). Returns the cell
    problem whose rows are the groups (the estimates of
    :class:`~skbalance.BalancedFunctionalEstimator` on a dask frame run on
    them).
    """
    for stale in ("_accumulated_cells", "_partial_columns"):
        balancer.__dict__.pop(stale, None)
    rows = read_rows(X)
    validate_data(balancer, rows.fit_table, skip_check_array=True, reset=True)
    balancer._namespace = rows.namespace_name
    problem = balancer._fit_cells(groups, columns)
    balancer.weights_ = balancer._lazy_weights(
        X[columns + ([] if weight_column is None else [weight_column])], sample_weight,
        weight_column)
    return problem


def compute_balancing_weights(
    X: Table, targets: Mapping | pd.DataFrame | None = None, *,
    sample_weight: Vector | None = None, max_iter: int = 1000, tol: float = 1e-8,
    bounds: tuple[float, float] | None = None, missing: Literal["error", "level"] = "error",
    target_type: Literal["auto", "proportion", "count"] = "auto",
    distance: Distance = "raking", solver: Literal["auto", "steps"] = "auto",
    method: str = "deprecated",
) -> Any:
    """Raking weights of the rows of ``X``: the function form of MarginalBalancer.

    Parameters
    ----------
    X : DataFrame or array-like of shape (n_samples, n_features)
        The balancing columns.
    targets : dict, pandas.DataFrame or None, default=None
        Target margins; see :class:`MarginalBalancer`.
    sample_weight : array-like of shape (n_samples,), default=None
        Nonnegative base weights.
    max_iter, tol : int, float, default=1000, 1e-8
        Largest number of steps and marginal tolerance, as in MarginalBalancer.
    bounds, missing, target_type, distance, solver : default=None, "error", "auto", \
"raking", "auto"
        Weight-ratio limits, missing-value rule, target reading, distance and
        raking solver, as in MarginalBalancer.
    method : {"raking", "linear", "logit"}
        Deprecated since 0.2, removed in 0.3: the old name of ``distance``.

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
    balancer = MarginalBalancer(targets=targets, max_iter=max_iter, tol=tol, bounds=bounds,
                                missing=missing, target_type=target_type, distance=distance,
                                solver=solver, method=method)
    return balancer.fit(X, sample_weight=sample_weight).weights_


def post_stratification(population: Any, columns: Any, *, weights: Any = None,
                        **params: Any) -> MarginalBalancer:
    """A balancer that post-stratifies on the cells of some columns (R's ``postStratify``).

    One joint margin of ``columns``, its counts read off a population frame
    (or a weighted reference sample) by :func:`targets_from_frame`: every cell's
    weights are scaled to the cell's population count.

    Parameters
    ----------
    population : DataFrame (pandas or polars)
        The population frame, or a weighted reference sample.
    columns : label or list of labels
        The post-strata: every combination of their levels is a cell.
    weights : label, array-like or None, default=None
        The frame's weights; None: every row counts 1.
    **params
        Other parameters of :class:`MarginalBalancer` (``tol``, ``bounds``, ...).

    Returns
    -------
    MarginalBalancer
        Unfitted, with ``targets={tuple(columns): counts}``.

    Examples
    --------
    >>> import skbalance as skb
    >>> population = skb.datasets.load_api("pop")
    >>> sample = skb.datasets.load_api("strat")
    >>> balancer = skb.post_stratification(population, ["stype", "sch.wide"])
    >>> round(float(balancer.fit(sample, sample_weight=sample["pw"]).weights_.sum()))
    6194
    """
    names = [columns] if isinstance(columns, (str, Integral)) else list(columns)
    return MarginalBalancer(targets=targets_from_frame(population, [tuple(names)], weights),
                            **params)


def entropy_balancing_weights(X: Any, treatment: Any, *, columns: Any = None,
                              sample_weight: Any = None, tol: float = 1e-10,
                              max_iter: int = 1000) -> np.ndarray:
    """Entropy balancing's ATT weights (Hainmueller 2012): raking controls to the treated means.

    The control rows' weights are their base weights times
    ``exp(x' lambda)``, the closest to the base weights in entropy whose
    weighted means of the covariates equal the treated rows' (weighted) means
    and whose total equals the treated rows' total: exactly raking the
    controls to ``Mean`` targets (the "raking" calibration distance). The
    treated rows keep their base weights. Dividing by the treated total gives
    the ``ebal`` package's weights.

    Parameters
    ----------
    X : DataFrame or array-like of shape (n_samples, n_features)
        The covariates to balance (numeric).
    treatment : array-like of shape (n_samples,)
        True (or 1) for the treated rows, False (0) for the controls.
    columns : list or None, default=None
        The covariates; None: every column of ``X``.
    sample_weight : array-like of shape (n_samples,), default=None
        Base weights (of both groups).
    tol : float, default=1e-10
        Largest accepted difference between a weighted control mean and the
        treated mean.
    max_iter : int, default=1000
        Most raking steps (Newton finishes the fit).

    Returns
    -------
    ndarray of shape (n_samples,)
        The treated rows' base weights and the controls' balanced weights.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> import skbalance as skb
    >>> X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0, 4.0, 1.0]})
    >>> treated = np.array([False, False, False, False, True, True])
    >>> w = skb.entropy_balancing_weights(X, treated)
    >>> round(float(np.average(X.x[~treated], weights=w[~treated])), 6), float(w[~treated].sum())
    (2.5, 2.0)
    """
    rows = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X, dtype=np.float64))
    treated = np.asarray(treatment)
    if treated.shape != (rows.shape[0],) or not np.all(np.isin(treated, (0, 1))):
        raise ValueError(f"treatment must hold True/False (or 1/0) for each of the "
                         f"{rows.shape[0]} rows.")
    treated = treated.astype(bool)
    if treated.all() or not treated.any():
        raise ValueError("treatment needs both treated and control rows.")
    names = list(rows.columns) if columns is None else list(columns)
    base = np.ones(rows.shape[0]) if sample_weight is None else np.asarray(
        sample_weight, dtype=np.float64).reshape(-1)
    covariates = rows[names]
    treated_means = {c: Mean(float(np.average(np.asarray(covariates[c], dtype=np.float64)[
        treated], weights=base[treated]))) for c in names}
    balancer = MarginalBalancer(targets=treated_means, tol=tol, max_iter=max_iter)
    controls = balancer.fit(covariates[~treated], sample_weight=base[~treated]).weights_
    if not balancer.converged_:
        raise ValueError("Entropy balancing found no control weights with the treated "
                         "means (they lie outside the controls' range, or the covariates "
                         "are collinear).")
    weights = base.copy()
    weights[~treated] = np.asarray(controls) * (base[treated].sum() / np.sum(controls))
    return weights


def cbps_balancer(reference: Any, columns: Any, *, weights: Any = None,
                  **params: Any) -> MarginalBalancer:
    """A balancer with the weights of just-identified CBPS against a reference sample.

    The covariate balancing propensity score (Imai and Ratkovic 2014) in its
    just-identified ("exact") form fits a logistic model of being in the
    reference rather than the sample so that the sample, weighted by the
    odds ``exp(x' beta)``, has the reference's totals of the model's columns
    (an intercept and the covariates, categorical ones as indicators). Those
    weights are exactly raking (exponential tilting) to the reference's level
    counts and means, which this balancer does: balance's ``cbps(...,
    cbps_method="exact")`` solves the same equations with a numerical
    minimizer of their squared imbalance. The over-identified CBPS (balance's
    default) is not offered.

    Parameters
    ----------
    reference : DataFrame
        The reference rows (a population frame or a weighted sample).
    columns : list of labels
        The covariates: numeric columns get their (weighted) mean as a
        target, other columns the (weighted) count of every level.
    weights : label, array-like of shape (n_reference,) or None, default=None
        The reference's weights; None: every row counts 1.
    **params
        Other parameters of :class:`MarginalBalancer` (``tol``, ``max_iter``, ...).

    Returns
    -------
    MarginalBalancer
        Unfitted. With a categorical covariate its weights sum to the
        reference's total; with numeric covariates alone they keep the base
        weights' total.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> import skbalance as skb
    >>> reference = pd.DataFrame({"g": ["a", "b", "b", "b"], "x": [1.0, 2.0, 3.0, 4.0]})
    >>> sample = pd.DataFrame({"g": ["a", "a", "b", "b"], "x": [1.0, 2.0, 2.0, 5.0]})
    >>> w = skb.cbps_balancer(reference, ["g", "x"], tol=1e-12).fit(sample).weights_
    >>> round(float(w.sum()), 6), round(float(np.average(sample.x, weights=w)), 6)
    (4.0, 2.5)
    """
    frame = reference if isinstance(reference, pd.DataFrame) else pd.DataFrame(reference)
    names = [columns] if isinstance(columns, (str, Integral)) else list(columns)
    frame_weights = (np.ones(frame.shape[0]) if weights is None else
                     frame[weights].to_numpy(dtype=np.float64) if isinstance(weights, str)
                     else np.asarray(weights, dtype=np.float64))
    numeric = [c for c in names if frame[c].dtype.kind in "iuf"]
    targets = targets_from_frame(frame, [c for c in names if c not in numeric], weights)
    for column in numeric:
        values = frame[column].to_numpy(dtype=np.float64)
        if np.isnan(values).any():
            raise ValueError(f"The reference has {int(np.isnan(values).sum())} missing "
                             f"value(s) in {column!r}: fill them or drop those rows.")
        targets[column] = Mean(float(np.average(values, weights=frame_weights)))
    return MarginalBalancer(targets=targets, **params)
