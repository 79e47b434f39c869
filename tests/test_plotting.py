"""Tests of mlnotes.plotting: the style applies, the helpers draw what they say."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # tests only; notebooks keep their inline backend

import matplotlib.pyplot as plt
import numpy as np
import pytest

from mlnotes.plotting import PALETTE, STYLE, plot_decision_boundary, plot_learning_curves, subplots, use_style


@pytest.fixture(autouse=True)
def _restore_rc():  # type: ignore[no-untyped-def]
    with matplotlib.rc_context():
        yield
    plt.close("all")


def test_use_style_sets_palette_and_fonts() -> None:
    use_style()
    assert matplotlib.rcParams["font.size"] == STYLE["font.size"]
    assert matplotlib.rcParams["axes.prop_cycle"].by_key()["color"] == list(PALETTE)


def test_default_figure_png_is_small() -> None:
    use_style()
    fig, ax = plt.subplots()
    x = np.linspace(0, 1, 200)
    for k in range(3):
        ax.plot(x, np.sin(2 * np.pi * (x + k / 3)), label=f"phase {k}")
    ax.set(xlabel="x", ylabel="y", title="three sines")
    ax.legend()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=fig.dpi)
    assert 5_000 < buffer.tell() < 80_000


def test_subplots_sizes_from_panels() -> None:
    fig, axes = subplots(2, 3, panel_size=(2.0, 1.5))
    assert axes.shape == (2, 3)
    np.testing.assert_allclose(fig.get_size_inches(), [6.0, 3.0])
    with pytest.raises(ValueError, match="ncols"):
        subplots(1, 0)


def test_plot_decision_boundary() -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 2))
    y = (X[:, 0] > 0).astype(int)
    fig, ax = plt.subplots()
    out = plot_decision_boundary(ax, lambda P: (P[:, 0] > 0).astype(int), X, y, resolution=50)
    assert out is ax
    assert len(ax.collections) >= 3  # filled regions + one scatter per class
    lo, hi = ax.get_xlim()
    assert lo < X[:, 0].min() and hi > X[:, 0].max()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"predict_fn": "not callable"}, TypeError, "predict_fn"),
        ({"X": np.zeros((5, 3))}, ValueError, "X must"),
        ({"y": np.zeros(4)}, ValueError, "y must"),
        ({"predict_fn": lambda P: np.zeros((len(P), 2))}, ValueError, "predict_fn must return"),
        ({"resolution": 1}, ValueError, "resolution"),
    ],
)
def test_plot_decision_boundary_bad_input(kwargs: dict, error: type[Exception], match: str) -> None:
    args = {"predict_fn": lambda P: np.zeros(len(P)), "X": np.zeros((5, 2)), "y": np.zeros(5), "resolution": 20} | kwargs
    fig, ax = plt.subplots()
    with pytest.raises(error, match=match):
        plot_decision_boundary(ax, **args)


def test_plot_learning_curves() -> None:
    fig, ax = plt.subplots()
    plot_learning_curves(ax, {"train": [3.0, 2.0, 1.0], "test": [3.5, 2.5, 2.0]}, "epoch", "loss", logy=True)
    assert [line.get_label() for line in ax.get_lines()] == ["train", "test"]
    np.testing.assert_array_equal(ax.get_lines()[0].get_xdata(), [1, 2, 3])
    assert ax.get_xlabel() == "epoch" and ax.get_yscale() == "log"
    plot_learning_curves(ax, {"x given": [1.0, 2.0]}, "trees", "error", x=[10, 20])
    np.testing.assert_array_equal(ax.get_lines()[-1].get_xdata(), [10, 20])
    with pytest.raises(ValueError, match="curves"):
        plot_learning_curves(ax, {}, "x", "y")
    with pytest.raises(ValueError, match=r"curves\['a'\]"):
        plot_learning_curves(ax, {"a": [[1.0]]}, "x", "y")
    with pytest.raises(ValueError, match="x has shape"):
        plot_learning_curves(ax, {"a": [1.0, 2.0]}, "x", "y", x=[1])
