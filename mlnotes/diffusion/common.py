r"""One noising path, one model interface and the samplers of Part 6 (diffusion and flow models).

Every diffusion and flow model of the part corrupts data the same way (Karras et
al., "Elucidating the Design Space of Diffusion-Based Generative Models",
NeurIPS 2022, "EDM"):

.. math:: x = s(t)\,\big(x_0 + \sigma(t)\,\varepsilon\big), \qquad \varepsilon \sim \mathcal{N}(0, I),

and differs only in the scale :math:`s(t)` and the noise level :math:`\sigma(t)`:

- :class:`VPPath`: DDPM / variance preserving (Ho et al. 2020; Song et al. 2021b),
  :math:`s = \sqrt{\bar\alpha}`, :math:`\sigma = \sqrt{(1 - \bar\alpha)/\bar\alpha}`;
  :class:`DiscreteVPPath` is its 1000-step discrete original;
- :class:`VEPath`: SMLD / variance exploding (Song & Ermon 2019; Song et al. 2021b),
  :math:`s = 1`, :math:`\sigma` geometric;
- :class:`LinearPath`: rectified flow / flow matching (Liu et al. 2023; Lipman et
  al. 2023), :math:`x_t = (1 - t) x_0 + t \varepsilon`;
- :class:`EDMPath`: :math:`s = 1`, :math:`\sigma = t` (Karras et al. 2022).

**One model interface.** A model is a *denoiser* ``D(x_hat, sigma)``: the estimate
of :math:`x_0` from the *unscaled* input :math:`\hat x = x / s = x_0 + \sigma\varepsilon`.
Epsilon-, score- and velocity-prediction are exact reparametrisations of it
(:func:`eps_from_x0`, :func:`score_from_x0`, :func:`velocity_from_x0` and their
inverses; :func:`denoiser_from_eps` and friends wrap whole models).

**Samplers.** :func:`ddpm_ancestral`, :func:`ddim`, :func:`euler_maruyama_reverse_sde`,
:func:`euler_ode`, :func:`heun_ode` (with :func:`edm_sigmas`) and
:func:`rectified_flow_euler` (with :func:`reflow_pairs`) all take a denoiser (or a
velocity model), a ``torch.Generator`` and a shape, work on the generator's device in
the requested dtype, and return :class:`Samples` ``(x, nfe)``: the samples and the
number of network evaluations.

Chapters: ``book/diffusion/ddpm_ddim.ipynb`` and ``rectified_flow`` (written);
``score_models``, ``sde``, ``flows_vs_diffusion`` and ``edm`` (planned; the last shows
that the four paths are one family).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import NamedTuple, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

__all__ = [
    "Denoiser",
    "NoisePath",
    "VPPath",
    "DiscreteVPPath",
    "VEPath",
    "LinearPath",
    "EDMPath",
    "Samples",
    "eps_from_x0",
    "x0_from_eps",
    "score_from_x0",
    "x0_from_score",
    "velocity_from_x0",
    "x0_from_velocity",
    "denoiser_from_eps",
    "denoiser_from_score",
    "denoiser_from_velocity",
    "eps_model_from_denoiser",
    "score_model_from_denoiser",
    "velocity_model_from_denoiser",
    "sinusoidal_embedding",
    "edm_coefficients",
    "EDMPrecond",
    "edm_precondition",
    "edm_sigmas",
    "ddpm_ancestral",
    "ddim",
    "euler_maruyama_reverse_sde",
    "euler_ode",
    "heun_ode",
    "rectified_flow_euler",
    "reflow_pairs",
]

TimeLike = float | torch.Tensor
ModelFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@runtime_checkable
class Denoiser(Protocol):
    """A model of ``E[x0 | x0 + sigma * eps = x_hat]``.

    ``D(x_hat, sigma)`` takes ``x_hat`` of shape ``(batch, *dims)`` and ``sigma`` of
    shape ``(batch,)`` (same dtype and device) and returns a tensor shaped like ``x_hat``.
    """

    def __call__(self, x_hat: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor: ...


class Samples(NamedTuple):
    """What every sampler returns: ``x`` of shape ``shape`` and ``nfe``, the network evaluations spent."""

    x: torch.Tensor
    nfe: int


# --------------------------------------------------------------------------- validation helpers
def _as_time(t: TimeLike) -> torch.Tensor:
    if isinstance(t, torch.Tensor):
        return t if t.is_floating_point() else t.to(torch.float64)
    if isinstance(t, bool) or not isinstance(t, (int, float)):
        raise TypeError(f"t must be a float or a floating-point tensor, got {type(t).__name__}")
    return torch.tensor(float(t), dtype=torch.float64)


def _positive_float(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a positive float, got {type(value).__name__}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return int(value)


def _silu_mlp(in_dim: int, hidden_dim: int, n_layers: int, out_dim: int) -> nn.Sequential:
    """``in_dim -> hidden_dim`` then ``n_layers - 1`` more hidden layers, SiLU after each, then a linear ``-> out_dim``."""
    widths = [in_dim] + [hidden_dim] * n_layers
    layers: list[nn.Module] = []
    for width_in, width_out in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(width_in, width_out), nn.SiLU()]
    layers.append(nn.Linear(hidden_dim, out_dim))
    return nn.Sequential(*layers)


def _uniform_init_(module: nn.Module, generator: torch.Generator) -> None:
    """Redraw every linear and convolution weight and bias of `module` from `generator`.

    PyTorch's default ranges, ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, drawn from an explicit
    generator instead of the global random state (so that a seed fixes the network).
    """
    _check_generator(generator)
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, (nn.Linear, nn.Conv2d)):
                bound = 1.0 / math.sqrt(layer.weight[0].numel())
                for p in (layer.weight, layer.bias):
                    if p is not None:
                        p.copy_(torch.rand(p.shape, generator=generator, device=generator.device).to(p) * 2 * bound - bound)


def _check_points(x: object, name: str = "x", *, flat: bool = False) -> torch.Tensor:
    """A finite floating-point tensor of shape ``(batch, dim)`` (`flat`) or ``(batch, *dims)``, batch >= 1."""
    want = "(batch, dim)" if flat else "(batch, *dims)"
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        got = f"{x.dtype} tensor" if isinstance(x, torch.Tensor) else type(x).__name__
        raise TypeError(f"{name} must be a floating-point tensor of shape {want}, got {got}")
    if (x.ndim != 2 if flat else x.ndim < 2) or x.numel() == 0:
        raise ValueError(f"{name} must have shape {want} with no empty dimension, got {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} must be finite, got NaN or inf")
    return x


def _check_steps(n_steps: int, name: str = "n_steps") -> int:
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 1:
        raise ValueError(f"{name} must be an int >= 1, got {n_steps!r}")
    return n_steps


def _check_shape(shape: Sequence[int]) -> tuple[int, ...]:
    try:
        shape = tuple(shape)
    except TypeError:
        raise TypeError(f"shape must be a sequence of ints such as (batch, dim), got {type(shape).__name__}") from None
    if len(shape) < 1 or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in shape):
        raise ValueError(f"shape must be a non-empty sequence of positive ints such as (batch, dim), got {shape!r}")
    return shape


def _check_generator(generator: torch.Generator) -> torch.Generator:
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    return generator


def _check_sigma(sigma: torch.Tensor, name: str = "sigma") -> None:
    if torch.isnan(sigma).any() or (sigma <= 0).any():
        raise ValueError(f"{name} must be > 0 (and not NaN), got values down to {float(sigma.min())}")


def _bcast(value: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Broadcast a per-sample ``(batch,)`` (or scalar) tensor against ``(batch, *dims)``."""
    value = value.to(dtype=like.dtype, device=like.device)
    return value.reshape(value.shape + (1,) * (like.ndim - value.ndim))


