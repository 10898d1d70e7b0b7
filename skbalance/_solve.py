"""One solver entry for every balancing fit.

``solve(problem, settings)`` balances a :class:`CellProblem` with one distance
(raking, linear, logit), within optional bounds, for a number of steps or to a
tolerance, and returns one :class:`FitResult` with one convergence report.
Every caller goes through it: ``MarginalBalancer.fit`` and ``partial_fit``
(and dask, through the cell table), and, with a matrix of base masses, the
replicates (:func:`solve_replicates`). Categorical raking runs in
``kernels.rake_cells``; numeric targets and the linear and logit distances in
``kernels.calibrate_cells``; the choice is made here, once.
"""

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from array_api_compat import array_namespace
from sklearn.exceptions import ConvergenceWarning

from ._problem import match_rows, row_factors
from ._report import convergence_report, diagnostic_columns
from ._targets import is_numeric, margin_label
from .kernels import (
    calibrate_cells,
    calibration_factor,
    group_sum,
    linear_predictor,
    numeric_scaling,
    rake_cells,
    rake_cells_batch,
)
from .utils._array_api import to_numpy
from .utils._validation import check_bounds, level_repr
from .utils._warnings import warn

__all__ = ["FitResult", "FitSettings", "confirm_convergence", "new_row_factors", "solve",
           "solve_replicates"]


@dataclass(frozen=True)
class FitSettings:
    """How to balance: the distance, the bounds, and steps or a tolerance.

    Parameters
    ----------
    distance : {"raking", "linear", "logit"}, default="raking"
        Raking takes single-margin steps (exact projections); "linear"
        (GREG) and "logit" meet every constraint at once by Newton's method.
    max_iter : int, default=1000
        Largest number of single-margin steps (raking) or Newton iterations.
    tol : float, default=1e-8
        Largest marginal error accepted; ``0``: exactly ``max_iter`` steps.
    bounds : tuple of (float, float) or None, default=None
        Limits of every weight over its rescaled base weight.
    accelerate : bool, default=True
        Whether raking to ``tol > 0`` without bounds may finish with Newton
        steps on all margins at once.
    bounds_relative_to : {"rescaled", "base"}, default="rescaled"
        ``bounds`` limit the weight over its base weight rescaled to the
        total, or over the base weight itself (R survey's convention; see
        :meth:`rescaled`).

    Examples
    --------
    >>> from skbalance._solve import FitSettings
    >>> FitSettings.from_params({"distance": "linear", "tol": 1e-10}).distance
    'linear'
    """

    distance: str = "raking"
    max_iter: int = 1000
    tol: float = 1e-8
    bounds: tuple | None = None
    accelerate: bool = True
    bounds_relative_to: str = "rescaled"

    def __post_init__(self):
        relative = self.bounds_relative_to == "rescaled"  # else 1 is checked in rescaled()
        bounds = check_bounds(self.bounds, around=1.0 if relative else None)
        object.__setattr__(self, "bounds", bounds)
        if self.distance == "logit" and (
                bounds is None or not np.isfinite(bounds[1])
                or (relative and not bounds[0] < 1 < bounds[1])):
            raise ValueError(
                f"distance='logit' needs finite bounds (low, high) with low < 1 < high (the "
                f"weight ratios stay strictly inside them); got bounds={self.bounds!r}."
            )

    @classmethod
    def from_params(cls, params):
        """The settings of a balancer's parameters (``get_params()``), defaults where absent."""
        method = params.get("method", "deprecated")  # the distance's old name
        distance = method if method != "deprecated" else params.get("distance", "raking")
        return cls(distance=distance,
                   max_iter=params.get("max_iter", 1000), tol=params.get("tol", 1e-8),
                   bounds=params.get("bounds"),
                   accelerate=params.get("solver", "auto") == "auto",
                   bounds_relative_to=params.get("bounds_relative_to", "rescaled"))

    def rescaled(self, base_total, total):
        """The same settings with bounds on the weight over the base weight
        rescaled to ``total`` (what the kernels take): bounds relative to the
        base weights themselves are multiplied by ``base_total / total``."""
        if self.bounds is None or self.bounds_relative_to == "rescaled":
            return self
        ratio = base_total / total
        low, high = self.bounds
        try:
            return replace(self, bounds=(low * ratio, high * ratio),
                           bounds_relative_to="rescaled")
        except ValueError as exc:  # the weights' mean factor must lie within them
            raise ValueError(
                f"With bounds_relative_to='base', the bounds {self.bounds} must hold the "
                f"target total over the base weights' total ({total / base_total:.6g}): "
                "no weights within them sum to the total.") from exc


