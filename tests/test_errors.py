"""Every kind of bad input gets a clear error naming what is wrong."""

import re
import warnings

import numpy as np
import pandas as pd
import pytest

import skbalance as skb


def fit(X, targets, **kwargs):
    sample_weight = kwargs.pop("sample_weight", None)
    return skb.MarginalBalancer(targets=targets, **kwargs).fit(X, sample_weight=sample_weight)


def test_target_level_absent_from_data(survey, survey_targets):
    targets = dict(survey_targets, age={"18-34": 0.3, "35-54": 0.3, "55+": 0.3, "99+": 0.1})
    with pytest.raises(ValueError, match=r"Level '99\+' of 'age' has a positive target"):
        fit(survey, targets)


def test_data_level_absent_from_targets(survey, survey_targets):
    targets = dict(survey_targets, region={"north": 0.5, "south": 0.5})
    with pytest.raises(ValueError, match=r"'region' has level '(east|west)' in \d+ row"):
        fit(survey, targets)


def test_type_mismatch_hint():
    X = pd.DataFrame({"g": [1, 2, 2]})
    with pytest.raises(ValueError, match=r"data levels are int64, target levels are str"):
        fit(X, {"g": {"1": 0.5, "2": 0.5}})


def test_missing_values_name_column_and_count(survey, survey_targets):
    X = survey.copy()
    X.loc[X.index[[3, 9, 11]], "region"] = np.nan
    with pytest.raises(ValueError, match=r"'region' has 3 missing value\(s\)"):
        fit(X, survey_targets)


@pytest.mark.parametrize("bad", [-0.1, np.inf, np.nan])
def test_negative_or_non_finite_targets(survey, survey_targets, bad):
    targets = dict(survey_targets, sex={"F": bad, "M": 0.48})
    with pytest.raises(ValueError, match=r"Target of level 'F' of 'sex' is .*finite and "
                                         r"nonnegative"):
        fit(survey, targets)


def test_targets_summing_to_zero(survey, survey_targets):
    targets = dict(survey_targets, sex={"F": 0.0, "M": 0.0})
    with pytest.raises(ValueError, match="Targets of 'sex' sum to 0"):
        fit(survey, targets)


def test_count_totals_disagree(survey):
    targets = {"sex": {"F": 520, "M": 480}, "age": {"18-34": 300, "35-54": 400, "55+": 301}}
    with pytest.raises(ValueError, match=r"same total.*'sex' sums to 1000 but 'age' sums to 1001"):
        fit(survey, targets)
    # within a relative 1e-6 is accepted
    close = {"sex": {"F": 520, "M": 480}, "age": {"18-34": 300, "35-54": 400,
                                                  "55+": 300.0005}}
    fit(survey, close)


def test_proportions_not_summing_to_one(survey, survey_targets):
    targets = dict(survey_targets, sex={"F": 0.5, "M": 0.45})
    with pytest.raises(ValueError, match=r"'sex' sum to 0.95 while .* sums to 1: "
                                         r"proportions must sum to 1 \(within 0.01\)"):
        fit(survey, targets)
    nearly = dict(survey_targets, sex={"F": 0.52, "M": 0.48 + 5e-7})
    bal = fit(survey, nearly)  # within 1e-6: normalised silently
    assert bal.weights_.sum() == pytest.approx(len(survey))


@pytest.mark.parametrize("off", [+0.001, -0.001])
def test_rounded_proportions_never_read_as_counts(survey, survey_targets, off):
    # published percentages: 33.4% + 66.7% = 100.1% (and 99.9% the other way)
    rounded = dict(survey_targets, sex={"F": 0.52 + off, "M": 0.48})
    message = re.escape(f"'sex' sum to {1 + off:.8g} (off by {off:+.3g})")
    with pytest.warns(UserWarning, match=message):
        bal = fit(survey, rounded)
    assert bal.total_ == pytest.approx(len(survey))  # the base total: proportions
    shares = pd.Series(bal.weights_).groupby(survey["sex"].to_numpy()).sum() / len(survey)
    np.testing.assert_allclose(shares[["F", "M"]], np.array([0.52 + off, 0.48]) / (1 + off),
                               atol=1e-8)


def test_target_type_is_explicit_when_asked(survey, survey_targets):
    off = dict(survey_targets, sex={"F": 0.55, "M": 0.48})  # 3% off
    with pytest.raises(ValueError, match="more than 0.01 away from 1: not proportions"):
        fit(survey, off, target_type="proportion")
    tiny_counts = {k: {lv: v * 0.5 for lv, v in m.items()} for k, m in survey_targets.items()}
    with pytest.raises(ValueError, match="more than 0.01 away from 1"):
        fit(survey, tiny_counts, target_type="proportion")
    counted = fit(survey, tiny_counts, target_type="count")  # a population of 0.5
    assert counted.weights_.sum() == pytest.approx(0.5)
    ones = fit(survey, survey_targets, target_type="count")  # a population of 1
    assert ones.weights_.sum() == pytest.approx(1.0)


def test_extreme_target_scales(survey, survey_targets):
    for scale in (1e-310, 1e-200, 1e200):
        counts = {k: {lv: v * scale for lv, v in m.items()} for k, m in survey_targets.items()}
        bal = fit(survey, counts, target_type="count", tol=1e-10)
        assert np.all(np.isfinite(bal.weights_)) and bal.converged_
        assert bal.weights_.sum() == pytest.approx(scale, rel=1e-6)
        assert np.isfinite(bal.effective_sample_size_) and np.isfinite(bal.design_effect_)
    huge = {k: {lv: 1e308 for lv in m} for k, m in survey_targets.items()}
    with pytest.raises(ValueError, match="sum to more than the largest float"):
        fit(survey, huge)


@pytest.mark.parametrize("bad", [-1.0, np.nan, np.inf])
def test_bad_base_weights(survey, survey_targets, bad):
    base = np.ones(len(survey))
    base[5] = bad
    with pytest.raises(ValueError, match=r"finite and nonnegative: 1 are not \(first at row 5"):
        fit(survey, survey_targets, sample_weight=base)


