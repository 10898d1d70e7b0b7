"""The pure kernels against plain loops."""

import tracemalloc
import warnings

import numpy as np
import pytest

from skbalance.kernels import encode_cells, first_occurrence, group_sum, rake_cells


@pytest.mark.parametrize("sizes", [[3], [2, 5], [4, 1, 3], [60] * 12])
def test_encode_cells_numbers_distinct_combinations(sizes):
    rng = np.random.default_rng(len(sizes))
    n = 500
    codes = [rng.integers(0, s, size=n) for s in sizes]
    cells, n_cells, counts = encode_cells(codes, sizes, return_counts=True)
    rows = list(zip(*codes))
    # every observed combination has a cell; cells without rows may exist only
    # when most combinations occur
    assert np.count_nonzero(counts) == len(set(rows))
    assert n_cells == len(set(rows)) or 2 * len(set(rows)) >= np.prod(sizes)
    assert cells.min() >= 0 and cells.max() < n_cells
    np.testing.assert_array_equal(counts, np.bincount(cells, minlength=n_cells))
    # same cell <=> same combination, checked with a plain dictionary
    seen = {}
    for row, cell in zip(rows, cells):
        assert seen.setdefault(row, cell) == cell
    assert len(set(seen.values())) == len(set(rows))


def _rows_with_repeats(seed, sizes, duplicated, sort_rows, n=3000):
    """Codes of n rows, uniform over the levels, a share of them copies of others."""
    rng = np.random.default_rng(seed)
    codes = np.column_stack([rng.integers(0, s, size=n) for s in sizes])
    copies = rng.random(n) < duplicated
    codes[copies] = codes[rng.integers(0, n, size=copies.sum())]  # repeated rows
    if sort_rows:
        codes = codes[np.lexsort(codes.T[::-1])]
    return [np.ascontiguousarray(c) for c in codes.T]


@pytest.mark.parametrize("duplicated", [0.0, 0.02, 0.5])
@pytest.mark.parametrize("sort_rows", [False, True])
def test_encode_cells_when_nearly_every_row_is_its_own_cell(monkeypatch, duplicated,
                                                           sort_rows):
    # 60**5 combinations (beyond the dense table) and rows mostly distinct: the
    # rows are numbered by one sort (few duplicates) or by a hash (many).
    from skbalance.kernels import _cells

    calls = []
    by_sort = _cells._compress_by_sort
    monkeypatch.setattr(_cells, "_compress_by_sort",
                        lambda *args: calls.append(1) or by_sort(*args))
    sizes = [60] * 5
    codes = _rows_with_repeats(7, sizes, duplicated, sort_rows)
    cells, n_cells, cell_codes, counts = encode_cells(codes, sizes, return_cell_codes=True,
                                                      return_counts=True)
    rows = list(zip(*(c.tolist() for c in codes)))
    assert bool(calls) == (duplicated < 0.1)
    assert n_cells == len(set(rows))
    expected_counts = {}
    for row in rows:
        expected_counts[row] = expected_counts.get(row, 0) + 1
    for row, cell in zip(rows, cells):  # each cell holds exactly its combination
        assert tuple(int(c[cell]) for c in cell_codes) == row
        assert counts[cell] == expected_counts[row]


@pytest.mark.parametrize("duplicated, sort_rows", [(0.0, False), (0.02, True), (0.02, False),
                                                  (0.5, False), (0.5, True)])
def test_distinct_row_count_only_where_rows_hardly_share_combinations(duplicated, sort_rows):
    from skbalance.kernels import distinct_row_count

    sizes = [60] * 5
    codes = [c.astype(np.int8) for c in _rows_with_repeats(8, sizes, duplicated, sort_rows)]
    kept = [c.copy() for c in codes]
    count = distinct_row_count(codes, sizes)
    if duplicated < 0.1:
        assert count == len(set(zip(*(c.tolist() for c in codes))))
    else:  # half the rows repeat others: numbering the cells pays
        assert count is None
    assert all(np.array_equal(c, k) and c.dtype == k.dtype for c, k in zip(codes, kept))
    # few combinations (a dense table), or no rows: the cells are numbered
    assert distinct_row_count([c % 3 for c in codes], [3] * 5) is None
    assert distinct_row_count([c[:0] for c in codes], sizes) is None


