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
  larger temperatures so that small temperatures still converge.
"""

import math
import warnings

import numpy as np
from array_api_compat import array_namespace, is_numpy_namespace

from ..utils._array_api import device_of, float_dtype, has_float64, logsumexp

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
        path they are log-scalings: the plan is ``exp(K + u[:, None] +
        v[None, :])``.
    n_iter : int
        Single-margin steps taken (all temperatures, with epsilon scaling).
    converged : bool
        Whether the marginal error reached ``tol`` (with ``tol=0``: is at most
        1e-10 times the total mass after ``max_iter`` steps).
    marginal_error : ndarray of shape (n_iter + n_newton + 1,)
        Largest absolute marginal error before any step, after each step,
        then after each Newton iteration; over the whole batch.
    logits : bool
        Whether ``u`` and ``v`` are log-scalings.
    n_newton : int, default=0
        Newton iterations on the dual that finished a logits fit whose
        steps had stalled (see :func:`sinkhorn`).
    kernel : array or sparse matrix, default=None
        The balanced kernel, from which ``plan`` is computed on first access.

    Examples
    --------
    >>> import numpy as np
    >>> from skbalance import sinkhorn
    >>> result = sinkhorn(np.ones((2, 3)), max_iter=2, tol=0)
    >>> result.n_iter, result.plan.sum().round(12)
    (2, np.float64(1.0))
    """

    def __init__(self, u, v, n_iter, converged, marginal_error, logits, n_newton=0,
                 kernel=None):
        self.u, self.v = u, v
        self.n_iter, self.converged = n_iter, converged
        self.marginal_error, self.logits = marginal_error, logits
        self.n_newton = n_newton
        self._kernel, self._plan = kernel, None

    @property
    def plan(self):
        """The balanced matrix, computed on first access."""
        if self._plan is None:
            self._plan = _plan(self._kernel, self.u, self.v, self.logits)
        return self._plan

    def __repr__(self):
        return (f"SinkhornResult(n_iter={self.n_iter}, converged={self.converged}, "
                f"logits={self.logits}, n_newton={self.n_newton})")


def _plan(K, u, v, logits):
    if _is_sparse(K):
        from scipy import sparse

        if logits:
            raise ValueError("Sparse kernels take the scaling path only.")
        return sparse.diags(np.asarray(u)) @ K @ sparse.diags(np.asarray(v))
    xp = array_namespace(K)
    if logits:
        return xp.exp(K + u[..., :, None] + v[..., None, :])
    return u[..., :, None] * K * v[..., None, :]


# ---------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------

def _is_sparse(K):
    return hasattr(K, "tocsr") and hasattr(K, "nnz")


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


def _validate(K, a, b, logits):
    """Kernel namespace and broadcast marginals, with clear errors."""
    if _is_sparse(K):
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
            logits and not math.isfinite(smallest)
        ):
            raise ValueError("K contains NaN or Inf.")
        if not logits and smallest < 0:
            raise ValueError("K must be nonnegative (pass logits=True for log-kernels).")
        batch_shape = tuple(K.shape[:-2])
        device = getattr(K, "device", None)
    m, l = K.shape[-2], K.shape[-1]
    a = _check_marginal(xp, a, m, batch_shape, K.dtype, "a", device)
    b = _check_marginal(xp, b, l, batch_shape, K.dtype, "b", device)
    total_a, total_b = xp.sum(a, axis=-1), xp.sum(b, axis=-1)
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

def _products(K, xp):
    """``K v`` and ``K^T u`` for dense, batched or sparse kernels."""
    if _is_sparse(K):
        Kt = K.T.tocsr()
        return (lambda v: K @ v), (lambda u: Kt @ u)
    if K.ndim == 2:
        if is_numpy_namespace(xp):
            return (lambda v: K @ v), (lambda u: u @ K)
        Kt = xp.permute_dims(K, (1, 0))
        return (lambda v: xp.matmul(K, v)), (lambda u: xp.matmul(Kt, u))
    Kt = xp.permute_dims(K, (0, 2, 1))
    return (
        lambda v: xp.matmul(K, v[..., None])[..., 0],
        lambda u: xp.matmul(Kt, u[..., None])[..., 0],
    )


def _max_abs(xp, x):
    return float(xp.max(xp.abs(x))) if x.shape[-1] else 0.0


def _check_support(rows, cols, a, b, xp):
    if not math.isfinite(float(xp.sum(rows))):
        raise ValueError("K contains NaN or Inf.")
    if bool(xp.any((rows <= 0) & (a > 0))):
        raise ValueError("A row of K is all zero but its marginal in a is positive.")
    if bool(xp.any((cols <= 0) & (b > 0))):
        raise ValueError("A column of K is all zero but its marginal in b is positive.")


