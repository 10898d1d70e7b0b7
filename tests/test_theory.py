"""skbalance.theory against the paper's reference values, closed forms,
direct linear algebra and Monte Carlo."""

import numpy as np
import pytest

from skbalance import theory

from ._reference import dense_balance

P_REF = [[0.3, 0.1], [0.1, 0.5]]


@pytest.mark.parametrize(
    "h, expected",
    [
        ([[1, 0], [0, 0]],
         [0.21, 0.075, 0.0515625, 0.04358724, 0.04087344, 0.03994999, 0.03963576]),
        ([[1, 2], [3, 5]],
         [3.21, 0.40833333, 0.38333333, 0.08218356, 0.07928884, 0.04441902, 0.04408384]),
    ],
)
def test_reference_values(h, expected):
    for k, value in enumerate(expected):
        assert theory.asymptotic_variance(P_REF, h, k) == pytest.approx(value, abs=1e-8)
        assert theory.asymptotic_variance_closed_form(P_REF, h, k) == pytest.approx(
            value, abs=1e-8)
    curve, _ = theory.variance_curve(P_REF, h, 6)
    np.testing.assert_allclose(curve, expected, atol=1e-8)


def test_reference_limit_spectrum_and_ipwi():
    h = [[1, 0], [0, 0]]
    assert theory.asymptotic_variance_limit(P_REF, h) == pytest.approx(3 / 76, abs=1e-12)
    assert theory.singular_values(P_REF)[1] == pytest.approx(0.5833333, abs=1e-7)
    assert theory.ipwi_variance(P_REF, h) == pytest.approx(0.0975, abs=1e-12)
    # sigma_1^2 = Var(h) - Var(E[h|X])
    P = np.array(P_REF)
    h = np.array(h, dtype=float)
    mean_given_x = (P * h).sum(1) / P.sum(1)
    var_h = np.sum(P * h**2) - np.sum(P * h) ** 2
    var_cond = np.sum(P.sum(1) * mean_given_x**2) - np.sum(P * h) ** 2
    assert theory.asymptotic_variance(P, h, 1) == pytest.approx(var_h - var_cond, abs=1e-15)


def _random_cases(n_cases, seed):
    rng = np.random.default_rng(seed)
    for _ in range(n_cases):
        shape = tuple(int(v) for v in rng.integers(1, 7, size=2))
        concentration = rng.choice([0.02, 0.1, 1.0, 5.0])  # small: near-degenerate
        P = theory.random_table(shape, concentration=concentration, random_state=rng)
        yield P, rng.normal(size=shape) * rng.choice([1.0, 10.0])


def _recursion_equals_closed_form(n_tables, seed):
    unequal = 0
    for P, h in _random_cases(n_tables, seed=seed):
        unequal += P.shape[0] != P.shape[1]
        for k in range(11):
            recursion = theory.asymptotic_variance(P, h, k)
            closed = theory.asymptotic_variance_closed_form(P, h, k)
            assert abs(recursion - closed) <= 1e-12 * max(1.0, np.sum(P * h**2))
    assert unequal > n_tables / 2


def test_recursion_equals_closed_form_on_100_random_tables():
    _recursion_equals_closed_form(100, seed=0)


@pytest.mark.slow
def test_recursion_equals_closed_form_on_1000_random_tables():
    _recursion_equals_closed_form(1000, seed=10)


def test_limit_is_reached_by_the_recursion():
    for P, h in _random_cases(200, seed=1):
        s = theory.singular_values(P)
        if s.shape[0] > 1 and s[1] > 0.9:
            continue
        limit = theory.asymptotic_variance_limit(P, h)
        assert theory.asymptotic_variance(P, h, 400) == pytest.approx(limit, abs=1e-12)
    # Three margins: the recursion cycles axes and approaches the same limit.
    rng = np.random.default_rng(2)
    P = theory.random_table((3, 4, 2), random_state=rng)
    h = rng.normal(size=P.shape)
    limit = theory.asymptotic_variance_limit(P, h)
    assert theory.asymptotic_variance(P, h, 300) == pytest.approx(limit, abs=1e-12)
    # sigma_inf^2 is the efficiency bound: below every sigma_k^2 and the IPWI variance.
    curve, _ = theory.variance_curve(P, h, 12)
    assert np.all(curve >= limit - 1e-12)
    assert theory.ipwi_variance(P, h) >= limit - 1e-12


