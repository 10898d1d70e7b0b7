"""Statistics of a balanced sample and their design-based errors (THEORY section 6).

Every statistic here is a weighted total ``T(u) = sum_i w_i u_i`` or a ratio
of two, ``T(u) / T(v)``: a mean (``v = 1``), a proportion (``u`` a level's
indicator), a domain mean (``u`` and ``v`` times the domain's indicator), a
ratio of outcomes. Its linearized error is the weighted total of the influence
values ``z``, passed through the balancing residual ``C_k`` and then through
the design's variance; its replicate error re-runs the same balancing from
each replicate's weights, on the same cells.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from array_api_compat import array_namespace
from scipy import sparse, special
from scipy.stats import beta as beta_distribution
from scipy.stats import t as student_t
from sklearn.base import clone

from ._balancer import MarginalBalancer
from ._bias_reduced import bias_reduced_roots
from ._design import (
    DeleteOneMultipliers,
    ReplicateWeights,
    multiplied,
    replicate_roots,
    replicate_variance,
    satterthwaite_df,
)
from ._problem import balancing_steps
from ._rows import read_rows
from ._solve import FitSettings, solve_replicates
from ._typing import Table, Vector
from .kernels import SplitColumn
from .utils._array_api import to_numpy
from .utils._threads import one_blas_thread
from .utils._validation import column_label, level_repr

if TYPE_CHECKING:
    from ._design import SurveyDesign

__all__ = [
    "BalancingFit",
    "Statistic",
    "compute_replicate_weights",
    "estimate_statistics",
    "rerun_replicates",
    "srs_variance",
    "statistics_of",
]


@dataclass
class Statistic:
    """One estimand: ``T(numerator)`` or ``T(numerator) / T(denominator)``.

    Parameters
    ----------
    kind : str
        "mean", "total", "proportion", "count" or "ratio".
    outcome, level, domain : object
        Labels for the results table (level of a categorical outcome, level
        of the domain; None when not applicable).
    numerator, denominator : array or None
        Row values in the rows' namespace; ``denominator=None`` for totals.
    indicator : array or None
        1 for the rows of the domain, 0 elsewhere (None: every row).
    """

    kind: str
    outcome: object
    level: object
    domain: object
    numerator: object
    denominator: object
    indicator: object = None
    # a domain statistic held by its outcome's split (numerator, denominator
    # and indicator None until densified), and its domain's position there
    split: DomainSplit | None = None
    position: int = 0

    @property
    def is_total(self):
        """A total or a count (no denominator)."""
        return self.kind in ("total", "count")

    def densified(self):
        """The statistic with its row arrays, made from its split if it has one."""
        if self.split is None:
            return self
        numerator, denominator, indicator = self.split.dense(self.position)
        return Statistic(self.kind, self.outcome, self.level, self.domain, numerator,
                         denominator, indicator)


@dataclass
class DomainSplit:
    """One outcome (over its denominator) in every level of a domain column.

    Held as row arrays once, with each row's domain code, instead of a dense
    numerator, denominator and indicator per domain: memory grows with the
    rows, not rows times domains (on the host; rows on a device keep dense
    statistics).

    Parameters
    ----------
    numerator : ndarray of shape (n_rows,)
    denominator : ndarray of shape (n_rows,) or None
        None for totals and counts.
    codes : ndarray of int of shape (n_rows,)
        Each row's domain, -1 for rows in none (a missing outcome).
    n_domains : int
    """

    numerator: np.ndarray
    denominator: np.ndarray | None
    codes: np.ndarray
    n_domains: int

    def dense(self, position):
        """Numerator, denominator and indicator of one domain as row arrays."""
        indicator = (self.codes == position) * 1.0
        return (self.numerator * indicator,
                None if self.denominator is None else self.denominator * indicator,
                indicator)

    def column(self, values):
        """``values`` split by domain, as the kernels take it."""
        return SplitColumn(values, self.codes, self.n_domains)

    def by_domain(self, values):
        """Sums of ``values`` within every domain."""
        if self._inside is None:
            return np.bincount(self.codes, values, minlength=self.n_domains)
        return np.bincount(self.codes[self._inside], values[self._inside],
                           minlength=self.n_domains)

    @cached_property
    def _inside(self):
        """The rows in some domain, or None for every row."""
        inside = self.codes >= 0
        return None if inside.all() else inside

    @cached_property
    def binary(self):
        """Whether the numerator is 0 or 1 in every domain row (a proportion)."""
        values = self.numerator[self.codes >= 0]
        return bool(np.all((values == 0) | (values == 1)))


def _is_categorical(values):
    dtype = getattr(values, "dtype", None)
    if isinstance(dtype, pd.CategoricalDtype):
        return True
    kind = getattr(dtype, "kind", None)
    return kind in ("O", "b", "U", "S") or pd.api.types.is_string_dtype(dtype)


def _outcomes(y, rows):
    """(name, values, is_categorical) for every outcome column of ``y``."""
    if isinstance(y, pd.DataFrame):
        return [(name, y[name], _is_categorical(y[name])) for name in y.columns]
    if isinstance(y, pd.Series):
        return [(y.name if y.name is not None else "y", y, _is_categorical(y))]
    if rows.on_device:
        columns, single = rows.outcome(y)
        names = ["y"] if single else [f"y{j}" for j in range(len(columns))]
        return [(name, column, False) for name, column in zip(names, columns)]
    array = np.asarray(y)
    if array.ndim == 1:
        return [("y", array, _is_categorical(array))]
    if array.ndim == 2:
        return [(f"y{j}", array[:, j], _is_categorical(array[:, j]))
                for j in range(array.shape[1])]
    raise ValueError(f"y must be 1-D or 2-D; got shape {array.shape}.")


def _levels(values, name, drop_unused=False, missing_hint=None):
    """Sorted levels and host codes of a categorical column.

    ``drop_unused``: leave out the categories no row has (domains, as R's
    ``svyby`` drops empty groups); an outcome keeps them (a proportion of 0).
    Missing values are an error naming ``missing_hint`` as the way out, or,
    with ``missing_hint=False``, the code -1.
    """
    series = pd.Series(np.asarray(values, dtype=object) if not isinstance(values, pd.Series)
                       else values)
    if missing_hint is not False and series.isna().any():
        raise ValueError(f"{name} has {int(series.isna().sum())} missing value(s) in "
                         f"{series.shape[0]} rows; "
                         f"{missing_hint or 'fill or drop them'} (no row is dropped silently).")
    if isinstance(series.dtype, pd.CategoricalDtype):
        if drop_unused:
            series = series.cat.remove_unused_categories()
        return list(series.cat.categories), series.cat.codes.to_numpy()
    codes, levels = pd.factorize(series, sort=True)
    return list(levels), codes


def _domain_label(domain):
    """The domain in messages: its column's name when it has one."""
    name = getattr(domain, "name", None)
    return "The domain column" if name is None else f"Domain column {name!r}"


_NA_HINT = "pass na_rm=True to leave those rows out of the estimates (R's na.rm=TRUE), or fill them"


def _numeric(values, rows, name, missing=None):
    """A numeric outcome where the rows live, finite, one value per row;
    ``missing`` (host mask): rows left out, their values taken as 0."""
    if rows.on_device and not isinstance(values, (pd.Series, np.ndarray)):
        return values
    if missing is not None:
        values = np.where(missing, 0.0, np.asarray(values, dtype=np.float64))
    elif pd.isna(pd.Series(np.asarray(values))).any():
        n_missing = int(pd.isna(pd.Series(np.asarray(values))).sum())
        raise ValueError(f"{name} has {n_missing} missing value(s) in {len(values)} rows; "
                         f"{_NA_HINT}.")
    columns, _ = rows.outcome(np.asarray(values), name=name)
    return columns[0]


def _missing_rows(y, rows, denominator):
    """Rows where any outcome (or the ratio's denominator) is missing, as R's
    ``na.rm=TRUE`` leaves them out of every statistic of the call."""
    columns = [values for _, values, _ in _outcomes(y, rows)]
    if denominator is not None:
        columns.append(denominator)
    missing = np.zeros(rows.n_rows, dtype=bool)
    for values in columns:
        host = to_numpy(values) if not isinstance(values, (pd.Series, list)) else values
        missing |= pd.isna(pd.Series(np.asarray(host, dtype=object))).to_numpy()
    if missing.all():
        raise ValueError("Every row has a missing outcome: na_rm=True leaves nothing to "
                         "estimate.")
    return missing


