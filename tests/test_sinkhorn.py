"""Sinkhorn against plain loops, across layouts, dtypes and temperatures."""

import warnings

import numpy as np
import pytest
from scipy import sparse
from sklearn.exceptions import ConvergenceWarning

import skbalance as skb


def plain_loop_plan(K, a, b, k):
    """k single-margin steps, rows first, with explicit loops over entries."""
    P = np.array(K, dtype=float)
    P = P * (a.sum() / P.sum())
    m, l = P.shape
    for step in range(k):
        if step % 2 == 0:
            for i in range(m):
                row = sum(P[i, j] for j in range(l))
                for j in range(l):
                    P[i, j] *= a[i] / row
        else:
            for j in range(l):
                col = sum(P[i, j] for i in range(m))
                for i in range(m):
                    P[i, j] *= b[j] / col
    return P


@pytest.fixture
def problem():
    rng = np.random.default_rng(0)
    K = rng.uniform(0.05, 1.0, size=(5, 7))
    a = rng.dirichlet(np.ones(5))
    b = rng.dirichlet(np.ones(7))
    return K, a, b


@pytest.mark.parametrize("k", range(1, 9))
def test_plan_after_k_steps_equals_plain_loop(problem, k):
    K, a, b = problem
    expected = plain_loop_plan(K, a, b, k)
    result = skb.sinkhorn(K, a, b, max_iter=k, tol=0)
    assert result.n_iter == k
    np.testing.assert_allclose(result.plan, expected, rtol=1e-9, atol=0)
    logits = skb.sinkhorn(np.log(K) * 1.0, a, b, max_iter=k, tol=0, logits=True)
    np.testing.assert_allclose(logits.plan, expected, rtol=1e-9, atol=0)


def test_zero_steps_rescales_the_kernel(problem):
    K, a, b = problem
    result = skb.sinkhorn(K, a, b, max_iter=0, tol=0)
    np.testing.assert_allclose(result.plan, K / K.sum(), rtol=1e-12)
    np.testing.assert_allclose(skb.sinkhorn(np.log(K), a, b, max_iter=0, tol=0,
                                            logits=True).plan, K / K.sum(), rtol=1e-12)


def test_converges_to_both_marginals(problem):
    K, a, b = problem
    result = skb.sinkhorn(K, a, b, tol=1e-13, max_iter=10000)
    assert result.converged
    np.testing.assert_allclose(result.plan.sum(axis=1), a, atol=1e-13)
    np.testing.assert_allclose(result.plan.sum(axis=0), b, atol=1e-13)
    errors = result.marginal_error
    assert errors.shape == (result.n_iter + 1,)
    assert errors[-1] <= 1e-13 and np.all(errors[:-1] > 1e-13)
    # each recorded error is what the plan at that step shows
    again = skb.sinkhorn(K, a, b, max_iter=result.n_iter - 1, tol=0).plan
    shown = max(np.abs(again.sum(1) - a).max(), np.abs(again.sum(0) - b).max())
    assert errors[-2] == pytest.approx(shown, rel=1e-6)


def test_batched_equals_loop_over_batch():
    rng = np.random.default_rng(1)
    K = rng.uniform(0.1, 1.0, size=(4, 6, 5))
    a = rng.dirichlet(np.ones(6), size=4)
    b = rng.dirichlet(np.ones(5), size=4)
    for k in (3, 8):
        batch = skb.sinkhorn(K, a, b, max_iter=k, tol=0).plan
        for i in range(4):
            single = skb.sinkhorn(K[i], a[i], b[i], max_iter=k, tol=0).plan
            np.testing.assert_allclose(batch[i], single, rtol=1e-12)
        logits = skb.sinkhorn(np.log(K), a, b, max_iter=k, tol=0, logits=True).plan
        np.testing.assert_allclose(logits, batch, rtol=1e-10)
    # shared marginals broadcast over the batch
    shared = skb.sinkhorn(K, a[0], b[0], max_iter=4, tol=0).plan
    np.testing.assert_allclose(shared[2], skb.sinkhorn(K[2], a[0], b[0], max_iter=4,
                                                       tol=0).plan, rtol=1e-12)


