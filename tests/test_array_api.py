"""The array follows the data: results stay in the input's namespace and on
its device, and equal NumPy's to the dtype's tolerance."""

import numpy as np
import pytest
from sklearn.base import clone

import skbalance as skb
from skbalance.ssl import balanced_contrastive_loss, swav_codes

xp_strict = pytest.importorskip("array_api_strict")


def _namespaces():
    cases = [("numpy", None, "float64"), ("numpy", None, "float32")]
    for device in ("CPU_DEVICE", "device1"):
        cases.append(("array_api_strict", device, "float64"))
    cases.append(("array_api_strict", "no_float64", "float32"))
    try:
        import torch  # noqa: F401

        cases += [("torch", "cpu", "float64"), ("torch", "cpu", "float32")]
    except ImportError:
        pass
    return cases


NAMESPACES = _namespaces()


def convert(array, name, device, dtype):
    array = np.asarray(array, dtype=dtype)
    if name == "numpy":
        return array
    if name == "torch":
        import torch

        return torch.asarray(array, device=device)
    return xp_strict.asarray(array, device=xp_strict.Device(device))


def to_numpy(array):
    if isinstance(array, np.ndarray):
        return array
    if type(array).__module__.startswith("torch"):
        return array.cpu().numpy()
    return np.asarray(xp_strict.asarray(array, device=xp_strict.Device("CPU_DEVICE")))


def assert_follows(result, reference, name, device, dtype, exact_dtype=True):
    """Same namespace, device and dtype as the input; NumPy's numbers.

    NumPy results may be wider than the input (float64 from float32), as
    scikit-learn allows; other namespaces must keep the input's dtype.
    """
    if name == "numpy":
        assert isinstance(result, np.ndarray)
    elif name == "torch":
        assert type(result).__module__.startswith("torch")
        assert str(result.device) == device
    else:
        assert type(result).__module__.startswith("array_api_strict")
        assert result.device == xp_strict.Device(device)
    if exact_dtype or name != "numpy":
        assert str(result.dtype).endswith(dtype)
    tolerance = 1e-10 if dtype == "float64" else 2e-4
    np.testing.assert_allclose(to_numpy(result), reference, rtol=tolerance,
                               atol=tolerance * np.abs(reference).max())


@pytest.mark.parametrize("name, device, dtype", NAMESPACES)
def test_sinkhorn_follows_the_data(name, device, dtype):
    rng = np.random.default_rng(0)
    K = rng.uniform(0.1, 1.0, size=(6, 5))
    reference = skb.sinkhorn(K, max_iter=5, tol=0).plan
    result = skb.sinkhorn(convert(K, name, device, dtype), max_iter=5, tol=0)
    assert_follows(result.plan, reference, name, device, dtype)
    assert_follows(result.u, skb.sinkhorn(K, max_iter=5, tol=0).u, name, device, dtype)
    logits = skb.sinkhorn(convert(np.log(K), name, device, dtype), logits=True,
                          max_iter=5, tol=0)
    assert_follows(logits.plan, reference, name, device, dtype)
    converged = skb.sinkhorn(convert(np.log(K) / 0.05, name, device, dtype), logits=True,
                             tol=1e-5 if dtype == "float32" else 1e-12, max_iter=5000)
    numpy_converged = skb.sinkhorn(np.log(K) / 0.05, logits=True, tol=1e-12).plan
    assert_follows(converged.plan, numpy_converged, name, device, dtype)
    batch = rng.uniform(0.1, 1.0, size=(3, 4, 5))
    assert_follows(skb.sinkhorn(convert(batch, name, device, dtype), max_iter=4, tol=0).plan,
                   skb.sinkhorn(batch, max_iter=4, tol=0).plan, name, device, dtype)


@pytest.mark.parametrize("name, device, dtype", NAMESPACES)
def test_losses_and_codes_follow_the_data(name, device, dtype):
    L = np.random.default_rng(1).normal(size=(5, 5))
    for k in (0, 1, 3):
        loss, grad = balanced_contrastive_loss(convert(L, name, device, dtype), n_steps=k,
                                               return_grad=True)
        ref_loss, ref_grad = balanced_contrastive_loss(L, n_steps=k, return_grad=True)
        assert_follows(grad, ref_grad, name, device, dtype)
        assert float(loss) == pytest.approx(float(ref_loss),
                                            rel=1e-10 if dtype == "float64" else 1e-5)
    assert_follows(swav_codes(convert(L, name, device, dtype)), swav_codes(L), name, device,
                   dtype)


