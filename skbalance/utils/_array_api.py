"""Namespace and device helpers: the array follows the data."""

__all__ = ["device_of", "float_dtype", "has_float64"]


def device_of(x):
    """The device of an array (None for libraries without devices)."""
    return getattr(x, "device", None)


def has_float64(xp, x):
    """Whether the device holding ``x`` supports float64 (some GPUs do not)."""
    info = getattr(xp, "__array_namespace_info__", None)
    if info is None:
        return True
    try:
        return "float64" in info().dtypes(device=device_of(x))
    except (TypeError, ValueError, AttributeError):
        return True


def float_dtype(xp, x):
    """``x``'s dtype if it is real floating, else the widest the device has."""
    if xp.isdtype(x.dtype, "real floating"):
        return x.dtype
    return xp.float64 if has_float64(xp, x) else xp.float32
