"""Design-based regression: R survey's ``svyglm`` as scikit-learn estimators.

The coefficients solve the weighted estimating equations of a generalized
linear model with a canonical link, ``sum_i w_i x_i (y_i - mu_i) = 0``
(gaussian: identity, quasipoisson: log, quasibinomial: logit), with the
balanced (or design) weights ``w``. Their standard errors are those of the
totals ``sum_i w_i h_i`` of the influence values ``h_i = I^-1 x_i (y_i -
mu_i)``, ``I = sum_i w_i v_i x_i x_i'``, taken through the balancing and the
design exactly as every estimate of :class:`BalancedFunctionalEstimator`
(linearization with the calibration's residuals, or CR2); with replicate
weights, the model is refitted on every replicate's re-balanced weights, as
R does.

We do not wrap scikit-learn's ``LinearRegression`` or ``LogisticRegression``:
they minimise penalised or unweighted-scale objectives whose estimating
equations are not R's (``LogisticRegression`` penalises by default), and the
influence values need the exact score and information of the fit; a short
iteratively reweighted least squares gives both.
"""

from __future__ import annotations

import warnings
from numbers import Integral
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.special import expit
from scipy.stats import t as student_t
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.exceptions import ConvergenceWarning, DataConversionWarning
from sklearn.utils._param_validation import HasMethods, StrOptions
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from ._balancer import MarginalBalancer
from ._inference import BalancingFit, Statistic, estimate_statistics, replicate_fit_weights
from ._problem import balancing_steps
from ._rows import read_rows
from ._typing import Table, Vector
from .utils._array_api import to_numpy
from .utils._warnings import warn

__all__ = ["SurveyClassifier", "SurveyRegressor"]

_MAX_IRLS = 100


def _link_inverse(family, eta):
    if family == "gaussian":
        return eta
    if family == "poisson":
        return np.exp(np.minimum(eta, 700.0))
    return expit(eta)


def _variance(family, mu):
    if family == "gaussian":
        return np.ones_like(mu)
    if family == "poisson":
        return mu
    return mu * (1.0 - mu)


def _check_rank(design, names):
    """A clear error naming the collinear columns of a singular model matrix."""
    scale = np.maximum(np.sqrt(np.sum(design**2, axis=0)), 1e-300)
    _, singular, vt = np.linalg.svd(design / scale, full_matrices=False)
    null = singular < 1e-10 * singular.max()
    if null.any():
        combination = np.abs(vt[np.flatnonzero(null)[0]])
        involved = [names[j] for j in np.flatnonzero(combination > 1e-6)]
        raise ValueError(f"The model matrix is singular: {', '.join(map(repr, involved))} "
                         "are collinear (a combination of them is 0); drop one.")


def fit_glm(X, y, weights, family):
    """Weighted estimating equations of a canonical-link GLM, by IRLS.

    Returns the coefficients, the influence values ``h`` (n x p) and whether
    the iterations converged.
    """
    kept = weights > 0
    beta = np.zeros(X.shape[1])
    if family == "gaussian":
        XtW = X[kept].T * weights[kept]
        beta = np.linalg.solve(XtW @ X[kept], XtW @ y[kept])
        converged = True
    else:
        start = np.clip(y, 0.05, 0.95) if family == "binomial" else y + 0.1
        eta = np.log(start / (1 - start)) if family == "binomial" else np.log(start)
        converged = False
        for _ in range(_MAX_IRLS):
            mu = _link_inverse(family, eta)
            # kept off 0 so that separated classes (no finite solution) give
            # large finite coefficients, as R's glm, not a singular system
            v = np.maximum(_variance(family, mu), 1e-10)
            working = eta + (y - mu) / v
            XtW = X[kept].T * (weights * v)[kept]
            new = np.linalg.solve(XtW @ X[kept], XtW @ working[kept])
            step = np.max(np.abs(new - beta)) / max(1.0, np.max(np.abs(new)))
            beta, eta = new, X @ new
            if step < 1e-13:
                converged = True
                break
    mu = _link_inverse(family, X @ beta)
    v = np.maximum(_variance(family, mu), 1e-10)
    information = (X[kept].T * (weights * v)[kept]) @ X[kept]
    influence = (X * (y - mu)[:, None]) @ np.linalg.pinv(information, hermitian=True)
    influence[~kept] = 0.0
    return beta, influence, converged


