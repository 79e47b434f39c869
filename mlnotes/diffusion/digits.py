r"""Diffusion on pictures: a small UNet denoiser trained on the handwritten digits, on CPU or on GPUs.

The part's footing (:mod:`mlnotes.diffusion.common`) is written for any data shape;
this module takes it from points in the plane to images. It holds

- the data: scikit-learn's 1,797 handwritten 8x8 digits scaled to ``[-1, 1]``, or
  bilinearly upsampled to 32x32 (:func:`digits_images`); models train on one half of
  them and are scored against the other (:func:`mlnotes.metrics.digits_split`);
- :class:`TinyUNet`, a small UNet (residual convolution blocks with GroupNorm, a
  noise-level embedding added in every block, one or more down/up levels joined by skip
  connections) whose widths and depth are configurable: a few tens of thousands of
  parameters for 8x8 digits on a CPU, millions for 32x32 digits on a GPU;
- training (:class:`DigitsConfig`, :func:`train_digits_denoiser`) with the loss and
  preconditioning of Karras et al., "Elucidating the Design Space of Diffusion-Based
  Generative Models", NeurIPS 2022 ("EDM"): log-normal noise levels and the weight
  :math:`\lambda(\sigma) = (\sigma^2 + \sigma_d^2) / (\sigma \sigma_d)^2`, wrapped in
  :class:`~mlnotes.diffusion.common.EDMPrecond`; or, by a config field, the
  rectified-flow / flow-matching velocity regression on
  :class:`~mlnotes.diffusion.common.LinearPath` (Liu et al. 2023; Lipman et al. 2023).
  Optional EMA of the weights and bf16 autocast; the same loop runs unchanged under
  ``torchrun`` with ``DistributedDataParallel`` (each rank takes its share of every
  batch, drawn from the same seeded generator on every rank);
- evaluation (:func:`sample_digits`, :func:`evaluate_samplers`): Fréchet distance in the
  features of a small digits classifier (:func:`mlnotes.metrics.fit_digits_classifier`),
  the classifier's mean confidence, the histogram of predicted classes and the distance
  to the nearest training digit (a model that copies its training set is caught by it),
  against the number of network evaluations, for DDIM, Euler and Heun on EDM's noise
  levels and rectified-flow Euler, beside the same numbers for real digits and for pure noise.

Chapter: the section "From points to pictures: digits" of ``book/diffusion/edm.ipynb``;
the GPU run is ``benchmarks/digits_diffusion.py``.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mlnotes.diffusion.common import (
    DiscreteVPPath,
    EDMPath,
    EDMPrecond,
    LinearPath,
    _check_generator,
    _positive_float,
    _positive_int,
    _uniform_init_,
    ddim,
    denoiser_from_velocity,
    euler_ode,
    heun_ode,
    rectified_flow_euler,
    velocity_model_from_denoiser,
)
from mlnotes.metrics import (
    DigitsClassifier,
    NoiseFloor,
    digits_noise_floor,
    digits_split,
    frechet_distance,
)

__all__ = [
    "SAMPLERS",
    "digits_images",
    "NoiseEmbedding",
    "ResBlock",
    "TinyUNet",
    "DigitsConfig",
    "DigitsFit",
    "edm_loss",
    "rectified_flow_loss",
    "train_digits_denoiser",
    "sample_digits",
    "SamplerRow",
    "DigitsEvaluation",
    "evaluate_samplers",
]

#: The samplers :func:`sample_digits` knows, in the order of the tables.
SAMPLERS = ("ddim", "euler", "heun", "rectified_flow")
_SAMPLER_NAMES = {
    "ddim": "DDIM (DDPM schedule, eta=0)",
    "euler": "Euler (EDM sigmas)",
    "heun": "Heun (EDM sigmas)",
    "rectified_flow": "Rectified-flow Euler",
}
#: EDM's sampling range of noise levels (Karras et al. 2022, Table 1).
SIGMA_MIN, SIGMA_MAX = 0.002, 80.0


# --------------------------------------------------------------------------- validation helpers
def _check_size(size: object) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 8 or size % 8:
        raise ValueError(f"size must be 8 or a larger multiple of 8 (8, 16, 32, ...), got {size!r}")
    return int(size)


# --------------------------------------------------------------------------- data
def digits_images(
    size: int = 8,
    *,
    subset: str = "all",
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """The 1,797 handwritten digits of scikit-learn as images in ``[-1, 1]``.

    Pixels (intensities 0 to 16) are mapped to ``2 x / 16 - 1``, so the background is
    ``-1``. Sizes above 8 are bilinear upsamplings of the 8x8 originals (for the GPU
    configuration's 32x32 UNet); bilinear interpolation stays inside ``[-1, 1]``.

    Parameters
    ----------
    size : int, default 8
        Side of the images: 8, or a larger multiple of 8 such as 32.
    subset : {"all", "train", "reference"}, default "all"
        All 1,797 digits in scikit-learn's order, or one half of
        :func:`mlnotes.metrics.digits_split`: the 898 digits generators train on, or the
        899 their samples are scored against.
    generator : torch.Generator, optional
        When given, the images come in the random order of ``torch.randperm`` drawn
        from it (on the CPU); otherwise in scikit-learn's order.
    dtype : torch.dtype, default float32
    device : torch.device or str, optional
        Where the tensor lives (default: the CPU).

    Returns
    -------
    torch.Tensor, shape (n, 1, size, size)
        ``n`` = 1797, 898 or 899.
    """
    from mlnotes.datasets import load_digits

    size = _check_size(size)
    if subset not in ("all", "train", "reference"):
        raise ValueError(f"subset must be 'all', 'train' or 'reference', got {subset!r}")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
    images = torch.from_numpy(load_digits().X).reshape(-1, 1, 8, 8) * 2.0 - 1.0
    if size != 8:
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    if subset != "all":
        reference_index, train_index = digits_split()
        images = images[torch.from_numpy(train_index if subset == "train" else reference_index)]
    if generator is not None:
        _check_generator(generator)
        images = images[torch.randperm(images.shape[0], generator=generator, device=generator.device).cpu()]
    return images.to(device=device, dtype=dtype)


# --------------------------------------------------------------------------- the network
class NoiseEmbedding(nn.Module):
    r"""Embedding of the noise level: Fourier features, then a two-layer MLP.

    ``c`` (EDM's :math:`c_\text{noise} = \tfrac14 \ln\sigma`, or the time ``t`` of a
    flow) enters as :math:`(\sin 2\pi f_k c, \cos 2\pi f_k c)_k` with ``n_frequencies``
    frequencies ``f_k`` spaced geometrically from 1/4 to 32 cycles per unit, then
    ``Linear -> SiLU -> Linear`` to ``dim``. Input shape ``(batch,)``, output ``(batch, dim)``.
    """

    def __init__(self, dim: int, n_frequencies: int = 16) -> None:
        super().__init__()
        n_frequencies = _positive_int(n_frequencies, "n_frequencies")
        self.register_buffer("frequencies", torch.logspace(math.log10(0.25), math.log10(32.0), n_frequencies), persistent=False)
        self.mlp = nn.Sequential(nn.Linear(2 * n_frequencies, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        angles = 2 * math.pi * c[:, None].to(self.frequencies.dtype) * self.frequencies[None, :]
        features = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
        return self.mlp(features.to(self.mlp[0].weight.dtype))


class ResBlock(nn.Module):
    """Residual block: ``GroupNorm -> SiLU -> conv3x3``, plus the projected embedding, ``GroupNorm -> SiLU -> conv3x3``, plus the input.

    The input passes through a 1x1 convolution when the widths differ. The second
    convolution starts at zero (as in DDPM's and EDM's networks), so each block starts
    as the identity on its input. Shapes: ``(batch, in_channels, H, W)`` and an
    embedding ``(batch, emb_dim)`` to ``(batch, out_channels, H, W)``.
    """

    def __init__(self, in_channels: int, out_channels: int, emb_dim: int, groups: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.emb = nn.Linear(emb_dim, out_channels)
        self.norm2 = nn.GroupNorm(groups, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(F.silu(emb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class TinyUNet(nn.Module):
    r"""A small UNet ``F(x, c)`` for single-channel images: the raw network inside EDM's preconditioning.

    ``conv3x3`` to ``base_channels``; then one level per entry of `channel_mults`, each
    with ``num_res_blocks`` :class:`ResBlock` of width ``base_channels * mult`` and, between
    levels, 2x2 average pooling; a middle block; the same levels upwards (nearest-neighbour
    upsampling, the level's skip connection concatenated, ``num_res_blocks`` blocks);
    ``GroupNorm -> SiLU -> conv3x3`` to the output, initialised at zero. The noise level
    enters every block through :class:`NoiseEmbedding` (width ``4 * base_channels``).
    No attention: at 8x8 and 32x32 the convolutions see the whole digit within a few levels.

    Parameters
    ----------
    in_channels : int, default 1
    base_channels : int, default 32
    channel_mults : sequence of int, default (1, 2)
        Width multiplier of each level; ``len(channel_mults) - 1`` halvings of the
        resolution, so the image side must be divisible by ``2 ** (len - 1)``.
    num_res_blocks : int, default 1
        Blocks per level on each side.
    groups : int, default 8
        GroupNorm groups; every width (``base_channels * mult``) must be divisible by it.
    generator : torch.Generator, optional
        Draws the initial weights (PyTorch's default uniform initialisation, from this
        generator, on its device); without it the global RNG is used.

    Notes
    -----
    ``forward(x, c)``: ``x`` of shape ``(batch, in_channels, H, W)``, ``c`` of shape
    ``(batch,)`` (or a scalar); returns shape ``(batch, in_channels, H, W)`` in the dtype of
    the network's output (the input's dtype, or bf16 under autocast).
    """

    def __init__(
        self,
        in_channels: int = 1,
        base_channels: int = 32,
        channel_mults: Sequence[int] = (1, 2),
        num_res_blocks: int = 1,
        groups: int = 8,
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = _positive_int(in_channels, "in_channels")
        base_channels = _positive_int(base_channels, "base_channels")
        if isinstance(channel_mults, (str, bytes)) or not isinstance(channel_mults, Sequence) or len(channel_mults) == 0:
            raise ValueError(f"channel_mults must be a non-empty sequence of ints, got {channel_mults!r}")
        self.channel_mults = tuple(_positive_int(m, "channel_mults[i]") for m in channel_mults)
        num_res_blocks = _positive_int(num_res_blocks, "num_res_blocks")
        groups = _positive_int(groups, "groups")
        widths = [base_channels * m for m in self.channel_mults]
        if any(w % groups for w in widths):
            raise ValueError(f"every width base_channels * mult = {widths} must be divisible by groups = {groups}")
        emb_dim = 4 * base_channels
        self.embedding = NoiseEmbedding(emb_dim)
        self.conv_in = nn.Conv2d(self.in_channels, base_channels, 3, padding=1)
        self.down = nn.ModuleList()
        width = base_channels
        for w in widths:
            blocks = nn.ModuleList()
            for _ in range(num_res_blocks):
                blocks.append(ResBlock(width, w, emb_dim, groups))
                width = w
            self.down.append(blocks)
        self.middle = ResBlock(width, width, emb_dim, groups)
        self.up = nn.ModuleList()
        for w in reversed(widths):
            blocks = nn.ModuleList()
            for i in range(num_res_blocks):
                blocks.append(ResBlock(width + w if i == 0 else w, w, emb_dim, groups))
                width = w
            self.up.append(blocks)
        self.norm_out = nn.GroupNorm(groups, width)
        self.conv_out = nn.Conv2d(width, self.in_channels, 3, padding=1)
        self._initialise(generator)

    def _initialise(self, generator: torch.Generator | None) -> None:
        zero = [self.conv_out] + [m.conv2 for m in self.modules() if isinstance(m, ResBlock)]
        with torch.no_grad():
            if generator is not None:
                _uniform_init_(self, generator)
            for module in zero:
                module.weight.zero_()
                module.bias.zero_()

    @property
    def levels(self) -> int:
        """Number of resolution levels, ``len(channel_mults)``."""
        return len(self.channel_mults)

    def forward(self, x: torch.Tensor, c: torch.Tensor | float) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"x must have shape (batch, {self.in_channels}, H, W), got {tuple(x.shape)}")
        factor = 2 ** (self.levels - 1)
        if x.shape[2] % factor or x.shape[3] % factor:
            raise ValueError(f"image sides must be divisible by 2 ** (levels - 1) = {factor}, got {tuple(x.shape[2:])}")
        c = torch.as_tensor(c, device=x.device)
        c = c.expand(x.shape[0]) if c.ndim == 0 else c
        emb = self.embedding(c)
        h = self.conv_in(x)
        skips = []
        for level, blocks in enumerate(self.down):
            if level > 0:
                h = F.avg_pool2d(h, 2)
            for block in blocks:
                h = block(h, emb)
            skips.append(h)
        h = self.middle(h, emb)
        for level, blocks in enumerate(self.up):
            if level > 0:
                h = F.interpolate(h, scale_factor=2, mode="nearest")
            h = torch.cat([h, skips.pop()], dim=1)
            for block in blocks:
                h = block(h, emb)
        return self.conv_out(F.silu(self.norm_out(h)))


# --------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class DigitsConfig:
    """Everything :func:`train_digits_denoiser` needs: data, network, objective, optimiser, budget.

    Attributes
    ----------
    size : int, default 8
        Image side: 8 (the digits) or a multiple of 8 (bilinear upsampling, e.g. 32).
    base_channels, channel_mults, num_res_blocks, groups
        The :class:`TinyUNet`.
    objective : {"edm", "rectified_flow"}, default "edm"
        ``"edm"``: :func:`edm_loss` through :class:`~mlnotes.diffusion.common.EDMPrecond`;
        ``"rectified_flow"``: :func:`rectified_flow_loss`, the network predicts the velocity.
    sigma_data : float, default 0.75
        EDM's data standard deviation :math:`\\sigma_d` (the digits' pixels in ``[-1, 1]`` have 0.752).
    p_mean, p_std : float, default -1.2, 1.2
        EDM's log-normal training noise levels, ``ln sigma ~ N(p_mean, p_std^2)``.
    steps : int, default 2000
        Optimiser steps (the most; `time_limit_s` may stop earlier).
    batch_size : int, default 128
        Images per step, over all ranks together (each of ``W`` ranks takes ``batch_size / W``).
    lr : float, default 2e-3
        Adam's learning rate after a linear warm-up of `warmup_steps`.
    warmup_steps : int, default 50
    cosine_decay : bool, default True
        Anneal the learning rate to 0 over `steps` by a cosine; ``False`` keeps it constant
        (the choice when `time_limit_s` may cut training short; EMA then smooths the end).
    ema_decay : float or None, default None
        Keep an exponential moving average of the weights with this decay per step and
        return it; ``None`` returns the trained weights.
    amp_bf16 : bool, default False
        Run the network under ``torch.autocast`` in bfloat16 (on CUDA; also works on CPU).
    compile : bool, default False
        Train through ``torch.compile`` (of the DDP-wrapped network under ``torchrun``): slower
        to start (compilation, counted in the training time), faster per step on a GPU.
    time_limit_s : float or None, default None
        Stop training after this many seconds (checked every 25 steps, agreed by all ranks).
    log_every : int, default 0
        Print the running loss and throughput every this many steps on rank 0 (0: silent).
    """

    size: int = 8
    base_channels: int = 32
    channel_mults: tuple[int, ...] = (1, 2)
    num_res_blocks: int = 1
    groups: int = 8
    objective: str = "edm"
    sigma_data: float = 0.75
    p_mean: float = -1.2
    p_std: float = 1.2
    steps: int = 2000
    batch_size: int = 128
    lr: float = 2e-3
    warmup_steps: int = 50
    cosine_decay: bool = True
    ema_decay: float | None = None
    amp_bf16: bool = False
    compile: bool = False
    time_limit_s: float | None = None
    log_every: int = 0

    def __post_init__(self) -> None:
        _check_size(self.size)
        for name in ("base_channels", "num_res_blocks", "groups", "steps", "batch_size"):
            _positive_int(getattr(self, name), name)
        if not isinstance(self.channel_mults, tuple) or not self.channel_mults:
            raise ValueError(f"channel_mults must be a non-empty tuple of ints, got {self.channel_mults!r}")
        for m in self.channel_mults:
            _positive_int(m, "channel_mults[i]")
        if self.size % 2 ** (len(self.channel_mults) - 1):
            raise ValueError(f"size {self.size} must be divisible by 2 ** (len(channel_mults) - 1)")
        if any(self.base_channels * m % self.groups for m in self.channel_mults):
            raise ValueError(f"base_channels * mult must be divisible by groups = {self.groups}")
        if self.objective not in ("edm", "rectified_flow"):
            raise ValueError(f"objective must be 'edm' or 'rectified_flow', got {self.objective!r}")
        for name in ("sigma_data", "p_std", "lr"):
            _positive_float(getattr(self, name), name)
        if isinstance(self.p_mean, bool) or not isinstance(self.p_mean, (int, float)) or not math.isfinite(self.p_mean):
            raise ValueError(f"p_mean must be a finite number, got {self.p_mean!r}")
        for name in ("warmup_steps", "log_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an int >= 0, got {value!r}")
        if self.ema_decay is not None and not (isinstance(self.ema_decay, float) and 0 < self.ema_decay < 1):
            raise ValueError(f"ema_decay must be None or a float in (0, 1), got {self.ema_decay!r}")
        if self.time_limit_s is not None:
            _positive_float(self.time_limit_s, "time_limit_s")
        for name in ("amp_bf16", "compile", "cosine_decay"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")

    @classmethod
    def small(cls, **changes: object) -> DigitsConfig:
        """The CPU configuration: 8x8 digits, a UNet of 24k parameters, 500 steps: about 10 seconds on one CPU thread.

        The training noise levels are centred higher than EDM's CIFAR-10 choice
        (``p_mean = -0.6, p_std = 1.0`` instead of ``-1.2, 1.2``): on 8x8 digits the levels
        that decide a digit's shape are larger, and this setting lowers the Fréchet distance
        of Heun's 35-evaluation samples from about 13 to about 9 at the same cost.
        """
        base = cls(size=8, base_channels=8, channel_mults=(1, 2), num_res_blocks=1, groups=2, p_mean=-0.6, p_std=1.0,
                   steps=500, batch_size=128, lr=5e-3, warmup_steps=50)
        return replace(base, **changes)

    @classmethod
    def full(cls, **changes: object) -> DigitsConfig:
        """The GPU configuration: 32x32 digits, a UNet of 3.8M parameters, bf16, EMA, at most 30,000 steps or 8 minutes.

        Noise levels ``p_mean = -0.4, p_std = 1.2``: higher than EDM's ``-1.2`` for the reason
        given in :meth:`small`, and higher again because bilinear upsampling spreads each
        pixel over 4x4, so a digit's shape survives larger noise (an educated guess, not
        tuned on a GPU; the benchmark's ``--p-mean`` and ``--p-std`` override it).
        """
        base = cls(size=32, base_channels=64, channel_mults=(1, 2, 2), num_res_blocks=2, p_mean=-0.4, p_std=1.2,
                   steps=30_000, batch_size=512,
                   lr=1e-3, warmup_steps=500, cosine_decay=False, ema_decay=0.9995, amp_bf16=True,
                   time_limit_s=480.0, log_every=1000)
        return replace(base, **changes)

    def build_network(self, generator: torch.Generator | None = None) -> TinyUNet:
        """The :class:`TinyUNet` of this configuration (weights from `generator`)."""
        return TinyUNet(1, self.base_channels, self.channel_mults, self.num_res_blocks, self.groups, generator=generator)

    def to_dict(self) -> dict[str, object]:
        """The fields as a plain dict (for JSON)."""
        return asdict(self)


# --------------------------------------------------------------------------- losses
def _loss_dtype(x0: torch.Tensor) -> torch.dtype:
    return torch.float64 if x0.dtype == torch.float64 else torch.float32


def edm_loss(
    denoiser: EDMPrecond,
    x0: torch.Tensor,
    sigma: torch.Tensor,
    noise: torch.Tensor,
) -> torch.Tensor:
    r"""EDM's training loss (Karras et al. 2022, eq. 8 with Table 1) for given noise levels and noise.

    .. math:: \mathcal{L} = \frac{1}{B}\sum_i \lambda(\sigma_i)\,
              \overline{\big(D(x_{0,i} + \sigma_i n_i;\ \sigma_i) - x_{0,i}\big)^2},
              \qquad \lambda(\sigma) = \frac{\sigma^2 + \sigma_d^2}{(\sigma\sigma_d)^2},

    the bar being the mean over pixels. With EDM's preconditioning the weight makes the
    raw network's effective target have unit variance at every noise level.

    Parameters
    ----------
    denoiser : EDMPrecond
        ``D(x_hat, sigma)`` (its ``sigma_data`` gives :math:`\sigma_d`).
    x0 : torch.Tensor, shape (batch, C, H, W)
    sigma : torch.Tensor, shape (batch,)
    noise : torch.Tensor, shape of `x0`
        Standard normal.

    Returns
    -------
    torch.Tensor, shape (), float32 or float64
    """
    if x0.shape != noise.shape or sigma.shape != x0.shape[:1]:
        raise ValueError(f"x0 and noise must share a shape and sigma must be (batch,), got "
                         f"{tuple(x0.shape)}, {tuple(noise.shape)}, {tuple(sigma.shape)}")
    sigma_data = denoiser.sigma_data
    weight = (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2
    s = sigma.reshape(-1, *([1] * (x0.ndim - 1)))
    dtype = _loss_dtype(x0)  # bf16 network outputs under autocast: the loss itself in float32
    error = (denoiser(x0 + s * noise, sigma).to(dtype) - x0.to(dtype)) ** 2
    return (weight.to(dtype) * error.flatten(1).mean(dim=1)).mean()


def rectified_flow_loss(model: Callable[..., torch.Tensor], x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    r"""The rectified-flow / flow-matching loss on images, with the footing's :class:`~mlnotes.diffusion.common.LinearPath`.

    .. math:: \mathcal{L} = \frac{1}{B}\sum_i \overline{\big((n_i - x_{0,i}) - v_\theta(x_{t_i}, t_i)\big)^2},
              \qquad x_t = (1 - t)\,x_0 + t\,n,

    the bar being the mean over pixels; ``t`` in ``[0, 1]`` of shape ``(batch,)``.
    """
    if x0.shape != noise.shape or t.shape != x0.shape[:1]:
        raise ValueError(f"x0 and noise must share a shape and t must be (batch,), got "
                         f"{tuple(x0.shape)}, {tuple(noise.shape)}, {tuple(t.shape)}")
    tb = t.reshape(-1, *([1] * (x0.ndim - 1)))
    x_t = (1 - tb) * x0 + tb * noise
    dtype = _loss_dtype(x0)
    error = ((noise - x0).to(dtype) - model(x_t, t).to(dtype)) ** 2
    return error.flatten(1).mean(dim=1).mean()


# --------------------------------------------------------------------------- training
class DigitsFit(NamedTuple):
    """What :func:`train_digits_denoiser` returns.

    Attributes
    ----------
    denoiser : torch.nn.Module
        ``D(x_hat, sigma)`` in eval mode: :class:`~mlnotes.diffusion.common.EDMPrecond` around
        the (EMA) network for ``objective="edm"``, the exact conversion
        :func:`~mlnotes.diffusion.common.denoiser_from_velocity` for ``"rectified_flow"``.
    losses : numpy.ndarray, shape (steps_done,)
        The loss of every step (averaged over ranks).
    network : TinyUNet
        The network the samplers use (the EMA weights when ``ema_decay`` is set).
    velocity_model : torch.nn.Module or None
        ``v(x, t)`` on :class:`~mlnotes.diffusion.common.LinearPath` for ``"rectified_flow"``
        (the network itself), ``None`` for ``"edm"``.
    config : DigitsConfig
    steps_done : int
        Fewer than ``config.steps`` when the time limit stopped training.
    train_seconds : float
        Wall-clock time of the training loop.
    images_per_second : float
        Training throughput over all ranks.
    world_size : int
        Number of processes that trained together.
    """

    denoiser: nn.Module
    losses: np.ndarray
    network: TinyUNet
    velocity_model: nn.Module | None
    config: DigitsConfig
    steps_done: int
    train_seconds: float
    images_per_second: float
    world_size: int


def _distributed() -> tuple[bool, int, int]:
    """Whether a process group is up, this process's rank and the world size."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return True, dist.get_rank(), dist.get_world_size()
    return False, 0, 1


