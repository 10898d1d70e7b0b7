"""BalancedEstimator: balancing weights fed to any scikit-learn estimator."""

from __future__ import annotations

from typing import Any

from sklearn.base import BaseEstimator, MetaEstimatorMixin, _fit_context, clone
from sklearn.pipeline import Pipeline
from sklearn.utils._param_validation import HasMethods
from sklearn.utils.metadata_routing import (
    MetadataRequest,
    MetadataRouter,
    MethodMapping,
    _raise_for_params,
    _routing_enabled,
    get_routing_for_object,
    process_routing,
)
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, has_fit_parameter

from ._rows import read_rows, sum_float
from ._typing import Table, Vector
from .utils._array_api import check_same_namespace
from .utils._warnings import warn

__all__ = ["BalancedEstimator"]


def _rescaled(weights, total):
    """Weights rescaled to sum to ``total``, in their namespace."""
    return weights * (total / sum_float(weights))


def _fit_weighted(estimator, X, y, weights, params):
    """``estimator.fit`` with ``weights`` as sample_weight.

    A Pipeline takes them on its last step (``<step>__sample_weight``) unless
    metadata routing is enabled, where the steps that request sample_weight
    receive it.
    """
    params = dict(params)
    if isinstance(estimator, Pipeline) and not _routing_enabled():
        params[f"{estimator.steps[-1][0]}__sample_weight"] = weights
    elif isinstance(estimator, Pipeline) or has_fit_parameter(estimator, "sample_weight"):
        params["sample_weight"] = weights
    else:
        raise TypeError(
            f"{type(estimator).__name__}.fit does not accept sample_weight, so it "
            "cannot receive balancing weights."
        )
    return estimator.fit(X, y, **params)


def _estimator_has(attribute):
    def check(self):
        target = self.estimator_ if hasattr(self, "estimator_") else self.estimator
        return hasattr(target, attribute)

    return check


