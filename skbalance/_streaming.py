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
    "attach_column",
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


def positional_weights(frame, sample_weight, name="sample_weight"):
    """Base weights for a dask frame, matched to its rows by position.

    scikit-learn's rule, the same as for pandas input: a Series is not aligned
    by its index (a warning says so when the index differs from the frame's).
    Returns a dask array chunked like the frame's partitions. ``name``: what
    the values are, for the messages (any per-row values are matched so).
    """
    import dask.array as da

    if _is_dask_array(sample_weight) or _same_partitions(frame, sample_weight):
        return sample_weight  # already matched, or matched partition by partition
    lengths = tuple(int(n) for n in frame.map_partitions(len).compute())
    n_rows = sum(lengths)
    if is_dask(sample_weight):
        index = sample_weight.index
        values = sample_weight.to_dask_array(lengths=True)
    else:
        index = getattr(sample_weight, "index", None)
        values = np.asarray(sample_weight)
    if values.shape != (n_rows,):
        raise ValueError(f"{name} must have shape ({n_rows},), got {values.shape}.")
    if index is not None:
        same = (index.to_dask_array(lengths=True) if is_dask(index) else np.asarray(index))
        frame_index = frame.index.to_dask_array(lengths=True)
        if not bool(da.all(frame_index == da.asarray(same).rechunk(frame_index.chunks))
                    .compute()):
            warn(
                f"{name} is a Series whose index differs from X's: it is used by "
                "position, not aligned by index (scikit-learn's rule).", UserWarning)
    values = values.rechunk((lengths,)) if is_dask(values) else da.from_array(
        values, chunks=(lengths,))
    return values


def _same_partitions(frame, values):
    """A dask Series with as many partitions as the frame: matched to its rows
    partition by partition, with no pass over the data to count them."""
    return (is_dask(values) and not _is_dask_array(values)
            and getattr(values, "ndim", 0) == 1 and values.npartitions == frame.npartitions)


def attach_column(frame, values, column, name="sample_weight"):
    """``frame`` with per-row ``values`` as the column ``column``, by position.

    A dask Series partitioned as the frame (a column of it, say) is matched
    partition by partition as the tasks run; other values go through
    :func:`positional_weights` (which counts every partition's rows first).
    """
    values = positional_weights(frame, values, name)
    if not _same_partitions(frame, values):
        return frame.assign(**{column: values})

    def attach(part, part_values):
        if len(part) != len(part_values):
            raise ValueError(
                f"{name} is not partitioned as X: a partition of {len(part_values)} values "
                f"beside one of {len(part)} rows. Pass a column of X, or a NumPy array.")
        if not part.index.equals(part_values.index):
            warn(f"{name} is a Series whose index differs from X's: it is used by "
                 "position, not aligned by index (scikit-learn's rule).", UserWarning)
        return part.assign(**{column: part_values.to_numpy()})

    meta = frame._meta.assign(**{column: values._meta.to_numpy()})
    return frame.map_partitions(attach, values, meta=meta, align_dataframes=False)


def cell_table(frame, columns, sample_weight, weighted=(), weight_column=None):
    """Rows, base-weight sum and sum of squares per observed cell.

    Works on pandas and dask frames alike (for dask, one distributed
    group-by; the result is a lazy frame to compute). ``weighted``: other
    columns of ``frame`` whose base-weighted sums per cell come too, under
    their own names. ``weight_column``: a column of ``frame`` that holds the
    base weights, in place of ``sample_weight``.
    """
    kept = list(columns) + list(weighted)
    if weight_column is not None:
        frame = frame[kept].assign(**{_WEIGHT: frame[weight_column]})
    elif sample_weight is None:
        frame = frame[kept].assign(**{_WEIGHT: 1.0})
    elif is_dask(frame):
        frame = attach_column(frame[kept], sample_weight, _WEIGHT)
    else:
        base = check_sample_weight(sample_weight, frame.shape[0])
        frame = frame[kept].assign(**{_WEIGHT: base})
    frame = frame.assign(__squares=frame[_WEIGHT] ** 2,
                         __positive=(frame[_WEIGHT] > 0).astype("i8"),
                         **{name: frame[name] * frame[_WEIGHT] for name in weighted})
    grouped = frame.groupby(columns, observed=True, dropna=False, sort=False)
    # dask: one tree reduction to the driver, which wants the whole table (its
    # default for several keys is a shuffle to many partitions), combining
    # two tables at a time: with many groups per partition, memory then stays
    # flat as partitions are added (300 vs 310 MiB for 20 and 60 partitions of
    # 450k groups; 460 vs 510 MiB combining 8 at a time, 7% faster)
    options = {"split_out": 1, "split_every": 2} if is_dask(frame) else {}
    return grouped.agg(
        rows=(_WEIGHT, "count"), base=(_WEIGHT, "sum"), base_squares=("__squares", "sum"),
        smallest=(_WEIGHT, "min"), positive=("__positive", "sum"),
        **{name: (name, "sum") for name in weighted}, **options,
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


def dask_weights(X, sample_weight, weigh, weight_column=None):
    """A lazy dask Series of weights, partition by partition.

    ``weigh(part, base)`` gives the weights of one pandas partition (``base``:
    its base weights, or None). ``weight_column``: a column of ``X`` that
    holds the base weights, in place of ``sample_weight`` (no pass over the
    rows to match them by position).
    """
    columns = [c for c in X.columns if c != weight_column]
    given = sample_weight is not None or weight_column is not None

    def weigh_part(part):
        if len(part) == 0:  # an empty partition has no weights to compute
            return pd.Series([], index=part.index, name="weight", dtype="f8")
        base = part[_WEIGHT] if given else None
        return pd.Series(weigh(part[columns], base), index=part.index, name="weight")

    if weight_column is not None:
        frame = X.rename(columns={weight_column: _WEIGHT})
    else:
        frame = X if sample_weight is None else attach_column(X, sample_weight, _WEIGHT)
    return frame.map_partitions(weigh_part, meta=("weight", "f8"))
