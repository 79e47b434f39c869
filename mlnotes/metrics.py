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

For images of digits, :func:`frechet_distance` (the Fréchet distance between Gaussians
fitted to two feature sets, as in FID; Heusel et al., 2017) is computed in the features of a
small MLP classifier of scikit-learn's 8x8 digits (:func:`fit_digits_classifier`: about a
second on a CPU, deterministic, no files), with the reference split and noise floor of
:func:`digits_split` and :func:`digits_noise_floor`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from mlnotes.runtime import as_generator

if TYPE_CHECKING:
    import torch

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


# --------------------------------------------------------------------------- Fréchet distance and the digits classifier
def _as_features(value: object, name: str) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch.Tensor, on any device, in any floating dtype
        value = value.detach().cpu().double().numpy()  # type: ignore[attr-defined]
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an array of numbers of shape (n_samples, dim), got {type(value).__name__}") from None
    if array.ndim != 2 or array.shape[0] < 2 or array.shape[1] < 1:
        raise ValueError(f"{name} must have shape (n_samples, dim) with n_samples >= 2, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must hold finite numbers only")
    return array


def _symmetric_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix by its eigen-decomposition (negative rounding clipped)."""
    values, vectors = np.linalg.eigh(0.5 * (matrix + matrix.T))
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance_gaussians(mean_a: ArrayLike, cov_a: ArrayLike, mean_b: ArrayLike, cov_b: ArrayLike) -> float:
    r"""Fréchet distance between two Gaussians :math:`\mathcal{N}(\mu_a, \Sigma_a)` and :math:`\mathcal{N}(\mu_b, \Sigma_b)`.

    .. math::

        d^2 = \lVert \mu_a - \mu_b \rVert^2
        + \operatorname{tr}\!\Big(\Sigma_a + \Sigma_b - 2\big(\Sigma_a^{1/2}\Sigma_b\Sigma_a^{1/2}\big)^{1/2}\Big),

    the squared 2-Wasserstein distance between the two Gaussians (Dowson & Landau,
    1982), the quantity that FID reports (Heusel et al., 2017). The trace of
    :math:`(\Sigma_a\Sigma_b)^{1/2}` is computed as that of the symmetric
    :math:`(\Sigma_a^{1/2}\Sigma_b\Sigma_a^{1/2})^{1/2}` (the two matrices are similar),
    whose eigenvalues are real and non-negative, so no complex square root is needed.

    Parameters
    ----------
    mean_a, mean_b : array_like, shape (dim,)
    cov_a, cov_b : array_like, shape (dim, dim)
        Symmetric positive semi-definite covariance matrices.

    Returns
    -------
    float
        ``d^2 >= 0`` (rounding below zero is clipped).

    Raises
    ------
    ValueError
        If the shapes disagree or the values are not finite.
    """
    arrays = []
    for name, value, ndim in (("mean_a", mean_a, 1), ("cov_a", cov_a, 2), ("mean_b", mean_b, 1), ("cov_b", cov_b, 2)):
        array = np.asarray(value, dtype=np.float64)
        if array.ndim != ndim or not np.all(np.isfinite(array)):
            raise ValueError(f"{name} must be a finite {ndim}-D array, got shape {array.shape}")
        arrays.append(array)
    mu_a, sigma_a, mu_b, sigma_b = arrays
    dim = mu_a.shape[0]
    if mu_b.shape != (dim,) or sigma_a.shape != (dim, dim) or sigma_b.shape != (dim, dim):
        raise ValueError(
            f"means must have shape (dim,) and covariances (dim, dim) with one dim, got {mu_a.shape}, "
            f"{sigma_a.shape}, {mu_b.shape}, {sigma_b.shape}"
        )
    root_a = _symmetric_sqrt(sigma_a)
    cross = root_a @ sigma_b @ root_a
    trace_cross = float(np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(0.5 * (cross + cross.T)), 0.0, None))))
    value = float(np.sum((mu_a - mu_b) ** 2) + np.trace(sigma_a) + np.trace(sigma_b) - 2.0 * trace_cross)
    return max(value, 0.0)


def frechet_distance(feats_a: ArrayLike, feats_b: ArrayLike) -> float:
    r"""Fréchet distance between Gaussians fitted to two sets of feature vectors (as in FID).

    Fits the mean and the covariance (``ddof=1``) of each set and returns
    :func:`frechet_distance_gaussians` of the two fits,
    :math:`\lVert\mu_a-\mu_b\rVert^2 + \operatorname{tr}(\Sigma_a + \Sigma_b - 2(\Sigma_a\Sigma_b)^{1/2})`.
    Zero for identical sets, symmetric, and ``||c||^2`` when one set is the other shifted
    by ``c``. Like every distance between samples it is biased upwards at finite sample
    sizes: compare it with the distance between two real samples of the same sizes
    (:func:`digits_noise_floor` for the digits).

    Parameters
    ----------
    feats_a : array_like or torch.Tensor, shape (n_a, dim)
    feats_b : array_like or torch.Tensor, shape (n_b, dim)
        Features (any float dtype; computed in float64), ``n_a, n_b >= 2``.

    Returns
    -------
    float
        The distance, >= 0, in squared units of the features.

    Raises
    ------
    TypeError
        If an argument is not an array of numbers.
    ValueError
        If a set has fewer than two rows, the dimensions differ, or values are not finite.
    """
    a, b = _as_features(feats_a, "feats_a"), _as_features(feats_b, "feats_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feats_a and feats_b must have the same dim, got {a.shape[1]} and {b.shape[1]}")
    return frechet_distance_gaussians(
        a.mean(axis=0), np.atleast_2d(np.cov(a, rowvar=False)), b.mean(axis=0), np.atleast_2d(np.cov(b, rowvar=False))
    )


#: Number of images in scikit-learn's digits data set.
N_DIGITS = 1797


def _digit_images_8x8() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 digits as float32 images ``(n, 1, 8, 8)`` in ``[-1, 1]`` and their int64 labels."""
    from mlnotes.datasets import load_digits

    data = load_digits()
    return (data.X.reshape(-1, 1, 8, 8) * 2.0 - 1.0).astype(np.float32), data.y


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Run the classifier on one thread: fastest for a network this small, and the same numbers on every machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class DigitsClassifier:
    r"""A small MLP classifier of the 8x8 digits whose hidden features define a Fréchet distance for digit images.

    Built by :func:`fit_digits_classifier`. Every method accepts images in ``[-1, 1]``
    (the digits' pixels scaled as ``2 x / 16 - 1``) as a NumPy array or a torch tensor
    on any device, of shape ``(n, 64)``, ``(n, H, W)`` or ``(n, 1, H, W)`` with ``H = W``
    a multiple of 8: larger images (the 32x32 upsampled digits) are averaged over
    ``H/8 x H/8`` blocks back to 8x8 first, so one classifier serves both sizes. The
    network runs on the CPU in float32; results are NumPy arrays.

    Attributes
    ----------
    network : torch.nn.Sequential
        ``64 -> hidden -> feature_dim -> 10``, ReLU; the features are the output of the
        second ReLU.
    test_accuracy_ : float
        Accuracy on the held-out digits.
    train_index_, test_index_ : numpy.ndarray of int
        Which of the 1,797 digits were used for training and for the held-out test.
    """

    def __init__(self, network: torch.nn.Sequential, test_accuracy: float, train_index: np.ndarray, test_index: np.ndarray) -> None:
        self.network = network
        self.test_accuracy_ = float(test_accuracy)
        self.train_index_ = train_index
        self.test_index_ = test_index

    @property
    def feature_dim(self) -> int:
        """Dimension of :meth:`features`."""
        return int(self.network[-1].in_features)

    def _inputs(self, x: object) -> torch.Tensor:
        import torch
        import torch.nn.functional as F

        if isinstance(x, torch.Tensor):
            x = x.detach().to("cpu", torch.float32)
        else:
            try:
                x = torch.as_tensor(np.asarray(x, dtype=np.float32))
            except (TypeError, ValueError):
                raise TypeError(f"x must be images as an array or tensor, got {type(x).__name__}") from None
        if x.ndim == 2 and x.shape[1] == 64:
            x = x.reshape(-1, 1, 8, 8)
        elif x.ndim == 3:
            x = x[:, None]
        if x.ndim != 4 or x.shape[1] != 1 or x.shape[2] != x.shape[3] or x.shape[2] % 8 or x.shape[0] < 1:
            raise ValueError(f"x must be (n, 64), (n, H, W) or (n, 1, H, W) images with H = W a multiple of 8, got {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise ValueError("x must hold finite numbers only")
        if x.shape[2] != 8:
            x = F.avg_pool2d(x, x.shape[2] // 8)
        return x.reshape(x.shape[0], 64)

    def _forward(self, x: object, features: bool) -> np.ndarray:
        import torch

        flat = self._inputs(x)
        layers = self.network[:-1] if features else self.network
        with torch.no_grad(), _one_torch_thread():
            out = torch.cat([layers(chunk) for chunk in flat.split(4096)])
            if not features:
                out = torch.softmax(out, dim=1)
        return out.double().numpy()

    def features(self, x: object) -> np.ndarray:
        """Penultimate-layer features, shape ``(n, feature_dim)``, float64."""
        return self._forward(x, features=True)

    def predict_proba(self, x: object) -> np.ndarray:
        """Class probabilities, shape ``(n, 10)``, float64; rows sum to 1."""
        return self._forward(x, features=False)

    def predict(self, x: object) -> np.ndarray:
        """Predicted digits, shape ``(n,)``, int64."""
        return self.predict_proba(x).argmax(axis=1)

    def __repr__(self) -> str:
        return f"DigitsClassifier(feature_dim={self.feature_dim}, test_accuracy_={self.test_accuracy_:.4f})"


def fit_digits_classifier(
    *,
    seed: int = 0,
    hidden: int = 256,
    feature_dim: int = 64,
    epochs: int = 30,
    batch_size: int = 64,
    lr: float = 3e-3,
    input_noise: float = 0.1,
    test_fraction: float = 0.25,
) -> DigitsClassifier:
    r"""Train the digits classifier behind :func:`digits_frechet_distance`: seconds on a CPU, no files.

    A random ``test_fraction`` of the 1,797 digits is held out; an MLP
    ``64 -> hidden -> feature_dim -> 10`` with ReLU is trained on the rest by Adam on
    the cross-entropy, in mini-batches, with Gaussian noise of standard deviation
    `input_noise` added to the inputs (so that the features are not thrown by the
    slight noise of generated images). Every random draw (split, initial weights,
    batches, input noise) comes from generators seeded with `seed`, and the training
    runs on the CPU in float32: the same seed gives the same weights.

    Parameters
    ----------
    seed : int, default 0
    hidden : int, default 256
    feature_dim : int, default 64
        Width of the penultimate layer, the features of :meth:`DigitsClassifier.features`.
    epochs : int, default 30
    batch_size : int, default 64
    lr : float, default 3e-3
    input_noise : float, default 0.1
        On the ``[-1, 1]`` pixel scale; 0 turns it off.
    test_fraction : float, default 0.25
        In ``(0, 1)``.

    Returns
    -------
    DigitsClassifier
        In evaluation mode, with its held-out ``test_accuracy_`` (about 0.97).

    Raises
    ------
    ValueError
        If a size is not a positive int or a rate is out of range.
    """
    import torch
    from torch import nn

    for name, value in (("seed", seed), ("hidden", hidden), ("feature_dim", feature_dim), ("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < (0 if name == "seed" else 1):
            raise ValueError(f"{name} must be a {'non-negative' if name == 'seed' else 'positive'} int, got {value!r}")
    if not (isinstance(lr, (int, float)) and np.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
    if not (isinstance(input_noise, (int, float)) and np.isfinite(input_noise) and input_noise >= 0):
        raise ValueError(f"input_noise must be a finite number >= 0, got {input_noise!r}")
    if not (isinstance(test_fraction, (int, float)) and 0 < test_fraction < 1):
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    images, labels = _digit_images_8x8()
    order = np.random.default_rng(seed).permutation(N_DIGITS)
    n_test = int(round(test_fraction * N_DIGITS))
    test_index, train_index = np.sort(order[:n_test]), np.sort(order[n_test:])
    x = torch.from_numpy(images.reshape(N_DIGITS, 64))
    y = torch.from_numpy(labels)
    generator = torch.Generator().manual_seed(int(seed))
    network = nn.Sequential(
        nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, feature_dim), nn.ReLU(), nn.Linear(feature_dim, 10)
    )
    with torch.no_grad():  # PyTorch's default initialisation, drawn from our generator
        for layer in network:
            if isinstance(layer, nn.Linear):
                bound = 1.0 / np.sqrt(layer.in_features)
                for p in (layer.weight, layer.bias):
                    p.copy_(torch.rand(p.shape, generator=generator) * 2 * bound - bound)
    with _one_torch_thread():
        accuracy = _train_classifier(network, x, y, train_index, test_index, generator, epochs, batch_size, lr, input_noise)
    return DigitsClassifier(network, accuracy, train_index, test_index)


def _train_classifier(
    network: torch.nn.Sequential, x: torch.Tensor, y: torch.Tensor, train_index: np.ndarray, test_index: np.ndarray,
    generator: torch.Generator, epochs: int, batch_size: int, lr: float, input_noise: float,
) -> float:
    """Adam on the cross-entropy with noisy inputs; returns the held-out accuracy."""
    import torch
    from torch import nn

    optimizer = torch.optim.Adam(network.parameters(), lr=lr)
    x_train, y_train = x[train_index], y[train_index]
    n_train = len(train_index)
    n_batches = -(-n_train // batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * n_batches)
    network.train()
    for _ in range(epochs):
        permutation = torch.randperm(n_train, generator=generator)
        for batch in permutation.split(batch_size):
            inputs = x_train[batch]
            if input_noise > 0:
                inputs = inputs + input_noise * torch.randn(inputs.shape, generator=generator)
            loss = nn.functional.cross_entropy(network(inputs), y_train[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    network.eval()
    with torch.no_grad():
        return float((network(x[test_index]).argmax(dim=1) == y[test_index]).double().mean())


def digits_frechet_distance(samples: object, reference: object, classifier: DigitsClassifier) -> float:
    """Fréchet distance between two sets of digit images in the features of `classifier`.

    Parameters
    ----------
    samples, reference : array_like or torch.Tensor
        Images in ``[-1, 1]`` of any shape :class:`DigitsClassifier` accepts (8x8 or
        larger multiples of 8), at least two of each.
    classifier : DigitsClassifier

    Returns
    -------
    float
        :func:`frechet_distance` of ``classifier.features(samples)`` and ``classifier.features(reference)``.
    """
    if not isinstance(classifier, DigitsClassifier):
        raise TypeError(f"classifier must be a DigitsClassifier, got {type(classifier).__name__}")
    return frechet_distance(classifier.features(samples), classifier.features(reference))


#: Size of the reference half of the digits in :func:`digits_split` (the other 898 are the training half).
DIGITS_REFERENCE_SIZE = N_DIGITS - N_DIGITS // 2


def digits_split() -> tuple[np.ndarray, np.ndarray]:
    """A fixed random split of the 1,797 digits (seed 0) into a reference half (899) and a training half (898).

    A generator is trained on the training half and its samples are compared with the
    reference half; the training digits themselves, compared with the same reference,
    give the noise floor (:func:`digits_noise_floor`). The floor is then both what fresh
    real digits reach and what a generator that merely reproduces its training images
    reaches: copying cannot beat it.

    Returns
    -------
    reference_index, train_index : numpy.ndarray of int, shapes (899,) and (898,)
    """
    order = np.random.default_rng(0).permutation(N_DIGITS)
    return order[:DIGITS_REFERENCE_SIZE], order[DIGITS_REFERENCE_SIZE:]


def digits_noise_floor(
    classifier: DigitsClassifier,
    n: int,
    *,
    images: object = None,
    repeats: int = 5,
    rng: np.random.Generator | int,
) -> NoiseFloor:
    """The Fréchet distance that real digits reach: `n` training-half digits against the reference half.

    The digits' counterpart of :func:`noise_floor`: with :func:`digits_split`, each repeat
    draws `n` of the 898 digits of the training half (without replacement) and computes
    their :func:`digits_frechet_distance` to the 899 reference digits. A generator whose
    `n` samples are that close to the reference half cannot be told from real digits by
    this metric at this sample size. Score samples against the same reference half.

    Parameters
    ----------
    classifier : DigitsClassifier
    n : int
        Size of each real set, ``2 <= n <= 898`` (the size of the sample sets it is for).
    images : array_like or torch.Tensor, optional
        All 1,797 digits as the samples come (for example upsampled to 32x32), in
        scikit-learn's order; default: the 8x8 digits.
    repeats : int, default 5
        Random subsets (one when ``n = 898``: the whole half).
    rng : numpy.random.Generator or int
        Draws the subsets.

    Returns
    -------
    NoiseFloor
    """
    if not isinstance(classifier, DigitsClassifier):
        raise TypeError(f"classifier must be a DigitsClassifier, got {type(classifier).__name__}")
    reference_index, train_index = digits_split()
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 2 <= n <= len(train_index):
        raise ValueError(f"n must be an int in [2, {len(train_index)}], got {n!r}")
    if isinstance(repeats, bool) or not isinstance(repeats, (int, np.integer)) or repeats < 1:
        raise ValueError(f"repeats must be a positive int, got {repeats!r}")
    if images is None:
        images = _digit_images_8x8()[0]
    if len(images) != N_DIGITS:  # type: ignore[arg-type]
        raise ValueError(f"images must hold all {N_DIGITS} digits, got {len(images)}")  # type: ignore[arg-type]
    rng = as_generator(rng)
    reference = classifier.features(images[reference_index])  # type: ignore[index]
    train = classifier.features(images[train_index])  # type: ignore[index]
    repeats = 1 if n == len(train_index) else int(repeats)
    values = np.array([frechet_distance(train[rng.choice(len(train), int(n), replace=False)], reference)
                       for _ in range(repeats)])
    std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return NoiseFloor(float(values.mean()), std, values)


__all__ += [
    "DIGITS_REFERENCE_SIZE",
    "DigitsClassifier",
    "N_DIGITS",
    "digits_frechet_distance",
    "digits_noise_floor",
    "digits_split",
    "fit_digits_classifier",
    "frechet_distance",
    "frechet_distance_gaussians",
]
