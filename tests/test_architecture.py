"""The package's structure and the contract between its estimators."""

import ast
import pathlib
import warnings

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import BayesianRidge, LinearRegression
from sklearn.model_selection import cross_validate
from sklearn.utils._param_validation import InvalidParameterError

import skbalance as skb

PACKAGE = pathlib.Path(skb.__file__).parent


def _module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_names(path):
    """(module imported from, name) for every ``from X import name`` in a file."""
    tree = ast.parse(path.read_text())
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                yield source, alias.name


def test_no_module_imports_a_private_name_of_another_skbalance_module():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for source, name in _imported_names(path):
            private = name.startswith("_") and not name.startswith("__")
            if source.startswith("skbalance") and private:
                offenders.append(f"{path.relative_to(PACKAGE)}: from {source} import {name}")
    assert offenders == []


def test_the_import_parser_sees_private_imports(tmp_path):
    # the check above must be able to fail: feed it a file that offends
    offender = PACKAGE / "_probe_for_test.py"
    assert not offender.exists()
    offender.write_text("from ._balancer import _as_column\nfrom . import _rows\n")
    try:
        found = list(_imported_names(offender))
    finally:
        offender.unlink()
    assert ("skbalance._balancer", "_as_column") in found
    assert ("skbalance", "_rows") in found


def test_marginal_balancer_methods_live_with_the_class():
    # no single-use mixins: every skbalance class in its ancestry is itself
    ours = [c for c in skb.MarginalBalancer.__mro__ if c.__module__.startswith("skbalance")]
    assert ours == [skb.MarginalBalancer]
    for name in ("fit", "partial_fit", "transform", "compute_weights", "balance_report",
                 "diagnostics_", "get_feature_names_out"):
        assert name in vars(skb.MarginalBalancer), name


def _private_state_names():
    """Every ``self._name`` an skbalance class assigns, with the modules that assign it."""
    names = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
                    and isinstance(node.value, ast.Name) and node.value.id == "self"
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                names.setdefault(node.attr, set()).add(path)
    return names


