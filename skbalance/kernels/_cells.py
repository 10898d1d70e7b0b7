"""Rows to distinct cells: the one pass that makes raking cost independent of n.

Rows that share a level on every balancing column always share one balancing
factor, so the iterations run on the table of *observed* cells. The functions
here turn integer level codes per column into a cell index per row and back,
without ever materialising the Cartesian product of all levels.
"""

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from array_api_compat import array_namespace, device

from ..utils._array_api import has_float64

__all__ = ["SplitColumn", "distinct_row_count", "encode_cells", "first_occurrence",
           "group_sum", "group_sums"]

# A dense lookup table over the product of level counts is the fastest way to
# number the cells (no hashing). Above this size the row keys are sorted (when
# nearly every row is its own cell) or hashed, so memory stays proportional to
# the rows and cells.
_DENSE_LIMIT = 1 << 22
# Mixed-radix keys must stay far from int64 overflow.
_KEY_LIMIT = 1 << 62
# An odd 63-bit constant (from the golden ratio) whose products scramble keys.
_SCRAMBLE = 0x1E3779B97F4A7C15


def _compress_keys(keys, key_space):
    """Renumber integer keys in [0, key_space) to 0..n_distinct-1.

    Returns the new codes, the distinct keys in the order of the codes, and
    how often each occurs.
    """
    n_rows = keys.shape[0]
    if key_space <= max(_DENSE_LIMIT, 2 * n_rows):
        counts = np.bincount(keys, minlength=key_space)
        occupied = counts > 0
        if 2 * int(np.count_nonzero(occupied)) >= key_space:
            # Most combinations occur: the keys themselves number the cells
            # (a few empty cells cost less than renumbering every row).
            return keys, np.arange(key_space), counts
        lookup = np.cumsum(occupied, dtype=np.int64) - 1
        return lookup[keys], np.flatnonzero(occupied), counts[occupied]
    row_bits = max(n_rows - 1, 1).bit_length()
    if (n_rows and (key_space - 1).bit_length() + row_bits <= 62
            and _mostly_distinct(keys[_sample_rows(n_rows)])):
        return _compress_by_sort(keys, key_space, row_bits)
    codes, uniques = pd.factorize(keys, sort=False)
    codes = codes.astype(np.int64, copy=False)
    return codes, np.asarray(uniques), np.bincount(codes, minlength=uniques.shape[0])


