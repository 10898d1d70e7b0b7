"""Weighting recipes: steps in turn, each from the previous step's weights."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.utils.metaestimators import _BaseComposition
from sklearn.utils.validation import check_is_fitted

from ._balancer import MarginalBalancer
from ._covariate_balance import balance_table
from ._problem import CellProblem
from ._rows import kish_effective_size, read_rows
from ._typing import Table, Vector
from .utils._array_api import to_numpy

__all__ = ["WeightingRecipe"]


def _weights_of(step):
    return np.asarray(to_numpy(step.weights_), dtype=np.float64)


class WeightingRecipe(_BaseComposition):
    """Weigh rows by steps in turn: each step's base weights are the previous step's weights.

    A recipe such as propensity, then trimming, then raking is one object
    that stands wherever a balancer does: in
    :class:`BalancedFunctionalEstimator` and :class:`BalancedEstimator`, and
    for the covariate-balance report. Its standard errors:

    * **Replicate weights** re-run the whole recipe on every replicate's base
      weights (the propensity model refitted, the trimming redone, the raking
      re-solved), so the variance counts every step, the estimated
      propensities included.
    * **Linearization** counts the last step's calibration residual (as R
      survey's ``calibrate`` on a design whose weights came from the earlier
      steps) and takes the earlier steps' weights as fixed: it leaves out the
      variance of estimating the propensities (usually a small reduction,
      so the linearized SE tends to be slightly conservative for an
      estimated propensity; use replicates to count it).

    Parameters
    ----------
    steps : list of (str, estimator)
        Named weighting steps, first to last. Each takes ``fit(X,
        sample_weight=...)`` and gives ``weights_`` and ``compute_weights``:
        :class:`PropensityBalancer`, :class:`MarginalBalancer`,
        :class:`TrimmedBalancer`, or another recipe. The last step must
        balance (``fit_problem``) for the recipe to stand in an estimator.
        Parameters of steps are set as ``"<step>__<parameter>"``.

    Attributes
    ----------
    steps_ : list of (str, estimator)
        The fitted steps.
    weights_ : ndarray of shape (n_samples,)
        The last step's weights.
    diagnostics_ : pandas.DataFrame
        Per step: the total, Kish's design effect and effective sample size
        of its weights, and the balancing steps taken and convergence where
        the step balances.
    n_iter_, converged_ : int, bool
        The last step's.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> import skbalance as skb
    >>> rng = np.random.default_rng(0)
    >>> population = pd.DataFrame({"age": rng.normal(50, 10, 4000),
    ...                            "sex": rng.choice(["F", "M"], 4000)})
    >>> sample = population[rng.random(4000) < 0.3 * np.exp(-(population.age - 50) / 15)]
    >>> recipe = skb.WeightingRecipe([
    ...     ("propensity", skb.PropensityBalancer(population, columns=["age"])),
    ...     ("rake", skb.MarginalBalancer(
    ...         targets={"sex": population["sex"].value_counts()}))])
    >>> w = recipe.fit(sample).weights_
    >>> round(float(w.sum())), round(float(np.average(sample.age, weights=w)))
    (4000, 50)
    >>> list(recipe.diagnostics_.index)
    ['propensity', 'rake']
    """

    _required_parameters = ["steps"]

    def __init__(self, steps: list) -> None:
        self.steps = steps

    def get_params(self, deep: bool = True) -> dict:
        """Get the parameters, the steps' as ``<step>__<parameter>``.

        Parameters
        ----------
        deep : bool, default=True
            Include every step's parameters.

        Returns
        -------
        dict
            Parameter names mapped to their values.

        Examples
        --------
        >>> import skbalance as skb
        >>> recipe = skb.WeightingRecipe([("rake", skb.MarginalBalancer(tol=1e-8))])
        >>> recipe.get_params()["rake__tol"]
        1e-08
        """
        return self._get_params("steps", deep=deep)

    def set_params(self, **params: Any) -> WeightingRecipe:
        """Set the parameters, the steps' as ``<step>__<parameter>``.

        Parameters
        ----------
        **params : dict
            Parameter names mapped to their new values.

        Returns
        -------
        self : WeightingRecipe
            The recipe.

        Examples
        --------
        >>> import skbalance as skb
        >>> recipe = skb.WeightingRecipe([("rake", skb.MarginalBalancer())])
        >>> recipe.set_params(rake__tol=1e-6).steps[0][1].tol
        1e-06
        """
        self._set_params("steps", **params)
        return self

    def fit(self, X: Table, y: None = None, sample_weight: Vector | None = None
            ) -> WeightingRecipe:
        """Run every step, each from the previous step's weights.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            The columns every step needs.
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), default=None
            Base (design) weights of the first step.

        Returns
        -------
        self : WeightingRecipe
            The fitted recipe.

        Examples
        --------
        >>> import pandas as pd
        >>> import skbalance as skb
        >>> X = pd.DataFrame({"g": ["a", "a", "b"]})
        >>> recipe = skb.WeightingRecipe([
        ...     ("rake", skb.MarginalBalancer(targets={"g": {"a": 0.5, "b": 0.5}}))])
        >>> recipe.fit(X).weights_.tolist()
        [0.75, 0.75, 1.5]
        """
        self._run(X, sample_weight, last_problem=False)
        return self

    def fit_problem(self, X: Table, sample_weight: Vector | None = None) -> CellProblem:
        """Run every step and return the last step's cell problem.

        The problem's base weights are the weights of the step before the
        last: the linearized variance counts the last step's calibration
        residual from them (see the class notes).

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            The columns every step needs.
        sample_weight : array-like of shape (n_samples,), default=None
            Base (design) weights of the first step.

        Returns
        -------
        CellProblem
            The last step's.

        Examples
        --------
        >>> import pandas as pd
        >>> import skbalance as skb
        >>> X = pd.DataFrame({"g": ["a", "a", "b"]})
        >>> recipe = skb.WeightingRecipe([
        ...     ("rake", skb.MarginalBalancer(targets={"g": {"a": 0.5, "b": 0.5}}))])
        >>> recipe.fit_problem(X).n_cells
        2
        """
        return self._run(X, sample_weight, last_problem=True)

    def compute_weights(self, X: Table, sample_weight: Vector | None = None) -> np.ndarray:
        """Weigh rows with every fitted step in turn.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Rows with the columns every step needs.
        sample_weight : array-like of shape (n_samples,), default=None
            Their base weights.

        Returns
        -------
        ndarray of shape (n_samples,)
            The last step's weights of these rows (on the rows of ``fit``,
            ``weights_``).

        Examples
        --------
        >>> import pandas as pd
        >>> import skbalance as skb
        >>> X = pd.DataFrame({"g": ["a", "a", "b"]})
        >>> recipe = skb.WeightingRecipe([
        ...     ("rake", skb.MarginalBalancer(targets={"g": {"a": 0.5, "b": 0.5}}))]).fit(X)
        >>> recipe.compute_weights(pd.DataFrame({"g": ["b"]})).tolist()
        [1.5]
        """
        check_is_fitted(self, "steps_")
        weights = sample_weight
        for _, step in self.steps_:
            weights = np.asarray(to_numpy(step.compute_weights(X, sample_weight=weights)),
                                 dtype=np.float64)
        return weights

    def balance_report(self, X: Table, target: Table | Mapping | None = None, *,
                       sample_weight: Vector | None = None,
                       target_weight: Vector | None = None,
                       covariates: list | None = None) -> pd.DataFrame:
        """Covariate balance of ``X`` before the first step and after the last.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            The rows of ``fit``, and any other covariates to judge.
        target : DataFrame, dict or None, default=None
            Population rows or margins; None: the last step's targets.
        sample_weight : array-like of shape (n_samples,), default=None
            The base weights given to ``fit``.
        target_weight : array-like, default=None
            Weights of the target rows.
        covariates : list, default=None
            The columns to compare.

        Returns
        -------
        pandas.DataFrame
            See :func:`skbalance.covariate_balance`.

        Examples
        --------
        >>> import pandas as pd
        >>> import skbalance as skb
        >>> X = pd.DataFrame({"g": ["a", "a", "a", "b"]})
        >>> recipe = skb.WeightingRecipe([
        ...     ("rake", skb.MarginalBalancer(targets={"g": {"a": 0.5, "b": 0.5}}))]).fit(X)
        >>> report = recipe.balance_report(X)
        >>> report.loc[("g", "(all)"), ["asmd_before", "asmd_after"]].round(4).tolist()
        [0.5, 0.0]
        """
        check_is_fitted(self, "steps_")
        weights = self.compute_weights(X, sample_weight=sample_weight)
        if target is None:
            last = self.steps_[-1][1]
            if not isinstance(last, MarginalBalancer) or last.targets is None:
                raise ValueError("Give the target rows or margins: the last step has no "
                                 "targets of its own.")
            target = last.targets
        return balance_table(X, weights, target, sample_weight=sample_weight,
                             target_weight=target_weight, covariates=covariates)

    def _run(self, X, sample_weight, last_problem):
        """Fit every step in turn; with ``last_problem``, the last by its
        ``fit_problem`` (returned)."""
        if not isinstance(self.steps, list) or not self.steps or not all(
                isinstance(s, tuple) and len(s) == 2 and isinstance(s[0], str)
                for s in self.steps):
            raise ValueError("steps must be a non-empty list of (name, estimator) pairs.")
        self._validate_names([name for name, _ in self.steps])
        if last_problem and not hasattr(self.steps[-1][1], "fit_problem"):
            raise ValueError(f"The last step, {self.steps[-1][0]!r}, does not balance "
                             "(no fit_problem): end the recipe with a MarginalBalancer (or "
                             "TrimmedBalancer) for it to stand in an estimator.")
        rows = read_rows(X)
        weights = sample_weight
        fitted, records, problem = [], [], None
        for position, (name, step) in enumerate(self.steps):
            step = clone(step)
            given = rows if isinstance(step, MarginalBalancer) else X
            if last_problem and position == len(self.steps) - 1:
                problem = step.fit_problem(given, sample_weight=weights)
            else:
                step.fit(given, sample_weight=weights)
            weights = _weights_of(step)
            fitted.append((name, step))
            effective_size = kish_effective_size(weights)
            records.append({"step": name, "total": float(weights.sum()),
                            # over the rows of positive weight, as every weighter's
                            "design_effect": np.count_nonzero(weights) / effective_size,
                            "effective_sample_size": effective_size,
                            "n_iter": getattr(step, "n_iter_", np.nan),
                            "converged": getattr(step, "converged_", np.nan)})
        self.steps_ = fitted
        self.weights_ = weights
        self.diagnostics_ = pd.DataFrame(records).set_index("step")
        last = fitted[-1][1]
        self.n_iter_ = getattr(last, "n_iter_", 0)
        self.n_newton_iter_ = getattr(last, "n_newton_iter_", 0)
        self.converged_ = getattr(last, "converged_", True)
        if hasattr(last, "residual_weights_"):
            self.residual_weights_ = last.residual_weights_
        if hasattr(last, "n_features_in_"):
            self.n_features_in_ = last.n_features_in_
        if hasattr(last, "feature_names_in_"):
            self.feature_names_in_ = last.feature_names_in_
        return problem

