r"""EDM: one design space for diffusion models (Karras et al. 2022).

Karras, Aittala, Aila & Laine, "Elucidating the Design Space of Diffusion-Based
Generative Models", NeurIPS 2022 ("EDM"), write every diffusion and flow model as a
noising path :math:`x = s(t)\,(x_0 + \sigma(t)\,\varepsilon)` and a denoiser
:math:`D(\hat x; \sigma)`, and then tune each design choice on its own. The footing
of Part 6 (:mod:`mlnotes.diffusion.common`) already holds the paths, the denoiser
interface, EDM's preconditioning (:class:`~mlnotes.diffusion.common.EDMPrecond`), its
noise levels (:func:`~mlnotes.diffusion.common.edm_sigmas`) and the Euler and Heun
samplers. This module adds what the chapter ``book/diffusion/edm.ipynb`` needs:

- the family table (:func:`noise_path_family`);
- the probability-flow ODE in the unscaled variable, integrated on an explicit noise
  grid from explicit start points (:func:`solve_pf_ode`; Algorithm 1 of the paper), and the stochastic sampler with "churn"
  (:func:`edm_stochastic_sampler`; Algorithm 2);
- noise schedules as values (:class:`SigmaSchedule`): the paper's
  (:data:`PAPER_SCHEDULE`) and the one the chapter measures for the 8-Gaussian ring
  (:data:`RING_SCHEDULE`);
- training: the log-normal noise levels (:func:`training_sigmas`), the loss weight
  (:func:`edm_loss_weight`), the preconditioned input and target
  (:func:`preconditioned_pair`), the loss (:func:`edm_loss`), a small network
  (:class:`NoiseConditionedMLP`), an unpreconditioned baseline (:class:`PlainDenoiser`)
  and the entry point :func:`train_edm_denoiser` with :class:`EDMTrainConfig`;
- measurement: the footing's start points (:func:`start_points`), a converged
  reference solution (:func:`converged_solution`), the per-sample transport error
  (:func:`transport_error`), a robust convergence-order estimate
  (:func:`convergence_order`), the denoising error by noise level
  (:func:`denoising_mse`) and the part's sampler table (:func:`sampler_suite`, used by
  ``benchmarks/diffusion_samplers.py``);
- the exercises' checkers.

Chapter: ``book/diffusion/edm.ipynb``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from mlnotes.diffusion.common import (
    Denoiser,
    DiscreteVPPath,
    EDMPath,
    EDMPrecond,
    LinearPath,
    NoisePath,
    Samples,
    VEPath,
    VPPath,
    _Counter,
    _check_generator,
    _check_points,
    _check_shape,
    _noise,
    _positive_float,
    _positive_int,
    _silu_mlp,
    _uniform_init_,
    ddim,
    ddpm_ancestral,
    edm_coefficients,
    edm_sigmas,
    euler_maruyama_reverse_sde,
    euler_ode,
    heun_ode,
    rectified_flow_euler,
)
from mlnotes.exercises import as_float as _as_float, report as _report

__all__ = [
    "FamilyMember",
    "noise_path_family",
    "SigmaSchedule",
    "PAPER_SCHEDULE",
    "RING_SCHEDULE",
    "solve_pf_ode",
    "edm_stochastic_sampler",
    "training_sigmas",
    "edm_loss_weight",
    "preconditioned_pair",
    "edm_loss",
    "NoiseConditionedMLP",
    "PlainDenoiser",
    "EDMTrainConfig",
    "EDMFit",
    "train_edm_denoiser",
    "denoising_mse",
    "start_points",
    "converged_solution",
    "transport_error",
    "convergence_order",
    "SamplerSpec",
    "sampler_suite",
    "check_exercise_1",
    "check_exercise_2",
    "check_exercise_3",
]


# --------------------------------------------------------------------------- validation helpers
def _sigma_grid(sigmas: object) -> list[float]:
    """A strictly decreasing grid of noise levels, all > 0 except possibly a final 0."""
    grid = torch.as_tensor(sigmas, dtype=torch.float64).reshape(-1) if not isinstance(sigmas, torch.Tensor) else sigmas
    if grid.ndim != 1 or grid.numel() < 2:
        raise ValueError(f"sigmas must be a 1-D grid of at least 2 noise levels, got shape {tuple(grid.shape)}")
    values = [float(v) for v in grid.detach().cpu().to(torch.float64)]
    if not all(math.isfinite(v) for v in values) or min(values[:-1]) <= 0 or values[-1] < 0:
        raise ValueError(f"sigmas must be finite and > 0 (the last may be 0), got {values[:3]}...{values[-2:]}")
    if any(b >= a for a, b in zip(values[:-1], values[1:])):
        raise ValueError("sigmas must be strictly decreasing (noise to data)")
    return values


# --------------------------------------------------------------------------- the family
class FamilyMember(NamedTuple):
    """One row of the family table: a name, the footing's path, ``s(t)`` and ``sigma(t)`` in LaTeX, the papers."""

    name: str
    path: NoisePath
    s: str
    sigma: str
    source: str


