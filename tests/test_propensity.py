"""Inverse-propensity weighting (issue 21, item 1): PropensityBalancer."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder
from sklearn.svm import LinearSVC
from sklearn.tree import DecisionTreeClassifier

import skbalance as skb

HERE = Path(__file__).parent / "balance_reference"
TIGHT = dict(solver="newton-cholesky", tol=1e-12, max_iter=1000)


def _sim():
    frame = pd.read_csv(HERE / "sim_data_01.csv.gz")
    sample = frame[frame.source == "sample"].drop(columns="source").reset_index(drop=True)
    target = frame[frame.source == "target"].drop(columns="source").reset_index(drop=True)
    return sample, target


@pytest.mark.parametrize("case,columns,classifier,trim", [
    ("income_lr", ["income"], LogisticRegression(**TIGHT), None),
    ("income_lr_trim20", ["income"], LogisticRegression(**TIGHT), 20),
    ("age_income_lr", ["age_group", "income"],
     LogisticRegression(fit_intercept=False, **TIGHT), None),
])
def test_weights_equal_balance_ipw(case, columns, classifier, trim):
    """balance 0.23's ipw, transformations off (make_ipw_reference.py)."""
    reference = json.loads((HERE / "ipw_reference.json").read_text())["cases"][case]
    sample, target = _sim()
    ipw = skb.PropensityBalancer(target, reference_weight=np.full(len(target), 2.0),
                                 classifier=classifier, columns=columns,
                                 trim_mean_ratio=trim).fit(sample)
    np.testing.assert_allclose(ipw.weights_, reference["weights"], rtol=1e-12)


def test_weights_equal_the_formula_with_the_same_classifier_fitted_by_hand():
    """Any classifier: fit it on the stacked rows with the class-balanced
    design weights, then d (1 - p) / p scaled to the reference's total."""
    rng = np.random.default_rng(3)
    sample = pd.DataFrame({"x": rng.normal(1, 1, 300), "g": rng.choice(["a", "b", "c"], 300)})
    reference = pd.DataFrame({"x": rng.normal(0, 1, 900), "g": rng.choice(["a", "b", "c"], 900),
                              "w": rng.uniform(1, 5, 900)})
    d = rng.uniform(1, 2, 300)
    classifier = GradientBoostingClassifier(n_estimators=20, max_depth=2, random_state=0)
    ipw = skb.PropensityBalancer(reference, reference_weight="w", classifier=classifier).fit(
        sample, sample_weight=d)
    encoded = [np.column_stack([f["x"], *[(f["g"] == level) * 1.0 for level in "abc"]])
               for f in (sample, reference)]
    by_hand = GradientBoostingClassifier(n_estimators=20, max_depth=2, random_state=0)
    r = reference["w"].to_numpy()
    by_hand.fit(np.vstack(encoded), np.r_[np.ones(300), np.zeros(900)],
                sample_weight=np.r_[d, r * d.sum() / r.sum()])
    p = by_hand.predict_proba(encoded[0])[:, 1]
    expected = d * (1 - p) / p
    expected *= r.sum() / expected.sum()
    np.testing.assert_allclose(ipw.weights_, expected, rtol=1e-12)
    np.testing.assert_allclose(ipw.propensity_, p, rtol=1e-12)
    np.testing.assert_allclose(ipw.compute_weights(sample, sample_weight=d), ipw.weights_,
                               rtol=1e-12)
    assert ipw.design_effect_ == pytest.approx(
        300 * np.sum(expected**2) / expected.sum() ** 2, rel=1e-12)
    assert list(ipw.feature_names_in_) == ["x", "g"]


def test_weighting_moves_the_sample_to_the_reference():
    sample, target = _sim()
    sample, target = sample.drop(columns="gender"), target.drop(columns="gender")
    ipw = skb.PropensityBalancer(target).fit(sample)
    assert ipw.weights_.sum() == pytest.approx(len(target), rel=1e-12)
    report = ipw.balance_report(sample)
    overall = report.xs("(all)", level="level")
    assert (overall["asmd_after"] < overall["asmd_before"] / 3).all()
    assert report.loc[("income", "(all)"), "asmd_after"] < 0.1


def test_grid_search_tunes_the_classifier_with_the_weights():
    sample, target = _sim()
    search = GridSearchCV(LogisticRegression(**TIGHT), {"C": [0.01, 1.0]}, cv=3)
    ipw = skb.PropensityBalancer(target, classifier=search, columns=["income"]).fit(sample)
    best = ipw.classifier_.best_estimator_
    assert best.C in (0.01, 1.0)
    p = best.predict_proba(sample[["income"]].to_numpy())[:, 1]
    expected = (1 - p) / p
    np.testing.assert_allclose(ipw.weights_, expected * len(target) / expected.sum(),
                               rtol=1e-12)


