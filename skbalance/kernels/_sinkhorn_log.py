"""Sinkhorn in the log domain: stabilised scalings, epsilon scaling, Newton.

``K`` holds log-kernel values such as ``scores / eps``. The plan is kept as
``exp(K + f + g) * u * v``; the scalings ``u, v`` are absorbed into the
log-potentials ``f, g`` whenever they leave ``[1/tau, tau]`` (one pass of
``exp`` over the matrix), and a step whose sums underflow is redone in the
log domain (log-sum-exp). With ``tol > 0``, epsilon scaling warm-starts the
potentials from larger temperatures, and Newton steps on the dual, solved by
conjugate gradients on kernel products (no matrix beyond the kernel), finish
when plain steps are slow. Work is counted in passes over the kernel
(mat-vec equivalents).
"""

import math

import numpy as np

from ..utils._array_api import device_of, has_float64, logsumexp
from ._matvec import divide_or_zero, kernel_products, max_abs

__all__ = ["centre_logits", "logit_offsets", "logits_path"]


def centre_logits(xp, L):
    """Logits minus each column's maximum, then each row's: the same plan.

    A column (or row) offset is absorbed by its potential; removed first, it
    never has to be, so offsets like -1e20 cannot cancel every digit of the
    logits they ride on.
    """
    return logit_offsets(xp, L)[0]


def logit_offsets(xp, L):
    """:func:`centre_logits`, with the offsets taken off: ``L`` is
    ``centred + rows[..., :, None] + columns[..., None, :]``."""
    def finite(m):  # an all-masked (-inf) line has no maximum to subtract
        return xp.where(xp.isfinite(m), m, xp.zeros_like(m))

    columns = finite(xp.max(L, axis=-2))
    L = L - columns[..., None, :]
    rows = finite(xp.max(L, axis=-1))
    return L - rows[..., :, None], rows, columns


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
        # sums below this (not just 0) are redone in the log domain: dividing a
        # unit-mass marginal by them could overflow
        self.tiny = 1024 * float(xp.finfo(L.dtype).smallest_normal)
        self.f, self.g = f, g
        self.passes = 0  # passes over the kernel: mat-vec equivalents
        self._rebuild()

    def _rebuild(self):
        """Recompute the kernel from the potentials; scalings back to 1."""
        xp = self.xp
        self.K = xp.exp(self.L + self.f[..., :, None] + self.g[..., None, :])
        self.matvec, self.rmatvec = kernel_products(self.K, xp)
        self.u, self.v = xp.ones_like(self.f), xp.ones_like(self.g)
        self.Kv, self.Ktu = self.matvec(self.v), self.rmatvec(self.u)
        self.passes += 3

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
        if bool(xp.any((self.Kv <= self.tiny) & (self.a > 0))):
            # Sums underflowed: do this step exactly in the log domain.
            g = self.g + xp.log(self.v)
            self.f = self.log_a - logsumexp(xp, self.L + g[..., None, :], axis=-1)
            self.g = g
            self.passes += 1
            self._rebuild()
        else:
            self.u = divide_or_zero(xp, self.a, self.Kv)
            if not self._absorb_if_large():
                self.Ktu = self.rmatvec(self.u)
                self.passes += 1
        return max_abs(xp, self.v * self.Ktu - self.b)

    def col_step(self):
        """Fix the columns; return the row error after the step."""
        xp = self.xp
        if bool(xp.any((self.Ktu <= self.tiny) & (self.b > 0))):
            f = self.f + xp.log(self.u)
            self.g = self.log_b - logsumexp(xp, self.L + f[..., :, None], axis=-2)
            self.f = f
            self.passes += 1
            self._rebuild()
        else:
            self.v = divide_or_zero(xp, self.b, self.Ktu)
            if not self._absorb_if_large():
                self.Kv = self.matvec(self.v)
                self.passes += 1
        return max_abs(xp, self.u * self.Kv - self.a)

    def error(self):
        xp = self.xp
        return max(max_abs(xp, self.u * self.Kv - self.a),
                   max_abs(xp, self.v * self.Ktu - self.b))

    def potentials(self):
        xp = self.xp
        return self.f + xp.log(self.u), self.g + xp.log(self.v)