def test_non_numeric_and_all_zero_base_weights(survey, survey_targets):
    with pytest.raises(ValueError, match="sample_weight must be numeric"):
        fit(survey, survey_targets, sample_weight=["a"] * len(survey))
    with pytest.raises(ValueError, match="sums to 0"):
        fit(survey, survey_targets, sample_weight=np.zeros(len(survey)))


def test_zero_base_weight_excludes_the_row(survey, survey_targets):
    base = np.ones(len(survey))
    base[[3, 7]] = 0.0
    with_zeros = fit(survey, survey_targets, sample_weight=base)
    kept = base > 0
    without = fit(survey[kept].reset_index(drop=True), survey_targets)
    assert with_zeros.weights_[~kept].tolist() == [0.0, 0.0]
    np.testing.assert_allclose(with_zeros.weights_[kept], without.weights_, rtol=1e-12)
    assert with_zeros.effective_sample_size_ == pytest.approx(without.effective_sample_size_)
    assert with_zeros.design_effect_ == pytest.approx(without.design_effect_)


def test_level_carried_only_by_zero_weight_rows_is_named(survey, survey_targets):
    base = np.where(survey["age"] == "55+", 0.0, 1.0)
    with pytest.raises(ValueError, match=r"Level '55\+' of 'age' has a positive target .* "
                                         r"only rows of zero base weight"):
        fit(survey, survey_targets, sample_weight=base)


def test_base_weights_of_wrong_length(survey, survey_targets):
    with pytest.raises(ValueError, match="sample_weight must have shape"):
        fit(survey, survey_targets, sample_weight=np.ones(3))


def test_empty_input(survey_targets):
    empty = pd.DataFrame({"age": [], "sex": [], "region": []})
    with pytest.raises(ValueError, match=r"0 sample\(s\) \(shape=\(0, 3\)\)"):
        fit(empty, survey_targets)
    with pytest.raises(ValueError, match="0 sample"):
        skb.MarginalBalancer().fit(np.empty((0, 2)))


def test_unknown_column(survey, survey_targets):
    targets = dict(survey_targets, income={"low": 0.5, "high": 0.5})
    with pytest.raises(ValueError, match="Unknown column 'income'"):
        fit(survey, targets)
    with pytest.raises(ValueError, match="keyed by position"):
        fit(survey.to_numpy(), {"age": survey_targets["age"]})


def test_bad_target_structures(survey):
    with pytest.raises(ValueError, match="targets is empty"):
        fit(survey, {})
    with pytest.raises(TypeError, match="must be a mapping level -> value"):
        fit(survey, {"sex": [0.5, 0.5]})
    with pytest.raises(ValueError, match="must be tuples of 2 values"):
        fit(survey, {("age", "sex"): {"18-34": 1.0}})
    with pytest.raises(ValueError, match="must have the columns 'column', 'level'"):
        fit(survey, pd.DataFrame({"col": ["sex"], "level": ["F"], "value": [1.0]}))
    with pytest.raises(ValueError, match="list no level"):
        fit(survey, {"sex": {}})


@pytest.mark.parametrize("bounds", [(1.2, 2.0), (0.5, 0.9), (-0.1, 2.0), (1.0, 1.0), (2,)])
def test_bad_bounds(survey, survey_targets, bounds):
    with pytest.raises(ValueError, match="bounds must"):
        fit(survey, survey_targets, bounds=bounds)


def test_one_dimensional_input(survey_targets):
    with pytest.raises(ValueError, match="Expected a 2-D array.*Reshape your data"):
        skb.MarginalBalancer().fit(np.array([0, 1, 1]))


def test_infinite_level():
    with pytest.raises(ValueError, match="contains inf"):
        skb.MarginalBalancer().fit(np.array([[0.0], [np.inf]]))


def test_compute_weights_checks_columns(survey, survey_targets):
    bal = fit(survey, survey_targets)
    renamed = survey.rename(columns={"region": "area"})
    with pytest.raises(ValueError, match="Unknown column 'region'"):
        bal.compute_weights(renamed)
    with pytest.raises(ValueError, match="Feature names seen at fit time, yet now missing"):
        bal.transform(renamed)  # transform keeps scikit-learn's strict check
    with pytest.raises(ValueError, match="X has 2 features"):
        bal.compute_weights(survey.to_numpy()[:, :2])


def test_compute_weights_finds_columns_by_name(survey, survey_targets):
    bal = fit(survey, survey_targets)
    reordered = survey[["y", "region", "sex", "age"]].assign(extra=1)
    np.testing.assert_allclose(bal.compute_weights(reordered), bal.weights_, rtol=1e-15)
    only = survey[["age", "sex", "region"]]
    np.testing.assert_allclose(bal.compute_weights(only), bal.weights_, rtol=1e-15)
    # the case: weights for another sample of the same population
    clus = skb.datasets.load_api("clus1")
    targets = skb.datasets.api_population_targets(["stype", "sch.wide"])
    api = skb.MarginalBalancer(targets=targets).fit(clus, sample_weight=clus["pw"])
    srs = skb.datasets.load_api("srs")
    weights = api.compute_weights(srs, sample_weight=srs["pw"])
    factor = (api.factors_["stype"].loc[srs["stype"]].to_numpy()
              * api.factors_["sch.wide"].loc[srs["sch.wide"]].to_numpy())
    np.testing.assert_allclose(weights, srs["pw"] * api.weight_scale_ * factor, rtol=1e-14)


def test_absent_level_with_zero_target_gets_weight_zero(survey, survey_targets):
    targets = dict(survey_targets, region={**survey_targets["region"], "centre": 0.0})
    bal = fit(survey, targets, tol=1e-12)
    assert bal.factors_["region"]["centre"] == 0.0
    new = survey.iloc[:3].assign(region="centre")
    np.testing.assert_array_equal(bal.compute_weights(new), 0.0)


