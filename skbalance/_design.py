"""Survey designs: strata, clusters, fpc and replicate weights (THEORY section 6).

:class:`SurveyDesign` holds what the user says about how the sample was drawn;
:meth:`SurveyDesign.resolve` reads it against the rows of one fit and gives a
:class:`ResolvedDesign`, which computes design variances of weighted totals
(linearization, R survey's ``svyrecvar``) and builds replicate weights (JK1,
JKn, Rao-Wu bootstrap, BRR, Fay) or reads supplied ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions

from ._hadamard import hadamard
from ._rows import read_rows
from ._typing import Spec, Table, Vector
from .kernels import first_occurrence, group_sums
from .utils._array_api import to_numpy
from .utils._threads import one_blas_thread
from .utils._validation import column_label, level_repr, plain
from .utils._warnings import warn

__all__ = ["DeleteOneMultipliers", "ReplicateWeights", "ResolvedDesign", "SurveyDesign",
           "replicate_parts", "replicate_roots", "replicate_variance", "satterthwaite_df"]

# (unit x cell) weight tables up to this many entries are dense (64 MB)
_DENSE_TABLE = 1 << 23
_LONELY = {"fail", "remove", "certainty", "adjust", "average"}
_SUPPLIED = {"jk1", "jkn", "bootstrap", "subbootstrap", "canty-davison", "brr", "fay",
             "successive-difference", "other"}


@dataclass
class ReplicateWeights:
    """Replicate weights and the constants of their variance formula.

    ``V = scale * sum_r rscales[r] * (theta_r - centre)^2`` with ``centre``
    the full-sample estimate when ``mse`` is True, else the mean of the
    replicates (R survey's ``svrVar``).

    Parameters
    ----------
    weights : ndarray of shape (n_samples, n_replicates)
        One column of weights per replicate.
    scale : float
        Overall multiplier.
    rscales : ndarray of shape (n_replicates,)
        Per-replicate multipliers.
    mse : bool
        Centre at the full-sample estimate (True) or the replicate mean.
    kind : str
        How they were made ("jk1", "jkn", "bootstrap", "subbootstrap",
        "canty-davison", "brr", "fay",
        "successive-difference" or "other").

    Examples
    --------
    >>> import numpy as np
    >>> from skbalance import ReplicateWeights
    >>> reps = ReplicateWeights(np.ones((3, 2)), 0.5, np.ones(2), False, "other")
    >>> reps.weights.shape
    (3, 2)
    """

    weights: np.ndarray
    scale: float
    rscales: np.ndarray
    mse: bool
    kind: str


class SurveyDesign(BaseEstimator):
    """How a sample was drawn: strata, clusters, fpc, or replicate weights.

    Columns are named in ``X`` (a DataFrame); with arrays, pass the values
    themselves (one array per stage). The design is read at fit time by
    :class:`BalancedFunctionalEstimator` (design-based standard errors) and
    by :meth:`MarginalBalancer.compute_replicate_weights`.

    Parameters
    ----------
    clusters : label, list of labels, array-like or None, default=None
        The sampling units of every stage (R's ``id=~dnum+snum``); None: each
        row is its own unit.
    strata : label, list of labels, array-like or None, default=None
        First-stage strata, or one per stage (R's ``strata=``).
    fpc : label, list of labels, array-like or None, default=None
        Finite population correction per stage: population counts of units
        (values above 1) or sampling fractions (all values at most 1), as R.
        With an fpc at every stage, later stages add their within-unit
        variance (R's ``svyrecvar``).
    weights : label, array-like or None, default=None
        Design weights. None: the estimator's ``sample_weight``, or, without
        it, one over the inclusion probability implied by ``fpc``.
    nest : bool, default=False
        Cluster labels repeat across strata (made unique by the stratum).
        Without it, a cluster found in two strata is an error.
    lonely_psu : {"fail", "remove", "certainty", "adjust", "average"}, default="fail"
        A stratum with one sampling unit, as R's ``options(survey.lonely.psu)``.
    replicates : {"jk1", "jkn", "subbootstrap", "canty-davison", "bootstrap", "brr", \
"fay", "successive-difference", "other"} or None, default=None
        Replicate-weight variance instead of linearization. Built from the
        design: ``jk1``, ``jkn``; ``subbootstrap`` (Rao-Wu, n_h - 1 units drawn
        in each stratum, R's "subbootstrap") and ``canty-davison`` (n_h units
        drawn from a pseudo-population of the stratum's size, so it uses the
        fpc: R's "bootstrap"), each with ``n_replicates`` draws; ``brr`` and
        ``fay`` with R's Hadamard matrices where every stratum has two units,
        strata taken in sorted label order as R does. ``bootstrap`` builds
        Rao-Wu replicates, with a FutureWarning: from 0.3 it will be R's
        Canty-Davison bootstrap. Or the kind of the supplied
        ``replicate_weights``.
    replicate_weights : list of labels, array-like of shape (n_samples, n_replicates) \
or None, default=None
        Supplied replicate weights (the data producer's columns).
    n_replicates : int, default=200
        Number of bootstrap replicates.
    fay_rho : float, default=0.5
        Fay's perturbation (``replicates="fay"``).
    scale, rscales : float, array-like or None, default=None
        Variance multipliers of supplied replicates; defaults by kind (JK1:
        (R-1)/R, successive-difference: 4/R, ...), required for "other".
    mse : bool or None, default=None
        Centre replicates at the full-sample estimate. None: True for
        successive-difference, else False (R's default).
    combined_weights : bool, default=True
        Supplied replicate weights already include the design weights (R's
        ``combined.weights``); False multiplies them by the design weights.
    random_state : int, RandomState instance or None, default=None
        Seed of the bootstrap draws.

    Examples
    --------
    >>> import skbalance as skb
    >>> sample = skb.datasets.load_api("clus1")
    >>> design = skb.SurveyDesign(clusters="dnum", fpc="fpc")
    >>> resolved = design.resolve(sample, sample["pw"].to_numpy())
    >>> resolved.n_units, resolved.degrees_of_freedom
    (15, 14)
    """

    _parameter_constraints: dict = {
        "clusters": [None, "array-like", str, Integral, tuple],
        "strata": [None, "array-like", str, Integral, tuple],
        "fpc": [None, "array-like", str, Integral, tuple],
        "weights": [None, "array-like", str, Integral, tuple],
        "nest": ["boolean"],
        "lonely_psu": [StrOptions(_LONELY)],
        "replicates": [StrOptions(_SUPPLIED), None],
        "replicate_weights": [None, "array-like"],
        "n_replicates": [Interval(Integral, 2, None, closed="left")],
        "fay_rho": [Interval(Real, 0, 1, closed="left")],
        "scale": [Interval(Real, 0, None, closed="neither"), None],
        "rscales": ["array-like", Real, None],
        "mse": ["boolean", None],
        "combined_weights": ["boolean"],
        "random_state": ["random_state"],
    }

    def __init__(self, *, clusters: Spec = None, strata: Spec = None, fpc: Spec = None,
                 weights: Spec = None, nest: bool = False,
                 lonely_psu: Literal["fail", "remove", "certainty", "adjust",
                                     "average"] = "fail",
                 replicates: str | None = None, replicate_weights: Any = None,
                 n_replicates: int = 200, fay_rho: float = 0.5, scale: float | None = None,
                 rscales: Any = None, mse: bool | None = None, combined_weights: bool = True,
                 random_state: Any = None) -> None:
        self.clusters = clusters
        self.strata = strata
        self.fpc = fpc
        self.weights = weights
        self.nest = nest
        self.lonely_psu = lonely_psu
        self.replicates = replicates
        self.replicate_weights = replicate_weights
        self.n_replicates = n_replicates
        self.fay_rho = fay_rho
        self.scale = scale
        self.rscales = rscales
        self.mse = mse
        self.combined_weights = combined_weights
        self.random_state = random_state

    def resolve(self, X: Table, sample_weight: Vector | None = None) -> ResolvedDesign:
        """Read the design against the rows of ``X``.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            The rows (the design's columns are looked up here).
        sample_weight : array-like of shape (n_samples,) or None, default=None
            Design weights, when the design does not name them.

        Returns
        -------
        ResolvedDesign
            Stage codes, fpc and the design weights of these rows.

        Examples
        --------
        >>> import skbalance as skb
        >>> sample = skb.datasets.load_api("strat")
        >>> design = skb.SurveyDesign(strata="stype", fpc="fpc").resolve(sample, sample["pw"])
        >>> design.n_strata, design.degrees_of_freedom
        (3, 197)
        """
        self._validate_params()
        if self.replicate_weights is not None and self.replicates is None:
            raise ValueError(
                "replicate_weights are given without their kind: pass replicates='jk1', "
                "'jkn', 'bootstrap', 'brr', 'fay', 'successive-difference' or 'other'."
            )
        if self.replicates in ("successive-difference", "other") and (
            self.replicate_weights is None
        ):
            raise ValueError(
                f"replicates={self.replicates!r} cannot be built from the design: pass "
                "the producer's replicate_weights."
            )
        rows = read_rows(X)  # the one reader; a Rows passes through unread
        n_rows = rows.n_rows
        clusters = _stage_columns(rows, self.clusters, "clusters")
        strata = _stage_columns(rows, self.strata, "strata")
        fpc = _stage_columns(rows, self.fpc, "fpc")
        n_stages = max(len(clusters), 1)
        if len(strata) > n_stages or len(fpc) > n_stages:
            raise ValueError(
                f"The design has {n_stages} stage(s) of clusters but "
                f"{max(len(strata), len(fpc))} of strata or fpc: give at most one per stage."
            )
        units, unit_strata = _stage_codes(clusters, strata, n_rows, self.nest)
        describe = _stratum_names(unit_strata, clusters, strata)
        fractions = _sampling_fractions(fpc, units, unit_strata, describe)
        base = _design_weights(self, rows, sample_weight, fractions)
        replicate, squares = None, None
        if self.replicates is not None and self.replicate_weights is not None:
            replicate, squares = _supplied_replicates(self, rows, base)
        labels = (strata[0][1] if strata else None, clusters[0][1] if clusters else None)
        return ResolvedDesign(units, unit_strata, fractions, self.lonely_psu, base,
                              self.replicates, replicate, self, describe=describe,
                              first_stage_labels=labels, supplied_squares=squares)


def _labels_of(spec):
    """A design spec as a list of per-stage specs."""
    if spec is None:
        return []
    if isinstance(spec, list):
        return spec
    if isinstance(spec, np.ndarray) and spec.ndim == 2:
        return [spec[:, j] for j in range(spec.shape[1])]
    if isinstance(spec, pd.DataFrame):
        return [spec.iloc[:, j] for j in range(spec.shape[1])]
    return [spec]


def _stage_columns(rows, spec, name):
    """The host values of every stage of a design spec (column labels or arrays)."""
    values = []
    n_rows = rows.n_rows
    for stage, item in enumerate(_labels_of(spec)):
        if isinstance(item, (str, Integral, tuple)) and not isinstance(item, bool):
            if rows.named and item not in rows.columns:
                raise ValueError(
                    f"The design's {name} names column {item!r}, which the data do "
                    f"not have (columns: {rows.columns})."
                )
            by_position = isinstance(item, Integral) and 0 <= item < len(rows.columns)
            if not rows.named and not by_position:
                raise ValueError(
                    f"The design's {name} {item!r} must be a column of a DataFrame, or "
                    "give the values as an array."
                )
            column = rows.column(item)
            label = column_label(item)
        else:
            column = item
            label = f"{name} (stage {stage + 1})"
        array = np.asarray(column) if isinstance(column, (pd.Series, list)) else to_numpy(column)
        if array.shape != (n_rows,):
            raise ValueError(
                f"The design's {label} must have one value per row ({n_rows}); got shape "
                f"{array.shape}."
            )
        if pd.isna(pd.Series(array)).any():
            raise ValueError(f"The design's {label} has missing values.")
        values.append((label, array))
    return values


def _stage_codes(clusters, strata, n_rows, nest):
    """Unit and stratum codes per stage, every unit nested in its parents.

    Returns ``units[s]`` (code of the stage-s unit of every row, unique over
    the whole sample) and ``unit_strata[s]`` (code of the stratum of that
    unit, also unique over the sample: strata of later stages live within
    their parent unit).
    """
    n_stages = max(len(clusters), 1)
    units, unit_strata = [], []
    parent = np.zeros(n_rows, dtype=np.int64)
    for stage in range(n_stages):
        if stage < len(strata):
            s_label, s_values = strata[stage]
            stratum = _pair_codes(parent, pd.factorize(s_values)[0])
        else:  # the parent unit (dense codes in order of appearance already)
            s_label, stratum = None, parent
        if stage < len(clusters):
            c_label, c_values = clusters[stage]
            c_codes = pd.factorize(c_values)[0]
            unit = _pair_codes(stratum, c_codes)
        else:  # each row its own unit: the pairs are the rows
            c_label, unit = None, np.arange(n_rows, dtype=np.int64)
        if c_label is not None and s_label is not None and stage == 0 and not nest:
            n_clusters = int(c_codes.max()) + 1
            n_units = int(unit.max()) + 1
            if n_units > n_clusters:  # some cluster label sits in two strata
                strata_of = np.bincount(c_codes[first_occurrence(unit, n_units)],
                                        minlength=n_clusters)
                first = c_values[np.flatnonzero(c_codes == np.argmax(strata_of > 1))[0]]
                raise ValueError(
                    f"Cluster {level_repr(first)} of {c_label} is in more than one stratum of "
                    f"{s_label}; pass nest=True if cluster labels repeat across strata."
                )
        units.append(np.asarray(unit, dtype=np.int64))
        unit_strata.append(np.asarray(stratum, dtype=np.int64))
        parent = unit
    return units, unit_strata


def _pair_codes(first, second):
    """Dense codes 0..k-1 of the distinct pairs (first[i], second[i])."""
    first, second = np.asarray(first, dtype=np.int64), np.asarray(second, dtype=np.int64)
    keys = first * (int(second.max()) + 1) + second  # codes are dense: no overflow
    return np.asarray(pd.factorize(keys)[0], dtype=np.int64)


def _sampling_fractions(fpc, units, unit_strata, describe):
    """Per stage, the sampling fraction of every row's stratum (None: no fpc);
    ``describe(stage, code)`` names a stratum in messages."""
    fractions = []
    for stage, (label, values) in enumerate(fpc):
        try:
            values = values.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"The design's fpc {label} must be numeric.") from exc
        stratum = unit_strata[stage]
        n_units = _units_per_stratum(units[stage], stratum)
        per_stratum = pd.Series(values).groupby(stratum)
        if (per_stratum.nunique() > 1).any():
            where = "".join(describe(stage, int(per_stratum.nunique().idxmax())))
            raise ValueError(
                f"The design's fpc {label} varies within {where}: it must be one population "
                "count (or fraction) per stratum."
            )
        if not np.all(np.isfinite(values)) or np.any(values <= 0):
            raise ValueError(f"The design's fpc {label} must be positive and finite.")
        counts = np.any(values > 1)
        if counts:
            if np.any(values < n_units[stratum]):
                row = int(np.flatnonzero(values < n_units[stratum])[0])
                where = "".join(describe(stage, int(stratum[row])))
                raise ValueError(
                    f"The design's fpc {label} is smaller than the sample: "
                    f"{values[row]:g} units in the population of {where}, where "
                    f"{int(n_units[stratum][row])} were sampled."
                )
            fraction = n_units[stratum] / values
        else:
            fraction = values
        fractions.append(fraction)
    return fractions


def _units_per_stratum(unit, stratum):
    """Number of distinct units in each stratum, indexed by stratum code."""
    first = first_occurrence(unit, int(unit.max()) + 1)
    return np.bincount(stratum[first], minlength=int(stratum.max()) + 1)


def _design_weights(design, rows, sample_weight, fractions):
    """The design weights: named, given, or implied by the fpc."""
    if design.weights is not None:
        [(label, values)] = _stage_columns(rows, design.weights, "weights")
        try:
            weights = values.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"The design's weights {label} must be numeric ({exc}).") from exc
        if sample_weight is not None and not np.allclose(
            np.asarray(sample_weight, dtype=np.float64), weights, rtol=1e-12
        ):
            raise ValueError(
                f"Both the design's weights {label} and a different sample_weight were "
                "given; pass one of them."
            )
        return weights
    if sample_weight is not None:
        return np.asarray(sample_weight, dtype=np.float64)
    if fractions:
        return 1.0 / np.prod(fractions, axis=0)
    return np.ones(rows.n_rows)


def _supplied_replicates(design, rows, base):
    """The producer's replicate weights, checked, with their constants, and
    the sum of their squares (None when the weights were multiplied here)."""
    spec = design.replicate_weights
    n_rows = rows.n_rows
    if isinstance(spec, (list, tuple)) and spec and all(
        isinstance(c, (str, Integral)) for c in spec
    ) and rows.named:
        missing = [c for c in spec if c not in rows.columns]
        if missing:
            raise ValueError(f"Replicate weight column {missing[0]!r} is not in the data.")
        labels = list(spec)
        try:  # column-major, as pandas keeps them: no copy for one float block
            weights = rows.frame(labels).to_numpy(dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"Replicate weight columns {labels[:3]}... must be numeric "
                             f"({exc}).") from exc
    else:
        weights = np.asarray(spec, dtype=np.float64)
        labels = [f"replicate {r}" for r in range(weights.shape[1] if weights.ndim == 2 else 0)]
    if weights.ndim != 2 or weights.shape[0] != n_rows or weights.shape[1] < 2:
        raise ValueError(
            f"replicate_weights must have shape ({n_rows}, n_replicates >= 2); got "
            f"{weights.shape}."
        )
    smallest, largest, squares = _column_summaries(weights)  # NaN propagates
    bad = ~(np.isfinite(smallest) & np.isfinite(largest) & (smallest >= 0))
    if bad.any():
        column = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"Replicate weight column {labels[column]!r} has negative or non-finite "
            "values."
        )
    if not design.combined_weights:
        weights, squares = weights * base[:, None], None
    n_reps = weights.shape[1]
    kind = design.replicates
    default_scale = {"jk1": (n_reps - 1) / n_reps, "successive-difference": 4 / n_reps,
                     "bootstrap": 1 / (n_reps - 1), "subbootstrap": 1 / (n_reps - 1),
                     "canty-davison": 1 / (n_reps - 1), "brr": 1 / n_reps,
                     "fay": 1 / (n_reps * (1 - design.fay_rho) ** 2), "jkn": 1.0}
    if design.scale is None and kind == "other":
        raise ValueError("replicates='other' needs scale (and rscales, default 1).")
    scale = design.scale if design.scale is not None else default_scale[kind]
    if design.rscales is not None:
        rscales = np.asarray(design.rscales, dtype=np.float64)
        if rscales.ndim == 0:  # one value for every replicate, as R's svrepdesign recycles
            rscales = np.full(n_reps, float(rscales))
        if rscales.shape != (n_reps,):
            raise ValueError(f"rscales must have one value per replicate ({n_reps}).")
        if not np.all(np.isfinite(rscales) & (rscales >= 0)):
            raise ValueError("rscales must be finite and nonnegative; got "
                             f"{plain(rscales[~(np.isfinite(rscales) & (rscales >= 0))][0])}.")
    elif kind == "jkn":
        raise ValueError("Supplied JKn replicates need their rscales ((n_h - 1) / n_h).")
    else:
        rscales = np.ones(n_reps)
    mse = design.mse if design.mse is not None else kind == "successive-difference"
    sum_of_squares = None if squares is None else float(squares.sum())
    return ReplicateWeights(weights, float(scale), rscales, bool(mse), kind), sum_of_squares


def _column_summaries(weights, block=1 << 16):
    """Smallest and largest value and sum of squares of every column.

    One pass over the rows, a block at a time: the three reductions of a
    block read it from the cache, not from memory (three separate passes
    over 3M x 80 replicate weights take 1.7x as long). NaN propagates.
    """
    n_rows, n_columns = weights.shape
    stats = np.empty((3, n_columns))
    with one_blas_thread():  # dot products of one block (see utils._threads)
        if weights.flags.f_contiguous:  # each column contiguous: blocks of one column
            for j in range(n_columns):
                column = weights[:, j]
                parts = np.array([(part.min(), part.max(), np.dot(part, part)) for part in (
                    column[start:start + block] for start in range(0, max(n_rows, 1), block))])
                stats[:, j] = parts[:, 0].min(), parts[:, 1].max(), parts[:, 2].sum()
            return stats
        rows = max(block // n_columns, 1)
        parts = [(part.min(axis=0), part.max(axis=0), np.einsum("ij,ij->j", part, part))
                 for part in (weights[start:start + rows]
                              for start in range(0, max(n_rows, 1), rows))]
        stats[0] = np.min([part[0] for part in parts], axis=0)
        stats[1] = np.max([part[1] for part in parts], axis=0)
        stats[2] = np.sum([part[2] for part in parts], axis=0)
    return stats


class ResolvedDesign:
    """A survey design read against the rows of one fit.

    Parameters
    ----------
    units, unit_strata : list of ndarray
        Per stage, every row's unit and stratum code (unique over the sample).
    fractions : list of ndarray
        Per stage with an fpc, every row's sampling fraction.
    lonely_psu : str
        What a stratum with a single unit does.
    weights : ndarray of shape (n_rows,)
        The design weights.
    replicates : str or None
        The kind of replicate weights to use, if any.
    supplied : ReplicateWeights or None
        Supplied replicate weights.
    design : SurveyDesign
        The design as given.
    describe : callable or None, default=None
        ``describe(stage, code)``: a stratum in the user's words.
    first_stage_labels : (strata, clusters) or None, default=None
        Every row's first-stage stratum and cluster label (None where the
        design has none): built BRR and bootstrap replicates take units in
        their sorted order, so they depend on the data, not on its order.
    supplied_squares : float or None, default=None
        The sum of squares of the supplied replicate weights, when taken in
        the pass that checked them (the rank behind the degrees of freedom
        needs it; None: computed when needed).
    """

    def __init__(self, units, unit_strata, fractions, lonely_psu, weights, replicates,
                 supplied, design, describe=None, first_stage_labels=None,
                 supplied_squares=None):
        self.units = units
        self.unit_strata = unit_strata
        self.fractions = fractions
        self.lonely_psu = lonely_psu
        self.weights = weights
        self.replicates = replicates
        self.supplied = supplied
        self.design = design
        # a stratum in the user's words: (stage, code) -> ("stratum 'E' of 'stype'", "")
        self.describe = describe or (lambda stage, code: (f"stratum {code}", ""))
        self.stages = _stages(units, unit_strata, fractions, self.describe)
        self.first_stage_labels = first_stage_labels or (None, None)
        self._built = None  # built replicates, made once (the bootstrap draws)
        self.supplied_squares = supplied_squares

    @property
    def n_units(self):
        """Number of first-stage units (PSUs)."""
        return int(self.units[0].max()) + 1

    @property
    def n_strata(self):
        """Number of first-stage strata."""
        return int(self.unit_strata[0].max()) + 1

    @property
    def degrees_of_freedom(self):
        """R's ``degf``: PSUs minus strata for linearization; with replicate
        weights, supplied or built, their rank minus one (replicates with
        rscale 0 do not count: R drops them)."""
        if self.supplied is not None:
            return _numerical_rank(self.supplied.weights, squares=self.supplied_squares) - 1
        if self.replicates is not None:
            multipliers, _, rscales, _ = self.replicate_multipliers()
            if isinstance(multipliers, DeleteOneMultipliers):
                return multipliers.rank(rscales > 0) - 1
            return int(np.linalg.matrix_rank(multipliers[:, rscales > 0])) - 1
        return self.n_units - self.n_strata

    def variance(self, x, cell_part=None):
        """Design variance of the totals of the columns of ``x`` (linearization).

        Parameters
        ----------
        x : ndarray of shape (n_rows,) or (n_rows, n_stats), or list of columns
            Per-row contributions ``w_i e_i`` to each weighted total.
        cell_part : (weights, cell, corrections) or None, default=None
            A part of every contribution that is constant per cell: column
            ``k`` stands for ``x[k] - weights * corrections[cell, k]``
            (``corrections`` of shape (n_cells, n_stats)), summed per unit
            through a (unit x cell) table instead of the rows.

        Returns
        -------
        ndarray of shape (n_stats,)
        """
        single = not isinstance(x, list) and np.ndim(x) == 1
        if isinstance(x, list):
            columns = [np.asarray(c, dtype=np.float64) for c in x]
        else:
            x = np.asarray(x, dtype=np.float64)
            columns = [x] if single else [x[:, k] for k in range(x.shape[1])]
        parts = self.variance_components(columns, cell_part)
        variance = parts.sum(axis=0)
        return variance[0] if single else variance

    def variance_components(self, columns, cell_part=None, domains=None, roots=False):
        """Every unit's part of the linearized variance, at every stage.

        Parameters
        ----------
        columns : list of (ndarray of shape (n_rows,) or SplitColumn)
            Per-row contributions to each weighted total; a
            :class:`~skbalance.kernels.SplitColumn` holds several (the
            domains of one outcome).
        cell_part : (weights, cell, corrections) or None, default=None
            As in :meth:`variance`.
        domains : list of (bool ndarray of shape (n_rows,), SplitColumn or None) or None
            Per entry of ``columns``, the rows of its domain(s) (a split of
            the domain's indicators for a split column): with ``lonely_psu="average"``
            only the strata holding some of them count (R survey's ``svyby``
            on an uncalibrated design, which drops the other rows). None:
            every stratum counts (R on a calibrated design, which keeps them
            with weight 0).

        roots : bool, default=False
            Return signed square roots of the parts: ``R`` with ``R ** 2``
            the parts and ``R.T @ R`` the covariance matrix of the totals.

        Returns
        -------
        ndarray of shape (n_parts, n_stats)
            One row per unit of every stage that counts; the column sums are
            the variances (the parts behind a Satterthwaite approximation).
        """
        parts = []
        for stage in self.stages:
            totals = stage.unit_totals(columns, cell_part)
            present = None
            if domains is not None:  # every unit holding rows of each column's domain
                present = np.hstack([
                    np.ones((stage.n_units, 1), dtype=bool) if d is None else
                    group_sums(stage.unit, [d], stage.n_units) > 0 for d in domains])
            parts.append(stage.components(totals, self.lonely_psu, present, roots))
        return np.vstack(parts)

    def replicate_multipliers(self):
        """Built replicates: per-PSU weight multipliers and variance constants.

        Made once per resolved design (a bootstrap's draws are kept).

        Returns
        -------
        multipliers : ndarray of shape (n_units, n_replicates)
        scale : float
        rscales : ndarray of shape (n_replicates,)
        mse : bool
        """
        if self._built is None:
            self._built = self._build_replicates()
        return self._built

    def _build_replicates(self):
        first_stage = self.stages[0]  # its units' strata and 1 - f, per unit
        unit_stratum, keep = first_stage.unit_stratum, first_stage.keep
        design = self.design
        mse = bool(design.mse) if design.mse is not None else False
        kind = self.replicates
        self._warn_about_dropped_fpc(kind)
        if kind == "jk1":
            multipliers, scale, rscales = _jk1(self.n_units, keep)
        elif kind == "jkn":
            multipliers, scale, rscales = _jkn(unit_stratum, keep, self.lonely_psu,
                                               lambda h: self.describe(0, h))
        else:  # made in the units' label order, then put back in code order
            order = self._units_in_label_order()
            in_order = pd.factorize(unit_stratum[order])[0]  # strata by sorted label
            names = dict(zip(in_order, unit_stratum[order]))
            describe = lambda h: self.describe(0, names[h])  # noqa: E731
            rng = check_random_state(design.random_state)
            if kind in ("bootstrap", "subbootstrap"):
                sorted_multipliers, scale, rscales = _rao_wu(
                    in_order, design.n_replicates, rng, describe)
            elif kind == "canty-davison":
                sorted_multipliers, scale, rscales = _canty_davison(
                    in_order, keep[order], design.n_replicates, rng, describe)
            else:
                rho = 0.0 if kind == "brr" else design.fay_rho
                sorted_multipliers, scale, rscales = _brr(in_order, rho, describe)
            multipliers = np.empty_like(sorted_multipliers)
            multipliers[order] = sorted_multipliers
        return multipliers, scale, rscales, mse

    def _warn_about_dropped_fpc(self, kind):
        """Say where a replicate method cannot use the fpc the design gives,
        where R survey says so (and for Rao-Wu, where R is silent)."""
        if kind == "bootstrap":
            warn("replicates='bootstrap' builds Rao-Wu replicates (R's 'subbootstrap'); "
                 "from 0.3 it will build R's 'bootstrap' (Canty-Davison, which uses the "
                 "fpc). Pass 'subbootstrap' to keep these, or 'canty-davison'.",
                 FutureWarning)
        has_fpc = [bool(np.any(f > 0)) for f in self.fractions]
        if kind in ("brr", "fay", "bootstrap", "subbootstrap") and any(has_fpc):
            warn(f"The design's fpc is not used by {kind!r} replicates: their variance "
                 "is that of sampling with replacement, too large where the sampling "
                 "fractions are not small (R: 'Finite population correction dropped in "
                 "conversion'). Use 'jk1', 'jkn' or 'canty-davison' to use it.",
                 UserWarning)
        elif any(has_fpc[1:]):
            warn(f"{kind!r} replicates resample first-stage units: the fpc of later "
                 "stages is not used (R: 'Finite population corrections after first "
                 "stage have been dropped').", UserWarning)

    def _units_in_label_order(self):
        """First-stage unit codes sorted by stratum label compared as text
        (R's ``sort(as.character(strata))``), then by cluster label in its own
        order (R takes a stratum's PSUs in the order of the file, which is
        this order in a file sorted by PSU); units without a label (rows)
        keep their order within the stratum."""
        strata, clusters = self.first_stage_labels
        first = first_occurrence(self.units[0], self.n_units)  # a row of each unit
        keys = [first]  # lexsort: last key sorts first
        if clusters is not None:
            labels = np.asarray(clusters)[first]
            try:
                keys.append(pd.factorize(labels, sort=True)[0])
            except TypeError:  # labels of mixed types: compare them as text
                keys.append(np.asarray([str(v) for v in labels]))
        if strata is not None:
            keys.append(np.asarray([str(v) for v in np.asarray(strata)[first]]))
        return np.lexsort(keys)


class _Stage:
    """One sampling stage: its units, their strata, fpc and upper fractions."""

    def __init__(self, index, unit, stratum, parent, keep, factor, describe):
        self.index = index
        self.describe = describe
        self.unit = unit
        self.n_units = int(unit.max()) + 1
        first = first_occurrence(unit, self.n_units)  # a row of every unit
        self.unit_stratum = stratum[first]
        self.n_strata = int(stratum.max()) + 1
        self.size = np.bincount(self.unit_stratum, minlength=self.n_strata)
        # (1 - f) of this stage, and the sampling fractions of the stages above
        self.keep = keep[first]
        self.factor = factor[first]
        self.stratum_parent = np.zeros(self.n_strata, dtype=np.int64)
        if parent is not None:
            self.stratum_parent[self.unit_stratum] = parent[first]

    def unit_totals(self, columns, cell_part=None):
        """Per unit of this stage, the totals of the columns (n_units, n_stats);
        a :class:`~skbalance.kernels.SplitColumn` gives all its parts."""
        totals = group_sums(self.unit, columns, self.n_units)
        if cell_part is not None:
            weights, cell, corrections = cell_part
            n_cells = corrections.shape[0]
            if self.n_units * n_cells <= _DENSE_TABLE:  # weight of every (unit, cell)
                table = np.bincount(self.unit * n_cells + cell, weights,
                                    minlength=self.n_units * n_cells)
                table = table.reshape(self.n_units, n_cells)
            else:
                table = sparse.csr_array((weights, (self.unit, cell)),
                                         shape=(self.n_units, n_cells))
            totals -= table @ corrections
        return totals

    def components(self, totals, lonely, present=None, roots=False):
        """Every unit's part of this stage's variance, from the unit totals of
        each statistic (n_units, n_stats); they sum to the stage's variance.
        ``present`` (n_units, n_stats): the units holding each statistic's
        domain, whose strata alone count for lonely_psu="average". ``roots``:
        their signed square roots instead (the covariances' factor)."""
        strata = self.unit_stratum
        means = np.column_stack([np.bincount(strata, totals[:, k], minlength=self.n_strata)
                                 for k in range(totals.shape[1])])
        means /= np.maximum(self.size, 1)[:, None]
        size = self.size[strata]
        lonely_unit = size == 1
        exhausted = self.keep < 1e-7  # the whole stratum was taken: no variance
        deviation = totals - means[strata]
        if np.any(lonely_unit & ~exhausted):
            if lonely == "fail":
                h = int(strata[np.flatnonzero(lonely_unit & ~exhausted)[0]])
                stratum, within = self.describe(self.index, h)
                raise ValueError(
                    f"{_sentence(stratum)}{within} has only one sampling unit; choose a "
                    "lonely_psu rule ('remove', 'certainty', 'adjust' or 'average') or "
                    "collapse strata."
                )
            if lonely == "adjust":  # the lonely unit deviates from 0, the grand centre
                deviation[lonely_unit] = totals[lonely_unit]
        scale = self.keep * np.where(lonely_unit, 1.0, size / np.maximum(size - 1, 1))
        weight = np.where(exhausted, 0.0, scale * self.factor)
        parts = (np.sqrt(weight)[:, None] * deviation if roots
                 else weight[:, None] * deviation**2)
        if lonely != "average":
            return parts
        # R's onestage: within each parent unit, the strata without a lonely
        # unit stand for all of them (sum times n_strata / n_ok_strata)
        is_lonely = np.bincount(strata, weights=(lonely_unit & ~exhausted) * 1.0,
                                minlength=self.n_strata) > 0
        n_parent = int(self.stratum_parent.max()) + 1
        if present is None:
            present = np.ones((self.n_units, 1), dtype=bool)
        factors = []
        for k in range(present.shape[1]):
            counts = np.bincount(strata, weights=present[:, k] * 1.0,
                                 minlength=self.n_strata) > 0  # the strata counted
            all_strata = np.bincount(self.stratum_parent, weights=counts * 1.0,
                                     minlength=n_parent)
            ok_strata = np.bincount(self.stratum_parent, weights=(counts & ~is_lonely) * 1.0,
                                    minlength=n_parent)
            if np.any((ok_strata == 0) & (all_strata > 0)):
                parent = int(np.flatnonzero((ok_strata == 0) & (all_strata > 0))[0])
                _, within = self.describe(self.index, int(np.flatnonzero(
                    self.stratum_parent == parent)[0]))
                raise ValueError(f"Every stratum{within or ' of the sample'} has a single "
                                 "unit: lonely_psu='average' has nothing to average there.")
            ratio = np.divide(all_strata, ok_strata, out=np.ones(n_parent),
                              where=ok_strata > 0)
            factors.append(ratio[self.stratum_parent][strata])
        factors = np.column_stack(factors)
        return parts * (np.sqrt(factors) if roots else factors)


def _numerical_rank(weights, tol=1e-10, squares=None):
    """Rank of a (rows x replicates) matrix: eigenvalues of its Gram above
    ``tol`` times the largest (``squares``: the sum of squares of the weights,
    when known).

    A sample of rows decides it first when it can, without the Gram of every
    row: the Gram of all rows is the sample's plus a positive semidefinite
    rest, so its smallest eigenvalue is at least the sample's, and its
    largest at most the sum of squares of all the weights. A sample whose
    smallest eigenvalue clears ``tol`` times that sum proves full rank.
    """
    n_rows, n_reps = weights.shape
    if n_rows > 64 * n_reps:
        sample = weights[np.linspace(0, n_rows - 1, 64 * n_reps).astype(np.int64)]
        smallest = np.linalg.eigvalsh(sample.T @ sample)[0]
        if squares is None:
            flat = weights.T if weights.flags.f_contiguous else weights  # a contiguous view
            squares = float(np.vdot(flat, flat)) if flat.flags.c_contiguous else float(
                np.sum(weights * weights))
        if smallest > tol * squares:
            return n_reps
    eigenvalues = np.linalg.eigvalsh(weights.T @ weights)
    return int(np.sum(eigenvalues > tol * eigenvalues.max()))


def _stratum_names(unit_strata, clusters, strata):
    """``describe(stage, code)``: a stratum in the user's words, for messages.

    Returns ``(stratum, within)``: "stratum 'E' of 'stype'" (or "the
    sample", without strata), and, below the first stage, " within cluster
    3 of 'dnum' (stage 2)".
    """
    def describe(stage, code):
        row = int(np.flatnonzero(unit_strata[stage] == code)[0])
        if stage < len(strata):
            label, values = strata[stage]
            stratum = f"stratum {level_repr(values[row])} of {label}"
        else:
            stratum = "the sample" if stage == 0 else "the stratum"
        within = ""
        if stage > 0:
            label, values = clusters[stage - 1]
            within = f" within cluster {level_repr(values[row])} of {label} (stage {stage + 1})"
        return stratum, within
    return describe


def _sentence(text):
    return text[0].upper() + text[1:]


def _stages(units, unit_strata, fractions, describe):
    """The stages whose variance counts (R's ``multistage``): the first, and
    each later one while every stage above has an fpc."""
    n_rows = units[0].shape[0]
    factor = np.ones(n_rows)
    stages = []
    for index, (unit, stratum) in enumerate(zip(units, unit_strata)):
        keep = 1.0 - fractions[index] if index < len(fractions) else np.ones(n_rows)
        parent = units[index - 1] if index else None
        stages.append(_Stage(index, unit, stratum, parent, keep, factor, describe))
        if index >= len(fractions):
            break  # no fpc here: later stages add nothing
        factor = factor * fractions[index]
    return stages


@dataclass(frozen=True)
class DeleteOneMultipliers:
    """Jackknife multipliers, without the (units x replicates) matrix.

    Replicate ``r`` multiplies unit ``u``'s weights by ``base[r] + boost[r]``
    if ``u`` is in stratum ``stratum[r]`` (``-1``: none), less ``drop[r]`` if
    ``u`` is the unit ``unit[r]`` it deletes. A delete-one replicate differs
    from the full sample in one unit (and its stratum's rescaling), so its
    cell sums come from the full sums, the stratum sums and one unit's sums:
    memory grows with units + replicates, not their product.
    """

    unit_stratum: np.ndarray
    base: np.ndarray
    stratum: np.ndarray
    boost: np.ndarray
    unit: np.ndarray
    drop: np.ndarray

    @property
    def shape(self):
        return (self.unit_stratum.shape[0], self.base.shape[0])

    def __getitem__(self, units):
        """The multipliers of the given units (one per row), dense: (len(units), R)."""
        units = np.asarray(units)
        out = np.broadcast_to(self.base, (units.shape[0], self.base.shape[0])).copy()
        out += self.boost * (self.unit_stratum[units][:, None] == self.stratum[None, :])
        out -= self.drop * (units[:, None] == self.unit[None, :])
        return out

    def rank(self, counted):
        """The rank of the (units x replicates) matrix over the replicates
        ``counted`` (a mask), from its structure, without the matrix.

        A stratum whose units are each deleted once spans the differences
        of its units (n_h - 1) and, through their sum, the vector of ones,
        which all such strata share; a replicate that deletes a unit and
        scales all others (JK1, a lonely unit under "adjust") adds that unit.
        """
        in_stratum = counted & (self.stratum >= 0)
        n_whole = int(np.sum(counted & (self.stratum < 0)))
        if not in_stratum.any():
            return n_whole  # c (1 - e_u) for distinct units: independent
        per_stratum = np.bincount(self.stratum[in_stratum])
        per_stratum = per_stratum[per_stratum > 0]
        return 1 + int(np.sum(per_stratum - 1)) + n_whole

    def left_product(self, table):
        """``table @ multipliers`` for a (k, n_units) table, without the matrix."""
        table = sparse.csc_array(table)
        n_units = self.unit_stratum.shape[0]
        n_strata = int(self.unit_stratum.max()) + 1
        in_stratum = sparse.csr_array(
            (np.ones(n_units), (np.arange(n_units), self.unit_stratum)),
            shape=(n_units, n_strata))
        by_stratum = np.asarray((table @ in_stratum).todense())
        out = np.asarray(table.sum(axis=1)).reshape(-1, 1) * self.base[None, :]
        boosted = self.stratum >= 0
        out[:, boosted] += by_stratum[:, self.stratum[boosted]] * self.boost[boosted]
        out -= np.asarray(table[:, self.unit].todense()) * self.drop
        return out


def multiplied(table, multipliers):
    """``table @ multipliers`` for built replicates of any kind."""
    if isinstance(multipliers, DeleteOneMultipliers):
        return multipliers.left_product(table)
    return np.asarray(table @ multipliers)


def _jk1(n_units, keep):
    """Drop each unit in turn; ``keep`` is every unit's 1 - sampling fraction."""
    if n_units < 2:
        raise ValueError("JK1 replicates need at least two sampling units.")
    if np.ptp(keep) > 1e-12:
        raise ValueError("JK1 needs one sampling fraction for the whole sample; use "
                         "'jkn' for a stratified design.")
    f = float(keep[0])
    c = n_units / (n_units - 1)
    multipliers = DeleteOneMultipliers(
        unit_stratum=np.zeros(n_units, dtype=np.int64), base=np.full(n_units, c),
        stratum=np.full(n_units, -1), boost=np.zeros(n_units),
        unit=np.arange(n_units), drop=np.full(n_units, c))
    return multipliers, f * (n_units - 1) / n_units, np.ones(n_units)


def _jkn(unit_stratum, keep, lonely, describe):
    """Drop each unit of each stratum in turn; ``keep`` as for :func:`_jk1`;
    ``describe(h)`` names stratum ``h`` in messages."""
    n_units = unit_stratum.shape[0]
    n_strata = int(unit_stratum.max()) + 1
    # per replicate: base, stratum boosted (-1: none), boost, unit dropped, drop
    base, stratum, boost, unit, drop, rscales = [], [], [], [], [], []
    for h in range(n_strata):
        members = np.flatnonzero(unit_stratum == h)
        n_h = members.shape[0]
        f = float(keep[members[0]])
        if n_h == 1 and f == 0:  # a single unit taken whole: no variance, no replicate
            continue
        if n_h == 1:
            if lonely == "fail":
                h_stratum, within = describe(h)
                raise ValueError(f"{_sentence(h_stratum)}{within} has only one sampling "
                                 "unit; choose a lonely_psu rule.")
            if lonely == "adjust":  # every other unit scaled up, this one dropped
                c = n_strata / (n_strata - 1)
                base.append(c), stratum.append(-1), boost.append(0.0)
                unit.append(members[0]), drop.append(c)
                rscales.append((n_strata - 1) / n_strata)
            continue
        c = n_h / (n_h - 1)
        for j in members:
            base.append(1.0), stratum.append(h), boost.append(c - 1.0)
            unit.append(j), drop.append(c)
            rscales.append(f * (n_h - 1) / n_h)
    if not base:
        raise ValueError("Every stratum was sampled whole or has one unit: no replicates.")
    kept = len(base)
    scale = n_units / kept if (lonely == "average" and kept < n_units) else 1.0
    multipliers = DeleteOneMultipliers(
        unit_stratum=np.asarray(unit_stratum, dtype=np.int64), base=np.asarray(base),
        stratum=np.asarray(stratum, dtype=np.int64), boost=np.asarray(boost),
        unit=np.asarray(unit, dtype=np.int64), drop=np.asarray(drop))
    return multipliers, scale, np.asarray(rscales)


def _bootstrap_strata(unit_stratum, describe):
    """Every stratum's units, in code order; a stratum with one unit raises
    (``describe(h)`` names it)."""
    for h in range(int(unit_stratum.max()) + 1):
        members = np.flatnonzero(unit_stratum == h)
        if members.shape[0] < 2:
            stratum, _ = describe(h)
            raise ValueError(f"The bootstrap needs two units per stratum; {stratum} has "
                             f"{members.shape[0]}.")
        yield members


def _rao_wu(unit_stratum, n_replicates, rng, describe):
    """Rao-Wu bootstrap of n_h - 1 units drawn in each stratum, strata and units
    in the order of their codes; ``describe(h)`` names stratum ``h``."""
    multipliers = np.zeros((unit_stratum.shape[0], n_replicates))
    for members in _bootstrap_strata(unit_stratum, describe):
        n_h = members.shape[0]
        draws = rng.randint(0, n_h, size=(n_h - 1, n_replicates))
        for r in range(n_replicates):
            multipliers[members, r] = np.bincount(draws[:, r], minlength=n_h)
        multipliers[members] *= n_h / (n_h - 1)
    return multipliers, 1.0 / (n_replicates - 1), np.ones(n_replicates)


def _canty_davison(unit_stratum, keep, n_replicates, rng, describe):
    """Canty and Davison's bootstrap (R survey's "bootstrap"): in each stratum,
    n_h units drawn without replacement from a pseudo-population of N_h units
    (the sample in a random order, repeated to the stratum's population
    size, drawn once per stratum; with replacement from the sample where no
    fpc is given); a unit's multiplier is the number of times it is drawn. ``keep`` is every unit's
    1 - sampling fraction."""
    multipliers = np.zeros((unit_stratum.shape[0], n_replicates))
    sizes = np.bincount(unit_stratum)
    for members in _bootstrap_strata(unit_stratum, describe):
        n_h = members.shape[0]
        fraction = 1.0 - float(keep[members[0]])
        # one pseudo-population per stratum, as R: the sample in a random
        # order, repeated to the population size
        pseudo = np.resize(rng.permutation(n_h), int(round(n_h / fraction))
                           if fraction > 0 else n_h)
        for r in range(n_replicates):
            if fraction <= 0:
                drawn = rng.randint(0, n_h, size=n_h)
            else:
                drawn = pseudo[rng.choice(pseudo.shape[0], size=n_h, replace=False)]
            multipliers[members, r] = np.bincount(drawn, minlength=n_h)
    harmonic = 1.0 / np.mean(1.0 / sizes)
    scale = harmonic / ((harmonic - 1.0) * (n_replicates - 1))
    return multipliers, scale, np.ones(n_replicates)


def _brr(unit_stratum, rho, describe):
    """BRR (``rho`` 0) or Fay replicates as R survey's ``brrweights``: stratum
    ``h`` (codes in sorted label order) follows row ``h + 1`` of R's Hadamard
    matrix, one replicate per column; its first unit is kept (multiplier
    2 - rho) where the row has a 1."""
    n_strata = int(unit_stratum.max()) + 1
    sizes = np.bincount(unit_stratum, minlength=n_strata)
    if np.any(sizes != 2):
        h = int(np.flatnonzero(sizes != 2)[0])
        stratum, _ = describe(h)
        raise ValueError(f"BRR and Fay replicates need exactly two units per stratum; "
                         f"{stratum} has {sizes[h]}.")
    matrix = hadamard(n_strata)
    n_replicates = matrix.shape[1]
    multipliers = np.empty((unit_stratum.shape[0], n_replicates))
    for h in range(n_strata):
        first, second = np.flatnonzero(unit_stratum == h)
        keep_first = matrix[h + 1] == 1
        multipliers[first] = np.where(keep_first, 2 - rho, rho)
        multipliers[second] = np.where(keep_first, rho, 2 - rho)
    return multipliers, 1.0 / (n_replicates * (1 - rho) ** 2), np.ones(n_replicates)


def satterthwaite_df(parts, design_df):
    """Satterthwaite's degrees of freedom of variances that are sums of parts.

    ``(sum_u c_u)^2 / sum_u c_u^2`` per statistic (column of ``parts``), each
    part ``c_u`` standing in for its own expectation (a plug-in approximation,
    conservative: about a third of the parts for equal normal parts), never
    above ``design_df``; ``design_df`` where the variance is 0.

    Parameters
    ----------
    parts : ndarray of shape (n_parts, n_stats)
        Nonnegative parts of every statistic's variance.
    design_df : float
        The design's degrees of freedom (PSUs minus strata).

    Returns
    -------
    ndarray of shape (n_stats,)
    """
    total = parts.sum(axis=0)
    squares = np.sum(parts**2, axis=0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        df = np.where(squares > 0, total**2 / squares, design_df)
    df = np.where(np.isfinite(df), df, design_df)
    return np.minimum(df, design_df)


def _replicate_deviations(thetas, theta, rscales, mse):
    """Every replicate's statistic minus the centre (0 where it is not finite).

    A replicate whose statistic is not finite (a domain with no weight in it) is
    discarded for that statistic, with a warning, as R survey's ``svrVar``
    does (the scale stays); a statistic that no replicate gives raises.
    """
    thetas = np.asarray(thetas, dtype=np.float64)
    missing = ~np.isfinite(thetas)
    if missing.any():
        if missing.all(axis=0).any():
            raise ValueError("No replicate gives an estimate of some statistic (its domain "
                             "has no weight in any replicate): its variance is undefined.")
        warn(f"{int(missing.any(axis=1).sum())} replicate(s) gave NA results and were "
             "discarded (a domain with no weight in them), as R survey does.", UserWarning)
    if mse:
        centre = np.asarray(theta, dtype=np.float64)
    else:
        counted = ~missing & (rscales[:, None] > 0)
        centre = np.where(counted, thetas, 0.0).sum(axis=0) / counted.sum(axis=0)
    return np.where(missing, 0.0, thetas - centre)


def replicate_parts(thetas, theta, scale, rscales, mse):
    """Every replicate's part of :func:`replicate_variance` (n_replicates, n_stats);
    replicates with a statistic that is not finite are discarded, as R does."""
    return scale * rscales[:, None] * _replicate_deviations(thetas, theta, rscales, mse) ** 2


def replicate_roots(thetas, theta, scale, rscales, mse):
    """Signed square roots of :func:`replicate_parts`: ``R.T @ R`` is the
    replicate covariance matrix of the statistics."""
    return (np.sqrt(scale * rscales)[:, None]
            * _replicate_deviations(thetas, theta, rscales, mse))


def replicate_variance(thetas, theta, scale, rscales, mse):
    """``scale * sum_r rscales[r] (theta_r - centre)^2`` per statistic.

    Parameters
    ----------
    thetas : array-like of shape (n_replicates, n_stats)
        The statistic on every replicate.
    theta : array-like of shape (n_stats,)
        The full-sample statistic.
    scale : float
        Overall multiplier.
    rscales : ndarray of shape (n_replicates,)
        Replicate multipliers.
    mse : bool
        Centre at ``theta`` (True) or the mean of the replicates with a
        positive rscale (False, R's default).

    Returns
    -------
    ndarray of shape (n_stats,)
    """
    return replicate_parts(thetas, theta, scale, rscales, mse).sum(axis=0)
