"""BalancedFunctionalEstimator: estimates, standard errors, coverage, choosing k."""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import GridSearchCV, KFold

import skbalance as skb
from skbalance import theory


def _api():
    sample = skb.datasets.load_api("clus1")
    targets = skb.datasets.api_population_targets(["stype", "sch.wide"])
    return sample, targets


def _linearization_se_by_loops(columns, base, weights, y, estimate, k):
    """THEORY section 3 with plain Python loops over rows."""
    n = len(y)
    g = [value - estimate for value in y]
    for step in range(k, 0, -1):
        column = columns[(step - 1) % len(columns)]
        total, mass = {}, {}
        for level, d, value in zip(column, base, g):
            total[level] = total.get(level, 0.0) + d * value
            mass[level] = mass.get(level, 0.0) + d
        g = [value - total[level] / mass[level] for level, value in zip(column, g)]
    influence = [w * value for w, value in zip(weights, g)]
    mean = sum(influence) / n  # R survey centres the influence values
    squares = sum((value - mean) ** 2 for value in influence)
    return (n / (n - 1) * squares) ** 0.5 / sum(weights)


@pytest.mark.parametrize("k", [1, 2, 3, None])
def test_api_estimate_and_standard_error(k):
    sample, targets = _api()
    y, base = sample["api00"].to_numpy(), sample["pw"].to_numpy()
    max_iter, tol = (k, 0) if k is not None else (1000, 1e-12)
    balancer = skb.MarginalBalancer(targets=targets, max_iter=max_iter, tol=tol)
    est = skb.BalancedFunctionalEstimator(balancer).fit(sample, y, sample_weight=base)
    weights = skb.compute_balancing_weights(sample, targets, sample_weight=base,
                                            max_iter=max_iter, tol=tol)
    assert est.estimate_ == pytest.approx(np.sum(weights * y) / weights.sum(), rel=1e-13)
    steps = est.n_steps_
    assert steps == (k if k is not None else est.balancer_.n_iter_)
    if k is None:  # finished by Newton steps: the limit of raking, C_k for k -> infinity
        assert est.balancer_.n_newton_iter_ > 0
        steps = 400
    columns = [list(sample["stype"]), list(sample["sch.wide"])]
    expected = _linearization_se_by_loops(columns, base, weights, y, est.estimate_, steps)
    assert est.std_error_ == pytest.approx(expected, rel=1e-10)
    if k is None:
        # R survey 4.1-1: svymean(~api00, calibrate(svydesign(id=~1, weights=~pw,
        # data=apiclus1), ~stype+sch.wide, pop, calfun="raking")) (THEORY section 3)
        assert est.estimate_ == pytest.approx(641.2303209268, rel=1e-9)
        assert est.std_error_ == pytest.approx(7.7787556087, rel=1e-8)


@pytest.mark.slow
def test_api_standard_error_matches_rerake_bootstrap():
    sample, targets = _api()
    X = sample[["stype", "sch.wide"]]
    y, base = sample["api00"].to_numpy(), sample["pw"].to_numpy()
    est = skb.BalancedFunctionalEstimator(skb.MarginalBalancer(targets=targets, tol=1e-10))
    est.fit(X, y, sample_weight=base)
    rng = np.random.default_rng(0)
    replicates = []
    for _ in range(2000):
        rows = rng.integers(0, len(y), size=len(y))
        w = skb.compute_balancing_weights(X.iloc[rows], targets, sample_weight=base[rows],
                                          tol=1e-10)
        replicates.append(np.sum(w * y[rows]) / w.sum())
    assert est.std_error_ == pytest.approx(np.std(replicates, ddof=1), rel=0.05)


