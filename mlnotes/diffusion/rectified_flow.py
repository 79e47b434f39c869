r"""Rectified flow: velocity regression on straight lines, Euler sampling and reflow.

Rectified flow (Liu, Gong & Liu, "Flow Straight and Fast: Learning to Generate and
Transfer Data with Rectified Flow", ICLR 2023) and flow matching (Lipman et al.,
"Flow Matching for Generative Modeling", ICLR 2023) join a data point ``x0`` and a
noise draw ``x1`` by the straight line

.. math:: x_t = (1 - t)\,x_0 + t\,x_1, \qquad t \in [0, 1],

(the footing's :class:`~mlnotes.diffusion.common.LinearPath`: noise at ``t = 1``,
data at ``t = 0``) and regress a network :math:`v_\theta(x_t, t)` on the line's
velocity :math:`x_1 - x_0`. The minimiser is the marginal velocity
:math:`\mathbb{E}[x_1 - x_0 \mid x_t]`, whose ODE carries the noise distribution
to the data distribution; :func:`~mlnotes.diffusion.common.rectified_flow_euler`
integrates it backwards from ``t = 1``. *Reflow* retrains on the pairs
``(x1, sample)`` that the flow itself produces (:func:`~mlnotes.diffusion.common.reflow_pairs`):
their paths do not cross, so the new flow is straighter and needs fewer steps.

This module holds what is specific to the chapter: a small MLP velocity network
(:class:`VelocityMLP`), the loss (:func:`velocity_loss`), training
(:class:`RectifiedFlowConfig`, :func:`train_rectified_flow`, :func:`reflow`),
trajectories and Liu et al.'s straightness (:func:`euler_trajectories`,
:func:`straightness`), the 1-D optimal-transport reference (:func:`monotone_coupling`,
:func:`crossing_fraction`, :func:`transport_cost`, :func:`gaussian_ot_map_1d`) and the exercises' checkers.

Chapter: ``book/diffusion/rectified_flow.ipynb``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from scipy import special
from torch import nn

from mlnotes.datasets import GaussianMixture
from mlnotes.diffusion.common import _check_generator, _positive_int, _silu_mlp, _uniform_init_, reflow_pairs
from mlnotes.diffusion.common import _check_points as _check_any_points
from mlnotes.exercises import as_float as _as_float, report as _report

__all__ = [
    "VelocityMLP",
    "velocity_loss",
    "RectifiedFlowConfig",
    "RectifiedFlowFit",
    "train_rectified_flow",
    "reflow",
    "euler_trajectories",
    "straightness",
    "monotone_coupling",
    "transport_cost",
    "crossing_fraction",
    "gaussian_ot_map_1d",
    "check_exercise_1",
    "check_exercise_2",
    "check_exercise_3",
]


# --------------------------------------------------------------------------- validation helpers
def _check_points(x: object, name: str) -> torch.Tensor:
    return _check_any_points(x, name, flat=True)


# --------------------------------------------------------------------------- the network
class VelocityMLP(nn.Module):
    r"""A small MLP velocity field :math:`v_\theta(x, t)` for low-dimensional data.

    The time enters through Fourier features
    :math:`(\sin(2\pi f_k t), \cos(2\pi f_k t))_{k}` with frequencies
    ``f_k = 2^k / 2`` (``k = 0 .. time_features/2 - 1``), concatenated with ``x``
    and fed to ``n_layers`` hidden layers of width ``hidden_dim`` with SiLU.

    Parameters
    ----------
    dim : int
        Data dimension.
    hidden_dim : int, default 128
    n_layers : int, default 3
        Hidden layers.
    time_features : int, default 16
        Size of the time embedding (even).
    generator : torch.Generator, optional
        Draws the initial weights (PyTorch's default initialisation, from this
        generator); without it, the global RNG is used.

    Notes
    -----
    ``forward(x, t)`` takes ``x`` of shape ``(batch, dim)`` and ``t``, a float, a 0-d
    tensor or a tensor of shape ``(batch,)``; it returns shape ``(batch, dim)``.
    """

    def __init__(
        self,
        dim: int,
        hidden_dim: int = 128,
        n_layers: int = 3,
        time_features: int = 16,
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.dim = _positive_int(dim, "dim")
        hidden_dim = _positive_int(hidden_dim, "hidden_dim")
        n_layers = _positive_int(n_layers, "n_layers")
        if _positive_int(time_features, "time_features") % 2:
            raise ValueError(f"time_features must be even, got {time_features}")
        self.register_buffer("frequencies", 2.0 ** torch.arange(time_features // 2) / 2.0, persistent=False)
        self.net = _silu_mlp(dim + time_features, hidden_dim, n_layers, dim)
        if generator is not None:
            _uniform_init_(self.net, generator)

    def forward(self, x: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
        t = t.expand(x.shape[0]) if t.ndim == 0 else t
        angles = 2 * math.pi * t[:, None] * self.frequencies.to(x.dtype)
        return self.net(torch.cat([x, torch.sin(angles), torch.cos(angles)], dim=1))


def velocity_loss(
    model: nn.Module, x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor
) -> torch.Tensor:
    r"""The rectified-flow / flow-matching loss on given pairs and times.

    .. math:: \mathcal{L} = \frac{1}{B}\sum_i \big\| (x_{1,i} - x_{0,i}) - v_\theta(x_{t_i}, t_i) \big\|^2,
              \qquad x_{t} = (1 - t) x_0 + t x_1.

    Parameters
    ----------
    model : nn.Module
        ``model(x, t)`` with ``x`` of shape ``(batch, dim)`` and ``t`` of shape ``(batch,)``.
    x0, x1 : torch.Tensor, shape (batch, dim)
        Data and noise ends of each line.
    t : torch.Tensor, shape (batch,)
        Times in ``[0, 1]``.

    Returns
    -------
    torch.Tensor, shape ()
        The mean over the batch of the squared error summed over dimensions.
    """
    if x0.shape != x1.shape or t.shape != x0.shape[:1]:
        raise ValueError(f"x0 and x1 must share a shape (batch, dim) and t must be (batch,), got "
                         f"{tuple(x0.shape)}, {tuple(x1.shape)}, {tuple(t.shape)}")
    tb = t[:, None]
    x_t = (1 - tb) * x0 + tb * x1
    return ((x1 - x0) - model(x_t, t)).pow(2).sum(dim=1).mean()


# --------------------------------------------------------------------------- training
@dataclass
class RectifiedFlowConfig:
    """Hyperparameters of :func:`train_rectified_flow` and :func:`reflow`.

    Attributes
    ----------
    steps : int, default 2000
        Optimiser steps.
    batch_size : int, default 256
        Lines per step.
    lr : float, default 2e-3
        Adam's learning rate, annealed to 0 by a cosine schedule.
    hidden_dim : int, default 128
        Width of :class:`VelocityMLP` (when the trainer builds the network).
    n_layers : int, default 3
        Hidden layers of :class:`VelocityMLP`.
    time_features : int, default 16
        Size of the network's time embedding.
    amp_dtype : torch.dtype or None, default None
        Run the forward pass under ``torch.autocast`` in this dtype (``torch.bfloat16``
        or ``torch.float16``); ``None`` trains in the data's dtype.
    """

    steps: int = 2000
    batch_size: int = 256
    lr: float = 2e-3
    hidden_dim: int = 128
    n_layers: int = 3
    time_features: int = 16
    amp_dtype: torch.dtype | None = None

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "hidden_dim", "n_layers", "time_features"):
            _positive_int(getattr(self, name), name)
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)) or not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a finite number > 0, got {self.lr!r}")
        if self.amp_dtype not in (None, torch.bfloat16, torch.float16):
            raise ValueError(f"amp_dtype must be None, torch.bfloat16 or torch.float16, got {self.amp_dtype!r}")


class RectifiedFlowFit(NamedTuple):
    """What :func:`train_rectified_flow` returns: the trained ``model`` (in eval mode) and the loss of every step, ``losses`` of shape ``(steps,)``."""

    model: VelocityMLP
    losses: np.ndarray


def train_rectified_flow(
    pairs_or_data: torch.Tensor | tuple[torch.Tensor, torch.Tensor],
    config: RectifiedFlowConfig,
    *,
    generator: torch.Generator,
    model: VelocityMLP | None = None,
) -> RectifiedFlowFit:
    r"""Train a velocity network by regression on straight lines (Liu et al. 2023, Algorithm 1).

    Each step draws ``batch_size`` lines and times ``t ~ U(0, 1)`` and takes an Adam
    step on :func:`velocity_loss`.

    - Given *data* ``x0`` of shape ``(n, dim)``: the **independent coupling** (1-rectified
      flow): each step pairs a random batch of data with fresh noise ``x1 ~ N(0, I)``.
    - Given *pairs* ``(noise, samples)``, two tensors of shape ``(n, dim)``: the **fixed
      coupling** of reflow; the lines join ``samples[i]`` (at ``t = 0``) and ``noise[i]``
      (at ``t = 1``), as :func:`~mlnotes.diffusion.common.reflow_pairs` returns them.

    Parameters
    ----------
    pairs_or_data : torch.Tensor or tuple of two torch.Tensor
        See above. Training runs on their device and in their dtype.
    config : RectifiedFlowConfig
    generator : torch.Generator
        Initial weights (when `model` is None), batches, times and noise; must be on
        the data's device.
    model : VelocityMLP, optional
        Start from this network (a copy is trained; the argument is left untouched).

    Returns
    -------
    RectifiedFlowFit

    Raises
    ------
    TypeError
        If the data are not floating-point tensors, `config` is not a
        :class:`RectifiedFlowConfig` or `generator` is not a ``torch.Generator``.
    ValueError
        If the data are empty, not 2-D, not finite, the two tensors of a pair differ in
        shape, or `model` has another dimension.
    """
    if not isinstance(config, RectifiedFlowConfig):
        raise TypeError(f"config must be a RectifiedFlowConfig, got {type(config).__name__}")
    _check_generator(generator)
    if isinstance(pairs_or_data, tuple):
        if len(pairs_or_data) != 2:
            raise ValueError(f"pairs must be a tuple (noise, samples), got {len(pairs_or_data)} items")
        noise = _check_points(pairs_or_data[0], "noise")
        data = _check_points(pairs_or_data[1], "samples")
        if noise.shape != data.shape:
            raise ValueError(f"noise and samples must have the same shape, got {tuple(noise.shape)} and {tuple(data.shape)}")
    else:
        data, noise = _check_points(pairs_or_data, "data"), None
    device, dtype = data.device, data.dtype
    if generator.device.type != device.type:
        raise ValueError(f"generator must be on the data's device {device}, got {generator.device}")
    if model is None:
        model = VelocityMLP(data.shape[1], config.hidden_dim, config.n_layers, config.time_features, generator=generator)
    elif not isinstance(model, VelocityMLP):
        raise TypeError(f"model must be a VelocityMLP, got {type(model).__name__}")
    elif model.dim != data.shape[1]:
        raise ValueError(f"model has dim {model.dim}, the data have dim {data.shape[1]}")
    else:
        model = copy.deepcopy(model)
    model = model.to(device=device, dtype=dtype).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / config.steps))
    )
    losses = np.empty(config.steps)
    n = data.shape[0]
    for step in range(config.steps):
        index = torch.randint(n, (config.batch_size,), generator=generator, device=device)
        x0 = data[index]
        if noise is None:
            x1 = torch.randn(x0.shape, generator=generator, device=device).to(dtype)
        else:
            x1 = noise[index]
        t = torch.rand(config.batch_size, generator=generator, device=device).to(dtype)
        with torch.autocast(device.type, dtype=config.amp_dtype or torch.bfloat16, enabled=config.amp_dtype is not None):
            loss = velocity_loss(model, x0, x1, t)
        optimizer.zero_grad(set_to_none=True)
        loss.float().backward()
        optimizer.step()
        schedule.step()
        losses[step] = float(loss.detach())
    return RectifiedFlowFit(model.eval(), losses)


def reflow(
    model: VelocityMLP,
    config: RectifiedFlowConfig,
    n_pairs: int,
    *,
    generator: torch.Generator,
    n_steps: int = 100,
    warm_start: bool = True,
) -> tuple[RectifiedFlowFit, tuple[torch.Tensor, torch.Tensor]]:
    """One round of reflow ("rectify"; Liu et al. 2023, Algorithm 1 with ``k = 2``).

    Draws `n_pairs` noise points, pushes them through `model` with
    :func:`~mlnotes.diffusion.common.reflow_pairs` (`n_steps` Euler steps) and trains a
    new network on the straight lines between each noise point and its sample.

    Parameters
    ----------
    model : VelocityMLP
        The previous flow (its parameters set the device and dtype).
    config : RectifiedFlowConfig
        Training of the new flow.
    n_pairs : int
        Size of the coupling.
    generator : torch.Generator
        Noise and training randomness, on the model's device.
    n_steps : int, default 100
        Euler steps used to generate the pairs.
    warm_start : bool, default True
        Start from a copy of `model` (as Liu et al. do) rather than from a fresh network.

    Returns
    -------
    fit : RectifiedFlowFit
        The new flow and its losses.
    pairs : tuple (noise, samples) of torch.Tensor, shape (n_pairs, dim)
        The coupling it was trained on.
    """
    if not isinstance(model, VelocityMLP):
        raise TypeError(f"model must be a VelocityMLP, got {type(model).__name__}")
    parameter = next(model.parameters())
    model.eval()
    noise, samples = reflow_pairs(model, _positive_int(n_pairs, "n_pairs"), (model.dim,), _check_generator(generator),
                                  n_steps=n_steps, dtype=parameter.dtype)
    fit = train_rectified_flow((noise, samples), config, generator=generator, model=model if warm_start else None)
    return fit, (noise, samples)


# --------------------------------------------------------------------------- trajectories and straightness
@torch.no_grad()
def euler_trajectories(velocity_model: nn.Module, noise: torch.Tensor, n_steps: int) -> torch.Tensor:
    """Every state of :func:`~mlnotes.diffusion.common.rectified_flow_euler` from ``t = 1`` to ``t = 0``.

    The same Euler steps on the same evenly spaced times (its last state equals that
    sampler's output for the same `noise`), kept for plotting and for :func:`straightness`.

    Parameters
    ----------
    velocity_model : callable
        ``v(x, t)``.
    noise : torch.Tensor, shape (batch, dim)
        Starting points ``x_1``.
    n_steps : int

    Returns
    -------
    torch.Tensor, shape (n_steps + 1, batch, dim)
        The states at ``t = 1, 1 - 1/n, ..., 0``.
    """
    noise = _check_points(noise, "noise")
    n_steps = _positive_int(n_steps, "n_steps")
    times = torch.linspace(1.0, 0.0, n_steps + 1, dtype=torch.float64).tolist()
    states = [noise]
    for t, t_next in zip(times[:-1], times[1:]):
        states.append(states[-1] + (t_next - t) * velocity_model(states[-1], t).to(noise.dtype))
    return torch.stack(states)


@torch.no_grad()
def straightness(velocity_model: nn.Module, noise: torch.Tensor, n_steps: int = 100) -> float:
    r"""Liu et al.'s straightness of a flow (2023, eq. 8), measured on its Euler trajectories.

    .. math:: S = \int_0^1 \mathbb{E}\,\big\| (x_1 - x_0) - v(x_t, t) \big\|^2\,dt,

    where :math:`x_t` is the trajectory that starts at :math:`x_1` = `noise` and
    :math:`x_0` its end: the mean squared deviation of the velocity from the constant
    velocity of the straight line between the trajectory's two ends. ``S = 0`` exactly
    when every trajectory is a straight line travelled at constant speed, and then one
    Euler step is exact. The integral is the left Riemann sum on the `n_steps` Euler
    times (the velocity is evaluated at the states of :func:`euler_trajectories`).

    Returns
    -------
    float
        ``S`` (squared units of the data).
    """
    states = euler_trajectories(velocity_model, noise, n_steps)
    times = torch.linspace(1.0, 0.0, n_steps + 1, dtype=torch.float64).tolist()
    chord = states[0] - states[-1]
    total = 0.0
    for k, t in enumerate(times[:-1]):
        velocity = velocity_model(states[k], t).to(noise.dtype)
        total += float((chord - velocity).pow(2).sum(dim=1).mean())
    return total / n_steps


# --------------------------------------------------------------------------- 1-D optimal transport
def _as_1d(x: object, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    array = np.asarray(x, dtype=float)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1 or array.size < 2:
        raise ValueError(f"{name} must be 1-D points of shape (n,) or (n, 1) with n >= 2, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite, got NaN or inf")
    return array


def _pair(x0: object, x1: object) -> tuple[np.ndarray, np.ndarray]:
    a, b = _as_1d(x0, "x0"), _as_1d(x1, "x1")
    if a.shape != b.shape:
        raise ValueError(f"x0 and x1 must hold the same number of points, got {a.size} and {b.size}")
    return a, b


def monotone_coupling(x0: object, x1: object) -> np.ndarray:
    """The optimal-transport partner of each ``x0[i]`` among the points `x1`, in 1-D.

    In one dimension the optimal transport map for any convex cost is the monotone
    (quantile) map ``F_1^{-1} o F_0``: the ``k``-th smallest ``x0`` goes to the ``k``-th
    smallest ``x1``.

    Parameters
    ----------
    x0, x1 : array_like or torch.Tensor, shape (n,) or (n, 1)

    Returns
    -------
    numpy.ndarray, shape (n,)
        ``x1`` reordered so that ``(x0[i], result[i])`` is the monotone coupling.
    """
    a, b = _pair(x0, x1)
    partner = np.empty_like(b)
    partner[np.argsort(a, kind="stable")] = np.sort(b)
    return partner


def transport_cost(x0: object, x1: object) -> float:
    """Mean squared distance ``mean_i (x0[i] - x1[i])^2`` of a 1-D coupling (its quadratic transport cost)."""
    a, b = _pair(x0, x1)
    return float(np.mean((a - b) ** 2))


def crossing_fraction(x0: object, x1: object) -> float:
    r"""Fraction of pairs of lines of a 1-D coupling that cross.

    The straight lines from ``x0[i]`` to ``x1[i]`` and from ``x0[j]`` to ``x1[j]`` cross
    (in the plane of position against time) when the two ends are in opposite orders,
    :math:`(x_{0,i} - x_{0,j})(x_{1,i} - x_{1,j}) < 0`. The monotone (optimal-transport)
    coupling has none; an independent coupling has about half. Without ties this is
    ``(1 - tau) / 2`` with Kendall's tau.

    Returns
    -------
    float
        In ``[0, 1]``.
    """
    a, b = _pair(x0, x1)
    n = a.size
    crossings = 0
    for start in range(0, n, 1024):  # blocks of rows keep memory at O(1024 n)
        da = a[start:start + 1024, None] - a[None, :]
        db = b[start:start + 1024, None] - b[None, :]
        crossings += int(np.count_nonzero(da * db < 0))
    return crossings / (n * (n - 1))


def gaussian_ot_map_1d(mixture: GaussianMixture, z: object, *, tol: float = 1e-10) -> np.ndarray:
    r"""The optimal-transport (monotone) map from ``N(0, 1)`` to a 1-D Gaussian mixture, ``F^{-1}(Phi(z))``.

    :math:`F` is the mixture's distribution function and :math:`\Phi` the standard
    normal's; the inverse is found by bisection to `tol`. This is the known answer for
    the coupling that a 1-D flow from noise to the mixture must produce: a 1-D ODE
    cannot swap the order of two points, so its map is monotone, hence this one.

    Parameters
    ----------
    mixture : GaussianMixture
        A mixture with ``dim == 1``.
    z : array_like, shape (n,) or (n, 1)
        Noise points.

    Returns
    -------
    numpy.ndarray, shape (n,)
    """
    if not isinstance(mixture, GaussianMixture) or mixture.dim != 1:
        raise ValueError("mixture must be a 1-D mlnotes.datasets.GaussianMixture")
    z = _as_1d(z, "z") if np.ndim(z) else np.atleast_1d(float(z))  # type: ignore[arg-type]
    means = np.asarray(mixture.means, dtype=float)[:, 0]
    stds = np.sqrt(np.asarray(mixture.covariances, dtype=float)[:, 0, 0])
    weights = np.asarray(mixture.weights, dtype=float)
    target = special.ndtr(z)
    low = np.full_like(z, (means - 40 * stds).min())
    high = np.full_like(z, (means + 40 * stds).max())
    while (high - low).max() > tol:
        mid = 0.5 * (low + high)
        below = special.ndtr((mid[:, None] - means) / stds) @ weights < target
        low, high = np.where(below, mid, low), np.where(below, high, mid)
    return 0.5 * (low + high)


# --------------------------------------------------------------------------- exercises


def check_exercise_1(answer: float) -> bool:
    """Exercise 1: on :class:`~mlnotes.diffusion.common.LinearPath`, what EDM noise level ``sigma`` does ``t = 0.8`` have?"""
    value = _as_float(answer)
    return _report(
        value is not None and math.isclose(value, 4.0, rel_tol=1e-3),
        "Correct: sigma = t / (1 - t) = 0.8 / 0.2 = 4.",
        "Not yet: write x_t = (1 - t)(x0 + sigma eps) and match t eps = (1 - t) sigma eps.",
    )


def check_exercise_2(answer: float) -> bool:
    """Exercise 2: data are the single point ``x0 = 3`` (1-D). From ``x1 = -1``, where does ONE Euler step of the exact flow land?"""
    value = _as_float(answer)
    return _report(
        value is not None and math.isclose(value, 3.0, rel_tol=1e-3),
        "Correct: v(x, 1) = x - E[x0] = -4, and x1 - 1 * v = 3: with one data point every path is straight.",
        "Not yet: at t = 1, x_t = x1, so E[x1 - x0 | x_t] = x - E[x0]; then step x <- x - v.",
    )


def check_exercise_3(answer: float) -> bool:
    """Exercise 3: the expected fraction of crossing pairs of an independent coupling of two continuous 1-D distributions."""
    value = _as_float(answer)
    return _report(
        value is not None and math.isclose(value, 0.5, abs_tol=1e-3),
        "Correct: the order of x1[i], x1[j] is independent of that of x0[i], x0[j]: they disagree half the time.",
        "Not yet: for two independent pairs, is x1[i] < x1[j] related to whether x0[i] < x0[j]?",
    )