def statistics_of(y, rows, statistic, domain=None, denominator=None, na_rm=False):
    """The list of :class:`Statistic` that ``y`` and the options ask for.

    Parameters
    ----------
    y : array-like, Series or DataFrame
        Outcomes; categorical columns give one proportion (or count) per level.
    rows : Rows
        The rows (for namespace, length and the domain column).
    statistic : {"mean", "total", "ratio"}
    domain : array-like or None
        Domain of every row: every statistic is estimated within each domain.
    denominator : array-like or None
        The denominator of ``statistic="ratio"``.
    na_rm : bool, default=False
        Rows with a missing outcome (any of ``y``'s, or the denominator) are
        outside every statistic's domain, their design kept (R's
        ``na.rm=TRUE``); False: missing values are an error.

    Returns
    -------
    list of Statistic
    """
    missing = _missing_rows(y, rows, denominator) if na_rm else None
    if missing is not None and not missing.any():
        missing = None
    present = None if missing is None else (~missing) * 1.0
    domain_of_row = None  # on the host, domain statistics are held by splits
    if domain is not None:
        domain_levels, domain_codes = _levels(domain, _domain_label(domain), drop_unused=True)
        if rows.on_device:
            indicators = [(level, rows.to_rows((domain_codes == j) * (
                1.0 if present is None else present))) for j, level in enumerate(domain_levels)]
        else:
            domain_of_row = np.asarray(domain_codes, dtype=np.int64)
            if missing is not None:
                domain_of_row = np.where(missing, -1, domain_of_row)
    else:
        indicators = [(None, None if present is None else rows.to_rows(present))]
    if statistic == "ratio":
        if denominator is None:
            raise ValueError("statistic='ratio' needs a denominator (a column of X or an "
                             "array).")
        named = isinstance(denominator, pd.Series) and denominator.name is not None
        x = _numeric(denominator, rows, "The ratio's denominator" + (
            f" {column_label(denominator.name)}" if named else ""), missing)
    ones = rows.to_rows(np.ones(rows.n_rows))
    stats = []
    for name, values, categorical in _outcomes(y, rows):
        if categorical:
            if statistic == "ratio":
                raise ValueError(f"Outcome {name!r} is categorical: a ratio needs numbers.")
            levels, codes = _levels(values, f"Outcome {name!r}",
                                    missing_hint=False if na_rm else _NA_HINT)
            parts = [(level, rows.to_rows((codes == j) * 1.0))
                     for j, level in enumerate(levels)]
            kind = "proportion" if statistic == "mean" else "count"
        else:
            parts = [(None, _numeric(values, rows, f"Outcome {name!r}", missing))]
            kind = statistic
        for level, u in parts:
            if domain_of_row is not None:
                v = None if kind in ("total", "count") else x if kind == "ratio" else ones
                split = DomainSplit(u, v, domain_of_row, len(domain_levels))
                stats.extend(Statistic(kind, name, level, domain_level, None, None, split=split,
                                       position=j) for j, domain_level in enumerate(domain_levels))
                continue
            for domain_level, indicator in indicators:
                if kind in ("total", "count"):
                    v = None
                elif kind == "ratio":
                    v = x if indicator is None else x * indicator
                else:
                    v = ones if indicator is None else indicator
                numerator = u if indicator is None else u * indicator
                stats.append(Statistic(kind, name, level, domain_level, numerator, v,
                                       indicator))
    return stats


def _undefined(stat):
    """Why a ratio's denominator total of 0 leaves it undefined, naming it."""
    where = "" if stat.domain is None else f" in domain {level_repr(stat.domain)}"
    what = f"The {stat.kind} of {column_label(stat.outcome)}" + (
        "" if stat.level is None else f" (level {level_repr(stat.level)})")
    cause = ("the denominator's weighted total is 0" if stat.kind == "ratio"
             else "its rows have no weight (they all have weight 0)")
    return (f"{what}{where} is undefined: {cause}. Drop those rows or that domain, or "
            "give them weight.")


def _dot(a, b):
    """``sum a * b`` as a float, in any namespace (one pass for NumPy)."""
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return float(np.dot(a, b))
    return float(array_namespace(a, b).sum(a * b))


def _iid_roots(x, counted):
    """Every row's signed root of its part of ``n / (n - 1) sum (x - mean x)^2``
    over the rows with positive weight (0 elsewhere; NaN when fewer than two
    rows count), where the rows live."""
    xp = array_namespace(x)
    n = float(xp.sum(xp.astype(counted, x.dtype)))
    if n < 2:
        return xp.full_like(x, np.nan)
    centred = xp.where(counted, x - float(xp.sum(x)) / n, xp.zeros_like(x))
    return centred * math.sqrt(n / (n - 1))


@dataclass
class BalancingFit:
    """What the estimates need from a balancing fit."""

    problem: object
    weights: object  # the weights of the estimate (balanced, base or IPWI)
    steps: object  # k: an int, or math.inf for the limit (0 for the baselines)
    balancer: object
    method: str
    # the balanced weights before a final adjustment (trimming), which the
    # residual keeps, as R survey's trimWeights; None: the weights themselves
    residual_weights: object = None
    # every replicate's final weights where the whole weighting was re-run on
    # the rows (ReplicateWeights; None: replicates re-balanced on the cells)
    replicate_weights: object = None


