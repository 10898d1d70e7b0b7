"""Design-based inference against R survey 4.1-1 (values stored with their R calls
in r_reference/survey_reference.json), and against independent computations
where R was not asked."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import skbalance as skb

HERE = Path(__file__).parent / "r_reference"
REF = {k: np.asarray(v["value"]) for k, v in
       json.loads((HERE / "survey_reference.json").read_text()).items()}
RTOL = 1e-6  # the bar; the values agree to ~1e-12


@pytest.fixture(scope="module")
def clus1():
    return skb.datasets.load_api("clus1")


@pytest.fixture(scope="module")
def strat():
    return skb.datasets.load_api("strat")


@pytest.fixture(scope="module")
def two_stage():
    return pd.read_csv(HERE / "api_two_stage.csv")


def _clus_balancer():
    targets = skb.datasets.api_population_targets(["stype", "sch.wide"])
    return skb.MarginalBalancer(targets=targets, tol=1e-13, max_iter=10000)


def _strat_balancer():
    targets = skb.datasets.api_population_targets(["sch.wide", "awards"])
    return skb.MarginalBalancer(targets=targets, tol=1e-13, max_iter=10000)


CLUSTER = skb.SurveyDesign(clusters="dnum", fpc="fpc")


def _fit(balancer, design, X, y, **params):
    est = skb.BalancedFunctionalEstimator(balancer, design=design, **params)
    weight = X["pw"] if "pw" in X else None
    return est.fit(X, y, sample_weight=weight).results_


def test_cluster_design_mean_se_deff_df_and_interval(clus1):
    result = _fit(_clus_balancer(), CLUSTER, clus1, clus1["api00"]).iloc[0]
    assert result.estimate == pytest.approx(REF["clus1.mean_api00.estimate"][0], rel=RTOL)
    assert result.std_error == pytest.approx(23.7036168879, rel=RTOL)  # the value
    assert result.std_error == pytest.approx(REF["clus1.mean_api00.se"][0], rel=RTOL)
    assert result.deff == pytest.approx(REF["clus1.mean_api00.deff"][0], rel=RTOL)
    assert result.df == REF["clus1.degf"][0] == 14
    np.testing.assert_allclose([result.ci_low, result.ci_high], REF["clus1.mean_api00.ci"],
                               rtol=RTOL)
    assert result.n == len(clus1)


def test_cluster_design_total_proportions_domain_ratio(clus1):
    bal = _clus_balancer()
    total = _fit(bal, CLUSTER, clus1, clus1["enroll"], statistic="total").iloc[0]
    assert total.estimate == pytest.approx(REF["clus1.total_enroll.estimate"][0], rel=RTOL)
    assert total.std_error == pytest.approx(REF["clus1.total_enroll.se"][0], rel=RTOL)
    assert total.deff == pytest.approx(REF["clus1.total_enroll.deff"][0], rel=RTOL)
    shares = _fit(bal, CLUSTER, clus1, clus1["awards"])
    assert list(shares.level) == ["No", "Yes"]
    assert list(shares.statistic) == ["proportion", "proportion"]
    np.testing.assert_allclose(shares.estimate, REF["clus1.prop_awards.estimate"], rtol=RTOL)
    np.testing.assert_allclose(shares.std_error, REF["clus1.prop_awards.se"], rtol=RTOL)
    np.testing.assert_allclose(shares.deff, REF["clus1.prop_awards.deff"], rtol=RTOL)
    domains = _fit(bal, CLUSTER, clus1, clus1["api00"], domain="comp.imp")
    assert list(domains.domain) == ["No", "Yes"]
    np.testing.assert_allclose(domains.estimate,
                               REF["clus1.domain_api00_by_compimp.estimate"], rtol=RTOL)
    np.testing.assert_allclose(domains.std_error, REF["clus1.domain_api00_by_compimp.se"],
                               rtol=RTOL)
    assert list(domains.n) == [int((clus1["comp.imp"] == v).sum()) for v in ("No", "Yes")]
    ratio = _fit(bal, CLUSTER, clus1, clus1["api00"], statistic="ratio",
                 denominator="api99").iloc[0]
    assert ratio.estimate == pytest.approx(REF["clus1.ratio_api00_api99.estimate"][0],
                                           rel=RTOL)
    assert ratio.std_error == pytest.approx(REF["clus1.ratio_api00_api99.se"][0], rel=RTOL)


def test_raked_margins_have_no_variance(clus1):
    # THEORY 6, step 2: the share of a raked margin is fixed by the targets
    shares = _fit(_clus_balancer(), CLUSTER, clus1, clus1["stype"])
    np.testing.assert_allclose(shares.std_error, 0, atol=1e-9)


def test_uncalibrated_and_iid_designs(clus1):
    empirical = skb.BalancedFunctionalEstimator(_clus_balancer(), design=CLUSTER,
                                                baseline="empirical")
    result = empirical.fit(clus1, clus1["api00"], sample_weight=clus1["pw"]).results_.iloc[0]
    assert result.estimate == pytest.approx(REF["clus1_uncalibrated.mean_api00.estimate"][0],
                                            rel=RTOL)
    assert result.std_error == pytest.approx(REF["clus1_uncalibrated.mean_api00.se"][0],
                                             rel=RTOL)
    assert result.deff == pytest.approx(REF["clus1_uncalibrated.mean_api00.deff"][0],
                                        rel=RTOL)
    total = skb.BalancedFunctionalEstimator(_clus_balancer(), design=CLUSTER,
                                            baseline="empirical", statistic="total")
    total.fit(clus1, clus1["enroll"], sample_weight=clus1["pw"])
    assert total.std_error_ == pytest.approx(REF["clus1_uncalibrated.total_enroll.se"][0],
                                             rel=RTOL)
    iid = skb.BalancedFunctionalEstimator(_clus_balancer())
    iid.fit(clus1, clus1["api00"], sample_weight=clus1["pw"])
    assert iid.std_error_ == pytest.approx(7.7787556087, rel=1e-9)  # the value
    assert iid.df_ == len(clus1) - 1


@pytest.mark.parametrize("key,y,params", [
    ("mean_api00", "api00", {}),
    ("total_enroll", "enroll", {"statistic": "total"}),
    ("prop_awards", "awards", {}),
    ("domain_api00_by_compimp", "api00", {"domain": "comp.imp"}),
    ("ratio_api00_api99", "api00", {"statistic": "ratio", "denominator": "api99"}),
])
def test_jk1_replicates_rerake_every_replicate(clus1, key, y, params):
    design = skb.SurveyDesign(clusters="dnum", fpc="fpc", replicates="jk1")
    result = _fit(_clus_balancer(), design, clus1, clus1[y], **params)
    np.testing.assert_allclose(result.std_error, REF[f"clus1_jk1.{key}.se"], rtol=RTOL)
    assert (result.df == REF["clus1_jk1.degf"][0]).all()
    if key == "mean_api00":
        assert result.std_error.iloc[0] == pytest.approx(26.8739804357, rel=RTOL)


def test_stratified_design_with_fpc_and_jkn(strat):
    design = skb.SurveyDesign(strata="stype", fpc="fpc")
    result = _fit(_strat_balancer(), design, strat, strat["api00"]).iloc[0]
    assert result.estimate == pytest.approx(REF["strat.mean_api00.estimate"][0], rel=RTOL)
    assert result.std_error == pytest.approx(REF["strat.mean_api00.se"][0], rel=RTOL)
    assert result.deff == pytest.approx(REF["strat.mean_api00.deff"][0], rel=RTOL)
    assert result.df == REF["strat.degf"][0] == 197
    total = _fit(_strat_balancer(), design, strat, strat["api00"], statistic="total")
    assert total.std_error.iloc[0] == pytest.approx(REF["strat.total_api00.se"][0], rel=RTOL)
    jkn = skb.SurveyDesign(strata="stype", fpc="fpc", replicates="jkn")
    result = _fit(_strat_balancer(), jkn, strat, strat["api00"]).iloc[0]
    assert result.std_error == pytest.approx(REF["strat_jkn.mean_api00.se"][0], rel=RTOL)


def test_two_stage_design_with_fpc_at_both_stages(two_stage):
    design = skb.SurveyDesign(clusters=["dnum", "snum"], fpc=["fpc1", "fpc2"])
    resolved = design.resolve(two_stage)  # weights from the fpc, as R does
    np.testing.assert_allclose(resolved.weights, two_stage["pw"], rtol=1e-12)
    raked = skb.BalancedFunctionalEstimator(_clus_balancer(), design=design)
    result = raked.fit(two_stage, two_stage["api00"]).results_.iloc[0]
    assert result.estimate == pytest.approx(REF["two_stage.mean_api00.estimate"][0], rel=RTOL)
    assert result.std_error == pytest.approx(REF["two_stage.mean_api00.se"][0], rel=RTOL)
    assert result.df == REF["two_stage.degf"][0]
    plain = skb.BalancedFunctionalEstimator(_clus_balancer(), design=design,
                                            baseline="empirical", statistic="total")
    assert plain.fit(two_stage, two_stage["meals"]).std_error_ == pytest.approx(
        REF["two_stage_uncalibrated.total_meals.se"][0], rel=RTOL)
    # the second stage adds variance: the one-stage (ultimate cluster) SE is smaller
    one_stage = skb.SurveyDesign(clusters="dnum", fpc="fpc1")
    smaller = skb.BalancedFunctionalEstimator(_clus_balancer(), design=one_stage,
                                              baseline="empirical")
    smaller.fit(two_stage, two_stage["api00"], sample_weight=two_stage["pw"])
    assert smaller.std_error_ < REF["two_stage_uncalibrated.mean_api00.se"][0]


@pytest.mark.parametrize("rule", ["remove", "certainty", "adjust", "average"])
def test_lonely_psu_rules(strat, rule):
    design = skb.SurveyDesign(strata="cname", lonely_psu=rule)
    plain = skb.BalancedFunctionalEstimator(_strat_balancer(), design=design,
                                            baseline="empirical")
    plain.fit(strat, strat["api00"], sample_weight=strat["pw"])
    assert plain.std_error_ == pytest.approx(REF[f"lonely_{rule}.mean_api00.se"][0], rel=RTOL)
    raked = _fit(_strat_balancer(), design, strat, strat["api00"]).iloc[0]
    assert raked.std_error == pytest.approx(REF[f"lonely_{rule}_raked.mean_api00.se"][0],
                                            rel=RTOL)


def test_lonely_psu_fails_by_default(strat):
    design = skb.SurveyDesign(strata="cname")
    with pytest.raises(ValueError, match="only one sampling unit"):
        _fit(_strat_balancer(), design, strat, strat["api00"])


def test_bootstrap_by_its_distribution(strat):
    # Rao-Wu (R's "subbootstrap"): for a linear statistic without fpc its
    # variance is unbiased for the linearized one; over 20 seeds of 400
    # replicates the mean variance sits within a few percent of it.
    plain = skb.SurveyDesign(strata="stype")
    linear = skb.BalancedFunctionalEstimator(_strat_balancer(), baseline="empirical",
                                             design=plain, statistic="total")
    reference = linear.fit(strat, strat["api00"], sample_weight=strat["pw"]).variance_
    variances = []
    for seed in range(20):
        boot = skb.SurveyDesign(strata="stype", replicates="subbootstrap", n_replicates=400,
                                random_state=seed)
        est = skb.BalancedFunctionalEstimator(_strat_balancer(), baseline="empirical",
                                              design=boot, statistic="total")
        variances.append(est.fit(strat, strat["api00"], sample_weight=strat["pw"]).variance_)
    # relative sd of one bootstrap variance ~ sqrt(2 / 400) = 7%; of the mean, 1.6%
    assert np.mean(variances) == pytest.approx(reference, rel=0.06)
    assert np.std(variances) / reference == pytest.approx(np.sqrt(2 / 399), rel=0.5)
    # re-raked: R's subbootstrap SE with 4000 replicates (itself +-1.1%)
    boot = skb.SurveyDesign(strata="stype", replicates="subbootstrap", n_replicates=4000,
                            random_state=0)
    se = _fit(_strat_balancer(), boot, strat, strat["api00"]).std_error.iloc[0]
    assert se == pytest.approx(REF["strat_subbootstrap4000.mean_api00.se"][0], rel=0.05)


def _paired_design_data():
    """Ten strata of two clusters of three rows."""
    rng = np.random.default_rng(5)
    n = 60
    frame = pd.DataFrame({
        "stratum": np.repeat(np.arange(10), 6),
        "psu": np.repeat(np.arange(20), 3),
        "g": rng.choice(["a", "b", "c"], size=n),
        "y": rng.normal(size=n) + np.repeat(rng.normal(size=20), 3),
    })
    return frame, rng.uniform(1, 3, size=n)


@pytest.mark.parametrize("kind,rho", [("brr", 0.0), ("fay", 0.3)])
def test_brr_and_fay_equal_linearization_for_totals(kind, rho):
    # With full orthogonal balance, BRR (and Fay) variance of a weighted total
    # equals the with-replacement linearization exactly.
    frame, weight = _paired_design_data()
    linear = skb.BalancedFunctionalEstimator(baseline="empirical", statistic="total",
                                             design=skb.SurveyDesign(strata="stratum",
                                                                     clusters="psu"))
    expected = linear.fit(frame, frame["y"], sample_weight=weight).variance_
    design = skb.SurveyDesign(strata="stratum", clusters="psu", replicates=kind, fay_rho=rho)
    est = skb.BalancedFunctionalEstimator(baseline="empirical", statistic="total", design=design)
    assert est.fit(frame, frame["y"], sample_weight=weight).variance_ == pytest.approx(
        expected, rel=1e-10)
    multipliers = design.resolve(frame, weight).replicate_multipliers()[0]
    assert multipliers.shape[1] == 12  # R: hadamard(10) is a Paley matrix of order 12


def test_supplied_replicates_equal_built_ones(clus1):
    design = skb.SurveyDesign(clusters="dnum", fpc="fpc", replicates="jk1")
    built = _fit(_clus_balancer(), design, clus1, clus1["api00"]).iloc[0]
    resolved = design.resolve(clus1, clus1["pw"].to_numpy())
    multipliers, scale, rscales, _ = resolved.replicate_multipliers()
    columns = clus1["pw"].to_numpy()[:, None] * multipliers[resolved.units[0]]
    names = [f"rep{r}" for r in range(columns.shape[1])]
    frame = pd.concat([clus1, pd.DataFrame(columns, columns=names)], axis=1)
    supplied = skb.SurveyDesign(replicates="other", replicate_weights=names, scale=scale,
                                rscales=rscales)
    result = _fit(_clus_balancer(), supplied, frame, frame["api00"]).iloc[0]
    assert result.std_error == pytest.approx(built.std_error, rel=1e-10)
    assert result.df == 14  # rank of 15 jackknife columns, minus one


def test_successive_difference_replicates_by_hand():
    # ACS-style: 80 columns, variance 4/80 sum (theta_r - theta)^2 (mse=True)
    rng = np.random.default_rng(6)
    n, R = 300, 80
    frame = pd.DataFrame({"g": rng.choice(["a", "b"], size=n), "y": rng.normal(size=n)})
    base = rng.uniform(1, 2, size=n)
    factors = rng.choice([0.29289, 1.0, 1.70711], size=(n, R))
    replicate = base[:, None] * factors
    design = skb.SurveyDesign(weights=base, replicates="successive-difference",
                              replicate_weights=replicate)
    est = skb.BalancedFunctionalEstimator(baseline="empirical", design=design)
    est.fit(frame, frame["y"])
    theta = np.sum(base * frame["y"]) / base.sum()
    thetas = replicate.T @ frame["y"].to_numpy() / replicate.sum(axis=0)
    assert est.estimate_ == pytest.approx(theta, rel=1e-12)
    assert est.variance_ == pytest.approx(4 / R * np.sum((thetas - theta) ** 2), rel=1e-10)
    # raked: every replicate re-raked to the same margins, by a plain loop
    targets = {"g": {"a": 0.3, "b": 0.7}}
    raked = skb.BalancedFunctionalEstimator(skb.MarginalBalancer(targets=targets),
                                            design=design).fit(frame, frame["y"])
    y, is_a = frame["y"].to_numpy(), (frame["g"] == "a").to_numpy()

    def raked_mean(w):
        share = w[is_a].sum() / w.sum()
        w = np.where(is_a, w * 0.3 / share, w * 0.7 / (1 - share))
        return np.sum(w * y) / w.sum()

    thetas = np.array([raked_mean(replicate[:, r]) for r in range(R)])
    assert raked.estimate_ == pytest.approx(raked_mean(base), rel=1e-12)
    assert raked.variance_ == pytest.approx(4 / R * np.sum((thetas - raked.estimate_) ** 2),
                                            rel=1e-9)


def test_design_validation_names_the_column(clus1, strat):
    spans = strat.assign(cluster=np.arange(len(strat)) % 7)
    with pytest.raises(ValueError, match="Cluster .* of 'cluster' is in more than one "
                                         "stratum of 'stype'; pass nest=True"):
        skb.SurveyDesign(strata="stype", clusters="cluster").resolve(spans, spans["pw"])
    skb.SurveyDesign(strata="stype", clusters="cluster", nest=True).resolve(spans, spans["pw"])
    small = clus1.assign(fpc=10)
    with pytest.raises(ValueError, match="fpc 'fpc' is smaller than the sample: 10 units"):
        CLUSTER.resolve(small, small["pw"])
    varying = strat.assign(fpc=strat["fpc"] + np.arange(len(strat)) % 2)
    with pytest.raises(ValueError, match="fpc 'fpc' varies within stratum 'E' of 'stype'"):
        skb.SurveyDesign(strata="stype", fpc="fpc").resolve(varying, varying["pw"])
    bad = clus1.assign(rep0=clus1["pw"], rep1=-clus1["pw"])
    with pytest.raises(ValueError, match="Replicate weight column 'rep1' has negative"):
        skb.SurveyDesign(replicates="jk1", replicate_weights=["rep0", "rep1"]).resolve(
            bad, bad["pw"])
    nan = clus1.assign(rep0=clus1["pw"], rep1=np.where(clus1.index == 3, np.nan, 1.0))
    with pytest.raises(ValueError, match="'rep1' has negative or non-finite"):
        skb.SurveyDesign(replicates="jk1", replicate_weights=["rep0", "rep1"]).resolve(
            nan, nan["pw"])
    with pytest.raises(ValueError, match="names column 'nope'"):
        skb.SurveyDesign(clusters="nope").resolve(clus1)
    with pytest.raises(ValueError, match="without their kind"):
        skb.SurveyDesign(replicate_weights=["pw", "pw"]).resolve(clus1)
    with pytest.raises(ValueError, match="cannot be built from the design"):
        skb.SurveyDesign(replicates="successive-difference").resolve(clus1)
    with pytest.raises(ValueError, match="two units per stratum"):
        skb.SurveyDesign(strata="stype", replicates="brr").resolve(
            strat, strat["pw"]).replicate_multipliers()
    with pytest.raises(ValueError, match="missing values"):
        skb.SurveyDesign(clusters="enroll").resolve(strat.assign(enroll=np.nan))


def test_domain_and_outcome_inputs(clus1):
    # several outcomes at once equal separate fits; arrays name outcomes y0, y1
    bal = _clus_balancer()
    both = _fit(bal, CLUSTER, clus1, clus1[["api00", "api99"]])
    one = _fit(bal, CLUSTER, clus1, clus1["api99"])
    assert list(both.outcome) == ["api00", "api99"]
    assert both.std_error.iloc[1] == pytest.approx(one.std_error.iloc[0], rel=1e-12)
    arrays = _fit(bal, CLUSTER, clus1, clus1[["api00", "api99"]].to_numpy())
    assert list(arrays.outcome) == ["y0", "y1"]
    by_array = _fit(bal, CLUSTER, clus1, clus1["api00"], domain=clus1["comp.imp"].to_numpy())
    by_name = _fit(bal, CLUSTER, clus1, clus1["api00"], domain="comp.imp")
    np.testing.assert_allclose(by_array.std_error, by_name.std_error, rtol=1e-12)
    with pytest.raises(ValueError, match="needs a denominator"):
        _fit(bal, CLUSTER, clus1, clus1["api00"], statistic="ratio")
    with pytest.raises(ValueError, match="categorical: a ratio needs numbers"):
        _fit(bal, CLUSTER, clus1, clus1["awards"], statistic="ratio", denominator="api99")
    missing = clus1.assign(dom=np.where(clus1.index == 0, None, clus1["comp.imp"]))
    with pytest.raises(ValueError, match="Domain column 'dom' has 1 missing value"):
        _fit(bal, CLUSTER, missing, missing["api00"], domain="dom")
    # in a domain of two columns too: a tuple holding NaN is no level
    with pytest.raises(ValueError, match=r"Domain column 'dom' has 1 missing value\(s\) in "
                                         r"183 rows"):
        _fit(bal, CLUSTER, missing, missing["api00"], domain=["stype", "dom"])
    with pytest.raises(ValueError, match="The domain column has 1 missing"):  # values: no name
        _fit(bal, CLUSTER, missing, missing["api00"], domain=missing["dom"].to_numpy())


def test_domain_mean_equals_ratio_of_totals(clus1):
    # a domain mean is the ratio of the domain total of y to the domain size
    bal = _clus_balancer()
    inside = (clus1["comp.imp"] == "Yes").to_numpy() * 1.0
    domain = _fit(bal, CLUSTER, clus1, clus1["api00"], domain="comp.imp").iloc[1]
    ratio = _fit(bal, CLUSTER, clus1, clus1["api00"] * inside, statistic="ratio",
                 denominator=inside).iloc[0]
    assert domain.estimate == pytest.approx(ratio.estimate, rel=1e-12)
    assert domain.std_error == pytest.approx(ratio.std_error, rel=1e-10)


def test_exported_replicate_weights_reproduce_r(clus1):
    # R: weights(jk, "analysis"); the SE recomputed by hand from them is R's
    design = skb.SurveyDesign(clusters="dnum", fpc="fpc", replicates="jk1")
    reps = skb.compute_replicate_weights(clus1, _clus_balancer(), design,
                                         sample_weight=clus1["pw"])
    assert reps.weights.shape == (len(clus1), 15) and reps.kind == "jk1"
    # every replicate meets the margins
    for r in range(15):
        w = reps.weights[:, r]
        assert w.sum() == pytest.approx(6194, rel=1e-10)
        shares = pd.Series(w).groupby(clus1["stype"].to_numpy()).sum()
        np.testing.assert_allclose(shares.loc[["E", "H", "M"]], [4421, 755, 1018], rtol=1e-9)
    y = clus1["api00"].to_numpy()
    thetas = reps.weights.T @ y / reps.weights.sum(axis=0)
    variance = reps.scale * np.sum(reps.rscales * (thetas - thetas.mean()) ** 2)
    assert np.sqrt(variance) == pytest.approx(REF["clus1_jk1.mean_api00.se"][0], rel=RTOL)
    with pytest.raises(ValueError, match="no replicates"):
        skb.compute_replicate_weights(clus1, _clus_balancer(), CLUSTER,
                                      sample_weight=clus1["pw"])


def test_replicate_that_loses_a_level_is_named(clus1):
    # apiclus1 has its sch.wide == "No" schools in a few districts; make one
    # district hold all of them: its jackknife replicate has none left
    only = clus1.assign(**{"sch.wide": np.where(clus1["dnum"] == clus1["dnum"].iloc[0],
                                                "No", "Yes")})
    design = skb.SurveyDesign(clusters="dnum", fpc="fpc", replicates="jk1")
    with pytest.raises(ValueError, match=r"Replicate \d+ has no weight on level 'No' of "
                                         r"'sch.wide'.*1 replicate\(s\) are affected"):
        _fit(_clus_balancer(), design, only, only["api00"])


def test_replicates_that_stop_short_of_tol_warn(clus1):
    from sklearn.exceptions import ConvergenceWarning

    targets = skb.datasets.api_population_targets(["stype", "sch.wide"])
    design = skb.SurveyDesign(clusters="dnum", fpc="fpc", replicates="jk1")
    short = skb.MarginalBalancer(targets=targets, tol=1e-12, max_iter=3)
    with pytest.warns(ConvergenceWarning, match=r"replicate\(s\) did not reach tol=1e-12"):
        _fit(short, design, clus1, clus1["api00"])


# ---- Satterthwaite degrees of freedom, against plain computations ------------------------

def _satterthwaite(parts, cap):
    parts = np.asarray(parts, dtype=float)
    return min(parts.sum() ** 2 / (parts**2).sum(), cap)


def test_satterthwaite_df_of_a_cluster_mean_by_hand(clus1):
    """Empirical (no balancing) mean of a one-stage cluster sample with fpc:
    the parts are (1 - f) n / (n - 1) (e_j - mean e)^2, e_j the cluster totals
    of w (y - ybar) / W."""
    design = skb.SurveyDesign(clusters="dnum", fpc="fpc")
    bal = skb.MarginalBalancer(targets={"stype": {"E": 1, "H": 1, "M": 1}})
    est = skb.BalancedFunctionalEstimator(bal, baseline="empirical", design=design,
                                          df="satterthwaite")
    est.fit(clus1, clus1["api00"], sample_weight=clus1["pw"])
    w, y = clus1["pw"].to_numpy(), clus1["api00"].to_numpy()
    z = w * (y - w @ y / w.sum()) / w.sum()
    totals = pd.Series(z).groupby(clus1["dnum"].to_numpy()).sum().to_numpy()
    n = totals.shape[0]
    f = n / clus1["fpc"].iloc[0]
    parts = (1 - f) * n / (n - 1) * (totals - totals.mean()) ** 2
    assert est.std_error_ == pytest.approx(np.sqrt(parts.sum()), rel=1e-12)
    assert est.df_ == pytest.approx(_satterthwaite(parts, n - 1), rel=1e-12)
    assert est.df_ < 14
    low, high = est.confidence_interval()
    half = stats.t.ppf(0.975, est.df_) * est.std_error_
    assert (low, high) == pytest.approx((est.estimate_ - half, est.estimate_ + half), rel=1e-14)


def test_satterthwaite_df_after_raking_and_for_replicates(clus1):
    """Raked: the parts are those of the cluster totals of the calibration
    residual (a least-squares fit on the margins' indicators); JK1: the
    replicates' squared deviations."""
    bal = _clus_balancer()
    design = skb.SurveyDesign(clusters="dnum", fpc="fpc")
    est = skb.BalancedFunctionalEstimator(bal, design=design, df="satterthwaite")
    est.fit(clus1, clus1["api00"], sample_weight=clus1["pw"])
    d, w, y = clus1["pw"].to_numpy(), est.weights_, clus1["api00"].to_numpy()
    X = pd.get_dummies(clus1[["stype", "sch.wide"]]).astype(float).to_numpy()
    z = (y - est.estimate_) / w.sum()
    coef, *_ = np.linalg.lstsq(X * np.sqrt(d)[:, None], z * np.sqrt(d), rcond=None)
    totals = pd.Series(w * (z - X @ coef)).groupby(clus1["dnum"].to_numpy()).sum().to_numpy()
    n = totals.shape[0]
    parts = (1 - n / clus1["fpc"].iloc[0]) * n / (n - 1) * (totals - totals.mean()) ** 2
    assert est.std_error_ == pytest.approx(np.sqrt(parts.sum()), rel=1e-8)
    assert est.df_ == pytest.approx(_satterthwaite(parts, n - 1), rel=1e-6)

    jk1 = skb.SurveyDesign(clusters="dnum", fpc="fpc", replicates="jk1")
    est = skb.BalancedFunctionalEstimator(bal, design=jk1, df="satterthwaite")
    est.fit(clus1, clus1["api00"], sample_weight=clus1["pw"])
    reps = skb.compute_replicate_weights(clus1, bal, jk1, sample_weight=clus1["pw"])
    thetas = y @ reps.weights / reps.weights.sum(axis=0)
    assert est.df_ == pytest.approx(_satterthwaite((thetas - thetas.mean()) ** 2, n - 1),
                                    rel=1e-10)


def test_satterthwaite_df_per_statistic_and_its_limits(clus1):
    bal = _clus_balancer()
    design = skb.SurveyDesign(clusters="dnum", fpc="fpc")
    y = clus1[["api00", "stype"]]
    est = skb.BalancedFunctionalEstimator(bal, design=design, df="satterthwaite")
    est.fit(clus1, y, sample_weight=clus1["pw"])
    table = est.results_.set_index(["outcome", "level"])
    assert table.loc[("stype", "E"), "std_error"] < 1e-9  # raked: no variance to speak of
    assert table.loc[("stype", "E"), "df"] <= 14
    assert 1 <= table.loc[("api00", np.nan), "df"] < 14
    np.testing.assert_array_equal(est.df_, est.results_["df"].to_numpy())
    low, _ = est.confidence_interval()
    quantiles = stats.t.ppf(0.975, est.results_["df"].to_numpy())
    np.testing.assert_allclose(low, est.estimate_ - quantiles * est.std_error_, rtol=1e-14)
    # without a design, rows are the parts; many even rows keep nearly all the df
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"g": rng.choice(["a", "b"], 400)})
    iid = skb.BalancedFunctionalEstimator(df="satterthwaite").fit(X, rng.normal(size=400))
    assert 100 < iid.df_ < 399


