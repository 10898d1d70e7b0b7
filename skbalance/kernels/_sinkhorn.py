"""Matrix balancing (Sinkhorn-Knopp) on dense, batched and sparse kernels.

A kernel ``K`` (m x l, or a batch B x m x l) is balanced to a row marginal
``a`` and a column marginal ``b`` by alternating single-margin steps, rows
first: ``u = a / (K v)``, then ``v = b / (K^T u)``. After ``k`` steps the plan
is ``diag(u) K diag(v)``, the paper's ``P^(k)`` (before any step, ``K``
rescaled to the total mass).

Two paths:

* scaling (``logits=False``): two matrix-vector products per full iteration
  and nothing else of the matrix's size; each product also gives the
  marginal error after the step, so checking ``tol`` is free.
* logits (``logits=True``, ``K`` holds log-kernel values such as
  ``scores / eps``): stabilised scaling. The plan is kept as
  ``exp(K + f + g) * u * v``; the scalings ``u, v`` are absorbed into the
  log-potentials ``f, g`` whenever they leave ``[1/tau, tau]`` (one pass of
  ``exp`` over the matrix), and a step whose sums underflow is redone in the
  log domain (log-sum-exp). Nothing overflows or underflows, in float32 or
  float64. With ``tol > 0``, epsilon scaling warm-starts the potentials from
  larger temperatures so that small temperatures still converge. That path
  lives in ``_sinkhorn_log.py``; this module validates, dispatches and runs
  the scaling path.

``max_iter`` counts single-margin steps and ``tol`` bounds the largest
absolute marginal error, in the units of ``a`` and ``b`` (proportions when
they sum to 1, the default), as for raking.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any, Literal

import numpy as np
from array_api_compat import array_namespace, is_numpy_namespace

from ..utils._array_api import float_dtype, logsumexp
from ..utils._threads import one_blas_thread
from ..utils._validation import check_nonnegative_int
from ..utils._warnings import warn
from ._matvec import divide_or_zero, is_sparse, kernel_products, max_abs
from ._sinkhorn_log import WORK_PER_STEP, centre_logits, logit_offsets, logits_path

__all__ = ["SinkhornResult", "sinkhorn"]


class _ConvergenceWarning(UserWarning):
    """Placeholder replaced by sklearn's ConvergenceWarning at import time."""


try:  # the kernels avoid sklearn imports; only the warning class is shared
    from sklearn.exceptions import ConvergenceWarning
except ImportError:  # pragma: no cover
    ConvergenceWarning = _ConvergenceWarning


class SinkhornResult:
    """Outcome of :func:`sinkhorn`.

    Parameters
    ----------
    u, v : arrays of shape (..., m) and (..., l)
        Scalings: the plan is ``u[:, None] * K * v[None, :]``. In the logits
        path they are log-scalings, and the plan is ``exp(Kc + u[:, None] +
        v[None, :])``, ``Kc`` being ``K`` minus each column's maximum, then
        each row's (the same plan, free of offsets like -1e20 that would
        cancel the potentials' digits; a k-step plan starts from potentials
        that hold them).
    n_iter : int
        Single-margin steps taken (all temperatures, with epsilon scaling).
    converged : bool
        Whether the plan returned meets ``tol`` (with ``tol=0``: its error is
        at most 1e-10 of the total mass after ``max_iter`` steps).
    marginal_error : ndarray of shape (n_iter + n_newton + 1,)
        Largest absolute marginal error, relative to the problem's total mass
        (the largest over a batch), before any step, then after each step and
        each Newton iteration in the order they ran (with epsilon scaling, at
        the temperature of their stage). The last entry is measured on the
        plan returned.
    logits : bool
        Whether ``u`` and ``v`` are log-scalings.
    n_newton : int, default=0
        Newton iterations on the dual kept in a logits fit with epsilon
        scaling (see :func:`sinkhorn`).
    kernel : array or sparse matrix, default=None
        The balanced kernel (centred logits in the logits path), from which
        ``plan`` is computed on first access.
    n_matvec : int, default=0
        The work done, in passes over the kernel (mat-vec equivalents: a
        matrix-vector product, a row or column sum, an ``exp`` or a
        log-sum-exp over the matrix), including checking the plan returned.
        Independent of the machine, unlike seconds.

    Examples
    --------
    >>> import numpy as np
    >>> from skbalance import sinkhorn
    >>> result = sinkhorn(np.ones((2, 3)), max_iter=2, tol=0)
    >>> result.n_iter, result.plan.sum().round(12)
    (2, np.float64(1.0))
    """

    def __init__(self, u: Any, v: Any, n_iter: int, converged: bool, marginal_error: Any,
                 logits: bool, n_newton: int = 0, kernel: Any = None,
                 n_matvec: int = 0) -> None:
        self.u, self.v = u, v
        self.n_iter, self.converged = n_iter, converged
        self.marginal_error, self.logits = marginal_error, logits
        self.n_newton, self.n_matvec = n_newton, n_matvec
        self._kernel, self._plan = kernel, None

    @property
    def plan(self) -> Any:
        """The balanced matrix, computed on first access."""
        if self._plan is None:
            self._plan = _plan(self._kernel, self.u, self.v, self.logits)
        return self._plan

    def __repr__(self):
        return (f"SinkhornResult(n_iter={self.n_iter}, converged={self.converged}, "
                f"logits={self.logits}, n_newton={self.n_newton})")