@pytest.mark.parametrize("sizes", [[3, 4], [60] * 5])
def test_encode_cells_of_no_rows(sizes):
    codes = [np.zeros(0, dtype=np.int64) for _ in sizes]
    cells, n_cells, cell_codes, counts = encode_cells(codes, sizes, return_cell_codes=True,
                                                      return_counts=True)
    assert cells.shape == (0,) and counts.sum() == 0
    assert n_cells == 0 and all(c.shape == (0,) for c in cell_codes)


def test_first_occurrence_and_group_sum():
    cells = np.array([2, 0, 2, 1, 0, 2])
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    assert first_occurrence(cells, 3).tolist() == [1, 3, 0]
    expected = [0.0, 0.0, 0.0]
    for cell, value in zip(cells, values):
        expected[cell] += value
    assert group_sum(cells, values, 3).tolist() == expected
    assert group_sum(cells, None, 3).tolist() == [2.0, 1.0, 3.0]


def test_memory_follows_distinct_cells_not_level_product():
    # 8 columns x 10 levels: 10**8 possible combinations, far fewer observed.
    rng = np.random.default_rng(0)
    n = 200_000
    latent = rng.integers(0, 50, size=n)
    codes = [(latent * (j + 1) + rng.integers(0, 2, size=n)) % 10 for j in range(8)]
    tracemalloc.start()
    cells, n_cells = encode_cells(codes, [10] * 8)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert n_cells < 50 * 2**8
    # A dense table over 10**8 combinations would need >= 100 MB; the hash
    # path needs a few arrays of n int64 (1.6 MB each).
    assert peak < 40 * n * 8 / 5  # about 12.8 MB
    assert len(set(zip(*codes))) == n_cells


def test_rake_cells_error_history_and_stop_rule():
    base = np.array([0.3, 0.1, 0.1, 0.5])
    rows, cols = np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])
    half = np.array([0.5, 0.5])
    result = rake_cells(base, [rows, cols], [half, half], max_iter=100, tol=1e-9,
                        accelerate=False)
    assert result.converged
    errors = np.nanmax(result.errors, axis=1)
    assert errors[-1] <= 1e-9 and np.all(errors[:-1] > 1e-9)
    assert not np.isnan(result.errors[-1]).any()
    # the error history is what a plain recomputation gives
    mass = base * result.cell_factors
    assert abs(mass[:2].sum() - 0.5) == pytest.approx(result.errors[-1, 0], abs=1e-15)
    assert abs(mass[[0, 2]].sum() - 0.5) == pytest.approx(result.errors[-1, 1], abs=1e-15)
    # factors are a product of per-level factors
    a, b = result.level_factors
    np.testing.assert_allclose(result.cell_factors, a[rows] * b[cols], rtol=1e-14)


def test_rake_cells_zero_steps_is_identity():
    base = np.array([0.2, 0.8])
    result = rake_cells(base, [np.array([0, 1])], [np.array([0.5, 0.5])], max_iter=0, tol=0)
    assert result.n_iter == 0 and not result.converged
    np.testing.assert_array_equal(result.cell_factors, [1.0, 1.0])
    assert result.errors.shape == (1, 1)


def test_batched_raking_equals_one_problem_at_a_time():
    from skbalance.kernels import rake_cells, rake_cells_batch

    rng = np.random.default_rng(7)
    codes = [index.ravel() for index in np.indices((4, 3, 5))]  # every cell present
    targets = [rng.dirichlet(np.ones(k)) for k in (4, 3, 5)]
    base = rng.uniform(0.5, 2, size=(60, 6))
    base /= base.sum(axis=0)
    for k, tol in [(0, 0.0), (1, 0.0), (7, 0.0), (2000, 1e-12)]:
        factors, n_iter, errors = rake_cells_batch(base, codes, targets, max_iter=k, tol=tol)
        for r in range(base.shape[1]):
            single = rake_cells(base[:, r], codes, targets, max_iter=max(k, n_iter), tol=0)
            if tol == 0:
                assert n_iter == k
                np.testing.assert_allclose(factors[:, r], single.cell_factors, rtol=1e-12)
            else:  # converged: both at the raking solution
                np.testing.assert_allclose(factors[:, r] * base[:, r],
                                           single.cell_factors * base[:, r], atol=1e-12)
        if tol:
            assert errors.max() <= tol


