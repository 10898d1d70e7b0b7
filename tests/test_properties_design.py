"""Generated survey designs (issue 22): random strata and cluster layouts,
lonely PSUs, zero weights, empty domains, every replicate kind, pandas and
polars frames. Every output is finite or the call raises a clear error, and
the results do not depend on the order of the rows.

400 seeded cases (hypothesis, derandomized); in the slow set.
"""

import re
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import skbalance as skb

pytestmark = pytest.mark.slow

N_CASES = 400
REPLICATES = [None, "jk1", "jkn", "subbootstrap", "canty-davison", "brr", "fay"]
LONELY = ["fail", "remove", "certainty", "adjust", "average"]
# what a clear error names: the design's parts, the rule to choose, the data
CLEAR = re.compile(r"stratum|strata|cluster|unit|replicate|weight|domain|lonely|level|"
                   r"target|fpc|row", re.IGNORECASE)


@st.composite
def designs(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_strata = draw(st.integers(1, 4))
    labels_are_text = draw(st.booleans())
    paired = draw(st.booleans())  # BRR's shape: two PSUs in every stratum
    rows = []
    for h in range(n_strata):
        n_psu = 2 if paired else draw(st.integers(1, 5))
        for p in range(n_psu):
            for _ in range(draw(st.integers(1, 6))):
                rows.append((h, p + 10 * h))
    frame = pd.DataFrame(rows, columns=["stratum", "psu"])
    if labels_are_text:  # labels whose text order is not their numeric order
        frame["stratum"] = "s" + (frame["stratum"] * 7 % 11).astype(str)
        frame["psu"] = "p" + (frame["psu"] * 3).astype(str)
    n = len(frame)
    frame["w"] = rng.uniform(0.5, 4.0, n)
    if draw(st.booleans()):
        frame.loc[rng.random(n) < 0.15, "w"] = 0.0
    frame["y"] = rng.normal(50, 10, n)
    frame["g"] = rng.choice(["a", "b"], n)
    frame["dom"] = pd.Categorical(rng.choice(["u", "v"], n), categories=["u", "v", "z"])
    params = {
        "strata": "stratum" if draw(st.booleans()) else None,
        "clusters": "psu" if draw(st.booleans()) else None,
        "fpc": "N" if draw(st.booleans()) else None,
        "lonely_psu": draw(st.sampled_from(LONELY)),
        "replicates": draw(st.sampled_from(REPLICATES)),
    }
    # the population count of units in every stratum (1x: taken whole)
    group = frame["stratum"] if params["strata"] else np.zeros(n, dtype=int)
    units = (frame.groupby(group)["psu"].transform("nunique") if params["clusters"]
             else frame.groupby(group)["psu"].transform("size"))
    frame["N"] = units * draw(st.sampled_from([1, 2, 10]))
    balanced = draw(st.booleans())
    domain = draw(st.booleans())
    polars = draw(st.booleans())
    return frame, params, balanced, domain, polars, draw(st.integers(0, 2**16))


def _estimate(frame, params, balanced, domain, polars):
    design = skb.SurveyDesign(**params, nest=True, n_replicates=20, random_state=0)
    if balanced:
        balancer = skb.MarginalBalancer(targets={"g": {"a": 0.5, "b": 0.5}})
        est = skb.BalancedFunctionalEstimator(balancer, design=design,
                                              domain="dom" if domain else None)
    else:
        est = skb.BalancedFunctionalEstimator(baseline="empirical", design=design,
                                              domain="dom" if domain else None)
    X = frame.drop(columns="y")
    if polars:
        import polars as pl
        X = pl.from_pandas(X.assign(dom=X["dom"].astype(str)))
    return est.fit(X, frame["y"].to_numpy(), sample_weight=frame["w"].to_numpy()).results_


@settings(max_examples=N_CASES, derandomize=True, deadline=None,
          suppress_health_check=list(HealthCheck))
@given(designs())
def test_designs_give_finite_results_or_clear_errors_whatever_the_row_order(case):
    frame, params, balanced, domain, polars, seed = case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            results = _estimate(frame, params, balanced, domain, polars)
        except ValueError as exc:
            assert CLEAR.search(str(exc)), str(exc)
            return
        numbers = results[["estimate", "std_error", "ci_low", "ci_high", "df"]]
        assert np.all(np.isfinite(numbers.to_numpy(dtype=float))), results
        rows_are_units = params["clusters"] is None
        if rows_are_units and params["replicates"] in ("subbootstrap", "canty-davison",
                                                       "brr", "fay"):
            return  # unlabeled units are drawn in the order of the rows
        shuffled = frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)
        again = _estimate(shuffled, params, balanced, domain, polars)
    pd.testing.assert_frame_equal(results.reset_index(drop=True),
                                  again.reset_index(drop=True), rtol=1e-8, atol=1e-10)
