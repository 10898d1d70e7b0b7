"""Reading the rows to balance: the one place that knows where data live.

Every estimator reads its input through :func:`read_rows`. A pandas DataFrame
or anything NumPy can read is read on the host; a polars DataFrame is read
natively (its columns are encoded by polars, never converted as a whole); the
codes of a pandas categorical, an Arrow dictionary or a polars Enum are used
as they are; a 2-D array of another Array API library (CuPy, torch, ...)
stays on its device when scikit-learn's ``array_api_dispatch`` is on; a dask
DataFrame is recognised and left lazy (the distributed path reduces it to the
cell table, see ``_streaming.py``). A Rows passes through unread.
Row-sized arrays never change place: only cell-sized arrays cross between
device and host, through :meth:`Rows.encode` (levels to the host) and
:meth:`Rows.gather` (cell values to the rows).
"""


import numpy as np
import pandas as pd
from array_api_compat import array_namespace

from .utils._array_api import (
    device_of,
    dispatch_namespace,
    float_dtype,
    from_numpy,
    to_numpy,
)
from .utils._validation import (
    check_sample_weight,
    column_label,
    missing_values_message,
    unknown_column_error,
)
from .utils._warnings import warn

__all__ = [
    "Rows",
    "as_column",
    "gather",
    "is_dask",
    "is_frame",
    "is_polars",
    "kish_effective_size",
    "read_rows",
    "sum_float",
]


def is_dask(X):
    """Whether ``X`` is a dask collection (a dask DataFrame or Series)."""
    return type(X).__module__.startswith("dask") and hasattr(X, "npartitions")


def is_polars(X):
    """Whether ``X`` is a polars DataFrame."""
    return type(X).__module__.startswith("polars") and hasattr(X, "get_column")


def is_frame(X):
    """Whether ``X`` is a pandas or dask DataFrame."""
    return isinstance(X, pd.DataFrame) or is_dask(X)


def as_column(values):
    """A 1-D array as one column, in its namespace."""
    if isinstance(values, np.ndarray):
        return values.reshape(-1, 1)
    return array_namespace(values).reshape(values, (-1, 1))


def sum_float(x):
    """Sum of an array from any namespace, as a Python float."""
    if isinstance(x, np.ndarray):
        return float(x.sum())
    return float(array_namespace(x).sum(x))


def kish_effective_size(weights):
    """Kish's effective sample size ``(sum w)^2 / sum w^2``, in any namespace.

    Computed on weights divided by their largest value, so that neither the
    sum nor the sum of squares can overflow or underflow.
    """
    if isinstance(weights, np.ndarray):
        peak = float(np.max(np.abs(weights))) if weights.size else 0.0
        if not peak > 0:
            return 0.0
        scaled = weights / peak
        return float(scaled.sum() ** 2 / np.dot(scaled, scaled))
    xp = array_namespace(weights)
    peak = float(xp.max(xp.abs(weights)))
    if not peak > 0:
        return 0.0
    scaled = weights / peak
    return float(xp.sum(scaled)) ** 2 / float(xp.sum(scaled * scaled))


def gather(values, index, dtype=None):
    """``values[index]`` for a small host array and row codes in any namespace
    (as ``dtype`` there, when given)."""
    if isinstance(index, np.ndarray):
        return values[index]
    xp = array_namespace(index)
    return xp.take(from_numpy(values, xp, device_of(index), dtype), index)


def _as_host_table(X):
    """X as a DataFrame or a 2-D ndarray, without copying a DataFrame."""
    if isinstance(X, pd.DataFrame):
        return X
    if hasattr(X, "toarray") or hasattr(X, "tocsr"):
        raise TypeError(
            "Sparse input is not supported: balancing columns are categorical; "
            "pass a DataFrame or a dense 2-D array of level codes."
        )
    try:
        table = np.asarray(X)
    except (TypeError, RuntimeError, ValueError) as exc:
        raise TypeError(
            f"Cannot read a {type(X).__name__} as a NumPy array ({exc}). To balance "
            "arrays where they live (CuPy, torch, ...), turn on scikit-learn's "
            "array API dispatch: sklearn.set_config(array_api_dispatch=True)."
        ) from exc
    if table.dtype.kind == "c":
        raise ValueError("Complex data not supported: levels must be real or labels.")
    return table


