"""Two-way tables and the Rao-Scott test of association (R survey's ``svychisq``)."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.stats import chi2, f

from ._functional import BalancedFunctionalEstimator
from ._typing import Table, Vector

__all__ = ["chisq_test", "two_way_table"]


def chisq_test(X: Table, rows: Any, columns: Any, *, balancer: Any = None,
               baseline: Literal["empirical", "ipwi"] | None = None, design: Any = None,
               sample_weight: Vector | None = None,
               statistic: Literal["F", "Chisq"] = "F") -> pd.Series:
    """Rao and Scott's design-adjusted chi-square test of a two-way table.

    R survey's ``svychisq(~rows + columns, design)``: Pearson's statistic of
    the weighted table (scaled to the number of rows) and the design effect
    matrix ``Delta`` of the interaction contrasts of the cell proportions,
    from their design-based covariance matrix (through the balancing, as
    every estimate of :class:`BalancedFunctionalEstimator`).

    Parameters
    ----------
    X : DataFrame
        The rows, with the two columns and the design's.
    rows, columns : label
        The table's two columns (categorical).
    balancer : MarginalBalancer or None, default=None
        Balances the weights first; None: the design weights alone (R's
        uncalibrated design).
    baseline : {"empirical", "ipwi"} or None, default=None
        As in :class:`BalancedFunctionalEstimator`; None without a balancer
        is "empirical" (``X`` holds the table's and the design's columns,
        which no default balancing should rake).
    design : SurveyDesign or None, default=None
        How the sample was drawn.
    sample_weight : array-like of shape (n_samples,) or None, default=None
        Base weights.
    statistic : {"F", "Chisq"}, default="F"
        "F" (R's default): the second-order correction, ``X^2 / tr(Delta)``
        on an F distribution with ``d0`` and ``d0 * df`` degrees of freedom,
        ``d0 = tr(Delta)^2 / tr(Delta^2)``. "Chisq": the first-order
        correction, the p-value of ``X^2 / mean(diag(Delta))`` on a
        chi-square with ``(r - 1)(c - 1)`` degrees of freedom (the statistic
        reported is Pearson's, as R's).

    Returns
    -------
    pandas.Series
        ``statistic``, ``ndf``, ``ddf`` (F; for "Chisq" ``ndf`` is the
        chi-square's degrees of freedom and ``ddf`` infinite), ``p_value``
        and ``pearson`` (Pearson's statistic of the scaled table).

    Examples
    --------
    >>> import skbalance as skb
    >>> clus1 = skb.datasets.load_api("clus1")
    >>> test = skb.chisq_test(clus1, "sch.wide", "stype", baseline="empirical",
    ...                       design=skb.SurveyDesign(clusters="dnum", fpc="fpc"),
    ...                       sample_weight=clus1["pw"])
    >>> round(float(test["statistic"]), 4), round(float(test["p_value"]), 4)
    (5.1934, 0.0217)
    """
    if statistic not in ("F", "Chisq"):
        raise ValueError(f"statistic must be 'F' or 'Chisq'; got {statistic!r}.")
    frame, cell = _cells(X, rows, columns)
    row_levels = sorted(frame[rows].dropna().unique())
    col_levels = sorted(frame[columns].dropna().unique())
    if len(row_levels) < 2 or len(col_levels) < 2:
        raise ValueError(f"A two-way table needs two levels in each column; {rows!r} has "
                         f"{len(row_levels)} and {columns!r} {len(col_levels)}.")
    estimator = BalancedFunctionalEstimator(balancer, baseline=_baseline(balancer, baseline),
                                            design=design,
                                            ci_method="mean")
    estimator.fit(frame, cell, sample_weight=sample_weight)
    results = estimator.results_
    # R's cells: every combination, the first column's levels varying fastest
    grid = [(r, c) for c in col_levels for r in row_levels]
    position = {level: k for k, level in enumerate(results["level"])}
    index = np.array([position.get(key, -1) for key in grid])
    p = np.where(index >= 0, results["estimate"].to_numpy()[np.maximum(index, 0)], 0.0)
    covariance = np.asarray(estimator.vcov_, dtype=np.float64)
    V = np.where((index[:, None] >= 0) & (index[None, :] >= 0),
                 covariance[np.ix_(np.maximum(index, 0), np.maximum(index, 0))], 0.0)
    table = p.reshape(len(col_levels), len(row_levels)).T  # rows x columns
    empty_rows = np.flatnonzero(table.sum(axis=1) <= 0)
    empty_cols = np.flatnonzero(table.sum(axis=0) <= 0)
    if empty_rows.size or empty_cols.size:
        which = (f"level {row_levels[empty_rows[0]]!r} of {rows!r}" if empty_rows.size else
                 f"level {col_levels[empty_cols[0]]!r} of {columns!r}")
        raise ValueError(f"The table's margin for {which} has no weight: the test of "
                         "association is undefined; drop that level.")
    n = int(results["n"].iloc[0])
    nr, nc = len(row_levels), len(col_levels)
    observed = table * n
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / n
    pearson = float(np.sum((observed - expected) ** 2 / expected))
    main = _main_effects(nr, nc)
    interactions = _interactions(nr, nc)
    contrasts = interactions - main @ np.linalg.lstsq(main, interactions, rcond=None)[0]
    inverse = np.where(p > 0, 1 / np.where(p > 0, p, 1), 0.0)
    denominator = contrasts.T @ (inverse[:, None] / n * contrasts)
    numerator = contrasts.T @ (inverse[:, None] * V * inverse[None, :]) @ contrasts
    delta = np.linalg.solve(denominator, numerator)
    trace = float(np.trace(delta))
    design_df = float(estimator.results_["df"].iloc[0])
    if statistic == "F":
        d0 = trace**2 / float(np.trace(delta @ delta))
        value = pearson / trace
        return pd.Series({"statistic": value, "ndf": d0, "ddf": d0 * design_df,
                          "p_value": float(f.sf(value, d0, d0 * design_df)),
                          "pearson": pearson})
    k = delta.shape[1]
    return pd.Series({"statistic": pearson, "ndf": float(k), "ddf": np.inf,
                      "p_value": float(chi2.sf(pearson / (trace / k), k)),
                      "pearson": pearson})


def two_way_table(X: Table, rows: Any, columns: Any, *, balancer: Any = None,
                  baseline: Literal["empirical", "ipwi"] | None = None, design: Any = None,
                  sample_weight: Vector | None = None, statistic: Literal[
                      "proportion", "total"] = "proportion") -> pd.DataFrame:
    """A weighted two-way table with design-based standard errors of its cells.

    R survey's ``svymean(~interaction(rows, columns), design)`` (proportions of
    the whole) or ``svytotal`` (weighted counts), every combination of the two
    columns' levels a cell (0 where no row has it), through the balancing and
    the design as every estimate of :class:`BalancedFunctionalEstimator`.

    Parameters
    ----------
    X : DataFrame
        The rows, with the two columns and the design's.
    rows, columns : label
        The table's two columns (categorical).
    balancer, baseline, design, sample_weight : default=None
        As in :func:`chisq_test`.
    statistic : {"proportion", "total"}, default="proportion"
        Cell shares of the whole, or weighted counts.

    Returns
    -------
    pandas.DataFrame
        One row per cell: the two levels, ``estimate``, ``std_error``,
        ``ci_low``, ``ci_high`` (95%, Wald) and ``n`` (rows in the cell);
        ``estimate.unstack()`` of it indexed by the levels is the table.

    Examples
    --------
    >>> import skbalance as skb
    >>> clus1 = skb.datasets.load_api("clus1")
    >>> table = skb.two_way_table(clus1, "sch.wide", "stype", baseline="empirical",
    ...                           design=skb.SurveyDesign(clusters="dnum", fpc="fpc"),
    ...                           sample_weight=clus1["pw"])
    >>> round(float(table["estimate"].sum()), 12), len(table)
    (1.0, 6)
    """
    if statistic not in ("proportion", "total"):
        raise ValueError(f"statistic must be 'proportion' or 'total'; got {statistic!r}.")
    frame, cell = _cells(X, rows, columns)
    estimator = BalancedFunctionalEstimator(
        balancer, baseline=_baseline(balancer, baseline), design=design, ci_method="mean",
        statistic="mean" if statistic == "proportion" else "total")
    results = estimator.fit(frame, cell, sample_weight=sample_weight).results_
    found = {level: k for k, level in enumerate(results["level"])}
    counts = cell[pd.Series(np.asarray(
        sample_weight if sample_weight is not None else np.ones(len(frame)))).to_numpy() > 0
        ].value_counts()
    out = []
    for r in sorted(frame[rows].dropna().unique()):
        for c in sorted(frame[columns].dropna().unique()):
            k = found.get((r, c))
            row = ({"estimate": 0.0, "std_error": 0.0, "ci_low": 0.0, "ci_high": 0.0}
                   if k is None else results.iloc[k][["estimate", "std_error", "ci_low",
                                                       "ci_high"]].to_dict())
            out.append({rows: r, columns: c, **row, "n": int(counts.get((r, c), 0))})
    return pd.DataFrame(out)


def _baseline(balancer, baseline):
    """Without a balancer, the design weights (not every column raked to uniform)."""
    return "empirical" if balancer is None and baseline is None else baseline


def _cells(X, rows, columns):
    """The rows as a frame, and every row's cell: the pair of its two levels."""
    frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(X)
    for column in (rows, columns):
        if column not in frame.columns:
            raise ValueError(f"Column {column!r} is not in the data.")
        n_missing = int(frame[column].isna().sum())
        if n_missing:  # else a pair holding NaN would be a cell of its own
            raise ValueError(f"Column {column!r} has {n_missing} missing value(s) in "
                             f"{len(frame)} rows; fill or drop them (no row is dropped "
                             "silently).")
    return frame, pd.Series(list(zip(frame[rows], frame[columns])), index=frame.index,
                            name="cell")


def _main_effects(nr, nc):
    """R's ``model.matrix(~factor(rows) + factor(cols))`` on the grid, rows fastest."""
    rows = np.tile(np.arange(nr), nc)
    cols = np.repeat(np.arange(nc), nr)
    return np.column_stack([np.ones(nr * nc)] + [(rows == i) * 1.0 for i in range(1, nr)]
                           + [(cols == j) * 1.0 for j in range(1, nc)])


def _interactions(nr, nc):
    """The interaction columns of ``~factor(rows) * factor(cols)``."""
    rows = np.tile(np.arange(nr), nc)
    cols = np.repeat(np.arange(nc), nr)
    return np.column_stack([(rows == i) * (cols == j) * 1.0
                            for j in range(1, nc) for i in range(1, nr)])
