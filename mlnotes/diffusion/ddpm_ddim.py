r"""DDPM and DDIM: the forward process, the simple epsilon loss and a small noise-prediction network.

Implements what is specific to the chapter ``book/diffusion/ddpm_ddim.ipynb``:

- the forward process of Ho et al., "Denoising Diffusion Probabilistic Models",
  NeurIPS 2020 (DDPM): the one-step kernel
  :math:`q(x_i \mid x_{i-1}) = \mathcal{N}(\sqrt{1-\beta_i}\,x_{i-1}, \beta_i I)` iterated
  (:func:`iterate_forward_kernel`) and its closed form
  :math:`q(x_i \mid x_0) = \mathcal{N}(\sqrt{\bar\alpha_i}\,x_0, (1-\bar\alpha_i) I)`
  (:func:`forward_marginal`);
- DDIM's per-step noise :math:`\sigma_i(\eta)` (Song, Meng & Ermon, "Denoising Diffusion
  Implicit Models", ICLR 2021, eq. 16; :func:`ddim_noise_std`) and DDPM's posterior
  variance :math:`\tilde\beta` (:func:`ddpm_posterior_std`), which it equals at ``eta = 1``;
- :class:`EpsMLP`, a small MLP noise predictor ``eps(x, t)`` for 2-D data with
  sinusoidal features of the time (:func:`~mlnotes.diffusion.common.sinusoidal_embedding`, as in the
  Transformer's positions and DDPM's networks);
- :func:`ddpm_loss`, the "simple" loss :math:`\lVert \varepsilon - \varepsilon_\theta(x_i, i)\rVert^2`,
  and :func:`train_ddpm` with its :class:`DDPMConfig`;
- ``check_exercise_*`` helpers for the chapter's exercises.

The samplers themselves (:func:`~mlnotes.diffusion.common.ddpm_ancestral`,
:func:`~mlnotes.diffusion.common.ddim`), the schedule
(:class:`~mlnotes.diffusion.common.DiscreteVPPath`) and the conversion of a noise
predictor into a denoiser (:func:`~mlnotes.diffusion.common.denoiser_from_eps`) are
shared by the whole part and live in :mod:`mlnotes.diffusion.common`.

**Time convention.** The network's time input is the continuous time of the noise
level, ``t = VPPath.sigma_inv(sigma_i)`` (close to ``i / T``), so that the network
trained on the discrete steps of :class:`~mlnotes.diffusion.common.DiscreteVPPath`
plugs into :func:`~mlnotes.diffusion.common.denoiser_from_eps` with
``path.continuous`` exactly: that wrapper asks for the same ``t`` at the same noise level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from mlnotes.diffusion.common import Denoiser, DiscreteVPPath, _silu_mlp, denoiser_from_eps, sinusoidal_embedding

__all__ = [
    "forward_marginal",
    "iterate_forward_kernel",
    "ddpm_posterior_std",
    "ddim_noise_std",
    "EpsMLP",
    "network_time",
    "ddpm_loss",
    "DDPMConfig",
    "DDPMResult",
    "train_ddpm",
    "check_exercise_1",
    "check_exercise_2",
    "check_exercise_3",
]


# --------------------------------------------------------------------------- validation
def _check_path(path: object) -> DiscreteVPPath:
    if not isinstance(path, DiscreteVPPath):
        raise TypeError(f"path must be a DiscreteVPPath, got {type(path).__name__}")
    return path


def _check_data(x: object, name: str = "x0", dim: int | None = None) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point torch.Tensor, got {type(x).__name__}")
    if x.ndim != 2 or x.shape[0] == 0 or (dim is not None and x.shape[1] != dim):
        want = f"(batch, {dim})" if dim is not None else "(batch, dim)"
        raise ValueError(f"{name} must have shape {want} with batch >= 1, got {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} must be finite, got NaN or inf")
    return x


def _check_step(step: int, path: DiscreteVPPath, name: str = "step") -> int:
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or not 0 <= step <= path.n_timesteps:
        raise ValueError(f"{name} must be an int in [0, {path.n_timesteps}], got {step!r}")
    return int(step)


def _alpha_bar(path: DiscreteVPPath, step: int) -> float:
    """``alpha_bar_step`` with ``alpha_bar_0 = 1`` (clean data)."""
    return 1.0 if step == 0 else float(path.alpha_bars[step - 1])


# --------------------------------------------------------------------------- forward process
def forward_marginal(path: DiscreteVPPath, step: int) -> tuple[float, float]:
    r"""Coefficients of the closed-form marginal :math:`q(x_i \mid x_0) = \mathcal{N}(a\,x_0, b^2 I)`.

    Parameters
    ----------
    path : DiscreteVPPath
        The schedule (``T`` steps).
    step : int
        ``i`` in ``[0, T]`` (``0`` is the data itself).

    Returns
    -------
    mean_coef, std : float
        ``a = sqrt(alpha_bar_i)`` and ``b = sqrt(1 - alpha_bar_i)``.
    """
    step = _check_step(step, _check_path(path))
    alpha_bar = _alpha_bar(path, step)
    return math.sqrt(alpha_bar), math.sqrt(1.0 - alpha_bar)


def iterate_forward_kernel(
    x0: torch.Tensor, path: DiscreteVPPath, steps: list[int], generator: torch.Generator
) -> dict[int, torch.Tensor]:
    r"""Run the Markov chain :math:`x_i = \sqrt{1-\beta_i}\,x_{i-1} + \sqrt{\beta_i}\,\varepsilon_i` one step at a time.

    The slow, literal version of the forward process; :func:`forward_marginal` is its
    closed form, and the chapter checks that the two agree.

    Parameters
    ----------
    x0 : torch.Tensor, shape (batch, dim)
        Data.
    path : DiscreteVPPath
        The schedule.
    steps : list of int
        Steps ``i`` in ``[0, T]`` at which to record ``x_i``.
    generator : torch.Generator
        Draws the noise, on the device of `x0`.

    Returns
    -------
    dict of int to torch.Tensor
        ``{i: x_i}``, each of shape ``(batch, dim)``.
    """
    x0 = _check_data(x0)
    path = _check_path(path)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    if not isinstance(steps, (list, tuple)) or len(steps) == 0:
        raise ValueError(f"steps must be a non-empty list of ints, got {steps!r}")
    wanted = {_check_step(s, path, "steps[i]") for s in steps}
    betas = path.betas.tolist()
    out: dict[int, torch.Tensor] = {0: x0.clone()} if 0 in wanted else {}
    x = x0
    for i in range(1, max(wanted) + 1):
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        x = math.sqrt(1.0 - betas[i - 1]) * x + math.sqrt(betas[i - 1]) * noise
        if i in wanted:
            out[i] = x
    return out


def ddpm_posterior_std(path: DiscreteVPPath, step: int, prev_step: int) -> float:
    r"""Standard deviation of DDPM's posterior :math:`q(x_{i'} \mid x_i, x_0)` between step `step` and an earlier `prev_step`.

    :math:`\tilde\beta = \frac{1-\bar\alpha_{i'}}{1-\bar\alpha_i}\big(1 - \bar\alpha_i/\bar\alpha_{i'}\big)`
    (Ho et al. 2020, eq. 7, with the step's :math:`\beta` replaced by
    :math:`1 - \bar\alpha_i/\bar\alpha_{i'}` when steps are skipped).
    """
    path = _check_path(path)
    step, prev_step = _check_step(step, path), _check_step(prev_step, path, "prev_step")
    if not 0 <= prev_step < step:
        raise ValueError(f"prev_step must be in [0, step) = [0, {step}), got {prev_step}")
    a, a_prev = _alpha_bar(path, step), _alpha_bar(path, prev_step)
    return math.sqrt((1.0 - a_prev) / (1.0 - a) * (1.0 - a / a_prev))


def ddim_noise_std(path: DiscreteVPPath, step: int, prev_step: int, eta: float) -> float:
    r"""DDIM's noise :math:`\sigma_i(\eta)` on the step from `step` to `prev_step` (Song et al. 2021a, eq. 16).

    .. math:: \sigma_i(\eta) = \eta \sqrt{\frac{1-\bar\alpha_{i'}}{1-\bar\alpha_i}}
              \sqrt{1 - \frac{\bar\alpha_i}{\bar\alpha_{i'}}}

    ``eta = 0`` is the deterministic DDIM; ``eta = 1`` is :func:`ddpm_posterior_std`.
    """
    if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not (eta >= 0 and math.isfinite(eta)):
        raise ValueError(f"eta must be a finite number >= 0, got {eta!r}")
    return float(eta) * ddpm_posterior_std(path, step, prev_step)


# --------------------------------------------------------------------------- the network
class EpsMLP(nn.Module):
    """A small MLP noise predictor ``eps(x, t)`` for low-dimensional data.

    ``x`` and the sinusoidal features of ``t`` (passed through a linear layer) are
    concatenated, then `n_layers` hidden layers of width `hidden_dim` with SiLU, then a
    linear read-out of the noise.

    Parameters
    ----------
    dim : int, default 2
        Data dimension.
    hidden_dim : int, default 128
    n_layers : int, default 3
        Hidden layers.
    embed_dim : int, default 32
        Sinusoidal features of the time.
    """

    def __init__(self, dim: int = 2, hidden_dim: int = 128, n_layers: int = 3, embed_dim: int = 32) -> None:
        super().__init__()
        for name, value in (("dim", dim), ("hidden_dim", hidden_dim), ("n_layers", n_layers), ("embed_dim", embed_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.dim, self.embed_dim = dim, embed_dim
        self.time_proj = nn.Linear(embed_dim, hidden_dim)
        self.net = _silu_mlp(dim + hidden_dim, hidden_dim, n_layers, dim)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Predict the noise in ``x`` of shape ``(batch, dim)`` at times ``t`` of shape ``(batch,)`` (or a scalar)."""
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (batch, {self.dim}), got {tuple(x.shape)}")
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
        t = t.expand(x.shape[0]) if t.ndim == 0 else t.to(x.dtype)
        if t.shape != x.shape[:1]:
            raise ValueError(f"t must be a scalar or have shape ({x.shape[0]},), got {tuple(t.shape)}")
        features = self.time_proj(sinusoidal_embedding(t, self.embed_dim))
        return self.net(torch.cat([x, features], dim=1))


def network_time(path: DiscreteVPPath, steps: torch.Tensor) -> torch.Tensor:
    """The network's time input at 1-based steps ``i``: ``path.continuous.sigma_inv(sigma_i)`` (float64, shape of `steps`).

    With this convention :func:`~mlnotes.diffusion.common.denoiser_from_eps` on
    ``path.continuous`` feeds the network exactly the times it was trained on.
    """
    path = _check_path(path)
    return path.continuous.sigma_inv(path.sigmas[steps.cpu() - 1]).to(steps.device)


def ddpm_loss(eps_model: nn.Module, x0: torch.Tensor, path: DiscreteVPPath, generator: torch.Generator) -> torch.Tensor:
    r"""DDPM's simple loss (Ho et al. 2020, eq. 14) on one batch.

    .. math:: L_\text{simple} = \mathbb{E}_{i, x_0, \varepsilon}
              \big\lVert \varepsilon - \varepsilon_\theta\big(\sqrt{\bar\alpha_i}\,x_0
              + \sqrt{1-\bar\alpha_i}\,\varepsilon,\ i\big)\big\rVert^2

    with ``i`` uniform on ``1..T``; the squared error is averaged over the batch and
    the coordinates.

    Parameters
    ----------
    eps_model : callable
        ``eps_model(x, t)``; ``t`` from :func:`network_time`.
    x0 : torch.Tensor, shape (batch, dim)
    path : DiscreteVPPath
    generator : torch.Generator
        Draws the steps and the noise (on the device of `x0`).

    Returns
    -------
    torch.Tensor
        A scalar.
    """
    path = _check_path(path)
    steps = torch.randint(1, path.n_timesteps + 1, (x0.shape[0],), generator=generator, device=x0.device)
    x_t, eps = path.sample_xt(x0, steps, generator)
    return torch.mean((eps_model(x_t, network_time(path, steps).to(x0.dtype)) - eps) ** 2)


# --------------------------------------------------------------------------- training
@dataclass
class DDPMConfig:
    """Hyperparameters of :func:`train_ddpm`.

    Attributes
    ----------
    n_timesteps : int
        ``T``, the number of diffusion steps (1000 in Ho et al. 2020).
    beta_min, beta_max : float
        The linear schedule runs from ``beta_min / T`` to ``beta_max / T`` (``1e-4`` to ``0.02``).
    hidden_dim : int
        Width of :class:`EpsMLP`'s hidden layers.
    n_layers : int
        Hidden layers of :class:`EpsMLP`.
    embed_dim : int
        Sinusoidal time features.
    epochs : int
        Passes over the data; steps = ``epochs * ceil(n / batch_size)``.
    batch_size : int
        Samples per step.
    lr : float
        Adam's learning rate at the start.
    lr_final_ratio : float
        The learning rate decays by cosine to ``lr * lr_final_ratio`` over training
        (a stable end point instead of the EMA of the paper's weights).
    """

    n_timesteps: int = 1000
    beta_min: float = 0.1
    beta_max: float = 20.0
    hidden_dim: int = 128
    n_layers: int = 3
    embed_dim: int = 32
    epochs: int = 100
    batch_size: int = 256
    lr: float = 2e-3
    lr_final_ratio: float = 0.05

    def __post_init__(self) -> None:
        for name in ("n_timesteps", "hidden_dim", "n_layers", "embed_dim", "epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"DDPMConfig.{name} must be a positive int, got {value!r}")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise ValueError(f"DDPMConfig.lr must be > 0, got {self.lr!r}")
        if not (isinstance(self.lr_final_ratio, (int, float)) and 0 < self.lr_final_ratio <= 1):
            raise ValueError(f"DDPMConfig.lr_final_ratio must be in (0, 1], got {self.lr_final_ratio!r}")


class DDPMResult(NamedTuple):
    """What :func:`train_ddpm` returns.

    Attributes
    ----------
    eps_model : EpsMLP
        The trained noise predictor, in eval mode.
    denoiser : Denoiser
        ``D(x_hat, sigma)`` built from it with :func:`~mlnotes.diffusion.common.denoiser_from_eps`.
    path : DiscreteVPPath
        The schedule it was trained on (give it to the samplers).
    history : dict of str to list of float
        ``"loss"`` per epoch and ``"step_loss"`` per step.
    """

    eps_model: EpsMLP
    denoiser: Denoiser
    path: DiscreteVPPath
    history: dict[str, list[float]]


def train_ddpm(data: torch.Tensor, config: DDPMConfig | None = None, *, generator: torch.Generator) -> DDPMResult:
    """Train an :class:`EpsMLP` on `data` with :func:`ddpm_loss` (Ho et al. 2020, Algorithm 1).

    Uses :func:`mlnotes.training.train` (Adam, shuffled mini-batches) with a cosine
    learning-rate decay. The network is built on the device and in the dtype of `data`.

    Parameters
    ----------
    data : torch.Tensor, shape (n, dim)
        Training samples.
    config : DDPMConfig, optional
        Hyperparameters; default ``DDPMConfig()``.
    generator : torch.Generator
        Seeds the initial weights, and (on the device of `data`) the steps and noise
        of the loss; shuffling uses a CPU generator seeded from it.

    Returns
    -------
    DDPMResult
    """
    from mlnotes.training import train

    config = DDPMConfig() if config is None else config
    if not isinstance(config, DDPMConfig):
        raise TypeError(f"config must be a DDPMConfig, got {type(config).__name__}")
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    data = _check_data(data, "data")
    if generator.device.type != data.device.type:
        raise ValueError(f"generator must be on the device of data ({data.device}), got {generator.device}")
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = EpsMLP(data.shape[1], config.hidden_dim, config.n_layers, config.embed_dim)
    model = model.to(device=data.device, dtype=data.dtype)
    path = DiscreteVPPath(config.n_timesteps, config.beta_min, config.beta_max)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    total_steps = config.epochs * math.ceil(data.shape[0] / config.batch_size)
    lr_min, step = config.lr * config.lr_final_ratio, [0]

    def loss_fn(net: nn.Module, x0: torch.Tensor) -> torch.Tensor:
        # train() steps the optimiser right after this returns: set this step's cosine-decayed rate.
        progress = min(step[0] / max(total_steps - 1, 1), 1.0)
        optimizer.param_groups[0]["lr"] = lr_min + 0.5 * (config.lr - lr_min) * (1 + math.cos(math.pi * progress))
        step[0] += 1
        return ddpm_loss(net, x0, path, generator)

    history = train(model, loss_fn, data, epochs=config.epochs, optimizer=optimizer, batch_size=config.batch_size,
                    generator=torch.Generator().manual_seed(seed), progress=False)
    model.eval()
    return DDPMResult(model, denoiser_from_eps(model, path.continuous), path, history)


# --------------------------------------------------------------------------- exercises
def _check(answer: float, truth: float, what: str, rtol: float = 1e-3) -> bool:
    ok = math.isfinite(float(answer)) and abs(float(answer) - truth) <= rtol * abs(truth) + 1e-9
    print(f"Correct: {what} = {truth:.4f}." if ok else f"Not yet: {what} is not {float(answer):.4f}; try again.")
    return ok


def check_exercise_1(answer: float) -> bool:
    """Exercise 1: the standard deviation of the noise in ``x_500`` for DDPM's schedule (``T = 1000``)."""
    return _check(answer, forward_marginal(DiscreteVPPath(1000), 500)[1], "sqrt(1 - alpha_bar_500)")


def check_exercise_2(answer: float) -> bool:
    """Exercise 2: the noise std of DDIM with ``eta = 0.5`` on the step from ``i = 100`` to ``i' = 50`` (``T = 1000``)."""
    return _check(answer, ddim_noise_std(DiscreteVPPath(1000), 100, 50, 0.5), "sigma(eta=0.5) from 100 to 50")


def check_exercise_3(answer: float) -> bool:
    """Exercise 3: ``E[x0 | x_i]`` for Gaussian data ``N(0, 0.25)`` in 1-D, at ``x_i = 1.0`` and ``i = 300``."""
    mean_coef, std = forward_marginal(DiscreteVPPath(1000), 300)
    var0 = 0.25
    truth = mean_coef * var0 / (mean_coef**2 * var0 + std**2) * 1.0
    return _check(answer, truth, "E[x0 | x_300 = 1]")
