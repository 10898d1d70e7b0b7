"""Generalized calibration on a table of cells (THEORY section 7).

A constraint is either a margin (``codes[j]``: each cell's level, integers;
``targets[j]``: the level proportions) or a numeric column (``codes[j]``: each
cell's value, floats; ``targets[j]``: the target weighted mean, a scalar).
Every distance gives the cells factors ``g = F(u)`` of one linear predictor

    u[c] = intercept + sum_j coef_j[codes_j[c]] + sum_k lambda_k x'_k[c],

``x'_k = (x_k - centre_k) / scale_k`` being the numeric columns standardised
under the base mass (for conditioning; the coefficients are reported in
those units and :func:`linear_predictor` applies the same scaling to new
rows). The distance sets ``F``: "raking" ``exp(u)`` (generalized raking, the
exponential tilt), "linear" ``1 + u`` (GREG, chi-square distance) and "logit"
``L + (U - L) expit(A u + c)`` (R survey's ``calfun="logit"``, Deville and
Sarndal 1992), truncated to ``bounds`` for raking and linear.

* ``distance="raking"`` takes steps, one constraint at a time, each the exact
  projection onto that constraint alone: a margin's level factors (as
  :func:`rake_cells`), or for a numeric column the tilt ``lambda`` solving
  ``E_g[x'] = target`` (a monotone 1-D root: Newton safeguarded by
  bisection; with bounds, a 2-D Newton on the dual with the intercept).
* "linear" and "logit" solve every constraint at once: Newton on the convex
  dual ``sum_c m_c rho(u_c) - t' lambda`` (``rho' = F``), with a
  pseudo-inverse for collinear constraints and a backtracking line search.
"""

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from ._ipf import solve_bounded_levels

__all__ = [
    "CalibrationResult",
    "ConstraintMatrix",
    "calibrate_cells",
    "calibration_factor",
    "constraint_errors",
    "linear_predictor",
    "mean_range",
    "numeric_scaling",
]

METHODS = ("raking", "linear", "logit")
# Coefficients stay within +-_LOG_CAP / n_constraints on the u scale, so that
# exp(u) stays finite when targets are unreachable.
_LOG_CAP = 700.0
_ROOT_STEPS = 200
_NEWTON_STEPS = 50  # of a bounded numeric step (2-D Newton)
# Largest |u| Newton may step to: beyond, the factors are saturated (logit),
# absurd (linear, a ratio of 1e12) or overflow (raking); the target is then
# out of reach and the fit stops there, unconverged.
_U_LIMIT = {"raking": _LOG_CAP, "linear": 1e12, "logit": 1e6}


@dataclass
class CalibrationResult:
    """Outcome of :func:`calibrate_cells`.

    Parameters
    ----------
    cell_factors : ndarray of shape (n_cells,)
        ``g[c] = F(u[c])``: calibrated mass over base mass.
    intercept : float
        The intercept of ``u``.
    coefs : list
        Per constraint: an array of level coefficients (a margin) or a float
        (a numeric column, per unit of its standardised values).
    scaling : list
        Per constraint: ``(centre, scale)`` of a numeric column, None for a margin.
    n_iter : int
        Single-constraint steps (raking) or Newton iterations (linear, logit).
    errors : ndarray of shape (n_iter + 1, n_constraints)
        Largest error of every constraint before the first step and after
        each: shares for a margin, the weighted mean in units of the column's
        median absolute deviation for a numeric column (see
        :func:`numeric_scaling`).
    converged : bool
        Whether the last row is within ``tol`` (``tol=0``: within 1e-10).
    starved_levels : list of (int, int)
        ``(constraint, level)`` pairs with a positive target but no mass left.
    infeasible : list of int
        Constraints that no step could meet on its own (a numeric target
        outside the values' range, or a level's target beyond the bounds).

    Examples
    --------
    >>> import numpy as np
    >>> from skbalance.kernels import calibrate_cells
    >>> result = calibrate_cells(np.full(3, 1 / 3), [np.array([1.0, 2.0, 4.0])],
    ...                          [3.0], distance="linear", max_iter=10, tol=1e-12)
    >>> (result.cell_factors / 3 * [1.0, 2.0, 4.0]).sum().round(12)
    np.float64(3.0)
    """

    cell_factors: np.ndarray
    intercept: float
    coefs: list
    scaling: list
    n_iter: int
    errors: np.ndarray
    converged: bool
    starved_levels: list
    infeasible: list


