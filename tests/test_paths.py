"""Code paths that only unusual data reach, each checked against an
independent answer."""

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.exceptions import ConvergenceWarning

import skbalance as skb
from skbalance.kernels import encode_cells, group_sum

from ._reference import dense_row_weights

xp_strict = pytest.importorskip("array_api_strict")


def test_log_domain_column_step_equals_the_shifted_problem():
    # column 1 sits 800 nats below the rest: its kernel sums underflow to 0
    # in float64, so the column step must be taken in the log domain.
    rng = np.random.default_rng(0)
    L = rng.normal(size=(4, 3))
    L[:, 1] -= 800
    # (tol=0: plain steps, no epsilon scaling to soften the gap)
    result = skb.sinkhorn(L, logits=True, tol=0, max_iter=400)
    # A constant added to a column of the logits changes no balanced plan (the
    # column scaling absorbs it); shifted back, the problem takes the plain path.
    shifted = L.copy()
    shifted[:, 1] += 800
    reference = skb.sinkhorn(shifted, logits=True, tol=0, max_iter=400)
    assert result.converged and reference.converged
    np.testing.assert_allclose(result.plan, reference.plan, atol=1e-12)
    np.testing.assert_allclose(result.plan.sum(axis=0), np.full(3, 1 / 3), atol=1e-12)


def test_newton_that_cannot_reach_tol_hands_back_to_steps():
    # A mask whose only balanced plan empties a supported block: plain steps
    # converge like 1/k and stall, the Newton finish runs, and a tol of 1e-16
    # (below what the plan's rounding allows) is out of its reach, so the
    # steps resume from its best point until they stall too (issue 22, item 9:
    # they ran on to max_iter), and the fit ends unconverged, warned.
    rng = np.random.default_rng(0)
    pattern = np.kron(np.array([[1.0, 1.0], [np.nan, 1.0]]), np.ones((3, 3)))
    L = np.where(np.isnan(pattern), -np.inf, rng.normal(size=pattern.shape))
    with pytest.warns(ConvergenceWarning, match="did not reach tol=1e-16.*float64 resolves"):
        result = skb.sinkhorn(L, logits=True, tol=1e-16, max_iter=3000)
    assert result.n_newton == 100  # the Newton finish ran to its limit ...
    assert 100 < result.n_iter < 3000  # ... plain steps carried on, until they stalled
    assert not result.converged
    plan = result.plan
    assert np.all(np.isfinite(plan)) and np.all(plan[3:, :3] == 0)
    np.testing.assert_allclose(plan.sum(axis=1), 1 / 6, atol=1e-14)
    np.testing.assert_allclose(plan.sum(axis=0), 1 / 6, atol=1e-14)
    # with a reachable tol the same problem finishes by Newton
    assert skb.sinkhorn(L, logits=True, tol=1e-12, max_iter=3000).converged


def test_categorical_columns_with_missing_values(survey, survey_targets):
    X = survey[["age", "sex", "region"]].copy()
    X.loc[X.index[:9], "region"] = None
    as_category = X.assign(region=X["region"].astype("category"))
    assert as_category["region"].isna().sum() == 9
    with pytest.raises(ValueError, match=r"'region' has 9 missing value"):
        skb.MarginalBalancer(targets=survey_targets).fit(as_category)
    targets = dict(survey_targets, region={**survey_targets["region"], None: 0.05})
    targets["region"]["west"] -= 0.05
    fitted = skb.MarginalBalancer(targets=targets, missing="level", tol=0,
                                  max_iter=5).fit(as_category)
    # the same weights as five steps on a dense table, missing as a level
    codes = [pd.factorize(X[c], use_na_sentinel=False)[0] for c in X.columns]
    levels = [pd.factorize(X[c], use_na_sentinel=False)[1] for c in X.columns]
    dense_targets = [
        [targets[c][None if pd.isna(level) else level] for level in lv]
        for c, lv in zip(X.columns, levels)
    ]
    expected = dense_row_weights(codes, np.ones(len(X)), dense_targets, 5)
    np.testing.assert_allclose(fitted.weights_, expected, rtol=1e-12)


@pytest.fixture
def dispatch():
    with sklearn.config_context(array_api_dispatch=True):
        yield


def _device(values, dtype="float64"):
    return xp_strict.asarray(np.asarray(values, dtype=dtype),
                             device=xp_strict.Device("device1"))