def _many_margins(n_rows=20_000, n_margins=8, n_levels=10, seed=0):
    """Correlated columns (as in benchmarks/bench_raking.py's eight case)."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n_rows, 2))
    codes, targets = [], []
    truth = np.exp(0.4 * latent[:, 0] - 0.2 * latent[:, 1])
    for j in range(n_margins):
        score = latent @ (np.array([np.cos(j), np.sin(j)]) * 0.8) + rng.normal(size=n_rows)
        level = np.searchsorted(np.quantile(score, np.linspace(0, 1, n_levels + 1)[1:-1]),
                                score)
        codes.append(level)
        targets.append(np.bincount(level, truth, minlength=n_levels) / truth.sum())
    base = rng.lognormal(0.0, 0.5, size=n_rows)
    return base / base.sum(), codes, targets


def _plain_raking_steps(base, codes, targets, steps):
    """Raking by a plain loop: one group sum and one product over the cells per
    step; the mass after the steps and, per step, the next margin's error."""
    mass, history = base.copy(), []
    for step in range(steps):
        j = step % len(codes)
        current = np.bincount(codes[j], mass, minlength=targets[j].shape[0])
        ratio = np.divide(targets[j], current, out=np.ones_like(current), where=current > 0)
        ratio[(current <= 0) & (targets[j] == 0)] = 0.0
        mass = mass * ratio[codes[j]]
        following = (step + 1) % len(codes)
        current = np.bincount(codes[following], mass, minlength=targets[following].shape[0])
        history.append(np.abs(current / current.sum() - targets[following]).max())
    return mass, np.array(history)


def _block_raking_case():
    """20,000 cells, margins of 4, 5, 3, 6 and 2 levels in blocks [4, 5, 3] and
    [6, 2]; joint levels without cells; a level meant to get no weight."""
    rng = np.random.default_rng(11)
    n_cells, sizes = 20_000, [4, 5, 3, 6, 2]
    first = rng.integers(0, 4, n_cells)
    codes = [first, (first + rng.integers(0, 3, n_cells)) % 5]  # 2 of 5 levels per first
    codes += [rng.integers(0, s, n_cells) for s in sizes[2:]]
    targets = [rng.random(s) + 0.2 for s in sizes]
    targets[3][4] = 0.0
    targets = [t / t.sum() for t in targets]
    base = rng.lognormal(size=n_cells)
    return base / base.sum(), codes, targets, sizes


@pytest.mark.parametrize("steps", [1, 2, 3, 4, 5, 7, 11, 40])
def test_raking_steps_on_block_tables_equal_a_plain_loop(steps):
    from skbalance.kernels import MarginBlocks

    base, codes, targets, sizes = _block_raking_case()
    assert MarginBlocks(codes, sizes).members == [[0, 1, 2], [3, 4]]
    mass, history = _plain_raking_steps(base, codes, targets, steps)
    result = rake_cells(base, codes, targets, max_iter=steps, tol=0)
    assert result.n_iter == steps
    np.testing.assert_allclose(base * result.cell_factors, mass, rtol=1e-12, atol=1e-300)
    following = np.arange(1, steps + 1) % len(codes)
    np.testing.assert_allclose(result.errors[np.arange(1, steps + 1), following], history,
                               rtol=1e-9, atol=1e-13)  # a margin just met: rounding
    # the last row measures every margin, from the mass returned
    shares = [np.bincount(c, mass, minlength=s) / mass.sum() for c, s in zip(codes, sizes)]
    np.testing.assert_allclose(result.errors[-1],
                               [np.abs(sh - t).max() for sh, t in zip(shares, targets)],
                               rtol=1e-9, atol=1e-13)


def test_raking_to_tol_on_block_tables_stops_where_a_plain_loop_does():
    base, codes, targets, _ = _block_raking_case()
    tol = 1e-9
    result = rake_cells(base, codes, targets, max_iter=10_000, tol=tol, accelerate=False)
    mass, _ = _plain_raking_steps(base, codes, targets, result.n_iter)
    assert result.converged
    for steps in (result.n_iter - 1, result.n_iter):  # first within tol at n_iter
        mass, _ = _plain_raking_steps(base, codes, targets, steps)
        errors = [np.abs(np.bincount(c, mass, minlength=t.shape[0]) / mass.sum() - t).max()
                  for c, t in zip(codes, targets)]
        assert (max(errors) <= tol) == (steps == result.n_iter)
    np.testing.assert_allclose(base * result.cell_factors, mass, rtol=1e-11)


