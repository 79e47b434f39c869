"""Tests of mlnotes.diffusion.ddpm_ddim (chapter book/diffusion/ddpm_ddim.ipynb) and of DDPM/DDIM sampling."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mlnotes.diffusion.analytic import GaussianMixtureDenoiser, mixture_of_8
from mlnotes.diffusion.common import DiscreteVPPath, ddim, ddpm_ancestral
from mlnotes.diffusion.ddpm_ddim import (
    DDPMConfig,
    EpsMLP,
    check_exercise_1,
    check_exercise_2,
    check_exercise_3,
    ddim_noise_std,
    ddpm_loss,
    ddpm_posterior_std,
    forward_marginal,
    iterate_forward_kernel,
    network_time,
    sinusoidal_embedding,
    train_ddpm,
)
from mlnotes.metrics import noise_floor, sliced_wasserstein

PATH = DiscreteVPPath(1000)
MIXTURE = mixture_of_8()


def _sw(x: torch.Tensor, reference: np.ndarray) -> float:
    return sliced_wasserstein(x.double().cpu().numpy(), reference, rng=0)


def _floor(n: int) -> float:
    return noise_floor(lambda a, b: sliced_wasserstein(a, b, rng=0), lambda k, r: MIXTURE.sample(k, rng=r).X, n,
                       repeats=4, rng=5).mean


# --------------------------------------------------------------------------- forward process
@given(st.integers(min_value=0, max_value=1000))
@settings(max_examples=30, deadline=None)
def test_forward_marginal_matches_the_exact_recursion_of_the_kernel(step):
    # Golden: the one-step kernel maps (mean coef m, variance v) to (sqrt(1-b) m, (1-b) v + b), exactly.
    mean_coef, var = 1.0, 0.0
    for beta in PATH.betas[:step].tolist():
        mean_coef, var = math.sqrt(1 - beta) * mean_coef, (1 - beta) * var + beta
    a, b = forward_marginal(PATH, step)
    assert a == pytest.approx(mean_coef, rel=1e-10) and b**2 == pytest.approx(var, rel=1e-9, abs=1e-14)
    assert a**2 + b**2 == pytest.approx(1.0, rel=1e-12)  # variance preserving


def test_iterated_kernel_samples_have_the_closed_form_moments():
    x0 = torch.full((20_000, 2), 1.5, dtype=torch.float64)
    chain = iterate_forward_kernel(x0, PATH, [0, 50, 300, 1000], torch.Generator().manual_seed(0))
    assert torch.equal(chain[0], x0)
    for step in (50, 300, 1000):
        a, b = forward_marginal(PATH, step)
        x = chain[step]
        assert x.mean(0).numpy() == pytest.approx([1.5 * a] * 2, abs=4 * b / math.sqrt(20_000))
        assert x.std(0).numpy() == pytest.approx([b] * 2, rel=0.03)
    assert forward_marginal(PATH, 1000)[0] < 7e-3  # x_T is (almost) pure noise


def test_ddim_noise_at_eta_1_is_the_ddpm_posterior_std_and_zero_at_eta_0():
    # Golden: with all steps kept, DDPM's posterior variance is beta_tilde_t = (1 - ab_{t-1}) / (1 - ab_t) * beta_t.
    for t in (2, 10, 500, 1000):
        beta, ab, ab_prev = float(PATH.betas[t - 1]), float(PATH.alpha_bars[t - 1]), float(PATH.alpha_bars[t - 2])
        assert ddpm_posterior_std(PATH, t, t - 1) ** 2 == pytest.approx((1 - ab_prev) / (1 - ab) * beta, rel=1e-10)
        assert ddim_noise_std(PATH, t, t - 1, 1.0) == ddpm_posterior_std(PATH, t, t - 1)
        assert ddim_noise_std(PATH, t, t - 1, 0.0) == 0.0
    assert ddpm_posterior_std(PATH, 1, 0) == 0.0  # the last step is deterministic


# --------------------------------------------------------------------------- samplers with the exact denoiser
def test_ddpm_ancestral_with_the_exact_denoiser_reproduces_the_mixture():
    n = 3000
    x = ddpm_ancestral(GaussianMixtureDenoiser(MIXTURE), PATH, 1000, (n, 2), torch.Generator().manual_seed(0)).x
    distance = _sw(x, MIXTURE.sample(n, rng=1).X)
    assert distance < 1.5 * _floor(n)


def _ddim_reference(denoiser, path, n_steps, x_T):
    """Song et al. (2021a), eq. 12 with eta = 0, written in alpha_bar form (independent of common.ddim)."""
    steps = path.timesteps(n_steps).tolist()
    x = x_T.double()
    for i, step in enumerate(steps):
        ab = float(path.alpha_bars[step - 1])
        ab_prev = float(path.alpha_bars[steps[i + 1] - 1]) if i + 1 < len(steps) else 1.0
        sigma = math.sqrt((1 - ab) / ab)
        x0 = denoiser(x / math.sqrt(ab), torch.full((x.shape[0],), sigma, dtype=x.dtype))
        eps = (x - math.sqrt(ab) * x0) / math.sqrt(1 - ab)
        x = math.sqrt(ab_prev) * x0 + math.sqrt(1 - ab_prev) * eps
    return x


def test_ddim_eta_0_is_deterministic_and_matches_the_paper_update():
    denoiser = GaussianMixtureDenoiser(MIXTURE)
    runs = [ddim(denoiser, PATH, 20, (500, 2), torch.Generator().manual_seed(3), dtype=torch.float64) for _ in range(2)]
    assert torch.equal(runs[0].x, runs[1].x) and runs[0].nfe == 20
    x_T = torch.randn((500, 2), generator=torch.Generator().manual_seed(3))  # the same first draw as the sampler
    assert torch.allclose(runs[0].x, _ddim_reference(denoiser, PATH, 20, x_T), atol=1e-6)
    # eta = 0 consumes no noise after the start: the sample is a function of x_T only.
    other = ddim(denoiser, PATH, 20, (500, 2), torch.Generator().manual_seed(4), dtype=torch.float64).x
    assert not torch.allclose(other, runs[0].x)


def test_ddim_eta_1_matches_ddpm_in_distribution_and_eta_0_does_too():
    n, denoiser = 3000, GaussianMixtureDenoiser(MIXTURE)
    reference = MIXTURE.sample(n, rng=2).X
    ddpm = ddpm_ancestral(denoiser, PATH, 100, (n, 2), torch.Generator().manual_seed(0)).x
    eta1 = ddim(denoiser, PATH, 100, (n, 2), torch.Generator().manual_seed(1), eta=1.0).x
    eta0 = ddim(denoiser, PATH, 50, (n, 2), torch.Generator().manual_seed(2)).x
    floor = _floor(n)
    assert _sw(eta1, ddpm.double().numpy()) < 2.0 * floor  # two model samples: up to ~sqrt(2) x the floor
    assert max(_sw(eta1, reference), _sw(eta0, reference)) < 1.5 * floor


# --------------------------------------------------------------------------- network and training
@given(st.floats(min_value=0.0, max_value=1.0), st.sampled_from([2, 8, 32]))
@settings(max_examples=25, deadline=None)
def test_sinusoidal_embedding_is_pairs_of_cos_and_sin(t, dim):
    emb = sinusoidal_embedding(torch.tensor([t], dtype=torch.float64), dim)
    assert emb.shape == (1, dim) and emb.dtype == torch.float64
    half = dim // 2
    assert torch.allclose(emb[:, :half] ** 2 + emb[:, half:] ** 2, torch.ones(1, half, dtype=torch.float64), atol=1e-6)


def test_network_time_is_close_to_step_over_T_and_what_denoiser_from_eps_asks_for():
    steps = torch.tensor([1, 10, 500, 1000])
    t = network_time(PATH, steps)
    assert torch.allclose(t, steps.double() / 1000, atol=5e-3)
    assert torch.allclose(PATH.continuous.sigma(t), PATH.sigmas[steps - 1], rtol=1e-10)


def test_eps_model_shapes_and_scalar_time():
    model = EpsMLP(2, 16, 2, 8)
    x = torch.randn(5, 2)
    assert model(x, torch.rand(5)).shape == (5, 2)
    assert torch.allclose(model(x, torch.tensor(0.3)), model(x, torch.full((5,), 0.3)))


def test_train_ddpm_lowers_the_loss_and_beats_the_untrained_network():
    data = torch.tensor(MIXTURE.sample(2000, rng=0).X, dtype=torch.float32)
    config = DDPMConfig(hidden_dim=64, n_layers=2, embed_dim=16, epochs=12, batch_size=128, lr=3e-3)
    result = train_ddpm(data, config, generator=torch.Generator().manual_seed(0))
    losses = result.history["step_loss"]
    assert len(losses) == 12 * 16 and not result.eps_model.training
    assert np.mean(losses[-30:]) < 0.75 * np.mean(losses[:10])
    # The trained model's loss on fresh batches is below the untrained one's (same noise draws).
    untrained = EpsMLP(2, 64, 2, 16)
    with torch.no_grad():
        fresh = torch.tensor(MIXTURE.sample(4000, rng=1).X, dtype=torch.float32)
        trained_loss = ddpm_loss(result.eps_model, fresh, result.path, torch.Generator().manual_seed(9))
        untrained_loss = ddpm_loss(untrained, fresh, result.path, torch.Generator().manual_seed(9))
    assert trained_loss < 0.7 * untrained_loss
    # Same seed, same model.
    again = train_ddpm(data[:256], DDPMConfig(hidden_dim=8, n_layers=1, embed_dim=4, epochs=1), generator=torch.Generator().manual_seed(1))
    twice = train_ddpm(data[:256], DDPMConfig(hidden_dim=8, n_layers=1, embed_dim=4, epochs=1), generator=torch.Generator().manual_seed(1))
    assert again.history["loss"] == twice.history["loss"]


def test_exercise_checkers_accept_the_answer_and_reject_others(capsys):
    a, b = forward_marginal(PATH, 500)
    assert check_exercise_1(b) and not check_exercise_1(a)
    assert check_exercise_2(0.5 * ddpm_posterior_std(PATH, 100, 50)) and not check_exercise_2(0.0)
    m, s = forward_marginal(PATH, 300)
    assert check_exercise_3(m * 0.25 / (m**2 * 0.25 + s**2)) and not check_exercise_3(1.0)
    assert "Correct" in capsys.readouterr().out


# --------------------------------------------------------------------------- bad input
def test_bad_inputs_raise_clear_errors():
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="step must be an int in"):
        forward_marginal(PATH, 1001)
    with pytest.raises(TypeError, match="path must be a DiscreteVPPath"):
        forward_marginal("vp", 3)
    with pytest.raises(ValueError, match="x0 must be finite"):
        iterate_forward_kernel(torch.tensor([[float("nan"), 0.0]]), PATH, [3], g)
    with pytest.raises(ValueError, match="steps must be a non-empty list"):
        iterate_forward_kernel(torch.zeros(3, 2), PATH, [], g)
    with pytest.raises(ValueError, match="prev_step must be in"):
        ddpm_posterior_std(PATH, 10, 10)
    with pytest.raises(ValueError, match="eta must be a finite number >= 0"):
        ddim_noise_std(PATH, 10, 5, -1.0)
    with pytest.raises(ValueError, match="dim must be an even int"):
        sinusoidal_embedding(torch.zeros(3), 5)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 2\)"):
        EpsMLP()(torch.zeros(4, 3), torch.zeros(4))
    with pytest.raises(ValueError, match="DDPMConfig.epochs must be a positive int"):
        DDPMConfig(epochs=0)
    with pytest.raises(ValueError, match="DDPMConfig.lr must be > 0"):
        DDPMConfig(lr=-1.0)
    with pytest.raises(ValueError, match=r"data must have shape \(batch, dim\)"):
        train_ddpm(torch.zeros(10), generator=g)
    with pytest.raises(ValueError, match="data must be finite"):
        train_ddpm(torch.tensor([[float("inf"), 1.0]]), generator=g)
    with pytest.raises(TypeError, match="data must be a floating-point"):
        train_ddpm(torch.zeros(4, 2, dtype=torch.long), generator=g)
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        train_ddpm(torch.zeros(4, 2), generator=0)
    with pytest.raises(TypeError, match="config must be a DDPMConfig"):
        train_ddpm(torch.zeros(4, 2), {"epochs": 1}, generator=g)


# --------------------------------------------------------------------------- GPU
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_training_and_sampling_on_cuda(dtype):
    device = torch.device("cuda")
    data = torch.tensor(MIXTURE.sample(2000, rng=0).X, dtype=torch.float32, device=device)
    config = DDPMConfig(hidden_dim=64, n_layers=2, embed_dim=16, epochs=12, batch_size=128, lr=3e-3)
    result = train_ddpm(data, config, generator=torch.Generator(device).manual_seed(0))
    losses = result.history["step_loss"]
    assert np.mean(losses[-30:]) < 0.75 * np.mean(losses[:10])
    with torch.no_grad():
        with torch.autocast("cuda", dtype=torch.bfloat16):  # float32 weights, bf16 matmuls
            autocast = ddim(result.denoiser, result.path, 20, (2000, 2), torch.Generator(device).manual_seed(1))
        model = result.eps_model.to(dtype)  # the denoiser wraps this same module
        samples = ddim(result.denoiser, result.path, 20, (2000, 2), torch.Generator(device).manual_seed(1), dtype=dtype)
    assert model.time_proj.weight.dtype == dtype
    assert samples.x.dtype == dtype and samples.x.device.type == "cuda" and torch.isfinite(samples.x).all()
    assert autocast.x.dtype == torch.float32 and torch.isfinite(autocast.x).all()
    # Reduced precision changes the samples' quality by little: compare with the float32 run of the same model.
    reference = MIXTURE.sample(2000, rng=3).X
    with torch.no_grad():
        full = ddim(result.denoiser.float(), result.path, 20, (2000, 2), torch.Generator(device).manual_seed(1)).x
    for x in (samples.x, autocast.x):
        assert _sw(x.float(), reference) < _sw(full, reference) + 0.05
    # The exact denoiser on the GPU in float32 reproduces the mixture with DDIM.
    exact = ddim(GaussianMixtureDenoiser(MIXTURE), PATH, 50, (2000, 2), torch.Generator(device).manual_seed(2)).x
    assert _sw(exact, reference) < 1.5 * _floor(2000)


@pytest.mark.gpu
def test_notebook_budget_training_on_cuda_finds_the_modes():
    # The notebook's small configuration, on the GPU: DDIM samples far closer to the truth than a Gaussian fit.
    device = torch.device("cuda")
    data = torch.tensor(MIXTURE.sample(4000, rng=1).X, dtype=torch.float32, device=device)
    result = train_ddpm(data, DDPMConfig(epochs=250, batch_size=128, lr=2e-3), generator=torch.Generator(device).manual_seed(0))
    reference = MIXTURE.sample(4000, rng=100).X
    gaussian = np.random.default_rng(4).multivariate_normal(data.mean(0).cpu().numpy(), np.cov(data.cpu().numpy().T), 4000)
    with torch.no_grad():
        x = ddim(result.denoiser, result.path, 50, (4000, 2), torch.Generator(device).manual_seed(0)).x
    assert _sw(x, reference) < 0.5 * sliced_wasserstein(gaussian, reference, rng=0)