@dataclass
class FitResult:
    """Outcome of :func:`solve`: the factors and how they were reached.

    A row's weight over its base weight rescaled to ``total`` is
    ``F(intercept + its levels' coefficients + slope * value)`` (``F``:
    ``exp``, ``1 + u`` or the logit, truncated to the bounds); for raking
    without numeric targets, the product of its levels' ``level_factors``.

    Parameters
    ----------
    settings : FitSettings
    margins : list of Margin
    cell_factors : ndarray of shape (n_cells,)
        Balanced mass over base mass of every cell.
    intercept : float
    coefs : list
        Per margin: level coefficients (an array), or a numeric column's slope
        per unit of its standardised values.
    scaling : list
        Per margin: ``(centre, scale)`` of a numeric column, None for a margin.
    level_factors : list or None
        Raking without numeric targets: per margin, the level factors.
    n_iter, n_newton_iter : int
        Steps (or Newton iterations) taken, and how many were Newton steps on
        all margins at once.
    errors : ndarray of shape (n_iter + 1, n_margins)
    converged : bool
        The steps met ``tol`` and nothing else fell short.
    message : str or None
        The convergence report; None when the fit met its targets.
    reachable : bool or None
    base_total, total : float
        Sum of the base weights, and of the weights.
    level_stats : list of dict
        Per margin, the statistics behind ``diagnostics_``.
    value_ranges : list
        Per margin: a numeric column's (smallest, largest) value among the
        rows with base weight, None for a margin (new rows beyond it are
        extrapolated).
    """

    settings: FitSettings
    margins: list
    cell_factors: np.ndarray
    intercept: float
    coefs: list
    scaling: list
    level_factors: list | None
    n_iter: int
    n_newton_iter: int
    errors: np.ndarray
    converged: bool
    message: str | None
    reachable: bool | None
    base_total: float
    total: float
    level_stats: list
    value_ranges: list

    @property
    def is_raking_product(self):
        """Whether a row's factor is the product of its levels' factors."""
        return self.level_factors is not None

    def coefficients(self):
        """``coef_``, ``intercept_`` and ``factors_`` in the columns' own units.

        ``coef_``: per margin a Series of level coefficients, per numeric
        column a slope; ``factors_``: per raked margin a Series of level
        factors (the exponentials of its coefficients; none for linear and
        logit, whose factors do not multiply).
        """
        coef, shift, factors = {}, 0.0, {}
        for margin, value, scaling in zip(self.margins, self.coefs, self.scaling):
            if scaling is not None:  # a slope per unit of the column, not of its z-score
                coef[margin.key] = value / scaling[1]
                shift += value * scaling[0] / scaling[1]
            else:
                coef[margin.key] = pd.Series(value, index=margin.levels, name="coef")
        if self.is_raking_product:
            for margin, value in zip(self.margins, self.level_factors):
                factors[margin.key] = pd.Series(value, index=margin.levels, name="factor")
        elif self.settings.distance == "raking":  # numeric parts and the intercept apart
            for margin, value in zip(self.margins, self.coefs):
                if not is_numeric(margin):  # clipped to float's range (coef_ is exact)
                    factors[margin.key] = pd.Series(np.exp(np.clip(value, -745.0, 709.0)),
                                                    index=margin.levels, name="factor")
        return coef, float(self.intercept - shift), factors


def scale_of(problem):
    """Base total, normalised base mass and target total of a cell problem.

    Raises when the target total over the base total is beyond what float holds.
    """
    base_total = float(problem.cell_base.sum())
    total = base_total if problem.total is None else problem.total
    if not 0 < total / base_total < np.inf:
        raise ValueError(
            f"The target total ({total:.3g}) over the sum of the base weights "
            f"({base_total:.3g}) is beyond what float holds; rescale sample_weight "
            "(for instance to sum to the population)."
        )
    return base_total, problem.cell_base / base_total, total