def _sample_rows(n_rows):
    """1 row in 64 (at least 1,024 rows), at fixed pseudo-random rows (so that
    sorted rows do not fool a guess made from them)."""
    n_sample = min(n_rows, max(n_rows // 64, 1024))
    return np.random.default_rng(0).choice(n_rows, n_sample, replace=False, shuffle=False)


def _mostly_distinct(sample_keys, share=0.95):
    """Whether a sample of rows' keys (:func:`_sample_rows`) is almost all distinct.

    Then the rows hold more than about a sixth as many cells as rows, where
    one sort numbers them faster than a hash table (whose lookups miss the
    cache once it outgrows it); with fewer cells the hash is faster. Only
    the speed depends on this guess, never the cells.
    """
    return np.unique(sample_keys).shape[0] >= share * sample_keys.shape[0]


def _mixed_radix(codes, sizes):
    """Every row's key: its codes as the digits of a mixed-radix number."""
    keys = np.asarray(codes[0], dtype=np.int64).copy()
    for column_codes, levels in zip(codes[1:], sizes[1:]):
        keys *= levels
        keys += column_codes
    return keys


def distinct_row_count(codes, n_levels):
    """Count the distinct combinations of level codes when rows hardly share them.

    Numbering the cells pays when rows share them. When the combinations are
    too many for a dense table and a sample of 1 row in 64 is 95% distinct
    combinations, the cells would be nearly as many as the rows: a caller
    may let every row be its own cell, and needs only this count (one sort,
    a fraction of what numbering costs).

    Parameters
    ----------
    codes : sequence of ndarray of int, each of shape (n_rows,)
        Level code of every row in each column, in ``[0, n_levels[j])``.
    n_levels : sequence of int
        Number of possible levels of each column.

    Returns
    -------
    int or None
        The number of distinct combinations among the rows; None when the
        rows share combinations (or are few, or not NumPy arrays).

    Examples
    --------
    >>> import numpy as np
    >>> from skbalance.kernels import distinct_row_count
    >>> rng = np.random.default_rng(0)
    >>> codes = [rng.integers(0, 100, 5000) for _ in range(5)]  # 10**10 combinations
    >>> distinct_row_count(codes, [100] * 5)
    5000
    >>> distinct_row_count([c % 2 for c in codes], [100] * 5) is None  # 32 combinations
    True
    """
    if not codes or not all(isinstance(c, np.ndarray) for c in codes):
        return None
    n_rows = codes[0].shape[0]
    sizes = [max(int(levels), 1) for levels in n_levels]
    key_space = math.prod(sizes)
    if not n_rows or key_space <= max(_DENSE_LIMIT, 2 * n_rows) or key_space >= _KEY_LIMIT:
        return None
    picked = _sample_rows(n_rows)
    if not _mostly_distinct(_mixed_radix([c[picked] for c in codes], sizes)):
        return None
    keys = _mixed_radix(codes, sizes)
    keys.sort()
    return int(np.count_nonzero(keys[1:] != keys[:-1])) + 1


def _compress_by_sort(keys, key_space, row_bits):
    """_compress_keys by one sort of the keys with each row's index packed
    below them (a plain sort, faster than an argsort).

    The keys are scrambled first (times an odd number, modulo a power of 2:
    a one-to-one map), so that cells are numbered in no order of their
    levels. In the order of their keys, a column's codes come in long runs,
    and a group sum over cells adds into the same total many times in a row,
    which is 2-3 times slower than adding into scattered totals.
    """
    n_rows = keys.shape[0]
    key_bits = max(key_space - 1, 1).bit_length()
    key_mask = (1 << key_bits) - 1
    scramble = _SCRAMBLE & key_mask | 1
    packed = keys * scramble  # int64 products wrap modulo 2**64, the low bits exact
    packed &= key_mask
    packed <<= row_bits
    packed |= np.arange(n_rows, dtype=np.int64)
    packed.sort()
    order = packed & ((1 << row_bits) - 1)
    packed >>= row_bits  # the sorted scrambled keys
    starts = np.empty(n_rows, dtype=bool)
    starts[0] = True
    np.not_equal(packed[1:], packed[:-1], out=starts[1:])
    sorted_codes = np.cumsum(starts, dtype=np.int64)
    sorted_codes -= 1
    codes = np.empty(n_rows, dtype=np.int64)
    codes[order] = sorted_codes
    starts = np.flatnonzero(starts)
    distinct = packed[starts]
    distinct *= pow(scramble, -1, 1 << key_bits)  # the inverse map: the keys themselves
    distinct &= key_mask
    return codes, distinct, np.diff(starts, append=n_rows)


def encode_cells(codes, n_levels, *, return_cell_codes=False, return_counts=False):
    """Number the distinct combinations of level codes.

    Parameters
    ----------
    codes : sequence of ndarray of int, each of shape (n_rows,)
        Level code of every row in each column, in ``[0, n_levels[j])``
        (any integer width).
    n_levels : sequence of int
        Number of possible levels of each column.
    return_cell_codes : bool, default=False
        Also return every cell's level code in each column.
    return_counts : bool, default=False
        Also return the number of rows in every cell.

    Returns
    -------
    cell_of_row : ndarray of int64, shape (n_rows,)
        Index of the cell of every row, in ``[0, n_cells)``.
    n_cells : int
        Number of cells: the distinct observed combinations, plus, when most
        combinations of the levels occur, the few that do not (with no rows).
    cell_codes : list of ndarray of shape (n_cells,)
        Only with ``return_cell_codes``: the level code of every cell in each
        column (decoded from the cell keys, without another pass over rows
        when the keys never needed renumbering).
    cell_rows : ndarray of float64, shape (n_cells,)
        Only with ``return_counts``: rows per cell.

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
    sizes = [max(int(levels), 1) for levels in n_levels]
    if not isinstance(codes[0], np.ndarray):
        return _encode_cells_any(codes, sizes, return_cell_codes, return_counts)
    keys = np.asarray(codes[0], dtype=np.int64)
    key_space = sizes[0]
    owned = False  # whether `keys` is our own array, safe to update in place
    renumbered = False
    for column_codes, levels in zip(codes[1:], sizes[1:]):
        if key_space * levels >= _KEY_LIMIT:
            keys, distinct, _ = _compress_keys(keys, key_space)
            key_space, owned, renumbered = distinct.shape[0], True, True
        if owned:
            keys *= levels
        else:
            keys = keys * levels
            owned = True
        keys += column_codes  # narrow codes widen on the fly
        key_space *= levels
    cell_of_row, distinct, rows = _compress_keys(keys, key_space)
    n_cells = int(distinct.shape[0])
    if not (return_cell_codes or return_counts):
        return cell_of_row, n_cells
    extra = []
    if return_cell_codes:
        extra.append(_cell_codes(codes, sizes, cell_of_row, distinct, renumbered))
    if return_counts:
        extra.append(rows.astype(np.float64))
    return (cell_of_row, n_cells, *extra)


def _cell_codes(codes, sizes, cell_of_row, distinct, renumbered):
    """Level code of every cell in each column."""
    if renumbered:
        first = first_occurrence(cell_of_row, distinct.shape[0])
        return [np.asarray(c, dtype=np.int64)[first] for c in codes]
    cell_codes, remainder = [], distinct.astype(np.int64)
    for levels in reversed(sizes):
        quotient = remainder // levels  # with a product: faster than np.divmod
        cell_codes.append(remainder - quotient * levels)
        remainder = quotient
    cell_codes.reverse()
    return cell_codes


def _encode_cells_any(codes, sizes, return_cell_codes, return_counts):
    """encode_cells for any Array API namespace: sort-based, on the device."""
    xp = array_namespace(*codes)
    keys = xp.astype(codes[0], xp.int64)
    key_space, renumbered = sizes[0], False
    for column_codes, levels in zip(codes[1:], sizes[1:]):
        if key_space * levels >= _KEY_LIMIT:
            distinct, keys = xp.unique_inverse(keys)
            key_space, renumbered = int(distinct.shape[0]), True
        keys = keys * levels + xp.astype(column_codes, xp.int64)
        key_space *= levels
    distinct, cell_of_row = xp.unique_inverse(keys)
    cell_of_row = xp.astype(cell_of_row, xp.int64)
    n_cells = int(distinct.shape[0])
    result = [cell_of_row, n_cells]
    if return_cell_codes:
        if renumbered:  # keys no longer decode: read the codes at each cell's first row
            order = xp.argsort(cell_of_row, stable=True)
            starts = xp.searchsorted(
                xp.take(cell_of_row, order),
                xp.arange(n_cells, dtype=xp.int64, device=device(cell_of_row)),
            )
            first = xp.take(order, starts)
            cell_codes = [xp.take(xp.astype(c, xp.int64), first) for c in codes]
        else:
            cell_codes, remainder = [], distinct
            for levels in reversed(sizes):
                cell_codes.append(remainder % levels)
                remainder = remainder // levels
            cell_codes.reverse()
        result.append(cell_codes)
    if return_counts:
        result.append(group_sum(cell_of_row, None, n_cells))
    return tuple(result)


def first_occurrence(cell_of_row, n_cells):
    """Index of the first row of every cell.

    Parameters
    ----------
    cell_of_row : ndarray of int, shape (n_rows,)
        Cell of every row, in ``[0, n_cells)``.
    n_cells : int
        Number of cells (each with at least one row).

    Returns
    -------
    first : ndarray of int64, shape (n_cells,)
        The smallest row index of every cell.

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

    NumPy, CuPy and torch use their ``bincount``; other Array API libraries
    a sort-based fallback. The result is in the namespace of ``group``.

    Parameters
    ----------
    group : array of int, shape (n,)
        Group of every element, in ``[0, n_groups)``.
    values : array of shape (n,) or None
        What to sum; None counts the elements of every group.
    n_groups : int
        Number of groups.

    Returns
    -------
    sums : array of shape (n_groups,)
        Float sums (counts as floats).

    Examples
    --------
    >>> import numpy as np
    >>> from skbalance.kernels import group_sum
    >>> group_sum(np.array([0, 2, 0]), np.array([1.0, 2.0, 3.0]), 3).tolist()
    [4.0, 0.0, 2.0]
    """
    if isinstance(group, np.ndarray) and (values is None or isinstance(values, np.ndarray)):
        return np.bincount(group, weights=values, minlength=n_groups).astype(
            np.float64, copy=False
        )
    xp = array_namespace(group) if values is None else array_namespace(group, values)
    where = device(group)
    if values is None:
        dtype = xp.float64 if has_float64(xp, group) else xp.float32
    else:
        dtype = values.dtype
    if values is None:
        values = xp.ones(group.shape, dtype=dtype, device=where)
    bincount = getattr(xp, "bincount", None)
    if bincount is not None:  # NumPy, CuPy and torch have a native one
        return xp.astype(bincount(group, weights=values, minlength=n_groups), dtype)
    # Portable fallback: sort, cumulative sums, differences at group edges.
    order = xp.argsort(group)
    sorted_group = xp.take(group, order)
    totals = xp.cumulative_sum(xp.take(values, order), include_initial=True)
    edges = xp.searchsorted(
        sorted_group, xp.arange(n_groups + 1, dtype=group.dtype, device=where)
    )
    return xp.take(totals, edges[1:]) - xp.take(totals, edges[:-1])


@dataclass(frozen=True)
class SplitColumn:
    """One row array standing for ``n_parts`` columns, split by a code per row.

    Column ``j`` is ``values`` on the rows whose code is ``j`` and 0 on the
    others (code -1: in no column). The columns of one outcome in every
    domain have disjoint rows, so they fit in one array: memory grows with
    the rows, not rows times domains.

    Parameters
    ----------
    values : ndarray of shape (n,)
        Every row's value in its own column.
    codes : ndarray of int of shape (n,)
        Every row's column, in ``[-1, n_parts)``.
    n_parts : int
        Number of columns.

    Examples
    --------
    >>> import numpy as np
    >>> from skbalance.kernels import SplitColumn
    >>> split = SplitColumn(np.array([1.0, 2.0, 3.0]), np.array([0, 1, 0]), 2)
    >>> split.column(0).tolist()
    [1.0, 0.0, 3.0]
    """

    values: np.ndarray
    codes: np.ndarray
    n_parts: int

    def column(self, part):
        """Make one column as a dense row array.

        Parameters
        ----------
        part : int
            The column, in ``[0, n_parts)``.

        Returns
        -------
        ndarray of shape (n,)
            ``values`` on the column's rows, 0 elsewhere.

        Examples
        --------
        >>> import numpy as np
        >>> from skbalance.kernels import SplitColumn
        >>> SplitColumn(np.array([1.0, 2.0]), np.array([1, 0]), 2).column(1).tolist()
        [1.0, 0.0]
        """
        return np.where(self.codes == part, self.values, 0.0)

    def times(self, factor):
        """Multiply every column by ``factor``.

        Parameters
        ----------
        factor : float or ndarray of shape (n,)
            A number, or one per row.

        Returns
        -------
        SplitColumn
            The split of ``values * factor``, on the same codes.

        Examples
        --------
        >>> import numpy as np
        >>> from skbalance.kernels import SplitColumn
        >>> split = SplitColumn(np.array([1.0, 2.0]), np.array([1, 0]), 2)
        >>> split.times(3.0).values.tolist()
        [3.0, 6.0]
        """
        return SplitColumn(self.values * factor, self.codes, self.n_parts)


def group_sums(group, columns, n_groups, weights=None):
    """Sum ``weights * column`` within every group, for many columns.

    Parameters
    ----------
    group : ndarray of int of shape (n,)
        Group of every row, in ``[0, n_groups)``.
    columns : list of (ndarray of shape (n,) or SplitColumn)
        A :class:`SplitColumn` gives its ``n_parts`` columns at once, from one
        pass over (group, part) pairs.
    n_groups : int
        Number of groups.
    weights : ndarray of shape (n,) or None, default=None
        Row weights multiplying every column (None: 1).

    Returns
    -------
    ndarray of shape (n_groups, n_columns)
        ``n_columns`` counts every part of a split column.

    Examples
    --------
    >>> import numpy as np
    >>> from skbalance.kernels import SplitColumn, group_sums
    >>> split = SplitColumn(np.array([1.0, 2.0, 3.0]), np.array([0, 1, -1]), 2)
    >>> group_sums(np.array([0, 0, 1]), [np.ones(3), split], 2).tolist()
    [[2.0, 1.0, 2.0], [1.0, 0.0, 0.0]]
    """
    sums = []
    for column in columns:
        if isinstance(column, SplitColumn):
            values = column.values if weights is None else column.values * weights
            keys = group * column.n_parts + column.codes
            inside = column.codes >= 0
            if not inside.all():
                keys, values = keys[inside], values[inside]
            sums.append(np.bincount(keys, values, minlength=n_groups * column.n_parts)
                        .reshape(n_groups, column.n_parts))
        else:
            values = column if weights is None else column * weights
            sums.append(np.bincount(group, values, minlength=n_groups)[:, None])
    if not sums:
        return np.zeros((n_groups, 0))
    return np.hstack(sums).astype(np.float64, copy=False)