# Steps run until the error is below this (relative to the mass) at every
# temperature but the last, and before Newton starts at the last.
_NEWTON_START = 1e-3
# A Newton system of this size or less may be solved densely when Newton-CG
# cannot reach tol.
_DENSE_NEWTON_MAX_SIZE = 2500
# With the sparse preconditioner, every temperature but the last is polished
# by Newton to this error (relative to the mass) before the next.
_POLISH_TOL = 1e-9
# The sparse preconditioner keeps this many entries of every row of the plan,
# and shifts the scaled matrix's diagonal by this much.
_SPARSE_TOP = 4
_SPARSE_SHIFT = 1e-6
# A factorisation is reused for the next Newton step when conjugate gradients
# needed at most this many iterations with it.
_SPARSE_REUSE_ITER = 8
# Newton-CG: at most this many Newton steps, each with at most this many
# conjugate-gradient iterations (two kernel products each).
_NEWTON_MAX_STEPS = 60
_CG_MAX_ITER = 50


# The last stage switches from steps to Newton when reaching tol at the
# recent rate would take more than _STALL_HORIZON steps (judged over the last
# _STALL_WINDOW): about what Newton-CG costs in kernel passes.
_STALL_HORIZON = 300
_STALL_WINDOW = 20
# Once Newton has failed, steps that do not cut the error by 1% in this many
# steps have stalled at what float resolves: they stop.
_STALL_STOP = 100
# All the work, Newton's conjugate gradients included, stays within this
# many kernel passes per allowed step (max_iter bounds the work, not only the
# steps).
WORK_PER_STEP = 10
# Dense Newton (costly) only when steps would need more than this.
_DENSE_STALL_HORIZON = 400
_DENSE_STALL_WINDOW = 40


def _stalled(errors, tol, window, horizon):
    """Whether the recent geometric decay would need too many steps to reach tol."""
    if len(errors) <= window or errors[-1] <= tol:
        return False
    now, before = errors[-1], errors[-1 - window]
    if now <= 0 or before <= 0:
        return False
    rate = (now / before) ** (1.0 / window)
    return rate >= 1.0 or math.log(tol / now) / math.log(rate) > horizon


class _Dual:
    """The entropic dual ``<a, f> + <b, g> - sum exp(L + f + g)`` that Newton
    ascends, in float64 where the namespace has it, with the kernel passes
    its evaluations cost."""

    def __init__(self, L, a, b, xp):
        self.xp, self.dtype, self.passes = xp, L.dtype, 0
        self.work = xp.float64 if has_float64(xp, L) else L.dtype
        self.L, self.a, self.b = (xp.astype(x, self.work, copy=False) for x in (L, a, b))

    def cast(self, f, g):
        """Potentials in the working dtype."""
        return (self.xp.astype(f, self.work, copy=False),
                self.xp.astype(g, self.work, copy=False))

    def evaluate(self, f, g):
        """(plan, row sums, column sums, value), or None where exp would overflow."""
        xp = self.xp
        Z = self.L + f[:, None] + g[None, :]
        self.passes += 1
        if float(xp.max(Z)) > 700.0:  # not a useful point
            return None
        P = xp.exp(Z)
        r, c = xp.sum(P, axis=1), xp.sum(P, axis=0)
        self.passes += 2
        return P, r, c, float(xp.sum(self.a * f) + xp.sum(self.b * g) - xp.sum(r))

    def error(self, r, c):
        """Largest marginal error of a plan with row sums r and column sums c."""
        return max(max_abs(self.xp, self.a - r), max_abs(self.xp, self.b - c))

    def search(self, f, g, d_f, d_g, value, slope):
        """Armijo backtracking along (d_f, d_g): (step, state), or None."""
        t = 1.0
        while t > 1e-6:
            trial = self.evaluate(f + t * d_f, g + t * d_g)
            if trial is not None and trial[3] >= value + 1e-4 * t * slope:
                return t, trial
            t *= 0.5
        return None

    def result(self, f, g, steps, errors):
        """What the Newton solvers return: potentials in the input dtype,
        steps, errors and the kernel passes spent."""
        xp = self.xp
        return (xp.astype(f, self.dtype, copy=False), xp.astype(g, self.dtype, copy=False),
                steps, errors, self.passes)


