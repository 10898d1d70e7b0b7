"""Plots draw the numbers they are given; examples run and save their figure."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

import skbalance as skb  # noqa: E402
from skbalance import plotting  # noqa: E402

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("plot_*.py"))


def test_spectrum_and_curve_plots_show_the_analyzer(survey):
    sga = skb.SpectralGapAnalyzer(columns=("age", "region"), max_k=6)
    sga.fit(survey, survey["y"])
    ax = plotting.plot_spectrum(sga)
    np.testing.assert_allclose([p.get_height() for p in ax.patches], sga.singular_values_)
    ax = plotting.plot_variance_curve(sga, n=len(survey))
    np.testing.assert_allclose(ax.lines[0].get_ydata(), sga.variance_curve_ / len(survey))
    np.testing.assert_allclose(ax.lines[1].get_ydata()[0], sga.variance_limit_ / len(survey))
    np.testing.assert_allclose(ax.lines[2].get_ydata()[0], sga.ipwi_variance_ / len(survey))


def test_love_plot_shows_the_report(survey, survey_targets):
    bal = skb.MarginalBalancer(targets={"age": survey_targets["age"]}).fit(survey)
    report = bal.balance_report(survey, survey[["age", "sex", "region"]].iloc[::3])
    ax = plotting.plot_love(report)
    terms = report.drop(index="(overall)", level="covariate")
    terms = terms[terms.index.get_level_values("level") != "(all)"]
    np.testing.assert_allclose(ax.collections[1].get_offsets()[:, 0], terms["asmd_before"])
    np.testing.assert_allclose(ax.collections[2].get_offsets()[:, 0], terms["asmd_after"])
    ax = plotting.plot_love(report, levels=False)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["age", "sex", "region"]


def test_margin_and_weight_plots_show_the_balancer(survey, survey_targets):
    bal = skb.MarginalBalancer(targets=survey_targets).fit(survey)
    ax = plotting.plot_margins(bal)
    before, after = ax.containers[0], ax.containers[1]
    np.testing.assert_allclose([p.get_width() for p in before], bal.diagnostics_["base_share"])
    np.testing.assert_allclose([p.get_width() for p in after],
                               bal.diagnostics_["weighted_share"])
    ax = plotting.plot_weights(bal)
    assert sum(p.get_height() for p in ax.patches) == len(survey)
    assert f"{bal.design_effect_:.3f}" in ax.get_title()


def test_margin_plot_leaves_numeric_targets_out():
    X = pd.DataFrame({"g": ["a", "a", "b", "b"], "x": [1.0, 2.0, 4.0, 3.0]})
    bal = skb.MarginalBalancer(targets={"g": {"a": 60, "b": 40}, "x": skb.Total(250)}).fit(X)
    ax = plotting.plot_margins(bal)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["g: a", "g: b"]
    np.testing.assert_allclose([p.get_width() for p in ax.containers[1]], [0.6, 0.4])


@pytest.mark.slow
@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs_and_saves_its_figure(script, tmp_path):
    env = dict(os.environ, SKBALANCE_FIGURE_DIR=str(tmp_path), MPLBACKEND="Agg")
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    figure = tmp_path / (script.stem + ".png")
    assert figure.exists() and figure.stat().st_size > 10_000


def test_margin_legend_stays_clear_of_the_bars(survey, survey_targets):
    # the legend sits below the axes, so it can cover no bar whatever the shares
    import matplotlib.pyplot as plt

    bal = skb.MarginalBalancer(targets=survey_targets).fit(survey)
    ax = plotting.plot_margins(bal)
    figure = ax.figure
    figure.canvas.draw()
    legend = ax.get_legend().get_window_extent()
    axes = ax.get_window_extent()
    assert legend.y1 <= axes.y0  # entirely below the plotting area
    bars = [patch.get_window_extent() for container in ax.containers for patch in container]
    assert not any(legend.overlaps(bar) for bar in bars)
    plt.close(figure)
