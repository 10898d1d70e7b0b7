"""BalancedFunctionalEstimator: balanced means with standard errors."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from array_api_compat import array_namespace, device
from scipy.stats import t as student_t
from sklearn.base import BaseEstimator, _fit_context, clone
from sklearn.utils._param_validation import HasMethods, Hidden, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._balancer import MarginalBalancer, fit_from_groups
from ._grouped import group_rows, labels_of, row_sizes
from ._inference import (
    BalancingFit,
    estimate_statistics,
    proportion_interval,
    quantile_statistics,
    rerun_replicates,
    statistics_of,
    woodruff_table,
)
from ._problem import balancing_columns, balancing_steps
from ._rows import Rows, is_dask, kish_effective_size, read_rows
from ._typing import Table, Vector
from .utils._array_api import from_numpy, to_numpy
from .utils._warnings import warn

if TYPE_CHECKING:
    from ._design import SurveyDesign

__all__ = ["BalancedFunctionalEstimator"]


def _lazy_base(X, base):
    """The base weights of a dask frame's rows, lazily (1 for every row)."""
    if base is None:
        return X.map_partitions(lambda part: pd.Series(np.ones(len(part)), index=part.index,
                                                       name="weight"), meta=("weight", "f8"))
    return base.astype("f8") if is_dask(base) else base


def _t_summary(estimate, se, df):
    """Estimate, standard error, t, two-sided p-value and 95% interval."""
    t = estimate / se if se > 0 else (np.inf if estimate else 0.0) * np.sign(estimate)
    quantile = float(student_t.ppf(0.975, df))
    return pd.Series({"estimate": estimate, "std_error": se, "t": t,
                      "p_value": float(2 * student_t.sf(abs(t), df)),
                      "ci_low": estimate - quantile * se, "ci_high": estimate + quantile * se,
                      "df": df})


def _check_domain_column(label, missing, rows=None):
    """Raise for a domain column with missing values. ``missing`` flags each
    row, or each group of rows with ``rows`` the number in each."""
    if missing.any():
        rows = np.ones(missing.shape[0]) if rows is None else np.asarray(rows)
        raise ValueError(f"Domain column {label!r} has {int(rows[missing].sum())} missing "
                         f"value(s) in {int(rows.sum())} rows; fill or drop them (no row is "
                         "dropped silently).")


