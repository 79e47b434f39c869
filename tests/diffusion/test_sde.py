"""Tests of mlnotes.diffusion.sde (chapter book/diffusion/sde.ipynb): forward SDE, reverse SDE, probability-flow ODE."""

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
    LinearPath,
    VEPath,
    VPPath,
    ddpm_ancestral,
    edm_sigmas,
    euler_maruyama_reverse_sde,
    heun_ode,
    score_model_from_denoiser,
)
from mlnotes.diffusion.sde import (
    StepCoefficients,
    check_exercise_1,
    check_exercise_2,
    check_exercise_3,
    ddpm_step_coefficients,
    drift_and_diffusion,
    euler_maruyama_forward_moments,
    euler_maruyama_step_coefficients,
    forward_trajectory,
    marginal_log_prob,
    mixture_cdf,
    noised_mixture,
    reverse_trajectory,
    run_step_coefficients,
    transition_kernel,
)
from mlnotes.metrics import noise_floor, sliced_wasserstein

RING = mixture_of_8()
LINE = GaussianMixture([[-2.0], [0.5], [2.5]], [0.3, 0.4, 0.25], [0.3, 0.5, 0.2])  # a 1-D mixture
PATHS = [VPPath(), VEPath(), LinearPath(), EDMPath()]


def _interior(path, u: float) -> float:
    """A time strictly inside the path's sampling range, at fraction u in [0, 1]."""
    return path.t_min + (0.05 + 0.9 * u) * (path.t_max - path.t_min)


# --------------------------------------------------------------------------- drift and diffusion
def test_vp_and_ve_coefficients_are_the_known_formulas():
    vp, ve = VPPath(), VEPath(0.01, 50.0)
    t = torch.linspace(0, 1, 101, dtype=torch.float64)
    f, g = drift_and_diffusion(vp, t)
    assert torch.allclose(f, -0.5 * vp.beta(t), rtol=1e-12) and torch.allclose(g**2, vp.beta(t), rtol=1e-10)
    assert float(g[0]) ** 2 == pytest.approx(0.1)  # the t = 0 limit of 2 s^2 sigma sigma'
    f, g = drift_and_diffusion(ve, t)
    assert torch.all(f == 0)
    assert torch.allclose(g**2, 2 * math.log(5000.0) * ve.sigma(t) ** 2, rtol=1e-12)  # d sigma^2 / dt


@pytest.mark.parametrize("path", PATHS, ids=lambda p: type(p).__name__)
@given(u=st.floats(0.0, 1.0))
@settings(max_examples=15, deadline=None)
def test_mean_and_variance_of_the_path_solve_the_moment_equations(path, u):
    # Golden, by finite differences: the linear SDE's mean m = s obeys m' = f m, its variance
    # v = s^2 sigma^2 obeys v' = 2 f v + g^2.
    t, h = _interior(path, u), 1e-6 * (path.t_max - path.t_min)
    f, g = (float(v) for v in drift_and_diffusion(path, t))
    ds = (float(path.s(t + h)) - float(path.s(t - h))) / (2 * h)
    variance = lambda r: float(path.noise_scale(r)) ** 2  # noqa: E731
    dv = (variance(t + h) - variance(t - h)) / (2 * h)
    assert ds == pytest.approx(f * float(path.s(t)), rel=1e-6, abs=1e-9)
    assert dv == pytest.approx(2 * f * variance(t) + g**2, rel=1e-5, abs=1e-9)


def test_drift_and_diffusion_rejects_times_outside_the_domain():
    with pytest.raises(ValueError, match="domain"):
        drift_and_diffusion(LinearPath(), 1.0)  # s = 0
    with pytest.raises(ValueError, match="NaN"):
        drift_and_diffusion(VPPath(), float("nan"))
    with pytest.raises(TypeError):
        drift_and_diffusion("vp", 0.5)
    with pytest.raises(TypeError):
        drift_and_diffusion(VPPath(), "0.5")


