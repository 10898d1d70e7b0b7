"""Rows to distinct cells: the one pass that makes raking cost independent of n.

Rows that share a level on every balancing column always share one balancing
factor, so the iterations run on the table of *observed* cells. The functions
here turn integer level codes per column into a cell index per row and back,
without ever materialising the Cartesian product of all levels.
"""

import numpy as np
import pandas as pd

__all__ = ["encode_cells", "first_occurrence", "group_sum"]

# A dense lookup table over the product of level counts is the fastest way to
# number the cells (no hashing). Above this size a hash table over the row
# keys is used instead, so memory stays proportional to the rows and cells.
_DENSE_LIMIT = 1 << 22
# Mixed-radix keys must stay far from int64 overflow.
_KEY_LIMIT = 1 << 62


def _compress_keys(keys, key_space):
    """Renumber integer keys in [0, key_space) to 0..n_distinct-1."""
    if key_space <= max(_DENSE_LIMIT, 2 * keys.shape[0]):
        occupied = np.zeros(key_space, dtype=bool)
        occupied[keys] = True
        lookup = np.cumsum(occupied, dtype=np.int64) - 1
        n_distinct = int(lookup[-1]) + 1 if key_space else 0
        return lookup[keys], n_distinct
    codes, uniques = pd.factorize(keys, sort=False)
    return codes.astype(np.int64, copy=False), uniques.shape[0]


def encode_cells(codes, n_levels):
    """Number the distinct combinations of level codes.

    Parameters
    ----------
    codes : sequence of ndarray of int, each of shape (n_rows,)
        Level code of every row in each column, in ``[0, n_levels[j])``.
    n_levels : sequence of int
        Number of possible levels of each column.

    Returns
    -------
    cell_of_row : ndarray of int64, shape (n_rows,)
        Index of the cell of every row, in ``[0, n_cells)``.
    n_cells : int
        Number of distinct observed combinations.

    Examples
    --------
    >>> import numpy as np
    >>> from skbalance.kernels import encode_cells
    >>> cells, n_cells = encode_cells([np.array([0, 1, 0]), np.array([2, 0, 2])], [2, 3])
    >>> cells.tolist(), n_cells
    ([0, 1, 0], 2)
    """
    if len(codes) != len(n_levels):
        raise ValueError("codes and n_levels must have the same length.")
    if len(codes) == 0:
        raise ValueError("At least one column is needed to form cells.")
    keys = np.asarray(codes[0], dtype=np.int64)
    key_space = max(int(n_levels[0]), 1)
    for column_codes, levels in zip(codes[1:], n_levels[1:]):
        levels = max(int(levels), 1)
        if key_space * levels >= _KEY_LIMIT:
            keys, key_space = _compress_keys(keys, key_space)
        keys = keys * levels + np.asarray(column_codes, dtype=np.int64)
        key_space *= levels
    return _compress_keys(keys, key_space)


def first_occurrence(cell_of_row, n_cells):
    """Index of the first row of every cell.

    Examples
    --------
    >>> import numpy as np
    >>> from skbalance.kernels import first_occurrence
    >>> first_occurrence(np.array([1, 0, 1, 2]), 3).tolist()
    [1, 0, 3]
    """
    first = np.empty(n_cells, dtype=np.int64)
    rows = np.arange(cell_of_row.shape[0] - 1, -1, -1, dtype=np.int64)
    # Scattering in reverse order leaves the smallest row index in each slot.
    first[cell_of_row[::-1]] = rows
    return first


def group_sum(group, values, n_groups):
    """Sum ``values`` within each group (``values=None`` counts members).

    Examples
    --------
    >>> import numpy as np
    >>> from skbalance.kernels import group_sum
    >>> group_sum(np.array([0, 2, 0]), np.array([1.0, 2.0, 3.0]), 3).tolist()
    [4.0, 0.0, 2.0]
    """
    return np.bincount(group, weights=values, minlength=n_groups).astype(
        np.float64, copy=False
    )
