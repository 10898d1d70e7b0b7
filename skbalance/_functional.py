"""BalancedFunctionalEstimator: balanced means with standard errors."""

import numpy as np
from array_api_compat import array_namespace
from scipy.stats import norm
from sklearn.base import BaseEstimator, _fit_context, clone
from sklearn.utils._param_validation import HasMethods, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._balancer import MarginalBalancer
from ._rows import is_dask, kish_effective_size, read_rows, sum_float
from .utils._array_api import to_numpy

__all__ = ["BalancedFunctionalEstimator"]


class BalancedFunctionalEstimator(BaseEstimator):
    """Mean of an outcome after balancing, with a standard error.

    The balanced estimate of ``E[h]`` is the weighted mean of the outcome
    under the balancer's weights (the paper's ``phi_n^(k)`` with ``k`` the
    steps the balancer takes). Its standard error is the linearization of
    THEORY section 3 for exactly those ``k`` steps, with conditional means
    under the base weights, so it is right for small ``k`` as for converged
    raking (where it is what R survey reports for a raked simple random sample).

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
        Linearization standard error: with ``z_i = w_i g_i / sum_j w_j``,
        ``sqrt(n / (n - 1) sum_i (z_i - mean z)^2)`` (centred as R survey).
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
    feature_names_in_ : ndarray of shape (n_features_in\\_,)
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
        "balancer": [HasMethods(["fit_problem", "compute_weights"]), None],
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
        tags.array_api_support = True
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

        Examples
        --------
        >>> import numpy as np
        >>> import skbalance as skb
        >>> X = np.repeat([[0], [1]], [30, 10], axis=0)
        >>> y = np.r_[np.zeros(30), np.ones(10)]
        >>> bal = skb.MarginalBalancer(targets={0: {0: 0.5, 1: 0.5}})
        >>> skb.BalancedFunctionalEstimator(bal).fit(X, y).estimate_
        0.5
        """
        if is_dask(X):
            raise TypeError(
                "BalancedFunctionalEstimator takes in-memory data; for a dask frame, fit "
                "a MarginalBalancer (its weights_ is a lazy dask Series) and weigh the "
                "outcome with it."
            )
        balancer = MarginalBalancer() if self.balancer is None else clone(self.balancer)
        if self.method != "balanced":
            balancer.set_params(max_iter=0, tol=0)
        problem = balancer.fit_problem(X, sample_weight=sample_weight)
        rows, base = problem.rows, problem.base
        outcomes, single = rows.outcome(y, type(self).__name__)
        if self.method == "balanced":
            weights, steps = balancer.weights_, balancer.n_iter_
        elif self.method == "empirical":
            weights, steps = base, 0
        else:
            weights = base * rows.gather(problem.importance_factors(), problem.cell_of_row)
            steps = "ipwi"
        # IPWI divides by the base total (THEORY section 2); the others by their own.
        total = sum_float(base) if steps == "ipwi" else sum_float(weights)

        n = rows.n_counted
        factor = n / (n - 1) if n > 1 else np.nan
        estimates, variances = [], []
        for column in outcomes:
            estimate = sum_float(weights * column) / total
            g = problem.residuals(column - estimate, steps)
            influence = weights * g / sum_float(weights)
            variances.append(factor * _centred_square_sum(influence, base > 0))
            estimates.append(estimate)
        self.estimate_ = estimates[0] if single else np.array(estimates)
        self.variance_ = float(variances[0]) if single else np.array(variances)
        self.std_error_ = float(np.sqrt(self.variance_)) if single else np.sqrt(self.variance_)
        if not single and rows.on_device:  # arrays follow the data
            for name in ("estimate_", "variance_", "std_error_"):
                setattr(self, name, rows.to_rows(getattr(self, name)))
        self.weights_ = weights
        self.effective_sample_size_ = kish_effective_size(weights)
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
        z = float(norm.ppf(1 - alpha / 2))  # arrays of any namespace scale by a float
        low = self.estimate_ - z * self.std_error_
        high = self.estimate_ + z * self.std_error_
        return low, high

    def score(self, X, y, sample_weight=None):
        """Score the estimate: minus its squared distance to held-out rows' mean.

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
        rows = read_rows(X, sample_weight)
        validate_data(self, rows.table, skip_check_array=True, reset=False)
        outcomes, _ = rows.outcome(y, type(self).__name__)
        weights = to_numpy(rows.base).astype(np.float64)
        held_out = np.average(np.column_stack([to_numpy(c) for c in outcomes]), axis=0,
                              weights=weights)
        return -float(np.mean((np.atleast_1d(to_numpy(self.estimate_)) - held_out) ** 2))


def _centred_square_sum(values, counted):
    """``sum (v - mean v)^2`` over the counted rows, in any namespace.

    R survey centres influence values at their mean before squaring; rows of
    zero base weight are not in the sample and take no part.
    """
    xp = array_namespace(values)
    n = float(xp.sum(xp.astype(counted, values.dtype)))
    centred = xp.where(counted, values - float(xp.sum(values)) / n, xp.zeros_like(values))
    return float(xp.sum(centred * centred))