def estimate_statistics(fit, stats, design, alpha=0.05, df="design", linearization="design",
                        ci_method="mean", return_covariance=False):
    """Estimates, standard errors, intervals and design effects.

    Parameters
    ----------
    fit : BalancingFit
    stats : list of Statistic
    design : ResolvedDesign or None
        None: each row with positive weight is its own unit (iid).
    alpha : float, default=0.05
        One minus the coverage of the intervals in the table.
    df : {"design", "satterthwaite", "normal"}, default="design"
        Degrees of freedom of the intervals: PSUs minus strata (R's
        ``degf``), Satterthwaite's approximation from the parts of each
        variance (units, or replicates), never above the design's, or
        infinite ("normal": the normal quantile, R's ``confint`` default);
        "bell-mccaffrey" with ``linearization="cr2"``.
    linearization : {"design", "cr2"}, default="design"
        The linearized variance of R survey, or its bias-reduced form (see
        :mod:`skbalance._bias_reduced`).
    ci_method : {"mean", "logit", "xlogit", "asin", "beta"}, default="mean"
        The interval of a proportion (a level of a categorical outcome, or
        the mean of a 0/1 outcome), as R survey's ``svyciprop``; other
        statistics keep the Wald interval.
    return_covariance : bool, default=False
        Also return the covariance matrix of the estimates.

    Returns
    -------
    pandas.DataFrame
        One row per statistic: statistic, outcome, level, domain, estimate,
        std_error, ci_low, ci_high, deff, df, n.
    covariance : ndarray of shape (n_stats, n_stats)
        With ``return_covariance``: the estimates' covariance matrix (R's
        ``covmat=TRUE``), from the same parts as the variances.
    """
    problem, weights = fit.problem, fit.weights
    base = problem.base
    counted = base > 0
    if linearization == "cr2":
        stats = [stat.densified() for stat in stats]  # it takes every statistic's rows
    blocks = _blocks(stats)
    stats, units = _scale_free(stats, blocks)
    estimates, influences, moments = [], [], []  # influences: (w z, z) per block
    with one_blas_thread():  # dots over the rows (see utils._threads)
        for start, stop in blocks:
            if stats[start].split is None:
                estimate, weighted, z, moment = _influence(fit, stats[start])
                estimates.append(estimate)
                moments.append(moment)
            else:
                block_estimates, weighted, z, block_moments = _split_influences(
                    fit, stats[start].split, stats[start:stop])
                estimates.extend(block_estimates)
                moments.extend(block_moments)
            influences.append((weighted, z))
    replicated = None
    with np.errstate(over="ignore", invalid="ignore"):  # beyond float: named below
        if design is not None and design.replicates is not None:
            # matrix products of replicate weights: every BLAS thread
            thetas, scale, rscales, mse = _replicate_estimates(fit, stats, design)
            roots = replicate_roots(thetas, np.asarray(estimates), scale, rscales, mse)
            replicated = (thetas, scale, rscales, mse)
        elif linearization == "cr2":
            roots, bell_mccaffrey = _bias_reduced(fit, influences, stats, design)
        else:
            # R's svyby on an uncalibrated design takes each domain's rows alone
            # (subset drops the others), which lonely_psu="average" sees
            domains = ([_domain_rows(stats[start]) for start, _ in blocks]
                       if fit.method == "empirical" else None)
            with one_blas_thread():
                roots = _linearized_roots(fit, influences, design, domains=domains)
        # every part of every variance (units or replicates), and the covariances
        xp = array_namespace(roots)
        covariance = np.asarray(to_numpy(xp.matmul(xp.permute_dims(roots, (1, 0)), roots)),
                                dtype=np.float64)
        variances = np.diag(covariance).copy()
        parts = (np.asarray(to_numpy(roots * roots), dtype=np.float64)
                 if df == "satterthwaite" else None)
    design_df = (design.degrees_of_freedom if design is not None
                 else int(to_numpy(counted).sum()) - 1)
    if df == "normal":  # R's confint default: the normal quantile
        dfs = np.full(len(stats), np.inf)
    elif df == "satterthwaite":
        dfs = satterthwaite_df(parts, design_df)
    elif df == "bell-mccaffrey":
        dfs = np.minimum(bell_mccaffrey, design_df)
    elif df == "domain":
        dfs = _domain_df(stats, counted, design, design_df)
    else:
        dfs = np.full(len(stats), design_df)
    sizes = _domain_sizes(stats, counted, weights)
    variances = np.asarray(variances, dtype=np.float64)
    if np.any(np.isinf(variances)):  # beyond float (NaN: too few rows, said elsewhere)
        stat = stats[int(np.flatnonzero(np.isinf(variances))[0])]
        raise ValueError(
            f"The variance of the {stat.kind} of {column_label(stat.outcome)} overflows "
            f"float (the weights sum to {sizes[0][1]:.3g}): rescale sample_weight (means, "
            "proportions and ratios do not depend on the weights' scale).")
    table = _table(stats, np.asarray(estimates), variances, units, dfs, moments, sizes, alpha)
    # how each row's interval is made, for other levels: None (Wald), or a
    # proportion's (method, n, variance of the log odds or None)
    table.attrs["intervals"] = [None] * len(stats)
    if ci_method != "mean":
        # R's beta interval counts the rows of the design: a calibrated
        # design keeps every row in a domain's subset, an uncalibrated one
        # only the domain's
        n_design = int(to_numpy(counted).sum())
        for position, stat in enumerate(stats):
            if _is_proportion(stat):
                row = table.iloc[position]
                n = row["n"] if fit.method == "empirical" else n_design
                logit_variance = None
                if ci_method == "logit" and replicated is not None:
                    # R refits the log odds on every replicate (svyglm)
                    thetas, scale, rscales, mse = replicated
                    logit_variance = _replicate_logit_variance(
                        thetas[:, position], estimates[position], scale, rscales, mse)
                model = None
                if ci_method == "likelihood":
                    if replicated is not None:
                        raise ValueError(
                            "ci_method='likelihood' profiles the linearized model: with "
                            "replicate weights R's svyciprop gives NA; use 'logit' (the "
                            "log odds refitted on every replicate) or 'beta'.")
                    model = _model_rows(stat.densified(), weights, n)
                table.loc[position, ["ci_low", "ci_high"]] = proportion_interval(
                    row["estimate"], row["std_error"] ** 2, row["df"], alpha, ci_method, n,
                    logit_variance, model)
                table.attrs["intervals"][position] = (ci_method, n, logit_variance, model)
    if return_covariance:  # beyond float where the variances are (SEs above 1e154)
        with np.errstate(over="ignore", invalid="ignore"):
            return table, covariance * np.outer(units, units)
    return table


def _blocks(stats):
    """(start, stop) of every run of statistics held by one split (one
    statistic alone where it has no split)."""
    blocks, start = [], 0
    while start < len(stats):
        split, stop = stats[start].split, start + 1
        if split is not None:
            while stop < len(stats) and stats[stop].split is split:
                stop += 1
            if [s.position for s in stats[start:stop]] != list(range(split.n_domains)):
                raise AssertionError("a split's statistics come together, in domain order")
        blocks.append((start, stop))
        start = stop
    return blocks


def _influence(fit, stat):
    """Estimate, ``(w z, z)`` and SRS moments of one statistic held as rows."""
    weights, base = fit.weights, fit.problem.base
    total = _dot(weights, stat.numerator)
    if stat.denominator is None:
        estimate, z = total, stat.numerator
        denominator_total = np.nan
    else:
        # IPWI divides by the base total (THEORY section 2)
        denominator_total = _dot(weights, stat.denominator)
        if denominator_total == 0:
            raise ValueError(_undefined(stat))
        below = _dot(base, stat.denominator) if fit.method == "ipwi" else denominator_total
        estimate = total / below
        z = stat.numerator - estimate * stat.denominator
        z *= 1.0 / denominator_total  # in place: z is a fresh array
    weighted = weights * z
    return estimate, weighted, z, _srs_moments(weighted, z, denominator_total)


def _split_influences(fit, split, block):
    """As :func:`_influence` for every domain of a split at once, from sums
    by domain: ``(w z, z)`` come back as split columns (one row array each)."""
    weights = np.asarray(to_numpy(fit.weights), dtype=np.float64)
    u, v, codes = split.numerator, split.denominator, split.codes
    totals = split.by_domain(weights * u)
    if v is None:
        estimates, z = totals, u
        denominator_totals = np.full(split.n_domains, np.nan)
    else:
        denominator_totals = split.by_domain(weights * v)
        if np.any(denominator_totals == 0):
            raise ValueError(_undefined(block[int(np.flatnonzero(denominator_totals == 0)[0])]))
        below = (split.by_domain(np.asarray(to_numpy(fit.problem.base)) * v)
                 if fit.method == "ipwi" else denominator_totals)
        estimates = totals / below
        inside = codes >= 0
        domain = codes[inside]
        z = np.zeros_like(u)
        z[inside] = (u[inside] - estimates[domain] * v[inside]) * (
            1.0 / denominator_totals)[domain]
    weighted = weights * z
    scale = np.where(np.isnan(denominator_totals), 1.0, denominator_totals)
    moments = list(zip(split.by_domain(weighted) * scale,
                       split.by_domain(weighted * z) * scale * scale, denominator_totals))
    return list(estimates), split.column(weighted), split.column(z), moments


def _domain_rows(stat):
    """The rows of a statistic's domain(s), as the design's lonely-PSU rule
    reads them: None (every row), an indicator, or a split of ones."""
    if stat.split is not None:
        return stat.split.column(np.ones(stat.split.codes.shape[0]))
    return stat.indicator


def _replicate_logit_variance(thetas, theta, scale, rscales, mse):
    """The replicate variance of the log odds, or None where a replicate's
    proportion is 0 or 1 (the delta method then stands in)."""
    if not (0 < theta < 1 and np.all((thetas > 0) & (thetas < 1) | ~np.isfinite(thetas))):
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        logits = np.log(thetas / (1 - thetas))
    return float(replicate_variance(logits[:, None], [np.log(theta / (1 - theta))], scale,
                                    rscales, mse)[0])


def _is_proportion(stat):
    """A level of a categorical outcome, or the mean of a 0/1 outcome."""
    if stat.kind == "proportion":
        return True
    if stat.kind != "mean":
        return False
    if stat.split is not None:
        return stat.split.binary
    values = np.asarray(to_numpy(stat.numerator))
    return bool(np.all((values == 0) | (values == 1)))


