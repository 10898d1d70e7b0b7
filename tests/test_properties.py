"""Generated problems: every output is finite or the call raises a clear error,
and "converged" holds when recomputed from the returned output.

1,000 seeded cases each (hypothesis, derandomized); in the slow set.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning

import skbalance as skb

pytestmark = pytest.mark.slow

SETTINGS = settings(max_examples=1000, derandomize=True, deadline=None,
                    suppress_health_check=list(HealthCheck))


@st.composite
def raking_problems(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n_rows = draw(st.integers(4, 60))
    sizes = draw(st.lists(st.integers(2, 4), min_size=1, max_size=3))
    X = pd.DataFrame({f"c{j}": rng.integers(0, k, size=n_rows) for j, k in enumerate(sizes)})
    base_scale = 10.0 ** draw(st.floats(-200, 200))
    base = rng.uniform(0.1, 3.0, size=n_rows) * base_scale
    if draw(st.booleans()):
        base[rng.random(n_rows) < 0.1] = 0.0
    if draw(st.booleans()) and 1e-30 < base_scale < 1e30:  # what float32 holds
        base = base.astype(np.float32)
    counts = draw(st.booleans())
    target_scale = 10.0 ** draw(st.floats(-200, 200)) if counts else 1.0
    targets = {f"c{j}": dict(enumerate(rng.dirichlet(np.ones(k)) * target_scale))
               for j, k in enumerate(sizes)}
    bounds = None
    if draw(st.booleans()):
        bounds = (draw(st.floats(0.0, 0.9)), draw(st.floats(1.1, 6.0)))
    tol = draw(st.sampled_from([0.0, 1e-6, 1e-10]))
    max_iter = draw(st.integers(0, 300))
    return X, base, targets, counts, bounds, tol, max_iter


@SETTINGS
@given(raking_problems())
def test_raking_outputs_are_finite_and_converged_is_true(problem):
    X, base, targets, counts, bounds, tol, max_iter = problem
    balancer = skb.MarginalBalancer(targets=targets, bounds=bounds, tol=tol, max_iter=max_iter,
                                    target_type="count" if counts else "proportion")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            balancer.fit(X, sample_weight=base)
        except ValueError as exc:  # a clear error: a level with a target but no weight
            assert "target" in str(exc) or "weight" in str(exc)
            return
        weights = balancer.weights_
        assert np.all(np.isfinite(weights)) and np.all(weights >= 0)
        assert np.isfinite(balancer.effective_sample_size_)
        assert np.all(np.isfinite(balancer.marginal_error_[-1]))
        for factors in balancer.factors_.values():
            assert np.all(np.isfinite(factors.to_numpy()))
        again = balancer.compute_weights(X, sample_weight=base)
        assert np.all(np.isfinite(again))
    if balancer.converged_:
        total = weights.sum()
        threshold = max(tol if tol > 0 else 1e-10, 1024 * np.finfo(np.float64).eps)
        for column, target in targets.items():
            shares = pd.Series(weights).groupby(X[column].to_numpy()).sum() / total
            expected = pd.Series(target) / sum(target.values())
            error = (shares.reindex(expected.index, fill_value=0) - expected).abs().max()
            assert error <= threshold * (1 + 1e-6)


@st.composite
def calibration_problems(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n_rows = draw(st.integers(4, 60))
    sizes = draw(st.lists(st.integers(2, 4), min_size=0, max_size=2))
    X = pd.DataFrame({f"c{j}": rng.integers(0, k, size=n_rows) for j, k in enumerate(sizes)})
    n_numeric = draw(st.integers(1, 2))
    x_scale = 10.0 ** draw(st.floats(-100, 100))
    for j in range(n_numeric):
        values = rng.gamma(2.0, 1.0, size=n_rows)
        if draw(st.booleans()):
            values = values.round()  # few distinct values
        X[f"x{j}"] = values * x_scale
    base = rng.uniform(0.1, 3.0, size=n_rows) * 10.0 ** draw(st.floats(-100, 100))
    # targets of a random reweighting of the rows (reachable), or shifted off
    tilt = rng.dirichlet(np.ones(n_rows))
    targets = {}
    for j, k in enumerate(sizes):
        share = np.bincount(X[f"c{j}"], tilt, minlength=k)
        targets[f"c{j}"] = dict(enumerate(share if share.min() > 0 else np.full(k, 1 / k)))
    for j in range(n_numeric):
        mean = float(tilt @ X[f"x{j}"]) * draw(st.sampled_from([1.0, 1.0, 0.3, 3.0]))
        targets[f"x{j}"] = skb.Mean(mean)
    method = draw(st.sampled_from(["raking", "linear", "logit"]))
    bounds = None
    if method == "logit" or draw(st.booleans()):
        bounds = (draw(st.floats(0.0, 0.9)), draw(st.floats(1.1, 6.0)))
    tol = draw(st.sampled_from([0.0, 1e-6, 1e-10]))
    max_iter = draw(st.integers(0, 300))
    return X, base, targets, method, bounds, tol, max_iter


@SETTINGS
@given(calibration_problems())
def test_calibration_outputs_are_finite_and_converged_is_true(problem):
    X, base, targets, method, bounds, tol, max_iter = problem
    balancer = skb.MarginalBalancer(targets=targets, distance=method, bounds=bounds, tol=tol,
                                    max_iter=max_iter)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", UserWarning)  # linear: negative weights, said
        try:
            balancer.fit(X, sample_weight=base)
        except ValueError as exc:  # a clear error: a level with a target but no weight
            assert "target" in str(exc) or "weight" in str(exc) or "bounds" in str(exc)
            return
        weights = balancer.weights_
        assert np.all(np.isfinite(weights))
        assert method == "linear" or np.all(weights >= 0)
        assert np.all(np.isfinite(balancer.marginal_error_[-1]))
        again = balancer.compute_weights(X, sample_weight=base)
        np.testing.assert_allclose(again, weights, rtol=1e-9, atol=1e-12 * np.abs(weights).max())
    if balancer.converged_:
        total = weights.sum()
        threshold = max(tol if tol > 0 else 1e-10, 1024 * np.finfo(np.float64).eps)
        for column, target in targets.items():
            if isinstance(target, skb.Mean):
                x = X[column].to_numpy()
                spread = np.average(np.abs(x - np.average(x, weights=base)), weights=base)
                error = abs(weights @ x / total - target.value) / spread
            else:
                shares = pd.Series(weights).groupby(X[column].to_numpy()).sum() / total
                expected = pd.Series(target) / sum(target.values())
                error = (shares.reindex(expected.index, fill_value=0) - expected).abs().max()
            assert error <= threshold * (1 + 1e-6) + 1e-12


@st.composite
def sinkhorn_problems(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    m, l = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    batch = draw(st.sampled_from([(), (2,), (3,)]))
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    logits = draw(st.booleans())
    temperature = 10.0 ** draw(st.floats(-6, 0))
    scores = rng.normal(size=batch + (m, l))
    if logits:
        K = scores / temperature
        if draw(st.booleans()):  # masks, never a whole row or column
            mask = rng.random(K.shape) < 0.2
            mask[..., :, 0] = mask[..., 0, :] = False  # every line keeps an entry
            K = np.where(mask, -np.inf, K)
    else:
        K = np.exp(np.clip(scores, -30, 30)) + rng.uniform(0, 1, size=scores.shape)
    mass = 10.0 ** draw(st.floats(-100, 100))
    a = rng.dirichlet(np.ones(m), size=batch or None) * mass
    b = rng.dirichlet(np.ones(l), size=batch or None) * mass
    tol = draw(st.sampled_from([0.0, None, 1e-9 if dtype == np.float64 else 1e-5]))
    max_iter = draw(st.integers(0, 2000))
    if dtype == np.float32:  # keep the marginals and kernel within float32
        mass = min(max(mass, 1e-30), 1e30)
        a, b = a / a.sum(-1, keepdims=True) * mass, b / b.sum(-1, keepdims=True) * mass
        K = np.clip(K, -1e30, 1e30) if logits else np.clip(K, 0, 1e30)
    return K.astype(dtype), a.astype(dtype), b.astype(dtype), logits, tol, max_iter


@SETTINGS
@given(sinkhorn_problems())
def test_sinkhorn_outputs_are_finite_and_converged_is_true(problem):
    K, a, b, logits, tol, max_iter = problem
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            result = skb.sinkhorn(K, a, b, logits=logits, tol=tol, max_iter=max_iter)
        except ValueError as exc:  # a clear error about the input
            assert str(exc)
            return
    plan = np.asarray(result.plan, dtype=np.float64)
    assert np.all(np.isfinite(plan)) and np.all(plan >= 0)
    assert np.all(np.isfinite(result.marginal_error))
    if result.converged:
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        error = max(np.abs(plan.sum(-1) - a64).max(), np.abs(plan.sum(-2) - b64).max())
        error /= float(np.max(a64.sum(-1)))
        eps = np.finfo(K.dtype).eps
        limit = (tol if tol else (1e-10 if tol == 0 else (1e-9 if K.dtype == np.float64
                                                          else 1e-5)))
        # float32 plans: summed in float64 here, in float32 by the library
        assert error <= limit + 4 * max(K.shape[-2:]) * eps
