"""SpectralGapAnalyzer: the spectrum of two categorical variables, and what
balancing them would do to the variance of a mean."""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted, validate_data

from . import theory
from ._rows import gather, read_rows
from ._typing import Table, Vector
from .kernels import group_sum
from .utils._array_api import check_same_namespace, to_numpy
from .utils._validation import column_label, level_repr

__all__ = ["SpectralGapAnalyzer"]


def _weighted_codes(codes, levels, base):
    """Keep the levels that carry weight; renumber the codes to them.

    Rows of a level without weight contribute nothing to any sum, so their
    code is set to 0 rather than dropping the rows.
    """
    mass = to_numpy(group_sum(codes, base, levels.shape[0]))
    present = mass > 0
    if present.all():
        return codes, levels
    lookup = np.where(present, np.cumsum(present) - 1, 0)
    return gather(lookup, codes), levels[present]


class SpectralGapAnalyzer(TransformerMixin, BaseEstimator):
    """Singular values, spectral gap and variance curve of two categorical variables.

    Builds the (base-weighted) empirical joint table ``P`` of two columns and
    the singular decomposition of its conditional-mean operators:
    ``s_2`` is the maximal correlation of the two variables and
    ``1 - s_2`` the spectral gap, which sets how fast balancing converges.
    The singular functions are the correspondence-analysis coordinates of the
    levels. Given an outcome ``y``, the plug-in ``sigma_k^2`` tells how much
    variance ``k`` balancing steps remove from the mean of ``y``.

    Parameters
    ----------
    columns : pair of column labels or None, default=None
        The two columns (names for a DataFrame, positions for an array);
        None takes the first two columns of ``X``.
    n_components : int, default=2
        Number of nontrivial singular functions kept per variable (fewer if
        the table has fewer).
    max_k : int, default=20
        Largest number of balancing steps in ``variance_curve_``.
    rtol : float, default=0.01
        ``recommended_k_`` is the smallest ``k`` with
        ``sigma_k^2 <= (1 + rtol) sigma_inf^2``.

    Attributes
    ----------
    singular_values_ : ndarray of shape (min(n_x, n_y),)
        Descending; the first is 1.
    spectral_gap_ : float
        ``1 - s_2`` (1 when a variable has a single level).
    joint_table_ : ndarray of shape (n_x, n_y)
        The empirical joint probability table.
    categories_ : dict
        For each of the two columns, the pandas Index of its observed levels
        (with weight), in the table's order.
    x_functions_, y_functions_ : ndarray of shape (n_x or n_y, n_components\\_)
        Values of the first nontrivial singular functions at every level.
    n_components_ : int
        Number of singular functions kept.
    variance_curve_ : ndarray of shape (max_k + 1,)
        With ``y``: plug-in ``sigma_k^2`` for ``k = 0..max_k`` (the theory
        functions on the empirical table and the cell means of ``y``, plus
        the within-cell variance of ``y``, which balancing leaves untouched).
    variance_limit_ : float
        With ``y``: plug-in ``sigma_inf^2``.
    ipwi_variance_ : float
        With ``y``: plug-in first-order variance of importance weighting.
    recommended_k_ : int
        With ``y``: smallest ``k <= max_k`` within ``rtol`` of the limit
        (``max_k`` if none).
    n_features_in_ : int
        Number of columns seen in fit.
    feature_names_in_ : ndarray of shape (n_features_in\\_,)
        Column names seen in fit, when they are all strings.

    Examples
    --------
    >>> import numpy as np
    >>> import skbalance as skb
    >>> X = np.array([[0, 0]] * 3 + [[0, 1]] + [[1, 0]] + [[1, 1]] * 5)
    >>> sga = skb.SpectralGapAnalyzer().fit(X)
    >>> sga.singular_values_.round(4).tolist()
    [1.0, 0.5833]
    >>> round(sga.spectral_gap_, 4)
    0.4167
    """

    _parameter_constraints: dict = {
        "columns": [tuple, list, None],
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "max_k": [Interval(Integral, 0, None, closed="left")],
        "rtol": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(self, *, columns: tuple | None = None, n_components: int = 2,
                 max_k: int = 20, rtol: float = 0.01) -> None:
        self.columns = columns
        self.n_components = n_components
        self.max_k = max_k
        self.rtol = rtol

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        tags.target_tags.required = False
        tags.array_api_support = True
        return tags

    def _column_keys(self, table):
        if self.columns is not None:
            if len(self.columns) != 2:
                raise ValueError(f"columns must name exactly two columns; got {self.columns!r}.")
            return list(self.columns)
        if table.shape[1] < 2:
            raise ValueError(
                "SpectralGapAnalyzer needs two categorical columns; got "
                f"n_features = {table.shape[1]}."
            )
        if hasattr(table, "columns"):
            return list(table.columns[:2])
        return [0, 1]

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Table, y: Vector | None = None,
            sample_weight: Vector | None = None) -> SpectralGapAnalyzer:
        """Build the joint table, its spectrum and (with ``y``) the variance curve.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Holds the two categorical columns.
        y : array-like of shape (n_samples,), default=None
            Values of the outcome whose mean would be balanced.
        sample_weight : array-like of shape (n_samples,), default=None
            Nonnegative base weights; rows of weight 0 are left out.

        Returns
        -------
        self : SpectralGapAnalyzer
            The fitted analyzer.

        Examples
        --------
        >>> import numpy as np
        >>> import skbalance as skb
        >>> X = np.array([[0, 0]] * 3 + [[0, 1]] + [[1, 0]] + [[1, 1]] * 5)
        >>> skb.SpectralGapAnalyzer().fit(X, y=X[:, 0] * 1.0).recommended_k_
        1
        """
        for stale in ("variance_curve_", "variance_limit_", "ipwi_variance_",
                      "recommended_k_"):
            self.__dict__.pop(stale, None)  # a refit without y has no curve
        rows = read_rows(X, sample_weight)
        validate_data(self, rows.fit_table, skip_check_array=True, reset=True)
        keys = self._column_keys(rows.table)
        (x_codes, x_levels), (y_codes, y_levels) = (
            _weighted_codes(*rows.encode(key, "error", hint=None), rows.base) for key in keys
        )
        shape = (x_levels.shape[0], y_levels.shape[0])
        cell = x_codes * shape[1] + y_codes
        mass = to_numpy(group_sum(cell, rows.base, shape[0] * shape[1])).astype(np.float64)
        P = (mass / mass.sum()).reshape(shape)

        s, alpha, beta = theory.singular_functions(P)
        self._keys = keys
        self._namespace = rows.namespace_name
        self.joint_table_ = P
        self.categories_ = dict(zip(keys, (x_levels, y_levels)))
        self.singular_values_ = s
        self.spectral_gap_ = float(1.0 - s[1]) if s.shape[0] > 1 else 1.0
        self.n_components_ = int(min(self.n_components, max(s.shape[0] - 1, 0)))
        kept = slice(1, 1 + self.n_components_)
        self.x_functions_ = alpha[:, kept]
        self.y_functions_ = beta[:, kept]

        if y is not None:
            self._fit_variance(rows, y, cell, P)
        self._functions = [self.x_functions_, self.y_functions_]
        if rows.on_device:  # fitted arrays follow the data; host copies serve transform
            for name in ("joint_table_", "singular_values_", "x_functions_", "y_functions_",
                         "variance_curve_"):
                if hasattr(self, name):
                    setattr(self, name, rows.to_rows(getattr(self, name)))
        return self

    def _fit_variance(self, rows, y, cell, P):
        (y,), single = rows.outcome(y)
        if not single:
            raise ValueError(f"y must have shape ({rows.n_rows},); got {np.shape(y)}.")
        base = rows.base
        n_cells = P.size
        mass = to_numpy(group_sum(cell, base, n_cells)).astype(np.float64)
        sums = to_numpy(group_sum(cell, base * y, n_cells)).astype(np.float64)
        occupied = mass > 0
        cell_mean = np.divide(sums, mass, out=np.zeros_like(sums), where=occupied)
        spread = base * (y - rows.gather(cell_mean, cell)) ** 2
        noise = float(to_numpy(group_sum(cell, spread, n_cells)).sum() / mass.sum())
        h = cell_mean.reshape(P.shape)
        curve, limit = theory.variance_curve(P, h, self.max_k)
        self.variance_curve_ = curve + noise
        self.variance_limit_ = limit + noise
        self.ipwi_variance_ = theory.ipwi_variance(P, h) + noise
        within_rtol = np.flatnonzero(
            self.variance_curve_ <= (1 + self.rtol) * self.variance_limit_ + 1e-15
        )
        self.recommended_k_ = int(within_rtol[0]) if within_rtol.size else int(self.max_k)

    def transform(self, X: Table) -> Any:
        """Map rows to the correspondence-analysis coordinates of their two levels.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Rows holding the two columns seen in fit.

        Returns
        -------
        coordinates : ndarray of shape (n_samples, 2 * n_components\\_)
            The first ``n_components_`` nontrivial singular functions of the
            first column's level, then those of the second column's level.

        Examples
        --------
        >>> import numpy as np
        >>> import skbalance as skb
        >>> X = np.array([[0, 0]] * 3 + [[0, 1]] + [[1, 0]] + [[1, 1]] * 5)
        >>> sga = skb.SpectralGapAnalyzer(n_components=1).fit(X)
        >>> sga.transform(X[:1]).round(4).tolist()
        [[1.2247, 1.2247]]
        """
        check_is_fitted(self)
        check_same_namespace(X, self._namespace, f"{type(self).__name__}.transform")
        rows = read_rows(X)
        validate_data(self, rows.fit_table, skip_check_array=True, reset=False)
        parts = []
        for key, functions in zip(self._keys, self._functions):
            levels = self.categories_[key]
            codes, observed = rows.encode(key, "error", hint=None)
            position = levels.get_indexer(observed)
            used = to_numpy(group_sum(codes, None, observed.shape[0])) > 0
            unseen = np.flatnonzero((position < 0) & used)
            if unseen.size:
                raise ValueError(
                    f"{column_label(key)} has level {level_repr(observed[unseen[0]])}, "
                    "unseen in fit."
                )
            at_rows = gather(np.maximum(position, 0), codes)
            parts.extend(rows.gather(functions[:, j], at_rows)
                         for j in range(functions.shape[1]))
        if rows.on_device:
            return rows.xp.stack(parts, axis=1)
        return np.column_stack(parts) if parts else np.empty((rows.n_rows, 0))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Get the names of the output coordinates: ``<column>_sf1``, ...

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Ignored; the names come from the columns seen in fit.

        Returns
        -------
        feature_names_out : ndarray of str objects
            One name per output column.

        Examples
        --------
        >>> import pandas as pd
        >>> import skbalance as skb
        >>> X = pd.DataFrame({"a": [0, 0, 1, 1, 2], "b": [0, 1, 1, 0, 2]})
        >>> skb.SpectralGapAnalyzer(n_components=1).fit(X).get_feature_names_out().tolist()
        ['a_sf1', 'b_sf1']
        """
        check_is_fitted(self)
        names = [
            f"{key if isinstance(key, str) else f'x{key}'}_sf{j + 1}"
            for key in self._keys
            for j in range(self.n_components_)
        ]
        return np.asarray(names, dtype=object)
