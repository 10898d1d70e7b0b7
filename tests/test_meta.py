"""BalancedEstimator: balancing weights reach the inner estimator, in CV too."""

import warnings

import numpy as np
import pytest
import sklearn
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import skbalance as skb


@pytest.fixture
def biased(survey, survey_targets):
    rng = np.random.default_rng(3)
    label = ((survey["age"] == "18-34") ^ (rng.random(len(survey)) < 0.2)).astype(int)
    return survey[["age", "sex", "region"]], label.to_numpy(), survey_targets


def _pipeline():
    encoder = make_column_transformer((OneHotEncoder(), ["age", "sex", "region"]))
    return make_pipeline(encoder, LogisticRegression())


def test_inner_estimator_receives_the_balancing_weights(biased):
    X, y, targets = biased
    codes = np.column_stack([X[c].astype("category").cat.codes for c in X.columns])
    base = np.random.default_rng(4).uniform(1, 3, size=len(y))
    bal = skb.MarginalBalancer(targets={i: dict(enumerate(np.full(k, 1 / k)))
                                        for i, k in enumerate([3, 2, 4])})
    meta = skb.BalancedEstimator(bal, LogisticRegression()).fit(codes, y, sample_weight=base)
    weights = skb.compute_balancing_weights(codes, bal.targets, sample_weight=base)
    weights *= base.sum() / weights.sum()
    direct = LogisticRegression().fit(codes, y, sample_weight=weights)
    np.testing.assert_allclose(meta.estimator_.coef_, direct.coef_, rtol=1e-6)
    np.testing.assert_array_equal(meta.predict(codes), direct.predict(codes))
    np.testing.assert_allclose(meta.predict_proba(codes), direct.predict_proba(codes),
                               rtol=1e-6)
    np.testing.assert_allclose(meta.decision_function(codes),
                               direct.decision_function(codes), rtol=1e-6)
    np.testing.assert_array_equal(meta.classes_, [0, 1])
    assert not hasattr(meta, "transform")


def test_pipeline_estimator_gets_weights_on_its_last_step(biased):
    X, y, targets = biased
    meta = skb.BalancedEstimator(skb.MarginalBalancer(targets=targets), _pipeline())
    meta.fit(X, y)
    weights = skb.compute_balancing_weights(X, targets)
    direct = _pipeline().fit(X, y, logisticregression__sample_weight=weights)
    np.testing.assert_allclose(meta.estimator_[-1].coef_, direct[-1].coef_, rtol=1e-6)


def test_transform_is_delegated(survey, survey_targets):
    numeric = survey[["y"]].assign(age=survey["age"].map({"18-34": 0, "35-54": 1, "55+": 2}))
    targets = {"age": {0: 0.3, 1: 0.4, 2: 0.3}}
    meta = skb.BalancedEstimator(skb.MarginalBalancer(targets=targets), StandardScaler())
    out = meta.fit(numeric).transform(numeric)
    w = skb.compute_balancing_weights(numeric, targets)
    direct = StandardScaler().fit(numeric, sample_weight=w * len(w) / w.sum())
    np.testing.assert_allclose(out, direct.transform(numeric), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.average(out, axis=0, weights=w), 0, atol=1e-12)
    assert not hasattr(meta, "predict")


def test_estimator_without_sample_weight_is_rejected(survey, survey_targets):
    meta = skb.BalancedEstimator(skb.MarginalBalancer(targets=survey_targets),
                                 make_column_transformer((StandardScaler(), ["y"])))
    with pytest.raises(TypeError, match="ColumnTransformer.fit does not accept sample_weight"):
        meta.fit(survey, None)


def _rake_by_loops(X, targets, sweeps=200):
    """Raking with plain loops over rows (THEORY section 1), to convergence."""
    weights = np.ones(len(X))
    columns = list(targets)
    for _ in range(sweeps):
        for column in columns:
            levels = X[column].to_numpy()
            share = {}
            for level, w in zip(levels, weights):
                share[level] = share.get(level, 0.0) + w
            total = sum(share.values())
            weights = np.array([w * targets[column][level] * total / share[level]
                                for level, w in zip(levels, weights)])
    return weights * len(X) / weights.sum()


