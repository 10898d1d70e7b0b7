"""Raking with Dask: one distributed group-by, the same weights as pandas."""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

import skbalance as skb

dask = pytest.importorskip("dask")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    with distributed.Client(cluster) as client:
        yield client
    cluster.close()


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    n = 20_000
    age = rng.choice(["18-34", "35-54", "55+"], size=n, p=[0.5, 0.3, 0.2])
    sex = np.where(rng.random(n) < np.where(age == "18-34", 0.65, 0.45), "F", "M")
    region = rng.choice(["north", "south", "east", "west"], size=n)
    base = pd.Series(rng.uniform(0.5, 3.0, size=n), name="w")
    return pd.DataFrame({"age": age, "sex": sex, "region": region}), base


TARGETS = {("age", "sex"): {(a, s): 1 / 6 for a in ["18-34", "35-54", "55+"]
                            for s in ["F", "M"]},
           "region": {"north": 0.1, "south": 0.2, "east": 0.3, "west": 0.4}}


def test_dask_fit_equals_pandas(client, frame):
    data, base = frame
    reference = skb.MarginalBalancer(targets=TARGETS, tol=1e-12).fit(data, sample_weight=base)
    lazy = dd.from_pandas(data, npartitions=6)
    lazy_base = dd.from_pandas(base, npartitions=6)
    fitted = skb.MarginalBalancer(targets=TARGETS, tol=1e-12).fit(lazy, sample_weight=lazy_base)
    assert type(fitted.weights_).__module__.startswith("dask")  # lazy until computed
    weights = fitted.weights_.compute()
    np.testing.assert_allclose(weights.to_numpy(), reference.weights_, rtol=1e-12)
    assert weights.index.equals(data.index)
    assert fitted.n_iter_ == reference.n_iter_
    assert fitted.effective_sample_size_ == pytest.approx(reference.effective_sample_size_,
                                                          rel=1e-12)
    pd.testing.assert_frame_equal(fitted.diagnostics_, reference.diagnostics_,
                                  check_exact=False, rtol=1e-12, atol=1e-15)
    new = dd.from_pandas(data.iloc[::5], npartitions=3)
    np.testing.assert_allclose(fitted.compute_weights(new).compute().to_numpy(),
                               reference.compute_weights(data.iloc[::5]), rtol=1e-12)


def test_partial_fit_over_chunks_equals_fit(frame):
    data, base = frame
    reference = skb.MarginalBalancer(targets=TARGETS, tol=1e-12).fit(data, sample_weight=base)
    streamed = skb.MarginalBalancer(targets=TARGETS, tol=1e-12)
    for start in range(0, len(data), 3000):
        rows = slice(start, start + 3000)
        streamed.partial_fit(data.iloc[rows], sample_weight=base.iloc[rows])
    np.testing.assert_allclose(streamed.compute_weights(data, sample_weight=base),
                               reference.weights_, rtol=1e-12)
    assert streamed.design_effect_ == pytest.approx(reference.design_effect_, rel=1e-12)
    pd.testing.assert_frame_equal(streamed.diagnostics_, reference.diagnostics_,
                                  check_exact=False, rtol=1e-12, atol=1e-15)


def test_dask_missing_values_and_bad_weights(client, frame):
    data, base = frame
    data = data.copy()
    data.loc[data.index[:7], "region"] = None
    lazy = dd.from_pandas(data, npartitions=4)
    with pytest.raises(ValueError, match=r"'region' has 7 missing value"):
        skb.MarginalBalancer(targets=TARGETS).fit(lazy)
    targets = dict(TARGETS, region={"north": 0.1, "south": 0.2, "east": 0.3, "west": 0.35,
                                    None: 0.05})
    reference = skb.MarginalBalancer(targets=targets, missing="level", tol=1e-12).fit(data)
    fitted = skb.MarginalBalancer(targets=targets, missing="level", tol=1e-12).fit(lazy)
    np.testing.assert_allclose(fitted.weights_.compute().to_numpy(), reference.weights_,
                               rtol=1e-12)
    bad = base.copy()
    bad.iloc[3] = -1.0
    with pytest.raises(ValueError, match="finite and nonnegative"):
        skb.MarginalBalancer(targets=TARGETS).fit(
            dd.from_pandas(frame[0], npartitions=2),
            sample_weight=dd.from_pandas(bad, npartitions=2))


