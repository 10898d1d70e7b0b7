"""Design-based regression (issue 20, item 1) against R survey's svyglm
(values stored with their calls in r_reference/analysis_reference.json)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

import skbalance as skb

REF = {k: np.asarray(v["value"]) for k, v in json.loads(
    (Path(__file__).parent / "r_reference" / "analysis_reference.json").read_text()).items()}
CLUSTER = skb.SurveyDesign(clusters="dnum", fpc="fpc")


def _raked():
    targets = skb.datasets.api_population_targets(["stype", "sch.wide"])
    return skb.MarginalBalancer(targets=targets, tol=1e-13, max_iter=10000)


def _check(model, key, rtol=1e-8):
    results = model.results_
    np.testing.assert_allclose(results["estimate"], REF[f"glm.{key}.coef"], rtol=rtol)
    np.testing.assert_allclose(results["std_error"], REF[f"glm.{key}.se"], rtol=rtol)
    assert (results["df"] == REF[f"glm.{key}.df"][0]).all()


@pytest.fixture(scope="module")
def clus1():
    return skb.datasets.load_api("clus1")


def test_linear_regression_on_a_raked_cluster_sample_equals_svyglm(clus1):
    model = skb.SurveyRegressor(_raked(), design=CLUSTER, features=["ell", "meals", "mobility"])
    model.fit(clus1, clus1["api00"], sample_weight=clus1["pw"])
    _check(model, "raked_gaussian")
    # the values
    np.testing.assert_allclose(model.coef_, [-0.393315474732337, -3.11005934630316,
                                             -0.226109325832595], rtol=1e-8)
    assert model.intercept_ == pytest.approx(810.424073631082, rel=1e-10)
    assert list(model.results_.term) == ["(Intercept)", "ell", "meals", "mobility"]
    assert model.vcov_.shape == (4, 4)
    np.testing.assert_allclose(np.sqrt(np.diag(model.vcov_)), model.std_error_)


def test_logistic_regression_equals_svyglm_quasibinomial(clus1):
    model = skb.SurveyClassifier(design=CLUSTER, features=["ell", "meals"])
    model.fit(clus1, clus1["sch.wide"], sample_weight=clus1["pw"])
    _check(model, "clus1_logit")
    assert list(model.classes_) == ["No", "Yes"]
    raked = skb.SurveyClassifier(_raked(), design=CLUSTER, features=["api99", "meals"])
    raked.fit(clus1, clus1["awards"], sample_weight=clus1["pw"])
    _check(raked, "raked_logit")
    proba = raked.predict_proba(clus1)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    eta = raked.intercept_ + clus1[["api99", "meals"]].to_numpy() @ raked.coef_
    np.testing.assert_allclose(proba[:, 1], 1 / (1 + np.exp(-eta)), rtol=1e-12)
    assert set(raked.predict(clus1)) <= {"No", "Yes"}


def test_poisson_regression_equals_svyglm_quasipoisson():
    strat = skb.datasets.load_api("strat")
    model = skb.SurveyRegressor(family="poisson",
                                design=skb.SurveyDesign(strata="stype", fpc="fpc"),
                                features=["meals", "api00"])
    model.fit(strat, strat["enroll"], sample_weight=strat["pw"])
    _check(model, "strat_poisson")
    np.testing.assert_allclose(
        model.predict(strat), np.exp(model.intercept_ + strat[["meals", "api00"]].to_numpy()
                                     @ model.coef_), rtol=1e-12)


def test_domain_regression_keeps_the_design(clus1):
    model = skb.SurveyRegressor(_raked(), design=CLUSTER, features=["ell", "meals"],
                                domain="stype", domain_level="E")
    model.fit(clus1, clus1["api00"], sample_weight=clus1["pw"])
    _check(model, "raked_domain_E")
    assert (model.weights_ > 0).all()  # the balancing and design keep every row


def test_replicate_regression_refits_every_replicate(clus1):
    design = skb.SurveyDesign(clusters="dnum", fpc="fpc", replicates="jk1")
    model = skb.SurveyRegressor(_raked(), design=design, features=["ell", "meals", "mobility"])
    model.fit(clus1, clus1["api00"], sample_weight=clus1["pw"])
    _check(model, "jk1_raked_gaussian")


def test_regression_works_in_a_pipeline_and_a_grid_search(clus1):
    columns = ["ell", "meals", "mobility"]
    pipe = make_pipeline(FunctionTransformer(lambda X: X[columns]), skb.SurveyRegressor())
    pipe.fit(clus1, clus1["api00"])
    assert pipe.score(clus1, clus1["api00"]) > 0.5
    search = GridSearchCV(skb.SurveyClassifier(features=["ell", "meals"]),
                          {"linearization": ["design", "cr2"]}, cv=KFold(3))
    search.fit(clus1[["ell", "meals"]], clus1["sch.wide"])
    assert search.best_estimator_.classes_.tolist() == ["No", "Yes"]


@pytest.mark.parametrize("model,X,y,message", [
    (skb.SurveyClassifier(features=["a"]), pd.DataFrame({"a": [1.0, 2, 3, 4, 5]}),
     np.array([0, 1, 2, 1, 0]), "Only binary classification is supported"),
    (skb.SurveyRegressor(family="poisson", features=["a"]),
     pd.DataFrame({"a": [1.0, 2, 3, 4, 5]}), np.array([1.0, -1, 2, 3, 4]),
     "nonnegative outcome"),
    (skb.SurveyRegressor(features=["a", "b"]),
     pd.DataFrame({"a": [1.0, 2, 3, 4, 5], "b": [2.0, 4, 6, 8, 10]}),
     np.array([1.0, 2, 2, 3, 5]), "'a', 'b' are collinear"),
    (skb.SurveyRegressor(features=["g"]), pd.DataFrame({"g": list("abcab")}),
     np.arange(5.0), "Feature 'g' must be numeric"),
])
def test_regression_errors_name_the_problem(model, X, y, message):
    with pytest.raises(ValueError, match=message):
        model.fit(X, y)


def test_default_features_leave_out_the_outcome_and_the_design():
    strat = skb.datasets.load_api("strat")[["stype", "pw", "fpc", "meals", "ell", "api00"]]
    model = skb.SurveyRegressor(design=skb.SurveyDesign(strata="stype", fpc="fpc"))
    model.fit(strat.drop(columns="pw"), strat["api00"], sample_weight=strat["pw"])
    assert model.features_ == ["meals", "ell"]
    explicit = skb.SurveyRegressor(design=skb.SurveyDesign(strata="stype", fpc="fpc"),
                                   features=["meals", "ell"])
    explicit.fit(strat, strat["api00"], sample_weight=strat["pw"])
    np.testing.assert_allclose(model.coef_, explicit.coef_, rtol=1e-14)