def proportion_interval(p, variance, df, alpha, method, n, logit_variance=None, model=None):
    """R survey's ``svyciprop`` interval of a proportion ``p`` with ``variance``.

    "logit" and "xlogit": the Wald interval of ``log(p / (1 - p))`` (delta
    method), transformed back; "asin": of ``asin(sqrt(p))``, transformed back
    by ``sin^2`` (as R, with no folding at the ends); "beta": Korn and
    Graubard's, from the effective sample size ``p (1 - p) / variance``
    scaled by ``(t(n - 1) / t(df))^2``; "likelihood": the profile likelihood
    interval of the log odds (see :func:`_profile_interval`; ``model`` the
    outcome and scaled weights of the model's rows of positive weight). All
    but the Wald interval stay inside [0, 1].
    ``logit_variance``: the variance of the log odds where it was estimated
    directly ("logit" with replicate weights, as R's ``svyglm``).

    Examples
    --------
    >>> from skbalance._inference import proportion_interval
    >>> [round(x, 4) for x in proportion_interval(0.1, 0.0009, 30, 0.05, "logit", 100)]
    [0.0533, 0.18]
    """
    if variance == 0:
        return p, p
    quantile = float(student_t.ppf(1 - alpha / 2, df)) if np.isfinite(df) else float(
        special.ndtri(1 - alpha / 2))
    se = float(np.sqrt(variance))
    if method in ("logit", "xlogit"):
        if not 0 < p < 1:
            return p, p
        centre, half = np.log(p / (1 - p)), quantile * se / (p * (1 - p))
        if method == "logit" and logit_variance is not None:
            half = quantile * np.sqrt(logit_variance)
        return float(special.expit(centre - half)), float(special.expit(centre + half))
    if method == "asin":
        if not 0 < p < 1:
            return p, p
        centre, half = np.arcsin(np.sqrt(p)), quantile * se / (2 * np.sqrt(p * (1 - p)))
        return float(np.sin(centre - half) ** 2), float(np.sin(centre + half) ** 2)
    if method == "likelihood":
        if not 0 < p < 1:
            return p, p
        return _profile_interval(*model, n, variance / (p * (1 - p)) ** 2, df, alpha)
    effective = p * (1 - p) / variance
    tail = alpha / 2
    effective *= (student_t.ppf(tail, n - 1) / (student_t.ppf(tail, df) if np.isfinite(df)
                                                 else special.ndtri(tail))) ** 2
    low = beta_distribution.ppf(tail, effective * p, effective * (1 - p) + 1) if p > 0 else 0.0
    high = beta_distribution.ppf(1 - tail, effective * p + 1, effective * (1 - p)) if p < 1 else 1.0
    return float(low), float(high)


def _model_rows(stat, weights, n):
    """The 0/1 outcome and the weights of R's intercept-only quasibinomial
    ``svyglm`` of a proportion, on the rows of positive weight in its domain:
    the weights scaled to mean 1 over the model's ``n`` rows (R's
    ``rescale=TRUE``; a calibrated design's subset keeps every row)."""
    w = np.asarray(to_numpy(weights), dtype=np.float64)
    inside = w > 0
    if stat.indicator is not None:
        inside &= np.asarray(to_numpy(stat.indicator)) != 0
    y = np.asarray(to_numpy(stat.numerator), dtype=np.float64)[inside]
    return y, w[inside] * (n / w[inside].sum())


def _binomial_deviance(y, weights, mu):
    """``sum 2 W (y log(y / mu) + (1 - y) log((1 - y) / (1 - mu)))``."""
    return float(2 * np.sum(weights * (special.xlogy(y, y / mu)
                                       + special.xlogy(1 - y, (1 - y) / (1 - mu)))))


def _r_logit_fit(y, weights, tol=1e-8, max_iter=25):
    """R's ``glm.fit`` of the intercept-only (quasi)binomial model, as it
    stops: its log odds, and the total working weight of its last iteration
    (whose inverse is R's model variance of the log odds, ``naive.cov``:
    taken at the mean before the last update, so it differs from
    ``1 / (n p (1 - p))`` in the 5th digit). Iteratively reweighted least
    squares from R's start ``(W y + 0.5) / (W + 1)``, stopped when the
    deviance changes by less than ``tol`` relative (``glm.control``)."""
    mu = (weights * y + 0.5) / (weights + 1)
    eta = special.logit(mu)
    previous = _binomial_deviance(y, weights, mu)
    for _ in range(max_iter):
        working = weights * mu * (1 - mu)
        log_odds = float(np.dot(working, eta + (y - mu) / (mu * (1 - mu))) / working.sum())
        eta = np.full_like(y, log_odds)
        mu = special.expit(eta)
        deviance = _binomial_deviance(y, weights, mu)
        if abs(deviance - previous) / (abs(deviance) + 0.1) < tol:
            break
        previous = deviance
    return log_odds, float(working.sum())


def _profile_interval(y, weights, n, logit_variance, df, alpha):
    """R survey's ``svyciprop(method="likelihood")``: the profile likelihood
    interval of the log odds of the intercept-only quasibinomial model
    (``confint.svyglm(method="likelihood")``), on its rows of positive weight
    (outcome ``y``, ``weights`` scaled to mean 1 over the model's ``n`` rows).

    The signed root ``z(b)`` of the deviance's increase at log odds ``b``
    over the dispersion (R's: ``svyvar`` of the Pearson residuals, here
    ``m / (m - 1)`` for ``m`` rows) is taken, as R, on a grid from the fit
    (steps of ``zmax / 5`` standard errors, at most 9 a side, until ``|z|``
    reaches ``zmax``), interpolated by a Forsythe-Malcolm-Moler cubic spline
    at 3 times as many points, and the ends read (linearly) where that curve
    crosses ``t(alpha / 2, df) sqrt(lambda)``, ``lambda`` the log odds'
    design variance over the model's. So the interval is R's approximation
    of the profile's crossings, not the exact crossings (they differ in the
    4th digit or so).
    """
    b0, working_total = _r_logit_fit(y, weights)
    dispersion = y.shape[0] / (y.shape[0] - 1)  # the residuals' mean is 0, mean square 1
    fitted = _binomial_deviance(y, weights, special.expit(b0))
    se = math.sqrt(logit_variance)
    quantile = float(student_t.ppf(alpha / 2, df)) if np.isfinite(df) else float(
        special.ndtri(alpha / 2))
    tail = float(special.ndtr(quantile * math.sqrt(logit_variance * working_total))) / 2
    # R's sqrt(qf(tail, 1, n - 1, lower.tail=FALSE)), by t (scipy's F is inf in far tails)
    z_max = float(student_t.isf(tail / 2, n - 1))
    step_size = z_max / 5

    def signed_root(b):
        increase = (_binomial_deviance(y, weights, special.expit(b)) - fitted) / dispersion
        return math.copysign(math.sqrt(max(increase, 0.0)), b - b0)

    grid = [b0]
    for sign in (-1, 1):
        step, z = 0, 0.0
        while (step := step + 1) < 10 and abs(z) < z_max:
            grid.append(b0 + sign * step * step_size * se)
            z = signed_root(grid[-1])
    grid = np.sort(np.asarray(grid))
    roots = np.asarray([signed_root(b) for b in grid])
    points = np.linspace(grid[0], grid[-1], 3 * grid.shape[0])
    curve = fmm_spline(grid, roots, points)
    cutoff = float(special.ndtri(2 * tail))
    ends = _interpolate_inverse(curve, points, [cutoff, -cutoff])
    if not np.all(np.isfinite(ends)):
        raise ValueError(f"The likelihood interval of the proportion "
                         f"{float(special.expit(b0)):.6g} is undefined: its profile does not "
                         "reach the interval's level (R gives NA); use ci_method='logit' or "
                         "'beta'.")
    return float(special.expit(ends[0])), float(special.expit(ends[1]))


def _interpolate_inverse(y, x, targets):
    """R's ``approx(y, x, xout=targets)``: ``x`` at each target value of
    ``y``, linearly, with ``y`` sorted and the ``x`` of tied ``y`` averaged;
    NaN outside ``y``'s range."""
    order = np.argsort(y, kind="stable")
    y_sorted, x_sorted = y[order], x[order]
    levels, first = np.unique(y_sorted, return_index=True)
    counts = np.diff(np.append(first, y_sorted.shape[0]))
    means = np.add.reduceat(x_sorted, first) / counts
    return np.interp(targets, levels, means, left=np.nan, right=np.nan)


def fmm_spline(x, y, points):
    """The cubic spline through ``(x, y)`` with Forsythe, Malcolm and Moler's
    end conditions (R's ``spline(method="fmm")``), at ``points``.

    The ends take the third derivative of the cubic through the first (and
    last) four points; ``x`` sorted and distinct, at least four of them.

    Examples
    --------
    >>> import numpy as np
    >>> from skbalance._inference import fmm_spline
    >>> x = np.array([0.0, 1.0, 2.0, 3.0, 5.0])
    >>> np.allclose(fmm_spline(x, x**3 - x, np.array([0.5, 4.0])), [-0.375, 60.0])
    True
    """
    n = x.shape[0]
    h = np.diff(x)
    slopes = np.diff(y) / h
    # second-derivative system (sigma_i), tridiagonal: h[i-1], 2 (h[i-1] + h[i]), h[i]
    diagonal = np.empty(n)
    rhs = np.zeros(n)
    diagonal[1:-1] = 2 * (h[:-1] + h[1:])
    rhs[1:-1] = np.diff(slopes)
    diagonal[0], diagonal[-1] = -h[0], -h[-1]
    third = np.diff(slopes[:3]) / (x[2:4] - x[0:2])  # divided differences at the left end
    rhs[0] = (third[1] - third[0]) * h[0] ** 2 / (x[3] - x[0])
    third = np.diff(slopes[-3:]) / (x[-2:] - x[-4:-2])  # and at the right end
    rhs[-1] = -(third[1] - third[0]) * h[-1] ** 2 / (x[-1] - x[-4])
    for i in range(1, n):  # elimination
        factor = h[i - 1] / diagonal[i - 1]
        diagonal[i] -= factor * h[i - 1]
        rhs[i] -= factor * rhs[i - 1]
    sigma = np.empty(n)
    sigma[-1] = rhs[-1] / diagonal[-1]
    for i in range(n - 2, -1, -1):  # back substitution
        sigma[i] = (rhs[i] - h[i] * sigma[i + 1]) / diagonal[i]
    b = slopes - h * (sigma[1:] + 2 * sigma[:-1])
    c = 3 * sigma[:-1]
    d = np.diff(sigma) / h
    interval = np.clip(np.searchsorted(x, points, side="right") - 1, 0, n - 2)
    dx = points - x[interval]
    return y[interval] + dx * (b[interval] + dx * (c[interval] + dx * d[interval]))


