"""Tests of mlnotes.metrics: identities, symmetry, and agreement with SciPy in 1-D."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import wasserstein_distance

from mlnotes.metrics import mmd_rbf, sliced_wasserstein


@pytest.fixture
def samples() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal((200, 3)), rng.standard_normal((150, 3)) + 0.5


def test_zero_for_identical_sets(samples: tuple[np.ndarray, np.ndarray]) -> None:
    x, _ = samples
    assert mmd_rbf(x, x) == pytest.approx(0.0, abs=1e-12)
    assert sliced_wasserstein(x, x, rng=0) == 0.0
    assert sliced_wasserstein(x, x[::-1], rng=0) == 0.0, "order of samples does not matter"


def test_positive_and_symmetric(samples: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = samples
    assert mmd_rbf(x, y) > 0.01
    assert mmd_rbf(x, y) == pytest.approx(mmd_rbf(y, x), rel=1e-12)
    assert mmd_rbf(x, y, bandwidth=0.7) == pytest.approx(mmd_rbf(y, x, bandwidth=0.7), rel=1e-12)
    assert sliced_wasserstein(x, y, rng=3) > 0.1
    assert sliced_wasserstein(x, y, rng=3) == pytest.approx(sliced_wasserstein(y, x, rng=3), rel=1e-12)


def test_grows_with_shift() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((300, 2))
    shifts = [0.25, 0.5, 1.0, 2.0]
    mmds = [mmd_rbf(x, rng.standard_normal((300, 2)) + s, bandwidth=1.0) for s in shifts]
    sws = [sliced_wasserstein(x, x + s, rng=0) for s in shifts]
    assert np.all(np.diff(mmds) > 0) and np.all(np.diff(sws) > 0)


def test_mmd_closed_form_for_single_points() -> None:
    """For one point each, MMD^2 = 2 - 2 exp(-d^2 / (2 h^2))."""
    assert mmd_rbf([[0.0, 0.0]], [[3.0, 4.0]], bandwidth=2.0) == pytest.approx(2 - 2 * np.exp(-25 / 8))


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 40), m=st.integers(1, 40), seed=st.integers(0, 10_000), p=st.sampled_from([1.0, 2.0]))
def test_sliced_wasserstein_equals_scipy_in_1d(n: int, m: int, seed: int, p: float) -> None:
    """In 1-D every projection is +-identity, so SW_p is the exact W_p (SciPy computes W_1)."""
    rng = np.random.default_rng(seed)
    u, v = rng.standard_normal(n), rng.standard_normal(m) * 2 + 1
    ours = sliced_wasserstein(u, v, n_projections=3, rng=seed, p=p)
    if p == 1.0:
        assert ours == pytest.approx(wasserstein_distance(u, v), rel=1e-9, abs=1e-12)
    else:  # W_2 through quantile functions on a fine grid
        t = (np.arange(200_000) + 0.5) / 200_000
        expected = np.sqrt(np.mean((np.quantile(u, t, method="inverted_cdf") - np.quantile(v, t, method="inverted_cdf")) ** 2))
        assert ours == pytest.approx(expected, rel=1e-3, abs=1e-6)


def test_sliced_wasserstein_of_a_translation() -> None:
    """Shifting by a vector c gives SW_2 = |c| sqrt(E[cos^2]) = |c| / sqrt(d) for equal sets."""
    x = np.random.default_rng(2).standard_normal((100, 4))
    c = np.array([1.0, -2.0, 0.5, 2.0])
    assert sliced_wasserstein(x, x + c, n_projections=20_000, rng=0) == pytest.approx(np.linalg.norm(c) / 2, rel=0.02)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: mmd_rbf(np.zeros((3, 2)), np.zeros((3, 3))), "same dimension"),
        (lambda: mmd_rbf(np.zeros((0, 2)), np.zeros((3, 2))), "x must"),
        (lambda: mmd_rbf(np.zeros((3, 2)), np.full((3, 2), np.nan)), "y must hold finite"),
        (lambda: mmd_rbf(np.zeros((3, 2)), np.zeros((3, 2)), bandwidth=0.0), "bandwidth"),
        (lambda: sliced_wasserstein(np.zeros((3, 2)), np.zeros((3, 2)), 0, rng=0), "n_projections"),
        (lambda: sliced_wasserstein(np.zeros((3, 2)), np.zeros((3, 2)), rng=0, p=0.5), "p must"),
    ],
)
def test_bad_input(call, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=match):
        call()


def test_sliced_wasserstein_needs_rng() -> None:
    with pytest.raises(TypeError, match="rng"):
        sliced_wasserstein(np.zeros((3, 2)), np.zeros((3, 2)), rng=None)  # type: ignore[arg-type]