def test_sparse_equals_dense():
    rng = np.random.default_rng(2)
    dense = rng.uniform(0.1, 1.0, size=(30, 40)) * (rng.random((30, 40)) < 0.3)
    dense[np.arange(30), np.arange(30)] = 1.0  # keep rows and columns nonempty
    dense[np.arange(10), np.arange(30, 40)] = 1.0
    for k, tol in [(5, 0), (10000, 1e-12)]:
        expected = skb.sinkhorn(dense, max_iter=k, tol=tol)
        result = skb.sinkhorn(sparse.csr_array(dense), max_iter=k, tol=tol)
        assert result.n_iter == expected.n_iter
        np.testing.assert_allclose(result.plan.toarray(), expected.plan, rtol=1e-10,
                                   atol=1e-15)


def test_float32_within_float32_tolerance(problem):
    K, a, b = problem
    expected = skb.sinkhorn(K, a, b, max_iter=6, tol=0).plan
    for logits, kernel in [(False, K), (True, np.log(K))]:
        result = skb.sinkhorn(kernel.astype(np.float32), a.astype(np.float32),
                              b.astype(np.float32), max_iter=6, tol=0, logits=logits)
        assert result.plan.dtype == np.float32
        np.testing.assert_allclose(result.plan, expected, rtol=2e-5)


def _cosine_scores(seed, n=200, dim=16):
    rng = np.random.default_rng(seed)
    X, Y = rng.normal(size=(n, dim)), rng.normal(size=(n, dim))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    Y /= np.linalg.norm(Y, axis=1, keepdims=True)
    return X @ Y.T


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("temperature, tol", [(1e-2, 1e-12), (1e-3, 1e-6)])
def test_small_temperatures_converge_without_overflow(temperature, tol, dtype):
    if dtype == np.float32:
        tol = max(tol, 1e-6)  # float32 resolves shares of 1/200 to about 1e-9
    scores = _cosine_scores(0).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning, no ConvergenceWarning
        result = skb.sinkhorn(scores / dtype(temperature), logits=True, tol=tol,
                              max_iter=20000)
    assert result.converged and result.n_iter <= 20000
    plan = result.plan
    assert plan.dtype == dtype
    for array in (plan, result.u, result.v):
        assert np.all(np.isfinite(array))
    np.testing.assert_allclose(plan.sum(axis=1), 1 / 200, atol=tol * 1.01)
    np.testing.assert_allclose(plan.sum(axis=0), 1 / 200, atol=tol * 1.01)


def test_large_logits_do_not_overflow_in_exact_steps():
    scores = _cosine_scores(1, n=50) / 1e-3  # exp would overflow without care
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = skb.sinkhorn(scores, logits=True, max_iter=7, tol=0)
    plan = result.plan
    assert np.all(np.isfinite(plan))
    np.testing.assert_allclose(plan.sum(axis=1), 1 / 50, rtol=1e-9)  # last step: rows


def test_non_convergence_warns(problem):
    K, a, b = problem
    with pytest.warns(ConvergenceWarning, match="did not reach tol"):
        result = skb.sinkhorn(K, a, b, max_iter=3, tol=1e-12)
    assert not result.converged


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"K": np.array([[1.0, np.nan], [1.0, 1.0]])}, "NaN or Inf"),
        ({"K": np.array([[1.0, np.inf], [1.0, 1.0]]), "logits": True}, "NaN or Inf"),
        ({"K": np.array([[1.0, -1.0], [1.0, 1.0]])}, "nonnegative"),
        ({"a": np.array([0.2, 0.3, 0.5])}, "length 2"),
        ({"b": np.array([0.2, 0.3])}, "same positive total"),
        ({"a": np.array([-0.5, 1.5])}, "finite and nonnegative"),
        ({"K": np.array([[0.0, 0.0], [1.0, 1.0]])}, "row of K is all zero"),
        ({"K": np.ones(3)}, "2-D"),
    ],
)
def test_bad_input_errors(kwargs, message):
    arguments = {"K": np.ones((2, 2))} | kwargs
    with pytest.raises(ValueError, match=message):
        skb.sinkhorn(**arguments)