def is_numeric_target(target):
    """A numeric constraint has a scalar target (a mean); a margin, proportions."""
    return np.ndim(target) == 0


def numeric_scaling(mass, values):
    """Centre and scale of a numeric column under a mass, robust to outliers.

    A numeric target's error is measured in these units, so the scale must
    not grow with a few extreme values (a missing-value code of 9999999999
    in 2 of 200 rows would make an error of 5 in the mean look like 5e-8).

    Parameters
    ----------
    mass : ndarray of shape (n_cells,)
        Nonnegative mass of every cell.
    values : ndarray of shape (n_cells,)
        The column's value at every cell.

    Returns
    -------
    centre, scale : float
        The ``mass``-weighted median and median absolute deviation from it;
        where that is 0 (a column mostly at one value), the weighted mean
        absolute deviation from the median; where the column does not vary,
        ``max(|centre|, 1)``.

    Examples
    --------
    >>> import numpy as np
    >>> from skbalance.kernels import numeric_scaling
    >>> numeric_scaling(np.full(5, 0.2), np.array([1.0, 2.0, 3.0, 4.0, 1e10]))
    (3.0, 1.0)
    """
    total = mass.sum()
    if not total > 0:
        return 0.0, 1.0
    centre = _weighted_median(mass, values)
    deviation = np.abs(values - centre)
    scale = _weighted_median(mass, deviation)
    if not scale > 0:
        scale = float(mass @ deviation / total)
    if not scale > 0:
        scale = max(abs(centre), 1.0)
    return centre, scale


def _weighted_median(mass, values):
    """The smallest value with at least half the mass at or below it."""
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(mass[order])
    return float(values[order][np.searchsorted(cumulative, 0.5 * cumulative[-1])])


def linear_predictor(intercept, codes, coefs, scaling, gather=None):
    """``u`` at every cell (or row): the intercept plus each constraint's part.

    The sum runs in constraint order, so cells and rows agree to the last bit.

    Parameters
    ----------
    intercept : float
        The intercept.
    codes : list of array
        Per constraint: level codes (a margin) or values (a numeric column).
    coefs : list
        Per constraint: an array of level coefficients, or a float (a
        numeric column's coefficient).
    scaling : list
        Per constraint: ``(centre, scale)`` standardising a numeric column's
        values, or None (values used as given; margins).
    gather : callable or None, default=None
        ``gather(values, codes)`` reads a margin's coefficients at the codes
        (``values[codes]`` when None), for rows in another namespace.

    Returns
    -------
    u : array
        The linear predictor, one value per cell (or row).

    Examples
    --------
    >>> import numpy as np
    >>> from skbalance.kernels import linear_predictor
    >>> linear_predictor(0.5, [np.array([0, 1]), np.array([2.0, 4.0])],
    ...                  [np.array([0.0, 1.0]), 0.25], [None, (3.0, 1.0)]).tolist()
    [0.25, 1.75]
    """
    u = None
    for code, coef, scale in zip(codes, coefs, scaling):
        if np.ndim(coef) == 0:
            part = coef * (code if scale is None else (code - scale[0]) / scale[1])
        else:
            part = coef[code] if gather is None else gather(coef, code)
        u = part + intercept if u is None else u + part
    if u is None:
        raise ValueError("At least one constraint is needed.")
    return u


