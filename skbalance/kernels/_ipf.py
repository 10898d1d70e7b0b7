"""Raking (iterative proportional fitting) on a table of cells.

Each cell ``c`` has a base mass ``D[c]`` and, for every margin ``j``, the index
``codes[j][c]`` of its level in that margin's target vector. The balanced mass
of a cell is ``D[c] * g[c]`` with ``g[c] = clip(prod_j a_j[codes[j][c]], low,
high)``: a product of per-level factors, truncated to the bounds when bounds
are given. A step fixes one margin exactly by re-solving that margin's
factors; margins are visited cyclically in the order given. Without bounds
this is the classical update ``a_j <- a_j * target_j / current_j`` (the
paper's k-step balancing). With bounds, a step solves, level by level,
``sum_c D[c] clip(a * r[c], low, high) = target`` for ``a``, where ``r[c]``
is the product of the other margins' factors: block coordinate ascent on the
dual of the bounded KL (raking) calibration problem, so that the limit is the
bounded raking solution of Deville and Sarndal.
"""

from dataclasses import dataclass

import numpy as np
from array_api_compat import array_namespace, device

from ..utils._array_api import from_numpy, to_numpy
from ._blocks import MarginBlocks, margin_of

__all__ = ["RakingResult", "rake_cells", "rake_cells_batch", "solve_bounded_levels"]

# Bisection steps on log(a) for a bounded level equation; 2**-80 of a range of
# a few hundred nats is far below double precision.
_BISECTION_STEPS = 80
# With bounds, each margin's factors stay within exp(+-_LOG_CAP / n_margins),
# so that their product stays finite even when the bounds cannot be met.
_LOG_CAP = 700.0
# Without bounds, the product of the level factors of M margins stays below
# 10 ** _PRODUCT_EXPONENT (each factor at most its M-th root), so the cell
# factors stay finite; only unreachable targets ever get there.
_PRODUCT_EXPONENT = 290.0
# With bounds and tol > 0, raking stops when this many sweeps over the margins
# have not cut the error by 1% (bounds that cannot all be met).
_STALL_SWEEPS = 50
# With tol > 0 and no bounds, once the largest marginal error falls below
# this, raking switches to Newton steps on the dual (see _newton_steps).
_NEWTON_START = 1e-3
# The Newton steps' Hessian is estimated from at most about this many cells
# (a strided subsample): it only preconditions, the gradient is exact.
_HESSIAN_CELLS = 1_000_000
# The Hessian is kept for the next Newton step after a step that cut the
# error by this factor or more.
_NEWTON_REUSE = 0.05
# At most this many Newton steps; each must cut the error by 10% or more.
_NEWTON_MAX_STEPS = 30
# Newton is used only while the levels of all margins together are few enough
# for a dense pseudo-inverse of the Hessian.
_NEWTON_MAX_LEVELS = 2_000
# The Newton steps' Hessian takes the two-way tables of margins in different
# blocks from pieces of the blocks of at most this many joint levels: a group
# sum over two pieces' codes gives all their two-way tables, in bins that stay
# in cache.
_BLOCK_LEVELS = 256


@dataclass
class RakingResult:
    """Outcome of :func:`rake_cells`.

    Parameters
    ----------
    cell_factors : ndarray of shape (n_cells,)
        ``g[c]``: balanced mass over base mass for every cell.
    level_factors : list of ndarray
        ``a_j`` for every margin, one value per target level.
    n_iter : int
        Number of steps taken: single-margin steps plus Newton steps.
    errors : ndarray of shape (n_iter + 1, n_margins)
        Largest absolute error of every margin's weighted shares, before the
        first step (row 0) and after each step (NaN: not measured).
    converged : bool
        Whether the largest error reached ``tol`` (``tol > 0``), or is at
        most 1e-10 after exactly ``max_iter`` steps (``tol == 0``).
    starved_levels : list of (int, int)
        ``(margin, level)`` pairs with a positive target whose current mass
        was zero at some step, so that no factor can meet the target.
    infeasible_levels : list of (int, int)
        ``(margin, level)`` pairs whose target lies outside what the bounds
        allow for that level alone.
    n_newton : int, default=0
        How many of the ``n_iter`` steps were Newton steps on all margins at
        once (``tol > 0`` without bounds, see :func:`rake_cells`).
    log_level_factors : list of ndarray or None, default=None
        The logarithms of the level factors, where unreachable targets drove
        them beyond what float holds (``level_factors`` then shows them
        clipped to float's range); None otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> from skbalance.kernels import rake_cells
    >>> result = rake_cells(np.array([0.2, 0.8]), [np.array([0, 1])],
    ...                     [np.array([0.5, 0.5])], max_iter=10, tol=1e-12)
    >>> result.cell_factors.tolist(), result.n_iter, result.converged
    ([2.5, 0.625], 1, True)
    """

    cell_factors: np.ndarray
    level_factors: list
    n_iter: int
    errors: np.ndarray
    converged: bool
    starved_levels: list
    infeasible_levels: list
    n_newton: int = 0
    log_level_factors: list | None = None


