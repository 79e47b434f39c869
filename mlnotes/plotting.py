"""One figure style for the whole book, and plots that several chapters draw.

Call :func:`use_style` once (each chapter's hidden setup cell does), then draw with
matplotlib as usual or with :func:`subplots`. The palette is Okabe and Ito's
colour-blind-safe set; figures are sized and rendered so that a stored PNG output
stays small (about 20-80 KB).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from cycler import cycler
from numpy.typing import ArrayLike

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "PALETTE",
    "STYLE",
    "plot_decision_boundary",
    "plot_learning_curves",
    "subplots",
    "use_style",
]

#: Okabe-Ito colours, safe for the common forms of colour blindness.
PALETTE: tuple[str, ...] = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#F0E442",  # yellow
    "#000000",  # black
)

#: The rcParams that :func:`use_style` applies.
STYLE: dict[str, Any] = {
    "figure.figsize": (6.0, 3.6),
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "figure.constrained_layout.use": True,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": cycler(color=list(PALETTE)),
    "lines.linewidth": 1.6,
    "lines.markersize": 4,
    "legend.frameon": False,
    "image.cmap": "viridis",
}


def use_style() -> None:
    """Apply the book's figure style to matplotlib's global rcParams.

    Imports ``matplotlib.pyplot`` first, so that a notebook's inline backend is
    set up before the style is applied and cannot overwrite it.
    """
    import matplotlib.pyplot as plt  # activates the backend before the style changes rcParams

    plt.style.use(STYLE)


def subplots(
    nrows: int = 1,
    ncols: int = 1,
    *,
    panel_size: tuple[float, float] = (3.2, 2.8),
    **kwargs: Any,
) -> tuple[Figure, Any]:
    """``matplotlib.pyplot.subplots`` with the figure size set from the panel size.

    Parameters
    ----------
    nrows, ncols : int, default 1
        Grid of panels.
    panel_size : tuple of float, default (3.2, 2.8)
        Width and height of one panel, in inches.
    **kwargs
        Passed on to ``matplotlib.pyplot.subplots`` (``sharex``, ``squeeze``, ...).
        ``figsize`` overrides `panel_size`.

    Returns
    -------
    fig : matplotlib.figure.Figure
    axes : matplotlib.axes.Axes or numpy.ndarray of them
        As ``matplotlib.pyplot.subplots`` returns them.
    """
    import matplotlib.pyplot as plt

    for name, value in (("nrows", nrows), ("ncols", ncols)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    width, height = panel_size
    kwargs.setdefault("figsize", (width * ncols, height * nrows))
    return plt.subplots(nrows, ncols, **kwargs)


def plot_decision_boundary(
    ax: Axes,
    predict_fn: Callable[[np.ndarray], ArrayLike],
    X: ArrayLike,
    y: ArrayLike,
    *,
    resolution: int = 200,
    padding: float = 0.1,
    alpha: float = 0.25,
    show_points: bool = True,
) -> Axes:
    """Shade the regions a 2-D classifier assigns to each class, over the data.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Where to draw.
    predict_fn : callable
        Maps points of shape ``(m, 2)`` to class labels of shape ``(m,)``, e.g. a
        fitted estimator's ``predict``.
    X : array_like
        Data points, shape ``(n, 2)``; they set the plotted range.
    y : array_like
        Their integer class labels, shape ``(n,)``.
    resolution : int, default 200
        Grid points along each axis.
    padding : float, default 0.1
        Margin around the data, as a fraction of its range.
    alpha : float, default 0.25
        Opacity of the shaded regions.
    show_points : bool, default True
        Also scatter the data, coloured by label.

    Returns
    -------
    matplotlib.axes.Axes
        `ax`.
    """
    from matplotlib.colors import ListedColormap

    if not callable(predict_fn):
        raise TypeError(f"predict_fn must be callable, got {type(predict_fn).__name__}")
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"X must have shape (n, 2), got shape {X.shape}")
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must have shape ({X.shape[0]},), got shape {y.shape}")
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)) or resolution < 2:
        raise ValueError(f"resolution must be an int >= 2, got {resolution!r}")
    classes = np.unique(y)
    if len(classes) > len(PALETTE):
        raise ValueError(f"y has {len(classes)} classes; at most {len(PALETTE)} can be told apart by colour")
    low, high = X.min(axis=0), X.max(axis=0)
    margin = padding * np.where(high > low, high - low, 1.0)
    xs = np.linspace(low[0] - margin[0], high[0] + margin[0], resolution)
    ys = np.linspace(low[1] - margin[1], high[1] + margin[1], resolution)
    grid_x, grid_y = np.meshgrid(xs, ys)
    predicted = np.asarray(predict_fn(np.column_stack([grid_x.ravel(), grid_y.ravel()])))
    if predicted.shape != (grid_x.size,):
        raise ValueError(f"predict_fn must return shape ({grid_x.size},) for {grid_x.size} points, got {predicted.shape}")
    # Map labels to 0..k-1 so that colours follow the palette order.
    index = np.searchsorted(classes, predicted).clip(0, len(classes) - 1).reshape(grid_x.shape)
    cmap = ListedColormap(PALETTE[: len(classes)])
    ax.contourf(grid_x, grid_y, index, levels=np.arange(len(classes) + 1) - 0.5, cmap=cmap, alpha=alpha)
    if show_points:
        for i, label in enumerate(classes):
            mask = y == label
            ax.scatter(X[mask, 0], X[mask, 1], s=12, color=PALETTE[i], edgecolors="white", linewidths=0.4, label=str(label))
    ax.set_xlim(xs[0], xs[-1])
    ax.set_ylim(ys[0], ys[-1])
    return ax


def plot_learning_curves(
    ax: Axes,
    curves: Mapping[str, ArrayLike],
    xlabel: str,
    ylabel: str,
    *,
    x: ArrayLike | None = None,
    logy: bool = False,
) -> Axes:
    """Draw named curves against a common x axis, with a legend.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Where to draw.
    curves : mapping of str to array_like
        Label -> 1-D values, e.g. ``{"train": train_loss, "test": test_loss}``.
    xlabel, ylabel : str
        Axis labels.
    x : array_like, optional
        Common x values; default ``1, 2, ..., len(curve)`` for each curve (the
        number of epochs, trees or boosting rounds).
    logy : bool, default False
        Logarithmic y axis.

    Returns
    -------
    matplotlib.axes.Axes
        `ax`.
    """
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError("curves must be a non-empty mapping of label -> 1-D values")
    x_values = None if x is None else np.asarray(x)
    for label, values in curves.items():
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 1:
            raise ValueError(f"curves[{label!r}] must be 1-D, got shape {values.shape}")
        if x_values is None:
            xs = np.arange(1, len(values) + 1)
        elif x_values.shape != values.shape:
            raise ValueError(f"x has shape {x_values.shape} but curves[{label!r}] has shape {values.shape}")
        else:
            xs = x_values
        ax.plot(xs, values, label=str(label))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    ax.legend()
    return ax
