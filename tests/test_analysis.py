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
METHODS = ["logit", "xlogit", "asin", "beta", "likelihood", "mean"]


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
    if method == "likelihood":  # at another level, made the same way
        low, high = est.confidence_interval(0.1)
        np.testing.assert_allclose([low[1], high[1]], REF["ciprop.strat_awards.likelihood_90"],
                                   rtol=1e-8)
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
    if method == "likelihood":  # R's interval is NA there
        with pytest.raises(ValueError, match="replicate weights R's svyciprop gives NA"):
            _interval(est, clus1, awards)
        return
    np.testing.assert_allclose(_interval(est, clus1, awards),
                               REF[f"ciprop.jk1_awards.{method}"], rtol=1e-8)


@pytest.mark.parametrize("method", ["logit", "xlogit", "asin", "beta", "likelihood"])
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


def _quantiles(est, X, y, where=None):
    results = est.fit(X, y, sample_weight=X["pw"]).results_
    if where is not None:
        results = results.loc[results.domain == where]
    return results


def _check_quantiles(results, key, values=None):
    """Equal to R; where R gives NaN (the share's interval leaves [0, 1]), the
    interval ends at the smallest (largest) value and the SE is finite."""
    for column, name in (("estimate", "estimate"), ("ci_low", "ci_low"),
                         ("ci_high", "ci_high"), ("std_error", "se")):
        expected = REF[f"quantile.{key}.{name}"]
        known = np.isfinite(expected)
        np.testing.assert_allclose(results[column].to_numpy()[known], expected[known],
                                   rtol=1e-8)
        assert np.isfinite(results[column]).all()
        if not known.all() and column in ("ci_low", "ci_high"):
            end = values.min() if column == "ci_low" else values.max()
            assert (results[column].to_numpy()[~known] == end).all()


def test_quantiles_equal_svyquantile_on_a_raked_cluster_sample():
    # the values: 552, 652, 715; median interval (561, 714), SE 35.6678826994527
    clus1 = skb.datasets.load_api("clus1")
    est = skb.BalancedFunctionalEstimator(
        _raked(), design=skb.SurveyDesign(clusters="dnum", fpc="fpc"), statistic="quantile",
        quantiles=[0.25, 0.5, 0.75])
    results = _quantiles(est, clus1, clus1["api00"])
    _check_quantiles(results, "clus1_raked")
    assert list(results.level) == [0.25, 0.5, 0.75]
    assert list(results.statistic) == ["quantile"] * 3
    assert results.std_error.iloc[1] == pytest.approx(35.6678826994527, rel=1e-9)


@pytest.mark.parametrize("method", ["mean", "beta", "xlogit", "asin"])
def test_quantile_interval_types_equal_r(method):
    strat = skb.datasets.load_api("strat")
    est = skb.BalancedFunctionalEstimator(
        baseline="empirical", design=skb.SurveyDesign(strata="stype", fpc="fpc"),
        statistic="quantile", quantiles=[0.1, 0.5, 0.9], ci_method=method)
    _check_quantiles(_quantiles(est, strat, strat["api00"]), f"strat_{method}")


def test_quantiles_in_domains_and_with_replicates_equal_r():
    clus1 = skb.datasets.load_api("clus1")
    est = skb.BalancedFunctionalEstimator(
        baseline="empirical", design=skb.SurveyDesign(clusters="dnum", fpc="fpc"),
        statistic="quantile", quantiles=[0.5, 0.8], domain="stype", df="domain")
    for level in ("E", "H", "M"):  # R's lower end for H is NaN: ours is the minimum
        _check_quantiles(_quantiles(est, clus1, clus1["enroll"], level), f"clus1_{level}",
                         clus1.loc[clus1.stype == level, "enroll"])
    est = skb.BalancedFunctionalEstimator(
        baseline="empirical", statistic="quantile", quantiles=[0.25, 0.5],
        design=skb.SurveyDesign(clusters="dnum", fpc="fpc", replicates="jk1"))
    _check_quantiles(_quantiles(est, clus1, clus1["api00"]), "jk1")