def _domain_df(stats, counted, design, design_df):
    """R's ``degf`` of every statistic's domain subset: its first-stage units
    with positive weight minus their strata (rows minus 1 without a design;
    the design's for replicate weights)."""
    if design is not None and design.replicates is not None:
        return np.full(len(stats), design_df)
    out, by_split = [], {}
    for stat in stats:
        inside = np.asarray(to_numpy(counted), dtype=bool)
        if stat.split is not None:
            if id(stat.split) not in by_split:
                by_split[id(stat.split)] = _split_df(stat.split, inside, design)
            out.append(by_split[id(stat.split)][stat.position])
            continue
        if stat.indicator is not None:
            inside = inside & (np.asarray(to_numpy(stat.indicator)) != 0)
        if design is None:
            out.append(int(inside.sum()) - 1)
            continue
        units = design.units[0][inside]
        strata = design.unit_strata[0][inside]
        out.append(np.unique(units).shape[0] - np.unique(strata).shape[0])
    return np.asarray(out, dtype=np.float64)


def _split_df(split, counted, design):
    """:func:`_domain_df` of every domain of a split, from distinct pairs."""
    inside = counted & (split.codes >= 0)
    domain = split.codes[inside]
    if design is None:
        return np.bincount(domain, minlength=split.n_domains) - 1.0
    pairs = pd.DataFrame({"unit": design.units[0][inside],
                          "stratum": design.unit_strata[0][inside]})
    counts = pairs.groupby(domain).nunique().reindex(range(split.n_domains), fill_value=0)
    return (counts["unit"] - counts["stratum"]).to_numpy(dtype=np.float64)


def _bias_reduced(fit, influences, stats, design):
    """CR2 parts of every statistic's variance and their Bell-McCaffrey df.

    The calibration variables of a balanced fit (an intercept, every margin's
    indicators, numeric columns), or the intercept alone for the empirical
    baseline; the first-stage units of the design (each row without one).
    """
    if fit.method == "ipwi":
        raise ValueError("linearization='cr2' adjusts calibration residuals: it applies "
                         "to balanced estimates and the empirical baseline, not to 'ipwi'.")
    if design is not None and len(design.stages) > 1:
        raise ValueError("linearization='cr2' adjusts the first stage's residuals: give a "
                         "one-stage design (or drop the later stages' fpc).")
    problem = fit.problem
    base = np.asarray(to_numpy(problem.base), dtype=np.float64)
    counted = base > 0
    cell = np.asarray(to_numpy(problem.cell_of_row), dtype=np.int64)[counted]
    columns = [np.ones(problem.n_cells)]
    if fit.method != "empirical":
        for margin, codes in zip(problem.margins, problem.margin_codes):
            if np.issubdtype(codes.dtype, np.floating):  # a numeric column
                columns.append(codes)
            else:
                columns.extend((codes == level) * 1.0
                               for level in range(margin.proportions.shape[0]))
    X = np.column_stack(columns)[cell]
    if design is None:
        units = np.arange(int(counted.sum()))
        unit_stratum, keep = np.zeros(units.shape[0], dtype=np.int64), np.ones(units.shape[0])
    else:
        stage = design.stages[0]
        units = pd.factorize(stage.unit[counted], sort=True)[0]  # units with base weight
        present = np.unique(stage.unit[counted])
        unit_stratum = pd.factorize(stage.unit_stratum[present], sort=True)[0]
        keep = stage.keep[present]
    weights = np.asarray(to_numpy(fit.weights), dtype=np.float64)[counted]
    zs = [np.asarray(to_numpy(z), dtype=np.float64)[counted] for _, z in influences]
    domains = [None if s.indicator is None else
               np.asarray(to_numpy(s.indicator), dtype=np.float64)[counted] for s in stats]
    return bias_reduced_roots(units, unit_stratum, keep, X, base[counted], weights, zs,
                              domains)


def _linearized_roots(fit, influences, design, domains=None):
    """Every unit's signed root of its part of the variance of every
    statistic's influence total, after the balancing residual (n_parts,
    n_stats; each row its own unit without a design, where the rows live).
    ``domains``: per statistic, its domain indicator (None: every row), where
    a domain's variance sees only its own strata (see
    ``ResolvedDesign.variance_components``).

    ``influences`` holds, per statistic (or per split of domain statistics,
    as :class:`~skbalance.kernels.SplitColumn`), ``(w z, z)``; the influence
    value ``w_i (C_k z)_i`` is ``(w z)_i - w_i correction[cell_i]``.
    """
    problem, weights = fit.problem, fit.weights
    zs = [z for _, z in influences]
    if fit.residual_weights is not None:  # w_cal (t z - P(t z)), t = w / w_cal
        calibrated = fit.residual_weights
        xp = array_namespace(calibrated)
        ratio = xp.where(calibrated > 0, weights / xp.where(calibrated > 0, calibrated, 1.0),
                         0.0)
        zs = [z.times(ratio) if isinstance(z, SplitColumn) else ratio * z for z in zs]
        weights = calibrated
    corrections = (problem.ipwi_correction(zs) if fit.method == "ipwi"
                   else problem.cell_correction(zs, fit.steps))
    weighted = [w if isinstance(w, SplitColumn) else to_numpy(w) for w, _ in influences]
    if design is not None:
        if domains is not None:
            domains = [d if d is None or isinstance(d, SplitColumn) else to_numpy(d) > 0
                       for d in domains]
        return design.variance_components(
            weighted, cell_part=(to_numpy(weights), to_numpy(problem.cell_of_row), corrections),
            domains=domains, roots=True)
    counted = problem.base > 0
    columns = [w for w, _ in influences]  # each row is its own unit: dense columns
    columns = [c for w in columns for c in (
        [w.column(j) for j in range(w.n_parts)] if isinstance(w, SplitColumn) else [w])]
    columns = [_iid_roots(w - weights * problem.rows.gather(corrections[:, k],
                                                            problem.cell_of_row), counted)
               for k, w in enumerate(columns)]
    return array_namespace(columns[0]).stack(columns, axis=1)


def _largest(values):
    return float(array_namespace(values).max(array_namespace(values).abs(values)))


def _scale_free(stats, blocks, low=1e-100, high=1e100):
    """Statistics whose values are far from 1 in magnitude, rescaled near 1.

    Squares of values near 1e200 overflow; so the numerator (and denominator)
    of such a statistic are divided by their largest absolute value, and the
    estimate and its standard error multiplied back by ``units``. ``blocks``:
    the runs of statistics of one split (see :func:`_blocks`).
    """
    scaled, units = [], []
    for start, stop in blocks:
        if stats[start].split is not None:
            split = _split_scale_free(stats[start].split, low, high)
            units.extend(split[1])
            scaled.extend(replace(stat, split=split[0]) for stat in stats[start:stop])
            continue
        stat = stats[start]
        unit_u = _largest(stat.numerator)
        unit_v = 1.0 if stat.denominator is None else _largest(stat.denominator)
        if low < unit_u < high and low < unit_v < high or unit_u == 0 or unit_v == 0:
            scaled.append(stat)
            units.append(1.0)
            continue
        scaled.append(replace(stat, numerator=stat.numerator / unit_u,
                              denominator=None if stat.denominator is None
                              else stat.denominator / unit_v))
        units.append(unit_u / unit_v)
    return scaled, np.asarray(units)