@pytest.mark.parametrize("scale", [1e-250, 1e-120, 1e200, 1e300])
def test_standard_errors_are_scale_free(survey, survey_targets, scale):
    est = skb.BalancedFunctionalEstimator(skb.MarginalBalancer(targets=survey_targets))
    reference = est.fit(survey, survey["y"]).results_.iloc[0]
    scaled = est.fit(survey, survey["y"] * scale).results_.iloc[0]
    assert scaled.estimate == pytest.approx(reference.estimate * scale, rel=1e-12)
    assert scaled.std_error == pytest.approx(reference.std_error * scale, rel=1e-12)
    assert np.isfinite(scaled.ci_low) and np.isfinite(scaled.ci_high)
    total = skb.BalancedFunctionalEstimator(skb.MarginalBalancer(targets=survey_targets),
                                            statistic="total")
    assert np.isfinite(total.fit(survey, survey["y"] * scale).std_error_)


def test_extreme_base_weights_keep_sizes_finite(survey, survey_targets):
    reference = fit(survey, survey_targets, tol=1e-10)
    for scale in (1e-300, 1e300):
        bal = fit(survey, survey_targets, sample_weight=np.full(len(survey), scale),
                  tol=1e-10)
        assert np.all(np.isfinite(bal.weights_)) and bal.converged_
        np.testing.assert_allclose(bal.weights_ / scale, reference.weights_, rtol=1e-12)
        assert bal.effective_sample_size_ == pytest.approx(reference.effective_sample_size_)
        assert bal.design_effect_ == pytest.approx(reference.design_effect_)
    with pytest.raises(ValueError, match="sums to infinity"):
        fit(survey, survey_targets, sample_weight=np.full(len(survey), 1e308))


def test_unreachable_fit_keeps_factors_finite_and_consistent():
    # cell (y, u) alone carries level y, but u's target is below y's: the
    # factors of an IPF fit diverge; they stay finite, and compute_weights
    # returns the weights the fit returned
    X = pd.DataFrame({"a": ["x", "x", "y"], "b": ["u", "v", "u"]})
    targets = {"a": {"x": 0.5, "y": 0.5}, "b": {"u": 0.1, "v": 0.9}}
    with pytest.warns(skb_convergence_warning(), match="unreachable"):
        bal = fit(X, targets, max_iter=100_000, tol=1e-12)
    assert not bal.converged_ and bal.targets_reachable_ is False
    for factors in bal.factors_.values():
        assert np.all(np.isfinite(factors.to_numpy()))
    np.testing.assert_allclose(bal.compute_weights(X), bal.weights_, rtol=1e-12)
    assert np.all(np.isfinite(bal.weights_))


def skb_convergence_warning():
    from sklearn.exceptions import ConvergenceWarning

    return ConvergenceWarning