def test_running_out_of_steps_during_epsilon_scaling_reports_the_real_error():
    scores = _cosine_scores(2, n=60) / 1e-3
    with pytest.warns(ConvergenceWarning, match="did not reach tol"):
        result = skb.sinkhorn(scores, logits=True, tol=1e-9, max_iter=5)
    plan = result.plan
    assert np.all(np.isfinite(plan)) and not result.converged
    real = max(np.abs(plan.sum(1) - 1 / 60).max(), np.abs(plan.sum(0) - 1 / 60).max())
    assert result.marginal_error[-1] == pytest.approx(real, rel=1e-9)


@pytest.mark.parametrize("call, message", [
    (lambda: skb.sinkhorn(np.zeros((0, 3))), r"K is empty \(shape \(0, 3\)\)"),
    (lambda: skb.sinkhorn(__import__("scipy").sparse.csr_array((0, 0))), "K is empty"),
    (lambda: skb.sinkhorn(np.ones((2, 2)), max_iter=float("inf")), "max_iter must be a"),
    (lambda: skb.sinkhorn(np.ones((2, 2)), max_iter=None), "max_iter must be a"),
    (lambda: skb.sinkhorn(np.ones((2, 2)), max_iter=2.5), "max_iter must be a"),
    (lambda: skb.sinkhorn(np.ones((2, 2)), tol="x"), "tol must be a nonnegative finite"),
    (lambda: skb.sinkhorn(np.ones((2, 2)), tol=float("nan")), "tol must be"),
    (lambda: skb.sinkhorn(np.array([[1e308, -1e308], [0.0, 0.0]]), logits=True),
     "more than float can hold"),
    (lambda: skb.sinkhorn(np.array([[np.inf, 0.0], [0.0, 0.0]]), logits=True),
     r"\+inf has no meaning"),
    (lambda: skb.sinkhorn(np.array([[-np.inf, -np.inf], [0.0, 0.0]]), logits=True),
     "row of K is all zero"),
])
def test_sinkhorn_bad_input_gets_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_minus_inf_logits_mask_entries():
    # a mask is a zero of the kernel: the plan equals the scaling path's on exp(L)
    rng = np.random.default_rng(3)
    L = rng.normal(size=(5, 6))
    L[0, :3] = -np.inf
    L[2:4, 5] = -np.inf
    masked = skb.sinkhorn(L, logits=True, tol=1e-12)
    plain = skb.sinkhorn(np.exp(L), tol=1e-12)
    assert masked.converged and np.all(np.isfinite(masked.plan))
    np.testing.assert_allclose(masked.plan, plain.plan, atol=1e-12)
    assert np.all(masked.plan[0, :3] == 0)


def _true_error(result, a, b):
    """Largest marginal error of the returned plan, in float64, relative to the mass."""
    plan = np.asarray(result.plan, dtype=np.float64)
    assert np.all(np.isfinite(plan))
    return max(np.abs(plan.sum(-1) - a).max(), np.abs(plan.sum(-2) - b).max()) / a.sum()


@pytest.mark.parametrize("dtype, gap", [(np.float64, 711.0), (np.float32, 90.0)])
def test_a_row_far_below_the_others(dtype, gap):
    rng = np.random.default_rng(0)
    L = rng.normal(size=(50, 40)).astype(dtype)
    L[3] -= dtype(gap)
    result = skb.sinkhorn(L, logits=True)
    a, b = np.full(50, 1 / 50), np.full(40, 1 / 40)
    tol = 1e-9 if dtype == np.float64 else 1e-5
    assert result.converged and _true_error(result, a, b) <= tol