def _needs_calibration(problem, distance):
    """Numeric targets, or another distance than raking: ``kernels.calibrate_cells``."""
    return distance != "raking" or any(is_numeric(m) for m in problem.margins)


def solve(problem, settings):
    """Balance a cell problem: the one entry for every distance and caller.

    Parameters
    ----------
    problem : CellProblem
    settings : FitSettings

    Returns
    -------
    FitResult
        Warns with a ConvergenceWarning carrying ``message`` when the fit
        falls short, and with a UserWarning when linear weights are negative.

    Examples
    --------
    >>> import pandas as pd
    >>> import skbalance as skb
    >>> from skbalance._solve import FitSettings, solve
    >>> bal = skb.MarginalBalancer(targets={"g": {"a": 0.5, "b": 0.5}})
    >>> problem = bal.fit_problem(pd.DataFrame({"g": ["a", "b", "b", "b"]}))
    >>> solve(problem, FitSettings(tol=1e-12)).cell_factors.tolist()
    [2.0, 0.6666666666666666]
    """
    problem.distance = settings.distance
    base_total, base_mass, total = scale_of(problem)
    settings = settings.rescaled(base_total, total)
    targets = problem.targets
    if _needs_calibration(problem, settings.distance):
        kernel = calibrate_cells(base_mass, problem.margin_codes, targets,
                                 distance=settings.distance, max_iter=settings.max_iter,
                                 tol=settings.tol, bounds=settings.bounds)
        intercept, coefs, scaling = kernel.intercept, kernel.coefs, kernel.scaling
        level_factors = None
        n_newton = kernel.n_iter if settings.distance != "raking" else 0
    else:
        kernel = rake_cells(base_mass, problem.margin_codes, targets,
                            max_iter=settings.max_iter, tol=settings.tol,
                            bounds=settings.bounds, accelerate=settings.accelerate,
                            blocks=problem.level_blocks)
        level_factors = kernel.level_factors
        if kernel.log_level_factors is not None:  # beyond float: rows weighed by exp(sum)
            coefs, level_factors = kernel.log_level_factors, None
        else:
            with np.errstate(divide="ignore"):  # a factor of 0 is a coefficient of -inf
                coefs = [np.log(a) for a in level_factors]
        intercept, scaling, n_newton = 0.0, [None] * len(coefs), kernel.n_newton
    message, reachable = convergence_report(kernel, problem, base_mass, settings)
    result = FitResult(
        settings=settings, margins=problem.margins, cell_factors=kernel.cell_factors,
        intercept=float(intercept), coefs=coefs, scaling=scaling,
        level_factors=level_factors, n_iter=kernel.n_iter, n_newton_iter=n_newton,
        errors=kernel.errors, converged=kernel.converged and message is None,
        message=message, reachable=reachable, base_total=base_total, total=total,
        level_stats=diagnostic_columns(problem, base_mass, kernel.cell_factors),
        value_ranges=[_value_range(m, codes, problem.cell_base)
                      for m, codes in zip(problem.margins, problem.margin_codes)])
    if message is not None:
        warn(message, ConvergenceWarning)
    if settings.distance == "linear":
        _warn_negative(problem, kernel.cell_factors)
    return result


def _value_range(margin, values, cell_base):
    """A numeric column's fitted range (over cells with base weight), None for a margin."""
    if not is_numeric(margin):
        return None
    fitted = values[cell_base > 0]
    return (float(fitted.min()), float(fitted.max())) if fitted.size else None


def _warn_negative(problem, cell_factors):
    negative_cells = (cell_factors < 0) & (problem.cell_base > 0)
    if negative_cells.any():
        negative = int(np.sum(problem.cell_rows[negative_cells]))
        warn(
            f"Linear (GREG) calibration gave {negative} row(s) a negative weight: the "
            "chi-square distance does not keep weights positive. Pass bounds=(low, high), "
            "or use distance='raking' or 'logit'.", UserWarning)


