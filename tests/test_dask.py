"""Raking with Dask: one distributed group-by, the same weights as pandas."""

import numpy as np
import pandas as pd
import pytest

import skbalance as skb

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


def test_functional_estimator_says_it_needs_memory(frame):
    data, _ = frame
    with pytest.raises(TypeError, match="in-memory data"):
        skb.BalancedFunctionalEstimator(skb.MarginalBalancer(targets=TARGETS)).fit(
            dd.from_pandas(data, npartitions=2), np.ones(len(data)))


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