# --------------------------------------------------------------------------- transition kernel and marginals
def test_vp_transition_kernel_is_song_et_al_eq_29():
    vp = VPPath()
    for u, t in [(0.0, 0.3), (0.2, 0.9), (0.5, 0.5)]:
        integral = float(vp.integrated_beta(t) - vp.integrated_beta(u))
        a, b = transition_kernel(vp, u, t)
        assert float(a) == pytest.approx(math.exp(-0.5 * integral), rel=1e-12)
        assert float(b) ** 2 == pytest.approx(1 - math.exp(-integral), rel=1e-10, abs=1e-15)
    a, b = transition_kernel(VEPath(0.01, 50.0), 0.25, 0.75)
    assert float(a) == 1.0 and float(b) ** 2 == pytest.approx(0.01**2 * (5000**1.5 - 5000**0.5), rel=1e-10)


@pytest.mark.parametrize("path", PATHS, ids=lambda p: type(p).__name__)
@given(u=st.floats(0.0, 1.0), v=st.floats(0.0, 1.0), w=st.floats(0.0, 1.0))
@settings(max_examples=15, deadline=None)
def test_transition_kernels_compose(path, u, v, w):
    # Chapman-Kolmogorov for Gaussian kernels: (a1, b1) then (a2, b2) is (a2 a1, sqrt(a2^2 b1^2 + b2^2)).
    t0, t1, t2 = sorted(_interior(path, r) for r in (u, v, w))
    a1, b1 = transition_kernel(path, t0, t1)
    a2, b2 = transition_kernel(path, t1, t2)
    a, b = transition_kernel(path, t0, t2)
    assert float(a2 * a1) == pytest.approx(float(a), rel=1e-9)
    assert float(a2**2 * b1**2 + b2**2) == pytest.approx(float(b**2), rel=1e-8, abs=1e-14)


def test_transition_kernel_rejects_backward_times():
    with pytest.raises(ValueError, match="t_to must be >= t_from"):
        transition_kernel(VPPath(), 0.5, 0.2)


@pytest.mark.parametrize("path", [VPPath(), VEPath()], ids=lambda p: type(p).__name__)
def test_noised_mixture_matches_monte_carlo_and_the_torch_log_density(path):
    t = 0.3
    exact = noised_mixture(RING, path, t)
    x0 = torch.tensor(RING.sample(40_000, rng=0).X)
    x_t, _ = path.sample_xt(x0, t, torch.Generator().manual_seed(0))
    means = exact.means.T @ exact.weights
    outer = np.einsum("ki,kj->kij", exact.means, exact.means)
    second = np.einsum("k,kij->ij", exact.weights, exact.covariances + outer)
    cov = second - np.outer(means, means)
    x_t = x_t.numpy()
    assert x_t.mean(0) == pytest.approx(means, abs=4 * math.sqrt(cov.max() / 40_000))
    assert np.cov(x_t.T) == pytest.approx(cov, rel=0.03, abs=0.03 * cov.max())
    points = torch.tensor(exact.sample(50, rng=1).X)
    torch_log_p = marginal_log_prob(GaussianMixtureDenoiser(RING), path, points, t)
    assert torch_log_p.numpy() == pytest.approx(exact.log_prob(points.numpy()), rel=1e-10, abs=1e-10)


@pytest.mark.parametrize("path", [VPPath(), VEPath(0.01, 5.0)], ids=lambda p: type(p).__name__)
def test_noised_marginal_density_integrates_to_one(path):
    denoiser = GaussianMixtureDenoiser(LINE)
    for t in (0.0 if isinstance(path, VEPath) else 1e-3, 0.2, 0.7):
        width = 8 * float(path.noise_scale(t)) + 8
        x = torch.linspace(-width, width, 20_001, dtype=torch.float64)[:, None]
        density = torch.exp(marginal_log_prob(denoiser, path, x, t))
        assert float(torch.trapezoid(density, x[:, 0])) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("path", PATHS, ids=lambda p: type(p).__name__)