def test_scaling_path_reports_the_error_of_the_plan_it_returns():
    """The scaling path's last error comes from its last products; it equals
    the plan's own row and column sums against the marginals (relative to
    the mass), for 2-D and batched kernels, fixed steps and a tolerance."""
    rng = np.random.default_rng(12)
    for shape in [(30, 20), (3, 30, 20)]:
        K = rng.uniform(0.05, 1.0, size=shape)
        a = rng.uniform(1, 2, size=shape[:-1])
        b = rng.uniform(1, 2, size=shape[:-2] + shape[-1:])
        b *= a.sum(axis=-1, keepdims=True) / b.sum(axis=-1, keepdims=True)
        mass = a.sum(axis=-1, keepdims=True)
        for options in [dict(max_iter=7, tol=0), dict(tol=1e-11, max_iter=10_000)]:
            result = skb.sinkhorn(K, a, b, **options)
            plan = result.plan
            true = max(np.abs((plan.sum(axis=-1) - a) / mass).max(),
                       np.abs((plan.sum(axis=-2) - b) / mass).max())
            assert result.marginal_error[-1] == pytest.approx(true, rel=1e-6, abs=1e-16)
            assert result.converged == (true <= (options["tol"] or 1e-10) * (1 + 1e-6))


@pytest.mark.parametrize("k", [0, 1, 2, 5, 6])
def test_fixed_steps_error_history_equals_each_steps_plan(k):
    """Fixed steps keep every step's products and measure the history in bulk
    at the end: entry j is the largest marginal error of the plain loop's plan
    after j steps, for a 2-D kernel and for each problem of a batch."""
    rng = np.random.default_rng(21)
    K = rng.uniform(0.05, 1.0, size=(3, 6, 4))
    a = rng.dirichlet(np.ones(6), size=3)
    b = rng.dirichlet(np.ones(4), size=3)

    def history(K, a, b):
        plans = [plain_loop_plan(K, a, b, j) for j in range(k + 1)]
        return np.array([max(np.abs(P.sum(axis=1) - a).max(), np.abs(P.sum(axis=0) - b).max())
                         for P in plans])

    expected = [history(K[i], a[i], b[i]) for i in range(3)]
    for i in range(3):
        alone = skb.sinkhorn(K[i], a[i], b[i], max_iter=k, tol=0)
        np.testing.assert_allclose(alone.marginal_error, expected[i], rtol=1e-7, atol=1e-15)
        np.testing.assert_allclose(alone.plan, plain_loop_plan(K[i], a[i], b[i], k), rtol=1e-12)
    batch = skb.sinkhorn(K, a, b, max_iter=k, tol=0)
    np.testing.assert_allclose(batch.marginal_error, np.max(expected, axis=0), rtol=1e-7,
                               atol=1e-15)


def test_reported_error_is_the_error_of_the_returned_plan():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 16))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    scores = x @ x.T
    a = b = np.full(200, 1 / 200)
    for L, tol in [(scores / 1e-3, 1e-9), ((scores / 1e-5).astype(np.float32), 1e-5)]:
        result = skb.sinkhorn(L, logits=True, tol=tol)
        true = _true_error(result, a, b)
        assert result.marginal_error[-1] == pytest.approx(true, rel=0.2, abs=1e-12)
        assert not result.converged or true <= tol * 1.01
    # a column 1e20 below the others: the balanced plan is still the right one
    L = rng.normal(size=(4, 4))
    L[:, 1] -= 1e20
    result = skb.sinkhorn(L, logits=True, tol=1e-9)
    np.testing.assert_allclose(result.plan.sum(axis=1), 0.25, atol=1e-9)
    assert result.converged and _true_error(result, np.full(4, .25), np.full(4, .25)) <= 1e-9