def mean_range(base_mass, values, bounds):
    """The smallest and largest weighted mean that factors within bounds give.

    With ``sum_c m_c g_c = 1`` and ``low <= g <= high``, the largest mean puts
    ``high`` on the largest values until the mass runs out (a fractional
    knapsack); without bounds (or ``high = inf``), the range of the values over
    cells with mass.

    Parameters
    ----------
    base_mass : ndarray of shape (n_cells,)
        Nonnegative base mass of every cell.
    values : ndarray of shape (n_cells,)
        The column's value at every cell.
    bounds : tuple of (float, float) or None
        ``(low, high)`` limits on the factors.

    Returns
    -------
    lowest, highest : float
        The reachable weighted means (the ends themselves need factors at
        the bounds, or at 0).

    Examples
    --------
    >>> import numpy as np
    >>> from skbalance.kernels import mean_range
    >>> mean_range(np.full(4, 0.25), np.array([1.0, 2.0, 3.0, 4.0]), (0.5, 1.5))
    (2.0, 3.0)
    """
    alive = base_mass > 0
    mass, x = base_mass[alive] / base_mass[alive].sum(), values[alive]
    low, high = (0.0, np.inf) if bounds is None else (max(bounds[0], 0.0), bounds[1])
    if not np.isfinite(high):
        return float(x.min()), float(x.max())

    def extreme(order):
        g = np.full(x.shape[0], low)
        room = (high - low) * mass[order]  # mass each cell can take beyond `low`
        taken = np.minimum(room, np.maximum((1.0 - low) - (np.cumsum(room) - room), 0.0))
        g[order] += taken / mass[order]
        return float((mass * g) @ x)

    order = np.argsort(x, kind="stable")
    return extreme(order), extreme(order[::-1])


def calibration_factor(distance, u, bounds=None):
    """``F(u)``: the weight over base weight that a linear predictor gives.

    Parameters
    ----------
    distance : {"raking", "linear", "logit"}
    u : array
        Linear predictor, any Array API namespace.
    bounds : tuple of (float, float) or None
        ``(low, high)``; raking and linear are truncated to them, logit maps
        into the open interval (it requires them).

    Returns
    -------
    factor : array
        ``F(u)``, of the shape and namespace of ``u``.

    Examples
    --------
    >>> import numpy as np
    >>> from skbalance.kernels import calibration_factor
    >>> calibration_factor("linear", np.array([-0.5, 0.0, 3.0]), (0.6, 2.0)).tolist()
    [0.6, 1.0, 2.0]
    >>> calibration_factor("logit", np.array([0.0]), (0.5, 2.5)).tolist()
    [1.0]
    """
    if distance == "logit":
        low, high = bounds
        slope, shift = _logit_constants(low, high)
        return low + (high - low) * _expit(slope * u + shift)
    if distance == "raking":
        with np.errstate(over="ignore"):
            g = _exp(u)
    else:
        g = 1.0 + u
    if bounds is None:
        return g
    return _clip(g, *bounds)


def _expit(z):
    return expit(z) if isinstance(z, np.ndarray) else 1.0 / (1.0 + _namespace(z).exp(-z))


def _exp(u):
    return np.exp(u) if isinstance(u, np.ndarray) else _namespace(u).exp(u)


def _clip(g, low, high):
    if isinstance(g, np.ndarray):
        return np.clip(g, low, high)
    return _namespace(g).clip(g, low, high)


def _namespace(x):
    from array_api_compat import array_namespace

    return array_namespace(x)


def _logit_constants(low, high):
    """``A`` and ``c`` of the logit distance: ``F(u) = L + (U - L) expit(A u + c)``."""
    return (high - low) / ((high - 1.0) * (1.0 - low)), float(np.log((1.0 - low) / (high - 1.0)))


def _factor_slope_rho(distance, u, bounds):
    """``F(u)``, ``F'(u)`` and ``rho(u) = int_0^u F`` (the dual's integrand)."""
    if distance == "logit":
        low, high = bounds
        slope, shift = _logit_constants(low, high)
        s = expit(slope * u + shift)
        g = low + (high - low) * s
        rho = low * u + (high - low) / slope * (np.logaddexp(0, slope * u + shift)
                                                - np.logaddexp(0, shift))
        return g, (high - low) * slope * s * (1 - s), rho
    low, high = (-np.inf, np.inf) if bounds is None else bounds
    if distance == "linear":
        v = 1.0 + u
        g = np.clip(v, low, high)
        inside = (v > low) & (v < high)
        # int_1^v clip(s, L, U) ds, piecewise (infinite bounds: branches unused)
        with np.errstate(invalid="ignore"):
            rho = np.where(inside, (v * v - 1) / 2,
                           np.where(v >= high, (high * high - 1) / 2 + high * (v - high),
                                    (low * low - 1) / 2 + low * (v - low)))
        return g, inside.astype(np.float64), rho
    low = max(low, 0.0)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        e = np.exp(u)
        g = np.clip(e, low, high)
        inside = (e > low) & (e < high)
        log_high, log_low = np.log(high), np.log(low) if low > 0 else -np.inf
        rho = np.where(inside, e - 1,
                       np.where(e >= high, (high - 1) + high * (u - log_high),
                                (low - 1) + low * np.where(low > 0, u - log_low, 0.0)))
    return g, np.where(inside, e, 0.0), rho