@pytest.mark.parametrize("n_rows", [20_000, 70_000])
def test_newton_finish_reaches_the_raking_limit(n_rows):
    # blocks of 2 margins (100 joint levels); at 70,000 cells of 3 (1,000 joint
    # levels), the Hessian's tables across blocks from pieces of them
    from skbalance.kernels import MarginBlocks

    base, codes, targets = _many_margins(n_rows=n_rows)
    blocks = MarginBlocks(codes, [t.shape[0] for t in targets])
    assert {len(m) for m in blocks.members} == ({2} if n_rows == 20_000 else {2, 3})
    plain = rake_cells(base, codes, targets, max_iter=20_000, tol=1e-13, accelerate=False)
    fast = rake_cells(base, codes, targets, max_iter=20_000, tol=1e-13)
    assert plain.converged and fast.converged
    assert fast.n_newton > 0 and fast.n_iter < plain.n_iter / 3
    np.testing.assert_allclose(fast.cell_factors, plain.cell_factors, rtol=1e-9)
    # the margins, recomputed from the factors, meet tol; the weights keep their total
    mass = base * fast.cell_factors
    assert mass.sum() == pytest.approx(1.0, abs=1e-14)
    for c, t in zip(codes, targets):
        assert np.abs(np.bincount(c, mass, minlength=t.shape[0]) - t).max() <= 1e-13
    # cell factors are still the product of the level factors
    product = np.prod([a[c] for a, c in zip(fast.level_factors, codes)], axis=0)
    np.testing.assert_allclose(fast.cell_factors, product, rtol=1e-12)
    # the error history has a row per step, Newton rows measuring every margin
    assert fast.errors.shape == (fast.n_iter + 1, len(codes))
    assert not np.isnan(fast.errors[-fast.n_newton:]).any()


def _plain_two_way_tables(mass, codes, sizes):
    """The dual's Hessian by a plain loop over cells and pairs of margins."""
    offsets = np.cumsum([0] + sizes)
    hessian = np.zeros((offsets[-1], offsets[-1]))
    for c in range(mass.shape[0]):
        for j in range(len(codes)):
            for k in range(len(codes)):
                if j == k:
                    hessian[offsets[j] + codes[j][c], offsets[j] + codes[j][c]] += mass[c]
                else:
                    hessian[offsets[j] + codes[j][c], offsets[k] + codes[k][c]] += mass[c]
    return hessian


# blocks of margins (2,000 cells): [3, 4, 5] (60 joint levels), [70, 2]; [4] * 4 is
# one block of four axes; [300, 2] one block in two pieces (of at most 256 joint
# levels); [10] * 5 with a limit of 1,000 is [10, 10, 10] in two pieces, then
# [10, 10]: two-way tables across blocks from pieces
@pytest.mark.parametrize("sizes, limit", [([3, 4, 5, 70, 2], None), ([4, 4, 4, 4], None),
                                          ([300, 2], None), ([6], None), ([10] * 5, 1000),
                                          ([300, 2, 7], 8)])
@pytest.mark.parametrize("cells_cap", [None, 700])
def test_newton_hessian_is_the_two_way_tables(sizes, limit, cells_cap, monkeypatch):
    from skbalance.kernels import MarginBlocks, _ipf

    if cells_cap:  # subsampled: every 2nd cell of 2,000, scaled by 2
        monkeypatch.setattr(_ipf, "_HESSIAN_CELLS", cells_cap)
    rng = np.random.default_rng(len(sizes))
    n_cells = 2000
    codes = [rng.integers(0, s, size=n_cells) for s in sizes]
    targets = [np.full(s, 1.0 / s) for s in sizes]
    mass = rng.random(n_cells)
    blocks = MarginBlocks(codes, sizes, limit=limit)
    tables, currents, _ = _ipf._block_errors(mass, blocks, targets)
    for c, t, current in zip(codes, targets, currents):
        np.testing.assert_allclose(current, np.bincount(c, mass, minlength=t.shape[0]),
                                   rtol=1e-12)
    offsets = np.cumsum([0] + sizes)
    pieces = _ipf._hessian_pieces(blocks, codes)
    hessian = _ipf._dual_hessian(mass, blocks, tables, offsets, pieces)
    stride = 1 if cells_cap is None else n_cells // cells_cap
    expected = _plain_two_way_tables(mass[::stride] * stride,
                                     [c[::stride] for c in codes], sizes)
    np.testing.assert_allclose(hessian, expected, rtol=1e-12, atol=1e-15)