def test_empirical_and_ipwi_by_hand():
    sample, targets = _api()
    y, base = sample["api00"].to_numpy(), sample["pw"].to_numpy()
    balancer = skb.MarginalBalancer(targets=targets)
    empirical = skb.BalancedFunctionalEstimator(balancer, baseline="empirical").fit(
        sample, y, sample_weight=base)
    assert empirical.estimate_ == pytest.approx(np.average(y, weights=base), rel=1e-13)
    n = len(y)
    influence = base * (y - empirical.estimate_)  # sums to 0: centring changes nothing
    se = np.sqrt(n / (n - 1) * np.sum((influence - influence.mean()) ** 2)) / base.sum()
    assert empirical.std_error_ == pytest.approx(se, rel=1e-12)

    ipwi = skb.BalancedFunctionalEstimator(balancer, baseline="ipwi").fit(
        sample, y, sample_weight=base)
    ratio = np.ones(n)
    for column in ["stype", "sch.wide"]:
        share = pd.Series(base).groupby(sample[column].to_numpy()).sum() / base.sum()
        target = targets[column] / targets[column].sum()
        ratio *= sample[column].map(target / share).to_numpy()
    assert ipwi.estimate_ == pytest.approx(np.sum(base * ratio * y) / base.sum(), rel=1e-12)
    np.testing.assert_allclose(ipwi.weights_, base * ratio, rtol=1e-12)


def test_several_outputs_equal_separate_fits(survey, survey_targets):
    outcomes = np.column_stack([survey["y"], survey["y"] ** 2, np.arange(len(survey))])
    balancer = skb.MarginalBalancer(targets=survey_targets, tol=0, max_iter=5)
    joint = skb.BalancedFunctionalEstimator(balancer).fit(survey, outcomes)
    assert joint.estimate_.shape == (3,)
    for j in range(3):
        single = skb.BalancedFunctionalEstimator(balancer).fit(survey, outcomes[:, j])
        assert joint.estimate_[j] == pytest.approx(single.estimate_, rel=1e-13)
        assert joint.std_error_[j] == pytest.approx(single.std_error_, rel=1e-12)
    low, high = joint.confidence_interval(0.1)
    # Student t with n - 1 = 399 degrees of freedom: qt(0.95, 399) in R
    assert joint.df_ == len(survey) - 1
    np.testing.assert_allclose(high - low, 2 * 1.6486815335554244 * joint.std_error_,
                               rtol=1e-12)


def test_score_is_minus_squared_error_to_held_out_mean(survey, survey_targets):
    est = skb.BalancedFunctionalEstimator(skb.MarginalBalancer(targets=survey_targets))
    est.fit(survey, survey["y"])
    held = survey.iloc[:50]
    w = np.arange(1.0, 51.0)
    expected = -(est.estimate_ - np.sum(w * held["y"]) / w.sum()) ** 2
    assert est.score(held, held["y"], sample_weight=w) == pytest.approx(expected, rel=1e-13)
    with pytest.raises(ValueError, match="requires y to be passed"):
        est.fit(survey, None)


def _table_rows(P, n, rng):
    cells = rng.choice(P.size, size=n, p=P.ravel())
    return np.column_stack(np.unravel_index(cells, P.shape)), cells


@pytest.mark.parametrize(
    "label, method, max_iter, tol",
    [("k=1", "balanced", 1, 0), ("k=2", "balanced", 2, 0),
     ("converged", "balanced", 1000, 1e-10), ("empirical", "empirical", 0, 0),
     ("ipwi", "ipwi", 0, 0)],
)
@pytest.mark.slow
def test_confidence_intervals_cover(label, method, max_iter, tol):
    rng = np.random.default_rng(sum(map(ord, label)))
    P = theory.random_table((4, 5), concentration=3.0, random_state=11)
    h = np.random.default_rng(12).normal(size=(4, 5))
    truth = np.sum(P * h)
    targets = {0: dict(enumerate(P.sum(1))), 1: dict(enumerate(P.sum(0)))}
    balancer = skb.MarginalBalancer(targets=targets, max_iter=max_iter, tol=tol)
    covered, replications = 0, 1000
    for _ in range(replications):
        X, cells = _table_rows(P, 400, rng)
        y = h.ravel()[cells] + rng.normal(size=cells.shape[0])
        baseline = None if method == "balanced" else method
        est = skb.BalancedFunctionalEstimator(balancer, baseline=baseline).fit(X, y)
        low, high = est.confidence_interval(0.05)
        covered += low <= truth <= high
    assert 0.93 <= covered / replications <= 0.97


