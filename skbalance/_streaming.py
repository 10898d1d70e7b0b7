"""Balancing from a cell table: dask frames and chunks that arrive one by one.

A dask frame is reduced to its cell table by one distributed group-by; chunks
given to ``partial_fit`` are reduced one by one and their tables merged. The
iterations then run in memory on the cells, and the weights of any rows are
the fitted factors mapped back (lazily, partition by partition, for dask).
"""

import copy
import warnings

import numpy as np
import pandas as pd
from sklearn.base import _fit_context
from sklearn.utils.validation import validate_data

from ._problem import balancing_columns, build_problem
from ._report import confirm_convergence
from ._rows import is_dask, is_frame, read_rows
from .kernels import group_sum
from .utils._validation import check_sample_weight, missing_values_message

__all__ = [
    "CellTableMixin",
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
            warnings.warn(
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
    rows.check_columns(columns)
    new = cell_table(rows.table, columns, sample_weight)
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


def dask_weights(fitted, X, sample_weight):
    """A lazy dask Series of weights, partition by partition."""
    fitted = copy.copy(fitted)  # what the workers need, without lazy weights
    fitted.__dict__.pop("weights_", None)
    fitted.__dict__.pop("_accumulated_cells", None)
    columns = list(X.columns)

    def weigh(part):
        if len(part) == 0:  # an empty partition has no weights to compute
            return pd.Series([], index=part.index, name="weight", dtype="f8")
        base = None if sample_weight is None else part[_WEIGHT]
        values = fitted.compute_weights(part[columns], sample_weight=base)
        return pd.Series(values, index=part.index, name="weight")

    frame = X if sample_weight is None else X.assign(
        **{_WEIGHT: positional_weights(X, sample_weight)})
    return frame.map_partitions(weigh, meta=("weight", "f8"))


class CellTableMixin:
    """Fitting a balancer from cell tables: chunks (``partial_fit``) and dask.

    The host class rakes a :class:`CellProblem` in ``_rake`` and has the
    ``targets`` and ``missing`` parameters.
    """

    def _forget_chunks(self):
        """Drop the cell table accumulated by partial_fit."""
        for stale in ("_accumulated_cells", "_partial_columns"):
            self.__dict__.pop(stale, None)

    def _fit_dask(self, rows, sample_weight):
        """One distributed group-by to the cell table; lazy weights."""
        columns = balancing_columns(self.targets, rows.columns, self.target_type)
        rows.check_columns(columns)
        if sample_weight is not None:  # matched to the rows once, for both uses
            sample_weight = positional_weights(rows.table, sample_weight)
        problem = self._fit_cells(cell_table(rows.table, columns, sample_weight).compute(),
                                  columns)
        self.weights_ = dask_weights(self, rows.table, sample_weight)
        return problem

    def _fit_cells(self, cells, columns):
        """Fit from a cell table (``_streaming.cell_table``): dask and chunks."""
        problem = build_problem(cell_table_rows(cells, columns, self.missing),
                                self.targets, self.missing, self.target_type)
        problem.cell_rows = group_sum(problem.cell_of_row,
                                      cells["rows"].to_numpy(dtype=np.float64),
                                      problem.n_cells).astype(np.int64)
        result = self._rake(problem)
        cell_weights = self._scaled(problem.base, result.cell_factors[problem.cell_of_row])
        self.converged_ = confirm_convergence(cell_weights, problem, self.tol, self.converged_)
        self.effective_sample_size_ = cells_effective_size(
            cells, problem, result.cell_factors)  # Kish's size ignores a common scale
        self.design_effect_ = float(cells["positive"].sum()) / self.effective_sample_size_
        return problem

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None, sample_weight=None):
        """Add a chunk of rows to the cell table and refit the factors.

        For data that arrive in chunks: the rows are reduced to the cell
        table (rows, base weight per observed cell) and added to what earlier
        chunks gave; the factors are refitted on the accumulated table (the
        iterations cost nothing per row). The result equals ``fit`` on all
        the rows at once; use :meth:`compute_weights` for the weights of any
        rows. :meth:`fit` discards the chunks accumulated so far.

        Parameters
        ----------
        X : DataFrame (pandas or dask)
            A chunk of rows with the balancing columns.
        y : None
            Ignored.
        sample_weight : array-like or dask Series of shape (n_samples,), default=None
            Nonnegative base weights of the chunk.

        Returns
        -------
        self : MarginalBalancer
            The balancer, fitted on every chunk so far.

        Examples
        --------
        >>> import pandas as pd
        >>> import skbalance as skb
        >>> bal = skb.MarginalBalancer(targets={"g": {"a": 0.5, "b": 0.5}})
        >>> for chunk in (pd.DataFrame({"g": ["a", "b"]}), pd.DataFrame({"g": ["b", "b"]})):
        ...     bal = bal.partial_fit(chunk)
        >>> bal.factors_["g"].round(3).tolist()
        [2.0, 0.667]
        """
        first = not hasattr(self, "_accumulated_cells")
        rows = read_rows(X if is_frame(X) else pd.DataFrame(np.asarray(X)))
        validate_data(self, rows.fit_table, skip_check_array=True, reset=first)
        if first:
            self._partial_columns = balancing_columns(self.targets, rows.columns, self.target_type)
        self._accumulated_cells = add_chunk(getattr(self, "_accumulated_cells", None), rows,
                                            self._partial_columns, sample_weight)
        self._fit_cells(self._accumulated_cells, self._partial_columns)
        return self