def _jackknife_by_definition(unit_stratum, keep, kind, lonely="fail"):
    """The (units x replicates) multipliers of JK1 / JKn, built column by column."""
    n = unit_stratum.shape[0]
    if kind == "jk1":
        return np.column_stack([np.where(np.arange(n) == r, 0.0, n / (n - 1))
                                for r in range(n)])
    strata = np.unique(unit_stratum)
    columns = []
    for h in strata:
        members = np.flatnonzero(unit_stratum == h)
        if members.shape[0] == 1:
            if keep[members[0]] == 0 or lonely != "adjust":
                continue
            column = np.full(n, len(strata) / (len(strata) - 1))
            column[members] = 0.0
            columns.append(column)
            continue
        for j in members:
            column = np.ones(n)
            column[members] = members.shape[0] / (members.shape[0] - 1)
            column[j] = 0.0
            columns.append(column)
    return np.column_stack(columns)


@pytest.mark.parametrize("kind, lonely", [("jk1", "fail"), ("jkn", "fail"),
                                          ("jkn", "adjust")])
def test_delete_one_multipliers_equal_the_matrix_by_definition(kind, lonely):
    # strata of 3, 2 and 1 units (the last taken whole for "fail", lonely for "adjust")
    rng = np.random.default_rng(5)
    X = pd.DataFrame({"st": ["a"] * 6 + ["b"] * 4 + ["c"] * 2,
                      "psu": [1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6],
                      "fpc": [9] * 6 + [7] * 4 + ([1] * 2 if lonely == "fail" else [5] * 2),
                      "y": rng.normal(size=12)})
    design = (skb.SurveyDesign(clusters="psu", fpc=None, replicates="jk1") if kind == "jk1"
              else skb.SurveyDesign(strata="st", clusters="psu", fpc="fpc", replicates="jkn",
                                    lonely_psu=lonely))
    resolved = design.resolve(X)
    multipliers, _, _, _ = resolved.replicate_multipliers()
    stage = resolved.stages[0]
    expected = _jackknife_by_definition(stage.unit_stratum, stage.keep, kind, lonely)
    units = np.arange(resolved.n_units)
    np.testing.assert_array_equal(multipliers[units], expected)
    table = rng.uniform(size=(4, resolved.n_units))  # any (cells x units) table
    from skbalance._design import multiplied

    np.testing.assert_allclose(multiplied(table, multipliers), table @ expected, rtol=1e-14)