def noise_path_family() -> list[FamilyMember]:
    r"""The four noising paths of Part 6 as members of ``x = s(t) (x0 + sigma(t) eps)`` (Karras et al. 2022, Table 1).

    Returns
    -------
    list of FamilyMember
        VP (DDPM), VE (SMLD), the straight path (rectified flow / flow matching) and
        EDM, each with its default :class:`~mlnotes.diffusion.common.NoisePath` of the footing.
    """
    return [
        FamilyMember("VP (DDPM)", VPPath(), r"$e^{-B(t)/2}$",
                     r"$\sqrt{e^{B(t)} - 1}$, $B(t) = \beta_\min t + \frac12(\beta_\max - \beta_\min) t^2$",
                     "Ho et al. 2020; Song et al. 2021"),
        FamilyMember("VE (SMLD)", VEPath(), "$1$", r"$\sigma_\min (\sigma_\max / \sigma_\min)^t$",
                     "Song & Ermon 2019; Song et al. 2021"),
        FamilyMember("straight (rectified flow, flow matching)", LinearPath(), "$1 - t$", "$t / (1 - t)$",
                     "Liu et al. 2023; Lipman et al. 2023"),
        FamilyMember("EDM", EDMPath(), "$1$", "$t$", "Karras et al. 2022"),
    ]


@dataclass(frozen=True)
class SigmaSchedule:
    r"""EDM's noise levels (eq. 5): ``n`` levels from `sigma_max` to `sigma_min`, evenly spaced in :math:`\sigma^{1/\rho}`, then 0.

    Attributes
    ----------
    sigma_min, sigma_max : float
        The smallest and largest noise level (``0 < sigma_min < sigma_max``).
    rho : float
        Larger ``rho`` puts more levels near `sigma_min`; ``rho = 1`` is evenly spaced in ``sigma``.
    """

    sigma_min: float = 0.002
    sigma_max: float = 80.0
    rho: float = 7.0

    def __post_init__(self) -> None:
        for name in ("sigma_min", "sigma_max", "rho"):
            _positive_float(getattr(self, name), name)
        if not self.sigma_max > self.sigma_min:
            raise ValueError(f"sigma_max must be > sigma_min = {self.sigma_min}, got {self.sigma_max}")

    def sigmas(self, n_steps: int) -> torch.Tensor:
        """The grid of :func:`~mlnotes.diffusion.common.edm_sigmas`: float64, shape ``(n_steps + 1,)``, last entry 0."""
        return edm_sigmas(n_steps, self.sigma_min, self.sigma_max, self.rho)

    def as_kwargs(self) -> dict[str, float]:
        """``sigma_min``, ``sigma_max``, ``rho`` as keyword arguments for the footing's ``euler_ode``/``heun_ode``."""
        return {"sigma_min": self.sigma_min, "sigma_max": self.sigma_max, "rho": self.rho}


#: The paper's schedule, tuned for images in ``[-1, 1]`` (Karras et al. 2022, Table 1).
PAPER_SCHEDULE = SigmaSchedule(0.002, 80.0, 7.0)
#: The schedule the chapter measures for :func:`~mlnotes.diffusion.analytic.mixture_of_8` (radius 2, mode std 0.2):
#: ``sigma_max`` 2.5x the data's diameter, ``sigma_min`` about a seventh of a mode's std, ``rho`` from a sweep of
#: Heun's transport error (``benchmarks/diffusion_samplers.py``).
RING_SCHEDULE = SigmaSchedule(0.03, 10.0, 4.0)


# --------------------------------------------------------------------------- samplers on an explicit grid
def solve_pf_ode(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor | Sequence[float],
    *,
    method: str = "heun",
    record: list[torch.Tensor] | None = None,
) -> Samples:
    r"""Integrate the probability-flow ODE :math:`d\hat x / d\sigma = (\hat x - D(\hat x; \sigma)) / \sigma` on a given grid.

    Karras et al. (2022), Algorithm 1, with ``s = 1`` and ``sigma(t) = t``: from ``x`` at
    ``sigmas[0]`` down the grid; each step is Euler's, and with ``method="heun"`` the
    trapezoidal correction is added wherever the next level is not 0. A final level 0
    makes the last step Euler's, which returns ``D(x; sigmas[-2])``.

    Parameters
    ----------
    denoiser : Denoiser
        ``D(x_hat, sigma)``.
    x : torch.Tensor, shape ``(batch, *dims)``
        Start points, the unscaled ``x_hat`` at noise level ``sigmas[0]``; their dtype and
        device are the computation's.
    sigmas : torch.Tensor or sequence of float
        Strictly decreasing noise levels, all > 0 except possibly the last, which may be 0.
    method : {"heun", "euler"}
    record : list, optional
        If given, the state at every level (``len(sigmas)`` tensors) is appended to it.

    Returns
    -------
    Samples
        The end points, shape of `x`, and the evaluations spent: ``len(sigmas) - 1`` for
        Euler; Heun adds one per step that does not end at 0.

    Raises
    ------
    ValueError
        If `method` is unknown, `x` is empty or not finite, or `sigmas` is not a
        strictly decreasing grid of positive levels (with an optional final 0).
    TypeError
        If `x` is not a floating-point tensor.
    """
    if method not in ("euler", "heun"):
        raise ValueError(f"method must be 'euler' or 'heun', got {method!r}")
    x = _check_points(x, "x")
    levels = _sigma_grid(sigmas)
    net = _Counter(denoiser)
    if record is not None:
        record.append(x)
    for sigma, sigma_next in zip(levels[:-1], levels[1:]):
        slope = (x - net(x, sigma)) / sigma  # dx/dsigma = (x - D(x; sigma)) / sigma
        x_next = x + (sigma_next - sigma) * slope  # Euler
        if method == "heun" and sigma_next > 0:  # trapezoidal correction
            slope_next = (x_next - net(x_next, sigma_next)) / sigma_next
            x_next = x + (sigma_next - sigma) * 0.5 * (slope + slope_next)
        x = x_next
        if record is not None:
            record.append(x)
    return Samples(x, net.nfe)