def _max_abs_diff(current, target):
    """Largest error of a margin's shares (its current mass, normalised: with
    bounds the mass need not sum to 1 until the margins are met)."""
    if not target.shape[0]:
        return 0.0
    total = current.sum()
    shares = current / total if total > 0 else current
    return float(np.max(np.abs(shares - target)))


class _BlockMass:
    """The cells' mass, with the latest steps held on their block's table.

    A step on one margin scales the rows of its block's joint table; the
    cells are multiplied once, by the ratio of the scaled table to the table
    they gave, when a step reaches a margin of another block (or the mass is
    read). A sweep then costs one group sum and one product over the cells
    per block instead of per margin: the same steps, up to rounding.
    """

    def __init__(self, mass, blocks):
        self.blocks = blocks
        self.replace(mass)

    def replace(self, mass):
        """Start again from new cell masses (bounded steps, Newton steps)."""
        self._mass, self._tables, self._pending = mass, {}, None

    def current(self, j):
        """Margin ``j``'s current totals."""
        block, axis = self.blocks.where[j]
        table = self._tables.get(block)
        if table is None:
            table = self._tables[block] = self.blocks.table(block, self.settled())
        return margin_of(table, axis)

    def scale(self, j, ratio):
        """Multiply every cell by ``ratio`` at its level of margin ``j``
        (whose current totals were just read)."""
        block, axis = self.blocks.where[j]
        table = self._tables[block]
        if table.ndim == 1:  # a margin alone: the cells at once, as the table would
            self._mass *= ratio[self.blocks.joint[block]]
            self._tables = {}
            return
        shape = [1] * table.ndim
        shape[axis] = ratio.shape[0]
        if self._pending is None:  # the table the cells give, kept for settled()
            self._pending = block, table
        # the other blocks' tables are now stale
        self._tables = {block: table * ratio.reshape(shape)}

    def settled(self):
        """The cell masses, every step applied."""
        if self._pending is not None:
            block, before = self._pending
            # a joint level without mass has cells without mass: any factor will do
            factors = np.divide(self._tables[block], before, out=np.ones_like(before),
                                where=before > 0)
            self._mass *= np.take(factors.ravel(), self.blocks.joint[block])
            self._pending = None
        return self._mass

    def measure(self, row, targets, fresh=False):
        """Fill the unmeasured (NaN) entries of an error row (``fresh``: every
        entry, from new group sums over the cells)."""
        if fresh:
            self.settled()
            self._tables = {}
        for i in range(row.shape[0]) if fresh else np.flatnonzero(np.isnan(row)):
            row[i] = _max_abs_diff(self.current(i), targets[i])


