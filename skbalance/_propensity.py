"""Inverse-propensity weighting of a sample against a reference sample (balance's ``ipw``).

A classifier learns the probability ``p(x)`` that a row with covariates ``x``
comes from the sample rather than from the reference sample of the
population (each side weighted by its design weights, the reference scaled to
the sample's total, "balanced classes"). A sample row then stands for
``(1 - p) / p`` reference rows per unit of its base weight: its weight is
``d (1 - p) / p``, optionally trimmed, scaled so the weights sum to the
reference's total.
"""

from __future__ import annotations

import inspect
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.validation import check_is_fitted, has_fit_parameter

from ._covariate_balance import balance_table
from ._rows import kish_effective_size
from ._trimming import nonresponse_weights
from ._typing import Table, Vector
from .utils._validation import column_label, level_repr

__all__ = ["NonresponseAdjuster", "PropensityBalancer"]


def _frame(X, name):
    """``X`` as a DataFrame (an array's columns are numbered)."""
    if isinstance(X, pd.DataFrame):
        return X
    array = np.asarray(X)
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D (rows by covariates); got shape {array.shape}.")
    return pd.DataFrame(array)


def _base_weights(weights, n_rows, name):
    """Finite, nonnegative weights with a positive total (1 for every row by default)."""
    if weights is None:
        return np.ones(n_rows)
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.shape[0] != n_rows:
        raise ValueError(f"{name} has {w.shape[0]} values for {n_rows} rows.")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f"{name} must be finite and nonnegative with a positive total.")
    return w


def _is_numeric(values):
    return values.dtype.kind in "biuf" and values.dtype.kind != "b"


class _Encoding:
    """Numeric columns as they are, categorical ones as an indicator per level
    (every level of the sample and the reference; no level is dropped, so the
    classifier's penalty treats levels alike)."""

    def __init__(self, sample, reference, columns):
        self.columns = columns
        self.levels = {}
        for column in columns:
            if not _is_numeric(sample[column]):
                levels = pd.unique(pd.concat([sample[column], reference[column]],
                                             ignore_index=True))
                self.levels[column] = sorted(levels, key=str)

    def names(self):
        return [name for column in self.columns for name in (
            [f"{column}={level}" for level in self.levels[column]]
            if column in self.levels else [str(column)])]

    def transform(self, frame, name):
        blocks = []
        for column in self.columns:
            values = frame[column]
            if column not in self.levels:
                blocks.append(values.to_numpy(dtype=np.float64)[:, None])
                continue
            levels = self.levels[column]
            codes, seen = pd.factorize(values)  # each row's level, looked up once per level
            position = pd.Index(levels).get_indexer(seen)
            if np.any(position < 0):
                level = seen[int(np.flatnonzero(position < 0)[0])]
                raise ValueError(f"{name} has level {level_repr(level)} of column "
                                 f"{column_label(column)}, which the fit did not see.")
            codes = position[codes]
            blocks.append((codes[:, None] == np.arange(len(levels))[None, :]) * 1.0)
        return np.hstack(blocks)


def default_classifier():
    """The propensity model used when none is given: the columns standardized
    (so the L2 penalty treats them alike whatever their units, as balance
    does), then ``LogisticRegression(solver="newton-cholesky")``, which
    converges in a few steps whatever the columns' scales.

    Returns
    -------
    Pipeline
        Unfitted.

    Examples
    --------
    >>> from skbalance._propensity import default_classifier
    >>> [name for name, _ in default_classifier().steps]
    ['standardscaler', 'logisticregression']
    """
    return make_pipeline(StandardScaler(),
                         LogisticRegression(solver="newton-cholesky", max_iter=1000))


def _fit_weighted(classifier, Z, y, weights):
    """Fit ``classifier`` with row weights, wherever its ``fit`` takes them."""
    if isinstance(classifier, Pipeline):
        return classifier.fit(Z, y, **{f"{classifier.steps[-1][0]}__sample_weight": weights})
    takes_params = any(p.kind is inspect.Parameter.VAR_KEYWORD
                       for p in inspect.signature(classifier.fit).parameters.values())
    if has_fit_parameter(classifier, "sample_weight") or takes_params:
        return classifier.fit(Z, y, sample_weight=weights)
    raise ValueError(f"{type(classifier).__name__}.fit takes no sample_weight: the design "
                     "weights of the sample and the reference could not count. Use a "
                     "classifier that takes them.")