def constraint_errors(weighted, codes, targets):
    """Largest error of every constraint given the calibrated cell masses.

    Shares for a margin; for a numeric column (``codes`` its standardised
    values), the weighted mean's distance to its target.
    """
    total = weighted.sum()
    errors = np.empty(len(codes))
    for j, (code, target) in enumerate(zip(codes, targets)):
        if total <= 0 or not np.isfinite(total):
            errors[j] = np.inf
        elif is_numeric_target(target):
            errors[j] = abs(float(weighted @ code) / total - target)
        elif target.shape[0]:
            share = np.bincount(code, weighted, minlength=target.shape[0]) / total
            errors[j] = np.max(np.abs(share - target))
        else:
            errors[j] = 0.0
    return errors


def calibrate_cells(base_mass, codes, targets, *, distance, max_iter, tol, bounds=None):
    """Calibrate a cell table to margins and numeric means.

    Parameters
    ----------
    base_mass : ndarray of shape (n_cells,)
        Nonnegative base mass of every cell, summing to 1.
    codes : list of ndarray, each of shape (n_cells,)
        Per constraint: the level of each cell (int, a margin) or the value
        of each cell (float, a numeric column).
    targets : list
        Per constraint: level proportions summing to 1, or the target mean (a scalar).
    distance : {"raking", "linear", "logit"}
        The distance.
    max_iter : int
        Single-constraint steps (raking) or Newton iterations (linear, logit).
    tol : float
        Largest constraint error accepted (see ``CalibrationResult.errors``).
        ``tol=0``: raking runs exactly ``max_iter`` steps; Newton iterates
        until the errors stop shrinking.
    bounds : tuple of (float, float) or None
        Limits on the factors ``g``; required by "logit".

    Returns
    -------
    CalibrationResult
        Cell factors, coefficients, steps taken, error history and what
        could not be met.

    Examples
    --------
    A margin and a numeric mean, raked:

    >>> import numpy as np
    >>> from skbalance.kernels import calibrate_cells
    >>> mass = np.full(4, 0.25)
    >>> sex, age = np.array([0, 0, 1, 1]), np.array([20.0, 60.0, 30.0, 50.0])
    >>> result = calibrate_cells(mass, [sex, age], [np.array([0.5, 0.5]), 42.0],
    ...                          distance="raking", max_iter=100, tol=1e-12)
    >>> w = mass * result.cell_factors
    >>> round(float(w @ age), 9), round(float(w[:2].sum()), 9)
    (42.0, 0.5)
    """
    base_mass = np.asarray(base_mass, dtype=np.float64)
    scaling, scaled_codes, scaled_targets = [], [], []
    for code, target in zip(codes, targets):
        if is_numeric_target(target):
            values = np.asarray(code, dtype=np.float64)
            centre, scale = numeric_scaling(base_mass, values)
            scaling.append((centre, scale))
            scaled_codes.append((values - centre) / scale)
            scaled_targets.append((float(target) - centre) / scale)
        else:
            scaling.append(None)
            scaled_codes.append(code)
            scaled_targets.append(np.asarray(target, dtype=np.float64))
    if distance == "raking":
        return _rake_steps(base_mass, scaled_codes, scaled_targets, scaling, max_iter, tol,
                           bounds)
    return _newton_all(base_mass, scaled_codes, scaled_targets, scaling, distance, max_iter,
                       tol, bounds)


def _initial_coefs(base_mass, codes, targets):
    """Zero coefficients; -inf for absent levels meant to be absent."""
    coefs = []
    for code, target in zip(codes, targets):
        if is_numeric_target(target):
            coefs.append(0.0)
            continue
        coef = np.zeros(target.shape[0])
        current = np.bincount(code, base_mass, minlength=target.shape[0])
        coef[(current <= 0) & (target == 0)] = -np.inf
        coefs.append(coef)
    return coefs