def test_bounded_fit_that_fails_reports_the_shares_it_returns():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.choice(["x", "y"], 200, p=[.8, .2]),
                      "b": rng.choice(["u", "v", "w"], 200)})
    targets = {"a": {"x": .3, "y": .7}, "b": {"u": .2, "v": .3, "w": .5}}
    with pytest.warns(skb_convergence_warning()) as caught:
        bal = fit(X, targets, bounds=(0.5, 2.0))
    # the error per margin, from the returned weights' shares by plain groupby
    errors = [float((pd.Series(bal.weights_).groupby(X[c].to_numpy()).sum()
                     / bal.weights_.sum() - pd.Series(targets[c])).abs().max()) for c in "ab"]
    np.testing.assert_allclose(bal.marginal_error_[-1], errors, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(bal.diagnostics_.groupby("margin")["residual"].apply(
        lambda r: r.abs().max()).loc[["a", "b"]], errors, rtol=1e-9, atol=1e-15)
    reported = re.search(r"a: ([-0-9.e+]+), b: ([-0-9.e+]+)", str(caught[0].message))
    np.testing.assert_allclose([float(v) for v in reported.groups()], errors, rtol=5e-3,
                               atol=1e-15)  # as printed, to 3 digits


def test_targets_that_need_an_observed_cell_at_zero_are_named():
    # a x: .5 and b u: .5 leave no mass for cell (x, v): every solution empties it
    X = pd.DataFrame({"a": ["x", "x", "y"], "b": ["u", "v", "v"]})
    targets = {"a": {"x": 0.5, "y": 0.5}, "b": {"u": 0.5, "v": 0.5}}
    with pytest.warns(skb_convergence_warning(),
                      match=r"reachable only with 1 observed cell\(s\) at weight 0 "
                            r"\(a='x', b='v'\).*like 1/k"):
        bal = fit(X, targets, max_iter=2000, tol=1e-10, solver="steps")
    assert bal.targets_reachable_ is True and not bal.converged_
    # Newton steps on the dual reach the boundary to tol: that cell's weight -> 0
    bal = fit(X, targets, max_iter=2000, tol=1e-10)
    assert bal.converged_ and bal.n_newton_iter_ > 0
    assert bal.weights_[1] < 1e-9 * bal.weights_.sum()
    # a reachable problem with room in every cell keeps the old advice
    X = pd.DataFrame({"a": ["x", "x", "y", "y"], "b": ["u", "v", "u", "v"]})
    with pytest.warns(skb_convergence_warning(), match="reachable: increase max_iter"):
        fit(X.iloc[[0, 1, 2, 3, 0]], {"a": {"x": 0.3, "y": 0.7}, "b": {"u": 0.9, "v": 0.1}},
            max_iter=1, tol=1e-12)


def test_missing_as_a_level_in_nullable_and_arrow_columns():
    for values in (pd.array(["a", None, "b", "a"], dtype="string[pyarrow]"),
                   pd.array([True, None, False, True], dtype="boolean"),
                   pd.array([1, None, 2, 1], dtype="Int64")):
        X = pd.DataFrame({"g": values})
        levels = [v for v in pd.unique(values) if not pd.isna(v)]
        targets = {"g": {levels[0]: 0.3, levels[1]: 0.3, None: 0.4}}
        bal = skb.MarginalBalancer(targets=targets, missing="level").fit(X)
        np.testing.assert_allclose(bal.weights_, [0.6, 1.6, 1.2, 0.6], rtol=1e-9)


def test_one_column_joint_key_and_multiindex_columns():
    X = pd.DataFrame({"g": ["a", "b", "a"]})
    one = skb.MarginalBalancer(targets={("g",): {("a",): .5, ("b",): .5}}).fit(X)
    np.testing.assert_allclose(one.weights_, [0.75, 1.5, 0.75])
    columns = pd.MultiIndex.from_tuples([("x", "g"), ("x", "h")])
    Xm = pd.DataFrame([["a", "u"], ["b", "v"], ["a", "v"]], columns=columns)
    single = skb.MarginalBalancer(targets={("x", "g"): {"a": .5, "b": .5}}).fit(Xm)
    np.testing.assert_allclose(single.weights_, [0.75, 1.5, 0.75])
    joint = skb.MarginalBalancer(
        targets={(("x", "g"), ("x", "h")): {("a", "u"): .25, ("b", "v"): .5, ("a", "v"): .25}})
    np.testing.assert_allclose(joint.fit(Xm).weights_, [0.75, 1.5, 0.75])


def test_polars_frames_keep_their_names(survey, survey_targets):
    pl = pytest.importorskip("polars")
    frame = pl.from_pandas(survey)
    bal = skb.MarginalBalancer(targets=survey_targets, tol=1e-12).fit(frame)
    reference = skb.MarginalBalancer(targets=survey_targets, tol=1e-12).fit(survey)
    np.testing.assert_allclose(bal.weights_, reference.weights_, rtol=1e-14)
    assert list(bal.feature_names_in_) == list(survey.columns)
    np.testing.assert_allclose(bal.compute_weights(frame), reference.weights_, rtol=1e-14)


def test_unreachable_targets_over_three_margins_keep_weights_finite():
    # found by the property tests: capped factors of three margins multiplied
    X = pd.DataFrame({"c0": [0, 0, 1, 0], "c1": [0, 1, 0, 0], "c2": [0, 0, 0, 1]})
    targets = {"c0": {0: 0.2137, 1: 0.7863}, "c1": {0: 0.0316, 1: 0.9684},
               "c2": {0: 0.5014, 1: 0.4986}}
    base = np.array([0.40304871, 1.07798243, 2.47846726, 0.9299976])
    bal = fit(X, targets, sample_weight=base, tol=0, max_iter=213)
    assert np.all(np.isfinite(bal.weights_)) and not bal.converged_
    np.testing.assert_allclose(bal.compute_weights(X, sample_weight=base), bal.weights_,
                               rtol=1e-12)


@pytest.mark.parametrize("bad", [2.0, True, -1, "3"])
def test_every_step_count_follows_one_rule(bad):
    # k, n_steps, n_iter and max_iter: an integer (NumPy's too), not a bool, >= 0,
    # as the estimators' Interval(Integral, 0, None) constraints say
    P = np.array([[0.3, 0.2], [0.1, 0.4]])
    scores = np.random.default_rng(0).normal(size=(6, 3))
    calls = {
        "k": lambda k: skb.theory.asymptotic_variance(P, np.ones((2, 2)), k),
        "n_steps": lambda k: skb.ssl.balanced_contrastive_loss(np.eye(4), n_steps=k),
        "n_iter": lambda k: skb.ssl.swav_codes(scores, n_iter=k),
        "max_iter": lambda k: skb.sinkhorn(np.ones((3, 3)), max_iter=k, tol=0),
    }
    for name, call in calls.items():
        call(np.int64(2))  # accepted
        with pytest.raises(ValueError, match=f"{name} must be a nonnegative integer"):
            call(bad)


def test_renamed_parameters_still_work_with_a_future_warning(survey, survey_targets):
    # MarginalBalancer(method=) is distance=, BalancedFunctionalEstimator(method=) is
    # baseline= (one meaning per name); the old spellings give the same numbers
    numeric = {**survey_targets}
    X, y = survey[["age", "sex", "region"]], survey["y"]
    new = skb.MarginalBalancer(targets=numeric, distance="linear").fit(X)
    with pytest.warns(FutureWarning, match="renamed distance") as record:
        old = skb.MarginalBalancer(targets=numeric, method="linear").fit(X)
    assert record[0].filename == __file__
    np.testing.assert_array_equal(old.weights_, new.weights_)
    assert not np.allclose(new.weights_, skb.MarginalBalancer(targets=numeric).fit(X).weights_)
    for old_name, baseline in (("empirical", "empirical"), ("ipwi", "ipwi"), ("balanced", None)):
        expected = skb.BalancedFunctionalEstimator(
            skb.MarginalBalancer(targets=numeric), baseline=baseline).fit(X, y)
        with pytest.warns(FutureWarning, match="renamed baseline"):
            got = skb.BalancedFunctionalEstimator(
                skb.MarginalBalancer(targets=numeric), method=old_name).fit(X, y)
        assert got.estimate_ == expected.estimate_ and got.std_error_ == expected.std_error_
    # the replicate path reads the old name from the parameters too
    design = skb.SurveyDesign(replicates="subbootstrap", n_replicates=20, random_state=0,
                              clusters=np.arange(len(X)) // 4)
    with pytest.warns(FutureWarning):
        old_reps = skb.compute_replicate_weights(
            X, skb.MarginalBalancer(targets=numeric, method="linear"), design)
    new_reps = skb.compute_replicate_weights(
        X, skb.MarginalBalancer(targets=numeric, distance="linear"), design)
    np.testing.assert_array_equal(old_reps.weights, new_reps.weights)


def test_steps_is_a_count_or_infinity(survey, survey_targets):
    # CellProblem's steps: an int k or math.inf (the limit); importance weighting is
    # its own operator; the old strings "limit" and "ipwi" still work, with a warning
    import math

    X = survey[["age", "sex", "region"]]
    problem = skb.MarginalBalancer(targets=survey_targets).fit_problem(X)
    y = survey["y"].to_numpy()
    limit = problem.cell_correction(y, math.inf)
    np.testing.assert_allclose(limit, problem.cell_correction(y, 3000), rtol=1e-9, atol=1e-12)
    assert not np.allclose(limit, problem.cell_correction(y, 1))
    with pytest.warns(FutureWarning, match="math.inf"):
        np.testing.assert_array_equal(problem.cell_correction(y, "limit"), limit)
    with pytest.warns(FutureWarning, match="ipwi_correction"):
        old_ipwi = problem.cell_correction(y, "ipwi")
    np.testing.assert_array_equal(old_ipwi, problem.ipwi_correction(y))
    for bad in ("often", -1, 2.5):
        with pytest.raises(ValueError, match="steps must be a nonnegative integer"):
            problem.cell_correction(y, bad)


def test_messages_name_levels_as_the_user_wrote_them():
    # NumPy 2 prints scalars as np.int32(2): messages show the plain value
    X = np.array([[0, 0], [0, 1], [1, 0]], dtype=np.int32)
    half = {0: 0.5, 1: 0.5}
    with pytest.warns(skb_convergence_warning()) as record:
        skb.MarginalBalancer(targets={0: half, 1: half}, max_iter=50, tol=1e-12,
                             solver="steps").fit(X)
    message = str(record[0].message)
    assert "reachable only with 1 observed cell(s) at weight 0 (0=0, 1=0)" \
        in message, message
    assert "np." not in message
    from skbalance.utils._validation import column_label, level_repr

    assert level_repr((np.int64(1), np.str_("a"))) == "(1, 'a')"
    assert column_label(np.int64(3)) == "column 3"


def test_cluster_in_two_strata_is_named_by_its_label():
    X = pd.DataFrame({"psu": np.array([1, 1, 2, 2, 2, 3], dtype=np.int64),
                      "st": ["a", "a", "a", "b", "b", "b"], "g": list("xyxyxy")})
    design = skb.SurveyDesign(clusters="psu", strata="st")
    with pytest.raises(ValueError, match=r"^Cluster 2 of 'psu' is in more than one stratum "
                                         r"of 'st'; pass nest=True"):
        design.resolve(X)


def _lonely_frames():
    # stratum "c" of "st" has one PSU (4); inside PSU 1 the second-stage stratum
    # "q" has one unit (SSU 11)
    X = pd.DataFrame({
        "st": ["a", "a", "b", "b", "c", "c"],
        "psu": [1, 2, 3, 5, 4, 4],
        "st2": ["p", "q", "p", "p", "p", "p"],
        "ssu": [10, 11, 12, 13, 14, 15],
        "g": list("xyxyxy"),
    })
    return X, np.arange(1.0, 7.0)


def test_lonely_strata_are_named_by_their_labels():
    X, y = _lonely_frames()
    balancer = skb.MarginalBalancer(targets={"g": {"x": 0.5, "y": 0.5}})
    first = skb.SurveyDesign(strata="st", clusters="psu")
    with pytest.raises(ValueError, match=r"^Stratum 'c' of 'st' has only one sampling unit"):
        skb.BalancedFunctionalEstimator(balancer, design=first).fit(X, y)
    jkn = skb.SurveyDesign(strata="st", clusters="psu", replicates="jkn")
    with pytest.raises(ValueError, match=r"^Stratum 'c' of 'st' has only one sampling unit"):
        skb.BalancedFunctionalEstimator(balancer, design=jkn).fit(X, y)
    # the second stage counts with an fpc at the first; its lonely stratum is named
    # with the cluster it sits in: PSU 1 holds second-stage strata p (two units), q (one)
    two = pd.DataFrame({"st": "a", "psu": [1, 1, 1, 2, 2, 3, 3], "f1": 10,
                        "st2": list("ppqpppp"), "ssu": [10, 11, 12, 20, 21, 30, 31],
                        "f2": 5, "g": list("xyxyxyx")})
    second = skb.SurveyDesign(clusters=["psu", "ssu"], strata=["st", "st2"], fpc=["f1", "f2"])
    with pytest.raises(ValueError, match=r"^Stratum 'q' of 'st2' within cluster 1 of 'psu' "
                                         r"\(stage 2\) has only one sampling unit"):
        skb.BalancedFunctionalEstimator(balancer, design=second).fit(two, np.arange(7.0))
    # 'average' at stage 2 with every stratum of a cluster lonely names that cluster
    alone = two.assign(st2=list("pqrpppp"))
    average = skb.SurveyDesign(clusters=["psu", "ssu"], strata=["st", "st2"],
                               fpc=["f1", "f2"], lonely_psu="average")
    with pytest.raises(ValueError, match=r"^Every stratum within cluster 1 of 'psu' \(stage 2\) "
                                         r"has a single unit"):
        skb.BalancedFunctionalEstimator(balancer, design=average).fit(alone, np.arange(7.0))


def test_fpc_messages_name_the_stratum():
    X = pd.DataFrame({"st": ["a", "a", "b", "b"], "psu": [1, 2, 3, 4], "fpc": [10, 12, 5, 5]})
    with pytest.raises(ValueError, match=r"fpc 'fpc' varies within stratum 'a' of 'st'"):
        skb.SurveyDesign(strata="st", clusters="psu", fpc="fpc").resolve(X)
    with pytest.raises(ValueError, match=r"1 units in the population of stratum 'b' of 'st', "
                                         r"where 2 were sampled"):
        skb.SurveyDesign(strata="st", clusters="psu", fpc="fpc").resolve(
            X.assign(fpc=[10, 10, 1, 1]))


def _clus1_setup():
    sample = skb.datasets.load_api("clus1")
    targets = skb.datasets.api_population_targets(["stype", "sch.wide"])
    return sample, skb.MarginalBalancer(targets=targets)


def test_jkn_drops_a_single_unit_stratum_taken_whole():
    # stratum b is one PSU that is its whole population (fpc 1): R drops its replicate;
    # it divided by n_h - 1 = 0. Plain computation: weights 2.5, 2.5, 1; dropping PSU 1
    # or 2 doubles the other; rscale (1 - 2/5) (2 - 1) / 2
    X = pd.DataFrame({"st": ["a", "a", "b"], "psu": [1, 2, 3], "fpc": [5, 5, 1], "g": list("xyx")})
    y = np.array([1.0, 2.0, 3.0])
    design = skb.SurveyDesign(strata="st", clusters="psu", fpc="fpc", replicates="jkn")
    est = skb.BalancedFunctionalEstimator(baseline="empirical", design=design).fit(X, y)
    full = (2.5 * 1 + 2.5 * 2 + 3) / 6
    thetas = [(5 * 2 + 3) / 6, (5 * 1 + 3) / 6]
    expected = 0.3 * sum((t - full) ** 2 for t in thetas)
    assert est.estimate_ == pytest.approx(full, rel=1e-14)
    assert est.std_error_ == pytest.approx(np.sqrt(expected), rel=1e-12)


def test_domains_without_weight_and_zero_denominators_are_named():
    sample, balancer = _clus1_setup()
    design = skb.SurveyDesign(clusters="dnum", fpc="fpc")
    zero_h = sample["pw"].where(sample["stype"] != "H", 0.0)
    only_wide = skb.MarginalBalancer(targets={"sch.wide": balancer.targets["sch.wide"]})
    with pytest.raises(ValueError, match=r"^The mean of 'api00' in domain 'H' is undefined: its "
                                         r"rows have no weight"):
        skb.BalancedFunctionalEstimator(only_wide, design=design, domain="stype").fit(
            sample, sample["api00"], sample_weight=zero_h)
    with pytest.raises(ValueError, match=r"^The ratio of 'api00' is undefined: the "
                                         r"denominator's weighted total is 0"):
        skb.BalancedFunctionalEstimator(balancer, statistic="ratio",
                                        denominator=np.zeros(len(sample))).fit(
            sample, sample["api00"], sample_weight=sample["pw"])


def test_unused_categories_of_a_domain_are_not_domains():
    # R's svyby drops empty groups; a category without rows was a 0 / 0 error
    sample, balancer = _clus1_setup()
    design = skb.SurveyDesign(clusters="dnum", fpc="fpc")
    as_category = sample.assign(stype=pd.Categorical(sample["stype"],
                                                     categories=["E", "H", "M", "Z"]))
    results = [skb.BalancedFunctionalEstimator(balancer, design=design, domain="stype").fit(
        data, data["api00"], sample_weight=data["pw"]).results_ for data in (sample, as_category)]
    assert list(results[1]["domain"]) == ["E", "H", "M"]
    np.testing.assert_allclose(results[1][["estimate", "std_error"]].to_numpy(),
                               results[0][["estimate", "std_error"]].to_numpy(), rtol=1e-13)


def test_replicates_without_weight_in_a_domain_are_discarded_as_r_does():
    # a domain inside one PSU: its JK1 replicate has no weight there (0 / 0); R's svrVar
    # discards it with a warning and keeps the scale. Plain computation from the weights
    sample, balancer = _clus1_setup()
    first = sample["dnum"].iloc[0]
    data = sample.assign(dom=np.where(sample["dnum"] == first, "in", "out"))
    design = skb.SurveyDesign(clusters="dnum", fpc="fpc", replicates="jk1")
    with pytest.warns(UserWarning, match=r"^1 replicate\(s\) gave NA results and were "
                                         r"discarded") as record:
        est = skb.BalancedFunctionalEstimator(balancer, design=design, domain="dom").fit(
            data, data["api00"], sample_weight=data["pw"])
    assert record[0].filename == __file__
    reps = skb.compute_replicate_weights(data, balancer, design, sample_weight=data["pw"])
    inside = (data["dom"] == "in").to_numpy()
    y = data["api00"].to_numpy()
    thetas = [w[inside] @ y[inside] / w[inside].sum() for w in reps.weights.T
              if w[inside].sum() > 0]
    assert len(thetas) == reps.weights.shape[1] - 1
    expected = reps.scale * np.sum((np.array(thetas) - np.mean(thetas)) ** 2)
    row = est.results_.set_index("domain").loc["in"]
    assert row["std_error"] == pytest.approx(np.sqrt(expected), rel=1e-10)
    assert np.isfinite(est.results_["std_error"]).all()


def test_rscales_are_checked_and_a_scalar_is_recycled():
    sample, balancer = _clus1_setup()
    reps = skb.compute_replicate_weights(
        sample, balancer, skb.SurveyDesign(clusters="dnum", fpc="fpc", replicates="jk1"),
        sample_weight=sample["pw"])
    names = [f"r{i}" for i in range(reps.weights.shape[1])]
    data = sample.assign(**dict(zip(names, reps.weights.T)))

    def fit(rscales):
        design = skb.SurveyDesign(replicates="other", replicate_weights=names, weights="pw",
                                  scale=1.0, rscales=rscales)
        return skb.BalancedFunctionalEstimator(balancer, design=design).fit(
            data, data["api00"]).std_error_

    assert fit(0.5) == fit(np.full(len(names), 0.5))
    for bad in (-1.0, np.nan):
        with pytest.raises(ValueError, match="rscales must be finite and nonnegative"):
            fit(np.full(len(names), bad))


def test_covariate_report_names_an_all_missing_column():
    sample, _ = _clus1_setup()
    with pytest.raises(ValueError, match=r"^Column 'z' has no value in the sample"):
        skb.covariate_balance(sample.assign(z=np.nan), sample["pw"], {"z": skb.Mean(3.0)})


@pytest.mark.parametrize("values, looks", [((51, 49), "percentages"),
                                           ((0.6, 0.49), "proportions with a typo")])
def test_auto_target_reading_says_when_counts_look_like_something_else(values, looks):
    X = pd.DataFrame({"g": ["a", "b", "b", "b"]})
    targets = {"g": dict(zip("ab", values))}
    with pytest.warns(UserWarning, match=f"read as population counts .* look like {looks}") \
            as record:
        bal = skb.MarginalBalancer(targets=targets).fit(X)
    assert record[0].filename == __file__
    assert bal.weights_.sum() == pytest.approx(sum(values))  # the reading it said it took
    with warnings.catch_warnings():  # said explicitly, or real counts: no warning
        warnings.simplefilter("error")
        skb.MarginalBalancer(targets=targets, target_type="count").fit(X)
        skb.MarginalBalancer(targets={"g": {"a": 510, "b": 490}}).fit(X)


def test_counts_beside_a_total_target_are_no_guess():
    # a Total needs the population size, which only counts give: 60 + 40 with a Total
    # is read as counts without a word
    X = pd.DataFrame({"g": ["a", "b", "b", "b"], "x": [1.0, 2.0, 3.0, 4.0]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bal = skb.MarginalBalancer(targets={"g": {"a": 60, "b": 40},
                                            "x": skb.Total(200)}).fit(X)
    assert bal.weights_.sum() == pytest.approx(100)


def test_infeasible_bounds_keep_factors_of_a_typical_size():
    # bounds that cannot meet the targets drove a's factors to 1e-132 and b's to 1e+132
    # (their clipped products, the weights, were right); the CLI printed 132 digits
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.choice(["x", "y"], 60, p=[0.9, 0.1]),
                      "b": rng.choice(["u", "v"], 60)})
    targets = {"a": {"x": 0.2, "y": 0.8}, "b": {"u": 0.5, "v": 0.5}}
    with pytest.warns(skb_convergence_warning(), match="cannot both hold"):
        bal = skb.MarginalBalancer(targets=targets, bounds=(0.5, 2.0)).fit(X)
    factors = np.concatenate([f.to_numpy() for f in bal.factors_.values()])
    assert np.all((factors > 1e-8) & (factors < 1e8)), factors
    # the weights are the products clipped to the bounds, as compute_weights gives them
    product = np.ones(len(X))
    for column, f in bal.factors_.items():
        product *= f.reindex(X[column]).to_numpy()
    np.testing.assert_allclose(bal.weights_, np.clip(product, 0.5, 2.0) * bal.weight_scale_,
                               rtol=1e-12)
    np.testing.assert_allclose(bal.compute_weights(X), bal.weights_, rtol=1e-12)
    from skbalance._cli import _format_diagnostics

    assert max(len(line) for line in _format_diagnostics(bal.diagnostics_).splitlines()) < 110


def test_a_chunk_without_a_level_is_kept_and_says_so():
    # the first chunk lacks level c: the error advised "give it target 0" although the
    # chunk is kept and the next chunk, which has c, completes the fit
    bal = skb.MarginalBalancer(targets={"g": {"a": 0.3, "b": 0.3, "c": 0.4}}, tol=1e-12)
    with pytest.raises(ValueError, match=r"no row in the chunks seen so far; the chunk is kept, "
                                         r"and a later chunk with rows of that level completes"):
        bal.partial_fit(pd.DataFrame({"g": ["a", "b", "b"]}))
    bal.partial_fit(pd.DataFrame({"g": ["c", "c"]}))
    everything = skb.MarginalBalancer(targets=bal.targets, tol=1e-12).fit(
        pd.DataFrame({"g": ["a", "b", "b", "c", "c"]}))
    np.testing.assert_allclose(bal.factors_["g"], everything.factors_["g"], rtol=1e-12)
    with pytest.raises(ValueError, match=r"no row in the data; give it target 0"):
        skb.MarginalBalancer(targets=bal.targets).fit(pd.DataFrame({"g": ["a", "b"]}))


def test_new_rows_beyond_a_numeric_targets_range_warn_or_raise():
    # z = 1e4 where the fit saw 1-10 gave a weight of inf (and -1e4 one of 0) silently
    X = pd.DataFrame({"g": ["a", "b"] * 5, "x": np.arange(1.0, 11.0)})
    bal = skb.MarginalBalancer(targets={"g": {"a": 0.5, "b": 0.5}, "x": skb.Mean(7.0)},
                               tol=1e-12).fit(X)
    with warnings.catch_warnings():  # rows like the fitted ones: no word
        warnings.simplefilter("error")
        np.testing.assert_allclose(bal.compute_weights(X), bal.weights_, rtol=1e-12)
    with pytest.warns(UserWarning, match=r"1 row\(s\) have values of 'x' outside the fitted "
                                         r"range \[1, 10\] \(for instance 12\)") as record:
        weights = bal.compute_weights(pd.DataFrame({"g": ["a"], "x": [12.0]}))
    assert record[0].filename == __file__
    # the extrapolated factor is the fitted exp(intercept + coef_a + slope x), in units of x
    expected = np.exp(bal.intercept_ + bal.coef_["g"]["a"] + bal.coef_["x"] * 12.0)
    assert weights[0] == pytest.approx(bal.weight_scale_ * expected, rel=1e-10)
    with pytest.raises(ValueError, match=r"weights of 1 row\(s\) overflow"), \
            pytest.warns(UserWarning, match="outside the fitted range"):
        bal.compute_weights(pd.DataFrame({"g": ["b"], "x": [1e4]}))


def test_weights_beyond_1e154_estimate_means_and_name_overflowing_totals():
    # an OverflowError in the standard error: means are free of the weights' scale
    sample, _ = _clus1_setup()
    balancer = skb.MarginalBalancer(targets={"stype": {"E": 0.7, "H": 0.1, "M": 0.2}})
    design = skb.SurveyDesign(clusters="dnum")
    results = [skb.BalancedFunctionalEstimator(balancer, design=design).fit(
        sample, sample["api00"], sample_weight=sample["pw"] * scale).results_
        for scale in (1.0, 1e160)]
    # (the design effect is not scale-free: its SRS variance has 1 - n / sum(weights))
    np.testing.assert_allclose(results[1][["estimate", "std_error"]].to_numpy(),
                               results[0][["estimate", "std_error"]].to_numpy(), rtol=1e-10)
    assert np.isfinite(results[1]["deff"]).all()
    with pytest.raises(ValueError, match=r"variance of the total of 'api00' overflows float"):
        skb.BalancedFunctionalEstimator(balancer, design=design, statistic="total").fit(
            sample, sample["api00"], sample_weight=sample["pw"] * 1e160)


@pytest.mark.parametrize("params,message", [
    ({"statistic": "ratio", "denominator": "x"},
     "The ratio's denominator 'x' must be numeric .*'a'"),
    ({"design": skb.SurveyDesign(weights="x")},
     "The design's weights 'x' must be numeric .*'a'"),
])
def test_a_column_of_text_where_numbers_belong_is_named(params, message):
    # issue 22, item 13: "could not convert string to float: 'a'" named no column
    frame = pd.DataFrame({"g": ["a", "b", "a", "b"], "x": ["1", "a", "2", "3"],
                          "y": [1.0, 2, 3, 4]})
    est = skb.BalancedFunctionalEstimator(baseline="empirical", **params)
    with pytest.raises(ValueError, match=message):
        est.fit(frame, frame["y"])


def test_unreachable_raking_of_two_rows_keeps_its_total():
    # issue 22, item 7: the weights summed to 4e-46 at 400 steps, and fit raised
    # ZeroDivisionError at the default max_iter
    X = pd.DataFrame({"g": ["a", "b"], "h": ["x", "y"]})
    targets = {"g": {"a": 0.9, "b": 0.1}, "h": {"x": 0.1, "y": 0.9}}
    for max_iter in (400, 1000, 5001):
        with pytest.warns(skb_convergence_warning(), match="unreachable"):
            bal = fit(X, targets, max_iter=max_iter)
        # plain IPF alternates between the two margins' solutions
        expected = [0.2, 1.8] if max_iter % 2 == 0 else [1.8, 0.2]
        np.testing.assert_allclose(bal.weights_, expected, rtol=1e-12)
        np.testing.assert_allclose(bal.compute_weights(X), bal.weights_, rtol=1e-12)


def _unreachable_problems(n, seed):
    """Random small tables with empty cells and targets no weighting meets."""
    from itertools import product

    from tests._reference import plain_ipf_rows
    rng = np.random.default_rng(seed)
    found = []
    while len(found) < n:
        sizes = rng.integers(2, 4, size=rng.integers(2, 4))
        cells = [c for c in product(*[range(s) for s in sizes]) if rng.random() < 0.5]
        rows = [c for c in cells for _ in range(rng.integers(1, 3))]
        if not rows:
            continue
        codes = [np.array([r[j] for r in rows]) for j in range(len(sizes))]
        if any(len(np.unique(c)) < s for c, s in zip(codes, sizes)):
            continue  # every level has rows: unreachable through the empty cells
        targets = [rng.dirichlet(np.ones(s)) for s in sizes]
        base = rng.uniform(0.5, 3, size=len(rows))
        weights = plain_ipf_rows(codes, base, targets, 3000)
        error = max(np.abs(np.bincount(c, weights, minlength=len(t)) / weights.sum() - t).max()
                    for c, t in zip(codes, targets))
        if error > 1e-6:
            found.append((codes, targets, base))
    return found


@pytest.mark.parametrize("n_tables", [10, pytest.param(80, marks=pytest.mark.slow)])
def test_unreachable_raking_equals_plain_ipf_on_random_tables(n_tables):
    # issue 22, item 7: of 180 such problems 8 crashed, 96 returned weights below
    # 1e-6 of the total, 48 had the wrong sum. Now every one equals plain IPF
    # after the same steps (the factors go on in the log domain once they leave
    # float's comfortable range), keeps its total and warns
    from tests._reference import plain_ipf_rows
    rng = np.random.default_rng(1)
    for codes, targets, base in _unreachable_problems(n_tables, seed=7):
        X = pd.DataFrame({f"c{j}": c for j, c in enumerate(codes)})
        margins = {f"c{j}": dict(enumerate(t)) for j, t in enumerate(targets)}
        for settings in ({"tol": 0, "max_iter": int(rng.integers(50, 3000))}, {}):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                bal = fit(X, margins, sample_weight=base, **settings)
            expected = plain_ipf_rows(codes, base, targets, bal.n_iter_)
            np.testing.assert_allclose(bal.weights_, expected, rtol=1e-8,
                                       atol=1e-12 * base.sum())
            assert bal.weights_.sum() == pytest.approx(base.sum(), rel=1e-10)
            np.testing.assert_allclose(bal.compute_weights(X, sample_weight=base),
                                       bal.weights_, rtol=1e-9, atol=1e-12 * base.sum())
            assert not bal.converged_
            assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]
            if "tol" not in settings:
                assert any("unreachable" in str(w.message) for w in caught)


def test_bounded_replicates_that_cannot_meet_the_bounds_stop_early():
    # issue 22, item 14: 1000-3000 steps per replicate (60 s for a 61-row design);
    # bounded steps now stop once they stall, with the same estimate and SE
    clus = skb.datasets.load_api("clus1").iloc[:61]
    targets = skb.datasets.api_population_targets(["stype", "sch.wide"])
    design = skb.SurveyDesign(clusters="dnum", replicates="jk1")
    bal = skb.MarginalBalancer(targets=targets, bounds=(0.8, 1.2))
    est = skb.BalancedFunctionalEstimator(bal, design=design)
    with pytest.warns(skb_convergence_warning()) as caught:
        est.fit(clus, clus["api00"], sample_weight=clus["pw"])
    assert est.balancer_.n_iter_ < 200
    assert any("widen the bounds" in str(w.message) for w in caught)
    # the point the steps stalled at is where 1000 more steps leave it
    longer = skb.MarginalBalancer(targets=targets, bounds=(0.8, 1.2), tol=0, max_iter=2000)
    longer.fit(clus, sample_weight=clus["pw"])
    np.testing.assert_allclose(est.balancer_.weights_, longer.weights_, rtol=1e-6)


def test_intervals_without_degrees_of_freedom():
    # found by the design property round (issue 22): a NaN interval came back
    census = pd.DataFrame({"N": [1], "y": [48.7]})  # the whole population: no error
    est = skb.BalancedFunctionalEstimator(baseline="empirical",
                                          design=skb.SurveyDesign(fpc="N"))
    row = est.fit(census[["N"]], census["y"]).results_.iloc[0]
    assert (row.std_error, row.ci_low, row.ci_high) == (0.0, 48.7, 48.7)
    # every stratum a single unit, "adjust": a variance, but PSUs - strata = 0
    X = pd.DataFrame({"s": ["a", "b", "c"]})
    est = skb.BalancedFunctionalEstimator(
        baseline="empirical", design=skb.SurveyDesign(strata="s", lonely_psu="adjust"))
    with pytest.raises(ValueError, match="no degrees of freedom.*df='normal'"):
        est.fit(X, np.array([1.0, 2.0, 4.0]))
    est.set_params(df="normal").fit(X, np.array([1.0, 2.0, 4.0]))
    assert np.isfinite(est.results_[["ci_low", "ci_high"]].to_numpy()).all()