def _check_shape(table):
    if len(table.shape) != 2:
        raise ValueError(
            f"Expected a 2-D array or a DataFrame, got an array with {len(table.shape)} "
            "dimension(s). Reshape your data with X.reshape(-1, 1) if it is a "
            "single column."
        )
    n_rows, n_columns = table.shape
    if n_rows == 0:
        raise ValueError(
            f"Found array with 0 sample(s) (shape={tuple(table.shape)}) while a minimum "
            "of 1 is required."
        )
    if n_columns == 0:
        raise ValueError(
            f"Found array with 0 feature(s) (shape={tuple(table.shape)}) while a minimum "
            "of 1 is required."
        )
    if isinstance(table, pd.DataFrame) and any(
        isinstance(d, np.dtype) and d.kind == "c" for d in table.dtypes
    ):
        raise ValueError("Complex data not supported: levels must be real or labels.")


def _encode_host(values, column, missing, hint="missing='level'"):
    """Integer codes and levels of one host column (Series or ndarray)."""
    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype):
        # the codes are the encoding: used as they are (narrow integers)
        codes = values.array.codes
        levels = pd.Index(values.cat.categories, tupleize_cols=False)
        if codes.size and codes.min() < 0:  # categoricals code missing as -1
            codes = np.where(codes < 0, levels.shape[0], codes.astype(np.int64))
            levels = levels.append(pd.Index([np.nan], dtype=object))
    elif _is_arrow_dictionary(values):
        codes, levels = _encode_arrow_dictionary(values)
    else:
        # Missing values come back as -1 from the hash table itself (asking
        # for a level instead makes pandas look for them in a pass over the
        # rows: 2x the cost of factorizing object strings); they become one
        # level of their own, NaN, last.
        codes, levels = pd.factorize(values)
        codes = codes.astype(np.int64, copy=False)
        levels = pd.Index(levels, tupleize_cols=False)
        if codes.size and codes.min() < 0:
            codes = np.where(codes < 0, levels.shape[0], codes)
            numeric = isinstance(levels.dtype, np.dtype) and levels.dtype.kind == "f"
            levels = (levels if numeric else levels.astype(object)).append(
                pd.Index([np.nan], dtype=levels.dtype if numeric else object))
    if levels.dtype.kind in "fc" and np.isinf(levels.to_numpy()).any():
        raise ValueError(
            f"Balancing column {column_label(column)} contains inf; levels must be "
            "finite (or NaN with missing='level')."
        )
    if missing != "level" and levels.hasnans:
        nan_codes = np.flatnonzero(levels.isna())
        n_missing = int(np.count_nonzero(np.isin(codes, nan_codes)))
        raise ValueError(missing_values_message(column, n_missing, codes.shape[0],
                                                hint=hint))
    return codes, levels


def _is_arrow_dictionary(values):
    """Whether a pandas Series holds an Arrow dictionary (its own encoding)."""
    dtype = getattr(values, "dtype", None)
    return (isinstance(dtype, pd.ArrowDtype)
            and type(dtype.pyarrow_dtype).__name__ == "DictionaryType")


def _encode_arrow_dictionary(values):
    """An Arrow dictionary column's indices as codes (chunks unified first);
    nulls get a code after the dictionary's values (a NaN level)."""
    import pyarrow as pa

    chunked = pa.chunked_array(values.array.__arrow_array__()).unify_dictionaries()
    chunks = chunked.chunks
    dictionary = (chunks[0].dictionary if chunks else
                  pa.array([], type=chunked.type.value_type))
    levels = pd.Index(dictionary.to_pylist(), dtype=object, tupleize_cols=False)
    indices = pa.chunked_array([c.indices for c in chunks], type=chunked.type.index_type)
    if indices.null_count:
        indices = indices.fill_null(levels.shape[0])
        levels = levels.append(pd.Index([np.nan], dtype=object))
    return indices.to_numpy(), levels