def _per_sample(value: TimeLike, like: torch.Tensor) -> torch.Tensor:
    """``value`` as a ``(batch,)`` tensor in the dtype and device of ``like``."""
    value = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    return value.expand(like.shape[0]) if value.ndim == 0 else value


# --------------------------------------------------------------------------- noising paths
class NoisePath(ABC):
    r"""A noising path ``x = s(t) * (x0 + sigma(t) * eps)`` on ``t`` in ``[t_min, t_max]``.

    Subclasses give ``s``, ``sigma``, their derivatives and ``sigma_inv``; every
    method takes a float or a tensor of times (any shape) and returns a tensor of
    that shape (float64 for a Python float). ``t_min`` and ``t_max`` are the range
    the samplers integrate over (noise at ``t_max``, data at ``t_min``).

    Attributes
    ----------
    t_min, t_max : float
        Sampling range of the path's time.
    """

    t_min: float
    t_max: float

    @abstractmethod
    def s(self, t: TimeLike) -> torch.Tensor:
        """Scale ``s(t)``."""

    @abstractmethod
    def sigma(self, t: TimeLike) -> torch.Tensor:
        """Noise level ``sigma(t)`` of the unscaled ``x / s``."""

    @abstractmethod
    def ds_dt(self, t: TimeLike) -> torch.Tensor:
        """``s'(t)``."""

    @abstractmethod
    def dsigma_dt(self, t: TimeLike) -> torch.Tensor:
        """``sigma'(t)``."""

    @abstractmethod
    def sigma_inv(self, sigma: TimeLike) -> torch.Tensor:
        """The time ``t`` at which ``sigma(t) = sigma``."""

    def noise_scale(self, t: TimeLike) -> torch.Tensor:
        """``s(t) * sigma(t)``, the standard deviation of the noise in ``x`` (finite where ``s = 0``)."""
        return self.s(t) * self.sigma(t)

    def dnoise_scale_dt(self, t: TimeLike) -> torch.Tensor:
        """``d/dt [s(t) sigma(t)]``."""
        return self.ds_dt(t) * self.sigma(t) + self.s(t) * self.dsigma_dt(t)

    def sample_xt(
        self, x0: torch.Tensor, t: TimeLike, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw ``x_t = s(t) x0 + s(t) sigma(t) eps`` for data ``x0`` of shape ``(batch, *dims)``.

        Parameters
        ----------
        x0 : torch.Tensor, shape ``(batch, *dims)``
            Clean data.
        t : float or torch.Tensor of shape () or (batch,)
            Times.
        generator : torch.Generator
            Draws ``eps`` (on the device of `x0`).

        Returns
        -------
        x_t, eps : torch.Tensor, shape of `x0`
        """
        _check_generator(generator)
        if not isinstance(x0, torch.Tensor) or not x0.is_floating_point() or x0.ndim < 1:
            raise TypeError("x0 must be a floating-point tensor of shape (batch, *dims)")
        t = _per_sample(_as_time(t), x0)
        if t.shape != x0.shape[:1]:
            raise ValueError(f"t must be a scalar or have shape ({x0.shape[0]},), got {tuple(t.shape)}")
        eps = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
        return _bcast(self.s(t), x0) * x0 + _bcast(self.noise_scale(t), x0) * eps, eps

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


class VPPath(NoisePath):
    r"""Variance-preserving path: continuous-time DDPM (Ho et al. 2020; Song et al. 2021b, VP-SDE).

    .. math::
        \beta(t) = \beta_\min + t(\beta_\max - \beta_\min), \quad
        \bar\alpha(t) = e^{-\int_0^t \beta} = e^{-\beta_\min t - (\beta_\max - \beta_\min) t^2 / 2},\quad
        s = \sqrt{\bar\alpha}, \quad \sigma = \sqrt{(1 - \bar\alpha)/\bar\alpha}.

    ``beta_min = 0.1``, ``beta_max = 20`` is the limit of DDPM's linear schedule
    ``beta_1 = 1e-4 .. beta_T = 0.02`` over ``T = 1000`` steps (``beta_i = beta(t_i) / T``);
    see :class:`DiscreteVPPath`. ``t_min = 1e-3`` as in Song et al. (2021b).
    """

    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0, t_min: float = 1e-3, t_max: float = 1.0) -> None:
        self.beta_min = _positive_float(beta_min, "beta_min")
        self.beta_max = _positive_float(beta_max, "beta_max")
        if self.beta_max < self.beta_min:
            raise ValueError(f"beta_max must be >= beta_min = {beta_min}, got {beta_max}")
        self.t_min, self.t_max = _positive_float(t_min, "t_min"), _positive_float(t_max, "t_max")

    def beta(self, t: TimeLike) -> torch.Tensor:
        """``beta(t) = beta_min + t (beta_max - beta_min)``."""
        return self.beta_min + _as_time(t) * (self.beta_max - self.beta_min)

    def integrated_beta(self, t: TimeLike) -> torch.Tensor:
        """``B(t) = int_0^t beta = -log alpha_bar(t)``."""
        t = _as_time(t)
        return self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t**2

    def alpha_bar(self, t: TimeLike) -> torch.Tensor:
        """``alpha_bar(t) = exp(-B(t)) = s(t)^2``."""
        return torch.exp(-self.integrated_beta(t))

    def s(self, t: TimeLike) -> torch.Tensor:
        return torch.exp(-0.5 * self.integrated_beta(t))

    def sigma(self, t: TimeLike) -> torch.Tensor:
        return torch.sqrt(torch.expm1(self.integrated_beta(t)))

    def ds_dt(self, t: TimeLike) -> torch.Tensor:
        return -0.5 * self.beta(t) * self.s(t)

    def dsigma_dt(self, t: TimeLike) -> torch.Tensor:
        return 0.5 * self.beta(t) * torch.exp(self.integrated_beta(t)) / self.sigma(t)

    def noise_scale(self, t: TimeLike) -> torch.Tensor:
        return torch.sqrt(-torch.expm1(-self.integrated_beta(t)))

    def sigma_inv(self, sigma: TimeLike) -> torch.Tensor:
        integrated = torch.log1p(_as_time(sigma) ** 2)
        slope = self.beta_max - self.beta_min
        if slope == 0:
            return integrated / self.beta_min
        return (torch.sqrt(self.beta_min**2 + 2 * slope * integrated) - self.beta_min) / slope


class DiscreteVPPath:
    r"""DDPM's discrete noise schedule (Ho et al. 2020): ``T`` steps, linear ``beta``.

    ``beta_i`` runs linearly from ``beta_min / T`` to ``beta_max / T`` (``1e-4`` to
    ``0.02`` for ``T = 1000``), :math:`\bar\alpha_i = \prod_{j \le i} (1 - \beta_j)`, and
    step ``i`` (1-based) has ``s_i = sqrt(alpha_bar_i)``, ``sigma_i = sqrt((1 - alpha_bar_i) / alpha_bar_i)``.
    As ``T`` grows, ``alpha_bar_i`` tends to :meth:`VPPath.alpha_bar` at ``t = i / T``
    (:attr:`continuous`).

    Attributes
    ----------
    n_timesteps : int
        ``T``.
    betas, alpha_bars, scales, sigmas : torch.Tensor, float64, shape (T,)
        Per step ``i = 1 .. T`` (index ``i - 1``).
    """

    def __init__(self, n_timesteps: int = 1000, beta_min: float = 0.1, beta_max: float = 20.0) -> None:
        self.n_timesteps = _check_steps(n_timesteps, "n_timesteps")
        if self.n_timesteps < 2:
            raise ValueError(f"n_timesteps must be >= 2, got {n_timesteps}")
        self.beta_min = _positive_float(beta_min, "beta_min")
        self.beta_max = _positive_float(beta_max, "beta_max")
        if not self.beta_max < self.n_timesteps:
            raise ValueError(f"beta_max / n_timesteps must be < 1, got {beta_max} / {n_timesteps}")
        T = self.n_timesteps
        self.betas = torch.linspace(beta_min / T, beta_max / T, T, dtype=torch.float64)
        self.alpha_bars = torch.cumprod(1.0 - self.betas, dim=0)
        self.scales = torch.sqrt(self.alpha_bars)
        self.sigmas = torch.sqrt((1.0 - self.alpha_bars) / self.alpha_bars)

    @property
    def continuous(self) -> VPPath:
        """The continuous-time limit, :class:`VPPath` with the same ``beta_min``, ``beta_max`` (``t = i / T``)."""
        return VPPath(self.beta_min, self.beta_max)

    def timesteps(self, n_steps: int) -> torch.Tensor:
        """``n_steps`` evenly spaced steps from ``T`` down to 1 (int64, descending; all of them when ``n_steps = T``)."""
        n_steps = _check_steps(n_steps)
        if n_steps > self.n_timesteps:
            raise ValueError(f"n_steps must be <= n_timesteps = {self.n_timesteps}, got {n_steps}")
        if n_steps == 1:
            return torch.tensor([self.n_timesteps])
        return torch.round(torch.linspace(self.n_timesteps, 1, n_steps, dtype=torch.float64)).long()

    def sample_xt(
        self, x0: torch.Tensor, timesteps: torch.Tensor | int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw ``x_i = sqrt(alpha_bar_i) x0 + sqrt(1 - alpha_bar_i) eps`` at 1-based steps ``i``.

        Returns ``x_i`` and ``eps``, shaped like `x0`.
        """
        _check_generator(generator)
        steps = torch.as_tensor(timesteps).long().reshape(-1)
        if steps.numel() == 1:
            steps = steps.expand(x0.shape[0])
        if steps.shape != x0.shape[:1] or (steps < 1).any() or (steps > self.n_timesteps).any():
            raise ValueError(f"timesteps must be ints in [1, {self.n_timesteps}], one per sample or one for all")
        alpha_bar = _bcast(self.alpha_bars[steps.to(self.alpha_bars.device) - 1], x0)  # the schedule stays on the CPU
        eps = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
        return alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * eps, eps

    def __repr__(self) -> str:
        return f"DiscreteVPPath(n_timesteps={self.n_timesteps}, beta_min={self.beta_min}, beta_max={self.beta_max})"


class VEPath(NoisePath):
    r"""Variance-exploding path of SMLD / NCSN (Song & Ermon 2019; Song et al. 2021b, VE-SDE).

    ``s = 1`` and :math:`\sigma(t) = \sigma_\min (\sigma_\max / \sigma_\min)^t` on ``t`` in ``[0, 1]``:
    the geometric noise levels of NCSN. ``sigma(0) = sigma_min > 0``: the path never
    reaches clean data, and samplers end with one denoising step.
    """

    def __init__(self, sigma_min: float = 0.01, sigma_max: float = 50.0) -> None:
        self.sigma_min = _positive_float(sigma_min, "sigma_min")
        self.sigma_max = _positive_float(sigma_max, "sigma_max")
        if not self.sigma_max > self.sigma_min:
            raise ValueError(f"sigma_max must be > sigma_min = {sigma_min}, got {sigma_max}")
        self.t_min, self.t_max = 0.0, 1.0

    @property
    def _log_ratio(self) -> float:
        return math.log(self.sigma_max / self.sigma_min)

    def s(self, t: TimeLike) -> torch.Tensor:
        return torch.ones_like(_as_time(t))

    def sigma(self, t: TimeLike) -> torch.Tensor:
        return self.sigma_min * torch.exp(self._log_ratio * _as_time(t))

    def ds_dt(self, t: TimeLike) -> torch.Tensor:
        return torch.zeros_like(_as_time(t))

    def dsigma_dt(self, t: TimeLike) -> torch.Tensor:
        return self._log_ratio * self.sigma(t)

    def sigma_inv(self, sigma: TimeLike) -> torch.Tensor:
        return torch.log(_as_time(sigma) / self.sigma_min) / self._log_ratio


class LinearPath(NoisePath):
    r"""The straight path of rectified flow and flow matching (Liu et al. 2023; Lipman et al. 2023).

    :math:`x_t = (1 - t) x_0 + t \varepsilon`, i.e. ``s = 1 - t``, ``sigma = t / (1 - t)``;
    its probability-flow velocity is ``E[eps - x0 | x_t]`` (noise at ``t = 1``, data at
    ``t = 0``; Liu et al. write the same path with time reversed). ``sigma`` is
    infinite at ``t = 1``, so the samplers that go through ``sigma`` start at
    ``t_max = 0.999``; :func:`rectified_flow_euler` starts at ``t = 1``.
    """

    def __init__(self, t_min: float = 1e-3, t_max: float = 0.999) -> None:
        self.t_min, self.t_max = _positive_float(t_min, "t_min"), _positive_float(t_max, "t_max")
        if not self.t_min < self.t_max < 1:
            raise ValueError(f"need 0 < t_min < t_max < 1, got t_min={t_min}, t_max={t_max}")

    def s(self, t: TimeLike) -> torch.Tensor:
        return 1.0 - _as_time(t)

    def sigma(self, t: TimeLike) -> torch.Tensor:
        t = _as_time(t)
        return t / (1.0 - t)

    def ds_dt(self, t: TimeLike) -> torch.Tensor:
        return -torch.ones_like(_as_time(t))

    def dsigma_dt(self, t: TimeLike) -> torch.Tensor:
        return 1.0 / (1.0 - _as_time(t)) ** 2

    def noise_scale(self, t: TimeLike) -> torch.Tensor:
        return _as_time(t).clone()

    def dnoise_scale_dt(self, t: TimeLike) -> torch.Tensor:
        return torch.ones_like(_as_time(t))

    def sigma_inv(self, sigma: TimeLike) -> torch.Tensor:
        sigma = _as_time(sigma)
        return sigma / (1.0 + sigma)


class EDMPath(NoisePath):
    """The path EDM recommends (Karras et al. 2022): ``s = 1``, ``sigma = t``, on ``[sigma_min, sigma_max]``."""

    def __init__(self, sigma_min: float = 0.002, sigma_max: float = 80.0) -> None:
        self.t_min = _positive_float(sigma_min, "sigma_min")
        self.t_max = _positive_float(sigma_max, "sigma_max")
        if not self.t_max > self.t_min:
            raise ValueError(f"sigma_max must be > sigma_min = {sigma_min}, got {sigma_max}")

    def s(self, t: TimeLike) -> torch.Tensor:
        return torch.ones_like(_as_time(t))

    def sigma(self, t: TimeLike) -> torch.Tensor:
        return _as_time(t).clone()

    def ds_dt(self, t: TimeLike) -> torch.Tensor:
        return torch.zeros_like(_as_time(t))

    def dsigma_dt(self, t: TimeLike) -> torch.Tensor:
        return torch.ones_like(_as_time(t))

    def sigma_inv(self, sigma: TimeLike) -> torch.Tensor:
        return _as_time(sigma).clone()


def _check_path(path: object) -> NoisePath:
    if not isinstance(path, NoisePath):
        raise TypeError(f"path must be a NoisePath (VPPath, VEPath, LinearPath, EDMPath), got {type(path).__name__}")
    return path


# --------------------------------------------------------------------------- exact conversions between parametrisations
def eps_from_x0(x_hat: torch.Tensor, x0: torch.Tensor, sigma: TimeLike) -> torch.Tensor:
    """``eps = (x_hat - x0) / sigma`` for the unscaled ``x_hat = x0 + sigma * eps``; `sigma` scalar or ``(batch,)``."""
    return (x_hat - x0) / _bcast(_per_sample(sigma, x_hat), x_hat)


def x0_from_eps(x_hat: torch.Tensor, eps: torch.Tensor, sigma: TimeLike) -> torch.Tensor:
    """``x0 = x_hat - sigma * eps``."""
    return x_hat - _bcast(_per_sample(sigma, x_hat), x_hat) * eps


def score_from_x0(x_hat: torch.Tensor, x0: torch.Tensor, sigma: TimeLike) -> torch.Tensor:
    r"""Score of the noised density ``p(x_hat; sigma)`` from the denoiser (Tweedie): ``(x0 - x_hat) / sigma^2``."""
    return (x0 - x_hat) / _bcast(_per_sample(sigma, x_hat), x_hat) ** 2


def x0_from_score(x_hat: torch.Tensor, score: torch.Tensor, sigma: TimeLike) -> torch.Tensor:
    """``x0 = x_hat + sigma^2 * score``."""
    return x_hat + _bcast(_per_sample(sigma, x_hat), x_hat) ** 2 * score


def _velocity_coefficients(path: NoisePath, t: torch.Tensor, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``a, b`` with ``dx/dt = a x - b D(x / s; sigma)`` (EDM eq. 4 written with the denoiser)."""
    t64 = t.to(torch.float64)
    s, sigma, ds, dsigma = path.s(t64), path.sigma(t64), path.ds_dt(t64), path.dsigma_dt(t64)
    return _bcast(dsigma / sigma + ds / s, like), _bcast(s * dsigma / sigma, like)


def velocity_from_x0(x: torch.Tensor, x0: torch.Tensor, t: TimeLike, path: NoisePath) -> torch.Tensor:
    r"""Probability-flow velocity ``dx/dt`` at the *scaled* ``x`` from the denoiser's output ``x0 = D(x / s, sigma)``.

    .. math:: \frac{dx}{dt} = \Big(\frac{\dot\sigma}{\sigma} + \frac{\dot s}{s}\Big) x
              - \frac{s \dot\sigma}{\sigma} D\big(x / s; \sigma\big)
              = \frac{\dot s}{s} x - s^2 \dot\sigma \sigma \nabla_x \log p(x / s; \sigma)

    (Karras et al. 2022, eq. 4). On :class:`LinearPath` it is ``(x - x0) / t``, the
    rectified-flow velocity ``eps - x0`` given ``x``.
    """
    a, b = _velocity_coefficients(_check_path(path), _per_sample(_as_time(t), x), x)
    return a * x - b * x0


def x0_from_velocity(x: torch.Tensor, velocity: torch.Tensor, t: TimeLike, path: NoisePath) -> torch.Tensor:
    """Inverse of :func:`velocity_from_x0`: ``x0 = (a x - v) / b``."""
    a, b = _velocity_coefficients(_check_path(path), _per_sample(_as_time(t), x), x)
    return (a * x - velocity) / b


# --------------------------------------------------------------------------- model wrappers
class _Converted(nn.Module):
    """A model seen through another parametrisation; an ``nn.Module`` so that ``.parameters()`` reach the model."""

    def __init__(self, model: ModelFn, path: NoisePath, kind: str) -> None:
        super().__init__()
        self.model = model  # registered as a submodule when it is one
        self.path = _check_path(path)
        self.kind = kind

    def extra_repr(self) -> str:
        return f"{self.kind}, path={self.path!r}"


class _DenoiserFrom(_Converted):
    def forward(self, x_hat: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        sigma = _per_sample(sigma, x_hat)
        t = self.path.sigma_inv(sigma.to(torch.float64))
        s = _bcast(self.path.s(t), x_hat)
        t = t.to(x_hat.dtype)
        out = self.model(s * x_hat, t)
        if self.kind == "eps":
            return x0_from_eps(x_hat, out, sigma)
        if self.kind == "score":  # the model's score is w.r.t. the scaled x: grad_{x_hat} = s * grad_x
            return x0_from_score(x_hat, s * out, sigma)
        return x0_from_velocity(s * x_hat, out, t, self.path)


def denoiser_from_eps(eps_model: ModelFn, path: NoisePath) -> Denoiser:
    """A denoiser from a noise predictor ``eps_model(x, t)`` trained on `path` (DDPM's parametrisation).

    ``eps_model`` takes the *scaled* ``x = s(t)(x0 + sigma(t) eps)`` and ``t`` of shape
    ``(batch,)``; ``D(x_hat, sigma) = x_hat - sigma * eps_model(s x_hat, sigma_inv(sigma))``.
    """
    return _DenoiserFrom(eps_model, path, "eps")


def denoiser_from_score(score_model: ModelFn, path: NoisePath) -> Denoiser:
    """A denoiser from a score model ``score_model(x, t) = grad_x log p_t(x)`` on `path` (Song et al. 2021b)."""
    return _DenoiserFrom(score_model, path, "score")


def denoiser_from_velocity(velocity_model: ModelFn, path: NoisePath) -> Denoiser:
    """A denoiser from a velocity model ``v(x, t) = dx/dt`` on `path` (flow matching, rectified flow)."""
    return _DenoiserFrom(velocity_model, path, "velocity")


class _ModelFrom(_Converted):
    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t = _per_sample(t, x)
        t64 = t.to(torch.float64)
        s, sigma = self.path.s(t64), self.path.sigma(t64)
        x_hat = x / _bcast(s, x)
        x0 = self.model(x_hat, sigma.to(x.dtype))
        if self.kind == "eps":
            return eps_from_x0(x_hat, x0, sigma)
        if self.kind == "score":
            return score_from_x0(x_hat, x0, sigma) / _bcast(s, x)
        return velocity_from_x0(x, x0, t, self.path)


def eps_model_from_denoiser(denoiser: Denoiser, path: NoisePath) -> ModelFn:
    """``eps(x, t) = (x / s - D(x / s, sigma)) / sigma``: the inverse of :func:`denoiser_from_eps`."""
    return _ModelFrom(denoiser, path, "eps")


def score_model_from_denoiser(denoiser: Denoiser, path: NoisePath) -> ModelFn:
    """``grad_x log p_t(x) = (D(x / s, sigma) - x / s) / (s sigma^2)``: the inverse of :func:`denoiser_from_score`."""
    return _ModelFrom(denoiser, path, "score")


def velocity_model_from_denoiser(denoiser: Denoiser, path: NoisePath) -> ModelFn:
    """``dx/dt`` of the probability-flow ODE (:func:`velocity_from_x0`): the inverse of :func:`denoiser_from_velocity`."""
    return _ModelFrom(denoiser, path, "velocity")


# --------------------------------------------------------------------------- network inputs
def sinusoidal_embedding(t: torch.Tensor, dim: int, *, max_period: float = 10_000.0, scale: float = 1000.0) -> torch.Tensor:
    r"""Sinusoidal features of the time: ``[cos(w_k s t), sin(w_k s t)]``, ``w_k = max_period^{-k/(dim/2)}``.

    Parameters
    ----------
    t : torch.Tensor, shape (batch,)
        Times in ``[0, 1]``; multiplied by `scale` (the number of DDPM steps, so
        that the frequencies match a step index as in Ho et al. 2020).
    dim : int
        Number of features, even.
    max_period : float, default 10000
        Longest period, in units of ``scale * t``.
    scale : float, default 1000

    Returns
    -------
    torch.Tensor, shape (batch, dim)
        In the dtype and on the device of `t`.
    """
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 2 or dim % 2:
        raise ValueError(f"dim must be an even int >= 2, got {dim!r}")
    if not isinstance(t, torch.Tensor) or not t.is_floating_point() or t.ndim != 1:
        raise TypeError(f"t must be a floating-point tensor of shape (batch,), got {getattr(t, 'shape', type(t).__name__)}")
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    angles = (scale * t.float())[:, None] * freqs[None, :]
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=1).to(t.dtype)


# --------------------------------------------------------------------------- EDM preconditioning
def edm_coefficients(sigma: torch.Tensor, sigma_data: float = 0.5) -> tuple[torch.Tensor, ...]:
    r"""EDM's preconditioning (Karras et al. 2022, Table 1): ``c_skip, c_out, c_in, c_noise``.

    .. math:: c_\text{skip} = \frac{\sigma_d^2}{\sigma^2 + \sigma_d^2},\quad
              c_\text{out} = \frac{\sigma \sigma_d}{\sqrt{\sigma^2 + \sigma_d^2}},\quad
              c_\text{in} = \frac{1}{\sqrt{\sigma^2 + \sigma_d^2}},\quad
              c_\text{noise} = \tfrac14 \ln \sigma

    chosen so that the network's input and its training target have unit variance
    when the data have standard deviation ``sigma_d``.
    """
    sigma_data = _positive_float(sigma_data, "sigma_data")
    total = sigma**2 + sigma_data**2
    return sigma_data**2 / total, sigma * sigma_data / total.sqrt(), 1.0 / total.sqrt(), 0.25 * torch.log(sigma)


class EDMPrecond(nn.Module):
    """``D(x, sigma) = c_skip x + c_out F(c_in x, c_noise)`` around a raw network ``F(x, c_noise)``."""

    def __init__(self, raw_net: ModelFn, sigma_data: float = 0.5) -> None:
        super().__init__()
        self.raw_net = raw_net
        self.sigma_data = _positive_float(sigma_data, "sigma_data")

    def forward(self, x_hat: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        sigma = _per_sample(sigma, x_hat)
        c_skip, c_out, c_in, c_noise = edm_coefficients(sigma, self.sigma_data)
        return _bcast(c_skip, x_hat) * x_hat + _bcast(c_out, x_hat) * self.raw_net(_bcast(c_in, x_hat) * x_hat, c_noise)


def edm_precondition(raw_net: ModelFn, sigma_data: float = 0.5) -> EDMPrecond:
    """Wrap `raw_net` in EDM's preconditioning; see :func:`edm_coefficients`."""
    return EDMPrecond(raw_net, sigma_data)


# --------------------------------------------------------------------------- samplers
def edm_sigmas(n: int, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0) -> torch.Tensor:
    r"""EDM's noise levels (Karras et al. 2022, eq. 5), float64, shape ``(n + 1,)``, with a final 0.

    .. math:: \sigma_i = \big(\sigma_\max^{1/\rho} + \tfrac{i}{n-1}(\sigma_\min^{1/\rho}
              - \sigma_\max^{1/\rho})\big)^\rho,\ i < n, \qquad \sigma_n = 0.
    """
    n = _check_steps(n, "n")
    sigma_min, sigma_max = _positive_float(sigma_min, "sigma_min"), _positive_float(sigma_max, "sigma_max")
    rho = _positive_float(rho, "rho")
    if not sigma_max > sigma_min:
        raise ValueError(f"sigma_max must be > sigma_min = {sigma_min}, got {sigma_max}")
    ramp = torch.linspace(0, 1, n, dtype=torch.float64) if n > 1 else torch.zeros(1, dtype=torch.float64)
    sigmas = (sigma_max ** (1 / rho) + ramp * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    return torch.cat([sigmas, torch.zeros(1, dtype=torch.float64)])


class _Counter:
    """Calls the denoiser with per-sample sigmas, checks what comes back, counts evaluations."""

    def __init__(self, denoiser: Callable[..., torch.Tensor], name: str = "denoiser") -> None:
        if not callable(denoiser):
            raise TypeError(f"{name} must be callable as {name}(x, sigma), got {type(denoiser).__name__}")
        self.denoiser, self.name, self.nfe = denoiser, name, 0

    def __call__(self, x: torch.Tensor, level: torch.Tensor | float) -> torch.Tensor:
        self.nfe += 1
        out = self.denoiser(x, _per_sample(level, x))
        if not isinstance(out, torch.Tensor) or out.shape != x.shape:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"{self.name} must return a tensor of the input's shape {tuple(x.shape)}, got {got}")
        if not torch.isfinite(out).all():
            raise FloatingPointError(f"{self.name} returned NaN or inf at level {float(torch.as_tensor(level).max())}")
        return out.to(x.dtype)


def _setup(shape: Sequence[int], generator: torch.Generator, dtype: torch.dtype) -> tuple[tuple[int, ...], torch.device]:
    shape = _check_shape(shape)
    _check_generator(generator)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
    return shape, generator.device


def _noise(shape: tuple[int, ...], generator: torch.Generator, dtype: torch.dtype) -> torch.Tensor:
    # Drawn in float32 and cast, so that float32, float64 and bfloat16 runs start from the same noise.
    return torch.randn(shape, generator=generator, device=generator.device).to(dtype)


def _continuous_grid(path: NoisePath, n_steps: int) -> torch.Tensor:
    """``n_steps`` times evenly spaced from ``t_max`` down to ``t_min`` (float64)."""
    if n_steps == 1:
        return torch.tensor([path.t_max], dtype=torch.float64)
    return torch.linspace(path.t_max, path.t_min, n_steps, dtype=torch.float64)


def ddpm_ancestral(
    denoiser: Denoiser,
    path: DiscreteVPPath,
    n_steps: int,
    shape: Sequence[int],
    generator: torch.Generator,
    *,
    dtype: torch.dtype = torch.float32,
) -> Samples:
    r"""DDPM ancestral sampling (Ho et al. 2020, Algorithm 2), on all ``T`` steps or an evenly spaced subset.

    Starting from ``x_T ~ N(0, I)``, each step from ``t`` to the previous kept step
    ``t'`` draws from the Gaussian posterior :math:`q(x_{t'} \mid x_t, \hat x_0)` with
    :math:`\hat x_0 = D(x_t / s_t, \sigma_t)`:

    .. math:: \mu = \frac{\sqrt{\bar\alpha_{t'}}\,\beta}{1 - \bar\alpha_t}\hat x_0
              + \frac{\sqrt{1-\beta}\,(1 - \bar\alpha_{t'})}{1 - \bar\alpha_t} x_t,\quad
              \tilde\beta = \frac{1 - \bar\alpha_{t'}}{1 - \bar\alpha_t}\beta,\quad
              \beta = 1 - \bar\alpha_t / \bar\alpha_{t'}

    (``beta`` is the step's own ``beta_t`` when all steps are kept; fewer steps use
    the respaced schedule of Nichol & Dhariwal 2021). The last step returns the mean.

    Parameters
    ----------
    denoiser : Denoiser
        ``D(x_hat, sigma)``.
    path : DiscreteVPPath
        The schedule.
    n_steps : int
        Steps kept, ``1 <= n_steps <= T``; NFE = `n_steps`.
    shape : sequence of int
        ``(batch, *dims)``.
    generator : torch.Generator
        Draws the initial and per-step noise; its device is where sampling runs.
    dtype : torch.dtype, default float32

    Returns
    -------
    Samples

    Raises
    ------
    ValueError
        If `n_steps` is not an int in ``[1, T]``, `shape` is not a sequence of positive
        ints, or the denoiser returns a tensor of another shape.
    TypeError
        If `path`, `generator` or `dtype` has the wrong type.
    FloatingPointError
        If the denoiser returns NaN or inf (every sampler checks every evaluation).
    """
    if not isinstance(path, DiscreteVPPath):
        raise TypeError(f"path must be a DiscreteVPPath, got {type(path).__name__}")
    shape, device = _setup(shape, generator, dtype)
    steps = path.timesteps(n_steps)
    net = _Counter(denoiser)
    x = _noise(shape, generator, dtype)
    alpha_bars = path.alpha_bars.tolist()
    for i, t in enumerate(steps.tolist()):
        ab_t = alpha_bars[t - 1]
        ab_prev = alpha_bars[steps[i + 1] - 1] if i + 1 < len(steps) else 1.0
        x0 = net(x / math.sqrt(ab_t), math.sqrt((1 - ab_t) / ab_t))
        beta = 1 - ab_t / ab_prev
        mean = (math.sqrt(ab_prev) * beta / (1 - ab_t)) * x0 + (math.sqrt(1 - beta) * (1 - ab_prev) / (1 - ab_t)) * x
        if i + 1 < len(steps):
            std = math.sqrt((1 - ab_prev) / (1 - ab_t) * beta)
            x = mean + std * torch.randn(shape, generator=generator, device=device).to(dtype)
        else:
            x = mean
    return Samples(x, net.nfe)


def ddim(
    denoiser: Denoiser,
    path: NoisePath | DiscreteVPPath,
    n_steps: int,
    shape: Sequence[int],
    generator: torch.Generator,
    eta: float = 0.0,
    *,
    dtype: torch.dtype = torch.float32,
) -> Samples:
    r"""DDIM (Song et al. 2021a) on any path, written in the unscaled ``x_hat = x / s``.

    From noise level ``sigma`` to ``sigma' < sigma``, with :math:`\hat\varepsilon = (\hat x - D)/\sigma`:

    .. math:: \hat x' = D + \sqrt{\sigma'^2 - c^2}\,\hat\varepsilon + c z,\qquad
              c = \eta\,\frac{\sigma'}{\sigma}\sqrt{\sigma^2 - \sigma'^2},

    which is DDIM's update (eq. 12) divided by ``s``. ``eta = 0`` is deterministic and
    is Euler's method for the probability-flow ODE in ``sigma`` (Karras et al. 2022);
    ``eta = 1`` draws from DDPM's posterior, i.e. :func:`ddpm_ancestral`.

    Time steps: :meth:`DiscreteVPPath.timesteps` for DDPM's discrete schedule, else
    `n_steps` times evenly spaced from ``t_max`` to ``t_min``; a last step goes to
    ``sigma = 0``. The initial ``x_hat`` is ``sqrt(1 + sigma_max^2) z`` (``x_T ~ N(0, I)``
    on VP paths). NFE = `n_steps`. Other parameters as :func:`ddpm_ancestral`.
    """
    if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not (0 <= eta and math.isfinite(eta)):
        raise ValueError(f"eta must be a finite number >= 0, got {eta!r}")
    n_steps = _check_steps(n_steps)
    if isinstance(path, DiscreteVPPath):
        sigmas = path.sigmas[path.timesteps(n_steps) - 1]
    else:
        sigmas = _check_path(path).sigma(_continuous_grid(path, n_steps))
    shape, device = _setup(shape, generator, dtype)
    net = _Counter(denoiser)
    levels = sigmas.tolist() + [0.0]
    x = math.sqrt(1 + levels[0] ** 2) * _noise(shape, generator, dtype)
    for sigma, sigma_next in zip(levels[:-1], levels[1:]):
        x0 = net(x, sigma)
        eps = (x - x0) / sigma
        c = eta * sigma_next / sigma * math.sqrt(max(sigma**2 - sigma_next**2, 0.0))
        x = x0 + math.sqrt(max(sigma_next**2 - c**2, 0.0)) * eps
        if c > 0:
            x = x + c * torch.randn(shape, generator=generator, device=device).to(dtype)
    return Samples(x, net.nfe)


def euler_maruyama_reverse_sde(
    denoiser: Denoiser,
    path: NoisePath,
    n_steps: int,
    shape: Sequence[int],
    generator: torch.Generator,
    *,
    dtype: torch.dtype = torch.float32,
) -> Samples:
    r"""Euler-Maruyama for the reverse-time SDE of `path` (Song et al. 2021b; Anderson 1982).

    The forward SDE of ``x = s (x0 + sigma eps)`` is ``dx = f x dt + g dw`` with
    ``f = s'/s`` and ``g = s sqrt(2 sigma' sigma)`` (Karras et al. 2022, eq. 6); the reverse is

    .. math:: dx = \big[f x - g^2 \nabla_x \log p_t(x)\big] dt + g\, d\bar w,
              \qquad \nabla_x \log p_t(x) = \frac{D(x/s; \sigma) - x/s}{s\,\sigma^2}.

    `n_steps` times evenly spaced from ``t_max`` to ``t_min``: ``n_steps - 1`` stochastic
    steps, then one denoising step ``x0 = D(x / s, sigma(t_min))`` (the "noise removal"
    of Song et al.). NFE = `n_steps`. Other parameters as :func:`ddpm_ancestral`.
    """
    path = _check_path(path)
    n_steps = _check_steps(n_steps)
    shape, device = _setup(shape, generator, dtype)
    net = _Counter(denoiser)
    times = _continuous_grid(path, n_steps)
    s_all, sigma_all = path.s(times).tolist(), path.sigma(times).tolist()
    ds_all, dsigma_all = path.ds_dt(times).tolist(), path.dsigma_dt(times).tolist()
    x = s_all[0] * math.sqrt(1 + sigma_all[0] ** 2) * _noise(shape, generator, dtype)
    for i in range(n_steps - 1):
        s, sigma = s_all[i], sigma_all[i]
        dt = float(times[i + 1] - times[i])
        f, g2 = ds_all[i] / s, 2 * s**2 * dsigma_all[i] * sigma
        score = (net(x / s, sigma) - x / s) / (s * sigma**2)
        x = x + (f * x - g2 * score) * dt
        x = x + math.sqrt(g2 * abs(dt)) * torch.randn(shape, generator=generator, device=device).to(dtype)
    x = net(x / s_all[-1], sigma_all[-1])
    return Samples(x, net.nfe)


def _ode_sampler(
    denoiser: Denoiser,
    path: NoisePath,
    n_steps: int,
    shape: Sequence[int],
    generator: torch.Generator,
    sigma_min: float,
    sigma_max: float,
    rho: float,
    dtype: torch.dtype,
    heun: bool,
) -> Samples:
    path = _check_path(path)
    n_steps = _check_steps(n_steps)
    sigmas = edm_sigmas(n_steps, sigma_min, sigma_max, rho)
    shape, _ = _setup(shape, generator, dtype)
    net = _Counter(denoiser)
    times = path.sigma_inv(sigmas[:-1]).tolist()
    scales = path.s(torch.tensor(times, dtype=torch.float64)).tolist()

    def velocity(x: torch.Tensor, i: int) -> torch.Tensor:
        t = torch.tensor(times[i], dtype=torch.float64)
        a, b = (float(v) for v in _velocity_coefficients(path, t, t))
        return a * x - b * net(x / scales[i], float(sigmas[i]))

    x = scales[0] * math.sqrt(1 + float(sigmas[0]) ** 2) * _noise(shape, generator, dtype)
    for i in range(n_steps - 1):
        dt = times[i + 1] - times[i]
        d = velocity(x, i)
        x_next = x + dt * d
        if heun:
            x_next = x + dt * 0.5 * (d + velocity(x_next, i + 1))
        x = x_next
    # The last step, to sigma = 0, is Euler in sigma: it returns the denoiser's estimate.
    x = net(x / scales[-1], float(sigmas[-2]))
    return Samples(x, net.nfe)


def euler_ode(
    denoiser: Denoiser,
    path: NoisePath,
    n_steps: int,
    shape: Sequence[int],
    generator: torch.Generator,
    *,
    sigma_min: float = 0.002,
    sigma_max: float = 80.0,
    rho: float = 7.0,
    dtype: torch.dtype = torch.float32,
) -> Samples:
    r"""Euler's method for the probability-flow ODE of `path` on EDM's noise levels.

    Noise levels :func:`edm_sigmas` ``(n_steps, sigma_min, sigma_max, rho)``, times
    ``t_i = path.sigma_inv(sigma_i)``, steps ``x <- x + (t_{i+1} - t_i) dx/dt`` with the
    velocity of :func:`velocity_from_x0`; the last step, to ``sigma = 0``, returns
    ``D(x / s, sigma_{n-1})`` (Euler in ``sigma``; the same as Euler in ``t`` on
    :class:`EDMPath`). The start is ``x = s sqrt(1 + sigma_max^2) z``. Deterministic
    given the generator; NFE = `n_steps`. On :class:`EDMPath` this is the Euler
    version of Karras et al. (2022), Algorithm 1, and DDIM with ``eta = 0``.
    """
    return _ode_sampler(denoiser, path, n_steps, shape, generator, sigma_min, sigma_max, rho, dtype, heun=False)


def heun_ode(
    denoiser: Denoiser,
    path: NoisePath,
    n_steps: int,
    shape: Sequence[int],
    generator: torch.Generator,
    *,
    sigma_min: float = 0.002,
    sigma_max: float = 80.0,
    rho: float = 7.0,
    dtype: torch.dtype = torch.float32,
) -> Samples:
    """Heun's second-order method for the probability-flow ODE (Karras et al. 2022, Algorithm 1).

    As :func:`euler_ode`, with the trapezoidal correction on every step but the last
    (to ``sigma = 0``), which is Euler: NFE = ``2 n_steps - 1`` (35 for EDM's 18 steps).
    """
    return _ode_sampler(denoiser, path, n_steps, shape, generator, sigma_min, sigma_max, rho, dtype, heun=True)


def rectified_flow_euler(
    velocity_model: ModelFn,
    n_steps: int,
    shape: Sequence[int],
    generator: torch.Generator,
    *,
    dtype: torch.dtype = torch.float32,
    noise: torch.Tensor | None = None,
) -> Samples:
    r"""Euler's method for a rectified-flow ODE from ``t = 1`` (noise) to ``t = 0`` (data) (Liu et al. 2023).

    ``velocity_model(x, t)`` predicts ``dx/dt = eps - x0`` on the path
    ``x_t = (1 - t) x0 + t eps`` (:class:`LinearPath`); ``x_1 = z ~ N(0, I)`` and
    ``x <- x - (1 / n_steps) v(x, t)`` on evenly spaced times. NFE = `n_steps`.

    Parameters
    ----------
    noise : torch.Tensor, optional
        Start from these ``x_1`` (shape `shape`) instead of drawing them (for reflow
        pairs and for comparing flows on the same noise).
    """
    n_steps = _check_steps(n_steps)
    shape, device = _setup(shape, generator, dtype)
    if noise is None:
        x = _noise(shape, generator, dtype)
    elif not isinstance(noise, torch.Tensor) or tuple(noise.shape) != shape:
        raise ValueError(f"noise must be a tensor of shape {shape}")
    else:
        x = noise.to(device=device, dtype=dtype)
    net = _Counter(velocity_model, "velocity_model")
    times = torch.linspace(1.0, 0.0, n_steps + 1, dtype=torch.float64).tolist()
    for t, t_next in zip(times[:-1], times[1:]):
        x = x + (t_next - t) * net(x, t)
    return Samples(x, net.nfe)


def reflow_pairs(
    velocity_model: ModelFn,
    n_pairs: int,
    dims: Sequence[int],
    generator: torch.Generator,
    *,
    n_steps: int = 100,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Couple noise with samples through a trained flow, for reflow (Liu et al. 2023, "rectify").

    Draws ``z ~ N(0, I)`` of shape ``(n_pairs, *dims)`` and integrates the flow to
    ``x0`` with :func:`rectified_flow_euler` (`n_steps` steps). Training a new velocity
    model on the straight lines between these pairs gives straighter paths.

    Returns
    -------
    noise, samples : torch.Tensor, shape (n_pairs, *dims)
    """
    n_pairs = _check_steps(n_pairs, "n_pairs")
    shape, _ = _setup((n_pairs, *tuple(dims)), generator, dtype)
    noise = _noise(shape, generator, dtype)
    with torch.no_grad():
        samples, _ = rectified_flow_euler(velocity_model, n_steps, shape, generator, dtype=dtype, noise=noise)
    return noise, samples
