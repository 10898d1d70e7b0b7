"""MarginalBalancer: raking and calibration weights to known margins and totals.

Thin: rows are read by ``_rows``, the cell problem is built by ``_problem``,
the steps run in ``kernels.rake_cells`` (categorical raking) or
``kernels.calibrate_cells`` (numeric targets, linear and logit; via
``_calibration``), ``_report`` words the outcome, and ``_streaming`` handles
dask frames and chunks.
"""

from collections.abc import Mapping
from numbers import Integral, Real

import pandas as pd
import numpy as np
from sklearn.base import BaseEstimator, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._covariate_balance import CovariateBalanceMixin
from ._calibration import calibrated_row_factors, calibration_fit, is_calibration
from ._problem import build_problem, row_factors
from ._report import DiagnosticsMixin, WeightColumnMixin, confirm_convergence, raking_fit
from ._rows import is_dask, kish_effective_size, read_rows
from ._streaming import CellTableMixin, dask_weights
from .utils._array_api import check_same_namespace
from .utils._validation import check_bounds

__all__ = ["MarginalBalancer", "compute_balancing_weights"]


class MarginalBalancer(CellTableMixin, DiagnosticsMixin, CovariateBalanceMixin, WeightColumnMixin,
                       BaseEstimator):
    """Raking and calibration weights that reproduce known margins and totals.

    Rescales base weights one margin at a time (raking, iterative
    proportional fitting) until the weighted distribution of every balancing
    column matches its target; numeric columns may be calibrated to a total
    or a mean, and ``method`` chooses the distance (THEORY section 7). Rows
    with the same levels (and values) share one factor, so the iterations run
    on the table of distinct cells.

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
        its weighted mean's, in units of the column's mean absolute deviation.
        With "linear" and "logit", ``max_iter`` and ``tol`` bound the Newton
        iterations (``tol=0``: until the errors stop shrinking).
    bounds : tuple of (float, float) or None, default=None
        ``(low, high)`` limits on each weight divided by its base weight
        rescaled to the target total, with ``0 <= low <= 1 <= high``.
        Enforced inside the fit (bounded raking: the closest weights in the
        raking distance that meet the margins within the bounds).
    missing : {"error", "level"}, default="error"
        Missing values in a balancing column raise an error, or form a level
        of their own, whose target is keyed by ``None``.
    target_type : {"auto", "proportion", "count"}, default="auto"
        How target values are read. Proportions off from 1 by up to 1% (rounded
        percentages) are normalised with a warning; more is an error. "auto":
        proportions when every margin sums to 1 within 1%, else counts.
    method : {"raking", "linear", "logit"}, default="raking"
        The distance. "raking": one exact projection per step (the
        exponential tilt for a numeric target). "linear" (GREG, chi-square
        distance) and "logit" (weight ratios strictly inside ``bounds``,
        which it needs) meet every constraint at once by Newton's method;
        linear weights may be negative (a warning says so).
    solver : {"auto", "steps"}, default="auto"
        How raking reaches ``tol > 0`` without bounds. "auto": single-margin
        steps until the error is below 1e-3, then Newton steps on all margins
        at once (the same limit in far fewer passes when margins are many;
        Newton steps that do not reach ``tol`` are discarded and plain steps
        go on). "steps": only single-margin steps, so that the weights are
        exactly the k-step estimator with ``k = n_iter_``. ``tol=0`` always
        takes exactly ``max_iter`` single-margin steps.

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
    returns the :class:`~skbalance.CellProblem` behind ``weights_`` and ``n_iter_``. ``X`` may also be a 2-D array from any
    Array API library (CuPy, torch, ...) when scikit-learn's
    ``array_api_dispatch`` is on: the weights then stay on the input's device. A dask DataFrame is reduced to the cell
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
        "target_type": [StrOptions({"auto", "proportion", "count"})],
        "method": [StrOptions({"raking", "linear", "logit"})],
        "solver": [StrOptions({"auto", "steps"})],
    }

    def __init__(self, *, targets=None, max_iter=1000, tol=1e-8, bounds=None, missing="error",
                 target_type="auto", method="raking", solver="auto"):
        self.targets = targets
        self.max_iter = max_iter
        self.tol = tol
        self.bounds = bounds
        self.missing = missing
        self.target_type = target_type
        self.method = method
        self.solver = solver

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        tags.input_tags.allow_nan = self.missing == "level"
        tags.target_tags.required = False
        tags.array_api_support = True
        return tags

    def fit(self, X, y=None, sample_weight=None):
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
    def fit_problem(self, X, sample_weight=None):
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
        self._forget_chunks()  # fit starts afresh after partial_fit
        rows = read_rows(X, sample_weight)
        validate_data(self, rows.fit_table, skip_check_array=True, reset=True)
        if rows.lazy:
            return self._fit_dask(rows, sample_weight)
        problem = build_problem(rows, self.targets, self.missing, self.target_type)
        result = self._rake(problem)
        self.weights_ = self._scaled(rows.base, rows.gather(result.cell_factors,
                                                            problem.cell_of_row))
        self.converged_ = confirm_convergence(self.weights_, problem, self.tol, self.converged_)
        self.effective_sample_size_ = kish_effective_size(self.weights_)
        self.design_effect_ = rows.n_counted / self.effective_sample_size_
        self._namespace = rows.namespace_name
        if rows.on_device:  # every fitted array follows the data
            self.marginal_error_ = rows.to_rows(self.marginal_error_)
        return problem

    def _rake(self, problem):
        """Rake (or calibrate) the cell problem; set every cell-level fitted attribute."""
        problem.method = self.method
        bounds = check_bounds(self.bounds)
        if is_calibration(problem, self.method):
            result, fitted = calibration_fit(problem, self.method, self.max_iter, self.tol,
                                             bounds)
        else:
            result, fitted = raking_fit(problem, self.max_iter, self.tol, bounds,
                                         accelerate=self.solver == "auto")
            with np.errstate(divide="ignore"):  # a factor of 0 is a coefficient of -inf
                fitted["coef_"] = {key: np.log(factors).rename("coef")
                                   for key, factors in fitted["factors_"].items()}
            fitted.update(intercept_=0.0, _calibration=None)
        self.__dict__.update(fitted)
        return result

    def compute_weights(self, X, sample_weight=None):
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
            return dask_weights(self, X, sample_weight)
        rows = read_rows(X, sample_weight)
        if method == "transform" or not rows.named:  # else by name
            validate_data(self, rows.table, skip_check_array=True, reset=False)
        check_same_namespace(self, X, method)
        if self._calibration is not None:
            factor = calibrated_row_factors(rows, self._margins, self._calibration,
                                            self.missing, self._bounds)
        else:
            factor = row_factors(rows, self._margins, self.factors_, self.missing, self._bounds)
        return self._scaled(rows.base, factor)

    def _scaled(self, base, factor):
        """``base * weight_scale_ * factor`` with no intermediate beyond a weight."""
        return base / self._base_total * factor * self.total_


def compute_balancing_weights(
    X, targets=None, *, sample_weight=None, max_iter=1000, tol=1e-8, bounds=None,
    missing="error", target_type="auto", method="raking", solver="auto",
):
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
    bounds, missing, target_type, method, solver : default=None, "error", "auto", \
"raking", "auto"
        Weight-ratio limits, missing-value rule, target reading, distance and
        raking solver, as in MarginalBalancer.

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
                                missing=missing, target_type=target_type, method=method,
                                solver=solver)
    return balancer.fit(X, sample_weight=sample_weight).weights_
