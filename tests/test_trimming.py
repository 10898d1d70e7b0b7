"""Weight trimming after raking, as R survey's trimWeights (issue 21, item 3;
R's values in r_reference/analysis_reference.json)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import skbalance as skb

REF = {k: np.asarray(v["value"]) for k, v in json.loads(
    (Path(__file__).parent / "r_reference" / "analysis_reference.json").read_text()).items()}


def _raked():
    targets = skb.datasets.api_population_targets(["stype", "sch.wide"])
    return skb.MarginalBalancer(targets=targets, tol=1e-13, max_iter=10000)


@pytest.mark.parametrize("key,lower,upper,strict", [("20_40_once", 20, 40, False),
                                                    ("18_43_strict", 18, 43, True)])
def test_trimmed_raking_equals_r_trim_weights(key, lower, upper, strict):
    strat = skb.datasets.load_api("strat")
    trimmer = skb.TrimmedBalancer(_raked(), lower=lower, upper=upper, strict=strict)
    est = skb.BalancedFunctionalEstimator(trimmer,
                                          design=skb.SurveyDesign(strata="stype", fpc="fpc"))
    row = est.fit(strat, strat["api00"], sample_weight=strat["pw"]).results_.iloc[0]
    np.testing.assert_allclose(est.weights_, REF[f"trim.{key}.weights"], rtol=1e-12)
    assert est.weights_.sum() == pytest.approx(6194, rel=1e-12)
    assert lower - 1e-12 <= est.weights_.min() and est.weights_.max() <= upper + 1e-12
    assert row.estimate == pytest.approx(REF[f"trim.{key}.mean_api00.estimate"][0], rel=1e-12)
    assert row.std_error == pytest.approx(REF[f"trim.{key}.mean_api00.se"][0], rel=1e-8)


def test_trim_weights_equals_a_plain_loop():
    rng = np.random.default_rng(0)
    w = rng.gamma(2.0, 10.0, 50)
    trimmed = skb.trim_weights(w, lower=8.0, upper=30.0)
    # one pass by hand: clip, then share the cut equally among the untouched
    expected = np.clip(w, 8.0, 30.0)
    untouched = (w >= 8.0) & (w <= 30.0)
    expected[untouched] += (w.sum() - np.clip(w, 8.0, 30.0).sum()) / untouched.sum()
    np.testing.assert_allclose(trimmed, expected, rtol=1e-14)
    strict = skb.trim_weights(w, lower=8.0, upper=30.0, strict=True)
    assert strict.min() >= 8.0 - 1e-12 and strict.max() <= 30.0 + 1e-12
    assert strict.sum() == pytest.approx(w.sum(), rel=1e-14)


def test_trimming_that_cannot_be_met_is_a_clear_error():
    with pytest.raises(ValueError, match="mean weight 2.5 lies outside the bounds"):
        skb.trim_weights([1.0, 2.0, 3.0, 4.0], lower=3.0, upper=10.0)
    with pytest.raises(ValueError, match="leaves no untrimmed weight"):
        skb.trim_weights([1.0, 1.0, 9.0, 9.0], lower=2.0, upper=8.0)


def test_replicates_of_a_trimmed_balancing_rerun_it_on_every_replicate():
    """Every replicate raked from its own base weights, then trimmed with the
    same bounds: the replicate SE by a plain loop (plain IPF on the rows, then
    trim_weights, itself equal to R's trimWeights). R's trimWeights on a
    replicate design recycles a vector wrongly (it warns; apistrat raked and
    trimmed to [20, 40] under JKn gives a mean of 662.21, not the full
    sample's 659.25, and an SE of 0.63), so R is no reference here."""
    from tests._reference import plain_ipf_rows

    strat = skb.datasets.load_api("strat")
    rng = np.random.default_rng(2)
    n_reps = 20
    replicates = strat["pw"].to_numpy()[:, None] * rng.uniform(0.5, 1.5, (len(strat), n_reps))
    design = skb.SurveyDesign(replicates="bootstrap", replicate_weights=replicates,
                              scale=1 / n_reps)
    targets = {"stype": {"E": 0.7, "H": 0.1, "M": 0.2}, "sch.wide": {"No": 0.2, "Yes": 0.8}}
    trimmer = skb.TrimmedBalancer(skb.MarginalBalancer(targets=targets, tol=1e-14,
                                                       max_iter=10000), lower=20, upper=40)
    est = skb.BalancedFunctionalEstimator(trimmer, design=design).fit(
        strat, strat["api00"], sample_weight=strat["pw"])
    codes = [pd.factorize(strat["stype"], sort=True)[0],
             pd.factorize(strat["sch.wide"], sort=True)[0]]
    shares = [[0.7, 0.1, 0.2], [0.2, 0.8]]
    y = strat["api00"].to_numpy()

    def mean(base):
        w = skb.trim_weights(plain_ipf_rows(codes, base, shares, 400), lower=20, upper=40)
        return np.dot(w, y) / w.sum()

    thetas = np.array([mean(replicates[:, r]) for r in range(n_reps)])
    assert est.estimate_ == pytest.approx(mean(strat["pw"].to_numpy()), rel=1e-12)
    assert est.std_error_ == pytest.approx(np.sqrt(np.sum((thetas - thetas.mean()) ** 2)
                                                   / n_reps), rel=1e-9)


def test_nonresponse_adjustment_equals_a_plain_loop():
    rng = np.random.default_rng(1)
    n = 200
    w = rng.uniform(1, 5, n)
    classes = rng.choice(["a", "b", "c"], n)
    respondent = rng.random(n) < 0.6
    adjusted = skb.nonresponse_weights(w, respondent, classes)
    for level in ("a", "b", "c"):
        rows = classes == level
        factor = w[rows].sum() / w[rows & respondent].sum()
        np.testing.assert_allclose(adjusted[rows & respondent],
                                   w[rows & respondent] * factor, rtol=1e-14)
        assert adjusted[rows].sum() == pytest.approx(w[rows].sum(), rel=1e-14)
    assert (adjusted[~respondent] == 0).all()


def test_a_class_without_respondent_is_a_clear_error():
    with pytest.raises(ValueError, match="Class 'b' has no respondent"):
        skb.nonresponse_weights([1.0, 1.0, 1.0], [True, False, False], ["a", "b", "b"])
    with pytest.raises(ValueError, match="one value per row"):
        skb.nonresponse_weights([1.0, 1.0], [True], ["a", "a"])


@pytest.mark.parametrize("case,options", [
    ("mean_ratio_3", {"mean_ratio": 3}),
    ("percentile_0.05", {"percentile": 0.05}),
    ("percentile_upper_0.1", {"percentile": (0, 0.1)}),
    ("percentile_lower_0.02", {"percentile": (0.02, 0)}),
])
def test_winsorize_weights_equals_balance_trim_weights(case, options):
    """balance 0.23's trim_weights (make_trim_reference.py), sum kept."""
    reference = json.loads((Path(__file__).parent / "balance_reference" /
                            "trim_reference.json").read_text())
    weights = np.asarray(reference["weights"])
    trimmed = skb.winsorize_weights(weights, **options)
    np.testing.assert_allclose(trimmed, reference["cases"][case]["trimmed"], rtol=1e-14)
    assert trimmed.sum() == pytest.approx(weights.sum(), rel=1e-14)


def test_weight_trimmer_is_a_recipe_step():
    """Propensity, then R's trimming, then raking: each by hand."""
    rng = np.random.default_rng(8)
    population = pd.DataFrame({"x": rng.normal(0, 1, 3000), "g": rng.choice(["a", "b"], 3000)})
    sample = population[rng.random(3000) < 0.2 * np.exp(0.8 * population.x)]
    recipe = skb.WeightingRecipe([
        ("ipw", skb.PropensityBalancer(population, columns=["x"])),
        ("trim", skb.WeightTrimmer(upper=6.0)),
        ("rake", skb.MarginalBalancer(targets={"g": {"a": 0.5, "b": 0.5}}, tol=1e-14,
                                      max_iter=1000))]).fit(sample)
    ipw = skb.PropensityBalancer(population, columns=["x"]).fit(sample).weights_
    trimmed = skb.trim_weights(ipw, upper=6.0)
    codes = [pd.factorize(sample["g"], sort=True)[0]]
    from tests._reference import plain_ipf_rows
    np.testing.assert_allclose(recipe.weights_, plain_ipf_rows(codes, trimmed, [[0.5, 0.5]], 50),
                               rtol=1e-12)
    with pytest.raises(ValueError, match="not both"):
        skb.WeightTrimmer(upper=5, mean_ratio=3).fit(sample, sample_weight=ipw)
    with pytest.raises(ValueError, match="one of mean_ratio and percentile"):
        skb.winsorize_weights(ipw)