def edm_stochastic_sampler(
    denoiser: Denoiser,
    n_steps: int,
    shape: Sequence[int],
    generator: torch.Generator,
    *,
    schedule: SigmaSchedule = PAPER_SCHEDULE,
    s_churn: float = 0.0,
    s_tmin: float = 0.0,
    s_tmax: float = math.inf,
    s_noise: float = 1.0,
    dtype: torch.dtype = torch.float32,
) -> Samples:
    r"""EDM's stochastic sampler (Karras et al. 2022, Algorithm 2): Heun steps with added and removed noise.

    Before step ``i`` at level :math:`\sigma_i \in [S_\text{tmin}, S_\text{tmax}]` the noise is raised to
    :math:`\hat\sigma = (1 + \gamma)\sigma_i` with :math:`\gamma = \min(S_\text{churn}/N, \sqrt2 - 1)` by adding
    fresh noise of standard deviation :math:`S_\text{noise}\sqrt{\hat\sigma^2 - \sigma_i^2}`, then one
    Heun step of the probability-flow ODE goes from :math:`\hat\sigma` to :math:`\sigma_{i+1}` (Euler on
    the last step, to 0). ``s_churn = 0`` is Algorithm 1, the same as
    :func:`~mlnotes.diffusion.common.heun_ode` on :class:`~mlnotes.diffusion.common.EDMPath`.

    The start is the footing's, ``x = sqrt(1 + sigma_max^2) z`` (the paper draws
    ``N(0, sigma_max^2 I)``; the two agree at large ``sigma_max``).

    Parameters
    ----------
    denoiser : Denoiser
    n_steps : int
        ``N``; NFE = ``2 N - 1``.
    shape : sequence of int
        ``(batch, *dims)``.
    generator : torch.Generator
        Draws the start and the churn noise; its device is where sampling runs.
    schedule : SigmaSchedule, default PAPER_SCHEDULE
    s_churn, s_tmin, s_tmax, s_noise : float
        The paper's stochasticity parameters (``s_churn >= 0``, ``s_noise > 0``).
    dtype : torch.dtype, default float32

    Returns
    -------
    Samples
    """
    n_steps = _positive_int(n_steps, "n_steps")
    if not isinstance(schedule, SigmaSchedule):
        raise TypeError(f"schedule must be a SigmaSchedule, got {type(schedule).__name__}")
    if isinstance(s_churn, bool) or not isinstance(s_churn, (int, float)) or not (math.isfinite(s_churn) and s_churn >= 0):
        raise ValueError(f"s_churn must be a finite number >= 0, got {s_churn!r}")
    s_noise = _positive_float(s_noise, "s_noise")
    if not (isinstance(s_tmin, (int, float)) and isinstance(s_tmax, (int, float)) and 0 <= s_tmin <= s_tmax):
        raise ValueError(f"need 0 <= s_tmin <= s_tmax, got s_tmin={s_tmin!r}, s_tmax={s_tmax!r}")
    shape = _check_shape(shape)
    _check_generator(generator)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
    levels = schedule.sigmas(n_steps).tolist()
    gamma_max = min(s_churn / n_steps, math.sqrt(2.0) - 1.0)
    net = _Counter(denoiser)
    x = math.sqrt(1.0 + levels[0] ** 2) * _noise(shape, generator, dtype)
    for sigma, sigma_next in zip(levels[:-1], levels[1:]):
        gamma = gamma_max if s_tmin <= sigma <= s_tmax else 0.0
        sigma_hat = sigma * (1.0 + gamma)
        if gamma > 0:
            fresh = torch.randn(shape, generator=generator, device=generator.device).to(dtype)
            x = x + s_noise * math.sqrt(sigma_hat**2 - sigma**2) * fresh
        slope = (x - net(x, sigma_hat)) / sigma_hat
        x_next = x + (sigma_next - sigma_hat) * slope
        if sigma_next > 0:
            slope_next = (x_next - net(x_next, sigma_next)) / sigma_next
            x_next = x + (sigma_next - sigma_hat) * 0.5 * (slope + slope_next)
        x = x_next
    return Samples(x, net.nfe)


