"""Parsing and validation of raking targets.

Targets arrive as a mapping ``margin -> {level: value}`` (or a pandas Series,
or one long table with columns ``column``, ``level``, ``value``). A margin key
is one column, or a tuple of columns for a joint (cross-classified) margin.
They leave as a list of :class:`Margin`, each with proportions summing to 1,
plus the population total when counts were given. A numeric column may carry
a total or a mean instead (:class:`Total`, :class:`Mean`): it leaves as a
:class:`NumericTarget`, the target mean of the column.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .utils._validation import is_missing, level_repr, plain
from .utils._warnings import warn

__all__ = ["PROPORTION_LIMIT", "Margin", "Mean", "NumericTarget", "Total", "is_numeric",
           "margin_label", "margin_name", "parse_targets", "targets_from_frame"]

_SUM_TOL = 1e-6
# Proportions off from 1 by up to this much (rounded published percentages)
# are normalised with a warning; farther off, they are not proportions.
PROPORTION_LIMIT = 0.01


@dataclass
class Margin:
    """One margin: the columns it spans, its levels and target proportions."""

    key: object  # as the user gave it: a column label or a tuple of labels
    columns: tuple
    levels: pd.Index  # a MultiIndex for joint margins
    proportions: np.ndarray


class _NumericSpec:
    """A target of a numeric column: ``Total(value)`` or ``Mean(value)``."""

    kind = ""

    def __init__(self, value: float) -> None:
        try:
            value = float(value)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{type(self).__name__} takes a number; got {value!r}.") from exc
        if not np.isfinite(value):
            raise ValueError(f"{type(self).__name__} must be finite; got {value!r}.")
        self.value = value

    def __repr__(self):
        return f"{type(self).__name__}({self.value!r})"

    def __eq__(self, other):
        return type(other) is type(self) and other.value == self.value

    def __hash__(self):
        return hash((type(self).__name__, self.value))


class Total(_NumericSpec):
    """Target total of a numeric column: ``sum_i w_i x_i = value``.

    A calibration constraint for :class:`MarginalBalancer` (generalized
    raking, GREG): ``targets={"enroll": skb.Total(3_811_472)}``. The weights'
    own total must be known, so the categorical margins must be given as
    population counts (use :class:`Mean` with proportions).

    Parameters
    ----------
    value : float
        The population total of the column.

    Examples
    --------
    >>> import pandas as pd
    >>> import skbalance as skb
    >>> X = pd.DataFrame({"g": ["a", "a", "b"], "x": [1.0, 2.0, 4.0]})
    >>> bal = skb.MarginalBalancer(targets={"g": {"a": 60, "b": 40}, "x": skb.Total(250)})
    >>> w = bal.fit(X).weights_
    >>> round(float(w @ X["x"]), 6), round(float(w.sum()), 6)
    (250.0, 100.0)
    """

    kind = "total"


class Mean(_NumericSpec):
    """Target mean of a numeric column: ``sum_i w_i x_i / sum_i w_i = value``.

    Parameters
    ----------
    value : float
        The population mean of the column.

    Examples
    --------
    >>> import pandas as pd
    >>> import skbalance as skb
    >>> X = pd.DataFrame({"x": [1.0, 2.0, 4.0]})
    >>> w = skb.compute_balancing_weights(X, {"x": skb.Mean(3.0)})
    >>> round(float(w @ X["x"] / w.sum()), 9)
    3.0
    """

    kind = "mean"


@dataclass
class NumericTarget:
    """A numeric column's calibration target, as the target mean of the column."""

    key: object
    columns: tuple
    kind: str  # "total" or "mean", as given
    value: float  # as given
    mean: float  # the target weighted mean


def is_numeric(margin):
    """Whether a parsed margin is a numeric target (not categorical levels)."""
    return isinstance(margin, NumericTarget)


def margin_label(key):
    """How a margin is named in messages: 'age', ('age', 'sex'), column 0."""
    if isinstance(key, (str, tuple)):
        return repr(key)
    return f"column {plain(key)!r}"