def solve_bounded_levels(base_mass, others, codes, target, low, high, log_cap):
    """Per-level factor ``a`` with ``sum D clip(a r, low, high) = target``.

    Returns the factors and a boolean mask of levels for which no factor
    exists (target outside ``[low sum D, high sum D]`` for that level).
    """
    n_levels = target.shape[0]
    mass_low = low * np.bincount(codes, base_mass, minlength=n_levels)
    mass_high = high * np.bincount(codes, base_mass, minlength=n_levels)
    scale = np.full(n_levels, np.inf)
    np.minimum.at(scale, codes, others)  # smallest r per level
    largest = np.zeros(n_levels)
    np.maximum.at(largest, codes, others)
    present = mass_high > 0
    infeasible = present & (
        (target < mass_low * (1 - 1e-12)) | (target > mass_high * (1 + 1e-12))
    )
    with np.errstate(divide="ignore", over="ignore"):  # infinities are clipped below
        # Below low/max(r) every cell sits at `low`; above high/min(r) at `high`.
        log_lo = np.log(np.where(present, low / np.where(largest > 0, largest, 1), 1))
        log_hi = np.log(np.where(present, high / np.where(scale > 0, scale, 1), 1))
    log_lo = np.clip(np.nan_to_num(log_lo, neginf=-log_cap), -log_cap, log_cap)
    log_hi = np.clip(np.nan_to_num(log_hi, posinf=log_cap), log_lo, log_cap)
    for _ in range(_BISECTION_STEPS):
        log_mid = 0.5 * (log_lo + log_hi)
        with np.errstate(over="ignore"):  # an infinite product is clipped to `high`
            mass = np.bincount(
                codes,
                base_mass * np.clip(np.exp(log_mid)[codes] * others, low, high),
                minlength=n_levels,
            )
        too_small = mass < target
        log_lo = np.where(too_small, log_mid, log_lo)
        log_hi = np.where(too_small, log_hi, log_mid)
    factor = np.exp(0.5 * (log_lo + log_hi))
    # Polish: with the set of truncated cells known, the equation is linear.
    scaled = factor[codes] * others
    free = (scaled > low) & (scaled < high)
    fixed_mass = np.bincount(
        codes, np.where(free, 0.0, base_mass * np.clip(scaled, low, high)), n_levels
    )
    free_mass = np.bincount(codes, np.where(free, base_mass * others, 0.0), n_levels)
    exact = (target - fixed_mass) / np.where(free_mass > 0, free_mass, 1.0)
    log_exact = np.log(np.where(exact > 0, exact, 1.0))
    polish = (free_mass > 0) & (exact > 0) & ~infeasible & (np.abs(log_exact) < log_cap)
    factor = np.where(polish, exact, factor)
    return factor, infeasible


