"""BalancedFunctionalEstimator: balanced means with standard errors."""

import numpy as np
from scipy.stats import norm
from sklearn.base import BaseEstimator, _fit_context, clone
from sklearn.utils._param_validation import HasMethods, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._balancer import MarginalBalancer
from ._columns import as_table

__all__ = ["BalancedFunctionalEstimator", "linearized_residuals"]


def _level_means(cell_mass, codes, values, n_levels):
    """Mass-weighted mean of a cell function within each level, per cell."""
    mass = np.bincount(codes, cell_mass, minlength=n_levels)
    total = np.bincount(codes, cell_mass * values, minlength=n_levels)
    means = np.divide(total, mass, out=np.zeros_like(total), where=mass > 0)
    return means[codes]


def linearized_residuals(problem, y, estimate, steps):
    """Linearized residuals ``g_i`` of a balanced mean, per row.

    ``g = C_k (y - estimate)`` with the conditional means of the operators
    taken under the base weights (THEORY section 3): starting from
    ``y - estimate``, for step ``k`` down to 1, subtract the base-weighted
    mean of ``g`` within the level of that step's margin. Conditional means
    are constant within a cell, so the recursion runs on the cell table and
    costs ``k x n_cells``; the within-cell part of ``y`` passes through.

    Parameters
    ----------
    problem : the cell problem of a fitted MarginalBalancer.
    y : ndarray of shape (n_rows,)
    estimate : float
    steps : int or "ipwi"
        Number of balancing steps, or the importance-weighting operator
        ``I - sum_j E[.|margin j]``.

    Returns
    -------
    ndarray of shape (n_rows,)
    """
    cell, base = problem.cell_of_row, problem.base
    cell_mass = problem.cell_base
    n_cells = cell_mass.shape[0]
    cell_total = np.bincount(cell, base * y, minlength=n_cells)
    cell_mean = np.divide(cell_total, cell_mass, out=np.zeros_like(cell_total),
                          where=cell_mass > 0)
    centred = cell_mean - estimate
    n_margins = len(problem.margin_codes)
    sizes = [m.proportions.shape[0] for m in problem.margins]
    if steps == "ipwi":
        g = centred - sum(
            _level_means(cell_mass, codes, centred, size)
            for codes, size in zip(problem.margin_codes, sizes)
        )
    else:
        g = centred
        for step in range(steps, 0, -1):
            j = (step - 1) % n_margins
            g = g - _level_means(cell_mass, problem.margin_codes[j], g, sizes[j])
    return y - cell_mean[cell] + g[cell]


