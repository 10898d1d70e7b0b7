"""Metadata curation (MetaCLIP) as balancing of a caption x entry matrix."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from numbers import Integral, Real
from typing import Any, Literal

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

__all__ = ["MetadataCurator", "match_entries"]

_PUNCTUATION = [",", ".", ";", ":", "?", "!", "`"]
_WHITESPACE = ["\t", "\n", "\r"]


def _spaced(text):
    """MetaCLIP's text spacing: punctuation wrapped in spaces, padded."""
    spaced = f" {text} "
    for mark in _PUNCTUATION:
        spaced = spaced.replace(mark, f" {mark} ")
    for char in _WHITESPACE:
        spaced = spaced.replace(char, " ")
    return spaced


def match_entries(captions: Iterable[str], entries: Sequence[str]) -> Any:
    """Caption x entry incidence of whole-word matches, as MetaCLIP does.

    An entry ``e`` matches a caption when ``" e "`` occurs in the caption
    padded with spaces, after punctuation (``, . ; : ? ! ```) is wrapped in
    spaces and tabs and newlines become spaces; matching is case-sensitive.
    Instead of testing every entry against every caption, the spaced
    caption is split on single spaces and every run of up to ``w`` tokens
    (``w`` the most words in an entry) is looked up in a hash table of the
    entries: one pass per caption, the same matches as MetaCLIP's
    Aho-Corasick automaton.

    Parameters
    ----------
    captions : iterable of str
        The texts.
    entries : sequence of str
        The metadata entries (distinct).

    Returns
    -------
    incidence : scipy.sparse.csr_array of shape (n_captions, n_entries)
        1 where the entry occurs in the caption.

    Examples
    --------
    >>> from skbalance.ssl import match_entries
    >>> match_entries(["A cat, a dog.", "catalog"], ["cat", "dog", "a dog"]).toarray().tolist()
    [[1, 1, 1], [0, 0, 0]]
    """
    index = {}
    for position, entry in enumerate(entries):
        if not isinstance(entry, str) or entry == "":
            raise ValueError(f"Entries must be non-empty strings; got {entry!r}.")
        if entry in index:
            raise ValueError(f"Entry {entry!r} is listed twice.")
        index[entry] = position
    longest = max((entry.count(" ") + 1 for entry in index), default=1)
    rows, cols = [], []
    n_captions = 0
    for row, caption in enumerate(captions):
        if not isinstance(caption, str):
            raise TypeError(f"Caption {row} is not a string: {caption!r}.")
        n_captions += 1
        tokens = _spaced(caption).split(" ")
        found = set()
        # tokens[0] and tokens[-1] are the padding; an entry must be flanked
        # by spaces, so runs start at 1 and end before the last token.
        for start in range(1, len(tokens) - 1):
            stop_limit = min(start + longest, len(tokens) - 1)
            for stop in range(start + 1, stop_limit + 1):
                position = index.get(" ".join(tokens[start:stop]))
                if position is not None:
                    found.add(position)
        rows.extend([row] * len(found))
        cols.extend(found)
    data = np.ones(len(rows), dtype=np.int64)
    return sparse.csr_array((data, (rows, cols)), shape=(n_captions, len(index)))