def _plan(K, u, v, logits):
    if is_sparse(K):
        from scipy import sparse

        if logits:
            raise ValueError("Sparse kernels take the scaling path only.")
        return sparse.diags(np.asarray(u)) @ K @ sparse.diags(np.asarray(v))
    xp = array_namespace(K)
    if logits:
        return xp.exp(K + u[..., :, None] + v[..., None, :])
    if isinstance(K, np.ndarray):
        # The same products in place: one temporary of K's size, not two (a
        # third less memory traffic; u K equals K u exactly).
        plan = K * u[..., :, None]
        plan *= v[..., None, :]
        return plan
    return u[..., :, None] * K * v[..., None, :]


# ---------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------

def _check_marginal(xp, marginal, size, batch_shape, dtype, name, device):
    if marginal is None:
        return xp.full(batch_shape + (size,), 1.0 / size, dtype=dtype, device=device)
    marginal = xp.asarray(marginal, dtype=dtype, device=device)
    if marginal.shape[-1:] != (size,):
        raise ValueError(
            f"Marginal {name} must have length {size} (the kernel's "
            f"{'rows' if name == 'a' else 'columns'}); got shape {tuple(marginal.shape)}."
        )
    if not bool(xp.all(xp.isfinite(marginal))) or bool(xp.any(marginal < 0)):
        raise ValueError(f"Marginal {name} must be finite and nonnegative.")
    return xp.broadcast_to(marginal, batch_shape + (size,))


def _check_logit_range(xp, K, largest, smallest):
    """-inf entries mask; the finite ones must span a range float can hold."""
    if not math.isfinite(smallest):  # masked entries: the range of the others
        finite = xp.where(xp.isfinite(K), K, xp.full_like(K, largest))
        smallest = float(xp.min(finite))
    with np.errstate(over="ignore"):
        spread = np.float64(largest) - np.float64(smallest)
    if not math.isfinite(float(spread)):
        raise ValueError(
            f"The logits span from {smallest:.3g} to {largest:.3g}, more than float "
            "can hold as a difference: shift or rescale them."
        )


