"""The covariate-balance report: does the weighted sample look like the target?

For every covariate, before weighting (base weights) and after: the absolute
standardized mean difference (ASMD) of every term (a numeric column, or the
0/1 indicator of each level of a categorical one), and a distance between the
weighted and the target distributions (total variation for a categorical
column, Kolmogorov-Smirnov for a numeric one); overall, their means and
Kish's design effect and effective sample size.

The standardizer is the target's standard deviation with the reliability
weights correction ``sum(v) / (sum(v)^2 - sum(v^2))`` (R's ``cov.wt``,
balance's ``asmd`` with ``std_type="target"``); against target margins, a
level's is ``sqrt(q (1 - q))`` and a numeric target's the sample's
(base-weighted), since margins carry no spread.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
from array_api_compat import is_array_api_obj

from ._problem import joint_index
from ._rows import kish_effective_size, read_rows
from ._targets import is_numeric, parse_targets
from ._typing import Table, Vector
from .kernels import encode_cells
from .utils._array_api import to_numpy
from .utils._threads import one_blas_thread
from .utils._validation import check_sample_weight, column_label
from .utils._warnings import warn

__all__ = ["balance_table", "covariate_balance"]

COLUMNS = ["kind", "before", "after", "target", "asmd_before", "asmd_after",
           "distance_before", "distance_after"]
SUMMARY, OVERALL, MISSING, MEAN = "(all)", "(overall)", "(missing)", "(mean)"


def weighted_moments(x, w):
    """Weighted mean and variance with the reliability-weights correction.

    ``var = sum(w) / (sum(w)^2 - sum(w^2)) * sum(w (x - mean)^2)``: the
    unbiased variance for equal weights; with one effective row, the plain
    weighted variance (0).
    """
    v1 = float(w.sum())
    mean = float(w @ x) / v1
    squares = float(w @ (x - mean) ** 2)
    v2 = float(w @ w)
    denominator = v1 * v1 - v2
    if denominator <= 1e-12 * v1 * v1:
        return mean, squares / v1
    return mean, v1 / denominator * squares


def ks_distances(x, weightings, y, v):
    """Kolmogorov-Smirnov distance between ``x`` under each of ``weightings``
    and the weighted target ``y``: the largest gap between their cumulative
    distribution functions. The pooled values are sorted once for all the
    weightings."""
    values, position = np.unique(np.concatenate([x, y]), return_inverse=True)
    target = np.bincount(position[x.shape[0]:], v / v.sum(), minlength=values.shape[0])
    distances = []
    for w in weightings:
        sample = np.bincount(position[:x.shape[0]], w / w.sum(), minlength=values.shape[0])
        gaps = np.cumsum(sample - target)
        distances.append(float(np.max(np.abs(gaps))) if gaps.size else 0.0)
    return distances


def _asmd(difference, target_var, fallback_var, covariate, term):
    """|difference| over the target's spread (the pooled one if the target's is 0)."""
    spread = np.sqrt(target_var) if target_var > 0 else np.sqrt((target_var + fallback_var) / 2)
    if spread > 0:
        return abs(difference) / spread
    if abs(difference) <= 1e-15:
        return 0.0
    warn(
        f"ASMD of {covariate!r} {term!r} is undefined: it is constant in the sample and "
        "in the target, with different values (reported as NaN).", UserWarning)
    return np.nan


def _values(rows, column):
    """One column of rows as a host pandas Series."""
    values = rows.column(column)
    if isinstance(values, pd.Series):
        return values
    return pd.Series(to_numpy(values) if rows.on_device else values)


def _read_weights(weights, n_rows, name):
    if not isinstance(weights, np.ndarray) and is_array_api_obj(weights):
        weights = to_numpy(weights)  # device weights: the report is made on the host
    try:
        return check_sample_weight(weights, n_rows)
    except ValueError as exc:
        raise ValueError(str(exc).replace("sample_weight", name)) from exc


def _is_numeric_column(values, forced_categorical):
    dtype = values.dtype
    if forced_categorical or isinstance(dtype, pd.CategoricalDtype):
        return False
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)


def _float_values(values, covariate):
    x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    if np.isinf(x).any():
        raise ValueError(f"Covariate {column_label(covariate)} contains inf; the report "
                         "needs finite values (NaN counts as missing).")
    return x


def _sorted_levels(levels):
    try:
        return levels.sort_values(na_position="last")
    except TypeError:  # levels of mixed types keep their order of appearance
        return levels


def _categorical_terms(covariate, codes, levels, sides, target_shares, target_var):
    """Term rows and the covariate summary of one categorical covariate.

    ``codes`` are the sample rows' level positions (in ``levels``);
    ``target_shares`` and ``target_var`` the target's per level.
    """
    base, balanced = sides
    n = levels.shape[0]
    shares = [np.bincount(codes, w, minlength=n) / w.sum() for w in (base, balanced)]
    base_var = shares[0] * (1 - shares[0]) * _correction(base)
    terms = []
    for i, level in enumerate(levels):
        q = target_shares[i]
        asmd = [_asmd(p[i] - q, target_var[i], base_var[i], covariate, level) for p in shares]
        terms.append(((covariate, level), ["categorical", shares[0][i], shares[1][i], q,
                                           *asmd, np.nan, np.nan]))
    distance = [0.5 * float(np.abs(p - target_shares).sum()) for p in shares]
    return terms, distance


def _correction(w):
    """``sum(w)^2 / (sum(w)^2 - sum(w^2))``: turns ``q (1 - q)`` into the
    reliability-weighted variance of a 0/1 indicator."""
    v1, v2 = float(w.sum()), float(w @ w)
    denominator = v1 * v1 - v2
    return v1 * v1 / denominator if denominator > 1e-12 * v1 * v1 else 1.0


def _against_rows(covariate, values, target, numeric, sides):
    """Terms and distances of one covariate (its sample ``values``) against
    the target's (rows, weights)."""
    base, balanced = sides
    target_rows, target_weight = target
    target_values = _values(target_rows, covariate)
    if numeric:
        x, y = _float_values(values, covariate), _float_values(target_values, covariate)
        seen_x, seen_y = ~np.isnan(x), ~np.isnan(y)
        if not seen_y.any() or not seen_x.any():
            raise ValueError(f"Covariate {column_label(covariate)} has no value in the "
                             f"{'target' if not seen_y.any() else 'sample'}.")
        target_mean, target_var = weighted_moments(y[seen_y], target_weight[seen_y])
        means = [weighted_moments(x[seen_x], w[seen_x]) for w in (base, balanced)]
        terms = [((covariate, MEAN), [
            "numeric", means[0][0], means[1][0], target_mean,
            *[_asmd(m[0] - target_mean, target_var, means[0][1], covariate, MEAN)
              for m in means], np.nan, np.nan])]
        distance = ks_distances(x[seen_x], [w[seen_x] for w in (base, balanced)], y[seen_y],
                                target_weight[seen_y])
        if not (seen_x.all() and seen_y.all()):  # the share missing is a term too
            missing, _ = _categorical_terms(
                covariate, (~seen_x).astype(np.int64), pd.Index([False, True]), sides,
                *_level_shares((~seen_y).astype(np.int64), target_weight, 2))
            row = missing[1][1]
            row[0] = "numeric"
            terms.append(((covariate, MISSING), row))
        return terms, distance
    sample_codes, sample_levels = pd.factorize(values, use_na_sentinel=False)
    target_codes, target_levels = pd.factorize(target_values, use_na_sentinel=False)
    levels = _sorted_levels(sample_levels.append(
        target_levels[~target_levels.isin(sample_levels)]))
    codes = levels.get_indexer(sample_levels)[sample_codes]
    t_codes = levels.get_indexer(target_levels)[target_codes]
    return _categorical_terms(covariate, codes, levels, sides,
                              *_level_shares(t_codes, target_weight, levels.shape[0]))