def test_quantile_rule_equals_a_plain_loop():
    rng = np.random.default_rng(0)
    x, w = rng.integers(0, 20, 300).astype(float), rng.uniform(0, 2, 300)
    w[:30] = 0.0
    order = np.argsort(x, kind="stable")
    for p in (0.01, 0.25, 0.5, 0.77, 0.99):
        running, total = 0.0, w.sum()
        for i in order:  # the first value whose share at or below reaches p
            running += w[i]
            if running >= p * total and w[i] > 0:
                break
        est = skb.BalancedFunctionalEstimator(baseline="empirical", statistic="quantile",
                                              quantiles=p)
        assert est.fit(pd.DataFrame({"g": np.zeros(300)}), x, sample_weight=w).estimate_ == x[i]


@pytest.mark.parametrize("quantiles", [0.0, 1.0, [0.5, 1.2], -0.1, []])
def test_a_quantile_outside_0_and_1_is_an_error(quantiles):
    est = skb.BalancedFunctionalEstimator(baseline="empirical", statistic="quantile",
                                          quantiles=quantiles)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        est.fit(pd.DataFrame({"g": [0, 1, 0]}), np.array([1.0, 2.0, 3.0]))


def test_a_categorical_outcome_has_no_quantile():
    est = skb.BalancedFunctionalEstimator(baseline="empirical", statistic="quantile")
    with pytest.raises(ValueError, match="categorical: a quantile needs numbers"):
        est.fit(pd.DataFrame({"g": [0, 1, 0]}), pd.Series(["a", "b", "a"], name="y"))


def test_domains_over_two_columns_with_covariance_and_contrast_equal_r():
    clus1 = skb.datasets.load_api("clus1")
    est = skb.BalancedFunctionalEstimator(
        baseline="empirical", design=skb.SurveyDesign(clusters="dnum", fpc="fpc"),
        domain=["stype", "sch.wide"])
    results = est.fit(clus1, clus1["api00"], sample_weight=clus1["pw"]).results_
    assert list(results.domain) == [("E", "No"), ("E", "Yes"), ("H", "No"), ("H", "Yes"),
                                    ("M", "No"), ("M", "Yes")]
    np.testing.assert_allclose(results.estimate, REF["by2.estimate"], rtol=1e-10)
    np.testing.assert_allclose(results.std_error, REF["by2.se"], rtol=1e-10)
    np.testing.assert_allclose(est.vcov_, REF["by2.vcov"].reshape(6, 6, order="F"),
                               rtol=1e-9, atol=1e-9)
    difference = est.contrast([-1, 1, 0, 0, 0, 0])  # (E, Yes) - (E, No)
    np.testing.assert_allclose([difference.estimate, difference.std_error],
                               REF["by2.contrast_E_yes_minus_no"], rtol=1e-10)
    raked = skb.BalancedFunctionalEstimator(
        _raked(), design=skb.SurveyDesign(clusters="dnum", fpc="fpc"),
        domain=["stype", "comp.imp"])
    results = raked.fit(clus1, clus1["enroll"], sample_weight=clus1["pw"]).results_
    np.testing.assert_allclose(results.estimate, REF["by2_raked.estimate"], rtol=1e-8)
    np.testing.assert_allclose(results.std_error, REF["by2_raked.se"], rtol=1e-8)


def test_contrast_of_stratified_domains_and_its_errors():
    strat = skb.datasets.load_api("strat")
    est = skb.BalancedFunctionalEstimator(
        baseline="empirical", design=skb.SurveyDesign(strata="stype", fpc="fpc"),
        domain="stype").fit(strat, strat["api00"], sample_weight=strat["pw"])
    difference = est.contrast([-1, 0, 1])
    np.testing.assert_allclose([difference.estimate, difference.std_error],
                               REF["strat_by.contrast_M_minus_E"], rtol=1e-10)
    # independent strata: the covariance of two strata's means is 0
    assert est.vcov_[0, 2] == pytest.approx(0, abs=1e-9)
    with pytest.raises(ValueError, match=r"one weight per row of results_ \(3\)"):
        est.contrast([1, -1])


@pytest.mark.parametrize("key,balanced,group", [("clus1_compimp", False, "comp.imp"),
                                                ("raked_schwide", True, "sch.wide")])