def _rake_steps(base_mass, codes, targets, scaling, max_iter, tol, bounds):
    """Raking: one exact projection per step, constraints visited in order.

    Without bounds a step costs a few passes over the cells of the one
    constraint it fixes: ``u`` is updated in place by that constraint's change
    (a margin's level ratio, a numeric column's change of tilt) and the
    normalising intercept. As in :func:`rake_cells`, only the next
    constraint's error is measured after a step, and the others when that
    one is within ``tol`` (NaN where not measured).
    """
    n = len(codes)
    low, high = (0.0, np.inf) if bounds is None else (float(bounds[0]), float(bounds[1]))
    bounded = bounds is not None
    cap = _LOG_CAP / max(n, 1)
    coefs = _initial_coefs(base_mass, codes, targets)
    intercept = 0.0
    with np.errstate(divide="ignore"):
        log_mass = np.log(base_mass, out=np.full_like(base_mass, -np.inf),
                          where=base_mass > 0)
    u = linear_predictor(intercept, codes, coefs, [None] * n)
    g = calibration_factor("raking", u, bounds)
    weighted = base_mass * g  # the calibrated mass of every cell
    errors = [constraint_errors(weighted, codes, targets)]
    done = n == 0 or (tol > 0 and errors[0].max() <= tol)
    starved, infeasible = set(), set()
    reach = {j: mean_range(base_mass, code, bounds) for j, (code, target)
             in enumerate(zip(codes, targets)) if bounded and is_numeric_target(target)}
    n_iter = 0
    while not done and n_iter < max_iter:
        j = n_iter % n
        code, target = codes[j], targets[j]
        if bounded:
            rest = _predictor_without(intercept, codes, coefs, j)
            if is_numeric_target(target):
                lowest, highest = reach[j]
                if not lowest <= target <= highest:  # no factors in bounds reach it
                    infeasible.add(j)
                else:
                    solution, ok = _newton_dual(
                        base_mass, ConstraintMatrix([code], [target]),
                        np.array([1.0, target]), "raking", bounds, rest - intercept,
                        np.array([intercept, coefs[j]]), _NEWTON_STEPS)
                    if not ok:
                        infeasible.add(j)
                    intercept, coefs[j] = float(solution[0]), float(solution[1])
            else:
                with np.errstate(over="ignore"):
                    others = np.exp(rest)
                factor, bad = solve_bounded_levels(base_mass, others, code, target, low, high,
                                                   log_cap=cap)
                if bad.any():
                    infeasible.add(j)
                with np.errstate(divide="ignore"):
                    coefs[j] = np.log(factor)
            u = linear_predictor(intercept, codes, coefs, [None] * n)
            g = calibration_factor("raking", u, bounds)
        elif is_numeric_target(target):
            rest = log_mass + u - coefs[j] * code
            root = _tilt_root(rest, code, target, coefs[j])
            if root is None:
                infeasible.add(j)
            else:
                # the normalisation keeps u finite on every cell with mass, however
                # large the tilt (a few extreme values need a steep one)
                lam, log_norm = root
                # the exact projection also normalises: sum m g = 1
                u += (lam - coefs[j]) * code - log_norm
                intercept -= log_norm
                coefs[j] = lam
                with np.errstate(over="ignore"):
                    weighted = np.exp(rest + lam * code - log_norm)
        else:
            current = np.bincount(code, weighted, minlength=target.shape[0])
            missing = (current <= 0) & (target > 0)
            starved.update((j, int(level)) for level in np.flatnonzero(missing))
            with np.errstate(divide="ignore"):  # a target of 0: -inf
                change = np.log(np.where(current > 0, target, 1.0)
                                / np.where(current > 0, current, 1.0))
            change[target == 0] = -np.inf
            new = np.minimum(coefs[j] + change, cap)
            # equal coefficients (both -inf) change nothing
            delta = np.where(new == coefs[j], 0.0, new - coefs[j])
            coefs[j] = new
            u += delta[code]
            weighted *= np.exp(delta)[code]
        n_iter += 1
        following = n_iter % n
        row = np.full(n, np.nan)
        if bounded:
            weighted = base_mass * g
        row[following] = constraint_errors(weighted, [codes[following]],
                                           [targets[following]])[0]
        if tol > 0 and row[following] <= tol:
            if not bounded:  # measured on the weights the coefficients give (no drift)
                with np.errstate(over="ignore"):
                    weighted = base_mass * np.exp(linear_predictor(intercept, codes, coefs,
                                                                   [None] * n))
            row = constraint_errors(weighted, codes, targets)
            done = row.max() <= tol
        errors.append(row)
    if n and not bounded:  # g from the coefficients, as new rows get it (no drift)
        # (capped for cells without mass, whose u nothing normalises)
        g = np.exp(np.minimum(linear_predictor(intercept, codes, coefs, [None] * n), 709.0))
    errors = np.vstack(errors)
    if n:
        errors[-1] = constraint_errors(base_mass * g, codes, targets)
    final = errors[-1].max() if n else 0.0
    return CalibrationResult(g, intercept, coefs, scaling, n_iter, errors,
                             bool(final <= (tol if tol > 0 else 1e-10)), sorted(starved),
                             sorted(infeasible))