def test_a_pipeline_takes_the_raw_columns():
    sample, target = _sim()
    classifier = make_pipeline(OneHotEncoder(), LogisticRegression(C=1e10, **TIGHT))
    ipw = skb.PropensityBalancer(target, classifier=classifier, columns=["age_group"],
                                 encode=False).fit(sample)
    # one categorical, saturated: the weights make the sample's shares the target's
    shares = pd.Series(ipw.weights_).groupby(sample["age_group"]).sum() / len(target)
    expected = target["age_group"].value_counts(normalize=True)
    np.testing.assert_allclose(shares.sort_index(), expected.sort_index(), rtol=1e-6)


def test_max_de_caps_the_design_effect_with_the_least_trimming():
    sample, target = _sim()
    free = skb.PropensityBalancer(target, columns=["income", "age_group"]).fit(sample)
    capped = skb.PropensityBalancer(target, columns=["income", "age_group"],
                                    max_de=1.5).fit(sample)
    assert free.design_effect_ > 1.5
    assert capped.design_effect_ == pytest.approx(1.5, abs=1e-9)
    raw = (1 - capped.propensity_) / capped.propensity_
    # a plain check of the cap: at it the design effect is 1.5, above it more
    for cap, below in ((capped.trim_cap_, True), (capped.trim_cap_ * 1.01, False)):
        w = np.minimum(raw, cap)
        assert (len(w) * np.sum(w**2) / w.sum() ** 2 <= 1.5 + 1e-9) == below
    np.testing.assert_allclose(capped.weights_, np.minimum(raw, capped.trim_cap_)
                               * len(target) / np.minimum(raw, capped.trim_cap_).sum(),
                               rtol=1e-12)


def test_bad_input_gets_a_clear_error():
    sample, target = _sim()
    sample, target = sample.drop(columns="gender"), target.drop(columns="gender")
    with pytest.raises(ValueError, match="predict_proba"):
        skb.PropensityBalancer(target, classifier=LinearSVC()).fit(sample)
    with pytest.raises(ValueError, match="The reference lacks the covariate 'income'"):
        skb.PropensityBalancer(target.drop(columns="income")).fit(sample)
    with pytest.raises(ValueError, match="level '45\\+' of 'age_group', which no sample row"):
        skb.PropensityBalancer(target).fit(sample[sample.age_group != "45+"])
    with pytest.raises(ValueError, match="X has 1 missing value"):
        skb.PropensityBalancer(target).fit(sample.assign(income=sample.income.mask(
            sample.index == 3)))
    with pytest.raises(ValueError, match="not both"):
        skb.PropensityBalancer(target, trim_mean_ratio=5, max_de=2).fit(sample)
    # a tree that separates the sample from the reference: propensities 0 or 1
    separated = sample.assign(income=sample.income + 1000)
    with pytest.raises(ValueError, match=r"propensity of exactly 0 or 1 \(rows 0, 1, 2, 3, 4"):
        skb.PropensityBalancer(target, classifier=DecisionTreeClassifier()).fit(separated)
    fitted = skb.PropensityBalancer(target).fit(sample)
    with pytest.raises(ValueError, match="level 'none' of column 'age_group'"):
        fitted.compute_weights(sample.assign(age_group="none"))
    with pytest.raises(ValueError, match="reference_weight names column 'pw'"):
        skb.PropensityBalancer(target, reference_weight="pw").fit(sample)


def test_exact_cbps_equals_balance_within_its_optimizer_and_balances_exactly():
    """balance's cbps(cbps_method="exact") minimizes the squared imbalance
    numerically and stops with gaps of about 1e-6 (stored); the same weights
    solved exactly here (raking to the target's counts and mean) agree with
    it to that order, and meet the balance conditions to 1e-12."""
    reference = json.loads((HERE / "cbps_reference.json").read_text())
    sample, target = _sim()
    balancer = skb.cbps_balancer(target, ["age_group", "income"],
                                 weights=np.full(len(target), 2.0), tol=1e-13,
                                 max_iter=10000)
    w = balancer.fit(sample).weights_
    gap = reference["largest_balance_gap"]
    assert 1e-9 < gap < 1e-4
    np.testing.assert_allclose(w, reference["weights"], rtol=20 * gap)
    assert w.sum() == pytest.approx(2.0 * len(target), rel=1e-12)
    assert np.average(sample.income, weights=w) == pytest.approx(target.income.mean(),
                                                                 rel=1e-12)
    shares = pd.Series(w).groupby(sample.age_group).sum() / w.sum()
    np.testing.assert_allclose(shares, target.age_group.value_counts(normalize=True)
                               .sort_index(), rtol=1e-12)