class MetadataCurator(BaseEstimator):
    """Curate captions toward a balanced distribution over metadata entries.

    Matches every caption against the entries (see :func:`match_entries`),
    counts the captions per entry, and sets the target entry distribution
    proportional to ``min(count, t)``: head entries are capped at ``t``,
    tail entries kept whole.

    * ``method="metaclip"``: MetaCLIP's rule. Entry ``e`` accepts a caption
      with probability ``t / max(count_e, t)``; a caption is kept when one of
      its entries accepts it: ``1 - prod_e (1 - t / max(count_e, t))``.
    * ``method="balance"``: the paper's balancing view. Each caption's unit
      mass is spread evenly over its matched entries; a balancing step
      rescales every entry to its target share, and the caption marginal
      becomes the sampling distribution. ``n_steps = 1`` is the paper's
      experiment; more steps (each re-spreading the caption mass over its
      entries) make the entry distribution of the sample hit the target.

    Parameters
    ----------
    entries : sequence of str
        Metadata entries.
    t : int or float
        The cap on entry counts (MetaCLIP's ``t``, e.g. 20000).
    method : {"metaclip", "balance"}, default="metaclip"
        Curation rule.
    n_steps : int, default=1
        Balancing steps (``method="balance"``).
    random_state : int, RandomState instance or None, default=None
        Seed of :meth:`sample` (scikit-learn's convention: an int gives the
        same draw on every call).

    Attributes
    ----------
    incidence_ : scipy.sparse.csr_array of shape (n_captions, n_entries)
        Whole-word matches.
    entry_counts_ : ndarray of shape (n_entries,)
        Captions matching each entry.
    target_entry_marginal_ : ndarray of shape (n_entries,)
        ``min(count, t)``, normalised (zero for unmatched entries).
    keep_probability_ : ndarray of shape (n_captions,)
        MetaCLIP's probability of keeping each caption (``method="metaclip"``).
    sampling_probability_ : ndarray of shape (n_captions,)
        Distribution over captions for :meth:`sample`: the balanced caption
        marginal (``method="balance"``), or the keep probabilities normalised.
    entry_marginal_ : ndarray of shape (n_entries,)
        Entry distribution of a caption drawn from ``sampling_probability_``
        (its mass spread evenly over its entries).

    Examples
    --------
    >>> from skbalance.ssl import MetadataCurator
    >>> captions = ["a cat", "a cat", "a cat", "a dog", "a cat and a dog"]
    >>> curator = MetadataCurator(entries=["cat", "dog"], t=2).fit(captions)
    >>> curator.entry_counts_.tolist()
    [4, 2]
    >>> curator.keep_probability_.round(3).tolist()
    [0.5, 0.5, 0.5, 1.0, 1.0]
    """

    _parameter_constraints: dict = {
        "entries": ["array-like"],
        "t": [Interval(Real, 0, None, closed="neither")],
        "method": [StrOptions({"metaclip", "balance"})],
        "n_steps": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(self, *, entries: Sequence[str], t: int,
                 method: Literal["metaclip", "balance"] = "metaclip", n_steps: int = 1,
                 random_state: Any = None) -> None:
        self.entries = entries
        self.t = t
        self.method = method
        self.n_steps = n_steps
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        return tags

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, captions: Iterable[str], y: None = None) -> MetadataCurator:
        """Match the captions and compute the curation probabilities.

        Parameters
        ----------
        captions : iterable of str
            The captions of the data pool.
        y : None
            Ignored.

        Returns
        -------
        self : MetadataCurator
            The fitted curator.

        Examples
        --------
        >>> from skbalance.ssl import MetadataCurator
        >>> MetadataCurator(entries=["cat"], t=1).fit(["a cat", "no"]).entry_counts_.tolist()
        [1]
        """
        if isinstance(captions, str):
            raise ValueError("captions must be an iterable of strings, not one string.")
        incidence = match_entries(captions, list(self.entries))
        counts = np.asarray(incidence.sum(axis=0)).ravel().astype(np.int64)
        capped = np.minimum(counts, self.t).astype(np.float64)
        if capped.sum() <= 0:
            raise ValueError("No caption matches any entry: nothing to curate.")
        self.incidence_ = incidence
        self.entry_counts_ = counts
        self.target_entry_marginal_ = capped / capped.sum()

        per_caption = np.asarray(incidence.sum(axis=1)).ravel()
        spread = sparse.diags(np.divide(1.0, per_caption, out=np.zeros(per_caption.shape),
                                        where=per_caption > 0)) @ incidence
        self._spread = spread.tocsr()
        if self.method == "metaclip":
            accept = self.t / np.maximum(counts, self.t)
            # log(1 - p) summed over matched entries; p = 1 gives -inf (kept surely)
            with np.errstate(divide="ignore"):
                log_reject = np.log1p(-np.minimum(accept, 1.0))
            total = incidence @ log_reject
            self.keep_probability_ = -np.expm1(total)
            self.sampling_probability_ = self.keep_probability_ / self.keep_probability_.sum()
        else:
            self.sampling_probability_ = self._balance(per_caption > 0)
        self.entry_marginal_ = self._spread.T @ self.sampling_probability_
        return self

    def _balance(self, matched):
        """Caption distribution q with spread^T q -> target, n_steps steps.

        A step rescales the entry masses ``Q(i, e) = q_i / d_i`` to the target
        entry marginal; the new caption marginal is ``q_i * mean ratio`` over
        its entries (then re-spread evenly for the next step).
        """
        q = matched / matched.sum()
        target = self.target_entry_marginal_
        for _ in range(self.n_steps):
            current = self._spread.T @ q
            ratio = np.divide(target, current, out=np.zeros_like(target), where=current > 0)
            q = q * (self._spread @ ratio)
        return q / q.sum()

    def sample(self, n: int | None = None) -> np.ndarray:
        """Draw a curated set of caption indices.

        Parameters
        ----------
        n : int or None, default=None
            Number of distinct captions, drawn without replacement with
            probabilities ``sampling_probability_``. ``None`` (MetaCLIP only)
            keeps each caption independently with ``keep_probability_``. The
            draw follows ``random_state``.

        Returns
        -------
        indices : ndarray of int
            Sorted indices of the curated captions.

        Examples
        --------
        >>> from skbalance.ssl import MetadataCurator
        >>> curator = MetadataCurator(entries=["cat"], t=1, random_state=0)
        >>> curator.fit(["a cat", "a cat", "dog"]).sample(1).tolist()
        [1]
        """
        check_is_fitted(self)
        rng = check_random_state(self.random_state)
        if n is None:
            if self.method != "metaclip":
                raise ValueError("Give n, the number of captions to draw.")
            keep = rng.random_sample(self.keep_probability_.shape[0]) < self.keep_probability_
            return np.flatnonzero(keep)
        available = int(np.count_nonzero(self.sampling_probability_ > 0))
        if isinstance(n, bool) or int(n) != n or not 0 <= n <= available:
            raise ValueError(
                f"n must be an integer between 0 and {available} (captions with a "
                f"positive probability); got {n!r}."
            )
        drawn = rng.choice(self.sampling_probability_.shape[0], size=int(n), replace=False,
                           p=self.sampling_probability_)
        return np.sort(drawn)