def _sample_probability(classifier, Z):
    """The classifier's probability of the sample (label 1) for every row."""
    probabilities = np.asarray(classifier.predict_proba(Z), dtype=np.float64)
    classes = list(getattr(classifier, "classes_", [0, 1]))
    return probabilities[:, classes.index(1)]


class PropensityBalancer(BaseEstimator):
    """Weight a sample to a reference sample of its population by inverse propensity.

    Any scikit-learn classifier with ``predict_proba`` (logistic regression
    by default) learns the probability ``p`` that a row is in the sample
    rather than in the reference, each side weighted by its design weights
    and the reference's scaled to the sample's total (balance's
    ``balance_classes``). A sample row's weight is ``d (1 - p) / p`` (``d``
    its base weight), optionally trimmed, scaled to sum to the reference's
    total: balance's ``ipw`` with its own classifier and no transformations.

    Parameters
    ----------
    reference : DataFrame or array-like of shape (n_reference, n_features)
        Rows of the population (a census, a frame, or a probability sample).
    reference_weight : array-like of shape (n_reference,), str or None, default=None
        The reference rows' weights, or the label of the reference's column
        that holds them (then not a covariate); None: 1 each.
    classifier : classifier or None, default=None
        A scikit-learn classifier with ``fit`` (taking ``sample_weight``) and
        ``predict_proba``; a ``GridSearchCV`` around one tunes its
        hyper-parameters. None: the default (standardized
        columns, then an L2 logistic regression fitted by Newton's method).
    columns : list or None, default=None
        The covariates of the model; None: every column of ``X`` (each must be
        in the reference).
    encode : bool, default=True
        Give the classifier numeric columns as they are and an indicator per
        level of the others; False: the raw columns (for a pipeline that
        encodes them itself).
    trim_mean_ratio : float or None, default=None
        Cap the weights at this multiple of their mean before scaling
        (balance's ``weight_trimming_mean_ratio``).
    max_de : float or None, default=None
        Cap the design effect (Kish's ``n sum w^2 / (sum w)^2``) of the
        weights: the weights are capped at the largest multiple of their
        mean that keeps it at ``max_de`` or below (the least trimming that
        meets the cap). balance instead picks from a fixed grid of ratios
        by covariate balance.

    Attributes
    ----------
    weights_ : ndarray of shape (n_samples,)
        The weights; they sum to the reference's total.
    propensity_ : ndarray of shape (n_samples,)
        Every sample row's fitted probability of being in the sample.
    classifier_ : classifier
        The fitted classifier.
    trim_cap_ : float
        The cap on ``d (1 - p) / p`` (inf: no trimming).
    scale_ : float
        The factor that brings the capped weights to the reference's total.
    design_effect_, effective_sample_size_ : float
        Kish's design effect and effective size of the weights.
    feature_names_in_ : ndarray of str
        The covariates.
    n_features_in_ : int
        Their number.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> import skbalance as skb
    >>> rng = np.random.default_rng(0)
    >>> population = pd.DataFrame({"age": rng.normal(50, 10, 2000)})
    >>> chosen = rng.random(2000) < 0.3 * np.exp(-(population.age - 50) / 15)  # the young
    >>> sample = population[chosen]
    >>> round(float(sample.age.mean()), 1)
    43.9
    >>> ipw = skb.PropensityBalancer(population).fit(sample)
    >>> weighted_mean = np.average(sample.age, weights=ipw.weights_)
    >>> round(float(ipw.weights_.sum())), round(float(weighted_mean), 1)
    (2000, 49.5)
    """

    _parameter_constraints: dict = {
        "reference": ["array-like"],
        "reference_weight": ["array-like", str, None],
        "classifier": [HasMethods(["fit", "predict_proba"]), None],
        "columns": [list, None],
        "encode": ["boolean"],
        "trim_mean_ratio": [Interval(Real, 0, None, closed="neither"), None],
        "max_de": [Interval(Real, 1, None, closed="left"), None],
    }

    def __init__(self, reference: Table, *, reference_weight: Vector | str | None = None,
                 classifier: Any = None, columns: list | None = None, encode: bool = True,
                 trim_mean_ratio: float | None = None, max_de: float | None = None) -> None:
        self.reference = reference
        self.reference_weight = reference_weight
        self.classifier = classifier
        self.columns = columns
        self.encode = encode
        self.trim_mean_ratio = trim_mean_ratio
        self.max_de = max_de

    def fit(self, X: Table, y: None = None, sample_weight: Vector | None = None
            ) -> PropensityBalancer:
        """Fit the propensity model and weigh the sample.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            The sample's covariates.
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), default=None
            The sample's base (design) weights.

        Returns
        -------
        self : PropensityBalancer
            The fitted weighter.

        Examples
        --------
        >>> import pandas as pd
        >>> import skbalance as skb
        >>> from sklearn.linear_model import LogisticRegression
        >>> reference = pd.DataFrame({"g": ["a", "a", "b", "b"]})
        >>> sample = pd.DataFrame({"g": ["a", "a", "a", "b"]})
        >>> saturated = LogisticRegression(C=1e6)  # (nearly) unpenalized
        >>> w = skb.PropensityBalancer(reference, classifier=saturated).fit(sample).weights_
        >>> [round(float(v), 3) for v in w]
        [0.667, 0.667, 0.667, 2.0]
        """
        self._validate_params()
        if self.trim_mean_ratio is not None and self.max_de is not None:
            raise ValueError("Give trim_mean_ratio or max_de, not both: max_de chooses the "
                             "trimming.")
        sample = _frame(X, "X")
        reference, reference_weight = self._reference()
        columns = list(sample.columns) if self.columns is None else list(self.columns)
        self._check_columns(sample, reference, columns)
        d = _base_weights(sample_weight, sample.shape[0], "sample_weight")
        self._check_coverage(sample, d, reference, reference_weight, columns)
        if self.encode:
            self._encoding = _Encoding(sample, reference, columns)
            Z_sample = self._encoding.transform(sample, "X")
            Z_reference = self._encoding.transform(reference, "The reference")
            Z = np.vstack([Z_sample, Z_reference])
        else:
            self._encoding = None
            Z_sample = sample[columns]
            Z = pd.concat([sample[columns], reference[columns]], ignore_index=True)
        y_model = np.concatenate([np.ones(sample.shape[0]), np.zeros(reference.shape[0])])
        model_weights = np.concatenate([d, reference_weight * (d.sum() /
                                                               reference_weight.sum())])
        classifier = (clone(self.classifier) if self.classifier is not None
                      else default_classifier())
        self.classifier_ = _fit_weighted(classifier, Z, y_model, model_weights)
        self.propensity_ = self._probabilities(Z_sample, sample.index)
        raw = d * (1 - self.propensity_) / self.propensity_
        self.trim_cap_ = self._cap(raw)
        capped = np.minimum(raw, self.trim_cap_)
        self.scale_ = float(reference_weight.sum() / capped.sum())
        self.weights_ = capped * self.scale_
        self.design_effect_ = _design_effect(self.weights_)
        self.effective_sample_size_ = kish_effective_size(self.weights_)
        self.columns_ = columns
        self.feature_names_in_ = np.asarray([str(c) for c in columns], dtype=object)
        self.n_features_in_ = len(columns)
        return self

    def compute_weights(self, X: Table, sample_weight: Vector | None = None) -> np.ndarray:
        """Weigh new rows with the fitted model, cap and scale.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Rows with the covariates of ``fit``.
        sample_weight : array-like of shape (n_samples,), default=None
            Their base weights.

        Returns
        -------
        ndarray of shape (n_samples,)
            ``min(d (1 - p) / p, trim_cap_) * scale_``: on the rows of
            ``fit``, ``weights_``.

        Examples
        --------
        >>> import pandas as pd
        >>> import skbalance as skb
        >>> from sklearn.linear_model import LogisticRegression
        >>> reference = pd.DataFrame({"g": ["a", "a", "b", "b"]})
        >>> sample = pd.DataFrame({"g": ["a", "a", "a", "b"]})
        >>> ipw = skb.PropensityBalancer(reference, classifier=LogisticRegression(C=1e6))
        >>> [round(float(v), 3) for v in ipw.fit(sample).compute_weights(
        ...     pd.DataFrame({"g": ["b"]}))]
        [2.0]
        """
        check_is_fitted(self, "classifier_")
        frame = _frame(X, "X")
        missing = [c for c in self.columns_ if c not in frame.columns]
        if missing:
            raise ValueError(f"X lacks the covariate {column_label(missing[0])} of the fit.")
        d = _base_weights(sample_weight, frame.shape[0], "sample_weight")
        Z = (self._encoding.transform(frame, "X") if self._encoding is not None
             else frame[self.columns_])
        p = self._probabilities(Z, frame.index)
        return np.minimum(d * (1 - p) / p, self.trim_cap_) * self.scale_

    def balance_report(self, X: Table, sample_weight: Vector | None = None,
                       covariates: list | None = None) -> pd.DataFrame:
        """Covariate balance of the sample against the reference, before and after.

        Parameters
        ----------
        X : DataFrame of shape (n_samples, n_features)
            The rows of ``fit`` (and any other covariates the reference has).
        sample_weight : array-like of shape (n_samples,), default=None
            Their base weights, as given to ``fit``.
        covariates : list or None, default=None
            The columns to compare (None: every column both have).

        Returns
        -------
        pandas.DataFrame
            See :func:`skbalance.covariate_balance`: ASMD and distances per
            covariate, before (base weights) and after (``weights_``).

        Examples
        --------
        >>> import pandas as pd
        >>> import skbalance as skb
        >>> from sklearn.linear_model import LogisticRegression
        >>> reference = pd.DataFrame({"g": ["a", "a", "b", "b"]})
        >>> sample = pd.DataFrame({"g": ["a", "a", "a", "b"]})
        >>> ipw = skb.PropensityBalancer(reference, classifier=LogisticRegression(C=1e6))
        >>> report = ipw.fit(sample).balance_report(sample)
        >>> report.loc[("g", "(all)"), ["asmd_before", "asmd_after"]].round(3).tolist()
        [0.433, 0.0]
        """
        check_is_fitted(self, "classifier_")
        reference, reference_weight = self._reference()
        weights = self.compute_weights(X, sample_weight=sample_weight)
        return balance_table(X, weights, reference, sample_weight=sample_weight,
                             target_weight=reference_weight, covariates=covariates)

    def _reference(self):
        """The reference rows (their weight column dropped) and weights."""
        reference = _frame(self.reference, "reference")
        weight = self.reference_weight
        if isinstance(weight, str):
            if weight not in reference.columns:
                raise ValueError(f"reference_weight names column {column_label(weight)}, "
                                 "which the reference lacks.")
            values = reference[weight]
            reference = reference.drop(columns=weight)
            return reference, _base_weights(values, reference.shape[0], "reference_weight")
        return reference, _base_weights(weight, reference.shape[0], "reference_weight")

    @staticmethod
    def _check_columns(sample, reference, columns):
        for column in columns:
            for frame, name in ((sample, "X"), (reference, "The reference")):
                if column not in frame.columns:
                    raise ValueError(f"{name} lacks the covariate {column_label(column)}.")
                n_missing = int(frame[column].isna().sum())
                if n_missing:
                    raise ValueError(f"{name} has {n_missing} missing value(s) in "
                                     f"{column_label(column)}: fill them or add a level "
                                     "for them (no row is dropped silently).")

    @staticmethod
    def _check_coverage(sample, d, reference, reference_weight, columns):
        """A level the reference has (with weight) and the sample lacks
        cannot be weighted to: no sample row stands for it."""
        for column in columns:
            if _is_numeric(sample[column]):
                continue
            present = pd.Index(pd.unique(sample[column][d > 0]))
            levels = pd.Index(pd.unique(reference[column][reference_weight > 0]))
            for level in levels[~levels.isin(present)][:1]:
                raise ValueError(
                        f"The reference has level {level_repr(level)} of "
                        f"{column_label(column)}, which no sample row of positive weight "
                        "has: no weighting of the sample can stand for those reference "
                        "rows. Merge the level with another, or drop those reference rows.")

    def _probabilities(self, Z, index):
        """Fitted sample probabilities, strictly inside (0, 1) (else an error naming rows)."""
        p = _sample_probability(self.classifier_, Z)
        bad = np.flatnonzero(~((p > 0) & (p < 1)))
        if bad.size:
            rows = ", ".join(repr(label) for label in list(index[bad[:5]]))
            raise ValueError(
                f"The classifier gives {bad.size} row(s) a propensity of exactly 0 or 1 "
                f"(rows {rows}{', ...' if bad.size > 5 else ''}): their inverse-propensity "
                "weight is 0 or infinite. Regularize the classifier or coarsen the "
                "covariates that separate the sample from the reference.")
        return p

    def _cap(self, raw):
        """The cap on the raw weights: trim_mean_ratio times their mean, or the
        largest cap that meets max_de (inf: none)."""
        mean = float(raw.mean())
        if self.trim_mean_ratio is not None:
            return float(self.trim_mean_ratio) * mean
        if self.max_de is None or _design_effect(raw) <= self.max_de:
            return np.inf
        # the design effect falls as the cap falls (to 1 at a cap at the
        # smallest weight): bisection on the cap
        low, high = float(raw[raw > 0].min()), float(raw.max())
        for _ in range(200):
            middle = (low + high) / 2
            if _design_effect(np.minimum(raw, middle)) <= self.max_de:
                low = middle
            else:
                high = middle
            if high - low <= 1e-12 * high:
                break
        return low