def _validate(K, a, b, logits):
    """Kernel namespace and broadcast marginals, with clear errors."""
    shape = tuple(getattr(K, "shape", ()))
    if len(shape) >= 2 and 0 in shape:
        raise ValueError(f"K is empty (shape {shape}): Sinkhorn needs at least one row and "
                         "one column.")
    if is_sparse(K):
        if logits:
            raise ValueError("Sparse kernels take the scaling path only (logits=False).")
        K = K.tocsr().astype(np.float64) if K.dtype.kind != "f" else K.tocsr()
        data = K.data
        if not np.all(np.isfinite(data)):
            raise ValueError("K contains NaN or Inf.")
        if np.any(data < 0):
            raise ValueError("K must be nonnegative (pass logits=True for log-kernels).")
        xp, batch_shape, device = np, (), None
    else:
        xp = array_namespace(K)
        if K.ndim not in (2, 3):
            raise ValueError(f"K must be 2-D (m, l) or 3-D (B, m, l); got {K.ndim}-D.")
        K = xp.astype(K, float_dtype(xp, K), copy=False)
        # Reductions only (min and max propagate NaN): no temporary of K's size.
        smallest = float(xp.min(K))
        largest = float(xp.max(K)) if logits else 0.0
        if math.isnan(smallest) or not math.isfinite(largest) or (
            not logits and not math.isfinite(smallest)
        ):
            raise ValueError("K contains NaN or Inf" + (" (-inf logits mask entries; "
                             "+inf has no meaning)." if logits else "."))
        if not logits and smallest < 0:
            raise ValueError("K must be nonnegative (pass logits=True for log-kernels).")
        if logits:
            _check_logit_range(xp, K, largest, smallest)
        batch_shape = tuple(K.shape[:-2])
        device = getattr(K, "device", None)
    m, l = K.shape[-2], K.shape[-1]
    a = _check_marginal(xp, a, m, batch_shape, K.dtype, "a", device)
    b = _check_marginal(xp, b, l, batch_shape, K.dtype, "b", device)
    if logits and not math.isfinite(smallest):  # masks: every marginal needs an entry
        row_max, col_max = xp.max(K, axis=-1), xp.max(K, axis=-2)
        if bool(xp.any(xp.isinf(row_max) & (a > 0))):
            raise ValueError("A row of K is all zero (every logit -inf) but its marginal "
                             "in a is positive.")
        if bool(xp.any(xp.isinf(col_max) & (b > 0))):
            raise ValueError("A column of K is all zero (every logit -inf) but its "
                             "marginal in b is positive.")
    with np.errstate(over="ignore"):  # an overflowing total is reported just below
        total_a, total_b = xp.sum(a, axis=-1), xp.sum(b, axis=-1)
    if not (math.isfinite(float(xp.max(total_a))) and math.isfinite(float(xp.max(total_b)))):
        raise ValueError("The marginals sum to more than float can hold: rescale a and b "
                         "(the plan only depends on their proportions and total).")
    if bool(xp.any(total_a <= 0)) or bool(
        xp.any(xp.abs(total_a - total_b) > 1e-6 * total_a)
    ):
        raise ValueError(
            "Marginals a and b must have the same positive total (within a relative "
            f"1e-6); they sum to {float(xp.max(total_a)):.8g} and "
            f"{float(xp.max(total_b)):.8g}."
        )
    return K, a, b, xp


# ---------------------------------------------------------------------------
# products
# ---------------------------------------------------------------------------

def _check_support(rows, cols, a, b, xp):
    if not math.isfinite(float(xp.sum(rows))):
        raise ValueError("K contains NaN or Inf.")
    if bool(xp.any((rows <= 0) & (a > 0))):
        raise ValueError("A row of K is all zero but its marginal in a is positive.")
    if bool(xp.any((cols <= 0) & (b > 0))):
        raise ValueError("A column of K is all zero but its marginal in b is positive.")


class _Residual:
    """``max |scale * product - target|`` with reusable NumPy buffers."""

    def __init__(self, xp, like_a, like_b):
        self.xp = xp
        self.numpy = is_numpy_namespace(xp)
        if self.numpy:
            self.buffers = {id(like_a): np.empty_like(like_a),
                            id(like_b): np.empty_like(like_b)}

    def __call__(self, scale, product, target):
        if not self.numpy:
            return max_abs(self.xp, scale * product - target)
        buffer = self.buffers.get(id(target))
        if buffer is None or target.size == 0:
            return max_abs(self.xp, scale * product - target)
        np.multiply(scale, product, out=buffer)
        np.subtract(buffer, target, out=buffer)
        np.abs(buffer, out=buffer)
        return float(buffer.max())


def _unit_start(rows, cols, a, b, xp):
    """k = 0 from K's row and column sums: K rescaled to the total mass.

    Returns the scalings ``u, v`` and the products ``K v`` and ``K^T u``.
    """
    _check_support(rows, cols, a, b, xp)
    scale = xp.sum(a, axis=-1, keepdims=True) / xp.sum(rows, axis=-1, keepdims=True)
    return xp.ones_like(a) * scale, xp.ones_like(b), rows, cols * scale


