"""Products and small helpers shared by the two Sinkhorn paths."""

import numpy as np
from array_api_compat import is_numpy_namespace

__all__ = ["divide_or_zero", "is_sparse", "kernel_products", "max_abs"]


def is_sparse(K):
    return hasattr(K, "tocsr") and hasattr(K, "nnz")


def kernel_products(K, xp):
    """``K v`` and ``K^T u`` for dense, batched or sparse kernels."""
    if is_sparse(K):
        Kt = K.T.tocsr()
        return _quiet(lambda v: K @ v), _quiet(lambda u: Kt @ u)
    if K.ndim == 2:
        if is_numpy_namespace(xp):
            return _quiet(lambda v: K @ v), _quiet(lambda u: u @ K)
        Kt = xp.permute_dims(K, (1, 0))
        return _quiet(lambda v: xp.matmul(K, v)), _quiet(lambda u: xp.matmul(Kt, u))
    Kt = xp.permute_dims(K, (0, 2, 1))
    return (
        _quiet(lambda v: xp.matmul(K, v[..., None])[..., 0]),
        _quiet(lambda u: xp.matmul(Kt, u[..., None])[..., 0]),
    )


def _quiet(product):
    """A product without NumPy's "invalid value" flag.

    Some BLAS builds raise the floating-point invalid flag in float32
    matrix-vector products of finite inputs (seen with OpenBLAS on this
    project's CI machines, intermittently). The flag is no evidence of a NaN:
    real ones are caught where it matters, since sinkhorn measures the plan
    it returns and raises when that is not finite.
    """
    def run(x):
        with np.errstate(invalid="ignore"):
            return product(x)
    return run


def max_abs(xp, x):
    return float(xp.max(xp.abs(x))) if x.shape[-1] else 0.0


def divide_or_zero(xp, target, current):
    """target / current, with 0 where the target is 0."""
    safe = xp.where(current > 0, current, xp.ones_like(current))
    return xp.where(target > 0, target / safe, xp.zeros_like(target))
