"""Calibration fits: numeric targets and the linear and logit distances.

A :class:`MarginalBalancer` whose targets include a numeric column
(:class:`~skbalance.Total`, :class:`~skbalance.Mean`) or whose ``method`` is
"linear" or "logit" is fitted here, on the same :class:`CellProblem` (the
numeric columns take part in forming the cells, so rows with the same levels
and the same values share a factor), by ``kernels.calibrate_cells``.
Categorical raking keeps its own path (``_report.raking_fit``).
"""

import warnings

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning

from ._problem import match_rows, reachability
from ._report import fitted_attributes, residual_text, scale_of
from ._targets import is_numeric, margin_label
from .kernels import calibrate_cells, calibration_factor, linear_predictor, mean_range
from .utils._validation import level_repr

__all__ = ["calibrated_row_factors", "calibration_fit", "check_method", "is_calibration"]


def is_calibration(problem, method):
    """Whether a fit needs the calibration path (else categorical raking)."""
    return method != "raking" or any(is_numeric(m) for m in problem.margins)


def check_method(method, bounds):
    """The distance's requirements on the bounds."""
    if method == "logit" and (bounds is None or not bounds[0] < 1 < bounds[1]
                              or not np.isfinite(bounds[1])):
        raise ValueError(
            f"method='logit' needs finite bounds (low, high) with low < 1 < high (the "
            f"weight ratios stay strictly inside them); got bounds={bounds!r}."
        )


def _targets_of(problem):
    return [m.mean if is_numeric(m) else m.proportions for m in problem.margins]


def calibration_fit(problem, method, max_iter, tol, bounds):
    """Calibrate a cell problem; the fitted attributes of a balancer, and its warnings.

    Returns
    -------
    result : CalibrationResult
    fitted : dict
        Attribute name to value, for the estimator to set.
    """
    check_method(method, bounds)
    scale = scale_of(problem)
    base_mass = scale[1]
    result = calibrate_cells(base_mass, problem.margin_codes, _targets_of(problem),
                             method=method, max_iter=max_iter, tol=tol, bounds=bounds)
    report = calibration_report(result, problem, base_mass, tol, bounds, method, max_iter)
    coef = {}
    for margin, value, scaling in zip(problem.margins, result.coefs, result.scaling):
        coef[margin.key] = (value / scaling[1] if scaling is not None
                            else pd.Series(value, index=margin.levels, name="coef"))
    intercept = result.intercept - sum(
        value * s[0] / s[1] for value, s in zip(result.coefs, result.scaling) if s is not None)
    factors = {}
    if method == "raking":  # a margin's factors multiply; numeric parts and the
        for margin, value in zip(problem.margins, result.coefs):  # intercept apart
            if not is_numeric(margin):
                factors[margin.key] = pd.Series(np.exp(value), index=margin.levels,
                                                name="factor")
    fitted = fitted_attributes(problem, result, scale, factors, report, bounds)
    fitted.update(coef_=coef, intercept_=float(intercept),
                  n_newton_iter_=result.n_iter if method != "raking" else 0,
                  _calibration=(method, result.intercept, result.coefs, result.scaling))
    if report[0] is not None:
        warnings.warn(report[0], ConvergenceWarning)
    if method == "linear" and (result.cell_factors[problem.cell_base > 0] < 0).any():
        negative = int(np.sum(problem.cell_rows[(result.cell_factors < 0)
                                                & (problem.cell_base > 0)]))
        warnings.warn(
            f"Linear (GREG) calibration gave {negative} row(s) a negative weight: the "
            "chi-square distance does not keep weights positive. Pass bounds=(low, high), "
            "or use method='raking' or 'logit'.", UserWarning)
    return result, fitted