def test_tolerance_is_relative_to_the_mass():
    rng = np.random.default_rng(2)
    K = rng.uniform(0.1, 1, size=(6, 5))
    a, b = rng.dirichlet(np.ones(6)), rng.dirichlet(np.ones(5))
    unit = skb.sinkhorn(K, a, b, tol=1e-10)
    for scale in (1e-200, 1e6, 1e200):
        scaled = skb.sinkhorn(K, a * scale, b * scale, tol=1e-10)
        assert scaled.n_iter == unit.n_iter and scaled.converged
        np.testing.assert_allclose(scaled.marginal_error, unit.marginal_error, rtol=1e-6,
                                   atol=1e-16)
        np.testing.assert_allclose(scaled.plan / scale, unit.plan, rtol=1e-9)
    with pytest.raises(ValueError, match="marginals sum to more than float can hold"):
        skb.sinkhorn(K, np.full(6, 1e308), np.full(5, 1.2e308))


def test_first_error_is_the_users_problem_not_the_first_stage():
    rng = np.random.default_rng(4)
    L = rng.normal(size=(30, 20)) / 1e-2  # spread above 10: epsilon scaling runs
    result = skb.sinkhorn(L, logits=True, tol=1e-9)
    P0 = np.exp(L - L.max())
    P0 /= P0.sum()
    expected = max(np.abs(P0.sum(1) - 1 / 30).max(), np.abs(P0.sum(0) - 1 / 20).max())
    assert result.marginal_error[0] == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("epsilon", [1e-8, 1e-6, 1e-3, 0.05, 10.0])
def test_swav_codes_stay_finite(epsilon):
    from skbalance.ssl import swav_codes

    rng = np.random.default_rng(5)
    scores = rng.normal(size=(64, 12)) * 30
    codes = np.asarray(swav_codes(scores, epsilon=epsilon))
    assert np.all(np.isfinite(codes))
    np.testing.assert_allclose(codes.sum(axis=1), 1.0, atol=1e-12)


def test_newton_cg_finishes_slow_steps_and_counts_its_work():
    scores = _cosine_scores(3, n=150)
    result = skb.sinkhorn(scores / 0.03, logits=True, tol=1e-11, max_iter=100_000)
    assert result.converged and result.n_newton > 0
    plan = result.plan
    np.testing.assert_allclose(plan.sum(axis=1), 1 / 150, atol=1e-11)
    np.testing.assert_allclose(plan.sum(axis=0), 1 / 150, atol=1e-11)
    # the same plan as plain steps to the same limit (no epsilon scaling, no Newton)
    plain = skb.sinkhorn(scores / 0.03, logits=True, tol=1e-11, max_iter=1_000_000,
                         epsilon_scaling=False)
    assert plain.n_newton == 0
    np.testing.assert_allclose(plan, plain.plan, rtol=1e-6, atol=1e-10)
    # work in passes over the kernel: far fewer than the plain steps' one each
    assert result.n_matvec < plain.n_matvec / 2
    assert plain.n_matvec >= plain.n_iter


def test_matvec_count_of_the_scaling_path_is_one_per_step():
    K = np.random.default_rng(5).uniform(0.1, 1.0, size=(7, 5))
    result = skb.sinkhorn(K, max_iter=9, tol=0)
    assert result.n_matvec == 2 + 9  # first products, steps (the last ones check the plan)


def test_batched_products_equal_separate_problems():
    K = np.random.default_rng(6).uniform(0.1, 1.0, size=(4, 6, 5))
    batch = skb.sinkhorn(K, max_iter=11, tol=0)
    for i in range(4):
        alone = skb.sinkhorn(K[i], max_iter=11, tol=0)
        np.testing.assert_allclose(batch.plan[i], alone.plan, rtol=1e-13)


def _tiny_temperature_fit():
    scores = _cosine_scores(4, n=400)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return scores, skb.sinkhorn(scores / 1e-3, logits=True, tol=1e-9, max_iter=100_000)