def rake_cells(base_mass, codes, targets, *, max_iter, tol, bounds=None, accelerate=True,
               blocks=None):
    """Balance a cell table to target margins, one margin per step.

    Parameters
    ----------
    base_mass : ndarray of shape (n_cells,)
        Nonnegative base mass of every cell, summing to 1.
    codes : list of ndarray of int, each of shape (n_cells,)
        For every margin, the index of each cell's level in ``targets[j]``.
    targets : list of ndarray
        Target proportions of every margin's levels, each summing to 1.
    max_iter : int
        Largest number of single-margin steps (the paper's ``k``).
    tol : float
        Stop after the first step whose largest absolute marginal error is at
        most ``tol``; ``tol=0`` runs exactly ``max_iter`` single-margin steps.
        With ``tol > 0`` and no bounds, once the error is below 1e-3 the fit
        finishes with Newton steps on the dual over all margins at once (the
        same limit, reached in far fewer passes over the cells when there are
        many margins). Newton steps that fail to reach ``tol`` (each must cut
        the error by 10% or more, at most 30 of them) are discarded, and plain
        steps go on from where they were: never worse than plain raking.
    bounds : tuple of float, optional
        ``(low, high)`` limits on the cell factors ``g``. With ``tol > 0``,
        steps stop once 50 sweeps over the margins have not cut the error by
        1% (bounds that cannot all be met hold the weights there).
    accelerate : bool, default=True
        Whether ``tol > 0`` without bounds may finish with Newton steps
        (False: single-margin steps only, the first within ``tol`` ends).
    blocks : MarginBlocks, optional
        The margins' codes in blocks (:class:`MarginBlocks`), when the caller
        has them; made from ``codes`` when None.

    Returns
    -------
    RakingResult
        Cell and level factors, steps taken, error history and what could not
        be met.

    Examples
    --------
    Two margins of a 2 x 2 table, one step per margin:

    >>> import numpy as np
    >>> from skbalance.kernels import rake_cells
    >>> base = np.array([0.3, 0.1, 0.1, 0.5])
    >>> rows, cols = np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])
    >>> half = np.array([0.5, 0.5])
    >>> result = rake_cells(base, [rows, cols], [half, half], max_iter=2, tol=0)
    >>> np.round(base * result.cell_factors, 4).tolist()
    [0.4091, 0.1154, 0.0909, 0.3846]
    >>> result.n_iter
    2
    """
    if not isinstance(base_mass, np.ndarray):
        # The cell table is small: iterate on the host, return to the caller's
        # namespace and device.
        xp, where = array_namespace(base_mass), device(base_mass)
        result = rake_cells(
            to_numpy(base_mass), [to_numpy(c) for c in codes],
            [to_numpy(t) for t in targets], max_iter=max_iter, tol=tol, bounds=bounds,
            accelerate=accelerate, blocks=blocks,
        )
        result.cell_factors = from_numpy(result.cell_factors, xp, where, base_mass.dtype)
        result.level_factors = [from_numpy(a, xp, where, base_mass.dtype)
                                for a in result.level_factors]
        return result
    base_mass = np.asarray(base_mass, dtype=np.float64)
    targets = [np.asarray(t, dtype=np.float64) for t in targets]
    n_margins = len(codes)
    low, high = (0.0, np.inf) if bounds is None else map(float, bounds)
    bounded = bounds is not None

    level_factors = [np.ones(t.shape[0]) for t in targets]
    if blocks is None:
        blocks = MarginBlocks(codes, [t.shape[0] for t in targets])
    state = _BlockMass(base_mass * np.clip(1.0, low, high), blocks)
    currents = [state.current(j) for j in range(n_margins)]
    for factors, current, target in zip(level_factors, currents, targets):
        factors[(current <= 0) & (target == 0)] = 0.0  # absent and meant to be: weight 0
    cap = 10.0 ** (_PRODUCT_EXPONENT / max(n_margins, 1))
    errors = [np.array([_max_abs_diff(c, t) for c, t in zip(currents, targets)])]
    current = currents[0] if n_margins else None
    done = n_margins == 0 or (tol > 0 and errors[0].max() <= tol)
    starved, infeasible_levels = set(), set()
    log_factors = None  # the level factors' logarithms, once they drift apart
    sweeps = []  # bounded: the largest error of every sweep over the margins

    accelerate = (accelerate and tol > 0 and not bounded and n_margins > 1
                  and sum(t.shape[0] for t in targets) <= _NEWTON_MAX_LEVELS)
    n_iter = n_newton = 0
    while not done and n_iter < max_iter:
        if accelerate and not starved and np.nanmax(errors[-1]) < _NEWTON_START:
            accelerate = False  # tried once: if it fails, plain steps go on as before
            finish = _newton_steps(state.settled(), blocks, codes, targets, level_factors,
                                   tol, max_iter - n_iter)
            if finish is not None:
                mass, level_factors, rows = finish
                state.replace(mass)
                n_iter += len(rows)
                n_newton = len(rows)
                errors.extend(rows)
                break
        j = n_iter % n_margins
        margin_codes, target = codes[j], targets[j]
        if bounded:
            others = np.ones_like(base_mass)
            for i in range(n_margins):
                if i != j:
                    others *= level_factors[i][codes[i]]
            new, infeasible = solve_bounded_levels(
                base_mass, others, margin_codes, target, low, high,
                log_cap=_LOG_CAP / n_margins,
            )
            infeasible_levels.update((j, int(lv)) for lv in np.flatnonzero(infeasible))
            others *= new[margin_codes]
            state.replace(base_mass * np.clip(others, low, high, out=others))
        else:
            if current.min() > 0:
                ratio = target / current
            else:  # a level without mass: 0 if its target is 0, else unreachable
                missing = (current <= 0) & (target > 0)
                starved.update((j, int(lv)) for lv in np.flatnonzero(missing))
                ratio = np.divide(target, current, out=np.ones_like(target),
                                  where=current > 0)
                ratio[(current <= 0) & (target == 0)] = 0.0
            state.scale(j, ratio)
            if log_factors is None:
                with np.errstate(over="ignore"):
                    new = level_factors[j] * ratio
                if not _within(new, cap):
                    # unreachable targets drive the factors apart without bound
                    # (cells emptying for good, or parts of the table scaled
                    # against each other): go on in the log domain, where they
                    # neither overflow nor underflow
                    log_factors, accelerate = [_log(f) for f in level_factors], False
            if log_factors is not None:
                log_factors[j] = log_factors[j] + _log(ratio)
                new = None
        if new is not None:
            level_factors[j] = new
        n_iter += 1

        # The next step needs the next margin's current totals anyway; its
        # error is a lower bound on the largest error. Only when that bound
        # is within tol are the other margins measured, so the stop rule is
        # exact at the cost of one group sum per step.
        following = n_iter % n_margins
        current = state.current(following)
        row = np.full(n_margins, np.nan)
        row[following] = _max_abs_diff(current, targets[following])
        if tol > 0 and row[following] <= tol:
            state.measure(row, targets, fresh=True)  # the stop rule reads the cells
            current = state.current(following)
            done = row.max() <= tol
        errors.append(row)
        if bounded and tol > 0 and not done and following == 0:
            sweeps.append(np.nanmax(np.vstack(errors[-n_margins:])))
            if _bounded_stall(sweeps):
                break  # at the bounds' limit: more steps change nothing that counts

    mass = state.settled()
    if log_factors is not None:
        # as small as the table allows; the weights from them, as
        # compute_weights gives them (the same numbers as the steps' mass, up
        # to rounding)
        log_factors = _regauged(log_factors, _components(base_mass, codes, targets))
        log_product = np.zeros_like(base_mass)
        for margin_codes, logs in zip(codes, log_factors):
            log_product += logs[margin_codes]
        observed = base_mass > 0  # a mass of at most 1: no overflow on the way
        mass = np.zeros_like(base_mass)
        mass[observed] = np.exp(np.log(base_mass[observed]) + log_product[observed])
        errors[-1] = np.full(n_margins, np.nan)
        finite = np.concatenate([logs[np.isfinite(logs)] for logs in log_factors])
        if finite.size == 0 or np.abs(finite).max() <= np.log(cap):
            level_factors, log_factors = [np.exp(logs) for logs in log_factors], None
        else:  # beyond float: shown clipped; the logarithms are exact
            level_factors = [np.exp(np.clip(logs, -745.0, 709.0)) for logs in log_factors]
        state.replace(mass)
    errors = np.vstack(errors)
    state.measure(errors[-1], targets)
    final = errors[-1].max() if n_margins else 0.0
    converged = bool(final <= (tol if tol > 0 else 1e-10))
    cell_factors = np.divide(
        mass, base_mass, out=np.zeros_like(mass), where=base_mass > 0
    )
    if log_factors is None:
        level_factors = _centred(level_factors)
    if bounded:  # exact values, free of the rounding in mass / base_mass
        product = np.ones_like(base_mass)
        for margin_codes, factors in zip(codes, level_factors):
            product *= factors[margin_codes]
        cell_factors = np.clip(product, low, high)
    return RakingResult(
        cell_factors=cell_factors,
        level_factors=level_factors,
        n_iter=n_iter,
        errors=errors,
        converged=converged,
        starved_levels=sorted(starved),
        infeasible_levels=sorted(infeasible_levels),
        n_newton=n_newton,
        log_level_factors=log_factors,
    )