def _predictor_without(intercept, codes, coefs, skip):
    """``u`` without constraint ``skip``'s part (its coefficients taken as 0)."""
    others = [(np.zeros_like(coef) if np.ndim(coef) else 0.0) if i == skip else coef
              for i, coef in enumerate(coefs)]
    return linear_predictor(intercept, codes, others, [None] * len(codes))


def _log_sum(log_values):
    """``log sum exp`` of the finite entries (``-inf`` when none)."""
    alive = np.isfinite(log_values)
    if not alive.any():
        return -np.inf
    top = log_values[alive].max()
    return top + np.log(np.exp(log_values[alive] - top).sum())


def _tilt_root(log_mass, x, target, start):
    """``lambda`` with ``E[x]`` under ``mass * exp(lambda x)`` equal to ``target``.

    The tilted mean increases with ``lambda`` (its derivative is the tilted
    variance), so Newton steps kept inside a shrinking bracket, bisecting when
    a step leaves it, find the root. Returns ``lambda`` and ``log sum mass *
    exp(lambda x)`` there; None when the target lies outside the range of
    ``x`` over cells with mass (no tilt reaches it).
    """
    alive = np.isfinite(log_mass)
    everywhere = bool(alive.all())
    if not everywhere:
        if not alive.any():
            return None
        log_mass, x = log_mass[alive], x[alive]
    lowest, highest = x.min(), x.max()
    if not lowest < target < highest:
        if lowest == highest == target:
            return float(start), float(_log_sum(log_mass + start * x))
        return None
    squares = x * x
    work = np.empty_like(x)
    lo, hi, lam = -np.inf, np.inf, float(start)
    for _ in range(_ROOT_STEPS):
        np.multiply(x, lam, out=work)
        work += log_mass
        top = float(work.max())
        work -= top
        np.exp(work, out=work)
        total = float(work.sum())
        mean = float(work @ x) / total
        gap = mean - target
        variance = float(work @ squares) / total - mean * mean
        if gap > 0:
            hi = lam
        elif gap < 0:
            lo = lam
        step = lam - gap / variance if variance > 0 else np.nan
        if not lo < step < hi:
            if np.isfinite(lo) and np.isfinite(hi):
                step = 0.5 * (lo + hi)
            else:  # expand toward the side the root is on
                step = lam + (1.0 + abs(lam)) * (1.0 if gap < 0 else -1.0)
        if gap == 0 or abs(step - lam) <= 1e-15 * max(1.0, abs(lam)):
            break
        lam = step
    return lam, top + float(np.log(total))


