"""Tests of mlnotes.diffusion.score_models (chapter book/diffusion/score_models.ipynb)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mlnotes.datasets import GaussianMixture
from mlnotes.diffusion.analytic import GaussianMixtureDenoiser, mixture_of_8
from mlnotes.diffusion.common import VEPath, VPPath, ddim, denoiser_from_score, score_from_x0
from mlnotes.diffusion.score_models import (
    ScoreConfig,
    ScoreMLP,
    annealed_langevin,
    as_path_model,
    check_exercise_1,
    check_exercise_2,
    check_exercise_3,
    dsm_loss,
    dsm_objective,
    explicit_score_matching_loss,
    geometric_sigmas,
    hyvarinen_loss,
    langevin_dynamics,
    langevin_stationary_variance,
    mode_weights,
    score_error_by_sigma,
    train_score_model,
)
from mlnotes.metrics import sliced_wasserstein

MIXTURE = mixture_of_8()
EXACT = GaussianMixtureDenoiser(MIXTURE)
#: Song & Ermon's (2019, Fig. 3) example: two well-separated modes of unequal weight.
TWO_MODES = GaussianMixture(np.array([[-5.0, -5.0], [5.0, 5.0]]), np.array([1.0, 1.0]), np.array([0.2, 0.8]))


def _noised(mixture: GaussianMixture, sigma: float) -> GaussianMixture:
    """The mixture convolved with N(0, sigma^2 I): every component's covariance grows by sigma^2."""
    return GaussianMixture(mixture.means, mixture.covariances + sigma**2 * np.eye(mixture.dim), mixture.weights)


# --------------------------------------------------------------------------- noise levels and the exact score
def test_geometric_sigmas_match_numpy_and_the_ve_path() -> None:
    sigmas = geometric_sigmas(0.01, 5.0, 10)
    np.testing.assert_allclose(sigmas.numpy(), np.geomspace(5.0, 0.01, 10), rtol=1e-12)
    ratios = sigmas[:-1] / sigmas[1:]
    assert torch.allclose(ratios, ratios[0].expand(9), rtol=1e-12)
    np.testing.assert_allclose(sigmas.numpy(), VEPath(0.01, 5.0).sigma(torch.linspace(1, 0, 10, dtype=torch.float64)).numpy())


