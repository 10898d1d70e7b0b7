"""Namespace and device helpers: the array follows the data."""

import numpy as np

__all__ = [
    "device_of",
    "check_same_namespace",
    "dispatch_namespace",
    "float_dtype",
    "logsumexp",
    "from_numpy",
    "has_float64",
    "to_numpy",
    "widest_float",
]


def device_of(x):
    """The device of an array (None for libraries without devices)."""
    return getattr(x, "device", None)


def has_float64(xp, x):
    """Whether the device holding ``x`` supports float64 (some GPUs do not)."""
    return _device_has_float64(xp, device_of(x))


def widest_float(xp, x):
    """float64 where the device of ``x`` has it, else float32."""
    return xp.float64 if has_float64(xp, x) else xp.float32


def float_dtype(xp, x):
    """``x``'s dtype if it is real floating, else the widest the device has."""
    if xp.isdtype(x.dtype, "real floating"):
        return x.dtype
    return widest_float(xp, x)


def logsumexp(xp, x, axis=None, keepdims=False):
    """log(sum(exp(x))) along ``axis``, shifted by the maximum so it never
    overflows; a slice of all ``-inf`` gives ``-inf``."""
    peak = xp.max(x, axis=axis, keepdims=True)
    peak = xp.where(xp.isfinite(peak), peak, xp.zeros_like(peak))
    total = xp.log(xp.sum(xp.exp(x - peak), axis=axis, keepdims=True)) + peak
    if keepdims:
        return total
    return xp.reshape(total, ()) if axis is None else xp.squeeze(total, axis=axis)


def dispatch_namespace(X):
    """The namespace to compute X in, following scikit-learn's switch.

    With ``sklearn.set_config(array_api_dispatch=True)`` an array from any
    Array API library (CuPy, torch, ...) is balanced where it lives; without
    it, as with NumPy input, everything runs in NumPy. Returns the namespace
    and whether it is not NumPy.
    """
    import sklearn
    from array_api_compat import array_namespace, is_array_api_obj, is_numpy_namespace

    if not is_array_api_obj(X) or isinstance(X, np.ndarray):
        return None, False
    if not sklearn.get_config().get("array_api_dispatch", False):
        return None, False
    xp = array_namespace(X)
    return xp, not is_numpy_namespace(xp)


def check_same_namespace(X, fitted, where):
    """Raise when ``X`` is from another array library than the fit's data.

    ``fitted`` is the name of the fit data's namespace (None for NumPy and
    pandas), ``where`` the method, for the message: ``"Estimator.predict"``.
    """
    xp, on_device = dispatch_namespace(X)
    used = xp.__name__ if on_device else None
    if used != fitted:
        raise ValueError(
            f"{where}() must use the same namespace as fit: "
            f"fitted on {fitted or 'NumPy/pandas'} data, given {used or 'NumPy/pandas'} "
            "data."
        )


def to_numpy(x):
    """A NumPy copy of a small array from any namespace (device to host)."""
    from array_api_compat import is_array_api_obj

    if isinstance(x, np.ndarray) or not is_array_api_obj(x):
        return np.asarray(x)
    module = type(x).__module__
    if module.startswith("cupy"):
        return x.get()
    if module.startswith("torch"):
        return x.detach().cpu().numpy()
    from array_api_compat import array_namespace

    xp = array_namespace(x)
    info = getattr(xp, "__array_namespace_info__", None)
    if info is not None and hasattr(x, "to_device"):
        x = x.to_device(info().default_device())
    try:
        return np.from_dlpack(x)
    except (TypeError, RuntimeError, BufferError, AttributeError):
        return np.asarray(x)


def from_numpy(x, xp, device, dtype=None):
    """Put a NumPy array into namespace xp on the given device (and dtype).

    float64 data go to a device without float64 as float32.
    """
    array = np.asarray(x)
    if array.dtype == np.float64 and (
        (dtype is not None and dtype == xp.float32) or not _device_has_float64(xp, device)
    ):
        array = array.astype(np.float32)
    out = xp.asarray(array, device=device)
    return out if dtype is None else xp.astype(out, dtype, copy=False)


def _device_has_float64(xp, device):
    info = getattr(xp, "__array_namespace_info__", None)
    if info is None:
        return True
    try:
        return "float64" in info().dtypes(device=device)
    except (TypeError, ValueError, AttributeError):
        return True