def test_newton_finish_with_uneven_margin_blocks():
    # margins of 3, 4, 5, 70 and 2 levels (two blocks of joint codes), and a
    # dimension of 300 levels alone: the limit of plain raking either way
    rng = np.random.default_rng(7)
    n_cells = 30_000
    latent = rng.normal(size=n_cells)
    codes, targets = [], []
    for j, size in enumerate([3, 4, 5, 70, 2, 300]):
        score = latent * np.cos(j) + rng.normal(size=n_cells)
        level = np.searchsorted(np.quantile(score, np.linspace(0, 1, size + 1)[1:-1]), score)
        codes.append(level)
        targets.append(np.bincount(level, np.exp(0.5 * latent), minlength=size))
        targets[-1] /= targets[-1].sum()
    base = rng.lognormal(size=n_cells)
    base /= base.sum()
    plain = rake_cells(base, codes, targets, max_iter=50_000, tol=1e-13, accelerate=False)
    fast = rake_cells(base, codes, targets, max_iter=50_000, tol=1e-13)
    assert plain.converged and fast.converged and fast.n_newton > 0
    np.testing.assert_allclose(fast.cell_factors, plain.cell_factors, rtol=1e-9)
    mass = base * fast.cell_factors
    for c, t in zip(codes, targets):
        assert np.abs(np.bincount(c, mass, minlength=t.shape[0]) - t).max() <= 1e-13


def test_tol_zero_is_k_plain_steps_whatever_the_solver():
    base, codes, targets = _many_margins(n_rows=3000)
    for k in (1, 7, 40):
        a = rake_cells(base, codes, targets, max_iter=k, tol=0)
        b = rake_cells(base, codes, targets, max_iter=k, tol=0, accelerate=False)
        assert a.n_newton == 0 and a.n_iter == k
        np.testing.assert_array_equal(a.cell_factors, b.cell_factors)


def test_newton_that_cannot_help_hands_back_to_plain_steps(monkeypatch):
    # unreachable: cell (1, 1) alone holds level 1 of margin 0 (0.5) > target 0.3;
    # Newton tried from the first step drives the mass towards 0 and is discarded
    monkeypatch.setattr("skbalance.kernels._ipf._NEWTON_START", 1.0)
    base = np.array([0.3, 0.3, 0.4])
    codes = [np.array([0, 0, 1]), np.array([0, 1, 1])]
    targets = [np.array([0.5, 0.5]), np.array([0.7, 0.3])]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow on the way
        result = rake_cells(base, codes, targets, max_iter=500, tol=1e-10)
    reference = rake_cells(base, codes, targets, max_iter=500, tol=1e-10, accelerate=False)
    assert not result.converged and result.n_iter == 500 and result.n_newton == 0
    np.testing.assert_array_equal(result.cell_factors, reference.cell_factors)
    np.testing.assert_array_equal(result.errors, reference.errors)


def test_one_blas_thread_limits_blas_and_restores_it():
    from threadpoolctl import threadpool_info, threadpool_limits

    from skbalance.utils._threads import one_blas_thread

    def blas_threads():
        return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]

    assert blas_threads(), "NumPy's BLAS is found (threadpoolctl >= 3.5)"
    with threadpool_limits(limits=2, user_api="blas"):  # as on a 2-core machine
        with one_blas_thread():
            assert set(blas_threads()) == {1}
        assert set(blas_threads()) == {2}


@pytest.mark.parametrize("limit", [None, 1, 12, 100])
def test_margin_blocks_totals_equal_group_sums_and_leave_the_codes_alone(limit):
    from skbalance.kernels import MarginBlocks

    rng = np.random.default_rng(3)
    sizes = [3, 4, 1, 5, 2]
    codes = [rng.integers(0, s, 5000).astype(dtype)
             for s, dtype in zip(sizes, [np.int8, np.int64, np.int16, np.intp, np.int32])]
    kept = [c.copy() for c in codes]
    weights = rng.random(5000)
    blocks = MarginBlocks(codes, sizes, limit=limit)
    for c, s, total in zip(codes, sizes, blocks.totals(weights)):
        np.testing.assert_allclose(total, np.bincount(c, weights, minlength=s), rtol=1e-12)
    for block, members in enumerate(blocks.members):  # each table against a plain loop
        table = np.zeros(blocks.shapes[block])
        for row in range(5000):
            table[tuple(codes[j][row] for j in members)] += weights[row]
        np.testing.assert_allclose(blocks.table(block, weights), table, rtol=1e-12)
    assert all(np.array_equal(c, k) and c.dtype == k.dtype for c, k in zip(codes, kept))
    assert [m for members in blocks.members for m in members] == list(range(5))
    if limit == 12:
        assert blocks.members == [[0, 1, 2], [3, 4]]
