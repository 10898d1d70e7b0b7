"""The balanced contrastive (CLIP) loss family, with its exact gradient."""

from __future__ import annotations

from typing import Any

from array_api_compat import array_namespace

from ..utils._array_api import float_dtype, logsumexp
from ..utils._validation import check_nonnegative_int

__all__ = ["balanced_contrastive_loss"]


def balanced_contrastive_loss(logits: Any, n_steps: int = 2, *,
                              return_grad: bool = False) -> Any:
    """Contrastive loss after ``n_steps`` balancing steps of the logits.

    For a batch of ``m`` pairs with logits ``L`` (``L[i, j]`` the scaled
    similarity of item ``i`` of one modality with item ``j`` of the other;
    matching pairs on the diagonal), the paper's family (no ``log m`` terms):

    * ``n_steps = 0``: ``-mean_i(L_ii - logsumexp(L))`` (the whole matrix
      normalised at once);
    * ``n_steps = k >= 1``: ``A`` applies k log-softmax steps starting with
      rows (row, column, row, ...), ``B`` starting with columns, and the loss
      is ``-mean_i(A_ii + B_ii) / 2``. ``k = 1`` is the CLIP loss, ``k = 2``
      the doubly-centred loss.

    Each log-softmax is one balancing step of ``exp(L)`` toward uniform
    marginals, in the log domain. The gradient is back-propagated exactly
    through every step.

    Parameters
    ----------
    logits : array of shape (m, m)
        Any Array API array (NumPy, CuPy, ...); the result stays in its
        namespace and on its device.
    n_steps : int, default=2
        Number of balancing steps ``k``.
    return_grad : bool, default=False
        Also return the gradient with respect to ``logits``.

    Returns
    -------
    loss : 0-d array
        The loss.
    grad : array of shape (m, m)
        Only with ``return_grad=True``.

    Examples
    --------
    >>> import numpy as np
    >>> from skbalance.ssl import balanced_contrastive_loss
    >>> L = np.array([[2.0, 0.0], [0.5, 1.0]])
    >>> row = L - np.log(np.exp(L).sum(axis=1, keepdims=True))
    >>> col = L - np.log(np.exp(L).sum(axis=0, keepdims=True))
    >>> clip = -(np.diag(row) + np.diag(col)).mean() / 2  # the CLIP loss
    >>> bool(np.isclose(balanced_contrastive_loss(L, n_steps=1), clip))
    True
    """
    xp = array_namespace(logits)
    if logits.ndim != 2 or logits.shape[0] != logits.shape[1]:
        raise ValueError(
            f"logits must be a square (m, m) matrix of paired items; got shape "
            f"{tuple(logits.shape)}."
        )
    n_steps = check_nonnegative_int(n_steps, "n_steps")
    logits = xp.astype(logits, float_dtype(xp, logits), copy=False)
    if not bool(xp.all(xp.isfinite(logits))):
        raise ValueError("logits contain NaN or Inf.")
    m = logits.shape[0]
    eye = xp.eye(m, dtype=logits.dtype, device=getattr(logits, "device", None))
    if n_steps == 0:
        total = logsumexp(xp, logits)
        loss = -(xp.sum(logits * eye) / m - total)
        if not return_grad:
            return loss
        return loss, xp.exp(logits - total) - eye / m

    # A log-softmax along an axis subtracts one vector from the matrix, so
    # every step's matrix is L - r[:, None] - c[None, :]: the forward pass
    # keeps the offsets r, c of every step (vectors), and the backward pass
    # recomputes each step's softmax from them. Memory stays a few m x m
    # arrays whatever n_steps (storing the matrices grew with it).
    zeros = xp.zeros((m,), dtype=logits.dtype, device=getattr(logits, "device", None))
    chains = []
    for first_axis in (1, 0):  # rows first (A), columns first (B)
        r, c, offsets = zeros, zeros, []
        for step in range(1, int(n_steps) + 1):
            axis = first_axis if step % 2 == 1 else 1 - first_axis
            current = logits - r[:, None] - c[None, :]
            if axis == 1:
                r = r + logsumexp(xp, current, axis=1)
            else:
                c = c + logsumexp(xp, current, axis=0)
            offsets.append((r, c))
        chains.append((first_axis, offsets))
    diagonal = xp.sum(logits * eye, axis=1)
    loss = -sum(xp.sum(diagonal - offsets[-1][0] - offsets[-1][1])
                for _, offsets in chains) / (2 * m)
    if not return_grad:
        return loss
    grad = xp.zeros_like(logits)
    for first_axis, offsets in chains:
        upstream = -eye / (2 * m)
        for step in range(int(n_steps), 0, -1):
            axis = first_axis if step % 2 == 1 else 1 - first_axis
            r, c = offsets[step - 1]
            # d/dX of log_softmax(X): dY - softmax(X) * sum(dY) along the axis,
            # with softmax(X) = exp(log_softmax(X)) = exp(L - r - c) of this step.
            softmax = xp.exp(logits - r[:, None] - c[None, :])
            upstream = upstream - softmax * xp.sum(upstream, axis=axis, keepdims=True)
        grad = grad + upstream
    return loss, grad
