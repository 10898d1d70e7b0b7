"""Products and small helpers shared by the two Sinkhorn paths."""

from array_api_compat import is_numpy_namespace

__all__ = ["divide_or_zero", "is_sparse", "kernel_products", "max_abs"]


def is_sparse(K):
    return hasattr(K, "tocsr") and hasattr(K, "nnz")


def kernel_products(K, xp):
    """``K v`` and ``K^T u`` for dense, batched or sparse kernels."""
    if is_sparse(K):
        Kt = K.T.tocsr()
        return (lambda v: K @ v), (lambda u: Kt @ u)
    if K.ndim == 2:
        if is_numpy_namespace(xp):
            return (lambda v: K @ v), (lambda u: u @ K)
        Kt = xp.permute_dims(K, (1, 0))
        return (lambda v: xp.matmul(K, v)), (lambda u: xp.matmul(Kt, u))
    Kt = xp.permute_dims(K, (0, 2, 1))
    return (
        lambda v: xp.matmul(K, v[..., None])[..., 0],
        lambda u: xp.matmul(Kt, u[..., None])[..., 0],
    )


def max_abs(xp, x):
    return float(xp.max(xp.abs(x))) if x.shape[-1] else 0.0


def divide_or_zero(xp, target, current):
    """target / current, with 0 where the target is 0."""
    safe = xp.where(current > 0, current, xp.ones_like(current))
    return xp.where(target > 0, target / safe, xp.zeros_like(target))