def _noisy_problem():
    """Dependent table, nearly additive h, and misspecified target margins."""
    rng = np.random.default_rng(27)
    P = theory.dependence_table(rng.dirichlet(np.full(4, 3.0)), 0.5)
    h = rng.normal(size=(4, 1)) + rng.normal(size=(1, 4)) + 0.5 * rng.normal(size=(4, 4))
    tilted = P * np.exp(0.3 * rng.normal(size=(4, 4)))
    tilted /= tilted.sum()
    return P, h, tilted.sum(axis=1), tilted.sum(axis=0)


@pytest.mark.slow
def test_grid_search_chooses_k_with_lower_mse_than_either_end():
    P, h, p_x, p_y = _noisy_problem()
    grid, n = [0, 1, 2, 4, 8], 2000
    truth = np.sum(P * h)
    # Theory puts the best k strictly inside the grid: bias_k^2 + sigma_k^2 / n.
    mse = [(np.sum(theory.balance_table(P, p_x, p_y, k) * h) - truth) ** 2
           + theory.asymptotic_variance(P, h, k) / n for k in grid]
    assert 0 < int(np.argmin(mse)) < len(grid) - 1

    targets = {0: dict(enumerate(p_x)), 1: dict(enumerate(p_y))}
    rng = np.random.default_rng(0)
    errors = {"search": [], 0: [], 8: []}
    for replication in range(200):
        X, cells = _table_rows(P, n, rng)
        y = h.ravel()[cells]
        est = skb.BalancedFunctionalEstimator(skb.MarginalBalancer(targets=targets, tol=0))
        search = GridSearchCV(est, {"balancer__max_iter": grid},
                              cv=KFold(10, shuffle=True, random_state=replication))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            search.fit(X, y)
        errors["search"].append((search.best_estimator_.estimate_ - truth) ** 2)
        for k in (0, 8):
            fixed = est.set_params(balancer__max_iter=k).fit(X, y)
            errors[k].append((fixed.estimate_ - truth) ** 2)
    mean = {key: np.mean(value) for key, value in errors.items()}
    assert mean["search"] < mean[0] and mean["search"] < mean[8]


def test_normal_intervals_use_the_normal_quantile():
    # R's confint(svymean(...)) default: estimate -/+ qnorm(0.975) * SE
    from scipy.stats import norm

    sample = skb.datasets.load_api("clus1")
    targets = skb.datasets.api_population_targets(["stype", "sch.wide"])
    est = skb.BalancedFunctionalEstimator(
        skb.MarginalBalancer(targets=targets, tol=1e-12),
        design=skb.SurveyDesign(clusters="dnum", fpc="fpc"), df="normal").fit(
        sample, sample["api00"], sample_weight=sample["pw"])
    z = norm.ppf(0.975)
    row = est.results_.iloc[0]
    assert est.df_ == np.inf and row["df"] == np.inf
    assert row["ci_low"] == pytest.approx(row["estimate"] - z * row["std_error"], rel=1e-14)
    assert row["ci_high"] == pytest.approx(row["estimate"] + z * row["std_error"], rel=1e-14)
    low, high = est.confidence_interval(0.10)
    assert high - low == pytest.approx(2 * norm.ppf(0.95) * est.std_error_, rel=1e-12)
    # the t interval with the design's 14 df is wider
    t_est = skb.BalancedFunctionalEstimator(
        skb.MarginalBalancer(targets=targets, tol=1e-12),
        design=skb.SurveyDesign(clusters="dnum", fpc="fpc")).fit(
        sample, sample["api00"], sample_weight=sample["pw"])
    assert t_est.std_error_ == pytest.approx(est.std_error_, rel=1e-14)
    assert t_est.results_["ci_high"].iloc[0] > row["ci_high"]


def test_empirical_baseline_reads_no_unrelated_column():
    # issue 22, item 14: a column with missing values that nothing uses
    frame = pd.DataFrame({"g": ["a", "b", "a", "b", "a"], "notes": [1.0, np.nan, 2, 3, 4],
                          "y": [1.0, 2, 3, 4, 6]})
    weights = np.array([1.0, 2, 1, 2, 3])
    est = skb.BalancedFunctionalEstimator(baseline="empirical", domain="g")
    results = est.fit(frame, frame["y"], sample_weight=weights).results_
    for level in ("a", "b"):  # plain weighted means per domain
        rows = (frame["g"] == level).to_numpy()
        expected = np.sum(weights[rows] * frame["y"][rows]) / weights[rows].sum()
        assert results.loc[results.domain == level, "estimate"].item() == pytest.approx(
            expected, rel=1e-14)
    assert est.n_features_in_ == 3
    assert list(est.feature_names_in_) == ["g", "notes", "y"]