def _design_effect(weights):
    """Kish's ``n sum w^2 / (sum w)^2`` over the rows of positive weight."""
    return np.count_nonzero(weights) / kish_effective_size(weights)


class NonresponseAdjuster(BaseEstimator):
    """Weighting-class nonresponse adjustment as a weighting step.

    Every respondent's weight is multiplied by its class's total weight over
    its respondents' (:func:`nonresponse_weights`); nonrespondents get weight
    0 and stay in the rows (and the design). The classes are given, or made
    from a response propensity model: a classifier of responding on the
    covariates (weighted by the base weights), its fitted probabilities cut
    at their weighted quantiles into ``n_classes`` groups (propensity
    stratification, as quintiles are usual). In a :class:`WeightingRecipe`,
    nonresponse then raking is ``[("nonresponse", NonresponseAdjuster(...)),
    ("rake", MarginalBalancer(...))]``.

    Parameters
    ----------
    response : label
        The column of ``X`` that says whether each row responded (booleans or 0/1).
    classes : label, list of labels or None, default=None
        The column(s) whose levels (or combinations) are the classes; None:
        classes from the response propensity.
    classifier : classifier or None, default=None
        The response propensity model (``fit`` with ``sample_weight``,
        ``predict_proba``); None: as PropensityBalancer's. Only without
        ``classes``.
    columns : list or None, default=None
        The propensity model's covariates; None: every column but ``response``.
    n_classes : int, default=5
        The number of propensity classes.

    Attributes
    ----------
    weights_ : ndarray of shape (n_samples,)
        The adjusted weights (0 for nonrespondents).
    class_factors_ : dict
        Every class's factor.
    propensity_ : ndarray of shape (n_samples,)
        With propensity classes: every row's fitted response probability.
    cut_points_ : ndarray of shape (n_classes - 1,)
        With propensity classes: the probabilities between classes.

    Examples
    --------
    >>> import pandas as pd
    >>> import skbalance as skb
    >>> X = pd.DataFrame({"region": ["a", "a", "b", "b"], "responded": [1, 0, 1, 1]})
    >>> skb.NonresponseAdjuster("responded", classes="region").fit(
    ...     X, sample_weight=[1.0, 1.0, 2.0, 2.0]).weights_.tolist()
    [2.0, 0.0, 2.0, 2.0]
    """

    _parameter_constraints: dict = {
        "response": [str, Integral],
        "classes": [str, Integral, list, None],
        "classifier": [HasMethods(["fit", "predict_proba"]), None],
        "columns": [list, None],
        "n_classes": [Interval(Integral, 2, None, closed="left")],
    }

    def __init__(self, response: Any, *, classes: Any = None, classifier: Any = None,
                 columns: list | None = None, n_classes: int = 5) -> None:
        self.response = response
        self.classes = classes
        self.classifier = classifier
        self.columns = columns
        self.n_classes = n_classes

    def fit(self, X: Table, y: None = None, sample_weight: Vector | None = None
            ) -> NonresponseAdjuster:
        """Make the classes and adjust the respondents' weights.

        Parameters
        ----------
        X : DataFrame of shape (n_samples, n_features)
            The response column and the class (or covariate) columns.
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), default=None
            Base weights of every row, respondent or not.

        Returns
        -------
        self : NonresponseAdjuster
            The fitted adjuster.

        Examples
        --------
        >>> import pandas as pd
        >>> import skbalance as skb
        >>> X = pd.DataFrame({"g": ["a", "a", "b"], "r": [True, False, True]})
        >>> skb.NonresponseAdjuster("r", classes="g").fit(X).class_factors_
        {'a': 2.0, 'b': 1.0}
        """
        self._validate_params()
        frame = _frame(X, "X")
        d = _base_weights(sample_weight, frame.shape[0], "sample_weight")
        responded = self._responded(frame)
        if self.classes is None:
            columns = ([c for c in frame.columns if c != self.response]
                       if self.columns is None else list(self.columns))
            PropensityBalancer._check_columns(frame, frame, columns)
            self._encoding = _Encoding(frame, frame, columns)
            Z = self._encoding.transform(frame, "X")
            classifier = (clone(self.classifier) if self.classifier is not None
                          else default_classifier())
            self.classifier_ = _fit_weighted(classifier, Z, responded * 1, d)
            self.propensity_ = _sample_probability(self.classifier_, Z)
            order = np.argsort(self.propensity_, kind="stable")
            shares = np.cumsum(d[order]) / d.sum()
            steps = np.arange(1, self.n_classes) / self.n_classes
            self.cut_points_ = self.propensity_[order][np.searchsorted(shares, steps)]
        elif self.classifier is not None:
            raise ValueError("Give classes or a classifier for propensity classes, not both.")
        labels = self._labels(frame)
        self.weights_ = nonresponse_weights(d, responded, labels)
        factors = np.divide(self.weights_, d, out=np.zeros_like(d), where=responded & (d > 0))
        self.class_factors_ = {label: float(factors[labels == label].max())
                               for label in pd.unique(labels)}
        return self

    def compute_weights(self, X: Table, sample_weight: Vector | None = None) -> np.ndarray:
        """Adjust rows' weights with the fitted class factors.

        Parameters
        ----------
        X : DataFrame of shape (n_samples, n_features)
            Rows with the response column and the class (or covariate) columns.
        sample_weight : array-like of shape (n_samples,), default=None
            Their base weights.

        Returns
        -------
        ndarray of shape (n_samples,)
            Respondents' base weights times their class's factor; 0 for
            nonrespondents.

        Examples
        --------
        >>> import pandas as pd
        >>> import skbalance as skb
        >>> X = pd.DataFrame({"g": ["a", "a", "b"], "r": [True, False, True]})
        >>> adjuster = skb.NonresponseAdjuster("r", classes="g").fit(X)
        >>> adjuster.compute_weights(pd.DataFrame({"g": ["a"], "r": [True]})).tolist()
        [2.0]
        """
        check_is_fitted(self, "class_factors_")
        frame = _frame(X, "X")
        d = _base_weights(sample_weight, frame.shape[0], "sample_weight")
        responded = self._responded(frame)
        labels = self._labels(frame)
        unknown = [label for label in pd.unique(labels) if label not in self.class_factors_]
        if unknown:
            raise ValueError(f"Class {unknown[0]!r} was not seen in fit.")
        factors = np.asarray([self.class_factors_[label] for label in labels])
        return np.where(responded, d * factors, 0.0)

    def _responded(self, frame):
        if self.response not in frame.columns:
            raise ValueError(f"X lacks the response column {column_label(self.response)}.")
        values = frame[self.response].to_numpy()
        if values.dtype != bool and not np.isin(values, [0, 1]).all():
            raise ValueError(f"The response column {column_label(self.response)} must hold "
                             "booleans or 0/1.")
        return values.astype(bool)

    def _labels(self, frame):
        """Every row's class: the class columns' levels, or the propensity group."""
        if self.classes is None:
            p = _sample_probability(self.classifier_, self._encoding.transform(frame, "X"))
            return np.searchsorted(self.cut_points_, p, side="right")
        if isinstance(self.classes, list):
            return np.asarray(list(zip(*(frame[c] for c in self.classes))), dtype=object)
        return frame[self.classes].to_numpy(dtype=object)
