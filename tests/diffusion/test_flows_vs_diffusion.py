"""Tests of mlnotes.diffusion.flows_vs_diffusion: RK4, exact and Hutchinson traces, CNF likelihoods, flow matching as denoising."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from mlnotes.datasets import GaussianMixture
from mlnotes.diffusion.analytic import GaussianMixtureDenoiser, mixture_of_8
from mlnotes.diffusion.common import LinearPath, VPPath, denoiser_from_velocity, velocity_model_from_denoiser
from mlnotes.diffusion.flows_vs_diffusion import (
    AffineCoupling,
    CouplingFlow,
    GaussianLinearPathVelocity,
    check_exercise_1,
    check_exercise_2,
    check_exercise_3,
    cnf_log_likelihood,
    divergence_exact,
    divergence_hutchinson,
    flow_matching_denoising_weight,
    flow_matching_loss,
    hutchinson_probes,
    hutchinson_variance,
    mixture_path_log_prob,
    rk4_integrate,
    standard_normal_log_prob,
    weighted_denoising_loss,
)

MEAN = np.array([1.0, -0.5])
COV = np.array([[1.0, 0.6], [0.6, 0.5]])


def gaussian_points(n: int, seed: int = 0) -> torch.Tensor:
    return torch.tensor(np.random.default_rng(seed).multivariate_normal(MEAN, COV, size=n))


class SmallNet(nn.Module):
    """A time-dependent MLP velocity with interacting coordinates (a non-trivial Jacobian)."""

    def __init__(self, dim: int, seed: int = 0) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim + 1, 16), nn.Tanh(), nn.Linear(16, dim)).double()
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in self.net.parameters():
                p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * 0.7)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(x.shape[0], -1)
        return self.net(torch.cat([flat, t[:, None].to(x.dtype)], dim=1)).reshape(x.shape)


# --------------------------------------------------------------------------- RK4
def test_rk4_is_fourth_order_on_a_known_ode() -> None:
    # dy/dt = y cos t, y(0) = 1  =>  y(t) = exp(sin t).
    y0 = torch.ones(1, dtype=torch.float64)
    errors = [abs(float(rk4_integrate(lambda t, y: y * math.cos(t), y0, 0.0, 3.0, n)) - math.exp(math.sin(3.0))) for n in (10, 20, 40, 80, 160)]
    orders = [math.log2(a / b) for a, b in zip(errors[:-1], errors[1:])]
    assert all(3.9 < order < 4.5 for order in orders) and abs(orders[-1] - 4) < 0.1, orders


def test_rk4_integrates_tuples_backwards_and_cubics_exactly() -> None:
    # On a pure quadrature dy/dt = g(t), RK4 is Simpson's rule: exact for cubics, in either direction.
    state = (torch.zeros(2, dtype=torch.float64), torch.ones(3, dtype=torch.float64))
    out = rk4_integrate(lambda t, s: (torch.full_like(s[0], 4 * t**3 - t), -s[1]), state, 2.0, -1.0, 3)
    assert isinstance(out, tuple) and out[0].shape == (2,) and out[1].shape == (3,)
    torch.testing.assert_close(out[0], torch.full((2,), (1.0 - 0.5) - (16.0 - 2.0), dtype=torch.float64), rtol=0, atol=1e-12)
    # y' = -y with h = -1: each step multiplies by RK4's stability polynomial 1 + 1 + 1/2 + 1/6 + 1/24.
    assert float(out[1][0]) == pytest.approx((1 + 1 + 1 / 2 + 1 / 6 + 1 / 24) ** 3, rel=1e-14)


# --------------------------------------------------------------------------- the Gaussian known answer
def test_gaussian_velocity_equals_the_exact_denoisers_velocity() -> None:
    velocity = GaussianLinearPathVelocity(MEAN, COV)
    denoiser = GaussianMixtureDenoiser(GaussianMixture(MEAN[None], COV[None]))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 2, generator=g, dtype=torch.float64) * 2
    t = torch.rand(50, generator=g, dtype=torch.float64)
    torch.testing.assert_close(velocity(x, t), denoiser.velocity(x, t, LinearPath()), rtol=0, atol=1e-12)
    # Through the footing's conversion from the denoiser (defined strictly inside (0, 1)).
    converted = velocity_model_from_denoiser(denoiser, LinearPath())
    t_inner = t * 0.9 + 0.05
    torch.testing.assert_close(velocity(x, t_inner), converted(x, t_inner), rtol=0, atol=1e-12)


def test_gaussian_velocity_satisfies_the_continuity_equation() -> None:
    """d/dt p_t + div(p_t v) = 0, checked by central differences of the closed-form marginal."""
    velocity = GaussianLinearPathVelocity(MEAN, COV)
    x = torch.tensor([[0.3, -0.2], [1.5, 0.4], [-1.0, -1.0]], dtype=torch.float64)
    h = 1e-5
    for t in (0.2, 0.5, 0.8):
        dp_dt = (velocity.log_prob(x, t + h).exp() - velocity.log_prob(x, t - h).exp()) / (2 * h)
        flux_div = torch.zeros(3, dtype=torch.float64)
        for i in range(2):
            step = torch.zeros(1, 2, dtype=torch.float64)
            step[0, i] = h
            flux = lambda y: velocity.log_prob(y, t).exp() * velocity(y, t)[:, i]  # noqa: E731
            flux_div += (flux(x + step) - flux(x - step)) / (2 * h)
        torch.testing.assert_close(dp_dt + flux_div, torch.zeros(3, dtype=torch.float64), rtol=0, atol=1e-7)


def test_gaussian_marginals_flow_map_and_divergence() -> None:
    velocity = GaussianLinearPathVelocity(MEAN, COV)
    x = gaussian_points(20)
    np.testing.assert_allclose(velocity.log_prob(x, 0.0).numpy(), stats.multivariate_normal(MEAN, COV).logpdf(x.numpy()), atol=1e-12)
    np.testing.assert_allclose(velocity.log_prob(x, 1.0).numpy(), stats.multivariate_normal(np.zeros(2), np.eye(2)).logpdf(x.numpy()), atol=1e-12)
    mean_t, cov_t = velocity.marginal(0.3)
    np.testing.assert_allclose(velocity.log_prob(x, 0.3).numpy(), stats.multivariate_normal(mean_t.numpy(), cov_t.numpy()).logpdf(x.numpy()), atol=1e-12)
    # The flow map solves the ODE, and tr A_t integrates to -1/2 log det Sigma.
    end = rk4_integrate(lambda t, y: velocity(y, t), x, 0.0, 0.7, 200)
    torch.testing.assert_close(end, velocity.flow_map(x, 0.7), rtol=0, atol=1e-10)
    integral = rk4_integrate(lambda t, y: velocity.divergence(t).reshape(1), torch.zeros(1, dtype=torch.float64), 0.0, 1.0, 200)
    assert float(integral) == pytest.approx(-0.5 * math.log(np.linalg.det(COV)), abs=1e-10)
    torch.testing.assert_close(velocity.jacobian(0.4), torch.autograd.functional.jacobian(lambda y: velocity(y[None], 0.4)[0], x[0]))


# --------------------------------------------------------------------------- traces
@pytest.mark.parametrize("dims", [(3,), (2, 2)])
def test_divergence_exact_is_the_trace_of_the_autograd_jacobian(dims: tuple[int, ...]) -> None:
    net = SmallNet(int(np.prod(dims)))
    x = torch.randn(4, *dims, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    t = torch.tensor([0.1, 0.4, 0.6, 0.9], dtype=torch.float64)
    v, divergence = divergence_exact(net, x, t)
    assert v.shape == x.shape and divergence.shape == (4,) and not divergence.requires_grad
    for i in range(4):
        jac = torch.autograd.functional.jacobian(lambda y: net(y[None], t[i : i + 1])[0], x[i]).reshape(x[i].numel(), -1)
        assert float(divergence[i]) == pytest.approx(float(torch.trace(jac)), abs=1e-12)


@pytest.mark.parametrize("kind", ["rademacher", "gaussian"])
def test_hutchinson_is_unbiased_with_the_predicted_variance(kind: str) -> None:
    """Mean of many probes within 4.5 standard errors of the trace, at a fixed seed (cannot flake).

    The standard error here is at most 0.03 while the trace is 4.0: an estimator biased by
    3.5% of the trace (for example probes of variance 1.035) fails.
    """
    matrix = torch.tensor([[1.0, 2.0, 0.0, 0.5], [0.0, 3.0, -1.0, 0.0], [0.5, 0.0, -2.0, 1.0], [0.0, 1.0, 0.0, 2.0]], dtype=torch.float64)
    n = 50_000
    x = torch.zeros(1, 4, dtype=torch.float64)
    probes = hutchinson_probes(n, x, torch.Generator().manual_seed(0), kind)
    v, estimates = divergence_hutchinson(lambda y, t: y @ matrix.T, x, 0.0, probes)
    assert v.shape == (1, 4) and estimates.shape == (n, 1)
    variance = float(hutchinson_variance(matrix, kind))
    standard_error = math.sqrt(variance / n)
    assert abs(float(estimates.mean()) - float(torch.trace(matrix))) < 4.5 * standard_error
    assert float(estimates.var()) == pytest.approx(variance, rel=0.1)
    assert standard_error < 0.03


def test_hutchinson_rademacher_is_exact_for_diagonal_jacobians_and_variances_compare() -> None:
    x = torch.randn(3, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    scales = torch.arange(1.0, 6.0, dtype=torch.float64)
    probes = hutchinson_probes(7, x, torch.Generator().manual_seed(1))
    _, estimates = divergence_hutchinson(lambda y, t: y * scales, x, 0.5, probes)
    torch.testing.assert_close(estimates, torch.full((7, 3), 15.0, dtype=torch.float64))
    matrix = torch.randn(6, 6, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    assert hutchinson_variance(matrix, "rademacher") <= hutchinson_variance(matrix, "gaussian")
    assert set(hutchinson_probes(50, x, torch.Generator().manual_seed(3)).unique().tolist()) == {-1.0, 1.0}


# --------------------------------------------------------------------------- CNF log-likelihoods
def test_cnf_log_likelihood_of_gaussian_data_matches_scipy() -> None:
    velocity = GaussianLinearPathVelocity(MEAN, COV)
    x = gaussian_points(100)
    result = cnf_log_likelihood(velocity, x, n_steps=64)
    reference = stats.multivariate_normal(MEAN, COV).logpdf(x.numpy())
    np.testing.assert_allclose(result.log_px.numpy(), reference, rtol=0, atol=1e-7)
    torch.testing.assert_close(result.z, velocity.flow_map(x, 1.0), rtol=0, atol=1e-8)
    assert result.nfe == 4 * 64 and result.log_px_probes is None
    # The discretisation error falls by about 2^4 when the steps double.
    coarse = np.abs(cnf_log_likelihood(velocity, x, n_steps=8).log_px.numpy() - reference).max()
    fine = np.abs(cnf_log_likelihood(velocity, x, n_steps=16).log_px.numpy() - reference).max()
    assert 10 < coarse / fine < 80


def test_cnf_hutchinson_mean_matches_the_exact_trace() -> None:
    velocity = GaussianLinearPathVelocity(MEAN, COV)
    x = gaussian_points(6, seed=1)
    exact = cnf_log_likelihood(velocity, x, n_steps=16)
    for kind in ("rademacher", "gaussian"):
        hutch = cnf_log_likelihood(velocity, x, n_steps=16, trace="hutchinson", n_probes=4000,
                                   generator=torch.Generator().manual_seed(0), kind=kind)
        assert hutch.log_px_probes.shape == (4000, 6)
        standard_error = hutch.log_px_probes.std(dim=0) / math.sqrt(4000)
        assert (hutch.log_px - exact.log_px).abs().max() < (4.5 * standard_error).max()
        assert (standard_error > 1e-4).all()  # the estimate is random: non-diagonal Sigma
        torch.testing.assert_close(hutch.z, exact.z)


def test_cnf_log_likelihood_of_the_ring_with_the_exact_velocity() -> None:
    mixture, path = mixture_of_8(), LinearPath()
    denoiser = GaussianMixtureDenoiser(mixture)
    x = torch.tensor(mixture.sample(24, rng=0).X)
    result = cnf_log_likelihood(lambda y, t: denoiser.velocity(y, t, path), x, n_steps=80)
    np.testing.assert_allclose(result.log_px.numpy(), mixture.log_prob(x.numpy()), rtol=0, atol=1e-4)


def test_truncated_paths_give_the_density_at_t_min_and_vp_agrees() -> None:
    """Through the denoiser-to-velocity conversion the CNF runs on [t_min, t_max]: with the exact
    density at t_max it returns log p_{t_min}(x) exactly, on the straight path and on the VP path."""
    mixture = mixture_of_8()
    denoiser = GaussianMixtureDenoiser(mixture)
    x = torch.tensor(mixture.sample(16, rng=1).X)
    for path, n_steps, tol in ((LinearPath(1e-2, 0.99), 100, 1e-4), (VPPath(t_min=1e-2), 160, 2e-4)):
        result = cnf_log_likelihood(
            velocity_model_from_denoiser(denoiser, path), x, lambda z: mixture_path_log_prob(denoiser, z, path.t_max, path),
            t0=path.t_min, t1=path.t_max, n_steps=n_steps,
        )
        np.testing.assert_allclose(result.log_px.numpy(), mixture_path_log_prob(denoiser, x, path.t_min, path).numpy(), atol=tol)
    # The truncation error is first order in t_min: log p_{t_min} differs from log p_0 by O(t_min).
    truth = mixture.log_prob(x.numpy())
    gaps = [np.abs(mixture_path_log_prob(denoiser, x, t, LinearPath()).numpy() - truth).max() for t in (1e-2, 1e-3)]
    assert 7 < gaps[0] / gaps[1] < 13


def test_create_graph_gives_maximum_likelihood_gradients() -> None:
    """For v = W x (time-independent) the CNF log-likelihood is log N(exp(W) x) + tr W: compare gradients."""
    weight = torch.tensor([[0.2, -0.3], [0.1, -0.4]], dtype=torch.float64, requires_grad=True)
    x = gaussian_points(5)
    result = cnf_log_likelihood(lambda y, t: y @ weight.T, x, n_steps=40, create_graph=True)
    (grad,) = torch.autograd.grad(result.log_px.sum(), weight)
    closed = lambda w: (standard_normal_log_prob(x @ torch.linalg.matrix_exp(w).T) + torch.trace(w)).sum()  # noqa: E731
    (reference,) = torch.autograd.grad(closed(weight), weight)
    torch.testing.assert_close(grad, reference, rtol=1e-7, atol=1e-8)
    with torch.no_grad():
        assert float(result.log_px.sum()) == pytest.approx(float(closed(weight)), abs=1e-8)


# --------------------------------------------------------------------------- flow matching as denoising
def test_flow_matching_loss_is_a_weighted_denoising_loss() -> None:
    net = SmallNet(2, seed=3)
    g = torch.Generator().manual_seed(0)
    x0 = torch.tensor(mixture_of_8().sample(64, rng=0).X)
    eps = torch.randn(64, 2, generator=g, dtype=torch.float64)
    t = torch.rand(64, generator=g, dtype=torch.float64) * 0.98 + 0.01
    with torch.no_grad():
        fm = flow_matching_loss(net, x0, eps, t)
        denoiser = denoiser_from_velocity(net, LinearPath())
        dn = weighted_denoising_loss(denoiser, x0, eps, t / (1 - t))
    torch.testing.assert_close(fm, dn, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(flow_matching_denoising_weight(t / (1 - t)), 1 / t**2)


# --------------------------------------------------------------------------- discrete flows
def test_affine_coupling_log_det_inverse_and_normalisation() -> None:
    layer = AffineCoupling(3, 8, flip=True, generator=torch.Generator().manual_seed(0)).double()
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    y, log_det = layer(x)
    for i in range(4):
        jac = torch.autograd.functional.jacobian(lambda z: layer(z[None])[0][0], x[i])
        assert float(log_det[i].detach()) == pytest.approx(float(torch.linalg.slogdet(jac).logabsdet), abs=1e-12)
    torch.testing.assert_close(layer.inverse(y), x)
    torch.testing.assert_close(y[:, 1:], x[:, 1:])  # flip: the last two entries are kept, the first is changed
    assert (y[:, 0] - x[:, 0]).abs().min() > 0
    flow = CouplingFlow(2, 4, 16, generator=torch.Generator().manual_seed(2)).double()
    grid = torch.linspace(-7, 7, 281, dtype=torch.float64)
    points = torch.cartesian_prod(grid, grid)
    with torch.no_grad():
        mass = float(flow.log_prob(points).exp().sum()) * float(grid[1] - grid[0]) ** 2
        torch.testing.assert_close(flow(flow.inverse(points[:10]))[0], points[:10])
    assert mass == pytest.approx(1.0, abs=2e-3)


# --------------------------------------------------------------------------- exercises and bad input
def test_exercise_checkers() -> None:
    assert check_exercise_1(-0.5 * math.log(1.75)) and not check_exercise_1(0.0) and not check_exercise_1("?")
    assert check_exercise_2(4.0) and not check_exercise_2(24.0)
    assert check_exercise_3(1 / 9) and not check_exercise_3(16 / 9)
    # The answers are what the module computes.
    velocity = GaussianLinearPathVelocity([0.0, 0.0], [[2.0, 0.5], [0.5, 1.0]])
    integral = rk4_integrate(lambda t, y: velocity.divergence(t).reshape(1), torch.zeros(1, dtype=torch.float64), 0.0, 1.0, 100)
    assert float(integral) == pytest.approx(-0.5 * math.log(1.75), abs=1e-8)
    assert float(hutchinson_variance(torch.tensor([[1.0, 2.0], [0.0, 3.0]]), "gaussian")) == pytest.approx(24.0)
    sigma = torch.tensor(3.0, dtype=torch.float64)
    assert float(flow_matching_denoising_weight(sigma) / (1 + sigma) ** 2) == pytest.approx(1 / 9)


def test_bad_inputs() -> None:
    velocity = GaussianLinearPathVelocity(MEAN, COV)
    x = gaussian_points(3)
    g = torch.Generator()
    with pytest.raises(ValueError, match="n_steps must be an int >= 1"):
        rk4_integrate(lambda t, y: y, x, 0.0, 1.0, 0)
    with pytest.raises(TypeError, match="state must be a floating-point"):
        rk4_integrate(lambda t, y: y, torch.ones(2, dtype=torch.long), 0.0, 1.0, 1)
    with pytest.raises(ValueError, match="t1 must be finite"):
        rk4_integrate(lambda t, y: y, x, 0.0, float("inf"), 1)
    with pytest.raises(TypeError, match="f must be callable"):
        rk4_integrate(None, x, 0.0, 1.0, 1)
    with pytest.raises(ValueError, match="x must be finite"):
        cnf_log_likelihood(velocity, torch.tensor([[float("nan"), 0.0]], dtype=torch.float64))
    with pytest.raises(ValueError, match=r"x must have shape \(batch, \*dims\)"):
        cnf_log_likelihood(velocity, torch.zeros(0, 2))
    with pytest.raises(TypeError, match="floating-point tensor"):
        cnf_log_likelihood(velocity, torch.ones(3, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="t0 and t1 must differ"):
        cnf_log_likelihood(velocity, x, t0=0.5, t1=0.5)
    with pytest.raises(ValueError, match="trace must be"):
        cnf_log_likelihood(velocity, x, trace="approx")
    with pytest.raises(TypeError, match="needs a torch.Generator"):
        cnf_log_likelihood(velocity, x, trace="hutchinson")
    with pytest.raises(ValueError, match="kind must be"):
        cnf_log_likelihood(velocity, x, trace="hutchinson", generator=g, kind="uniform")
    with pytest.raises(ValueError, match="n_probes must be an int >= 1"):
        cnf_log_likelihood(velocity, x, trace="hutchinson", generator=g, n_probes=0)
    with pytest.raises(ValueError, match="prior_log_prob must return"):
        cnf_log_likelihood(velocity, x, lambda z: z, n_steps=1)
    with pytest.raises(ValueError, match="velocity must return a tensor"):
        divergence_exact(lambda y, t: y[:, :1], x, 0.0)
    with pytest.raises(ValueError, match="probes must have shape"):
        divergence_hutchinson(velocity, x, 0.0, torch.ones(2, 4, 2))
    with pytest.raises(ValueError, match="cov must be positive definite"):
        GaussianLinearPathVelocity([0.0, 0.0], [[1.0, 2.0], [2.0, 1.0]])
    with pytest.raises(ValueError, match="cov must have shape"):
        GaussianLinearPathVelocity([0.0, 0.0], [[1.0]])
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 2\)"):
        velocity(torch.zeros(3, 3, dtype=torch.float64), 0.5)
    with pytest.raises(ValueError, match="matrix must be"):
        hutchinson_variance(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="sigma must be > 0"):
        flow_matching_denoising_weight(torch.tensor([0.0]))
    with pytest.raises(ValueError, match="dim must be >= 2"):
        AffineCoupling(1)
    with pytest.raises(TypeError, match="denoiser must be a GaussianMixtureDenoiser"):
        mixture_path_log_prob(velocity, x, 0.5, LinearPath())


# --------------------------------------------------------------------------- GPU
@pytest.mark.gpu
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-7), (torch.float32, 2e-4)])
def test_gpu_cnf_log_likelihood(dtype: torch.dtype, tol: float) -> None:
    device = torch.device("cuda")
    velocity = GaussianLinearPathVelocity(MEAN, COV)
    x = gaussian_points(256).to(device=device, dtype=dtype)
    result = cnf_log_likelihood(velocity, x, n_steps=64)
    assert result.log_px.device.type == "cuda" and result.log_px.dtype == dtype
    reference = stats.multivariate_normal(MEAN, COV).logpdf(x.double().cpu().numpy())
    np.testing.assert_allclose(result.log_px.double().cpu().numpy(), reference, rtol=0, atol=tol)
    hutch = cnf_log_likelihood(velocity, x[:8], n_steps=16, trace="hutchinson", n_probes=2000,
                               generator=torch.Generator(device).manual_seed(0))
    standard_error = hutch.log_px_probes.std(dim=0) / math.sqrt(2000)
    exact = cnf_log_likelihood(velocity, x[:8], n_steps=16).log_px
    assert ((hutch.log_px - exact).abs() < 4.5 * standard_error + 10 * tol).all()


@pytest.mark.gpu
def test_gpu_mixture_likelihood_and_coupling_flow() -> None:
    device = torch.device("cuda")
    mixture = mixture_of_8()
    denoiser, path = GaussianMixtureDenoiser(mixture), LinearPath()
    x = torch.tensor(mixture.sample(200, rng=0).X, device=device)
    result = cnf_log_likelihood(lambda y, t: denoiser.velocity(y, t, path), x, n_steps=100)
    np.testing.assert_allclose(result.log_px.cpu().numpy(), mixture.log_prob(x.cpu().numpy()), atol=1e-4)
    flow = CouplingFlow(2, 4, 16, generator=torch.Generator(device).manual_seed(0)).to(device)
    z = torch.randn(100, 2, device=device, generator=torch.Generator(device).manual_seed(1))
    torch.testing.assert_close(flow(flow.inverse(z))[0], z, rtol=1e-4, atol=1e-5)