class BalancedFunctionalEstimator(BaseEstimator):
    """Mean of an outcome after balancing, with a standard error.

    The balanced estimate of ``E[h]`` is the weighted mean of the outcome
    under the balancer's weights (the paper's ``phi_n^(k)`` with ``k`` the
    steps the balancer takes). Its standard error is the linearization of
    THEORY section 3 for exactly those ``k`` steps, with conditional means
    under the base weights, so it is right for small ``k`` as for converged
    raking (where it is what R survey reports for a raked design).

    Parameters
    ----------
    balancer : MarginalBalancer or None, default=None
        Holds the targets and the number of steps; ``None`` balances every
        column of ``X`` to uniform. Cloned at fit.
    method : {"balanced", "empirical", "ipwi"}, default="balanced"
        ``"balanced"``: the balancer's weights. ``"empirical"``: the base
        weights (``k = 0``). ``"ipwi"``: importance weighting by every
        margin's target over base-weighted share at once (no iteration),
        ``sum d h prod_j ratio_j / sum d``.

    Attributes
    ----------
    estimate_ : float or ndarray of shape (n_outputs,)
        The estimated mean of each outcome.
    std_error_ : float or ndarray of shape (n_outputs,)
        Linearization standard error, ``sqrt(n / (n - 1) sum_i (w_i g_i)^2) /
        sum_i w_i``.
    variance_ : float or ndarray of shape (n_outputs,)
        ``std_error_ ** 2``.
    weights_ : ndarray of shape (n_samples,)
        The weights of the estimate.
    effective_sample_size_ : float
        Kish's effective sample size of ``weights_``.
    n_steps_ : int
        Balancing steps behind the estimate (0 for "empirical" and "ipwi").
    balancer_ : MarginalBalancer
        The fitted balancer.
    n_features_in_ : int
        Number of columns seen in fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names seen in fit, when they are all strings.

    Notes
    -----
    ``score`` is minus the squared distance between the estimate and the
    (base-weighted) mean of ``y`` on other rows. Cross-validating it, as in
    ``GridSearchCV(est, {"balancer__max_iter": [0, 1, 2, 4, 8]})``, chooses
    the ``k`` of smallest mean squared error under one assumption: the
    held-out rows are draws from the target population (the data are a
    sample of the population whose margins are the targets, possibly
    misspecified). With bounds, the standard error ignores the truncation.

    Examples
    --------
    >>> import pandas as pd
    >>> import skbalance as skb
    >>> sample = skb.datasets.load_api("clus1")
    >>> targets = skb.datasets.api_population_targets(["stype", "sch.wide"])
    >>> est = skb.BalancedFunctionalEstimator(skb.MarginalBalancer(targets=targets))
    >>> est.fit(sample, sample["api00"], sample_weight=sample["pw"])
    BalancedFunctionalEstimator(...)
    >>> round(est.estimate_, 2), round(est.std_error_, 2)
    (641.23, 7.78)
    """

    _parameter_constraints: dict = {
        "balancer": [HasMethods(["fit", "compute_weights"]), None],
        "method": [StrOptions({"balanced", "empirical", "ipwi"})],
    }

    def __init__(self, balancer=None, *, method="balanced"):
        self.balancer = balancer
        self.method = method

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        tags.target_tags.required = True
        tags.target_tags.single_output = False
        tags.target_tags.multi_output = True
        return tags

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, sample_weight=None):
        """Balance ``X`` and estimate the mean of every outcome in ``y``.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            The balancing columns.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The values of the function ``h`` at every row.
        sample_weight : array-like of shape (n_samples,), default=None
            Positive base (design) weights.

        Returns
        -------
        self : BalancedFunctionalEstimator
            The fitted estimator.
        """
        balancer = MarginalBalancer() if self.balancer is None else clone(self.balancer)
        if self.method != "balanced":
            balancer.set_params(max_iter=0, tol=0)
        problem = balancer._fit(X, sample_weight)
        outcomes = _check_outcomes(y, problem.base.shape[0])
        single = outcomes.shape[1] == 1 and np.asarray(y).ndim == 1
        base = problem.base
        if self.method == "balanced":
            weights, steps, denominator = balancer.weights_, balancer.n_iter_, None
        elif self.method == "empirical":
            weights, steps, denominator = base, 0, None
        else:
            weights = base * problem.importance_factors()[problem.cell_of_row]
            steps, denominator = "ipwi", base.sum()
        total = weights.sum() if denominator is None else denominator

        n = base.shape[0]
        estimates, variances = [], []
        for column in outcomes.T:
            estimate = float(weights @ column / total)
            g = linearized_residuals(problem, column, estimate, steps)
            factor = n / (n - 1) if n > 1 else np.nan
            variances.append(factor * np.sum((weights * g) ** 2) / weights.sum() ** 2)
            estimates.append(estimate)
        self.estimate_ = estimates[0] if single else np.array(estimates)
        self.variance_ = float(variances[0]) if single else np.array(variances)
        self.std_error_ = float(np.sqrt(self.variance_)) if single else np.sqrt(self.variance_)
        self.weights_ = weights
        self.effective_sample_size_ = float(weights.sum() ** 2 / np.sum(weights**2))
        self.n_steps_ = 0 if steps == "ipwi" else int(steps)
        self.balancer_ = balancer
        self.n_features_in_ = balancer.n_features_in_
        if hasattr(balancer, "feature_names_in_"):
            self.feature_names_in_ = balancer.feature_names_in_
        return self

    def confidence_interval(self, alpha=0.05):
        """Normal confidence interval at level ``1 - alpha``.

        Parameters
        ----------
        alpha : float, default=0.05
            One minus the coverage.

        Returns
        -------
        low, high : float or ndarray
            The interval's ends, one per outcome.

        Examples
        --------
        >>> import numpy as np
        >>> import skbalance as skb
        >>> X = np.repeat([[0], [1]], [30, 10], axis=0)
        >>> y = np.r_[np.zeros(30), np.ones(10)]
        >>> est = skb.BalancedFunctionalEstimator(method="empirical").fit(X, y)
        >>> [round(v, 3) for v in est.confidence_interval()]
        [0.114, 0.386]
        """
        check_is_fitted(self)
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must lie in (0, 1); got {alpha!r}.")
        z = float(norm.ppf(1 - alpha / 2))
        low = self.estimate_ - z * self.std_error_
        high = self.estimate_ + z * self.std_error_
        return low, high

    def score(self, X, y, sample_weight=None):
        """Minus the squared error of the estimate against held-out rows' mean.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Held-out rows (only their count is used).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Their outcomes.
        sample_weight : array-like of shape (n_samples,), default=None
            Their base weights.

        Returns
        -------
        score : float
            ``-mean over outcomes of (estimate_ - mean(y))^2``.

        Examples
        --------
        >>> import numpy as np
        >>> import skbalance as skb
        >>> X, y = np.zeros((4, 1)), np.array([1.0, 2.0, 3.0, 4.0])
        >>> est = skb.BalancedFunctionalEstimator().fit(X, y)
        >>> est.score(X[:2], y[:2])
        -1.0
        """
        check_is_fitted(self)
        table = as_table(X)
        validate_data(self, table, skip_check_array=True, reset=False)
        outcomes = _check_outcomes(y, table.shape[0])
        weights = None if sample_weight is None else np.asarray(sample_weight, float)
        held_out = np.average(outcomes, axis=0, weights=weights)
        return -float(np.mean((np.atleast_1d(self.estimate_) - held_out) ** 2))


def _check_outcomes(y, n_rows):
    if y is None:
        raise ValueError(
            "BalancedFunctionalEstimator requires y to be passed, but the target y is None."
        )
    outcomes = np.asarray(y, dtype=np.float64)
    if outcomes.ndim == 1:
        outcomes = outcomes[:, None]
    if outcomes.ndim != 2 or outcomes.shape[0] != n_rows:
        raise ValueError(
            f"y must have shape ({n_rows},) or ({n_rows}, n_outputs); got "
            f"{np.shape(y)}."
        )
    if not np.all(np.isfinite(outcomes)):
        raise ValueError("y contains NaN or infinite values.")
    return outcomes

