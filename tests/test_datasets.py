"""Tests of mlnotes.datasets: shapes, ranges, determinism, and the Gaussian mixture's exact formulas."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import multivariate_normal

from mlnotes import datasets
from mlnotes.datasets import Dataset, GaussianMixture

GENERATORS = [datasets.moons, datasets.swiss_roll, datasets.checkerboard, datasets.noisy_sine]


def test_dataset_is_frozen_and_unpacks() -> None:
    data = Dataset(X=np.zeros((3, 2)), y=np.arange(3), name="toy", description="three points")
    X, y = data
    assert X.shape == (3, 2) and len(data) == 3 and "toy" in repr(data)
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("X", "y", "match"),
    [(np.zeros(3), np.zeros(3), "X must"), (np.zeros((3, 2)), np.zeros(4), "y must"), ([[0.0]], np.zeros(1), "X must")],
)
def test_dataset_validates(X: object, y: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Dataset(X=X, y=y, name="bad", description="")  # type: ignore[arg-type]


def test_load_digits() -> None:
    X, y = datasets.load_digits()
    assert X.shape == (1797, 64) and y.shape == (1797,)
    assert X.min() == 0.0 and X.max() == 1.0
    assert set(np.unique(y)) == set(range(10))
    raw = datasets.load_digits(scale=False).X
    assert raw.max() == 16.0
    binary = datasets.load_digits(binarize=True, threshold=0.25).X
    assert set(np.unique(binary)) == {0.0, 1.0}
    np.testing.assert_array_equal(binary, (raw / 16 > 0.25).astype(float))
    with pytest.raises(ValueError, match="threshold"):
        datasets.load_digits(binarize=True, threshold=1.0)


@pytest.mark.parametrize("generator", GENERATORS)
def test_generators_shape_and_determinism(generator) -> None:  # type: ignore[no-untyped-def]
    a = generator(101, rng=7)
    b = generator(101, rng=np.random.default_rng(7))
    assert a.X.shape[0] == 101 and a.y.shape == (101,)
    assert a.X.ndim == 2 and a.X.shape[1] in (1, 2)
    np.testing.assert_array_equal(a.X, b.X)
    assert not np.array_equal(a.X, generator(101, rng=8).X)
    assert a.description


@pytest.mark.parametrize("generator", GENERATORS)
def test_generators_need_explicit_rng(generator) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TypeError):
        generator(10)
    with pytest.raises(TypeError, match="rng"):
        generator(10, rng=None)
    with pytest.raises(ValueError, match="n must"):
        generator(0, rng=0)
    with pytest.raises(TypeError, match="n must"):
        generator(2.5, rng=0)


def test_moons_and_checkerboard_geometry() -> None:
    X, y = datasets.moons(400, noise=0.0, rng=0)
    assert set(np.unique(y)) == {0, 1}
    outer = X[y == 0]
    np.testing.assert_allclose(np.hypot(outer[:, 0], outer[:, 1]), 1.0)
    X, y = datasets.checkerboard(2000, squares=4, rng=0)
    assert np.all(np.abs(X) <= 2.0)
    col, row = np.floor((X + 2.0) / 1.0).astype(int).T
    assert np.all((row + col) % 2 == 0), "every point lies on a dark square"
    assert set(np.unique(y)) == set(range(8))
    with pytest.raises(ValueError, match="squares"):
        datasets.checkerboard(10, squares=1, rng=0)


def test_noisy_sine() -> None:
    X, y = datasets.noisy_sine(200, noise=0.0, rng=0)
    assert np.all(np.diff(X[:, 0]) >= 0)
    np.testing.assert_allclose(y, datasets.sine_target(X[:, 0]))
    with pytest.raises(ValueError, match="noise"):
        datasets.noisy_sine(10, noise=-1.0, rng=0)


def test_sklearn_wrappers() -> None:
    X, y = datasets.make_classification(300, 8, n_informative=3, n_classes=3, rng=0)
    assert X.shape == (300, 8) and set(np.unique(y)) == {0, 1, 2}
    np.testing.assert_array_equal(X, datasets.make_classification(300, 8, n_informative=3, n_classes=3, rng=0).X)
    with pytest.raises(TypeError, match="rng"):
        datasets.make_classification(rng=0, random_state=1)
    X, y = datasets.make_regression(200, 6, noise=0.0, rng=1)
    expected = 10 * np.sin(np.pi * X[:, 0] * X[:, 1]) + 20 * (X[:, 2] - 0.5) ** 2 + 10 * X[:, 3] + 5 * X[:, 4]
    np.testing.assert_allclose(y, expected)
    with pytest.raises(ValueError, match="n_features"):
        datasets.make_regression(10, 4, rng=0)


# --------------------------------------------------------------------------- Gaussian mixture


def _random_mixture(rng: np.random.Generator, k: int, d: int) -> GaussianMixture:
    a = rng.standard_normal((k, d, d))
    covariances = a @ a.transpose(0, 2, 1) + 0.5 * np.eye(d)
    return GaussianMixture(rng.standard_normal((k, d)) * 2, covariances, rng.random(k) + 0.1)


def test_log_prob_matches_scipy() -> None:
    rng = np.random.default_rng(0)
    mixture = _random_mixture(rng, k=3, d=3)
    x = rng.standard_normal((50, 3))
    expected = np.log(
        sum(w * multivariate_normal(m, c).pdf(x) for w, m, c in zip(mixture.weights, mixture.means, mixture.covariances))
    )
    np.testing.assert_allclose(mixture.log_prob(x), expected, rtol=1e-10)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(1, 4), d=st.integers(1, 3))
def test_score_is_gradient_of_log_prob(seed: int, k: int, d: int) -> None:
    rng = np.random.default_rng(seed)
    mixture = _random_mixture(rng, k, d)
    x = rng.standard_normal((5, d)) * 2
    h = 1e-5
    numeric = np.stack(
        [(mixture.log_prob(x + h * e) - mixture.log_prob(x - h * e)) / (2 * h) for e in np.eye(d)], axis=1
    )
    np.testing.assert_allclose(mixture.score(x), numeric, rtol=1e-5, atol=1e-6)


def test_log_prob_integrates_to_one() -> None:
    mixture = GaussianMixture.ring(4, radius=1.0, std=0.3)
    grid = np.linspace(-3, 3, 301)
    gx, gy = np.meshgrid(grid, grid)
    density = np.exp(mixture.log_prob(np.column_stack([gx.ravel(), gy.ravel()])))
    assert density.sum() * (grid[1] - grid[0]) ** 2 == pytest.approx(1.0, abs=1e-6)


def test_samples_match_moments() -> None:
    mixture = GaussianMixture([[0.0, 0.0], [4.0, 0.0]], [[[1.0, 0.5], [0.5, 2.0]], [[0.5, 0.0], [0.0, 0.5]]], [0.25, 0.75])
    data, same = datasets.gaussian_mixture(100_000, rng=0, mixture=mixture)
    assert same is mixture
    assert np.mean(data.y == 1) == pytest.approx(0.75, abs=0.01)
    np.testing.assert_allclose(np.cov(data.X[data.y == 0].T), mixture.covariances[0], atol=0.05)
    np.testing.assert_allclose(data.X[data.y == 1].mean(axis=0), [4.0, 0.0], atol=0.02)


def test_noised_is_the_convolution() -> None:
    """x + sigma * eps of a single Gaussian is Gaussian with covariance Sigma + sigma^2 I, scaled by s."""
    mixture = GaussianMixture([[1.0, -1.0]], [[[2.0, 0.3], [0.3, 1.0]]])
    noisy = mixture.noised(0.5, scale=2.0)
    np.testing.assert_allclose(noisy.means, [[2.0, -2.0]])
    np.testing.assert_allclose(noisy.covariances[0], 4.0 * (mixture.covariances[0] + 0.25 * np.eye(2)))
    samples = mixture.sample(200_000, rng=1).X
    rng = np.random.default_rng(2)
    empirical = 2.0 * (samples + 0.5 * rng.standard_normal(samples.shape))
    np.testing.assert_allclose(np.cov(empirical.T), noisy.covariances[0], rtol=0.02)
    np.testing.assert_allclose(mixture.noised(0.0).covariances, mixture.covariances)


def test_default_mixture_is_a_ring() -> None:
    data, mixture = datasets.gaussian_mixture(800, rng=0)
    assert mixture.n_components == 8 and mixture.dim == 2
    np.testing.assert_allclose(np.linalg.norm(mixture.means, axis=1), 2.0)
    assert data.X.shape == (800, 2)
    assert mixture.score(mixture.means).shape == (8, 2)


@pytest.mark.parametrize(
    ("means", "covariances", "weights", "match"),
    [
        ([1.0, 2.0], [1.0, 1.0], None, "means"),
        ([[0.0, 0.0]], [[[1.0, 0.0]]], None, "covariances must have shape"),
        ([[0.0, 0.0]], [[[1.0, 2.0], [0.0, 1.0]]], None, "symmetric"),
        ([[0.0, 0.0]], [[[1.0, 2.0], [2.0, 1.0]]], None, "positive definite"),
        ([[0.0, 0.0]], [0.0], None, "standard deviations"),
        ([[0.0], [1.0]], [1.0, 1.0], [-1.0, 2.0], "weights"),
    ],
)
def test_mixture_validates(means: object, covariances: object, weights: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        GaussianMixture(means, covariances, weights)  # type: ignore[arg-type]


def test_mixture_bad_points_and_args() -> None:
    mixture = GaussianMixture.ring()
    with pytest.raises(ValueError, match=r"x must have shape \(n, 2\)"):
        mixture.log_prob(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="sigma"):
        mixture.noised(-0.1)
    with pytest.raises(ValueError, match="std"):
        GaussianMixture.ring(std=0.0)
    with pytest.raises(TypeError, match="mixture"):
        datasets.gaussian_mixture(10, rng=0, mixture="ring")  # type: ignore[arg-type]


def test_news_corpus_raw_and_tokenized():
    pytest.importorskip("gensim")
    raw = datasets.load_news_corpus()
    words = datasets.load_news_corpus(tokenize=True)
    assert len(raw) == len(words) == 300
    assert all(isinstance(a, str) and a for a in raw)
    flat = [w for doc in words for w in doc]
    assert 50_000 < len(flat) < 70_000
    assert all(w == w.lower() and w.isalpha() and 2 <= len(w) <= 15 for w in flat)
    assert "attacks" in flat and "bombings" in flat


def test_adding_problem_target_is_sum_of_marked_values():
    X, y = datasets.adding_problem(200, 30, rng=0)
    assert X.shape == (200, 30, 2) and y.shape == (200,) and X.dtype == np.float32
    markers = X[:, :, 1]
    assert np.all(markers.sum(axis=1) == 2)
    assert np.all(markers[:, :15].sum(axis=1) == 1)
    np.testing.assert_allclose(y, (X[:, :, 0] * markers).sum(axis=1), rtol=1e-6)
    X2, y2 = datasets.adding_problem(200, 30, rng=0)
    np.testing.assert_array_equal(X, X2)
    with pytest.raises(ValueError, match="seq_len"):
        datasets.adding_problem(10, 1, rng=0)