@pytest.mark.usefixtures("dispatch")
def test_device_input_errors_name_the_column():
    X = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    targets = {0: {0.0: 0.5, 1.0: 0.5}}
    with_inf = X.copy()
    with_inf[1, 0] = np.inf
    with pytest.raises(ValueError, match="column 0 contains inf"):
        skb.MarginalBalancer(targets=targets).fit(_device(with_inf))
    with_nan = X.copy()
    with_nan[1, 0] = np.nan
    with pytest.raises(ValueError, match="Column 0 has 1 missing value"):
        skb.MarginalBalancer(targets=targets).fit(_device(with_nan))
    with pytest.raises(ValueError, match="Unknown column 5"):
        skb.MarginalBalancer(targets={5: {0.0: 1.0}}).fit(_device(X))
    with pytest.raises(ValueError, match="Unknown column 'a'"):
        skb.MarginalBalancer(targets={"a": {0.0: 1.0}}).fit(_device(X))
    with pytest.raises(ValueError, match="finite and nonnegative"):
        skb.MarginalBalancer(targets=targets).fit(_device(X),
                                                  sample_weight=_device([1, -1, 1]))
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        skb.MarginalBalancer(targets=targets).fit(_device(X),
                                                  sample_weight=_device([1, 1]))
    with pytest.raises(ValueError, match="2-D"):
        skb.MarginalBalancer(targets=targets).fit(_device([0.0, 1.0]))


def test_device_cells_renumber_keys_near_int64_overflow():
    # four columns of 2**20 possible levels: keys would need 80 bits, so the
    # device path renumbers them on the way; cells equal NumPy's.
    rng = np.random.default_rng(2)
    sizes = [1 << 20] * 4
    codes = [rng.integers(0, 3, size=500) * (1 << 18) for _ in sizes]
    on_host = encode_cells(codes, sizes, return_cell_codes=True, return_counts=True)
    on_device = encode_cells([xp_strict.asarray(c) for c in codes], sizes,
                             return_cell_codes=True, return_counts=True)
    host_cells = np.column_stack([c[on_host[0]] for c in on_host[2]])
    device_cells = np.column_stack([np.asarray(c)[np.asarray(on_device[0])]
                                    for c in on_device[2]])
    np.testing.assert_array_equal(host_cells, np.column_stack(codes))
    np.testing.assert_array_equal(device_cells, np.column_stack(codes))
    # the same partition of the rows, and the same counts per cell
    assert on_host[1] == on_device[1] == len({tuple(r) for r in np.column_stack(codes)})
    counts = np.asarray(on_device[3])[np.asarray(on_device[0])]
    np.testing.assert_array_equal(counts, on_host[3][on_host[0]])


def test_group_sum_on_device_equals_a_loop():
    rng = np.random.default_rng(3)
    group = rng.integers(0, 7, size=200)
    values = rng.normal(size=200)
    expected = [values[group == g].sum() for g in range(9)]
    on_device = group_sum(xp_strict.asarray(group), xp_strict.asarray(values), 9)
    np.testing.assert_allclose(np.asarray(on_device), expected, rtol=1e-12, atol=1e-15)
    counts = group_sum(xp_strict.asarray(group), None, 9)
    np.testing.assert_array_equal(np.asarray(counts), np.bincount(group, minlength=9))


def test_more_cells_than_the_reachability_check_takes():
    # 250,000 distinct cells: the linear program is skipped, and the warning
    # says that reachability was not decided.
    rng = np.random.default_rng(4)
    n = 250_000
    X = pd.DataFrame({"a": np.arange(n) % 500, "b": np.arange(n) // 500})
    targets = {"a": dict(enumerate(rng.dirichlet(np.ones(500)))),
               "b": dict(enumerate(rng.dirichlet(np.ones(500))))}
    bal = skb.MarginalBalancer(targets=targets, max_iter=1, tol=1e-12)
    with pytest.warns(ConvergenceWarning, match="not checked"):
        bal.fit(X)
    assert bal.n_cells_ == n
    assert bal.targets_reachable_ is None and not bal.converged_
    # one step fixes margin a exactly: weight = target share / sample share
    shares = pd.Series(bal.weights_).groupby(X["a"]).sum() / n
    np.testing.assert_allclose(shares.to_numpy(), list(targets["a"].values()), rtol=1e-10)


@pytest.mark.usefixtures("dispatch")
def test_design_based_errors_for_device_rows():
    rng = np.random.default_rng(8)
    n = 200
    X = np.column_stack([rng.integers(0, 3, n), rng.integers(0, 2, n)]).astype(float)
    y = rng.normal(size=n) + np.repeat(rng.normal(size=20), 10)
    targets = {0: {0.0: .3, 1.0: .3, 2.0: .4}, 1: {0.0: .5, 1.0: .5}}
    for design in (skb.SurveyDesign(clusters=np.repeat(np.arange(20), 10)),
                   skb.SurveyDesign(clusters=np.repeat(np.arange(20), 10), replicates="jk1")):
        with sklearn.config_context(array_api_dispatch=False):
            host = skb.BalancedFunctionalEstimator(
                skb.MarginalBalancer(targets=targets, tol=1e-12), design=design).fit(X, y)
        device = skb.BalancedFunctionalEstimator(
            skb.MarginalBalancer(targets=targets, tol=1e-12), design=design).fit(
            _device(X), _device(y))
        assert device.estimate_ == pytest.approx(host.estimate_, rel=1e-12)
        assert device.std_error_ == pytest.approx(host.std_error_, rel=1e-10)