@pytest.mark.parametrize("sigma", [0.05, 0.5, 3.0])
def test_exact_score_of_the_noised_mixture_three_ways(sigma: float) -> None:
    """Golden: the footing's score, Tweedie's (D - x) / sigma^2 and the noised mixture's own closed-form score agree."""
    x = torch.randn(200, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2.5
    reference = _noised(MIXTURE, sigma).score(x.numpy())  # numpy, datasets.GaussianMixture: an independent implementation
    np.testing.assert_allclose(EXACT.score(x, sigma).numpy(), reference, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(score_from_x0(x, EXACT(x, torch.full((200,), sigma, dtype=torch.float64)), sigma).numpy(),
                               reference, rtol=1e-9, atol=1e-9)


# --------------------------------------------------------------------------- score matching objectives
def test_dsm_and_hyvarinen_differ_from_explicit_score_matching_by_the_closed_form_constants() -> None:
    """Golden: for Gaussian data N(m, s0^2 I) and linear models, every expectation is in closed form.

    DSM - ESM = (d/2)(1/sigma^2 - 1/(s0^2 + sigma^2)) and ISM - ESM = -(d/2)/(s0^2 + sigma^2),
    whatever the model; the Monte Carlo estimates on the same draws reproduce them.
    """
    d, s0, sigma, n = 3, 0.7, 0.4, 400_000
    m = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    x0 = m + s0 * torch.randn(n, d, generator=g, dtype=torch.float64)
    noise = torch.randn(n, d, generator=g, dtype=torch.float64)
    x_hat, v = x0 + sigma * noise, s0**2 + sigma**2
    true_score = -(x_hat - m) / v
    dsm_const, ism_const = 0.5 * d * (1 / sigma**2 - 1 / v), -0.5 * d / v
    gaps = []
    for a, b in [(0.0, 0.0), (-1 / v, 0.0), (-0.3, 0.2), (-3.0, -1.0)]:
        model = lambda x, s, a=a, b=b: a * x + b  # noqa: E731
        # x_hat = m + s0 z + sigma eps: the model error is (a m + b) + (a + 1/v)(x_hat - m) for ESM and
        # (a m + b) + a s0 z + (a sigma + 1/sigma) eps for DSM; square and take expectations.
        esm_exact = 0.5 * float(((a * m + b) ** 2).sum()) + 0.5 * d * (a + 1 / v) ** 2 * v
        dsm_exact = 0.5 * float(((a * m + b) ** 2).sum()) + 0.5 * d * (a**2 * s0**2 + (a * sigma + 1 / sigma) ** 2)
        assert dsm_exact - esm_exact == pytest.approx(dsm_const, rel=1e-12)
        esm = float(explicit_score_matching_loss(model, x_hat, sigma, true_score))
        dsm = float(dsm_objective(model, x0, noise, sigma))
        ism = float(hyvarinen_loss(lambda x, s, a=a, b=b: a * x + b, x_hat, sigma).detach())
        assert esm == pytest.approx(esm_exact, rel=0.02, abs=0.01)
        assert dsm == pytest.approx(dsm_exact, rel=0.02)
        gaps.append((dsm - esm, ism - esm))
    gaps = np.array(gaps)
    assert gaps[:, 0] == pytest.approx(dsm_const, abs=0.03)
    assert gaps[:, 1] == pytest.approx(ism_const, abs=0.03)
    assert np.ptp(gaps[:, 0]) < 0.03 and np.ptp(gaps[:, 1]) < 0.03


def test_hyvarinen_trace_is_the_exact_divergence() -> None:
    """Golden: for s(x) = A x the Jacobian trace is tr(A), so ISM = tr(A) + mean ||A x||^2 / 2."""
    A = torch.tensor([[-1.0, 0.3], [0.2, -2.0]], dtype=torch.float64)
    x = torch.randn(50, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    expected = float(torch.trace(A)) + 0.5 * float((x @ A.T).pow(2).sum(1).mean())
    assert float(hyvarinen_loss(lambda z, s: z @ A.T, x, 0.5).detach()) == pytest.approx(expected, rel=1e-12)
    # A network: compare the trace with finite differences of the score.
    net = ScoreMLP(2, 16, 2).double()
    with torch.no_grad():
        h, trace = 1e-5, torch.zeros(50, dtype=torch.float64)
        for i in range(2):
            e = torch.zeros(2, dtype=torch.float64)
            e[i] = h
            trace += (net(x + e, 0.5)[:, i] - net(x - e, 0.5)[:, i]) / (2 * h)
        expected_net = float((trace + 0.5 * net(x, 0.5).pow(2).sum(1)).mean())
    assert float(hyvarinen_loss(net, x, 0.5).detach()) == pytest.approx(expected_net, rel=1e-6)


def test_dsm_loss_is_minimised_by_the_exact_score_and_equals_the_weighted_objective() -> None:
    x0 = torch.tensor(MIXTURE.sample(20_000, rng=0).X)
    sigmas = geometric_sigmas(0.05, 5.0, 6)

    def loss(model) -> float:
        return float(dsm_loss(model, x0, sigmas, torch.Generator().manual_seed(3)))

    best = loss(EXACT.score)
    assert loss(lambda x, s: 0.9 * EXACT.score(x, s)) > best and loss(lambda x, s: EXACT.score(x, s) + 0.1) > best
    # With one level, the sigma^2-weighted loss is sigma^2 times Vincent's objective on the same draws.
    one = sigmas[2:3]
    g = torch.Generator().manual_seed(4)
    value = float(dsm_loss(EXACT.score, x0, one, g))
    g = torch.Generator().manual_seed(4)
    torch.randint(1, (x0.shape[0],), generator=g)  # the level draw dsm_loss makes first
    noise = torch.randn(x0.shape, generator=g).double()
    assert value == pytest.approx(float(one) ** 2 * float(dsm_objective(EXACT.score, x0, noise, float(one))), rel=1e-10)


# --------------------------------------------------------------------------- Langevin dynamics
@pytest.mark.parametrize("step_size", [0.1, 0.5, 1.5])
def test_langevin_on_a_gaussian_has_the_closed_form_discretised_stationary_variance(step_size: float) -> None:
    """Golden: on N(mu, v) the chain is AR(1) with stationary variance v / (1 - eps / (4 v))."""
    mu, variance, n = 1.0, 2.0, 40_000
    out = langevin_dynamics(lambda x: -(x - mu) / variance, torch.zeros(n, 1, dtype=torch.float64), step_size, 200,
                            torch.Generator().manual_seed(0))
    expected = langevin_stationary_variance(variance, step_size)
    assert out.nfe == 200
    assert float(out.x.var()) == pytest.approx(expected, rel=0.03)
    assert float(out.x.mean()) == pytest.approx(mu, abs=4 * math.sqrt(expected / n))
    assert expected == pytest.approx(variance / (1 - step_size / (4 * variance)), rel=1e-15) and expected > variance


def test_annealed_langevin_with_the_exact_score_gets_the_mode_weights_right_plain_langevin_does_not() -> None:
    """Song & Ermon's two-mode example: from a uniform start, plain Langevin keeps the start's 1/2 : 1/2."""
    n = 1000
    box = torch.rand(n, 2, generator=torch.Generator().manual_seed(0)) * 16 - 8
    exact = GaussianMixtureDenoiser(TWO_MODES)
    sigmas = geometric_sigmas(0.1, 20.0, 10)
    annealed = annealed_langevin(exact.score, sigmas, (n, 2), 50, 5e-3, torch.Generator().manual_seed(1), x_init=box)
    plain = langevin_dynamics(lambda x: exact.score(x, 0.1), box, 0.05, annealed.nfe, torch.Generator().manual_seed(1))
    w_annealed, w_plain = mode_weights(annealed.x, TWO_MODES.means, 4.0), mode_weights(plain.x, TWO_MODES.means, 4.0)
    assert annealed.nfe == 500 and w_annealed.sum() > 0.99 and w_plain.sum() > 0.99
    assert abs(w_annealed[1] - 0.8) < 0.05
    assert abs(w_plain[1] - 0.5) < 0.05


def test_annealed_langevin_with_the_exact_score_reaches_the_ring() -> None:
    n = 1500
    out = annealed_langevin(EXACT.score, geometric_sigmas(0.01, 5.0, 10), (n, 2), 20, 1e-4, torch.Generator().manual_seed(0))
    truth = MIXTURE.sample(n, rng=1).X
    floor = sliced_wasserstein(MIXTURE.sample(n, rng=2).X, truth, rng=0)
    weights = mode_weights(out.x, MIXTURE.means, 0.8)
    assert sliced_wasserstein(out.x.numpy(), truth, rng=0) < 2 * floor + 0.02
    assert weights.sum() > 0.99 and np.abs(weights - 1 / 8).max() < 0.03


def test_samplers_are_deterministic_and_dtype_agnostic() -> None:
    sigmas = geometric_sigmas(0.05, 5.0, 4)
    a = annealed_langevin(EXACT.score, sigmas, (64, 2), 5, 1e-3, torch.Generator().manual_seed(7))
    b = annealed_langevin(EXACT.score, sigmas, (64, 2), 5, 1e-3, torch.Generator().manual_seed(7))
    c = annealed_langevin(EXACT.score, sigmas, (64, 2), 5, 1e-3, torch.Generator().manual_seed(7), dtype=torch.float64,
                          final_denoise=True)
    assert torch.equal(a.x, b.x) and a.nfe == 20 and c.nfe == 21 and c.x.dtype == torch.float64
    d = annealed_langevin(EXACT.score, sigmas, (64, 2), 5, 1e-3, torch.Generator().manual_seed(7), dtype=torch.float64)
    torch.testing.assert_close(d.x.float(), a.x, atol=1e-4, rtol=1e-4)  # the same noise in both dtypes


# --------------------------------------------------------------------------- network, the footing's interface, training
def test_score_network_shapes_and_the_denoiser_of_the_footing() -> None:
    net = ScoreMLP(2, 16, 2).double()
    x = torch.randn(5, 2, dtype=torch.float64)
    sigma = torch.tensor([0.01, 0.1, 1.0, 3.0, 5.0], dtype=torch.float64)
    assert net(x, sigma).shape == (5, 2) and net(x, 0.3).shape == (5, 2)
    for path in (VEPath(0.01, 5.0), VPPath()):
        denoiser = denoiser_from_score(as_path_model(net, path), path)
        level = sigma.clamp(max=float(path.sigma(path.t_max)))
        with torch.no_grad():
            torch.testing.assert_close(denoiser(x, level), x + level[:, None] ** 2 * net(x, level), rtol=1e-9, atol=1e-9)
    # The exact score seen through the path and the footing's wrapper is the exact denoiser.
    path = VEPath(0.01, 5.0)
    exact_denoiser = denoiser_from_score(as_path_model(EXACT.score, path), path)
    torch.testing.assert_close(exact_denoiser(x, sigma), EXACT(x, sigma), rtol=1e-9, atol=1e-9)


def test_training_improves_the_score_and_is_deterministic() -> None:
    data = torch.tensor(MIXTURE.sample(2000, rng=0).X, dtype=torch.float32)
    config = ScoreConfig(hidden_dim=32, n_layers=2, steps=300, batch_size=128, lr=5e-3)
    fit = train_score_model(data, config, generator=torch.Generator().manual_seed(0))
    short = ScoreConfig(hidden_dim=32, n_layers=2, steps=30, batch_size=128, lr=5e-3)
    first = train_score_model(data, short, generator=torch.Generator().manual_seed(0))
    again = train_score_model(data, short, generator=torch.Generator().manual_seed(0))
    np.testing.assert_array_equal(first.losses, again.losses)
    torch.testing.assert_close(first.model(data[:5], 0.3), again.model(data[:5], 0.3), rtol=0, atol=0)
    # The loss cannot fall below the exact score's (the noise is not predictable); the excess over it shrinks.
    floor = float(dsm_loss(EXACT.score, data.double(), torch.tensor([0.01, 5.0]), torch.Generator().manual_seed(9), continuous=True))
    assert fit.losses.shape == (300,) and fit.losses[-50:].mean() - floor < 0.5 * (fit.losses[:20].mean() - floor)
    x0 = torch.tensor(MIXTURE.sample(1000, rng=1).X, dtype=torch.float32)
    error = score_error_by_sigma(fit.model, EXACT.score, x0, [2.0, 0.5], torch.Generator().manual_seed(2))
    assert error.relative[0] < 0.1 and np.allclose(error.relative, error.weighted / error.signal)
    with torch.no_grad():  # the fit's denoiser drives the footing's samplers
        samples = ddim(fit.denoiser, fit.path, 10, (100, 2), torch.Generator().manual_seed(3))
    assert samples.x.shape == (100, 2) and torch.isfinite(samples.x).all()
    ladder = train_score_model(data, ScoreConfig(hidden_dim=16, n_layers=1, steps=5, n_sigmas=10), generator=torch.Generator().manual_seed(0))
    assert np.isfinite(ladder.losses).all()


def test_score_error_of_the_exact_score_is_zero() -> None:
    x0 = torch.tensor(MIXTURE.sample(500, rng=0).X)
    error = score_error_by_sigma(EXACT.score, EXACT.score, x0, geometric_sigmas(0.01, 5.0, 3), torch.Generator())
    assert error.relative.max() < 1e-20 and (error.signal > 0).all()


# --------------------------------------------------------------------------- exercises and bad input
def test_exercise_checkers() -> None:
    assert check_exercise_1(8 / 7) and not check_exercise_1(1.0) and not check_exercise_1("x")
    assert check_exercise_2(1.5) and not check_exercise_2(2.0)
    assert check_exercise_3(3.2) and not check_exercise_3(4.0)
    # The answers are what the module and the footing compute.
    one_d = GaussianMixtureDenoiser(GaussianMixture(np.array([[1.0]]), np.array([0.5])))
    assert float(one_d(torch.tensor([[2.0]], dtype=torch.float64), 0.5)) == pytest.approx(1.5)


def test_bad_inputs() -> None:
    g = torch.Generator()
    score = EXACT.score
    with pytest.raises(ValueError, match="n must be >= 2"):
        geometric_sigmas(0.01, 5.0, 1)
    with pytest.raises(ValueError, match="sigma_max must be > sigma_min"):
        geometric_sigmas(5.0, 0.01, 10)
    with pytest.raises(ValueError, match="step_size must be < 4"):
        langevin_stationary_variance(1.0, 4.0)
    with pytest.raises(ValueError, match="step_size must be a finite number > 0"):
        langevin_dynamics(lambda x: -x, torch.zeros(3, 1), 0.0, 10, g)
    with pytest.raises(ValueError, match=r"x_init must have shape \(batch, dim\)"):
        langevin_dynamics(lambda x: -x, torch.zeros(3), 0.1, 10, g)
    with pytest.raises(ValueError, match="x_init must be finite"):
        langevin_dynamics(lambda x: -x, torch.tensor([[float("nan")]]), 0.1, 10, g)
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        langevin_dynamics(lambda x: -x, torch.zeros(3, 1), 0.1, 10, 0)
    with pytest.raises(ValueError, match="score must return a tensor of the input's shape"):
        langevin_dynamics(lambda x: x[:, :1], torch.zeros(3, 2), 0.1, 1, g)
    with pytest.raises(FloatingPointError, match="NaN or inf"):
        langevin_dynamics(lambda x: x / 0.0, torch.ones(3, 1), 0.1, 1, g)
    with pytest.raises(ValueError, match="strictly decreasing"):
        annealed_langevin(score, [0.1, 1.0], (4, 2), 2, 1e-3, g)
    with pytest.raises(ValueError, match="sigmas must be a non-empty"):
        annealed_langevin(score, [], (4, 2), 2, 1e-3, g)
    with pytest.raises(ValueError, match="shape must be"):
        annealed_langevin(score, [1.0, 0.1], (4, 0), 2, 1e-3, g)
    with pytest.raises(ValueError, match="x_init must be a tensor of shape"):
        annealed_langevin(score, [1.0, 0.1], (4, 2), 2, 1e-3, g, x_init=torch.zeros(3, 2))
    with pytest.raises(ValueError, match="n_steps_each must be an int >= 1"):
        annealed_langevin(score, [1.0, 0.1], (4, 2), 0, 1e-3, g)
    with pytest.raises(TypeError, match="score_fn must be callable"):
        annealed_langevin(None, [1.0, 0.1], (4, 2), 2, 1e-3, g)
    with pytest.raises(ValueError, match="sigma must be > 0"):
        dsm_objective(score, torch.zeros(4, 2), torch.zeros(4, 2), 0.0)
    with pytest.raises(ValueError, match="noise must be a tensor of the shape of x0"):
        dsm_objective(score, torch.zeros(4, 2), torch.zeros(3, 2), 0.5)
    with pytest.raises(ValueError, match="sigmas must be a non-empty 1-D tensor"):
        dsm_loss(score, torch.zeros(4, 2), torch.tensor([0.5, -1.0]), g)
    with pytest.raises(ValueError, match="true_score must be a tensor"):
        explicit_score_matching_loss(score, torch.zeros(4, 2), 0.5, torch.zeros(4, 3))
    with pytest.raises(TypeError, match="floating-point tensor"):
        hyvarinen_loss(score, torch.zeros(4, 2, dtype=torch.long), 0.5)
    with pytest.raises(TypeError, match="config must be a ScoreConfig"):
        train_score_model(torch.zeros(4, 2), {"steps": 1}, generator=g)
    with pytest.raises(ValueError, match=r"data must have shape \(batch, dim\)"):
        train_score_model(torch.zeros(0, 2), ScoreConfig(), generator=g)
    with pytest.raises(ValueError, match="sigma_max must be > sigma_min"):
        ScoreConfig(sigma_min=1.0, sigma_max=0.5)
    with pytest.raises(ValueError, match="n_sigmas must be None or an int >= 2"):
        ScoreConfig(n_sigmas=1)
    with pytest.raises(ValueError, match="embed_dim must be even"):
        ScoreMLP(2, embed_dim=3)
    with pytest.raises(ValueError, match=r"x_hat must have shape \(batch, 2\)"):
        ScoreMLP(2)(torch.zeros(3, 3), 0.5)
    with pytest.raises(ValueError, match="sigma must be > 0"):
        ScoreMLP(2)(torch.zeros(3, 2), torch.tensor([0.5, 0.0, 1.0]))
    with pytest.raises(TypeError, match="path must be a NoisePath"):
        as_path_model(score, "ve")
    with pytest.raises(ValueError, match="max_distance must be a finite number > 0"):
        mode_weights(torch.zeros(3, 2), MIXTURE.means, 0.0)
    with pytest.raises(ValueError, match="means shape"):
        mode_weights(torch.zeros(3, 2), np.zeros((4, 3)), 1.0)


# --------------------------------------------------------------------------- GPU
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gpu_training_step_and_samplers(dtype: torch.dtype) -> None:
    device = torch.device("cuda")
    data = torch.tensor(MIXTURE.sample(4000, rng=0).X, dtype=dtype, device=device)
    config = ScoreConfig(hidden_dim=64, n_layers=2, steps=400, batch_size=256)
    fit = train_score_model(data, config, generator=torch.Generator(device).manual_seed(0))
    parameter = next(fit.model.parameters())
    assert parameter.device.type == "cuda" and parameter.dtype == dtype
    floor = float(dsm_loss(EXACT.score, data.double(), torch.tensor([0.01, 5.0]), torch.Generator(device).manual_seed(9), continuous=True))
    assert np.isfinite(fit.losses).all() and floor < fit.losses[-50:].mean() < fit.losses[:20].mean()  # training makes progress
    sigmas = geometric_sigmas(0.01, 5.0, 10)
    with torch.no_grad():
        trained = annealed_langevin(fit.model, sigmas, (2000, 2), 20, 1e-4, torch.Generator(device).manual_seed(1), dtype=dtype)
        exact = annealed_langevin(EXACT.score, sigmas, (2000, 2), 20, 1e-4, torch.Generator(device).manual_seed(1), dtype=dtype)
        via_footing = ddim(fit.denoiser, fit.path, 20, (500, 2), torch.Generator(device).manual_seed(2), dtype=dtype)
    assert trained.x.device.type == exact.x.device.type == via_footing.x.device.type == "cuda"
    assert trained.x.dtype == exact.x.dtype == dtype and torch.isfinite(trained.x).all()
    weights = mode_weights(exact.x, MIXTURE.means, 0.8)
    assert weights.sum() > 0.99 and np.abs(weights - 1 / 8).max() < 0.03
    first = annealed_langevin(EXACT.score, sigmas, (64, 2), 5, 1e-4, torch.Generator(device).manual_seed(3), dtype=dtype)
    again = annealed_langevin(EXACT.score, sigmas, (64, 2), 5, 1e-4, torch.Generator(device).manual_seed(3), dtype=dtype)
    assert torch.equal(first.x, again.x)
