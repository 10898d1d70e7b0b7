"""Bias-reduced linearization (CR2) and Bell-McCaffrey degrees of freedom.

With few clusters of unequal sizes, the linearized variance of a calibrated
estimate is biased down: each cluster's residuals were fitted in part by the
calibration (the leverage of its rows), and the largest clusters' most. Bell
and McCaffrey (2002) scale each cluster's residuals by ``(I - H_gg)^(-1/2)``,
``H_gg`` the cluster's block of the hat matrix of the regression behind the
residuals (the calibration variables, with stratum indicators), which makes
the variance unbiased when the rows' residuals are independent with equal
variance (the working model), and give the Satterthwaite degrees of freedom
of that variance under the same model.

Here the regression is the calibration's: the residuals of the influence
values on the calibration variables under the base weights ``d`` (R survey's
linearization of a calibrated estimate), each row contributing ``w e``. In
``u = D^(1/2) e``, ``e = D^(-1/2) S D^(1/2) z`` with ``S = I - Q Q'`` and ``Q
= D^(1/2) X L`` orthonormal, so that cluster ``g``'s block of ``S`` is ``I -
Q_g Q_g'``; its inverse square root acts on the span of ``Q_g`` only. Nothing
of size rows x rows is formed.
"""

from __future__ import annotations

import numpy as np

__all__ = ["bias_reduced_roots"]

# Leverage this close to 1 leaves no residual to scale: that direction is dropped.
_FULL_LEVERAGE = 1e-10


def _orthonormal_basis(X, base):
    """``Q = D^(1/2) X L`` with orthonormal columns spanning ``D^(1/2) X``."""
    root = np.sqrt(base)
    scaled = root[:, None] * X
    values, vectors = np.linalg.eigh(scaled.T @ scaled)
    keep = values > 1e-12 * max(values.max(), 1e-300)
    return scaled @ (vectors[:, keep] / np.sqrt(values[keep]))


def bias_reduced_roots(units, unit_stratum, keep, X, base, weights, influences, domains):
    """Every cluster's signed root of its part of the CR2 variance of every
    statistic, and the Bell-McCaffrey degrees of freedom of each.

    Parameters
    ----------
    units : ndarray of int of shape (n_rows,)
        First-stage unit of every row (rows with base weight only).
    unit_stratum : ndarray of int of shape (n_units,)
        Stratum of every unit.
    keep : ndarray of shape (n_units,)
        One minus every unit's sampling fraction.
    X : ndarray of shape (n_rows, p)
        The calibration variables (an intercept, every margin's indicators,
        numeric columns); collinear columns allowed.
    base, weights : ndarray of shape (n_rows,)
        Base weights ``d`` and weights ``w`` of the estimate.
    influences : list of ndarray of shape (n_rows,)
        Per statistic, the influence values ``z`` (the variance is that of
        ``sum w e``, ``e`` the residual of ``z``).
    domains : list of (ndarray of shape (n_rows,) or None)
        Per statistic, its domain indicator (the rows whose outcome the
        working model lets vary); None: every row.

    Returns
    -------
    roots : ndarray of shape (n_units, n_stats)
        ``sqrt(1 - f) t_g``, ``t_g`` the cluster's total of ``w`` times its
        adjusted residuals: their squares sum to the variance, ``R.T @ R`` is
        the covariance matrix.
    df : ndarray of shape (n_stats,)
        Bell and McCaffrey's degrees of freedom.
    """
    n_units = unit_stratum.shape[0]
    if np.ptp(unit_stratum) > 0:  # the strata centre the units: their indicators join X
        X = np.column_stack([X, np.eye(int(unit_stratum.max()) + 1)[unit_stratum[units]]])
    root = np.sqrt(base)
    Q = _orthonormal_basis(X, base)
    order = np.argsort(units, kind="stable")
    starts = np.searchsorted(units[order], np.arange(n_units + 1))
    v = weights / root  # t_g = v_g' A_g u_g
    residuals = [root * z - Q @ (Q.T @ (root * z)) for z in influences]
    n_stats = len(influences)
    totals = np.zeros((n_units, n_stats))
    spans, scales, r_parts = [], [], []
    for g in range(n_units):
        rows = order[starts[g]:starts[g + 1]]
        U, sigma, _ = np.linalg.svd(Q[rows], full_matrices=False)
        leverage = sigma**2
        # (I - U diag(leverage) U')^(-1/2) = I + U diag(scale - 1) U'
        scale = np.where(leverage < 1 - _FULL_LEVERAGE,
                         1 / np.sqrt(np.maximum(1 - leverage, _FULL_LEVERAGE)), 0.0)
        adjust = U.T @ v[rows]
        for k, u in enumerate(residuals):
            totals[g, k] = v[rows] @ u[rows] + adjust @ ((scale - 1) * (U.T @ u[rows]))
        spans.append(U)
        scales.append(scale)
        r_parts.append(v[rows] + U @ ((scale - 1) * adjust))  # r_g = A_g v_g on its rows
    roots = np.sqrt(keep)[:, None] * totals
    df = np.array([_bell_mccaffrey_df(order, starts, Q, base, keep, r_parts,
                                      None if d is None else np.asarray(d, dtype=np.float64))
                   for d in domains])
    return roots, df


def _bell_mccaffrey_df(order, starts, Q, base, keep, r_parts, domain):
    """``tr(G)^2 / tr(G G)``, ``G`` the Gram matrix of the clusters' linear
    forms in the outcome: ``a_g = sqrt(keep_g) ind D^(1/2) S r_g`` (``r_g``
    supported on cluster g), from products of size clusters x columns."""
    n_units = len(r_parts)
    weight = base if domain is None else base * domain  # ind * d
    m = np.zeros((n_units, Q.shape[1]))
    c = np.zeros((n_units, Q.shape[1]))
    own = np.zeros(n_units)
    for g in range(n_units):
        rows = order[starts[g]:starts[g + 1]]
        r = r_parts[g]
        c[g] = Q[rows].T @ r
        m[g] = Q[rows].T @ (weight[rows] * r)
        own[g] = weight[rows] @ (r * r)
    P = Q.T @ (weight[:, None] * Q)
    gram = np.diag(own) - m @ c.T - c @ m.T + c @ P @ c.T
    root_keep = np.sqrt(keep)
    gram *= root_keep[:, None] * root_keep[None, :]
    square = float(np.sum(gram * gram))
    return float(np.trace(gram) ** 2 / square) if square > 0 else np.inf
