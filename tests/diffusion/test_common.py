"""Tests of mlnotes.diffusion.common: paths, conversions, EDM preconditioning, samplers (Part 6's footing)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mlnotes.datasets import GaussianMixture
from mlnotes.diffusion.analytic import GaussianMixtureDenoiser, mixture_of_8
from mlnotes.diffusion.common import (
    DiscreteVPPath,
    EDMPath,
    EDMPrecond,
    LinearPath,
    NoisePath,
    Samples,
    VEPath,
    VPPath,
    ddim,
    ddpm_ancestral,
    denoiser_from_eps,
    denoiser_from_score,
    denoiser_from_velocity,
    edm_coefficients,
    edm_precondition,
    edm_sigmas,
    eps_from_x0,
    eps_model_from_denoiser,
    euler_maruyama_reverse_sde,
    euler_ode,
    heun_ode,
    rectified_flow_euler,
    reflow_pairs,
    score_from_x0,
    score_model_from_denoiser,
    velocity_from_x0,
    velocity_model_from_denoiser,
    x0_from_eps,
    x0_from_score,
    x0_from_velocity,
)
from mlnotes.metrics import noise_floor, sliced_wasserstein

PATHS = {
    "vp": VPPath(),
    "ve": VEPath(),
    "linear": LinearPath(),
    "edm": EDMPath(),
}
F64 = torch.float64


def times_inside(path: NoisePath, n: int = 7) -> torch.Tensor:
    """Times strictly inside the sampling range, where every quantity is finite."""
    return torch.linspace(path.t_min, path.t_max, n + 2, dtype=F64)[1:-1]


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def ring() -> tuple[GaussianMixture, GaussianMixtureDenoiser]:
    mixture = mixture_of_8()
    return mixture, GaussianMixtureDenoiser(mixture)


# --------------------------------------------------------------------------- paths
@pytest.mark.parametrize("name", PATHS)
def test_derivatives_match_finite_differences(name: str) -> None:
    path = PATHS[name]
    t = times_inside(path)
    h = 1e-6 * (path.t_max - path.t_min)
    for value, derivative in ((path.s, path.ds_dt), (path.sigma, path.dsigma_dt), (path.noise_scale, path.dnoise_scale_dt)):
        numeric = (value(t + h) - value(t - h)) / (2 * h)
        torch.testing.assert_close(derivative(t), numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", PATHS)
def test_sigma_inv_inverts_sigma_and_noise_scale_is_s_sigma(name: str) -> None:
    path = PATHS[name]
    t = times_inside(path)
    torch.testing.assert_close(path.sigma_inv(path.sigma(t)), t, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(path.noise_scale(t), path.s(t) * path.sigma(t), rtol=1e-12, atol=0)
    assert torch.all(torch.diff(path.sigma(t)) > 0), "noise grows with t"


def test_path_definitions() -> None:
    t = torch.tensor([0.1, 0.5, 0.9], dtype=F64)
    # Linear path: x_t = (1 - t) x0 + t eps.
    torch.testing.assert_close(PATHS["linear"].s(t), 1 - t)
    torch.testing.assert_close(PATHS["linear"].noise_scale(t), t)
    # VE: geometric from sigma_min to sigma_max.
    ve = VEPath(0.01, 50.0)
    torch.testing.assert_close(ve.sigma(t), 0.01 * (5000.0**t))
    assert float(ve.sigma(0.0)) == pytest.approx(0.01) and float(ve.sigma(1.0)) == pytest.approx(50.0)
    # EDM: s = 1, sigma = t.
    torch.testing.assert_close(PATHS["edm"].sigma(t), t)
    torch.testing.assert_close(PATHS["edm"].s(t), torch.ones_like(t))
    # VP: variance preserving, s^2 + (s sigma)^2 = 1, s = sqrt(alpha_bar), alpha_bar = exp(-int beta).
    vp = VPPath(0.1, 20.0)
    torch.testing.assert_close(vp.s(t) ** 2 + vp.noise_scale(t) ** 2, torch.ones_like(t))
    torch.testing.assert_close(vp.alpha_bar(t), torch.exp(-(0.1 * t + 0.5 * 19.9 * t**2)))
    torch.testing.assert_close(vp.sigma(t), torch.sqrt((1 - vp.alpha_bar(t)) / vp.alpha_bar(t)))


@pytest.mark.parametrize("name", PATHS)
def test_sample_xt_follows_the_definition_and_the_marginal(name: str) -> None:
    path = PATHS[name]
    t = float(times_inside(path, 3)[1])
    x0 = torch.tensor([[1.5, -2.0]], dtype=F64).expand(40_000, 2)
    x_t, eps = path.sample_xt(x0, t, gen(1))
    s, sigma = float(path.s(t)), float(path.sigma(t))
    torch.testing.assert_close(x_t, s * (x0 + sigma * eps))
    # The marginal given x0: N(s x0, (s sigma)^2 I), checked on 40k draws (4 standard errors).
    std = s * sigma
    assert torch.allclose(x_t.mean(0), s * x0[0], atol=4 * std / math.sqrt(40_000))
    assert torch.allclose(x_t.std(0), torch.full((2,), std, dtype=F64), rtol=4 * math.sqrt(0.5 / 40_000))
    # Per-sample times are allowed.
    x_t2, eps2 = path.sample_xt(x0[:3], torch.full((3,), t, dtype=F64), gen(1))
    torch.testing.assert_close(x_t2, s * (x0[:3] + sigma * eps2))


def test_linear_path_reaches_pure_noise_at_one() -> None:
    x0 = torch.randn(5, 2, generator=gen(0), dtype=F64)
    x_t, eps = LinearPath().sample_xt(x0, 1.0, gen(1))
    torch.testing.assert_close(x_t, eps)


def test_discrete_vp_schedule_is_ddpm_and_tends_to_the_continuous_path() -> None:
    path = DiscreteVPPath(1000)
    assert float(path.betas[0]) == pytest.approx(1e-4) and float(path.betas[-1]) == pytest.approx(0.02)
    torch.testing.assert_close(path.alpha_bars, torch.cumprod(1 - path.betas, 0))
    torch.testing.assert_close(path.sigmas, torch.sqrt((1 - path.alpha_bars) / path.alpha_bars))
    # The continuous limit: alpha_bar_i -> exp(-int_0^{i/T} beta), with an error of order 1/T.
    errors = []
    for T in (100, 1000, 10_000):
        discrete = DiscreteVPPath(T)
        i = torch.arange(1, T + 1, dtype=F64)
        errors.append(float((discrete.alpha_bars - discrete.continuous.alpha_bar(i / T)).abs().max()))
    assert errors[1] < 1e-3
    assert 8 < errors[0] / errors[1] < 12 and 8 < errors[1] / errors[2] < 12
    steps = path.timesteps(50)
    assert steps[0] == 1000 and steps[-1] == 1 and len(torch.unique(steps)) == 50 and torch.all(torch.diff(steps) < 0)
    assert torch.equal(path.timesteps(1000), torch.arange(1000, 0, -1))
    x0 = torch.ones(4, 2, dtype=F64)
    x_t, eps = path.sample_xt(x0, 500, gen(0))
    torch.testing.assert_close(x_t, path.scales[499] * (x0 + path.sigmas[499] * eps))


# --------------------------------------------------------------------------- conversions
finite = st.floats(-5, 5, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(sorted(PATHS)),
    fraction=st.floats(0.01, 0.99),
    values=st.lists(finite, min_size=8, max_size=8),
)
def test_conversions_round_trip(name: str, fraction: float, values: list[float]) -> None:
    path = PATHS[name]
    t = torch.tensor(path.t_min + fraction * (path.t_max - path.t_min), dtype=F64)
    sigma = path.sigma(t)
    x_hat = torch.tensor(values[:4], dtype=F64).reshape(2, 2)
    x0 = torch.tensor(values[4:], dtype=F64).reshape(2, 2)
    eps = eps_from_x0(x_hat, x0, sigma)
    torch.testing.assert_close(x0_from_eps(x_hat, eps, sigma), x0, rtol=1e-9, atol=1e-9 * (1 + float(sigma)))
    score = score_from_x0(x_hat, x0, sigma)
    torch.testing.assert_close(score, -eps / sigma)
    torch.testing.assert_close(x0_from_score(x_hat, score, sigma), x0, rtol=1e-9, atol=1e-9 * (1 + float(sigma)))
    x = path.s(t) * x_hat
    v = velocity_from_x0(x, x0, t, path)
    torch.testing.assert_close(x0_from_velocity(x, v, t, path), x0, rtol=1e-7, atol=1e-7 * (1 + float(sigma)))
    # EDM eq. 4 in its score form: dx/dt = (s'/s) x - s^2 sigma' sigma grad_x log p(x / s; sigma).
    s, ds, dsigma = path.s(t), path.ds_dt(t), path.dsigma_dt(t)
    torch.testing.assert_close(v, ds / s * x - s**2 * dsigma * sigma * (score / s), rtol=1e-9, atol=1e-9)


@settings(max_examples=30, deadline=None)
@given(t=st.floats(0.01, 0.99), seed=st.integers(0, 1000))
def test_linear_velocity_is_eps_minus_x0(t: float, seed: int) -> None:
    x0 = torch.randn(3, 2, generator=gen(seed), dtype=F64)
    x_t, eps = LinearPath().sample_xt(x0, t, gen(seed + 1))
    torch.testing.assert_close(velocity_from_x0(x_t, x0, t, LinearPath()), eps - x0, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("name", PATHS)
def test_model_wrappers_invert_each_other(name: str, ring: tuple) -> None:
    _, denoiser = ring
    path = PATHS[name]
    x_hat = torch.randn(6, 2, generator=gen(3), dtype=F64) * 3
    t = times_inside(path, 6)
    sigma = path.sigma(t)
    reference = denoiser(x_hat, sigma)
    for forward, backward in (
        (eps_model_from_denoiser, denoiser_from_eps),
        (score_model_from_denoiser, denoiser_from_score),
        (velocity_model_from_denoiser, denoiser_from_velocity),
    ):
        model = forward(denoiser, path)
        torch.testing.assert_close(backward(model, path)(x_hat, sigma), reference, rtol=1e-7, atol=1e-7)
    # The score model is the score of the *scaled* x_t = s x_hat: grad_x log p_t(x) = grad log p(x/s; sigma) / s.
    s = path.s(t)[:, None]
    score = score_model_from_denoiser(denoiser, path)(s * x_hat, t)
    torch.testing.assert_close(score, denoiser.score(x_hat, sigma) / s)
    eps = eps_model_from_denoiser(denoiser, path)(s * x_hat, t)
    torch.testing.assert_close(eps, denoiser.eps(x_hat, sigma), rtol=1e-7, atol=1e-9)


def test_wrappers_expose_the_parameters_of_a_network() -> None:
    net = torch.nn.Linear(2, 2)
    wrapped = denoiser_from_eps(lambda x, t: net(x), VPPath())
    assert list(wrapped.parameters()) == []  # a plain function has none
    assert len(list(denoiser_from_velocity(_TimeNet(), LinearPath()).parameters())) == 2


class _TimeNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(3, 2)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.linear(torch.cat([x, t[:, None]], dim=1))


# --------------------------------------------------------------------------- EDM preconditioning
@pytest.mark.parametrize("sigma", [0.002, 0.1, 0.5, 3.0, 80.0])
def test_edm_coefficients_give_unit_variance_input_and_target(sigma: float) -> None:
    sigma_data = 0.5
    c_skip, c_out, c_in, c_noise = edm_coefficients(torch.tensor(sigma, dtype=F64), sigma_data)
    # Data of std sigma_data: x_hat has variance sigma_d^2 + sigma^2, the target F = (x0 - c_skip x_hat) / c_out.
    assert float(c_in**2 * (sigma_data**2 + sigma**2)) == pytest.approx(1.0)
    target_variance = ((1 - c_skip) ** 2 * sigma_data**2 + c_skip**2 * sigma**2) / c_out**2
    assert float(target_variance) == pytest.approx(1.0)
    assert float(c_noise) == pytest.approx(math.log(sigma) / 4)


def test_edm_precondition_with_the_ideal_raw_network_is_the_ideal_denoiser(ring: tuple) -> None:
    _, denoiser = ring
    sigma_data = 1.4

    def ideal_raw(x_in: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
        sigma = torch.exp(4 * c_noise)
        c_skip, c_out, c_in, _ = edm_coefficients(sigma, sigma_data)
        x_hat = x_in / c_in[:, None]
        return (denoiser(x_hat, sigma) - c_skip[:, None] * x_hat) / c_out[:, None]

    precond = edm_precondition(ideal_raw, sigma_data)
    assert isinstance(precond, EDMPrecond)
    x_hat = torch.randn(8, 2, generator=gen(0), dtype=F64) * 2
    sigma = torch.logspace(-2, 1.5, 8, dtype=F64)
    torch.testing.assert_close(precond(x_hat, sigma), denoiser(x_hat, sigma))
    # With a zero network the output is c_skip x: the identity at small sigma, zero at large sigma.
    zero = edm_precondition(lambda x, c: torch.zeros_like(x), 0.5)
    torch.testing.assert_close(zero(x_hat, torch.full((8,), 1e-4, dtype=F64)), x_hat, rtol=1e-6, atol=1e-7)


def test_edm_sigmas() -> None:
    sigmas = edm_sigmas(18)
    assert sigmas.shape == (19,) and sigmas[-1] == 0
    assert float(sigmas[0]) == pytest.approx(80.0) and float(sigmas[-2]) == pytest.approx(0.002)
    assert torch.all(torch.diff(sigmas) < 0)
    torch.testing.assert_close(edm_sigmas(5, 1.0, 5.0, rho=1.0), torch.tensor([5.0, 4, 3, 2, 1, 0], dtype=F64))
    # rho = 7 spends more steps at low noise than rho = 1.
    assert float(edm_sigmas(10, rho=7.0)[5]) < float(edm_sigmas(10, rho=1.0)[5])


# --------------------------------------------------------------------------- samplers: exact relations
def literal_ddim(denoiser, path: DiscreteVPPath, n_steps: int, shape, generator, eta: float) -> torch.Tensor:
    """DDIM as Song et al. (2021a) eq. 12 write it, in the scaled x and with eps-prediction (float64)."""

    def eps_model(x: torch.Tensor, ab: float) -> torch.Tensor:
        """The eps of x = sqrt(ab) x0 + sqrt(1 - ab) eps, from the exact denoiser."""
        sigma = math.sqrt((1 - ab) / ab)
        x_hat = x / math.sqrt(ab)
        return (x_hat - denoiser(x_hat, torch.full((len(x),), sigma, dtype=F64))) / sigma

    x = torch.randn(shape, generator=generator).to(F64)
    steps = path.timesteps(n_steps).tolist()
    for i, t in enumerate(steps):
        ab = float(path.alpha_bars[t - 1])
        ab_prev = float(path.alpha_bars[steps[i + 1] - 1]) if i + 1 < len(steps) else 1.0
        eps = eps_model(x, ab)
        x0 = (x - math.sqrt(1 - ab) * eps) / math.sqrt(ab)
        sigma_t = eta * math.sqrt((1 - ab_prev) / (1 - ab)) * math.sqrt(1 - ab / ab_prev)
        x = math.sqrt(ab_prev) * x0 + math.sqrt(1 - ab_prev - sigma_t**2) * eps
        if sigma_t > 0:
            x = x + sigma_t * torch.randn(shape, generator=generator).to(F64)
    return x


@pytest.mark.parametrize("eta", [0.0, 0.5])
def test_ddim_equals_the_papers_update(ring: tuple, eta: float) -> None:
    _, denoiser = ring
    path = DiscreteVPPath()
    ours, nfe = ddim(denoiser, path, 20, (64, 2), gen(5), eta=eta, dtype=F64)
    torch.testing.assert_close(ours, literal_ddim(denoiser, path, 20, (64, 2), gen(5), eta), rtol=1e-6, atol=1e-6)
    assert nfe == 20


@pytest.mark.parametrize("n_steps", [1000, 50])
def test_ddim_with_eta_one_is_ddpm_ancestral(ring: tuple, n_steps: int) -> None:
    _, denoiser = ring
    path = DiscreteVPPath()
    shape = (32, 2)
    a, nfe_a = ddpm_ancestral(denoiser, path, n_steps, shape, gen(2), dtype=F64)
    b, nfe_b = ddim(denoiser, path, n_steps, shape, gen(2), eta=1.0, dtype=F64)
    assert nfe_a == nfe_b == n_steps
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


def test_ddim_is_euler_in_sigma(ring: tuple) -> None:
    """DDIM with eta = 0 is Euler's method for dx_hat/dsigma = (x_hat - D) / sigma (Karras et al. 2022)."""
    _, denoiser = ring
    # On the EDM path (s = 1, sigma = t) DDIM's evenly spaced times are EDM's noise levels with rho = 1.
    a, _ = ddim(denoiser, EDMPath(), 12, (64, 2), gen(4), dtype=F64)
    b, _ = euler_ode(denoiser, EDMPath(), 12, (64, 2), gen(4), rho=1.0, dtype=F64)
    torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
    # On the VP path DDIM is path-independent in sigma: its output is that of Euler in sigma on the same levels.
    vp = VPPath()
    sigmas = vp.sigma(torch.linspace(vp.t_max, vp.t_min, 12, dtype=F64)).tolist() + [0.0]
    x = math.sqrt(1 + sigmas[0] ** 2) * torch.randn((64, 2), generator=gen(4)).to(F64)
    for sigma, sigma_next in zip(sigmas[:-1], sigmas[1:]):
        x = x + (sigma_next - sigma) * (x - denoiser(x, torch.full((64,), sigma, dtype=F64))) / sigma
    torch.testing.assert_close(ddim(denoiser, vp, 12, (64, 2), gen(4), dtype=F64)[0], x, rtol=1e-9, atol=1e-9)
    # Euler in the VP path's own time t is a different method (EDM: the path matters for the ODE's curvature).
    c, _ = euler_ode(denoiser, vp, 12, (64, 2), gen(4), rho=1.0, dtype=F64)
    assert (c - b).abs().max() > 1e-3