def _split_scale_free(split, low, high):
    """:func:`_scale_free` for every domain of a split: the split, rescaled
    where some domain needs it, and each domain's unit."""
    inside = split.codes >= 0
    magnitudes = [np.abs(values[inside]) for values in (split.numerator, split.denominator)
                  if values is not None]
    if all(m.max(initial=0.0) < high and m.min(initial=np.inf, where=m > 0) > low
           for m in magnitudes):  # every domain's largest value is 0 or in range
        return split, np.ones(split.n_domains)
    domain = split.codes[inside]

    def largest(values):  # per domain
        out = np.zeros(split.n_domains)
        np.maximum.at(out, domain, np.abs(values[inside]))
        return out

    unit_u = largest(split.numerator)
    unit_v = np.ones(split.n_domains) if split.denominator is None else largest(
        split.denominator)
    kept = ((low < unit_u) & (unit_u < high) & (low < unit_v) & (unit_v < high)
            | (unit_u == 0) | (unit_v == 0))
    if kept.all():
        return split, np.ones(split.n_domains)
    unit_u, unit_v = np.where(kept, 1.0, unit_u), np.where(kept, 1.0, unit_v)

    def rescaled(values, unit):
        return None if values is None else np.where(
            inside, values / unit[np.maximum(split.codes, 0)], values)

    return (DomainSplit(rescaled(split.numerator, unit_u), rescaled(split.denominator, unit_v),
                        split.codes, split.n_domains), unit_u / unit_v)


def _srs_moments(weighted, z, denominator_total):
    """``sum w r``, ``sum w r^2`` (and ``sum w v``) behind the SRS variance.

    ``r`` is the residual ``u - estimate * v`` (``z`` times the denominator
    total), or ``u`` itself for totals (then ``z = u``): zero outside the
    domain, so sums over all rows are sums over the domain.
    """
    scale = 1.0 if np.isnan(denominator_total) else denominator_total
    return (float(array_namespace(weighted).sum(weighted)) * scale,
            _dot(weighted, z) * scale * scale, denominator_total)  # no scale**2: 1e163


def _domain_sizes(stats, counted, weights):
    """Per statistic: rows of positive weight in its domain, and their weight."""
    cache = {}
    sizes = []
    for stat in stats:
        if stat.split is not None:
            key = id(stat.split)
            if key not in cache:
                inside = np.asarray(to_numpy(counted), dtype=np.float64)
                cache[key] = (stat.split.by_domain(inside),
                              stat.split.by_domain(np.asarray(to_numpy(weights))))
            counts, totals = cache[key]
            sizes.append((int(counts[stat.position]), float(totals[stat.position])))
            continue
        key = id(stat.indicator)
        if key not in cache:
            if stat.indicator is None:
                total = float(array_namespace(weights).sum(weights))
                cache[key] = (int(to_numpy(counted).sum()), total)
            else:
                inside = (stat.indicator != 0) & counted
                cache[key] = (int(to_numpy(inside).sum()), _dot(weights, stat.indicator))
        sizes.append(cache[key])
    return sizes


def _table(stats, estimates, variances, units, dfs, moments, sizes, alpha):
    """The results table; estimates and variances come in each statistic's
    units (see ``_scale_free``), the design effect is free of them."""
    rows, quantiles = [], {}  # the t quantile of every df, computed once
    for stat, scaled, variance, unit, moment, (n, population), df in zip(
            stats, estimates, variances, units, moments, sizes, dfs):
        estimate, se = scaled * unit, np.sqrt(variance) * unit
        if np.isnan(se):  # the iid variance of fewer than two rows
            raise ValueError(
                f"The standard error of the {stat.kind} of {column_label(stat.outcome)} needs "
                f"two rows with positive weight; got n_samples={n}.")
        if se == 0:  # no sampling error (a census, a fixed margin): a point
            quantile = 0.0
        elif df > 0:
            if df not in quantiles:
                quantiles[df] = float(student_t.ppf(1 - alpha / 2, df))
            quantile = quantiles[df]
        else:
            raise ValueError(
                f"The interval of the {stat.kind} of {column_label(stat.outcome)} has no "
                "degrees of freedom (the design has as many strata as sampling units): "
                "pass df='normal' for normal intervals, or collapse strata.")
        df = int(df) if np.isfinite(df) and float(df).is_integer() else float(df)
        rows.append({
            "statistic": stat.kind, "outcome": stat.outcome, "level": stat.level,
            "domain": stat.domain, "estimate": estimate, "std_error": se,
            "ci_low": estimate - quantile * se, "ci_high": estimate + quantile * se,
            "deff": _ratio(variance, srs_variance(stat, moment, n, population)),
            "df": df, "n": n,
        })
    return pd.DataFrame(rows)


def _ratio(numerator, denominator):
    """numerator / denominator, NaN where the denominator is not positive."""
    return numerator / denominator if denominator > 0 else np.nan


def srs_variance(stat, moment, n, population):
    """Variance under simple random sampling of the same size (R's ``deff``).

    Within the domain (R's ``svyby``): ``svyvar / n * (1 - n / N)`` for means,
    proportions and ratios (of the residual ``u - R v``, over the mean of
    ``v`` squared), and ``svyvar * N^2 / n * (1 - n / N)`` for totals, with
    ``svyvar`` the weighted variance with the ``n / (n - 1)`` factor and ``N``
    the sum of the weights in the domain. It is 0 when the weights sum to the
    sample size (then the design effect is NaN: undefined).
    """
    if n < 2 or population <= 0:
        return np.nan
    first, second, denominator_total = moment
    mean = first / population  # per unit of weight first: weights of 1e163 do not overflow
    svyvar = (second / population - mean * mean) * n / (n - 1)
    if stat.is_total:
        return svyvar * (population / n) * population * (1 - n / population)
    if stat.kind == "ratio":
        mean_v = denominator_total / population
        svyvar /= mean_v * mean_v
    return svyvar / n * (1 - n / population)


def _replicate_estimates(fit, stats, design):
    """Every statistic on every replicate, re-balanced on the same cells.

    The replicates' weight totals per cell give their factors; statistics
    held as rows then take their totals under every replicate in one pass
    over the rows (:func:`_replicate_totals`; a jackknife through its (cell,
    unit) table instead); a split's domains take sums per ((cell, domain)
    pair present, replicate), so no array of rows times domains is made.

    Returns the replicate estimates (n_replicates, n_stats) and the variance
    constants.
    """
    problem = fit.problem
    cell = np.asarray(to_numpy(problem.cell_of_row), dtype=np.int64)
    n_cells = problem.n_cells
    blocks = _blocks(stats)
    dense = [stats[start] for start, _ in blocks if stats[start].split is None]
    numerators = [np.asarray(to_numpy(s.numerator), dtype=np.float64) for s in dense]
    denominators = [None if s.denominator is None else
                    np.asarray(to_numpy(s.denominator), dtype=np.float64) for s in dense]
    columns = numerators + [d for d in denominators if d is not None]
    by_rows = True  # the cell base, the factors, then the totals in one pass over rows
    if fit.replicate_weights is not None or design.supplied is not None:
        replicate = (fit.replicate_weights if fit.replicate_weights is not None
                     else design.supplied)
        scale, rscales, mse = replicate.scale, replicate.rscales, replicate.mse

        def sums_of(group, n_groups, columns):
            return _cell_sums_supplied(group, n_groups, columns, replicate.weights)

        def weights_of(start, stop):
            return replicate.weights[start:stop].T

        cell_base = _replicate_cell_totals(cell, n_cells, replicate.weights)
    else:
        multipliers, scale, rscales, mse = design.replicate_multipliers()
        unit, design_weights = design.units[0], design.weights

        def sums_of(group, n_groups, columns):
            return _cell_sums_built(group, n_groups, columns, design_weights, unit,
                                    multipliers)

        if isinstance(multipliers, DeleteOneMultipliers):
            # a jackknife's rows of multipliers are as many as its units: its
            # sums go through the (cell, unit) table instead
            by_rows = False
            sums = sums_of(cell, n_cells, [np.ones(cell.shape[0])] + columns)
            factors = _replicate_factors(fit, problem, sums[0])
            totals = [(factors * s).sum(axis=0) for s in sums]  # sums of w_r * column
            base_totals = [s.sum(axis=0) for s in sums]
        else:
            cell_base = sums_of(cell, n_cells, [np.ones(cell.shape[0])])[0]
            by_replicate = np.ascontiguousarray(multipliers.T)

            def weights_of(start, stop):  # d_i m[unit_i, r], replicates by rows
                block = np.take(by_replicate, unit[start:stop], axis=1, mode="clip")
                block *= design_weights[start:stop]
                return block
    if by_rows:
        factors = _replicate_factors(fit, problem, cell_base)
        totals = [cell_base.sum(axis=0)] + _replicate_totals(cell, factors, columns,
                                                             weights_of)
        base_totals = ([None] * (1 + len(numerators)) + _replicate_totals(
            cell, np.ones_like(factors), columns[len(numerators):], weights_of)
            if fit.method == "ipwi" else None)
    dense_thetas, next_denominator = [], 1 + len(numerators)
    for k, stat in enumerate(dense):
        numerator = totals[1 + k]
        if stat.denominator is None:
            dense_thetas.append(numerator)
            continue
        index = next_denominator
        next_denominator += 1
        below = base_totals[index] if fit.method == "ipwi" else totals[index]
        with np.errstate(divide="ignore", invalid="ignore"):  # no weight: discarded
            dense_thetas.append(numerator / below)
    dense_thetas = iter(dense_thetas)
    thetas = []
    for start, _ in blocks:
        split = stats[start].split
        if split is None:
            thetas.append(next(dense_thetas))
        else:
            thetas.extend(_split_replicate_estimates(split, cell, factors, sums_of,
                                                     fit.method == "ipwi"))
    return np.column_stack(thetas), scale, rscales, mse