# --------------------------------------------------------------------------- training
def training_sigmas(
    n: int,
    generator: torch.Generator,
    *,
    p_mean: float = -1.2,
    p_std: float = 1.2,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    r"""EDM's training noise levels: :math:`\ln\sigma \sim \mathcal{N}(P_\text{mean}, P_\text{std}^2)`, shape ``(n,)``.

    Drawn on the generator's device in `dtype`. The defaults are the paper's (Table 1).
    """
    n = _positive_int(n, "n")
    _check_generator(generator)
    p_std = _positive_float(p_std, "p_std")
    if isinstance(p_mean, bool) or not isinstance(p_mean, (int, float)) or not math.isfinite(p_mean):
        raise ValueError(f"p_mean must be a finite number, got {p_mean!r}")
    normal = torch.randn(n, generator=generator, device=generator.device, dtype=torch.float32)
    return torch.exp(p_mean + p_std * normal).to(dtype)


def edm_loss_weight(sigma: torch.Tensor, sigma_data: float) -> torch.Tensor:
    r"""EDM's loss weight :math:`\lambda(\sigma) = (\sigma^2 + \sigma_d^2) / (\sigma\sigma_d)^2 = 1 / c_\text{out}^2`.

    With it, :math:`\lambda \lVert D - x_0\rVert^2 = \lVert F - F_\text{target}\rVert^2`: the raw
    network's error counts equally at every noise level.
    """
    sigma_data = _positive_float(sigma_data, "sigma_data")
    return (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2


def _bcast(value: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return value.reshape(value.shape + (1,) * (like.ndim - value.ndim))


def preconditioned_pair(
    x0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor, sigma_data: float
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The raw network's input and regression target under EDM's preconditioning.

    With :math:`\hat x = x_0 + \sigma n` and the coefficients of
    :func:`~mlnotes.diffusion.common.edm_coefficients`,

    .. math:: \text{input} = c_\text{in}\,\hat x, \qquad
              F_\text{target} = \frac{x_0 - c_\text{skip}\,\hat x}{c_\text{out}},

    both of unit variance for data of second moment :math:`\sigma_d^2` per coordinate.

    Parameters
    ----------
    x0, noise : torch.Tensor, shape ``(batch, *dims)``
    sigma : torch.Tensor, shape (batch,)
    sigma_data : float

    Returns
    -------
    net_input, target : torch.Tensor, shape of `x0`
    """
    if x0.shape != noise.shape or sigma.shape != x0.shape[:1]:
        raise ValueError(f"x0 and noise must share a shape (batch, *dims) and sigma must be (batch,), got "
                         f"{tuple(x0.shape)}, {tuple(noise.shape)}, {tuple(sigma.shape)}")
    c_skip, c_out, c_in, _ = (_bcast(c, x0) for c in edm_coefficients(sigma, sigma_data))
    x_hat = x0 + _bcast(sigma, x0) * noise
    return c_in * x_hat, (x0 - c_skip * x_hat) / c_out


def edm_loss(
    denoiser: Denoiser,
    x0: torch.Tensor,
    sigma: torch.Tensor,
    noise: torch.Tensor,
    *,
    sigma_data: float | None = None,
) -> torch.Tensor:
    r"""The denoising loss at given noise levels and noise (Karras et al. 2022, eq. 2 with Table 1's weight).

    .. math:: \mathcal{L} = \frac{1}{B}\sum_i \lambda(\sigma_i)\,
              \overline{\big(D(x_{0,i} + \sigma_i n_i;\ \sigma_i) - x_{0,i}\big)^2},

    the bar a mean over coordinates; ``lambda`` is :func:`edm_loss_weight` when `sigma_data`
    is given, else 1 (the unweighted loss of the baseline).

    Parameters
    ----------
    denoiser : Denoiser
        ``D(x_hat, sigma)``.
    x0, noise : torch.Tensor, shape ``(batch, *dims)``
    sigma : torch.Tensor, shape (batch,)
    sigma_data : float, optional

    Returns
    -------
    torch.Tensor, shape ()
    """
    if x0.shape != noise.shape or sigma.shape != x0.shape[:1]:
        raise ValueError(f"x0 and noise must share a shape (batch, *dims) and sigma must be (batch,), got "
                         f"{tuple(x0.shape)}, {tuple(noise.shape)}, {tuple(sigma.shape)}")
    error = (denoiser(x0 + _bcast(sigma, x0) * noise, sigma) - x0).pow(2).flatten(1).mean(dim=1)
    weight = edm_loss_weight(sigma, sigma_data) if sigma_data is not None else torch.ones_like(sigma)
    return (weight.to(error.dtype) * error).mean()


class NoiseConditionedMLP(nn.Module):
    r"""A small MLP ``F(x, c_noise)`` for low-dimensional data: the raw network inside a denoiser.

    ``x`` is concatenated with Fourier features :math:`(\sin 2\pi f_k c, \cos 2\pi f_k c)` of the
    noise input ``c = c_noise`` (``f_k = 2^k / 4``, ``k = 0 .. noise_features/2 - 1``), then
    `n_layers` hidden layers of width `hidden_dim` with SiLU and a linear read-out.

    Parameters
    ----------
    dim : int
        Data dimension.
    hidden_dim : int, default 128
    n_layers : int, default 3
    noise_features : int, default 8
        Even.
    generator : torch.Generator, optional
        Draws the initial weights (PyTorch's default uniform ranges); without it, the global RNG.
    """

    def __init__(
        self, dim: int, hidden_dim: int = 128, n_layers: int = 3, noise_features: int = 8,
        *, generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.dim = _positive_int(dim, "dim")
        hidden_dim, n_layers = _positive_int(hidden_dim, "hidden_dim"), _positive_int(n_layers, "n_layers")
        if _positive_int(noise_features, "noise_features") % 2:
            raise ValueError(f"noise_features must be even, got {noise_features}")
        self.register_buffer("frequencies", 2.0 ** torch.arange(noise_features // 2) / 4.0, persistent=False)
        self.net = _silu_mlp(dim + noise_features, hidden_dim, n_layers, dim)
        if generator is not None:
            _uniform_init_(self.net, generator)

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
        """``x`` of shape ``(batch, dim)``, ``c_noise`` of shape ``(batch,)``; returns ``(batch, dim)``."""
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (batch, {self.dim}), got {tuple(x.shape)}")
        angles = 2 * math.pi * c_noise.to(x.dtype)[:, None] * self.frequencies.to(x.dtype)
        return self.net(torch.cat([x, torch.sin(angles), torch.cos(angles)], dim=1))


class PlainDenoiser(nn.Module):
    r"""The baseline without preconditioning: ``D(x_hat, sigma) = F(x_hat, ln(sigma) / 4)``.

    The raw network sees the noisy point as it is and predicts the clean point directly;
    only the noise input is EDM's :math:`c_\text{noise}`, so that the comparison with
    :class:`~mlnotes.diffusion.common.EDMPrecond` isolates ``c_skip``, ``c_out``, ``c_in`` (and the loss weight).
    """

    def __init__(self, raw_net: nn.Module) -> None:
        super().__init__()
        self.raw_net = raw_net

    def forward(self, x_hat: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        sigma = torch.as_tensor(sigma, dtype=x_hat.dtype, device=x_hat.device)
        sigma = sigma.expand(x_hat.shape[0]) if sigma.ndim == 0 else sigma
        return self.raw_net(x_hat, 0.25 * torch.log(sigma))


@dataclass
class EDMTrainConfig:
    """Hyperparameters of :func:`train_edm_denoiser`.

    Attributes
    ----------
    steps : int, default 2000
        Adam steps.
    batch_size : int, default 256
    lr : float, default 2e-3
        Adam's learning rate, decayed to 0 by a cosine.
    hidden_dim, n_layers, noise_features : int
        :class:`NoiseConditionedMLP`'s size (128, 3, 8).
    p_mean, p_std : float
        Log-normal training noise levels, :func:`training_sigmas` (the paper's -1.2, 1.2).
    sigma_data : float or None, default None
        The data's scale for the preconditioning; None: the root mean square of the
        training data's coordinates.
    precondition : bool, default True
        True: :class:`~mlnotes.diffusion.common.EDMPrecond` around the network and the
        weighted loss (:func:`edm_loss_weight`). False: the baseline, :class:`PlainDenoiser`
        and the unweighted loss.
    """

    steps: int = 2000
    batch_size: int = 256
    lr: float = 2e-3
    hidden_dim: int = 128
    n_layers: int = 3
    noise_features: int = 8
    p_mean: float = -1.2
    p_std: float = 1.2
    sigma_data: float | None = None
    precondition: bool = True

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "hidden_dim", "n_layers", "noise_features"):
            _positive_int(getattr(self, name), f"EDMTrainConfig.{name}")
        _positive_float(self.lr, "EDMTrainConfig.lr")
        _positive_float(self.p_std, "EDMTrainConfig.p_std")
        if self.sigma_data is not None:
            _positive_float(self.sigma_data, "EDMTrainConfig.sigma_data")
        if not isinstance(self.precondition, bool):
            raise TypeError(f"EDMTrainConfig.precondition must be a bool, got {type(self.precondition).__name__}")


class EDMFit(NamedTuple):
    """What :func:`train_edm_denoiser` returns.

    Attributes
    ----------
    denoiser : nn.Module
        ``D(x_hat, sigma)`` (:class:`~mlnotes.diffusion.common.EDMPrecond` or :class:`PlainDenoiser`), in eval mode.
    losses : np.ndarray, shape (steps,)
        The training loss of every step.
    sigma_data : float
        The scale used by the preconditioning (reported also for the baseline).
    """

    denoiser: nn.Module
    losses: np.ndarray
    sigma_data: float


def train_edm_denoiser(data: torch.Tensor, config: EDMTrainConfig | None = None, *, generator: torch.Generator) -> EDMFit:
    r"""Train a small denoiser on `data` with EDM's recipe (Karras et al. 2022, Table 1, "Training").

    Each step draws a batch of data, noise levels from :func:`training_sigmas` and Gaussian
    noise, and takes an Adam step on :func:`edm_loss`; the learning rate decays to 0 on a
    cosine. With ``config.precondition`` the network is wrapped in EDM's preconditioning
    and the loss is weighted by :func:`edm_loss_weight`; without it, it is the baseline
    (:class:`PlainDenoiser`, unweighted loss), with everything else the same.

    Parameters
    ----------
    data : torch.Tensor, shape (n, dim)
        Training samples; training runs on their device and in their dtype.
    config : EDMTrainConfig, optional
    generator : torch.Generator
        Initial weights, batches, noise levels and noise; on the device of `data`.

    Returns
    -------
    EDMFit

    Raises
    ------
    TypeError
        If `data` is not a floating-point tensor, `config` not an :class:`EDMTrainConfig`,
        `generator` not a ``torch.Generator``.
    ValueError
        If `data` is not of shape ``(n, dim)`` with ``n >= 1``, not finite, or the
        generator is on another device.
    """
    config = EDMTrainConfig() if config is None else config
    if not isinstance(config, EDMTrainConfig):
        raise TypeError(f"config must be an EDMTrainConfig, got {type(config).__name__}")
    _check_generator(generator)
    data = _check_points(data, "data")
    if data.ndim != 2:
        raise ValueError(f"data must have shape (n, dim), got {tuple(data.shape)}")
    if generator.device.type != data.device.type:
        raise ValueError(f"generator must be on the data's device {data.device}, got {generator.device}")
    device, dtype = data.device, data.dtype
    sigma_data = config.sigma_data if config.sigma_data is not None else float(data.pow(2).mean().sqrt())
    raw = NoiseConditionedMLP(data.shape[1], config.hidden_dim, config.n_layers, config.noise_features, generator=generator)
    raw = raw.to(device=device, dtype=dtype)
    denoiser: nn.Module = EDMPrecond(raw, sigma_data) if config.precondition else PlainDenoiser(raw)
    denoiser.train()
    optimizer = torch.optim.Adam(denoiser.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / config.steps)))
    losses = np.empty(config.steps)
    for step in range(config.steps):
        x0 = data[torch.randint(data.shape[0], (config.batch_size,), generator=generator, device=device)]
        sigma = training_sigmas(config.batch_size, generator, p_mean=config.p_mean, p_std=config.p_std, dtype=dtype)
        noise = torch.randn(x0.shape, generator=generator, device=device).to(dtype)
        loss = edm_loss(denoiser, x0, sigma, noise, sigma_data=sigma_data if config.precondition else None)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses[step] = float(loss.detach())
    if not np.all(np.isfinite(losses)):
        raise FloatingPointError("the training loss became NaN or inf; lower config.lr")
    return EDMFit(denoiser.eval(), losses, sigma_data)


@torch.no_grad()
def denoising_mse(
    denoiser: Denoiser, x0: torch.Tensor, sigmas: Sequence[float] | torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    r"""Mean squared denoising error :math:`\overline{(D(x_0 + \sigma n; \sigma) - x_0)^2}` at each noise level.

    The same noise ``n`` (drawn once from `generator`) is used at every level, so that
    two denoisers compared on the same `generator` seed see the same inputs.

    Parameters
    ----------
    denoiser : Denoiser
    x0 : torch.Tensor, shape ``(batch, *dims)``
        Clean data.
    sigmas : sequence of float or 1-D tensor
        Noise levels > 0.
    generator : torch.Generator
        On the device of `x0`.

    Returns
    -------
    torch.Tensor, float64, shape (len(sigmas),)
        The error per coordinate (averaged over batch and coordinates).
    """
    x0 = _check_points(x0, "x0")
    _check_generator(generator)
    levels = [float(s) for s in torch.as_tensor(sigmas, dtype=torch.float64).reshape(-1)]
    if not levels or min(levels) <= 0 or not all(math.isfinite(s) for s in levels):
        raise ValueError("sigmas must be a non-empty list of finite noise levels > 0")
    noise = torch.randn(x0.shape, generator=generator, device=x0.device).to(x0.dtype)
    out = []
    for sigma in levels:
        level = torch.full((x0.shape[0],), sigma, dtype=x0.dtype, device=x0.device)
        out.append(float((denoiser(x0 + sigma * noise, level) - x0).double().pow(2).mean()))
    return torch.tensor(out, dtype=torch.float64)


# --------------------------------------------------------------------------- measurement
def start_points(
    shape: Sequence[int], generator: torch.Generator, sigma_max: float, *, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    r"""The start :math:`\hat x = \sqrt{1 + \sigma_\max^2}\, z` that the footing's samplers draw first from `generator`.

    A generator seeded as the one given to :func:`~mlnotes.diffusion.common.ddim`,
    :func:`~mlnotes.diffusion.common.euler_ode`, :func:`~mlnotes.diffusion.common.heun_ode`
    (or :func:`edm_stochastic_sampler`) yields the same ``z``: the reference solution
    from these points follows the sampler's own trajectory.
    """
    shape = _check_shape(shape)
    _check_generator(generator)
    return math.sqrt(1.0 + _positive_float(sigma_max, "sigma_max") ** 2) * _noise(shape, generator, dtype)


def converged_solution(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigma_start: float,
    *,
    n_steps: int = 1024,
    sigma_min: float = 1e-4,
    rho: float = 7.0,
) -> torch.Tensor:
    """The probability-flow ODE's solution from `x` at `sigma_start` to 0, by Heun with many steps.

    :func:`solve_pf_ode` on ``edm_sigmas(n_steps, sigma_min, sigma_start, rho)``: its
    error shrinks as ``n_steps^-2`` and the truncation at `sigma_min` is negligible for
    data whose finest scale is far above it. Use it in float64 as the reference
    against which :func:`transport_error` measures a sampler.
    """
    sigma_start = _positive_float(sigma_start, "sigma_start")
    return solve_pf_ode(denoiser, x, edm_sigmas(n_steps, sigma_min, sigma_start, rho)).x


def transport_error(x: torch.Tensor, reference: torch.Tensor) -> float:
    r"""Root mean square distance between paired samples, :math:`\sqrt{\tfrac1n\sum_i \lVert x_i - x^\text{ref}_i\rVert^2}`.

    With ``reference`` the converged ODE solution from the same start points, this is a
    sampler's discretisation error, free of sampling noise. It bounds the Wasserstein-2
    distance between the two samples' distributions (the pairing is one coupling), and
    the sliced W2 by ``1/sqrt(dim)`` of it.
    """
    x, reference = _check_points(x, "x"), _check_points(reference, "reference")
    if x.shape != reference.shape:
        raise ValueError(f"x and reference must have the same shape, got {tuple(x.shape)} and {tuple(reference.shape)}")
    return float((x.double() - reference.double().to(x.device)).pow(2).flatten(1).sum(dim=1).mean().sqrt())


def convergence_order(n_steps: Sequence[int], errors: Sequence[float]) -> float:
    r"""The order ``p`` of ``error ~ C n^-p``: the median of the pairwise slopes in log-log (Theil-Sen).

    Robust to one outlying point (a step count in the pre-asymptotic regime or at the
    reference's accuracy). Needs at least three distinct step counts and positive errors.
    """
    n = np.asarray(n_steps, dtype=np.float64)
    e = np.asarray(errors, dtype=np.float64)
    if n.ndim != 1 or n.shape != e.shape or len(np.unique(n)) < 3:
        raise ValueError(f"n_steps and errors must be 1-D, of the same length, with >= 3 distinct step counts; got {n.shape}, {e.shape}")
    if not (np.all(np.isfinite(e)) and np.all(e > 0) and np.all(n > 0)):
        raise ValueError("errors and n_steps must be finite and > 0")
    log_n, log_e = np.log(n), np.log(e)
    slopes = [(log_e[j] - log_e[i]) / (log_n[j] - log_n[i]) for i in range(len(n)) for j in range(i + 1, len(n)) if n[i] != n[j]]
    return float(-np.median(slopes))


class SamplerSpec(NamedTuple):
    """One entry of :func:`sampler_suite`: a family, its step count, ``run(shape, generator) -> Samples``, and
    whether it is deterministic given its start (then :func:`transport_error` applies)."""

    family: str
    steps: int
    run: Callable[[tuple[int, ...], torch.Generator], Samples]
    deterministic: bool


def sampler_suite(
    denoiser: Denoiser,
    velocity: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    tuned: SigmaSchedule = RING_SCHEDULE,
    steps: dict[str, Sequence[int]] | None = None,
) -> list[SamplerSpec]:
    """Every sampler of Part 6 at several step counts, for the NFE-against-quality comparison.

    Families: DDPM ancestral (1000-step schedule), DDIM ``eta = 0`` and ``eta = 1``,
    Euler-Maruyama for the VP reverse SDE, Euler and Heun for the PF-ODE on the EDM path
    with the paper's schedule, Heun with the `tuned` schedule, EDM's stochastic sampler
    (``S_churn = 10`` on the tuned schedule), and rectified-flow Euler driven by `velocity`
    (the exact straight-path velocity). `steps` overrides the step counts of families by name.
    """
    ddpm_path, vp, edm = DiscreteVPPath(1000), VPPath(), EDMPath()
    counts: dict[str, Sequence[int]] = {
        "DDPM ancestral": (50, 100, 250, 1000),
        "DDIM eta=0": (10, 20, 50, 100),
        "DDIM eta=1": (100,),
        "Euler-Maruyama VP-SDE": (100, 250, 1000),
        "Euler PF-ODE (EDM, paper schedule)": (10, 18, 50),
        "Heun PF-ODE (EDM, paper schedule)": (5, 10, 18, 25, 35),
        "Heun PF-ODE (EDM, ring schedule)": (5, 10, 13, 18, 25),
        "EDM stochastic S_churn=10 (ring schedule)": (18, 50),
        "Rectified flow Euler": (1, 5, 10, 20, 50),
    }
    if steps is not None:
        unknown = set(steps) - set(counts)
        if unknown:
            raise ValueError(f"unknown sampler families {sorted(unknown)}; known: {sorted(counts)}")
        counts.update(steps)
    makers: dict[str, tuple[Callable[[int], Callable[[tuple[int, ...], torch.Generator], Samples]], bool]] = {
        "DDPM ancestral": (lambda n: lambda shape, g: ddpm_ancestral(denoiser, ddpm_path, n, shape, g), False),
        "DDIM eta=0": (lambda n: lambda shape, g: ddim(denoiser, ddpm_path, n, shape, g), True),
        "DDIM eta=1": (lambda n: lambda shape, g: ddim(denoiser, ddpm_path, n, shape, g, eta=1.0), False),
        "Euler-Maruyama VP-SDE": (lambda n: lambda shape, g: euler_maruyama_reverse_sde(denoiser, vp, n, shape, g), False),
        "Euler PF-ODE (EDM, paper schedule)": (
            lambda n: lambda shape, g: euler_ode(denoiser, edm, n, shape, g, **PAPER_SCHEDULE.as_kwargs()), True),
        "Heun PF-ODE (EDM, paper schedule)": (
            lambda n: lambda shape, g: heun_ode(denoiser, edm, n, shape, g, **PAPER_SCHEDULE.as_kwargs()), True),
        "Heun PF-ODE (EDM, ring schedule)": (
            lambda n: lambda shape, g: heun_ode(denoiser, edm, n, shape, g, **tuned.as_kwargs()), True),
        "EDM stochastic S_churn=10 (ring schedule)": (
            lambda n: lambda shape, g: edm_stochastic_sampler(denoiser, n, shape, g, schedule=tuned, s_churn=10.0), False),
        "Rectified flow Euler": (lambda n: lambda shape, g: rectified_flow_euler(velocity, n, shape, g), True),
    }
    return [SamplerSpec(family, int(n), makers[family][0](int(n)), makers[family][1])
            for family in counts for n in counts[family]]


# --------------------------------------------------------------------------- exercises
def check_exercise_1(answer: float) -> bool:
    """Exercise 1: ``c_out`` at ``sigma = sigma_data = 0.5``."""
    value = _as_float(answer)
    truth = float(edm_coefficients(torch.tensor(0.5, dtype=torch.float64), 0.5)[1])
    return _report(
        value is not None and math.isclose(value, truth, rel_tol=1e-3),
        f"Correct: c_out = sigma sigma_d / sqrt(sigma^2 + sigma_d^2) = 0.25 / sqrt(0.5) = {truth:.4f}.",
        "Not yet: c_out = sigma * sigma_data / sqrt(sigma^2 + sigma_data^2).",
    )


def check_exercise_2(answer: float) -> bool:
    """Exercise 2: the noise level ``sigma`` of the VP path (``beta_min = 0.1``, ``beta_max = 20``) at ``t = 0.5``."""
    value = _as_float(answer)
    truth = float(VPPath().sigma(0.5))
    return _report(
        value is not None and math.isclose(value, truth, rel_tol=1e-3),
        f"Correct: B(0.5) = 0.05 + 19.9 / 8 = 2.5375 and sigma = sqrt(e^B - 1) = {truth:.4f}.",
        "Not yet: sigma = sqrt(1 / alpha_bar - 1) with alpha_bar = exp(-B(t)), B(t) = beta_min t + (beta_max - beta_min) t^2 / 2.",
    )


def check_exercise_3(answer: float) -> bool:
    """Exercise 3: the raw network's target for ``x0 = 1``, ``n = 2``, ``sigma = 0.01``, ``sigma_data = 0.5`` (1-D)."""
    value = _as_float(answer)
    one = torch.ones(1, 1, dtype=torch.float64)
    truth = float(preconditioned_pair(one, 2 * one, torch.full((1,), 0.01, dtype=torch.float64), 0.5)[1])
    return _report(
        value is not None and math.isclose(value, truth, rel_tol=1e-3),
        f"Correct: F_target = (x0 - c_skip x_hat) / c_out = {truth:.4f}, close to -n = -2: at low noise the network predicts the noise.",
        "Not yet: x_hat = x0 + sigma n; then (x0 - c_skip x_hat) / c_out with c_skip, c_out from Table 1.",
    )

