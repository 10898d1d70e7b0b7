"""Diagnostic plots (needs matplotlib: ``pip install skbalance[plot]``).

Every function draws on the given Axes (or a new figure's) and returns it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

__all__ = ["plot_love", "plot_margins", "plot_spectrum", "plot_variance_curve", "plot_weights"]


def _axes(ax):
    if ax is not None:
        return ax
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "skbalance.plotting needs matplotlib: pip install 'skbalance[plot]'"
        ) from exc
    return plt.figure(figsize=(6, 4)).add_subplot()


def plot_spectrum(spectrum: Any, ax: Axes | None = None) -> Axes:
    """Bar chart of the singular values, with the spectral gap marked.

    Parameters
    ----------
    spectrum : SpectralGapAnalyzer or array-like
        A fitted analyzer, or singular values in descending order.
    ax : matplotlib Axes, optional
        Where to draw; a new figure by default.

    Returns
    -------
    ax : matplotlib Axes
        The Axes drawn on.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skbalance.plotting import plot_spectrum
    >>> ax = plot_spectrum([1.0, 0.6, 0.2])
    >>> [round(float(p.get_height()), 2) for p in ax.patches]
    [1.0, 0.6, 0.2]
    """
    values = np.asarray(getattr(spectrum, "singular_values_", spectrum), dtype=float)
    ax = _axes(ax)
    index = np.arange(1, values.shape[0] + 1)
    ax.bar(index, values, color="tab:blue")
    if values.shape[0] > 1:
        ax.axhline(values[1], color="tab:red", linestyle="--", linewidth=1,
                   label=f"s_2 = {values[1]:.3f} (spectral gap {1 - values[1]:.3f})")
        ax.legend(loc="upper right")
    ax.set_xticks(index)
    ax.set_xlabel("j")
    ax.set_ylabel("singular value s_j")
    ax.set_ylim(0, 1.05)
    ax.set_title("Spectrum of the conditional-mean operators")
    return ax


def plot_variance_curve(curve: Any, limit: float | None = None, ipwi: float | None = None, *,
                        n: int | None = None, ax: Axes | None = None) -> Axes:
    """``sigma_k^2`` against ``k``, with the limit and the IPWI level.

    Parameters
    ----------
    curve : SpectralGapAnalyzer or array-like
        A fitted analyzer (with ``y``), or ``sigma_k^2`` for ``k = 0, 1, ...``.
    limit : float, optional
        ``sigma_inf^2`` (taken from the analyzer when given one).
    ipwi : float, optional
        The importance-weighting variance (taken from the analyzer too).
    n : int, optional
        Divide everything by ``n``: the variance of the estimate itself.
    ax : matplotlib Axes, optional
        Where to draw.

    Returns
    -------
    ax : matplotlib Axes
        The Axes drawn on.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skbalance.plotting import plot_variance_curve
    >>> ax = plot_variance_curve([0.21, 0.075, 0.052], limit=0.039, ipwi=0.0975)
    >>> ax.lines[0].get_ydata().tolist()
    [0.21, 0.075, 0.052]
    """
    if hasattr(curve, "variance_curve_"):
        limit = curve.variance_limit_ if limit is None else limit
        ipwi = curve.ipwi_variance_ if ipwi is None else ipwi
        curve = curve.variance_curve_
    scale = 1.0 if n is None else 1.0 / n
    values = np.asarray(curve, dtype=float) * scale
    ax = _axes(ax)
    steps = np.arange(values.shape[0])
    ax.plot(steps, values, marker="o", color="tab:blue", label="balanced, k steps")
    if limit is not None:
        ax.axhline(limit * scale, color="tab:green", linestyle="--",
                   label="limit (k = infinity)")
    if ipwi is not None:
        ax.axhline(ipwi * scale, color="tab:orange", linestyle=":",
                   label="importance weighting")
    ax.set_xlabel("balancing steps k")
    ax.set_ylabel("variance" if n is not None else "asymptotic variance sigma_k^2")
    ax.set_title("Variance of the balanced mean")
    ax.legend()
    return ax


def plot_love(report: pd.DataFrame, ax: Axes | None = None, *, levels: bool = True,
              threshold: float = 0.1) -> Axes:
    """Love plot: every covariate's ASMD before and after weighting.

    Parameters
    ----------
    report : DataFrame
        A covariate-balance report (:meth:`MarginalBalancer.balance_report`,
        :func:`skbalance.covariate_balance`).
    ax : matplotlib Axes, optional
        Where to draw.
    levels : bool, default=True
        One line per term (each level of a categorical covariate); False:
        one per covariate (the mean over its levels).
    threshold : float or None, default=0.1
        Where to draw the customary "balanced" line (None: no line).

    Returns
    -------
    ax : matplotlib Axes
        The Axes drawn on.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> import skbalance as skb
    >>> from skbalance.plotting import plot_love
    >>> X = pd.DataFrame({"g": ["a", "b", "b", "b"]})
    >>> bal = skb.MarginalBalancer(targets={"g": {"a": .5, "b": .5}}).fit(X)
    >>> ax = plot_love(bal.balance_report(X))
    >>> [round(float(x), 2) for x in ax.collections[1].get_offsets()[:, 0]]  # before
    [0.5, 0.5]
    """
    covariates = report.index.get_level_values("covariate") != "(overall)"
    summary = report.index.get_level_values("level") == "(all)"
    table = report[covariates & (~summary if levels else summary)]
    labels = [f"{c}: {lv}" if levels else str(c) for c, lv in table.index]
    position = np.arange(len(labels))
    ax = _axes(ax)
    ax.hlines(position, table["asmd_after"], table["asmd_before"], color="lightgray",
              zorder=1)
    ax.scatter(table["asmd_before"], position, facecolors="none", edgecolors="tab:gray",
               label="before (base weights)", zorder=2)
    ax.scatter(table["asmd_after"], position, color="tab:blue", label="after weighting",
               zorder=3)
    if threshold is not None:
        ax.axvline(threshold, color="tab:red", linestyle="--", linewidth=1)
    ax.set_yticks(position)
    ax.set_yticklabels(labels)
    ax.invert_yaxis()
    ax.set_xlabel("absolute standardized mean difference")
    ax.set_title("Covariate balance")
    ax.legend(loc="best")
    return ax


def plot_margins(balancer: Any, ax: Axes | None = None) -> Axes:
    """Share of every level before and after balancing, against its target.

    Numeric targets (:class:`~skbalance.Total`, :class:`~skbalance.Mean`) are
    means, not shares, and are left out (``diagnostics_`` has them).

    Parameters
    ----------
    balancer : MarginalBalancer
        A fitted balancer.
    ax : matplotlib Axes, optional
        Where to draw.

    Returns
    -------
    ax : matplotlib Axes
        The Axes drawn on.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> import skbalance as skb
    >>> from skbalance.plotting import plot_margins
    >>> X = pd.DataFrame({"g": ["a", "b", "b", "b"]})
    >>> bal = skb.MarginalBalancer(targets={"g": {"a": .5, "b": .5}}).fit(X)
    >>> ax = plot_margins(bal)
    >>> [round(float(p.get_width()), 2) for p in ax.containers[1]]
    [0.5, 0.5]
    """
    table = balancer.diagnostics_
    numeric = {str(key) for key, coef in getattr(balancer, "coef_", {}).items()
               if np.ndim(coef) == 0}
    table = table[~table["margin"].isin(numeric)]
    ax = _axes(ax)
    labels = [f"{m}: {lv}" for m, lv in zip(table["margin"], table["level"])]
    position = np.arange(len(labels))
    height = 0.4
    ax.barh(position - height / 2, table["base_share"], height, color="tab:gray",
            label="before (base weights)")
    ax.barh(position + height / 2, table["weighted_share"], height, color="tab:blue",
            label="after balancing")
    ax.scatter(table["target_share"], position, marker="|", s=300, color="tab:red",
               zorder=3, label="target")
    ax.set_yticks(position)
    ax.set_yticklabels(labels)
    ax.invert_yaxis()
    ax.set_xlabel("share of the total weight")
    ax.set_title("Margins before and after balancing")
    # below the axes: inside, it covers bars whatever the shares are
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12 - 0.6 / max(len(labels), 4)),
              ncol=3, frameon=False)
    return ax


def plot_weights(balancer: Any, ax: Axes | None = None, bins: int = 40) -> Axes:
    """Histogram of the weights over the base weights, with the design effect.

    Parameters
    ----------
    balancer : MarginalBalancer
        A fitted balancer.
    ax : matplotlib Axes, optional
        Where to draw.
    bins : int, default=40
        Number of histogram bins.

    Returns
    -------
    ax : matplotlib Axes
        The Axes drawn on.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> import skbalance as skb
    >>> from skbalance.plotting import plot_weights
    >>> bal = skb.MarginalBalancer().fit(np.array([[0], [1], [1], [1]]))
    >>> "design effect" in plot_weights(bal).get_title()
    True
    """
    weights = np.asarray(balancer.weights_)
    ax = _axes(ax)
    ax.hist(weights, bins=bins, color="tab:blue", edgecolor="white")
    ax.axvline(weights.mean(), color="tab:red", linestyle="--", label="mean weight")
    ax.set_xlabel("weight")
    ax.set_ylabel("rows")
    ax.set_title(
        f"Weights: Kish design effect {balancer.design_effect_:.3f}, "
        f"effective n {balancer.effective_sample_size_:.0f}"
    )
    ax.legend()
    return ax