def test_singular_values_match_direct_svd_and_ignore_level_order():
    rng = np.random.default_rng(3)
    for P, _ in _random_cases(100, seed=3):
        p_x, p_y = P.sum(1), P.sum(0)
        direct = np.linalg.svd(np.diag(p_x**-0.5) @ P @ np.diag(p_y**-0.5),
                               compute_uv=False)
        np.testing.assert_allclose(theory.singular_values(P), direct, atol=1e-12)
        permuted = P[rng.permutation(P.shape[0])][:, rng.permutation(P.shape[1])]
        np.testing.assert_allclose(theory.singular_values(permuted),
                                   theory.singular_values(P), atol=1e-12)


def test_singular_functions_are_orthonormal_and_paired():
    P = theory.random_table((4, 6), random_state=4)
    s, alpha, beta = theory.singular_functions(P)
    p_x, p_y = P.sum(1), P.sum(0)
    np.testing.assert_allclose(alpha.T @ np.diag(p_x) @ alpha, np.eye(4), atol=1e-12)
    np.testing.assert_allclose(beta.T @ np.diag(p_y) @ beta, np.eye(4), atol=1e-12)
    np.testing.assert_allclose(np.einsum("xy,xj,yj->j", P, alpha, beta), s, atol=1e-12)
    np.testing.assert_allclose(alpha[:, 0], 1.0, atol=1e-12)


def _projection_matrix(P, axis):
    """E_P[. | x_axis] as an explicit matrix over the flattened cells."""
    cells = list(np.ndindex(P.shape))
    matrix = np.zeros((len(cells), len(cells)))
    for a, cell_a in enumerate(cells):
        same = [b for b, cell_b in enumerate(cells) if cell_b[axis] == cell_a[axis]]
        mass = sum(P[cells[b]] for b in same)
        for b in same:
            matrix[a, b] = P[cells[b]] / mass
    return matrix


def test_three_margin_recursion_equals_explicit_operators():
    rng = np.random.default_rng(5)
    P = theory.random_table((2, 3, 2), random_state=rng)
    h = rng.normal(size=P.shape)
    weights = P.ravel()
    projections = [_projection_matrix(P, axis) for axis in range(3)]
    identity = np.eye(P.size)
    for k in range(8):
        operator = identity.copy()  # C_k = (I - mu_1)(I - mu_2)...; step k acts first
        for step in range(1, k + 1):
            operator = operator @ (identity - projections[(step - 1) % 3])
        g = operator @ (h.ravel() - weights @ h.ravel())
        expected = weights @ g**2 - (weights @ g) ** 2
        assert theory.asymptotic_variance(P, h, k) == pytest.approx(expected, abs=1e-13)


def test_sweep_contraction_rate():
    for seed in range(5):
        P = theory.random_table((3 + seed % 2, 4), random_state=seed)
        assert theory.sweep_contraction_rate(P) == pytest.approx(
            theory.singular_values(P)[1] ** 2, abs=1e-8)
    # Three margins: the spectral radius of one sweep, from dense eigenvalues,
    # leaving out the eigenvalue 1 of the functions every sweep keeps.
    P = theory.random_table((2, 3, 2), random_state=6)
    identity = np.eye(P.size)
    sweep = identity
    for axis in range(3):
        sweep = (identity - _projection_matrix(P, axis)) @ sweep
    eigenvalues = np.linalg.eigvals(sweep)
    radius = np.max(np.abs(eigenvalues[np.abs(eigenvalues - 1) > 1e-8]))
    assert theory.sweep_contraction_rate(P) == pytest.approx(radius, rel=1e-6)


def test_dependence_table_has_exact_s2():
    for s in [0.0, 0.3, 0.9]:
        P = theory.dependence_table([0.1, 0.2, 0.3, 0.4], s)
        values = theory.singular_values(P)
        np.testing.assert_allclose(values[1:], s, atol=1e-12)
        assert P.sum() == pytest.approx(1.0)


