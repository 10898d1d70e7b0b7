"""The analysis functions of issue 20 against R survey 4.1-1 (values stored
with their R calls in r_reference/analysis_reference.json)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import skbalance as skb

HERE = Path(__file__).parent / "r_reference"
REF = {k: np.asarray(v["value"]) for k, v in
       json.loads((HERE / "analysis_reference.json").read_text()).items()}
METHODS = ["logit", "xlogit", "asin", "beta", "mean"]


def _raked():
    targets = skb.datasets.api_population_targets(["stype", "sch.wide"])
    return skb.MarginalBalancer(targets=targets, tol=1e-13, max_iter=10000)


def _interval(est, X, y, where=None):
    results = est.fit(X, y, sample_weight=X["pw"]).results_
    row = results.iloc[0] if where is None else results.loc[results.domain == where].iloc[0]
    return np.array([row.estimate, row.ci_low, row.ci_high])


@pytest.mark.parametrize("method", METHODS)
def test_proportion_intervals_equal_svyciprop(method):
    clus1 = skb.datasets.load_api("clus1")
    strat = skb.datasets.load_api("strat")
    cluster = skb.SurveyDesign(clusters="dnum", fpc="fpc")
    awards = (clus1["awards"] == "Yes") * 1.0
    # a domain of a raked design, with R's degf of the subset (7, not 14)
    est = skb.BalancedFunctionalEstimator(_raked(), design=cluster, domain="stype",
                                          df="domain", ci_method=method)
    np.testing.assert_allclose(_interval(est, clus1, awards, "H"),
                               REF[f"ciprop.clus1_raked_H_awards.{method}"], rtol=1e-8)
    assert est.results_.loc[est.results_.domain == "H", "df"].item() == REF[
        "ciprop.clus1_raked_H_awards.degf"][0]
    # the whole sample, stratified, as a level of a categorical outcome
    est = skb.BalancedFunctionalEstimator(
        baseline="empirical", design=skb.SurveyDesign(strata="stype", fpc="fpc"),
        ci_method=method)
    results = est.fit(strat, strat["awards"], sample_weight=strat["pw"]).results_
    yes = results.loc[results.level == "Yes"].iloc[0]
    np.testing.assert_allclose([yes.estimate, yes.ci_low, yes.ci_high],
                               REF[f"ciprop.strat_awards.{method}"], rtol=1e-8)
    # a domain of an uncalibrated design (R's subset keeps only its rows)
    est = skb.BalancedFunctionalEstimator(baseline="empirical", design=cluster,
                                          domain="stype", df="domain", ci_method=method)
    np.testing.assert_allclose(
        _interval(est, clus1, (clus1["sch.wide"] == "Yes") * 1.0, "M"),
        REF[f"ciprop.clus1_M_schwide.{method}"], rtol=1e-8)
    # JK1 replicates ("logit" refits the log odds on every replicate)
    est = skb.BalancedFunctionalEstimator(
        baseline="empirical", design=skb.SurveyDesign(clusters="dnum", fpc="fpc",
                                                      replicates="jk1"), ci_method=method)
    np.testing.assert_allclose(_interval(est, clus1, awards),
                               REF[f"ciprop.jk1_awards.{method}"], rtol=1e-8)


@pytest.mark.parametrize("method", ["logit", "xlogit", "asin", "beta"])
def test_proportion_intervals_stay_inside_0_and_1(method):
    clus1 = skb.datasets.load_api("clus1")
    est = skb.BalancedFunctionalEstimator(
        baseline="empirical", design=skb.SurveyDesign(clusters="dnum", fpc="fpc"),
        domain="comp.imp", ci_method=method)
    results = est.fit(clus1, clus1["awards"], sample_weight=clus1["pw"]).results_
    assert (results.ci_low >= 0).all() and (results.ci_high <= 1).all()
    wald = est.set_params(ci_method="mean").fit(
        clus1, clus1["awards"], sample_weight=clus1["pw"]).results_
    assert (wald.ci_high > 1).any()  # what the Wald interval does here


def test_the_interval_of_other_statistics_stays_wald():
    clus1 = skb.datasets.load_api("clus1")
    est = skb.BalancedFunctionalEstimator(baseline="empirical", ci_method="beta")
    row = est.fit(clus1, clus1["api00"], sample_weight=clus1["pw"]).results_.iloc[0]
    half = (row.ci_high - row.ci_low) / 2
    assert row.estimate == pytest.approx((row.ci_high + row.ci_low) / 2)
    assert half == pytest.approx(
        row.std_error * __import__("scipy").stats.t.ppf(0.975, row.df))
    assert pd.notna(row.ci_low)


@pytest.fixture(scope="module")
def with_missing():
    clus1 = skb.datasets.load_api("clus1")
    y = clus1["api00"].astype(float)
    y.iloc[[2, 9, 49, 50, 119]] = np.nan  # R's rows 3, 10, 50, 51, 120
    awards = clus1["awards"].astype(object)
    awards.iloc[[6, 7, 89]] = None
    return clus1.assign(y=y, aw=awards)


def _fit_na(X, y, balanced=False, design=None, **params):
    design = design or skb.SurveyDesign(clusters="dnum", fpc="fpc")
    if balanced:
        est = skb.BalancedFunctionalEstimator(_raked(), design=design, na_rm=True, **params)
    else:
        est = skb.BalancedFunctionalEstimator(baseline="empirical", design=design,
                                              na_rm=True, **params)
    return est.fit(X, y, sample_weight=X["pw"]).results_


@pytest.mark.parametrize("key,balanced,params,column", [
    ("mean", False, {}, "y"),
    ("total", False, {"statistic": "total"}, "y"),
    ("raked_mean", True, {}, "y"),
    ("raked_awards", True, {}, "aw"),
    ("ratio", False, {"statistic": "ratio", "denominator": "api99"}, "y"),
    ("raked_by_stype", True, {"domain": "stype"}, "y"),
])
def test_missing_outcomes_are_left_out_as_r_na_rm(with_missing, key, balanced, params, column):
    results = _fit_na(with_missing, with_missing[column], balanced, **params)
    np.testing.assert_allclose(results.estimate, REF[f"narm.{key}.estimate"], rtol=1e-8)
    np.testing.assert_allclose(results.std_error, REF[f"narm.{key}.se"], rtol=1e-8)


def test_missing_outcomes_with_replicates_and_several_outcomes(with_missing):
    jk1 = skb.SurveyDesign(clusters="dnum", fpc="fpc", replicates="jk1")
    row = _fit_na(with_missing, with_missing["y"], design=jk1).iloc[0]
    assert row.estimate == pytest.approx(REF["narm.jk1_mean.estimate"][0], rel=1e-8)
    assert row.std_error == pytest.approx(REF["narm.jk1_mean.se"][0], rel=1e-8)
    # rows missing any outcome are left out of every estimate, as R's formula
    both = _fit_na(with_missing, with_missing[["y", "api99"]])
    np.testing.assert_allclose(both.estimate, REF["narm.both.estimate"], rtol=1e-8)
    np.testing.assert_allclose(both.std_error, REF["narm.both.se"], rtol=1e-8)
    assert (both.n == 183 - 5).all()


@pytest.mark.parametrize("column,message", [
    ("y", "Outcome 'y' has 5 missing value\\(s\\) in 183 rows; pass na_rm=True"),
    ("aw", "Outcome 'aw' has 3 missing value\\(s\\) in 183 rows; pass na_rm=True"),
])
def test_a_missing_outcome_is_an_error_by_default(with_missing, column, message):
    est = skb.BalancedFunctionalEstimator(baseline="empirical")
    with pytest.raises(ValueError, match=message):
        est.fit(with_missing, with_missing[column], sample_weight=with_missing["pw"])
    every = with_missing.assign(y=np.nan)
    with pytest.raises(ValueError, match="Every row has a missing outcome"):
        est.set_params(na_rm=True).fit(every, every["y"])