def _divide(xp, target, current):
    """target / current, with 0 where the target is 0."""
    safe = xp.where(current > 0, current, xp.ones_like(current))
    return xp.where(target > 0, target / safe, xp.zeros_like(target))


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
            return _max_abs(self.xp, scale * product - target)
        buffer = self.buffers.get(id(target))
        if buffer is None or target.size == 0:
            return _max_abs(self.xp, scale * product - target)
        np.multiply(scale, product, out=buffer)
        np.subtract(buffer, target, out=buffer)
        np.abs(buffer, out=buffer)
        return float(buffer.max())


def _scaling_path(K, a, b, xp, max_iter, tol):
    matvec, rmatvec = _products(K, xp)
    # The first products double as the support check and the k = 0 error.
    v = xp.ones_like(b)
    rows, cols = matvec(v), rmatvec(xp.ones_like(a))
    _check_support(rows, cols, a, b, xp)
    # k = 0: K rescaled to the total mass; then rows first.
    scale = xp.sum(a, axis=-1, keepdims=True) / xp.sum(rows, axis=-1, keepdims=True)
    u = xp.ones_like(a) * scale
    Kv, Ktu = rows, cols * scale
    residual = _Residual(xp, a, b)
    errors = [max(residual(u, Kv, a), residual(v, Ktu, b))]
    # Rows or columns of K that are all zero (with a zero target) would give
    # 0 / 0; only then is the slower, guarded division needed.
    guarded = bool(xp.any(rows <= 0)) or bool(xp.any(cols <= 0))
    divide = (lambda t, c: _divide(xp, t, c)) if guarded else (lambda t, c: t / c)
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
    return u, v, n_iter, errors


# ---------------------------------------------------------------------------
# logits path
# ---------------------------------------------------------------------------

def _safe_log(xp, x):
    tiny = xp.finfo(x.dtype).smallest_normal
    return xp.log(xp.where(x > 0, x, xp.full_like(x, tiny)))


class _LogState:
    """Plan = exp(L + f + g) * u * v, with the kernel exp(L + f + g) cached.

    ``Kv`` and ``Ktu`` cache the products with the current scalings, so that
    each step costs one matrix-vector product, which also gives the error.
    """

    def __init__(self, L, a, b, xp, f, g):
        self.L, self.a, self.b, self.xp = L, a, b, xp
        self.log_a, self.log_b = _safe_log(xp, a), _safe_log(xp, b)
        self.log_tau = math.log(1e12 if L.dtype == xp.float64 else 1e4)
        self.f, self.g = f, g
        self._rebuild()

    def _rebuild(self):
        """Recompute the kernel from the potentials; scalings back to 1."""
        xp = self.xp
        self.K = xp.exp(self.L + self.f[..., :, None] + self.g[..., None, :])
        self.matvec, self.rmatvec = _products(self.K, xp)
        self.u, self.v = xp.ones_like(self.f), xp.ones_like(self.g)
        self.Kv, self.Ktu = self.matvec(self.v), self.rmatvec(self.u)

    def _absorb_if_large(self):
        xp = self.xp
        tiny = xp.finfo(self.u.dtype).smallest_normal
        largest = max(float(xp.max(xp.abs(xp.log(xp.maximum(s, tiny)))))
                      for s in (self.u, self.v))
        if largest > self.log_tau:
            self.f = self.f + xp.log(self.u)
            self.g = self.g + xp.log(self.v)
            self._rebuild()
            return True
        return False

    def row_step(self):
        """Fix the rows; return the column error after the step."""
        xp = self.xp
        if bool(xp.any((self.Kv <= 0) & (self.a > 0))):
            # Sums underflowed: do this step exactly in the log domain.
            g = self.g + xp.log(self.v)
            self.f = self.log_a - logsumexp(xp, self.L + g[..., None, :], axis=-1)
            self.g = g
            self._rebuild()
        else:
            self.u = _divide(xp, self.a, self.Kv)
            if not self._absorb_if_large():
                self.Ktu = self.rmatvec(self.u)
        return _max_abs(xp, self.v * self.Ktu - self.b)

    def col_step(self):
        """Fix the columns; return the row error after the step."""
        xp = self.xp
        if bool(xp.any((self.Ktu <= 0) & (self.b > 0))):
            f = self.f + xp.log(self.u)
            self.g = self.log_b - logsumexp(xp, self.L + f[..., :, None], axis=-2)
            self.f = f
            self._rebuild()
        else:
            self.v = _divide(xp, self.b, self.Ktu)
            if not self._absorb_if_large():
                self.Kv = self.matvec(self.v)
        return _max_abs(xp, self.u * self.Kv - self.a)

    def error(self):
        xp = self.xp
        return max(_max_abs(xp, self.u * self.Kv - self.a),
                   _max_abs(xp, self.v * self.Ktu - self.b))

    def potentials(self):
        xp = self.xp
        return self.f + xp.log(self.u), self.g + xp.log(self.v)


