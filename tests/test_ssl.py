"""Contrastive losses, SwaV codes and metadata curation against plain code."""

import math

import numpy as np
import pytest

from skbalance.ssl import (
    MetadataCurator,
    balanced_contrastive_loss,
    match_entries,
    swav_codes,
)


def loss_by_loops(L, k):
    """The authors' definitions (THEORY section 5), entry by entry."""
    m = len(L)
    if k == 0:
        total = math.log(sum(math.exp(v) for row in L for v in row))
        return -sum(L[i][i] - total for i in range(m)) / m

    def lsm(X, rows):
        Y = [[0.0] * m for _ in range(m)]
        for i in range(m):
            for j in range(m):
                line = X[i] if rows else [X[r][j] for r in range(m)]
                Y[i][j] = X[i][j] - math.log(sum(math.exp(v) for v in line))
        return Y

    A, B = [list(r) for r in L], [list(r) for r in L]
    for step in range(1, k + 1):
        A = lsm(A, rows=step % 2 == 1)
        B = lsm(B, rows=step % 2 == 0)
    return -sum(0.5 * A[i][i] + 0.5 * B[i][i] for i in range(m)) / m


@pytest.mark.parametrize("k", range(5))
def test_loss_values(k):
    L = np.random.default_rng(k).normal(scale=3.0, size=(5, 5))
    assert float(balanced_contrastive_loss(L, n_steps=k)) == pytest.approx(
        loss_by_loops(L.tolist(), k), abs=1e-12)


def test_k1_is_the_clip_loss():
    L = np.random.default_rng(9).normal(size=(6, 6))
    image_to_text = -np.mean(np.diag(L) - np.log(np.exp(L).sum(axis=1)))
    text_to_image = -np.mean(np.diag(L) - np.log(np.exp(L).sum(axis=0)))
    assert float(balanced_contrastive_loss(L, n_steps=1)) == pytest.approx(
        (image_to_text + text_to_image) / 2, abs=1e-13)


@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_gradient_matches_finite_differences(k):
    L = np.random.default_rng(10 + k).normal(size=(4, 4))
    loss, grad = balanced_contrastive_loss(L, n_steps=k, return_grad=True)
    assert float(loss) == pytest.approx(float(balanced_contrastive_loss(L, n_steps=k)))
    numeric = np.zeros_like(L)
    h = 1e-6
    for i in range(4):
        for j in range(4):
            up, down = L.copy(), L.copy()
            up[i, j] += h
            down[i, j] -= h
            numeric[i, j] = (float(balanced_contrastive_loss(up, n_steps=k))
                             - float(balanced_contrastive_loss(down, n_steps=k))) / (2 * h)
    np.testing.assert_allclose(grad, numeric, atol=1e-8)


def test_loss_is_stable_for_large_logits():
    L = np.random.default_rng(11).normal(size=(8, 8)) * 1e3
    loss, grad = balanced_contrastive_loss(L, n_steps=3, return_grad=True)
    assert np.isfinite(float(loss)) and np.all(np.isfinite(grad))