def test_tiny_temperature_converges_with_sparse_preconditioned_newton():
    # at temperature 1e-3 the plan is nearly a permutation: plain steps and
    # Jacobi-preconditioned conjugate gradients stall, the sparse LU of the
    # plan's largest entries does not
    _, result = _tiny_temperature_fit()
    assert result.converged and result.n_newton > 0 and result.n_matvec < 2000
    plan = result.plan
    np.testing.assert_allclose(plan.sum(axis=1), 1 / 400, atol=1e-9)
    np.testing.assert_allclose(plan.sum(axis=0), 1 / 400, atol=1e-9)


@pytest.mark.slow
def test_tiny_temperature_plan_equals_a_dense_newton_solve():
    # a dense Newton solve of the dual, from there to 1e-12, barely moves the plan
    # (the oracle costs a minute of CPU: the full suite runs it, the fast set not)
    from skbalance.kernels._sinkhorn_log import _dense_newton, centre_logits

    scores, result = _tiny_temperature_fit()
    L = centre_logits(np, scores / 1e-3)
    a = np.full(400, 1 / 400)
    f, g = result.u - np.log(1.0), result.v
    f2, g2, _, errors, _ = _dense_newton(L, a, a, f, g, np, 1e-12)
    dense_plan = np.exp(L + f2[:, None] + g2[None, :])
    np.testing.assert_allclose(result.plan, dense_plan, atol=2e-9)


def _cosine_logits(n, dim, temperature):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(n, dim)), rng.normal(size=(n, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    return x @ y.T / temperature


def test_tiny_temperature_to_1e_12_converges_without_runaway():
    # issue 22, item 9: 39,277 kernel passes (90 s) without converging; a Newton
    # run that falls short of tol now keeps its progress
    L = _cosine_logits(256, 32, 1e-3)
    result = skb.sinkhorn(L, logits=True, tol=1e-12, max_iter=1000)
    assert result.converged and result.n_matvec < 5000
    plan = result.plan  # marginals checked by plain sums
    assert np.abs(plan.sum(axis=1) - 1 / 256).max() <= 1e-12
    assert np.abs(plan.sum(axis=0) - 1 / 256).max() <= 1e-12


def test_max_iter_bounds_the_work_not_only_the_steps():
    # max_iter=100 allowed 38,377 passes through Newton's conjugate gradients
    L = _cosine_logits(64, 16, 1e-3)
    with pytest.warns(ConvergenceWarning, match="the work reached its bound"):
        result = skb.sinkhorn(L, logits=True, tol=1e-12, max_iter=100)
    assert result.n_matvec <= 1.25 * 10 * 100
    assert not result.converged


def test_steps_stop_when_the_error_stalls_at_float_precision():
    L = _cosine_logits(64, 16, 1e-3)
    with pytest.warns(ConvergenceWarning, match="what float64 resolves"):
        result = skb.sinkhorn(L, logits=True, tol=1e-16, max_iter=100_000)
    assert not result.converged
    assert result.n_matvec < 100_000  # far inside the bound of 10 per allowed step
    assert result.marginal_error[-1] < 1e-13


@pytest.mark.parametrize("k", [0, 1, 2, 5, 50])
def test_k_step_plan_of_logits_far_apart_equals_exact_arithmetic(k):
    # issue 22, item 11: a column at -1e20 and rows 745 apart left the k-step
    # plan's marginals 0.75-1.5 off, without a word
    from tests._reference import k_step_logit_plan
    rng = np.random.default_rng(0)
    L = rng.normal(size=(5, 4))
    L[:, 0] = -1e20
    L[2] += 745
    plan = skb.sinkhorn(L, logits=True, tol=0, max_iter=k).plan
    np.testing.assert_allclose(plan, k_step_logit_plan(L, k), rtol=1e-12, atol=1e-300)
