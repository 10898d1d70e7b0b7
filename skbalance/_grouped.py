"""Design-based estimates of a dask frame, from one distributed group-by.

Rows that share their cell, their sampling units and strata, their domain and
the levels of their categorical outcomes share the balanced weights' factor:
their weights are their base weights times one number. Every estimate, every
sampling unit's total of influence values and every replicate's cell table
is then a sum over such groups of the groups' sums (THEORY section 6). So a
dask frame is reduced, in one distributed group-by, to one row per group
(its base-weight sum and its outcomes' base-weighted means) and the
in-memory estimator runs on those rows: its estimates, standard errors,
intervals and replicate variances are the rows'. Memory on the driver grows
with the groups, never with the rows.

Two numbers of the results need more than a group's sums of weights and
values: ``n`` counts rows, and the design effect's simple-random-sampling
variance needs the spread of the values within each group. The group table
carries both (rows of positive weight, weighted sums of squares), and
:func:`row_sizes` puts them back.
"""

from dataclasses import dataclass
from numbers import Integral

import numpy as np
import pandas as pd

from ._inference import srs_variance
from ._rows import is_dask
from ._streaming import attach_column, cell_table
from .utils._validation import column_label

__all__ = ["GroupedRows", "group_rows", "labels_of", "row_sizes"]

_PREFIX = "__skbalance_"


def labels_of(spec, what):
    """The column labels a spec names on a dask frame ([] for None).

    A label, or a list of labels; values (arrays) are refused: a dask frame's
    design, domain and denominator are its own columns.
    """
    if spec is None:
        return []
    if _is_label(spec):
        return [spec]
    if isinstance(spec, list) and spec and all(_is_label(s) for s in spec):
        return list(spec)
    raise TypeError(f"On a dask frame, {what} must name columns of X (a label or a list of "
                    f"labels); got {type(spec).__name__}. Add the values to the frame as a "
                    "column and name it.")


def _is_label(spec):
    return isinstance(spec, (str, Integral, tuple)) and not isinstance(spec, bool)


@dataclass
class GroupedRows:
    """A dask frame reduced to one row per group.

    Attributes
    ----------
    cells : pandas.DataFrame
        The group table: the keys, then ``rows``, ``base``, ``base_squares``,
        ``smallest`` and ``positive`` (a cell table refined by the other keys,
        see :func:`~skbalance._streaming.cell_table`).
    X : pandas.DataFrame
        The key columns of ``X``, one row per group.
    y : pandas.Series or pandas.DataFrame
        Every outcome's value per group: the base-weighted mean of a numeric
        outcome (NaN where it is missing), the level of a categorical one.
    denominator : pandas.Series or None
        The ratio's denominator, as a numeric outcome.
    spread : dict
        Per numeric outcome, the within-group ``sum b (y - mean)^2`` and
        ``sum b (y - mean)(x - mean_x)`` (None without a denominator); under
        the key None, the denominator's ``sum b (x - mean_x)^2``.
    """

    cells: pd.DataFrame
    X: pd.DataFrame
    y: object
    denominator: object
    spread: dict

    @property
    def base(self):
        """Base-weight sum of every group."""
        return self.cells["base"].to_numpy(dtype=np.float64)

    @property
    def positive(self):
        """Rows of positive base weight in every group."""
        return self.cells["positive"].to_numpy(dtype=np.float64)


def _outcome_columns(X, y):
    """(name, values, is_categorical) per outcome, and whether ``y`` is one:
    a column of ``X`` by label, or values matched to X's rows by position."""
    if _is_label(y) or (isinstance(y, list) and y and all(_is_label(c) for c in y)):
        labels = [y] if _is_label(y) else y
        for label in labels:
            if label not in X.columns:
                raise ValueError(f"Unknown outcome column {label!r}: X has columns "
                                 f"{list(X.columns)}.")
        columns = [(label, X[label], X[label].dtype) for label in labels]
        single = _is_label(y)
    else:  # matched to X's rows by position, as sample_weight
        if is_dask(y) or isinstance(y, (pd.Series, pd.DataFrame)):
            single = y.ndim == 1
            frame = {("y" if y.name is None else y.name): y} if single else {
                name: y[name] for name in y.columns}
        else:
            array = np.asarray(y)
            if array.ndim not in (1, 2):
                raise ValueError(f"y must be 1-D or 2-D; got shape {array.shape}.")
            single = array.ndim == 1
            frame = pd.DataFrame(array.reshape(array.shape[0], -1), columns=["y"] if single
                                 else [f"y{j}" for j in range(array.shape[1])])
        columns = [(name, values, values.dtype) for name, values in frame.items()]
    return [(name, values, _is_categorical(dtype)) for name, values, dtype in columns], single


def _is_categorical(dtype):
    return (isinstance(dtype, pd.CategoricalDtype) or getattr(dtype, "kind", None) in (
        "O", "b", "U", "S") or pd.api.types.is_string_dtype(dtype))


