"""Entropy balancing (issue 21, item 7): raking controls to the treated means."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import skbalance as skb

REFERENCE = json.loads((Path(__file__).parent / "ebal_reference" /
                        "ebal_reference.json").read_text())


def test_weights_equal_the_ebal_package():
    X = pd.DataFrame(REFERENCE["X"], columns=REFERENCE["columns"])
    treated = np.asarray(REFERENCE["treated"])
    weights = skb.entropy_balancing_weights(X, treated, tol=1e-13)
    expected = np.asarray(REFERENCE["weights"])  # treated 1 / n_treated, controls sum 1
    np.testing.assert_allclose(weights / treated.sum(), expected, rtol=1e-8)
    np.testing.assert_allclose(
        np.average(X[~treated], weights=weights[~treated], axis=0), X[treated].mean(),
        rtol=1e-12)


def test_base_weights_and_the_closed_form_of_one_binary_covariate():
    """One 0/1 covariate: the controls' shares become the treated's, each
    control's base weight scaled within its level (exponential tilting)."""
    rng = np.random.default_rng(1)
    x = rng.binomial(1, 0.3, 400) * 1.0
    treated = rng.random(400) < 0.2 + 0.4 * x
    base = rng.uniform(1, 3, 400)
    weights = skb.entropy_balancing_weights(pd.DataFrame({"x": x}), treated,
                                            sample_weight=base)
    share = np.average(x[treated], weights=base[treated])
    controls = ~treated
    for level, target in ((1.0, share), (0.0, 1 - share)):
        rows = controls & (x == level)
        factor = target * base[treated].sum() / base[rows].sum()
        np.testing.assert_allclose(weights[rows], base[rows] * factor, rtol=1e-10)
    np.testing.assert_array_equal(weights[treated], base[treated])


def test_entropy_balancing_errors():
    X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 5.0]})
    with pytest.raises(ValueError, match="both treated and control rows"):
        skb.entropy_balancing_weights(X, [True] * 4)
    with pytest.raises(ValueError, match="True/False"):
        skb.entropy_balancing_weights(X, [2, 0, 1, 0])
    with pytest.raises(ValueError, match="outside the controls' range"), \
            pytest.warns(UserWarning):
        skb.entropy_balancing_weights(X, [False, False, False, True])