def margin_name(key):
    """How a margin is named in tables: age, age x sex, 0."""
    if isinstance(key, tuple):
        return " x ".join(str(k) for k in key)
    return str(key)


def _level_index(levels, joint):
    """Index of target levels; missing keys (None, NaN) become NaN."""
    if joint:
        cleaned = [tuple(np.nan if is_missing(v) else v for v in lv) for lv in levels]
        return pd.MultiIndex.from_tuples(cleaned)
    cleaned = [np.nan if is_missing(v) else v for v in levels]
    return pd.Index(cleaned, tupleize_cols=False)


def _long_table_to_mapping(table):
    needed = ["column", "level", "value"]
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise ValueError(
            "A targets table must have the columns 'column', 'level' and 'value'; "
            f"missing {missing}."
        )
    mapping = {}
    for column, level, value in table[needed].itertuples(index=False, name=None):
        levels = mapping.setdefault(column, {})
        if level in levels:
            raise ValueError(
                f"Targets table lists level {level_repr(level)} of {margin_label(column)} twice."
            )
        levels[level] = value
    return mapping


def _margin_items(key, spec):
    """(levels, values) of one margin from a dict or a Series."""
    if isinstance(spec, pd.Series):
        levels = list(spec.index)
        values = spec.to_numpy()
    elif isinstance(spec, Mapping):
        levels = list(spec.keys())
        values = list(spec.values())
    else:
        raise TypeError(
            f"Targets of {margin_label(key)} must be a mapping level -> value or a "
            f"pandas Series; got {type(spec).__name__}."
        )
    if len(levels) == 0:
        raise ValueError(f"Targets of {margin_label(key)} list no level.")
    try:
        values = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"Targets of {margin_label(key)} must be numbers.") from exc
    return levels, values


def _has(columns, key):
    try:
        return key in columns
    except TypeError:
        return False


