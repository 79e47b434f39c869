"""Offline data sets and toy distributions shared by the chapters.

Nothing here downloads: data comes from scikit-learn's bundled data sets or is
generated from an explicit random generator.

**One convention.** Every loader and generator returns a :class:`Dataset`: a frozen
record of the inputs ``X`` (shape ``(n_samples, n_features)``), the targets ``y``
(shape ``(n_samples,)``), a short ``name`` and a one-line ``description``. It
unpacks like a pair, so both styles work::

    X, y = load_digits()
    data = moons(200, rng=0); data.X, data.y, data.description

Generators take the random generator as the keyword-only argument ``rng``: a
``numpy.random.Generator`` (the book's convention; draws continue its stream) or
an ``int`` seed. It has no default: randomness in this book is always explicit.

:func:`gaussian_mixture` also returns the :class:`GaussianMixture` it sampled
from, which knows its exact log-density and score (gradient of the log-density),
also after Gaussian noise is added: the diffusion chapters (Part 6) measure
learned scores and samplers against it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from mlnotes.runtime import as_generator

__all__ = [
    "Dataset",
    "GaussianMixture",
    "PlantedCorpus",
    "adding_problem",
    "checkerboard",
    "gaussian_mixture",
    "load_digits",
    "load_news_corpus",
    "make_classification",
    "make_regression",
    "moons",
    "noisy_sine",
    "planted_corpus",
    "sine_target",
    "swiss_roll",
]


@dataclass(frozen=True, repr=False)
class Dataset:
    """A data set: inputs, targets, and what they are.

    Unpacks as ``X, y = dataset``.

    Attributes
    ----------
    X : numpy.ndarray
        Inputs, shape ``(n_samples, n_features)``; sequence data sets have
        ``(n_samples, seq_len, n_features)``.
    y : numpy.ndarray
        Targets, shape ``(n_samples,)``: class labels (integers) or real values,
        as the generator's docstring says.
    name : str
        Short name, such as ``"digits"``.
    description : str
        One line: where the data comes from and what ``y`` is.
    """

    X: np.ndarray
    y: np.ndarray
    name: str
    description: str

    def __post_init__(self) -> None:
        if not isinstance(self.X, np.ndarray) or self.X.ndim < 2:
            raise ValueError(f"X must be a numpy array of at least 2 dimensions (n_samples, ...), got {_describe(self.X)}")
        if not isinstance(self.y, np.ndarray) or self.y.shape != (self.X.shape[0],):
            raise ValueError(f"y must be a 1-D numpy array of length {self.X.shape[0]}, got {_describe(self.y)}")

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter((self.X, self.y))

    def __len__(self) -> int:
        return self.X.shape[0]

    def __repr__(self) -> str:
        return f"Dataset(name={self.name!r}, X: {self.X.shape} {self.X.dtype}, y: {self.y.shape} {self.y.dtype})"


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    return type(value).__name__


def _check_count(value: object, name: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _check_nonnegative(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return float(value)


def _seed_for_sklearn(rng: np.random.Generator) -> int:
    """A ``random_state`` for scikit-learn drawn from `rng`, so one stream drives both."""
    return int(rng.integers(2**31 - 1))


# --------------------------------------------------------------------------- real data


def load_digits(*, scale: bool = True, binarize: bool = False, threshold: float = 0.5) -> Dataset:
    """The 8x8 handwritten digits bundled with scikit-learn (1,797 images, 10 classes).

    Parameters
    ----------
    scale : bool, default True
        Divide the pixel intensities (integers 0 to 16) by 16, into ``[0, 1]``.
    binarize : bool, default False
        Return pixels as 0.0/1.0: ``1.0`` where the intensity, on the ``[0, 1]``
        scale, exceeds `threshold` (for the binary generative models of Part 5).
    threshold : float, default 0.5
        Binarisation threshold in ``[0, 1)``; used only when `binarize` is true.

    Returns
    -------
    Dataset
        ``X`` float64 of shape ``(1797, 64)`` (``X.reshape(-1, 8, 8)`` gives the
        images), ``y`` int64 labels 0-9.

    Raises
    ------
    ValueError
        If `threshold` is outside ``[0, 1)``.
    """
    from sklearn.datasets import load_digits as _sklearn_digits

    if not 0 <= threshold < 1:
        raise ValueError(f"threshold must be in [0, 1), got {threshold}")
    bunch = _sklearn_digits()
    X = bunch.data.astype(np.float64)
    if binarize:
        X = (X / 16.0 > threshold).astype(np.float64)
        what = f"binarised at {threshold}"
    elif scale:
        X = X / 16.0
        what = "scaled to [0, 1]"
    else:
        what = "intensities 0-16"
    return Dataset(
        X=X,
        y=bunch.target.astype(np.int64),
        name="digits",
        description=f"scikit-learn's 8x8 handwritten digits, {what}; y is the digit 0-9",
    )


# --------------------------------------------------------------------------- 2-D toys


def moons(n: int = 500, *, noise: float = 0.1, rng: np.random.Generator | int) -> Dataset:
    """Two interleaving half circles in 2-D (scikit-learn's ``make_moons``), shuffled.

    Parameters
    ----------
    n : int, default 500
        Number of points, split as evenly as possible between the two moons.
    noise : float, default 0.1
        Standard deviation of Gaussian noise added to every coordinate.
    rng : numpy.random.Generator or int
        Random generator or seed.

    Returns
    -------
    Dataset
        ``X`` of shape ``(n, 2)``; ``y`` the moon (0 or 1).
    """
    from sklearn.datasets import make_moons

    n = _check_count(n, "n", minimum=2)
    noise = _check_nonnegative(noise, "noise")
    rng = as_generator(rng)
    X, y = make_moons(n_samples=n, noise=noise, shuffle=True, random_state=_seed_for_sklearn(rng))
    return Dataset(X=X, y=y.astype(np.int64), name="moons", description=f"two moons, noise {noise}; y is the moon")


def swiss_roll(n: int = 1000, *, noise: float = 0.05, rng: np.random.Generator | int) -> Dataset:
    """A 2-D Swiss roll: a spiral ``t (cos t, sin t)``, scaled to about ``[-1, 1]^2``.

    The angle ``t`` is uniform on ``[1.5 pi, 4.5 pi]`` (one and a half turns).

    Parameters
    ----------
    n : int, default 1000
        Number of points.
    noise : float, default 0.05
        Standard deviation of Gaussian noise added after scaling.
    rng : numpy.random.Generator or int
        Random generator or seed.

    Returns
    -------
    Dataset
        ``X`` of shape ``(n, 2)``; ``y`` the angle ``t`` (position along the roll).
    """
    n = _check_count(n, "n")
    noise = _check_nonnegative(noise, "noise")
    rng = as_generator(rng)
    t = 1.5 * np.pi * (1.0 + 2.0 * rng.random(n))
    X = np.column_stack([t * np.cos(t), t * np.sin(t)]) / (4.5 * np.pi)
    X = X + noise * rng.standard_normal(X.shape)
    return Dataset(X=X, y=t, name="swiss_roll", description=f"2-D Swiss roll, noise {noise}; y is the angle along the roll")


def checkerboard(n: int = 1000, *, squares: int = 4, rng: np.random.Generator | int) -> Dataset:
    """Points uniform on the dark squares of a ``squares x squares`` board on ``[-2, 2]^2``.

    A density with sharp edges and holes, hard for a generative model to fit.

    Parameters
    ----------
    n : int, default 1000
        Number of points.
    squares : int, default 4
        Squares along each side (at least 2).
    rng : numpy.random.Generator or int
        Random generator or seed.

    Returns
    -------
    Dataset
        ``X`` of shape ``(n, 2)``; ``y`` the index of the dark square, ``0`` to
        ``squares**2 // 2 - 1`` (row by row).
    """
    n = _check_count(n, "n")
    squares = _check_count(squares, "squares", minimum=2)
    rng = as_generator(rng)
    rows, cols = np.divmod(np.arange(squares * squares), squares)
    dark = np.flatnonzero((rows + cols) % 2 == 0)
    cell = rng.integers(len(dark), size=n)
    row, col = rows[dark[cell]], cols[dark[cell]]
    side = 4.0 / squares
    X = np.column_stack([col, row]) * side - 2.0 + side * rng.random((n, 2))
    return Dataset(X=X, y=cell.astype(np.int64), name="checkerboard", description=f"{squares}x{squares} checkerboard on [-2, 2]^2; y is the square")


# --------------------------------------------------------------------------- Gaussian mixtures


class GaussianMixture:
    r"""A Gaussian mixture with exact log-density and score, in any dimension.

    .. math::

        p(x) = \sum_k w_k\, \mathcal{N}(x;\, \mu_k, \Sigma_k), \qquad
        \nabla_x \log p(x) = \sum_k r_k(x)\, \Sigma_k^{-1} (\mu_k - x),

    where :math:`r_k(x) = w_k \mathcal{N}(x; \mu_k, \Sigma_k) / p(x)` is the
    responsibility of component :math:`k`.

    Parameters
    ----------
    means : array_like
        Component means, shape ``(n_components, dim)``.
    covariances : array_like
        Component covariances: shape ``(n_components, dim, dim)`` (symmetric
        positive definite), or ``(n_components,)`` for isotropic components
        ``s_k^2 I`` given by their standard deviations ``s_k``.
    weights : array_like, optional
        Mixture weights, shape ``(n_components,)``, non-negative; normalised to
        sum to one. Default: equal weights.

    Attributes
    ----------
    means : numpy.ndarray
        Shape ``(n_components, dim)``.
    covariances : numpy.ndarray
        Shape ``(n_components, dim, dim)``.
    weights : numpy.ndarray
        Shape ``(n_components,)``, summing to one.
    """

    def __init__(self, means: ArrayLike, covariances: ArrayLike, weights: ArrayLike | None = None) -> None:
        means = np.asarray(means, dtype=np.float64)
        if means.ndim != 2 or means.shape[0] == 0:
            raise ValueError(f"means must have shape (n_components, dim), got shape {means.shape}")
        k, d = means.shape
        covariances = np.asarray(covariances, dtype=np.float64)
        if covariances.shape == (k,):
            if np.any(covariances <= 0):
                raise ValueError("covariances given as standard deviations must all be > 0")
            covariances = covariances[:, None, None] ** 2 * np.eye(d)
        if covariances.shape != (k, d, d):
            raise ValueError(f"covariances must have shape ({k}, {d}, {d}) or ({k},), got {covariances.shape}")
        if not np.allclose(covariances, covariances.transpose(0, 2, 1)):
            raise ValueError("covariances must be symmetric")
        try:
            cholesky = np.linalg.cholesky(covariances)
        except np.linalg.LinAlgError:
            raise ValueError("covariances must be positive definite") from None
        if weights is None:
            weights = np.full(k, 1.0 / k)
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != (k,) or np.any(weights < 0) or not weights.sum() > 0:
            raise ValueError(f"weights must be {k} non-negative numbers, not all zero, got {weights!r}")
        self.means = means
        self.covariances = covariances
        self.weights = weights / weights.sum()
        self._cholesky = cholesky

    @classmethod
    def ring(cls, n_components: int = 8, *, radius: float = 2.0, std: float = 0.2) -> GaussianMixture:
        """Equal-weight isotropic 2-D components evenly spaced on a circle.

        Parameters
        ----------
        n_components : int, default 8
            Number of components.
        radius : float, default 2.0
            Radius of the circle of means.
        std : float, default 0.2
            Standard deviation of every component.

        Returns
        -------
        GaussianMixture
        """
        n_components = _check_count(n_components, "n_components")
        angle = 2 * np.pi * np.arange(n_components) / n_components
        means = radius * np.column_stack([np.cos(angle), np.sin(angle)])
        return cls(means, np.full(n_components, _check_positive(std, "std")))

    @property
    def n_components(self) -> int:
        """Number of components."""
        return self.means.shape[0]

    @property
    def dim(self) -> int:
        """Dimension of the space."""
        return self.means.shape[1]

    def __repr__(self) -> str:
        return f"GaussianMixture(n_components={self.n_components}, dim={self.dim})"

    def _check_points(self, x: ArrayLike) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (n, {self.dim}), got shape {x.shape}")
        return x

    def _component_terms(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Log of ``w_k N(x; mu_k, Sigma_k)``, shape ``(n, k)``, and ``Sigma_k^{-1}(x - mu_k)``, shape ``(n, k, d)``."""
        diff = x[:, None, :] - self.means[None, :, :]
        # Solve L z = diff per component: z^T z is the Mahalanobis distance.
        z = np.linalg.solve(self._cholesky[None], diff[..., None])[..., 0]
        precision_diff = np.linalg.solve(self._cholesky.transpose(0, 2, 1)[None], z[..., None])[..., 0]
        log_det = 2 * np.log(np.diagonal(self._cholesky, axis1=1, axis2=2)).sum(axis=1)
        log_norm = -0.5 * (self.dim * np.log(2 * np.pi) + log_det)
        log_terms = np.log(self.weights) + log_norm - 0.5 * np.sum(z**2, axis=2)
        return log_terms, precision_diff

    def log_prob(self, x: ArrayLike) -> np.ndarray:
        """Exact log-density ``log p(x)``.

        Parameters
        ----------
        x : array_like
            Points, shape ``(n, dim)``.

        Returns
        -------
        numpy.ndarray
            Shape ``(n,)``.
        """
        from scipy.special import logsumexp

        log_terms, _ = self._component_terms(self._check_points(x))
        return logsumexp(log_terms, axis=1)

    def score(self, x: ArrayLike) -> np.ndarray:
        """Exact score ``grad_x log p(x)``.

        Parameters
        ----------
        x : array_like
            Points, shape ``(n, dim)``.

        Returns
        -------
        numpy.ndarray
            Shape ``(n, dim)``.
        """
        from scipy.special import softmax

        log_terms, precision_diff = self._component_terms(self._check_points(x))
        responsibilities = softmax(log_terms, axis=1)
        return -np.einsum("nk,nkd->nd", responsibilities, precision_diff)

    def sample(self, n: int, *, rng: np.random.Generator | int) -> Dataset:
        """Draw `n` points.

        Parameters
        ----------
        n : int
            Number of points.
        rng : numpy.random.Generator or int
            Random generator or seed.

        Returns
        -------
        Dataset
            ``X`` of shape ``(n, dim)``; ``y`` the component each point came from.
        """
        n = _check_count(n, "n")
        rng = as_generator(rng)
        component = rng.choice(self.n_components, size=n, p=self.weights)
        eps = rng.standard_normal((n, self.dim))
        X = self.means[component] + np.einsum("nij,nj->ni", self._cholesky[component], eps)
        return Dataset(
            X=X,
            y=component.astype(np.int64),
            name="gaussian_mixture",
            description=f"{self.n_components}-component Gaussian mixture in {self.dim}-D; y is the component",
        )

    def noised(self, sigma: float, *, scale: float = 1.0) -> GaussianMixture:
        """The distribution of ``scale * (x + sigma * eps)``, ``x ~ self``, ``eps ~ N(0, I)``.

        Still a Gaussian mixture, with means ``scale * mu_k`` and covariances
        ``scale**2 (Sigma_k + sigma**2 I)``: the exact noisy marginals that diffusion
        models learn (``scale = 1`` for variance-exploding noise; the EDM form
        ``x_t = s(t) (x_0 + sigma(t) eps)`` in general).

        Parameters
        ----------
        sigma : float
            Noise standard deviation, >= 0.
        scale : float, default 1.0
            Overall scale, > 0.

        Returns
        -------
        GaussianMixture
        """
        sigma = _check_nonnegative(sigma, "sigma")
        scale = _check_positive(scale, "scale")
        covariances = scale**2 * (self.covariances + sigma**2 * np.eye(self.dim))
        return GaussianMixture(scale * self.means, covariances, self.weights)


def _check_positive(value: Any, name: str) -> float:
    value = _check_nonnegative(value, name)
    if value == 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return value


def gaussian_mixture(
    n: int = 1000,
    *,
    rng: np.random.Generator | int,
    mixture: GaussianMixture | None = None,
) -> tuple[Dataset, GaussianMixture]:
    """Samples from a Gaussian mixture, and the mixture itself.

    Parameters
    ----------
    n : int, default 1000
        Number of points.
    rng : numpy.random.Generator or int
        Random generator or seed.
    mixture : GaussianMixture, optional
        The distribution; default ``GaussianMixture.ring()``, eight 2-D Gaussians
        of standard deviation 0.2 on a circle of radius 2.

    Returns
    -------
    data : Dataset
        ``X`` of shape ``(n, dim)``; ``y`` the component of each point.
    mixture : GaussianMixture
        The distribution, with exact :meth:`~GaussianMixture.log_prob` and
        :meth:`~GaussianMixture.score`.

    Examples
    --------
    >>> data, mixture = gaussian_mixture(500, rng=0)
    >>> mixture.score(data.X).shape
    (500, 2)
    """
    if mixture is None:
        mixture = GaussianMixture.ring()
    elif not isinstance(mixture, GaussianMixture):
        raise TypeError(f"mixture must be a GaussianMixture, got {type(mixture).__name__}")
    return mixture.sample(n, rng=rng), mixture


# --------------------------------------------------------------------------- supervised generators


def sine_target(x: ArrayLike) -> np.ndarray:
    """The noiseless function behind :func:`noisy_sine`: ``sin(2 pi x)``.

    Parameters
    ----------
    x : array_like
        Inputs of any shape.

    Returns
    -------
    numpy.ndarray
        Same shape as `x`.
    """
    return np.sin(2 * np.pi * np.asarray(x, dtype=np.float64))


def noisy_sine(n: int = 50, noise: float = 0.3, *, rng: np.random.Generator | int) -> Dataset:
    """A 1-D regression toy: ``y = sin(2 pi x) + noise * eps``, ``x ~ U[0, 1]``.

    Draw many such data sets, fit a model to each, and compare the fits with
    :func:`sine_target` to see bias and variance.

    Parameters
    ----------
    n : int, default 50
        Number of points.
    noise : float, default 0.3
        Standard deviation of the Gaussian noise on ``y``.
    rng : numpy.random.Generator or int
        Random generator or seed.

    Returns
    -------
    Dataset
        ``X`` of shape ``(n, 1)``, sorted by ``x``; ``y`` the noisy targets.
    """
    n = _check_count(n, "n")
    noise = _check_nonnegative(noise, "noise")
    rng = as_generator(rng)
    x = np.sort(rng.random(n))
    y = sine_target(x) + noise * rng.standard_normal(n)
    return Dataset(X=x[:, None], y=y, name="noisy_sine", description=f"y = sin(2 pi x) + N(0, {noise}^2), x ~ U[0, 1]")


def make_classification(
    n_samples: int = 500,
    n_features: int = 20,
    *,
    n_informative: int = 5,
    n_classes: int = 2,
    rng: np.random.Generator | int,
    **kwargs: Any,
) -> Dataset:
    """scikit-learn's ``make_classification``, driven by `rng`.

    Parameters
    ----------
    n_samples : int, default 500
        Number of samples.
    n_features : int, default 20
        Number of features.
    n_informative : int, default 5
        Number of informative features.
    n_classes : int, default 2
        Number of classes.
    rng : numpy.random.Generator or int
        Random generator or seed.
    **kwargs
        Passed on to ``sklearn.datasets.make_classification`` (not ``random_state``).

    Returns
    -------
    Dataset
        ``y`` the class label.
    """
    from sklearn.datasets import make_classification as _make_classification

    if "random_state" in kwargs:
        raise TypeError("pass rng, not random_state")
    _check_count(n_samples, "n_samples")
    _check_count(n_features, "n_features")
    X, y = _make_classification(
        n_samples=n_samples,
        n_features=n_features,
        n_informative=n_informative,
        n_classes=n_classes,
        random_state=_seed_for_sklearn(as_generator(rng)),
        **kwargs,
    )
    return Dataset(
        X=X,
        y=y.astype(np.int64),
        name="classification",
        description=f"scikit-learn make_classification: {n_classes} classes, {n_informative} of {n_features} features informative",
    )


def make_regression(
    n_samples: int = 500,
    n_features: int = 10,
    *,
    noise: float = 1.0,
    rng: np.random.Generator | int,
) -> Dataset:
    """Friedman's nonlinear regression problem #1 (scikit-learn's ``make_friedman1``).

    ``y = 10 sin(pi x0 x1) + 20 (x2 - 0.5)^2 + 10 x3 + 5 x4 + noise * eps`` with
    ``x ~ U[0, 1]^n_features``; features beyond the fifth are irrelevant. Unlike a
    linear problem, trees and boosting have something to find.

    Parameters
    ----------
    n_samples : int, default 500
        Number of samples.
    n_features : int, default 10
        Number of features, at least 5.
    noise : float, default 1.0
        Standard deviation of the Gaussian noise on ``y``.
    rng : numpy.random.Generator or int
        Random generator or seed.

    Returns
    -------
    Dataset
        ``y`` the real-valued target.
    """
    from sklearn.datasets import make_friedman1

    n_samples = _check_count(n_samples, "n_samples")
    n_features = _check_count(n_features, "n_features", minimum=5)
    noise = _check_nonnegative(noise, "noise")
    X, y = make_friedman1(n_samples=n_samples, n_features=n_features, noise=noise, random_state=_seed_for_sklearn(as_generator(rng)))
    return Dataset(X=X, y=y, name="friedman1", description=f"Friedman #1 regression, {n_features} features (5 relevant), noise {noise}")


# --------------------------------------------------------------------------- text and sequences


def load_news_corpus(*, tokenize: bool = False) -> list[str] | list[list[str]]:
    """The Lee news corpus: 300 short Australian news articles (about 60,000 words).

    gensim ships the file ``lee_background.cor`` among its test data, so it is on
    disk wherever gensim is installed; nothing is downloaded.

    Parameters
    ----------
    tokenize : bool, default False
        If False, return one string per article (the raw text, for tokenizers).
        If True, return each article as a list of lower-case word tokens: runs of
        2 to 15 letters, as gensim's ``simple_preprocess`` makes them (for word2vec).

    Returns
    -------
    list of str, or list of list of str
        The 300 articles, in file order.

    Raises
    ------
    ImportError
        If gensim is not installed.
    """
    import re
    from pathlib import Path

    try:
        import gensim
    except ImportError as err:  # pragma: no cover - gensim is in requirements.txt
        raise ImportError("load_news_corpus needs gensim, which ships the corpus file: pip install gensim") from err
    path = Path(gensim.__file__).parent / "test" / "test_data" / "lee_background.cor"
    if not path.is_file():  # pragma: no cover - a gensim build without its test data
        raise FileNotFoundError(f"gensim is installed but its test data file {path.name} is missing")
    articles = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not tokenize:
        return articles
    word = re.compile(r"[^\W\d_]+")
    return [[w for w in word.findall(text.lower()) if 2 <= len(w) <= 15] for text in articles]


def adding_problem(n: int = 1000, seq_len: int = 50, *, rng: np.random.Generator | int) -> Dataset:
    """The adding problem of Hochreiter and Schmidhuber (1997): a long-lag memory task.

    Each input step carries two numbers: a value drawn from ``U[0, 1]`` and a marker
    that is 1 at exactly two positions (one in the first half of the sequence, one in
    the second) and 0 elsewhere. The target is the sum of the two marked values. A
    model must remember the first marked value for up to ``seq_len`` steps; always
    predicting the mean (1.0) gives a mean squared error of about 1/6.

    Parameters
    ----------
    n : int, default 1000
        Number of sequences.
    seq_len : int, default 50
        Length of each sequence, at least 2.
    rng : numpy.random.Generator or int
        Random generator or seed.

    Returns
    -------
    Dataset
        ``X`` of shape ``(n, seq_len, 2)`` (value, marker), float32; ``y`` of shape
        ``(n,)``, float32, the sum of the two marked values.
    """
    n = _check_count(n, "n")
    seq_len = _check_count(seq_len, "seq_len", minimum=2)
    rng = as_generator(rng)
    values = rng.random((n, seq_len))
    half = seq_len // 2
    first = rng.integers(0, half, size=n)
    second = rng.integers(half, seq_len, size=n)
    markers = np.zeros((n, seq_len))
    rows = np.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    X = np.stack([values, markers], axis=-1).astype(np.float32)
    y = (values[rows, first] + values[rows, second]).astype(np.float32)
    return Dataset(X=X, y=y, name="adding_problem", description=f"adding problem, length {seq_len}: y = sum of the two marked values")


# --------------------------------------------------------------------------- a corpus with planted word classes


@dataclass(frozen=True, repr=False)
class PlantedCorpus:
    """A synthetic corpus whose word classes and analogies are known by construction.

    Made by :func:`planted_corpus`. A corpus is a list of sentences, not an
    ``(X, y)`` pair, so this record replaces :class:`Dataset` here.

    Attributes
    ----------
    sentences : list of list of str
        The sentences, each a list of word tokens.
    word_class : dict of str to str
        Ground truth: the class of every *class word* (``"animal03"``) and of every
        *pair word* (``"animal_x"``), keyed by word. Filler and marker words have no class.
    word_attribute : dict of str to str
        The attribute of every pair word and every marker word.
    analogies : list of tuple of str
        Quadruples ``(a, b, c, d)`` of pair words with ``a - b + c = d`` by
        construction: ``a = (k1, t1)``, ``b = (k2, t1)``, ``c = (k2, t2)``,
        ``d = (k1, t2)`` for classes ``k1 != k2`` and attributes ``t1 != t2``
        (the pattern of "king - man + woman = queen").
    class_names : tuple of str
        The classes, in order.
    attribute_names : tuple of str
        The attributes, in order.
    description : str
        One line: how the corpus was generated.
    """

    sentences: list[list[str]]
    word_class: dict[str, str]
    word_attribute: dict[str, str]
    analogies: list[tuple[str, str, str, str]]
    class_names: tuple[str, ...]
    attribute_names: tuple[str, ...]
    description: str

    def __len__(self) -> int:
        return len(self.sentences)

    def __repr__(self) -> str:
        n_tokens = sum(len(s) for s in self.sentences)
        return (
            f"PlantedCorpus({len(self.sentences)} sentences, {n_tokens} tokens, "
            f"{len(self.class_names)} classes, {len(self.attribute_names)} attributes)"
        )


_PLANTED_CLASS_NAMES = (
    "animal", "city", "colour", "food", "job", "sport", "tool", "weather",
    "metal", "plant", "music", "fabric", "drink", "vehicle", "number", "emotion",
)
_PLANTED_ATTRIBUTE_NAMES = ("x", "y", "z", "w")


def planted_corpus(
    n_sentences: int = 2000,
    *,
    n_classes: int = 8,
    words_per_class: int = 20,
    n_attributes: int = 2,
    markers_per_attribute: int = 5,
    n_filler: int = 30,
    sentence_length: tuple[int, int] = (10, 20),
    filler_share: float = 0.3,
    rng: np.random.Generator | int,
) -> PlantedCorpus:
    """A corpus with planted word classes and analogies, for word2vec (Part 3).

    Every sentence is about one *class* ``k`` (a topic, such as ``"animal"``) and
    carries one *attribute* ``t`` (``"x"`` or ``"y"``, like grammatical gender). Its
    tokens are drawn independently from a mixture:

    - with probability `filler_share`, a *filler* word (``"the0"``, ...), Zipf-distributed
      and shared by all sentences, like function words;
    - otherwise, with probabilities 0.5 / 0.3 / 0.2 of the rest: a *class word*
      of ``k`` (``"animal00"`` to ``"animal19"``, uniform), a *marker* of ``t``
      (``"x0"`` to ``"x4"``, uniform), or the *pair word* ``"animal_x"`` of ``(k, t)``.

    Class words co-occur with the words of their own class, so their embeddings
    should cluster by class. A pair word's contexts depend on its class and its
    attribute independently, so by the log-bilinear form of word2vec its vector is
    about a class part plus an attribute part, and ``animal_x - city_x + city_y``
    lands near ``animal_y``: the analogies hold by construction.

    Parameters
    ----------
    n_sentences : int, default 2000
        Number of sentences; class and attribute of each are uniform.
    n_classes : int, default 8
        Number of classes, 2 to 16.
    words_per_class : int, default 20
        Class words per class, at least 1.
    n_attributes : int, default 2
        Number of attributes, 2 to 4 (at least 2 so that analogies exist).
    markers_per_attribute : int, default 5
        Marker words per attribute, at least 1.
    n_filler : int, default 30
        Number of filler words, at least 1.
    sentence_length : tuple of int, default (10, 20)
        Inclusive range of the (uniform) sentence length, ``2 <= low <= high``.
    filler_share : float, default 0.3
        Probability that a token is a filler word, in ``[0, 1)``.
    rng : numpy.random.Generator or int
        Random generator or seed.

    Returns
    -------
    PlantedCorpus
        The sentences and the ground truth (classes, attributes, analogy quadruples).

    Examples
    --------
    >>> corpus = planted_corpus(100, rng=0)
    >>> corpus.word_class["animal03"], corpus.analogies[0]
    ('animal', ('animal_x', 'city_x', 'city_y', 'animal_y'))
    """
    n_sentences = _check_count(n_sentences, "n_sentences")
    n_classes = _check_count(n_classes, "n_classes", minimum=2)
    if n_classes > len(_PLANTED_CLASS_NAMES):
        raise ValueError(f"n_classes must be <= {len(_PLANTED_CLASS_NAMES)}, got {n_classes}")
    words_per_class = _check_count(words_per_class, "words_per_class")
    n_attributes = _check_count(n_attributes, "n_attributes", minimum=2)
    if n_attributes > len(_PLANTED_ATTRIBUTE_NAMES):
        raise ValueError(f"n_attributes must be <= {len(_PLANTED_ATTRIBUTE_NAMES)}, got {n_attributes}")
    markers_per_attribute = _check_count(markers_per_attribute, "markers_per_attribute")
    n_filler = _check_count(n_filler, "n_filler")
    if (
        not isinstance(sentence_length, tuple)
        or len(sentence_length) != 2
        or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in sentence_length)
        or not 2 <= sentence_length[0] <= sentence_length[1]
    ):
        raise ValueError(f"sentence_length must be a tuple (low, high) of ints with 2 <= low <= high, got {sentence_length!r}")
    filler_share = _check_nonnegative(filler_share, "filler_share")
    if filler_share >= 1:
        raise ValueError(f"filler_share must be in [0, 1), got {filler_share}")
    rng = as_generator(rng)

    classes = _PLANTED_CLASS_NAMES[:n_classes]
    attributes = _PLANTED_ATTRIBUTE_NAMES[:n_attributes]
    class_words = [[f"{k}{i:02d}" for i in range(words_per_class)] for k in classes]
    markers = [[f"{t}{i}" for i in range(markers_per_attribute)] for t in attributes]
    pair_words = [[f"{k}_{t}" for t in attributes] for k in classes]
    fillers = [f"the{i}" for i in range(n_filler)]
    zipf = 1.0 / np.arange(1, n_filler + 1)
    zipf /= zipf.sum()

    # Token kinds: 0 filler, 1 class word, 2 marker, 3 pair word.
    content = 1.0 - filler_share
    kind_probs = np.array([filler_share, 0.5 * content, 0.3 * content, 0.2 * content])
    sentence_class = rng.integers(n_classes, size=n_sentences)
    sentence_attribute = rng.integers(n_attributes, size=n_sentences)
    lengths = rng.integers(sentence_length[0], sentence_length[1] + 1, size=n_sentences)
    sentences = []
    for k, t, length in zip(sentence_class, sentence_attribute, lengths):
        kinds = rng.choice(4, size=length, p=kind_probs)
        filler_draws = rng.choice(n_filler, size=length, p=zipf)
        class_draws = rng.integers(words_per_class, size=length)
        marker_draws = rng.integers(markers_per_attribute, size=length)
        sentence = []
        for kind, f, c, m in zip(kinds, filler_draws, class_draws, marker_draws):
            if kind == 0:
                sentence.append(fillers[f])
            elif kind == 1:
                sentence.append(class_words[k][c])
            elif kind == 2:
                sentence.append(markers[t][m])
            else:
                sentence.append(pair_words[k][t])
        sentences.append(sentence)

    word_class = {w: k for k, words in zip(classes, class_words) for w in words}
    word_class.update({w: k for k, words in zip(classes, pair_words) for w in words})
    word_attribute = {pair_words[i][j]: t for i in range(n_classes) for j, t in enumerate(attributes)}
    word_attribute.update({w: t for t, words in zip(attributes, markers) for w in words})
    analogies = [
        (pair_words[k1][t1], pair_words[k2][t1], pair_words[k2][t2], pair_words[k1][t2])
        for k1 in range(n_classes)
        for k2 in range(n_classes)
        for t1 in range(n_attributes)
        for t2 in range(n_attributes)
        if k1 != k2 and t1 != t2
    ]
    return PlantedCorpus(
        sentences=sentences,
        word_class=word_class,
        word_attribute=word_attribute,
        analogies=analogies,
        class_names=tuple(classes),
        attribute_names=tuple(attributes),
        description=(
            f"planted corpus: {n_sentences} sentences, {n_classes} classes x {words_per_class} words, "
            f"{n_attributes} attributes, {n_classes * n_attributes} pair words, {n_filler} fillers"
        ),
    )