def test_ttest_equals_svyttest(key, balanced, group):
    clus1 = skb.datasets.load_api("clus1")
    design = skb.SurveyDesign(clusters="dnum", fpc="fpc")
    est = (skb.BalancedFunctionalEstimator(_raked(), design=design, domain=group) if balanced
           else skb.BalancedFunctionalEstimator(baseline="empirical", design=design,
                                                domain=group))
    test = est.fit(clus1, clus1["api00"], sample_weight=clus1["pw"]).ttest()
    expected = REF[f"ttest.{key}"]  # estimate, t, df, p
    np.testing.assert_allclose([test.estimate, test.t], expected[:2], rtol=1e-8)
    assert test.df == expected[2]
    assert test.p_value == pytest.approx(expected[3], rel=1e-6)


def test_ttest_needs_two_domains():
    clus1 = skb.datasets.load_api("clus1")
    est = skb.BalancedFunctionalEstimator(baseline="empirical", domain="stype").fit(
        clus1, clus1["api00"])
    with pytest.raises(ValueError, match="two levels"):
        est.ttest()


@pytest.mark.parametrize("statistic", ["F", "Chisq"])
def test_rao_scott_tests_equal_svychisq(statistic):
    clus1 = skb.datasets.load_api("clus1")
    strat = skb.datasets.load_api("strat")
    cluster = skb.SurveyDesign(clusters="dnum", fpc="fpc")
    cases = {
        "clus1_schwide_stype": dict(X=clus1, rows="sch.wide", columns="stype",
                                    baseline="empirical", design=cluster),
        "raked_awards_stype": dict(X=clus1, rows="awards", columns="stype",
                                   balancer=_raked(), design=cluster),
        "strat_stype_both": dict(X=strat, rows="stype", columns="both", baseline="empirical",
                                 design=skb.SurveyDesign(strata="stype", fpc="fpc")),
    }
    for key, case in cases.items():
        test = skb.chisq_test(**case, sample_weight=case["X"]["pw"], statistic=statistic)
        expected = REF[f"chisq.{key}.{statistic}"]
        if statistic == "F":  # statistic, ndf, ddf, p
            np.testing.assert_allclose([test.statistic, test.ndf, test.ddf],
                                       expected[:3], rtol=1e-8)
        else:  # Pearson's statistic, df, p
            np.testing.assert_allclose([test.statistic, test.ndf], expected[:2], rtol=1e-8)
        assert test.p_value == pytest.approx(expected[-1], rel=1e-6)


def test_tables_without_a_balancer_use_the_design_weights():
    """R's svychisq and svytotal on the design itself: no balancer and no
    baseline means the design weights, never every column of X raked."""
    clus1 = skb.datasets.load_api("clus1")
    cluster = skb.SurveyDesign(clusters="dnum", fpc="fpc")
    test = skb.chisq_test(clus1, "sch.wide", "stype", design=cluster,
                          sample_weight=clus1["pw"])
    expected = REF["chisq.clus1_schwide_stype.F"]
    np.testing.assert_allclose([test.statistic, test.ndf, test.ddf], expected[:3], rtol=1e-8)
    # two_way_table's default: its svytotal case below passes no baseline


def test_chisq_test_errors():
    clus1 = skb.datasets.load_api("clus1")
    with pytest.raises(ValueError, match="needs two levels in each column"):
        skb.chisq_test(clus1.assign(one="a"), "one", "stype", baseline="empirical")
    weights = np.where(clus1["stype"] == "H", 0.0, clus1["pw"])
    with pytest.raises(ValueError, match="margin for level 'H' of 'stype' has no weight"):
        skb.chisq_test(clus1, "sch.wide", "stype", baseline="empirical",
                       sample_weight=weights)
    with pytest.raises(ValueError, match="statistic must be 'F' or 'Chisq'"):
        skb.chisq_test(clus1, "sch.wide", "stype", statistic="Wald")