# A Newton system of this size or less is solved densely when steps stall.
_NEWTON_MAX_SIZE = 2500
# Steps are judged stalled when reaching tol would take more than this many.
_STALL_HORIZON = 400
_STALL_WINDOW = 40


def _stalled(errors, tol, window=_STALL_WINDOW):
    """Whether the recent geometric decay would need too many steps to reach tol."""
    if len(errors) <= window or errors[-1] <= tol:
        return False
    now, before = errors[-1], errors[-1 - window]
    if now <= 0 or before <= 0:
        return False
    rate = (now / before) ** (1.0 / window)
    return rate >= 1.0 or math.log(tol / now) / math.log(rate) > _STALL_HORIZON


def _newton(L, a, b, f, g, xp, tol, max_steps=100):
    """Damped Newton ascent on the entropic dual of a 2-D problem.

    Maximises ``<a, f> + <b, g> - sum exp(L + f + g)``; the Hessian is the
    (m + l) x (m + l) matrix ``[[diag(r), P], [P^T, diag(c)]]`` (one
    potential fixed to remove its null direction), solved densely.
    Backtracking keeps every trial point finite. Works in float64.
    """
    dtype = L.dtype
    work = xp.float64 if has_float64(xp, L) else dtype
    L, a, b = (xp.astype(x, work, copy=False) for x in (L, a, b))
    f, g = xp.astype(f, work, copy=False), xp.astype(g, work, copy=False)
    m = L.shape[0]

    def evaluate(f, g):
        Z = L + f[:, None] + g[None, :]
        if float(xp.max(Z)) > 700.0:  # exp would overflow: not a useful point
            return None
        P = xp.exp(Z)
        r, c = xp.sum(P, axis=1), xp.sum(P, axis=0)
        value = float(xp.sum(a * f) + xp.sum(b * g) - xp.sum(r))
        return P, r, c, value

    state, errors, steps = evaluate(f, g), [], 0
    while steps < max_steps:
        P, r, c, value = state
        grad_f, grad_g = a - r, b - c
        error = max(_max_abs(xp, grad_f), _max_abs(xp, grad_g))
        if error <= tol:
            break
        top = xp.concat([_diag(xp, r), P[:, :-1]], axis=1)
        bottom = xp.concat([xp.permute_dims(P[:, :-1], (1, 0)), _diag(xp, c[:-1])], axis=1)
        hessian = xp.concat([top, bottom], axis=0)
        gradient = xp.concat([grad_f, grad_g[:-1]])
        scale = xp.concat([r, c[:-1]])
        new = None
        # Levenberg-Marquardt damping when the plan's support is nearly
        # disconnected and the plain Newton step is useless.
        for damping in (0.0, 1e-8, 1e-6, 1e-4, 1e-2, 1.0):
            system = hessian + damping * _diag(xp, scale)
            try:
                direction = xp.linalg.solve(system, gradient)
            except (np.linalg.LinAlgError, ValueError, RuntimeError):
                continue  # numerically singular: damp more
            if not bool(xp.all(xp.isfinite(direction))):
                continue
            d_f = direction[:m]
            d_g = xp.concat([direction[m:], xp.zeros(1, dtype=work, device=device_of(L))])
            slope = float(xp.sum(gradient * direction))
            t = 1.0
            while t > 1e-6:
                trial = evaluate(f + t * d_f, g + t * d_g)
                if trial is not None and trial[3] >= value + 1e-4 * t * slope:
                    new = trial
                    break
                t *= 0.5
            if new is not None:
                break
        if new is None:
            break
        f, g, state = f + t * d_f, g + t * d_g, new
        steps += 1
        _, r, c, _ = state
        errors.append(max(_max_abs(xp, a - r), _max_abs(xp, b - c)))
    return xp.astype(f, dtype, copy=False), xp.astype(g, dtype, copy=False), steps, errors


def _diag(xp, values):
    n = values.shape[0]
    return xp.eye(n, dtype=values.dtype, device=device_of(values)) * values[None, :]


