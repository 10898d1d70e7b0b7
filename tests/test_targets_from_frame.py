"""Targets read off a population frame or a weighted reference sample, and
post-stratification on a joint margin equal to R's postStratify (issue 21,
item 5; R's values in r_reference/analysis_reference.json)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

import skbalance as skb

REF = {k: np.asarray(v["value"]) for k, v in json.loads(
    (Path(__file__).parent / "r_reference" / "analysis_reference.json").read_text()).items()}


@pytest.fixture(scope="module")
def population():
    return skb.datasets.load_api("pop")


def test_counts_and_joint_counts_equal_a_plain_loop(population):
    targets = skb.targets_from_frame(population, ["stype", ("stype", "sch.wide")])
    for level in ("E", "H", "M"):
        assert targets["stype"][level] == sum(1 for v in population["stype"] if v == level)
    joint = targets[("stype", "sch.wide")]
    for (a, b), count in joint.items():
        assert count == sum(1 for x, y in zip(population["stype"], population["sch.wide"])
                            if (x, y) == (a, b))
    srs = skb.datasets.load_api("srs")
    weighted = skb.targets_from_frame(srs, ["stype"], weights="pw")["stype"]
    for level in weighted.index:
        assert weighted[level] == pytest.approx(
            sum(w for v, w in zip(srs["stype"], srs["pw"]) if v == level), rel=1e-12)
    as_polars = skb.targets_from_frame(pl.from_pandas(srs), ["stype"], weights="pw")["stype"]
    pd.testing.assert_series_equal(as_polars, weighted)


@pytest.mark.parametrize("key,sample_name,design,y,statistic", [
    ("poststrat.mean_api00", "strat", dict(strata="stype", fpc="fpc"), "api00", "mean"),
    ("poststrat.total_enroll", "strat", dict(strata="stype", fpc="fpc"), "enroll", "total"),
    ("poststrat_clus1.mean_api00", "clus1", dict(clusters="dnum", fpc="fpc"), "api00", "mean"),
])
def test_post_stratification_equals_r_post_stratify(population, key, sample_name, design, y,
                                                   statistic):
    sample = skb.datasets.load_api(sample_name)
    balancer = skb.post_stratification(population, ["stype", "sch.wide"], tol=1e-12)
    assert list(balancer.targets) == [("stype", "sch.wide")]
    est = skb.BalancedFunctionalEstimator(balancer, design=skb.SurveyDesign(**design),
                                          statistic=statistic)
    row = est.fit(sample, sample[y], sample_weight=sample["pw"]).results_.iloc[0]
    assert row.estimate == pytest.approx(REF[f"{key}.estimate"][0], rel=1e-10)
    assert row.std_error == pytest.approx(REF[f"{key}.se"][0], rel=1e-9)


def test_bad_frames_are_clear_errors(population):
    with pytest.raises(ValueError, match="Column 'zip' is not in the frame"):
        skb.targets_from_frame(population, ["zip"])
    with pytest.raises(ValueError, match="missing value"):
        skb.targets_from_frame(population.assign(s=None), ["s"])
    with pytest.raises(ValueError, match="nonnegative"):
        skb.targets_from_frame(population, ["stype"], weights=-np.ones(len(population)))
    # a level the sample lacks: the balancer names it
    sample = skb.datasets.load_api("clus1")
    targets = skb.targets_from_frame(population, ["cname"])
    with pytest.raises(ValueError, match="no row in the data"):
        skb.MarginalBalancer(targets=targets).fit(sample, sample_weight=sample["pw"])