def _bounded_stall(sweeps, window=_STALL_SWEEPS):
    """Whether the last ``window`` sweeps of bounded raking cut the error by
    less than 1%: the bounds hold the weights at a point that misses the
    targets (they cannot all be met), and more steps do not move it."""
    if len(sweeps) <= window:
        return False
    return min(sweeps[-window:]) > 0.99 * min(sweeps[:-window])


def _log(values):
    """Natural logarithm, 0 giving -inf (a level meant to have no weight)."""
    with np.errstate(divide="ignore"):
        return np.log(values)


def _within(factors, cap):
    """Whether every positive factor lies in [1 / cap, cap]."""
    positive = factors[factors > 0]
    return bool(positive.size == 0 or (positive.max() <= cap and positive.min() >= 1 / cap))


def _components(base_mass, codes, targets):
    """Every level's connected part of the table: levels are linked by the
    observed cells that hold them. Returns, per margin, each level's part
    (-1: a level no observed cell holds)."""
    offsets = np.cumsum([0] + [t.shape[0] for t in targets])
    observed = base_mass > 0
    first = offsets[0] + codes[0][observed]
    links = [(first, offsets[j] + codes[j][observed]) for j in range(1, len(codes))]
    n_nodes = int(offsets[-1])
    parent = np.arange(n_nodes)

    def root(node):
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for heads, tails in links:  # union-find over the cells' (level 0, level j) links
        for a, b in set(zip(heads.tolist(), tails.tolist())):
            ra, rb = root(a), root(b)
            if ra != rb:
                parent[rb] = ra
    held = np.zeros(n_nodes, dtype=bool)
    held[first] = True
    for _, tails in links:
        held[tails] = True
    part = np.array([root(node) for node in range(n_nodes)])
    part = np.where(held, part, -1)
    return [part[offsets[j]:offsets[j + 1]] for j in range(len(codes))]