def test_two_way_tables_equal_svymean_and_svytotal_of_the_interaction():
    clus1 = skb.datasets.load_api("clus1")
    cluster = skb.SurveyDesign(clusters="dnum", fpc="fpc")
    table = skb.two_way_table(clus1, "sch.wide", "stype", balancer=_raked(), design=cluster,
                              sample_weight=clus1["pw"])
    order = table.sort_values(["stype", "sch.wide"])  # R's interaction: first column fastest
    np.testing.assert_allclose(order.estimate, REF["table.raked_schwide_stype.estimate"],
                               rtol=1e-8)
    np.testing.assert_allclose(order.std_error, REF["table.raked_schwide_stype.se"],
                               rtol=1e-8)
    assert table.n.sum() == len(clus1)
    totals = skb.two_way_table(clus1, "awards", "stype", design=cluster,  # design weights
                               sample_weight=clus1["pw"], statistic="total")
    order = totals.sort_values(["stype", "awards"])
    np.testing.assert_allclose(order.estimate, REF["table.clus1_awards_stype_total.estimate"],
                               rtol=1e-10)
    np.testing.assert_allclose(order.std_error, REF["table.clus1_awards_stype_total.se"],
                               rtol=1e-10)


def test_tables_refuse_missing_values_in_their_columns():
    """A pair holding NaN is no missing value to the estimator: it would make a
    hidden cell (the shown ones summing to less than 1)."""
    X = pd.DataFrame({"a": ["x", None, "y", "y", "x"], "b": ["u", "v", "u", "v", "v"]})
    for function in (skb.two_way_table, skb.chisq_test):
        with pytest.raises(ValueError, match=r"Column 'a' has 1 missing value\(s\) in 5 rows"):
            function(X, "a", "b")
        with pytest.raises(ValueError, match=r"Column 'a' has 1 missing value"):
            function(X, "b", "a")


def test_a_cell_no_row_has_is_zero():
    X = pd.DataFrame({"a": ["x", "x", "y", "y"], "b": ["u", "v", "u", "u"]})
    table = skb.two_way_table(X, "a", "b", baseline="empirical")
    missing = table[(table.a == "y") & (table.b == "v")].iloc[0]
    assert (missing.estimate, missing.std_error, missing.n) == (0.0, 0.0, 0)
    assert table.estimate.sum() == pytest.approx(1.0)


def test_confidence_interval_agrees_with_results_at_every_level():
    clus1 = skb.datasets.load_api("clus1")
    est = skb.BalancedFunctionalEstimator(
        baseline="empirical", design=skb.SurveyDesign(clusters="dnum", fpc="fpc"),
        domain="stype")
    est.fit(clus1, (clus1["awards"] == "Yes") * 1.0, sample_weight=clus1["pw"])
    low, high = est.confidence_interval()
    np.testing.assert_allclose(low, est.results_.ci_low)
    np.testing.assert_allclose(high, est.results_.ci_high)
    low90, high90 = est.confidence_interval(0.10)
    assert (low90 > low).all() and (high90 < high).all() and (low90 > 0).all()
    quantile = skb.BalancedFunctionalEstimator(baseline="empirical", statistic="quantile")
    quantile.fit(clus1, clus1["api00"])
    assert quantile.confidence_interval() == (quantile.results_.ci_low.item(),
                                              quantile.results_.ci_high.item())
    with pytest.raises(ValueError, match="comes with the fit"):
        quantile.confidence_interval(0.1)


def test_many_domains_equal_r_for_every_statistic():
    """37 counties (some with one school), each statistic held as one split."""
    strat = skb.datasets.load_api("strat")
    design = skb.SurveyDesign(strata="stype", fpc="fpc")

    def fitted(y, **options):
        options.setdefault("baseline", None)
        est = skb.BalancedFunctionalEstimator(_raked(), design=design, domain="cname",
                                              **options)
        return est.fit(strat, y, sample_weight=strat["pw"]).results_

    counties = sorted(strat["cname"].unique())
    cases = [("raked_mean", fitted(strat["api00"])),
             ("total", fitted(strat["api00"], statistic="total", baseline="empirical")),
             ("raked_ratio", fitted(strat["api00"], statistic="ratio", denominator="api99")),
             ("raked_awards", fitted(strat["awards"]))]
    jkn = skb.SurveyDesign(strata="stype", fpc="fpc", replicates="jkn")
    for y in ("api00", "awards"):
        est = skb.BalancedFunctionalEstimator(_raked(), design=jkn, domain="cname")
        # a one-school county has no weight in the replicate that drops it: as R
        with pytest.warns(UserWarning, match="13 replicate.s. gave NA results"):
            est.fit(strat, strat[y], sample_weight=strat["pw"])
        cases.append((f"jkn_raked_{'mean' if y == 'api00' else y}", est.results_))
    for key, results in cases:
        expected_domains = counties * (2 if key.endswith("awards") else 1)
        assert list(results.domain) == expected_domains
        estimate, se = REF[f"counties.{key}.estimate"], REF[f"counties.{key}.se"]
        np.testing.assert_allclose(results.estimate, estimate, rtol=1e-8, err_msg=key)
        # a one-school county has no sampling error: R's 0, ours within rounding
        np.testing.assert_allclose(results.std_error, se, rtol=1e-8, atol=1e-9 * se.max(),
                                   err_msg=key)