def solve_replicates(problem, settings, cell_base):
    """Balance every replicate's base mass with the same settings.

    Parameters
    ----------
    problem : CellProblem
        The full sample's problem: its cells, margins and total.
    settings : FitSettings
    cell_base : ndarray of shape (n_cells, n_replicates)
        Every replicate's base weight per cell.

    Returns
    -------
    factors : ndarray of shape (n_cells, n_replicates)
        Weight over replicate base weight of every cell and replicate.
    """
    base_total = cell_base.sum(axis=0)
    if np.any(base_total <= 0):
        raise ValueError("A replicate has no positive weight on the rows.")
    mass = cell_base / base_total
    targets = problem.targets
    _check_replicates_reach_every_level(problem, mass, targets)
    n_reps = mass.shape[1]
    # each replicate's bounds, rescaled to its own base total where they are
    # relative to the base weights (R: every replicate's own)
    total = problem.total
    each = [settings.rescaled(float(base_total[r]),
                              float(base_total[r]) if total is None else total)
            for r in range(n_reps)]
    if _needs_calibration(problem, settings.distance):
        results = [calibrate_cells(mass[:, r], problem.margin_codes, targets,
                                   distance=settings.distance, max_iter=settings.max_iter,
                                   tol=settings.tol, bounds=each[r].bounds)
                   for r in range(n_reps)]
    elif settings.bounds is None:
        results = None
        factors, _, errors = rake_cells_batch(mass, problem.margin_codes, targets,
                                              max_iter=settings.max_iter, tol=settings.tol)
    else:
        results = [rake_cells(mass[:, r], problem.margin_codes, targets,
                              max_iter=settings.max_iter, tol=settings.tol,
                              bounds=each[r].bounds) for r in range(n_reps)]
    stalled = False
    if results is not None:
        factors = np.column_stack([result.cell_factors for result in results])
        errors = np.array([result.errors[-1].max() for result in results])
        stalled = settings.bounds is not None and any(
            result.n_iter < settings.max_iter for result in results)
    tol = settings.tol
    if tol > 0 and errors.max() > tol:
        worst = int(np.argmax(errors))
        advice = (f"within bounds={tuple(settings.bounds)} no weighting meets the margins "
                  "of some replicates (their steps stopped improving): widen the bounds"
                  if stalled else "Increase max_iter, or check the targets")
        warn(
            f"{int(np.sum(errors > tol))} replicate(s) did not reach tol={tol:g} (replicate "
            f"{worst}: largest marginal error {errors[worst]:.3g}); their estimates use "
            f"weights that miss the margins. {advice[0].upper()}{advice[1:]}.",
            ConvergenceWarning,
        )
    if problem.total is not None:  # count targets: every replicate sums to the total
        factors = factors * (problem.total / base_total)
    return factors


def _check_replicates_reach_every_level(problem, mass, targets):
    """Raise, naming the margin and level, when a replicate has no weight on
    a level with a positive target (its raking is then impossible)."""
    for margin, codes, target in zip(problem.margins, problem.margin_codes, targets):
        if is_numeric(margin):
            continue
        share = np.zeros((target.shape[0], mass.shape[1]))
        np.add.at(share, codes, mass)
        starved = (share <= 0) & (target[:, None] > 0)
        if starved.any():
            level, replicate = np.argwhere(starved)[0]
            raise ValueError(
                f"Replicate {replicate} has no weight on level "
                f"{level_repr(margin.levels[level])} of {margin_label(margin.key)} (every row of "
                "that level is in the units it drops), so it cannot be raked to its "
                f"target; {int(starved.any(axis=0).sum())} replicate(s) are affected. "
                "Collapse that level with another, or use linearization."
            )


