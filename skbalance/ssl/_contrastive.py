"""The balanced contrastive (CLIP) loss family, with its exact gradient."""

from array_api_compat import array_namespace

from ..utils._array_api import float_dtype, logsumexp

__all__ = ["balanced_contrastive_loss"]


def _log_softmax(xp, x, axis):
    return x - logsumexp(xp, x, axis=axis, keepdims=True)


def balanced_contrastive_loss(logits, n_steps=2, *, return_grad=False):
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
    if isinstance(n_steps, bool) or int(n_steps) != n_steps or n_steps < 0:
        raise ValueError(f"n_steps must be a nonnegative integer; got {n_steps!r}.")
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

    rows_first, cols_first = [logits], [logits]
    for step in range(1, int(n_steps) + 1):
        odd = step % 2 == 1
        rows_first.append(_log_softmax(xp, rows_first[-1], axis=1 if odd else 0))
        cols_first.append(_log_softmax(xp, cols_first[-1], axis=0 if odd else 1))
    loss = -(xp.sum(rows_first[-1] * eye) + xp.sum(cols_first[-1] * eye)) / (2 * m)
    if not return_grad:
        return loss
    grad = xp.zeros_like(logits)
    for chain, first_axis in ((rows_first, 1), (cols_first, 0)):
        upstream = -eye / (2 * m)
        for step in range(int(n_steps), 0, -1):
            axis = first_axis if step % 2 == 1 else 1 - first_axis
            # d/dX of log_softmax(X): dY - softmax(X) * sum(dY) along the axis,
            # and softmax(X) = exp(log_softmax(X)).
            upstream = upstream - xp.exp(chain[step]) * xp.sum(
                upstream, axis=axis, keepdims=True
            )
        grad = grad + upstream
    return loss, grad