def _newton(L, a, b, f, g, xp, tol, max_steps=_NEWTON_MAX_STEPS, budget=math.inf):
    """Newton ascent on the entropic dual of a 2-D problem, by conjugate gradients.

    Maximises ``<a, f> + <b, g> - sum exp(L + f + g)``. The Hessian
    ``[[diag(r), P], [P^T, diag(c)]]`` is never formed: conjugate gradients
    need two kernel products per iteration. With NumPy they run on the whole
    Newton system, preconditioned by the sparse LU of the plan's largest
    entries (:func:`_sparse_preconditioner`); other namespaces solve the
    Schur complement ``(diag(c) - P^T diag(1/r) P) d_g = (b - c) - P^T ((a -
    r) / r)`` preconditioned by ``diag(c)``, then ``d_f = ((a - r) - P d_g) /
    r``. Inexact: each solve stops at a relative residual
    ``min(0.5, sqrt(error))`` or after ``_CG_MAX_ITER`` iterations. An Armijo
    backtracking line search keeps every trial point finite; five steps that
    do not halve the error end it. Works in float64 where the namespace has it.

    Stops before a step once ``budget`` kernel passes are spent.

    Returns the potentials, the Newton steps taken, the error after each,
    and the kernel passes spent (mat-vec equivalents).
    """
    dual = _Dual(L, a, b, xp)
    f, g = dual.cast(f, g)
    a, b = dual.a, dual.b

    def schur_solve(P, r, c, rhs, eta):
        tiny = xp.finfo(dual.work).smallest_normal
        r = xp.where(r > tiny, r, xp.full_like(r, tiny))
        c = xp.where(c > tiny, c, xp.full_like(c, tiny))
        x = xp.zeros_like(rhs)
        residual = rhs
        z = residual / c
        direction, rz = z, float(xp.sum(residual * z))
        target = eta * math.sqrt(max(rz, 0.0))
        for _ in range(_CG_MAX_ITER):
            if not math.sqrt(max(rz, 0.0)) > target:
                break
            product = c * direction - ((direction @ xp.permute_dims(P, (1, 0))) / r) @ P
            dual.passes += 2
            curvature = float(xp.sum(direction * product))
            if not curvature > 0:
                break
            alpha = rz / curvature
            x = x + alpha * direction
            residual = residual - alpha * product
            z = residual / c
            rz_new = float(xp.sum(residual * z))
            direction, rz = z + (rz_new / rz) * direction, rz_new
        return x, r

    state, errors, steps, cache = dual.evaluate(f, g), [], 0, {}
    while steps < max_steps and state is not None and dual.passes < budget:
        P, r, c, value = state
        grad_f, grad_g = a - r, b - c
        error = dual.error(r, c)
        if error <= tol:
            break
        eta = min(0.5, math.sqrt(error))
        if isinstance(P, np.ndarray):  # SciPy's sparse LU preconditions
            d_f, d_g = _sparse_pcg_direction(P, r, c, grad_f, grad_g, eta, dual, cache)
        else:
            safe_r = xp.where(r > 0, r, xp.ones_like(r))
            rhs = grad_g - (grad_f / safe_r) @ P
            d_g, safe_r = schur_solve(P, r, c, rhs, eta)
            d_f = (grad_f - P @ d_g) / safe_r
            dual.passes += 2  # the right-hand side and the back-substitution
        slope = float(xp.sum(grad_f * d_f) + xp.sum(grad_g * d_g))
        if not (math.isfinite(slope) and slope > 0):
            break
        found = dual.search(f, g, d_f, d_g, value, slope)
        if found is None:
            break
        t, state = found
        f, g = f + t * d_f, g + t * d_g
        steps += 1
        errors.append(dual.error(state[1], state[2]))
        if len(errors) > 5 and errors[-1] > 0.5 * errors[-6]:
            break  # conjugate gradients no longer give useful steps
    return dual.result(f, g, steps, errors)


