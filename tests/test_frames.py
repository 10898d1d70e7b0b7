"""polars frames, Arrow dictionaries and pandas categoricals, read natively.

Every kind of column must give the weights that the same data as plain
Python objects give (object dtype, pandas.factorize): the encodings differ,
the levels and the weights must not.
"""

import numpy as np
import pandas as pd
import pytest

import skbalance as skb

pl = pytest.importorskip("polars")
pa = pytest.importorskip("pyarrow")

TARGETS = {"s": {"x": 0.3, "y": 0.5, None: 0.2}, "n": {1.0: 0.6, 2.0: 0.4},
           "b": {True: 0.45, False: 0.55}}


def _frames():
    rng = np.random.default_rng(4)
    n = 500
    s = rng.choice(np.array(["x", "y", None], dtype=object), n, p=[0.5, 0.3, 0.2])
    objects = pd.DataFrame({"s": s, "n": rng.choice([1.0, 2.0], n),
                            "b": rng.random(n) < 0.6}).astype({"s": object})
    return objects, rng.uniform(0.5, 2.0, n)


def _reference(objects, base, **kwargs):
    return skb.MarginalBalancer(targets=TARGETS, missing="level", tol=1e-12,
                                **kwargs).fit(objects, sample_weight=base).weights_


@pytest.mark.parametrize("kind", ["string", "categorical", "enum"])
def test_polars_columns_give_the_object_weights(kind):
    objects, base = _frames()
    frame = pl.from_pandas(objects)
    if kind == "categorical":
        frame = frame.with_columns(pl.col("s").cast(pl.Categorical))
    elif kind == "enum":  # a category no row has ("z"), as pandas categoricals keep
        frame = frame.with_columns(pl.col("s").cast(pl.Enum(["z", "y", "x"])))
    targets = {**TARGETS, "s": {**TARGETS["s"], "z": 0.0}} if kind == "enum" else TARGETS
    bal = skb.MarginalBalancer(targets=targets, missing="level", tol=1e-12)
    weights = bal.fit(frame, sample_weight=pl.Series(base)).weights_
    np.testing.assert_allclose(weights, _reference(objects, base), rtol=1e-13)
    assert list(bal.feature_names_in_) == ["s", "n", "b"]
    np.testing.assert_allclose(bal.compute_weights(frame, sample_weight=base), weights,
                               rtol=1e-13)
    if kind == "enum":
        assert "z" in list(bal.categories_["s"])


def test_polars_missing_values_are_named_and_no_pandas_copy_is_made(monkeypatch):
    objects, base = _frames()
    frame = pl.from_pandas(objects)
    with pytest.raises(ValueError, match=r"Column 's' has \d+ missing value"):
        skb.MarginalBalancer(targets=TARGETS).fit(frame)
    # the frame is never converted as a whole
    monkeypatch.setattr(pl.DataFrame, "to_pandas", lambda *a, **k: pytest.fail("to_pandas"))
    skb.MarginalBalancer(targets=TARGETS, missing="level").fit(frame)


def test_polars_numeric_target_design_and_estimators():
    api = skb.datasets.load_api("clus1")
    population = skb.datasets.load_api("pop")
    targets = {"stype": population["stype"].value_counts(),
               "enroll": skb.Total(float(population["enroll"].sum()))}
    frame = pl.from_pandas(api)
    kwargs = dict(targets=targets, tol=1e-12)
    for fitted, reference in [(frame, api)]:
        w = skb.MarginalBalancer(**kwargs).fit(fitted, sample_weight=fitted["pw"]).weights_
        expected = skb.MarginalBalancer(**kwargs).fit(reference,
                                                      sample_weight=reference["pw"]).weights_
        np.testing.assert_allclose(w, expected, rtol=1e-12)
    design = skb.SurveyDesign(clusters="dnum", fpc="fpc")
    est = skb.BalancedFunctionalEstimator(skb.MarginalBalancer(**kwargs), design=design)
    ref = skb.BalancedFunctionalEstimator(skb.MarginalBalancer(**kwargs), design=design)
    est.fit(frame, frame["api00"], sample_weight=frame["pw"])
    ref.fit(api, api["api00"], sample_weight=api["pw"])
    assert est.estimate_ == pytest.approx(ref.estimate_, rel=1e-12)
    assert est.std_error_ == pytest.approx(ref.std_error_, rel=1e-10)
    sga = skb.SpectralGapAnalyzer(columns=("stype", "sch.wide")).fit(frame)
    sga_ref = skb.SpectralGapAnalyzer(columns=("stype", "sch.wide")).fit(api)
    np.testing.assert_allclose(sga.singular_values_, sga_ref.singular_values_, rtol=1e-12)


def test_arrow_dictionary_columns_use_their_indices():
    objects, base = _frames()
    # two chunks with different dictionaries: unified before the indices are read
    half = len(objects) // 2
    values = [None if pd.isna(v) else v for v in objects["s"]]
    second = pa.DictionaryArray.from_arrays(
        pa.array([None if v is None else {"y": 0, "x": 1}[v] for v in values[half:]],
                 type=pa.int32()), pa.array(["y", "x", "unused"]))
    chunks = [pa.array(values[:half], type=pa.string()).dictionary_encode(), second]
    arrow = objects.assign(s=pd.Series(pd.arrays.ArrowExtensionArray(
        pa.chunked_array(chunks))))
    assert isinstance(arrow["s"].dtype, pd.ArrowDtype)
    weights = skb.MarginalBalancer(targets=TARGETS, missing="level", tol=1e-12).fit(
        arrow, sample_weight=base).weights_
    np.testing.assert_allclose(weights, _reference(objects, base), rtol=1e-13)


