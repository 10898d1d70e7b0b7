"""What a balancing fit tells its user, in words and tables: the convergence
report and the diagnostics table. Nothing here fits anything."""

import numpy as np
import pandas as pd

from ._problem import MAX_CELLS_FOR_DIAGNOSIS, reachability
from ._targets import is_numeric, margin_label, margin_name
from .kernels import mean_range
from .utils._validation import level_repr

__all__ = ["convergence_report", "diagnostic_columns", "diagnostics_frame", "residual_text"]


def residual_text(margins, errors):
    """The largest error of every margin, for a warning: ``age: 0.01, sex: 0``."""
    return ", ".join(f"{margin_name(m.key)}: {e:.3g}" for m, e in zip(margins, errors))


def convergence_report(result, problem, base_mass, settings):
    """Why a fit fell short, in words; empty when nothing did.

    One report for every distance: what no step could do (a numeric target
    outside the reachable means, a level beyond the bounds, a level that lost
    all its weight), then, when the steps stopped short of ``tol``, whether
    the targets are reachable at all.

    Parameters
    ----------
    result : RakingResult or CalibrationResult
        The kernel's outcome.
    problem : CellProblem
    base_mass : ndarray of shape (n_cells,)
        Normalised base mass of the cells.
    settings : FitSettings
        The distance, bounds, ``max_iter`` and ``tol`` of the fit.

    Returns
    -------
    message : str or None
        The warning text, None when the fit met its targets.
    reachable : bool or None
        Whether any weighting of the observed cells meets every margin; None
        when not decided (converged, or too many cells).
    """
    distance, bounds, tol = settings.distance, settings.bounds, settings.tol
    margins, codes = problem.margins, problem.margin_codes
    # tol=0 raking runs exactly max_iter steps (the k-step estimator), and
    # max_iter=0 asks for no step: only what no step could do is reported then
    short = (not result.converged and settings.max_iter > 0
             and (tol > 0 or distance != "raking"))
    open_ends = distance == "logit" or (distance == "raking" and bounds is None)
    beyond = {}  # margin -> the level beyond the bounds (None: not known)
    for j, level in getattr(result, "infeasible_levels", []):
        beyond.setdefault(j, level)
    for j in getattr(result, "infeasible", []):
        beyond.setdefault(j, None)
    if short and not (distance == "linear" and bounds is None):
        for j, margin in enumerate(margins):  # the numeric targets out of reach
            if is_numeric(margin):
                low, high = mean_range(base_mass, codes[j], bounds)
                if not (low < margin.mean < high if open_ends else
                        low <= margin.mean <= high):
                    beyond.setdefault(j, None)
    problems = []
    for j, level in result.starved_levels[:1]:
        margin = margins[j]
        problems.append(
            f"level {level_repr(margin.levels[level])} of {margin_label(margin.key)} "
            "lost all its weight (other targets set to 0 every cell it has), so its "
            "target cannot be met")
    for j in sorted(beyond):
        margin = margins[j]
        if is_numeric(margin):
            low, high = mean_range(base_mass, codes[j], bounds)
            within = " within the bounds" if bounds is not None else ""
            problems.append(
                f"the target of {margin_label(margin.key)} ({margin.kind} {margin.value:.6g}"
                + (f", a mean of {margin.mean:.6g}" if margin.kind == "total" else "")
                + f") is unreachable: weighted means of the column{within} range over "
                f"[{low:.6g}, {high:.6g}]" + (" (open at both ends)" if open_ends else ""))
        elif bounds is not None:
            level = ("a level" if beyond[j] is None
                     else f"level {level_repr(margin.levels[beyond[j]])}")
            problems.append(f"bounds {bounds} and the targets of {margin_label(margin.key)} "
                            f"cannot both hold: {level} needs factors outside the bounds")
    reachable = None
    if short:
        residual = residual_text(margins, result.errors[-1])
        steps = "Newton iterations" if distance != "raking" else "steps"
        name = "Raking" if distance == "raking" else f"Calibration ({distance})"
        message = (f"{name} did not reach tol={tol if tol > 0 else 1e-10:g} in "
                   f"{result.n_iter} {steps}; largest marginal error per margin: "
                   f"{residual}.")
        if distance == "linear" and bounds is None:
            reachable = False
            worst = margins[int(np.argmax(result.errors[-1]))]
            message += (" The constraints contradict each other (no weights, even negative "
                        f"ones, meet them; worst: {margin_label(worst.key)}): the targets are "
                        "unreachable.")
        else:
            reachable, vanish = reachability(base_mass, codes, problem.targets, bounds)
            message += _reachability_text(problem, reachable, vanish, bounds, distance)
        problems.insert(0, message)
    if not problems:
        return None, reachable
    return " ".join(p[0].upper() + p[1:] for p in problems), reachable