def test_balance_table_equals_dense_reference():
    rng = np.random.default_rng(7)
    P0 = theory.random_table((3, 4), random_state=rng)
    targets = [rng.dirichlet(np.ones(3)), rng.dirichlet(np.ones(4))]
    for k in range(9):
        np.testing.assert_allclose(theory.balance_table(P0, *targets, k),
                                   dense_balance(P0, targets, k), rtol=1e-13)


def test_non_monotone_curves_are_reported_as_they_are():
    # sigma_k^2 need not decrease with k across parities; the curve reports it.
    rng = np.random.default_rng(8)
    found = False
    for _ in range(300):
        P = theory.random_table((3, 3), random_state=rng)
        h = rng.normal(size=(3, 3))
        curve, _ = theory.variance_curve(P, h, 6)
        found |= bool(np.any(np.diff(curve) > 1e-9))
    assert found


def test_bad_tables_get_clear_errors():
    with pytest.raises(ValueError, match="no mass on level 1 of axis 0"):
        theory.singular_values([[0.5, 0.5], [0.0, 0.0]])
    with pytest.raises(ValueError, match="sum to 1"):
        theory.asymptotic_variance([[0.5, 0.6]], [[1, 2]], 1)
    with pytest.raises(ValueError, match="shape of P"):
        theory.asymptotic_variance(P_REF, [1, 2], 1)
    with pytest.raises(ValueError, match="nonnegative integer"):
        theory.asymptotic_variance(P_REF, P_REF, -1)
    with pytest.raises(ValueError, match="two-way table"):
        theory.singular_values(theory.random_table((2, 2, 2), random_state=0))
    with pytest.raises(ValueError, match="Missing mass"):
        theory.balance_table([[0.5, 0.5], [0.0, 0.0]], [0.5, 0.5], [0.5, 0.5], 1)
    with pytest.raises(ValueError, match="one target marginal per axis"):
        theory.balance_table([[0.5, 0.5], [0.0, 0.0]], [0.5, 0.5], 1)


def test_disconnected_support_is_handled():
    # Two blocks: s_2 = 1, yet sigma_k^2 (recursion and closed form) and the
    # limit stay finite and agree.
    P = np.array([[0.2, 0.1, 0, 0], [0.1, 0.1, 0, 0], [0, 0, 0.25, 0.05],
                  [0, 0, 0.05, 0.15]])
    h = np.arange(16.0).reshape(4, 4)
    assert theory.singular_values(P)[1] == pytest.approx(1.0)
    for k in range(6):
        assert theory.asymptotic_variance_closed_form(P, h, k) == pytest.approx(
            theory.asymptotic_variance(P, h, k), abs=1e-12)
    assert np.isfinite(theory.asymptotic_variance_limit(P, h))


def _balance_batch(tables, p_x, p_y, k):
    """k balancing steps on a batch of (R, n_x, n_y) tables, rows first."""
    tables = tables.copy()
    for step in range(k):
        if step % 2 == 0:
            tables *= (p_x / tables.sum(axis=2))[:, :, None]
        else:
            tables *= (p_y / tables.sum(axis=1))[:, None, :]
    return tables


@pytest.mark.slow
def test_monte_carlo_variance_matches_theory():
    rng = np.random.default_rng(9)
    P = theory.random_table((4, 5), concentration=3.0, random_state=rng)
    h = rng.normal(size=(4, 5))
    phi = np.sum(P * h)
    p_x, p_y = P.sum(1), P.sum(0)
    n, replications = 2000, 6000
    counts = rng.multinomial(n, P.ravel(), size=replications).reshape(-1, 4, 5)
    empirical = counts / n
    assert np.all(empirical.sum(axis=2) > 0) and np.all(empirical.sum(axis=1) > 0)
    for k in range(7):
        estimates = np.einsum("rxy,xy->r", _balance_batch(empirical, p_x, p_y, k), h)
        mse = n * np.mean((estimates - phi) ** 2)
        assert mse == pytest.approx(theory.asymptotic_variance(P, h, k), rel=0.10)
    ratio = (p_x / empirical.sum(2))[:, :, None] * (p_y / empirical.sum(1))[:, None, :]
    ipwi = np.einsum("rxy,xy->r", empirical * ratio, h)
    mse = n * np.mean((ipwi - phi) ** 2)
    assert mse == pytest.approx(theory.ipwi_variance(P, h), rel=0.10)
