r"""Score-based generative models: score matching, Langevin dynamics and NCSN (SMLD).

Implements what is specific to the chapter ``book/diffusion/score_models.ipynb``:

- the objectives of score matching on one noise level: the *explicit* one (the
  Fisher divergence to a known score, :func:`explicit_score_matching_loss`), the
  *implicit* one of Hyvärinen ("Estimation of Non-Normalized Statistical Models by
  Score Matching", JMLR 2005) with its Jacobian trace (:func:`hyvarinen_loss`), and
  the *denoising* one of Vincent ("A Connection Between Score Matching and Denoising
  Autoencoders", Neural Computation 2011; :func:`dsm_objective`);
- the noise-conditional score network (NCSN) of Song & Ermon ("Generative Modeling by
  Estimating Gradients of the Data Distribution", NeurIPS 2019): a geometric ladder of
  noise levels (:func:`geometric_sigmas`), a small noise-conditional MLP
  (:class:`ScoreMLP`), the sigma^2-weighted denoising score matching loss over the
  ladder (:func:`dsm_loss`) and its training (:class:`ScoreConfig`, :func:`train_score_model`);
- Langevin dynamics (:func:`langevin_dynamics`, with the closed-form stationary variance
  of the discretised chain on a Gaussian, :func:`langevin_stationary_variance`) and
  annealed Langevin dynamics (Song & Ermon 2019, Algorithm 1; :func:`annealed_langevin`);
- measurements: the error of a score model against the exact score at each noise level
  (:func:`score_error_by_sigma`) and the weight a sample puts on each mode (:func:`mode_weights`);
- ``check_exercise_*`` helpers for the chapter's exercises.

**The score interface.** In this chapter a score model is a callable
``score_fn(x_hat, sigma)`` returning :math:`\nabla_{\hat x} \log p(\hat x; \sigma)`, the
score of the data convolved with :math:`\mathcal{N}(0, \sigma^2 I)`, for ``x_hat`` of shape
``(batch, dim)`` and ``sigma`` of shape ``(batch,)``; the exact
:meth:`~mlnotes.diffusion.analytic.GaussianMixtureDenoiser.score` has this signature.
SMLD is the variance-exploding member of the part's family
(:class:`~mlnotes.diffusion.common.VEPath`), and :func:`as_path_model` turns a score model
into the ``model(x, t)`` that :func:`~mlnotes.diffusion.common.denoiser_from_score`
wraps as a denoiser for every sampler of :mod:`mlnotes.diffusion.common`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from mlnotes.diffusion.common import Denoiser, NoisePath, Samples, VEPath, denoiser_from_score, sinusoidal_embedding
from mlnotes.diffusion.common import _check_generator, _positive_float, _positive_int, _silu_mlp
from mlnotes.diffusion.common import _check_points as _check_any_points
from mlnotes.exercises import as_float as _as_float, report as _report

__all__ = [
    "ScoreFn",
    "geometric_sigmas",
    "ScoreMLP",
    "as_path_model",
    "explicit_score_matching_loss",
    "hyvarinen_loss",
    "dsm_objective",
    "dsm_loss",
    "ScoreConfig",
    "ScoreFit",
    "train_score_model",
    "langevin_dynamics",
    "langevin_stationary_variance",
    "annealed_langevin",
    "ScoreError",
    "score_error_by_sigma",
    "mode_weights",
    "check_exercise_1",
    "check_exercise_2",
    "check_exercise_3",
]

#: ``score_fn(x_hat, sigma) -> score``: ``x_hat`` of shape ``(batch, dim)``, ``sigma`` of shape ``(batch,)``.
ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# --------------------------------------------------------------------------- validation helpers
def _check_points(x: object, name: str) -> torch.Tensor:
    return _check_any_points(x, name, flat=True)


def _check_callable(fn: object, name: str) -> None:
    if not callable(fn):
        raise TypeError(f"{name} must be callable, got {type(fn).__name__}")


def _sigma_vector(sigma: float | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """`sigma` as a ``(batch,)`` tensor in the dtype and on the device of `like`, checked > 0."""
    sigma = torch.as_tensor(sigma, dtype=like.dtype, device=like.device)
    sigma = sigma.expand(like.shape[0]) if sigma.ndim == 0 else sigma
    if sigma.shape != like.shape[:1]:
        raise ValueError(f"sigma must be a scalar or have shape ({like.shape[0]},), got {tuple(sigma.shape)}")
    if torch.isnan(sigma).any() or (sigma <= 0).any():
        raise ValueError("sigma must be > 0 (and not NaN)")
    return sigma


def _evaluate(fn: Callable[..., torch.Tensor], x: torch.Tensor, *args: object, name: str = "score_fn") -> torch.Tensor:
    """Call a score function and check that it returned a finite tensor of the shape of `x`."""
    out = fn(x, *args)
    if not isinstance(out, torch.Tensor) or out.shape != x.shape:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"{name} must return a tensor of the input's shape {tuple(x.shape)}, got {got}")
    if not torch.isfinite(out).all():
        raise FloatingPointError(f"{name} returned NaN or inf")
    return out.to(x.dtype)


def _noise(shape: tuple[int, ...], generator: torch.Generator, dtype: torch.dtype) -> torch.Tensor:
    # Drawn in float32 and cast (as the footing's samplers do): float32 and float64 runs see the same noise.
    return torch.randn(shape, generator=generator, device=generator.device).to(dtype)


# --------------------------------------------------------------------------- noise levels and the network
def geometric_sigmas(sigma_min: float, sigma_max: float, n: int) -> torch.Tensor:
    r"""NCSN's noise levels: a geometric sequence from `sigma_max` down to `sigma_min` (float64, shape ``(n,)``).

    .. math:: \sigma_i = \sigma_\max \Big(\frac{\sigma_\min}{\sigma_\max}\Big)^{\frac{i-1}{n-1}}, \qquad i = 1, \dots, n,

    which is :class:`~mlnotes.diffusion.common.VEPath` ``(sigma_min, sigma_max)`` at the
    evenly spaced times ``t = 1, ..., 0``: consecutive levels have the same ratio.

    Raises
    ------
    ValueError
        If ``n < 2`` or not ``0 < sigma_min < sigma_max``.
    """
    n = _positive_int(n, "n")
    if n < 2:
        raise ValueError(f"n must be >= 2 (a ladder has a top and a bottom), got {n}")
    path = VEPath(_positive_float(sigma_min, "sigma_min"), _positive_float(sigma_max, "sigma_max"))
    return path.sigma(torch.linspace(1.0, 0.0, n, dtype=torch.float64))


class ScoreMLP(nn.Module):
    r"""A small noise-conditional score network :math:`s_\theta(\hat x, \sigma)` for low-dimensional data.

    The network :math:`F_\theta` sees the input scaled to unit variance,
    :math:`c_\text{in}\hat x` with :math:`c_\text{in} = 1/\sqrt{\sigma^2 + \sigma_\text{data}^2}`,
    and sinusoidal features of :math:`\log\sigma` (:func:`~mlnotes.diffusion.common.sinusoidal_embedding`
    of :math:`c_\text{noise} = \tfrac14\log\sigma`, EDM's noise input), passed through a linear
    layer; then `n_layers` hidden layers of width `hidden_dim` with SiLU. It predicts
    :math:`\sigma\,s`, a quantity of order one at every noise level, and the score is

    .. math:: s_\theta(\hat x, \sigma) = F_\theta\big(c_\text{in}\hat x, c_\text{noise}\big) / \sigma ,

    the output scaling of Song & Ermon (2020). Then the :math:`\sigma^2`-weighted DSM
    loss is the plain regression :math:`\tfrac12\lVert F_\theta + \varepsilon\rVert^2`.

    Parameters
    ----------
    dim : int, default 2
        Data dimension.
    hidden_dim : int, default 128
    n_layers : int, default 3
        Hidden layers.
    embed_dim : int, default 32
        Sinusoidal features of the noise level (even).
    sigma_data : float, default 1.0
        Typical standard deviation of a data coordinate, for the input scaling.

    Notes
    -----
    ``forward(x_hat, sigma)`` takes ``x_hat`` of shape ``(batch, dim)`` and ``sigma``, a
    float, a 0-d tensor or a tensor of shape ``(batch,)`` of positive values; it returns the
    score, shape ``(batch, dim)``.
    """

    def __init__(
        self, dim: int = 2, hidden_dim: int = 128, n_layers: int = 3, embed_dim: int = 32, sigma_data: float = 1.0
    ) -> None:
        super().__init__()
        self.dim = _positive_int(dim, "dim")
        hidden_dim, n_layers = _positive_int(hidden_dim, "hidden_dim"), _positive_int(n_layers, "n_layers")
        if _positive_int(embed_dim, "embed_dim") % 2:
            raise ValueError(f"embed_dim must be even, got {embed_dim}")
        self.embed_dim, self.sigma_data = embed_dim, _positive_float(sigma_data, "sigma_data")
        self.noise_proj = nn.Linear(embed_dim, hidden_dim)
        self.net = _silu_mlp(dim + hidden_dim, hidden_dim, n_layers, dim)

    def forward(self, x_hat: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        if x_hat.ndim != 2 or x_hat.shape[1] != self.dim:
            raise ValueError(f"x_hat must have shape (batch, {self.dim}), got {tuple(x_hat.shape)}")
        sigma = _sigma_vector(sigma, x_hat)[:, None]
        c_in = torch.rsqrt(sigma**2 + self.sigma_data**2)
        features = self.noise_proj(sinusoidal_embedding(0.25 * torch.log(sigma[:, 0]), self.embed_dim, scale=100.0))
        return self.net(torch.cat([c_in * x_hat, features], dim=1)) / sigma


def as_path_model(score_fn: ScoreFn, path: NoisePath) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    r"""A score model on the noise level, seen as a ``model(x, t)`` on `path` (for :func:`~mlnotes.diffusion.common.denoiser_from_score`).

    On a path ``x = s(t) (x0 + sigma(t) eps)`` the density of ``x`` is that of
    ``x_hat = x / s`` rescaled, so :math:`\nabla_x \log p_t(x) = \tfrac{1}{s}\,\texttt{score\_fn}(x / s, \sigma(t))`.
    On :class:`~mlnotes.diffusion.common.VEPath` (SMLD) ``s = 1`` and the model is
    ``score_fn(x, sigma(t))``. ``denoiser_from_score(as_path_model(score_fn, path), path)``
    is then the denoiser :math:`D(\hat x, \sigma) = \hat x + \sigma^2 s(\hat x, \sigma)` (Tweedie),
    which every sampler of the part takes.

    Parameters
    ----------
    score_fn : callable
        ``score_fn(x_hat, sigma)``, see :data:`ScoreFn`.
    path : NoisePath

    Returns
    -------
    callable
        ``model(x, t)`` with ``x`` of shape ``(batch, dim)`` and ``t`` of shape ``(batch,)``.
    """
    _check_callable(score_fn, "score_fn")
    if not isinstance(path, NoisePath):
        raise TypeError(f"path must be a NoisePath, got {type(path).__name__}")

    def model(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t64 = torch.as_tensor(t, dtype=torch.float64, device=x.device)
        t64 = t64.expand(x.shape[0]) if t64.ndim == 0 else t64
        s = path.s(t64).to(x.dtype)[:, None]
        return score_fn(x / s, path.sigma(t64).to(x.dtype)) / s

    return model


# --------------------------------------------------------------------------- score matching objectives
def explicit_score_matching_loss(
    score_fn: ScoreFn, x_hat: torch.Tensor, sigma: float, true_score: torch.Tensor
) -> torch.Tensor:
    r"""Explicit score matching (the Fisher divergence) on one noise level.

    .. math:: J_\text{ESM}(\theta) = \tfrac12\, \mathbb{E}_{\hat x \sim p_\sigma}
              \big\lVert s_\theta(\hat x, \sigma) - \nabla \log p_\sigma(\hat x)\big\rVert^2 ,

    estimated on the given samples. It needs the true score, which is what we do not
    have in practice; here it is the yardstick for the other two objectives.

    Parameters
    ----------
    score_fn : callable
        ``score_fn(x_hat, sigma)``.
    x_hat : torch.Tensor, shape (batch, dim)
        Samples of the noised density :math:`p_\sigma`.
    sigma : float
        The noise level.
    true_score : torch.Tensor, shape (batch, dim)
        :math:`\nabla \log p_\sigma` at `x_hat`.

    Returns
    -------
    torch.Tensor, shape ()
        The mean over the batch of half the squared error summed over coordinates.
    """
    x_hat = _check_points(x_hat, "x_hat")
    if not isinstance(true_score, torch.Tensor) or true_score.shape != x_hat.shape:
        raise ValueError(f"true_score must be a tensor of the shape of x_hat {tuple(x_hat.shape)}")
    model = _evaluate(score_fn, x_hat, _sigma_vector(sigma, x_hat))
    return 0.5 * (model - true_score).pow(2).sum(dim=1).mean()


def hyvarinen_loss(score_fn: ScoreFn, x_hat: torch.Tensor, sigma: float) -> torch.Tensor:
    r"""Hyvärinen's (implicit) score matching objective on one noise level, with the exact Jacobian trace.

    .. math:: J_\text{ISM}(\theta) = \mathbb{E}_{\hat x \sim p_\sigma}\Big[
              \operatorname{tr} \nabla_{\hat x} s_\theta(\hat x, \sigma) + \tfrac12 \lVert s_\theta(\hat x, \sigma)\rVert^2 \Big]
              = J_\text{ESM}(\theta) - \tfrac12\,\mathbb{E}\lVert\nabla\log p_\sigma\rVert^2 .

    It needs no true score, but the trace costs one backward pass per coordinate
    (``dim`` of them): the reason it does not scale to images. The graph is kept, so
    the result can be differentiated with respect to the model's parameters.

    Parameters
    ----------
    score_fn : callable
        ``score_fn(x_hat, sigma)``, differentiable in ``x_hat``.
    x_hat : torch.Tensor, shape (batch, dim)
        Samples of :math:`p_\sigma`.
    sigma : float

    Returns
    -------
    torch.Tensor, shape ()
    """
    x_hat = _check_points(x_hat, "x_hat").detach().requires_grad_(True)
    with torch.enable_grad():
        score = _evaluate(score_fn, x_hat, _sigma_vector(sigma, x_hat))
        trace = torch.zeros(x_hat.shape[0], dtype=x_hat.dtype, device=x_hat.device)
        for i in range(x_hat.shape[1] if score.requires_grad else 0):  # one backward pass per coordinate
            (grad,) = torch.autograd.grad(score[:, i].sum(), x_hat, create_graph=True, allow_unused=True)
            if grad is not None:  # None: the score does not depend on x_hat
                trace = trace + grad[:, i]
    return (trace + 0.5 * score.pow(2).sum(dim=1)).mean()


def dsm_objective(score_fn: ScoreFn, x0: torch.Tensor, noise: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
    r"""Vincent's denoising score matching objective at noise level(s) `sigma`, for given noise.

    .. math:: J_\text{DSM}(\theta) = \tfrac12\,\mathbb{E}_{x_0, \varepsilon}
              \Big\lVert s_\theta(x_0 + \sigma\varepsilon, \sigma) + \frac{\varepsilon}{\sigma}\Big\rVert^2 ,

    since :math:`\nabla_{\hat x} \log q_\sigma(\hat x \mid x_0) = -(\hat x - x_0)/\sigma^2 = -\varepsilon/\sigma`.
    The noise is an argument so that several models can be compared on the same draws.

    Parameters
    ----------
    score_fn : callable
        ``score_fn(x_hat, sigma)``.
    x0 : torch.Tensor, shape (batch, dim)
        Clean data.
    noise : torch.Tensor, shape (batch, dim)
        Standard normal draws :math:`\varepsilon`.
    sigma : float or torch.Tensor of shape (batch,)

    Returns
    -------
    torch.Tensor, shape ()
    """
    x0 = _check_points(x0, "x0")
    if not isinstance(noise, torch.Tensor) or noise.shape != x0.shape:
        raise ValueError(f"noise must be a tensor of the shape of x0 {tuple(x0.shape)}")
    sigma = _sigma_vector(sigma, x0)[:, None]
    noise = noise.to(x0.dtype)
    score = _evaluate(score_fn, x0 + sigma * noise, sigma[:, 0])
    return 0.5 * (score + noise / sigma).pow(2).sum(dim=1).mean()


def dsm_loss(
    score_fn: ScoreFn, x0: torch.Tensor, sigmas: torch.Tensor, generator: torch.Generator, *, continuous: bool = False
) -> torch.Tensor:
    r"""NCSN's training loss on one batch: denoising score matching over the ladder, weighted by :math:`\sigma^2`.

    .. math:: \mathcal{L}(\theta) = \frac{1}{L}\sum_{i=1}^{L} \sigma_i^2\, J_\text{DSM}(\theta; \sigma_i)
              = \frac{1}{L}\sum_{i=1}^{L} \tfrac12\,\mathbb{E}\big\lVert \sigma_i\, s_\theta(x_0 + \sigma_i\varepsilon, \sigma_i) + \varepsilon\big\rVert^2

    (Song & Ermon 2019, eq. 5 and 6 with :math:`\lambda(\sigma) = \sigma^2`), estimated with
    one level per sample drawn uniformly from the ladder. With ``continuous=True`` the level
    is drawn log-uniformly between the smallest and the largest of `sigmas` instead: the limit
    of a geometric ladder with ever more levels, as in the VE-SDE of Song et al. (2021).

    Parameters
    ----------
    score_fn : callable
        ``score_fn(x_hat, sigma)``.
    x0 : torch.Tensor, shape (batch, dim)
    sigmas : torch.Tensor, shape (L,)
        The noise levels, all > 0.
    generator : torch.Generator
        Draws the levels and the noise, on the device of `x0`.
    continuous : bool, default False

    Returns
    -------
    torch.Tensor, shape ()
    """
    x0 = _check_points(x0, "x0")
    _check_generator(generator)
    if not isinstance(sigmas, torch.Tensor) or sigmas.ndim != 1 or sigmas.numel() == 0 or not (sigmas > 0).all():
        raise ValueError("sigmas must be a non-empty 1-D tensor of noise levels > 0")
    sigmas = sigmas.to(device=x0.device, dtype=x0.dtype)
    batch = x0.shape[0]
    if continuous:
        log_min, log_max = torch.log(sigmas.min()), torch.log(sigmas.max())
        u = torch.rand(batch, generator=generator, device=x0.device).to(x0.dtype)
        sigma = torch.exp(log_min + u * (log_max - log_min))
    else:
        sigma = sigmas[torch.randint(sigmas.numel(), (batch,), generator=generator, device=x0.device)]
    noise = _noise(tuple(x0.shape), generator, x0.dtype)
    scaled_score = sigma[:, None] * _evaluate(score_fn, x0 + sigma[:, None] * noise, sigma)
    return 0.5 * (scaled_score + noise).pow(2).sum(dim=1).mean()


# --------------------------------------------------------------------------- training
@dataclass
class ScoreConfig:
    r"""Hyperparameters of :func:`train_score_model`.

    Attributes
    ----------
    sigma_min, sigma_max : float
        Range of the noise levels (NCSN's :math:`\sigma_L` and :math:`\sigma_1`).
    n_sigmas : int or None
        Levels of NCSN's geometric ladder; ``None`` (default) draws the level log-uniformly
        in ``[sigma_min, sigma_max]`` (the continuous limit), so that the model is trained
        at every level a sampler may ask for.
    hidden_dim, n_layers, embed_dim : int
        Size of :class:`ScoreMLP`.
    sigma_data : float
        :class:`ScoreMLP`'s input scaling.
    steps : int
        Optimiser steps.
    batch_size : int
        Samples per step.
    lr : float
        Adam's learning rate at the start; it decays to zero on a cosine.
    """

    sigma_min: float = 0.01
    sigma_max: float = 5.0
    n_sigmas: int | None = None
    hidden_dim: int = 96
    n_layers: int = 3
    embed_dim: int = 32
    sigma_data: float = 1.0
    steps: int = 3000
    batch_size: int = 256
    lr: float = 5e-3

    def __post_init__(self) -> None:
        for name in ("hidden_dim", "n_layers", "embed_dim", "steps", "batch_size"):
            _positive_int(getattr(self, name), f"ScoreConfig.{name}")
        if self.n_sigmas is not None and _positive_int(self.n_sigmas, "ScoreConfig.n_sigmas") < 2:
            raise ValueError(f"ScoreConfig.n_sigmas must be None or an int >= 2, got {self.n_sigmas}")
        for name in ("sigma_min", "sigma_max", "sigma_data", "lr"):
            _positive_float(getattr(self, name), f"ScoreConfig.{name}")
        if not self.sigma_max > self.sigma_min:
            raise ValueError(f"ScoreConfig.sigma_max must be > sigma_min = {self.sigma_min}, got {self.sigma_max}")

    @property
    def path(self) -> VEPath:
        """The variance-exploding path of these noise levels."""
        return VEPath(self.sigma_min, self.sigma_max)


class ScoreFit(NamedTuple):
    """What :func:`train_score_model` returns.

    Attributes
    ----------
    model : ScoreMLP
        The trained score network ``model(x_hat, sigma)``, in eval mode.
    denoiser : Denoiser
        ``D(x_hat, sigma) = x_hat + sigma^2 model(x_hat, sigma)``, built with
        :func:`~mlnotes.diffusion.common.denoiser_from_score` on `path`: it drives every sampler of the part.
    path : VEPath
        The VE path of the training range.
    losses : numpy.ndarray, shape (steps,)
        The loss of every step.
    """

    model: ScoreMLP
    denoiser: Denoiser
    path: VEPath
    losses: np.ndarray


def train_score_model(data: torch.Tensor, config: ScoreConfig, *, generator: torch.Generator) -> ScoreFit:
    r"""Train a :class:`ScoreMLP` by denoising score matching over noise levels (Song & Ermon 2019).

    Each step draws a batch of data (with replacement), one noise level per sample and the
    noise, and takes an Adam step on :func:`dsm_loss`. Training runs on the device and in the
    dtype of `data`.

    Parameters
    ----------
    data : torch.Tensor, shape (n, dim)
        Training samples.
    config : ScoreConfig
    generator : torch.Generator
        Seeds the initial weights and draws batches, levels and noise; on the device of `data`.

    Returns
    -------
    ScoreFit

    Raises
    ------
    TypeError
        If `data` is not a floating-point tensor, `config` not a :class:`ScoreConfig` or
        `generator` not a ``torch.Generator``.
    ValueError
        If `data` is empty, not 2-D or not finite, or `generator` is on another device.
    """
    if not isinstance(config, ScoreConfig):
        raise TypeError(f"config must be a ScoreConfig, got {type(config).__name__}")
    _check_generator(generator)
    data = _check_points(data, "data")
    device, dtype = data.device, data.dtype
    if generator.device.type != device.type:
        raise ValueError(f"generator must be on the data's device {device}, got {generator.device}")
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=device))
    with torch.random.fork_rng(devices=[]):  # PyTorch's default initialisation, from our seed only
        torch.manual_seed(seed)
        model = ScoreMLP(data.shape[1], config.hidden_dim, config.n_layers, config.embed_dim, config.sigma_data)
    model = model.to(device=device, dtype=dtype).train()
    path = config.path
    if config.n_sigmas is None:
        sigmas, continuous = torch.tensor([config.sigma_min, config.sigma_max], dtype=torch.float64), True
    else:
        sigmas, continuous = geometric_sigmas(config.sigma_min, config.sigma_max, config.n_sigmas), False
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / config.steps)))
    losses = np.empty(config.steps)
    for step in range(config.steps):
        x0 = data[torch.randint(data.shape[0], (config.batch_size,), generator=generator, device=device)]
        loss = dsm_loss(model, x0, sigmas, generator, continuous=continuous)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses[step] = float(loss.detach())
    model.eval()
    return ScoreFit(model, denoiser_from_score(as_path_model(model, path), path), path, losses)


# --------------------------------------------------------------------------- Langevin dynamics
def langevin_dynamics(
    score: Callable[[torch.Tensor], torch.Tensor],
    x_init: torch.Tensor,
    step_size: float,
    n_steps: int,
    generator: torch.Generator,
) -> Samples:
    r"""The unadjusted Langevin algorithm: `n_steps` of :math:`x \leftarrow x + \tfrac{\epsilon}{2}\nabla\log p(x) + \sqrt{\epsilon}\,z`.

    As :math:`\epsilon \to 0` and the number of steps grows, the chain's distribution tends
    to :math:`p`; at a finite step it is biased (:func:`langevin_stationary_variance`).

    Parameters
    ----------
    score : callable
        ``score(x) -> grad log p(x)``, shape of ``x``.
    x_init : torch.Tensor, shape (batch, dim)
        Starting points (one chain per row); sampling runs in their dtype.
    step_size : float
        :math:`\epsilon > 0`.
    n_steps : int
        Steps; NFE = `n_steps`.
    generator : torch.Generator
        Draws the noise; must be on the device of `x_init`.

    Returns
    -------
    Samples
        The final states, shape of `x_init`, and ``nfe``.
    """
    _check_callable(score, "score")
    x = _check_points(x_init, "x_init")
    step_size, n_steps = _positive_float(step_size, "step_size"), _positive_int(n_steps, "n_steps")
    if _check_generator(generator).device.type != x.device.type:
        raise ValueError(f"generator must be on the device of x_init ({x.device}), got {generator.device}")
    shape, noise_scale = tuple(x.shape), math.sqrt(step_size)
    for _ in range(n_steps):
        # detach: a chain of many steps must not keep the autograd graph of every evaluation
        x = (x + 0.5 * step_size * _evaluate(score, x, name="score")).detach() + noise_scale * _noise(shape, generator, x.dtype)
    return Samples(x, n_steps)


def langevin_stationary_variance(variance: float, step_size: float) -> float:
    r"""Stationary variance of the discretised Langevin chain for a 1-D Gaussian target of variance `variance`.

    For :math:`p = \mathcal{N}(\mu, v)` the chain is
    :math:`x' - \mu = (1 - \tfrac{\epsilon}{2v})(x - \mu) + \sqrt{\epsilon}\,z`, an AR(1) process whose
    stationary law is Gaussian with variance

    .. math:: V = \frac{\epsilon}{1 - (1 - \epsilon/(2v))^2} = \frac{v}{1 - \epsilon/(4v)} > v,
              \qquad 0 < \epsilon < 4v ,

    the step-size bias (the chain diverges for :math:`\epsilon \ge 4v`).

    Raises
    ------
    ValueError
        If `variance` or `step_size` is not > 0, or ``step_size >= 4 * variance``.
    """
    variance, step_size = _positive_float(variance, "variance"), _positive_float(step_size, "step_size")
    if step_size >= 4 * variance:
        raise ValueError(f"step_size must be < 4 * variance = {4 * variance} for the chain to be stable, got {step_size}")
    return variance / (1.0 - step_size / (4.0 * variance))


def annealed_langevin(
    score_fn: ScoreFn,
    sigmas: torch.Tensor | Sequence[float],
    shape: Sequence[int],
    n_steps_each: int,
    step_lr: float,
    generator: torch.Generator,
    *,
    x_init: torch.Tensor | None = None,
    final_denoise: bool = False,
    dtype: torch.dtype = torch.float32,
) -> Samples:
    r"""Annealed Langevin dynamics (Song & Ermon 2019, Algorithm 1).

    For each level :math:`\sigma_1 > \dots > \sigma_L` in turn, run `n_steps_each` Langevin steps
    on :math:`p_{\sigma_i}` with step :math:`\alpha_i = \epsilon\,\sigma_i^2/\sigma_L^2`, each
    level starting where the previous one stopped:

    .. math:: x \leftarrow x + \frac{\alpha_i}{2}\, s(x, \sigma_i) + \sqrt{\alpha_i}\, z .

    The step shrinks with the level so that the ratio of step to noise variance,
    :math:`\alpha_i/\sigma_i^2 = \epsilon/\sigma_L^2`, is the same on every level.

    Parameters
    ----------
    score_fn : callable
        ``score_fn(x_hat, sigma)``.
    sigmas : torch.Tensor or sequence of float, shape (L,)
        The levels, decreasing (for example :func:`geometric_sigmas`).
    shape : sequence of int
        ``(batch, dim)``.
    n_steps_each : int
        Langevin steps per level, ``T``.
    step_lr : float
        :math:`\epsilon`, the step at the last level (stable only for ``step_lr < 4 sigma_L^2``).
    generator : torch.Generator
        Draws the start and the noise; its device is where sampling runs.
    x_init : torch.Tensor, optional
        Starting points of shape `shape`; default :math:`\mathcal{N}(0, \sigma_1^2 I)`, the
        VE prior (Song & Ermon start from uniform noise on images).
    final_denoise : bool, default False
        End with one Tweedie step :math:`x \leftarrow x + \sigma_L^2 s(x, \sigma_L)` (the
        posterior mean; Jolicoeur-Martineau et al. 2021), one more evaluation.
    dtype : torch.dtype, default float32

    Returns
    -------
    Samples
        ``x`` of shape `shape` and ``nfe = L * n_steps_each`` (``+ 1`` with `final_denoise`).
    """
    _check_callable(score_fn, "score_fn")
    levels = torch.as_tensor(sigmas, dtype=torch.float64).reshape(-1)
    if levels.numel() == 0 or not (levels > 0).all() or not torch.isfinite(levels).all():
        raise ValueError("sigmas must be a non-empty sequence of finite noise levels > 0")
    if levels.numel() > 1 and not (levels[1:] < levels[:-1]).all():
        raise ValueError("sigmas must be strictly decreasing (largest noise first)")
    try:
        shape = tuple(int(n) for n in shape)
    except (TypeError, ValueError):
        raise TypeError(f"shape must be a sequence of ints (batch, dim), got {shape!r}") from None
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"shape must be (batch, dim) with positive sizes, got {shape}")
    n_steps_each, step_lr = _positive_int(n_steps_each, "n_steps_each"), _positive_float(step_lr, "step_lr")
    _check_generator(generator)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
    if x_init is None:
        x = float(levels[0]) * _noise(shape, generator, dtype)
    else:
        if not isinstance(x_init, torch.Tensor) or tuple(x_init.shape) != shape:
            raise ValueError(f"x_init must be a tensor of shape {shape}")
        x = _check_points(x_init, "x_init").to(device=generator.device, dtype=dtype)
    sigma_last = float(levels[-1])
    nfe = 0
    for sigma in levels.tolist():
        alpha = step_lr * (sigma / sigma_last) ** 2
        sigma_vec = torch.full((shape[0],), sigma, dtype=dtype, device=x.device)
        x, used = langevin_dynamics(lambda z, s=sigma_vec: score_fn(z, s), x, alpha, n_steps_each, generator)
        nfe += used
    if final_denoise:
        sigma_vec = torch.full((shape[0],), sigma_last, dtype=dtype, device=x.device)
        x = x + sigma_last**2 * _evaluate(score_fn, x, sigma_vec)
        nfe += 1
    return Samples(x, nfe)


# --------------------------------------------------------------------------- measurements
class ScoreError(NamedTuple):
    r"""What :func:`score_error_by_sigma` returns, one entry per noise level.

    Attributes
    ----------
    sigmas : numpy.ndarray, shape (L,)
    relative : numpy.ndarray, shape (L,)
        :math:`\mathbb{E}\lVert s_\theta - s\rVert^2 / \mathbb{E}\lVert s\rVert^2` over :math:`p_\sigma`.
    weighted : numpy.ndarray, shape (L,)
        :math:`\mathbb{E}\,\sigma^2\lVert s_\theta - s\rVert^2`, the error in the units of the training loss.
    signal : numpy.ndarray, shape (L,)
        :math:`\mathbb{E}\,\sigma^2\lVert s\rVert^2`, the size of what is learned in the same units
        (``relative = weighted / signal``).
    """

    sigmas: np.ndarray
    relative: np.ndarray
    weighted: np.ndarray
    signal: np.ndarray


@torch.no_grad()
def score_error_by_sigma(
    score_fn: ScoreFn, true_score_fn: ScoreFn, x0: torch.Tensor, sigmas: torch.Tensor | Sequence[float], generator: torch.Generator
) -> ScoreError:
    r"""Error of a score model against the true score at each noise level, over samples of the noised data.

    At each :math:`\sigma`, draws :math:`\hat x = x_0 + \sigma\varepsilon` (fresh noise, the same
    data) and returns the relative error
    :math:`\mathbb{E}\lVert s_\theta(\hat x, \sigma) - s(\hat x, \sigma)\rVert^2 / \mathbb{E}\lVert s(\hat x, \sigma)\rVert^2`
    (the :math:`\sigma^2` weights cancel in the ratio), the :math:`\sigma^2`-weighted error
    :math:`\mathbb{E}\,\sigma^2\lVert s_\theta - s\rVert^2` and the size of the target,
    :math:`\mathbb{E}\,\sigma^2\lVert s\rVert^2`.

    Parameters
    ----------
    score_fn, true_score_fn : callable
        ``score_fn(x_hat, sigma)``: the model and the truth (for a Gaussian mixture,
        :meth:`~mlnotes.diffusion.analytic.GaussianMixtureDenoiser.score`).
    x0 : torch.Tensor, shape (n, dim)
        Samples of the data.
    sigmas : torch.Tensor or sequence of float, shape (L,)
    generator : torch.Generator
        Draws the noise, on the device of `x0`.

    Returns
    -------
    ScoreError
    """
    _check_callable(score_fn, "score_fn")
    _check_callable(true_score_fn, "true_score_fn")
    x0 = _check_points(x0, "x0")
    _check_generator(generator)
    levels = torch.as_tensor(sigmas, dtype=torch.float64).reshape(-1)
    if levels.numel() == 0 or not (levels > 0).all():
        raise ValueError("sigmas must be a non-empty sequence of noise levels > 0")
    relative, weighted, signal = [], [], []
    for sigma in levels.tolist():
        x_hat = x0 + sigma * _noise(tuple(x0.shape), generator, x0.dtype)
        sigma_vec = torch.full((x0.shape[0],), sigma, dtype=x0.dtype, device=x0.device)
        model = _evaluate(score_fn, x_hat, sigma_vec)
        truth = _evaluate(true_score_fn, x_hat, sigma_vec, name="true_score_fn")
        squared_error, squared_truth = (model - truth).pow(2).sum(dim=1), truth.pow(2).sum(dim=1)
        relative.append(float(squared_error.sum() / squared_truth.sum()))
        weighted.append(float(sigma**2 * squared_error.mean()))
        signal.append(float(sigma**2 * squared_truth.mean()))
    return ScoreError(levels.numpy(), np.array(relative), np.array(weighted), np.array(signal))


def mode_weights(x: torch.Tensor | np.ndarray, means: np.ndarray, max_distance: float) -> np.ndarray:
    """Fraction of the points `x` whose nearest mode is each of `means`, counting only points within `max_distance` of it.

    Parameters
    ----------
    x : torch.Tensor or numpy.ndarray, shape (n, dim)
    means : numpy.ndarray, shape (k, dim)
        The modes (for a :class:`~mlnotes.datasets.GaussianMixture`, ``mixture.means``).
    max_distance : float
        Points farther than this from their nearest mode count for no mode.

    Returns
    -------
    numpy.ndarray, shape (k,)
        Fractions of all `n` points; they sum to one minus the fraction of points far from every mode.
    """
    points = x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=float)
    means = np.asarray(means, dtype=float)
    if points.ndim != 2 or points.shape[0] == 0 or means.ndim != 2 or means.shape[1] != points.shape[1]:
        raise ValueError(f"x must have shape (n, dim) and means shape (k, dim), got {points.shape} and {means.shape}")
    max_distance = _positive_float(max_distance, "max_distance")
    distances = np.linalg.norm(points[:, None, :] - means[None, :, :], axis=2)
    nearest = distances.argmin(axis=1)
    close = distances[np.arange(len(points)), nearest] <= max_distance
    return np.bincount(nearest[close], minlength=len(means)) / len(points)


# --------------------------------------------------------------------------- exercises
def check_exercise_1(answer: float) -> bool:
    """Exercise 1: the stationary variance of the Langevin chain for ``N(0, 1)`` with step size 0.5."""
    value = _as_float(answer)
    truth = langevin_stationary_variance(1.0, 0.5)
    return _report(
        value is not None and math.isclose(value, truth, rel_tol=1e-3),
        f"Correct: V = v / (1 - eps / (4v)) = 1 / (1 - 1/8) = 8/7 = {truth:.4f}: the chain is 14% too wide.",
        "Not yet: write x' = (1 - eps/2) x + sqrt(eps) z and ask which variance V is left unchanged by one step.",
    )


def check_exercise_2(answer: float) -> bool:
    """Exercise 2: Tweedie's denoised value ``E[x0 | x_hat = 2]`` for 1-D data ``N(1, 0.25)`` and noise ``sigma = 0.5``."""
    value = _as_float(answer)
    return _report(
        value is not None and math.isclose(value, 1.5, rel_tol=1e-3),
        "Correct: p_sigma = N(1, 0.5), its score at 2 is -(2 - 1)/0.5 = -2, and x_hat + sigma^2 * score = 2 - 0.25 * 2 = 1.5.",
        "Not yet: the noised density is N(1, 0.25 + sigma^2); take its score at x_hat = 2 and use D = x_hat + sigma^2 * score.",
    )


def check_exercise_3(answer: float) -> bool:
    """Exercise 3: the constant ``J_DSM - J_ESM`` for 2-D data ``N(0, I)`` at ``sigma = 0.5``."""
    value = _as_float(answer)
    truth = 0.5 * 2 * (1 / 0.5**2 - 1 / (1 + 0.5**2))
    return _report(
        value is not None and math.isclose(value, truth, rel_tol=1e-3),
        f"Correct: C = (d/2) (1/sigma^2 - 1/(1 + sigma^2)) = 4 - 0.8 = {truth:.1f}.",
        "Not yet: C = (1/2) E||grad log q(x_hat | x0)||^2 - (1/2) E||grad log p_sigma(x_hat)||^2; both are traces of inverse covariances.",
    )
