"""Tests of mlnotes.diffusion.edm (chapter book/diffusion/edm.ipynb): EDM's family, preconditioning, loss and samplers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mlnotes.datasets import GaussianMixture
from mlnotes.diffusion.analytic import GaussianMixtureDenoiser, mixture_of_8
from mlnotes.diffusion.common import (
    DiscreteVPPath,
    EDMPath,
    EDMPrecond,
    LinearPath,
    VEPath,
    VPPath,
    ddim,
    edm_coefficients,
    edm_sigmas,
    euler_ode,
    heun_ode,
    velocity_from_x0,
)
from mlnotes.diffusion.edm import (
    PAPER_SCHEDULE,
    RING_SCHEDULE,
    EDMTrainConfig,
    NoiseConditionedMLP,
    PlainDenoiser,
    SigmaSchedule,
    check_exercise_1,
    check_exercise_2,
    check_exercise_3,
    converged_solution,
    convergence_order,
    denoising_mse,
    edm_loss,
    edm_loss_weight,
    edm_stochastic_sampler,
    noise_path_family,
    preconditioned_pair,
    sampler_suite,
    solve_pf_ode,
    start_points,
    train_edm_denoiser,
    training_sigmas,
    transport_error,
)
from mlnotes.metrics import noise_floor, sliced_wasserstein

F64 = torch.float64
MIXTURE = mixture_of_8()
DENOISER = GaussianMixtureDenoiser(MIXTURE)
SIGMA_DATA = math.sqrt(2.0**2 / 2 + 0.2**2)  # root mean square of a coordinate of the ring: radius^2 / 2 + std^2


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------- the family and the ODE
def test_family_has_the_four_paths_and_their_velocity_is_the_sigma_ode_by_the_chain_rule():
    family = noise_path_family()
    assert [type(m.path) for m in family] == [VPPath, VEPath, LinearPath, EDMPath]
    assert all(m.s and m.sigma and m.source for m in family)
    x = torch.randn(16, 2, generator=gen(2), dtype=F64) * 3
    for member in family:
        path = member.path
        t = torch.linspace(0.1, 0.9, 16, dtype=F64) * (path.t_max - path.t_min) + path.t_min
        s, sigma, ds, dsigma = path.s(t)[:, None], path.sigma(t)[:, None], path.ds_dt(t)[:, None], path.dsigma_dt(t)[:, None]
        x0 = DENOISER(x / s, sigma[:, 0])
        # dx/dt = s' x_hat + s (dx_hat/dsigma) sigma' with dx_hat/dsigma = (x_hat - D) / sigma  (the theorem of the chapter)
        by_chain_rule = ds * (x / s) + s * dsigma * ((x / s) - x0) / sigma
        torch.testing.assert_close(velocity_from_x0(x, x0, t, path), by_chain_rule, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("path", [DiscreteVPPath(1000), VPPath(), VEPath(), LinearPath(), EDMPath()], ids=repr)
def test_ddim_eta_0_is_euler_in_sigma_on_the_same_levels(path):
    shape = (64, 2)
    if isinstance(path, DiscreteVPPath):
        levels = path.sigmas[path.timesteps(30) - 1]
    else:
        levels = path.sigma(torch.linspace(path.t_max, path.t_min, 30, dtype=F64))
    levels = torch.cat([levels, torch.zeros(1, dtype=F64)])
    euler = solve_pf_ode(DENOISER, start_points(shape, gen(3), float(levels[0])), levels, method="euler")
    theirs = ddim(DENOISER, path, 30, shape, gen(3), dtype=F64)
    assert euler.nfe == theirs.nfe == 30
    torch.testing.assert_close(euler.x, theirs.x, rtol=1e-10, atol=1e-10)


def test_euler_on_the_edm_and_straight_paths_is_ddim_and_heun_is_algorithm_1():
    shape = (64, 2)
    edm = euler_ode(DENOISER, EDMPath(), 18, shape, gen(4), dtype=F64).x
    straight = euler_ode(DENOISER, LinearPath(), 18, shape, gen(4), dtype=F64).x
    ours = solve_pf_ode(DENOISER, start_points(shape, gen(4), 80.0), edm_sigmas(18), method="euler").x
    torch.testing.assert_close(edm, straight, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(edm, ours, rtol=1e-10, atol=1e-10)
    # Euler in the VP path's own time is another method.
    assert (euler_ode(DENOISER, VPPath(), 18, shape, gen(4), dtype=F64).x - edm).abs().max() > 1e-3
    heun = heun_ode(DENOISER, EDMPath(), 18, shape, gen(4), dtype=F64)
    alg1 = solve_pf_ode(DENOISER, start_points(shape, gen(4), 80.0), edm_sigmas(18))
    alg2 = edm_stochastic_sampler(DENOISER, 18, shape, gen(4), dtype=F64)  # S_churn = 0
    assert heun.nfe == alg1.nfe == alg2.nfe == 35
    torch.testing.assert_close(alg1.x, heun.x, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(alg2.x, heun.x, rtol=1e-12, atol=1e-12)


def test_record_keeps_every_level_and_ends_at_the_solution():
    x = start_points((10, 2), gen(5), 10.0)
    sigmas = RING_SCHEDULE.sigmas(6)
    states: list[torch.Tensor] = []
    result = solve_pf_ode(DENOISER, x, sigmas, record=states)
    assert len(states) == 7 and result.nfe == 11
    torch.testing.assert_close(states[0], x)
    torch.testing.assert_close(states[-1], result.x)


def test_heun_converges_to_the_exact_transport_of_a_gaussian_at_second_order():
    """Data N(mu, v I): x_hat(sigma) - mu scales by sqrt(v + sigma^2); the last step is D at sigma_min."""
    mu, v, sigma_max, sigma_min = np.array([1.0, -2.0]), 0.3, 20.0, 1e-4
    gaussian = GaussianMixtureDenoiser(GaussianMixture(mu[None], np.array([math.sqrt(v)])))
    x = start_points((50, 2), gen(6), sigma_max)
    expected = mu + (x.numpy() - mu) * math.sqrt(v + sigma_min**2) / math.sqrt(v + sigma_max**2) * v / (v + sigma_min**2)
    errors = [np.abs(converged_solution(gaussian, x, sigma_max, n_steps=n).numpy() - expected).max() for n in (64, 128, 256)]
    assert errors[-1] < 3e-4
    assert all(3.5 < a / b < 4.6 for a, b in zip(errors, errors[1:])), errors


# --------------------------------------------------------------------------- convergence order and schedules
def test_euler_is_first_order_and_heun_second_order_with_the_exact_denoiser():
    shape = (100, 2)
    x = start_points(shape, gen(7), RING_SCHEDULE.sigma_max)
    reference = solve_pf_ode(DENOISER, x, RING_SCHEDULE.sigmas(512)).x
    counts = {"euler": [25, 50, 100, 200], "heun": [12, 25, 50, 100]}
    orders = {}
    for method, steps in counts.items():
        errors = [transport_error(solve_pf_ode(DENOISER, x, RING_SCHEDULE.sigmas(n), method=method).x, reference) for n in steps]
        assert all(a > b for a, b in zip(errors, errors[1:]))
        orders[method] = convergence_order(steps, errors)
    assert abs(orders["euler"] - 1.0) < 0.15, orders
    assert abs(orders["heun"] - 2.0) < 0.3, orders


def test_tuned_heun_beats_ddim_100_in_transport_and_the_paper_schedule_does_not():
    shape = (100, 2)
    reference = converged_solution(DENOISER, start_points(shape, gen(1), 80.0), 80.0, n_steps=256)
    ddim_100 = transport_error(ddim(DENOISER, DiscreteVPPath(1000), 100, shape, gen(1), dtype=F64).x, reference)
    paper = transport_error(heun_ode(DENOISER, EDMPath(), 18, shape, gen(1), dtype=F64, **PAPER_SCHEDULE.as_kwargs()).x, reference)
    ring = transport_error(heun_ode(DENOISER, EDMPath(), 18, shape, gen(1), dtype=F64, **RING_SCHEDULE.as_kwargs()).x, reference)
    assert ring < 0.6 * ddim_100 < paper


def test_convergence_order_is_robust_and_exact_on_power_laws():
    n = [10, 20, 40, 80, 160]
    assert convergence_order(n, [3.0 * k**-2.0 for k in n]) == pytest.approx(2.0)
    noisy = [3.0 * k**-1.0 for k in n]
    noisy[-1] = 1e-9  # one point at the reference's accuracy
    assert convergence_order(n, noisy) == pytest.approx(1.0, abs=0.05)


def test_sigma_schedule_is_edm_sigmas_and_validates():
    torch.testing.assert_close(RING_SCHEDULE.sigmas(18), edm_sigmas(18, 0.03, 10.0, 4.0))
    assert PAPER_SCHEDULE.as_kwargs() == {"sigma_min": 0.002, "sigma_max": 80.0, "rho": 7.0}
    with pytest.raises(ValueError, match="sigma_max must be > sigma_min"):
        SigmaSchedule(1.0, 0.5, 7.0)
    with pytest.raises(ValueError, match="rho must be a finite number > 0"):
        SigmaSchedule(0.1, 1.0, -1.0)


# --------------------------------------------------------------------------- preconditioning and the loss
@pytest.mark.parametrize("sigma_data", [0.5, 1.43])
def test_edm_coefficients_are_table_1(sigma_data):
    sigma = torch.logspace(-3, 2, 11, dtype=F64)
    c_skip, c_out, c_in, c_noise = edm_coefficients(sigma, sigma_data)
    s, d = sigma.numpy(), sigma_data
    np.testing.assert_allclose(c_skip.numpy(), d**2 / (s**2 + d**2), rtol=1e-12)
    np.testing.assert_allclose(c_out.numpy(), s * d / np.sqrt(s**2 + d**2), rtol=1e-12)
    np.testing.assert_allclose(c_in.numpy(), 1 / np.sqrt(s**2 + d**2), rtol=1e-12)
    np.testing.assert_allclose(c_noise.numpy(), np.log(s) / 4, rtol=1e-12)
    np.testing.assert_allclose(edm_loss_weight(sigma, d).numpy(), 1 / c_out.numpy() ** 2, rtol=1e-12)


def test_network_input_and_target_have_unit_variance_on_the_ring():
    n = 50_000
    x0 = torch.tensor(MIXTURE.sample(n, rng=0).X)
    noise = torch.randn(x0.shape, generator=gen(8), dtype=F64)
    for sigma in (0.002, 0.05, 0.5, 3.0, 80.0):
        net_input, target = preconditioned_pair(x0, noise, torch.full((n,), sigma, dtype=F64), SIGMA_DATA)
        assert float(net_input.pow(2).mean()) == pytest.approx(1.0, abs=0.03), sigma
        assert float(target.pow(2).mean()) == pytest.approx(1.0, abs=0.03), sigma


def test_weighted_loss_is_the_raw_networks_unit_weight_regression():
    raw = NoiseConditionedMLP(2, 16, 2, generator=gen(9)).double()
    precond = EDMPrecond(raw, SIGMA_DATA)
    x0 = torch.tensor(MIXTURE.sample(64, rng=1).X)
    sigma = training_sigmas(64, gen(10), dtype=F64)
    noise = torch.randn(x0.shape, generator=gen(11), dtype=F64)
    net_input, target = preconditioned_pair(x0, noise, sigma, SIGMA_DATA)
    raw_loss = (raw(net_input, torch.log(sigma) / 4) - target).pow(2).mean()
    torch.testing.assert_close(edm_loss(precond, x0, sigma, noise, sigma_data=SIGMA_DATA), raw_loss, rtol=1e-10, atol=1e-12)
    # Without sigma_data the loss is the plain mean squared denoising error.
    plain = (precond(x0 + sigma[:, None] * noise, sigma) - x0).pow(2).mean()
    torch.testing.assert_close(edm_loss(precond, x0, sigma, noise), plain, rtol=1e-12, atol=1e-14)


def test_training_sigmas_are_log_normal_and_seeded():
    sigma = training_sigmas(40_000, gen(12), p_mean=-1.2, p_std=1.2, dtype=F64)
    assert float(sigma.log().mean()) == pytest.approx(-1.2, abs=0.03)
    assert float(sigma.log().std()) == pytest.approx(1.2, abs=0.03)
    torch.testing.assert_close(training_sigmas(5, gen(12)), training_sigmas(5, gen(12)))


def test_denoising_mse_of_the_exact_denoiser_is_the_gaussian_closed_form():
    v = 0.5
    gaussian = GaussianMixture(np.zeros((1, 2)), np.array([math.sqrt(v)]))
    x0 = torch.tensor(gaussian.sample(40_000, rng=2).X)
    sigmas = [0.1, 1.0, 5.0]
    mse = denoising_mse(GaussianMixtureDenoiser(gaussian), x0, sigmas, gen(13))
    np.testing.assert_allclose(mse.numpy(), [v * s**2 / (v + s**2) for s in sigmas], rtol=0.03)


# --------------------------------------------------------------------------- training
def test_train_edm_denoiser_learns_and_preconditioning_fixes_low_noise():
    # An off-centre blob: the best linear denoiser is not c_skip x_hat, so a tiny budget already pays off
    # (on the centred ring, F = 0 is the best linear denoiser and training first sits on a plateau).
    blob = GaussianMixture(np.array([[3.0, -1.0]]), np.array([0.3]))
    data = torch.tensor(blob.sample(2000, rng=3).X, dtype=torch.float32)
    config = {"steps": 150, "batch_size": 128, "hidden_dim": 32, "n_layers": 2, "lr": 3e-3}
    fit = train_edm_denoiser(data, EDMTrainConfig(**config), generator=gen(14))
    assert isinstance(fit.denoiser, EDMPrecond) and not fit.denoiser.training
    assert fit.sigma_data == pytest.approx(float(data.pow(2).mean().sqrt()))
    assert fit.losses.shape == (150,) and fit.losses[-30:].mean() < 0.8 * fit.losses[:10].mean()
    plain = train_edm_denoiser(data, EDMTrainConfig(**config, precondition=False), generator=gen(14))
    assert isinstance(plain.denoiser, PlainDenoiser) and plain.losses[-30:].mean() < 0.2 * plain.losses[:10].mean()
    untrained = EDMPrecond(NoiseConditionedMLP(2, 32, 2, generator=gen(15)), fit.sigma_data)
    test = torch.tensor(blob.sample(2000, rng=4).X, dtype=torch.float32)
    sigma, noise = training_sigmas(2000, gen(19)), torch.randn(test.shape, generator=gen(20))
    with torch.no_grad():
        trained_loss = edm_loss(fit.denoiser, test, sigma, noise, sigma_data=fit.sigma_data)
        untrained_loss = edm_loss(untrained, test, sigma, noise, sigma_data=fit.sigma_data)
        trained_mse, untrained_mse, plain_mse = (denoising_mse(d, test, [0.01, 0.5, 2.0], gen(16))
                                                 for d in (fit.denoiser, untrained, plain.denoiser))
    assert trained_loss < 0.75 * untrained_loss
    assert trained_mse[1] < 0.6 * untrained_mse[1] and trained_mse[2] < 0.3 * untrained_mse[2]
    # At sigma = 0.01 the preconditioned denoiser is near the identity by construction (error ~ sigma^2), the plain one is not.
    assert max(trained_mse[0], untrained_mse[0]) < 2e-4 and plain_mse[0] > 0.01
    # Same seed, same run.
    again = train_edm_denoiser(data, EDMTrainConfig(steps=5, hidden_dim=8, n_layers=1), generator=gen(17))
    twice = train_edm_denoiser(data, EDMTrainConfig(steps=5, hidden_dim=8, n_layers=1), generator=gen(17))
    np.testing.assert_array_equal(again.losses, twice.losses)


# --------------------------------------------------------------------------- the stochastic sampler and the suite
def test_stochastic_sampler_with_churn_reproduces_the_mixture_and_is_seeded():
    n = 2000
    run = edm_stochastic_sampler(DENOISER, 18, (n, 2), gen(18), schedule=RING_SCHEDULE, s_churn=10.0)
    assert run.nfe == 35
    torch.testing.assert_close(run.x, edm_stochastic_sampler(DENOISER, 18, (n, 2), gen(18), schedule=RING_SCHEDULE, s_churn=10.0).x)
    no_churn = heun_ode(DENOISER, EDMPath(), 18, (n, 2), gen(18), **RING_SCHEDULE.as_kwargs()).x
    assert (run.x - no_churn).abs().max() > 0.01  # the churn noise changed the paths
    floor = noise_floor(lambda a, b: sliced_wasserstein(a, b, 64, rng=0), lambda k, r: MIXTURE.sample(k, rng=r).X, n, repeats=4, rng=5)
    assert sliced_wasserstein(run.x.double().numpy(), MIXTURE.sample(n, rng=6).X, 64, rng=0) < floor.mean + 3 * floor.std


def test_sampler_suite_lists_every_sampler_of_the_part():
    velocity = lambda x, t: DENOISER.velocity(x, t, LinearPath())  # noqa: E731
    suite = sampler_suite(DENOISER, velocity, steps={"DDPM ancestral": (20,)})
    families = {spec.family for spec in suite}
    assert len(families) == 9 and {"DDPM ancestral", "DDIM eta=0", "Rectified flow Euler"} <= families
    by_key = {(s.family, s.steps): s for s in suite}
    assert ("DDPM ancestral", 1000) not in by_key and not by_key["DDPM ancestral", 20].deterministic
    assert by_key["DDIM eta=0", 50].deterministic and not by_key["Euler-Maruyama VP-SDE", 100].deterministic
    assert by_key["Heun PF-ODE (EDM, ring schedule)", 18].run((8, 2), gen(0)).nfe == 35
    assert by_key["Rectified flow Euler", 5].run((8, 2), gen(0)).nfe == 5
    with pytest.raises(ValueError, match="unknown sampler families"):
        sampler_suite(DENOISER, velocity, steps={"DPM-Solver": (10,)})


def test_transport_error_is_the_rms_distance():
    a = torch.zeros(4, 2, dtype=F64)
    b = torch.tensor([[3.0, 4.0], [0, 0], [0, 0], [0, 0]], dtype=F64)
    assert transport_error(a, b) == pytest.approx(2.5)  # sqrt(25 / 4)


def test_exercise_checkers_accept_the_answer_and_reject_others(capsys):
    assert check_exercise_1(0.25 / math.sqrt(0.5)) and not check_exercise_1(0.5)
    assert check_exercise_2(math.sqrt(math.exp(0.05 + 19.9 / 8) - 1)) and not check_exercise_2(0.5)
    c_skip, c_out = 0.25 / (0.0001 + 0.25), 0.01 * 0.5 / math.sqrt(0.0001 + 0.25)
    assert check_exercise_3((1 - c_skip * 1.02) / c_out) and not check_exercise_3(-2.0)
    assert not check_exercise_1("answer")
    assert "Correct" in capsys.readouterr().out


# --------------------------------------------------------------------------- bad input
def test_bad_inputs_raise_clear_errors():
    x = torch.zeros(4, 2)
    with pytest.raises(ValueError, match="strictly decreasing"):
        solve_pf_ode(DENOISER, x, [1.0, 2.0, 0.0])
    with pytest.raises(ValueError, match="at least 2 noise levels"):
        solve_pf_ode(DENOISER, x, [1.0])
    with pytest.raises(ValueError, match="finite and > 0"):
        solve_pf_ode(DENOISER, x, [1.0, -0.5])
    with pytest.raises(ValueError, match="method must be 'euler' or 'heun'"):
        solve_pf_ode(DENOISER, x, [1.0, 0.0], method="rk4")
    with pytest.raises(ValueError, match="x must be finite"):
        solve_pf_ode(DENOISER, torch.full((4, 2), float("nan")), [1.0, 0.0])
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        solve_pf_ode(DENOISER, torch.zeros(4, 2, dtype=torch.long), [1.0, 0.0])
    with pytest.raises(ValueError, match="s_churn must be a finite number >= 0"):
        edm_stochastic_sampler(DENOISER, 5, (4, 2), gen(), s_churn=-1.0)
    with pytest.raises(TypeError, match="schedule must be a SigmaSchedule"):
        edm_stochastic_sampler(DENOISER, 5, (4, 2), gen(), schedule=(0.1, 1.0, 7.0))
    with pytest.raises(ValueError, match="n_steps must be an int >= 1"):
        edm_stochastic_sampler(DENOISER, 0, (4, 2), gen())
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        edm_stochastic_sampler(DENOISER, 5, (4, 2), 0)
    with pytest.raises(ValueError, match="sigma must be"):
        preconditioned_pair(x, x, torch.ones(3), 0.5)
    with pytest.raises(ValueError, match="sigma_data must be a finite number > 0"):
        edm_loss_weight(torch.ones(3), 0.0)
    with pytest.raises(ValueError, match="n_steps and errors must be 1-D"):
        convergence_order([10, 20], [0.1, 0.05])
    with pytest.raises(ValueError, match="must be finite and > 0"):
        convergence_order([10, 20, 40], [0.1, 0.0, 0.01])
    with pytest.raises(ValueError, match="x and reference must have the same shape"):
        transport_error(torch.zeros(4, 2), torch.zeros(5, 2))
    with pytest.raises(ValueError, match="EDMTrainConfig.steps must be an int >= 1"):
        EDMTrainConfig(steps=0)
    with pytest.raises(TypeError, match="EDMTrainConfig.precondition must be a bool"):
        EDMTrainConfig(precondition="yes")
    with pytest.raises(ValueError, match=r"data must have shape \(n, dim\)"):
        train_edm_denoiser(torch.zeros(4, 2, 2), generator=gen())
    with pytest.raises(ValueError, match="data must be finite"):
        train_edm_denoiser(torch.tensor([[float("inf"), 0.0]]), generator=gen())
    with pytest.raises(TypeError, match="config must be an EDMTrainConfig"):
        train_edm_denoiser(x, {"steps": 1}, generator=gen())
    with pytest.raises(ValueError, match="noise_features must be even"):
        NoiseConditionedMLP(2, noise_features=3)
    with pytest.raises(ValueError, match="sigmas must be a non-empty list"):
        denoising_mse(DENOISER, x, [0.0], gen())


# --------------------------------------------------------------------------- GPU
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_samplers_on_cuda_match_the_cpu(dtype):
    device = torch.device("cuda")
    shape = (512, 2)
    cpu = heun_ode(DENOISER, EDMPath(), 18, shape, gen(0), dtype=F64, **RING_SCHEDULE.as_kwargs()).x
    drawn_on_gpu = start_points(shape, torch.Generator(device).manual_seed(0), RING_SCHEDULE.sigma_max, dtype=dtype)
    assert drawn_on_gpu.device.type == "cuda" and drawn_on_gpu.dtype == dtype
    # CPU and CUDA generators draw different numbers: start from the CPU draw, to compare with the CPU run.
    start = start_points(shape, gen(0), RING_SCHEDULE.sigma_max, dtype=dtype).to(device)
    ours = solve_pf_ode(DENOISER, start, RING_SCHEDULE.sigmas(18))
    assert ours.x.device.type == "cuda" and ours.x.dtype == dtype and ours.nfe == 35
    tolerance = 1e-4 if dtype == torch.float32 else 1e-10
    torch.testing.assert_close(ours.x.cpu().double(), cpu, rtol=tolerance, atol=tolerance)
    churn = edm_stochastic_sampler(DENOISER, 18, shape, torch.Generator(device).manual_seed(1), schedule=RING_SCHEDULE,
                                   s_churn=10.0, dtype=dtype)
    assert churn.x.device.type == "cuda" and churn.x.dtype == dtype and torch.isfinite(churn.x).all()
    reference = MIXTURE.sample(512, rng=2).X
    assert sliced_wasserstein(churn.x.double().cpu().numpy(), reference, rng=0) < 0.25


@pytest.mark.gpu
@pytest.mark.parametrize("precondition", [True, False])
def test_training_on_cuda(precondition):
    device = torch.device("cuda")
    blob = GaussianMixture(np.array([[3.0, -1.0]]), np.array([0.3]))  # as in the CPU test: learnable in 150 steps
    data = torch.tensor(blob.sample(2000, rng=3).X, dtype=torch.float32, device=device)
    config = EDMTrainConfig(steps=150, batch_size=128, hidden_dim=32, n_layers=2, lr=3e-3, precondition=precondition)
    fit = train_edm_denoiser(data, config, generator=torch.Generator(device).manual_seed(0))
    assert next(fit.denoiser.parameters()).device.type == "cuda"
    assert fit.losses[-30:].mean() < 0.8 * fit.losses[:10].mean()
    with torch.no_grad():
        samples = heun_ode(fit.denoiser, EDMPath(), 18, (256, 2), torch.Generator(device).manual_seed(1), **RING_SCHEDULE.as_kwargs())
    assert samples.x.device.type == "cuda" and torch.isfinite(samples.x).all()