def test_gradient_of_the_marginal_log_density_is_the_denoisers_score(path):
    denoiser = GaussianMixtureDenoiser(RING)
    x = torch.tensor(RING.sample(64, rng=3).X) * 1.3
    t = torch.linspace(_interior(path, 0.0), _interior(path, 1.0), 64, dtype=torch.float64)
    x.requires_grad_(True)
    (grad,) = torch.autograd.grad(marginal_log_prob(denoiser, path, x, t).sum(), x)
    score = score_model_from_denoiser(denoiser, path)(x.detach(), t)
    assert torch.allclose(grad, score, rtol=1e-8, atol=1e-8)
    t_scalar = float(t[10])
    numpy_score = noised_mixture(RING, path, t_scalar).score(x[10:11].detach().numpy())[0]
    assert grad[10].numpy() == pytest.approx(numpy_score, rel=1e-8)


def test_mixture_cdf_integrates_the_density_and_passes_ks_on_exact_samples():
    from scipy import stats

    exact = noised_mixture(LINE, VPPath(), 0.05)
    x = np.linspace(-5, 5, 20_001)
    density = np.exp(exact.log_prob(x[:, None]))
    running = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * np.diff(x))])
    assert mixture_cdf(exact, x) == pytest.approx(running + mixture_cdf(exact, -5.0), abs=1e-7)
    assert mixture_cdf(exact, np.array([-50.0, 50.0])) == pytest.approx([0.0, 1.0], abs=1e-12)
    sample = exact.sample(3000, rng=0).X[:, 0]
    assert stats.kstest(sample, lambda v: mixture_cdf(exact, v)).pvalue > 0.01
    assert stats.kstest(sample + 0.1, lambda v: mixture_cdf(exact, v)).pvalue < 1e-6  # a shift is seen
    with pytest.raises(ValueError, match="one-dimensional"):
        mixture_cdf(RING, [0.0])


def test_marginal_functions_reject_bad_input():
    denoiser = GaussianMixtureDenoiser(RING)
    with pytest.raises(TypeError, match="GaussianMixtureDenoiser"):
        marginal_log_prob(RING, VPPath(), torch.zeros(2, 2), 0.5)
    with pytest.raises(ValueError, match="shape"):
        marginal_log_prob(denoiser, VPPath(), torch.zeros(3, 2), torch.tensor([0.1, 0.2]))
    with pytest.raises(TypeError):
        marginal_log_prob(denoiser, VPPath(), torch.zeros(3, 2, dtype=torch.int64), 0.5)
    with pytest.raises(ValueError, match="domain"):
        noised_mixture(RING, LinearPath(), 1.0)
    with pytest.raises(TypeError):
        noised_mixture(RING.means, VPPath(), 0.5)
    with pytest.raises(TypeError):
        noised_mixture(RING, VPPath(), float("nan"))


# --------------------------------------------------------------------------- forward simulation
@pytest.mark.parametrize("path", [VPPath(), VEPath(0.01, 50.0)], ids=lambda p: type(p).__name__)
def test_forward_euler_maruyama_has_the_closed_form_moments(path):
    n, x0 = 20_000, 1.5
    times = torch.linspace(0, 1, 1001, dtype=torch.float64)
    trajectory = forward_trajectory(torch.full((n, 1), x0, dtype=torch.float64), path, times,
                                    torch.Generator().manual_seed(0), keep_every=250)
    assert trajectory.states.shape == (5, n, 1) and trajectory.nfe == 0
    assert torch.allclose(trajectory.times, times[::250])
    mean_coef, variance = euler_maruyama_forward_moments(path, times)
    for k, t in enumerate(trajectory.times.tolist()[1:], start=1):
        x = trajectory.states[k, :, 0]
        a, b = (float(v) for v in transition_kernel(path, 0.0, t))
        # The sample moments are the discrete chain's (exact recursion) up to Monte Carlo error...
        em_std = math.sqrt(float(variance[250 * k]))
        assert float(x.mean()) == pytest.approx(x0 * float(mean_coef[250 * k]), abs=4 * em_std / math.sqrt(n))
        assert float(x.std()) == pytest.approx(em_std, rel=4 / math.sqrt(2 * n))
        # ... and the chain's are the SDE's up to the O(dt) discretisation error.
        assert float(mean_coef[250 * k]) == pytest.approx(a, rel=0.02) and em_std == pytest.approx(b, rel=0.01)