def parse_targets(targets, target_type="auto", known_columns=None):
    """Validate targets and split them into proportions and a total.

    Parameters
    ----------
    targets : mapping or pandas.DataFrame
        ``{margin: {level: value}}``, values being proportions or population
        counts (every margin summing to the same total within a relative
        1e-6). A margin's value may be a pandas Series indexed by level (a
        MultiIndex for a joint margin). A DataFrame is read as a long table
        with columns ``column``, ``level`` and ``value``.
    target_type : {"auto", "proportion", "count"}, default="auto"
        Proportions may be off from 1 by at most ``PROPORTION_LIMIT`` (they are
        normalised, with a warning beyond 1e-6); "auto" reads margins summing
        to 1 within that limit as proportions, others as counts.
    known_columns : collection or None, default=None
        The data's columns: a tuple key that is one of them (MultiIndex
        columns) is that column, not a joint margin.

    Returns
    -------
    margins : list of Margin
    total : float or None
        The population total when counts were given, else None.
    """
    if isinstance(targets, pd.DataFrame):
        targets = _long_table_to_mapping(targets)
    if isinstance(targets, pd.Series):
        raise TypeError(
            "targets must map each margin to its levels; for one column pass "
            "{column: series}."
        )
    if not isinstance(targets, Mapping):
        raise TypeError(
            f"targets must be a mapping or a long DataFrame; got {type(targets).__name__}."
        )
    if len(targets) == 0:
        raise ValueError("targets is empty: give at least one margin.")

    margins, sums, numeric = [], [], []
    for key, spec in targets.items():
        if isinstance(spec, _NumericSpec):
            if isinstance(key, tuple) and not (known_columns is not None
                                               and _has(known_columns, key)):
                raise ValueError(f"{spec!r} targets one numeric column, not {key!r}.")
            numeric.append(len(margins))
            margins.append(NumericTarget(key, (key,), spec.kind, spec.value, np.nan))
            continue
        # a tuple key is a joint margin, unless it names one column of X
        # (MultiIndex columns); a one-column tuple is that column
        joint = isinstance(key, tuple) and not (known_columns is not None
                                                and _has(known_columns, key))
        columns = key if joint else (key,)
        if joint and len(set(columns)) != len(columns):
            raise ValueError(f"Joint margin {key!r} repeats a column.")
        label = margin_label(key)
        levels, values = _margin_items(key, spec)
        if joint and len(columns) == 1:
            joint = False
            levels = [lv[0] if isinstance(lv, tuple) and len(lv) == 1 else lv
                      for lv in levels]
        if joint:
            for level in levels:
                if not isinstance(level, tuple) or len(level) != len(columns):
                    raise ValueError(
                        f"Levels of the joint margin {label} must be tuples of "
                        f"{len(columns)} values, one per column; got {level!r}."
                    )
        bad = ~np.isfinite(values) | (values < 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"Target of level {level_repr(levels[i])} of {label} is {plain(values[i])!r}; "
                "targets must be finite and nonnegative."
            )
        peak = float(values.max()) if values.size else 0.0
        if peak <= 0:
            raise ValueError(f"Targets of {label} sum to 0; at least one must be positive.")
        # proportions in scaled space: neither tiny nor huge counts lose digits
        scaled = values / peak
        total = float(scaled.sum()) * peak
        if not np.isfinite(total):
            raise ValueError(
                f"Targets of {label} sum to more than the largest float "
                f"({np.finfo(np.float64).max:.3g}); give them in smaller units."
            )
        index = _level_index(levels, joint)
        if len(set(index)) != len(index):
            dup = index[index.duplicated()][0]
            raise ValueError(f"Level {level_repr(dup)} of {label} is listed twice.")
        margins.append(Margin(key, tuple(columns), index, scaled / scaled.sum()))
        sums.append(total)
    categorical = [m for m in margins if not is_numeric(m)]
    # a Total target needs counts: the reading is then no guess
    reading = ("count" if target_type == "auto" and any(
        margins[j].kind == "total" for j in numeric) and np.any(np.abs(np.asarray(sums) - 1)
                                                             > PROPORTION_LIMIT)
               else target_type)
    total = _total(categorical, np.asarray(sums), reading) if categorical else None
    for j in numeric:
        margins[j].mean = _target_mean(margins[j], total)
    return margins, total


def _target_mean(target, total):
    """The weighted mean a numeric target asks for."""
    if target.kind == "mean":
        return target.value
    if total is None:
        raise ValueError(
            f"Total({target.value:g}) of {margin_label(target.key)} needs the population "
            "size, which only count targets give: give the categorical margins as "
            f"population counts, or the target as skb.Mean(total / population size)."
        )
    return target.value / total


def _total(margins, sums, target_type):
    """The population total of count targets, or None for proportions.

    "auto" reads targets as proportions when every margin sums to 1 within
    ``PROPORTION_LIMIT`` (rounded percentages never flip the reading), else
    as counts, and says so when the counts look like percentages (a total of
    100) or like proportions with a typo (a total below 2).
    """
    off = np.abs(sums - 1.0)
    guessed = target_type == "auto"
    if target_type == "auto":
        target_type = "proportion" if np.all(off <= PROPORTION_LIMIT) else "count"
    if target_type == "proportion":
        worst = int(np.argmax(off))
        if off[worst] > PROPORTION_LIMIT:
            raise ValueError(
                f"Targets of {margin_label(margins[worst].key)} sum to {sums[worst]:.8g}, "
                f"more than {PROPORTION_LIMIT:g} away from 1: not proportions (pass "
                "target_type='count' for population counts)."
            )
        if off[worst] > _SUM_TOL:
            warn(
                f"Targets of {margin_label(margins[worst].key)} sum to {sums[worst]:.8g} "
                f"(off by {sums[worst] - 1:+.3g}); every margin was normalised to sum to 1.",
                UserWarning,
            )
        return None
    reference = sums[0]
    disagree = np.abs(sums - reference) > _SUM_TOL * reference
    if disagree.any():
        i = int(np.flatnonzero(disagree)[0])
        near_one = np.abs(sums - 1.0) <= PROPORTION_LIMIT
        if near_one.any():  # a mix: some margins look like proportions
            j = int(np.flatnonzero(~near_one)[0])
            raise ValueError(
                f"Targets of {margin_label(margins[j].key)} sum to {sums[j]:.8g} while "
                f"{margin_label(margins[int(np.flatnonzero(near_one)[0])].key)} sums to 1: "
                f"proportions must sum to 1 (within {PROPORTION_LIMIT:g}), and counts "
                "must have the same total in every margin."
            )
        raise ValueError(
            "Count targets must have the same total in every margin: "
            f"{margin_label(margins[0].key)} sums to {reference:.10g} but "
            f"{margin_label(margins[i].key)} sums to {sums[i]:.10g}."
        )
    if guessed and (abs(reference - 100) <= 100 * PROPORTION_LIMIT or reference < 2):
        looks = "percentages" if reference > 2 else "proportions with a typo"
        warn(f"Targets of {margin_label(margins[0].key)} sum to {reference:.8g}: read as "
             f"population counts (the weights will sum to {reference:.8g}), though they look "
             f"like {looks}. Pass proportions summing to 1 (percentages divided by 100), "
             "or target_type='count' if they are counts.", UserWarning)
    return float(reference)


