"""Weighting recipes (issue 21, item 6): WeightingRecipe."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

import skbalance as skb
from tests._reference import plain_ipf_rows

TIGHT = dict(solver="newton-cholesky", tol=1e-12, max_iter=1000)


def _opt_in(seed=0, n_population=3000):
    """A population and an opt-in sample of it that favours the young."""
    rng = np.random.default_rng(seed)
    population = pd.DataFrame({"age": rng.normal(50, 10, n_population),
                               "sex": rng.choice(["F", "M"], n_population, p=[0.52, 0.48])})
    chosen = rng.random(n_population) < 0.25 * np.exp(-(population.age - 50) / 15) * np.where(
        population.sex == "F", 1.3, 0.8)
    sample = population[chosen].reset_index(drop=True)
    sample["y"] = 100 + 2 * sample.age + 5 * (sample.sex == "F") + rng.normal(0, 5, len(sample))
    return population, sample


def _recipe(population):
    return skb.WeightingRecipe([
        ("propensity", skb.PropensityBalancer(population, columns=["age"],
                                              classifier=LogisticRegression(**TIGHT))),
        ("rake", skb.MarginalBalancer(targets={"sex": {"F": 0.52, "M": 0.48}}, tol=1e-14,
                                      max_iter=10000))])


def test_each_step_starts_from_the_previous_steps_weights():
    population, sample = _opt_in()
    recipe = _recipe(population).fit(sample)
    ipw = skb.PropensityBalancer(population, columns=["age"],
                                 classifier=LogisticRegression(**TIGHT)).fit(sample)
    codes = [pd.factorize(sample["sex"], sort=True)[0]]
    expected = plain_ipf_rows(codes, ipw.weights_, [[0.52, 0.48]], 50)
    np.testing.assert_allclose(recipe.weights_, expected, rtol=1e-12)
    np.testing.assert_allclose(recipe.compute_weights(sample), expected, rtol=1e-12)
    diagnostics = recipe.diagnostics_
    assert list(diagnostics.index) == ["propensity", "rake"]
    assert diagnostics.loc["propensity", "total"] == pytest.approx(len(population))
    assert diagnostics.loc["rake", "design_effect"] == pytest.approx(
        len(sample) * np.sum(expected**2) / expected.sum() ** 2, rel=1e-12)
    assert bool(diagnostics.loc["rake", "converged"])
    shares = pd.Series(recipe.weights_).groupby(sample["sex"]).sum() / recipe.weights_.sum()
    np.testing.assert_allclose(shares, [0.52, 0.48], rtol=1e-12)


def test_replicates_rerun_the_whole_recipe_with_the_propensities_refitted():
    """Every supplied replicate: the classifier refitted on its base weights,
    the weights raked again (plain IPF): the SE by that loop."""
    population, sample = _opt_in()
    rng = np.random.default_rng(4)
    n_reps = 15
    replicates = rng.uniform(0.3, 1.7, (len(sample), n_reps))
    design = skb.SurveyDesign(replicates="bootstrap", replicate_weights=replicates,
                              scale=1 / n_reps)
    est = skb.BalancedFunctionalEstimator(_recipe(population), design=design).fit(
        sample, sample["y"])
    codes = [pd.factorize(sample["sex"], sort=True)[0]]

    def mean(base):
        ipw = skb.PropensityBalancer(population, columns=["age"],
                                     classifier=LogisticRegression(**TIGHT)).fit(
            sample, sample_weight=base)
        w = plain_ipf_rows(codes, ipw.weights_, [[0.52, 0.48]], 50)
        return np.dot(w, sample["y"]) / w.sum()

    thetas = np.array([mean(replicates[:, r]) for r in range(n_reps)])
    assert est.estimate_ == pytest.approx(mean(np.ones(len(sample))), rel=1e-12)
    assert est.std_error_ == pytest.approx(
        np.sqrt(np.sum((thetas - thetas.mean()) ** 2) / n_reps), rel=1e-9)


def test_linearization_counts_the_last_step_from_the_earlier_steps_weights():
    """As R's calibrate on a design whose weights are the propensity weights."""
    population, sample = _opt_in()
    recipe = _recipe(population)
    est = skb.BalancedFunctionalEstimator(recipe).fit(sample, sample["y"])
    ipw = clone(recipe.steps[0][1]).fit(sample)
    fixed = skb.BalancedFunctionalEstimator(clone(recipe.steps[1][1])).fit(
        sample, sample["y"], sample_weight=ipw.weights_)
    assert est.estimate_ == pytest.approx(fixed.estimate_, rel=1e-12)
    assert est.std_error_ == pytest.approx(fixed.std_error_, rel=1e-10)


