"""Margins in blocks: one group sum over a block's joint code gives all its margins.

A group sum over the cells costs about the same for 10 groups as for 10,000
(the totals stay in cache), so consecutive margins are grouped until their
joint levels fill a small table. One pass over the cells then gives the
table, and every margin of the block, and every two-way table within it, is
a sum over the table's other axes.
"""

import numpy as np

__all__ = ["MarginBlocks"]

# Joint levels of a block's table: 128 KiB of float64, in cache while it is summed.
_TABLE_LEVELS = 1 << 14
# A block's table has at most one joint level per this many cells: on fewer
# cells, work on the table costs about as much as on the cells.
_CELLS_PER_LEVEL = 64


class MarginBlocks:
    """Consecutive margins grouped into blocks with a joint code per cell.

    Parameters
    ----------
    codes : list of ndarray of int, each of shape (n_cells,)
        Every margin's level of each cell, in ``[0, n_levels[j])``.
    n_levels : list of int
        Number of levels of every margin.
    limit : int, optional
        Largest number of joint levels of a block with more than one margin;
        by default 16,384, and at most one per 64 cells (work on a table with
        more levels costs about as much as on the cells). A margin with more
        levels is a block of its own.

    Attributes
    ----------
    members : list of list of int
        The margins of every block, consecutive and in order.
    shapes : list of tuple of int
        The level counts of every block's margins: its table's shape.
    joint : list of ndarray of intp
        Every cell's joint (mixed-radix) level in each block.
    where : list of tuple of int
        Every margin's block and its axis in that block's table.

    Examples
    --------
    >>> import numpy as np
    >>> from skbalance.kernels import MarginBlocks
    >>> codes = [np.array([0, 1, 1]), np.array([2, 0, 2]), np.array([0, 0, 1])]
    >>> blocks = MarginBlocks(codes, [2, 3, 2], limit=6)
    >>> blocks.members
    [[0, 1], [2]]
    >>> [totals.tolist() for totals in blocks.totals(np.array([1.0, 2.0, 4.0]))]
    [[1.0, 6.0], [2.0, 0.0, 5.0], [3.0, 4.0]]
    """

    def __init__(self, codes, n_levels, limit=None):
        n_cells = codes[0].shape[0] if codes else 0
        if limit is None:
            limit = min(_TABLE_LEVELS, n_cells // _CELLS_PER_LEVEL)
        self.members, self.shapes, self.joint, self.where = [], [], [], []
        self._sizes = []  # joint levels of every block
        for j, (margin_codes, levels) in enumerate(zip(codes, n_levels)):
            levels = int(levels)
            if self.members and self._sizes[-1] * levels <= limit:
                if len(self.members[-1]) == 1:  # a new array: the margin's codes stay as given
                    self.joint[-1] = self.joint[-1] * levels
                else:
                    self.joint[-1] *= levels
                self.joint[-1] += margin_codes
                self.members[-1].append(j)
                self.shapes[-1] = self.shapes[-1] + (levels,)
                self._sizes[-1] *= levels
            else:
                self.members.append([j])
                self.shapes.append((levels,))
                self.joint.append(np.asarray(margin_codes, dtype=np.intp))
                self._sizes.append(levels)
            self.where.append((len(self.members) - 1, len(self.members[-1]) - 1))

    def table(self, block, weights):
        """The sum of ``weights`` over every joint level of a block (its table).

        Parameters
        ----------
        block : int
            Which block.
        weights : ndarray of shape (n_cells,)
            What to sum.

        Returns
        -------
        ndarray of shape ``shapes[block]``
            One axis per margin of the block, in order.

        Examples
        --------
        >>> import numpy as np
        >>> from skbalance.kernels import MarginBlocks
        >>> blocks = MarginBlocks([np.array([0, 1, 1]), np.array([1, 0, 1])], [2, 2], limit=4)
        >>> blocks.table(0, np.array([1.0, 2.0, 4.0])).tolist()
        [[0.0, 1.0], [2.0, 4.0]]
        """
        table = np.bincount(self.joint[block], weights, minlength=self._sizes[block])
        return table if len(self.shapes[block]) == 1 else table.reshape(self.shapes[block])

    def totals(self, weights):
        """The sum of ``weights`` over every level of every margin.

        Parameters
        ----------
        weights : ndarray of shape (n_cells,)
            What to sum.

        Returns
        -------
        list of ndarray
            One array of level totals per margin (float64).

        Examples
        --------
        >>> import numpy as np
        >>> from skbalance.kernels import MarginBlocks
        >>> blocks = MarginBlocks([np.array([0, 1, 1]), np.array([1, 0, 1])], [2, 2])
        >>> [totals.tolist() for totals in blocks.totals(np.array([1.0, 2.0, 4.0]))]
        [[1.0, 6.0], [2.0, 5.0]]
        """
        totals = []
        for block in range(len(self.members)):
            table = self.table(block, weights)
            totals.extend(margin_of(table, axis) for axis in range(table.ndim))
        return totals


def margin_of(table, axis, other=None):
    """One axis of a block's table (two axes: their two-way table), the others summed out."""
    if table.ndim == 1:
        return table
    kept = (axis,) if other is None else (axis, other)
    summed = tuple(a for a in range(table.ndim) if a not in kept)
    return table.sum(axis=summed) if summed else table