def calibration_report(result, problem, base_mass, tol, bounds, method, max_iter):
    """Why a calibration fell short, naming the constraint; None when it did not."""
    problems = []
    infeasible = set(result.infeasible)
    # tol=0 raking runs exactly max_iter steps (the k-step estimator), and
    # max_iter=0 asks for no step: only what no step could do is reported then
    short = not result.converged and max_iter > 0 and (tol > 0 or method != "raking")
    if short and not (method == "linear" and bounds is None):
        for j, margin in enumerate(problem.margins):  # name the numeric targets out of reach
            if is_numeric(margin):
                low, high = mean_range(base_mass, problem.margin_codes[j], bounds)
                open_ends = method == "logit" or (method == "raking" and bounds is None)
                if not (low < margin.mean < high if open_ends else
                        low <= margin.mean <= high):
                    infeasible.add(j)
    for j in sorted(infeasible):
        margin = problem.margins[j]
        if is_numeric(margin):
            low, high = mean_range(base_mass, problem.margin_codes[j], bounds)
            within = " within the bounds" if bounds is not None else ""
            problems.append(
                f"the target of {margin_label(margin.key)} ({margin.kind} {margin.value:.6g}"
                + (f", a mean of {margin.mean:.6g}" if margin.kind == "total" else "")
                + ") is unreachable: weighted "
                f"means of the column{within} range over [{low:.6g}, {high:.6g}]"
                + (" (open at both ends)" if method == "logit" or (method == "raking"
                                                                    and bounds is None) else "")
            )
        elif bounds is not None:
            problems.append(f"bounds {bounds} and the targets of {margin_label(margin.key)} "
                            "cannot both hold: a level needs factors outside the bounds")
    for j, level in result.starved_levels[:1]:
        margin = problem.margins[j]
        problems.append(f"level {level_repr(margin.levels[level])} of "
                        f"{margin_label(margin.key)} lost all its weight, so its target "
                        "cannot be met")
    reachable = None
    if short:
        residual = residual_text(problem.margins, result.errors[-1])
        steps = "steps" if method == "raking" else "Newton iterations"
        message = (f"Calibration ({method}) did not reach tol={max(tol, 1e-10):g} in "
                   f"{result.n_iter} {steps}; largest error per constraint: {residual}.")
        if method == "linear" and bounds is None:
            reachable = False
            worst = problem.margins[int(np.argmax(result.errors[-1]))]
            message += (" The constraints contradict each other (no weights, even negative "
                        f"ones, meet them; worst: {margin_label(worst.key)}): the targets are "
                        "unreachable.")
        else:
            reachable, vanish = reachability(base_mass, problem.margin_codes,
                                             _targets_of(problem), bounds)
            if reachable is False:
                message += (" No weighting of the observed cells"
                            + (" within the bounds" if bounds is not None else "")
                            + " meets every constraint: the targets are unreachable.")
            elif reachable and vanish.size:
                message += (f" The targets are reachable only with {vanish.size} observed "
                            "cell(s) at weight 0, which the "
                            + ("logit distance cannot give" if method == "logit" else
                               "steps approach but never reach")
                            + "; drop those rows or revise the targets.")
            elif reachable:
                message += " The targets are reachable: increase max_iter."
        problems.insert(0, message)
    if not problems:
        return None, reachable
    return " ".join(p[0].upper() + p[1:] for p in problems), reachable


def calibrated_row_factors(rows, margins, calibration, missing, bounds):
    """Every row's ``F(u)`` from the coefficients of a calibration fit."""
    method, intercept, coefs, scaling = calibration
    encoded, codes = {}, []
    shifted = []
    for margin, coef in zip(margins, coefs):
        if is_numeric(margin):
            codes.append(numeric_column(rows, margin.key))
            shifted.append(coef)
        else:
            level_codes, position = match_rows(rows, margin, encoded, missing)
            # coefficients of the observed levels, read at every row's level
            shifted.append(coef[np.maximum(position, 0)])
            codes.append(level_codes)
    u = linear_predictor(intercept, codes, shifted, scaling, gather=rows.gather)
    return calibration_factor(method, u, bounds)


def numeric_column(rows, key):
    """A numeric target's column as finite floats where the rows live."""
    try:
        columns, _ = rows.outcome(rows.column(key), name=f"Column {key!r}")
    except ValueError as exc:
        raise ValueError(f"{exc} (it has a numeric target, so it must hold finite "
                         "numbers in every row).") from exc
    return columns[0]