class ConstraintMatrix:
    """The (cells x p) matrix ``[1 | level indicators | numeric columns]``, never formed.

    Products with it are group sums over the codes, so a Newton step costs a
    few passes over the cells whatever the number of levels.

    Parameters
    ----------
    codes : list of ndarray, each of shape (n_cells,)
        Per constraint: level codes (a margin) or values (a numeric column).
    targets : list
        Per constraint: level proportions (a margin) or a scalar (a numeric
        column); only their kind and size are used.

    Examples
    --------
    >>> import numpy as np
    >>> from skbalance.kernels import ConstraintMatrix
    >>> A = ConstraintMatrix([np.array([0, 1, 1]), np.array([1.0, 2.0, 4.0])],
    ...                      [np.array([0.5, 0.5]), 2.0])
    >>> A.transpose_dot(np.ones(3)).tolist()  # column sums: 1, two levels, x
    [3.0, 1.0, 2.0, 7.0]
    """

    def __init__(self, codes, targets):
        self.codes = codes
        self.numeric = [is_numeric_target(t) for t in targets]
        sizes = [1 if num else np.shape(t)[0] for num, t in zip(self.numeric, targets)]
        self.starts = np.cumsum([1] + sizes)[:-1]
        self.sizes = sizes
        self.shape = (codes[0].shape[0], 1 + sum(sizes))

    def dot(self, coefficients):
        """``A @ coefficients``: the linear predictor at every cell.

        Parameters
        ----------
        coefficients : ndarray of shape (p,)
            Intercept, every margin's level coefficients, every numeric slope.

        Returns
        -------
        u : ndarray of shape (n_cells,)
            The linear predictor.

        Examples
        --------
        >>> import numpy as np
        >>> from skbalance.kernels import ConstraintMatrix
        >>> A = ConstraintMatrix([np.array([0, 1, 1])], [np.array([0.5, 0.5])])
        >>> A.dot(np.array([1.0, 0.0, 2.0])).tolist()
        [1.0, 3.0, 3.0]
        """
        u = np.full(self.shape[0], float(coefficients[0]))
        for code, num, start, size in zip(self.codes, self.numeric, self.starts, self.sizes):
            u += coefficients[start] * code if num else coefficients[start:start + size][code]
        return u

    def transpose_dot(self, values):
        """``A.T @ values``: the constraint totals of a cell function.

        Parameters
        ----------
        values : ndarray of shape (n_cells,)
            A value per cell (a mass, say).

        Returns
        -------
        totals : ndarray of shape (p,)
            Total, per-level totals, and the numeric columns' weighted sums.

        Examples
        --------
        >>> import numpy as np
        >>> from skbalance.kernels import ConstraintMatrix
        >>> A = ConstraintMatrix([np.array([0, 1, 1])], [np.array([0.5, 0.5])])
        >>> A.transpose_dot(np.array([1.0, 2.0, 3.0])).tolist()
        [6.0, 1.0, 5.0]
        """
        out = np.empty(self.shape[1])
        out[0] = values.sum()
        for code, num, start, size in zip(self.codes, self.numeric, self.starts, self.sizes):
            out[start:start + size] = (values @ code if num else
                                       np.bincount(code, values, minlength=size))
        return out

    def gram(self, values):
        """``A.T @ diag(values) @ A``, block by block (one group sum per pair).

        Parameters
        ----------
        values : ndarray of shape (n_cells,)
            The diagonal weights.

        Returns
        -------
        gram : ndarray of shape (p, p)
            Symmetric, positive semi-definite (singular when constraints
            overlap, as the intercept and a margin's levels always do).

        Examples
        --------
        >>> import numpy as np
        >>> from skbalance.kernels import ConstraintMatrix
        >>> A = ConstraintMatrix([np.array([0, 1, 1])], [np.array([0.5, 0.5])])
        >>> A.gram(np.ones(3)).tolist()
        [[3.0, 1.0, 2.0], [1.0, 1.0, 0.0], [2.0, 0.0, 2.0]]
        """
        p = self.shape[1]
        gram = np.zeros((p, p))
        parts = list(zip(self.codes, self.numeric, self.starts, self.sizes))
        gram[0, :] = self.transpose_dot(values)
        gram[:, 0] = gram[0, :]
        for i, (code_i, num_i, start_i, size_i) in enumerate(parts):
            block_i = slice(start_i, start_i + size_i)
            if num_i:
                gram[start_i, start_i] = values @ (code_i * code_i)
            else:
                gram[block_i, block_i] = np.diag(gram[0, block_i])
            for code_j, num_j, start_j, size_j in parts[i + 1:]:
                block_j = slice(start_j, start_j + size_j)
                if num_i and num_j:
                    block = np.array([[values @ (code_i * code_j)]])
                elif num_i:
                    block = np.bincount(code_j, values * code_i, minlength=size_j)[None, :]
                elif num_j:
                    block = np.bincount(code_i, values * code_j, minlength=size_i)[:, None]
                else:
                    block = np.bincount(code_i * size_j + code_j, values,
                                        minlength=size_i * size_j).reshape(size_i, size_j)
                gram[block_i, block_j] = block
                gram[block_j, block_i] = block.T
        return gram


def _wanted(targets):
    """The target vector of :class:`ConstraintMatrix`: 1, proportions, means."""
    return np.concatenate([[1.0]] + [np.atleast_1d(np.asarray(t, dtype=np.float64))
                                     for t in targets])