@pytest.mark.parametrize("sampler", ["euler", "heun", "ddim"])
def test_ode_samplers_are_deterministic_given_the_generator(ring: tuple, sampler: str) -> None:
    _, denoiser = ring
    run = {
        "euler": lambda g: euler_ode(denoiser, EDMPath(), 8, (16, 2), g),
        "heun": lambda g: heun_ode(denoiser, VPPath(), 8, (16, 2), g),
        "ddim": lambda g: ddim(denoiser, DiscreteVPPath(), 8, (16, 2), g),
    }[sampler]
    first, second, other = run(gen(11)), run(gen(11)), run(gen(12))
    assert torch.equal(first.x, second.x) and not torch.equal(first.x, other.x)


def test_heun_costs_two_evaluations_per_step_but_the_last() -> None:
    calls = []

    def denoiser(x, sigma):
        calls.append(sigma[0].item())
        return torch.zeros_like(x)

    result = heun_ode(denoiser, EDMPath(), 18, (4, 2), gen(0))
    assert isinstance(result, Samples) and result.nfe == 35 == len(calls)
    assert euler_ode(denoiser, EDMPath(), 18, (4, 2), gen(0)).nfe == 18


def test_pf_ode_maps_the_prior_to_a_gaussian_in_closed_form() -> None:
    """Data N(mu, Sigma): the PF-ODE moves x - mu by (Sigma + sigma^2 I)^1/2 (Sigma + sigma_max^2 I)^-1/2."""
    cov = np.array([[0.5, 0.3], [0.3, 1.2]])
    mu = np.array([1.0, -0.5])
    denoiser = GaussianMixtureDenoiser(GaussianMixture(mu[None], cov[None]))
    sigma_min, sigma_max = 0.002, 80.0
    lam, vec = np.linalg.eigh(cov)

    def matrix(f) -> np.ndarray:
        return vec @ np.diag(f(lam)) @ vec.T

    # Then the last step applies D at sigma_min: mu + Sigma (Sigma + sigma_min^2)^-1 (x - mu).
    transport = matrix(lambda l: l / np.sqrt(l + sigma_min**2) / np.sqrt(l + sigma_max**2))
    z = torch.randn((500, 2), generator=gen(9)).to(F64).numpy()
    x_start = math.sqrt(1 + sigma_max**2) * z
    expected = mu + (x_start - mu) @ transport.T
    for path in (EDMPath(), VPPath(), LinearPath()):
        errors = [
            np.abs(heun_ode(denoiser, path, n_steps, (500, 2), gen(9), dtype=F64).x.numpy() - expected).max()
            for n_steps in (64, 128)
        ]
        assert errors[1] < 3e-3, f"{path!r}: {errors}"
        assert 3.0 < errors[0] / errors[1] < 5.0, f"Heun is second order: {errors}"
    # For data N(0, I) the prior N(0, (1 + sigma_max^2) I) is exact and the samples are N(0, I).
    standard = GaussianMixtureDenoiser(GaussianMixture(np.zeros((1, 2)), np.ones(1)))
    out, _ = heun_ode(standard, EDMPath(), 40, (20_000, 2), gen(1), dtype=F64)
    np.testing.assert_allclose(np.cov(out.numpy().T), np.eye(2), atol=0.04)