def test_loss_rejects_bad_input():
    with pytest.raises(ValueError, match="square"):
        balanced_contrastive_loss(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="NaN or Inf"):
        balanced_contrastive_loss(np.array([[np.nan, 0.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="nonnegative integer"):
        balanced_contrastive_loss(np.zeros((2, 2)), n_steps=-1)


def swav_transcription(out, epsilon, iterations):
    """SwaV's distributed_sinkhorn on one process, line by line (K x B)."""
    Q = np.exp(out / epsilon).T
    B, K = Q.shape[1], Q.shape[0]
    Q /= np.sum(Q)
    for _ in range(iterations):
        sum_of_rows = np.sum(Q, axis=1, keepdims=True)
        Q /= sum_of_rows
        Q /= K
        Q /= np.sum(Q, axis=0, keepdims=True)
        Q /= B
    Q *= B
    return Q.T


@pytest.mark.parametrize("epsilon, iterations", [(0.05, 3), (0.1, 1), (0.03, 10)])
def test_swav_codes_equal_swav(epsilon, iterations):
    scores = np.random.default_rng(12).uniform(-1, 1, size=(32, 10))
    codes = swav_codes(scores, epsilon=epsilon, n_iter=iterations)
    np.testing.assert_allclose(codes, swav_transcription(scores, epsilon, iterations),
                               rtol=1e-10)
    np.testing.assert_allclose(codes.sum(axis=1), 1.0, rtol=1e-12)


def test_swav_codes_survive_tiny_temperatures():
    scores = np.random.default_rng(13).uniform(-1, 1, size=(16, 4)).astype(np.float32)
    codes = swav_codes(scores, epsilon=1e-3)
    assert codes.dtype == np.float32 and np.all(np.isfinite(codes))


CAPTIONS = [
    "A cat sat on the mat.",          # 0: 'cat' before punctuation-free word
    "my cat, and a dog!",            # 1: punctuation right after entries
    "catalog of categories",         # 2: substrings of longer words: no match
    "new york city at night",        # 3: multi-word entries, nested
    "I love New York",               # 4: case-sensitive: 'New York' != 'new york'
    "the dog\tand the cat\nsleep",   # 5: tabs and newlines are spaces
    "hot-dog stand",                 # 6: hyphen is not wrapped: 'dog' absent
    "nothing here",                  # 7: no entry
    "new  york",                     # 8: double space: 'new york' absent
]
ENTRIES = ["cat", "dog", "new york", "york", "new york city", "mat", "night"]


def test_match_entries_on_hand_made_captions():
    incidence = match_entries(CAPTIONS, ENTRIES).toarray()
    expected = {
        0: {"cat", "mat"}, 1: {"cat", "dog"}, 2: set(),
        3: {"new york", "york", "new york city", "night"}, 4: set(),
        5: {"dog", "cat"}, 6: set(), 7: set(), 8: {"york"},
    }
    for row, entries in expected.items():
        assert {ENTRIES[j] for j in np.flatnonzero(incidence[row])} == entries, row
    # the same as testing every entry on every caption, MetaCLIP's way
    for row, caption in enumerate(CAPTIONS):
        spaced = f" {caption} "
        for mark in ",.;:?!`":
            spaced = spaced.replace(mark, f" {mark} ")
        for char in "\t\n\r":
            spaced = spaced.replace(char, " ")
        for j, entry in enumerate(ENTRIES):
            assert incidence[row, j] == (f" {entry} " in spaced)


def test_metaclip_counts_and_keep_probabilities():
    captions = ["a cat"] * 6 + ["a dog"] * 2 + ["cat and dog", "a bird"]
    curator = MetadataCurator(entries=["cat", "dog", "bird", "fish"], t=3).fit(captions)
    np.testing.assert_array_equal(curator.entry_counts_, [7, 3, 1, 0])
    accept = {"cat": 3 / 7, "dog": 1.0, "bird": 1.0}
    expected = [accept["cat"]] * 6 + [1.0, 1.0, 1 - (1 - 3 / 7) * (1 - 1.0), 1.0]
    np.testing.assert_allclose(curator.keep_probability_, expected, rtol=1e-12)
    np.testing.assert_allclose(curator.target_entry_marginal_, np.array([3, 3, 1, 0]) / 7)
    keep_rate = np.mean([np.sum(curator.set_params(random_state=s).sample() < 6)
                         for s in range(2000)]) / 6
    assert keep_rate == pytest.approx(3 / 7, abs=0.02)


def test_balance_one_step_and_many_steps():
    captions = ["a cat"] * 6 + ["a dog"] * 2 + ["cat and dog", "a bird", "nothing"]
    one = MetadataCurator(entries=["cat", "dog", "bird"], t=3, method="balance").fit(captions)
    # one step by hand: uniform over the 10 matched captions, mass spread evenly
    n = 10
    entry_mass = {"cat": 6 / n + 0.5 / n, "dog": 2 / n + 0.5 / n, "bird": 1 / n}
    target = {"cat": 3 / 7, "dog": 3 / 7, "bird": 1 / 7}
    ratio = {e: target[e] / entry_mass[e] for e in target}
    q = np.array([ratio["cat"]] * 6 + [ratio["dog"]] * 2
                 + [0.5 * ratio["cat"] + 0.5 * ratio["dog"], ratio["bird"], 0.0]) / n
    np.testing.assert_allclose(one.sampling_probability_, q / q.sum(), rtol=1e-12)
    many = MetadataCurator(entries=["cat", "dog", "bird"], t=3, method="balance",
                           n_steps=500, random_state=0)
    many.fit(captions)
    np.testing.assert_allclose(many.entry_marginal_, [3 / 7, 3 / 7, 1 / 7], atol=1e-9)
    assert np.abs(one.entry_marginal_ - many.target_entry_marginal_).max() > 1e-3
    drawn = many.sample(5)
    assert len(set(drawn)) == 5 and 10 not in drawn
    np.testing.assert_array_equal(many.sample(5), drawn)  # an int seed: same draw
    with pytest.raises(ValueError, match="Give n"):
        many.sample()


def test_curator_errors():
    with pytest.raises(ValueError, match="No caption matches"):
        MetadataCurator(entries=["zebra"], t=1).fit(["a cat"])
    with pytest.raises(TypeError):
        MetadataCurator(["cat"], 1)  # keyword-only, as every scikit-learn estimator
    with pytest.raises(ValueError, match="The 't' parameter"):
        MetadataCurator(entries=["cat"], t=-1).fit(["a cat"])
    with pytest.raises(ValueError, match="not one string"):
        MetadataCurator(entries=["cat"], t=1).fit("a cat")
    with pytest.raises(ValueError, match="listed twice"):
        match_entries(["a"], ["a", "a"])
    with pytest.raises(TypeError, match="not a string"):
        match_entries([3], ["a"])


def test_contrastive_loss_memory_does_not_grow_with_steps():
    import tracemalloc

    rng = np.random.default_rng(0)
    L = rng.normal(size=(300, 300))
    peaks = {}
    for k in (2, 40):
        tracemalloc.start()
        balanced_contrastive_loss(L, n_steps=k, return_grad=True)
        peaks[k] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peaks[40] < 1.3 * peaks[2]  # storing every step's matrix: about 20x
    assert peaks[40] < 12 * L.nbytes
    # and the loss of 40 steps is the chain of 40 log-softmaxes, by a plain loop
    A, B = L.copy(), L.copy()
    for step in range(1, 41):
        axis_a = 1 if step % 2 else 0
        A = A - np.log(np.exp(A).sum(axis=axis_a, keepdims=True))
        B = B - np.log(np.exp(B).sum(axis=1 - axis_a, keepdims=True))
    expected = -(np.diag(A) + np.diag(B)).mean() / 2
    assert float(balanced_contrastive_loss(L, n_steps=40)) == pytest.approx(expected,
                                                                           rel=1e-12)


def test_swav_codes_scaled_and_log_paths_agree(monkeypatch):
    scores = np.random.default_rng(14).uniform(-1, 1, size=(64, 40))
    fast = swav_codes(scores, epsilon=0.05, n_iter=3)
    monkeypatch.setattr("skbalance.ssl._swav._scaled_codes", lambda *args: None)
    slow = swav_codes(scores, epsilon=0.05, n_iter=3)
    np.testing.assert_allclose(fast, slow, rtol=1e-12)
    before = scores.copy()
    swav_codes(scores)
    np.testing.assert_array_equal(scores, before)  # the caller's scores are untouched


@pytest.mark.parametrize("dtype, epsilon", [(np.float64, 1e-310), (np.float32, 1e-40)])
def test_swav_epsilon_beyond_the_float_range_is_refused(dtype, epsilon):
    # scores / epsilon overflowed and the codes came back NaN
    scores = np.random.default_rng(0).uniform(size=(6, 3)).astype(dtype)
    with pytest.raises(ValueError, match="epsilon=.* is too small for these scores"):
        swav_codes(scores, epsilon=epsilon)
    # a small epsilon inside the range still gives finite codes whose columns balance
    codes = swav_codes(scores, epsilon=1e-3 if dtype is np.float32 else 1e-6, n_iter=50)
    assert np.all(np.isfinite(codes))
    np.testing.assert_allclose(codes.sum(axis=1), 1.0, rtol=1e-4)