class _SurveyModel(BaseEstimator):
    """What the regressor and the classifier share (private; not a mixin)."""

    _family = "gaussian"

    def _fit_model(self, X, y, sample_weight):
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the "
                             "target y is None.")
        rows = read_rows(X)
        if rows.on_device or rows.lazy:
            raise TypeError(f"{type(self).__name__} takes in-memory host data (NumPy, "
                            "pandas or polars).")
        validate_data(self, rows.fit_table, skip_check_array=True, reset=True)
        design = None
        if self.design is not None:
            design = self.design.resolve(rows, None if sample_weight is None
                                         else to_numpy(sample_weight))
            sample_weight = design.weights
        if self.balancer is not None:
            balancer = clone(self.balancer)
            given = rows if isinstance(balancer, MarginalBalancer) else X
            problem = balancer.fit_problem(given, sample_weight=sample_weight)
            weights, steps, method = balancer.weights_, balancing_steps(balancer), "balanced"
        else:
            balancer = MarginalBalancer(max_iter=0, tol=0)
            problem = balancer.fit_problem(rows.without_columns(), sample_weight=sample_weight)
            weights, steps, method = problem.base, 0, "empirical"
        weights = np.asarray(to_numpy(weights), dtype=np.float64)
        outcome = getattr(y, "name", None)  # a column of X given as y is no feature
        features = self._features(rows, design, outcome)
        matrix = self._matrix(rows, features)
        names = ["(Intercept)", *map(str, features)]
        design_matrix = np.column_stack([np.ones(rows.n_rows), matrix])
        inside = np.ones(rows.n_rows, dtype=bool)
        if self.domain is not None:
            labels = pd.Series(np.asarray(rows.column(self.domain), dtype=object))
            if self.domain_level is None:
                raise ValueError("domain= needs domain_level=: the level whose rows the "
                                 "model describes.")
            inside = (labels == self.domain_level).to_numpy()
            if not inside.any():
                raise ValueError(f"Level {self.domain_level!r} of {self.domain!r} has no row.")
        target = self._target(y, rows.n_rows)
        model_weights = np.where(inside, weights, 0.0)
        kept = model_weights > 0
        if self._family == "binomial" and np.ptp(target[kept]) == 0:
            raise ValueError("Among the rows of positive weight, y has a single class: a "
                             "logistic model needs both classes.")
        if int(kept.sum()) <= design_matrix.shape[1]:
            raise ValueError(f"The model has {design_matrix.shape[1]} coefficients and "
                             f"n_samples={int(kept.sum())} row(s) of positive weight.")
        _check_rank(design_matrix[kept], names)
        beta, influence, converged = fit_glm(design_matrix, target, model_weights,
                                             self._family)
        if not converged:
            warn(f"The {self._family} model's iterations did not converge in {_MAX_IRLS} "
                 "steps (separated classes, or counts too large?).", ConvergenceWarning)
        fit = BalancingFit(problem, problem.rows.to_rows(weights), steps, balancer, method)
        indicator = None if self.domain is None else inside * 1.0
        stats = [Statistic("total", name, None, None, influence[:, k], None, indicator)
                 for k, name in enumerate(names)]
        if design is not None and design.replicates is not None:
            covariance = self._replicate_covariance(X, design, design_matrix, target,
                                                    inside, beta)
            design_df = design.degrees_of_freedom
        else:
            table, covariance = estimate_statistics(
                fit, stats, design, linearization=self.linearization,
                return_covariance=True)
            design_df = float(table["df"].iloc[0])
        df = design_df - design_matrix.shape[1] + 1  # R's svyglm df.residual
        if df <= 0:
            raise ValueError(f"The design's {design_df:g} degrees of freedom leave none for "
                             f"{design_matrix.shape[1]} coefficients.")
        se = np.sqrt(np.diag(covariance))
        t = beta / se
        quantile = float(student_t.ppf(0.975, df))
        self.results_ = pd.DataFrame({
            "term": names, "estimate": beta, "std_error": se, "t": t,
            "p": 2 * student_t.sf(np.abs(t), df), "ci_low": beta - quantile * se,
            "ci_high": beta + quantile * se, "df": df})
        self.coef_ = beta[1:]
        self.intercept_ = float(beta[0])
        self.std_error_ = se
        self.vcov_ = covariance
        self.weights_ = weights
        self.features_ = features
        self.balancer_ = balancer
        return self

    def _replicate_covariance(self, X, design, matrix, target, inside, beta):
        """Refit the model on every replicate's re-balanced weights (R's svrepglm);
        a recipe (any weighter but a MarginalBalancer) is re-run on the rows."""
        replicates = replicate_fit_weights(self.balancer, X, design)
        estimates = []
        for r in range(replicates.weights.shape[1]):
            w = np.where(inside, replicates.weights[:, r], 0.0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                estimates.append(fit_glm(matrix, target, w, self._family)[0])
        thetas = np.asarray(estimates)
        centre = beta if replicates.mse else thetas.mean(axis=0)
        deviations = thetas - centre
        return replicates.scale * (deviations.T * replicates.rscales) @ deviations

    def _features(self, rows, design, outcome=None):
        if self.features is not None:
            features = list(self.features) if not isinstance(
                self.features, (str, Integral)) else [self.features]
            rows.check_columns(features)
            return features
        used = set()
        if self.balancer is not None and getattr(self.balancer, "targets", None):
            for key in self.balancer.targets:
                used.update(key if isinstance(key, tuple) else (key,))
        if self.design is not None:
            for spec in (self.design.clusters, self.design.strata, self.design.fpc,
                         self.design.weights):
                for item in (spec if isinstance(spec, list) else [spec]):
                    if isinstance(item, (str, Integral)):
                        used.add(item)
        if self.domain is not None:
            used.add(self.domain)
        if outcome is not None and rows.named:
            used.add(outcome)
        return [c for c in rows.columns if c not in used]

    def _matrix(self, rows, features):
        columns = []
        for column in features:
            values = rows.column(column)
            try:
                array = np.asarray(to_numpy(values) if not isinstance(values, pd.Series)
                                   else values.to_numpy(), dtype=np.float64)
            except (TypeError, ValueError) as exc:
                kind = TypeError if isinstance(exc, TypeError) else ValueError
                raise kind(f"Feature {column!r} must be numeric ({exc}); encode it first "
                           "(for instance with OneHotEncoder in a Pipeline).") from exc
            if not np.all(np.isfinite(array)):
                raise ValueError(f"Feature {column!r} has missing or infinite values.")
            columns.append(array)
        return np.column_stack(columns) if columns else np.empty((rows.n_rows, 0))

    def _linear_predictor(self, X):
        check_is_fitted(self, "coef_")
        rows = read_rows(X)
        validate_data(self, rows.fit_table, skip_check_array=True, reset=False)
        return self.intercept_ + self._matrix(rows, self.features_) @ self.coef_


_PARAMETERS = {
    "balancer": [HasMethods(["fit_problem"]), None],
    "design": [HasMethods(["resolve"]), None],
    "features": ["array-like", str, Integral, None],
    "domain": [str, Integral, None],
    "domain_level": [None, str, Integral, float, bool],
    "linearization": [StrOptions({"design", "cr2"})],
}

class SurveyRegressor(RegressorMixin, _SurveyModel):
    """Design-based linear or Poisson regression (R survey's ``svyglm``).

    Parameters
    ----------
    balancer : MarginalBalancer or None, default=None
        Balances the weights first; every standard error then counts the
        balancing (the calibration's residuals, or re-balanced replicates).
        None: the design (or sample) weights alone, R's ``svyglm`` on an
        uncalibrated design.
    family : {"gaussian", "poisson"}, default="gaussian"
        R's ``gaussian()`` (least squares) or ``quasipoisson`` (log link, a
        nonnegative outcome).
    design : SurveyDesign or None, default=None
        How the sample was drawn; None: every row an independent draw.
    features : list of labels or None, default=None
        The model's covariates (numeric columns of ``X``); an intercept is
        always added. None: every column of ``X`` that the balancer's targets,
        the design, the domain and the outcome (a Series named as a column of
        ``X``) do not name.
    domain : label or None, default=None
        Fit the model on the rows whose ``domain`` column equals
        ``domain_level``; the other rows keep their place in the design with
        weight 0 in the model (R's ``svyglm(..., subset(design, ...))``).
    domain_level : object, default=None
        The level of ``domain`` the model describes.
    linearization : {"design", "cr2"}, default="design"
        As in :class:`BalancedFunctionalEstimator`.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        The coefficients of the features.
    intercept_ : float
        The intercept.
    std_error_ : ndarray of shape (n_features + 1,)
        Standard errors, the intercept's first.
    vcov_ : ndarray of shape (n_features + 1, n_features + 1)
        Their covariance matrix.
    results_ : pandas.DataFrame
        ``term``, ``estimate``, ``std_error``, ``t``, ``p`` (two-sided),
        ``ci_low``, ``ci_high`` (95%) and ``df`` (the design's degrees of
        freedom minus the coefficients plus one, R's ``df.residual``).
    weights_ : ndarray of shape (n_samples,)
        The weights of the fit.
    features_ : list
        The features used.

    Examples
    --------
    >>> import skbalance as skb
    >>> clus1 = skb.datasets.load_api("clus1")
    >>> model = skb.SurveyRegressor(
    ...     design=skb.SurveyDesign(clusters="dnum", fpc="fpc"),
    ...     features=["ell", "meals", "mobility"])
    >>> model.fit(clus1, clus1["api00"], sample_weight=clus1["pw"]).results_["df"].iloc[0]
    np.float64(11.0)
    """

    _parameter_constraints: dict = {**_PARAMETERS,
                                    "family": [StrOptions({"gaussian", "poisson"})]}

    def __init__(self, balancer: Any = None, *, family: Literal["gaussian", "poisson"] =
                 "gaussian", design: Any = None, features: Any = None, domain: Any = None,
                 domain_level: Any = None,
                 linearization: Literal["design", "cr2"] = "design") -> None:
        self.balancer = balancer
        self.family = family
        self.design = design
        self.features = features
        self.domain = domain
        self.domain_level = domain_level
        self.linearization = linearization

    @property
    def _family(self):
        return self.family

    def _target(self, y, n_rows):
        target = np.asarray(y, dtype=np.float64)
        if target.ndim == 2 and target.shape[1] == 1:
            warn("A column-vector y was passed when a 1d array was expected.",
                 DataConversionWarning)
        target = target.reshape(-1) if target.ndim == 2 and target.shape[1] == 1 else target
        if target.ndim != 1:
            raise ValueError(f"y must be one-dimensional; got shape {target.shape}.")
        if target.shape[0] != n_rows:
            raise ValueError(f"y has {target.shape[0]} values for {n_rows} rows.")
        if not np.all(np.isfinite(target)):
            raise ValueError("y has missing or infinite values.")
        if self.family == "poisson" and np.any(target < 0):
            raise ValueError("family='poisson' needs a nonnegative outcome; y has "
                             f"{int(np.sum(target < 0))} negative value(s).")
        return target

    def fit(self, X: Table, y: Vector, sample_weight: Vector | None = None
            ) -> SurveyRegressor:
        """Fit the model and its design-based standard errors.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_columns)
            Features, and the balancing, design and domain columns.
        y : array-like of shape (n_samples,)
            The outcome.
        sample_weight : array-like of shape (n_samples,) or None, default=None
            Base (design) weights.

        Returns
        -------
        self : SurveyRegressor
            The fitted model.

        Examples
        --------
        >>> import skbalance as skb
        >>> clus1 = skb.datasets.load_api("clus1")
        >>> model = skb.SurveyRegressor(features=["meals"]).fit(clus1, clus1["api00"])
        >>> round(float(model.coef_[0]), 3)
        -3.354
        """
        self._validate_params()
        return self._fit_model(X, y, sample_weight)

    def predict(self, X: Table) -> np.ndarray:
        """Predict every row's mean: ``X b`` (gaussian) or ``exp(X b)``.

        Parameters
        ----------
        X : DataFrame or array-like
            Rows with the features.

        Returns
        -------
        ndarray of shape (n_samples,)
            The fitted means.

        Examples
        --------
        >>> import skbalance as skb
        >>> clus1 = skb.datasets.load_api("clus1")
        >>> model = skb.SurveyRegressor(features=["meals"]).fit(clus1, clus1["api00"])
        >>> model.predict(clus1[:2]).shape
        (2,)
        """
        return _link_inverse(self.family, self._linear_predictor(X))


    def score(self, X: Table, y: Vector, sample_weight: Vector | None = None) -> float:
        """Return the coefficient of determination of the predictions.

        Parameters
        ----------
        X : DataFrame or array-like
            Rows with the features.
        y : array-like of shape (n_samples,)
            The outcome.
        sample_weight : array-like of shape (n_samples,) or None, default=None
            Weights of the rows in the score.

        Returns
        -------
        float
            ``1 - sum w (y - y_hat)^2 / sum w (y - mean y)^2``.

        Examples
        --------
        >>> import skbalance as skb
        >>> clus1 = skb.datasets.load_api("clus1")
        >>> model = skb.SurveyRegressor(features=["meals"]).fit(clus1, clus1["api00"])
        >>> 0 < model.score(clus1, clus1["api00"]) < 1
        True
        """
        return super().score(X, y, sample_weight=sample_weight)


class SurveyClassifier(ClassifierMixin, _SurveyModel):
    """Design-based logistic regression (R survey's ``svyglm(family=quasibinomial)``).

    The outcome has two classes; the model is that of the second (in sorted
    order), as R's 0/1 outcome.

    Parameters
    ----------
    balancer : MarginalBalancer or None, default=None
        Balances the weights first; every standard error then counts the
        balancing (the calibration's residuals, or re-balanced replicates).
        None: the design (or sample) weights alone, R's ``svyglm`` on an
        uncalibrated design.
    design : SurveyDesign or None, default=None
        How the sample was drawn; None: every row an independent draw.
    features : list of labels or None, default=None
        The model's covariates (numeric columns of ``X``); an intercept is
        always added. None: every column of ``X`` that the balancer's targets,
        the design, the domain and the outcome (a Series named as a column of
        ``X``) do not name.
    domain : label or None, default=None
        Fit the model on the rows whose ``domain`` column equals
        ``domain_level``; the other rows keep their place in the design with
        weight 0 in the model (R's ``svyglm(..., subset(design, ...))``).
    domain_level : object, default=None
        The level of ``domain`` the model describes.
    linearization : {"design", "cr2"}, default="design"
        As in :class:`BalancedFunctionalEstimator`.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        The coefficients of the features.
    intercept_ : float
        The intercept.
    std_error_ : ndarray of shape (n_features + 1,)
        Standard errors, the intercept's first.
    vcov_ : ndarray of shape (n_features + 1, n_features + 1)
        Their covariance matrix.
    results_ : pandas.DataFrame
        ``term``, ``estimate``, ``std_error``, ``t``, ``p`` (two-sided),
        ``ci_low``, ``ci_high`` (95%) and ``df`` (the design's degrees of
        freedom minus the coefficients plus one, R's ``df.residual``).
    weights_ : ndarray of shape (n_samples,)
        The weights of the fit.
    features_ : list
        The features used.
    classes_ : ndarray of shape (2,)
        The two classes.

    Examples
    --------
    >>> import skbalance as skb
    >>> clus1 = skb.datasets.load_api("clus1")
    >>> model = skb.SurveyClassifier(design=skb.SurveyDesign(clusters="dnum", fpc="fpc"),
    ...                              features=["ell", "meals"])
    >>> model.fit(clus1, clus1["sch.wide"], sample_weight=clus1["pw"]).classes_.tolist()
    ['No', 'Yes']
    """

    _parameter_constraints: dict = dict(_PARAMETERS)
    _family = "binomial"

    def __init__(self, balancer: Any = None, *, design: Any = None, features: Any = None,
                 domain: Any = None, domain_level: Any = None,
                 linearization: Literal["design", "cr2"] = "design") -> None:
        self.balancer = balancer
        self.design = design
        self.features = features
        self.domain = domain
        self.domain_level = domain_level
        self.linearization = linearization

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False  # a binary outcome, as R's quasibinomial
        return tags

    def _target(self, y, n_rows):
        labels = np.asarray(y)
        if labels.ndim == 2 and labels.shape[1] == 1:
            warn("A column-vector y was passed when a 1d array was expected.",
                 DataConversionWarning)
        labels = labels.reshape(-1) if labels.ndim == 2 and labels.shape[1] == 1 else labels
        if labels.ndim != 1:
            raise ValueError(f"y must be one-dimensional; got shape {labels.shape}.")
        if labels.dtype.kind in "fc" and not np.all(np.isfinite(labels)):
            raise ValueError("Input y contains NaN or infinity.")
        kind = type_of_target(labels)
        if kind not in ("binary", "multiclass"):
            raise ValueError(f"Unknown label type: {kind}. SurveyClassifier needs two "
                             "classes.")
        if labels.shape[0] != n_rows:
            raise ValueError(f"y has {labels.shape[0]} values for {n_rows} rows.")
        if pd.isna(pd.Series(labels)).any():
            raise ValueError("y has missing values.")
        self.classes_ = np.unique(labels)
        if self.classes_.shape[0] != 2:
            raise ValueError(f"Only binary classification is supported: SurveyClassifier "
                             f"needs an outcome with two classes; y has "
                             f"{self.classes_.shape[0]} class(es): "
                             f"{self.classes_[:5].tolist()}.")
        return (labels == self.classes_[1]) * 1.0

    def fit(self, X: Table, y: Vector, sample_weight: Vector | None = None
            ) -> SurveyClassifier:
        """Fit the model and its design-based standard errors.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_columns)
            Features, and the balancing, design and domain columns.
        y : array-like of shape (n_samples,)
            The outcome: two classes.
        sample_weight : array-like of shape (n_samples,) or None, default=None
            Base (design) weights.

        Returns
        -------
        self : SurveyClassifier
            The fitted model.

        Examples
        --------
        >>> import skbalance as skb
        >>> clus1 = skb.datasets.load_api("clus1")
        >>> model = skb.SurveyClassifier(features=["meals"]).fit(clus1, clus1["sch.wide"])
        >>> model.classes_.tolist()
        ['No', 'Yes']
        """
        self._validate_params()
        return self._fit_model(X, y, sample_weight)

    def predict_proba(self, X: Table) -> np.ndarray:
        """Predict the probabilities of the two classes.

        Parameters
        ----------
        X : DataFrame or array-like
            Rows with the features.

        Returns
        -------
        ndarray of shape (n_samples, 2)
            The probabilities, in the order of ``classes_``.

        Examples
        --------
        >>> import skbalance as skb
        >>> clus1 = skb.datasets.load_api("clus1")
        >>> model = skb.SurveyClassifier(features=["meals"]).fit(clus1, clus1["sch.wide"])
        >>> model.predict_proba(clus1[:2]).sum(axis=1).round(12).tolist()
        [1.0, 1.0]
        """
        p = _link_inverse("binomial", self._linear_predictor(X))
        return np.column_stack([1 - p, p])

    def decision_function(self, X: Table) -> np.ndarray:
        """Compute the log odds of the second class.

        Parameters
        ----------
        X : DataFrame or array-like
            Rows with the features.

        Returns
        -------
        ndarray of shape (n_samples,)
            The log odds.

        Examples
        --------
        >>> import skbalance as skb
        >>> clus1 = skb.datasets.load_api("clus1")
        >>> model = skb.SurveyClassifier(features=["meals"]).fit(clus1, clus1["sch.wide"])
        >>> model.decision_function(clus1[:2]).shape
        (2,)
        """
        return self._linear_predictor(X)

    def predict(self, X: Table) -> np.ndarray:
        """Predict the more likely class of every row.

        Parameters
        ----------
        X : DataFrame or array-like
            Rows with the features.

        Returns
        -------
        ndarray of shape (n_samples,)
            The classes.

        Examples
        --------
        >>> import skbalance as skb
        >>> clus1 = skb.datasets.load_api("clus1")
        >>> model = skb.SurveyClassifier(features=["meals"]).fit(clus1, clus1["sch.wide"])
        >>> set(model.predict(clus1)) <= {"No", "Yes"}
        True
        """
        above = self._linear_predictor(X) > 0
        return self.classes_[above * 1]

    def score(self, X: Table, y: Vector, sample_weight: Vector | None = None) -> float:
        """Return the (weighted) share of rows whose class is predicted right.

        Parameters
        ----------
        X : DataFrame or array-like
            Rows with the features.
        y : array-like of shape (n_samples,)
            The classes.
        sample_weight : array-like of shape (n_samples,) or None, default=None
            Weights of the rows in the score.

        Returns
        -------
        float
            The accuracy.

        Examples
        --------
        >>> import skbalance as skb
        >>> clus1 = skb.datasets.load_api("clus1")
        >>> model = skb.SurveyClassifier(features=["meals"]).fit(clus1, clus1["sch.wide"])
        >>> 0.5 < model.score(clus1, clus1["sch.wide"]) <= 1
        True
        """
        return super().score(X, y, sample_weight=sample_weight)