def _encode_polars(series, column, missing, hint="missing='level'"):
    """Codes and levels of one polars column, encoded by polars.

    An Enum's physical codes are its encoding (every category is a level).
    Strings and categoricals are cast to a categorical with categories of
    their own, whose physical codes number the observed values from 0 in the
    order they appear: one hash pass, in polars. Other types go through
    pandas.
    """
    import polars as pl

    dtype = series.dtype
    if isinstance(dtype, pl.Enum):
        levels = pd.Index(dtype.categories.to_list(), dtype=object)
        physical = series.to_physical()
    elif dtype == pl.String or isinstance(dtype, pl.Categorical):
        physical, levels = _polars_categories(series, pl)
    else:
        return _encode_host(series.to_pandas(), column, missing, hint)
    n_missing = series.null_count()
    if n_missing and missing != "level":
        raise ValueError(missing_values_message(column, n_missing, series.len(), hint=hint))
    if n_missing:  # a level of its own, after the others (wide enough to hold it)
        physical = physical.cast(pl.UInt32).fill_null(levels.shape[0])
        levels = levels.append(pd.Index([np.nan], dtype=object))
    return physical.to_numpy(), levels


def _polars_categories(series, pl):
    """Physical codes (0, 1, ... in order of appearance) and observed values."""
    if hasattr(pl, "Categories"):  # polars >= 1.32: categories of our own
        categories = pl.Categories.random()
        categorical = series.cast(pl.Categorical(categories))
        # read the values while the column holds the categories (else freed)
        levels = pd.Index(categories.to_series().to_list(), dtype=object)
        return categorical.to_physical(), levels
    return _shared_id_categories(series, pl)


def _shared_id_categories(series, pl):
    """_polars_categories before polars 1.32: categorical ids are shared with
    other columns, so the observed ones are renumbered."""
    categorical = series.cast(pl.Categorical)
    observed = categorical.drop_nulls().unique(maintain_order=True)
    ids = observed.to_physical().to_numpy()
    lookup = np.zeros(int(ids.max()) + 1 if ids.size else 1, dtype=np.uint32)
    lookup[ids] = np.arange(ids.shape[0])
    physical = categorical.to_physical()
    physical = pl.Series(lookup[physical.fill_null(0).to_numpy()]).set(
        physical.is_null(), None) if ids.size else physical
    return physical, pd.Index(observed.cast(pl.String).to_list(), dtype=object)


def _encode_device(values, column, missing, hint="missing='level'"):
    """Codes (on the column's device) and host levels of one device column."""
    xp = array_namespace(values)
    n_missing = 0
    if xp.isdtype(values.dtype, "real floating"):
        if bool(xp.any(xp.isinf(values))):
            raise ValueError(
                f"Balancing column {column_label(column)} contains inf; levels must be "
                "finite (or NaN with missing='level')."
            )
        is_nan = xp.isnan(values)
        n_missing = int(xp.sum(xp.astype(is_nan, xp.int64)))
        if n_missing and missing != "level":
            raise ValueError(missing_values_message(column, n_missing, values.shape[0],
                                                    hint=hint))
        if n_missing:  # one level for all NaNs (unique_inverse keeps NaNs apart)
            infinity = xp.asarray(float("inf"), dtype=values.dtype, device=device_of(values))
            values = xp.where(is_nan, infinity, values)
    uniques, codes = xp.unique_inverse(values)
    levels = to_numpy(uniques)
    if n_missing:
        levels = np.where(np.isinf(levels), np.nan, levels)
    return xp.astype(codes, xp.int64), pd.Index(levels, tupleize_cols=False)


