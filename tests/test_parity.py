"""R parity where skbalance used to differ (issue 22): BRR and Fay with R's
Hadamard matrices and strata in sorted label order, and the degrees of freedom
of built replicates. R's numbers are stored with their calls in
r_reference/parity_reference.json (made by parity_reference.R)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import skbalance as skb
from skbalance._hadamard import hadamard

HERE = Path(__file__).parent / "r_reference"
REF = {k: np.asarray(v["value"]) for k, v in
       json.loads((HERE / "parity_reference.json").read_text()).items()}
RTOL = 1e-9


@pytest.fixture(scope="module")
def paired():
    return pd.read_csv(HERE / "api_paired.csv")


def _first_counties(paired, n):
    counties = paired["cname"].unique()[:n]  # in the order of the file, not sorted
    return paired[paired["cname"].isin(counties)].reset_index(drop=True)


def _county_targets(sample):
    population = skb.datasets.load_api("pop")
    population = population[population["cname"].isin(sample["cname"].unique())]
    return {c: population[c].value_counts().sort_index() for c in ["stype", "sch.wide"]}


def _paired_design(kind, rho):
    return skb.SurveyDesign(clusters="dnum", strata="cname", nest=True, replicates=kind,
                            fay_rho=rho if kind == "fay" else 0.5)


def _estimate(sample, design, balancer=None, **params):
    if balancer is None:
        est = skb.BalancedFunctionalEstimator(baseline="empirical", design=design, **params)
    else:
        est = skb.BalancedFunctionalEstimator(balancer, design=design, **params)
    return est.fit(sample, sample["api00"], sample_weight=sample["pw"]).results_.iloc[0]


@pytest.mark.parametrize("n_strata", [10, 27])
@pytest.mark.parametrize("kind,rho", [("brr", 0.0), ("fay", 0.3)])
def test_brr_and_fay_equal_r(paired, n_strata, kind, rho):
    sample = _first_counties(paired, n_strata)
    design = _paired_design(kind, rho)
    name = f"paired{n_strata}.{kind}"
    resolved = design.resolve(sample, sample["pw"])
    assert resolved.replicate_multipliers()[0].shape[1] == REF[f"{name}.n_replicates"][0]
    assert resolved.degrees_of_freedom == REF[f"{name}.degf"][0]
    mean = _estimate(sample, design)
    assert mean.estimate == pytest.approx(REF[f"{name}.mean_api00.estimate"][0], rel=RTOL)
    assert mean.std_error == pytest.approx(REF[f"{name}.mean_api00.se"][0], rel=RTOL)
    assert mean.df == REF[f"{name}.degf"][0]
    ratio = _estimate(sample, design, statistic="ratio", denominator="api99")
    assert ratio.std_error == pytest.approx(REF[f"{name}.ratio_api00_api99.se"][0], rel=RTOL)
    if kind == "fay":
        balancer = skb.MarginalBalancer(targets=_county_targets(sample), tol=1e-13,
                                        max_iter=10000)
        raked = _estimate(sample, design, balancer)
        assert raked.estimate == pytest.approx(REF[f"{name}_raked.mean_api00.estimate"][0],
                                               rel=RTOL)
        assert raked.std_error == pytest.approx(REF[f"{name}_raked.mean_api00.se"][0],
                                                rel=1e-8)


@pytest.mark.filterwarnings("ignore:.*replicate.*did not reach:UserWarning")
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("kind", ["brr", "fay", "subbootstrap", "canty-davison"])
def test_built_replicates_do_not_depend_on_row_order(paired, kind):
    sample = _first_counties(paired, 10)
    balancer = skb.MarginalBalancer(targets=_county_targets(sample), tol=1e-13,
                                    max_iter=10000)
    design = skb.SurveyDesign(clusters="dnum", strata="cname", nest=True, replicates=kind,
                              fay_rho=0.3, n_replicates=30, random_state=3)
    ses = []
    for seed in range(4):
        shuffled = sample.sample(frac=1.0, random_state=seed).reset_index(drop=True)
        use = balancer if kind != "brr" else None  # a BRR half-sample can lose a level
        ses.append(_estimate(shuffled, design, use).std_error)
    np.testing.assert_allclose(ses, ses[0], rtol=1e-10)


def test_jkn_adjust_degrees_of_freedom_are_the_rank_minus_one(paired):
    sample = _first_counties(paired, 10)
    first = sample["cname"].iloc[0]
    larger = sample.loc[sample["cname"] == first, "dnum"].max()
    lonely = sample[~((sample["cname"] == first) & (sample["dnum"] == larger))]
    design = skb.SurveyDesign(clusters="dnum", strata="cname", nest=True,
                              lonely_psu="adjust", replicates="jkn")
    resolved = design.resolve(lonely, lonely["pw"])
    assert resolved.replicate_multipliers()[0].shape[1] == REF[
        "lonely_adjust_jkn.n_replicates"][0]
    assert resolved.degrees_of_freedom == REF["lonely_adjust_jkn.degf"][0] == 10
    mean = _estimate(lonely, design)
    assert mean.std_error == pytest.approx(REF["lonely_adjust_jkn.mean_api00.se"][0],
                                           rel=RTOL)
    assert mean.df == 10
    linearized = skb.SurveyDesign(clusters="dnum", strata="cname", nest=True,
                                  lonely_psu="adjust")
    assert linearized.resolve(lonely, lonely["pw"]).degrees_of_freedom == REF[
        "lonely_adjust.degf"][0] == 9


def test_bootstrap_degrees_of_freedom_are_the_rank_minus_one():
    strat = skb.datasets.load_api("strat")
    design = skb.SurveyDesign(strata="stype", fpc="fpc", replicates="subbootstrap",
                              n_replicates=50, random_state=0)
    # R: 49 (50 replicates of 200 units have rank 50); PSUs - strata would be 197
    with pytest.warns(UserWarning, match="fpc is not used by 'subbootstrap'"):
        df = design.resolve(strat, strat["pw"]).degrees_of_freedom
    assert df == REF["strat_subbootstrap50.degf"][0] == 49


@pytest.mark.parametrize("kind,build", [
    ("jk1", lambda: skb.SurveyDesign(clusters="dnum", replicates="jk1")),
    ("jkn", lambda: skb.SurveyDesign(clusters="dnum", strata="cname", nest=True,
                                     replicates="jkn")),
    ("jkn-adjust", lambda: skb.SurveyDesign(clusters="dnum", strata="cname", nest=True,
                                            replicates="jkn", lonely_psu="adjust")),
])
def test_delete_one_rank_equals_the_dense_rank(paired, kind, build):
    sample = _first_counties(paired, 6)
    if kind == "jkn-adjust":  # two lonely strata
        for county in sample["cname"].unique()[:2]:
            larger = sample.loc[sample["cname"] == county, "dnum"].max()
            sample = sample[~((sample["cname"] == county) & (sample["dnum"] == larger))]
    multipliers, _, rscales, _ = build().resolve(sample, sample["pw"]).replicate_multipliers()
    units = np.arange(multipliers.shape[0])
    dense = multipliers[units][:, rscales > 0]
    assert multipliers.rank(rscales > 0) == np.linalg.matrix_rank(dense)


def test_hadamard_matrices_are_hadamard_and_as_small_as_r_makes_them():
    # R survey 4.1-1: ncol(hadamard(n)) for these n
    r_sizes = {1: 4, 3: 4, 4: 8, 8: 12, 10: 12, 16: 20, 24: 28, 27: 28, 35: 36, 40: 44,
               59: 60, 63: 64, 64: 68, 70: 72, 90: 96, 100: 104, 130: 132, 200: 212}
    for n, size in r_sizes.items():
        matrix = 2 * hadamard(n).astype(np.int64) - 1
        assert matrix.shape == (size, size)
        np.testing.assert_array_equal(matrix @ matrix.T, size * np.eye(size))
        assert (matrix[0] == 1).all()


def _high_fraction_sample():
    """A stratified sample taking 90% of every stratum of a made-up population."""
    rng = np.random.default_rng(5)
    sizes = {"a": 40, "b": 30, "c": 50}
    parts = []
    for stratum, size in sizes.items():
        population = rng.gamma(2.0, 10.0, size=size) + {"a": 0, "b": 20, "c": 40}[stratum]
        taken = rng.choice(size, size=int(0.9 * size), replace=False)
        parts.append(pd.DataFrame({"stratum": stratum, "y": population[taken],
                                   "N": size, "w": size / len(taken)}))
    return pd.concat(parts, ignore_index=True)


def test_canty_davison_uses_the_fpc_and_rao_wu_says_it_does_not():
    sample = _high_fraction_sample()
    linear = skb.SurveyDesign(strata="stratum", fpc="N")
    expected = _estimate_y(sample, linear)  # the fpc'd variance, R-checked elsewhere
    cd = skb.SurveyDesign(strata="stratum", fpc="N", replicates="canty-davison",
                          n_replicates=4000, random_state=1)
    # Monte Carlo: 4000 replicates give the SE to about 1% of itself
    assert _estimate_y(sample, cd) == pytest.approx(expected, rel=0.05)
    rao_wu = skb.SurveyDesign(strata="stratum", fpc="N", replicates="subbootstrap",
                              n_replicates=4000, random_state=1)
    with pytest.warns(UserWarning, match="fpc is not used"):
        without_fpc = _estimate_y(sample, rao_wu)
    assert without_fpc / expected == pytest.approx(1 / np.sqrt(0.1), rel=0.05)  # 3.2x


def test_canty_davison_without_fpc_is_the_with_replacement_bootstrap():
    sample = _high_fraction_sample()
    linear = skb.SurveyDesign(strata="stratum")
    cd = skb.SurveyDesign(strata="stratum", replicates="canty-davison", n_replicates=4000,
                          random_state=2)
    assert _estimate_y(sample, cd) == pytest.approx(_estimate_y(sample, linear), rel=0.05)


def _estimate_y(sample, design):
    est = skb.BalancedFunctionalEstimator(baseline="empirical", statistic="total",
                                          design=design)
    return est.fit(sample, sample["y"], sample_weight=sample["w"]).std_error_


def test_warnings_where_r_warns_about_the_fpc(paired):
    sample = _first_counties(paired, 10).assign(N=100)
    for kind in ("brr", "fay"):
        design = skb.SurveyDesign(clusters="dnum", strata="cname", nest=True, fpc="N",
                                  replicates=kind)
        with pytest.warns(UserWarning, match="Finite population correction dropped"):
            design.resolve(sample, sample["pw"]).replicate_multipliers()
    two = pd.read_csv(HERE / "api_two_stage.csv")
    jk1 = skb.SurveyDesign(clusters=["dnum", "snum"], fpc=["fpc1", "fpc2"], replicates="jk1")
    with pytest.warns(UserWarning, match="after first stage have been dropped"):
        jk1.resolve(two).replicate_multipliers()
    with pytest.warns(FutureWarning, match="'subbootstrap' to keep"):
        skb.SurveyDesign(replicates="bootstrap").resolve(two).replicate_multipliers()


def test_lonely_average_in_domains_counts_the_domains_strata_as_r():
    # issue 22, item 13: R's svyby subsets an uncalibrated design (a domain's
    # strata alone count: 12.46 where every stratum gave 14.54); a calibrated
    # design keeps every row with weight 0 (every stratum counts)
    strat = skb.datasets.load_api("strat")
    design = skb.SurveyDesign(strata="cname", lonely_psu="average")
    plain = skb.BalancedFunctionalEstimator(baseline="empirical", design=design,
                                            domain="stype")
    results = plain.fit(strat, strat["api00"], sample_weight=strat["pw"]).results_
    assert list(results.domain) == ["E", "H", "M"]
    np.testing.assert_allclose(results.estimate, REF["lonely_average_by_stype.estimate"],
                               rtol=RTOL)
    np.testing.assert_allclose(results.std_error, REF["lonely_average_by_stype.se"],
                               rtol=RTOL)
    targets = skb.datasets.api_population_targets(["sch.wide", "awards"])
    raked = skb.BalancedFunctionalEstimator(
        skb.MarginalBalancer(targets=targets, tol=1e-13, max_iter=10000), design=design,
        domain="stype")
    results = raked.fit(strat, strat["api00"], sample_weight=strat["pw"]).results_
    np.testing.assert_allclose(results.std_error, REF["lonely_average_raked_by_stype.se"],
                               rtol=1e-8)


@pytest.mark.parametrize("distance", ["raking", "linear", "logit"])
def test_bounds_relative_to_the_base_weights_in_every_replicate_as_r(distance):
    # issue 22, item 5: R bounds each replicate's g = w_r / d_r; bounds relative
    # to the rescaled base weights matched R's full sample but not its replicates
    clus1 = skb.datasets.load_api("clus1")
    targets = skb.datasets.api_population_targets(["stype", "sch.wide"])
    design = skb.SurveyDesign(clusters="dnum", fpc="fpc", replicates="jk1")
    name = f"clus1_jk1_bounded_{distance}.mean_api00"
    results = {}
    for relative_to in ("base", "rescaled"):
        bal = skb.MarginalBalancer(targets=targets, bounds=(0.5, 2.2), distance=distance,
                                   bounds_relative_to=relative_to, tol=1e-12, max_iter=10000)
        est = skb.BalancedFunctionalEstimator(bal, design=design)
        results[relative_to] = est.fit(clus1, clus1["api00"],
                                       sample_weight=clus1["pw"]).results_.iloc[0]
    # pw sums to the population (6194): the full-sample fits agree either way
    assert results["base"].estimate == pytest.approx(REF[f"{name}.estimate"][0], rel=1e-9)
    assert results["rescaled"].estimate == pytest.approx(REF[f"{name}.estimate"][0], rel=1e-9)
    assert results["base"].std_error == pytest.approx(REF[f"{name}.se"][0], rel=1e-8)
    if distance != "logit":  # the bounds bind in some replicate
        assert results["rescaled"].std_error != pytest.approx(REF[f"{name}.se"][0], rel=1e-6)


def test_bounds_relative_to_the_base_weights_equal_rs_with_count_targets():
    # the full sample: R's bounds on w / d are ours on w / (d N / sum d) times sum d / N
    strat = skb.datasets.load_api("strat")
    base = strat["pw"].to_numpy() * 0.8  # the base weights sum to 0.8 N
    targets = skb.datasets.api_population_targets(["stype", "sch.wide", "awards"])
    r_style = skb.MarginalBalancer(targets=targets, bounds=(1.0, 1.32), tol=1e-12,
                                   bounds_relative_to="base").fit(strat, sample_weight=base)
    ratio = base.sum() / 6194  # about 0.8
    ours = skb.MarginalBalancer(targets=targets, bounds=(1.0 * ratio, 1.32 * ratio),
                                tol=1e-12).fit(strat, sample_weight=base)
    assert r_style.converged_ and ours.converged_
    np.testing.assert_allclose(r_style.weights_, ours.weights_, rtol=1e-10)
    ratio = r_style.weights_ / base  # w / d within R's bounds, the upper one reached
    assert ratio.min() >= 1.0 - 1e-12 and ratio.max() == pytest.approx(1.32, rel=1e-12)
    with pytest.raises(ValueError, match="must hold the target total over the base"):
        skb.MarginalBalancer(targets=targets, bounds=(0.5, 1.2),
                             bounds_relative_to="base").fit(strat, sample_weight=base)
