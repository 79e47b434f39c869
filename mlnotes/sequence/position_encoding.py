"""Position encodings for attention: sinusoidal, learned, Shaw relative, T5 bias, ALiBi.

Self-attention is blind to order: permute the keys and values together and every
query's output stays the same. This module implements the main ways of telling it
where each token is, behind one interface, :class:`PositionEncoding`, so that one
attention function (:func:`attention_scores`, :func:`positional_attention`) and one
model (:class:`TinyAttentionModel`) run with any of them:

- absolute encodings added to the inputs: the sinusoidal encoding of Vaswani et al.,
  "Attention Is All You Need" (NeurIPS 2017), :class:`SinusoidalEncoding`, and a
  learned table of position vectors (as in BERT and GPT), :class:`LearnedEncoding`;
- relative position representations of Shaw, Uszkoreit and Vaswani, "Self-Attention
  with Relative Position Representations" (NAACL 2018): clipped relative key and
  value vectors, :class:`ShawRelativeEncoding`;
- T5's bucketed relative bias, Raffel et al., "Exploring the Limits of Transfer
  Learning with a Unified Text-to-Text Transformer" (JMLR 2020):
  :func:`t5_relative_position_bucket` and :class:`T5RelativeBias`;
- ALiBi, Press, Smith and Lewis, "Train Short, Test Long: Attention with Linear
  Biases Enables Input Length Extrapolation" (ICLR 2022): :func:`alibi_slopes` and
  :class:`ALiBi`;
- no encoding at all, :class:`NoPositionEncoding`, as the control.

RoPE (Su et al., "RoFormer", Neurocomputing 2024) has its own chapter and module,
``mlnotes.sequence.rope``; :class:`RotaryEncoding` plugs that module's
``apply_rope`` into the interface here so that the comparison includes it.

It also has the closed forms of the sinusoidal encoding's identities
(:func:`sinusoidal_dot_product`, :func:`sinusoidal_shift_matrix`), a check of
translation invariance of the attention score (:func:`score_translation_gap`), and
the extrapolation experiment of the chapter: a one-layer attention model trained on
a synthetic recall task at one length and tested on longer sequences
(:class:`ExtrapolationConfig`, :func:`make_recall_task`, :func:`train_recall_model`,
:func:`recall_accuracy`, :func:`recall_attention`).

The chapter is ``book/sequence/position_encoding.ipynb``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from mlnotes.exercises import report as _report
from mlnotes.runtime import as_generator

__all__ = [
    "SCHEMES",
    "ALiBi",
    "ExtrapolationConfig",
    "LearnedEncoding",
    "NoPositionEncoding",
    "PositionEncoding",
    "PositionalSelfAttention",
    "RecallResult",
    "RotaryEncoding",
    "ShawRelativeEncoding",
    "SinusoidalEncoding",
    "T5RelativeBias",
    "TinyAttentionModel",
    "alibi_slopes",
    "attention_scores",
    "check_alibi_exercise",
    "check_sinusoidal_exercise",
    "check_t5_bucket_exercise",
    "make_encoding",
    "make_recall_task",
    "positional_attention",
    "recall_accuracy",
    "recall_attention",
    "score_translation_gap",
    "sinusoidal_dot_product",
    "sinusoidal_encoding",
    "sinusoidal_frequencies",
    "sinusoidal_shift_matrix",
    "t5_relative_position_bucket",
    "train_recall_model",
]

#: The names :func:`make_encoding` accepts, in the order the chapter compares them.
SCHEMES: tuple[str, ...] = ("none", "sinusoidal", "learned", "shaw", "t5", "alibi", "rope")


# --------------------------------------------------------------------------- validation
def _check_int(value: object, name: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
    return int(value)


def _check_positive_float(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a positive float, got {type(value).__name__}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite float, got {value}")
    return float(value)


def _check_even_dim(dim: object) -> int:
    dim = _check_int(dim, "dim")
    if dim % 2:
        raise ValueError(f"dim must be even (sine and cosine come in pairs), got {dim}")
    return dim


def _check_positions(positions: object, name: str, length: int | None = None) -> torch.Tensor:
    """Integer positions of shape (seq_len,)."""
    if not isinstance(positions, torch.Tensor):
        raise TypeError(f"{name} must be an integer torch.Tensor of shape (seq_len,), got {type(positions).__name__}")
    if positions.is_floating_point() or positions.is_complex() or positions.dtype == torch.bool:
        raise TypeError(f"{name} must have an integer dtype, got {positions.dtype}")
    if positions.ndim != 1:
        raise ValueError(f"{name} must have shape (seq_len,), got shape {tuple(positions.shape)}")
    if length is not None and positions.shape[0] != length:
        raise ValueError(f"{name} must have length {length} (the sequence length), got {positions.shape[0]}")
    return positions


def _check_float_tensor(x: object, name: str, ndim: int, shape: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a floating-point torch.Tensor of shape {shape}, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.ndim != ndim:
        raise ValueError(f"{name} must have shape {shape}, got shape {tuple(x.shape)}")
    if x.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def _default_positions(length: int, device: torch.device) -> torch.Tensor:
    return torch.arange(length, device=device)


# --------------------------------------------------------------------------- sinusoidal closed forms
def sinusoidal_frequencies(
    dim: int, base: float = 10000.0, *, device: torch.device | str | None = None, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    r"""The angular frequencies :math:`\omega_i = \text{base}^{-2i/d}` of the sinusoidal encoding.

    Parameters
    ----------
    dim : int
        Model dimension :math:`d` (even).
    base : float, default 10000.0
        The base of the geometric progression of wavelengths.
    device, dtype
        Of the result.

    Returns
    -------
    torch.Tensor, shape (dim // 2,)
        :math:`\omega_0 = 1 > \omega_1 > \dots`.
    """
    dim = _check_even_dim(dim)
    base = _check_positive_float(base, "base")
    exponents = torch.arange(0, dim, 2, device=device, dtype=torch.float64) / dim
    return (base ** (-exponents)).to(dtype)


def sinusoidal_encoding(positions: torch.Tensor | int, dim: int, base: float = 10000.0, *, dtype: torch.dtype | None = None) -> torch.Tensor:
    r"""Sinusoidal position vectors of Vaswani et al. (2017).

    .. math::
        \mathrm{PE}(m)_{2i} = \sin(m\,\omega_i), \qquad
        \mathrm{PE}(m)_{2i+1} = \cos(m\,\omega_i), \qquad \omega_i = \text{base}^{-2i/d}.

    Parameters
    ----------
    positions : torch.Tensor of shape (seq_len,), or int
        The positions (integer or real); an int ``n`` means ``0, 1, ..., n - 1``.
    dim : int
        Model dimension :math:`d` (even).
    base : float, default 10000.0
        Base of the wavelengths.
    dtype : torch.dtype, optional
        Of the result; default: ``float32``, or the dtype of floating `positions`.
        The angles are computed in float64 first, so that large positions keep their
        precision.

    Returns
    -------
    torch.Tensor, shape (seq_len, dim)
        Row ``m`` is :math:`\mathrm{PE}(m)`; sines in the even columns, cosines in the odd.

    Raises
    ------
    TypeError
        If `positions` is neither an int nor a tensor.
    ValueError
        If `positions` is not 1-D or `dim` is not a positive even int.
    """
    if isinstance(positions, (int, np.integer)) and not isinstance(positions, bool):
        positions = torch.arange(_check_int(positions, "positions"))
    if not isinstance(positions, torch.Tensor):
        raise TypeError(f"positions must be an int or a torch.Tensor of shape (seq_len,), got {type(positions).__name__}")
    if positions.ndim != 1:
        raise ValueError(f"positions must have shape (seq_len,), got shape {tuple(positions.shape)}")
    if dtype is None:
        dtype = positions.dtype if positions.is_floating_point() else torch.float32
    omega = sinusoidal_frequencies(dim, base, device=positions.device)
    angles = positions.to(torch.float64)[:, None] * omega[None, :]
    encoding = torch.stack([torch.sin(angles), torch.cos(angles)], dim=-1).reshape(len(positions), -1)
    return encoding.to(dtype)


def sinusoidal_dot_product(offset: torch.Tensor | float, dim: int, base: float = 10000.0) -> torch.Tensor:
    r"""The closed form of :math:`\mathrm{PE}(m) \cdot \mathrm{PE}(n)` as a function of :math:`m - n`.

    .. math::
        \mathrm{PE}(m)\cdot\mathrm{PE}(n) = \sum_i \big[\sin m\omega_i \sin n\omega_i
        + \cos m\omega_i \cos n\omega_i\big] = \sum_i \cos\big((m - n)\,\omega_i\big).

    Parameters
    ----------
    offset : torch.Tensor of any shape, or float
        :math:`m - n`.
    dim, base
        As in :func:`sinusoidal_encoding`.

    Returns
    -------
    torch.Tensor, the shape of `offset`, float64
    """
    offset = torch.as_tensor(offset, dtype=torch.float64)
    omega = sinusoidal_frequencies(dim, base, device=offset.device)
    return torch.cos(offset[..., None] * omega).sum(-1)


def sinusoidal_shift_matrix(shift: float, dim: int, base: float = 10000.0) -> torch.Tensor:
    r"""The matrix :math:`M_k` with :math:`\mathrm{PE}(m + k) = M_k\, \mathrm{PE}(m)` for every :math:`m`.

    Block diagonal, one 2x2 rotation per frequency (from the angle-sum formulas):

    .. math::
        \begin{pmatrix} \sin (m+k)\omega \\ \cos (m+k)\omega \end{pmatrix}
        = \begin{pmatrix} \cos k\omega & \sin k\omega \\ -\sin k\omega & \cos k\omega \end{pmatrix}
          \begin{pmatrix} \sin m\omega \\ \cos m\omega \end{pmatrix}.

    Parameters
    ----------
    shift : float
        :math:`k`.
    dim, base
        As in :func:`sinusoidal_encoding`.

    Returns
    -------
    torch.Tensor, shape (dim, dim), float64
        An orthogonal matrix that does not depend on :math:`m`.
    """
    if isinstance(shift, bool) or not isinstance(shift, (int, float, np.integer, np.floating)):
        raise TypeError(f"shift must be a number, got {type(shift).__name__}")
    omega = sinusoidal_frequencies(dim, base)
    cos, sin = torch.cos(shift * omega), torch.sin(shift * omega)
    blocks = [torch.stack([torch.stack([c, s]), torch.stack([-s, c])]) for c, s in zip(cos, sin)]
    return torch.block_diag(*blocks)


# --------------------------------------------------------------------------- T5 buckets and ALiBi slopes
def t5_relative_position_bucket(
    relative_position: torch.Tensor, *, bidirectional: bool = True, num_buckets: int = 32, max_distance: int = 128
) -> torch.Tensor:
    r"""T5's bucket of each relative position ``key_position - query_position``.

    Distances below ``max_exact = num_buckets // 2`` (per direction) get a bucket
    each; larger ones share logarithmically spaced buckets up to `max_distance`, and
    everything beyond falls into the last bucket. Bidirectional: half the buckets
    for keys before the query, half for keys after it. Causal
    (``bidirectional=False``): keys after the query (positive relative positions)
    share bucket 0 with distance 0, since a causal mask hides them anyway.

    .. math::
        b(n) = \begin{cases} n, & n < n_e,\\
        \min\Big(B - 1,\; n_e + \Big\lfloor \dfrac{\log(n / n_e)}{\log(D / n_e)}\,(B - n_e)\Big\rfloor\Big), & n \ge n_e,
        \end{cases}

    with :math:`n` the distance, :math:`B` the buckets per direction, :math:`n_e = B/2`
    and :math:`D` = `max_distance`. The logarithm is taken in float32, as in T5's
    code, so the buckets are those of the published models.

    Parameters
    ----------
    relative_position : torch.Tensor of int, any shape
        ``key_position - query_position``.
    bidirectional : bool, default True
        Whether keys on both sides of the query get their own buckets.
    num_buckets : int, default 32
        Total number of buckets (both directions together when bidirectional).
    max_distance : int, default 128
        Distance from which on all positions share the last bucket.

    Returns
    -------
    torch.Tensor of int64, the shape of `relative_position`
        Buckets in ``[0, num_buckets)``.

    Raises
    ------
    TypeError
        If `relative_position` is not an integer tensor.
    ValueError
        If the bucket counts leave no logarithmic buckets, or `max_distance` is not
        above the exact range.
    """
    if not isinstance(relative_position, torch.Tensor) or relative_position.is_floating_point() or relative_position.dtype == torch.bool:
        raise TypeError("relative_position must be an integer torch.Tensor")
    num_buckets = _check_int(num_buckets, "num_buckets", minimum=4 if bidirectional else 2)
    max_distance = _check_int(max_distance, "max_distance")
    relative_position = relative_position.long()
    buckets = torch.zeros_like(relative_position)
    if bidirectional:
        num_buckets //= 2
        buckets = buckets + (relative_position > 0).long() * num_buckets
        distance = relative_position.abs()
    else:
        distance = (-relative_position).clamp(min=0)
    max_exact = num_buckets // 2
    if max_distance <= max_exact:
        raise ValueError(f"max_distance must exceed the exact range {max_exact}, got {max_distance}")
    is_small = distance < max_exact
    # clamp(min=1) only keeps log() finite where is_small discards the value anyway
    log_ratio = torch.log(distance.clamp(min=1).float() / max_exact) / math.log(max_distance / max_exact)
    if_large = max_exact + (log_ratio * (num_buckets - max_exact)).long()
    if_large = if_large.clamp(max=num_buckets - 1)
    return buckets + torch.where(is_small, distance, if_large)


def alibi_slopes(num_heads: int) -> list[float]:
    r"""ALiBi's head slopes (Press et al. 2022).

    For :math:`h` a power of two, the geometric sequence
    :math:`m_j = 2^{-8j/h}`, :math:`j = 1, \dots, h` (for 8 heads
    :math:`\tfrac12, \tfrac14, \dots, \tfrac1{256}`). Otherwise, with :math:`p` the
    largest power of two below :math:`h`: the :math:`p` slopes for :math:`p` heads,
    then every other slope of the :math:`2p`-head sequence (those that interleave
    with the first :math:`p`), as many as are missing.

    Parameters
    ----------
    num_heads : int
        Number of attention heads.

    Returns
    -------
    list of float, length `num_heads`
    """
    num_heads = _check_int(num_heads, "num_heads")
    if num_heads & (num_heads - 1) == 0:
        start = 2.0 ** (-8.0 / num_heads)
        return [start ** (j + 1) for j in range(num_heads)]
    power = 2 ** math.floor(math.log2(num_heads))
    return alibi_slopes(power) + alibi_slopes(2 * power)[0::2][: num_heads - power]


# --------------------------------------------------------------------------- the interface
class PositionEncoding(nn.Module):
    """Where a position encoding acts on attention; every scheme overrides what it needs.

    Three hooks, each the identity here:

    - :meth:`encode_inputs`: absolute encodings add a vector to each input;
    - :meth:`score_bias`: relative schemes add a term to the attention logits;
    - :meth:`value_bias`: Shaw's relative values add a term to the attention output.

    A scheme that rotates queries and keys (RoPE) would override a fourth hook,
    :meth:`transform_qk`.
    """

    #: Whether the scheme adds vectors to the inputs (absolute) or acts in the attention (relative).
    absolute: bool = False

    def encode_inputs(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Return the inputs with their positions encoded; `x` (batch, seq_len, dim), positions (seq_len,)."""
        return x

    def transform_qk(
        self, q: torch.Tensor, k: torch.Tensor, q_positions: torch.Tensor, k_positions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return queries and keys, each (batch, heads, len, head_dim), before their dot products."""
        return q, k

    def score_bias(self, q: torch.Tensor, q_positions: torch.Tensor, k_positions: torch.Tensor) -> torch.Tensor | None:
        """A term added to the scaled logits, broadcastable to (batch, heads, q_len, k_len), or None."""
        return None

    def value_bias(self, weights: torch.Tensor, q_positions: torch.Tensor, k_positions: torch.Tensor) -> torch.Tensor | None:
        """A term added to the attention output (batch, heads, q_len, head_dim), or None."""
        return None


class NoPositionEncoding(PositionEncoding):
    """No position information at all (the control; "NoPE")."""


class SinusoidalEncoding(PositionEncoding):
    """Fixed sinusoidal vectors added to the inputs (Vaswani et al. 2017).

    Parameters
    ----------
    dim : int
        Model dimension (even).
    base : float, default 10000.0
        Base of the wavelengths.
    """

    absolute = True

    def __init__(self, dim: int, base: float = 10000.0) -> None:
        super().__init__()
        self.dim = _check_even_dim(dim)
        self.base = _check_positive_float(base, "base")

    def encode_inputs(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.dim:
            raise ValueError(f"x must have last dimension {self.dim}, got {x.shape[-1]}")
        return x + sinusoidal_encoding(positions, self.dim, self.base, dtype=x.dtype).to(x.device)


class LearnedEncoding(PositionEncoding):
    """A trained vector per position, added to the inputs (BERT, GPT-2).

    It has exactly `max_len` vectors: positions ``>= max_len`` have none, and
    :meth:`encode_inputs` raises for them.

    Parameters
    ----------
    max_len : int
        Number of positions, ``0 .. max_len - 1``.
    dim : int
        Model dimension.
    init_std : float, default 1.0
        Standard deviation of the normal initialisation.
    """

    absolute = True

    def __init__(self, max_len: int, dim: int, init_std: float = 1.0) -> None:
        super().__init__()
        self.max_len = _check_int(max_len, "max_len")
        self.dim = _check_int(dim, "dim")
        self.table = nn.Parameter(torch.randn(self.max_len, self.dim) * _check_positive_float(init_std, "init_std"))

    def encode_inputs(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.dim:
            raise ValueError(f"x must have last dimension {self.dim}, got {x.shape[-1]}")
        if len(positions) and (int(positions.min()) < 0 or int(positions.max()) >= self.max_len):
            raise ValueError(
                f"positions must lie in [0, {self.max_len}) for a learned table of {self.max_len} positions, "
                f"got positions from {int(positions.min())} to {int(positions.max())}"
            )
        return x + self.table[positions].to(x.dtype)


class ShawRelativeEncoding(PositionEncoding):
    r"""Relative position representations of Shaw, Uszkoreit and Vaswani (2018).

    One trained vector per clipped relative distance, for keys and for values,
    shared by all heads (as in the paper):

    .. math::
        e_{ij} = \frac{q_i \cdot (k_j + a^K_{ij})}{\sqrt{d_h}}, \qquad
        z_i = \sum_j \alpha_{ij}\,(v_j + a^V_{ij}), \qquad
        a^{K,V}_{ij} = w^{K,V}_{\mathrm{clip}(j - i,\, -K,\, K)}.

    Parameters
    ----------
    head_dim : int
        :math:`d_h`, the size of each head's queries, keys and values.
    max_relative_position : int, default 16
        :math:`K`: distances beyond it share the vector of distance :math:`\pm K`.
    values : bool, default True
        Whether to add the relative value vectors :math:`a^V` too.
    init_std : float, default 0.5
        Standard deviation of the normal initialisation of :math:`w^K, w^V`.
    """

    def __init__(self, head_dim: int, max_relative_position: int = 16, values: bool = True, init_std: float = 0.5) -> None:
        super().__init__()
        self.head_dim = _check_int(head_dim, "head_dim")
        self.max_relative_position = _check_int(max_relative_position, "max_relative_position")
        init_std = _check_positive_float(init_std, "init_std")
        size = 2 * self.max_relative_position + 1
        self.key_table = nn.Parameter(torch.randn(size, self.head_dim) * init_std)
        self.value_table = nn.Parameter(torch.randn(size, self.head_dim) * init_std) if values else None

    def relative_index(self, q_positions: torch.Tensor, k_positions: torch.Tensor) -> torch.Tensor:
        """Row of the tables for each (query, key) pair, shape (q_len, k_len)."""
        relative = k_positions[None, :] - q_positions[:, None]
        K = self.max_relative_position
        return relative.clamp(-K, K) + K

    def score_bias(self, q: torch.Tensor, q_positions: torch.Tensor, k_positions: torch.Tensor) -> torch.Tensor:
        a_k = self.key_table[self.relative_index(q_positions, k_positions)].to(q.dtype)  # (q_len, k_len, head_dim)
        return torch.einsum("bhqd,qkd->bhqk", q, a_k) / math.sqrt(q.shape[-1])

    def value_bias(self, weights: torch.Tensor, q_positions: torch.Tensor, k_positions: torch.Tensor) -> torch.Tensor | None:
        if self.value_table is None:
            return None
        a_v = self.value_table[self.relative_index(q_positions, k_positions)].to(weights.dtype)
        return torch.einsum("bhqk,qkd->bhqd", weights, a_v)


class T5RelativeBias(PositionEncoding):
    """T5's relative attention bias: one trained scalar per (bucket, head) (Raffel et al. 2020).

    Parameters
    ----------
    num_heads : int
        Number of attention heads.
    num_buckets : int, default 32
        Buckets of :func:`t5_relative_position_bucket`.
    max_distance : int, default 128
        Distance from which on all positions share the last bucket.
    bidirectional : bool, default True
        False for causal (decoder) attention.
    init_std : float, default 0.5
        Standard deviation of the normal initialisation of the biases.
    """

    def __init__(
        self, num_heads: int, num_buckets: int = 32, max_distance: int = 128, bidirectional: bool = True, init_std: float = 0.5
    ) -> None:
        super().__init__()
        self.num_heads = _check_int(num_heads, "num_heads")
        self.num_buckets = _check_int(num_buckets, "num_buckets", minimum=2)
        self.max_distance = _check_int(max_distance, "max_distance")
        self.bidirectional = bool(bidirectional)
        t5_relative_position_bucket(torch.zeros(1, dtype=torch.long), bidirectional=self.bidirectional,
                                    num_buckets=self.num_buckets, max_distance=self.max_distance)  # validates the bucket counts
        self.bias = nn.Parameter(torch.randn(self.num_buckets, self.num_heads) * _check_positive_float(init_std, "init_std"))

    def buckets(self, q_positions: torch.Tensor, k_positions: torch.Tensor) -> torch.Tensor:
        """Bucket of each (query, key) pair, shape (q_len, k_len)."""
        relative = k_positions[None, :] - q_positions[:, None]
        return t5_relative_position_bucket(
            relative, bidirectional=self.bidirectional, num_buckets=self.num_buckets, max_distance=self.max_distance
        )

    def score_bias(self, q: torch.Tensor, q_positions: torch.Tensor, k_positions: torch.Tensor) -> torch.Tensor:
        if q.shape[1] != self.num_heads:
            raise ValueError(f"q must have {self.num_heads} heads, got {q.shape[1]}")
        bias = self.bias[self.buckets(q_positions, k_positions)]  # (q_len, k_len, heads)
        return bias.permute(2, 0, 1).unsqueeze(0).to(q.dtype)


class ALiBi(PositionEncoding):
    r"""Attention with linear biases (Press et al. 2022): :math:`-m_h\,|i - j|` added to head :math:`h`'s logits.

    Nothing is trained; the slopes :math:`m_h` are :func:`alibi_slopes`. With a
    causal mask only :math:`j \le i` remains and the bias is the paper's
    :math:`-m_h (i - j)`; without one, this symmetric form is the usual extension.

    Parameters
    ----------
    num_heads : int
        Number of attention heads.
    """

    def __init__(self, num_heads: int) -> None:
        super().__init__()
        self.num_heads = _check_int(num_heads, "num_heads")
        self.register_buffer("slopes", torch.tensor(alibi_slopes(self.num_heads), dtype=torch.float64), persistent=False)

    def score_bias(self, q: torch.Tensor, q_positions: torch.Tensor, k_positions: torch.Tensor) -> torch.Tensor:
        if q.shape[1] != self.num_heads:
            raise ValueError(f"q must have {self.num_heads} heads, got {q.shape[1]}")
        distance = (k_positions[None, :] - q_positions[:, None]).abs().to(torch.float64)
        bias = -self.slopes.to(distance.device)[:, None, None] * distance  # (heads, q_len, k_len)
        return bias.unsqueeze(0).to(q.dtype)


class RotaryEncoding(PositionEncoding):
    r"""RoPE (Su et al. 2024) behind this interface: queries and keys rotated before their dot product.

    The rotation is :func:`mlnotes.sequence.rope.apply_rope` of the RoPE chapter
    (``layout="half"``), not a second implementation: query :math:`m` and key
    :math:`n` are rotated by angles :math:`m\theta_i` and :math:`n\theta_i`, so their
    dot product depends on :math:`m - n` only.

    Parameters
    ----------
    base : float, default 10000.0
        The frequency base.
    """

    def __init__(self, base: float = 10000.0) -> None:
        super().__init__()
        self.base = _check_positive_float(base, "base")

    def transform_qk(
        self, q: torch.Tensor, k: torch.Tensor, q_positions: torch.Tensor, k_positions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        from mlnotes.sequence.rope import apply_rope  # the RoPE chapter's code; imported when used

        return (apply_rope(q, q_positions, self.base, layout="half"), apply_rope(k, k_positions, self.base, layout="half"))


def make_encoding(
    name: str,
    *,
    dim: int,
    num_heads: int,
    max_len: int = 512,
    max_relative_position: int = 16,
    num_buckets: int = 32,
    max_distance: int = 128,
    bidirectional: bool = True,
) -> PositionEncoding:
    """Build one of the :data:`SCHEMES` by name.

    Parameters
    ----------
    name : {"none", "sinusoidal", "learned", "shaw", "t5", "alibi", "rope"}
        The scheme.
    dim : int
        Model dimension (for the absolute schemes).
    num_heads : int
        Number of heads; ``dim // num_heads`` is the head size (for Shaw).
    max_len : int, default 512
        Positions of the learned table.
    max_relative_position : int, default 16
        Shaw's clipping distance.
    num_buckets, max_distance, bidirectional
        T5's bucket settings.

    Returns
    -------
    PositionEncoding

    Raises
    ------
    ValueError
        If `name` is not a known scheme, or `dim` is not a multiple of `num_heads`.
    """
    if name not in SCHEMES:
        raise ValueError(f"name must be one of {SCHEMES}, got {name!r}")
    dim, num_heads = _check_int(dim, "dim"), _check_int(num_heads, "num_heads")
    if dim % num_heads:
        raise ValueError(f"dim must be a multiple of num_heads ({num_heads}), got {dim}")
    if name == "sinusoidal":
        return SinusoidalEncoding(dim)
    if name == "learned":
        return LearnedEncoding(max_len, dim)
    if name == "shaw":
        return ShawRelativeEncoding(dim // num_heads, max_relative_position)
    if name == "t5":
        return T5RelativeBias(num_heads, num_buckets, max_distance, bidirectional)
    if name == "alibi":
        return ALiBi(num_heads)
    if name == "rope":
        return RotaryEncoding()
    return NoPositionEncoding()


# --------------------------------------------------------------------------- one attention for all
def _checked_inputs(
    q: torch.Tensor,
    k: torch.Tensor,
    encoding: PositionEncoding,
    q_positions: torch.Tensor | None,
    k_positions: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate queries, keys and the encoding; return the positions (defaults filled in)."""
    if not isinstance(encoding, PositionEncoding):
        raise TypeError(f"encoding must be a PositionEncoding, got {type(encoding).__name__}")
    q = _check_float_tensor(q, "q", 4, "(batch, heads, q_len, head_dim)")
    k = _check_float_tensor(k, "k", 4, "(batch, heads, k_len, head_dim)")
    if q.shape[:2] != k.shape[:2] or q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k must agree in batch, heads and head_dim, got {tuple(q.shape)} and {tuple(k.shape)}")
    q_positions = _default_positions(q.shape[2], q.device) if q_positions is None else _check_positions(q_positions, "q_positions", q.shape[2])
    k_positions = _default_positions(k.shape[2], k.device) if k_positions is None else _check_positions(k_positions, "k_positions", k.shape[2])
    return q_positions, k_positions


def _scores(
    q: torch.Tensor, k: torch.Tensor, encoding: PositionEncoding, q_positions: torch.Tensor, k_positions: torch.Tensor
) -> torch.Tensor:
    q, k = encoding.transform_qk(q, k, q_positions, k_positions)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    bias = encoding.score_bias(q, q_positions, k_positions)
    return scores if bias is None else scores + bias


def attention_scores(
    q: torch.Tensor,
    k: torch.Tensor,
    encoding: PositionEncoding,
    q_positions: torch.Tensor | None = None,
    k_positions: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""Attention logits with a position encoding: :math:`q_i \cdot k_j / \sqrt{d_h}` plus the scheme's term.

    Absolute schemes act on the inputs before the projections (see
    :class:`PositionalSelfAttention`), so here they add nothing.

    Parameters
    ----------
    q : torch.Tensor, shape (batch, heads, q_len, head_dim)
    k : torch.Tensor, shape (batch, heads, k_len, head_dim)
    encoding : PositionEncoding
    q_positions : torch.Tensor of int, shape (q_len,), optional
        Default ``0 .. q_len - 1``.
    k_positions : torch.Tensor of int, shape (k_len,), optional
        Default ``0 .. k_len - 1``.

    Returns
    -------
    torch.Tensor, shape (batch, heads, q_len, k_len)
        The logits before masking and softmax.

    Raises
    ------
    TypeError
        If `encoding` is not a :class:`PositionEncoding`, a tensor is not floating
        point, or positions are not integers.
    ValueError
        If shapes disagree, a tensor is empty or the inputs contain NaN.
    """
    q_positions, k_positions = _checked_inputs(q, k, encoding, q_positions, k_positions)
    return _scores(q, k, encoding, q_positions, k_positions)


def positional_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    encoding: PositionEncoding,
    q_positions: torch.Tensor | None = None,
    k_positions: torch.Tensor | None = None,
    *,
    causal: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax attention with a position encoding.

    Parameters
    ----------
    q, k : torch.Tensor
        As in :func:`attention_scores`.
    v : torch.Tensor, shape (batch, heads, k_len, head_dim)
    encoding : PositionEncoding
    q_positions, k_positions : torch.Tensor of int, optional
        As in :func:`attention_scores`.
    causal : bool, default False
        Mask every key whose position is after the query's.

    Returns
    -------
    output : torch.Tensor, shape (batch, heads, q_len, head_dim)
    weights : torch.Tensor, shape (batch, heads, q_len, k_len)
        The attention probabilities.

    Raises
    ------
    TypeError, ValueError
        As :func:`attention_scores`, and if `v` does not match `k`.
    """
    q_positions, k_positions = _checked_inputs(q, k, encoding, q_positions, k_positions)
    v = _check_float_tensor(v, "v", 4, "(batch, heads, k_len, head_dim)")
    if v.shape[:3] != k.shape[:3]:
        raise ValueError(f"v must have the batch, heads and length of k, {tuple(k.shape[:3])}, got {tuple(v.shape[:3])}")
    scores = _scores(q, k, encoding, q_positions, k_positions)
    if causal:
        future = k_positions[None, :] > q_positions[:, None]
        scores = scores.masked_fill(future, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    output = weights @ v
    extra = encoding.value_bias(weights, q_positions, k_positions)
    return (output if extra is None else output + extra), weights


class PositionalSelfAttention(nn.Module):
    """Multi-head self-attention whose logits and outputs include a position encoding.

    Absolute encodings are *not* added here: they belong to the inputs, once, before
    the first layer (:class:`TinyAttentionModel` does that).

    Parameters
    ----------
    dim : int
        Model dimension.
    num_heads : int
        Number of heads; must divide `dim`.
    encoding : PositionEncoding
        The scheme; its relative hooks are used here.
    """

    def __init__(self, dim: int, num_heads: int, encoding: PositionEncoding) -> None:
        super().__init__()
        self.dim, self.num_heads = _check_int(dim, "dim"), _check_int(num_heads, "num_heads")
        if dim % num_heads:
            raise ValueError(f"dim must be a multiple of num_heads ({num_heads}), got {dim}")
        if not isinstance(encoding, PositionEncoding):
            raise TypeError(f"encoding must be a PositionEncoding, got {type(encoding).__name__}")
        self.encoding = encoding
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def _heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        batch, length, _ = x.shape
        q, k, v = self.qkv(x).view(batch, length, 3, self.num_heads, self.dim // self.num_heads).permute(2, 0, 3, 1, 4)
        return q, k, v

    def scores(self, h: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Logits (batch, heads, seq_len, seq_len) of inputs `h` (batch, seq_len, dim) at `positions` (seq_len,)."""
        q, k, _ = self._heads(h)
        return attention_scores(q, k, self.encoding, positions, positions)

    def forward(self, h: torch.Tensor, positions: torch.Tensor, causal: bool = False) -> torch.Tensor:
        """Attention output (batch, seq_len, dim) of inputs `h` (batch, seq_len, dim) at `positions` (seq_len,)."""
        q, k, v = self._heads(h)
        output, _ = positional_attention(q, k, v, self.encoding, positions, positions, causal=causal)
        return self.out(output.transpose(1, 2).reshape(h.shape))


class TinyAttentionModel(nn.Module):
    """Token embedding, position encoding, one attention layer with a residual, a linear read-out.

    Parameters
    ----------
    vocab_size : int
        Tokens ``0 .. vocab_size - 1``.
    dim : int
        Model dimension.
    num_heads : int
        Attention heads.
    encoding : PositionEncoding
        The position scheme.
    num_classes : int, optional
        Outputs of the read-out; default `vocab_size`.
    causal : bool, default True
        Whether position ``i`` sees only positions ``<= i``.
    """

    def __init__(
        self, vocab_size: int, dim: int, num_heads: int, encoding: PositionEncoding, num_classes: int | None = None, causal: bool = True
    ) -> None:
        super().__init__()
        self.vocab_size = _check_int(vocab_size, "vocab_size")
        self.embed = nn.Embedding(self.vocab_size, dim)
        self.encoding = encoding
        self.attention = PositionalSelfAttention(dim, num_heads, encoding)
        self.norm = nn.LayerNorm(dim)
        self.readout = nn.Linear(dim, self.vocab_size if num_classes is None else _check_int(num_classes, "num_classes"))
        self.causal = bool(causal)

    def _inputs(self, tokens: torch.Tensor, positions: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(tokens, torch.Tensor) or tokens.is_floating_point() or tokens.ndim != 2:
            raise TypeError("tokens must be an integer torch.Tensor of shape (batch, seq_len)")
        if tokens.numel() == 0:
            raise ValueError(f"tokens must not be empty, got shape {tuple(tokens.shape)}")
        if int(tokens.min()) < 0 or int(tokens.max()) >= self.vocab_size:
            raise ValueError(f"tokens must lie in [0, {self.vocab_size}), got values from {int(tokens.min())} to {int(tokens.max())}")
        length = tokens.shape[1]
        positions = _default_positions(length, tokens.device) if positions is None else _check_positions(positions, "positions", length)
        return self.encoding.encode_inputs(self.embed(tokens), positions), positions

    def scores(self, tokens: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        """Attention logits (batch, heads, seq_len, seq_len) for `tokens` (batch, seq_len) at `positions` (seq_len,)."""
        h, positions = self._inputs(tokens, positions)
        return self.attention.scores(h, positions)

    def forward(self, tokens: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (batch, seq_len, num_classes) for `tokens` (batch, seq_len) at `positions` (seq_len,), default ``0..seq_len-1``."""
        h, positions = self._inputs(tokens, positions)
        h = h + self.attention(h, positions, causal=self.causal)
        return self.readout(self.norm(h))


def score_translation_gap(
    model: TinyAttentionModel, tokens: torch.Tensor, shifts: list[int] | tuple[int, ...] = (1, 7, 100)
) -> float:
    r"""How much the attention logits change when every position moves by the same shift.

    Computes :math:`\max_s \max_{b,h,i,j} |e_{ij}(\text{positions} + s) - e_{ij}(\text{positions})|`
    for the tokens at positions ``0 .. seq_len - 1``. Zero (up to rounding) means the
    score depends on positions only through :math:`j - i`: translation invariance.

    Parameters
    ----------
    model : TinyAttentionModel
    tokens : torch.Tensor of int, shape (batch, seq_len)
    shifts : sequence of int, default (1, 7, 100)

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If `shifts` is empty, or a shifted position is one the scheme cannot
        represent (a learned table's end).
    """
    if not isinstance(model, TinyAttentionModel):
        raise TypeError(f"model must be a TinyAttentionModel, got {type(model).__name__}")
    if len(shifts) == 0:
        raise ValueError("shifts must not be empty")
    positions = torch.arange(tokens.shape[1], device=tokens.device)
    with torch.no_grad():
        reference = model.scores(tokens, positions)
        return max(float((model.scores(tokens, positions + int(s)) - reference).abs().max()) for s in shifts)


# --------------------------------------------------------------------------- the extrapolation experiment
@dataclass
class ExtrapolationConfig:
    """Settings of the recall task and the model trained on it.

    Attributes
    ----------
    train_length : int
        Sequence length :math:`L` of every training sequence.
    num_signals : int
        Signal tokens ``0 .. num_signals - 1``; the target is the most recent one.
    num_noise : int
        Noise tokens ``num_signals .. num_signals + num_noise - 1``.
    signal_prob : float
        Probability that a position holds a signal (the first one always does).
    dim : int
        Model dimension.
    num_heads : int
        Attention heads.
    steps : int
        Adam steps.
    batch_size : int
        Fresh sequences per step.
    lr : float
        Adam learning rate.
    max_relative_position : int
        Shaw's clipping distance :math:`K`.
    num_buckets : int
        T5 buckets (causal, all for keys before the query).
    max_distance : int or None
        T5's distance where the last bucket starts; None means `train_length`, so
        that every bucket is met in training.
    """

    train_length: int = 32
    num_signals: int = 4
    num_noise: int = 12
    signal_prob: float = 0.25
    dim: int = 32
    num_heads: int = 8
    steps: int = 300
    batch_size: int = 32
    lr: float = 3e-3
    max_relative_position: int = 16
    num_buckets: int = 16
    max_distance: int | None = None

    def __post_init__(self) -> None:
        for name in ("train_length", "num_signals", "num_noise", "dim", "num_heads", "steps", "batch_size",
                     "max_relative_position", "num_buckets"):
            _check_int(getattr(self, name), name)
        if not 0 < self.signal_prob <= 1:
            raise ValueError(f"signal_prob must be in (0, 1], got {self.signal_prob}")
        _check_positive_float(self.lr, "lr")
        max_distance = self.train_length if self.max_distance is None else _check_int(self.max_distance, "max_distance")
        t5_relative_position_bucket(torch.zeros(1, dtype=torch.long), bidirectional=False,
                                    num_buckets=self.num_buckets, max_distance=max_distance)  # validates the T5 settings

    @property
    def vocab_size(self) -> int:
        """Signals plus noise tokens."""
        return self.num_signals + self.num_noise


@dataclass
class RecallResult:
    """A trained recall model and its training curve.

    Attributes
    ----------
    scheme : str
        The position encoding's name.
    model : TinyAttentionModel
        The trained model (in eval mode).
    loss : list of float
        Cross-entropy of every training step.
    config : ExtrapolationConfig
        The settings it was trained with.
    """

    scheme: str
    model: TinyAttentionModel
    loss: list[float] = field(default_factory=list)
    config: ExtrapolationConfig = field(default_factory=ExtrapolationConfig)


def make_recall_task(
    n: int, length: int, *, num_signals: int = 4, num_noise: int = 12, signal_prob: float = 0.25, rng: np.random.Generator | int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sequences of signal and noise tokens; the target at each position is the most recent signal.

    Position 0 always holds a signal, so every position has a target. The task
    needs content (which tokens are signals) and relative order (which signal is
    the most recent), and nothing about absolute positions.

    Parameters
    ----------
    n : int
        Number of sequences.
    length : int
        Sequence length.
    num_signals, num_noise : int
        Sizes of the two token sets (signals first).
    signal_prob : float
        Probability of a signal at each position after the first.
    rng : numpy.random.Generator or int
        The randomness.

    Returns
    -------
    tokens : torch.Tensor of int64, shape (n, length)
    targets : torch.Tensor of int64, shape (n, length)
        Values in ``[0, num_signals)``.
    """
    n, length = _check_int(n, "n"), _check_int(length, "length")
    num_signals, num_noise = _check_int(num_signals, "num_signals"), _check_int(num_noise, "num_noise")
    if not 0 < signal_prob <= 1:
        raise ValueError(f"signal_prob must be in (0, 1], got {signal_prob}")
    rng = as_generator(rng)
    is_signal = rng.random((n, length)) < signal_prob
    is_signal[:, 0] = True
    tokens = np.where(is_signal, rng.integers(0, num_signals, (n, length)), rng.integers(num_signals, num_signals + num_noise, (n, length)))
    last_signal_at = np.maximum.accumulate(np.where(is_signal, np.arange(length), 0), axis=1)
    targets = np.take_along_axis(tokens, last_signal_at, axis=1)
    return torch.as_tensor(tokens, dtype=torch.long), torch.as_tensor(targets, dtype=torch.long)


def _build_model(scheme: str, config: ExtrapolationConfig) -> TinyAttentionModel:
    encoding = make_encoding(
        scheme,
        dim=config.dim,
        num_heads=config.num_heads,
        max_len=config.train_length,
        max_relative_position=config.max_relative_position,
        num_buckets=config.num_buckets,
        max_distance=config.max_distance or config.train_length,
        bidirectional=False,
    )
    return TinyAttentionModel(config.vocab_size, config.dim, config.num_heads, encoding, num_classes=config.num_signals)


def train_recall_model(
    scheme: str, config: ExtrapolationConfig | None = None, *, seed: int = 0, device: torch.device | str | None = None
) -> RecallResult:
    """Train a :class:`TinyAttentionModel` with one position scheme on the recall task at ``config.train_length``.

    Every step draws a fresh batch from :func:`make_recall_task`, so there is no
    overfitting to measure; the loss is the cross-entropy of the target at every position.

    Parameters
    ----------
    scheme : str
        One of :data:`SCHEMES`.
    config : ExtrapolationConfig, optional
        Default ``ExtrapolationConfig()``.
    seed : int, default 0
        Seeds the initial weights (without touching PyTorch's global generator) and the data.
    device : torch.device or str, optional
        Where to train; default CPU.

    Returns
    -------
    RecallResult
    """
    config = ExtrapolationConfig() if config is None else config
    if not isinstance(config, ExtrapolationConfig):
        raise TypeError(f"config must be an ExtrapolationConfig, got {type(config).__name__}")
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    seed = _check_int(seed, "seed", minimum=0)
    device = torch.device("cpu") if device is None else torch.device(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _build_model(scheme, config)
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    rng = np.random.default_rng(seed)
    losses = []
    model.train()
    for _ in range(config.steps):
        tokens, targets = make_recall_task(
            config.batch_size, config.train_length, num_signals=config.num_signals, num_noise=config.num_noise,
            signal_prob=config.signal_prob, rng=rng,
        )
        logits = model(tokens.to(device))
        loss = F.cross_entropy(logits.reshape(-1, config.num_signals), targets.to(device).reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    return RecallResult(scheme, model, losses, config)


def _recall_test_set(result: RecallResult, length: int, n: int, rng: np.random.Generator | int, blocks: int):
    """Validated test sequences for :func:`recall_accuracy` and :func:`recall_attention`.

    Returns ``(tokens, targets, device)``, or None when the scheme cannot represent
    positions up to ``length - 1`` (a learned table shorter than `length`).
    """
    if not isinstance(result, RecallResult):
        raise TypeError(f"result must be a RecallResult, got {type(result).__name__}")
    length, blocks = _check_int(length, "length"), _check_int(blocks, "blocks")
    if length % blocks:
        raise ValueError(f"length ({length}) must be a multiple of blocks, got {blocks}")
    encoding = result.model.encoding
    if isinstance(encoding, LearnedEncoding) and length > encoding.max_len:
        return None
    config = result.config
    tokens, targets = make_recall_task(
        n, length, num_signals=config.num_signals, num_noise=config.num_noise, signal_prob=config.signal_prob, rng=rng
    )
    return tokens, targets, next(result.model.parameters()).device


def recall_accuracy(result: RecallResult, length: int, *, n: int = 256, rng: np.random.Generator | int, blocks: int = 1) -> list[float]:
    """Accuracy of a trained recall model on fresh sequences of `length` tokens.

    Parameters
    ----------
    result : RecallResult
        From :func:`train_recall_model`.
    length : int
        Test sequence length.
    n : int, default 256
        Test sequences.
    rng : numpy.random.Generator or int
        Draws the test sequences.
    blocks : int, default 1
        Split the positions into this many equal blocks and report each block's
        accuracy (``blocks = 1``: all positions together).

    Returns
    -------
    list of float, length `blocks`
        Accuracy per block; NaN for all blocks if the scheme cannot represent
        positions up to ``length - 1`` (a learned table shorter than `length`).
    """
    test = _recall_test_set(result, length, n, rng, blocks)
    if test is None:
        return [math.nan] * blocks
    tokens, targets, device = test
    with torch.no_grad():
        correct = (result.model(tokens.to(device)).argmax(-1).cpu() == targets).double()
    return [float(block.mean()) for block in correct.chunk(blocks, dim=1)]


def recall_attention(result: RecallResult, length: int, *, n: int = 128, rng: np.random.Generator | int, blocks: int = 1) -> list[float]:
    """Attention weight on the right token: how much the best head attends to the most recent signal.

    For every query, the largest weight over the heads on the key that holds the
    target (the most recent signal), averaged over sequences and the queries of each
    block of positions.

    Parameters
    ----------
    result : RecallResult
        From :func:`train_recall_model`.
    length : int
        Test sequence length.
    n : int, default 128
        Test sequences.
    rng : numpy.random.Generator or int
        Draws the test sequences.
    blocks : int, default 1
        Split the positions into this many equal blocks.

    Returns
    -------
    list of float, length `blocks`
        NaN for all blocks if the scheme cannot represent the positions.
    """
    test = _recall_test_set(result, length, n, rng, blocks)
    if test is None:
        return [math.nan] * blocks
    tokens, _, device = test
    config = result.config
    tokens = tokens.to(device)
    positions = torch.arange(length, device=device)
    last_signal = torch.where(tokens < config.num_signals, positions, torch.zeros_like(positions)).cummax(dim=1).values
    with torch.no_grad():
        scores = result.model.scores(tokens, positions).masked_fill(positions[None, :] > positions[:, None], float("-inf"))
        weights = torch.softmax(scores.double(), dim=-1)  # (n, heads, length, length)
    index = last_signal[:, None, :, None].expand(-1, weights.shape[1], -1, 1)
    on_target = weights.gather(3, index).squeeze(3).amax(dim=1)  # (n, length)
    return [float(block.mean()) for block in on_target.cpu().chunk(blocks, dim=1)]


# --------------------------------------------------------------------------- exercises

def check_t5_bucket_exercise(answer: int) -> bool:
    """Exercise 1: the causal T5 bucket of a key 20 positions before the query (32 buckets, max_distance 128)."""
    expected = int(t5_relative_position_bucket(torch.tensor(-20), bidirectional=False, num_buckets=32, max_distance=128))
    ok = isinstance(answer, (int, np.integer)) and not isinstance(answer, bool) and int(answer) == expected
    return _report(
        ok,
        f"Correct: 20 >= 16 = max_exact, so 16 + floor(log(20/16) / log(128/16) * 16) = {expected}.",
        "Not yet: in causal mode all 32 buckets are for the past, the first 16 distances are exact, "
        "and the rest are spread by log(n / 16) / log(128 / 16) over the remaining 16 buckets (round down).",
    )


def check_alibi_exercise(answer: list[float]) -> bool:
    """Exercise 2: ALiBi's slopes for 6 heads, in head order."""
    expected = alibi_slopes(6)
    try:
        ok = len(answer) == 6 and all(math.isclose(float(a), e, rel_tol=1e-6) for a, e in zip(answer, expected))
    except (TypeError, ValueError):
        ok = False
    return _report(
        ok,
        "Correct: the 4 slopes of 4 heads (1/4, 1/16, 1/64, 1/256), then every other slope of 8 heads (1/2, 1/8).",
        "Not yet: 6 is not a power of two. Take the slopes for the largest power of two below it, "
        "then the missing ones from every other slope of twice that many heads.",
    )


def check_sinusoidal_exercise(answer: float) -> bool:
    """Exercise 3: PE(m) . PE(m + 1) for dim 4 and base 10000, for any m."""
    expected = float(sinusoidal_dot_product(1.0, 4))
    try:
        ok = math.isclose(float(answer), expected, rel_tol=1e-4)
    except (TypeError, ValueError):
        ok = False
    return _report(
        ok,
        f"Correct: cos(1) + cos(0.01) = {expected:.5f}, whatever m is.",
        "Not yet: the dot product is a sum of cos((m - n) * omega_i) over the frequencies omega_0 = 1 and omega_1 = 10000^(-1/2).",
    )