def test_score_uses_raked_held_out_rows(biased):
    X, y, targets = biased
    meta = skb.BalancedEstimator(skb.MarginalBalancer(targets=targets, max_iter=1),
                                 _pipeline()).fit(X.iloc[:300], y[:300])
    held_X, held_y = X.iloc[300:], y[300:]
    raked = _rake_by_loops(held_X, targets)
    np.testing.assert_allclose(meta.score_weights(held_X), raked, rtol=1e-7)
    # accuracy weighted by hand: sum of the weights of correct predictions
    correct = meta.predict(held_X) == held_y
    assert meta.score(held_X, held_y) == pytest.approx(raked[correct].sum() / raked.sum(),
                                                       rel=1e-7)
    assert meta.score(held_X, held_y) != pytest.approx(correct.mean(), rel=1e-6)


def test_grid_search_over_balancing_steps(biased):
    X, y, targets = biased
    meta = skb.BalancedEstimator(skb.MarginalBalancer(targets=targets, tol=0), _pipeline())
    grid = [0, 1, 2, 4, 8]
    search = GridSearchCV(meta, {"balancer__max_iter": grid}, cv=3).fit(X, y)
    # each candidate's score, by cross-validating it alone; the best one wins
    scores = [cross_val_score(meta.set_params(balancer__max_iter=k), X, y, cv=3).mean()
              for k in grid]
    np.testing.assert_allclose(search.cv_results_["mean_test_score"], scores, rtol=1e-12)
    best = grid[int(np.argmax(scores))]
    assert search.best_params_["balancer__max_iter"] == best
    assert search.best_estimator_.balancer_.n_iter_ == best


def test_metadata_routing(biased):
    X, y, targets = biased
    base = np.random.default_rng(5).uniform(1, 2, size=len(y))
    with sklearn.config_context(enable_metadata_routing=True):
        meta = skb.BalancedEstimator(skb.MarginalBalancer(targets=targets),
                                     LinearRegression())
        meta.set_fit_request(sample_weight=True).set_score_request(sample_weight=True)
        numeric = np.column_stack([X[c].astype("category").cat.codes for c in X.columns])
        codes_targets = {i: dict(enumerate(np.full(k, 1 / k))) for i, k in
                         enumerate([3, 2, 4])}
        meta.set_params(balancer__targets=codes_targets)
        search = GridSearchCV(meta, {"balancer__max_iter": [0, 3]}, cv=3)
        search.fit(numeric, y, sample_weight=base)
        refit = search.best_estimator_
        expected = skb.compute_balancing_weights(numeric, codes_targets, sample_weight=base,
                                                 max_iter=refit.balancer.max_iter)
        np.testing.assert_allclose(refit.balancer_.weights_, expected, rtol=1e-12)


def test_balancer_inside_a_pipeline_warns_and_names_balanced_estimator(survey, survey_targets):
    # the trap: the regression is fitted on the weight column, not the features
    X = survey[["age", "sex", "region"]]
    y = survey["y"].to_numpy()
    trap = make_pipeline(skb.MarginalBalancer(targets=survey_targets), LinearRegression())
    with pytest.warns(UserWarning, match="BalancedEstimator") as record:
        trap.fit(X, y)
    assert len(record) == 1 and record[0].filename == __file__
    assert trap[-1].coef_.shape == (1,)  # what the warning is about: one feature
    # the balancer alone (no y) and BalancedEstimator do not warn
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        weights = skb.MarginalBalancer(targets=survey_targets).fit_transform(X)
        model = skb.BalancedEstimator(skb.MarginalBalancer(targets=survey_targets),
                                      make_pipeline(OneHotEncoder(), LinearRegression()))
        model.fit(X, y)
    assert weights.shape == (len(X), 1)
    assert model.estimator_[-1].coef_.shape[0] == sum(X[c].nunique() for c in X)