def test_euler_maruyama_moments_converge_at_first_order():
    for path in (VPPath(), VEPath(0.01, 50.0)):
        gaps = []
        for n in (100, 200, 400):
            times = torch.linspace(0, 1, n + 1, dtype=torch.float64)
            mean_coef, variance = euler_maruyama_forward_moments(path, times)
            a, b = transition_kernel(path, 0.0, times)
            late = times >= 0.1  # relative errors, where the standard deviation is not ~0
            gaps.append(float(torch.max((mean_coef - a).abs()[late] + ((variance.sqrt() - b) / b).abs()[late])))
        assert 1.8 < gaps[0] / gaps[1] < 2.2 and 1.8 < gaps[1] / gaps[2] < 2.2


def test_forward_trajectory_is_deterministic_given_the_seed():
    x = torch.zeros(50, 2, dtype=torch.float64)
    def run(seed: int):
        return forward_trajectory(x, VPPath(), [0.0, 0.25, 0.5], torch.Generator().manual_seed(seed))

    assert torch.equal(run(1).states, run(1).states)
    assert not torch.allclose(run(1).states[-1], run(2).states[-1])


def test_forward_trajectory_rejects_bad_input():
    gen, x = torch.Generator().manual_seed(0), torch.zeros(4, 2)
    with pytest.raises(ValueError, match="increase"):
        forward_trajectory(x, VPPath(), [0.5, 0.2], gen)
    with pytest.raises(ValueError, match="at least 2"):
        forward_trajectory(x, VPPath(), [0.5], gen)
    with pytest.raises(ValueError, match="finite"):
        forward_trajectory(torch.full((4, 2), float("nan")), VPPath(), [0.0, 0.5], gen)
    with pytest.raises(ValueError, match="batch"):
        forward_trajectory(torch.zeros(4), VPPath(), [0.0, 0.5], gen)
    with pytest.raises(TypeError):
        forward_trajectory(x, VPPath(), [0.0, 0.5], 0)
    with pytest.raises(ValueError, match="keep_every"):
        forward_trajectory(x, VPPath(), [0.0, 0.5], gen, keep_every=0)
    with pytest.raises(TypeError):
        forward_trajectory(x, VPPath(), "0.1", gen)



# --------------------------------------------------------------------------- DDPM as a discretised VP-SDE
def test_ddpm_forward_marginal_tends_to_the_vp_sde_marginal_at_first_order():
    vp, gaps = VPPath(), []
    for n in (100, 200, 400, 800):
        path = DiscreteVPPath(n)
        a, b = transition_kernel(vp, 0.0, torch.arange(1, n + 1, dtype=torch.float64) / n)
        gaps.append(float(torch.max((path.scales - a).abs().max(), ((1 - path.alpha_bars).sqrt() - b).abs().max())))
    ratios = [gaps[i] / gaps[i + 1] for i in range(3)]
    assert all(1.8 < r < 2.3 for r in ratios), ratios


def test_step_coefficients_reproduce_the_shared_samplers():
    denoiser, shape = GaussianMixtureDenoiser(RING), (200, 2)
    path = DiscreteVPPath(200)
    for n in (200, 23):  # all steps, and the respaced schedule
        reference = ddpm_ancestral(denoiser, path, n, shape, torch.Generator().manual_seed(0))
        ours = run_step_coefficients(denoiser, ddpm_step_coefficients(path, n), shape, torch.Generator().manual_seed(0))
        assert torch.equal(reference.x, ours.x) and ours.nfe == n
    for continuous in (VPPath(), VEPath()):
        reference = euler_maruyama_reverse_sde(denoiser, continuous, 40, shape, torch.Generator().manual_seed(1),
                                               dtype=torch.float64)
        ours = run_step_coefficients(denoiser, euler_maruyama_step_coefficients(continuous, 40), shape,
                                     torch.Generator().manual_seed(1), dtype=torch.float64)
        assert torch.allclose(reference.x, ours.x, atol=1e-11)