def _regauged(log_factors, components):
    """The same cells' logarithms, each later margin's log factors centred
    (mean 0) within every connected part of the table and what was taken off
    added to the first margin's: a part's levels can be scaled against another
    part's without changing any cell."""
    out = [logs.copy() for logs in log_factors]
    first_part = components[0]
    n_parts = int(max(part.max() for part in components)) + 1
    for j in range(1, len(out)):
        part = components[j]
        usable = (part >= 0) & np.isfinite(out[j])
        if not usable.any():
            continue
        sums = np.bincount(part[usable], out[j][usable], minlength=n_parts)
        counts = np.bincount(part[usable], minlength=n_parts)
        centre = np.divide(sums, counts, out=np.zeros(n_parts), where=counts > 0)
        out[j][part >= 0] -= centre[part[part >= 0]]
        out[0][first_part >= 0] += centre[first_part[first_part >= 0]]
    return out


def _centred(level_factors, spread=1e6):
    """The same cell products from factors of a typical size, when they drifted.

    Multiplying one margin's factors by ``c`` and the first margin's by
    ``1 / c`` changes no cell; targets that cannot be met (within bounds, or
    at all) drive those constants apart without bound (factors of 1e-132 and
    1e+132). Every margin after the first whose positive factors have a
    geometric mean outside ``[1 / spread, spread]`` is divided by it, the
    first margin multiplied by it. Factors of a typical size are returned
    as they are (the same numbers, bit for bit).
    """
    out = list(level_factors)
    for j in range(1, len(out)):
        positive = out[j][(out[j] > 0) & np.isfinite(out[j])]
        if positive.size == 0:
            continue
        centre = float(np.exp(np.mean(np.log(positive))))
        if 1 / spread <= centre <= spread or not 0 < centre < np.inf:
            continue
        out[j] = out[j] / centre
        out[0] = out[0] * centre
    return out


def _hessian_pieces(blocks, codes):
    """Every block's margins in pieces of at most ``_BLOCK_LEVELS`` joint
    levels: per block, a list of (margins, shape, joint code of every cell).
    Two pieces of different blocks give their two-way tables in one group sum
    whose totals stay in cache."""
    pieces = []
    for members, shape, joint in zip(blocks.members, blocks.shapes, blocks.joint):
        if int(np.prod(shape)) <= _BLOCK_LEVELS:
            pieces.append([(members, shape, joint)])
            continue
        split = MarginBlocks([codes[j] for j in members], shape, limit=_BLOCK_LEVELS)
        pieces.append([([members[i] for i in piece], piece_shape, piece_joint)
                       for piece, piece_shape, piece_joint
                       in zip(split.members, split.shapes, split.joint)])
    return pieces


def _block_errors(mass, blocks, targets):
    """Every block's joint table, every margin's current mass and largest error."""
    tables = [blocks.table(b, mass) for b in range(len(blocks.members))]
    currents = [margin_of(tables[b], axis) for b, axis in blocks.where]
    errors = np.array([_max_abs_diff(c, t) for c, t in zip(currents, targets)])
    return tables, currents, errors


