"""What a raking fit tells its user: convergence warnings, the diagnostics table,
and the weights as one column (``transform``)."""

import warnings

import numpy as np
import pandas as pd
from sklearn.base import TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted

from ._rows import as_column

from ._problem import MAX_CELLS_FOR_DIAGNOSIS, reachability
from .kernels import group_sum, numeric_scaling, rake_cells
from .utils._array_api import to_numpy
from ._targets import is_numeric, margin_label, margin_name
from .utils._validation import level_repr

__all__ = [
    "DiagnosticsMixin",
    "WeightColumnMixin",
    "confirm_convergence",
    "convergence_report", "diagnostic_columns", "diagnostics_frame", "fitted_attributes",
    "raking_fit", "residual_text", "scale_of"]


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


def fitted_attributes(problem, result, scale, factors, report, bounds):
    """The fitted attributes every balancing fit sets (raking or calibration).

    ``scale`` is :func:`scale_of`'s triple, ``report`` the (message,
    reachable) pair of the convergence report.
    """
    base_total, base_mass, total = scale
    message, reachable = report
    return {
        "total_": total,
        "weight_scale_": total / base_total,
        "_base_total": base_total,
        "margins_": [m.key for m in problem.margins],
        "categories_": {m.key: m.levels for m in problem.margins if not is_numeric(m)},
        "factors_": factors,
        "n_iter_": result.n_iter,
        "n_newton_iter_": getattr(result, "n_newton", 0),
        "converged_": result.converged and message is None,
        "marginal_error_": result.errors,
        "n_cells_": int(np.count_nonzero(problem.cell_rows)),
        "targets_reachable_": reachable,
        "_margins": problem.margins,
        "_bounds": bounds,
        "_diagnostic_data": diagnostic_columns(problem, base_mass, result.cell_factors),
        "_namespace": None,
    }


def residual_text(margins, errors):
    """The largest error of every margin, for a warning: ``age: 0.01, sex: 0``."""
    return ", ".join(f"{margin_name(m.key)}: {e:.3g}" for m, e in zip(margins, errors))


def raking_fit(problem, max_iter, tol, bounds, accelerate=True):
    """Rake a cell problem; the fitted attributes of a balancer, and its warning.

    Warns with a ConvergenceWarning when the fit falls short.

    Returns
    -------
    result : RakingResult
    fitted : dict
        Attribute name to value, for the estimator to set.
    """
    scale = scale_of(problem)
    base_mass = scale[1]
    result = rake_cells(base_mass, problem.margin_codes,
                        [m.proportions for m in problem.margins],
                        max_iter=max_iter, tol=tol, bounds=bounds, accelerate=accelerate)
    report = convergence_report(result, problem, base_mass, tol, bounds)
    factors = {m.key: pd.Series(a, index=m.levels, name="factor")
               for m, a in zip(problem.margins, result.level_factors)}
    fitted = fitted_attributes(problem, result, scale, factors, report, bounds)
    if report[0] is not None:
        warnings.warn(report[0], ConvergenceWarning)
    return result, fitted


def confirm_convergence(weights, problem, tol, converged):
    """Whether the margins of the weights actually returned meet ``tol``.

    Recomputes every margin's weighted shares from the row weights (one pass
    over the rows) and warns when a fit reported converged misses them. The
    threshold is never below 1024 epsilons of the weights' dtype (float32
    weights hold shares to about 1e-4 of that, not to 1e-10).
    """
    if not converged:
        return False
    cell_weight = to_numpy(group_sum(problem.cell_of_row, weights, problem.n_cells))
    # what the weights' dtype can hold: 1024 epsilons (2.3e-13 in float64)
    floor = 1024 * float(np.finfo(cell_weight.dtype).eps)
    cell_weight = cell_weight.astype(np.float64)
    total = cell_weight.sum()
    threshold = max(tol if tol > 0 else 1e-10, floor)
    base_mass = problem.cell_base / problem.cell_base.sum()
    for margin, codes in zip(problem.margins, problem.margin_codes):
        if is_numeric(margin):  # in units of the column's spread, as the fit measures
            _, spread = numeric_scaling(base_mass, codes)
            error = abs(float(cell_weight @ codes) / total - margin.mean) / spread
        else:
            shares = np.bincount(codes, cell_weight,
                                 minlength=margin.proportions.shape[0]) / total
            error = float(np.max(np.abs(shares - margin.proportions)))
        if not error <= threshold:  # NaN fails too
            warnings.warn(
                f"The raking steps met tol={threshold:g}, but the weights returned miss "
                f"{margin_label(margin.key)} by {error:.3g} (floating-point limits at "
                "this scale): not converged.", ConvergenceWarning)
            return False
    return True