def test_pandas_categorical_codes_are_used_as_they_are():
    objects, base = _frames()
    categorical = objects.astype({"s": pd.CategoricalDtype(["y", "x", "w"])})
    codes_before = categorical["s"].cat.codes.copy()
    targets = {**TARGETS, "s": {**TARGETS["s"], "w": 0.0}}
    bal = skb.MarginalBalancer(targets=targets, missing="level", tol=1e-12)
    weights = bal.fit(categorical, sample_weight=base).weights_
    np.testing.assert_allclose(weights, _reference(objects, base), rtol=1e-13)
    pd.testing.assert_series_equal(categorical["s"].cat.codes, codes_before)
    # more than 127 categories: int16 codes; missing values widen them safely
    many = pd.Series(pd.Categorical([f"c{i % 300}" for i in range(600)] + [None]))
    X = pd.DataFrame({"g": many})
    shares = X["g"].value_counts(normalize=True, dropna=False)
    fitted = skb.MarginalBalancer(targets={"g": {(None if pd.isna(k) else k): v
                                                 for k, v in shares.items()}},
                                  missing="level").fit(X)
    np.testing.assert_allclose(fitted.weights_, 1.0, rtol=1e-12)


def test_polars_before_own_categories_renumbers_shared_ids():
    # polars < 1.32 has no pl.Categories: categorical ids are shared between
    # columns and are renumbered to the observed values
    from skbalance._rows import _shared_id_categories

    other = pl.Series(["q", "r"]).cast(pl.Categorical)  # takes ids first, if shared
    series = pl.Series(["b", None, "a", "b", "c"])
    physical, levels = _shared_id_categories(series, pl)
    assert list(levels) == ["b", "a", "c"]
    assert physical.to_list() == [0, None, 1, 0, 2]
    assert other.len() == 2


def test_polars_enum_with_many_categories_and_nulls():
    # UInt8 physical codes: the missing level's code (256) needs a wider type
    categories = [f"c{i:03d}" for i in range(256)]
    values = [categories[i % 256] for i in range(512)] + [None] * 4
    frame = pl.DataFrame({"g": pl.Series(values, dtype=pl.Enum(categories))})
    shares = {c: 2 / 516 for c in categories} | {None: 4 / 516}
    bal = skb.MarginalBalancer(targets={"g": shares}, missing="level").fit(frame)
    np.testing.assert_allclose(bal.weights_, 1.0, rtol=1e-12)


def test_polars_chunks_partial_fit_like_fit_on_all_rows():
    # partial_fit read chunks through pd.DataFrame(np.asarray(X)), which lost the
    # column names ("Unknown column 's': the data has columns [0, 1, 2]")
    objects, base = _frames()
    chunks = np.array_split(np.arange(len(objects)), 3)
    bal = skb.MarginalBalancer(targets=TARGETS, missing="level", tol=1e-12)
    for part in chunks:
        bal.partial_fit(pl.from_pandas(objects.iloc[part]), sample_weight=base[part])
    reference = _reference(objects, base)
    np.testing.assert_allclose(bal.compute_weights(pl.from_pandas(objects), base), reference,
                               rtol=1e-12)
    # the fitted state is the polars chunks', and plain arrays work by position too
    codes = objects.assign(s=objects["s"].fillna("z")).replace({"x": 0, "y": 1, "z": 2})
    codes = codes.astype(float).to_numpy()
    positional = {0: {0.0: 0.3, 1.0: 0.5, 2.0: 0.2}, 1: TARGETS["n"],
                  2: {1.0: 0.45, 0.0: 0.55}}
    by_position = skb.MarginalBalancer(targets=positional, tol=1e-12)
    for part in chunks:
        by_position.partial_fit(codes[part], sample_weight=base[part])
    np.testing.assert_allclose(by_position.compute_weights(codes, base), reference, rtol=1e-12)


def test_polars_supplied_replicate_columns_read_by_name():
    # the design read replicate columns with X[labels].to_numpy(dtype=...), which a
    # polars frame refused ("unexpected keyword argument 'dtype'"); now through Rows
    sample = skb.datasets.load_api("clus1")
    targets = skb.datasets.api_population_targets(["stype", "sch.wide"])
    built = skb.compute_replicate_weights(
        sample, skb.MarginalBalancer(targets=targets),
        skb.SurveyDesign(clusters="dnum", fpc="fpc", replicates="jk1"),
        sample_weight=sample["pw"])
    names = [f"rep{r}" for r in range(built.weights.shape[1])]
    frame = sample.assign(**dict(zip(names, built.weights.T)))
    design = skb.SurveyDesign(replicates="jk1", replicate_weights=names, weights="pw")
    balancer = skb.MarginalBalancer(targets=targets)
    estimator = skb.BalancedFunctionalEstimator(balancer, design=design)
    results = [estimator.fit(data, data["api00"]).results_
               for data in (frame, pl.from_pandas(frame))]
    np.testing.assert_allclose(results[1][["estimate", "std_error"]].to_numpy(),
                               results[0][["estimate", "std_error"]].to_numpy(), rtol=1e-14)
    assert results[0]["std_error"].iloc[0] > 0