def test_a_recipe_stands_in_balanced_estimator_and_grid_search():
    population, sample = _opt_in()
    X = sample[["age", "sex"]].assign(female=(sample.sex == "F") * 1.0)
    numeric = make_pipeline(ColumnTransformer([("numeric", "passthrough", ["age", "female"])]),
                            LinearRegression())
    model = skb.BalancedEstimator(_recipe(population), numeric)
    search = GridSearchCV(model, {"balancer__propensity__classifier__C": [0.1, 10.0]}, cv=3)
    search.fit(X, sample["y"])
    assert search.best_params_["balancer__propensity__classifier__C"] in (0.1, 10.0)
    fitted = model.fit(X, sample["y"])
    weights = _recipe(population).fit(X).weights_
    np.testing.assert_allclose(fitted.balancer_.weights_, weights, rtol=1e-12)
    by_hand = LinearRegression().fit(X[["age", "female"]], sample["y"], sample_weight=weights)
    np.testing.assert_allclose(fitted.estimator_[-1].coef_, by_hand.coef_, rtol=1e-9)


def test_recipe_errors():
    population, sample = _opt_in()
    with pytest.raises(ValueError, match="non-empty list of \\(name, estimator\\) pairs"):
        skb.WeightingRecipe([]).fit(sample)
    only_propensity = skb.WeightingRecipe([("p", skb.PropensityBalancer(population,
                                                                        columns=["age"]))])
    with pytest.raises(ValueError, match="does not balance"):
        skb.BalancedFunctionalEstimator(only_propensity).fit(sample, sample["y"])
    with pytest.raises(ValueError, match="Give the target rows or margins"):
        only_propensity.fit(sample).balance_report(sample)
    report = only_propensity.balance_report(sample, population[["age"]])
    assert report.loc[("age", "(all)"), "asmd_after"] < report.loc[("age", "(all)"),
                                                                   "asmd_before"] / 5


def _survey_with_nonresponse(seed=6, n=600):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"region": rng.choice(["n", "s", "e", "w"], n),
                          "age": rng.normal(45, 12, n),
                          "sex": rng.choice(["F", "M"], n)})
    responded = rng.random(n) < 1 / (1 + np.exp(-(frame.age - 40) / 10))
    frame["responded"] = responded
    frame["y"] = np.where(responded, 50 + 0.5 * frame.age + rng.normal(0, 3, n), np.nan)
    return frame, rng.uniform(1, 3, n)


def test_nonresponse_then_rake_equals_a_plain_loop():
    frame, d = _survey_with_nonresponse()
    recipe = skb.WeightingRecipe([
        ("nonresponse", skb.NonresponseAdjuster("responded", classes="region")),
        ("rake", skb.MarginalBalancer(targets={"sex": {"F": 0.5, "M": 0.5}}, tol=1e-14,
                                      max_iter=10000))])
    est = skb.BalancedFunctionalEstimator(recipe, na_rm=True).fit(frame, frame["y"],
                                                                  sample_weight=d)
    adjusted = skb.nonresponse_weights(d, frame["responded"], frame["region"])
    w = plain_ipf_rows([pd.factorize(frame["sex"], sort=True)[0]], adjusted, [[0.5, 0.5]], 50)
    np.testing.assert_allclose(recipe.fit(frame, sample_weight=d).weights_, w, rtol=1e-12)
    responded = frame["responded"].to_numpy()
    assert est.estimate_ == pytest.approx(np.average(frame["y"][responded],
                                                     weights=w[responded]), rel=1e-12)
    assert (recipe.weights_[~responded] == 0).all()