def test_domain_means_at_scale_equal_a_plain_loop():
    """300 domains of a stratified cluster sample, design weights alone, a
    missing outcome in some rows (na_rm): each domain's mean and SE by the
    textbook formula, one domain at a time."""
    rng = np.random.default_rng(11)
    n, n_strata, per_stratum, n_domains = 3000, 20, 6, 300
    stratum = rng.integers(0, n_strata, n)
    psu = stratum * per_stratum + rng.integers(0, per_stratum, n)
    frame = pd.DataFrame({"stratum": stratum, "psu": psu, "fpc": 50.0,
                          "domain": rng.integers(0, n_domains, n),
                          "y": rng.normal(10, 3, n), "w": rng.uniform(1, 4, n)})
    frame.loc[rng.choice(n, 40, replace=False), "y"] = np.nan
    est = skb.BalancedFunctionalEstimator(
        baseline="empirical", design=skb.SurveyDesign(strata="stratum", clusters="psu",
                                                      fpc="fpc"),
        domain="domain", na_rm=True).fit(frame, frame["y"], sample_weight=frame["w"])
    results = est.results_
    assert len(results) == n_domains
    y, w = frame["y"].to_numpy(), frame["w"].to_numpy()
    for d in range(n_domains):
        inside = (frame["domain"].to_numpy() == d) & ~np.isnan(y)
        total_w = w[inside].sum()
        mean = (w[inside] * y[inside]).sum() / total_w
        z = np.where(inside, w * (np.nan_to_num(y) - mean) / total_w, 0.0)
        variance = 0.0
        for h in range(n_strata):
            units = [z[psu == j].sum() for j in np.unique(psu[stratum == h])]
            n_h = len(units)
            variance += (1 - n_h / 50) * n_h / (n_h - 1) * np.sum(
                (np.array(units) - np.mean(units)) ** 2)
        row = results.iloc[d]
        assert row.domain == d
        assert row.estimate == pytest.approx(mean, rel=1e-12)
        assert row.std_error == pytest.approx(np.sqrt(variance), rel=1e-10)


def test_fmm_spline_equals_r_spline():
    """R: x <- c(0.3, 1.1, 1.7, 2.9, 3.3, 4.0, 4.4, 4.9);
    spline(x, sin(x), n = 24)$y[c(2, 5, 11, 23)] (method "fmm")."""
    from skbalance._inference import fmm_spline

    x = np.array([0.3, 1.1, 1.7, 2.9, 3.3, 4.0, 4.4, 4.9])
    points = np.linspace(x[0], x[-1], 24)
    np.testing.assert_allclose(
        fmm_spline(x, np.sin(x), points)[[1, 4, 10, 22]],
        [0.490067725619198, 0.891207360061435, 0.740607990779028, -1.001754429517892],
        rtol=1e-13)
    # a cubic is reproduced exactly (the end conditions take its third derivative)
    np.testing.assert_allclose(fmm_spline(x, x**3 - 2 * x, points), points**3 - 2 * points,
                               rtol=1e-12)


def test_likelihood_interval_is_for_proportions_only():
    clus1 = skb.datasets.load_api("clus1")
    est = skb.BalancedFunctionalEstimator(baseline="empirical", statistic="quantile",
                                          quantiles=0.5, ci_method="likelihood")
    with pytest.raises(ValueError, match="interval of a proportion; a quantile's"):
        est.fit(clus1, clus1["api00"], sample_weight=clus1["pw"])