def _split_replicate_estimates(split, cell, factors, sums_of, ipwi):
    """Every domain of a split on every replicate (one array per domain),
    from sums per present (cell, domain) pair and replicate."""
    inside = split.codes >= 0
    pair = np.zeros(cell.shape[0], dtype=np.int64)  # rows in no domain add 0 to pair 0
    pair[inside], keys = pd.factorize(cell[inside] * split.n_domains + split.codes[inside])
    cell_of_pair, domain_of_pair = keys // split.n_domains, keys % split.n_domains
    columns = [np.where(inside, values, 0.0) for values in (split.numerator, split.denominator)
               if values is not None]
    sums = sums_of(pair, keys.shape[0], columns)
    to_domain = sparse.csr_array((np.ones(keys.shape[0]), (domain_of_pair,
                                                            np.arange(keys.shape[0]))),
                                 shape=(split.n_domains, keys.shape[0]))
    pair_factors = factors[cell_of_pair]
    numerator = to_domain @ (pair_factors * sums[0])
    if split.denominator is None:
        return list(numerator)
    below = to_domain @ (sums[1] if ipwi else pair_factors * sums[1])
    with np.errstate(divide="ignore", invalid="ignore"):  # no weight: discarded
        return list(numerator / below)


def _cell_sums_built(cell, n_cells, columns, weights, unit, multipliers):
    """``sum_i d_i m[unit_i, r] column_i`` per cell and replicate, via the
    (cell, unit) table: the replicates never touch the rows."""
    n_units = multipliers.shape[0]
    # the (cell, unit) pairs present, found once and sorted (the table below is
    # then in order whatever the rows' order); then one pass per column
    keys, pair = np.unique(cell * n_units + unit, return_inverse=True)
    cells_of, units_of = keys // n_units, keys % n_units
    # every column's (cell, unit) table stacked, then one product with the multipliers
    totals = np.concatenate([np.bincount(pair, weights * column, minlength=keys.shape[0])
                             for column in columns])
    offsets = np.repeat(np.arange(len(columns)) * n_cells, keys.shape[0])
    table = sparse.csr_array((totals, (offsets + np.tile(cells_of, len(columns)),
                                       np.tile(units_of, len(columns)))),
                             shape=(len(columns) * n_cells, n_units))
    return np.split(multiplied(table, multipliers), len(columns))


def _replicate_cell_totals(cell, n_cells, replicate_weights):
    """``sum_i W_ir`` per cell and replicate (n_cells, n_replicates): one
    ``bincount`` per replicate column (contiguous as pandas keeps them)."""
    columns = replicate_weights.T
    return np.column_stack([np.bincount(cell, columns[r], minlength=n_cells)
                            for r in range(columns.shape[0])])


def _replicate_totals(cell, factors, columns, weights_of, chunk=1 << 14):
    """``sum_i u_i W_ir g[cell_i, r]`` of every column ``u``: its total under
    every replicate's final weights (one array of n_replicates per column).

    ``weights_of(start, stop)`` gives the replicate weights of a chunk of
    rows transposed, ``W[start:stop].T`` (n_replicates, n_rows_in_chunk). One
    pass over them, a chunk at a time: each row's factors are copied from the
    small (replicate x cell) table, multiplied by its replicate weights, and
    the chunk's product with the columns adds all the totals at once (a
    matrix product: no sum per cell is made, and the cost does not depend on
    the order of the rows). Replicates by rows keep every step contiguous
    where pandas keeps the weights column by column.
    """
    if not columns:
        return []
    unique = list({id(c): c for c in columns}.values())  # shared arrays once
    position = {id(c): k for k, c in enumerate(unique)}
    n_rows, n_reps = cell.shape[0], factors.shape[1]
    by_replicate = np.ascontiguousarray(factors.T)
    out = np.zeros((n_reps, len(unique)))
    scaled = np.empty((n_reps, min(chunk, n_rows)))
    values = np.empty((min(chunk, n_rows), len(unique)))
    for start in range(0, n_rows, chunk):
        stop = min(start + chunk, n_rows)
        part, block = scaled[:, :stop - start], values[:stop - start]
        # every cell is a valid index: mode="clip" skips the bounds check, 3x faster
        np.take(by_replicate, cell[start:stop], axis=1, out=part, mode="clip")
        part *= weights_of(start, stop)
        for k, column in enumerate(unique):
            block[:, k] = column[start:stop]
        out += part @ block
    return [out[:, position[id(c)]] for c in columns]


def _cell_sums_supplied(cell, n_cells, columns, replicate_weights, chunk=1 << 16):
    """``sum_i W_ir column_i`` per cell and replicate, one pass over ``W``.

    Rows are taken a chunk at a time: the chunk of ``W`` is made row-major
    (small, so the transposition stays in cache) and multiplied by a sparse
    (columns x cells) by rows matrix in CSC layout, whose product adds every
    row's values into the small result. Nothing of the size of ``W`` is made.
    """
    n_rows, n_reps = replicate_weights.shape
    unique = list({id(c): c for c in columns}.values())  # shared arrays once
    position = {id(c): k for k, c in enumerate(unique)}
    k = len(unique)
    offsets = n_cells * np.arange(k, dtype=np.int64)
    out = np.zeros((k * n_cells, n_reps))
    for start in range(0, n_rows, chunk):
        stop = min(start + chunk, n_rows)
        size = stop - start
        indices = (cell[start:stop, None] + offsets[None, :]).ravel()
        data = np.column_stack([c[start:stop] for c in unique]).ravel()
        block = sparse.csc_array((data, indices, np.arange(0, k * size + 1, k)),
                                 shape=(k * n_cells, size))
        out += block @ np.ascontiguousarray(replicate_weights[start:stop])
    return [out[position[id(c)] * n_cells:(position[id(c)] + 1) * n_cells] for c in columns]


def _replicate_factors(fit, problem, cell_base):
    """Weight over replicate base weight of every cell and replicate.

    The baselines apply their formula to each replicate; a balancing fit is
    re-run on each replicate's base mass by the one solver, with the
    balancer's own settings.
    """
    if fit.method == "empirical" or fit.replicate_weights is not None:  # as they are
        return np.ones_like(cell_base)
    if fit.method != "ipwi":
        settings = FitSettings.from_params(fit.balancer.get_params())
        return solve_replicates(problem, settings, cell_base)
    base_total = cell_base.sum(axis=0)
    if np.any(base_total <= 0):
        raise ValueError("A replicate has no positive weight on the rows.")
    mass = cell_base / base_total
    factors = np.ones_like(mass)
    for codes, target in zip(problem.margin_codes, problem.targets):
        indicator = sparse.csr_array((np.ones(codes.shape[0]),
                                      (codes, np.arange(codes.shape[0]))),
                                     shape=(target.shape[0], codes.shape[0]))
        share = indicator @ mass
        ratio = np.divide(target[:, None], share, out=np.zeros_like(share), where=share > 0)
        factors *= ratio[codes]
    return factors


