"""Tests of the Fréchet distance and the digits classifier of mlnotes.metrics.

Golden: the textbook formula with SciPy's general matrix square root, and the closed
form for commuting covariances. Properties: zero for identical sets, symmetry, a
translation adds ``||c||^2``. The classifier: accuracy, determinism, one classifier for
8x8 and 32x32 images, and the noise floor of real digits.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import linalg, stats

from mlnotes.metrics import (
    DIGITS_REFERENCE_SIZE,
    N_DIGITS,
    DigitsClassifier,
    digits_frechet_distance,
    digits_noise_floor,
    digits_split,
    fit_digits_classifier,
    frechet_distance,
    frechet_distance_gaussians,
)


def scipy_frechet(a: np.ndarray, b: np.ndarray) -> float:
    """The formula as FID implementations write it: scipy.linalg.sqrtm of the product, real part."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    root = linalg.sqrtm(cov_a @ cov_b)
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a + cov_b - 2 * np.real(root)))


# --------------------------------------------------------------------------- the distance
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), dim=st.integers(1, 12), n=st.integers(20, 60))
def test_matches_the_scipy_sqrtm_formula(seed: int, dim: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, dim)) @ rng.standard_normal((dim, dim))
    b = rng.standard_normal((n + 7, dim)) * rng.uniform(0.5, 2.0, dim) + rng.standard_normal(dim)
    assert frechet_distance(a, b) == pytest.approx(scipy_frechet(a, b), rel=1e-7, abs=1e-9)


def test_closed_form_for_diagonal_and_commuting_covariances() -> None:
    rng = np.random.default_rng(0)
    mu_a, mu_b = rng.standard_normal(5), rng.standard_normal(5)
    var_a, var_b = rng.uniform(0.1, 3.0, 5), rng.uniform(0.1, 3.0, 5)
    expected = np.sum((mu_a - mu_b) ** 2) + np.sum((np.sqrt(var_a) - np.sqrt(var_b)) ** 2)
    assert frechet_distance_gaussians(mu_a, np.diag(var_a), mu_b, np.diag(var_b)) == pytest.approx(expected, rel=1e-12)
    # Commuting covariances share eigenvectors: the same closed form in their basis.
    rotation, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    cov_a, cov_b = rotation @ np.diag(var_a) @ rotation.T, rotation @ np.diag(var_b) @ rotation.T
    assert frechet_distance_gaussians(mu_a, cov_a, mu_b, cov_b) == pytest.approx(expected, rel=1e-10)
    # One dimension: (mu_a - mu_b)^2 + (s_a - s_b)^2, the W2 distance of two normals.
    assert frechet_distance_gaussians([1.0], [[4.0]], [-2.0], [[1.0]]) == pytest.approx(9.0 + 1.0)


def test_singular_covariances_match_scipy() -> None:
    """More dimensions than samples: rank-deficient covariances, where a plain sqrtm goes complex."""
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((8, 20)), rng.standard_normal((10, 20)) + 0.3
    assert frechet_distance(a, b) == pytest.approx(scipy_frechet(a, b), rel=1e-6)


def test_identity_symmetry_and_translation() -> None:
    rng = np.random.default_rng(1)
    a = rng.standard_normal((300, 6)) @ rng.standard_normal((6, 6))
    b = rng.standard_normal((200, 6))
    c = np.array([1.0, -2.0, 0.5, 0.0, 3.0, -1.0])
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    assert frechet_distance(a, a[::-1]) == pytest.approx(0.0, abs=1e-9)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-9)
    assert frechet_distance(a, a + c) == pytest.approx(np.sum(c**2), rel=1e-9)
    assert frechet_distance(a, b) > 0.5


def test_torch_inputs_in_any_float_dtype() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((50, 4)), rng.standard_normal((40, 4)) + 1
    expected = frechet_distance(a, b)
    assert frechet_distance(torch.tensor(a), torch.tensor(b)) == pytest.approx(expected, rel=1e-12)
    assert frechet_distance(torch.tensor(a, dtype=torch.float32), b) == pytest.approx(expected, rel=1e-5)


def test_converges_to_the_population_value() -> None:
    """Large samples of two known Gaussians: the estimate approaches the closed form."""
    rng = np.random.default_rng(4)
    a = rng.standard_normal((40_000, 3))
    b = rng.standard_normal((40_000, 3)) * np.array([2.0, 1.0, 0.5]) + np.array([1.0, 0.0, 0.0])
    assert frechet_distance(a, b) == pytest.approx(1.0 + 1.0 + 0.0 + 0.25, rel=0.02)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: frechet_distance(np.zeros((1, 3)), np.zeros((5, 3))), ValueError, "n_samples >= 2"),
        (lambda: frechet_distance(np.zeros((5, 3)), np.zeros((5, 2))), ValueError, "same dim"),
        (lambda: frechet_distance(np.zeros(5), np.zeros(5)), ValueError, "feats_a must have shape"),
        (lambda: frechet_distance(np.zeros((5, 2)), np.full((5, 2), np.nan)), ValueError, "feats_b must hold finite"),
        (lambda: frechet_distance([["a", "b"], ["c", "d"]], np.zeros((2, 2))), TypeError, "feats_a"),
        (lambda: frechet_distance_gaussians([0.0, 0.0], np.eye(3), [0.0, 0.0], np.eye(2)), ValueError, "one dim"),
        (lambda: frechet_distance_gaussians([0.0], [[np.inf]], [0.0], [[1.0]]), ValueError, "cov_a"),
    ],
)
def test_bad_inputs(call, error, match) -> None:
    with pytest.raises(error, match=match):
        call()