def _level_shares(codes, weight, n_levels):
    """Weighted share of every level and the reliability-weighted variance of
    its 0/1 indicator."""
    shares = np.bincount(codes, weight, minlength=n_levels) / weight.sum()
    return shares, shares * (1 - shares) * _correction(weight)


def _against_margin(margin, rows, sides):
    """Terms and distances of one target margin (or numeric target)."""
    base, balanced = sides
    if is_numeric(margin):
        column = margin.columns[0]
        x = _float_values(_values(rows, column), column)
        seen = ~np.isnan(x)
        if not seen.any():
            raise ValueError(f"Column {column!r} has no value in the sample (all missing): "
                             "its balance against the target's mean cannot be measured.")
        means = [weighted_moments(x[seen], w[seen]) for w in (base, balanced)]
        return [((margin.key, MEAN), [
            "numeric", means[0][0], means[1][0], margin.mean,
            *[_asmd(m[0] - margin.mean, means[0][1], 0.0, margin.key, MEAN)
              for m in means], np.nan, np.nan])], [np.nan, np.nan]
    encoded = {c: rows.encode(c, missing="level") for c in margin.columns}
    if len(margin.columns) == 1:
        codes, observed = encoded[margin.columns[0]]
    else:
        codes, _, combo_codes = encode_cells(
            [encoded[c][0] for c in margin.columns],
            [encoded[c][1].shape[0] for c in margin.columns], return_cell_codes=True)
        observed = joint_index(margin.columns, combo_codes, encoded)
    codes = to_numpy(codes)
    position = margin.levels.get_indexer(observed)
    seen = np.bincount(codes, minlength=observed.shape[0]) > 0
    extra = observed[(position < 0) & seen]  # observed levels without a target: share 0
    levels = margin.levels.append(extra) if extra.shape[0] else margin.levels
    position = levels.get_indexer(observed)
    target_shares = np.concatenate([margin.proportions, np.zeros(extra.shape[0])])
    return _categorical_terms(margin.key, position[codes], levels, sides, target_shares,
                              target_shares * (1 - target_shares))