# --------------------------------------------------------------------------- samplers reproduce the mixture
N_SAMPLES = 2000


@pytest.fixture(scope="module")
def floor_and_reference(ring: tuple) -> tuple[float, np.ndarray]:
    mixture, _ = ring
    floor = noise_floor(
        lambda x, y: sliced_wasserstein(x, y, 64, rng=0), lambda n, rng: mixture.sample(n, rng=rng).X,
        N_SAMPLES, repeats=6, rng=0,
    )
    return floor.mean, mixture.sample(N_SAMPLES, rng=123).X


SAMPLERS = {
    "ddpm_200": lambda d: ddpm_ancestral(d, DiscreteVPPath(), 200, (N_SAMPLES, 2), gen(0)),
    "ddim_50": lambda d: ddim(d, DiscreteVPPath(), 50, (N_SAMPLES, 2), gen(0)),
    "ddim_eta1_100": lambda d: ddim(d, VPPath(), 100, (N_SAMPLES, 2), gen(0), eta=1.0),
    "em_vp_200": lambda d: euler_maruyama_reverse_sde(d, VPPath(), 200, (N_SAMPLES, 2), gen(0)),
    "em_ve_200": lambda d: euler_maruyama_reverse_sde(d, VEPath(), 200, (N_SAMPLES, 2), gen(0)),
    "euler_edm_50": lambda d: euler_ode(d, EDMPath(), 50, (N_SAMPLES, 2), gen(0)),
    "heun_edm_18": lambda d: heun_ode(d, EDMPath(), 18, (N_SAMPLES, 2), gen(0)),
    "heun_ve_18": lambda d: heun_ode(d, VEPath(), 18, (N_SAMPLES, 2), gen(0)),
    "rectified_flow_20": lambda d: rectified_flow_euler(
        lambda x, t: d.velocity(x, t, LinearPath()), 20, (N_SAMPLES, 2), gen(0)
    ),
}