def _sparse_preconditioner(P, r, c):
    """Solve with the Newton matrix of the plan's largest entries.

    Keeps the ``_SPARSE_TOP`` largest entries of every row of the plan
    (one selection pass), scales the matrix ``[[diag(r), P], [P^T,
    diag(c)]]`` (last column potential fixed) to unit diagonal, adds
    ``_SPARSE_SHIFT`` to the diagonal (the sparse graph may fall apart into
    pieces, each with its own null direction) and factorises it (SciPy's
    sparse LU, a symmetric ordering). At small temperatures the plan is
    nearly that sparse, and conjugate gradients then need a few iterations.
    """
    from scipy import sparse
    from scipy.sparse.linalg import splu

    m, n_columns = P.shape
    top = min(_SPARSE_TOP, n_columns)
    columns = np.argpartition(P, n_columns - top, axis=1)[:, n_columns - top:].ravel()
    rows = np.repeat(np.arange(m), top)
    values = P[rows, columns]
    keep = columns < n_columns - 1  # the fixed potential's column drops out
    tiny = np.finfo(P.dtype).smallest_normal
    scale = 1.0 / np.sqrt(np.maximum(np.concatenate([r, c[:-1]]), tiny))
    block = sparse.csr_matrix(
        (values[keep] * scale[rows[keep]] * scale[m + columns[keep]],
         (rows[keep], columns[keep])), shape=(m, n_columns - 1))
    shifted = 1.0 + _SPARSE_SHIFT
    matrix = sparse.bmat([[sparse.identity(m) * shifted, block],
                          [block.T, sparse.identity(n_columns - 1) * shifted]], format="csc")
    factor = splu(matrix, permc_spec="MMD_AT_PLUS_A")
    return lambda v: scale * factor.solve(scale * v)


def _sparse_pcg_direction(P, r, c, grad_f, grad_g, eta, dual, cache):
    """Newton direction by conjugate gradients on the whole Newton system
    (last column potential fixed), preconditioned by the sparse LU.

    ``cache`` keeps the factorisation for the next Newton step when this one
    needed few iterations: the plan changes little from step to step, and a
    factorisation costs more than a few products.
    """
    m = P.shape[0]
    solve = cache.get("solve")
    if solve is None:
        solve = cache["solve"] = _sparse_preconditioner(P, r, c)
        dual.passes += 2  # the selection of the largest entries, and reading them

    def product(x):
        x_g = np.append(x[m:], 0.0)
        dual.passes += 2
        return np.concatenate([r * x[:m] + P @ x_g, (x[:m] @ P + c * x_g)[:-1]])

    rhs = np.concatenate([grad_f, grad_g[:-1]])
    x = np.zeros_like(rhs)
    residual = rhs
    z = solve(residual)
    direction, rz = z, float(residual @ z)
    target = eta * math.sqrt(max(rz, 0.0))
    iterations = 0
    for iterations in range(1, _CG_MAX_ITER + 1):  # noqa: B007 (the count is returned)
        if not math.sqrt(max(rz, 0.0)) > target:
            break
        image = product(direction)
        curvature = float(direction @ image)
        if not curvature > 0:
            break
        alpha = rz / curvature
        x = x + alpha * direction
        residual = residual - alpha * image
        z = solve(residual)
        rz_new = float(residual @ z)
        direction, rz = z + (rz_new / rz) * direction, rz_new
    if iterations > _SPARSE_REUSE_ITER:
        cache.pop("solve")  # a fresh factorisation next time
    return x[:m], np.append(x[m:], 0.0)


def _dense_newton(L, a, b, f, g, xp, tol, max_steps=100, budget=math.inf):
    """Damped Newton ascent on the entropic dual, solved densely (small problems).

    The fallback when Newton-CG cannot reach tol (the plan nearly a
    permutation at tiny temperatures, where conjugate gradients stall).

    Maximises ``<a, f> + <b, g> - sum exp(L + f + g)``; the Hessian is the
    (m + l) x (m + l) matrix ``[[diag(r), P], [P^T, diag(c)]]`` (one
    potential fixed to remove its null direction), solved densely.
    Backtracking keeps every trial point finite. Works in float64. Stops
    before a step once ``budget`` kernel passes are spent.
    """
    dual = _Dual(L, a, b, xp)
    f, g = dual.cast(f, g)
    a, b, m = dual.a, dual.b, L.shape[0]
    state, errors, steps = dual.evaluate(f, g), [], 0
    while steps < max_steps and state is not None and dual.passes < budget:
        P, r, c, value = state
        grad_f, grad_g = a - r, b - c
        if dual.error(r, c) <= tol:
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
                dual.passes += 1 + (m + L.shape[1]) // 3  # forming it; a dense solve
            except (np.linalg.LinAlgError, ValueError, RuntimeError):
                continue  # numerically singular: damp more
            if not bool(xp.all(xp.isfinite(direction))):
                continue
            d_f = direction[:m]
            d_g = xp.concat([direction[m:],
                             xp.zeros(1, dtype=dual.work, device=device_of(L))])
            new = dual.search(f, g, d_f, d_g, value, float(xp.sum(gradient * direction)))
            if new is not None:
                break
        if new is None:
            break
        t, state = new
        f, g = f + t * d_f, g + t * d_g
        steps += 1
        errors.append(dual.error(state[1], state[2]))
    return dual.result(f, g, steps, errors)