@pytest.fixture(scope="module")
def survey():
    """Rows with strata, clusters, an fpc, domains, a categorical outcome and a
    numeric one (with missing values) far from 0, so that a lost digit shows."""
    rng = np.random.default_rng(7)
    n = 12_000
    data = pd.DataFrame({"a": rng.integers(0, 3, n), "b": rng.choice(["x", "y"], n),
                         "st": rng.integers(0, 5, n)})
    data["psu"] = data["st"] * 10 + rng.integers(0, 6, n)
    data["w"] = rng.lognormal(0, 0.3, n)
    data["y"] = rng.normal(5000, 10, n) + 3 * data["a"]
    data.loc[rng.random(n) < 0.05, "y"] = np.nan
    data["c"] = rng.choice(["p", "q", "r"], n, p=[0.5, 0.3, 0.2])
    data["d"] = rng.integers(0, 4, n)
    data["x"] = rng.uniform(1, 2, n)
    data["N"] = data["st"].map({0: 100, 1: 200, 2: 150, 3: 90, 4: 300})
    return data


SURVEY_TARGETS = {"a": {0: 0.3, 1: 0.3, 2: 0.4}, "b": {"x": 0.5, "y": 0.5}}
NUMBERS = ["estimate", "std_error", "ci_low", "ci_high", "deff", "df", "n"]


@pytest.mark.parametrize("options, outcome", [
    (dict(design=dict(clusters="psu", strata="st", fpc="N")), "y"),
    (dict(design=dict(clusters="psu", strata="st"), statistic="total"), ["y", "c"]),
    (dict(design=dict(clusters="psu", strata="st"), domain=["d", "c"], df="domain"), "y"),
    (dict(design=dict(clusters="psu", strata="st", weights="w"), domain="d",
          statistic="ratio", denominator="x"), "y"),
    (dict(design=dict(clusters="psu", strata="st"), ci_method="beta"), "c"),
    (dict(design=dict(clusters="psu", strata="st"), baseline="empirical", domain="d"), "c"),
    (dict(design=dict(clusters="psu", strata="st"), df="satterthwaite"), ["y", "c"]),
    (dict(design=dict(clusters="psu", strata="st"), linearization="cr2"), "y"),
    (dict(design=dict(clusters="psu", strata="st", replicates="jk1")), "y"),
    (dict(design=dict(clusters="psu", strata="st", replicates="subbootstrap",
                      n_replicates=40, random_state=3), domain="d"), ["y", "c"]),
    (dict(design=dict(clusters="psu", strata="st", lonely_psu="average"), domain="d"), "y"),
])
def test_estimates_on_dask_equal_the_rows(survey, options, outcome):
    """Every number of the results, the covariance matrix, Kish's size and the
    weights, from the groups of a dask frame, equal the in-memory fit's."""
    options = dict(options)
    design = skb.SurveyDesign(**options.pop("design"))
    data = survey
    if design.lonely_psu == "average":  # a stratum with one unit
        data = data[(data["st"] != 4) | (data["psu"] == 40)]
    sample_weight = None if design.weights is not None else data["w"]

    def estimator():
        return skb.BalancedFunctionalEstimator(
            skb.MarginalBalancer(targets=SURVEY_TARGETS, tol=1e-12), design=design,
            na_rm=True, **options)

    rows = estimator().fit(data, data[outcome], sample_weight=sample_weight)
    lazy = dd.from_pandas(data, npartitions=5)
    groups = estimator().fit(lazy, outcome, sample_weight=None if sample_weight is None
                             else lazy["w"])
    expected = rows.results_[NUMBERS].to_numpy(dtype=np.float64)
    got = groups.results_[NUMBERS].to_numpy(dtype=np.float64)
    np.testing.assert_allclose(got[:, [0, 1, 2, 3, 5]], expected[:, [0, 1, 2, 3, 5]],
                               rtol=1e-10, atol=0)  # estimate, SE, interval, df
    np.testing.assert_array_equal(got[:, 6], expected[:, 6])  # n
    # the SRS variance of a total is sum w y^2 / N - mean^2: with y near 5000
    # and a spread near 10 it keeps 1e-16 * 5000^2 / 10^2 of relative accuracy
    # on either path
    np.testing.assert_allclose(got[:, 4], expected[:, 4], rtol=1e-9, atol=0)
    assert (groups.results_["n"] > groups.balancer_.n_cells_).all()  # rows, not groups
    pd.testing.assert_frame_equal(groups.results_[["statistic", "outcome", "level", "domain"]],
                                  rows.results_[["statistic", "outcome", "level", "domain"]])
    scale = np.sqrt(np.outer(np.diag(rows.vcov_), np.diag(rows.vcov_)))  # SE_i SE_j
    np.testing.assert_array_less(np.abs(groups.vcov_ - rows.vcov_), 1e-10 * scale + 1e-300)
    assert groups.effective_sample_size_ == pytest.approx(rows.effective_sample_size_,
                                                          rel=1e-12)
    np.testing.assert_allclose(groups.weights_.compute().to_numpy(), rows.weights_,
                               rtol=1e-12)
    low, high = groups.confidence_interval(0.1)
    np.testing.assert_allclose(np.r_[low, high], np.r_[rows.confidence_interval(0.1)],
                               rtol=1e-10)