def test_jackknife_memory_grows_with_units_not_their_square():
    # an unclustered sample of 20,000 rows: 20,000 JK1 replicates; the multiplier matrix
    # alone would be 3.2 GB
    import tracemalloc

    rng = np.random.default_rng(0)
    n = 20_000
    X = pd.DataFrame({"g": rng.choice(["a", "b"], size=n), "h": rng.choice(["u", "v"], size=n)})
    y = rng.normal(size=n)
    balancer = skb.MarginalBalancer(targets={"g": {"a": 0.4, "b": 0.6},
                                             "h": {"u": 0.5, "v": 0.5}}, tol=1e-10)
    design = skb.SurveyDesign(replicates="jk1")
    tracemalloc.start()
    est = skb.BalancedFunctionalEstimator(balancer, design=design).fit(X, y)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 300e6, peak
    # JK1 of the raked mean equals the linearized SE closely at this size
    linear = skb.BalancedFunctionalEstimator(balancer).fit(X, y)
    assert est.std_error_ == pytest.approx(linear.std_error_, rel=1e-3)


def test_rank_of_supplied_replicates_from_a_sample_of_rows_equals_the_full_gram():
    """The sample's shortcut only ever proves full rank; anything it cannot
    prove falls back to the Gram of every row (a plain eigenvalue count)."""
    from skbalance._design import _numerical_rank

    def full(weights):
        eigenvalues = np.linalg.eigvalsh(weights.T @ weights)
        return int(np.sum(eigenvalues > 1e-10 * eigenvalues.max()))

    rng = np.random.default_rng(3)
    weights = np.asfortranarray(rng.uniform(1, 2, (20_000, 12)))
    duplicated = weights.copy(order="F")
    duplicated[:, 5] = duplicated[:, 3]
    hidden = weights.copy(order="F")  # differs from column 2 on rows the sample skips
    hidden[:, 7] = hidden[:, 2]
    hidden[1:20, 7] += 1.0
    assert not np.isin(np.arange(1, 20), np.linspace(0, 19_999, 64 * 12).astype(int)).any()
    c_order = np.ascontiguousarray(weights)
    for case, expected in ((weights, 12), (duplicated, 11), (hidden, 12), (c_order, 12)):
        assert _numerical_rank(case) == full(case) == expected


