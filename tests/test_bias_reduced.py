"""The bias-reduced linearization (CR2) and Bell-McCaffrey degrees of freedom
(issue 22), against a dense computation and closed forms."""

import numpy as np
import pandas as pd
import pytest

import skbalance as skb
from tests._reference import dense_cr2


@pytest.fixture(scope="module")
def clusters():
    """15 districts of apipop, unequal in size, as apiclus1 was drawn."""
    population = skb.datasets.load_api("pop")
    rng = np.random.default_rng(3)
    drawn = rng.choice(np.sort(population["dnum"].unique()), size=15, replace=False)
    sample = population[population["dnum"].isin(drawn)].reset_index(drop=True)
    return sample.assign(pw=757 / 15, fpc=757)


def _targets():
    population = skb.datasets.load_api("pop")
    return {c: population[c].value_counts().to_dict() for c in ("stype", "sch.wide")}


def _calibration_matrix(sample):
    dummies = [np.ones(len(sample))]
    for column in ("stype", "sch.wide"):
        dummies += [(sample[column] == level).to_numpy() * 1.0
                    for level in sorted(sample[column].unique())]
    return np.column_stack(dummies)


@pytest.mark.parametrize("domain", [None, "both"])
def test_cr2_equals_a_dense_computation(clusters, domain):
    bal = skb.MarginalBalancer(targets=_targets(), tol=1e-12, max_iter=10000)
    est = skb.BalancedFunctionalEstimator(
        bal, design=skb.SurveyDesign(clusters="dnum", fpc="fpc"), linearization="cr2",
        df="bell-mccaffrey", domain=domain)
    results = est.fit(clusters, clusters["api00"], sample_weight=clusters["pw"]).results_
    w, d = est.weights_, clusters["pw"].to_numpy()
    cluster = pd.factorize(clusters["dnum"], sort=True)[0]
    keep = np.full(15, 1 - 15 / 757)
    X = _calibration_matrix(clusters)
    y = clusters["api00"].to_numpy(float)
    levels = [None] if domain is None else sorted(clusters[domain].unique())
    for row, level in zip(results.itertuples(), levels):
        inside = np.ones(len(y)) if level is None else (clusters[domain] == level) * 1.0
        total = np.sum(w * inside)
        z = inside * (y - np.sum(w * inside * y) / total) / total
        variance, df = dense_cr2(X, d, w, z, cluster, keep, inside)
        assert row.std_error == pytest.approx(np.sqrt(variance), rel=1e-10)
        assert row.df == pytest.approx(min(df, 14), rel=1e-10)


def test_cr2_of_a_stratified_random_sample_is_the_linearized_variance():
    # rows as units, equal weights within strata, no calibration: every row's
    # leverage is 1 / n_h, and (1 - 1/n_h)^-1 is the n_h / (n_h - 1) of the
    # linearized variance: the two agree exactly
    strat = skb.datasets.load_api("strat")
    design = skb.SurveyDesign(strata="stype", fpc="fpc")
    results = {}
    for linearization in ("design", "cr2"):
        est = skb.BalancedFunctionalEstimator(baseline="empirical", design=design,
                                              linearization=linearization)
        results[linearization] = est.fit(strat, strat["api00"],
                                         sample_weight=strat["pw"]).std_error_
    assert results["cr2"] == pytest.approx(results["design"], rel=1e-12)


def test_cr2_widens_the_intervals_of_unequal_clusters(clusters):
    bal = skb.MarginalBalancer(targets=_targets(), tol=1e-12, max_iter=10000)
    fits = {}
    for linearization, df in (("design", "design"), ("cr2", "bell-mccaffrey")):
        est = skb.BalancedFunctionalEstimator(
            bal, design=skb.SurveyDesign(clusters="dnum", fpc="fpc"),
            linearization=linearization, df=df)
        fits[linearization] = est.fit(clusters, clusters["api00"],
                                      sample_weight=clusters["pw"]).results_.iloc[0]
    assert fits["cr2"].std_error > fits["design"].std_error
    assert fits["cr2"].df < 14
    width = {k: r.ci_high - r.ci_low for k, r in fits.items()}
    assert width["cr2"] > width["design"]


@pytest.mark.parametrize("params,design,message", [
    ({"df": "bell-mccaffrey"}, None, "pass linearization='cr2'"),
    ({"linearization": "cr2", "baseline": "ipwi"}, None, "not to 'ipwi'"),
    ({"linearization": "cr2"}, skb.SurveyDesign(clusters="dnum", replicates="jk1"),
     "replicate weights"),
    ({"linearization": "cr2"}, skb.SurveyDesign(clusters=["dnum", "snum"],
                                                fpc=["fpc1", "fpc2"]), "one-stage"),
])
def test_cr2_says_where_it_does_not_apply(params, design, message):
    two = pd.read_csv(__import__("pathlib").Path(__file__).parent / "r_reference"
                      / "api_two_stage.csv")
    targets = _targets()
    bal = skb.MarginalBalancer(targets=targets)
    est = skb.BalancedFunctionalEstimator(bal, design=design, **params)
    with pytest.raises(ValueError, match=message):
        est.fit(two[["stype", "sch.wide", "dnum", "snum", "fpc1", "fpc2"]], two["api00"],
                sample_weight=two["pw"])