def test_dask_design_effect_counts_the_spread_within_groups(survey):
    """The SRS variance of a mean, by a plain loop over the rows: the groups'
    means alone would leave out the spread inside every group."""
    data = survey.dropna(subset=["y"])
    design = skb.SurveyDesign(clusters="psu", strata="st")
    est = skb.BalancedFunctionalEstimator(
        skb.MarginalBalancer(targets=SURVEY_TARGETS, tol=1e-12), design=design).fit(
        dd.from_pandas(data, npartitions=3), "y", sample_weight=dd.from_pandas(
            data["w"], npartitions=3))
    w = est.weights_.compute().to_numpy()
    y = data["y"].to_numpy()
    n, total = len(y), w.sum()
    mean = np.sum(w * y) / total
    svyvar = np.sum(w * (y - mean) ** 2) / total * n / (n - 1)
    srs = svyvar / n * (1 - n / total)
    assert est.results_["deff"].iat[0] == pytest.approx(est.std_error_ ** 2 / srs, rel=1e-9)
    assert est.results_["n"].iat[0] == n


def test_dask_estimates_with_short_and_empty_partitions(survey):
    """Partitions shorter than the look at the outcomes' centre, and an empty
    first one (a filtered frame), give the in-memory numbers without a
    warning."""
    data = survey.sort_values("st", kind="stable")
    design = skb.SurveyDesign(clusters="psu", strata="st")

    def estimator():
        return skb.BalancedFunctionalEstimator(
            skb.MarginalBalancer(targets=SURVEY_TARGETS, tol=1e-12), design=design,
            na_rm=True)

    kept = data[data["st"] != 0]
    rows = estimator().fit(kept, kept[["y", "c"]], sample_weight=kept["w"])
    lazy = dd.from_pandas(data, npartitions=30, sort=False)  # about 400 rows each
    lazy = lazy[lazy["st"] != 0]
    lengths = lazy.map_partitions(len).compute().tolist()
    assert lengths[0] == 0 and 0 < max(lengths) < 1000
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        groups = estimator().fit(lazy, ["y", "c"], sample_weight=lazy["w"])
    np.testing.assert_allclose(groups.results_[NUMBERS].to_numpy(dtype=np.float64),
                               rows.results_[NUMBERS].to_numpy(dtype=np.float64),
                               rtol=1e-9, atol=0)