def _logits_path(L, a, b, xp, max_iter, tol, epsilon_scaling):
    total = xp.sum(a, axis=-1)
    # k = 0: exp(L) rescaled to the total mass (every entry at most the total).
    flat = xp.reshape(L, tuple(L.shape[:-2]) + (-1,))
    start = xp.log(total) - logsumexp(xp, flat, axis=-1)
    f = xp.broadcast_to(start[..., None], a.shape) + xp.zeros_like(a)
    g = xp.zeros_like(b)
    schedule = _temperature_schedule(L, xp) if epsilon_scaling else [1.0]
    can_refine = epsilon_scaling and L.ndim == 2 and sum(L.shape) <= _NEWTON_MAX_SIZE
    errors, n_iter, n_newton, finished_by_newton = [], 0, 0, False
    for stage, scale in enumerate(schedule):
        last = stage == len(schedule) - 1
        if stage:
            ratio = scale / schedule[stage - 1]
            f, g = f * ratio, g * ratio
        state = _LogState(L if scale == 1.0 else L * scale, a, b, xp, f, g)
        stage_tol = tol if last else max(tol, 1e-3 * float(xp.max(total)))
        error = state.error()
        if not errors:
            errors.append(error)
        step, stage_errors = 0, [error]
        while n_iter < max_iter and not (stage_tol > 0 and error <= stage_tol):
            error = state.row_step() if step % 2 == 0 else state.col_step()
            errors.append(error)
            stage_errors.append(error)
            n_iter += 1
            step += 1
            if last and can_refine and step % 2 == 0 and _stalled(stage_errors, tol):
                # Steps have stalled: finish with Newton on the dual. If it
                # cannot reach tol, carry on with steps from its best point.
                f, g = state.potentials()
                f, g, newton_steps, newton_errors = _newton(L, a, b, f, g, xp, tol)
                n_newton += newton_steps
                errors.extend(newton_errors)
                can_refine = False
                if newton_errors and newton_errors[-1] <= tol:
                    finished_by_newton = True
                    break
                state = _LogState(L, a, b, xp, f, g)
                stage_errors, step = [state.error()], 0
        if not finished_by_newton:
            f, g = state.potentials()
        if n_iter >= max_iter and not last:
            # Out of steps at a larger temperature: carry the potentials to
            # the real one and report the real error (not converged).
            f, g = f / scale, g / scale
            errors.append(_LogState(L, a, b, xp, f, g).error())
            break
    return f, g, n_iter, errors, n_newton


def _temperature_schedule(L, xp):
    """Multipliers of the logits, ending at 1, starting where the range is ~10."""
    spread = float(xp.max(L) - xp.min(L))
    if spread <= 10.0:
        return [1.0]
    n_stages = int(math.ceil(math.log(spread / 10.0, 4.0)))
    return [4.0 ** -(n_stages - i) for i in range(n_stages)] + [1.0]


def sinkhorn(K, a=None, b=None, *, max_iter=1000, tol=1e-9, logits=False,
             epsilon_scaling="auto"):
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
        ``k``; one full Sinkhorn iteration is 2 steps).
    tol : float, default=1e-9
        Stop after the first step whose largest absolute marginal error is at
        most ``tol``; ``tol=0`` runs exactly ``max_iter`` steps.
    logits : bool, default=False
        ``K`` holds log-kernel values; use the stabilised path.
    epsilon_scaling : bool or "auto", default="auto"
        In the logits path, first balance the logits scaled down (larger
        temperatures) and warm-start from there. "auto": when ``tol > 0``
        (``tol=0`` asks for the plain k-step plan).

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
    if isinstance(max_iter, bool) or int(max_iter) != max_iter or max_iter < 0:
        raise ValueError(f"max_iter must be a nonnegative integer; got {max_iter!r}.")
    if not tol >= 0:
        raise ValueError(f"tol must be nonnegative; got {tol!r}.")
    K, a, b, xp = _validate(K, a, b, logits)
    if logits:
        use_scaling = tol > 0 if epsilon_scaling == "auto" else bool(epsilon_scaling)
        u, v, n_iter, errors, n_newton = _logits_path(
            K, a, b, xp, int(max_iter), tol, use_scaling
        )
    else:
        u, v, n_iter, errors = _scaling_path(K, a, b, xp, int(max_iter), tol)
        n_newton = 0
    total = float(xp.max(xp.sum(a, axis=-1)))
    threshold = tol if tol > 0 else 1e-10 * total
    converged = bool(errors[-1] <= threshold)
    if tol > 0 and not converged:
        warnings.warn(
            f"Sinkhorn did not reach tol={tol:g} in {n_iter} steps (largest marginal "
            f"error {errors[-1]:.3g}); increase max_iter"
            + (", or use logits=True for small temperatures." if not logits else "."),
            ConvergenceWarning,
        )
    return SinkhornResult(u=u, v=v, n_iter=n_iter, converged=converged,
                          marginal_error=np.asarray(errors), logits=logits,
                          n_newton=n_newton, kernel=K)
