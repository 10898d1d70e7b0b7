"""SwaV's Sinkhorn-Knopp cluster codes."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from array_api_compat import array_namespace, device

from ..utils._array_api import float_dtype, logsumexp
from ..utils._validation import check_nonnegative_int

__all__ = ["swav_codes"]


def swav_codes(scores: Any, epsilon: float = 0.05, n_iter: int = 3) -> Any:
    """Soft cluster assignments of SwaV (and DINOv2's Sinkhorn centring).

    Exactly SwaV's ``distributed_sinkhorn`` on one process: ``Q = exp(scores
    / epsilon)`` normalised to total 1, then ``n_iter`` times: every
    prototype (column) gets mass ``1 / K``, then every sample (row) mass
    ``1 / B``; finally rows are scaled to sum to 1 (with ``n_iter >= 1``).
    The normalisations run on ``log Q`` (log-sum-exp), which gives the same
    values while no temperature, however small, can overflow or turn a
    prototype far from every sample into ``0 / 0``.

    Parameters
    ----------
    scores : array of shape (B, K)
        Similarities of B samples to K prototypes (any Array API array).
    epsilon : float, default=0.05
        Temperature (SwaV's default).
    n_iter : int, default=3
        Sinkhorn iterations (SwaV's default).

    Returns
    -------
    codes : array of shape (B, K)
        Rows sum to 1; columns sum to ``B / K`` when converged.

    Examples
    --------
    >>> import numpy as np
    >>> from skbalance.ssl import swav_codes
    >>> codes = swav_codes(np.array([[0.9, 0.1], [0.8, 0.3], [0.2, 0.7]]))
    >>> codes.sum(axis=1).round(12).tolist()
    [1.0, 1.0, 1.0]
    """
    xp = array_namespace(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be (B, K); got shape {tuple(scores.shape)}.")
    if not epsilon > 0:
        raise ValueError(f"epsilon must be positive; got {epsilon!r}.")
    n_iter = check_nonnegative_int(n_iter, "n_iter")
    scores = xp.astype(scores, float_dtype(xp, scores), copy=False)
    if not bool(xp.all(xp.isfinite(scores))):
        raise ValueError("scores contain NaN or Inf.")
    spread = float(xp.max(scores) - xp.min(scores))
    largest = float(xp.finfo(scores.dtype).max)
    if spread / largest * 1e8 > epsilon:  # scores / epsilon would leave the float range
        raise ValueError(
            f"epsilon={epsilon!r} is too small for these scores in {scores.dtype}: their "
            f"range over epsilon leaves the float range (the codes would be NaN). Use "
            f"epsilon >= {spread / largest * 1e8:.1e}, or float64 scores.")
    n_samples, n_prototypes = scores.shape
    if n_iter:
        codes = _scaled_codes(xp, scores / epsilon, int(n_iter))  # a new array
        if codes is not None:
            return codes
    # SwaV's normalisations, carried out on log Q: identical values, but a
    # prototype that no sample is close to cannot underflow to 0 / 0.
    log_q = scores / epsilon
    log_q = log_q - logsumexp(xp, log_q)
    for _ in range(int(n_iter)):
        log_q = log_q - logsumexp(xp, log_q, axis=0, keepdims=True) - math.log(n_prototypes)
        log_q = log_q - logsumexp(xp, log_q, axis=1, keepdims=True) - math.log(n_samples)
    return xp.exp(log_q + math.log(n_samples))


def _scaled_codes(xp, logits, n_iter):
    """SwaV's iterations as scalings of ``exp(logits - max)``: two products
    with the matrix per iteration instead of rescaling it twice.

    The first normalisation to total 1 cancels in the first column step.
    Returns None when a row or column sum underflows (a prototype far from
    every sample at a small temperature): the log-domain path then runs.
    """
    n_samples, n_prototypes = logits.shape
    numpy = isinstance(logits, np.ndarray)
    if numpy:  # in place: ``logits`` is our own array
        logits -= logits.max()
        Q = np.exp(logits, out=logits)
    else:
        Q = xp.exp(logits - xp.max(logits))
    tiny = float(xp.finfo(Q.dtype).smallest_normal) * 1024
    u = xp.ones(n_samples, dtype=Q.dtype, device=device(Q))
    for _ in range(n_iter):
        # column sums of diag(u) Q diag(v), over v
        columns = u @ Q if numpy else xp.matmul(xp.permute_dims(Q, (1, 0)), u)
        if bool(xp.any(columns <= tiny)):
            return None
        v = 1.0 / (columns * n_prototypes)
        rows = Q @ v if numpy else xp.matmul(Q, v)
        if bool(xp.any(rows <= tiny)):
            return None
        u = 1.0 / (rows * n_samples)
    u = u * n_samples
    if numpy:
        Q *= u[:, None]
        Q *= v[None, :]
        return Q
    return u[:, None] * Q * v[None, :]