def test_outcomes_named_by_label_of_a_frame():
    """y as the label(s) of X's columns, as on a dask frame: the same numbers
    as the columns' values, and the mean is the weighted mean by a plain sum."""
    rng = np.random.default_rng(11)
    n = 300
    X = pd.DataFrame({"g": rng.choice(["a", "b"], n), "psu": rng.integers(0, 20, n),
                      "y": rng.normal(3, 1, n), "c": rng.choice(["p", "q"], n)})
    targets = {"g": {"a": 0.4, "b": 0.6}}

    def fit(y):
        return skb.BalancedFunctionalEstimator(
            skb.MarginalBalancer(targets=targets, tol=1e-12),
            design=skb.SurveyDesign(clusters="psu")).fit(X, y)

    by_label, by_values = fit("y"), fit(X["y"])
    w = by_label.weights_
    assert by_label.estimate_ == pytest.approx(np.sum(w * X["y"]) / np.sum(w), rel=1e-13)
    assert by_label.std_error_ == by_values.std_error_
    numbers = ["estimate", "std_error", "ci_low", "ci_high"]
    pd.testing.assert_frame_equal(fit(["y", "c"]).results_[numbers],
                                  fit(X[["y", "c"]]).results_[numbers])
    with pytest.raises(ValueError, match=r"Unknown column 'income'"):
        fit("income")
    # a list of values that are not all column labels stays values
    values = list(np.where(X["g"] == "a", "y", "other"))
    assert fit(values).results_["level"].tolist() == ["other", "y"]


@pytest.mark.parametrize("k", [3, 9])
def test_rows_that_hardly_share_a_cell_are_cells_of_their_own(k):
    # 10**7 combinations of 7 ten-level columns (beyond the dense table) and
    # 20,000 rows, nearly all distinct: every row is a cell of its own. The
    # weights, the estimate and its standard error are those of plain loops
    # over the rows; the count of cells is the distinct rows'.
    rng = np.random.default_rng(5)
    n = 20_000
    X = pd.DataFrame({f"c{j}": rng.integers(0, 10, n) for j in range(7)}).astype(str)
    X.iloc[:40] = X.iloc[40:80].to_numpy()  # a few rows repeated
    y = rng.normal(size=n) + X["c0"].astype(int).to_numpy()
    base = rng.lognormal(size=n)
    targets = {c: dict(zip(map(str, range(10)), p))
               for c, p in zip(X, rng.dirichlet(np.full(10, 20.0), 7))}
    balancer = skb.MarginalBalancer(targets=targets, max_iter=k, tol=0)
    problem = balancer.fit_problem(X, sample_weight=base)
    assert problem.rows_are_cells and np.array_equal(problem.cell_of_row, np.arange(n))
    assert balancer.n_cells_ == len(X.drop_duplicates()) < n
    est = skb.BalancedFunctionalEstimator(balancer).fit(X, y, sample_weight=base)
    weights = base.copy()  # raking by a plain loop over the rows
    for step in range(k):
        column = X.iloc[:, step % 7].to_numpy()
        current = pd.Series(weights).groupby(column).sum()
        wanted = pd.Series(targets[X.columns[step % 7]]) * weights.sum()
        weights = weights * (wanted / current).reindex(column).to_numpy()
    np.testing.assert_allclose(est.balancer_.weights_, weights, rtol=1e-12)
    assert est.estimate_ == pytest.approx(np.sum(weights * y) / weights.sum(), rel=1e-13)
    columns = [list(X[c]) for c in X]
    expected = _linearization_se_by_loops(columns, base, weights, y, est.estimate_, k)
    assert est.std_error_ == pytest.approx(expected, rel=1e-10)
