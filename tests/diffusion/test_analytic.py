"""Tests of mlnotes.diffusion.analytic: the exact Gaussian-mixture and empirical denoisers against NumPy, autograd and their limits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mlnotes.datasets import GaussianMixture
from mlnotes.diffusion.analytic import EmpiricalDenoiser, GaussianMixtureDenoiser, mixture_of_8
from mlnotes.diffusion.common import EDMPath, LinearPath, VEPath, VPPath, heun_ode, velocity_from_x0

F64 = torch.float64


def random_mixture(seed: int, n_components: int = 3, dim: int = 3) -> GaussianMixture:
    """Full, unequal covariances and unequal weights."""
    rng = np.random.default_rng(seed)
    factors = rng.normal(size=(n_components, dim, dim))
    covariances = factors @ factors.transpose(0, 2, 1) / dim + 0.05 * np.eye(dim)
    return GaussianMixture(rng.normal(scale=2.0, size=(n_components, dim)), covariances, rng.uniform(0.2, 1.0, n_components))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), log_sigma=st.floats(-3, 2))
def test_score_equals_numpy_score_of_the_noised_mixture(seed: int, log_sigma: float) -> None:
    mixture = random_mixture(seed)
    sigma = 10.0**log_sigma
    x = np.random.default_rng(seed + 1).normal(scale=3.0, size=(16, 3))
    noised = mixture.noised(sigma)
    denoiser = GaussianMixtureDenoiser(mixture)
    score = denoiser.score(torch.tensor(x), sigma).numpy()
    reference = noised.score(x)
    np.testing.assert_allclose(score, reference, rtol=1e-8, atol=1e-8 * (1 + np.abs(reference).max()))
    np.testing.assert_allclose(denoiser.log_prob(torch.tensor(x), sigma).numpy(), noised.log_prob(x), rtol=1e-10)
    # Tweedie: D = x + sigma^2 score.
    np.testing.assert_allclose(denoiser(torch.tensor(x), sigma).numpy(), x + sigma**2 * reference, rtol=1e-8, atol=1e-8)


def test_score_is_the_gradient_of_the_log_density() -> None:
    denoiser = GaussianMixtureDenoiser(random_mixture(4))
    x = torch.randn(10, 3, generator=torch.Generator().manual_seed(0), dtype=F64).requires_grad_(True)
    sigma = torch.linspace(0.05, 3.0, 10, dtype=F64)
    (grad,) = torch.autograd.grad(denoiser.log_prob(x, sigma).sum(), x)
    torch.testing.assert_close(denoiser.score(x.detach(), sigma), grad, rtol=1e-10, atol=1e-12)


def test_denoiser_is_the_posterior_mean_by_monte_carlo() -> None:
    """Among all functions of x_hat, D minimises E|D(x_hat) - x0|^2: a shifted D does worse."""
    mixture = mixture_of_8()
    denoiser = GaussianMixtureDenoiser(mixture)
    x0 = torch.tensor(mixture.sample(20_000, rng=0).X)
    x_hat = x0 + 0.8 * torch.randn(x0.shape, generator=torch.Generator().manual_seed(1), dtype=F64)
    d = denoiser(x_hat, 0.8)
    error = ((d - x0) ** 2).sum(1).mean()
    for perturbed in (1.05 * d, d + 0.05, 0.5 * (d + x_hat)):
        assert error < ((perturbed - x0) ** 2).sum(1).mean()
    # The residual x0 - D is uncorrelated with functions of x_hat (orthogonality of the conditional mean).
    residual = x0 - d
    assert torch.all((residual * x_hat).mean(0).abs() < 4 * residual.std() * x_hat.std() / np.sqrt(20_000))


def test_limits_identity_near_the_data_and_mean_far_away() -> None:
    mixture = random_mixture(7)
    denoiser = GaussianMixtureDenoiser(mixture)
    x = torch.tensor(mixture.sample(50, rng=1).X)
    torch.testing.assert_close(denoiser(x, 0.0), x, rtol=0, atol=1e-12)
    torch.testing.assert_close(denoiser(x, 1e-6), x, rtol=0, atol=1e-9)
    mean = torch.tensor(mixture.weights @ mixture.means)
    torch.testing.assert_close(denoiser(x, 1e7), mean.expand(50, 3), rtol=0, atol=1e-6)
    # eps is computed directly and stays finite at sigma = 0, where it is 0.
    torch.testing.assert_close(denoiser.eps(x, 0.0), torch.zeros_like(x))


def test_float32_and_bfloat16_agree_with_float64() -> None:
    denoiser = GaussianMixtureDenoiser(mixture_of_8())
    x = torch.randn(256, 2, generator=torch.Generator().manual_seed(0), dtype=F64) * 3
    sigma = torch.logspace(-2, 2, 256, dtype=F64)
    exact = denoiser(x, sigma)
    single = denoiser(x.float(), sigma.float())
    assert single.dtype == torch.float32
    torch.testing.assert_close(single.double(), exact, rtol=1e-4, atol=1e-4)
    half = denoiser(x.bfloat16(), sigma.bfloat16())
    assert half.dtype == torch.bfloat16 and torch.isfinite(half.float()).all()
    # bfloat16 rounds the inputs (8 bits of mantissa); the computation itself is float32.
    torch.testing.assert_close(half.double(), denoiser(x.bfloat16().double(), sigma.bfloat16().double()), rtol=0.02, atol=0.05)


@pytest.mark.parametrize("path", [VPPath(), VEPath(), LinearPath(), EDMPath()], ids=repr)
def test_velocity_agrees_with_the_conversion_from_the_denoiser(path) -> None:
    denoiser = GaussianMixtureDenoiser(random_mixture(2, dim=2))
    x = torch.randn(12, 2, generator=torch.Generator().manual_seed(0), dtype=F64) * 2
    t = torch.linspace(path.t_min, path.t_max, 14, dtype=F64)[1:-1]
    s, sigma = path.s(t)[:, None], path.sigma(t)
    expected = velocity_from_x0(x, denoiser(x / s, sigma), t, path)
    torch.testing.assert_close(denoiser.velocity(x, t, path), expected, rtol=1e-7, atol=1e-7)


def test_linear_velocity_at_pure_noise_points_to_the_mean() -> None:
    mixture = random_mixture(5, dim=2)
    denoiser = GaussianMixtureDenoiser(mixture)
    x = torch.randn(8, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    mean = torch.tensor(mixture.weights @ mixture.means)
    torch.testing.assert_close(denoiser.velocity(x, 1.0, LinearPath()), x - mean)
    # At t = 0 the point is data: E[eps - x0 | x0] = -x0.
    torch.testing.assert_close(denoiser.velocity(x, 0.0, LinearPath()), -x, rtol=0, atol=1e-12)


def test_mixture_of_8() -> None:
    mixture = mixture_of_8(radius=3.0, std=0.1)
    assert mixture.n_components == 8 and mixture.dim == 2
    np.testing.assert_allclose(np.linalg.norm(mixture.means, axis=1), 3.0)
    np.testing.assert_allclose(mixture.covariances, 0.01 * np.eye(2)[None].repeat(8, 0))


def test_bad_input() -> None:
    denoiser = GaussianMixtureDenoiser(mixture_of_8())
    with pytest.raises(TypeError, match="GaussianMixture"):
        GaussianMixtureDenoiser(np.zeros((8, 2)))
    with pytest.raises(ValueError, match=r"shape \(batch, 2\)"):
        denoiser(torch.zeros(4, 3), 1.0)
    with pytest.raises(TypeError, match="floating-point"):
        denoiser(torch.zeros(4, 2, dtype=torch.int64), 1.0)
    with pytest.raises(ValueError, match="sigma"):
        denoiser.score(torch.zeros(4, 2), 0.0)
    with pytest.raises(ValueError, match=">= 0"):
        denoiser(torch.zeros(4, 2), -1.0)
    with pytest.raises(ValueError, match=">= 0"):
        denoiser(torch.zeros(4, 2), float("nan"))


# --------------------------------------------------------------------------- empirical denoiser
@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), log_sigma=st.floats(-1, 1.5))
def test_empirical_denoiser_is_the_mixture_denoiser_of_vanishing_components(seed: int, log_sigma: float) -> None:
    # Independent reference: a mixture of n equal-weight Gaussians of variance 1e-12 at the points
    # (eigen-decomposition, log-sum-exp responsibilities) is the empirical distribution to 1e-12.
    rng = np.random.default_rng(seed)
    points = rng.normal(scale=2.0, size=(7, 3))
    sigma = 10.0**log_sigma
    mixture = GaussianMixture(points, np.tile(1e-12 * np.eye(3), (7, 1, 1)), np.ones(7))
    x = torch.tensor(rng.normal(scale=3.0, size=(32, 3)))
    reference = GaussianMixtureDenoiser(mixture)(x, sigma)
    torch.testing.assert_close(EmpiricalDenoiser(torch.tensor(points))(x, sigma), reference, rtol=1e-9, atol=1e-9)


def test_empirical_denoiser_limits_shapes_and_equivariance() -> None:
    g = torch.Generator().manual_seed(0)
    data = torch.randn(50, 1, 4, 4, generator=g, dtype=F64)
    denoiser = EmpiricalDenoiser(data)
    assert len(denoiser) == 50 and denoiser.shape == (1, 4, 4) and "n=50" in repr(denoiser)
    x = data[:8] + 0.05 * torch.randn(8, 1, 4, 4, generator=g, dtype=F64)
    # Small noise: the nearest point; large noise: the data mean; per-sample sigmas mix both.
    torch.testing.assert_close(denoiser(x, 1e-3), data[:8])
    torch.testing.assert_close(denoiser(x, 1e4), data.mean(0).expand(8, 1, 4, 4), rtol=0, atol=1e-6)
    mixed = denoiser(x, torch.tensor([1e-3] * 4 + [1e4] * 4, dtype=F64))
    torch.testing.assert_close(mixed[:4], data[:4])
    # Every output is a convex combination: inside the points' bounding box.
    out = denoiser(torch.randn(64, 1, 4, 4, generator=g, dtype=F64) * 3, 1.0)
    assert (out >= data.amin(0) - 1e-12).all() and (out <= data.amax(0) + 1e-12).all()
    # Translating the data and the input together translates the output.
    shift = torch.randn(1, 1, 4, 4, generator=g, dtype=F64)
    torch.testing.assert_close(EmpiricalDenoiser(data + shift)(x + shift, 0.7), denoiser(x, 0.7) + shift)
    # float32 and bfloat16 inputs, also under bf16 autocast, agree with float64.
    for dtype in (torch.float32, torch.bfloat16):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = denoiser(x.to(dtype), 0.3)
        assert low.dtype == dtype
        torch.testing.assert_close(low.double(), denoiser(x.to(dtype).double(), 0.3), rtol=0, atol=0.02)


def test_empirical_denoiser_drives_a_sampler_onto_its_points() -> None:
    # Known answer: the probability-flow ODE of a finite data set ends on its points.
    data = torch.tensor([[-2.0, 0.0], [2.0, 0.0], [0.0, 3.0]], dtype=F64)
    out = heun_ode(EmpiricalDenoiser(data), EDMPath(0.002, 80.0), 30, (300, 2), torch.Generator().manual_seed(1), dtype=F64)
    nearest = torch.cdist(out.x, data).min(dim=1)
    assert nearest.values.max() < 0.01
    assert torch.bincount(nearest.indices, minlength=3).min() > 50  # every point is reached


def test_empirical_denoiser_bad_input() -> None:
    with pytest.raises(TypeError, match="data"):
        EmpiricalDenoiser(np.zeros((3, 2)))
    with pytest.raises(TypeError, match="floating-point"):
        EmpiricalDenoiser(torch.zeros(3, 2, dtype=torch.int64))
    for bad in (torch.zeros(0, 2), torch.zeros(3), torch.zeros(3, 0)):
        with pytest.raises(ValueError, match="shape"):
            EmpiricalDenoiser(bad)
    with pytest.raises(ValueError, match="finite"):
        EmpiricalDenoiser(torch.tensor([[0.0, float("nan")]]))
    denoiser = EmpiricalDenoiser(torch.zeros(3, 2))
    with pytest.raises(ValueError, match=r"x_hat must have shape \(batch, 2\)"):
        denoiser(torch.zeros(4, 3), 1.0)
    with pytest.raises(TypeError, match="x_hat"):
        denoiser(torch.zeros(4, 2, dtype=torch.int64), 1.0)
    with pytest.raises(ValueError, match="> 0"):
        denoiser(torch.zeros(4, 2), 0.0)
    with pytest.raises(ValueError, match="> 0"):
        denoiser(torch.zeros(4, 2), float("nan"))
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        denoiser(torch.zeros(4, 2), torch.ones(3))


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_empirical_denoiser_on_cuda(dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(0)
    denoiser = EmpiricalDenoiser(torch.randn(300, 1, 8, 8, generator=g))
    x = torch.randn(128, 1, 8, 8, generator=g, dtype=F64) * 2
    sigma = torch.logspace(-1, 1, 128, dtype=F64)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = denoiser(x.to("cuda", dtype), sigma.to("cuda", dtype))
    assert out.device.type == "cuda" and out.dtype == dtype
    reference = denoiser(x.to(dtype).double(), sigma.to(dtype).double())
    torch.testing.assert_close(out.double().cpu(), reference, rtol=0, atol=1e-3 if dtype == torch.float32 else 0.03)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_on_cuda(dtype: torch.dtype) -> None:
    denoiser = GaussianMixtureDenoiser(random_mixture(3, dim=2))
    x = torch.randn(512, 2, generator=torch.Generator().manual_seed(0), dtype=F64) * 2
    sigma = torch.logspace(-2, 2, 512, dtype=F64)
    out = denoiser(x.to("cuda", dtype), sigma.to("cuda", dtype))
    assert out.device.type == "cuda" and out.dtype == dtype
    reference = denoiser(x.to(dtype).double(), sigma.to(dtype).double())
    tolerance = 1e-4 if dtype == torch.float32 else 0.05
    torch.testing.assert_close(out.double().cpu(), reference, rtol=tolerance, atol=tolerance)