def _scaling_path(K, a, b, xp, max_iter, tol, lean=True):
    """Plain scaling steps, rows first.

    Returns ``u, v, n_iter, errors``, the last error that of the plan: the
    products of the last steps are those of the final ``u`` and ``v`` (each
    step refreshes the product of the scaling it changed), so the plan's row
    and column sums ``u K v`` and ``v K^T u`` need no new pass.
    """
    if lean and tol == 0 and isinstance(K, np.ndarray) and K.dtype == np.float64:
        if K.ndim == 3:
            return _batch_by_batch(K, a, b, xp, max_iter)
        return _fixed_steps(K, a, b, max_iter)
    matvec, rmatvec = kernel_products(K, xp)
    # The first products double as the support check and the k = 0 error.
    rows, cols = matvec(xp.ones_like(b)), rmatvec(xp.ones_like(a))
    u, v, Kv, Ktu = _unit_start(rows, cols, a, b, xp)  # then rows first
    residual = _Residual(xp, a, b)
    errors = [max(residual(u, Kv, a), residual(v, Ktu, b))]
    # Rows or columns of K that are all zero (with a zero target) would give
    # 0 / 0; only then is the slower, guarded division needed.
    guarded = bool(xp.any(rows <= 0)) or bool(xp.any(cols <= 0))
    divide = (lambda t, c: divide_or_zero(xp, t, c)) if guarded else (lambda t, c: t / c)
    n_iter = 0
    while n_iter < max_iter and not (tol > 0 and errors[-1] <= tol):
        if n_iter % 2 == 0:
            u = divide(a, Kv)
            Ktu = rmatvec(u)
            errors.append(residual(v, Ktu, b))  # rows are exact now
        else:
            v = divide(b, Ktu)
            Kv = matvec(v)
            errors.append(residual(u, Kv, a))
        n_iter += 1
    errors[-1] = max(max_abs(xp, u * Kv - a), max_abs(xp, v * Ktu - b))  # the plan's
    return u, v, n_iter, errors


def _batch_by_batch(K, a, b, xp, max_iter):
    """The k steps of a NumPy batch, one problem at a time.

    Each problem's steps only involve its own matrix, so running them one
    problem after another gives the same numbers while each matrix stays in
    cache for all its steps (sweeping the whole batch at every step is
    memory-bound). The error history is the largest over the batch.
    """
    parts = [_fixed_steps(K[i], a[i], b[i], max_iter) for i in range(K.shape[0])]
    u = np.stack([part[0] for part in parts])
    v = np.stack([part[1] for part in parts])
    errors = np.max(np.array([part[3] for part in parts]), axis=0).tolist()
    return u, v, max_iter, errors


def _fixed_steps(K, a, b, max_iter):
    """``_scaling_path`` with ``tol=0`` for one dense NumPy matrix, lean.

    The same operations in the same order (the same numbers), with nothing
    else inside the loop: the products of every step are kept, and the
    error history is computed from them at the end, in bulk.
    """
    rows, cols = K @ np.ones_like(b), np.ones_like(a) @ K
    u, v, Kv, Ktu = _unit_start(rows, cols, a, b, np)
    if (rows <= 0).any() or (cols <= 0).any():  # zero lines: the guarded general path
        return _scaling_path(K, a, b, np, max_iter, 0, lean=False)
    first = max(float(np.abs(u * Kv - a).max()), float(np.abs(v * Ktu - b).max()))
    n_row_steps, n_col_steps = (max_iter + 1) // 2, max_iter // 2
    # Every step writes its scaling and product straight into a row of the
    # history (no copies): row step k makes us[k] and Ktus[k] from vs[k]
    # (the v before it), column step k makes vs[k + 1] and Kvs[k].
    us, Ktus = np.empty((n_row_steps, a.shape[0])), np.empty((n_row_steps, b.shape[0]))
    vs, Kvs = np.empty((n_col_steps + 1, b.shape[0])), np.empty((n_col_steps, a.shape[0]))
    vs[0] = v
    divide, matmul = np.divide, np.matmul  # out= given by position: the fastest call
    with np.errstate(invalid="ignore"):  # see _matvec._quiet
        for step, (u, Ktu) in enumerate(zip(us, Ktus)):
            divide(a, Kv, u)
            matmul(u, K, Ktu)
            if step < n_col_steps:
                v = vs[step + 1]
                divide(b, Ktu, v)
                Kv = matmul(K, v, Kvs[step])
    errors = np.empty(max_iter + 1)
    errors[0] = first
    errors[1::2] = np.abs(vs[:n_row_steps] * Ktus - b).max(axis=1) if n_row_steps else []
    errors[2::2] = np.abs(us[:n_col_steps] * Kvs - a).max(axis=1) if n_col_steps else []
    errors[-1] = max(float(np.abs(u * Kv - a).max()), float(np.abs(v * Ktu - b).max()))
    return u.copy(), v.copy(), max_iter, errors.tolist()  # not views that hold the history


