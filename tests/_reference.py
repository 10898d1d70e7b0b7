"""Independent, obviously-correct implementations used as test oracles."""

import numpy as np


def dense_balance(table, targets, k):
    """THEORY.md section 1 on a dense table: k steps, axis 0 first, cyclic.

    ``table`` is any nonnegative array with one axis per margin; ``targets``
    lists, per axis, target proportions. Plain loops over the grid, no
    vectorised group sums.
    """
    current = np.array(table, dtype=float) / np.sum(table)
    n_axes = current.ndim
    for step in range(k):
        axis = step % n_axes
        marginal = np.zeros(current.shape[axis])
        for index in np.ndindex(current.shape):
            marginal[index[axis]] += current[index]
        updated = current.copy()
        for index in np.ndindex(current.shape):
            level = index[axis]
            if marginal[level] > 0:
                updated[index] = current[index] * targets[axis][level] / marginal[level]
        current = updated
    return current


def dense_row_weights(codes, base, targets, k):
    """Per-row weights from :func:`dense_balance`: base * P^(k) / P_n."""
    shape = tuple(len(t) for t in targets)
    table = np.zeros(shape)
    for row, weight in zip(zip(*codes), base):
        table[row] += weight
    balanced = dense_balance(table, targets, k)
    empirical = table / table.sum()
    return np.array(
        [b * balanced[row] / empirical[row] for row, b in zip(zip(*codes), base)]
    )


def plain_ipf_rows(codes, base, targets, k):
    """k steps of iterative proportional fitting on the rows, margins in turn.

    Every step rescales the rows of each level of one margin so that its
    weighted share equals the target; a level without weight keeps its rows
    as they are. The weights keep the base weights' total.
    """
    weights = np.array(base, dtype=float)
    total = weights.sum()
    for step in range(k):
        margin = step % len(codes)
        sums = np.bincount(codes[margin], weights, minlength=len(targets[margin]))
        ratio = np.divide(np.asarray(targets[margin]) * total, sums,
                          out=np.ones(len(sums)), where=sums > 0)
        weights = weights * ratio[codes[margin]]
    return weights


def k_step_logit_plan(L, k, digits=60):
    """The k-step Sinkhorn plan of logits L (uniform margins, rows first), by
    a plain log-domain loop in decimal arithmetic with ``digits`` digits: an
    offset like -1e20 and the potential that balances it cancel exactly.
    Step 0 is exp(L) scaled to total mass 1."""
    from decimal import Decimal, localcontext

    with localcontext() as context:
        context.prec = digits
        m, n = len(L), len(L[0])
        logits = [[Decimal(float(x)) for x in row] for row in L]

        def lse(values):
            top = max(values)
            return top + sum((v - top).exp() for v in values).ln()

        f = [-lse([x for row in logits for x in row])] * m
        g = [Decimal(0)] * n
        log_a, log_b = Decimal(m).ln(), Decimal(n).ln()
        for step in range(k):
            if step % 2 == 0:
                f = [-log_a - lse([logits[i][j] + g[j] for j in range(n)]) for i in range(m)]
            else:
                g = [-log_b - lse([logits[i][j] + f[i] for i in range(m)]) for j in range(n)]
        return np.array([[float((logits[i][j] + f[i] + g[j]).exp()) for j in range(n)]
                         for i in range(m)])


def dense_cr2(X, base, weights, z, cluster, keep=None, indicator=None):
    """CR2 variance of sum w e and its Bell-McCaffrey df, with dense matrices.

    ``e`` is the residual of ``z`` on ``X`` under the weights ``base``; the
    (rows x rows) matrix ``S = I - D^1/2 X (X'DX)^+ X' D^1/2`` is formed, each
    cluster's block inverted to its square root by an eigendecomposition, and
    the Gram matrix of the clusters' linear forms in the outcome built row by
    row (``indicator``: the rows whose outcome varies).
    """
    n = len(base)
    keep = np.ones(cluster.max() + 1) if keep is None else keep
    indicator = np.ones(n) if indicator is None else indicator
    root = np.sqrt(base)
    S = np.eye(n) - (root[:, None] * X) @ np.linalg.pinv(X.T @ (base[:, None] * X)) @ (
        X.T * root)
    u = S @ (root * z)
    v = weights / root
    totals, forms = [], []
    for g in range(cluster.max() + 1):
        rows = np.flatnonzero(cluster == g)
        values, vectors = np.linalg.eigh(S[np.ix_(rows, rows)])
        inverse_root = np.where(values > 1e-10, 1 / np.sqrt(np.abs(values)), 0.0)
        A = (vectors * inverse_root) @ vectors.T
        totals.append(v[rows] @ A @ u[rows])
        r = np.zeros(n)
        r[rows] = A @ v[rows]
        forms.append(np.sqrt(keep[g]) * indicator * root * (S @ r))
    variance = float(np.sum(keep * np.square(totals)))
    gram = np.array(forms) @ np.array(forms).T
    return variance, float(np.trace(gram) ** 2 / np.sum(gram**2))
