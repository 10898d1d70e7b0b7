"""Weight trimming (R survey's ``trimWeights``) and nonresponse adjustment."""

from __future__ import annotations

from numbers import Real
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.utils._param_validation import HasMethods

from ._balancer import MarginalBalancer
from ._problem import CellProblem
from ._rows import kish_effective_size, read_rows
from ._typing import Table, Vector
from .utils._array_api import to_numpy

__all__ = ["TrimmedBalancer", "WeightTrimmer", "nonresponse_weights", "trim_weights",
           "winsorize_weights"]


def trim_weights(weights: Vector, lower: float = -np.inf, upper: float = np.inf,
                 strict: bool = False) -> np.ndarray:
    """Trim weights to ``[lower, upper]`` and share out what was cut (R's ``trimWeights``).

    Every weight beyond a bound is set to it, and the weight cut off (or
    added) is spread in equal parts over the weights that were never
    trimmed, so the total stays. ``strict=True`` repeats this until no weight
    is beyond a bound (the shares can push weights over); ``False`` does one
    pass, as R's default. Rows of weight 0 take no part.

    Parameters
    ----------
    weights : array-like of shape (n_samples,)
        Nonnegative weights.
    lower, upper : float, default=-inf, inf
        The bounds.
    strict : bool, default=False
        Repeat until every weight is within the bounds.

    Returns
    -------
    ndarray of shape (n_samples,)
        The trimmed weights, with the same total.

    Examples
    --------
    >>> from skbalance import trim_weights
    >>> trim_weights([1.0, 2.0, 3.0, 10.0], upper=6.0).round(3).tolist()
    [2.333, 3.333, 4.333, 6.0]
    """
    w = np.array(weights, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("trim_weights needs finite, nonnegative weights.")
    if not lower < upper:
        raise ValueError(f"The bounds must satisfy lower < upper; got ({lower}, {upper}).")
    active = w > 0
    total, n = float(w[active].sum()), int(active.sum())
    if n and not (lower * n <= total <= upper * n):
        raise ValueError(f"No trimming to [{lower:g}, {upper:g}] keeps the total {total:.6g} "
                         f"of {n} weights: the mean weight {total / n:.6g} lies outside the "
                         "bounds.")
    trimmed = np.zeros(w.shape[0], dtype=bool)
    outside = active & ((w < lower) | (w > upper))
    while outside.any():
        clipped = np.where(active, np.clip(w, lower, upper), 0.0)
        cut = float(np.sum(w - clipped))
        free = active & ~outside & ~trimmed
        if not free.any():
            raise ValueError(f"Trimming to [{lower:g}, {upper:g}] leaves no untrimmed weight "
                             "to take what was cut: no redistribution meets the bounds.")
        clipped[free] += cut / free.sum()
        trimmed |= outside
        w = clipped
        if not strict:
            break
        outside = active & ((w < lower) | (w > upper))
    return w


class TrimmedBalancer(BaseEstimator):
    """A balancer followed by weight trimming (R's ``calibrate`` then ``trimWeights``).

    The inner balancer's weights are trimmed by :func:`trim_weights`. The
    standard errors of :class:`BalancedFunctionalEstimator` then follow R
    survey's rule for a trimmed calibrated design: the estimate uses the
    trimmed weights, the calibration residual keeps the calibrated weights
    (the influence of row i is ``w_cal,i (t_i z_i - P(t z)_i)``, ``t`` the
    trimmed over calibrated weight and ``P`` the calibration's projection).

    Parameters
    ----------
    balancer : MarginalBalancer
        The balancing before the trimming.
    lower, upper : float or None, default=None
        The bounds on the weights (None: none on that side).
    strict : bool, default=False
        Repeat until every weight is within the bounds (R's ``strict``).

    Attributes
    ----------
    balancer_ : MarginalBalancer
        The fitted inner balancer.
    weights_ : ndarray of shape (n_samples,)
        The trimmed weights.
    residual_weights_ : ndarray of shape (n_samples,)
        The calibrated weights before trimming.
    n_iter_, converged_, effective_sample_size_ : int, bool, float
        The inner balancer's steps and convergence; Kish's effective size of
        the trimmed weights.

    Examples
    --------
    >>> import skbalance as skb
    >>> strat = skb.datasets.load_api("strat")
    >>> targets = skb.datasets.api_population_targets(["stype", "sch.wide"])
    >>> trimmed = skb.TrimmedBalancer(skb.MarginalBalancer(targets=targets), lower=20, upper=40)
    >>> w = trimmed.fit(strat, sample_weight=strat["pw"]).weights_
    >>> float(w.min()), float(w.max()), round(float(w.sum()))
    (20.0, 40.0, 6194)
    """

    _parameter_constraints: dict = {
        "balancer": [HasMethods(["fit_problem"])],
        "lower": [Real, None],
        "upper": [Real, None],
        "strict": ["boolean"],
    }

    def __init__(self, balancer: Any, *, lower: float | None = None,
                 upper: float | None = None, strict: bool = False) -> None:
        self.balancer = balancer
        self.lower = lower
        self.upper = upper
        self.strict = strict

    def fit_problem(self, X: Table, sample_weight: Vector | None = None) -> CellProblem:
        """Balance, trim, and return the inner balancer's cell problem.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            The balancing columns.
        sample_weight : array-like of shape (n_samples,), default=None
            Base weights.

        Returns
        -------
        CellProblem
            The inner balancer's (its cells and residual operator).

        Examples
        --------
        >>> import skbalance as skb
        >>> strat = skb.datasets.load_api("strat")
        >>> targets = skb.datasets.api_population_targets(["stype"])
        >>> trimmer = skb.TrimmedBalancer(skb.MarginalBalancer(targets=targets), upper=35)
        >>> trimmer.fit_problem(strat, sample_weight=strat["pw"]).n_cells
        3
        """
        self._validate_params()
        balancer = clone(self.balancer)
        given = read_rows(X) if isinstance(balancer, MarginalBalancer) else X
        problem = balancer.fit_problem(given, sample_weight=sample_weight)
        calibrated = np.asarray(to_numpy(balancer.weights_), dtype=np.float64)
        self.weights_ = trim_weights(
            calibrated, -np.inf if self.lower is None else float(self.lower),
            np.inf if self.upper is None else float(self.upper), self.strict)
        self.residual_weights_ = calibrated
        self.balancer_ = balancer
        self.n_iter_ = balancer.n_iter_
        self.n_newton_iter_ = getattr(balancer, "n_newton_iter_", 0)
        self.converged_ = balancer.converged_
        self.effective_sample_size_ = kish_effective_size(self.weights_)
        self.n_features_in_ = balancer.n_features_in_
        if hasattr(balancer, "feature_names_in_"):
            self.feature_names_in_ = balancer.feature_names_in_
        return problem

    def fit(self, X: Table, y: None = None, sample_weight: Vector | None = None
            ) -> TrimmedBalancer:
        """Balance and trim.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            The balancing columns.
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), default=None
            Base weights.

        Returns
        -------
        self : TrimmedBalancer
            The fitted trimmer.

        Examples
        --------
        >>> import skbalance as skb
        >>> strat = skb.datasets.load_api("strat")
        >>> targets = skb.datasets.api_population_targets(["stype"])
        >>> skb.TrimmedBalancer(skb.MarginalBalancer(targets=targets), upper=35).fit(
        ...     strat, sample_weight=strat["pw"]).weights_.max()
        np.float64(35.0)
        """
        self.fit_problem(X, sample_weight=sample_weight)
        return self

    def compute_weights(self, X: Table, sample_weight: Vector | None = None) -> np.ndarray:
        """Weigh new rows: the inner balancer's weights, trimmed by the same rule.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            New rows with the balancing columns.
        sample_weight : array-like of shape (n_samples,), default=None
            Their base weights.

        Returns
        -------
        ndarray of shape (n_samples,)
            The weights, trimmed among these rows (their total kept).

        Examples
        --------
        >>> import skbalance as skb
        >>> strat = skb.datasets.load_api("strat")
        >>> targets = skb.datasets.api_population_targets(["stype"])
        >>> trimmer = skb.TrimmedBalancer(skb.MarginalBalancer(targets=targets), upper=35)
        >>> trimmer.fit(strat, sample_weight=strat["pw"]).compute_weights(
        ...     strat, sample_weight=strat["pw"]).max()
        np.float64(35.0)
        """
        balanced = np.asarray(to_numpy(self.balancer_.compute_weights(
            X, sample_weight=sample_weight)), dtype=np.float64)
        return trim_weights(balanced, -np.inf if self.lower is None else float(self.lower),
                            np.inf if self.upper is None else float(self.upper), self.strict)


def nonresponse_weights(weights: Vector, respondent: Vector, classes: Vector) -> np.ndarray:
    """Weighting-class nonresponse adjustment.

    Every respondent's weight is multiplied by its class's total weight over
    the total weight of the class's respondents; nonrespondents get weight 0.
    The total weight of every class (and so of the sample) stays.

    Parameters
    ----------
    weights : array-like of shape (n_samples,)
        Base weights of the whole sample, respondents or not.
    respondent : array-like of bool of shape (n_samples,)
        Whether each row responded.
    classes : array-like of shape (n_samples,)
        The adjustment class of every row (for instance cells of known
        variables, or groups of estimated response propensities).

    Returns
    -------
    ndarray of shape (n_samples,)
        The adjusted weights (0 for nonrespondents).

    Examples
    --------
    >>> from skbalance import nonresponse_weights
    >>> nonresponse_weights([1.0, 1.0, 2.0, 2.0], [True, False, True, True],
    ...                     ["a", "a", "b", "b"]).tolist()
    [2.0, 0.0, 2.0, 2.0]
    """
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    responded = np.asarray(respondent).reshape(-1)
    if responded.dtype != bool:
        if not np.isin(responded, [0, 1]).all():
            raise ValueError("respondent must be booleans (or 0/1), one per row.")
        responded = responded.astype(bool)
    groups = pd.Series(np.asarray(classes, dtype=object).reshape(-1))
    if not (w.shape[0] == responded.shape[0] == groups.shape[0]):
        raise ValueError(f"weights, respondent and classes must have one value per row; got "
                         f"{w.shape[0]}, {responded.shape[0]} and {groups.shape[0]}.")
    if groups.isna().any():
        raise ValueError(f"classes has {int(groups.isna().sum())} missing value(s).")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("weights must be finite and nonnegative.")
    codes, levels = pd.factorize(groups, sort=True)
    total = np.bincount(codes, w, minlength=len(levels))
    answered = np.bincount(codes, w * responded, minlength=len(levels))
    empty = (total > 0) & (answered <= 0)
    if empty.any():
        raise ValueError(f"Class {levels[int(np.flatnonzero(empty)[0])]!r} has no respondent "
                         "with weight: its weight has nowhere to go; merge it with another "
                         "class.")
    factor = np.divide(total, answered, out=np.zeros_like(total), where=answered > 0)
    return np.where(responded, w * factor[codes], 0.0)


def _balance_limit(limit, n):
    """balance's widening of a percentile limit, so that some weight is always cut."""
    if limit is None or limit == 0:
        return None
    if not 0 < limit <= 1:
        raise ValueError(f"A percentile limit must be in (0, 1]; got {limit}.")
    return min(limit + min(2.0 / max(n, 1), limit / 10.0), 1.0)


def winsorize_weights(weights: Vector, *, mean_ratio: float | None = None,
                      percentile: float | tuple | None = None,
                      keep_sum: bool = True) -> np.ndarray:
    """Trim weights as balance does: cap at a multiple of the mean, or winsorize at percentiles.

    ``mean_ratio``: every weight above ``mean_ratio`` times the mean weight
    is set to it (balance's ``weight_trimming_mean_ratio``). ``percentile``
    (one number for both tails, or ``(lower, upper)``; 0 or None: that tail
    untouched): the weights are clipped to their quantiles at the limits,
    each widened by ``min(2 / n, limit / 10)`` so that some weight is always
    cut (balance's ``weight_trimming_percentile``, with its widening and its
    quantile rules, "higher" below and "lower" above). Unlike R's
    ``trimWeights`` (:func:`trim_weights`), nothing is shared out: with
    ``keep_sum``, every weight is then scaled back to the original total.

    Parameters
    ----------
    weights : array-like of shape (n_samples,)
        Nonnegative weights.
    mean_ratio : float or None, default=None
        The cap as a multiple of the mean weight.
    percentile : float, (float, float) or None, default=None
        The tails to winsorize.
    keep_sum : bool, default=True
        Scale the trimmed weights back to the original total.

    Returns
    -------
    ndarray of shape (n_samples,)
        The trimmed weights.

    Examples
    --------
    >>> from skbalance import winsorize_weights
    >>> winsorize_weights([1.0, 1.0, 1.0, 9.0], mean_ratio=2, keep_sum=False).tolist()
    [1.0, 1.0, 1.0, 6.0]
    """
    w = np.array(weights, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("winsorize_weights needs finite, nonnegative weights.")
    if (mean_ratio is None) == (percentile is None):
        raise ValueError("Give one of mean_ratio and percentile.")
    mean = float(w.mean())
    if mean_ratio is not None:
        if not mean_ratio > 0:
            raise ValueError(f"mean_ratio must be positive; got {mean_ratio}.")
        trimmed = np.minimum(w, mean_ratio * mean)
    else:
        low, high = (percentile, percentile) if np.ndim(percentile) == 0 else percentile
        low, high = _balance_limit(low, w.shape[0]), _balance_limit(high, w.shape[0])
        lower = None if low is None else float(np.quantile(w, low, method="higher"))
        upper = None if high is None else float(np.quantile(w, 1 - high, method="lower"))
        trimmed = np.clip(w, lower, upper)
    if keep_sum:
        trimmed = trimmed / trimmed.mean() * mean
    return trimmed


class WeightTrimmer(BaseEstimator):
    """Trimming as a weighting step: the previous step's weights, trimmed.

    R's bounds (``lower``, ``upper``, ``strict``: :func:`trim_weights`, the cut
    shared among the untrimmed rows) or balance's forms (``mean_ratio``,
    ``percentile``: :func:`winsorize_weights`, scaled back to the total). In
    a :class:`WeightingRecipe`, propensity, then trimming, then raking is
    ``[("ipw", PropensityBalancer(...)), ("trim", WeightTrimmer(upper=...)),
    ("rake", MarginalBalancer(...))]``.

    Parameters
    ----------
    lower, upper : float or None, default=None
        R's bounds.
    strict : bool, default=False
        Repeat R's trimming until every weight is within the bounds.
    mean_ratio : float or None, default=None
        The cap at this multiple of the mean weight (balance's form).
    percentile : float, (float, float) or None, default=None
        The winsorized tails (balance's form).

    Attributes
    ----------
    weights_ : ndarray of shape (n_samples,)
        The trimmed weights.
    effective_sample_size_ : float
        Kish's effective size of the trimmed weights.

    Examples
    --------
    >>> import pandas as pd
    >>> import skbalance as skb
    >>> X = pd.DataFrame({"x": [0, 1, 2, 3]})
    >>> skb.WeightTrimmer(upper=6.0).fit(X, sample_weight=[1.0, 2.0, 3.0, 10.0]).weights_.round(3)
    array([2.333, 3.333, 4.333, 6.   ])
    """

    _parameter_constraints: dict = {
        "lower": [Real, None],
        "upper": [Real, None],
        "strict": ["boolean"],
        "mean_ratio": [Real, None],
        "percentile": [Real, tuple, None],
    }

    def __init__(self, *, lower: float | None = None, upper: float | None = None,
                 strict: bool = False, mean_ratio: float | None = None,
                 percentile: Any = None) -> None:
        self.lower = lower
        self.upper = upper
        self.strict = strict
        self.mean_ratio = mean_ratio
        self.percentile = percentile

    def fit(self, X: Table, y: None = None, sample_weight: Vector | None = None
            ) -> WeightTrimmer:
        """Trim the given weights.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            The rows (only their number is read).
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), default=None
            The weights to trim (the previous step's, in a recipe).

        Returns
        -------
        self : WeightTrimmer
            The fitted trimmer.

        Examples
        --------
        >>> import pandas as pd
        >>> import skbalance as skb
        >>> X = pd.DataFrame({"x": [0, 1, 2, 3]})
        >>> trimmer = skb.WeightTrimmer(mean_ratio=2, percentile=None)
        >>> trimmer.fit(X, sample_weight=[1.0, 1.0, 1.0, 9.0]).weights_.round(3).tolist()
        [1.333, 1.333, 1.333, 8.0]
        """
        self._validate_params()
        self.weights_ = self.compute_weights(X, sample_weight=sample_weight)
        self.effective_sample_size_ = kish_effective_size(self.weights_)
        return self

    def compute_weights(self, X: Table, sample_weight: Vector | None = None) -> np.ndarray:
        """Trim these weights by the same rule.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            The rows (only their number is read).
        sample_weight : array-like of shape (n_samples,), default=None
            The weights to trim (None: 1 each, which no rule changes).

        Returns
        -------
        ndarray of shape (n_samples,)
            The trimmed weights.

        Examples
        --------
        >>> import pandas as pd
        >>> import skbalance as skb
        >>> X = pd.DataFrame({"x": [0, 1]})
        >>> skb.WeightTrimmer(upper=3.0).compute_weights(X, sample_weight=[1.0, 4.0]).tolist()
        [2.0, 3.0]
        """
        n_rows = read_rows(X).n_rows
        w = np.ones(n_rows) if sample_weight is None else np.asarray(
            to_numpy(sample_weight), dtype=np.float64).reshape(-1)
        balance_form = self.mean_ratio is not None or self.percentile is not None
        if balance_form and (self.lower is not None or self.upper is not None):
            raise ValueError("Give R's bounds (lower, upper) or balance's forms (mean_ratio, "
                             "percentile), not both.")
        if balance_form:
            return winsorize_weights(w, mean_ratio=self.mean_ratio, percentile=self.percentile)
        return trim_weights(w, -np.inf if self.lower is None else float(self.lower),
                            np.inf if self.upper is None else float(self.upper), self.strict)