def test_ddpm_and_euler_maruyama_step_coefficients_converge_at_second_order_away_from_t_0():
    gaps = []
    for n in (100, 200, 400):
        ddpm = ddpm_step_coefficients(DiscreteVPPath(n), n)
        em = euler_maruyama_step_coefficients(VPPath(t_min=1 / n), n)
        assert torch.allclose(ddpm.times, em.times, atol=5 / n) and ddpm.times.shape == (n,)
        keep = em.times >= 0.1
        gaps.append([float((getattr(ddpm, k) - getattr(em, k))[keep].abs().max()) for k in ("x_coef", "x0_coef")])
        assert ddpm.noise_std[-1] == 0 and em.noise_std[-1] == 0 and em.x0_coef[-1] == 1 and ddpm.x0_coef[-1] == 1
    for coarse, fine in zip(gaps[:-1], gaps[1:]):
        assert all(3.5 < c / f < 4.5 for c, f in zip(coarse, fine)), gaps


def test_ddpm_and_euler_maruyama_paths_converge_with_shared_noise():
    denoiser, shape, distances = GaussianMixtureDenoiser(RING), (300, 2), []
    for n in (40, 160):
        ddpm = ddpm_ancestral(denoiser, DiscreteVPPath(n), n, shape, torch.Generator().manual_seed(0),
                              dtype=torch.float64)
        em = euler_maruyama_reverse_sde(denoiser, VPPath(t_min=1 / n), n, shape, torch.Generator().manual_seed(0),
                                        dtype=torch.float64)
        distances.append(float((ddpm.x - em.x).norm(dim=1).mean()))
    assert distances[1] < distances[0] / 2.5  # ~ 1/n


def test_step_coefficient_functions_reject_bad_input():
    with pytest.raises(TypeError, match="DiscreteVPPath"):
        ddpm_step_coefficients(VPPath(), 10)
    with pytest.raises(ValueError):
        ddpm_step_coefficients(DiscreteVPPath(100), 101)
    with pytest.raises(ValueError):
        euler_maruyama_step_coefficients(VPPath(), 0)
    with pytest.raises(TypeError, match="StepCoefficients"):
        run_step_coefficients(GaussianMixtureDenoiser(RING), (1.0, 2.0), (3, 2), torch.Generator())
    coefficients = euler_maruyama_step_coefficients(VPPath(), 5)
    assert isinstance(coefficients, StepCoefficients)
    with pytest.raises(ValueError, match="shape"):
        run_step_coefficients(GaussianMixtureDenoiser(RING), coefficients, (3, 3), torch.Generator())


# --------------------------------------------------------------------------- reverse SDE and probability-flow ODE
def test_reverse_trajectory_reproduces_the_shared_sde_and_heun_samplers():
    denoiser, shape, path = GaussianMixtureDenoiser(RING), (100, 2), VPPath()
    generator = torch.Generator().manual_seed(2)
    grid = torch.linspace(path.t_max, path.t_min, 25, dtype=torch.float64)
    start = float(path.s(1.0) * torch.sqrt(1 + path.sigma(1.0) ** 2)) * torch.randn(shape, generator=generator).double()
    trajectory = reverse_trajectory(denoiser, path, grid, start, generator=generator, keep_every=6)
    assert trajectory.states.shape == (5, 100, 2) and trajectory.nfe == 24
    assert torch.allclose(trajectory.times, grid[[0, 6, 12, 18, 24]])
    last = denoiser(trajectory.states[-1] / path.s(grid[-1]), path.sigma(grid[-1]))
    reference = euler_maruyama_reverse_sde(denoiser, path, 25, shape, torch.Generator().manual_seed(2),
                                           dtype=torch.float64)
    assert torch.allclose(last, reference.x, atol=1e-11)

    sigmas = edm_sigmas(8)[:-1]
    times = path.sigma_inv(sigmas)
    start = float(path.s(times[0])) * math.sqrt(1 + float(sigmas[0]) ** 2) * torch.randn(
        shape, generator=torch.Generator().manual_seed(3)).double()
    ode = reverse_trajectory(denoiser, path, times, start, stochasticity=0.0, method="heun")
    last = denoiser(ode.states[-1] / path.s(times[-1]), sigmas[-1])
    reference = heun_ode(denoiser, path, 8, shape, torch.Generator().manual_seed(3), dtype=torch.float64)
    assert torch.allclose(last, reference.x, atol=1e-11) and ode.nfe == 14


