"""The covariate-balance report (ASMD, distances, design effect).

Reference numbers: balance's own ``asmd`` on its simulated data
(``tests/balance_reference``: the data, the script that made the numbers and
the numbers; the tests need no balance). Other values against plain loops.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import skbalance as skb

HERE = Path(__file__).parent / "balance_reference"
COVARIATES = ["gender", "age_group", "income"]


def sim_data():
    data = pd.read_csv(HERE / "sim_data_01.csv.gz")
    sample = data[data.source == "sample"][COVARIATES].reset_index(drop=True)
    target = data[data.source == "target"][COVARIATES].reset_index(drop=True)
    return sample, target


def target_margins(target):
    shares = {c: target[c].value_counts(normalize=True, dropna=False).to_dict()
              for c in ["gender", "age_group"]}
    return {**shares, "income": skb.Mean(float(target["income"].mean()))}


def skbalance_balancer(target):
    """Raking to the target's age_group shares and a tenth of the way to its
    mean income, with bounds: gender is left to chance, so every ASMD is
    informative (the weights make_reference.py was given)."""
    sample_income = 2.0 ** 2 + 1.5 ** 2  # E[N(2, 1.5^2)^2], the sample's design
    income = sample_income + 0.1 * (float(target["income"].mean()) - sample_income)
    shares = target["age_group"].value_counts(normalize=True).to_dict()
    return skb.MarginalBalancer(targets={"age_group": shares, "income": skb.Mean(income)},
                                bounds=(0.2, 5.0), tol=1e-13, max_iter=5000)


def skbalance_weights():
    sample, target = sim_data()
    return skbalance_balancer(target).fit(sample).weights_


@pytest.fixture(scope="module")
def reference():
    return json.loads((HERE / "asmd_reference.json").read_text())


def _balance_name(covariate, level):
    if covariate == "income":
        return "income"
    level = "_NA" if pd.isna(level) else level
    return f"{covariate}[{level}]"


def _compare(report, expected, column):
    """Every term balance reports (its model matrix drops some reference levels)."""
    compared = 0
    for (covariate, level), value in report[column].items():
        if covariate == "(overall)" or level == "(all)":
            continue
        for name in (_balance_name(covariate, level), f"{covariate}[T.{level}]"):
            if name in expected:
                assert value == pytest.approx(expected[name], rel=1e-9, abs=1e-12), name
                compared += 1
    return compared


@pytest.mark.parametrize("case", ["unweighted", "balance_rake", "skbalance_rake",
                                  "target_weighted"])
def test_asmd_matches_balance(reference, case):
    sample, target = sim_data()
    spec = reference["cases"][case]
    weights = {"ones": np.ones(len(sample)), "skbalance": skbalance_weights(),
               "balance_rake": np.array(reference["balance_rake_weights"])}
    target_weight = (np.ones(len(target)) if spec["target_weights"] == "ones"
                     else 1.0 + np.arange(len(target)) % 3)
    report = skb.covariate_balance(sample, weights[spec["sample_weights"]], target,
                                   target_weight=target_weight)
    expected = {k: v for k, v in spec["asmd"].items() if k != "mean(asmd)"}
    assert _compare(report, expected, "asmd_after") == len(expected) == 7
    # balance's per-covariate means agree where its model matrix keeps every level
    by_covariate = spec["by_covariate"]
    for covariate in ["gender", "income"]:
        assert report.loc[(covariate, "(all)"), "asmd_after"] == pytest.approx(
            by_covariate[covariate], rel=1e-9)


def test_balancer_report_before_and_after(reference):
    sample, target = sim_data()
    bal = skbalance_balancer(target).fit(sample)
    report = bal.balance_report(sample, target)
    spec = reference["cases"]
    assert _compare(report, spec["unweighted"]["asmd"], "asmd_before") == 7
    assert _compare(report, spec["skbalance_rake"]["asmd"], "asmd_after") == 7
    # raked to every margin, the margins and the mean are met: ASMD after ~0 against them
    bal = skb.MarginalBalancer(targets=target_margins(target), missing="level",
                               tol=1e-13, max_iter=5000).fit(sample)
    against_margins = bal.balance_report(sample)
    terms = against_margins.drop(index="(overall)", level="covariate")
    assert terms["asmd_after"].abs().max() < 1e-10
    assert against_margins.loc[("income", "(mean)"), "target"] == pytest.approx(
        target["income"].mean())
    assert (report.loc[("(overall)", "(all)"), "asmd_after"]
            < report.loc[("(overall)", "(all)"), "asmd_before"])


def _plain_tvd(x, w, y):
    levels = sorted(set(x) | set(y))
    p = {lv: sum(wi for xi, wi in zip(x, w) if xi == lv) / sum(w) for lv in levels}
    q = {lv: sum(1 for yi in y if yi == lv) / len(y) for lv in levels}
    return 0.5 * sum(abs(p[lv] - q[lv]) for lv in levels)


def _plain_ks(x, w, y):
    points = sorted(set(x) | set(y))
    total = sum(w)
    gaps = [abs(sum(wi for xi, wi in zip(x, w) if xi <= t) / total
                - sum(1 for yi in y if yi <= t) / len(y)) for t in points]
    return max(gaps)


def test_distances_and_design_effect_against_plain_loops():
    rng = np.random.default_rng(3)
    sample = pd.DataFrame({"g": rng.choice(list("abc"), 60),
                           "x": np.round(rng.normal(size=60), 1)})
    target = pd.DataFrame({"g": rng.choice(list("abcd"), 90),
                           "x": np.round(rng.normal(0.5, 1, size=90), 1)})
    w = rng.uniform(0.2, 3.0, 60)
    base = rng.uniform(0.5, 1.5, 60)
    report = skb.covariate_balance(sample, w, target, sample_weight=base)
    assert report.loc[("g", "(all)"), "distance_after"] == pytest.approx(
        _plain_tvd(sample.g, w, target.g), rel=1e-12)
    assert report.loc[("g", "(all)"), "distance_before"] == pytest.approx(
        _plain_tvd(sample.g, base, target.g), rel=1e-12)
    assert report.loc[("x", "(all)"), "distance_after"] == pytest.approx(
        _plain_ks(sample.x, w, target.x), rel=1e-12)
    # level "d" is only in the target: share 0 in the sample
    assert report.loc[("g", "d"), "after"] == 0.0
    assert report.loc[("g", "d"), "target"] == pytest.approx((target.g == "d").mean())
    n = len(w)
    assert report.loc[("(overall)", "design effect"), "after"] == pytest.approx(
        n * np.sum(w ** 2) / np.sum(w) ** 2, rel=1e-12)
    assert report.loc[("(overall)", "effective sample size"), "before"] == pytest.approx(
        np.sum(base) ** 2 / np.sum(base ** 2), rel=1e-12)
    covariate_rows = report.xs("(all)", level="level").drop(index="(overall)")
    assert report.loc[("(overall)", "(all)"), "asmd_after"] == pytest.approx(
        covariate_rows["asmd_after"].mean())
    # the numeric term: a plain weighted mean over the target's unbiased SD
    plain = abs(np.average(sample.x, weights=w) - target.x.mean()) / target.x.std(ddof=1)
    assert report.loc[("x", "(mean)"), "asmd_after"] == pytest.approx(plain, rel=1e-12)


def test_missing_numeric_values_are_a_term_and_inputs_stay_untouched():
    sample = pd.DataFrame({"x": [1.0, np.nan, 3.0, 4.0]})
    target = pd.DataFrame({"x": [2.0, 3.0, np.nan, np.nan, 5.0]})
    before = sample.copy()
    w = np.array([1.0, 2.0, 1.0, 1.0])
    report = skb.covariate_balance(sample, w, target)
    pd.testing.assert_frame_equal(sample, before)
    assert report.loc[("x", "(mean)"), "after"] == pytest.approx((1 + 3 + 4) / 3)
    assert report.loc[("x", "(missing)"), "after"] == pytest.approx(2 / 5)
    assert report.loc[("x", "(missing)"), "target"] == pytest.approx(2 / 5)
    assert report.loc[("x", "(missing)"), "asmd_after"] == pytest.approx(0.0, abs=1e-15)


def test_polars_and_arrays_give_the_same_report():
    pl = pytest.importorskip("polars")
    sample, target = sim_data()
    w = skbalance_weights()
    expected = skb.covariate_balance(sample, w, target)
    from_polars = skb.covariate_balance(pl.from_pandas(sample), w, pl.from_pandas(target))
    pd.testing.assert_frame_equal(from_polars, expected)
    codes = pd.DataFrame({"a": [0, 1, 1, 2]})
    arrays = skb.covariate_balance(codes.to_numpy(), np.ones(4), np.array([[0], [1], [2]]),
                                   categorical=[0])
    assert arrays.loc[(0, 1), "before"] == 0.5


def test_bad_input_is_named():
    sample = pd.DataFrame({"x": [1.0, np.inf]})
    with pytest.raises(ValueError, match="'x' contains inf"):
        skb.covariate_balance(sample, np.ones(2), pd.DataFrame({"x": [1.0]}))
    with pytest.raises(ValueError, match="no covariate in common"):
        skb.covariate_balance(sample, np.ones(2), pd.DataFrame({"y": [1.0]}))
    with pytest.raises(ValueError, match="weights"):
        skb.covariate_balance(pd.DataFrame({"x": [1.0, 2.0]}), np.array([1.0, -1.0]),
                              pd.DataFrame({"x": [1.0]}))
    with pytest.raises(ValueError, match="'z'"):
        skb.covariate_balance(pd.DataFrame({"x": [1.0, 2.0]}), np.ones(2),
                              pd.DataFrame({"x": [1.0]}), covariates=["z"])
    dd = pytest.importorskip("dask.dataframe")
    with pytest.raises(TypeError, match="compute"):
        skb.covariate_balance(dd.from_pandas(sample, npartitions=1), np.ones(2),
                              pd.DataFrame({"x": [1.0]}))
    with pytest.warns(UserWarning, match="undefined"):
        report = skb.covariate_balance(pd.DataFrame({"x": [1.0, 1.0]}), np.ones(2),
                                       pd.DataFrame({"x": [2.0, 2.0]}))
    assert np.isnan(report.loc[("x", "(mean)"), "asmd_after"])