def _shifts(frame, columns, max_partitions=16):
    """Per numeric column, a value near its centre: the median of the first
    rows that have one (up to 1000 from a partition, from the first
    partitions in turn until every column has a value, at most
    ``max_partitions``; else 0). Subtracted before the sums of squares, so
    that the within-group spread keeps its digits when the mean is large.

    Each look takes pandas' ``head`` inside the partition: dask's own warns
    when a partition holds fewer rows than asked for, and short or empty
    partitions are ordinary (a filtered frame).
    """
    shifts = dict.fromkeys(columns, 0.0)
    pending = list(columns)
    for i in range(min(frame.npartitions, max_partitions)):
        if not pending:
            break
        head = frame[pending].partitions[i].map_partitions(
            pd.DataFrame.head, 1000).compute()
        for column in list(pending):
            values = pd.to_numeric(head[column], errors="coerce").dropna()
            if len(values):
                shifts[column] = float(values.median())
                pending.remove(column)
    return shifts


def group_rows(X, y, sample_weight, keys, denominator=None, na_rm=False):
    """Reduce a dask frame to one row per group of ``keys``, categorical
    outcome levels and missing outcomes.

    Parameters
    ----------
    X : dask DataFrame
    y : label, list of labels, or array-like, Series or DataFrame (dask or not)
        The outcome(s): columns of ``X``, or matched to its rows by position.
    sample_weight : label, dask Series or None
        The base weights: a column of ``X``, or matched by position.
    keys : list of labels
        The columns of ``X`` that define the groups (the balancing columns,
        the design's and the domain's).
    denominator : label or None
        The ratio's denominator, a column of ``X``.
    na_rm : bool, default=False
        Missing outcomes are allowed (each row keeps its design); False: an
        error that counts them.

    Returns
    -------
    GroupedRows
    """
    outcomes, single = _outcome_columns(X, y)
    frame = X[list(dict.fromkeys(keys))]
    raw, key_columns = {}, list(frame.columns)
    numeric = []  # (position, name, raw column)
    for j, (name, values, categorical) in enumerate(outcomes):
        column = f"{_PREFIX}y{j}"
        raw[column] = values
        if categorical:
            key_columns.append(column)
        else:
            numeric.append((j, name, column))
    if denominator is not None:
        raw[f"{_PREFIX}x"] = X[denominator]
        numeric.append((None, denominator, f"{_PREFIX}x"))
    if sample_weight is not None:
        raw[f"{_PREFIX}base"] = X[sample_weight] if _is_label(sample_weight) else sample_weight
    for column, values in raw.items():  # columns of X, or values matched by position
        frame = attach_column(frame, values, column,
                              "sample_weight" if column == f"{_PREFIX}base" else "y")
    shifts = _shifts(frame, [column for _, _, column in numeric])
    derived = {}
    for _, _, column in numeric:
        values = frame[column].astype("f8")
        derived[column + "_na"] = values.isna()
        derived[column + "_v"] = (values - shifts[column]).fillna(0.0)
        key_columns.append(column + "_na")
    frame = frame.assign(**derived)
    squares = {}
    for _, _, column in numeric:
        squares[column + "_vv"] = frame[column + "_v"] ** 2
        if denominator is not None and column != f"{_PREFIX}x":
            squares[column + "_vx"] = frame[column + "_v"] * frame[f"{_PREFIX}x_v"]
    frame = frame.assign(**squares)
    weighted = [c + "_v" for _, _, c in numeric] + list(squares)
    cells = cell_table(frame, key_columns, None, weighted=weighted, weight_column=None
                       if sample_weight is None else f"{_PREFIX}base")
    cells = cells.compute() if is_dask(cells) else cells
    return _grouped(cells, keys, outcomes, numeric, shifts, single, denominator, na_rm)