def _reachability_text(problem, reachable, vanish, bounds, distance):
    """The sentence that says whether the targets can be met at all."""
    if reachable is False:
        return (" No weighting of the observed cells"
                + (" within the bounds" if bounds is not None else "")
                + " meets every margin (structural zeros or bounds too tight): the targets "
                "are unreachable.")
    if reachable is None:
        return (f" Whether they are reachable was not checked (more than "
                f"{MAX_CELLS_FOR_DIAGNOSIS:,} cells).")
    if vanish.size:
        approach = ("the logit distance cannot give that" if distance == "logit" else
                    "the steps approach that only like 1/k and never reach it")
        return (f" The targets are reachable only with {vanish.size} observed cell(s) at "
                f"weight 0 ({_describe_cell(problem, vanish[0])}"
                f"{', ...' if vanish.size > 1 else ''}): {approach}; drop those rows or "
                "revise the targets.")
    return " The targets are reachable: increase max_iter."


def _describe_cell(problem, cell):
    """A cell as its levels: age='18-34', sex='F'."""
    return ", ".join(
        f"{margin_name(m.key)}="
        + (f"{codes[cell]:.6g}" if is_numeric(m) else level_repr(m.levels[codes[cell]]))
        for m, codes in zip(problem.margins, problem.margin_codes))


def diagnostic_columns(problem, base_mass, cell_factors):
    """Per margin, the level statistics behind ``diagnostics_`` (cheap: the
    margins in blocks, one group sum per block and statistic)."""
    n_rows = problem.cell_rows.sum()
    cell_rows = problem.cell_rows.astype(np.float64)  # once, not per margin
    weighted_mass = base_mass * cell_factors
    weighted_total = weighted_mass.sum()
    blocks = problem.level_blocks  # the margins with levels, in order
    sums = zip(blocks.totals(cell_rows), blocks.totals(base_mass), blocks.totals(weighted_mass))
    columns = []
    for margin, code in zip(problem.margins, problem.margin_codes):
        if is_numeric(margin):  # one row: means instead of shares
            weighted = float(weighted_mass @ code / weighted_total)
            columns.append({
                "n_rows": np.array([n_rows], dtype=np.int64),
                "sample_share": np.array([problem.cell_rows @ code / n_rows]),
                "base_share": np.array([base_mass @ code]),
                "weighted_share": np.array([weighted]),
                "target_share": np.array([margin.mean]),
                "residual": np.array([weighted - margin.mean]),
            })
            continue
        rows, base, weighted = next(sums)
        weighted = weighted / weighted_total
        columns.append({
            "n_rows": rows.astype(np.int64),
            "sample_share": rows / n_rows,
            "base_share": base,
            "weighted_share": weighted,
            "target_share": margin.proportions,
            "residual": weighted - margin.proportions,
        })
    return columns


def diagnostics_frame(margins, columns, factors):
    """The diagnostics DataFrame: one row per margin and level."""
    frames = []
    for margin, stats in zip(margins, columns):
        levels = [f"({margin.kind})"] if is_numeric(margin) else list(margin.levels)
        factor = (factors[margin.key].to_numpy() if margin.key in factors
                  else np.full(len(levels), np.nan))
        frames.append(pd.DataFrame({
            "margin": margin_name(margin.key),
            "level": levels,
            **stats,
            "factor": factor,
        }))
    return pd.concat(frames, ignore_index=True)