class BalancedEstimator(MetaEstimatorMixin, BaseEstimator):
    """Fit any estimator with balancing weights as its ``sample_weight``.

    At ``fit``, the balancer is fitted on the training rows (with the user's
    ``sample_weight`` as base weights) and its weights, rescaled to the sum
    of the base weights, are passed to the estimator's ``fit``. Inside
    cross-validation this happens on each training fold, so
    ``GridSearchCV(BalancedEstimator(bal, clf), {"balancer__max_iter": [...]})``
    tunes the number of balancing steps ``k``.

    ``score`` weights the held-out rows too: they are raked to the
    balancer's targets until convergence (whatever ``k`` the training uses,
    so that scores for different ``k`` are comparable), and the estimator's
    score is computed with those weights.

    Parameters
    ----------
    balancer : MarginalBalancer
        Holds the targets; cloned at fit.
    estimator : estimator object
        Any estimator whose ``fit`` accepts ``sample_weight``, or a Pipeline
        (the weights go to its last step; with metadata routing enabled, to
        the steps that request them); cloned at fit.

    Attributes
    ----------
    balancer_ : MarginalBalancer
        The balancer fitted on the training rows.
    estimator_ : estimator object
        The estimator fitted with the balancing weights.
    classes_ : ndarray
        The classes, when the estimator is a classifier.
    n_features_in_ : int
        Number of columns seen in fit.
    feature_names_in_ : ndarray of shape (n_features_in\\_,)
        Column names seen in fit, when they are all strings.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.model_selection import GridSearchCV
    >>> import skbalance as skb
    >>> rng = np.random.default_rng(0)
    >>> X = rng.integers(0, 3, size=(300, 2)).astype(float)
    >>> y = (X[:, 0] + rng.normal(size=300) > 1).astype(int)
    >>> bal = skb.MarginalBalancer(targets={0: {0: .2, 1: .3, 2: .5}})
    >>> search = GridSearchCV(skb.BalancedEstimator(bal, LogisticRegression()),
    ...                       {"balancer__max_iter": [0, 1]}, cv=3).fit(X, y)
    >>> sorted(search.best_params_)
    ['balancer__max_iter']
    """

    _parameter_constraints: dict = {
        "balancer": [HasMethods(["fit", "compute_weights"])],
        "estimator": [HasMethods(["fit"])],
    }

    def __init__(self, balancer: BaseEstimator, estimator: BaseEstimator) -> None:
        self.balancer = balancer
        self.estimator = estimator

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = self.estimator.__sklearn_tags__()
        tags.estimator_type = inner.estimator_type
        tags.target_tags = inner.target_tags
        tags.classifier_tags = inner.classifier_tags
        tags.regressor_tags = inner.regressor_tags
        tags.transformer_tags = inner.transformer_tags
        tags.input_tags.string = inner.input_tags.string
        tags.input_tags.categorical = inner.input_tags.categorical
        tags.input_tags.allow_nan = inner.input_tags.allow_nan
        tags.input_tags.sparse = False
        tags.array_api_support = inner.array_api_support
        return tags

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X: Table, y: Vector | None = None, sample_weight: Vector | None = None,
            **fit_params: Any) -> BalancedEstimator:
        """Fit the balancer, then the estimator with the balancing weights.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Training rows: the balancing columns and the estimator's features.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets of the estimator.
        sample_weight : array-like of shape (n_samples,), default=None
            Base weights of the rows.
        **fit_params : dict
            Passed on to the estimator's ``fit`` (routed when metadata
            routing is enabled).

        Returns
        -------
        self : BalancedEstimator
            The fitted meta-estimator.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.linear_model import LinearRegression
        >>> import skbalance as skb
        >>> X = np.array([[0.0], [1.0], [1.0], [1.0]])
        >>> est = skb.BalancedEstimator(skb.MarginalBalancer(), LinearRegression())
        >>> est.fit(X, [0.0, 1.0, 1.0, 1.0]).balancer_.weights_.round(3).tolist()
        [2.0, 0.667, 0.667, 0.667]
        """
        if _routing_enabled():
            routed = process_routing(self, "fit", **fit_params)
            estimator_params = routed.estimator.fit
        else:
            _raise_for_params(fit_params, self, "fit")
            estimator_params = fit_params
        rows = read_rows(X, sample_weight)
        self.balancer_ = clone(self.balancer).fit(X, sample_weight=sample_weight)
        weights = _rescaled(self.balancer_.weights_, sum_float(rows.base))
        self.estimator_ = _fit_weighted(clone(self.estimator), X, y, weights,
                                        estimator_params)
        self._namespace = rows.namespace_name
        self.n_features_in_ = self.balancer_.n_features_in_
        if hasattr(self.balancer_, "feature_names_in_"):
            self.feature_names_in_ = self.balancer_.feature_names_in_
        return self

    def score_weights(self, X: Table, sample_weight: Vector | None = None) -> Any:
        """Compute the weights of held-out rows, raked to the targets to convergence.

        Falls back to the fitted factors (with a warning) when the rows
        cannot be raked on their own, e.g. when a level with a positive
        target is missing from them.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Held-out rows.
        sample_weight : array-like of shape (n_samples,), default=None
            Their base weights.

        Returns
        -------
        weights : ndarray of shape (n_samples,)
            Rescaled to the sum of the base weights.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.linear_model import LinearRegression
        >>> import skbalance as skb
        >>> X = np.array([[0.0], [1.0], [1.0], [1.0]])
        >>> est = skb.BalancedEstimator(skb.MarginalBalancer(), LinearRegression())
        >>> est.fit(X, [0.0, 1.0, 1.0, 1.0]).score_weights(X).round(4).tolist()
        [2.0, 0.6667, 0.6667, 0.6667]
        """
        check_is_fitted(self)
        balancer = clone(self.balancer)
        if {"tol", "max_iter"} <= set(balancer.get_params(deep=False)):  # to convergence
            tol = balancer.tol if balancer.tol > 0 else 1e-8
            balancer.set_params(max_iter=max(balancer.max_iter, 1000), tol=tol)
        try:
            weights = balancer.fit(X, sample_weight=sample_weight).weights_
        except ValueError as exc:
            warn(
                f"Held-out rows could not be raked on their own ({exc}); scoring with "
                "the factors learned in fit instead.",
                UserWarning,
            )
            weights = self.balancer_.compute_weights(X, sample_weight=sample_weight)
        return _rescaled(weights, sum_float(read_rows(X, sample_weight).base))

    @available_if(_estimator_has("score"))
    def score(self, X: Table, y: Vector, sample_weight: Vector | None = None) -> float:
        """The estimator's score on rows raked to the targets.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Held-out rows.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Their targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Their base weights.

        Returns
        -------
        score : float
            ``estimator_.score(X, y, sample_weight=score_weights(X))``.
        """
        weights = self.score_weights(X, sample_weight=sample_weight)
        return self.estimator_.score(X, y, sample_weight=weights)

    @available_if(_estimator_has("predict"))
    def predict(self, X: Table, **params: Any) -> Any:
        """Predict with the fitted estimator.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Rows to predict.
        **params : dict
            Passed to the estimator's ``predict``.

        Returns
        -------
        y_pred : ndarray
            The estimator's predictions.
        """
        check_is_fitted(self)
        check_same_namespace(X, self._namespace, f"{type(self).__name__}.predict")
        if _routing_enabled():
            params = process_routing(self, "predict", **params).estimator.predict
        else:
            _raise_for_params(params, self, "predict")
        return self.estimator_.predict(X, **params)

    @available_if(_estimator_has("predict_proba"))
    def predict_proba(self, X: Table) -> Any:
        """Class probabilities from the fitted estimator.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Rows to predict.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            The estimator's probabilities.
        """
        check_is_fitted(self)
        check_same_namespace(X, self._namespace, f"{type(self).__name__}.predict_proba")
        return self.estimator_.predict_proba(X)

    @available_if(_estimator_has("predict_log_proba"))
    def predict_log_proba(self, X: Table) -> Any:
        """Log class probabilities from the fitted estimator.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Rows to predict.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            The estimator's log probabilities.
        """
        check_is_fitted(self)
        check_same_namespace(X, self._namespace, f"{type(self).__name__}.predict_log_proba")
        return self.estimator_.predict_log_proba(X)

    @available_if(_estimator_has("decision_function"))
    def decision_function(self, X: Table) -> Any:
        """Decision function of the fitted estimator.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Rows to score.

        Returns
        -------
        scores : ndarray
            The estimator's decision function.
        """
        check_is_fitted(self)
        check_same_namespace(X, self._namespace, f"{type(self).__name__}.decision_function")
        return self.estimator_.decision_function(X)

    @available_if(_estimator_has("transform"))
    def transform(self, X: Table) -> Any:
        """Transform with the fitted estimator.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Rows to transform.

        Returns
        -------
        X_new : ndarray
            The estimator's output.
        """
        check_is_fitted(self)
        check_same_namespace(X, self._namespace, f"{type(self).__name__}.transform")
        return self.estimator_.transform(X)

    @property
    def classes_(self) -> Any:
        """Classes of the fitted estimator."""
        return self.estimator_.classes_

    def get_metadata_routing(self) -> MetadataRouter:
        """Route ``fit`` metadata other than ``sample_weight`` to the estimator.

        ``sample_weight`` is this meta-estimator's own: it becomes the
        balancer's base weights, and the estimator always receives the
        balancing weights.

        Returns
        -------
        routing : MetadataRouter
            The routing information.

        Examples
        --------
        >>> from sklearn.linear_model import LogisticRegression
        >>> import skbalance as skb
        >>> meta = skb.BalancedEstimator(skb.MarginalBalancer(), LogisticRegression())
        >>> type(meta.get_metadata_routing()).__name__
        'MetadataRouter'
        """
        inner = get_routing_for_object(self.estimator)
        if isinstance(inner, MetadataRequest) and "sample_weight" in inner.fit.requests:
            # the estimator's sample_weight is ours to give (the balancing
            # weights): outer routers must not see it as the estimator's request
            inner.fit.add_request(param="sample_weight", alias=False)
        router = MetadataRouter(owner=self.__class__.__name__).add_self_request(self).add(
            estimator=inner,
            method_mapping=MethodMapping()
            .add(caller="fit", callee="fit")
            .add(caller="predict", callee="predict"),
        )
        return router
