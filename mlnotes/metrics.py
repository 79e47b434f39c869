r"""Distances between two sets of samples, for judging generative models.

Given samples ``x`` from a model and ``y`` from the data (or from a distribution
known in closed form), these numbers say how far apart the two distributions
are, in NumPy, for any dimension:

- :func:`mmd_rbf`: the squared maximum mean discrepancy with a Gaussian kernel
  (Gretton et al., 2012);
- :func:`sliced_wasserstein`: the sliced Wasserstein distance, the average over
  random directions of the 1-D Wasserstein distance between the projections
  (Bonneel et al., 2015).

Both are zero when the two sets are the same and symmetric in their arguments.
Part 6 uses them to compare samplers at equal numbers of steps, each beside its
:func:`noise_floor`: the distance between two independent samples of the true
distribution of the same size, below which no sampler can be told from the truth.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from mlnotes.runtime import as_generator

__all__ = ["NoiseFloor", "mmd_rbf", "noise_floor", "sliced_wasserstein"]


def _check_pair(x: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    arrays = []
    for name, value in (("x", x), ("y", y)):
        array = np.asarray(value, dtype=np.float64)
        if array.ndim == 1:
            array = array[:, None]
        if array.ndim != 2 or array.shape[0] == 0:
            raise ValueError(f"{name} must have shape (n_samples, dim) with n_samples >= 1, got shape {array.shape}")
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{name} must hold finite numbers only")
        arrays.append(array)
    x, y = arrays
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have the same dimension, got {x.shape[1]} and {y.shape[1]}")
    return x, y


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d2 = np.sum(a**2, axis=1)[:, None] + np.sum(b**2, axis=1)[None, :] - 2.0 * a @ b.T
    return np.maximum(d2, 0.0)  # rounding can make tiny distances negative


def mmd_rbf(x: ArrayLike, y: ArrayLike, bandwidth: float | None = None) -> float:
    r"""Squared maximum mean discrepancy between two samples, Gaussian kernel.

    The biased (V-statistic) estimate

    .. math::

        \widehat{\mathrm{MMD}}^2 = \frac{1}{n^2}\sum_{i,j} k(x_i, x_j)
        + \frac{1}{m^2}\sum_{i,j} k(y_i, y_j) - \frac{2}{nm}\sum_{i,j} k(x_i, y_j),
        \qquad k(a, b) = \exp\!\left(-\frac{\lVert a - b\rVert^2}{2h^2}\right),

    the squared distance between the two samples' mean embeddings, hence never
    negative, and zero exactly when the two sets are equal as multisets.

    Parameters
    ----------
    x : array_like
        First sample, shape ``(n, dim)`` (or ``(n,)`` for 1-D data).
    y : array_like
        Second sample, shape ``(m, dim)``.
    bandwidth : float, optional
        Kernel bandwidth ``h > 0``. Default: the median heuristic, the median
        distance between distinct points of the pooled sample.

    Returns
    -------
    float
        The squared MMD, >= 0.

    Raises
    ------
    ValueError
        If the shapes disagree, the samples hold non-finite values, or `bandwidth`
        is not positive.
    """
    x, y = _check_pair(x, y)
    if bandwidth is None:
        pooled = np.concatenate([x, y])
        distances = np.sqrt(_squared_distances(pooled, pooled)[np.triu_indices(len(pooled), k=1)])
        distances = distances[distances > 0]
        bandwidth = float(np.median(distances)) if distances.size else 1.0
    elif not (np.isfinite(bandwidth) and bandwidth > 0):
        raise ValueError(f"bandwidth must be a finite number > 0, got {bandwidth}")
    gamma = 1.0 / (2.0 * bandwidth**2)
    k_xx = np.exp(-gamma * _squared_distances(x, x)).mean()
    k_yy = np.exp(-gamma * _squared_distances(y, y)).mean()
    k_xy = np.exp(-gamma * _squared_distances(x, y)).mean()
    return float(max(k_xx + k_yy - 2.0 * k_xy, 0.0))


def _wasserstein_1d(u: np.ndarray, v: np.ndarray, p: float) -> np.ndarray:
    """``W_p^p`` between the empirical distributions of each column of `u` and `v`.

    Both are sorted along axis 0 (quantile functions, step functions of the level
    ``t`` in ``(0, 1]``); the integral of ``|F_u^{-1}(t) - F_v^{-1}(t)|^p`` is
    summed exactly over the pieces where both are constant.
    """
    n, m = len(u), len(v)
    if n == m:
        return np.mean(np.abs(u - v) ** p, axis=0)
    levels = np.union1d(np.arange(1, n + 1) / n, np.arange(1, m + 1) / m)
    widths = np.diff(levels, prepend=0.0)
    # The piece ending at level t uses sample ceil(t * n) - 1; the small offset guards rounding.
    iu = np.minimum(np.ceil(levels * n - 1e-9).astype(int) - 1, n - 1)
    iv = np.minimum(np.ceil(levels * m - 1e-9).astype(int) - 1, m - 1)
    return widths @ (np.abs(u[iu] - v[iv]) ** p)


def sliced_wasserstein(
    x: ArrayLike,
    y: ArrayLike,
    n_projections: int = 128,
    *,
    rng: np.random.Generator | int,
    p: float = 2.0,
) -> float:
    r"""Sliced Wasserstein-`p` distance between two samples.

    .. math::

        \mathrm{SW}_p(x, y) = \Big(\mathbb{E}_{\theta}\,
        W_p^p\big(\theta^\top x,\ \theta^\top y\big)\Big)^{1/p},

    with :math:`\theta` uniform on the unit sphere, estimated with
    `n_projections` random directions. The 1-D distances are exact (sorted
    samples; unequal sample sizes are handled through the quantile functions).

    Parameters
    ----------
    x : array_like
        First sample, shape ``(n, dim)`` (or ``(n,)`` for 1-D data).
    y : array_like
        Second sample, shape ``(m, dim)``.
    n_projections : int, default 128
        Number of random directions.
    rng : numpy.random.Generator or int
        Draws the directions. With the same seed, ``sliced_wasserstein(x, y)``
        equals ``sliced_wasserstein(y, x)``.
    p : float, default 2.0
        Order of the distance, >= 1.

    Returns
    -------
    float
        The distance, >= 0, in the units of the data.

    Raises
    ------
    ValueError
        If the shapes disagree, the samples hold non-finite values, or
        `n_projections` or `p` is out of range.
    """
    x, y = _check_pair(x, y)
    if isinstance(n_projections, bool) or not isinstance(n_projections, (int, np.integer)) or n_projections < 1:
        raise ValueError(f"n_projections must be a positive int, got {n_projections!r}")
    if not (np.isfinite(p) and p >= 1):
        raise ValueError(f"p must be a finite number >= 1, got {p}")
    rng = as_generator(rng)
    directions = rng.standard_normal((x.shape[1], int(n_projections)))
    directions /= np.linalg.norm(directions, axis=0, keepdims=True)
    u = np.sort(x @ directions, axis=0)
    v = np.sort(y @ directions, axis=0)
    return float(np.mean(_wasserstein_1d(u, v, p)) ** (1.0 / p))


class NoiseFloor(NamedTuple):
    """What :func:`noise_floor` returns: the mean and standard deviation over repeats, and every value."""

    mean: float
    std: float
    values: np.ndarray


def noise_floor(
    metric: Callable[[np.ndarray, np.ndarray], float],
    sampler: Callable[[int, np.random.Generator], ArrayLike],
    n: int,
    *,
    repeats: int = 5,
    rng: np.random.Generator | int,
) -> NoiseFloor:
    """The distance `metric` between two independent samples of size `n` of the true distribution.

    A sample of `n` points from the true distribution is itself at this distance
    from another such sample: a model whose samples are that close to a reference
    sample cannot be told from the truth at this sample size. Report every distance
    beside its floor, computed with the same `metric` and the same `n`.

    Parameters
    ----------
    metric : callable
        ``metric(x, y) -> float``, for example
        ``lambda x, y: sliced_wasserstein(x, y, rng=0)``.
    sampler : callable
        ``sampler(n, rng) -> array of shape (n, dim)``: draws from the true distribution
        (for a :class:`~mlnotes.datasets.GaussianMixture`,
        ``lambda n, rng: mixture.sample(n, rng=rng).X``).
    n : int
        Size of each of the two samples (the size of the samples the floor is for).
    repeats : int, default 5
        Independent pairs of samples.
    rng : numpy.random.Generator or int
        Passed to `sampler`, so that the floor is reproducible.

    Returns
    -------
    NoiseFloor
        ``mean``, ``std`` (``ddof=1``; 0 for one repeat) and ``values``, shape ``(repeats,)``.

    Raises
    ------
    TypeError
        If `metric` or `sampler` is not callable.
    ValueError
        If `n` or `repeats` is not a positive int.
    """
    if not callable(metric) or not callable(sampler):
        raise TypeError("metric and sampler must be callables: metric(x, y) -> float, sampler(n, rng) -> array")
    for name, value in (("n", n), ("repeats", repeats)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    rng = as_generator(rng)
    values = np.array([float(metric(np.asarray(sampler(int(n), rng)), np.asarray(sampler(int(n), rng))))
                       for _ in range(int(repeats))])
    std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return NoiseFloor(float(values.mean()), std, values)