def _dual_hessian(mass, blocks, tables, offsets, pieces):
    """Hessian of the raking dual in the log-factors: the two-way tables of
    the mass over every pair of margins (diagonal blocks: the margins).

    Pairs within a block come from its joint table; pairs across two blocks
    from one group sum over the joint codes of a piece of each
    (:func:`_hessian_pieces`). Above about ``_HESSIAN_CELLS`` cells every
    table comes from one strided subsample (scaled up), so that each row
    still sums to its diagonal entry (the exact null space): the Hessian only
    preconditions the Newton steps, whose gradient is exact.
    """
    stride = max(1, mass.shape[0] // _HESSIAN_CELLS)
    if stride > 1:
        mass = mass[::stride] * stride
        tables = [np.bincount(joint[::stride], mass, minlength=table.size).reshape(table.shape)
                  for joint, table in zip(blocks.joint, tables)]
        pieces = [[(members, shape, joint[::stride]) for members, shape, joint in block]
                  for block in pieces]
    hessian = np.zeros((offsets[-1], offsets[-1]))

    def place(j, k, table):
        rows, columns = slice(offsets[j], offsets[j + 1]), slice(offsets[k], offsets[k + 1])
        if j == k:
            hessian[rows, rows] = np.diag(table)
        else:
            hessian[rows, columns] = table
            hessian[columns, rows] = table.T

    for a, (table, margins) in enumerate(zip(tables, blocks.members)):
        for axis, j in enumerate(margins):
            for other, k in enumerate(margins[axis:], start=axis):
                place(j, k, margin_of(table, axis, other))
        for later in pieces[a + 1:]:
            for first, first_shape, first_joint in pieces[a]:
                for second, second_shape, second_joint in later:
                    size = int(np.prod(second_shape))
                    both = np.bincount(first_joint * size + second_joint, mass,
                                       minlength=int(np.prod(first_shape)) * size)
                    both = both.reshape(first_shape + second_shape)
                    for axis, j in enumerate(first):
                        for other, k in enumerate(second, start=len(first)):
                            place(j, k, margin_of(both, axis, other))
    return hessian


def _outer_sum(parts):
    """``parts[0][i] + parts[1][j] + ...`` over the joint levels, flattened."""
    total = np.zeros(())
    for part in parts:
        total = np.add.outer(total, part)
    return total.ravel()


def _newton_steps(mass, blocks, codes, targets, level_factors, tol, max_steps):
    """Finish raking with Newton steps on the dual, all margins at once.

    The raking limit minimises ``sum_c D[c] exp(sum_j u_j[c]) - sum_j t_j u_j``
    over the log-factors ``u``: its gradient is the margins minus the targets,
    its Hessian the two-way tables of the mass (:func:`_dual_hessian`;
    singular along the directions that move mass between margins, hence the
    pseudo-inverse). A step multiplies every cell by one factor per block of
    margins (:class:`MarginBlocks`), the exponential of its margins' summed
    changes, taken over the block's table: each step costs less than one
    sweep of plain raking and, near the limit, gains several.

    Works on copies. Returns ``None`` unless ``tol`` is met within
    ``max_steps`` steps that each cut the largest error by 10% or more (the
    caller then goes on with plain steps from where it was), else the mass,
    level factors and error rows of the steps.
    """
    offsets = np.cumsum([0] + [t.shape[0] for t in targets])
    tables, currents, error = _block_errors(mass, blocks, targets)
    mass = mass.copy()
    level_factors = [factors.copy() for factors in level_factors]
    rows, inverse, fast, pieces = [], None, False, None
    while error.max() > tol:
        if len(rows) == min(max_steps, _NEWTON_MAX_STEPS):
            return None
        if inverse is None or not fast:
            # a new Hessian only when the last step with the old one was slow:
            # near the limit it barely changes, and making it costs more passes
            # over the cells than a step
            pieces = _hessian_pieces(blocks, codes) if pieces is None else pieces
            inverse = np.linalg.pinv(_dual_hessian(mass, blocks, tables, offsets, pieces),
                                     rcond=1e-12, hermitian=True)
        gradient = np.concatenate(currents) - np.concatenate(targets)
        step = -inverse @ gradient
        parts = [step[offsets[j]:offsets[j + 1]] for j in range(len(targets))]
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # judged below
            for margins, joint in zip(blocks.members, blocks.joint):
                mass *= np.take(np.exp(_outer_sum([parts[j] for j in margins])), joint)
            total = mass.sum()
            # the mass sums to 1 at the limit: normalising keeps the total exact
            mass /= total
            level_factors = [factors * np.exp(part)
                             for factors, part in zip(level_factors, parts)]
            level_factors[0] /= total
            tables, currents, new_error = _block_errors(mass, blocks, targets)
        healthy = (np.isfinite(total) and total > 0 and np.all(np.isfinite(step))
                   and all(np.all(np.isfinite(f)) for f in level_factors))
        if not (healthy and new_error.max() <= 0.9 * error.max()):
            return None
        fast = new_error.max() <= _NEWTON_REUSE * error.max()
        error = new_error
        rows.append(error.copy())
    return mass, level_factors, rows


def rake_cells_batch(base_mass, codes, targets, *, max_iter, tol):
    """Rake many base masses over the same cells at once (no bounds).

    Replicate weights change the base mass of every cell but not the cells:
    one step updates every replicate with one sparse product per margin.

    Parameters
    ----------
    base_mass : ndarray of shape (n_cells, n_batch)
        Nonnegative base mass of every cell, one column per problem, each
        summing to 1.
    codes : list of ndarray of int, each of shape (n_cells,)
        For every margin, the index of each cell's level in ``targets[j]``.
    targets : list of ndarray
        Target proportions of every margin's levels, each summing to 1.
    max_iter : int
        Largest number of single-margin steps.
    tol : float
        Stop after the first full sweep where every column's largest marginal
        error is at most ``tol``; ``tol=0`` runs exactly ``max_iter`` steps.

    Returns
    -------
    cell_factors : ndarray of shape (n_cells, n_batch)
        Balanced over base mass (0 where the base mass is 0).
    n_iter : int
        Steps taken (the same for every column).
    errors : ndarray of shape (n_batch,)
        Largest marginal error of every column after the last step.

    Examples
    --------
    >>> import numpy as np
    >>> from skbalance.kernels import rake_cells_batch
    >>> base = np.array([[0.2, 0.5], [0.8, 0.5]])
    >>> factors, n_iter, errors = rake_cells_batch(
    ...     base, [np.array([0, 1])], [np.array([0.5, 0.5])], max_iter=5, tol=1e-12)
    >>> factors.round(3).tolist(), n_iter
    ([[2.5, 1.0], [0.625, 1.0]], 1)
    """
    from scipy import sparse

    base_mass = np.asarray(base_mass, dtype=np.float64)
    n_cells = base_mass.shape[0]
    indicators = [
        sparse.csr_array((np.ones(n_cells), (c, np.arange(n_cells))),
                         shape=(t.shape[0], n_cells))
        for c, t in zip(codes, targets)
    ]
    mass = base_mass.copy()
    n_margins = len(codes)

    def error_of(j):
        return np.max(np.abs(indicators[j] @ mass - targets[j][:, None]), axis=0)

    n_iter = 0
    done = n_margins == 0 or (tol > 0 and max(error_of(j).max() for j in range(n_margins))
                              <= tol)
    while not done and n_iter < max_iter:
        j = n_iter % n_margins
        current = indicators[j] @ mass
        target = targets[j][:, None]
        starved = (current <= 0) & (target > 0)
        if starved.any():
            level, column = np.argwhere(starved)[0]
            raise ValueError(
                f"Replicate {column}: level {level} of margin {j} has a positive target but "
                "no weight in this replicate, so its target cannot be met."
            )
        ratio = np.divide(target, current, out=np.zeros_like(current), where=current > 0)
        mass *= ratio[codes[j]]
        n_iter += 1
        if tol > 0 and n_iter % n_margins == 0:  # checked once per sweep
            done = max(error_of(i).max() for i in range(n_margins)) <= tol
    errors = (np.max([error_of(i) for i in range(n_margins)], axis=0) if n_margins
              else np.zeros(base_mass.shape[1]))
    factors = np.divide(mass, base_mass, out=np.zeros_like(mass), where=base_mass > 0)
    return factors, n_iter, errors