def targets_from_frame(frame: Any, columns: Any, weights: Any = None) -> dict:
    """Read targets off a population frame or a weighted reference sample.

    The (weighted) count of every level of every column, or of every
    combination of a tuple of columns (a joint margin), ready for
    :class:`MarginalBalancer`: the weights then sum to the frame's total.

    Parameters
    ----------
    frame : DataFrame (pandas or polars)
        One row per population unit, or a reference sample.
    columns : list of labels and tuples of labels
        A label: a margin of that column. A tuple: a joint margin of those
        columns (R's ``postStratify`` on their cells).
    weights : label, array-like of shape (n_rows,) or None, default=None
        The frame's weights (a reference sample's); None: every row counts 1.

    Returns
    -------
    dict
        ``{column: Series of counts by level}``, a joint margin's Series
        indexed by tuples (a MultiIndex).

    Examples
    --------
    >>> import skbalance as skb
    >>> population = skb.datasets.load_api("pop")
    >>> targets = skb.targets_from_frame(population, ["stype", ("sch.wide", "awards")])
    >>> targets["stype"].to_dict()
    {'E': 4421.0, 'H': 755.0, 'M': 1018.0}
    >>> round(float(targets[("sch.wide", "awards")].sum()))
    6194
    """
    if hasattr(frame, "to_pandas") and not isinstance(frame, pd.DataFrame):
        frame = frame.to_pandas()
    if not isinstance(frame, pd.DataFrame):
        raise TypeError("targets_from_frame reads a DataFrame (pandas or polars).")
    if isinstance(columns, (str, tuple)):
        columns = [columns]
    if isinstance(weights, str):
        if weights not in frame.columns:
            raise ValueError(f"The weights column {weights!r} is not in the frame.")
        weights = frame[weights]
    values = (np.ones(len(frame)) if weights is None
              else np.asarray(weights, dtype=np.float64).reshape(-1))
    if values.shape[0] != len(frame) or not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError("The frame's weights must be one finite, nonnegative number per row.")
    targets = {}
    for key in columns:
        names = list(key) if isinstance(key, tuple) else [key]
        for name in names:
            if name not in frame.columns:
                raise ValueError(f"Column {name!r} is not in the frame (columns: "
                                 f"{list(frame.columns)}).")
            if frame[name].isna().any():
                raise ValueError(f"Column {name!r} of the frame has "
                                 f"{int(frame[name].isna().sum())} missing value(s): give "
                                 "them a level or drop those rows first.")
        grouped = pd.Series(values, index=frame.index).groupby(
            [frame[n] for n in names], observed=True, sort=True).sum()
        targets[key] = grouped.rename("count")
    return targets