# --------------------------------------------------------------------------- the digits classifier
@pytest.fixture(scope="module")
def classifier() -> DigitsClassifier:
    return fit_digits_classifier(seed=0, epochs=8)


def digits_8x8() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return (bunch.data / 16.0 * 2 - 1).reshape(-1, 1, 8, 8).astype(np.float32), bunch.target


def test_classifier_is_accurate_and_deterministic(classifier: DigitsClassifier) -> None:
    assert classifier.test_accuracy_ > 0.9
    images, labels = digits_8x8()
    test = classifier.test_index_
    assert len(test) == round(0.25 * N_DIGITS) and len(np.intersect1d(test, classifier.train_index_)) == 0
    assert np.mean(classifier.predict(images[test]) == labels[test]) == pytest.approx(classifier.test_accuracy_)
    again = fit_digits_classifier(seed=0, epochs=8)
    other = fit_digits_classifier(seed=1, epochs=8)
    for p, q, r in zip(classifier.network.parameters(), again.network.parameters(), other.network.parameters()):
        assert np.array_equal(p.detach().numpy(), q.detach().numpy())
    assert not np.array_equal(classifier.features(images[:10]), other.features(images[:10]))


def test_one_classifier_for_8x8_and_32x32(classifier: DigitsClassifier) -> None:
    torch = pytest.importorskip("torch")
    images, labels = digits_8x8()
    test = classifier.test_index_
    big = torch.nn.functional.interpolate(torch.from_numpy(images), size=32, mode="bilinear", align_corners=False)
    assert np.mean(classifier.predict(big[test]) == labels[test]) > 0.9
    # An image made of 4x4 constant blocks averages back to its 8x8 original exactly.
    blocks = torch.from_numpy(images[:20]).repeat_interleave(4, dim=2).repeat_interleave(4, dim=3)
    np.testing.assert_allclose(classifier.features(blocks), classifier.features(images[:20]), rtol=1e-5, atol=1e-5)
    # Every accepted layout gives the same answer.
    flat, square = images[:20].reshape(20, 64), images[:20, 0]
    for other in (flat, square, torch.from_numpy(images[:20]).double()):
        np.testing.assert_allclose(classifier.predict_proba(other), classifier.predict_proba(images[:20]), rtol=1e-5, atol=1e-6)
    probs = classifier.predict_proba(images[:20])
    assert probs.shape == (20, 10) and np.allclose(probs.sum(axis=1), 1.0)
    assert classifier.features(images[:20]).shape == (20, classifier.feature_dim)


def test_noise_floor_of_real_digits(classifier: DigitsClassifier) -> None:
    images, _ = digits_8x8()
    reference_index, train_index = digits_split()
    assert len(reference_index) == DIGITS_REFERENCE_SIZE and len(np.union1d(reference_index, train_index)) == N_DIGITS
    floor = digits_noise_floor(classifier, 300, repeats=3, rng=0)
    rng = np.random.default_rng(0)
    expected = [digits_frechet_distance(images[train_index][rng.choice(898, 300, replace=False)], images[reference_index], classifier)
                for _ in range(3)]
    np.testing.assert_allclose(floor.values, expected, rtol=1e-10)
    whole = digits_noise_floor(classifier, 898, rng=0)
    assert whole.values.shape == (1,) and 0 < whole.mean < floor.mean, "the bias of the estimate falls with n"
    noise = np.clip(np.random.default_rng(1).standard_normal((300, 1, 8, 8)), -1, 1)
    assert digits_frechet_distance(noise, images[reference_index], classifier) > 20 * floor.mean
    # Real digits of one class are far from the reference: the distance sees the class balance.
    _, labels = digits_8x8()
    zeros = images[labels == 0]
    assert digits_frechet_distance(zeros, images[reference_index], classifier) > 5 * floor.mean
    assert stats.entropy(np.bincount(classifier.predict(images[train_index]), minlength=10)) > 0.98 * np.log(10)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda c: c.features(np.zeros((3, 1, 10, 10))), ValueError, "multiple of 8"),
        (lambda c: c.features(np.zeros((3, 2, 8, 8))), ValueError, "images"),
        (lambda c: c.predict(np.full((3, 64), np.nan)), ValueError, "finite"),
        (lambda c: c.predict(object()), (TypeError, ValueError), "x must"),
        (lambda c: digits_noise_floor(c, 899, rng=0), ValueError, "n must"),
        (lambda c: digits_noise_floor(c, 10, images=np.zeros((10, 64)), rng=0), ValueError, "1797"),
        (lambda c: digits_frechet_distance(np.zeros((3, 64)), np.zeros((3, 64)), object()), TypeError, "DigitsClassifier"),
        (lambda c: fit_digits_classifier(epochs=0), ValueError, "epochs"),
        (lambda c: fit_digits_classifier(test_fraction=1.0), ValueError, "test_fraction"),
    ],
)
def test_classifier_bad_inputs(classifier: DigitsClassifier, call, error, match) -> None:
    with pytest.raises(error, match=match):
        call(classifier)
