r"""Diffusion as a stochastic differential equation: forward SDE, reverse SDE and probability-flow ODE.

Implements what is specific to the chapter ``book/diffusion/sde.ipynb``, after Song et
al., "Score-Based Generative Modeling through Stochastic Differential Equations", ICLR
2021, and Anderson, "Reverse-time diffusion equation models", Stochastic Processes and
their Applications 12, 1982:

- the forward SDE :math:`dx = f(t)\,x\,dt + g(t)\,dW` of every noising path
  ``x = s(t) (x0 + sigma(t) eps)`` of :mod:`mlnotes.diffusion.common`, with
  :math:`f = \dot s / s` and :math:`g^2 = 2 s^2 \sigma \dot\sigma`
  (:func:`drift_and_diffusion`), its Gaussian transition kernel
  (:func:`transition_kernel`), the exact noised marginal of a Gaussian mixture
  (:func:`noised_mixture`, :func:`marginal_log_prob`, and :func:`mixture_cdf` in 1-D);
- Euler-Maruyama for the forward SDE (:func:`forward_trajectory`) and the exact
  moments of that discrete chain (:func:`euler_maruyama_forward_moments`);
- the family of reverse processes
  :math:`dx = [f x - \tfrac{1 + \lambda^2}{2} g^2 \nabla_x \log p_t]\,dt + \lambda g\,d\bar W`
  (``lambda = 1``: the reverse-time SDE; ``lambda = 0``: the probability-flow ODE),
  integrated with every intermediate state kept (:func:`reverse_trajectory`);
- DDPM's ancestral sampler and Euler-Maruyama for the reverse VP-SDE written as the same
  recursion ``x <- A x + C D(x / s, sigma) + S z`` (:class:`StepCoefficients`,
  :func:`ddpm_step_coefficients`, :func:`euler_maruyama_step_coefficients`,
  :func:`run_step_coefficients`), so that their coefficients can be compared step by step;
- ``check_exercise_*`` helpers for the chapter's exercises.

The samplers themselves (:func:`~mlnotes.diffusion.common.ddpm_ancestral`,
:func:`~mlnotes.diffusion.common.euler_maruyama_reverse_sde`,
:func:`~mlnotes.diffusion.common.heun_ode`) live in :mod:`mlnotes.diffusion.common`;
this module's trajectory functions take the same steps (the tests check that they give
the same samples) and keep the intermediate states.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from numpy.typing import ArrayLike
from scipy import special

from mlnotes.datasets import GaussianMixture
from mlnotes.diffusion.analytic import GaussianMixtureDenoiser
from mlnotes.diffusion.common import (
    Denoiser,
    DiscreteVPPath,
    NoisePath,
    Samples,
    TimeLike,
    VEPath,
    VPPath,
    _as_time,
    _check_generator,
    _check_path,
    _check_shape,
    _check_steps,
    _continuous_grid,
    _Counter,
    _per_sample,
)
from mlnotes.exercises import as_float as _as_float, report as _report

__all__ = [
    "drift_and_diffusion",
    "transition_kernel",
    "noised_mixture",
    "marginal_log_prob",
    "mixture_cdf",
    "Trajectory",
    "forward_trajectory",
    "euler_maruyama_forward_moments",
    "reverse_trajectory",
    "StepCoefficients",
    "ddpm_step_coefficients",
    "euler_maruyama_step_coefficients",
    "run_step_coefficients",
    "check_exercise_1",
    "check_exercise_2",
    "check_exercise_3",
]


# --------------------------------------------------------------------------- validation helpers
def _check_times(times: object, *, increasing: bool, name: str = "times") -> torch.Tensor:
    """`times` as a 1-D float64 CPU tensor of at least two finite, strictly increasing (or decreasing) times."""
    if isinstance(times, torch.Tensor):
        grid = times.detach().to(device="cpu", dtype=torch.float64)
    else:
        try:
            grid = torch.as_tensor(list(times), dtype=torch.float64)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be a 1-D sequence or tensor of floats, got {type(times).__name__}") from None
    if grid.ndim != 1 or grid.numel() < 2:
        raise ValueError(f"{name} must be 1-D with at least 2 times, got shape {tuple(grid.shape)}")
    if not torch.isfinite(grid).all():
        raise ValueError(f"{name} must be finite, got NaN or inf")
    steps = grid[1:] - grid[:-1]
    if increasing and not (steps > 0).all():
        raise ValueError(f"{name} must increase strictly (the forward SDE runs from data to noise)")
    if not increasing and not (steps < 0).all():
        raise ValueError(f"{name} must decrease strictly (the reverse process runs from noise to data)")
    return grid


def _check_state(x: object, name: str = "x_start") -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        got = f"{x.dtype} tensor" if isinstance(x, torch.Tensor) else type(x).__name__
        raise TypeError(f"{name} must be a floating-point tensor of shape (batch, *dims), got {got}")
    if x.ndim < 2 or x.shape[0] == 0 or x.numel() == 0:
        raise ValueError(f"{name} must have shape (batch, *dims) with batch >= 1, got {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} must be finite, got NaN or inf")
    return x


def _check_keep_every(keep_every: int) -> int:
    return _check_steps(keep_every, "keep_every")


def _check_same_device(x: torch.Tensor, generator: torch.Generator) -> None:
    if x.device.type != generator.device.type:
        raise ValueError(f"x_start is on {x.device} but the generator on {generator.device}: put them on one device")


def _standard_normal(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    # Drawn in float32 and cast, as the samplers of mlnotes.diffusion.common do: float32 and
    # float64 runs from the same seed see the same noise.
    return torch.randn(x.shape, generator=generator, device=generator.device).to(x.dtype)


# --------------------------------------------------------------------------- the forward SDE
def drift_and_diffusion(path: NoisePath, t: TimeLike) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Drift and diffusion coefficients of the forward SDE :math:`dx = f(t)\,x\,dt + g(t)\,dW` of `path`.

    The SDE whose marginals are those of ``x = s(t) (x0 + sigma(t) eps)``: matching the
    mean ``s(t) x0`` and the variance ``s^2 sigma^2`` of the linear SDE gives

    .. math:: f(t) = \frac{\dot s(t)}{s(t)}, \qquad g(t)^2 = 2\, s(t)^2\, \sigma(t)\, \dot\sigma(t)

    (Karras et al. 2022, eq. 6). On :class:`~mlnotes.diffusion.common.VPPath` this is
    :math:`f = -\beta(t)/2`, :math:`g = \sqrt{\beta(t)}` (Song et al. 2021, VP-SDE); on
    :class:`~mlnotes.diffusion.common.VEPath`, :math:`f = 0`,
    :math:`g = \sqrt{d\sigma^2/dt}` (VE-SDE). At ``t = 0`` of a VP path ``sigma = 0`` and
    ``sigma' = inf``; ``g^2`` there is the limit ``beta(0)``.

    Parameters
    ----------
    path : NoisePath
    t : float or torch.Tensor
        Times, any shape (float64 for a Python float).

    Returns
    -------
    f, g : torch.Tensor
        Shaped like `t`.

    Raises
    ------
    TypeError
        If `path` is not a NoisePath or `t` is not a float or a floating tensor.
    ValueError
        If `t` is NaN or outside the path's domain (``f`` or ``g`` not finite, e.g. ``t = 1``
        on :class:`~mlnotes.diffusion.common.LinearPath`, where ``s = 0``).
    """
    path = _check_path(path)
    t = _as_time(t)
    if torch.isnan(t).any():
        raise ValueError("t must not be NaN")
    s, sigma = path.s(t), path.sigma(t)
    f = path.ds_dt(t) / s
    g2 = 2 * s**2 * sigma * path.dsigma_dt(t)
    if isinstance(path, VPPath):
        g2 = torch.where(sigma > 0, g2, path.beta(t))  # the limit of 0 * inf at t = 0
    if not (torch.isfinite(f).all() and torch.isfinite(g2).all() and (g2 >= 0).all()):
        raise ValueError(f"t is outside the domain of {path!r}: f or g is not finite there")
    return f, torch.sqrt(g2)


