"""Every warning points at the user's line, whatever path raised it."""

import ast
import pathlib
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV

import skbalance as skb

PACKAGE = pathlib.Path(skb.__file__).parent
UNREACHABLE_IN_3 = {"g": {"a": 0.5, "b": 0.5}, "h": {"u": 0.3, "v": 0.7}}
ROWS = pd.DataFrame({"g": list("aabbbb"), "h": list("uvuvvu")})


def _recorded(call):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        call()
    assert record, "the call did not warn"
    return record


def _short():
    return skb.MarginalBalancer(targets=UNREACHABLE_IN_3, max_iter=1, tol=1e-12,
                                solver="steps")


@pytest.mark.parametrize("call", [
    lambda: _short().fit(ROWS),
    lambda: _short().fit_problem(ROWS),
    lambda: _short().partial_fit(ROWS),
    lambda: skb.compute_balancing_weights(ROWS, UNREACHABLE_IN_3, max_iter=1, tol=1e-12,
                                          solver="steps"),
    lambda: skb.BalancedFunctionalEstimator(_short()).fit(ROWS, np.arange(6.0)),
    lambda: GridSearchCV(skb.BalancedEstimator(_short(), DummyRegressor()),
                         {"balancer__tol": [1e-12]},
                         cv=2).fit(pd.concat([ROWS] * 4, ignore_index=True), np.arange(24.0)),
    lambda: skb.MarginalBalancer(targets={"g": {"a": 0.505, "b": 0.5}}).fit(ROWS),
    lambda: skb.MarginalBalancer(targets={"g": {"a": 0.5, "b": 0.5}}).fit(
        ROWS, sample_weight=pd.Series(np.ones(6), index=np.arange(6) + 10)),
    lambda: skb.sinkhorn(np.random.default_rng(0).uniform(size=(5, 4)), max_iter=1, tol=1e-12),
], ids=["fit", "fit_problem", "partial_fit", "function", "functional", "grid-search",
        "targets-normalised", "series-index", "sinkhorn"])
def test_warning_names_the_callers_line(call):
    for record in _recorded(call):
        assert record.filename == __file__, (record.filename, str(record.message)[:80])


def test_replicate_warning_names_the_callers_line():
    sample = skb.datasets.load_api("clus1")
    targets = skb.datasets.api_population_targets(["stype", "sch.wide"])
    design = skb.SurveyDesign(clusters="dnum", fpc="fpc", replicates="jk1")
    short = skb.MarginalBalancer(targets=targets, tol=1e-12, max_iter=3, solver="steps")
    estimator = skb.BalancedFunctionalEstimator(short, design=design)
    record = _recorded(lambda: estimator.fit(sample, sample["api00"],
                                             sample_weight=sample["pw"]))
    assert any("replicate(s) did not reach" in str(r.message) for r in record)
    assert all(r.filename == __file__ for r in record)
    assert {r.category for r in record} == {ConvergenceWarning}


def test_the_package_warns_only_with_a_stacklevel():
    calls = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "warn"
                    and getattr(node.func.value, "id", "") == "warnings"):
                calls.append((path.name, any(k.arg == "stacklevel" for k in node.keywords)))
    assert calls == [("_warnings.py", True)]