def confirm_convergence(weights, problem, fit):
    """Whether the margins of the weights actually returned meet ``tol``.

    Recomputes every margin's weighted shares from the row weights (one pass
    over the rows) and warns when a fit reported converged misses them. The
    threshold is never below 1024 epsilons of the weights' dtype (float32
    weights hold shares to about 1e-4 of that, not to 1e-10).
    """
    if not fit.converged:
        return False
    cell_weight = to_numpy(weights if problem.rows_are_cells else
                           group_sum(problem.cell_of_row, weights, problem.n_cells))
    floor = 1024 * float(np.finfo(cell_weight.dtype).eps)
    cell_weight = cell_weight.astype(np.float64)
    total = cell_weight.sum()
    tol = fit.settings.tol
    threshold = max(tol if tol > 0 else 1e-10, floor)
    base_mass = problem.cell_base / problem.cell_base.sum()
    level_totals = iter(problem.level_blocks.totals(cell_weight))
    for margin, codes in zip(problem.margins, problem.margin_codes):
        if is_numeric(margin):  # in units of the column's spread, as the fit measures
            _, spread = numeric_scaling(base_mass, codes)
            error = abs(float(cell_weight @ codes) / total - margin.mean) / spread
        else:
            shares = next(level_totals) / total
            error = float(np.max(np.abs(shares - margin.proportions)))
        if not error <= threshold:  # NaN fails too
            warn(
                f"The raking steps met tol={threshold:g}, but the weights returned miss "
                f"{margin_label(margin.key)} by {error:.3g} (floating-point limits at "
                "this scale): not converged.", ConvergenceWarning)
            return False
    return True


def new_row_factors(rows, fit, missing):
    """Every row's weight over its rescaled base weight, from a fit's factors.

    Parameters
    ----------
    rows : Rows
        Rows with the balancing columns (found by name in a frame).
    fit : FitResult
    missing : {"error", "level"}

    Returns
    -------
    array of shape (n_rows,), in the rows' namespace.
    """
    bounds = fit.settings.bounds
    if fit.is_raking_product:
        factors = dict(zip((m.key for m in fit.margins), fit.level_factors))
        return row_factors(rows, fit.margins, factors, missing, bounds)
    encoded, codes, shifted = {}, [], []
    for margin, coef, value_range in zip(fit.margins, fit.coefs, fit.value_ranges):
        if is_numeric(margin):
            values = numeric_column(rows, margin.key)
            _warn_extrapolated(margin, values, value_range)
            codes.append(values)
            shifted.append(coef)
        else:
            level_codes, position = match_rows(rows, margin, encoded, missing)
            # coefficients of the observed levels, read at every row's level
            shifted.append(coef[np.maximum(position, 0)])
            codes.append(level_codes)
    u = linear_predictor(fit.intercept, codes, shifted, fit.scaling, gather=rows.gather)
    with np.errstate(over="ignore"):  # checked just below
        factor = calibration_factor(fit.settings.distance, u, bounds)
    xp = array_namespace(factor)  # checked where the rows live: no row-sized copy
    if not bool(xp.all(xp.isfinite(factor))):
        numeric = [margin_label(m.key) for m in fit.margins if is_numeric(m)]
        n_bad = int(xp.sum(xp.astype(~xp.isfinite(factor), xp.int64)))
        why = (f"their values of {', '.join(numeric)} lie so far beyond the fitted range "
               "that the fitted factor exceeds what float holds" if numeric else
               "their combination of levels is one no fitted row has, and the "
               "unreachable targets drove its factor beyond what float holds")
        raise ValueError(f"The weights of {n_bad} row(s) overflow: {why}. Weigh only rows "
                         "like the fitted ones.")
    return factor


def _warn_extrapolated(margin, values, value_range):
    """Say when new rows' values of a numeric target's column lie beyond the fit's."""
    if value_range is None:
        return
    low, high = value_range
    xp = array_namespace(values)  # where the rows live: no row-sized copy
    smallest, largest = float(xp.min(values)), float(xp.max(values))
    if smallest < low or largest > high:
        outside = (values < low) | (values > high)
        example = smallest if smallest < low else largest
        warn(f"{int(xp.sum(xp.astype(outside, xp.int64)))} row(s) have values of "
             f"{margin_label(margin.key)} outside "
             f"the fitted range [{low:.6g}, {high:.6g}] (for instance {example:.6g}): "
             "their weights extrapolate the fitted factor.", UserWarning)


def numeric_column(rows, key):
    """A numeric target's column as finite floats where the rows live."""
    try:
        columns, _ = rows.outcome(rows.column(key), name=f"Column {key!r}")
    except ValueError as exc:
        raise ValueError(f"{exc} (it has a numeric target, so it must hold finite "
                         "numbers in every row).") from exc
    return columns[0]