def _foreign_private_reads(source, private):
    """``obj._name`` (obj not self) and ``getattr(obj, "_name")`` for private state names."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Attribute) and node.attr in private
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
            found.append(node.attr)
        if (isinstance(node, ast.Call) and getattr(node.func, "id", "") in ("getattr", "hasattr")
                and len(node.args) > 1 and isinstance(node.args[1], ast.Constant)
                and node.args[1].value in private
                and not (isinstance(node.args[0], ast.Name) and node.args[0].id == "self")):
            found.append(node.args[1].value)
        if isinstance(node, ast.Attribute) and node.attr == "update" and isinstance(
                node.value, ast.Attribute) and node.value.attr == "__dict__":
            found.append("__dict__.update")
    return found


def test_private_state_does_not_cross_objects():
    private = _private_state_names()
    assert {"_fit", "_namespace", "_accumulated_cells"} <= set(private)
    offenders = {}
    for path in PACKAGE.rglob("*.py"):  # read through another object outside its module
        foreign = {name for name, owners in private.items() if path not in owners}
        if found := _foreign_private_reads(path.read_text(), foreign):
            offenders[str(path.relative_to(PACKAGE))] = found
    assert offenders == {}
    # the check can fail
    assert sorted(_foreign_private_reads("est._fit.margins\ngetattr(est, '_namespace')\n"
                                         "self.__dict__.update(x)", private)) == [
        "__dict__.update", "_fit", "_namespace"]


def _import_graph():
    """Module -> the skbalance modules it imports (``from . import x`` is ``x``)."""
    modules = {_module_name(path) for path in PACKAGE.rglob("*.py")}
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        module = _module_name(path)
        graph[module] = {f"{source}.{name}" if f"{source}.{name}" in modules else source
                         for source, name in _imported_names(path)
                         if source.startswith("skbalance") and source != module}
        for node in ast.walk(ast.parse(path.read_text())):  # import skbalance.x
            if isinstance(node, ast.Import):
                graph[module] |= {a.name for a in node.names if a.name.startswith("skbalance.")}
    return graph


def _cycles(graph):
    """Modules that reach themselves through module-level imports."""
    def reach(start):
        seen, todo = set(), list(graph.get(start, ()))
        while todo:
            module = todo.pop()
            if module not in seen:
                seen.add(module)
                todo.extend(graph.get(module, ()))
        return seen
    # a package's __init__ importing its submodules is not a circle
    return sorted(m for m in graph if m in reach(m) and not any(
        m == p or m.startswith(p + ".") for p in ("skbalance", "skbalance.kernels",
                                                  "skbalance.ssl", "skbalance.utils",
                                                  "skbalance.datasets") if m == p))


def test_import_graph_has_no_circles():
    graph = {m: {s for s in sources if s not in ("skbalance", "skbalance.kernels",
                                                  "skbalance.utils", "skbalance.ssl")}
             for m, sources in _import_graph().items()}
    assert _cycles(graph) == []
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == ["a", "b"]


class PublicOnlyBalancer(BaseEstimator):
    """A balancer with only the documented contract (no private methods)."""

    def __init__(self, targets=None, max_iter=1000, tol=1e-8):
        self.targets = targets
        self.max_iter = max_iter
        self.tol = tol

    def _inner(self):
        return skb.MarginalBalancer(targets=self.targets, max_iter=self.max_iter,
                                    tol=self.tol)

    def fit_problem(self, X, sample_weight=None):
        inner = self._inner()
        problem = inner.fit_problem(X, sample_weight=sample_weight)
        self.weights_, self.n_iter_ = inner.weights_, inner.n_iter_
        self.n_newton_iter_ = inner.n_newton_iter_
        self.n_features_in_ = inner.n_features_in_
        self.fitted_ = inner
        return problem

    def fit(self, X, y=None, sample_weight=None):
        self.fit_problem(X, sample_weight)
        return self

    def compute_weights(self, X, sample_weight=None):
        return self.fitted_.compute_weights(X, sample_weight)


def test_functional_estimator_needs_only_the_public_contract(survey, survey_targets):
    custom = skb.BalancedFunctionalEstimator(PublicOnlyBalancer(targets=survey_targets))
    custom.fit(survey[["age", "sex", "region"]], survey["y"])
    reference = skb.BalancedFunctionalEstimator(
        skb.MarginalBalancer(targets=survey_targets)).fit(survey[["age", "sex", "region"]],
                                                          survey["y"])
    assert custom.estimate_ == pytest.approx(reference.estimate_, rel=1e-14)
    assert custom.std_error_ == pytest.approx(reference.std_error_, rel=1e-12)


def test_partial_fit_validates_parameters(survey, survey_targets):
    with pytest.raises(InvalidParameterError, match="max_iter"):
        skb.MarginalBalancer(targets=survey_targets, max_iter=-3).partial_fit(survey)


def test_fit_discards_chunks_from_partial_fit(survey, survey_targets):
    A, B, C = survey.iloc[:150], survey.iloc[150:300], survey.iloc[300:]
    bal = skb.MarginalBalancer(targets=survey_targets, tol=1e-12)
    bal.partial_fit(A).fit(B).partial_fit(C)
    only_C = skb.MarginalBalancer(targets=survey_targets, tol=1e-12).fit(C)
    for key in only_C.factors_:
        np.testing.assert_allclose(bal.factors_[key], only_C.factors_[key], rtol=1e-12)


def test_get_feature_names_out_needs_a_fit():
    with pytest.raises(NotFittedError):
        skb.MarginalBalancer().get_feature_names_out()


def test_total_is_the_weight_total(survey, survey_targets):
    proportions = skb.MarginalBalancer(targets=survey_targets).fit(
        survey, sample_weight=np.full(len(survey), 2.5))
    assert proportions.total_ == pytest.approx(2.5 * len(survey))
    counts = {k: {level: 1000 * v for level, v in m.items()}
              for k, m in survey_targets.items()}
    fitted = skb.MarginalBalancer(targets=counts).fit(survey)
    assert fitted.total_ == pytest.approx(1000)
    assert fitted.weights_.sum() == pytest.approx(fitted.total_)


def test_categories_are_dicts_of_index_everywhere(survey, survey_targets):
    bal = skb.MarginalBalancer(targets=survey_targets).fit(survey)
    sga = skb.SpectralGapAnalyzer(columns=("age", "sex")).fit(survey)
    for categories in (bal.categories_, sga.categories_):
        assert isinstance(categories, dict)
        assert all(isinstance(levels, pd.Index) for levels in categories.values())
    assert list(sga.categories_["sex"]) == sorted(survey["sex"].unique(),
                                                  key=list(survey["sex"]).index)


def _routing_data(survey, survey_targets):
    X = np.column_stack([survey[c].astype("category").cat.codes for c in
                         ["age", "sex", "region"]]).astype(float)
    targets = {i: dict(enumerate(np.full(k, 1 / k))) for i, k in enumerate([3, 2, 4])}
    y = survey["y"].to_numpy()
    base = np.random.default_rng(0).uniform(1, 5, size=len(y))
    return X, y, base, targets


def test_set_fit_request_is_obeyed_by_outer_routers(survey, survey_targets):
    X, y, base, targets = _routing_data(survey, survey_targets)
    with sklearn.config_context(enable_metadata_routing=True):
        meta = skb.BalancedEstimator(skb.MarginalBalancer(targets=targets),
                                     LinearRegression())
        meta.set_fit_request(sample_weight=True).set_score_request(sample_weight=False)
        result = cross_validate(meta, X, y, params={"sample_weight": base}, cv=2,
                                return_estimator=True, return_indices=True)
        for fitted, train in zip(result["estimator"], result["indices"]["train"]):
            assert fitted.balancer_.weights_.sum() == pytest.approx(base[train].sum())
        # not requested: nobody consumes sample_weight, which scikit-learn refuses
        # exactly as for the bare estimator (the inner request does not leak out)
        meta.set_fit_request(sample_weight=False)
        bare = LinearRegression().set_fit_request(sample_weight=False).set_score_request(
            sample_weight=False)
        for estimator in (meta, bare):
            with pytest.raises(TypeError, match="not routed to any object"):
                cross_validate(estimator, X, y, params={"sample_weight": base}, cv=2)


def test_predict_params_are_routed(survey, survey_targets):
    X, y, _, targets = _routing_data(survey, survey_targets)
    with sklearn.config_context(enable_metadata_routing=True):
        meta = skb.BalancedEstimator(skb.MarginalBalancer(targets=targets),
                                     BayesianRidge().set_predict_request(return_std=True))
        mean, std = meta.fit(X, y).predict(X, return_std=True)
        assert std.shape == mean.shape == y.shape
        unrequested = skb.BalancedEstimator(skb.MarginalBalancer(targets=targets),
                                            BayesianRidge()).fit(X, y)
        with pytest.raises(Exception, match="return_std"):
            unrequested.predict(X, return_std=True)
    meta = skb.BalancedEstimator(skb.MarginalBalancer(targets=targets), BayesianRidge())
    with pytest.raises(ValueError, match="return_std"):  # routing off: params rejected
        meta.fit(X, y).predict(X, return_std=True)


def test_score_weights_keeps_convergence_warnings():
    # held-out rows that cannot meet the targets: cell (1, 1) alone holds level 1
    # of column 0 (0.5), more than level 1 of column 1 may have (0.3)
    targets = {0: {0: 0.5, 1: 0.5}, 1: {0: 0.7, 1: 0.3}}
    train = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    meta = skb.BalancedEstimator(skb.MarginalBalancer(targets=targets, max_iter=2, tol=0),
                                 LinearRegression()).fit(train, [1.0, 2.0, 3.0, 4.0])
    slow = np.array([[0, 0], [0, 1], [1, 1]], dtype=float)
    with pytest.warns(ConvergenceWarning, match="did not reach tol"):
        meta.score_weights(slow)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        meta.score_weights(np.array([[0, 0], [1, 1], [0, 1], [1, 0]], dtype=float))


# bottom-up: a module imports only from layers below its own (or its own
# subpackage); the three survey layers, weighting, design and analysis, sit on
# the readers and the solver, the command line on top of everything
LAYERS = [
    ["skbalance.utils", "skbalance._version", "skbalance._typing"],
    ["skbalance.kernels", "skbalance.datasets", "skbalance.plotting", "skbalance._hadamard"],
    ["skbalance._rows", "skbalance._targets", "skbalance.ssl"],
    ["skbalance._problem", "skbalance._streaming"],
    ["skbalance._report", "skbalance.theory", "skbalance._design", "skbalance._bias_reduced"],
    ["skbalance._solve", "skbalance._covariate_balance"],
    ["skbalance._balancer", "skbalance._spectral", "skbalance._meta"],
    ["skbalance._trimming"],
    ["skbalance._propensity"],
    ["skbalance._inference", "skbalance._recipe"],
    ["skbalance._grouped"],
    ["skbalance._functional"],
    ["skbalance._tables", "skbalance._regression", "skbalance._cli"],
    ["skbalance.__main__", "skbalance"],
]


def _layer(module):
    for level, members in enumerate(LAYERS):
        if any(module == m or module.startswith(m + ".") for m in members):
            return level
    raise AssertionError(f"{module} is in no layer: add it to LAYERS")


def _climbs(graph):
    """Imports that go to the importer's layer or above, outside its own subpackage."""
    return sorted((module, source) for module, sources in graph.items() for source in sources
                  if _layer(source) >= _layer(module)
                  and not (module != "skbalance" and source.rsplit(".", 1)[0] == module)
                  and not (_package_of(module) == _package_of(source) != "skbalance"))


def _package_of(module):
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def test_imports_never_run_back_up_the_layers():
    graph = _import_graph()
    assert _climbs(graph) == []
    # the check can fail: the solver importing the estimator runs back up
    assert _climbs({"skbalance._solve": {"skbalance._balancer"},
                    "skbalance._rows": {"skbalance.utils._validation"}}) == [
        ("skbalance._solve", "skbalance._balancer")]