def _dispatch():
    import sklearn

    return sklearn.config_context(array_api_dispatch=True)


@pytest.mark.parametrize("name, device, dtype", NAMESPACES)
def test_cell_kernels_follow_the_data(name, device, dtype):
    from skbalance.kernels import encode_cells, group_sum, rake_cells

    rng = np.random.default_rng(2)
    codes = [rng.integers(0, 3, size=50), rng.integers(0, 4, size=50)]
    cells, n_cells, cell_codes, counts = encode_cells(codes, [3, 4], return_cell_codes=True,
                                                      return_counts=True)
    moved = [convert(c, name, device, "int64") for c in codes]
    d_cells, d_n, d_codes, d_counts = encode_cells(moved, [3, 4], return_cell_codes=True,
                                                   return_counts=True)
    assert d_n == n_cells
    # cells may be numbered differently: compare through each row's level codes
    for column in range(2):
        np.testing.assert_array_equal(to_numpy(d_codes[column])[to_numpy(d_cells)],
                                      codes[column])
    values = rng.uniform(size=50)
    sums = group_sum(moved[0], convert(values, name, device, dtype), 3)
    assert_follows(sums, np.bincount(codes[0], values, minlength=3), name, device, dtype,
                   exact_dtype=False)
    base = np.bincount(cells, minlength=n_cells) / 50.0
    targets = [np.array([0.2, 0.3, 0.5]), np.array([0.1, 0.2, 0.3, 0.4])]
    reference = rake_cells(base, cell_codes, targets, max_iter=7, tol=0).cell_factors
    result = rake_cells(convert(base, name, device, dtype),
                        [convert(c, name, device, "int64") for c in cell_codes],
                        targets, max_iter=7, tol=0).cell_factors
    assert_follows(result, reference, name, device, dtype, exact_dtype=False)


def _raking_case():
    rng = np.random.default_rng(3)
    X = rng.integers(0, 3, size=(300, 3)).astype(float)
    X[:4, 2] = np.nan
    targets = {(0, 1): {(i, j): 1 / 9 for i in range(3) for j in range(3)},
               2: {0.0: 0.3, 1.0: 0.3, 2.0: 0.35, None: 0.05}}
    kwargs = {"targets": targets, "missing": "level", "bounds": (0.2, 5.0), "tol": 1e-10}
    return X, rng.uniform(1, 2, size=300), kwargs


def _calibration_case(method):
    rng = np.random.default_rng(4)
    X = np.column_stack([rng.integers(0, 3, 300), rng.gamma(2.0, 2.0, 300).round(1)])
    kwargs = {"targets": {0: {0.0: 0.3, 1.0: 0.3, 2.0: 0.4}, 1: skb.Mean(4.3)},
              "distance": method, "bounds": (0.3, 3.0), "tol": 1e-10}
    return X, rng.uniform(1, 2, size=300), kwargs


BALANCER_CASES = {"raking": _raking_case,
                  "calibration-raking": lambda: _calibration_case("raking"),
                  "calibration-logit": lambda: _calibration_case("logit")}


@pytest.mark.parametrize("name, device, dtype", NAMESPACES)
@pytest.mark.parametrize("case", list(BALANCER_CASES))
def test_marginal_balancer_follows_the_data(name, device, dtype, case):
    X, base, kwargs = BALANCER_CASES[case]()
    reference = skb.MarginalBalancer(**kwargs).fit(X, sample_weight=base)
    with _dispatch():
        fitted = skb.MarginalBalancer(**kwargs).fit(convert(X, name, device, dtype),
                                                    sample_weight=convert(base, name,
                                                                          device, dtype))
        assert_follows(fitted.weights_, reference.weights_, name, device, dtype,
                       exact_dtype=False)
        new = convert(X[::3], name, device, dtype)
        assert_follows(fitted.compute_weights(new), reference.compute_weights(X[::3]),
                       name, device, dtype, exact_dtype=False)
        assert_follows(fitted.transform(new)[:, 0], reference.transform(X[::3])[:, 0],
                       name, device, dtype, exact_dtype=False)
        # the covariate-balance report reads device rows and weights on the host
        report = fitted.balance_report(convert(X, name, device, dtype),
                                       sample_weight=convert(base, name, device, dtype))
    expected = reference.balance_report(X, sample_weight=base)
    np.testing.assert_allclose(report["after"], expected["after"], rtol=1e-5, atol=1e-6)
    if case == "raking":  # calibration in float32 may stop short of tol 1e-10
        assert fitted.n_iter_ == reference.n_iter_ and fitted.converged_
    else:
        assert fitted.converged_ or dtype == "float32"
    assert fitted.effective_sample_size_ == pytest.approx(
        reference.effective_sample_size_, rel=1e-6)