def sinkhorn(K: Any, a: Any = None, b: Any = None, *, max_iter: int = 1000,
             tol: float | None = None, logits: bool = False,
             epsilon_scaling: bool | Literal["auto"] = "auto") -> SinkhornResult:
    """Balance a nonnegative matrix to given row and column marginals.

    Parameters
    ----------
    K : array of shape (m, l) or (B, m, l), or a scipy.sparse matrix
        The kernel (nonnegative), or log-kernel values with ``logits=True``.
        Any Array API array (NumPy, CuPy, torch via array-api-compat);
        results stay in its namespace and on its device.
    a : array of shape (m,) or (B, m), optional
        Row marginal; uniform ``1/m`` by default.
    b : array of shape (l,) or (B, l), optional
        Column marginal, with the same total as ``a``; uniform by default.
    max_iter : int, default=1000
        Largest number of single-margin steps (rows first, as the paper's
        ``k``; one full Sinkhorn iteration is 2 steps). In the logits path with
        ``tol > 0`` it also bounds the work: at most about 10 kernel passes
        per allowed step, Newton's conjugate gradients included
        (``n_matvec``), and steps stop early once Newton has failed and they
        no longer cut the error (it is then at what float resolves); the
        ConvergenceWarning says which.
    tol : float or None, default=None
        Stop after the first step whose largest absolute marginal error,
        relative to the total mass (``sum(a)``), is at most ``tol``; ``tol=0``
        runs exactly ``max_iter`` steps. None: 1e-9 in float64, 1e-5 in
        float32 (what the dtype can reach).
    logits : bool, default=False
        ``K`` holds log-kernel values; use the stabilised path.
    epsilon_scaling : bool or "auto", default="auto"
        In the logits path, first balance the logits scaled down (larger
        temperatures) and warm-start from there; 2-D problems finish each
        temperature with Newton steps on the dual (conjugate gradients on
        kernel products; with NumPy preconditioned by the sparse LU of the
        plan's largest entries). "auto": when ``tol > 0`` (``tol=0`` asks
        for the plain k-step plan).

    Returns
    -------
    SinkhornResult
        ``u``, ``v``, ``n_iter``, ``converged``, ``marginal_error`` and the
        lazily computed ``plan``.

    Examples
    --------
    >>> import numpy as np
    >>> from skbalance import sinkhorn
    >>> K = np.array([[0.3, 0.1], [0.1, 0.5]])
    >>> result = sinkhorn(K, max_iter=2, tol=0)
    >>> result.plan.round(4).tolist()
    [[0.4091, 0.1154], [0.0909, 0.3846]]
    >>> sinkhorn(np.log(K), logits=True, tol=1e-12).plan.sum(axis=1).round(10).tolist()
    [0.5, 0.5]
    """
    max_iter = check_nonnegative_int(max_iter, "max_iter")
    if tol is not None and (isinstance(tol, bool) or not isinstance(tol, Real)
                            or not 0 <= tol < math.inf):
        raise ValueError(f"tol must be a nonnegative finite number; got {tol!r}.")
    K, a, b, xp = _validate(K, a, b, logits)
    if tol is None:  # what the dtype can reach
        tol = 1e-9 if K.dtype == xp.float64 else 1e-5
    # Solve at unit mass, then give the mass back to the row scalings: the same
    # plan, with potentials free of log(mass) (which epsilon scaling multiplies).
    mass = xp.sum(a, axis=-1, keepdims=True)
    unit_a, unit_b = a / mass, b / mass
    with one_blas_thread():  # vector work (see utils._threads)
        initial = offsets = None
        if logits:
            if tol > 0:  # only the balanced limit is free of row and column offsets
                initial = _initial_error(K, unit_a, unit_b, xp)  # the user's problem, k = 0
                K = centre_logits(xp, K)  # with the error: 8 passes
            else:  # a k-step plan keeps them: in the starting potentials
                K, *offsets = logit_offsets(xp, K)
            use_scaling = tol > 0 if epsilon_scaling == "auto" else bool(epsilon_scaling)
            u, v, n_iter, errors, n_newton, n_matvec, stopped = logits_path(
                K, unit_a, unit_b, xp, int(max_iter), tol, use_scaling, offsets
            )
            u = u + xp.log(mass)
            if initial is not None:
                errors[0] = initial
                n_matvec += 8
        else:
            # its last error is the plan's, from the last steps' products
            u, v, n_iter, errors = _scaling_path(K, unit_a, unit_b, xp, int(max_iter), tol)
            u = u * mass
            stopped = "max_iter"
            n_newton, n_matvec = 0, 2 + n_iter  # the first two products, then one per step
        # each problem's error relative to its own mass (the unit-mass problem's)
        errors = np.asarray(errors, dtype=np.float64)
        plan = None
        if logits:  # of the plan returned, made to measure it
            errors[-1], plan = _logit_plan_error(K, u, v, a, b, xp, mass)
            n_matvec += 3  # the plan and its sums
        if not np.isfinite(errors[-1]):
            raise ValueError(
                "The plan is not finite: the kernel's scale overflowed float"
                + (" (use logits=True: pass log-kernel values)." if not logits else
                   "; rescale the logits.")
            )
    threshold = tol if tol > 0 else 1e-10
    converged = bool(errors[-1] <= threshold)
    if tol > 0 and not converged:
        work = (f"{n_iter} steps and {n_newton} Newton iterations, {int(n_matvec)} kernel "
                f"passes" if logits else f"{n_iter} steps")
        advice = {
            "stalled": "the error stopped falling after Newton failed: it is at what "
                       f"{K.dtype} resolves at this temperature; ask for a tol above it",
            "work": f"the work reached its bound ({WORK_PER_STEP} kernel passes per "
                    "allowed step); increase max_iter",
        }.get(stopped, "increase max_iter" + (", or use logits=True for small "
                                              "temperatures" if not logits else ""))
        warn(f"Sinkhorn did not reach tol={tol:g} in {work} (largest marginal error "
             f"{errors[-1]:.3g}, relative to the total mass): {advice}.",
             ConvergenceWarning)
    result = SinkhornResult(u=u, v=v, n_iter=n_iter, converged=converged,
                            marginal_error=errors, logits=logits, n_newton=n_newton, kernel=K,
                            n_matvec=int(n_matvec))
    result._plan = plan  # made to measure its error: no need to make it twice
    return result


def _initial_error(L, a, b, xp):
    """Marginal error of ``exp(L)`` rescaled to the total mass (k = 0)."""
    total = xp.sum(a, axis=-1)
    flat = xp.reshape(L, tuple(L.shape[:-2]) + (-1,))
    shift = xp.log(total) - logsumexp(xp, flat, axis=-1)
    plan = xp.exp(L + shift[..., None, None])
    return max(max_abs(xp, xp.sum(plan, axis=-1) - a), max_abs(xp, xp.sum(plan, axis=-2) - b))


def _logit_plan_error(K, u, v, a, b, xp, mass):
    """The plan that log-potentials ``u``, ``v`` give, made, and its largest
    marginal error relative to each problem's mass."""
    plan = _plan(K, u, v, logits=True)
    rows, cols = xp.sum(plan, axis=-1), xp.sum(plan, axis=-2)
    return max(max_abs(xp, (rows - a) / mass), max_abs(xp, (cols - b) / mass)), plan