def _read_target(target, rows, target_weight):
    """The target as ('rows', (rows, weights)) or ('margins', parsed margins)."""
    if isinstance(target, Mapping):
        margins, _ = parse_targets(target, "auto", known_columns=rows.columns)
        return "margins", margins
    if isinstance(target, list):  # parsed margins, from a fitted balancer
        return "margins", target
    target_rows = read_rows(target)
    if target_rows.lazy:
        raise TypeError("The target rows are a dask DataFrame: compute() them first.")
    weights = _read_weights(target_weight, target_rows.n_rows, "target_weight")
    return "rows", (target_rows, weights)


def balance_table(X, weights, target, *, sample_weight=None, target_weight=None,
                  covariates=None, categorical=()):
    """The report frame; ``target`` may also be a list of parsed margins."""
    with one_blas_thread():  # weighted sums over the rows (see utils._threads)
        return _balance_table(X, weights, target, sample_weight, target_weight, covariates,
                              categorical)


def _balance_table(X, weights, target, sample_weight, target_weight, covariates,
                   categorical):
    rows = read_rows(X)
    if rows.lazy:
        raise TypeError("X is a dask DataFrame: compute() the rows to report on first.")
    n_rows = rows.n_rows
    base = _read_weights(sample_weight, n_rows, "sample_weight")
    balanced = _read_weights(weights, n_rows, "weights")
    sides = (base, balanced)
    kind, read = _read_target(target, rows, target_weight)
    records = []
    if kind == "margins":
        margins = read
        if covariates is not None:
            wanted = list(covariates)
            margins = [m for m in margins if m.key in wanted or
                       (len(m.columns) == 1 and m.columns[0] in wanted)]
        for margin in margins:
            records.append((margin.key, *_against_margin(margin, rows, sides)))
    else:
        target_rows = read[0]
        if covariates is None:
            present = set(target_rows.columns)
            covariates = [c for c in rows.columns if c in present]
        covariates = list(covariates)
        if not covariates:
            raise ValueError("X and the target rows have no covariate in common.")
        rows.check_columns(covariates)
        target_rows.check_columns(covariates)
        forced = set(categorical)
        for covariate in covariates:
            values = _values(rows, covariate)
            numeric = _is_numeric_column(values, covariate in forced)
            records.append((covariate, *_against_rows(covariate, values, read, numeric,
                                                      sides)))
    return _assemble(records, sides)