@pytest.mark.parametrize("name", SAMPLERS)
def test_sampler_with_the_exact_denoiser_reproduces_the_mixture(ring: tuple, floor_and_reference: tuple, name: str) -> None:
    _, denoiser = ring
    floor, reference = floor_and_reference
    samples, nfe = SAMPLERS[name](denoiser)
    assert samples.shape == (N_SAMPLES, 2) and samples.dtype == torch.float32 and nfe >= 18
    distance = sliced_wasserstein(samples.numpy(), reference, 64, rng=0)
    assert distance < 2.0 * floor, f"{name}: sliced W2 {distance:.4f} vs noise floor {floor:.4f}"


def test_too_few_steps_are_measurably_worse(ring: tuple, floor_and_reference: tuple) -> None:
    """The check above can fail: a sampler with too few steps lands far above the floor."""
    _, denoiser = ring
    floor, reference = floor_and_reference
    for samples, _ in (ddim(denoiser, DiscreteVPPath(), 3, (N_SAMPLES, 2), gen(0)),
                       euler_ode(denoiser, EDMPath(), 3, (N_SAMPLES, 2), gen(0))):
        assert sliced_wasserstein(samples.numpy(), reference, 64, rng=0) > 4 * floor


def test_reflow_pairs_couple_noise_with_flow_samples(ring: tuple) -> None:
    _, denoiser = ring
    velocity = lambda x, t: denoiser.velocity(x, t, LinearPath())  # noqa: E731
    noise, samples = reflow_pairs(velocity, 256, (2,), gen(3), n_steps=30)
    again, nfe = rectified_flow_euler(velocity, 30, (256, 2), gen(99), noise=noise)
    assert nfe == 30 and torch.equal(samples, again)
    assert torch.equal(noise, torch.randn((256, 2), generator=gen(3)))
    # One Euler step of the exact velocity from t = 1 lands on the mixture mean (0): x - (x - E[x0]).
    one_step, _ = rectified_flow_euler(velocity, 1, (256, 2), gen(3), dtype=F64)
    torch.testing.assert_close(one_step, torch.zeros_like(one_step), atol=1e-12, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_samplers_keep_the_dtype(ring: tuple, dtype: torch.dtype) -> None:
    _, denoiser = ring
    for run in (
        lambda: ddpm_ancestral(denoiser, DiscreteVPPath(), 10, (8, 2), gen(0), dtype=dtype),
        lambda: ddim(denoiser, VPPath(), 10, (8, 2), gen(0), dtype=dtype, eta=0.3),
        lambda: euler_maruyama_reverse_sde(denoiser, VPPath(), 10, (8, 2), gen(0), dtype=dtype),
        lambda: heun_ode(denoiser, EDMPath(), 10, (8, 2), gen(0), dtype=dtype),
        lambda: rectified_flow_euler(lambda x, t: denoiser.velocity(x, t, LinearPath()), 10, (8, 2), gen(0), dtype=dtype),
    ):
        x, _ = run()
        assert x.dtype == dtype and torch.isfinite(x.float()).all()
    # The noise is drawn in float32 and cast, so every dtype follows the same trajectories.
    x, _ = heun_ode(denoiser, EDMPath(), 18, (256, 2), gen(0), dtype=dtype)
    single, _ = heun_ode(denoiser, EDMPath(), 18, (256, 2), gen(0), dtype=torch.float32)
    tolerance = 1e-6 if dtype == torch.float64 else 0.02
    assert float((x.double() - single.double()).abs().median()) < tolerance


# --------------------------------------------------------------------------- bad input
def test_bad_input_raises(ring: tuple) -> None:
    _, denoiser = ring
    with pytest.raises(ValueError, match="n_steps"):
        ddim(denoiser, VPPath(), 0, (4, 2), gen())
    with pytest.raises(ValueError, match="n_steps"):
        heun_ode(denoiser, EDMPath(), 2.5, (4, 2), gen())
    with pytest.raises(ValueError, match="n_timesteps"):
        ddpm_ancestral(denoiser, DiscreteVPPath(100), 101, (4, 2), gen())
    with pytest.raises(TypeError, match="DiscreteVPPath"):
        ddpm_ancestral(denoiser, VPPath(), 10, (4, 2), gen())
    with pytest.raises(ValueError, match="shape"):
        euler_ode(denoiser, EDMPath(), 4, (0, 2), gen())
    with pytest.raises(TypeError, match="generator"):
        euler_ode(denoiser, EDMPath(), 4, (4, 2), 0)
    with pytest.raises(TypeError, match="path"):
        euler_ode(denoiser, "edm", 4, (4, 2), gen())
    with pytest.raises(ValueError, match="eta"):
        ddim(denoiser, VPPath(), 4, (4, 2), gen(), eta=-0.1)
    with pytest.raises(ValueError, match="sigma_max"):
        edm_sigmas(4, sigma_min=1.0, sigma_max=0.5)
    with pytest.raises(ValueError, match="sigma_min"):
        heun_ode(denoiser, EDMPath(), 4, (4, 2), gen(), sigma_min=0.0)
    with pytest.raises(ValueError, match="sigma_max"):
        VEPath(1.0, 0.5)
    with pytest.raises(ValueError, match="t_max"):
        LinearPath(t_max=1.0)
    with pytest.raises(ValueError, match="input's shape"):
        euler_ode(lambda x, s: x[:, :1], EDMPath(), 4, (4, 2), gen())
    with pytest.raises(FloatingPointError, match="NaN"):
        euler_ode(lambda x, s: x * float("nan"), EDMPath(), 4, (4, 2), gen())
    with pytest.raises(ValueError, match="noise"):
        rectified_flow_euler(lambda x, t: x, 4, (4, 2), gen(), noise=torch.zeros(3, 2))
    with pytest.raises(ValueError, match="timesteps"):
        DiscreteVPPath().sample_xt(torch.zeros(2, 2), 0, gen())
    with pytest.raises(ValueError, match="t must"):
        VPPath().sample_xt(torch.zeros(2, 2), torch.ones(3), gen())
    with pytest.raises(TypeError, match="dtype"):
        ddim(denoiser, VPPath(), 4, (4, 2), gen(), dtype=torch.int64)


# --------------------------------------------------------------------------- GPU
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_samplers_on_cuda(ring: tuple, floor_and_reference: tuple, dtype: torch.dtype) -> None:
    mixture, denoiser = ring
    floor, reference = floor_and_reference
    # The initial noise is drawn in float32 and cast: float64 and `dtype` start from the same points.
    x, nfe = heun_ode(denoiser, EDMPath(), 18, (N_SAMPLES, 2), torch.Generator("cuda").manual_seed(0), dtype=dtype)
    exact, _ = heun_ode(denoiser, EDMPath(), 18, (N_SAMPLES, 2), torch.Generator("cuda").manual_seed(0), dtype=F64)
    assert x.device.type == "cuda" and x.dtype == dtype and nfe == 35
    tolerance = 1e-3 if dtype == torch.float32 else 0.1
    assert float((x.double() - exact).abs().median()) < tolerance
    for run in (
        lambda g: ddpm_ancestral(denoiser, DiscreteVPPath(), 200, (N_SAMPLES, 2), g, dtype=dtype),
        lambda g: ddim(denoiser, DiscreteVPPath(), 50, (N_SAMPLES, 2), g, dtype=dtype),
        lambda g: euler_maruyama_reverse_sde(denoiser, VPPath(), 200, (N_SAMPLES, 2), g, dtype=dtype),
        lambda g: rectified_flow_euler(lambda x, t: denoiser.velocity(x, t, LinearPath()), 20, (N_SAMPLES, 2), g, dtype=dtype),
    ):
        samples, _ = run(torch.Generator("cuda").manual_seed(0))
        assert samples.device.type == "cuda" and samples.dtype == dtype
        distance = sliced_wasserstein(samples.float().cpu().numpy(), reference, 64, rng=0)
        assert distance < (2.0 if dtype == torch.float32 else 3.0) * floor