class Rows:
    """Rows to balance, with their base weights, where they live.

    Built by :func:`read_rows`; estimators use its methods and never look at
    the kind of container.

    Attributes
    ----------
    table : DataFrame, ndarray, device array or dask DataFrame
        The data as given (a DataFrame or array is not copied).
    base : array of shape (n_rows,)
        Validated base weights, in the rows' namespace (lazy for dask).
    xp : namespace or None
        The Array API namespace of device rows; None for host (NumPy/pandas).
    lazy : bool
        Whether the rows are a dask DataFrame.
    """

    def __init__(self, table, base, xp=None, lazy=False):
        self.table = table
        self.base = base
        self.xp = xp
        self.lazy = lazy
        self.polars = is_polars(table)

    @property
    def n_rows(self):
        """Number of rows (not known without computing for dask)."""
        return self.table.shape[0]

    @property
    def n_counted(self):
        """Number of rows with a positive base weight."""
        if self.xp is None:
            return int(np.count_nonzero(self.base > 0))
        return int(self.xp.sum(self.xp.astype(self.base > 0, self.xp.int64)))

    @property
    def on_device(self):
        """Whether the rows live in a non-NumPy Array API namespace."""
        return self.xp is not None

    @property
    def namespace_name(self):
        """The name of the rows' namespace, None for NumPy/pandas."""
        return self.xp.__name__ if self.xp is not None else None

    @property
    def device(self):
        """The device of device rows (None on the host)."""
        return device_of(self.table) if self.xp is not None else None

    @property
    def dtype(self):
        """The float dtype of row-sized results (None: NumPy's float64)."""
        return self.base.dtype if self.xp is not None else None

    @property
    def fit_table(self):
        """What scikit-learn's ``validate_data`` sees: the table, or an empty
        pandas frame with its column names (dask: its meta frame; polars: every
        scikit-learn reads pandas names, not all read polars')."""
        if self.lazy:
            return self.table._meta
        if self.polars:
            return pd.DataFrame(columns=self.table.columns)
        return self.table

    @property
    def named(self):
        """Whether columns are found by name (a pandas, polars or dask frame)."""
        return isinstance(self.table, pd.DataFrame) or self.lazy or self.polars

    @property
    def columns(self):
        """Every column key: names for a DataFrame, positions for an array."""
        if hasattr(self.table, "columns"):
            return list(self.table.columns)
        return list(range(self.table.shape[1]))

    def check_columns(self, columns):
        """Raise a ValueError naming the first of ``columns`` the rows lack."""
        if hasattr(self.table, "columns"):
            present = self.table.columns
            for column in columns:
                try:
                    found = column in present
                except TypeError:  # an unhashable key
                    found = False
                if not found:
                    raise unknown_column_error(column, columns=present)
            return
        for column in columns:
            if isinstance(column, bool) or not isinstance(column, (int, np.integer)) or not (
                0 <= column < self.table.shape[1]
            ):
                raise unknown_column_error(column, n_columns=self.table.shape[1])

    def column(self, column):
        """The values of one column, where they live (a polars column as a
        pandas Series)."""
        self.check_columns([column])
        if self.polars:
            return self.table.get_column(column).to_pandas()
        if isinstance(self.table, pd.DataFrame) or self.lazy:
            return self.table[column]
        return self.table[:, column]

    def with_base(self, sample_weight):
        """The same rows with other base weights (validated as :func:`read_rows` does)."""
        if self.lazy:
            return Rows(self.table, sample_weight, lazy=True)
        if self.on_device:
            base = check_sample_weight(sample_weight, self.n_rows, xp=self.xp,
                                       device=self.device, dtype=float_dtype(self.xp, self.table))
        else:
            base = check_sample_weight(sample_weight, self.n_rows)
        return Rows(self.table, base, xp=self.xp)

    def without_columns(self):
        """The same rows and base weights with one constant column in place of
        the table's: for a fit that needs no column (the base weights alone)."""
        if self.on_device:
            return Rows(self.xp.zeros((self.n_rows, 1), device=self.device), self.base,
                        xp=self.xp)
        return Rows(np.zeros((self.n_rows, 1)), self.base)

    def frame(self, columns):
        """The named columns as a pandas DataFrame (dask stays dask): what a
        group-by of the cell table reads. Array columns keep their positions
        as names; device arrays come to the host."""
        self.check_columns(columns)
        if self.polars:
            return self.table.select(columns).to_pandas()
        if isinstance(self.table, pd.DataFrame) or self.lazy:
            return self.table[columns]
        return pd.DataFrame({c: to_numpy(self.table[:, c]) for c in columns})

    def labelled(self, y):
        """``y`` given by the label(s) of columns of named rows: those columns.

        A string names one column (an unknown one is an error); a tuple
        present among the columns too; a list of strings that are all column
        labels names several. Anything else is ``y``'s own values, returned
        as they are. Dask frames read their outcome labels elsewhere.

        Examples
        --------
        >>> import pandas as pd
        >>> from skbalance._rows import read_rows
        >>> rows = read_rows(pd.DataFrame({"g": [0, 1], "y": [2.0, 3.0]}))
        >>> rows.labelled("y").tolist(), rows.labelled([5.0, 6.0])
        ([2.0, 3.0], [5.0, 6.0])
        """
        if not self.named or self.lazy:
            return y
        if isinstance(y, str) or (isinstance(y, tuple) and y in self.columns):
            return self.column(y)
        if isinstance(y, list) and y and all(
                isinstance(c, str) and c in self.columns for c in y):
            return self.frame(y)
        return y

    def encode(self, column, missing="error", hint="missing='level'"):
        """Integer codes of one column's levels.

        ``hint`` is how the caller lets missing values be a level, for the
        error message (None when it cannot).

        Returns
        -------
        codes : array of nonnegative int, shape (n_rows,)
            In the rows' namespace (a categorical's own codes may be narrow
            integers: index with them or widen them, never multiply them).
        levels : pandas.Index
            On the host; ``levels[codes[i]]`` is the level of row ``i``. A
            categorical column keeps all its categories, observed or not.
        """
        if self.polars:
            self.check_columns([column])
            return _encode_polars(self.table.get_column(column), column, missing, hint)
        values = self.column(column)
        if self.xp is not None:
            return _encode_device(values, column, missing, hint)
        return _encode_host(values, column, missing, hint)

    def gather(self, values, index):
        """``values[index]``: host cell values at every row, in the rows'
        namespace and float dtype."""
        return gather(values, index, self.dtype)

    def to_rows(self, values):
        """A host array moved to where the rows live (same dtype as weights)."""
        if self.xp is None:
            return values
        return from_numpy(values, self.xp, self.device, self.base.dtype)

    def outcome(self, y, owner="This estimator", name="y"):
        """``y`` as finite float columns where the rows live.

        Returns the list of columns and whether ``y`` was one-dimensional.
        """
        if y is None:
            raise ValueError(f"{owner} requires y to be passed, but the target y is None.")
        if self.xp is None:
            try:
                values = np.asarray(y, dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{name} must be numeric ({exc}).") from exc
            finite = bool(np.all(np.isfinite(values)))
        else:
            xp = self.xp
            values = xp.astype(xp.asarray(y, device=self.device), self.base.dtype)
            finite = bool(xp.all(xp.isfinite(values)))
        single = values.ndim == 1
        if single:
            values = values[:, None]
        if values.ndim != 2 or values.shape[0] != self.n_rows:
            raise ValueError(
                f"{name} must have shape ({self.n_rows},) or ({self.n_rows}, n_outputs); "
                f"got {tuple(np.shape(y)) if not hasattr(y, 'shape') else tuple(y.shape)}."
            )
        if not finite:
            raise ValueError(f"{name} contains NaN or infinite values.")
        return [values[:, j] for j in range(values.shape[1])], single


def read_rows(X, sample_weight=None):
    """Read ``X`` and its base weights: the way in for every estimator.

    Parameters
    ----------
    X : DataFrame, array-like, device array, dask DataFrame or Rows
        The rows.
    sample_weight : array-like of shape (n_rows,) or None
        Base weights (validated: finite, nonnegative, positive sum; left
        lazy for dask).

    Returns
    -------
    Rows
        ``X`` itself, with these base weights, when it is already a Rows.
    """
    if isinstance(X, Rows):  # read already: only the base weights are new
        return X.with_base(sample_weight)
    if is_dask(X):
        return Rows(X, sample_weight, lazy=True)
    if is_polars(X):  # read natively, column by column
        _check_shape(X)
        return Rows(X, check_sample_weight(sample_weight, X.shape[0]))
    xp, on_device = dispatch_namespace(X)
    if on_device:  # only cell-sized arrays will visit the host
        _check_shape(X)
        base = check_sample_weight(sample_weight, X.shape[0], xp=xp, device=device_of(X),
                                   dtype=float_dtype(xp, X))
        return Rows(X, base, xp=xp)
    table = _as_host_table(X)
    _check_shape(table)
    if (isinstance(sample_weight, pd.Series) and isinstance(table, pd.DataFrame)
            and not sample_weight.index.equals(table.index)):
        warn(
            "sample_weight is a Series whose index differs from X's: it is used by "
            "position, not aligned by index (scikit-learn's rule).", UserWarning)
    return Rows(table, check_sample_weight(sample_weight, table.shape[0]))