def test_dask_missing_domain_values_are_counted_in_rows(survey):
    data = survey.assign(dom=np.where(np.arange(len(survey)) % 1000 == 0, None,
                                      survey["c"].to_numpy()))
    lazy = dd.from_pandas(data, npartitions=3)
    for domain in ["dom", ["d", "dom"]]:
        with pytest.raises(ValueError, match=r"Domain column 'dom' has 12 missing value\(s\) "
                                             r"in 12000 rows"):
            skb.BalancedFunctionalEstimator(
                skb.MarginalBalancer(targets=SURVEY_TARGETS),
                design=skb.SurveyDesign(clusters="psu", strata="st"), domain=domain,
                na_rm=True).fit(lazy, "y", sample_weight=lazy["w"])


def test_dask_estimates_on_a_cluster(client, survey):
    data = survey.dropna(subset=["y"])
    design = skb.SurveyDesign(clusters="psu", strata="st", fpc="N")
    est = skb.BalancedFunctionalEstimator(skb.MarginalBalancer(targets=SURVEY_TARGETS,
                                                               tol=1e-12), design=design)
    rows = est.fit(data, data["y"], sample_weight=data["w"])
    lazy = dd.from_pandas(data, npartitions=4)
    groups = clone(est).fit(lazy, lazy["y"], sample_weight=lazy["w"])  # by position
    assert groups.estimate_ == pytest.approx(rows.estimate_, rel=1e-13)
    assert groups.std_error_ == pytest.approx(rows.std_error_, rel=1e-10)


def test_dask_estimates_refuse_what_groups_cannot_give(survey):
    lazy = dd.from_pandas(survey, npartitions=2)
    balancer = skb.MarginalBalancer(targets=SURVEY_TARGETS)
    clustered = skb.SurveyDesign(clusters="psu", strata="st")

    def fit(**options):
        design = options.pop("design", clustered)
        y = options.pop("y", "y")
        return skb.BalancedFunctionalEstimator(balancer, design=design, **options).fit(
            lazy, y, sample_weight=lazy["w"])

    with pytest.raises(ValueError, match="needs a SurveyDesign with clusters"):
        fit(design=None, na_rm=True)
    with pytest.raises(ValueError, match="needs a SurveyDesign with clusters"):
        fit(design=skb.SurveyDesign(strata="st"), na_rm=True)
    with pytest.raises(ValueError, match="A quantile needs every row's value"):
        fit(statistic="quantile", na_rm=True)
    with pytest.raises(ValueError, match="baselines are None"):
        fit(baseline="ipwi", na_rm=True)
    with pytest.raises(ValueError, match="'likelihood' refits a model"):
        fit(ci_method="likelihood", y="c")
    with pytest.raises(TypeError, match="the domain must name columns of X"):
        fit(domain=survey["d"].to_numpy(), na_rm=True)
    with pytest.raises(ValueError, match="Supplied replicate weights"):
        fit(design=skb.SurveyDesign(clusters="psu", replicates="jk1",
                                    replicate_weights=["w", "w"]), na_rm=True)
    n_missing = int(survey["y"].isna().sum())  # rows, not groups
    with pytest.raises(ValueError, match=rf"Outcome 'y' has {n_missing} missing value\(s\) "
                                         r"in 12000 rows; pass na_rm=True"):
        fit()
    with pytest.raises(ValueError, match="Unknown outcome column 'z'"):
        fit(y="z")
    with pytest.raises(TypeError, match="a MarginalBalancer"):
        skb.BalancedFunctionalEstimator(skb.TrimmedBalancer(balancer, upper=5),
                                        design=clustered, na_rm=True).fit(lazy, "y")