def convergence_report(result, problem, base_mass, tol, bounds):
    """Why a fit fell short, in words; empty when nothing did.

    Parameters
    ----------
    result : RakingResult
    problem : CellProblem
    base_mass : ndarray of shape (n_cells,)
        Normalised base mass of the cells.
    tol : float
    bounds : tuple or None

    Returns
    -------
    message : str or None
        The warning text, None when the fit met its targets.
    reachable : bool or None
        Whether any weighting of the observed cells meets every margin; None
        when not decided (converged, or too many cells).
    """
    problems = []
    if result.starved_levels:
        j, level = result.starved_levels[0]
        margin = problem.margins[j]
        problems.append(
            f"level {level_repr(margin.levels[level])} of {margin_label(margin.key)} "
            "lost all its weight (other targets set to 0 every cell it has), so its "
            "target cannot be met"
        )
    if result.infeasible_levels:
        j, level = result.infeasible_levels[0]
        margin = problem.margins[j]
        problems.append(
            f"bounds {bounds} and margins cannot both hold: level "
            f"{level_repr(margin.levels[level])} of {margin_label(margin.key)} "
            "needs factors outside the bounds"
        )
    reachable = None
    if tol > 0 and not result.converged:
        reachable, vanish = reachability(
            base_mass, problem.margin_codes, [m.proportions for m in problem.margins],
            bounds,
        )
        residual = residual_text(problem.margins, result.errors[-1])
        message = (
            f"Raking did not reach tol={tol:g} in {result.n_iter} steps; "
            f"largest marginal error per margin: {residual}."
        )
        if reachable is False:
            message += (
                " No weighting of the observed cells"
                + (" within the bounds" if bounds else "")
                + " meets every margin (structural zeros or bounds too tight):"
                " the targets are unreachable."
            )
        elif reachable:
            if vanish.size:
                message += (
                    f" The targets are reachable only with {vanish.size} observed cell(s) "
                    f"at weight 0 ({_describe_cell(problem, vanish[0])}"
                    f"{', ...' if vanish.size > 1 else ''}): raking approaches that only "
                    "like 1/k and never reaches it; drop those rows or revise the targets."
                )
            else:
                message += " The targets are reachable: increase max_iter."
        else:
            message += (
                f" Whether they are reachable was not checked (more than "
                f"{MAX_CELLS_FOR_DIAGNOSIS:,} cells)."
            )
        problems.insert(0, message)
    if not problems:
        return None, reachable
    return " ".join(p[0].upper() + p[1:] for p in problems), reachable


def _describe_cell(problem, cell):
    """A cell as its levels: age='18-34', sex='F'."""
    return ", ".join(f"{margin_name(m.key)}={level_repr(m.levels[codes[cell]])}"
                     for m, codes in zip(problem.margins, problem.margin_codes))


def diagnostic_columns(problem, base_mass, cell_factors):
    """Per margin, the level statistics behind ``diagnostics_`` (cheap)."""
    columns = []
    n_rows = problem.cell_rows.sum()
    cell_rows = problem.cell_rows.astype(np.float64)  # once, not per margin
    weighted_mass = base_mass * cell_factors
    weighted_total = weighted_mass.sum()
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
        n_levels = margin.levels.shape[0]
        rows = np.bincount(code, cell_rows, minlength=n_levels)
        weighted = np.bincount(code, weighted_mass, minlength=n_levels) / weighted_total
        columns.append({
            "n_rows": rows.astype(np.int64),
            "sample_share": rows / n_rows,
            "base_share": np.bincount(code, base_mass, minlength=n_levels),
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


class DiagnosticsMixin:
    """The ``diagnostics_`` table of a fitted raking estimator."""

    @property
    def diagnostics_(self):
        """Per margin and level: rows, shares before and after, target, residual.

        A DataFrame with columns ``margin``, ``level``, ``n_rows``,
        ``sample_share`` (share of rows), ``base_share`` (share of the base
        weights), ``weighted_share`` (share of the balancing weights),
        ``target_share``, ``residual`` (weighted minus target) and ``factor``.
        A numeric target has one row, level ``"(total)"`` or ``"(mean)"``,
        whose shares are the column's means (its factor is NaN: see
        ``coef_``). Built on access from statistics kept at fit.
        """
        check_is_fitted(self, "factors_")
        return diagnostics_frame(self._margins, self._diagnostic_data, self.factors_)


class WeightColumnMixin(TransformerMixin):
    """``transform``: the weights of rows as one column named ``weight``.

    The host class computes weights in ``_weights(X, sample_weight, method)``.
    """

    def transform(self, X, sample_weight=None):
        """The weights of ``X`` as one column.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Rows with the balancing columns seen in fit.
        sample_weight : array-like of shape (n_samples,), default=None
            Base weights of these rows; 1 for every row when None.

        Returns
        -------
        weights : ndarray of shape (n_samples, 1)
            A DataFrame with one column ``weight`` after
            ``set_output(transform="pandas")``.

        Examples
        --------
        >>> import pandas as pd
        >>> import skbalance as skb
        >>> X = pd.DataFrame({"sex": ["F", "M", "M", "M"]})
        >>> bal = skb.MarginalBalancer(targets={"sex": {"F": .5, "M": .5}})
        >>> bal.set_output(transform="pandas").fit_transform(X)["weight"].tolist()
        [2.0, 0.6666666666666666, 0.6666666666666666, 0.6666666666666666]
        """
        return as_column(self._weights(X, sample_weight, "transform"))

    def fit_transform(self, X, y=None, sample_weight=None):
        """Fit, then return the training weights ``weights_`` as one column.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            The balancing columns.
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), default=None
            Nonnegative base weights.

        Returns
        -------
        weights : ndarray of shape (n_samples, 1)
            ``weights_`` as a column.

        Examples
        --------
        >>> import numpy as np
        >>> import skbalance as skb
        >>> skb.MarginalBalancer().fit_transform(np.array([[0], [1], [1]])).ravel().tolist()
        [1.5, 0.75, 0.75]
        """
        return as_column(self.fit(X, sample_weight=sample_weight).weights_)

    def get_feature_names_out(self, input_features=None):
        """The name of the output column: ``["weight"]``.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Ignored; present for API consistency.

        Returns
        -------
        feature_names_out : ndarray of str objects
            ``array(["weight"], dtype=object)``.

        Examples
        --------
        >>> import skbalance as skb
        >>> skb.MarginalBalancer().fit([[0], [1]]).get_feature_names_out().tolist()
        ['weight']
        """
        check_is_fitted(self, "factors_")
        return np.asarray(["weight"], dtype=object)