def test_propensity_classes_equal_a_plain_computation():
    """A logistic model of responding, weighted quintiles of its probabilities,
    then the class adjustment: each by hand."""
    frame, d = _survey_with_nonresponse()
    adjuster = skb.NonresponseAdjuster("responded", columns=["age"],
                                       classifier=LogisticRegression(**TIGHT)).fit(
        frame, sample_weight=d)
    model = LogisticRegression(**TIGHT).fit(frame[["age"]].to_numpy(), frame["responded"],
                                            sample_weight=d)
    p = model.predict_proba(frame[["age"]].to_numpy())[:, 1]
    np.testing.assert_allclose(adjuster.propensity_, p, rtol=1e-12)
    order = np.argsort(p, kind="stable")
    cuts = []
    for k in (1, 2, 3, 4):  # the first probability whose cumulative weight reaches k / 5
        cumulative = 0.0
        for i in order:
            cumulative += d[i]
            if cumulative / d.sum() >= k / 5:
                cuts.append(p[i])
                break
    np.testing.assert_allclose(adjuster.cut_points_, cuts, rtol=1e-12)
    classes = np.searchsorted(cuts, p, side="right")
    assert sorted(set(classes)) == [0, 1, 2, 3, 4]
    expected = skb.nonresponse_weights(d, frame["responded"], classes)
    np.testing.assert_allclose(adjuster.weights_, expected, rtol=1e-12)
    np.testing.assert_allclose(adjuster.compute_weights(frame, sample_weight=d), expected,
                               rtol=1e-12)


def test_nonresponse_adjuster_errors():
    frame, d = _survey_with_nonresponse()
    with pytest.raises(ValueError, match="lacks the response column 'answered'"):
        skb.NonresponseAdjuster("answered", classes="region").fit(frame)
    with pytest.raises(ValueError, match="booleans or 0/1"):
        skb.NonresponseAdjuster("age", classes="region").fit(frame)
    nobody = frame.assign(responded=frame.responded & (frame.region != "n"))
    with pytest.raises(ValueError, match="Class 'n' has no respondent"):
        skb.NonresponseAdjuster("responded", classes="region").fit(nobody)
    with pytest.raises(ValueError, match="not both"):
        skb.NonresponseAdjuster("responded", classes="region",
                                classifier=LogisticRegression()).fit(frame)


def test_survey_regression_with_a_recipe_refits_it_on_every_replicate():
    population, sample = _opt_in()
    rng = np.random.default_rng(9)
    n_reps = 10
    replicates = rng.uniform(0.3, 1.7, (len(sample), n_reps))
    design = skb.SurveyDesign(replicates="bootstrap", replicate_weights=replicates,
                              scale=1 / n_reps)
    model = skb.SurveyRegressor(_recipe(population), design=design, features=["age"]).fit(
        sample, sample["y"])
    codes = [pd.factorize(sample["sex"], sort=True)[0]]
    X = np.column_stack([np.ones(len(sample)), sample["age"]])

    def coefficients(base):
        ipw = skb.PropensityBalancer(population, columns=["age"],
                                     classifier=LogisticRegression(**TIGHT)).fit(
            sample, sample_weight=base)
        w = plain_ipf_rows(codes, ipw.weights_, [[0.52, 0.48]], 50)
        return np.linalg.solve(X.T @ (X * w[:, None]), X.T @ (w * sample["y"]))

    thetas = np.array([coefficients(replicates[:, r]) for r in range(n_reps)])
    np.testing.assert_allclose(model.coef_, coefficients(np.ones(len(sample)))[1:],
                               rtol=1e-10)
    se = np.sqrt(((thetas - thetas.mean(axis=0)) ** 2).sum(axis=0) / n_reps)
    np.testing.assert_allclose(model.std_error_, se, rtol=1e-8)
