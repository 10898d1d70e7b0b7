"""The array follows the data: results stay in the input's namespace and on
its device, and equal NumPy's to the dtype's tolerance."""

import numpy as np
import pytest

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


def assert_follows(result, reference, name, device, dtype):
    """Same namespace, device and dtype as the input; NumPy's numbers."""
    if name == "numpy":
        assert isinstance(result, np.ndarray)
    elif name == "torch":
        assert type(result).__module__.startswith("torch")
        assert str(result.device) == device
    else:
        assert type(result).__module__.startswith("array_api_strict")
        assert result.device == xp_strict.Device(device)
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