def train_digits_denoiser(
    config: DigitsConfig,
    generator: torch.Generator,
    device: torch.device | str | None = None,
) -> DigitsFit:
    r"""Train a :class:`TinyUNet` denoiser on the digits with EDM's loss (or rectified flow's).

    The data are the 898 digits of the training half of :func:`mlnotes.metrics.digits_split`
    (the other half is the reference that samples are scored against). Each step draws a
    batch of ``config.batch_size`` of them (with replacement) and, for
    ``objective="edm"``, noise levels :math:`\ln\sigma \sim \mathcal{N}(P_\text{mean}, P_\text{std}^2)`
    and noise, and takes an Adam step on :func:`edm_loss`; for ``"rectified_flow"`` times
    :math:`t \sim U(0, 1)` and :func:`rectified_flow_loss`. Learning rate: linear warm-up,
    then cosine decay to 0 or constant; optional EMA of the weights; optional bf16 autocast.

    **Distributed.** When ``torch.distributed`` is initialised (``torchrun``), the network is
    wrapped in ``DistributedDataParallel`` and each of the ``W`` ranks trains on its
    ``1/W`` share of every batch. All ranks draw the *whole* batch (indices, noise levels,
    noise) from their own generator, seeded alike, and keep their slice: the ranks see
    different data, their generators stay in step, and since DDP averages the gradients
    of equal shares, ``W`` processes take the same steps as one process would, up to
    floating-point rounding. Losses are averaged over ranks. Every rank returns the
    (identical) fit; evaluate on rank 0 only.

    Parameters
    ----------
    config : DigitsConfig
    generator : torch.Generator
        Initial weights, batches, noise levels and noise; on the training device.
        Under ``torchrun``, seed it the same on every rank.
    device : torch.device or str, optional
        Defaults to the generator's device; must be of the generator's device type.

    Returns
    -------
    DigitsFit

    Raises
    ------
    TypeError
        If `config` is not a :class:`DigitsConfig` or `generator` not a ``torch.Generator``.
    ValueError
        If the generator is on another type of device than `device`, or the batch does
        not split evenly over the ranks.
    """
    if not isinstance(config, DigitsConfig):
        raise TypeError(f"config must be a DigitsConfig, got {type(config).__name__}")
    _check_generator(generator)
    device = torch.device(device) if device is not None else generator.device
    if device.type != generator.device.type:
        raise ValueError(f"generator must be on the training device {device}, got {generator.device}")
    distributed, rank, world = _distributed()
    if config.batch_size % world:
        raise ValueError(f"batch_size {config.batch_size} must be divisible by the world size {world}")
    local = config.batch_size // world

    data = digits_images(config.size, subset="train", device=device)
    network = config.build_network(generator).to(device)
    trained: nn.Module = network
    if distributed:
        from torch.nn.parallel import DistributedDataParallel

        on_one_gpu = device.type == "cuda" and device.index is not None
        trained = DistributedDataParallel(network, device_ids=[device.index] if on_one_gpu else None)
    if config.compile:
        trained = torch.compile(trained)
    model: nn.Module = EDMPrecond(trained, config.sigma_data) if config.objective == "edm" else trained
    ema = copy.deepcopy(network).eval().requires_grad_(False) if config.ema_decay is not None else None
    optimizer = torch.optim.Adam(network.parameters(), lr=config.lr)

    def lr_factor(step: int) -> float:
        warm = min(1.0, (step + 1) / config.warmup_steps) if config.warmup_steps else 1.0
        decay = 0.5 * (1 + math.cos(math.pi * step / config.steps)) if config.cosine_decay else 1.0
        return warm * decay

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    losses = torch.zeros(config.steps, device=device)
    mine = slice(rank * local, (rank + 1) * local)
    shape = (config.batch_size, 1, config.size, config.size)
    network.train()
    start = time.perf_counter()
    window_start, steps_done = start, 0
    for step in range(config.steps):
        index = torch.randint(data.shape[0], (config.batch_size,), generator=generator, device=device)
        noise = torch.randn(shape, generator=generator, device=device)
        level = torch.randn(config.batch_size, generator=generator, device=device)
        x0, noise, level = data[index][mine], noise[mine], level[mine]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.amp_bf16):
            if config.objective == "edm":
                loss = edm_loss(model, x0, torch.exp(config.p_mean + config.p_std * level), noise)  # type: ignore[arg-type]
            else:
                loss = rectified_flow_loss(model, x0, torch.special.ndtr(level), noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if ema is not None:
            torch._foreach_lerp_(list(ema.parameters()), list(network.parameters()), 1.0 - config.ema_decay)
        losses[step] = loss.detach()
        steps_done = step + 1
        if config.log_every and steps_done % config.log_every == 0 and rank == 0:
            now = time.perf_counter()
            recent = float(losses[steps_done - config.log_every:steps_done].mean())
            rate = config.log_every * config.batch_size / (now - window_start)
            print(f"step {steps_done:>6d}  loss {recent:.4f}  {rate:,.0f} images/s  {now - start:.0f} s", flush=True)
            window_start = now
        if config.time_limit_s is not None and steps_done % 25 == 0 and _out_of_time(start, config.time_limit_s, distributed, device):
            break
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    losses = losses[:steps_done]
    if distributed:
        import torch.distributed as dist

        dist.all_reduce(losses)
        losses /= world
    final = (ema if ema is not None else network).eval()
    if config.objective == "edm":
        denoiser: nn.Module = EDMPrecond(final, config.sigma_data).eval()
        velocity = None
    else:
        denoiser, velocity = denoiser_from_velocity(final, LinearPath()).eval(), final
    return DigitsFit(denoiser, losses.double().cpu().numpy(), final, velocity, config, steps_done, seconds,
                     steps_done * config.batch_size / seconds, world)


def _out_of_time(start: float, limit: float, distributed: bool, device: torch.device) -> bool:
    """Rank 0's clock decides for every rank, so that all ranks stop after the same step."""
    flag = torch.tensor([float(time.perf_counter() - start > limit)], device=device)
    if distributed:
        import torch.distributed as dist

        dist.broadcast(flag, src=0)
    return bool(flag.item())


# --------------------------------------------------------------------------- sampling and evaluation
class _ClampedLinearVelocity(nn.Module):
    """The rectified-flow velocity of a denoiser, with the noise level capped at ``SIGMA_MAX``.

    :func:`~mlnotes.diffusion.common.velocity_model_from_denoiser` on
    :class:`~mlnotes.diffusion.common.LinearPath` is exact but needs ``sigma = t / (1 - t)``,
    infinite at ``t = 1`` where rectified-flow Euler starts: the first evaluation uses
    ``t = SIGMA_MAX / (1 + SIGMA_MAX)`` (``sigma = 80``, the top of EDM's range) instead.
    """

    def __init__(self, denoiser: nn.Module) -> None:
        super().__init__()
        self.velocity = velocity_model_from_denoiser(denoiser, LinearPath())
        self.t_max = SIGMA_MAX / (1.0 + SIGMA_MAX)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.velocity(x, t.clamp(max=self.t_max))


def _steps_for(sampler: str, nfe: int) -> int:
    """Steps that spend at most `nfe` evaluations (Heun: ``2 n - 1``)."""
    return (nfe + 1) // 2 if sampler == "heun" else nfe


def sample_digits(
    denoiser: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    sampler: str,
    nfe: int,
    n: int,
    generator: torch.Generator,
    *,
    size: int = 8,
    velocity_model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    batch_size: int = 2048,
    amp_bf16: bool = False,
) -> tuple[torch.Tensor, int]:
    """Draw `n` digit images with one of the part's samplers, clamped to ``[-1, 1]``.

    ``"ddim"``: :func:`~mlnotes.diffusion.common.ddim` (``eta = 0``) on DDPM's 1000-step
    schedule, `nfe` steps; ``"euler"`` and ``"heun"``: :func:`~mlnotes.diffusion.common.euler_ode`
    and :func:`~mlnotes.diffusion.common.heun_ode` on :class:`~mlnotes.diffusion.common.EDMPath`
    with EDM's noise levels (``sigma`` from 80 to 0.002, ``rho = 7``), `nfe` steps for Euler
    and ``(nfe + 1) // 2`` for Heun (``2 n - 1`` evaluations); ``"rectified_flow"``:
    :func:`~mlnotes.diffusion.common.rectified_flow_euler` with `nfe` steps, on
    `velocity_model` when given (a network trained as rectified flow), else on the
    denoiser's exact velocity on :class:`~mlnotes.diffusion.common.LinearPath` (its noise
    level capped at 80 at ``t = 1``, where the conversion divides by zero).

    Parameters
    ----------
    denoiser : callable
        ``D(x_hat, sigma)`` on images ``(batch, 1, size, size)``.
    sampler : {"ddim", "euler", "heun", "rectified_flow"}
    nfe : int
        Network evaluations allowed per image.
    n : int
        Number of images.
    generator : torch.Generator
        Initial and per-step noise; its device is where sampling runs. Chunks of
        `batch_size` are drawn one after another from it.
    size : int, default 8
    velocity_model : callable, optional
        ``v(x, t)`` for the rectified-flow sampler.
    batch_size : int, default 2048
        Images per sampler call (memory).
    amp_bf16 : bool, default False
        Run the network under bf16 autocast.

    Returns
    -------
    images : torch.Tensor, shape (n, 1, size, size), float32, on the generator's device
    nfe_used : int
        Evaluations per image actually spent (Heun: odd).
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    nfe, n, batch_size = _positive_int(nfe, "nfe"), _positive_int(n, "n"), _positive_int(batch_size, "batch_size")
    size = _check_size(size)
    _check_generator(generator)
    if not callable(denoiser):
        raise TypeError(f"denoiser must be callable as denoiser(x, sigma), got {type(denoiser).__name__}")
    if sampler == "ddim" and nfe > 1000:
        raise ValueError(f"DDIM on DDPM's 1000-step schedule takes at most 1000 steps, got nfe={nfe}")
    steps = _steps_for(sampler, nfe)
    velocity = velocity_model if velocity_model is not None else _ClampedLinearVelocity(denoiser)  # type: ignore[arg-type]
    chunks, used = [], 0
    with torch.no_grad(), torch.autocast(generator.device.type, dtype=torch.bfloat16, enabled=amp_bf16):
        for start in range(0, n, batch_size):
            shape = (min(batch_size, n - start), 1, size, size)
            if sampler == "ddim":
                out = ddim(denoiser, DiscreteVPPath(1000), steps, shape, generator)
            elif sampler == "euler":
                out = euler_ode(denoiser, EDMPath(SIGMA_MIN, SIGMA_MAX), steps, shape, generator)
            elif sampler == "heun":
                out = heun_ode(denoiser, EDMPath(SIGMA_MIN, SIGMA_MAX), steps, shape, generator)
            else:
                out = rectified_flow_euler(velocity, steps, shape, generator)
            chunks.append(out.x.float().clamp(-1.0, 1.0))
            used = out.nfe
    return torch.cat(chunks), used


class SamplerRow(NamedTuple):
    """One line of :class:`DigitsEvaluation`: a sampler at a number of evaluations (or a set of real images).

    ``frechet``: Fréchet distance of the images' classifier features to the reference
    digits; ``confidence``: the classifier's mean largest class probability;
    ``class_counts``: how many images it assigns to each digit 0-9, shape ``(10,)``;
    ``class_entropy``: entropy of those class frequencies divided by ``ln 10`` (1 when
    every digit is equally frequent); ``nearest_train``: median over the images of the
    distance (root mean square over the 8x8 pixels) to the nearest training digit, small
    when a model copies its training images.
    """

    sampler: str
    nfe: int
    frechet: float
    confidence: float
    class_counts: np.ndarray
    class_entropy: float
    nearest_train: float


def _class_entropy(counts: np.ndarray) -> float:
    p = counts / counts.sum()
    p = p[p > 0]
    return float(-(p * np.log(p)).sum() / math.log(10))


def _as_8x8(images: torch.Tensor) -> torch.Tensor:
    """``(n, 64)`` float32 CPU pixels, larger images averaged over blocks as the classifier does."""
    images = images.detach().to("cpu", torch.float32)
    if images.shape[-1] != 8:
        images = F.avg_pool2d(images, images.shape[-1] // 8)
    return images.flatten(1)


def _nearest_distance(images: torch.Tensor, train: torch.Tensor) -> float:
    """Median over `images` of the RMS pixel distance to the nearest row of `train` (both ``(n, 64)``)."""
    return float(torch.cdist(images, train).min(dim=1).values.median()) / 8.0


class _Scorer:
    """The reference features and the training digits, to score sets of images against."""

    def __init__(self, classifier: DigitsClassifier, reference: torch.Tensor, train: torch.Tensor) -> None:
        self.classifier = classifier
        self.reference_features = classifier.features(reference)
        self.train = _as_8x8(train)

    def row(self, name: str, nfe: int, images: torch.Tensor, *, frechet: bool = True) -> SamplerRow:
        probs = self.classifier.predict_proba(images)
        counts = np.bincount(probs.argmax(axis=1), minlength=10)
        distance = frechet_distance(self.classifier.features(images), self.reference_features) if frechet else math.nan
        return SamplerRow(name, nfe, distance,
                          float(probs.max(axis=1).mean()), counts, _class_entropy(counts),
                          _nearest_distance(_as_8x8(images), self.train))


class DigitsEvaluation(NamedTuple):
    """What :func:`evaluate_samplers` returns.

    Attributes
    ----------
    rows : list of SamplerRow
        Every sampler at every number of evaluations.
    floor : mlnotes.metrics.NoiseFloor
        Fréchet distance of ``floor_n`` real digits of the training half to the reference
        (over repeats): what real digits, or a model that copies its training images, reach.
    real : SamplerRow
        The first ``floor_n`` training digits, scored like samples (their ``nearest_train`` is 0).
    novel : SamplerRow
        The first ``floor_n`` reference digits, real digits the model never saw: their
        ``nearest_train`` is the typical distance of a new digit to the training set. They
        are part of the reference, so their ``frechet`` is NaN.
    noise : SamplerRow
        Pure Gaussian noise clamped to ``[-1, 1]``: what no training at all gives.
    n_samples, floor_n : int
        Images per sampler, and per real set of the floor (``min(n_samples, 898)``).
    """

    rows: list[SamplerRow]
    floor: NoiseFloor
    real: SamplerRow
    novel: SamplerRow
    noise: SamplerRow
    n_samples: int
    floor_n: int

    def frechet(self, sampler: str) -> dict[int, float]:
        """``{nfe: Fréchet distance}`` of one sampler."""
        return {row.nfe: row.frechet for row in self.rows if row.sampler == sampler}

    def row(self, sampler: str, nfe: int) -> SamplerRow:
        """The row of `sampler` at `nfe` evaluations (Heun's budgets are odd: 9, 19, 35, ...).

        Raises :class:`KeyError` listing the rows there are when there is none.
        """
        for row in self.rows:
            if row.sampler == sampler and row.nfe == nfe:
                return row
        raise KeyError(f"no row for sampler {sampler!r} at nfe={nfe}; rows: {[(r.sampler, r.nfe) for r in self.rows]}")

    def nearest_train_ratio(self, sampler: str, nfe: int) -> float:
        """``nearest_train`` of a row over that of real digits the model never saw.

        About 1 (or above, for blurry samples) when the samples are new digits; near 0 when
        they are copies of training digits.
        """
        return self.row(sampler, nfe).nearest_train / self.novel.nearest_train

    def table(self) -> str:
        """The evaluation as a text table: one line per sampler and NFE, then real digits and noise."""
        lines = [f"{'sampler':<30} {'NFE':>4} {'Frechet':>9} {'confidence':>10} {'class entropy':>13} {'nearest train':>13}"]
        for row in [*self.rows, self.real, self.novel, self.noise]:
            nfe = f"{row.nfe:>4d}" if row.nfe else "   -"
            frechet = f"{row.frechet:>9.3f}" if math.isfinite(row.frechet) else f"{'-':>9}"  # the novel digits are not scored (see ``novel``)
            lines.append(f"{_SAMPLER_NAMES.get(row.sampler, row.sampler):<30} {nfe} {frechet} "
                         f"{row.confidence:>10.3f} {row.class_entropy:>13.3f} {row.nearest_train:>13.3f}")
        lines.append(f"noise floor (real digits, n={self.floor_n}): {self.floor.mean:.3f} +- {self.floor.std:.3f}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict of the evaluation."""
        def row_dict(row: SamplerRow) -> dict[str, object]:
            return {**row._asdict(), "class_counts": row.class_counts.tolist()}

        return {"rows": [row_dict(r) for r in self.rows], "real": row_dict(self.real), "novel": row_dict(self.novel),
                "noise": row_dict(self.noise), "floor_mean": self.floor.mean, "floor_std": self.floor.std,
                "floor_values": self.floor.values.tolist(), "n_samples": self.n_samples, "floor_n": self.floor_n}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DigitsEvaluation:
        """The evaluation back from :meth:`to_dict`'s dict (for results stored as JSON, e.g. by the GPU benchmark).

        A NaN Fréchet distance (the ``novel`` row) survives as JSON's ``NaN``. Raises
        :class:`ValueError` naming the missing keys when `data` (or one of its rows) lacks any.
        """
        def require(entry: Mapping[str, Any], keys: tuple[str, ...], where: str) -> None:
            missing = [key for key in keys if key not in entry]
            if missing:
                raise ValueError(f"DigitsEvaluation.from_dict: {where} lacks {missing}; expected the dict of to_dict()")

        row_keys = SamplerRow._fields
        require(data, ("rows", "real", "novel", "noise", "floor_mean", "floor_std", "floor_values", "n_samples", "floor_n"), "data")

        def row(entry: Mapping[str, Any]) -> SamplerRow:
            require(entry, row_keys, f"row {entry.get('sampler', '?')!r}")
            return SamplerRow(str(entry["sampler"]), int(entry["nfe"]), float(entry["frechet"]), float(entry["confidence"]),
                              np.asarray(entry["class_counts"], dtype=np.int64), float(entry["class_entropy"]),
                              float(entry["nearest_train"]))

        floor = NoiseFloor(float(data["floor_mean"]), float(data["floor_std"]), np.asarray(data["floor_values"], dtype=np.float64))
        return cls([row(r) for r in data["rows"]], floor, row(data["real"]), row(data["novel"]), row(data["noise"]),
                   int(data["n_samples"]), int(data["floor_n"]))


def evaluate_samplers(
    denoiser: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    nfes: Sequence[int],
    n_samples: int,
    classifier: DigitsClassifier,
    generator: torch.Generator,
    *,
    size: int = 8,
    samplers: Sequence[str] = SAMPLERS,
    velocity_model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    floor_repeats: int = 5,
    batch_size: int = 2048,
    amp_bf16: bool = False,
) -> DigitsEvaluation:
    """Fréchet distance, classifier confidence and class histogram against NFE for each sampler.

    With the split of :func:`mlnotes.metrics.digits_split` (the denoiser trained on the
    898 digits of the training half), every sampler at every NFE draws `n_samples`
    images (:func:`sample_digits`; every run starts from the same seed, drawn once from
    `generator`, so that samplers are compared on the same initial noise) and is scored
    by the Fréchet distance of its classifier features to the 899 reference digits, the
    classifier's confidence, the histogram of its classes and the distance to the nearest
    training digit. Beside them: the noise floor (:func:`mlnotes.metrics.digits_noise_floor`,
    ``floor_n = min(n_samples, 898)`` training digits against the same reference, over
    `floor_repeats` random subsets when ``floor_n < 898``), which a perfect sampler would
    match at ``n_samples = floor_n``; the same numbers for real digits the model never
    saw; and for pure Gaussian noise, clamped like the samples.

    Parameters
    ----------
    denoiser : callable
        ``D(x_hat, sigma)`` on images ``(batch, 1, size, size)``, on the generator's device.
    nfes : sequence of int
        Evaluation budgets; Heun uses ``2 n - 1 <= nfe``.
    n_samples : int
        Images per sampler and budget, at least 2.
    classifier : DigitsClassifier
        From :func:`mlnotes.metrics.fit_digits_classifier`.
    generator : torch.Generator
        Sampling noise (its device is where sampling runs) and the floor's subsets.
    size : int, default 8
    samplers : sequence of str, default all of :data:`SAMPLERS`
    velocity_model : callable, optional
        A rectified-flow network for the ``"rectified_flow"`` column (else the denoiser's exact velocity).
    floor_repeats : int, default 5
    batch_size : int, default 2048
    amp_bf16 : bool, default False

    Returns
    -------
    DigitsEvaluation
    """
    if not isinstance(classifier, DigitsClassifier):
        raise TypeError(f"classifier must be a mlnotes.metrics.DigitsClassifier, got {type(classifier).__name__}")
    _check_generator(generator)
    n_samples, floor_repeats = _positive_int(n_samples, "n_samples"), _positive_int(floor_repeats, "floor_repeats")
    if n_samples < 2:
        raise ValueError(f"n_samples must be >= 2 (a covariance needs two samples), got {n_samples}")
    if isinstance(nfes, (str, bytes)) or not isinstance(nfes, Sequence) or len(nfes) == 0:
        raise ValueError(f"nfes must be a non-empty sequence of ints, got {nfes!r}")
    nfes = [_positive_int(v, "nfes[i]") for v in nfes]
    if isinstance(samplers, str) or len(samplers) == 0 or any(s not in SAMPLERS for s in samplers):
        raise ValueError(f"samplers must be a non-empty sequence drawn from {SAMPLERS}, got {samplers!r}")
    size = _check_size(size)
    real = digits_images(size)
    reference, train = digits_images(size, subset="reference"), digits_images(size, subset="train")
    scorer = _Scorer(classifier, reference, train)
    floor_n = min(n_samples, train.shape[0])
    floor_seed = int(torch.randint(2**31, (1,), generator=generator, device=generator.device))
    floor = digits_noise_floor(classifier, floor_n, images=real, repeats=floor_repeats, rng=floor_seed)
    seed = int(torch.randint(2**62, (1,), generator=generator, device=generator.device))
    noise = torch.randn((n_samples, 1, size, size), generator=torch.Generator().manual_seed(seed)).clamp(-1, 1)
    rows = []
    for sampler in samplers:
        for nfe in nfes:
            run = torch.Generator(generator.device).manual_seed(seed)
            images, used = sample_digits(denoiser, sampler, nfe, n_samples, run, size=size,
                                         velocity_model=velocity_model, batch_size=batch_size, amp_bf16=amp_bf16)
            rows.append(scorer.row(sampler, used, images))
    return DigitsEvaluation(rows, floor, scorer.row("real digits (training half)", 0, train[:floor_n]),
                            scorer.row("real digits (never seen)", 0, reference[:floor_n], frechet=False),
                            scorer.row("pure noise", 0, noise), n_samples, floor_n)