@pytest.mark.parametrize("layout", ["F", "C", "strided"])
def test_replicate_column_summaries_in_blocks_equal_whole_column_reductions(layout):
    """Smallest, largest and sum of squares read a block at a time: a bad value
    in a late block is found, in every layout the weights may come in."""
    from skbalance._design import _column_summaries

    rng = np.random.default_rng(5)
    weights = rng.uniform(0.5, 3.0, (70_001, 7))
    weights[69_000, 3] = np.nan  # in the second block of 65,536 rows
    weights[65_537, 5] = -1.0
    weights[66_000, 6] = np.inf
    if layout == "F":
        weights = np.asfortranarray(weights)
    elif layout == "strided":
        weights = np.asfortranarray(np.repeat(weights, 2, axis=1))[:, ::2]
    assert weights.flags.f_contiguous == (layout == "F")
    smallest, largest, squares = _column_summaries(weights, block=1 << 16)
    for j in range(7):
        column = weights[:, j]
        assert smallest[j] == pytest.approx(column.min(), nan_ok=True)
        assert largest[j] == pytest.approx(column.max(), nan_ok=True)
        assert squares[j] == pytest.approx(sum(v * v for v in column.tolist()), rel=1e-12,
                                           nan_ok=True)
    assert np.isnan(smallest[3]) and smallest[5] == -1.0 and largest[6] == np.inf


def test_supplied_replicates_rank_from_the_sums_of_squares_read_with_them():
    """The rank takes the sum of squares from the one pass that checked the
    weights, and equals a plain eigenvalue count on the Gram of every row."""
    rng = np.random.default_rng(8)
    n = 20_000
    frame = pd.DataFrame({f"r{j}": rng.uniform(1, 2, n) for j in range(6)})
    frame["r5"] = frame["r4"]  # one duplicated replicate: rank 5
    design = skb.SurveyDesign(replicates="other", scale=1.0,
                              replicate_weights=list(frame.columns))
    resolved = design.resolve(frame, np.ones(n))
    assert resolved.supplied_squares == pytest.approx(float((frame ** 2).to_numpy().sum()),
                                                      rel=1e-12)
    eigenvalues = np.linalg.eigvalsh(frame.to_numpy().T @ frame.to_numpy())
    assert resolved.degrees_of_freedom == int(
        np.sum(eigenvalues > 1e-10 * eigenvalues.max())) - 1 == 4