def _diag(xp, values):
    n = values.shape[0]
    return xp.eye(n, dtype=values.dtype, device=device_of(values)) * values[None, :]


def logits_path(L, a, b, xp, max_iter, tol, epsilon_scaling, offsets=None):
    """Balance logits: steps in the scaling domain (log domain where sums
    underflow), with epsilon scaling and Newton finishes.

    Returns the potentials, steps, errors, Newton iterations, kernel passes
    and why it stopped before ``tol``: None, "max_iter", "work" (the passes
    reached ``WORK_PER_STEP * max_iter``: Newton's conjugate gradients are
    bounded too) or "stalled" (no progress in ``_STALL_STOP`` steps after
    Newton failed: the error is at what float resolves at this temperature).

    ``offsets``: the row and column offsets :func:`logit_offsets` took off
    ``L``, kept in the starting potentials (a k-step plan depends on them)
    instead of in the logits, where an offset like -1e20 would cancel every
    digit of the potential that balances it.
    """
    budget = WORK_PER_STEP * max(max_iter, 1)
    total = xp.sum(a, axis=-1)
    # k = 0: exp(L) rescaled to the total mass (every entry at most the total).
    flat = xp.reshape(L, tuple(L.shape[:-2]) + (-1,))
    start = xp.log(total) - logsumexp(xp, flat, axis=-1)
    if offsets is not None:  # the start of the logits with their offsets
        rows, columns = offsets
        start = xp.log(total) - logsumexp(
            xp, xp.reshape(L + rows[..., :, None] + columns[..., None, :],
                           tuple(L.shape[:-2]) + (-1,)), axis=-1)
    f = xp.broadcast_to(start[..., None], a.shape) + xp.zeros_like(a)
    g = xp.zeros_like(b)
    if offsets is not None:
        f, g = f + rows, g + columns
    schedule = _temperature_schedule(L, xp) if epsilon_scaling else [1.0]
    try_cg = epsilon_scaling and L.ndim == 2
    can_dense = try_cg and sum(L.shape) <= _DENSE_NEWTON_MAX_SIZE
    # NumPy's Newton-CG has the sparse preconditioner: cheap enough to finish
    # every temperature (the next one then starts close to its solution)
    sparse_newton = try_cg and isinstance(L, np.ndarray)
    # row 0 of the history: the user's problem before any step, at its own
    # temperature (not the first, softened, stage of epsilon scaling)
    passes = 1  # the log-sum-exp of the start
    if schedule[0] != 1.0:
        first = _LogState(L, a, b, xp, f, g)
        errors, passes = [first.error()], passes + first.passes
    else:
        errors = []
    n_iter, n_newton, finished_by_newton, stopped = 0, 0, False, None
    for stage, scale in enumerate(schedule):
        last = stage == len(schedule) - 1
        if stage:
            ratio = scale / schedule[stage - 1]
            f, g = f * ratio, g * ratio
        state = _LogState(L if scale == 1.0 else L * scale, a, b, xp, f, g)
        passes += scale != 1.0
        unit = float(xp.max(total))
        stage_tol = tol if last else max(tol, _NEWTON_START * unit)
        error = state.error()
        if not errors:
            errors.append(error)
        step, stage_errors = 0, [error]
        # At least one row and one column step after a change of temperature:
        # scaled potentials can leave the plan almost no mass, whose error (the
        # largest marginal entry) may already look below a loose stage tolerance.
        minimum = 2 if stage else 0
        best, since_best, newton_failed = error, 0, False
        while n_iter < max_iter and (step < minimum or not (stage_tol > 0
                                                             and error <= stage_tol)):
            if passes + state.passes >= budget:
                stopped = "work"
                break
            error = state.row_step() if step % 2 == 0 else state.col_step()
            errors.append(error)
            stage_errors.append(error)
            n_iter += 1
            step += 1
            if error < 0.99 * best:
                best, since_best = error, 0
            else:
                since_best += 1
            if last and newton_failed and tol > 0 and since_best >= _STALL_STOP:
                stopped = "stalled"
                break
            if not (last and step % 2 == 0):
                continue
            use_cg = (try_cg and error <= _NEWTON_START * unit
                      and (sparse_newton or _stalled(stage_errors, tol, _STALL_WINDOW,
                                                     _STALL_HORIZON)))
            if not (use_cg or (can_dense and _stalled(
                    stage_errors, tol, _DENSE_STALL_WINDOW, _DENSE_STALL_HORIZON))):
                continue
            # Steps are slow: Newton on the dual. Newton-CG first, kept only if
            # it reaches tol; then, for small problems, dense Newton once the
            # steps stall again; if neither reaches tol, steps go on.
            f, g = state.potentials()
            if use_cg:
                try_cg = False
                f_cg, g_cg, newton_steps, newton_errors, newton_passes = _newton(
                    L, a, b, f, g, xp, tol, budget=budget - passes - state.passes)
                passes += newton_passes
                if newton_errors and newton_errors[-1] <= tol:
                    f, g = f_cg, g_cg
                    n_newton += newton_steps
                    errors.extend(newton_errors)
                    finished_by_newton = True
                    break
                if newton_errors and newton_errors[-1] < error:  # progress is kept
                    n_newton += newton_steps
                    errors.extend(newton_errors)
                    passes += state.passes
                    state = _LogState(L, a, b, xp, f_cg, g_cg)
                    error = state.error()
                # dense Newton, if any, after the steps have stalled again
                stage_errors, newton_failed = [error], not can_dense
                best, since_best = error, 0
                continue
            can_dense = try_cg = False
            newton_failed = True
            f, g, newton_steps, newton_errors, newton_passes = _dense_newton(
                L, a, b, f, g, xp, tol, budget=budget - passes - state.passes)
            n_newton += newton_steps
            passes += newton_passes
            errors.extend(newton_errors)
            if newton_errors and newton_errors[-1] <= tol:
                finished_by_newton = True
                break
            passes += state.passes
            state = _LogState(L, a, b, xp, f, g)
            stage_errors, step = [state.error()], 0
            best, since_best = stage_errors[0], 0
        passes += state.passes
        if not finished_by_newton:
            f, g = state.potentials()
        if sparse_newton and not last and error <= stage_tol:
            # polish this temperature's potentials: a better warm start
            polish_tol = max(tol, _POLISH_TOL * unit)
            if error > polish_tol and passes < budget:
                f_n, g_n, newton_steps, newton_errors, newton_passes = _newton(
                    state.L, a, b, f, g, xp, polish_tol, budget=(budget - passes) / 2)
                passes += newton_passes
                if newton_errors and newton_errors[-1] < error:
                    f, g = f_n, g_n
                    n_newton += newton_steps
                    errors.extend(newton_errors)
        if stopped is None and n_iter >= max_iter and error > stage_tol:
            stopped = "max_iter"
        if (stopped is not None or n_iter >= max_iter) and not last:
            # Out of steps at a larger temperature: carry the potentials to
            # the real one and report the real error (not converged).
            # One row step in the log domain from the carried column
            # potentials: rows then sum to a exactly, so every entry of the
            # plan is at most a_i (dividing f by a tiny scale could overflow).
            g = g / scale
            f = _safe_log(xp, a) - logsumexp(xp, L + g[..., None, :], axis=-1)
            final = _LogState(L, a, b, xp, f, g)
            errors.append(final.error())
            passes += 1 + final.passes
            break
    if finished_by_newton:
        stopped = None
    return f, g, n_iter, errors, n_newton, passes, stopped


def _temperature_schedule(L, xp):
    """Multipliers of the logits, ending at 1, starting where the range is ~10."""
    largest = float(xp.max(L))
    finite = xp.where(xp.isfinite(L), L, xp.full_like(L, largest))  # -inf masks
    spread = largest - float(xp.min(finite))
    if spread <= 10.0:
        return [1.0]
    n_stages = int(math.ceil(math.log(spread / 10.0, 4.0)))
    return [4.0 ** -(n_stages - i) for i in range(n_stages)] + [1.0]
