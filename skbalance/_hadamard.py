"""Hadamard matrices for balanced repeated replication, as R survey builds them.

BRR assigns row ``h + 1`` of a Hadamard matrix to stratum ``h`` and makes one
replicate per column, so which matrix is used changes the replicates and,
for anything but a linear statistic, the variance. :func:`hadamard` returns
the matrix R survey's ``hadamard(n)`` returns for ``n`` strata (in its 0/1
form), so that ``SurveyDesign(replicates="brr")`` equals R's
``as.svrepdesign(design, type="BRR")``: a stored matrix when one of order
``4 floor(n/4) + 4`` or just above exists, else a Paley matrix, else a stored
matrix doubled by Sylvester's construction.
"""

from __future__ import annotations

import numpy as np

__all__ = ["hadamard"]

# Matrices of order 28 (N. J. A. Sloane's library of Hadamard matrices) and 36
# (Plackett and Burman, 1946), one hexadecimal number per row, in the
# arrangement of R survey's stored list (its rows and columns decide which PSU
# of which stratum each replicate keeps).
_STORED_HEX = {
    28: "fffffff 9c71c78 83cd378 83b2e66 9a0f8d6 952c5ae 8cd239e 58aa7f0 45b59d4 46cbcac "
        "561774a 4b64e9a 5959b26 2d1eae8 3666b34 2b3b51c 31d74b2 32f89ca 2ced646 ea545e4 "
        "f1632cc f09ce1c e54ad52 e6392b2 e8a792a dffe000 bf81f80 7f8007e",
    36: "fffffffff 5c7dc8564 b8fb90ac8 71f721592 e3ee42b24 c7dc8564a 8fb90ac96 1f721592e "
        "3ee42b25c 7dc8564b8 fb90ac970 f721592e2 ee42b25c6 dc8564b8e b90ac971e 721592e3e "
        "e42b25c7c c8564b8fa 90ac971f6 21592e3ee 42b25c7dc 8564b8fb8 0ac971f72 1592e3ee4 "
        "2b25c7dc8 564b8fb90 ac971f720 592e3ee42 b25c7dc84 64b8fb90a c971f7214 92e3ee42a "
        "25c7dc856 4b8fb90ac 971f72158 2e3ee42b2",
}
_STORED_SIZES = (4, 16, 28, 36)
_LARGEST_PRIME = 7919  # R's Paley construction stops at primes up to here


def _double(matrix):
    """Sylvester's doubling in 0/1 form: [[H, H], [H, 1 - H]]."""
    return np.block([[matrix, matrix], [matrix, 1 - matrix]])


def _stored(size):
    if size in _STORED_HEX:
        rows = _STORED_HEX[size].split()
        return np.array([[int(bit) for bit in format(int(row, 16), f"0{size}b")]
                         for row in rows], dtype=np.int8)
    matrix = np.ones((1, 1), dtype=np.int8)  # 4 and 16: Sylvester's matrices
    while matrix.shape[0] < size:
        matrix = _double(matrix)
    return matrix


def _primes_3_mod_4(limit):
    sieve = np.ones(limit + 1, dtype=bool)
    sieve[:2] = False
    for p in range(2, int(limit**0.5) + 1):
        if sieve[p]:
            sieve[p * p::p] = False
    primes = np.flatnonzero(sieve)
    return primes[primes % 4 == 3]


_PRIMES = _primes_3_mod_4(_LARGEST_PRIME)


def _paley_of_prime(p):
    """Paley's matrix of order p + 1 from the quadratic residues modulo p."""
    residues = {0, 1} | {(i * i) % p for i in range(2, (p - 1) // 2 + 1)}
    sums = np.add.outer(np.arange(p), np.arange(p)) % p
    core = np.where(np.isin(sums, list(residues)), 0, 1).astype(np.int8)
    matrix = np.ones((p + 1, p + 1), dtype=np.int8)
    matrix[1:, 1:] = core
    return matrix


def _paley(n, largest):
    """R survey's ``paley(n, nmax)``: a Paley matrix (maybe doubled) of order
    above ``n`` and at most ``largest``, or None."""
    ceiling = size = n + 4 - n % 4
    if n % 8 >= 4:  # a smaller Paley matrix doubled may fit exactly
        while size % 8 == 0:
            size //= 2
        if size - 1 in _PRIMES:
            matrix = _paley_of_prime(size - 1)
            while size < ceiling:
                matrix, size = _double(matrix), size * 2
            return matrix
    if n > _LARGEST_PRIME:
        return None
    p = int(_PRIMES[_PRIMES >= n].min())
    if p + 1 > ceiling + 4 and ceiling + 4 < largest:
        return _paley(ceiling + 3, 2 * (ceiling + 3))
    if p > largest:
        return None
    return _paley_of_prime(p)


def hadamard(n):
    """A 0/1 Hadamard matrix with more than ``n`` rows: R survey's ``hadamard(n)``.

    Parameters
    ----------
    n : int
        The number of strata (rows 2 to n + 1 are used).

    Returns
    -------
    ndarray of int8, shape (m, m)
        ``2 H - 1`` is a Hadamard matrix; its first row is all ones. ``m`` is
        the smallest multiple of 4 above ``n`` wherever R finds one (every
        ``n`` below 90 but a few), else a little larger.

    Examples
    --------
    >>> import numpy as np
    >>> from skbalance._hadamard import hadamard
    >>> hadamard(10).shape
    (12, 12)
    >>> H = 2 * hadamard(10).astype(int) - 1
    >>> bool((H @ H.T == 12 * np.eye(12)).all())
    True
    """
    below = n - n % 4
    sizes = np.asarray(_STORED_SIZES)
    fitting = np.flatnonzero((below < sizes) & (below + 4 >= sizes))
    if fitting.size:
        return _stored(int(sizes[fitting[0]]))
    doublings = np.maximum(0, np.ceil(np.log2((n + 1) / sizes))).astype(int)
    reachable = sizes * 2**doublings
    best = int(np.argmin(reachable - n))
    matrix = None
    if reachable[best] - n > 4:
        matrix = _paley(n, int(reachable[best]))
    if matrix is None:
        matrix = _stored(int(sizes[best]))
        for _ in range(int(doublings[best])):
            matrix = _double(matrix)
    return matrix