def compute_replicate_weights(X: Table, balancer: MarginalBalancer, design: SurveyDesign, *,
                              sample_weight: Vector | None = None) -> ReplicateWeights:
    """Raked replicate weights: every replicate re-balanced like the full sample.

    The weights to hand to another tool, as R survey's ``weights(design,
    "analysis")`` after ``calibrate``: each replicate's base weights (built
    from the design or supplied by the data producer) are raked to the
    balancer's targets with its ``max_iter``, ``tol`` and ``bounds``.

    Parameters
    ----------
    X : DataFrame or array-like of shape (n_samples, n_features)
        The rows, with the balancing columns and the design's columns.
    balancer : MarginalBalancer
        The balancing to repeat (cloned; not fitted by this function).
    design : SurveyDesign
        A design with ``replicates`` set.
    sample_weight : array-like of shape (n_samples,), default=None
        Design weights, when the design does not name them.

    Returns
    -------
    ReplicateWeights
        ``weights`` of shape (n_samples, n_replicates), and the ``scale``,
        ``rscales`` and ``mse`` of their variance formula.

    Examples
    --------
    >>> import skbalance as skb
    >>> sample = skb.datasets.load_api("clus1")
    >>> targets = skb.datasets.api_population_targets(["stype", "sch.wide"])
    >>> design = skb.SurveyDesign(clusters="dnum", fpc="fpc", replicates="jk1")
    >>> reps = skb.compute_replicate_weights(sample, skb.MarginalBalancer(targets=targets),
    ...                                      design, sample_weight=sample["pw"])
    >>> reps.weights.shape, round(reps.scale, 4)
    ((183, 15), 0.9148)
    >>> bool(abs(reps.weights.sum(axis=0) - 6194).max() < 1e-6)  # each sums to the total
    True
    """
    rows = read_rows(X)  # read once, for the design and the balancing
    resolved = design.resolve(rows, None if sample_weight is None else to_numpy(sample_weight))
    if resolved.replicates is None:
        raise ValueError("The design has no replicates: set replicates='jk1', 'jkn', "
                         "'bootstrap', 'brr', 'fay', or supply replicate_weights.")
    return replicate_fit_weights(balancer, rows if isinstance(balancer, MarginalBalancer)
                                 else X, resolved)


def _replicate_base(resolved):
    """Every replicate's base weights (n_rows, n_replicates) and constants."""
    if resolved.supplied is not None:
        supplied = resolved.supplied
        return (np.asarray(supplied.weights), supplied.scale, supplied.rscales, supplied.mse,
                supplied.kind)
    multipliers, scale, rscales, mse = resolved.replicate_multipliers()
    base = resolved.weights[:, None] * multipliers[resolved.units[0]]
    return np.asarray(base), scale, rscales, mse, resolved.replicates


def rerun_replicates(weighter, X, resolved):
    """Every replicate's weights by the whole weighting re-run on its base
    weights: ``clone(weighter).fit(X, sample_weight=base_r).weights_`` (a
    recipe refits its propensity model, trims and rakes again).

    Returns
    -------
    ReplicateWeights
    """
    base, scale, rscales, mse, kind = _replicate_base(resolved)
    columns = []
    for r in range(base.shape[1]):
        fitted = clone(weighter).fit(X, sample_weight=base[:, r])
        columns.append(np.asarray(to_numpy(fitted.weights_), dtype=np.float64))
    return ReplicateWeights(np.column_stack(columns), scale, rscales, mse, kind)


def replicate_fit_weights(balancer, X, resolved):
    """Every replicate's weights of a resolved design, re-balanced like the
    full sample by ``balancer`` (None: the replicate base weights as they are;
    a balancer other than :class:`MarginalBalancer`: re-run on the rows).

    Returns
    -------
    ReplicateWeights
    """
    if balancer is not None and not isinstance(balancer, MarginalBalancer):
        return rerun_replicates(balancer, X, resolved)
    base, scale, rscales, mse, kind = _replicate_base(resolved)
    if balancer is None:
        return ReplicateWeights(base, scale, rscales, mse, kind)
    fitted = clone(balancer)
    problem = fitted.fit_problem(X, sample_weight=resolved.weights)
    cell = np.asarray(to_numpy(problem.cell_of_row), dtype=np.int64)
    [cell_base] = _cell_sums_supplied(cell, problem.n_cells, [np.ones(cell.shape[0])], base)
    fit = BalancingFit(problem, fitted.weights_, balancing_steps(fitted), fitted, "balanced")
    factors = _replicate_factors(fit, problem, cell_base)
    return ReplicateWeights(base * factors[cell], scale, rscales, mse, kind)


def quantile_rule(values, weights, p):
    """R survey's ``qrule="math"`` (Hyndman and Fan's type 1): the smallest
    value whose weighted share at or below it reaches ``p``, rows of weight 0
    left out.

    Examples
    --------
    >>> import numpy as np
    >>> from skbalance._inference import quantile_rule
    >>> quantile_rule(np.array([3.0, 1.0, 2.0, 4.0]), np.ones(4), 0.5)
    2.0
    """
    kept = weights != 0
    values, weights = values[kept], weights[kept]
    order = np.argsort(values, kind="stable")
    # sums accumulated in extended precision; a share within 1e-12 of p
    # reaches it (an even count of equal weights at the median does exactly,
    # which rounding must not undo)
    extended = weights[order].astype(np.longdouble)
    values, cumulative = values[order], np.cumsum(extended)
    total = cumulative[-1]
    reached = np.flatnonzero(cumulative >= (p - 1e-12) * total)
    return float(values[reached[0]] if reached.size else values[-1])


def quantile_statistics(y, rows, weights, quantiles, domain=None, na_rm=False):
    """Every quantile's point estimate, and the share at or below it.

    Returns the :class:`Statistic` of each share (the mean of ``x <= q`` in
    the domain, whose design-based interval Woodruff's method turns into the
    quantile's) and, for each, ``(values, weights, inside)`` on the host.
    """
    shares = []
    outcomes = _outcomes(y, rows)
    for name, _, categorical in outcomes:
        if categorical:
            raise ValueError(f"Outcome {name!r} is categorical: a quantile needs numbers.")
    missing = _missing_rows(y, rows, None) if na_rm else None
    if domain is not None:
        levels, codes = _levels(domain, _domain_label(domain), drop_unused=True)
        domains = [(level, codes == j) for j, level in enumerate(levels)]
    else:
        domains = [(None, np.ones(rows.n_rows, dtype=bool))]
    w = np.asarray(to_numpy(weights), dtype=np.float64)
    for name, values, _ in outcomes:
        x = np.asarray(to_numpy(_numeric(values, rows, f"Outcome {name!r}", missing)),
                       dtype=np.float64)
        for level, in_domain in domains:
            inside = in_domain & (w > 0) & (True if missing is None else ~missing)
            if not inside.any():
                raise ValueError(f"Domain {level_repr(level)} has no row of positive weight"
                                 f" with a value of {column_label(name)}.")
            indicator = rows.to_rows(inside * 1.0)
            for p in quantiles:
                q = quantile_rule(x[inside], w[inside], p)
                below = rows.to_rows((x <= q) * inside * 1.0)
                shares.append((Statistic("mean", name, p, level, below, indicator, indicator),
                               (x, w, inside, q)))
    return [s for s, _ in shares], [extra for _, extra in shares]


def woodruff_table(table, extras, alpha, method, n_design, empirical):
    """Quantiles' intervals from their shares' (Woodruff 1952, as R survey's
    ``svyquantile``): the interval of the share at or below the estimate,
    mapped back through the weighted quantile function; the standard error
    is its width over ``2 t``. An end of the share's interval beyond [0, 1]
    is taken at 0 or 1 (R returns NaN there)."""
    rows = []
    for (_, row), (x, w, inside, q) in zip(table.iterrows(), extras):
        share, se, df = row["estimate"], row["std_error"], row["df"]
        quantile_t = (float(student_t.ppf(1 - alpha / 2, df)) if np.isfinite(df)
                      else float(special.ndtri(1 - alpha / 2)))
        if method == "mean":
            low, high = share - quantile_t * se, share + quantile_t * se
        else:
            n = row["n"] if empirical else n_design
            low, high = proportion_interval(share, se**2, df, alpha,
                                            "xlogit" if method == "logit" else method, n)
        lower = quantile_rule(x[inside], w[inside], min(max(low, 0.0), 1.0))
        upper = quantile_rule(x[inside], w[inside], min(max(high, 0.0), 1.0))
        rows.append({**row.to_dict(), "statistic": "quantile", "estimate": q,
                     "std_error": (upper - lower) / (2 * quantile_t), "ci_low": lower,
                     "ci_high": upper})
    return pd.DataFrame(rows, columns=table.columns)