def test_the_ode_is_deterministic_and_the_sde_is_not():
    denoiser, path = GaussianMixtureDenoiser(LINE), VPPath()
    grid = torch.linspace(1.0, 1e-3, 60, dtype=torch.float64)
    start = torch.randn((300, 1), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    odes = [reverse_trajectory(denoiser, path, grid, start, stochasticity=0.0).states[-1] for _ in range(2)]
    sdes = [reverse_trajectory(denoiser, path, grid, start, generator=torch.Generator().manual_seed(s)).states[-1]
            for s in (0, 0, 1)]
    assert torch.equal(odes[0], odes[1]) and torch.equal(sdes[0], sdes[1])
    assert float((sdes[0] - sdes[2]).abs().mean()) > 0.3  # the same start ends elsewhere with other noise
    assert float((sdes[0] - odes[0]).abs().mean()) > 0.3


def test_reverse_sde_ode_and_the_lambda_family_share_the_marginals():
    # Fixed seed, 1-D mixture, exact score: every lambda lands on p_{t_min}; the naive ODE with
    # the reverse SDE's drift (twice the score, no noise) does not.
    n, path = 1500, VPPath()
    denoiser = GaussianMixtureDenoiser(LINE)
    grid = torch.linspace(1.0, 1e-3, 121, dtype=torch.float64)
    start = torch.tensor(noised_mixture(LINE, path, 1.0).sample(n, rng=0).X)
    truth = noised_mixture(LINE, path, 1e-3)
    metric = lambda a, b: sliced_wasserstein(a, b, rng=0)  # noqa: E731
    floor = noise_floor(metric, lambda k, r: truth.sample(k, rng=r).X, n, repeats=6, rng=1)
    reference = truth.sample(n, rng=2).X
    ends = {lam: reverse_trajectory(denoiser, path, grid, start, generator=torch.Generator().manual_seed(3),
                                    stochasticity=lam).states[-1].numpy() for lam in (0.0, 1.0, 2.0)}
    heun = reverse_trajectory(denoiser, path, grid[::4], start, stochasticity=0.0, method="heun")
    ends["heun"] = heun.states[-1].numpy()
    for name, x in ends.items():
        assert metric(x, reference) < floor.mean + 3 * floor.std, name
    assert metric(ends[1.0], ends[0.0]) < floor.mean + 3 * floor.std
    naive = reverse_trajectory(lambda x, s: 2 * denoiser(x, s) - x, path, grid, start, stochasticity=0.0)
    assert metric(naive.states[-1].numpy(), reference) > 3 * floor.mean


def test_reverse_trajectory_rejects_bad_input():
    denoiser, start, grid = GaussianMixtureDenoiser(RING), torch.zeros(4, 2), [1.0, 0.5, 0.1]
    with pytest.raises(ValueError, match="generator"):
        reverse_trajectory(denoiser, VPPath(), grid, start)
    with pytest.raises(ValueError, match="heun"):
        reverse_trajectory(denoiser, VPPath(), grid, start, generator=torch.Generator(), method="heun")
    with pytest.raises(ValueError, match="method"):
        reverse_trajectory(denoiser, VPPath(), grid, start, stochasticity=0.0, method="rk4")
    with pytest.raises(ValueError, match="stochasticity"):
        reverse_trajectory(denoiser, VPPath(), grid, start, stochasticity=-1.0)
    with pytest.raises(ValueError, match="decrease"):
        reverse_trajectory(denoiser, VPPath(), grid[::-1], start, stochasticity=0.0)
    with pytest.raises(ValueError, match="sigma"):
        reverse_trajectory(denoiser, VPPath(), [0.5, 0.0, -0.1], start, stochasticity=0.0)
    with pytest.raises(TypeError):
        reverse_trajectory(denoiser, VPPath(), grid, start.long(), stochasticity=0.0)
    with pytest.raises(ValueError, match="shape"):
        reverse_trajectory(lambda x, s: x[:, :1], VPPath(), grid, start, stochasticity=0.0)
    with pytest.raises(FloatingPointError):
        reverse_trajectory(lambda x, s: x * float("nan"), VPPath(), grid, start, stochasticity=0.0)


# --------------------------------------------------------------------------- exercises
def test_exercise_checkers_accept_the_answers_and_reject_placeholders(capsys):
    assert check_exercise_1(0.01 * math.sqrt(5000) * math.sqrt(2 * math.log(5000)))
    assert check_exercise_2(1 - math.exp(-(0.1 * 0.5 + 0.5 * 19.9 * 0.25)))
    assert check_exercise_3(10 * math.sqrt(1.0001 / 2501))
    assert not check_exercise_1(0.0) and not check_exercise_2("?") and not check_exercise_3(float("nan"))
    assert "Not yet" in capsys.readouterr().out


# --------------------------------------------------------------------------- GPU
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gpu_forward_and_reverse_trajectories_run_on_cuda(dtype):
    device = torch.device("cuda")
    path, n = VPPath(), 20_000
    times = torch.linspace(0, 1, 201, dtype=torch.float64)
    forward = forward_trajectory(torch.full((n, 1), 1.5, dtype=dtype, device=device), path, times,
                                 torch.Generator(device).manual_seed(0), keep_every=100)
    assert forward.states.device.type == "cuda" and forward.states.dtype == dtype
    a, b = (float(v) for v in transition_kernel(path, 0.0, 0.5))
    assert float(forward.states[1].mean()) == pytest.approx(1.5 * a, abs=0.02)
    assert float(forward.states[1].std()) == pytest.approx(b, rel=0.03)
    # The ODE is deterministic: CUDA and CPU agree from the same start.
    denoiser, grid = GaussianMixtureDenoiser(RING), torch.linspace(1.0, 1e-3, 50, dtype=torch.float64)
    start = torch.randn((500, 2), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    cpu = reverse_trajectory(denoiser, path, grid, start, stochasticity=0.0, method="heun").states[-1]
    gpu = reverse_trajectory(denoiser, path, grid, start.to(device, dtype), stochasticity=0.0, method="heun").states[-1]
    assert torch.allclose(gpu.double().cpu(), cpu, atol=1e-8 if dtype == torch.float64 else 2e-3)
    sde = reverse_trajectory(denoiser, path, grid, start.to(device, dtype),
                             generator=torch.Generator(device).manual_seed(1))
    with pytest.raises(ValueError, match="device"):  # noise drawn on the generator's device must meet x there
        reverse_trajectory(denoiser, path, grid, start.to(device, dtype), generator=torch.Generator())
    assert sde.states.device.type == "cuda" and torch.isfinite(sde.states).all()


@pytest.mark.gpu
def test_gpu_step_coefficients_reproduce_ddpm_on_cuda():
    denoiser, path, generator = GaussianMixtureDenoiser(RING), DiscreteVPPath(100), torch.Generator("cuda")
    reference = ddpm_ancestral(denoiser, path, 100, (1000, 2), generator.manual_seed(0))
    ours = run_step_coefficients(denoiser, ddpm_step_coefficients(path, 100), (1000, 2), generator.manual_seed(0))
    assert ours.x.device.type == "cuda" and torch.equal(reference.x, ours.x)
