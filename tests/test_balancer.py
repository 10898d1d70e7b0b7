"""MarginalBalancer against independent computations."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize
from sklearn.exceptions import ConvergenceWarning

import skbalance as skb

from ._reference import dense_row_weights


def _random_codes(rng, shape, n):
    """Codes of n rows on a grid, every level present, cells correlated."""
    probabilities = rng.dirichlet(np.full(np.prod(shape), 0.7)).reshape(shape)
    flat = rng.choice(probabilities.size, size=n, p=probabilities.ravel())
    codes = list(np.unravel_index(flat, shape))
    for axis, size in enumerate(shape):  # make sure every level occurs
        codes[axis][:size] = np.arange(size)
    return codes


@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 4)])
@pytest.mark.parametrize("k", range(11))
@pytest.mark.parametrize("with_base", [False, True])
def test_k_steps_equal_dense_table_recursion(shape, k, with_base):
    rng = np.random.default_rng(k + 100 * len(shape))
    n = 300
    codes = _random_codes(rng, shape, n)
    base = rng.uniform(0.5, 3.0, size=n) if with_base else np.ones(n)
    targets = [rng.dirichlet(np.ones(size)) for size in shape]
    names = ["x", "y", "z"][: len(shape)]
    frame = pd.DataFrame({name: c for name, c in zip(names, codes)})
    spec = {name: dict(enumerate(t)) for name, t in zip(names, targets)}

    bal = skb.MarginalBalancer(targets=spec, max_iter=k, tol=0)
    bal.fit(frame, sample_weight=base if with_base else None)

    expected = dense_row_weights(codes, base, targets, k)
    np.testing.assert_allclose(bal.weights_, expected, rtol=1e-12, atol=0)
    assert bal.n_iter_ == k
    assert bal.marginal_error_.shape == (k + 1, len(shape))


def test_factors_reproduce_weights(survey, survey_targets):
    bal = skb.MarginalBalancer(targets=survey_targets).fit(survey)
    product = np.ones(len(survey))
    for column, factors in bal.factors_.items():
        product *= survey[column].map(factors).to_numpy()
    np.testing.assert_allclose(bal.weights_, bal.weight_scale_ * product, rtol=1e-13)


def test_converged_margins_and_total(survey, survey_targets):
    bal = skb.MarginalBalancer(targets=survey_targets, tol=1e-12).fit(survey)
    assert bal.converged_
    assert bal.n_iter_ < bal.max_iter
    for column, target in survey_targets.items():
        share = pd.Series(bal.weights_).groupby(survey[column].to_numpy()).sum() / len(survey)
        for level, value in target.items():
            assert abs(share[level] - value) <= 1e-12
    assert bal.weights_.sum() == pytest.approx(len(survey), rel=1e-12)
    # The last row of the error history is measured in full and within tol;
    # every earlier row has a measured error above tol.
    assert not np.isnan(bal.marginal_error_[-1]).any()
    assert bal.marginal_error_[-1].max() <= 1e-12
    assert np.nanmax(bal.marginal_error_[:-1], axis=1).min() > 1e-12


def _max_error(frame, weights, targets):
    """Largest absolute marginal error, recomputed with pandas."""
    worst = 0.0
    for column, target in targets.items():
        shares = pd.Series(weights).groupby(frame[column].to_numpy()).sum() / weights.sum()
        worst = max(worst, max(abs(shares[lv] - v) for lv, v in target.items()))
    return worst


def test_tol_stops_at_first_step_within_tol(survey, survey_targets):
    tol = 1e-4
    bal = skb.MarginalBalancer(targets=survey_targets, tol=tol, solver="steps").fit(survey)
    for k in range(bal.n_iter_ + 1):
        weights = skb.compute_balancing_weights(survey, survey_targets, max_iter=k, tol=0)
        error = _max_error(survey, weights, survey_targets)
        if k < bal.n_iter_:
            assert error > tol
            assert np.nanmax(bal.marginal_error_[k]) <= error * (1 + 1e-9)
        else:
            assert error <= tol
            np.testing.assert_allclose(bal.weights_, weights, rtol=1e-14)
            assert bal.marginal_error_[k].max() == pytest.approx(error, rel=1e-9)


def test_joint_margin_equals_raking_on_combined_column(survey):
    rng = np.random.default_rng(1)
    combos = [(a, s) for a in ["18-34", "35-54", "55+"] for s in ["F", "M"]]
    joint = dict(zip(combos, rng.dirichlet(np.ones(6))))
    region = {"north": 0.1, "south": 0.2, "east": 0.3, "west": 0.4}

    bal = skb.MarginalBalancer(targets={("age", "sex"): joint, "region": region}, tol=0,
                               max_iter=7).fit(survey)

    combined = survey.assign(age_sex=survey["age"] + "|" + survey["sex"])
    flat = {f"{a}|{s}": v for (a, s), v in joint.items()}
    reference = skb.MarginalBalancer(targets={"age_sex": flat, "region": region}, tol=0,
                                     max_iter=7).fit(combined)
    np.testing.assert_allclose(bal.weights_, reference.weights_, rtol=1e-13)
    assert isinstance(bal.factors_[("age", "sex")].index, pd.MultiIndex)

    series = pd.Series(joint)  # a MultiIndex Series works the same
    again = skb.MarginalBalancer(targets={("age", "sex"): series, "region": region}, tol=0,
                                 max_iter=7).fit(survey)
    np.testing.assert_allclose(again.weights_, reference.weights_, rtol=1e-13)


def test_long_table_and_series_targets(survey, survey_targets):
    rows = [(c, lv, v) for c, levels in survey_targets.items() for lv, v in levels.items()]
    long = pd.DataFrame(rows, columns=["column", "level", "value"])
    series = {c: pd.Series(levels) for c, levels in survey_targets.items()}
    expected = skb.compute_balancing_weights(survey, survey_targets)
    np.testing.assert_allclose(skb.compute_balancing_weights(survey, long), expected,
                               rtol=1e-14)
    np.testing.assert_allclose(skb.compute_balancing_weights(survey, series), expected,
                               rtol=1e-14)


def test_count_targets_sum_to_population_total(survey, survey_targets):
    counts = {c: {lv: v * 5000 for lv, v in levels.items()}
              for c, levels in survey_targets.items()}
    base = np.random.default_rng(2).uniform(1, 4, size=len(survey))
    w_counts = skb.compute_balancing_weights(survey, counts, sample_weight=base, tol=1e-12)
    w_props = skb.compute_balancing_weights(survey, survey_targets, sample_weight=base,
                                            tol=1e-12)
    assert w_counts.sum() == pytest.approx(5000, rel=1e-12)
    assert w_props.sum() == pytest.approx(base.sum(), rel=1e-12)
    np.testing.assert_allclose(w_counts / 5000, w_props / base.sum(), rtol=1e-12)


def test_invariant_to_rescaling_base_weights(survey, survey_targets):
    base = np.random.default_rng(3).uniform(1, 4, size=len(survey))
    w1 = skb.compute_balancing_weights(survey, survey_targets, sample_weight=base)
    w2 = skb.compute_balancing_weights(survey, survey_targets, sample_weight=37.5 * base)
    np.testing.assert_allclose(w2, 37.5 * w1, rtol=1e-12)
    counts = {c: {lv: v * 900 for lv, v in levels.items()}
              for c, levels in survey_targets.items()}
    c1 = skb.compute_balancing_weights(survey, counts, sample_weight=base)
    c2 = skb.compute_balancing_weights(survey, counts, sample_weight=0.01 * base)
    np.testing.assert_allclose(c1, c2, rtol=1e-12)


def test_row_permutation_equivariance(survey, survey_targets):
    base = np.random.default_rng(4).uniform(1, 4, size=len(survey))
    order = np.random.default_rng(5).permutation(len(survey))
    w = skb.compute_balancing_weights(survey, survey_targets, sample_weight=base)
    w_perm = skb.compute_balancing_weights(survey.iloc[order], survey_targets,
                                           sample_weight=base[order])
    np.testing.assert_allclose(w_perm, w[order], rtol=1e-13)


@st.composite
def feasible_problems(draw):
    """Random data and targets met exactly by some positive weighting."""
    seed = draw(st.integers(0, 2**32 - 1))
    n_columns = draw(st.integers(1, 4))
    sizes = draw(st.lists(st.integers(1, 5), min_size=n_columns, max_size=n_columns))
    n_rows = draw(st.integers(max(sizes), 120))
    rng = np.random.default_rng(seed)
    codes = [rng.integers(0, s, size=n_rows) for s in sizes]
    for c, s in zip(codes, sizes):
        c[:s] = np.arange(s)
    truth = rng.uniform(0.2, 5.0, size=n_rows)
    targets = {}
    for j, (c, s) in enumerate(zip(codes, sizes)):
        mass = np.bincount(c, truth, minlength=s)
        targets[f"c{j}"] = {int(level): mass[level] / truth.sum() for level in range(s)}
    frame = pd.DataFrame({f"c{j}": c for j, c in enumerate(codes)})
    base = rng.uniform(0.5, 2.0, size=n_rows)
    return frame, targets, base


@settings(max_examples=60, deadline=None, derandomize=True)
@given(feasible_problems())
def test_margins_met_to_tol_on_random_feasible_problems(problem):
    frame, targets, base = problem
    tol = 1e-9
    bal = skb.MarginalBalancer(targets=targets, tol=tol, max_iter=20000)
    bal.fit(frame, sample_weight=base)
    assert bal.converged_
    total = bal.weights_.sum()
    for column, target in targets.items():
        shares = np.bincount(frame[column], bal.weights_) / total
        for level, value in target.items():
            assert abs(shares[level] - value) <= tol * (1 + 1e-6)


def test_levels_of_any_type_are_matched_as_given():
    rng = np.random.default_rng(6)
    raw = rng.integers(0, 3, size=200)
    raw[:3] = [0, 1, 2]
    names = np.array(["a", "b", "c"])[raw]
    target = [0.2, 0.3, 0.5]
    frames = {
        "int": (pd.DataFrame({"g": raw}), {"g": {0: 0.2, 1: 0.3, 2: 0.5}}),
        "str": (pd.DataFrame({"g": names}), {"g": dict(zip("abc", target))}),
        "category": (pd.DataFrame({"g": pd.Categorical(names, categories=list("cab"))}),
                     {"g": dict(zip("abc", target))}),
        "object": (pd.DataFrame({"g": names.astype(object)}),
                   {"g": dict(zip("abc", target))}),
        "array": (raw.reshape(-1, 1), {0: {0: 0.2, 1: 0.3, 2: 0.5}}),
    }
    results = [skb.compute_balancing_weights(X, t) for X, t in frames.values()]
    for weights in results[1:]:
        np.testing.assert_allclose(weights, results[0], rtol=1e-14)
    shares = np.bincount(raw, results[0]) / 200
    np.testing.assert_allclose(shares, target, atol=1e-8)


def test_unobserved_categories_need_no_target():
    cats = pd.Categorical(["a", "b", "a"], categories=["a", "b", "never"])
    X = pd.DataFrame({"g": cats})
    w = skb.compute_balancing_weights(X, {"g": {"a": 0.5, "b": 0.5}})
    np.testing.assert_allclose(w, [0.75, 1.5, 0.75])


def test_targets_none_is_uniform_over_observed_levels():
    X = np.array([[0, 5], [0, 6], [1, 6], [1, 6], [1, 6], [1, 5]])
    bal = skb.MarginalBalancer(tol=1e-12).fit(X)
    for column in range(2):
        shares = pd.Series(bal.weights_).groupby(X[:, column]).sum() / 6
        np.testing.assert_allclose(shares.to_numpy(), 0.5, atol=1e-12)
    assert list(bal.margins_) == [0, 1]


def test_zero_target_level_gets_zero_weight(survey, survey_targets):
    targets = dict(survey_targets, region={"north": 0.0, "south": 0.2, "east": 0.3,
                                           "west": 0.5})
    bal = skb.MarginalBalancer(targets=targets, tol=1e-10).fit(survey)
    assert bal.converged_
    assert np.all(bal.weights_[survey["region"] == "north"] == 0)
    # A zero-target level may also be absent from the data altogether: the
    # weights are those of the targets without it.
    absent = dict(survey_targets, age={**survey_targets["age"], "99+": 0.0})
    with_absent = skb.MarginalBalancer(targets=absent, tol=1e-12).fit(survey)
    without = skb.MarginalBalancer(targets=survey_targets, tol=1e-12).fit(survey)
    assert with_absent.converged_
    np.testing.assert_allclose(with_absent.weights_, without.weights_, rtol=1e-12)
    assert list(with_absent.categories_["age"]) == ["18-34", "35-54", "55+", "99+"]


def test_missing_as_level(survey, survey_targets):
    X = survey.copy()
    X.loc[X.index[:20], "sex"] = None
    targets = dict(survey_targets, sex={"F": 0.5, "M": 0.45, None: 0.05})
    bal = skb.MarginalBalancer(targets=targets, missing="level", tol=1e-12).fit(X)
    assert bal.weights_[:20].sum() / bal.weights_.sum() == pytest.approx(0.05, abs=1e-12)
    with pytest.raises(ValueError, match=r"'sex' has 20 missing value"):
        skb.MarginalBalancer(targets=targets).fit(X)


def test_compute_weights_and_transform(survey, survey_targets):
    base = np.random.default_rng(7).uniform(1, 3, size=len(survey))
    bal = skb.MarginalBalancer(targets=survey_targets).fit(survey, sample_weight=base)
    np.testing.assert_allclose(bal.compute_weights(survey, sample_weight=base),
                               bal.weights_, rtol=1e-13)
    subset = survey.iloc[::7]
    np.testing.assert_allclose(bal.compute_weights(subset, sample_weight=base[::7]),
                               bal.weights_[::7], rtol=1e-13)
    out = bal.set_output(transform="pandas").transform(subset)
    assert list(out.columns) == ["weight"]
    assert out.index.equals(subset.index)
    np.testing.assert_allclose(out["weight"], bal.weights_[::7] / base[::7], rtol=1e-13)
    fitted = skb.MarginalBalancer(targets=survey_targets).set_output(transform="pandas")
    np.testing.assert_allclose(fitted.fit_transform(survey, sample_weight=base)["weight"],
                               bal.weights_, rtol=1e-13)
    unseen = survey.iloc[:3].assign(region=["north", "mars", "east"])
    with pytest.raises(ValueError, match=r"'region' has level 'mars' in 1 row"):
        bal.compute_weights(unseen)


def test_api_raking_matches_dense_reference():
    sample = skb.datasets.load_api("clus1")
    population = skb.datasets.load_api("pop")
    targets = {c: population[c].value_counts() for c in ["stype", "sch.wide"]}
    bal = skb.MarginalBalancer(targets=targets, tol=1e-13).fit(
        sample, sample_weight=sample["pw"])
    stype_levels, sch_levels = ["E", "H", "M"], ["No", "Yes"]
    codes = [sample["stype"].map({v: i for i, v in enumerate(stype_levels)}).to_numpy(),
             sample["sch.wide"].map({v: i for i, v in enumerate(sch_levels)}).to_numpy()]
    props = [targets["stype"][stype_levels].to_numpy() / 6194,
             targets["sch.wide"][sch_levels].to_numpy() / 6194]
    expected = dense_row_weights(codes, sample["pw"].to_numpy(), props, 200)
    expected *= 6194 / expected.sum()
    np.testing.assert_allclose(bal.weights_, expected, rtol=1e-10)
    raked_mean = np.average(sample["api00"], weights=bal.weights_)
    assert raked_mean == pytest.approx(641.2303, abs=1e-4)  # R survey: rake(); svymean


def test_inputs_are_not_modified(survey, survey_targets):
    frame = survey.copy()
    base = np.random.default_rng(8).uniform(1, 3, size=len(survey))
    base_copy = base.copy()
    targets_copy = {c: dict(v) for c, v in survey_targets.items()}
    skb.MarginalBalancer(targets=survey_targets, bounds=(0.2, 5.0)).fit(
        frame, sample_weight=base)
    pd.testing.assert_frame_equal(frame, survey)
    np.testing.assert_array_equal(base, base_copy)
    assert survey_targets == targets_copy
    array = np.array([[0, 1], [1, 0], [1, 1], [0, 0], [0, 0]])
    array_copy = array.copy()
    skb.MarginalBalancer().fit(array)
    np.testing.assert_array_equal(array, array_copy)


def test_diagnostics_table(survey, survey_targets):
    base = np.random.default_rng(9).uniform(1, 3, size=len(survey))
    bal = skb.MarginalBalancer(targets=survey_targets, tol=1e-12).fit(
        survey, sample_weight=base)
    table = bal.diagnostics_
    assert len(table) == 9
    row = table[(table["margin"] == "age") & (table["level"] == "55+")].iloc[0]
    in_level = (survey["age"] == "55+").to_numpy()
    assert row["n_rows"] == in_level.sum()
    assert row["sample_share"] == pytest.approx(in_level.mean())
    assert row["base_share"] == pytest.approx(base[in_level].sum() / base.sum())
    assert row["weighted_share"] == pytest.approx(
        bal.weights_[in_level].sum() / bal.weights_.sum())
    assert row["target_share"] == pytest.approx(0.3)
    assert abs(row["residual"]) < 1e-12
    ess = bal.weights_.sum() ** 2 / (bal.weights_**2).sum()
    assert bal.effective_sample_size_ == pytest.approx(ess)
    assert bal.design_effect_ == pytest.approx(len(survey) / ess)


def _cell_table(codes, base, shape):
    table = np.zeros(shape)
    np.add.at(table, tuple(codes), base / base.sum())
    return table


def _kl(table, g):
    return np.sum(table * (g * np.log(g) - g + 1))


def _bounded_raking_by_dual(table, targets, low, high):
    """Bounded raking of a 2-D cell table via its dual, solved jointly by L-BFGS.

    The minimiser of KL(w | D) under the margins and low <= w/D <= high is
    w = D clip(exp(lx_i + ly_j), low, high), with (lx, ly) minimising the
    smooth convex dual below (a different algorithm from raking's
    margin-by-margin steps).
    """
    n_x = table.shape[0]

    def dual(lam):
        s = lam[:n_x, None] + lam[None, n_x:]
        g = np.clip(np.exp(s), low, high)
        value = np.sum(table * (s * g - (g * np.log(g) - g + 1)))
        value -= lam[:n_x] @ targets[0] + lam[n_x:] @ targets[1]
        grad = np.concatenate([(table * g).sum(1) - targets[0],
                               (table * g).sum(0) - targets[1]])
        return value, grad

    result = minimize(dual, np.zeros(sum(table.shape)), jac=True, method="L-BFGS-B",
                      options={"gtol": 1e-14, "ftol": 1e-16, "maxiter": 10000})
    lam = result.x
    return np.clip(np.exp(lam[:n_x, None] + lam[None, n_x:]), low, high)


def test_bounded_raking_equals_constrained_kl_minimum():
    rng = np.random.default_rng(10)
    n = 60
    codes = _random_codes(rng, (3, 3), n)
    base = rng.uniform(0.5, 2.0, size=n)
    targets = [np.array([0.5, 0.3, 0.2]), np.array([0.2, 0.3, 0.5])]
    frame = pd.DataFrame({"x": codes[0], "y": codes[1]})
    spec = {"x": dict(enumerate(targets[0])), "y": dict(enumerate(targets[1]))}
    unbounded = skb.compute_balancing_weights(frame, spec, sample_weight=base)
    ratio = unbounded / base
    low, high = 1.05 * ratio.min(), 0.95 * ratio.max()  # both bounds bind
    bal = skb.MarginalBalancer(targets=spec, bounds=(low, high), tol=1e-12,
                               max_iter=20000).fit(frame, sample_weight=base)
    assert bal.converged_
    g = bal.weights_ / base
    assert g.max() <= high * (1 + 1e-12) and g.min() >= low * (1 - 1e-12)
    assert np.isclose(g.max(), high) and np.isclose(g.min(), low)

    table = _cell_table(codes, base, (3, 3))
    expected = _bounded_raking_by_dual(table, targets, low, high)
    np.testing.assert_allclose(g, expected[codes[0], codes[1]], rtol=1e-6)
    # compute_weights applies the same truncated factors
    np.testing.assert_allclose(bal.compute_weights(frame, sample_weight=base),
                               bal.weights_, rtol=1e-12)


def test_infeasible_bounds_are_reported(survey, survey_targets):
    with pytest.warns(ConvergenceWarning, match="cannot both hold"):
        bal = skb.MarginalBalancer(targets=survey_targets, bounds=(0.9, 1.1),
                                   max_iter=200).fit(survey)
    assert not bal.converged_
    assert bal.targets_reachable_ is False


def test_structural_zeros_are_never_reported_converged():
    # Only the diagonal cells exist: X and Y must have the same distribution.
    X = pd.DataFrame({"x": ["a", "b"] * 50, "y": ["u", "v"] * 50})
    targets = {"x": {"a": 0.5, "b": 0.5}, "y": {"u": 0.3, "v": 0.7}}
    with pytest.warns(ConvergenceWarning, match="unreachable") as record:
        bal = skb.MarginalBalancer(targets=targets, max_iter=100).fit(X)
    assert "x: 0.2, y: 0" in str(record[0].message)
    assert not bal.converged_
    assert bal.targets_reachable_ is False
    assert bal.marginal_error_[-1].max() == pytest.approx(0.2)


def test_slow_but_reachable_targets_say_increase_max_iter(survey, survey_targets):
    with pytest.warns(ConvergenceWarning, match="reachable: increase max_iter"):
        bal = skb.MarginalBalancer(targets=survey_targets, max_iter=2, tol=1e-12).fit(
            survey)
    assert bal.targets_reachable_ is True
    assert not bal.converged_


def test_starved_level_is_reported():
    # Target 0 for 'a' removes every row with y == 'u', whose target is positive.
    X = pd.DataFrame({"x": ["a", "a", "b"], "y": ["u", "u", "v"]})
    targets = {"x": {"a": 0.0, "b": 1.0}, "y": {"u": 0.5, "v": 0.5}}
    with pytest.warns(ConvergenceWarning, match="lost all its weight"):
        bal = skb.MarginalBalancer(targets=targets, tol=0, max_iter=4).fit(X)
    assert not bal.converged_


def test_newton_finish_gives_the_plain_limit_and_says_so(survey, survey_targets):
    joint = {("age", "sex"): {(a, s): p * q for a, p in survey_targets["age"].items()
                              for s, q in survey_targets["sex"].items()}}
    targets = {**survey_targets, **joint}  # collinear margins: a singular Hessian
    fast = skb.MarginalBalancer(targets=targets, tol=1e-12).fit(survey)
    plain = skb.MarginalBalancer(targets=targets, tol=1e-12, solver="steps").fit(survey)
    assert fast.n_newton_iter_ > 0 and plain.n_newton_iter_ == 0
    assert fast.converged_ and plain.converged_ and fast.n_iter_ < plain.n_iter_
    np.testing.assert_allclose(fast.weights_, plain.weights_, rtol=1e-9)
    assert _max_error(survey, fast.weights_, survey_targets) <= 1e-12
    assert fast.weights_.sum() == pytest.approx(len(survey), rel=1e-13)
    # new rows get the same weights from the level factors
    np.testing.assert_allclose(fast.compute_weights(survey), fast.weights_, rtol=1e-12)