@pytest.mark.parametrize("statistic", ["mean", "total"])
def test_many_domains_with_supplied_replicates_equal_a_plain_loop(statistic):
    """40 domains, 30 supplied replicate columns, every replicate re-raked:
    each domain's replicate estimates by plain IPF on the rows (no cells)."""
    from tests._reference import plain_ipf_rows

    rng = np.random.default_rng(5)
    n, n_domains, n_reps = 800, 40, 30
    frame = pd.DataFrame({"a": rng.integers(0, 3, n), "b": rng.integers(0, 4, n),
                          "domain": rng.integers(0, n_domains, n),
                          "y": rng.normal(5, 2, n), "w": rng.uniform(1, 3, n)})
    frame.loc[rng.choice(n, 15, replace=False), "y"] = np.nan
    replicates = frame["w"].to_numpy()[:, None] * rng.uniform(0.2, 1.8, (n, n_reps))
    targets = {"a": {0: 0.2, 1: 0.3, 2: 0.5}, "b": {0: 0.1, 1: 0.2, 2: 0.3, 3: 0.4}}
    balancer = skb.MarginalBalancer(targets=targets, tol=1e-14, max_iter=10000)
    design = skb.SurveyDesign(replicates="bootstrap", replicate_weights=replicates,
                              scale=1 / n_reps)
    results = skb.BalancedFunctionalEstimator(
        balancer, design=design, domain="domain", statistic=statistic, na_rm=True).fit(
        frame[["a", "b", "domain"]], frame["y"], sample_weight=frame["w"]).results_
    codes = [frame["a"].to_numpy(), frame["b"].to_numpy()]
    shares = [list(targets["a"].values()), list(targets["b"].values())]
    y = frame["y"].to_numpy()
    present = ~np.isnan(y)

    def estimates(base):
        w = plain_ipf_rows(codes, base, shares, 400)
        out = []
        for d in range(n_domains):
            inside = (frame["domain"].to_numpy() == d) & present
            total = np.dot(w[inside], y[inside])
            out.append(total if statistic == "total" else total / w[inside].sum())
        return np.asarray(out)

    full = estimates(frame["w"].to_numpy())
    thetas = np.column_stack([estimates(replicates[:, r]) for r in range(n_reps)])
    # R's default (mse=FALSE): deviations from the replicates' mean
    se = np.sqrt(((thetas - thetas.mean(axis=1, keepdims=True)) ** 2).sum(axis=1) / n_reps)
    np.testing.assert_allclose(results.estimate, full, rtol=1e-10)
    np.testing.assert_allclose(results.std_error, se, rtol=1e-8)


@pytest.mark.parametrize("chunk", [7, 64, 1 << 14])
def test_replicate_totals_by_chunks_equal_a_plain_sum(chunk):
    """Every column's total under every re-raked replicate, a chunk of rows at
    a time (chunks that do not divide the rows, weights column- or row-major,
    and built replicates' weights made per chunk), against a plain double sum."""
    from skbalance._inference import _replicate_totals

    rng = np.random.default_rng(9)
    n, n_cells, n_reps = 250, 6, 5
    cell = rng.integers(0, n_cells, n)
    factors = rng.uniform(0.5, 2.0, (n_cells, n_reps))
    columns = [rng.normal(size=n), rng.normal(size=n)]
    weights = rng.uniform(1, 3, (n, n_reps))
    expected = [np.array([sum(u[i] * weights[i, r] * factors[cell[i], r] for i in range(n))
                          for r in range(n_reps)]) for u in columns]
    for layout in (np.asfortranarray(weights), np.ascontiguousarray(weights)):
        totals = _replicate_totals(cell, factors, columns + [columns[0]],
                                   lambda start, stop, w=layout: w[start:stop].T, chunk=chunk)
        for total, reference in zip(totals, expected + [expected[0]]):
            np.testing.assert_allclose(total, reference, rtol=1e-12)
    unit = rng.integers(0, 9, n)  # built replicates: d_i m[unit_i, r]
    multipliers, design_weights = rng.uniform(0, 2, (9, n_reps)), rng.uniform(1, 3, n)
    built = multipliers[unit] * design_weights[:, None]
    totals = _replicate_totals(
        cell, factors, columns,
        lambda start, stop: (multipliers[unit[start:stop]] * design_weights[start:stop, None]).T,
        chunk=chunk)
    for total, u in zip(totals, columns):
        np.testing.assert_allclose(total, [sum(u[i] * built[i, r] * factors[cell[i], r]
                                               for i in range(n)) for r in range(n_reps)],
                                   rtol=1e-12)
