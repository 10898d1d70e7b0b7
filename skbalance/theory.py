"""The variance of k-step balancing, on a joint probability table.

Functions of a joint probability table ``P`` (one axis per balancing
variable, entries summing to 1) and a function table ``h`` of the same shape:
the quantities of "The Benefits of Balance" (Liu, Mehta, Pal, Harchaoui,
NeurIPS 2024) in computable form.

* ``k`` counts single-margin balancing steps, the first axis first, then the
  axes in cyclic order. ``k = 0`` is the plain empirical mean.
* :func:`asymptotic_variance` is ``sigma_k^2``, the limit of ``n`` times the
  variance of the k-step balanced estimate of ``E_P[h]``.
* :func:`asymptotic_variance_limit` is ``sigma_inf^2``, the efficiency bound
  when every margin is known.

With two margins, the conditional-mean operators have the singular values of
``D_X^{-1/2} P D_Y^{-1/2}`` (the correspondence-analysis singular values);
``s_2`` is the maximal correlation of ``X`` and ``Y`` and ``1 - s_2`` the
spectral gap.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from array_api_compat import array_namespace, device, is_array_api_obj
from numpy.typing import ArrayLike

from ._problem import ipwi_residual, k_step_residual, level_means
from .kernels import rake_cells
from .utils._array_api import from_numpy, to_numpy
from .utils._validation import check_nonnegative_int

__all__ = [
    "asymptotic_variance",
    "asymptotic_variance_closed_form",
    "asymptotic_variance_limit",
    "balance_table",
    "dependence_table",
    "ipwi_variance",
    "random_table",
    "singular_functions",
    "singular_values",
    "sweep_contraction_rate",
    "variance_curve",
]

def _follows_input(function):
    """Tables are small: compute in NumPy, return arrays where P came from."""

    @functools.wraps(function)
    def wrapper(P, *args, **kwargs):
        if not is_array_api_obj(P) or isinstance(P, np.ndarray):
            return function(P, *args, **kwargs)
        xp, where, dtype = array_namespace(P), device(P), P.dtype
        args = [to_numpy(a) if is_array_api_obj(a) else a for a in args]
        result = function(to_numpy(P), *args, **kwargs)

        def back(value):
            if isinstance(value, np.ndarray):
                return from_numpy(value, xp, where, dtype)
            if isinstance(value, tuple):
                return tuple(back(v) for v in value)
            return value

        return back(result)

    return wrapper


def _check_table(P, name="P"):
    """A validated float copy of a joint probability table."""
    given = np.asarray(P)
    # Single-precision tables sum to 1 only to single precision.
    tolerance = 1e-5 if given.dtype == np.float32 else 1e-9
    P = np.array(given, dtype=np.float64)
    if P.ndim < 1 or P.size == 0:
        raise ValueError(f"{name} must be a non-empty table.")
    if not np.all(np.isfinite(P)) or np.any(P < 0):
        raise ValueError(f"{name} must be finite and nonnegative.")
    total = P.sum()
    if abs(total - 1.0) > tolerance:
        raise ValueError(f"{name} must sum to 1 (a probability table); it sums to {total:.12g}.")
    for axis in range(P.ndim):
        marginal = _marginal(P, axis)
        empty = np.flatnonzero(marginal <= 0)
        if empty.size:
            raise ValueError(
                f"{name} has no mass on level {int(empty[0])} of axis {axis}; drop that "
                "level (a zero row or column makes conditional means undefined)."
            )
    return P


def _check_function(h, P):
    h = np.array(h, dtype=np.float64)
    if h.shape != P.shape:
        raise ValueError(f"h must have the shape of P {P.shape}; got {h.shape}.")
    if not np.all(np.isfinite(h)):
        raise ValueError("h must be finite.")
    return h


def _marginal(P, axis):
    other = tuple(a for a in range(P.ndim) if a != axis)
    return P.sum(axis=other)


def _cells(P):
    """``P`` as a cell table: the mass of every cell, its level on every axis,
    and the number of levels of every axis (the shape the estimators use)."""
    codes = [index.ravel() for index in np.indices(P.shape)]
    return P.ravel(), codes, list(P.shape)


def _conditional_mean(P, g, axis):
    """E_P[g | the variable of ``axis``], at every cell of the table."""
    mass, codes, sizes = _cells(P)
    return level_means(mass, codes[axis], np.ravel(g), sizes[axis]).reshape(P.shape)


def _k_step_residual(P, g, k):
    """``C_k g`` on the table (the estimators' operator, on the table's cells)."""
    mass, codes, sizes = _cells(P)
    return k_step_residual(mass, codes, sizes, np.ravel(g), k).reshape(P.shape)


def _variance(P, g):
    """Var_P(g)."""
    mean = np.sum(P * g)
    return float(np.sum(P * (g - mean) ** 2))


def _two_way(P):
    if P.ndim != 2:
        raise ValueError(f"This needs a two-way table (two margins); P has {P.ndim} axes.")


@_follows_input
def singular_values(P: ArrayLike) -> Any:
    """Singular values of the conditional-mean operators of a two-way table.

    Parameters
    ----------
    P : array-like of shape (n_x, n_y)
        Joint probability table, every row and column with positive mass.

    Returns
    -------
    s : ndarray of shape (min(n_x, n_y),)
        Descending; ``s[0] == 1``, ``s[1]`` is the maximal correlation.

    Examples
    --------
    >>> from skbalance.theory import singular_values
    >>> singular_values([[0.3, 0.1], [0.1, 0.5]]).round(7).tolist()
    [1.0, 0.5833333]
    """
    return singular_functions(P)[0]


@_follows_input
def singular_functions(P: ArrayLike) -> tuple[Any, Any, Any]:
    """Singular values and singular functions of a two-way table.

    Parameters
    ----------
    P : array-like of shape (n_x, n_y)
        Joint probability table.

    Returns
    -------
    s : ndarray of shape (r,)
        Singular values, descending, ``r = min(n_x, n_y)``.
    alpha : ndarray of shape (n_x, r)
        ``alpha[:, j]`` is the j-th singular function of X,
        ``U[:, j] / sqrt(P_X)``; unit variance under ``P_X``, the first one
        constant 1.
    beta : ndarray of shape (n_y, r)
        The singular functions of Y, ``V[:, j] / sqrt(P_Y)``, with signs
        matching ``alpha`` (``E[alpha_j(X) beta_j(Y)] = s_j``).

    Examples
    --------
    >>> from skbalance.theory import singular_functions
    >>> s, alpha, beta = singular_functions([[0.3, 0.1], [0.1, 0.5]])
    >>> alpha[:, 0].round(12).tolist()
    [1.0, 1.0]
    """
    return _singular_decomposition(_check_table(P), full=False)


def _singular_decomposition(P, full):
    """SVD of D_X^{-1/2} P D_Y^{-1/2}, as functions; ``full`` completes the bases."""
    _two_way(P)
    p_x, p_y = P.sum(axis=1), P.sum(axis=0)
    M = P / np.sqrt(p_x)[:, None] / np.sqrt(p_y)[None, :]
    U, s, Vt = np.linalg.svd(M, full_matrices=full)
    alpha = U / np.sqrt(p_x)[:, None]
    beta = Vt.T / np.sqrt(p_y)[:, None]
    # Deterministic signs: alpha_j's largest-magnitude entry is positive
    # (so the constant function is +1); beta follows alpha.
    alpha_signs, beta_signs = _pivot_signs(alpha), _pivot_signs(beta)
    r = s.shape[0]
    beta_signs[:r] = alpha_signs[:r]  # paired functions flip together
    alpha, beta = alpha * alpha_signs, beta * beta_signs
    s = np.clip(s, 0.0, 1.0)
    return s, alpha, beta


def _pivot_signs(functions):
    """+1 or -1 per column, making its largest-magnitude entry positive."""
    pivot = np.argmax(np.abs(functions), axis=0)
    signs = np.sign(functions[pivot, np.arange(functions.shape[1])])
    signs[signs == 0] = 1.0
    return signs


@_follows_input
def asymptotic_variance(P: ArrayLike, h: ArrayLike, k: int) -> float:
    """``sigma_k^2``: n times the variance of the k-step balanced estimate.

    Computed by the recursion ``g = h - E[h]``, then for step ``k`` down to 1
    subtract ``E_P[g | margin of that step]``; ``sigma_k^2 = E_P[g^2]``.
    Works for any number of margins (one per axis of ``P``, cycled in order).

    Parameters
    ----------
    P : array-like
        Joint probability table, one axis per margin.
    h : array-like
        The function whose mean is estimated, same shape as ``P``.
    k : int
        Number of single-margin balancing steps (0 for the empirical mean).

    Returns
    -------
    float
        ``sigma_k^2``.

    See Also
    --------
    asymptotic_variance_closed_form : The two-margin closed form.

    Examples
    --------
    >>> from skbalance.theory import asymptotic_variance
    >>> P, h = [[0.3, 0.1], [0.1, 0.5]], [[1, 0], [0, 0]]
    >>> [round(asymptotic_variance(P, h, k), 8) for k in range(4)]
    [0.21, 0.075, 0.0515625, 0.04358724]
    """
    P = _check_table(P)
    h = _check_function(h, P)
    k = _check_steps(k)
    g = _k_step_residual(P, h - np.sum(P * h), k)
    return float(np.sum(P * g**2))


def _check_steps(k):
    return check_nonnegative_int(k, "k")


@_follows_input
def asymptotic_variance_closed_form(P: ArrayLike, h: ArrayLike, k: int) -> float:
    """``sigma_k^2`` from the singular decomposition (two margins).

    With singular values ``s_j`` and coefficients ``u_j = E[h alpha_j(X)]``,
    ``v_j = E[h beta_j(Y)]`` (``j >= 2``, bases completed with ``s_j = 0``)::

        sigma_k^2 = sigma_inf^2 + sum_j s_j^{2(k-1)} c_j^2 / (1 - s_j^2)

    with ``c_j = v_j - s_j u_j`` for odd ``k`` and ``u_j - s_j v_j`` for even
    ``k``. It is evaluated in the algebraically equal form
    ``sigma_0^2 - sum_j [u_j^2 + c_j^2 G_{k-1}(s_j^2)]`` (odd k; swap u and v
    for even k), ``G_m(x) = 1 + x + ... + x^{m-1}``, which has no division by
    ``1 - s_j^2`` and so stays accurate when ``s_2`` is close to 1. It equals
    :func:`asymptotic_variance`, by an independent computation.

    Parameters
    ----------
    P : array-like of shape (n_x, n_y)
        Joint probability table.
    h : array-like of shape (n_x, n_y)
        The function whose mean is estimated.
    k : int
        Number of balancing steps.

    Returns
    -------
    float
        ``sigma_k^2``, from the closed form.

    Examples
    --------
    >>> from skbalance.theory import asymptotic_variance_closed_form
    >>> round(asymptotic_variance_closed_form([[0.3, 0.1], [0.1, 0.5]],
    ...                                       [[1, 2], [3, 5]], 3), 8)
    0.08218356
    """
    P = _check_table(P)
    h = _check_function(h, P)
    k = _check_steps(k)
    s, u, v, sigma0 = _singular_coefficients(P, h)
    if k == 0:
        return sigma0
    first, second = (u, v) if k % 2 else (v, u)
    c = second - s * first
    geometric = np.zeros_like(s)
    power = np.ones_like(s)
    for _ in range(k - 1):
        geometric += power
        power *= s**2
    return float(sigma0 - np.sum(first**2 + c**2 * geometric))


def _singular_coefficients(P, h):
    """Singular values and the coefficients u_j, v_j of h (zero-padded).

    h is centred first, so the constant functions get u_1 = v_1 = 0.
    """
    s, alpha, beta = _singular_decomposition(P, full=True)
    # Centring h gives the constant function a zero coefficient whatever
    # basis the SVD picks for s = 1 (which is not unique when s_2 = 1 too).
    centred = h - np.sum(P * h)
    u = alpha.T @ (P * centred).sum(axis=1)
    v = beta.T @ (P * centred).sum(axis=0)
    sigma0 = float(np.sum(P * centred**2))
    # Complete bases of L2(P_X) and L2(P_Y); singular values beyond
    # min(n_x, n_y) are 0, so u_j and v_j pair up arbitrarily there.
    r = max(P.shape)
    s_full = np.concatenate([s, np.zeros(r - s.shape[0])])
    u_full = np.zeros(r)
    v_full = np.zeros(r)
    u_full[: u.shape[0]] = u
    v_full[: v.shape[0]] = v
    return s_full, u_full, v_full, sigma0


def _additive_basis(P):
    """Orthonormal basis of the additive functions, in sqrt(P)-weighted
    coordinates on the support of P (one column per basis function)."""
    support = P > 0
    root = np.sqrt(P[support])
    index = np.nonzero(support)
    columns = [np.ones(root.shape[0])]
    for axis, size in enumerate(P.shape):
        one_hot = np.zeros((root.shape[0], size))
        one_hot[np.arange(root.shape[0]), index[axis]] = 1.0
        columns.append(one_hot)
    design = np.column_stack(columns) * root[:, None]
    U, singular, _ = np.linalg.svd(design, full_matrices=False)
    rank = int(np.sum(singular > singular[0] * max(design.shape) * np.finfo(float).eps))
    return U[:, :rank]


def _additive_projector(P):
    """P-weighted least-squares projection on additive functions.

    Returns a function mapping a table ``f`` to ``Pi f``, the closest
    ``f_1(x_1) + ... + f_M(x_M)`` in ``L2(P)`` (on the support of P).
    """
    support = P > 0
    root = np.sqrt(P[support])
    basis = _additive_basis(P)

    def project(f):
        projected = np.zeros_like(f)
        projected[support] = basis @ (basis.T @ (f[support] * root)) / root
        return projected

    return project


def _additive_residual(P, h):
    """h minus its P-weighted least-squares projection on additive functions."""
    return h - _additive_projector(P)(h)


@_follows_input
def asymptotic_variance_limit(P: ArrayLike, h: ArrayLike) -> float:
    """``sigma_inf^2``: the variance after infinitely many balancing steps.

    ``Var_P(h - Pi h)``, with ``Pi`` the P-weighted least-squares projection
    on additive functions ``f_1(x_1) + ... + f_M(x_M)``: the efficiency bound
    for ``E[h]`` when every margin is known. Any number of margins.

    Parameters
    ----------
    P : array-like
        Joint probability table, one axis per margin.
    h : array-like
        The function whose mean is estimated, same shape as ``P``.

    Returns
    -------
    float
        ``sigma_inf^2``.

    Examples
    --------
    >>> from skbalance.theory import asymptotic_variance_limit
    >>> round(asymptotic_variance_limit([[0.3, 0.1], [0.1, 0.5]], [[1, 0], [0, 0]]), 10)
    0.0394736842
    """
    P = _check_table(P)
    h = _check_function(h, P)
    return _variance(P, _additive_residual(P, h))


@_follows_input
def ipwi_variance(P: ArrayLike, h: ArrayLike) -> float:
    """First-order variance of the importance-weighted (IPWI) estimator.

    Weighting every row by the product of its marginal ratios at once,
    ``P_X / P_{n,X} * P_Y / P_{n,Y}``, has variance
    ``Var_P(h - E[h|X] - E[h|Y])`` (extended to every axis of ``P``). It is
    never below ``sigma_inf^2`` and can exceed ``sigma_1^2``.

    Parameters
    ----------
    P : array-like
        Joint probability table.
    h : array-like
        The function whose mean is estimated.

    Returns
    -------
    float
        The first-order variance of IPWI (times n).

    Examples
    --------
    >>> from skbalance.theory import ipwi_variance
    >>> round(ipwi_variance([[0.3, 0.1], [0.1, 0.5]], [[1, 0], [0, 0]]), 10)
    0.0975
    """
    P = _check_table(P)
    h = _check_function(h, P)
    mass, codes, sizes = _cells(P)
    return _variance(P, ipwi_residual(mass, codes, sizes, h.ravel()).reshape(P.shape))


@_follows_input
def variance_curve(P: ArrayLike, h: ArrayLike, max_k: int) -> tuple[Any, float]:
    """``sigma_k^2`` for ``k = 0..max_k`` and the limit ``sigma_inf^2``.

    Parameters
    ----------
    P : array-like
        Joint probability table.
    h : array-like
        The function whose mean is estimated.
    max_k : int
        Largest number of steps.

    Returns
    -------
    curve : ndarray of shape (max_k + 1,)
        ``curve[k] = sigma_k^2``. Not monotone in ``k`` across parities.
    limit : float
        ``sigma_inf^2``.

    Examples
    --------
    >>> from skbalance.theory import variance_curve
    >>> curve, limit = variance_curve([[0.3, 0.1], [0.1, 0.5]], [[1, 2], [3, 5]], 3)
    >>> curve.round(8).tolist()
    [3.21, 0.40833333, 0.38333333, 0.08218356]
    """
    P = _check_table(P)
    h = _check_function(h, P)
    max_k = _check_steps(max_k)
    curve = np.empty(max_k + 1)
    g = h - np.sum(P * h)
    # sigma_k needs the projections applied from step k down to 1, so each k
    # restarts; the cost is O(max_k^2) table passes, fine for curves.
    for k in range(max_k + 1):
        curve[k] = np.sum(P * _k_step_residual(P, g, k) ** 2)
    return curve, _variance(P, _additive_residual(P, h))


@_follows_input
def sweep_contraction_rate(P: ArrayLike) -> float:
    """Per-sweep rate at which ``sigma_k^2`` approaches its limit.

    The spectral radius of one sweep of the cyclic projections
    ``(I - E[.|x_M]) ... (I - E[.|x_1])`` on the additive functions
    ``f_1(x_1) + ... + f_M(x_M)``: the orthogonal complement of the functions
    that every sweep leaves unchanged, and a space the sweep maps into
    itself. The sweep is written as a ``d x d`` matrix on an orthonormal
    basis of that space (``d = 1 + sum_j (L_j - 1)`` at most) and its
    eigenvalues are computed exactly; plain power iteration stalls on the
    complex eigenvalue pairs that appear with three or more margins. For two
    margins the rate is ``s_2^2``.

    Parameters
    ----------
    P : array-like
        Joint probability table, one axis per margin.

    Returns
    -------
    float
        The spectral radius of one sweep on the additive functions.

    Examples
    --------
    >>> from skbalance.theory import sweep_contraction_rate, dependence_table
    >>> round(sweep_contraction_rate(dependence_table([0.5, 0.3, 0.2], 0.6)), 12)
    0.36
    """
    P = _check_table(P)
    support = P > 0
    root = np.sqrt(P[support])
    basis = _additive_basis(P)
    columns = []
    for coordinates in basis.T:
        f = np.zeros_like(P)
        f[support] = coordinates / root
        for axis in range(P.ndim):
            f = f - _conditional_mean(P, f, axis)
        columns.append(basis.T @ (f[support] * root))
    sweep = np.column_stack(columns) if columns else np.zeros((0, 0))
    eigenvalues = np.linalg.eigvals(sweep)
    return float(np.max(np.abs(eigenvalues))) if eigenvalues.size else 0.0


@_follows_input
def balance_table(P0: ArrayLike, *marginals_and_k: Any) -> Any:
    """The table after ``k`` balancing steps: ``P^(k)`` of the theory.

    Called as ``balance_table(P0, px, py, k)`` for a two-way table, and with
    one target marginal per axis in general: ``balance_table(P0, p1, ..., pM, k)``.

    Parameters
    ----------
    P0 : array-like
        Starting nonnegative table (normalised to sum 1).
    *marginals_and_k : array-like, then int
        The target marginal of every axis, in order (each summing to 1),
        then ``k``, the number of single-margin steps (axis 0 first, cyclic).

    Returns
    -------
    ndarray
        ``P^(k)``, same shape as ``P0``.

    Examples
    --------
    >>> from skbalance.theory import balance_table
    >>> balance_table([[0.3, 0.1], [0.1, 0.5]], [0.5, 0.5], [0.5, 0.5], 1).round(4).tolist()
    [[0.375, 0.125], [0.0833, 0.4167]]
    """
    P = np.array(P0, dtype=np.float64)
    if not np.all(np.isfinite(P)) or np.any(P < 0) or P.sum() <= 0:
        raise ValueError("P0 must be finite, nonnegative and not all zero.")
    if len(marginals_and_k) != P.ndim + 1:
        raise ValueError(
            f"Give one target marginal per axis of P0 ({P.ndim}), then k; got "
            f"{len(marginals_and_k)} arguments after P0."
        )
    *targets, k = marginals_and_k
    targets = [np.asarray(t, dtype=np.float64) for t in targets]
    for axis, t in enumerate(targets):
        if t.shape != (P.shape[axis],):
            raise ValueError(f"Target of axis {axis} must have shape ({P.shape[axis]},).")
    P = P / P.sum()
    k = _check_steps(k)
    mass, codes, _ = _cells(P)
    result = rake_cells(mass, codes, targets, max_iter=k, tol=0)
    if result.starved_levels:
        axis, level = result.starved_levels[0]
        raise ValueError(
            f"Missing mass: level {level} of axis {axis} has a positive target but no "
            "mass."
        )
    return (mass * result.cell_factors).reshape(P.shape)


def dependence_table(p: ArrayLike, s: float) -> np.ndarray:
    """Build ``P_s = (1 - s) p p^T + s diag(p)``, a table whose ``s_2`` is exactly ``s``.

    Parameters
    ----------
    p : array-like of shape (m,)
        Common marginal of X and Y (positive, summing to 1).
    s : float in [0, 1)
        Dependence level; ``s_2(P_s) = s`` and all nontrivial singular values
        equal ``s``.

    Returns
    -------
    ndarray of shape (m, m)
        The joint probability table.

    Examples
    --------
    >>> from skbalance.theory import dependence_table, singular_values
    >>> float(round(singular_values(dependence_table([0.2, 0.3, 0.5], 0.4))[1], 12))
    0.4
    """
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 1 or np.any(p <= 0) or abs(p.sum() - 1) > 1e-9:
        raise ValueError("p must be a positive probability vector.")
    if not 0 <= s < 1:
        raise ValueError(f"s must lie in [0, 1); got {s!r}.")
    return (1 - s) * np.outer(p, p) + s * np.diag(p)


def random_table(shape: tuple[int, ...], *, concentration: float = 1.0,
                 random_state: Any = None) -> np.ndarray:
    """A random joint probability table with positive entries (Dirichlet).

    Parameters
    ----------
    shape : tuple of int
        One axis per margin.
    concentration : float, default=1.0
        Dirichlet concentration; small values give near-degenerate tables.
    random_state : int or numpy.random.Generator, optional
        Seed.

    Returns
    -------
    ndarray of the given shape
        Positive entries summing to 1.

    Examples
    --------
    >>> from skbalance.theory import random_table
    >>> random_table((2, 3), random_state=0).shape
    (2, 3)
    """
    rng = np.random.default_rng(random_state)
    size = int(np.prod(shape))
    table = rng.dirichlet(np.full(size, float(concentration))).reshape(shape)
    table = np.maximum(table, np.finfo(float).tiny)  # keep every cell positive
    return table / table.sum()
