"""Tests of mlnotes.metrics.noise_floor: it is the distance between two true samples, and it shrinks with n."""

from __future__ import annotations

import numpy as np
import pytest

from mlnotes.datasets import GaussianMixture
from mlnotes.metrics import mmd_rbf, noise_floor, sliced_wasserstein


def sw(x: np.ndarray, y: np.ndarray) -> float:
    return sliced_wasserstein(x, y, 64, rng=0)


def gaussian(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal((n, 2))


def test_floor_is_the_distance_between_two_independent_samples() -> None:
    floor = noise_floor(sw, gaussian, 300, repeats=3, rng=7)
    rng = np.random.default_rng(7)
    expected = []
    for _ in range(3):  # the sampler is called twice per repeat, in order, on the same stream
        x, y = gaussian(300, rng), gaussian(300, rng)
        expected.append(sw(x, y))
    np.testing.assert_allclose(floor.values, expected, rtol=1e-12)
    assert floor.mean == pytest.approx(np.mean(expected)) and floor.std == pytest.approx(np.std(expected, ddof=1))
    assert noise_floor(sw, gaussian, 300, repeats=3, rng=7).values.tolist() == floor.values.tolist()


def test_floor_shrinks_like_one_over_sqrt_n() -> None:
    mixture = GaussianMixture.ring(8, radius=2.0, std=0.2)

    def sampler(n: int, rng: np.random.Generator) -> np.ndarray:
        return mixture.sample(n, rng=rng).X

    small = noise_floor(sw, sampler, 250, repeats=8, rng=0).mean
    large = noise_floor(sw, sampler, 4000, repeats=8, rng=1).mean
    assert small > 0 and large > 0
    # 16 times the points: about a quarter of the distance (sliced W2 of empirical measures ~ n^-1/2).
    assert 2.5 < small / large < 6.5
    # A sample from a shifted distribution is far above the floor.
    assert sw(sampler(4000, np.random.default_rng(2)), sampler(4000, np.random.default_rng(3)) + 0.3) > 3 * large


def test_floor_with_mmd_and_one_repeat() -> None:
    floor = noise_floor(lambda x, y: mmd_rbf(x, y, bandwidth=1.0), gaussian, 100, repeats=1, rng=0)
    assert floor.std == 0.0 and floor.values.shape == (1,) and floor.mean > 0


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [({"n": 0}, ValueError), ({"repeats": 0}, ValueError), ({"n": 2.5}, ValueError), ({"metric": "sw"}, TypeError)],
)
def test_bad_input(kwargs: dict, error: type) -> None:
    args = {"metric": sw, "sampler": gaussian, "n": 10, "repeats": 2} | kwargs
    with pytest.raises(error):
        noise_floor(args.pop("metric"), args.pop("sampler"), args.pop("n"), repeats=args["repeats"], rng=0)