def transition_kernel(path: NoisePath, t_from: TimeLike, t_to: TimeLike) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Gaussian transition kernel of the forward SDE: :math:`x(t') \mid x(t) \sim \mathcal N(a\,x(t), b^2 I)`.

    Solving the linear SDE :math:`dx = f x\,dt + g\,dW` from `t_from` = ``t`` to
    `t_to` = ``t' >= t``:

    .. math:: a = \frac{s(t')}{s(t)}, \qquad
              b^2 = s(t')^2 \int_t^{t'} \frac{g(r)^2}{s(r)^2}\,dr = s(t')^2\big(\sigma(t')^2 - \sigma(t)^2\big).

    From clean data (``t = 0`` on a VP path, where ``s = 1``, ``sigma = 0``) this is the
    path's own marginal ``N(s x0, s^2 sigma^2)``.

    Parameters
    ----------
    path : NoisePath
    t_from, t_to : float or torch.Tensor
        Broadcastable times with ``t_to >= t_from``.

    Returns
    -------
    mean_coef, std : torch.Tensor
        ``a`` and ``b``, with the broadcast shape of the times.

    Raises
    ------
    ValueError
        If a time is NaN or ``t_to < t_from``.
    """
    path = _check_path(path)
    t_from, t_to = _as_time(t_from), _as_time(t_to)
    if torch.isnan(t_from).any() or torch.isnan(t_to).any():
        raise ValueError("t_from and t_to must not be NaN")
    if (t_to < t_from).any():
        raise ValueError("t_to must be >= t_from: the forward SDE runs forward in time")
    s_to = path.s(t_to)
    return s_to / path.s(t_from), s_to * torch.sqrt(torch.clamp(path.sigma(t_to) ** 2 - path.sigma(t_from) ** 2, min=0))


def noised_mixture(mixture: GaussianMixture, path: NoisePath, t: float) -> GaussianMixture:
    r"""The exact marginal :math:`p_t` of `path` at time `t` for Gaussian-mixture data: again a Gaussian mixture.

    Every component :math:`\mathcal N(\mu_k, \Sigma_k)` of the data becomes
    :math:`\mathcal N\big(s\mu_k,\ s^2(\Sigma_k + \sigma^2 I)\big)` under
    ``x = s (x0 + sigma eps)``, with the same weights
    (:meth:`~mlnotes.datasets.GaussianMixture.noised`).

    Parameters
    ----------
    mixture : GaussianMixture
        The data distribution.
    path : NoisePath
    t : float
        A time where ``s(t) > 0``.

    Returns
    -------
    GaussianMixture
        Its ``log_prob``, ``score`` and ``sample`` are exact.
    """
    if not isinstance(mixture, GaussianMixture):
        raise TypeError(f"mixture must be a mlnotes.datasets.GaussianMixture, got {type(mixture).__name__}")
    path = _check_path(path)
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
        raise TypeError(f"t must be a finite float, got {t!r}")
    scale, sigma = float(path.s(float(t))), float(path.sigma(float(t)))
    if not (scale > 0 and math.isfinite(sigma)):
        raise ValueError(f"t = {t} is outside the domain of {path!r} (s = {scale}, sigma = {sigma})")
    return mixture.noised(sigma, scale=scale)


def marginal_log_prob(denoiser: GaussianMixtureDenoiser, path: NoisePath, x: torch.Tensor, t: TimeLike) -> torch.Tensor:
    r"""``log p_t(x)`` of the noised mixture, in torch (differentiable in `x`), one time per point.

    With :math:`\hat x = x / s`: :math:`\log p_t(x) = \log p(\hat x; \sigma) - d \log s`, where
    :math:`p(\cdot; \sigma)` is the mixture convolved with :math:`\mathcal N(0, \sigma^2 I)`
    (:meth:`~mlnotes.diffusion.analytic.GaussianMixtureDenoiser.log_prob`). Its gradient
    is the score that :func:`~mlnotes.diffusion.common.score_model_from_denoiser` computes
    from the denoiser.

    Parameters
    ----------
    denoiser : GaussianMixtureDenoiser
        Carries the mixture.
    path : NoisePath
    x : torch.Tensor, shape (batch, dim)
    t : float or torch.Tensor of shape () or (batch,)

    Returns
    -------
    torch.Tensor, shape (batch,)
    """
    if not isinstance(denoiser, GaussianMixtureDenoiser):
        raise TypeError(f"denoiser must be a GaussianMixtureDenoiser, got {type(denoiser).__name__}")
    path = _check_path(path)
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim != 2:
        raise TypeError("x must be a floating-point tensor of shape (batch, dim)")
    t = _per_sample(_as_time(t), x).to(torch.float64)
    if t.shape != x.shape[:1]:
        raise ValueError(f"t must be a scalar or have shape ({x.shape[0]},), got {tuple(t.shape)}")
    s, sigma = path.s(t), path.sigma(t)
    if not ((s > 0).all() and torch.isfinite(sigma).all() and (sigma >= 0).all()):
        raise ValueError(f"t is outside the domain of {path!r}")
    s, sigma = s.to(x.dtype), sigma.to(x.dtype)
    return denoiser.log_prob(x / s[:, None], sigma) - x.shape[1] * torch.log(s)


def mixture_cdf(mixture: GaussianMixture, x: ArrayLike) -> np.ndarray:
    r"""Distribution function :math:`F(x) = \sum_k w_k\,\Phi\big((x - \mu_k)/s_k\big)` of a 1-D Gaussian mixture.

    With :func:`noised_mixture` it gives the exact distribution function of :math:`p_t`,
    against which a 1-D sample can be tested without a reference sample (for example
    with ``scipy.stats.kstest(sample, lambda x: mixture_cdf(mixture, x))``).

    Parameters
    ----------
    mixture : GaussianMixture
        One-dimensional (``dim == 1``).
    x : array_like
        Points, any shape.

    Returns
    -------
    numpy.ndarray
        ``F(x)``, the shape of `x`.
    """
    if not isinstance(mixture, GaussianMixture):
        raise TypeError(f"mixture must be a mlnotes.datasets.GaussianMixture, got {type(mixture).__name__}")
    if mixture.dim != 1:
        raise ValueError(f"mixture must be one-dimensional, got dim = {mixture.dim}")
    x = np.asarray(x, dtype=np.float64)
    if np.isnan(x).any():
        raise ValueError("x must not contain NaN")
    means, stds = mixture.means[:, 0], np.sqrt(mixture.covariances[:, 0, 0])
    return np.sum(mixture.weights * special.ndtr((x[..., None] - means) / stds), axis=-1)


# --------------------------------------------------------------------------- trajectories
class Trajectory(NamedTuple):
    """What the trajectory functions return.

    Attributes
    ----------
    times : torch.Tensor, float64, shape (n_kept,)
        The times of the kept states.
    states : torch.Tensor, shape ``(n_kept, batch, *dims)``
        The states at those times (the first is the start, the last the end).
    nfe : int
        Network evaluations spent (0 for the forward SDE).
    """

    times: torch.Tensor
    states: torch.Tensor
    nfe: int


def _kept(n_points: int, keep_every: int) -> list[int]:
    return sorted(set(range(0, n_points, keep_every)) | {n_points - 1})


def forward_trajectory(
    x_start: torch.Tensor,
    path: NoisePath,
    times: Sequence[float] | torch.Tensor,
    generator: torch.Generator,
    *,
    keep_every: int = 1,
) -> Trajectory:
    r"""Euler-Maruyama for the forward SDE :math:`dx = f x\,dt + g\,dW` on an increasing grid.

    .. math:: x_{k+1} = x_k + f(t_k)\,x_k\,\Delta_k + g(t_k)\sqrt{\Delta_k}\,z_k,
              \qquad \Delta_k = t_{k+1} - t_k,\ z_k \sim \mathcal N(0, I)

    with ``f, g`` from :func:`drift_and_diffusion`. Its marginals tend to
    :func:`transition_kernel` applied to `x_start` as the steps shrink
    (:func:`euler_maruyama_forward_moments` gives the discrete chain's moments exactly).

    Parameters
    ----------
    x_start : torch.Tensor, shape ``(batch, *dims)``
        The state at ``times[0]``, on the generator's device.
    path : NoisePath
    times : sequence of float or torch.Tensor, shape (n_points,)
        Strictly increasing, ``n_points >= 2``.
    generator : torch.Generator
        Draws the increments (in float32, cast to the dtype of `x_start`).
    keep_every : int, default 1
        Keep every `keep_every`-th state (and the last).

    Returns
    -------
    Trajectory
        ``nfe = 0``.
    """
    x = _check_state(x_start)
    path = _check_path(path)
    grid = _check_times(times, increasing=True)
    _check_same_device(x, _check_generator(generator))
    keep = set(_kept(len(grid), _check_keep_every(keep_every)))
    f_all, g_all = (v.tolist() for v in drift_and_diffusion(path, grid))
    t_all = grid.tolist()
    states = [x] if 0 in keep else []
    for k in range(len(grid) - 1):
        dt = t_all[k + 1] - t_all[k]
        x = x + (f_all[k] * dt) * x + (g_all[k] * math.sqrt(dt)) * _standard_normal(x, generator)
        if k + 1 in keep:
            states.append(x)
    return Trajectory(grid[sorted(keep)], torch.stack(states), 0)


def euler_maruyama_forward_moments(
    path: NoisePath, times: Sequence[float] | torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Exact moments of the Euler-Maruyama chain of :func:`forward_trajectory`, started at a fixed point.

    The chain is linear-Gaussian, so ``x_k = m_k x_0 + N(0, v_k I)`` exactly, with

    .. math:: m_{k+1} = (1 + f_k\Delta_k)\,m_k, \qquad v_{k+1} = (1 + f_k\Delta_k)^2 v_k + g_k^2\Delta_k,
              \qquad m_0 = 1,\ v_0 = 0;

    compare with :func:`transition_kernel` ``(times[0], times[k])`` to see the
    discretisation error alone, without sampling noise.

    Returns
    -------
    mean_coef, variance : torch.Tensor, float64, shape (n_points,)
    """
    path = _check_path(path)
    grid = _check_times(times, increasing=True)
    f, g = drift_and_diffusion(path, grid)
    dt = grid[1:] - grid[:-1]
    factor = 1 + f[:-1] * dt
    mean_coef, variance = [1.0], [0.0]
    for a, q in zip(factor.tolist(), (g[:-1] ** 2 * dt).tolist()):
        mean_coef.append(a * mean_coef[-1])
        variance.append(a * a * variance[-1] + q)
    return torch.tensor(mean_coef, dtype=torch.float64), torch.tensor(variance, dtype=torch.float64)


def reverse_trajectory(
    denoiser: Denoiser,
    path: NoisePath,
    times: Sequence[float] | torch.Tensor,
    x_start: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    stochasticity: float = 1.0,
    method: str = "euler",
    keep_every: int = 1,
) -> Trajectory:
    r"""Integrate a reverse process of `path` from ``times[0]`` down to ``times[-1]``, keeping the states.

    The family (Karras et al. 2022, section 4, there with the noise level as the time)

    .. math:: dx = \Big[f(t)\,x - \frac{1 + \lambda^2}{2}\,g(t)^2\,\nabla_x \log p_t(x)\Big]dt
              + \lambda\, g(t)\, d\bar W, \qquad
              \nabla_x \log p_t(x) = \frac{D(x/s;\,\sigma) - x/s}{s\,\sigma^2},

    has the marginals :math:`p_t` of the forward SDE for every :math:`\lambda \ge 0`
    (`stochasticity`). ``lambda = 1`` is Anderson's reverse-time SDE, integrated by
    Euler-Maruyama: with the same grid, start and generator its states are those of
    :func:`~mlnotes.diffusion.common.euler_maruyama_reverse_sde` before its final
    denoising step. ``lambda = 0`` is the probability-flow ODE, integrated by Euler or
    (``method="heun"``) Heun's method: on the grid ``path.sigma_inv(edm_sigmas(n)[:-1])``
    this is :func:`~mlnotes.diffusion.common.heun_ode` before its final step.

    Parameters
    ----------
    denoiser : Denoiser
        ``D(x_hat, sigma)``.
    path : NoisePath
    times : sequence of float or torch.Tensor, shape (n_points,)
        Strictly decreasing, ``sigma > 0`` at every time but possibly the last.
    x_start : torch.Tensor, shape ``(batch, *dims)``
        The state at ``times[0]`` (e.g. drawn from the prior); on the generator's device
        when there is one.
    generator : torch.Generator, optional
        Draws the noise; required when ``stochasticity > 0``.
    stochasticity : float, default 1.0
        :math:`\lambda \ge 0`.
    method : {"euler", "heun"}, default "euler"
        Euler(-Maruyama) for any :math:`\lambda`; Heun (two evaluations per step) only for
        the ODE, ``lambda = 0``.
    keep_every : int, default 1
        Keep every `keep_every`-th state (and the last).

    Returns
    -------
    Trajectory
        ``nfe``: ``n_points - 1`` for Euler; for Heun two per step, but one on a last step
        that ends at ``sigma = 0``.

    Raises
    ------
    ValueError
        Bad grid, negative or non-finite `stochasticity`, Heun with noise, unknown `method`,
        a missing generator, or a denoiser output of the wrong shape.
    FloatingPointError
        If the denoiser returns NaN or inf.
    """
    x = _check_state(x_start)
    path = _check_path(path)
    grid = _check_times(times, increasing=False)
    if isinstance(stochasticity, bool) or not isinstance(stochasticity, (int, float)) or not (
        math.isfinite(stochasticity) and stochasticity >= 0
    ):
        raise ValueError(f"stochasticity must be a finite number >= 0, got {stochasticity!r}")
    if method not in ("euler", "heun"):
        raise ValueError(f"method must be 'euler' or 'heun', got {method!r}")
    if method == "heun" and stochasticity > 0:
        raise ValueError("method='heun' integrates the probability-flow ODE only: use stochasticity=0")
    if stochasticity > 0:
        if generator is None:
            raise ValueError("a generator is required when stochasticity > 0")
        _check_same_device(x, _check_generator(generator))
    keep = set(_kept(len(grid), _check_keep_every(keep_every)))
    net = _Counter(denoiser)
    lam = float(stochasticity)
    t_all = grid.tolist()
    s_all, sigma_all = path.s(grid).tolist(), path.sigma(grid).tolist()
    if not all(sig > 0 and math.isfinite(sig) for sig in sigma_all[:-1]):
        raise ValueError("times must have 0 < sigma(t) < inf at every time but the last")
    f_all, g_all = (v.tolist() for v in drift_and_diffusion(path, grid))

    def drift(x: torch.Tensor, k: int) -> torch.Tensor:
        s, sigma = s_all[k], sigma_all[k]
        score = (net(x / s, sigma) - x / s) / (s * sigma**2)
        return f_all[k] * x - (0.5 * (1 + lam**2) * g_all[k] ** 2) * score

    states = [x] if 0 in keep else []
    for k in range(len(grid) - 1):
        dt = t_all[k + 1] - t_all[k]
        velocity = drift(x, k)
        x_next = x + velocity * dt
        if method == "heun" and sigma_all[k + 1] > 0:  # Heun needs the score at the step's end
            x_next = x + 0.5 * (velocity + drift(x_next, k + 1)) * dt
        if lam > 0:
            x_next = x_next + (lam * g_all[k] * math.sqrt(abs(dt))) * _standard_normal(x, generator)
        x = x_next
        if k + 1 in keep:
            states.append(x)
    return Trajectory(grid[sorted(keep)], torch.stack(states), net.nfe)


# --------------------------------------------------------------------------- DDPM and Euler-Maruyama, step by step
class StepCoefficients(NamedTuple):
    r"""A reverse sampler written as ``x <- A x + C D(x / s, sigma) + S z``, step by step.

    Attributes
    ----------
    times : torch.Tensor, float64, shape (n_steps,)
        The (continuous VP) time of each step's starting point.
    scales, sigmas : torch.Tensor, float64, shape (n_steps,)
        Where the denoiser is evaluated: ``D(x / scales[k], sigmas[k])``.
    x_coef, x0_coef, noise_std : torch.Tensor, float64, shape (n_steps,)
        ``A``, ``C`` and ``S`` of each step (``S = 0`` on the last, noise-free step).
    prior_std : float
        The start is ``prior_std * z``.
    """

    times: torch.Tensor
    scales: torch.Tensor
    sigmas: torch.Tensor
    x_coef: torch.Tensor
    x0_coef: torch.Tensor
    noise_std: torch.Tensor
    prior_std: float


def ddpm_step_coefficients(path: DiscreteVPPath, n_steps: int) -> StepCoefficients:
    r"""The coefficients of :func:`~mlnotes.diffusion.common.ddpm_ancestral` (Ho et al. 2020, Algorithm 2).

    From step ``i`` to the previous kept step ``i'`` (``beta = 1 - alpha_bar_i / alpha_bar_i'``):

    .. math:: A = \frac{\sqrt{1-\beta}\,(1 - \bar\alpha_{i'})}{1 - \bar\alpha_i},\quad
              C = \frac{\sqrt{\bar\alpha_{i'}}\,\beta}{1 - \bar\alpha_i},\quad
              S = \sqrt{\frac{1 - \bar\alpha_{i'}}{1 - \bar\alpha_i}\,\beta},

    and on the last step (``alpha_bar_i' = 1``) ``A = 0``, ``C = 1``, ``S = 0``: the
    denoiser's estimate. ``times[k] = path.continuous.sigma_inv(sigma_i)``, close to ``i / T``.
    """
    if not isinstance(path, DiscreteVPPath):
        raise TypeError(f"path must be a DiscreteVPPath, got {type(path).__name__}")
    steps = path.timesteps(n_steps)
    alpha_bars = path.alpha_bars.tolist()
    x_coef, x0_coef, noise_std = [], [], []
    for k, i in enumerate(steps.tolist()):
        ab_t = alpha_bars[i - 1]
        ab_prev = alpha_bars[steps[k + 1] - 1] if k + 1 < len(steps) else 1.0
        beta = 1 - ab_t / ab_prev
        x0_coef.append(math.sqrt(ab_prev) * beta / (1 - ab_t))
        x_coef.append(math.sqrt(1 - beta) * (1 - ab_prev) / (1 - ab_t))
        noise_std.append(math.sqrt((1 - ab_prev) / (1 - ab_t) * beta) if k + 1 < len(steps) else 0.0)
    scales, sigmas = path.scales[steps - 1], path.sigmas[steps - 1]
    as_tensor = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    return StepCoefficients(
        path.continuous.sigma_inv(sigmas), scales.clone(), sigmas.clone(), as_tensor(x_coef), as_tensor(x0_coef),
        as_tensor(noise_std), 1.0,
    )


def euler_maruyama_step_coefficients(path: NoisePath, n_steps: int) -> StepCoefficients:
    r"""The coefficients of :func:`~mlnotes.diffusion.common.euler_maruyama_reverse_sde` on `path`.

    On its grid (``n_steps`` times from ``t_max`` to ``t_min``), a step from ``t`` to
    ``t - Delta`` with the score :math:`(s D - x)/(s^2\sigma^2)` is

    .. math:: x' = \Big(1 - f\Delta - \frac{g^2\Delta}{s^2\sigma^2}\Big)x
              + \frac{g^2\Delta}{s\,\sigma^2}\,D + g\sqrt{\Delta}\,z,

    and the last step is the denoising step ``A = 0``, ``C = 1``, ``S = 0`` at ``t_min``.
    On :class:`~mlnotes.diffusion.common.VPPath` (``f = -beta/2``, ``g^2 = beta``,
    ``s^2 sigma^2 = 1 - alpha_bar``) the step agrees with DDPM's to first order in ``Delta``.
    """
    path = _check_path(path)
    n_steps = _check_steps(n_steps)
    grid = _continuous_grid(path, n_steps)
    s, sigma = path.s(grid), path.sigma(grid)
    f, g = drift_and_diffusion(path, grid)
    delta = torch.cat([grid[:-1] - grid[1:], torch.zeros(1, dtype=torch.float64)])
    g2_delta = g**2 * delta
    x_coef = 1 - f * delta - g2_delta / (s * sigma) ** 2
    x0_coef = g2_delta / (s * sigma**2)
    noise_std = torch.sqrt(g2_delta)
    x_coef[-1], x0_coef[-1] = 0.0, 1.0
    prior_std = float(s[0] * torch.sqrt(1 + sigma[0] ** 2))
    return StepCoefficients(grid, s, sigma, x_coef, x0_coef, noise_std, prior_std)


def run_step_coefficients(
    denoiser: Denoiser,
    coefficients: StepCoefficients,
    shape: Sequence[int],
    generator: torch.Generator,
    *,
    dtype: torch.dtype = torch.float32,
) -> Samples:
    """Sample with ``x <- A x + C D(x / s, sigma) + S z`` from ``x = prior_std * z``.

    Draws the start and one ``z`` per step with ``S > 0``, in the order the shared
    samplers do: with the coefficients of :func:`ddpm_step_coefficients` this is
    :func:`~mlnotes.diffusion.common.ddpm_ancestral` (the same numbers for the same
    seed), with those of :func:`euler_maruyama_step_coefficients` it is
    :func:`~mlnotes.diffusion.common.euler_maruyama_reverse_sde` (up to rounding), and two
    samplers run from the same seed share their noise. NFE = number of steps.
    """
    if not isinstance(coefficients, StepCoefficients):
        raise TypeError(f"coefficients must be a StepCoefficients, got {type(coefficients).__name__}")
    shape = _check_shape(shape)
    _check_generator(generator)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
    net = _Counter(denoiser)
    device = generator.device
    x = coefficients.prior_std * torch.randn(shape, generator=generator, device=device).to(dtype)
    rows = zip(*(v.tolist() for v in coefficients[1:6]))
    for s, sigma, a, c, noise_std in rows:
        x = c * net(x / s, sigma) + a * x
        if noise_std > 0:
            x = x + noise_std * torch.randn(shape, generator=generator, device=device).to(dtype)
    return Samples(x, net.nfe)


# --------------------------------------------------------------------------- exercises
def check_exercise_1(answer: float) -> bool:
    """Exercise 1: ``g(0.5)`` of the VE-SDE with ``sigma_min = 0.01``, ``sigma_max = 50``."""
    value = _as_float(answer)
    truth = float(drift_and_diffusion(VEPath(0.01, 50.0), 0.5)[1])
    return _report(
        value is not None and math.isclose(value, truth, rel_tol=1e-3),
        f"Correct: g = sigma(t) sqrt(2 log(sigma_max / sigma_min)) = {truth:.4f}.",
        "Not yet: g^2 = d sigma^2 / dt = 2 sigma sigma', and sigma' = log(sigma_max / sigma_min) sigma.",
    )


def check_exercise_2(answer: float) -> bool:
    """Exercise 2: the variance of ``x(0.5)`` given ``x(0)`` under the VP-SDE (``beta`` from 0.1 to 20)."""
    value = _as_float(answer)
    truth = float(transition_kernel(VPPath(), 0.0, 0.5)[1] ** 2)
    return _report(
        value is not None and math.isclose(value, truth, rel_tol=1e-3),
        f"Correct: 1 - exp(-int_0^0.5 beta) = 1 - exp(-2.5375) = {truth:.4f}.",
        "Not yet: the variance is 1 - alpha_bar(t) with alpha_bar(t) = exp(-int_0^t beta(r) dr).",
    )


def check_exercise_3(answer: float) -> bool:
    """Exercise 3: the probability-flow ODE of the VE path (0.01, 50) for data N(0, 1) maps x(1) = 10 to x(0) = ?"""
    value = _as_float(answer)
    truth = 10.0 * math.sqrt((1 + 0.01**2) / (1 + 50.0**2))
    return _report(
        value is not None and math.isclose(value, truth, rel_tol=1e-3),
        f"Correct: the flow is linear, x(t) = x(1) sqrt((1 + sigma(t)^2) / (1 + sigma(1)^2)); x(0) = {truth:.4f}.",
        "Not yet: p_t = N(0, 1 + sigma(t)^2), so the score is -x / (1 + sigma^2); "
        "solve dx/dt = sigma' sigma x / (1 + sigma^2).",
    )
