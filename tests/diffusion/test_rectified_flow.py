"""Tests of mlnotes.diffusion.rectified_flow: loss, training, reflow, straightness and the 1-D OT reference."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize, stats

from mlnotes.datasets import GaussianMixture
from mlnotes.diffusion.analytic import GaussianMixtureDenoiser, mixture_of_8
from mlnotes.diffusion.common import LinearPath, rectified_flow_euler
from mlnotes.diffusion.rectified_flow import (
    RectifiedFlowConfig,
    VelocityMLP,
    check_exercise_1,
    check_exercise_2,
    check_exercise_3,
    crossing_fraction,
    euler_trajectories,
    gaussian_ot_map_1d,
    monotone_coupling,
    reflow,
    straightness,
    train_rectified_flow,
    transport_cost,
    velocity_loss,
)
from mlnotes.metrics import sliced_wasserstein

TWO_BUMPS = GaussianMixture(np.array([[-2.0], [1.5]]), np.array([0.3, 0.5]), np.array([0.4, 0.6]))


def exact_velocity(mixture: GaussianMixture):
    denoiser, path = GaussianMixtureDenoiser(mixture), LinearPath()
    return lambda x, t: denoiser.velocity(x, t, path)


# --------------------------------------------------------------------------- loss and network
def test_velocity_loss_matches_hand_computation() -> None:
    model = VelocityMLP(2, 16, 2, 4, generator=torch.Generator().manual_seed(0)).double()
    g = torch.Generator().manual_seed(1)
    x0, x1, t = torch.randn(5, 2, generator=g, dtype=torch.float64), torch.randn(5, 2, generator=g, dtype=torch.float64), torch.rand(5, generator=g, dtype=torch.float64)
    with torch.no_grad():
        by_hand = np.mean([float(((x1[i] - x0[i]) - model(((1 - t[i]) * x0[i] + t[i] * x1[i])[None], t[i : i + 1])[0]).pow(2).sum()) for i in range(5)])
    assert float(velocity_loss(model, x0, x1, t).detach()) == pytest.approx(by_hand, rel=1e-12)


def test_exact_velocity_minimises_the_loss_better_than_perturbations() -> None:
    """The marginal velocity E[x1 - x0 | x_t] is the minimiser of the regression (theorem in the chapter)."""
    g = torch.Generator().manual_seed(0)
    x0 = torch.tensor(mixture_of_8().sample(20000, rng=0).X)
    x1 = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    t = torch.rand(x0.shape[0], generator=g, dtype=torch.float64) * 0.98 + 0.01
    exact = exact_velocity(mixture_of_8())
    best = float(velocity_loss(exact, x0, x1, t))
    for scale in (0.9, 1.1):
        assert float(velocity_loss(lambda x, s: scale * exact(x, s), x0, x1, t)) > best
    assert float(velocity_loss(lambda x, s: exact(x, s) + 0.1, x0, x1, t)) > best


def test_network_seeded_init_is_reproducible_and_shapes() -> None:
    a = VelocityMLP(3, generator=torch.Generator().manual_seed(4))
    b = VelocityMLP(3, generator=torch.Generator().manual_seed(4))
    x = torch.randn(7, 3)
    assert torch.equal(a(x, 0.3), b(x, 0.3)) and a(x, torch.rand(7)).shape == (7, 3)


# --------------------------------------------------------------------------- exact flow: many vs one step
def test_exact_velocity_many_steps_reach_the_data_one_step_collapses() -> None:
    mixture, n = mixture_of_8(), 2000
    truth = mixture.sample(n, rng=1).X
    floor = sliced_wasserstein(mixture.sample(n, rng=2).X, truth, rng=0)
    many = rectified_flow_euler(exact_velocity(mixture), 100, (n, 2), torch.Generator().manual_seed(0)).x
    one = rectified_flow_euler(exact_velocity(mixture), 1, (n, 2), torch.Generator().manual_seed(0)).x
    assert sliced_wasserstein(many.numpy(), truth, rng=0) < 1.5 * floor
    assert sliced_wasserstein(one.numpy(), truth, rng=0) > 10 * floor
    # One step from t = 1 lands on x1 - (x1 - E[x0]) = E[x0] = 0: the mean, for every start.
    assert one.abs().max() < 1e-5


# --------------------------------------------------------------------------- trajectories and straightness
def test_trajectories_end_where_the_footing_sampler_ends() -> None:
    model = VelocityMLP(2, 16, 2, 4, generator=torch.Generator().manual_seed(0))
    noise = torch.randn(10, 2, generator=torch.Generator().manual_seed(1))
    states = euler_trajectories(model, noise, 7)
    with torch.no_grad():
        end = rectified_flow_euler(model, 7, (10, 2), torch.Generator(), noise=noise).x
    assert states.shape == (8, 10, 2) and torch.equal(states[0], noise)
    torch.testing.assert_close(states[-1], end)


def test_straightness_is_zero_for_straight_flows_and_positive_for_curved() -> None:
    noise = torch.randn(500, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert straightness(lambda x, t: torch.ones_like(x) * torch.tensor([1.0, -2.0], dtype=x.dtype), noise, 20) < 1e-25
    # The exact velocity of a point mass at mu is (x - mu) / t: straight lines at constant speed.
    mu = torch.tensor([1.0, 2.0], dtype=torch.float64)
    assert straightness(lambda x, t: (x - mu) / max(t, 1e-12), noise, 20) < 1e-20
    assert straightness(exact_velocity(mixture_of_8()), noise, 20) > 0.5


# --------------------------------------------------------------------------- 1-D optimal transport
@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 8))
def test_monotone_coupling_is_the_optimal_assignment(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    x0, x1 = rng.normal(size=n), rng.normal(size=n) * 2 + 1
    rows, cols = optimize.linear_sum_assignment((x0[:, None] - x1[None, :]) ** 2)
    assert transport_cost(x0, monotone_coupling(x0, x1)) == pytest.approx(np.mean((x0[rows] - x1[cols]) ** 2), abs=1e-12)
    assert crossing_fraction(x0, monotone_coupling(x0, x1)) == 0.0
    assert sorted(monotone_coupling(x0, x1)) == sorted(x1)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 60))
def test_crossing_fraction_is_kendall_discordance(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    x0, x1 = rng.normal(size=n), rng.normal(size=n)
    tau = stats.kendalltau(x0, x1).statistic
    assert crossing_fraction(x0, x1) == pytest.approx((1 - tau) / 2, abs=1e-12)


def test_gaussian_ot_map_against_scipy_quantiles_and_exact_flow() -> None:
    z = np.linspace(-2.5, 2.5, 41)
    one = GaussianMixture(np.array([[1.0]]), np.array([2.0]))
    np.testing.assert_allclose(gaussian_ot_map_1d(one, z), 1.0 + 2.0 * z, atol=1e-8)
    mapped = gaussian_ot_map_1d(TWO_BUMPS, z)
    cdf = 0.4 * stats.norm.cdf(mapped, -2.0, 0.3) + 0.6 * stats.norm.cdf(mapped, 1.5, 0.5)
    np.testing.assert_allclose(cdf, stats.norm.cdf(z), atol=1e-9)
    # The exact 1-D rectified flow transports noise by this monotone map.
    noise = torch.tensor(z[:, None])
    end = rectified_flow_euler(exact_velocity(TWO_BUMPS), 1000, (41, 1), torch.Generator(), dtype=torch.float64, noise=noise).x
    np.testing.assert_allclose(end[:, 0].numpy(), mapped, atol=0.02)


# --------------------------------------------------------------------------- training and reflow
def test_training_improves_and_reflow_straightens_and_lowers_one_step_distance() -> None:
    mixture = mixture_of_8()
    data = torch.tensor(mixture.sample(4000, rng=0).X, dtype=torch.float32)
    truth = mixture.sample(1000, rng=1).X
    config = RectifiedFlowConfig(steps=1000, batch_size=128, hidden_dim=64, n_layers=2)
    fit = train_rectified_flow(data, config, generator=torch.Generator().manual_seed(0))
    assert fit.losses.shape == (1000,) and fit.losses[-50:].mean() < 0.85 * fit.losses[:20].mean()
    noise = torch.randn(1000, 2, generator=torch.Generator().manual_seed(2))

    def one_step(model: VelocityMLP) -> float:
        with torch.no_grad():
            return sliced_wasserstein(rectified_flow_euler(model, 1, (1000, 2), torch.Generator(), noise=noise).x.numpy(), truth, rng=0)

    refit, (pair_noise, samples) = reflow(fit.model, RectifiedFlowConfig(steps=300, batch_size=128, hidden_dim=64, n_layers=2), 2000, generator=torch.Generator().manual_seed(3), n_steps=30)
    assert pair_noise.shape == samples.shape == (2000, 2)
    assert refit.losses[-50:].mean() < 0.5 * refit.losses[:20].mean()
    assert straightness(refit.model, noise, 20) < 0.3 * straightness(fit.model, noise, 20)
    assert one_step(refit.model) < 0.5 * one_step(fit.model)


def test_training_is_deterministic_given_the_generator() -> None:
    data = torch.tensor(TWO_BUMPS.sample(200, rng=0).X, dtype=torch.float32)
    config = RectifiedFlowConfig(steps=20, batch_size=32, hidden_dim=16, n_layers=1)
    a = train_rectified_flow(data, config, generator=torch.Generator().manual_seed(5))
    b = train_rectified_flow(data, config, generator=torch.Generator().manual_seed(5))
    np.testing.assert_array_equal(a.losses, b.losses)


def test_bf16_autocast_trains_on_cpu() -> None:
    data = torch.tensor(TWO_BUMPS.sample(200, rng=0).X, dtype=torch.float32)
    config = RectifiedFlowConfig(steps=60, batch_size=64, hidden_dim=32, n_layers=2, amp_dtype=torch.bfloat16)
    fit = train_rectified_flow(data, config, generator=torch.Generator().manual_seed(0))
    assert np.isfinite(fit.losses).all() and fit.losses[-10:].mean() < fit.losses[:10].mean()


# --------------------------------------------------------------------------- exercises and bad input
def test_exercise_checkers() -> None:
    assert check_exercise_1(4.0) and not check_exercise_1(0.8) and not check_exercise_1("x")
    assert check_exercise_2(3.0) and not check_exercise_2(-1.0)
    assert check_exercise_3(0.5) and not check_exercise_3(0.0)
    # The answers are what the module computes.
    assert float(LinearPath().sigma(0.8)) == pytest.approx(4.0)
    point = GaussianMixture(np.array([[3.0]]), np.array([1e-4]))
    end = rectified_flow_euler(exact_velocity(point), 1, (1, 1), torch.Generator(), dtype=torch.float64, noise=torch.tensor([[-1.0]])).x
    assert float(end) == pytest.approx(3.0, abs=1e-3)


def test_bad_inputs() -> None:
    data = torch.randn(10, 2)
    g = torch.Generator()
    with pytest.raises(TypeError, match="config must be a RectifiedFlowConfig"):
        train_rectified_flow(data, {"steps": 1}, generator=g)
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        train_rectified_flow(data, RectifiedFlowConfig(), generator=0)
    with pytest.raises(ValueError, match=r"data must have shape \(batch, dim\)"):
        train_rectified_flow(torch.randn(0, 2), RectifiedFlowConfig(), generator=g)
    with pytest.raises(ValueError, match="data must be finite"):
        train_rectified_flow(torch.tensor([[float("nan"), 0.0]]), RectifiedFlowConfig(), generator=g)
    with pytest.raises(TypeError, match="floating-point tensor"):
        train_rectified_flow(torch.ones(4, 2, dtype=torch.long), RectifiedFlowConfig(), generator=g)
    with pytest.raises(ValueError, match="noise and samples must have the same shape"):
        train_rectified_flow((torch.randn(5, 2), torch.randn(4, 2)), RectifiedFlowConfig(), generator=g)
    with pytest.raises(ValueError, match="model has dim 3"):
        train_rectified_flow(data, RectifiedFlowConfig(steps=1), generator=g, model=VelocityMLP(3))
    with pytest.raises(ValueError, match="steps must be an int >= 1"):
        RectifiedFlowConfig(steps=0)
    with pytest.raises(ValueError, match="lr must be"):
        RectifiedFlowConfig(lr=float("nan"))
    with pytest.raises(ValueError, match="amp_dtype"):
        RectifiedFlowConfig(amp_dtype=torch.float64)
    with pytest.raises(ValueError, match="time_features must be even"):
        VelocityMLP(2, time_features=3)
    with pytest.raises(TypeError, match="model must be a VelocityMLP"):
        reflow(lambda x, t: x, RectifiedFlowConfig(), 10, generator=g)
    with pytest.raises(ValueError, match="x0 and x1 must hold the same number"):
        crossing_fraction(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="x0 must be 1-D points"):
        monotone_coupling(np.zeros((3, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="mixture must be a 1-D"):
        gaussian_ot_map_1d(mixture_of_8(), np.zeros(3))
    with pytest.raises(ValueError, match="x0 and x1 must share a shape"):
        velocity_loss(VelocityMLP(2), torch.zeros(3, 2), torch.zeros(2, 2), torch.zeros(3))


# --------------------------------------------------------------------------- GPU
@pytest.mark.gpu
@pytest.mark.parametrize("amp_dtype", [None, torch.bfloat16, torch.float16])
def test_gpu_training_reflow_and_sampling(amp_dtype: torch.dtype | None) -> None:
    device = torch.device("cuda")
    mixture = mixture_of_8()
    data = torch.tensor(mixture.sample(4000, rng=0).X, dtype=torch.float32, device=device)
    config = RectifiedFlowConfig(steps=300, batch_size=256, hidden_dim=64, n_layers=2, amp_dtype=amp_dtype)
    fit = train_rectified_flow(data, config, generator=torch.Generator(device).manual_seed(0))
    assert next(fit.model.parameters()).device.type == "cuda"
    assert np.isfinite(fit.losses).all() and fit.losses[-50:].mean() < 0.9 * fit.losses[:20].mean()
    refit, (noise, samples) = reflow(fit.model, config, 2000, generator=torch.Generator(device).manual_seed(1), n_steps=30)
    assert samples.device.type == "cuda" and np.isfinite(refit.losses).all()
    probe = torch.randn(500, 2, generator=torch.Generator(device).manual_seed(2), device=device)
    assert straightness(refit.model, probe, 20) < straightness(fit.model, probe, 20)
    half_model = copy.deepcopy(refit.model).to(torch.bfloat16)  # sampling in bf16 needs the weights in bf16 too
    with torch.no_grad():
        out = rectified_flow_euler(half_model, 5, (500, 2), torch.Generator(device).manual_seed(3), dtype=torch.bfloat16)
    assert out.x.dtype == torch.bfloat16 and out.x.device.type == "cuda" and torch.isfinite(out.x.float()).all()