def test_base_weights_are_used_by_position_on_both_paths(client, frame):
    data, base = frame
    shuffled = base.set_axis(base.index[::-1])  # same values, another index
    reference = skb.MarginalBalancer(targets=TARGETS, tol=1e-12).fit(data, sample_weight=base)
    with pytest.warns(UserWarning, match="used by position, not aligned by index"):
        on_pandas = skb.MarginalBalancer(targets=TARGETS, tol=1e-12).fit(
            data, sample_weight=shuffled)
    np.testing.assert_allclose(on_pandas.weights_, reference.weights_, rtol=1e-12)
    lazy = dd.from_pandas(data, npartitions=4)
    with pytest.warns(UserWarning, match="used by position, not aligned by index"):
        on_dask = skb.MarginalBalancer(targets=TARGETS, tol=1e-12).fit(
            lazy, sample_weight=dd.from_pandas(shuffled, npartitions=3, sort=False))
    np.testing.assert_allclose(on_dask.weights_.compute().to_numpy(), reference.weights_,
                               rtol=1e-10)
    # a NumPy array of weights with a dask frame: by position too
    plain = skb.MarginalBalancer(targets=TARGETS, tol=1e-12).fit(lazy,
                                                                 sample_weight=base.to_numpy())
    np.testing.assert_allclose(plain.weights_.compute().to_numpy(), reference.weights_,
                               rtol=1e-10)
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(20000,\)"):
        skb.MarginalBalancer(targets=TARGETS).fit(lazy, sample_weight=np.ones(3))


def test_empty_partition(client, frame):
    data, base = frame
    lazy = dd.from_pandas(data, npartitions=3)
    with_empty = dd.concat([lazy, dd.from_pandas(data.iloc[:0], npartitions=1)])
    assert int(with_empty.map_partitions(len).compute().min()) == 0
    fitted = skb.MarginalBalancer(targets=TARGETS, tol=1e-12).fit(with_empty)
    reference = skb.MarginalBalancer(targets=TARGETS, tol=1e-12).fit(data)
    np.testing.assert_allclose(fitted.weights_.compute().to_numpy(), reference.weights_,
                               rtol=1e-10)


def test_a_series_partitioned_as_the_frame_is_matched_partition_by_partition(frame):
    """No pass over the rows to count them: each partition's weights sit beside
    its rows; a series split otherwise is an error, another index a warning."""
    data, base = frame
    reference = skb.MarginalBalancer(targets=TARGETS, tol=1e-12).fit(data, sample_weight=base)
    lazy = dd.from_pandas(data.assign(w=base), npartitions=4)
    fitted = skb.MarginalBalancer(targets=TARGETS, tol=1e-12).fit(
        lazy[["age", "sex", "region"]], sample_weight=lazy["w"])
    np.testing.assert_allclose(fitted.weights_.compute().to_numpy(), reference.weights_,
                               rtol=1e-10)
    split_otherwise = dd.from_pandas(base.iloc[:5000], npartitions=1)
    for start in (5000, 10000, 15000):
        split_otherwise = dd.concat([split_otherwise,
                                     dd.from_pandas(base.iloc[start:start + 5000 + (
                                         10 if start == 5000 else -10 if start == 10000
                                         else 0)], npartitions=1)])
    assert split_otherwise.npartitions == 4
    with pytest.raises(ValueError, match="sample_weight is not partitioned as X"):
        skb.MarginalBalancer(targets=TARGETS).fit(lazy[["age", "sex", "region"]],
                                                  sample_weight=split_otherwise)
    moved = dd.from_pandas(base.set_axis(base.index + 1), npartitions=4)
    # said where the partitions are matched: here (a cluster's workers keep it)
    with dask.config.set(scheduler="sync"), pytest.warns(
            UserWarning, match="used by position, not aligned by index"):
        skb.MarginalBalancer(targets=TARGETS).fit(lazy[["age", "sex", "region"]],
                                                  sample_weight=moved)
