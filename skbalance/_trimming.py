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

__all__ = ["TrimmedBalancer", "nonresponse_weights", "trim_weights"]


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