class BalancedFunctionalEstimator(BaseEstimator):
    """Means, totals, proportions and ratios after balancing, with standard errors.

    The balanced estimate of ``E[h]`` is the weighted mean of the outcome
    under the balancer's weights (the paper's ``phi_n^(k)`` with ``k`` the
    steps the balancer takes). Its standard error is the linearization of
    THEORY sections 3 and 6 for exactly those ``k`` steps (conditional means
    under the base weights), right for small ``k`` as for converged raking,
    and right for the sampling design when one is given: strata, clusters,
    fpc (R survey's ``svyrecvar``), or replicate weights, each replicate
    re-balanced the same way.

    Parameters
    ----------
    balancer : MarginalBalancer or None, default=None
        Holds the targets and the number of steps; ``None`` balances every
        column of ``X`` to uniform. Cloned at fit. Any balancer with the
        public contract (``fit_problem``, ``weights_``, ``n_iter_`` and, when it
        finishes with Newton steps, ``n_newton_iter_``) works.
    baseline : {"empirical", "ipwi"} or None, default=None
        None: the balancer's weights (the balanced estimate). One of the
        paper's baselines instead: ``"empirical"``, the base weights
        (``k = 0``); ``"ipwi"``, importance weighting by every margin's target
        over base-weighted share at once (no iteration),
        ``sum d h prod_j ratio_j / sum d``.
    design : SurveyDesign or None, default=None
        How the sample was drawn. None: each row (of positive weight) is an
        independent draw, as R's ``svydesign(id=~1, weights=~w)``.
    statistic : {"mean", "total", "ratio", "quantile"}, default="mean"
        What to estimate for every outcome. A categorical outcome (object,
        category, string or bool) gives the proportion (or count, for
        "total") of each of its levels. "ratio" is ``T(y) / T(denominator)``.
        "quantile": the ``quantiles`` of a numeric outcome, as R survey's
        ``svyquantile`` (R 4.1's defaults, ``qrule="math"``: the smallest
        value whose weighted share reaches the quantile; Woodruff's interval
        from the design-based interval of the share below it, and the
        standard error its width over ``2 t``). With replicate weights the
        share's replicate variance is used (R's ``interval.type="mean"``).
    quantiles : float or sequence of float, default=0.5
        With ``statistic="quantile"``: the quantiles, strictly between 0 and
        1 (the ``level`` column of ``results_``).
    domain : label, list of labels, array-like or None, default=None
        A column of ``X`` (or the values): every statistic is estimated within
        each of its levels, as R's ``svyby`` (the whole sample keeps its
        design and balancing). A list of columns: every observed combination
        of their levels (R's ``svyby(~y, ~a + b)``), labelled by tuples.
    denominator : label, array-like or None, default=None
        The denominator of ``statistic="ratio"``: a column of ``X`` or values.
    df : {"design", "satterthwaite", "normal"}, default="design"
        Degrees of freedom of the Student t intervals. "normal": infinite, the
        normal quantile (R's ``confint`` default). "design": PSUs minus
        strata (R's ``degf``; rows minus 1 without a design). "satterthwaite":
        ``(sum_u c_u)^2 / sum_u c_u^2`` from each unit's (or replicate's) part
        ``c_u`` of the variance, at most the design's. With few clusters of
        very unequal sizes the linearized variance rests on a handful of them
        and this widens the interval accordingly (on repeated samples of 15
        California school districts it lifts coverage from 81% to 92%, with
        ``linearization="cr2"`` to 94%, JK1's from 88% to 96%); with equal
        clusters it is conservative (about a third of the parts).
        "domain": for each estimate, its domain's first-stage units with
        positive weight minus their strata (R's ``degf`` of
        ``subset(design, ...)``, what ``svyciprop`` on a subset uses).
        "bell-mccaffrey" (with ``linearization="cr2"``): Bell and
        McCaffrey's degrees of freedom of the bias-reduced variance
        when the rows' residuals are independent with equal variance.
    linearization : {"design", "cr2"}, default="design"
        The linearized variance, as R survey's; or its bias-reduced form
        (CR2, Bell and McCaffrey 2002): every first-stage unit's calibration
        residuals scaled by ``(I - H_gg)^(-1/2)``, ``H_gg`` its block of the
        hat matrix of the calibration variables (and stratum indicators)
        under the base weights, which undoes the shrinking of the residuals
        of large clusters that the calibration fits. For one-stage designs
        (and none: each row its own unit); the regression is the limit's,
        also for a fit of k steps. See the survey guide for when to use it.
    ci_method : {"logit", "xlogit", "asin", "beta", "likelihood", "mean"} or None, default=None
        The interval of a proportion (every level of a categorical outcome,
        and the mean of a 0/1 outcome), as R survey's ``svyciprop``: "logit"
        (the default, None, as R's: the Wald interval of the log odds, which
        stays inside [0, 1] and is close to symmetric on the scale where a
        proportion's estimate is close to normal), "xlogit" (the same here),
        "asin" (of ``asin(sqrt(p))``), "beta" (Korn and Graubard's, from the
        effective sample size), "likelihood" (the profile likelihood of the
        log odds scaled by its design effect, read off R's spline of the
        profile; linearized variances only: with replicate weights R gives
        NA, here an error), or "mean" (Wald's ``p +- t SE``, which can
        leave [0, 1]; R's ``confint(svymean(...))``). Other statistics keep
        Wald's interval. For quantiles, the
        interval of the share below the estimate (R's ``interval.type``;
        None: "mean", R's default there; "logit" is "xlogit").
    na_rm : bool, default=False
        Rows with a missing outcome (NaN or None in any column of ``y``, or
        in the denominator) are left out of every estimate, as R's
        ``na.rm=TRUE``: they count as outside the domain, so the design and
        the balancing keep them (a balanced fit still uses their balancing
        columns). False: a missing outcome is an error naming the column.
    method : {"balanced", "empirical", "ipwi"}
        Deprecated since 0.2, removed in 0.3: ``baseline`` (``"balanced"`` is
        ``baseline=None``).

    Attributes
    ----------
    results_ : pandas.DataFrame
        One row per statistic: ``statistic``, ``outcome``, ``level``,
        ``domain``, ``estimate``, ``std_error``, ``ci_low``, ``ci_high`` (95%,
        Student t with ``df``), ``deff`` (design effect: variance over that of
        simple random sampling of the same size, R's ``deff=TRUE``), ``df``
        (PSUs minus strata, R's ``degf``, or Satterthwaite's per statistic)
        and ``n`` (rows of positive weight in the domain).
    vcov_ : ndarray of shape (n_results, n_results)
        The covariance matrix of all the estimates of the fit, rows and
        columns in the order of ``results_`` (R's ``covmat=TRUE``), from the
        same parts as the standard errors (diagonal for quantiles, as R).
    estimate_ : float or ndarray of shape (n_results,)
        The column ``estimate`` of ``results_`` (a float for one row).
    std_error_ : float or ndarray of shape (n_results,)
        The column ``std_error``.
    variance_ : float or ndarray of shape (n_results,)
        ``std_error_ ** 2`` (infinite only where the standard error exceeds
        1e154, whose square float64 cannot hold; ``std_error_`` stays finite).
    df_ : int, float or ndarray of shape (n_results,)
        Degrees of freedom of the intervals (the column ``df``; one value
        when it is the same for every row).
    weights_ : ndarray of shape (n_samples,)
        The weights of the estimate (a lazy dask Series for a dask frame).
    effective_sample_size_ : float
        Kish's effective sample size of ``weights_``.
    n_steps_ : int
        Balancing steps behind the estimate (0 for "empirical" and "ipwi").
        When the balancer finished with Newton steps (its ``n_newton_iter_``;
        only with ``tol > 0``), the weights are the limit of raking and the
        standard error is the limit's (the regression residual on every
        margin); ``tol=0`` always gives the k-step estimator.
    balancer_ : MarginalBalancer
        The fitted balancer.
    n_features_in_ : int
        Number of columns seen in fit.
    feature_names_in_ : ndarray of shape (n_features_in\\_,)
        Column names seen in fit, when they are all strings.

    See Also
    --------
    SurveyDesign : Strata, clusters, fpc and replicate weights.

    Notes
    -----
    ``score`` is minus the squared distance between the estimate and the
    (base-weighted) mean of ``y`` on other rows. Cross-validating it, as in
    ``GridSearchCV(est, {"balancer__max_iter": [0, 1, 2, 4, 8]})``, chooses
    the ``k`` of smallest mean squared error under one assumption: the
    held-out rows are draws from the target population (the data are a
    sample of the population whose margins are the targets, possibly
    misspecified). With bounds, the linearized standard error ignores the
    truncation (replicates do not).

    On a dask frame the weighting is a :class:`MarginalBalancer` (or the
    "empirical" baseline) and the design needs clusters, named as columns of
    the frame (a row that is its own sampling unit is not a group); design
    weights come as ``sample_weight`` or the design's ``weights`` column.
    Replicates built from the design (jackknife, bootstrap, BRR) work there;
    supplied replicate columns, quantiles and ``ci_method="likelihood"`` need
    the rows in memory. Memory on the driver grows with the number of groups,
    never with the rows.

    Examples
    --------
    apiclus1 is a sample of 15 school districts with all their schools:

    >>> import skbalance as skb
    >>> sample = skb.datasets.load_api("clus1")
    >>> targets = skb.datasets.api_population_targets(["stype", "sch.wide"])
    >>> est = skb.BalancedFunctionalEstimator(
    ...     skb.MarginalBalancer(targets=targets, tol=1e-12),
    ...     design=skb.SurveyDesign(clusters="dnum", fpc="fpc"))
    >>> est.fit(sample, sample["api00"], sample_weight=sample["pw"])
    BalancedFunctionalEstimator(...)
    >>> round(est.estimate_, 2), round(est.std_error_, 2), est.df_
    (641.23, 23.7, 14)
    """

    _parameter_constraints: dict = {
        "balancer": [HasMethods(["fit_problem", "compute_weights"]), None],
        "baseline": [StrOptions({"empirical", "ipwi"}), None],
        "design": [HasMethods(["resolve"]), None],
        "statistic": [StrOptions({"mean", "total", "ratio", "quantile"})],
        "quantiles": ["array-like", Real],
        "domain": [None, "array-like", str, Integral, tuple],
        "denominator": [None, "array-like", str, Integral, tuple],
        "df": [StrOptions({"design", "satterthwaite", "normal", "bell-mccaffrey",
                           "domain"})],
        "ci_method": [StrOptions({"mean", "logit", "xlogit", "asin", "beta", "likelihood"}),
                      None],
        "na_rm": ["boolean"],
        "linearization": [StrOptions({"design", "cr2"})],
        "method": [StrOptions({"balanced", "empirical", "ipwi"}),
                   Hidden(StrOptions({"deprecated"}))],
    }

    def __init__(self, balancer: MarginalBalancer | None = None, *,
                 baseline: Literal["empirical", "ipwi"] | None = None,
                 design: SurveyDesign | None = None,
                 statistic: Literal["mean", "total", "ratio", "quantile"] = "mean",
                 quantiles: float | Sequence[float] = 0.5,
                 domain: Hashable | Vector | None = None,
                 denominator: Hashable | Vector | None = None,
                 df: Literal["design", "satterthwaite", "normal", "bell-mccaffrey",
                             "domain"] = "design",
                 linearization: Literal["design", "cr2"] = "design",
                 ci_method: Literal["mean", "logit", "xlogit", "asin", "beta",
                                    "likelihood"] | None = None,
                 na_rm: bool = False, method: str = "deprecated") -> None:
        self.balancer = balancer
        self.baseline = baseline
        self.method = method
        self.design = design
        self.statistic = statistic
        self.quantiles = quantiles
        self.domain = domain
        self.denominator = denominator
        self.df = df
        self.linearization = linearization
        self.ci_method = ci_method
        self.na_rm = na_rm

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
    def fit(self, X: Table, y: Vector | Table,
            sample_weight: Vector | None = None) -> BalancedFunctionalEstimator:
        """Balance ``X`` and estimate every statistic of ``y``.

        Parameters
        ----------
        X : DataFrame, dask DataFrame or array-like of shape (n_samples, n_features)
            The balancing columns (and the design's, domain's and
            denominator's columns, when named). A dask frame is reduced in
            one distributed group-by to the groups of rows that share their
            cell, sampling units, strata, domain and categorical outcome
            levels, and every estimate and standard error is computed from
            the groups' sums (equal to the in-memory results; see Notes).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs), or label(s)
            The outcomes (the values of the function ``h`` at every row), or,
            when ``X`` is a DataFrame (pandas, polars or dask), the label of
            its outcome column or a list of labels.
        sample_weight : array-like or dask Series of shape (n_samples,), default=None
            Nonnegative base (design) weights.

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
        if y is None:
            raise ValueError("BalancedFunctionalEstimator requires y to be passed, but the "
                             "target y is None.")
        if is_dask(X):
            return self._fit_groups(X, y, sample_weight)
        rows = read_rows(X)  # read once: the design's columns, the balancing and y
        y = rows.labelled(y)
        design = None
        if self.design is not None:
            design = self.design.resolve(rows, None if sample_weight is None else
                                         to_numpy(sample_weight))
            sample_weight = design.weights
        weighting = self._weighting()
        balancer = MarginalBalancer() if self.balancer is None else clone(self.balancer)
        if weighting != "balanced":
            balancer.set_params(max_iter=0, tol=0)
        # a MarginalBalancer takes the rows as read; another balancer reads X its own way
        given = rows if isinstance(balancer, MarginalBalancer) else X
        if weighting == "empirical" and self.balancer is None:
            given = rows.without_columns()  # the base weights need no column of X
        problem = balancer.fit_problem(given, sample_weight=sample_weight)
        # the rows as read, with the validated base weights (checked once)
        rows = problem.rows if given is rows else Rows(rows.table, problem.base, xp=rows.xp,
                                                      lazy=rows.lazy)
        base = problem.base
        if weighting == "balanced":
            weights, steps = balancer.weights_, balancing_steps(balancer)
        elif weighting == "empirical":
            weights, steps = base, 0
        else:
            weights = base * rows.gather(problem.importance_factors(), problem.cell_of_row)
            steps = 0  # importance weighting takes no balancing step
        fit = BalancingFit(problem, weights, steps, balancer, weighting,
                           getattr(balancer, "residual_weights_", None)
                           if weighting == "balanced" else None)
        if (design is not None and design.replicates is not None
                and weighting == "balanced" and not isinstance(balancer, MarginalBalancer)):
            # a recipe or a trimmed balancing: every replicate re-runs it on the rows
            fit.replicate_weights = rerun_replicates(self.balancer, X, design)
        self._estimate(fit, rows, y, design)
        self.weights_ = weights
        self.effective_sample_size_ = kish_effective_size(weights)
        self.n_steps_ = balancer.n_iter_ if weighting == "balanced" else 0
        self.balancer_ = balancer
        if given is rows or given is X:
            self.n_features_in_ = balancer.n_features_in_
            if hasattr(balancer, "feature_names_in_"):
                self.feature_names_in_ = balancer.feature_names_in_
        else:
            validate_data(self, rows.fit_table, skip_check_array=True, reset=True)
        return self

    def _fit_groups(self, X, y, sample_weight):
        """Fit on a dask frame through its groups (see :mod:`skbalance._grouped`)."""
        weighting = self._weighting()
        if weighting == "ipwi":
            raise ValueError("On a dask frame the baselines are None (balanced) and "
                             "'empirical'; compute() the rows for importance weighting.")
        if self.statistic == "quantile":
            raise ValueError("A quantile needs every row's value, not sums over groups of "
                             "rows: compute() the rows (or a sample of them) for quantiles.")
        if self.ci_method == "likelihood":
            raise ValueError("ci_method='likelihood' refits a model on the rows: on a dask "
                             "frame use 'logit', 'xlogit', 'asin', 'beta' or 'mean'.")
        balancer = MarginalBalancer() if self.balancer is None else clone(self.balancer)
        if not isinstance(balancer, MarginalBalancer):
            raise TypeError(f"On a dask frame the weighting is a MarginalBalancer (raking or "
                            f"calibration on the cells); got {type(balancer).__name__}.")
        if weighting != "balanced":
            balancer.set_params(max_iter=0, tol=0)
        design = self.design
        if design is None or design.clusters is None:
            raise ValueError(
                "On a dask frame the estimator needs a SurveyDesign with clusters: its "
                "variance is a sum over sampling units, each a group of rows. Where every row "
                "is its own unit, compute() the rows.")
        if design.replicate_weights is not None:
            raise ValueError("Supplied replicate weights are columns of every row: compute() "
                             "the rows, or use replicates built from the design (jk1, jkn, "
                             "bootstrap, brr).")
        base = sample_weight  # or the label of the design's weights: a column of X
        if design.weights is not None:
            if sample_weight is not None:
                raise ValueError("Both the design's weights and a sample_weight were given; "
                                 "pass one of them.")
            [base] = labels_of(design.weights, "the design's weights")
        elif design.fpc is not None and sample_weight is None:
            raise ValueError("On a dask frame pass the design weights (sample_weight, or the "
                             "design's weights column): weights implied by the fpc are not "
                             "formed from groups.")
        design_columns = [label for spec, what in (
            (design.clusters, "the design's clusters"), (design.strata, "the design's strata"),
            (design.fpc, "the design's fpc")) for label in labels_of(spec, what)]
        denominator = labels_of(self.denominator, "the ratio's denominator")
        if len(denominator) > 1:
            raise TypeError("The ratio's denominator is one column.")
        given = X
        if self.balancer is None and weighting == "empirical":  # no column to balance
            X = X.assign(__skbalance_all__=0)
            balancing = ["__skbalance_all__"]
        else:
            balancing = balancing_columns(balancer.targets, list(X.columns),
                                          balancer.target_type)
        domain = labels_of(self.domain, "the domain")
        grouped = group_rows(X, y, base, balancing + design_columns + domain,
                             denominator[0] if denominator else None, self.na_rm)
        rows_per_group = grouped.cells["rows"].to_numpy()
        for label in domain:  # counted in rows, not groups
            _check_domain_column(label, grouped.cells[label].isna().to_numpy(), rows_per_group)
        label = base if design.weights is not None else None
        problem = fit_from_groups(balancer, X, grouped.cells, balancing,
                                  None if label is not None else base, label)
        rows = read_rows(grouped.X, problem.base)
        resolved = clone(design).set_params(weights=None).resolve(rows, problem.base)
        if weighting == "balanced":
            weights = balancer.compute_weights(grouped.X[balancing], problem.base)
            steps = balancing_steps(balancer)
        else:
            weights, steps = problem.base, 0
        fit = BalancingFit(problem, weights, steps, balancer, weighting)
        stats = self._estimate(fit, rows, grouped.y, resolved)
        self.results_ = row_sizes(self.results_, stats, weights, grouped)
        n_design = int(grouped.positive.sum())
        for position, recipe in enumerate(self._intervals):
            if recipe is not None and recipe[0] == "beta":  # its n counts rows
                row = self.results_.iloc[position]
                n = int(row["n"]) if weighting == "empirical" else n_design
                self._intervals[position] = ("beta", n, None, None)
                self.results_.loc[position, ["ci_low", "ci_high"]] = proportion_interval(
                    row["estimate"], row["std_error"] ** 2, row["df"], 0.05, "beta", n)
        factor = np.divide(weights, problem.base, out=np.zeros_like(weights),
                           where=problem.base > 0)
        squares = grouped.cells["base_squares"].to_numpy(dtype=np.float64)
        self.effective_sample_size_ = float(weights.sum() ** 2 / np.dot(factor ** 2, squares))
        self.weights_ = (balancer.weights_ if weighting == "balanced"
                         else _lazy_base(X, base if label is None else X[label]))
        self.n_steps_ = balancer.n_iter_ if weighting == "balanced" else 0
        self.balancer_ = balancer
        validate_data(self, read_rows(given).fit_table, skip_check_array=True, reset=True)
        return self

    def _estimate(self, fit, rows, y, design):
        """Set ``results_``, ``vcov_`` and the estimates' attributes from a
        balancing fit; returns the statistics."""
        problem, weights = fit.problem, fit.weights
        if self.statistic == "quantile":
            if self.ci_method == "likelihood":
                raise ValueError("ci_method='likelihood' is an interval of a proportion; a "
                                 "quantile's interval (R's interval.type) is 'mean', 'beta', "
                                 "'logit' or 'asin'.")
            stats, extras = quantile_statistics(y, rows, weights, self._quantiles(),
                                                self._column(rows, self.domain), self.na_rm)
        else:
            stats = statistics_of(y, rows, self.statistic, self._column(rows, self.domain),
                                  self._column(rows, self.denominator), na_rm=self.na_rm)
        if self.df == "bell-mccaffrey" and self.linearization != "cr2":
            raise ValueError("df='bell-mccaffrey' are the degrees of freedom of the "
                             "bias-reduced variance: pass linearization='cr2' with it.")
        if self.linearization == "cr2" and design is not None and (
                design.replicates is not None):
            raise ValueError("linearization='cr2' adjusts the linearized variance: the "
                             "design has replicate weights, which give their own.")
        if self.statistic == "quantile":  # Woodruff: through the share below each
            shares, _ = estimate_statistics(fit, stats, design, df=self.df,
                                            linearization=self.linearization,
                                            ci_method="mean", return_covariance=True)
            n_design = int(np.sum(to_numpy(problem.base) > 0))
            self.results_ = woodruff_table(shares, extras, 0.05, self.ci_method or "mean",
                                           n_design, fit.method == "empirical")
            self.vcov_ = np.diag(self.results_["std_error"].to_numpy() ** 2)  # as R
            self._intervals = ["quantile"] * len(self.results_)
        else:
            self.results_, covariance = estimate_statistics(
                fit, stats, design, df=self.df, linearization=self.linearization,
                ci_method=self.ci_method or "logit", return_covariance=True)
            self.vcov_ = (from_numpy(covariance, rows.xp, rows.device, rows.base.dtype)
                          if rows.on_device else covariance)
            self._intervals = self.results_.attrs.pop("intervals")
        single = len(stats) == 1
        for name, column in (("estimate_", "estimate"), ("std_error_", "std_error")):
            values = self.results_[column].to_numpy()
            setattr(self, name, float(values[0]) if single else rows.to_rows(values))
        with np.errstate(over="ignore"):  # only beyond a standard error of 1e154
            variance = np.square(np.float64(self.std_error_) if single else self.std_error_)
        self.variance_ = float(variance) if single else variance
        dfs = self.results_["df"].to_numpy()
        self.df_ = dfs[0].item() if np.all(dfs == dfs[0]) else dfs.astype(np.float64)
        return stats

    def _quantiles(self):
        """The quantiles asked for, checked: numbers strictly inside (0, 1)."""
        values = np.atleast_1d(np.asarray(self.quantiles, dtype=np.float64))
        if values.ndim != 1 or values.size == 0 or not np.all((values > 0) & (values < 1)):
            raise ValueError(f"quantiles must be numbers strictly between 0 and 1; got "
                             f"{self.quantiles!r}.")
        return [float(v) for v in values]

    def _weighting(self):
        """The weights of the estimate: ``baseline``, or "balanced" for None.

        The deprecated ``method`` still works, with a FutureWarning.
        """
        if self.method == "deprecated":
            return "balanced" if self.baseline is None else self.baseline
        warn("BalancedFunctionalEstimator's parameter method was renamed baseline in 0.2 and "
             "will be removed in 0.3: pass baseline=None (balanced), 'empirical' or 'ipwi'.",
             FutureWarning)
        return self.method

    @staticmethod
    def _column(rows, spec):
        """A named column of ``X`` (host values), the values given, or, for a
        list of column labels, every row's tuple of their values."""
        if spec is None:
            return None
        if isinstance(spec, (str, Integral, tuple)) and not isinstance(spec, bool):
            return to_numpy(rows.column(spec)) if rows.on_device else rows.column(spec)
        if isinstance(spec, list) and spec and all(
                isinstance(c, (str, Integral)) and not isinstance(c, bool) for c in spec):
            columns = [np.asarray(to_numpy(rows.column(c)) if rows.on_device
                                  else rows.column(c), dtype=object) for c in spec]
            for label, values in zip(spec, columns):  # a tuple holding NaN is no missing value
                _check_domain_column(label, np.asarray(pd.isna(values)))
            combined = np.empty(rows.n_rows, dtype=object)
            combined[:] = list(zip(*columns))
            return pd.Series(combined)
        return spec

    def contrast(self, weights: Vector) -> pd.Series:
        """A linear combination of the estimates: R survey's ``svycontrast``.

        Parameters
        ----------
        weights : array-like of shape (n_estimates,)
            One weight per row of ``results_`` (``[-1, 1]`` over two domains'
            means: their difference).

        Returns
        -------
        pandas.Series
            ``estimate``, ``std_error`` (from ``vcov_``), ``t``, ``p_value``
            (two-sided, Student t), ``ci_low``, ``ci_high`` (95%) and ``df``
            (the smallest of the rows combined).

        Examples
        --------
        >>> import skbalance as skb
        >>> strat = skb.datasets.load_api("strat")
        >>> est = skb.BalancedFunctionalEstimator(
        ...     baseline="empirical", design=skb.SurveyDesign(strata="stype", fpc="fpc"),
        ...     domain="stype").fit(strat, strat["api00"], sample_weight=strat["pw"])
        >>> round(float(est.contrast([-1, 0, 1])["estimate"]), 2)  # M - E
        -37.83
        """
        check_is_fitted(self, "vcov_")
        c = np.asarray(weights, dtype=np.float64)
        n = len(self.results_)
        if c.shape != (n,):
            raise ValueError(f"The contrast needs one weight per row of results_ ({n}); "
                             f"got shape {c.shape}.")
        if not np.all(np.isfinite(c)):
            raise ValueError("The contrast's weights must be finite numbers.")
        estimate = float(c @ self.results_["estimate"].to_numpy())
        se = float(np.sqrt(max(c @ np.asarray(to_numpy(self.vcov_)) @ c, 0.0)))
        used = c != 0
        df = float(self.results_["df"].to_numpy()[used].min()) if used.any() else np.inf
        return _t_summary(estimate, se, df)

    def ttest(self) -> pd.Series:
        """The design t test of two domains' means: R survey's ``svyttest(y ~ g)``.

        The second domain's mean minus the first's, over its standard error,
        with the design's degrees of freedom minus one (R's, from the
        regression on the group).

        Returns
        -------
        pandas.Series
            ``estimate`` (the difference), ``std_error``, ``t``, ``p_value``
            (two-sided), ``ci_low``, ``ci_high`` and ``df``.

        Examples
        --------
        >>> import skbalance as skb
        >>> clus1 = skb.datasets.load_api("clus1")
        >>> est = skb.BalancedFunctionalEstimator(
        ...     baseline="empirical", design=skb.SurveyDesign(clusters="dnum", fpc="fpc"),
        ...     domain="comp.imp").fit(clus1, clus1["api00"], sample_weight=clus1["pw"])
        >>> round(float(est.ttest()["p_value"]), 4)
        0.3718
        """
        check_is_fitted(self, "vcov_")
        results = self.results_
        if len(results) != 2 or results["domain"].isna().any() or (
                results["statistic"] != "mean").any():
            raise ValueError("ttest compares the means of one outcome in two domains: fit "
                             f"with a domain of two levels (results_ has {len(results)} "
                             "row(s)).")
        difference = self.contrast([-1.0, 1.0])
        return _t_summary(difference["estimate"], difference["std_error"],
                          difference["df"] - 1)

    def confidence_interval(self, alpha: float = 0.05) -> tuple[Any, Any]:
        """Confidence interval at level ``1 - alpha``, made as ``results_``'s.

        Student t with ``df_`` around the estimate; a proportion's by
        ``ci_method`` (the logit interval by default); a quantile's only at
        95% (Woodruff's, from the fit).

        Parameters
        ----------
        alpha : float, default=0.05
            One minus the coverage.

        Returns
        -------
        low, high : float or ndarray
            The interval's ends, one per row of ``results_``.

        Examples
        --------
        >>> import numpy as np
        >>> import skbalance as skb
        >>> X = np.repeat([[0], [1]], [30, 10], axis=0)
        >>> y = np.r_[np.zeros(30), np.ones(10)]
        >>> est = skb.BalancedFunctionalEstimator(baseline="empirical").fit(X, y)
        >>> [round(v, 3) for v in est.confidence_interval()]  # a proportion: logit
        [0.136, 0.413]
        """
        check_is_fitted(self)
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must lie in (0, 1); got {alpha!r}.")
        recipes = getattr(self, "_intervals", [])
        if any(r is not None for r in recipes):  # proportions and quantiles: as results_
            return self._special_intervals(alpha, recipes)
        if np.ndim(self.df_) == 0:  # arrays of any namespace scale by a float
            quantile = float(student_t.ppf(1 - alpha / 2, self.df_)) if self.df_ > 0 else np.nan
        else:  # one per row, where the estimates live
            quantile = student_t.ppf(1 - alpha / 2, np.where(self.df_ > 0, self.df_, np.nan))
            if not isinstance(self.estimate_, np.ndarray):
                quantile = from_numpy(quantile, array_namespace(self.estimate_),
                                      device(self.estimate_), self.estimate_.dtype)
        low = self.estimate_ - quantile * self.std_error_
        high = self.estimate_ + quantile * self.std_error_
        return low, high

    def _special_intervals(self, alpha, recipes):
        """Every row's interval at level 1 - alpha, made as in ``results_``."""
        results = self.results_
        if any(r == "quantile" for r in recipes):
            if alpha != 0.05:
                raise ValueError("A quantile's interval comes with the fit (95%, "
                                 "Woodruff's); read it from results_.")
            low, high = results["ci_low"].to_numpy(), results["ci_high"].to_numpy()
        else:
            low, high = [], []
            for (_, row), recipe in zip(results.iterrows(), recipes):
                if recipe is None:
                    quantile = float(student_t.ppf(1 - alpha / 2, row["df"]))
                    ends = (row["estimate"] - quantile * row["std_error"],
                            row["estimate"] + quantile * row["std_error"])
                else:
                    method, n, logit_variance, model = recipe
                    ends = proportion_interval(row["estimate"], row["std_error"] ** 2,
                                               row["df"], alpha, method, n, logit_variance,
                                               model)
                low.append(ends[0])
                high.append(ends[1])
            low, high = np.asarray(low), np.asarray(high)
        if len(results) == 1:
            return float(low[0]), float(high[0])
        return low, high

    def score(self, X: Table, y: Vector | Table, sample_weight: Vector | None = None) -> float:
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
        validate_data(self, rows.fit_table, skip_check_array=True, reset=False)
        outcomes, _ = rows.outcome(y, type(self).__name__)
        weights = to_numpy(rows.base).astype(np.float64)
        held_out = np.average(np.column_stack([to_numpy(c) for c in outcomes]), axis=0,
                              weights=weights)
        return -float(np.mean((np.atleast_1d(to_numpy(self.estimate_)) - held_out) ** 2))