def _newton_all(base_mass, codes, targets, scaling, distance, max_iter, tol, bounds):
    """Linear and logit: every constraint at once, Newton on the dual."""
    design, wanted = ConstraintMatrix(codes, targets), _wanted(targets)
    history = []

    def measure(lam):
        g = calibration_factor(distance, design.dot(lam), bounds)
        history.append(constraint_errors(base_mass * g, codes, targets))
        return history[-1].max() <= (tol if tol > 0 else 0.0)

    lam, _ = _newton_dual(base_mass, design, wanted, distance, bounds,
                          np.zeros(base_mass.shape[0]), np.zeros(design.shape[1]), max_iter,
                          measure=measure)
    g = calibration_factor(distance, design.dot(lam), bounds)
    errors = np.vstack(history)
    coefs, position = [], 1
    for target in targets:
        size = 1 if is_numeric_target(target) else target.shape[0]
        block = lam[position:position + size]
        coefs.append(float(block[0]) if is_numeric_target(target) else block.copy())
        position += size
    final = errors[-1].max() if errors.size else 0.0
    return CalibrationResult(g, float(lam[0]), coefs, scaling, errors.shape[0] - 1, errors,
                             bool(final <= (tol if tol > 0 else 1e-10)), [], [])


def _newton_dual(mass, design, wanted, distance, bounds, offset, start, max_iter, measure=None):
    """Minimise ``sum_c m_c rho(offset_c + (design lambda)_c) - wanted' lambda``.

    Newton directions from the pseudo-inverse of the Hessian (collinear
    constraints, cells at the bounds), a backtracking line search on the
    convex objective, steepest descent when Newton's direction stalls.
    ``measure(lambda)`` returns True to stop (it also records the errors);
    without it, stop when the gradient vanishes. Returns ``lambda`` and
    whether the gradient reached (near) zero.
    """
    lam = np.asarray(start, dtype=np.float64).copy()

    def parts(lam):
        u = offset + design.dot(lam)
        with np.errstate(over="ignore", invalid="ignore"):
            g, slope, rho = _factor_slope_rho(distance, u, bounds)
        value = float(mass @ rho) - float(wanted @ lam)
        if not np.max(np.abs(u[mass > 0]), initial=0.0) <= _U_LIMIT[distance]:
            value = np.inf  # refused by the line search
        return g, slope, value

    g, slope, value = parts(lam)
    scale = 1.0 + np.abs(wanted)
    stopped = measure(lam) if measure is not None else False
    for _ in range(max_iter):
        gradient = design.transpose_dot(mass * g) - wanted
        if stopped or np.max(np.abs(gradient) / scale) <= 1e-15:
            break
        hessian = design.gram(mass * slope)
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            # every cell at a bound: a Hessian of (nearly) 0, no Newton step
            direction = -np.linalg.pinv(hessian, rcond=1e-13, hermitian=True) @ gradient
            descent = float(gradient @ direction)
        if not (np.all(np.isfinite(direction)) and descent < 0):
            direction, descent = -gradient, -float(gradient @ gradient)
        if -descent <= 1e-10 * (1.0 + abs(value)):
            # the objective no longer resolves the progress: take the full
            # Newton step while it shrinks the gradient, stop when it does not
            candidate = lam + direction
            new_g, new_slope, new_value = parts(candidate)
            new_gradient = design.transpose_dot(mass * new_g) - wanted
            if not (np.isfinite(new_value)
                    and np.max(np.abs(new_gradient)) < np.max(np.abs(gradient))):
                break
            lam, g, slope, value = candidate, new_g, new_slope, new_value
            stopped = measure(lam) if measure is not None else False
            continue
        step, improved = 1.0, False
        for _ in range(60):
            candidate = lam + step * direction
            new_g, new_slope, new_value = parts(candidate)
            if np.isfinite(new_value) and new_value <= value + 1e-4 * step * descent:
                improved = True
                break
            step /= 2
        if not improved:
            break
        lam, g, slope, value = candidate, new_g, new_slope, new_value
        stopped = measure(lam) if measure is not None else False
    gradient = design.transpose_dot(mass * g) - wanted
    return lam, bool(np.max(np.abs(gradient) / scale) <= 1e-9)
