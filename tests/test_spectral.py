"""SpectralGapAnalyzer against the theory functions on tables built by pandas."""

import numpy as np
import pandas as pd
import pytest

import skbalance as skb
from skbalance import theory


@pytest.fixture
def pairs():
    rng = np.random.default_rng(0)
    n = 3000
    x = rng.choice(["a", "b", "c", "d"], size=n, p=[0.4, 0.3, 0.2, 0.1])
    shift = {"a": 0, "b": 1, "c": 2, "d": 3}
    y = np.array([f"y{(shift[v] + rng.integers(0, 3)) % 5}" for v in x])
    base = rng.uniform(0.5, 2.0, size=n)
    return pd.DataFrame({"x": x, "y": y}), base


def _table(frame, base):
    table = pd.crosstab(frame["x"], frame["y"], values=base, aggfunc="sum").fillna(0)
    return table / table.to_numpy().sum()


def test_spectrum_equals_theory_on_the_empirical_table(pairs):
    frame, base = pairs
    sga = skb.SpectralGapAnalyzer().fit(frame, sample_weight=base)
    table = _table(frame, base)
    expected = theory.singular_values(table.to_numpy())
    np.testing.assert_allclose(sga.singular_values_, expected, atol=1e-12)
    assert sga.spectral_gap_ == pytest.approx(1 - expected[1], abs=1e-12)
    # the same table up to the order of levels
    assert list(sga.categories_) == ["x", "y"]
    reordered = table.loc[list(sga.categories_["x"]), list(sga.categories_["y"])]
    np.testing.assert_allclose(sga.joint_table_, reordered.to_numpy(), atol=1e-15)


def test_plug_in_curve_equals_theory_on_the_empirical_table(pairs):
    frame, base = pairs
    rng = np.random.default_rng(1)
    cell_value = {(x, y): rng.normal() for x in "abcd" for y in [f"y{i}" for i in range(5)]}
    outcome = np.array([cell_value[(x, y)] for x, y in zip(frame["x"], frame["y"])])
    sga = skb.SpectralGapAnalyzer(max_k=8).fit(frame, outcome, sample_weight=base)
    table = _table(frame, base)
    h = pd.DataFrame(
        [[cell_value[(x, y)] for y in table.columns] for x in table.index]).to_numpy()
    P = table.to_numpy()
    for k in range(9):
        assert sga.variance_curve_[k] == pytest.approx(
            theory.asymptotic_variance(P, h, k), abs=1e-12)
    assert sga.variance_limit_ == pytest.approx(theory.asymptotic_variance_limit(P, h),
                                                abs=1e-12)
    assert sga.ipwi_variance_ == pytest.approx(theory.ipwi_variance(P, h), abs=1e-12)
    # recommended_k_ is the first k within rtol=1% of the limit, on theory's numbers
    theory_curve = [theory.asymptotic_variance(P, h, k) for k in range(9)]
    limit = theory.asymptotic_variance_limit(P, h)
    k = sga.recommended_k_
    assert theory_curve[k] <= 1.01 * limit + 1e-12
    assert all(theory_curve[j] > 1.01 * limit for j in range(k))


def test_within_cell_variance_is_added(pairs):
    frame, base = pairs
    rng = np.random.default_rng(2)
    outcome = rng.normal(size=len(frame)) + (frame["x"] == "a").to_numpy()
    sga = skb.SpectralGapAnalyzer(max_k=4).fit(frame, outcome, sample_weight=base)
    grouped = pd.DataFrame({"x": frame["x"], "y": frame["y"], "v": outcome, "w": base})
    grouped["wv"] = grouped["w"] * grouped["v"]
    cells = grouped.groupby(["x", "y"]).agg(w=("w", "sum"), wv=("wv", "sum"))
    cells["mean"] = cells["wv"] / cells["w"]
    merged = grouped.join(cells["mean"], on=["x", "y"])
    noise = np.sum(merged["w"] * (merged["v"] - merged["mean"]) ** 2) / base.sum()
    table = _table(frame, base)
    h = cells["mean"].unstack().reindex(index=table.index, columns=table.columns)
    h = h.fillna(0).to_numpy()
    expected = theory.asymptotic_variance(table.to_numpy(), h, 3) + noise
    assert sga.variance_curve_[3] == pytest.approx(expected, rel=1e-12)


def test_transform_gives_correspondence_analysis_coordinates(pairs):
    frame, base = pairs
    sga = skb.SpectralGapAnalyzer(n_components=3).set_output(transform="pandas")
    coords = sga.fit(frame, sample_weight=base).transform(frame)
    assert list(coords.columns) == ["x_sf1", "x_sf2", "x_sf3", "y_sf1", "y_sf2", "y_sf3"]
    w = base / base.sum()
    a, b = coords.iloc[:, :3].to_numpy(), coords.iloc[:, 3:].to_numpy()
    # unit variance, zero mean and correlation s_j, computed over the rows
    np.testing.assert_allclose(w @ a, 0, atol=1e-12)
    np.testing.assert_allclose((a * w[:, None]).T @ a, np.eye(3), atol=1e-12)
    np.testing.assert_allclose((b * w[:, None]).T @ b, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(np.einsum("i,ij,ij->j", w, a, b),
                               sga.singular_values_[1:4], atol=1e-12)


def test_unseen_level_and_shape_errors(pairs):
    frame, _ = pairs
    sga = skb.SpectralGapAnalyzer().fit(frame)
    with pytest.raises(ValueError, match="'x' has level 'z', unseen in fit"):
        sga.transform(frame.iloc[:2].assign(x=["a", "z"]))
    with pytest.raises(ValueError, match="needs two categorical columns"):
        skb.SpectralGapAnalyzer().fit(np.zeros((5, 1)))
    with pytest.raises(ValueError, match="y must have shape"):
        skb.SpectralGapAnalyzer().fit(frame, np.ones(3))


def test_columns_parameter_and_level_permutation(pairs):
    frame, base = pairs
    wide = frame.assign(other=1.0)[["other", "y", "x"]]
    sga = skb.SpectralGapAnalyzer(columns=("x", "y")).fit(wide, sample_weight=base)
    relabelled = frame.assign(x=frame["x"].map({"a": "q", "b": "p", "c": "s", "d": "r"}))
    again = skb.SpectralGapAnalyzer().fit(relabelled, sample_weight=base)
    np.testing.assert_allclose(sga.singular_values_, again.singular_values_, atol=1e-12)


def test_refit_without_y_drops_the_curve(pairs):
    frame, _ = pairs
    sga = skb.SpectralGapAnalyzer().fit(frame, np.ones(len(frame)))
    assert hasattr(sga, "variance_curve_")
    assert not hasattr(sga.fit(frame), "variance_curve_")


def test_missing_levels_get_advice_the_analyzer_can_take():
    import pandas as pd

    X = pd.DataFrame({"a": ["x", None, "y"], "b": ["u", "v", "u"]})
    with pytest.raises(ValueError, match=r"Column 'a' has 1 missing value\(s\).*fill or "
                                         r"drop them\.$") as caught:
        skb.SpectralGapAnalyzer().fit(X)
    assert "missing='level'" not in str(caught.value)
