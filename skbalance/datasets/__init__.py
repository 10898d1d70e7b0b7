"""Small real data sets shipped with skbalance."""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources
from typing import Literal

import pandas as pd

__all__ = ["load_api", "api_population_targets"]

_API_FILES = {
    "pop": "apipop.csv.gz",
    "srs": "apisrs.csv.gz",
    "strat": "apistrat.csv.gz",
    "clus1": "apiclus1.csv.gz",
}


def load_api(kind: Literal["clus1", "srs", "strat", "pop"] = "clus1") -> pd.DataFrame:
    """California Academic Performance Index data (as R survey's ``data(api)``).

    Parameters
    ----------
    kind : {"pop", "srs", "strat", "clus1"}, default="clus1"
        The population of 6194 schools, or one of the samples: simple random
        (200), stratified by school type (200), or one-stage cluster sample of
        districts (183). Samples carry the sampling weight ``pw``.

    Returns
    -------
    frame : pandas.DataFrame
        One row per school, R's column names (``stype``, ``sch.wide``,
        ``api00``, ``pw``, ...).

    Examples
    --------
    >>> from skbalance.datasets import load_api
    >>> load_api("clus1").shape
    (183, 39)
    >>> round(float(load_api("pop")["api00"].mean()), 2)
    664.71
    """
    if kind not in _API_FILES:
        raise ValueError(f"kind must be one of {sorted(_API_FILES)}; got {kind!r}.")
    path = resources.files(__name__).joinpath("data").joinpath(_API_FILES[kind])  # 3.10: one
    with resources.as_file(path) as file:
        return pd.read_csv(file)


def api_population_targets(columns: Iterable[str] = ("stype", "sch.wide")) -> dict:
    """Population counts of some columns of the api population, as targets.

    Parameters
    ----------
    columns : sequence of str, default=("stype", "sch.wide")
        Columns of :func:`load_api` ``("pop")``.

    Returns
    -------
    targets : dict
        ``{column: Series of counts by level}``, ready for MarginalBalancer.

    Examples
    --------
    >>> from skbalance.datasets import api_population_targets
    >>> api_population_targets(["stype"])["stype"].to_dict()
    {'E': 4421, 'H': 755, 'M': 1018}
    """
    population = load_api("pop")
    return {c: population[c].value_counts().sort_index() for c in columns}
