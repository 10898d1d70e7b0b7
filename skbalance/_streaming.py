"""Balancing from a cell table: dask frames and chunks that arrive one by one.

A dask frame is reduced to its cell table by one distributed group-by; chunks
given to ``partial_fit`` are reduced one by one and their tables merged. The
iterations then run in memory on the cells, and the weights of any rows are
the fitted factors mapped back (lazily, partition by partition, for dask).
"""


import numpy as np
import pandas as pd

from ._rows import is_dask, read_rows
from .kernels import group_sum
from .utils._validation import check_sample_weight, missing_values_message
from .utils._warnings import warn

__all__ = [
    "add_chunk",
    "cell_table",
    "cell_table_rows",
    "cells_effective_size",
    "dask_weights",
    "merge_cells",
    "positional_weights",
]

_WEIGHT = "__skbalance_base__"


def _is_dask_array(x):
    return type(x).__module__.startswith("dask.array")


def positional_weights(frame, sample_weight):
    """Base weights for a dask frame, matched to its rows by position.

    scikit-learn's rule, the same as for pandas input: a Series is not aligned
    by its index (a warning says so when the index differs from the frame's).
    Returns a dask array chunked like the frame's partitions.
    """
    import dask.array as da

    if _is_dask_array(sample_weight):  # already matched to the partitions
        return sample_weight
    lengths = tuple(int(n) for n in frame.map_partitions(len).compute())
    n_rows = sum(lengths)
    if is_dask(sample_weight):
        index = sample_weight.index
        values = sample_weight.to_dask_array(lengths=True)
    else:
        index = getattr(sample_weight, "index", None)
        values = np.asarray(sample_weight)
    if values.shape != (n_rows,):
        raise ValueError(f"sample_weight must have shape ({n_rows},), got {values.shape}.")
    if index is not None:
        same = (index.to_dask_array(lengths=True) if is_dask(index) else np.asarray(index))
        frame_index = frame.index.to_dask_array(lengths=True)
        if not bool(da.all(frame_index == da.asarray(same).rechunk(frame_index.chunks))
                    .compute()):
            warn(
                "sample_weight is a Series whose index differs from X's: it is used by "
                "position, not aligned by index (scikit-learn's rule).", UserWarning)
    values = values.rechunk((lengths,)) if is_dask(values) else da.from_array(
        values, chunks=(lengths,))
    return values


def cell_table(frame, columns, sample_weight):
    """Rows, base-weight sum and sum of squares per observed cell.

    Works on pandas and dask frames alike (for dask, one distributed
    group-by; the result is a lazy frame to compute).
    """
    if sample_weight is None:
        frame = frame[columns].assign(**{_WEIGHT: 1.0})
    elif is_dask(frame):
        frame = frame[columns].assign(**{_WEIGHT: positional_weights(frame, sample_weight)})
    else:
        base = check_sample_weight(sample_weight, frame.shape[0])
        frame = frame[columns].assign(**{_WEIGHT: base})
    frame = frame.assign(__squares=frame[_WEIGHT] ** 2,
                         __positive=(frame[_WEIGHT] > 0).astype("i8"))
    grouped = frame.groupby(columns, observed=True, dropna=False, sort=False)
    return grouped.agg(
        rows=(_WEIGHT, "count"), base=(_WEIGHT, "sum"), base_squares=("__squares", "sum"),
        smallest=(_WEIGHT, "min"), positive=("__positive", "sum"),
    ).reset_index()


def merge_cells(old, new, columns):
    """One cell table from two (chunks seen before, and a new chunk)."""
    both = pd.concat([old, new], ignore_index=True)
    grouped = both.groupby(columns, observed=True, dropna=False, sort=False)
    return grouped.agg(rows=("rows", "sum"), base=("base", "sum"),
                       base_squares=("base_squares", "sum"),
                       smallest=("smallest", "min"),
                       positive=("positive", "sum")).reset_index()


def add_chunk(cells, rows, columns, sample_weight):
    """The cell table of earlier chunks (None at first) with a chunk added."""
    new = cell_table(rows.frame(columns), columns, sample_weight)
    if is_dask(new):
        new = new.compute()
    return new if cells is None else merge_cells(cells, new, columns)


def cells_effective_size(cells, problem, cell_scale):
    """Kish's effective sample size from a cell table, scale-free.

    ``cell_scale`` is every cell's weight over base weight.
    """
    squares = group_sum(problem.cell_of_row,
                        cells["base_squares"].to_numpy(dtype=np.float64), problem.n_cells)
    scale = cell_scale / float(np.max(cell_scale))
    total = float(np.sum(scale * problem.cell_base))
    return total**2 / float(np.sum(scale**2 * squares))


def cell_table_rows(cells, columns, missing):
    """The cells of a cell table as rows to balance, their base weights checked.

    Missing values are counted in rows, not cells.
    """
    for column in columns:
        is_missing = cells[column].isna().to_numpy()
        if is_missing.any() and missing != "level":
            n_missing = int(cells["rows"].to_numpy()[is_missing].sum())
            raise ValueError(missing_values_message(column, n_missing))
    smallest = cells["smallest"].to_numpy(dtype=np.float64)
    if not np.all(smallest >= 0):
        raise ValueError("sample_weight must be finite and nonnegative; some are not.")
    return read_rows(cells[columns], cells["base"].to_numpy(dtype=np.float64))


def dask_weights(X, sample_weight, weigh):
    """A lazy dask Series of weights, partition by partition.

    ``weigh(part, base)`` gives the weights of one pandas partition (``base``:
    its base weights, or None).
    """
    columns = list(X.columns)

    def weigh_part(part):
        if len(part) == 0:  # an empty partition has no weights to compute
            return pd.Series([], index=part.index, name="weight", dtype="f8")
        base = None if sample_weight is None else part[_WEIGHT]
        return pd.Series(weigh(part[columns], base), index=part.index, name="weight")

    frame = X if sample_weight is None else X.assign(
        **{_WEIGHT: positional_weights(X, sample_weight)})
    return frame.map_partitions(weigh_part, meta=("weight", "f8"))