def test_without_dispatch_arrays_are_converted_or_refused():
    X = np.array([[0.0], [1.0], [1.0]])
    reference = skb.MarginalBalancer().fit(X).weights_
    strict = xp_strict.asarray(X)
    fitted = skb.MarginalBalancer().fit(np.asarray(strict))
    np.testing.assert_allclose(fitted.weights_, reference)
    with _dispatch():
        on_device = skb.MarginalBalancer().fit(strict)
    with pytest.raises(ValueError, match=r"MarginalBalancer.transform\(\) must use the same"):
        on_device.transform(X)


@pytest.mark.parametrize("name, device, dtype", NAMESPACES)
def test_theory_follows_the_data(name, device, dtype):
    from skbalance import theory

    P = theory.random_table((3, 4), random_state=4)
    h = np.random.default_rng(4).normal(size=(3, 4))
    P_x, h_x = convert(P, name, device, dtype), convert(h, name, device, dtype)
    assert_follows(theory.singular_values(P_x), theory.singular_values(P), name, device,
                   dtype, exact_dtype=False)
    curve, limit = theory.variance_curve(P_x, h_x, 5)
    reference, reference_limit = theory.variance_curve(P, h, 5)
    assert_follows(curve, reference, name, device, dtype, exact_dtype=False)
    assert limit == pytest.approx(reference_limit, rel=1e-5)
    assert theory.asymptotic_variance(P_x, h_x, 3) == pytest.approx(
        theory.asymptotic_variance(P, h, 3), rel=1e-5)
    margins = [P.sum(1), P.sum(0)]
    assert_follows(theory.balance_table(P_x, *margins, 3),
                   theory.balance_table(P, *margins, 3), name, device, dtype,
                   exact_dtype=False)


@pytest.mark.parametrize("name, device, dtype", NAMESPACES)
def test_estimators_follow_the_data(name, device, dtype):
    rng = np.random.default_rng(5)
    X = rng.integers(0, 3, size=(400, 2)).astype(float)
    y = X[:, 0] + rng.normal(size=400)
    base = rng.uniform(1, 2, size=400)
    targets = {0: {0.0: 0.2, 1.0: 0.3, 2.0: 0.5}, 1: {0.0: 0.4, 1.0: 0.4, 2.0: 0.2}}
    tolerance = 1e-9 if dtype == "float64" else 1e-4
    X_x, y_x = convert(X, name, device, dtype), convert(y, name, device, dtype)
    base_x = convert(base, name, device, dtype)
    for baseline in (None, "ipwi", "empirical"):
        est = skb.BalancedFunctionalEstimator(skb.MarginalBalancer(targets=targets),
                                              baseline=baseline)
        reference = est.fit(X, y, sample_weight=base)
        expected = (reference.estimate_, reference.std_error_)
        with _dispatch():
            fitted = clone(est).fit(X_x, y_x, sample_weight=base_x)
        assert fitted.estimate_ == pytest.approx(expected[0], rel=tolerance)
        assert fitted.std_error_ == pytest.approx(expected[1], rel=tolerance * 10)
        assert_follows(fitted.weights_, reference.weights_, name, device, dtype,
                       exact_dtype=False)
    sga = skb.SpectralGapAnalyzer(n_components=1)
    reference = sga.fit(X, y, sample_weight=base)
    expected_curve, expected_coords = reference.variance_curve_, reference.transform(X)
    with _dispatch():
        fitted = skb.SpectralGapAnalyzer(n_components=1).fit(X_x, y_x, sample_weight=base_x)
        assert_follows(fitted.transform(X_x), expected_coords, name, device, dtype,
                       exact_dtype=False)
    assert_follows(fitted.variance_curve_, expected_curve, name, device, dtype,
                   exact_dtype=False)


def test_device_arrays_without_dispatch_get_a_clear_error():
    on_device = xp_strict.asarray(np.array([[0.0], [1.0]]), device=xp_strict.Device("device1"))
    with pytest.raises(TypeError, match="array_api_dispatch"):
        skb.MarginalBalancer().fit(on_device)