def _grouped(cells, keys, outcomes, numeric, shifts, single, denominator, na_rm):
    """The group table's rows as the in-memory estimator reads them."""
    base = cells["base"].to_numpy(dtype=np.float64)
    counted = base > 0
    n_rows = int(cells["rows"].sum())
    means, spread = {}, {}
    for j, name, column in numeric:
        missing = cells[column + "_na"].to_numpy(dtype=bool)
        if missing.any() and not na_rm:
            what = (f"Outcome {name!r}" if j is not None else
                    f"The ratio's denominator {column_label(name)}")
            raise ValueError(
                f"{what} has {int(cells['rows'].to_numpy()[missing].sum())} missing value(s) "
                f"in {n_rows} rows; pass na_rm=True to leave those rows out of the estimates "
                "(R's na.rm=TRUE), or fill them.")
        total = cells[column + "_v"].to_numpy(dtype=np.float64)
        mean = np.divide(total, base, out=np.zeros_like(total), where=counted)
        means[column] = np.where(missing, np.nan, mean + shifts[column])
        squares = cells[column + "_vv"].to_numpy(dtype=np.float64) - mean * total
        spread[column] = np.maximum(squares, 0.0)
    for j, _, column in numeric:
        if denominator is not None and j is not None:
            across = cells[column + "_vx"].to_numpy(dtype=np.float64)
            x_total = cells[f"{_PREFIX}x_v"].to_numpy(dtype=np.float64)
            x_mean = np.divide(x_total, base, out=np.zeros_like(x_total), where=counted)
            spread[column] = (spread[column], across - x_mean * cells[column + "_v"].to_numpy(
                dtype=np.float64))
        elif j is not None:
            spread[column] = (spread[column], None)
    if not na_rm:
        for j, (name, _, categorical) in enumerate(outcomes):
            missing = cells[f"{_PREFIX}y{j}"].isna().to_numpy() if categorical else None
            if categorical and missing.any():
                raise ValueError(
                    f"Outcome {name!r} has {int(cells['rows'].to_numpy()[missing].sum())} "
                    f"missing value(s) in {n_rows} rows; pass na_rm=True to leave those rows "
                    "out of the estimates (R's na.rm=TRUE), or fill them.")
    X = cells[list(dict.fromkeys(keys))].reset_index(drop=True)
    values = {}
    for j, (name, _, categorical) in enumerate(outcomes):
        column = f"{_PREFIX}y{j}"
        values[name] = cells[column].reset_index(drop=True) if categorical else pd.Series(
            means[column])
    y = (pd.Series(values[outcomes[0][0]].to_numpy(), name=outcomes[0][0]) if single
         else pd.DataFrame({name: series.to_numpy() for name, series in values.items()}))
    x = None
    by_outcome = {name: spread[f"{_PREFIX}y{j}"] for j, name, _ in numeric if j is not None}
    if denominator is not None:  # a column of the groups, as of the rows
        x = pd.Series(means[f"{_PREFIX}x"], name=denominator)
        X = X.assign(**{denominator: x.to_numpy()}) if isinstance(denominator, str) else (
            pd.concat([X, x.to_frame()], axis=1))
        by_outcome[None] = spread[f"{_PREFIX}x"]
    return GroupedRows(cells, X, y, x, by_outcome)


def row_sizes(results, stats, weights, grouped):
    """``n`` and ``deff`` of the rows behind the groups, in place of the groups'.

    Parameters
    ----------
    results : pandas.DataFrame
        The estimator's results on the groups (one row per statistic).
    stats : list of Statistic
        Its statistics, on the groups.
    weights : ndarray of shape (n_groups,)
        The weights of the groups (their rows' weights summed).
    grouped : GroupedRows

    Returns
    -------
    pandas.DataFrame
        ``results`` with the rows' ``n`` and design effect.
    """
    weights = np.asarray(weights, dtype=np.float64)
    base = grouped.base
    factor = np.divide(weights, base, out=np.zeros_like(weights), where=base > 0)
    estimates = results["estimate"].to_numpy(dtype=np.float64)
    n_column = results["n"].to_numpy().copy()
    deff_column = np.full(len(stats), np.nan)
    start = 0
    while start < len(stats):  # a split's domains together, by sums per domain
        stat = stats[start]
        if stat.split is None:
            stop, u, v = start + 1, stat.numerator, stat.denominator
            codes = (np.zeros(u.shape[0], dtype=np.int64) if stat.indicator is None
                     else np.where(np.asarray(stat.indicator) != 0, 0, -1))
        else:
            split = stat.split
            stop = start + split.n_domains
            u, v, codes = split.numerator, split.denominator, split.codes
        inside = codes >= 0
        domain, n_domains = codes[inside], stop - start
        estimate = estimates[start:stop][domain]
        w, f, u = weights[inside], factor[inside], np.asarray(u, dtype=np.float64)[inside]
        v = None if stat.is_total else np.asarray(v, dtype=np.float64)[inside]
        residual = u if v is None else u - estimate * v
        within = _within(stat, grouped, inside, None if v is None else estimate)

        firsts, seconds, sizes, populations = (
            np.bincount(domain, values, minlength=n_domains) for values in (
                w * residual, w * residual * residual + f * within,
                grouped.positive[inside], w))
        totals = (np.full(n_domains, np.nan) if v is None
                  else np.bincount(domain, w * v, minlength=n_domains))
        for j, position in enumerate(range(start, stop)):
            n = int(round(sizes[j]))
            srs = srs_variance(stats[position], (firsts[j], seconds[j], totals[j]), n,
                               populations[j])
            variance = results["std_error"].iat[position] ** 2
            n_column[position] = n
            deff_column[position] = variance / srs if srs > 0 else np.nan
        start = stop
    results = results.copy()
    results["n"] = n_column.astype(np.int64)
    results["deff"] = deff_column
    return results


def _within(stat, grouped, inside, estimate):
    """Every group's ``sum b r^2`` about its own mean (``r = u - estimate v``,
    ``estimate`` per group, None for totals): what the group's mean leaves
    out of its rows' sum of squares."""
    if stat.kind in ("proportion", "count"):  # a level is one of the keys
        return np.zeros(int(inside.sum()))
    yy, yx = grouped.spread[stat.outcome]
    within = yy[inside]
    if stat.kind == "ratio":
        within = within - 2 * estimate * yx[inside] + estimate * estimate * grouped.spread[
            None][inside]
    return within