def _assemble(records, sides):
    index, values = [], []
    summaries = []
    for covariate, terms, distance in records:
        term_asmd = np.array([row[4:6] for _, row in terms], dtype=float)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column stays NaN
            summary = np.nanmean(term_asmd, axis=0) if np.isfinite(term_asmd).any() \
                else np.full(2, np.nan)
        kind = terms[0][1][0]
        for key, row in terms:
            index.append(key)
            values.append(row)
        index.append((covariate, SUMMARY))
        values.append([kind, np.nan, np.nan, np.nan, *summary, *distance])
        summaries.append([*summary, *distance])
    summaries = np.array(summaries, dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        overall = [float(np.nanmean(col)) if np.isfinite(col).any() else np.nan
                   for col in summaries.T]
    index.append((OVERALL, SUMMARY))
    values.append(["overall", np.nan, np.nan, np.nan, *overall])
    sizes = [kish_effective_size(w) for w in sides]
    counted = [int(np.count_nonzero(w > 0)) for w in sides]
    index.append((OVERALL, "design effect"))
    values.append(["weights", counted[0] / sizes[0], counted[1] / sizes[1], np.nan,
                   *[np.nan] * 4])
    index.append((OVERALL, "effective sample size"))
    values.append(["weights", sizes[0], sizes[1], np.nan, *[np.nan] * 4])
    frame = pd.DataFrame(values, columns=COLUMNS,
                         index=pd.MultiIndex.from_tuples(index, names=["covariate", "level"]))
    return frame.astype({c: float for c in COLUMNS[1:]})


def covariate_balance(X: Table, weights: Vector, target: Table | Mapping, *,
                      sample_weight: Vector | None = None,
                      target_weight: Vector | None = None, covariates: list | None = None,
                      categorical: Iterable = ()) -> pd.DataFrame:
    """Covariate balance before and after weighting, against a target.

    Parameters
    ----------
    X : DataFrame or array-like of shape (n_samples, n_features)
        The sample's rows (pandas, polars or a 2-D array; columns by position).
    weights : array-like of shape (n_samples,)
        The weights to judge (for instance a balancer's ``weights_``).
    target : DataFrame, array-like or dict
        Population rows with the same columns (``target_weight`` their
        weights), or target margins as :class:`MarginalBalancer` takes them
        (``{column: {level: share}}``, ``skb.Mean(value)``).
    sample_weight : array-like of shape (n_samples,), default=None
        The base weights: "before" weighting (1 for every row when None).
    target_weight : array-like, default=None
        Weights of the target rows (1 for every row when None).
    covariates : list, default=None
        The columns to compare; every column of ``X`` that the target rows
        have (or every target margin) when None.
    categorical : list, default=()
        Numeric columns to read as categorical (level codes). Strings,
        booleans and pandas categoricals always are.

    Returns
    -------
    report : pandas.DataFrame
        Indexed by (``covariate``, ``level``). A term row per numeric
        covariate (level ``"(mean)"``, and ``"(missing)"``: the share of
        NaN, when there is any) and per level of a categorical covariate:
        ``before``, ``after`` and ``target`` are its weighted mean (or
        share), ``asmd_before`` and ``asmd_after`` its ASMD. A row
        ``(covariate, "(all)")`` has the mean ASMD of the covariate's terms
        and ``distance_before``/``distance_after``: the total variation
        distance (categorical) or Kolmogorov-Smirnov distance (numeric;
        NaN against a numeric target margin, which has no distribution).
        ``("(overall)", "(all)")`` averages the covariates (each counts
        once); ``("(overall)", "design effect")`` and ``"effective sample
        size"`` are Kish's, under the base and the judged weights.

    Examples
    --------
    >>> import pandas as pd
    >>> import skbalance as skb
    >>> sample = pd.DataFrame({"g": ["a", "b", "b", "b"], "x": [1.0, 2.0, 3.0, 4.0]})
    >>> target = pd.DataFrame({"g": ["a", "b"], "x": [1.5, 3.5]})
    >>> w = skb.compute_balancing_weights(sample, {"g": {"a": 0.5, "b": 0.5}})
    >>> report = skb.covariate_balance(sample, w, target)
    >>> report.loc[("g", "a"), ["before", "after", "target"]].round(6).tolist()
    [0.25, 0.5, 0.5]
    >>> report.loc[("x", "(mean)"), ["after", "target", "asmd_after"]].round(4).tolist()
    [2.0, 2.5, 0.3536]
    """
    return balance_table(X, weights, target, sample_weight=sample_weight,
                         target_weight=target_weight, covariates=covariates,
                         categorical=categorical)
