"""FlashAttention: exact attention computed in tiles with an online softmax.

Implements, in plain PyTorch so that it runs on any device:

- :func:`naive_attention`, the standard algorithm that materialises the
  ``(seq_len_q, seq_len_k)`` score and probability matrices (the baseline of the papers);
- :func:`online_softmax`, the one-pass softmax normaliser of Milakov & Gimelshein,
  "Online normalizer calculation for softmax" (2018), with :func:`online_softmax_trace`
  returning its running maximum and running sum block by block;
- :func:`flash_attention`, tiled exact attention in the style of FlashAttention-2
  (Dao, "FlashAttention-2: Faster Attention with Better Parallelism and Work
  Partitioning", 2023; Dao et al., "FlashAttention: Fast and Memory-Efficient Exact
  Attention with IO-Awareness", NeurIPS 2022): a custom autograd function whose
  forward keeps a running maximum and sum per query row and saves only ``q, k, v``,
  the output and the per-row logsumexp, and whose backward recomputes the attention
  probabilities block by block from the logsumexp. On CUDA it can dispatch to the
  Triton kernels of :mod:`mlnotes.sequence._flash_triton`;
- :func:`saved_tensor_bytes`, which measures what an attention function keeps for
  the backward pass, and :func:`hbm_accesses`, the IO counts of Theorem 2 of Dao et al.

The chapter is ``book/sequence/flash_attention.ipynb``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch.autograd.function import once_differentiable

from mlnotes.exercises import as_float as _as_float, report as _report
from mlnotes.sequence import _flash_triton

__all__ = [
    "naive_attention",
    "online_softmax",
    "online_softmax_trace",
    "OnlineSoftmaxTrace",
    "flash_attention",
    "FlashAttentionFunction",
    "block_schedule",
    "saved_tensor_bytes",
    "hbm_accesses",
    "HBMAccesses",
    "TRITON_HEAD_DIMS",
    "check_exercise_1",
    "check_exercise_2",
    "check_exercise_3",
]

Backend = Literal["auto", "torch", "triton"]
TRITON_HEAD_DIMS: tuple[int, ...] = tuple(_flash_triton.SUPPORTED_HEAD_DIMS)
"""Head dimensions that the Triton kernels of :mod:`mlnotes.sequence._flash_triton` support."""


# --------------------------------------------------------------------------- validation
def _check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be a positive int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be a positive int, got {value}")
    return int(value)


def _check_attention_inputs(q: Any, k: Any, v: Any, causal: Any, scale: Any, check_nan: bool) -> float:
    """Validate ``q, k, v`` of shape ``(batch, heads, seq_len, head_dim)``; return the scale to use."""
    for name, value in (("q", q), ("k", k), ("v", v)):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor of shape (batch, heads, seq_len, head_dim), got {type(value).__name__}")
        if not value.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
        if value.ndim != 4:
            raise ValueError(f"{name} must have shape (batch, heads, seq_len, head_dim), got shape {tuple(value.shape)}")
        if value.numel() == 0:
            raise ValueError(f"{name} must not be empty (every dimension >= 1), got shape {tuple(value.shape)}")
    if not (q.dtype == k.dtype == v.dtype):
        raise TypeError(f"q, k and v must have one dtype, got {q.dtype}, {k.dtype} and {v.dtype}")
    if not (q.device == k.device == v.device):
        raise ValueError(f"q, k and v must be on one device, got {q.device}, {k.device} and {v.device}")
    if q.shape[:2] != k.shape[:2] or q.shape[:2] != v.shape[:2]:
        raise ValueError(
            f"q, k and v must share (batch, heads), got {tuple(q.shape[:2])}, {tuple(k.shape[:2])} and {tuple(v.shape[:2])}"
        )
    if k.shape[-1] != q.shape[-1]:
        raise ValueError(f"k must have the head_dim of q, {q.shape[-1]}, got {k.shape[-1]}")
    if v.shape[-2] != k.shape[-2]:
        raise ValueError(f"v must have the seq_len of k, {k.shape[-2]}, got {v.shape[-2]}")
    if not isinstance(causal, (bool, np.bool_)):
        raise TypeError(f"causal must be a bool, got {type(causal).__name__}")
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])
    elif isinstance(scale, bool) or not isinstance(scale, (int, float, np.floating)):
        raise TypeError(f"scale must be a positive float or None, got {type(scale).__name__}")
    elif not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive finite float or None, got {scale}")
    if check_nan:
        for name, value in (("q", q), ("k", k), ("v", v)):
            if torch.isnan(value).any():
                raise ValueError(f"{name} contains NaN")
    return float(scale)


def _accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    """Float64 stays float64; float32, float16 and bfloat16 accumulate in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


# --------------------------------------------------------------------------- naive attention
def naive_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False, scale: float | None = None
) -> torch.Tensor:
    r"""Standard attention, :math:`\mathrm{softmax}(s\,QK^\top + \text{mask})\,V`, in the inputs' precision.

    Materialises the full score and probability matrices, as the baseline of
    FlashAttention does; autograd then keeps them for the backward pass.

    Parameters
    ----------
    q : torch.Tensor, shape (batch, heads, seq_len_q, head_dim)
    k : torch.Tensor, shape (batch, heads, seq_len_k, head_dim)
    v : torch.Tensor, shape (batch, heads, seq_len_k, head_dim_v)
    causal : bool, default False
        Mask key ``j`` for query ``i`` when ``j > i`` (top-left alignment, as
        ``scaled_dot_product_attention(is_causal=True)``).
    scale : float, optional
        Multiplies the scores; default ``1 / sqrt(head_dim)``.

    Returns
    -------
    torch.Tensor, shape (batch, heads, seq_len_q, head_dim_v)
    """
    scale = _check_attention_inputs(q, k, v, causal, scale, check_nan=False)
    scores = (q @ k.transpose(-2, -1)) * scale
    if causal:
        allowed = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool, device=q.device).tril()
        scores = scores.masked_fill(~allowed, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


# --------------------------------------------------------------------------- online softmax
def _online_softmax_stats(x: torch.Tensor, block_size: int, trace: list | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Running maximum ``m`` and running sum ``l = sum exp(x - m)`` over the last axis, one block at a time."""
    m = torch.full(x.shape[:-1], float("-inf"), dtype=x.dtype, device=x.device)
    l = torch.zeros(x.shape[:-1], dtype=x.dtype, device=x.device)
    for start in range(0, x.shape[-1], block_size):
        block = x[..., start : start + block_size]
        m_new = torch.maximum(m, block.amax(dim=-1))
        # While every value seen is -inf there is nothing to rescale; 0 keeps exp(-inf - 0) = 0 instead of NaN.
        shift = torch.where(torch.isneginf(m_new), torch.zeros_like(m_new), m_new)
        l = l * torch.exp(m - shift) + torch.exp(block - shift.unsqueeze(-1)).sum(dim=-1)
        m = m_new
        if trace is not None:
            trace.append((min(start + block_size, x.shape[-1]), m.clone(), l.clone()))
    return m, l


def _check_softmax_input(x: Any, block_size: Any) -> int:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got dtype {x.dtype}")
    if x.ndim == 0 or x.shape[-1] == 0:
        raise ValueError(f"x must have a non-empty last axis, got shape {tuple(x.shape)}")
    if torch.isnan(x).any():
        raise ValueError("x contains NaN")
    return _check_positive_int("block_size", block_size)


def online_softmax(x: torch.Tensor, block_size: int = 64) -> torch.Tensor:
    r"""Softmax over the last axis, with the normaliser computed in one streaming pass.

    The blocks of ``block_size`` values are read once, left to right, keeping per row

    .. math::
        m_j = \max(m_{j-1}, \max_i x^{(j)}_i), \qquad
        \ell_j = \ell_{j-1} e^{m_{j-1} - m_j} + \sum_i e^{x^{(j)}_i - m_j},

    and the result is :math:`e^{x - m} / \ell`. Like ``torch.softmax``, a row of only
    ``-inf`` gives NaN.

    Parameters
    ----------
    x : torch.Tensor, shape (..., n)
    block_size : int, default 64
        Values read per step.

    Returns
    -------
    torch.Tensor, shape (..., n)

    Raises
    ------
    TypeError
        If `x` is not a floating-point tensor or `block_size` not an int.
    ValueError
        If the last axis is empty, `x` contains NaN, or `block_size` < 1.
    """
    block_size = _check_softmax_input(x, block_size)
    m, l = _online_softmax_stats(x, block_size)
    return torch.exp(x - m.unsqueeze(-1)) / l.unsqueeze(-1)


@dataclass
class OnlineSoftmaxTrace:
    """The state of :func:`online_softmax` after each block of a 1-D input.

    Attributes
    ----------
    seen : numpy.ndarray, shape (n_blocks,)
        How many values had been read after each block.
    running_max : numpy.ndarray, shape (n_blocks,)
        :math:`m_j`, the largest value read so far.
    running_sum : numpy.ndarray, shape (n_blocks,)
        :math:`\\ell_j = \\sum_{i \\le \\text{seen}} e^{x_i - m_j}`.
    """

    seen: np.ndarray
    running_max: np.ndarray
    running_sum: np.ndarray


def online_softmax_trace(x: torch.Tensor, block_size: int = 64) -> OnlineSoftmaxTrace:
    """Run :func:`online_softmax`'s recurrence on a 1-D tensor and record ``(m, l)`` after every block.

    Parameters
    ----------
    x : torch.Tensor, shape (n,)
    block_size : int, default 64

    Returns
    -------
    OnlineSoftmaxTrace
    """
    block_size = _check_softmax_input(x, block_size)
    if x.ndim != 1:
        raise ValueError(f"x must be 1-D, shape (n,), got shape {tuple(x.shape)}")
    trace: list = []
    _online_softmax_stats(x, block_size, trace)
    return OnlineSoftmaxTrace(
        seen=np.array([seen for seen, _, _ in trace]),
        running_max=np.array([float(m) for _, m, _ in trace]),
        running_sum=np.array([float(l) for _, _, l in trace]),
    )


# --------------------------------------------------------------------------- tiling
def _key_end(q_start: int, q_end: int, seq_len_k: int, causal: bool) -> int:
    """Keys ``[0, end)`` that queries ``[q_start, q_end)`` can see; later key blocks are skipped."""
    return min(seq_len_k, q_end) if causal else seq_len_k


def _query_start(k_start: int, block_q: int, causal: bool) -> int:
    """First query block that sees any key from ``k_start`` on (causal: rows ``>= k_start``)."""
    return (k_start // block_q) * block_q if causal else 0


def _causal_mask(q_start: int, q_end: int, k_start: int, k_end: int, device: torch.device) -> torch.Tensor | None:
    """Where key > query inside one tile, or None when the tile lies wholly on or below the diagonal."""
    if k_end - 1 <= q_start:
        return None
    rows = torch.arange(q_start, q_end, device=device).unsqueeze(-1)
    cols = torch.arange(k_start, k_end, device=device)
    return cols > rows


def block_schedule(seq_len_q: int, seq_len_k: int, block_q: int = 64, block_k: int = 64, causal: bool = False) -> np.ndarray:
    """Which (query block, key block) tiles the forward pass of :func:`flash_attention` computes.

    Parameters
    ----------
    seq_len_q, seq_len_k : int
        Lengths of the query and key sequences.
    block_q, block_k : int, default 64
        Tile sizes.
    causal : bool, default False
        With a causal mask, tiles wholly above the diagonal are skipped.

    Returns
    -------
    numpy.ndarray of bool, shape (ceil(seq_len_q / block_q), ceil(seq_len_k / block_k))
    """
    seq_len_q, seq_len_k = _check_positive_int("seq_len_q", seq_len_q), _check_positive_int("seq_len_k", seq_len_k)
    block_q, block_k = _check_positive_int("block_q", block_q), _check_positive_int("block_k", block_k)
    n_q, n_k = -(-seq_len_q // block_q), -(-seq_len_k // block_k)
    visited = np.zeros((n_q, n_k), dtype=bool)
    for i, q_start in enumerate(range(0, seq_len_q, block_q)):
        k_end = _key_end(q_start, min(q_start + block_q, seq_len_q), seq_len_k, bool(causal))
        visited[i, : -(-k_end // block_k)] = True
    return visited


def _flash_forward(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool, scale: float, block_q: int, block_k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Tiled forward pass (FlashAttention-2, Algorithm 1): the output and the per-row logsumexp."""
    acc = _accumulation_dtype(q.dtype)
    seq_len_q, seq_len_k = q.shape[-2], k.shape[-2]
    out = torch.empty(*q.shape[:-1], v.shape[-1], dtype=q.dtype, device=q.device)
    lse = torch.empty(q.shape[:-1], dtype=acc, device=q.device)
    for q_start in range(0, seq_len_q, block_q):
        q_end = min(q_start + block_q, seq_len_q)
        q_tile = q[..., q_start:q_end, :].to(acc) * scale
        row_max = torch.full(q_tile.shape[:-1], float("-inf"), dtype=acc, device=q.device)
        row_sum = torch.zeros(q_tile.shape[:-1], dtype=acc, device=q.device)
        out_tile = torch.zeros(*q_tile.shape[:-1], v.shape[-1], dtype=acc, device=q.device)
        for k_start in range(0, _key_end(q_start, q_end, seq_len_k, causal), block_k):
            k_end = min(k_start + block_k, _key_end(q_start, q_end, seq_len_k, causal))
            scores = q_tile @ k[..., k_start:k_end, :].to(acc).transpose(-2, -1)
            mask = _causal_mask(q_start, q_end, k_start, k_end, q.device) if causal else None
            if mask is not None:
                scores = scores.masked_fill(mask, float("-inf"))
            # Key 0 is visible to every query, so row_max is finite after the first tile.
            new_max = torch.maximum(row_max, scores.amax(dim=-1))
            probs = torch.exp(scores - new_max.unsqueeze(-1))
            rescale = torch.exp(row_max - new_max)
            row_sum = rescale * row_sum + probs.sum(dim=-1)
            out_tile = rescale.unsqueeze(-1) * out_tile + probs @ v[..., k_start:k_end, :].to(acc)
            row_max = new_max
        # FlashAttention-2 divides by the running sum once per row, after the last tile.
        out[..., q_start:q_end, :] = (out_tile / row_sum.unsqueeze(-1)).to(q.dtype)
        lse[..., q_start:q_end] = row_max + torch.log(row_sum)
    return out, lse


def _flash_backward(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    out: torch.Tensor,
    lse: torch.Tensor,
    grad_out: torch.Tensor,
    causal: bool,
    scale: float,
    block_q: int,
    block_k: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Tiled backward pass (FlashAttention-2, Algorithm 2): recompute P from the logsumexp, tile by tile."""
    acc = _accumulation_dtype(q.dtype)
    seq_len_q, seq_len_k = q.shape[-2], k.shape[-2]
    # D_i = rowsum(dO_i * O_i) = sum_j P_ij dP_ij, the term that the softmax's Jacobian subtracts.
    delta = (grad_out.to(acc) * out.to(acc)).sum(dim=-1)
    grad_q = torch.zeros(q.shape, dtype=acc, device=q.device)
    grad_k = torch.empty(k.shape, dtype=acc, device=q.device)
    grad_v = torch.empty(v.shape, dtype=acc, device=q.device)
    for k_start in range(0, seq_len_k, block_k):
        k_end = min(k_start + block_k, seq_len_k)
        k_tile, v_tile = k[..., k_start:k_end, :].to(acc), v[..., k_start:k_end, :].to(acc)
        grad_k_tile = torch.zeros_like(k_tile)
        grad_v_tile = torch.zeros_like(v_tile)
        for q_start in range(_query_start(k_start, block_q, causal), seq_len_q, block_q):
            q_end = min(q_start + block_q, seq_len_q)
            q_tile = q[..., q_start:q_end, :].to(acc)
            grad_out_tile = grad_out[..., q_start:q_end, :].to(acc)
            scores = (q_tile * scale) @ k_tile.transpose(-2, -1)
            mask = _causal_mask(q_start, q_end, k_start, k_end, q.device) if causal else None
            if mask is not None:
                scores = scores.masked_fill(mask, float("-inf"))
            probs = torch.exp(scores - lse[..., q_start:q_end].unsqueeze(-1))
            grad_v_tile += probs.transpose(-2, -1) @ grad_out_tile
            grad_probs = grad_out_tile @ v_tile.transpose(-2, -1)
            grad_scores = probs * (grad_probs - delta[..., q_start:q_end].unsqueeze(-1))
            grad_q[..., q_start:q_end, :] += scale * (grad_scores @ k_tile)
            grad_k_tile += scale * (grad_scores.transpose(-2, -1) @ q_tile)
        grad_k[..., k_start:k_end, :] = grad_k_tile
        grad_v[..., k_start:k_end, :] = grad_v_tile
    return grad_q.to(q.dtype), grad_k.to(k.dtype), grad_v.to(v.dtype)


class FlashAttentionFunction(torch.autograd.Function):
    """Tiled attention as an autograd function: saves ``q, k, v``, the output and the logsumexp, O(N) memory.

    Call through :func:`flash_attention`, which validates its inputs.
    """

    @staticmethod
    def forward(ctx: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool, scale: float, block_q: int, block_k: int) -> torch.Tensor:
        """The tiled forward pass; keeps ``q, k, v``, the output and the row logsumexp for the backward pass."""
        out, lse = _flash_forward(q, k, v, causal, scale, block_q, block_k)
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.causal, ctx.scale, ctx.block_q, ctx.block_k = causal, scale, block_q, block_k
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        """The tiled backward pass: recomputes the probabilities tile by tile from the logsumexp."""
        q, k, v, out, lse = ctx.saved_tensors
        grad_q, grad_k, grad_v = _flash_backward(
            q, k, v, out, lse, grad_out, ctx.causal, ctx.scale, ctx.block_q, ctx.block_k
        )
        return grad_q, grad_k, grad_v, None, None, None, None


def _triton_supports(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> str | None:
    """Why the Triton kernels cannot take these inputs, or None when they can."""
    if not _flash_triton.triton_available():
        return "Triton is not installed or no CUDA device is present"
    if q.device.type != "cuda":
        return f"the inputs must be CUDA tensors, got device {q.device}"
    if q.dtype not in (torch.float16, torch.bfloat16, torch.float32):
        return f"the dtype must be float16, bfloat16 or float32, got {q.dtype}"
    if q.shape[-1] not in TRITON_HEAD_DIMS or v.shape[-1] != q.shape[-1]:
        return f"head_dim of q, k and v must be one of {TRITON_HEAD_DIMS}, got {q.shape[-1]} and {v.shape[-1]}"
    return None


def flash_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    causal: bool = False,
    scale: float | None = None,
    *,
    block_q: int = 64,
    block_k: int = 64,
    backend: Backend = "auto",
    check_nan: bool = True,
) -> torch.Tensor:
    r"""Exact attention in tiles with an online softmax (FlashAttention-2), differentiable.

    A drop-in for ``torch.nn.functional.scaled_dot_product_attention(q, k, v,
    is_causal=causal, scale=scale)`` that never materialises the
    ``(seq_len_q, seq_len_k)`` attention matrix: the forward pass keeps a running
    maximum and sum per query row, and saves for the backward pass only ``q, k, v``,
    the output and the per-row logsumexp :math:`L_i = m_i + \log \ell_i`; the
    backward pass recomputes the probabilities tile by tile as :math:`e^{S_{ij} - L_i}`.

    Parameters
    ----------
    q : torch.Tensor, shape (batch, heads, seq_len_q, head_dim)
    k : torch.Tensor, shape (batch, heads, seq_len_k, head_dim)
    v : torch.Tensor, shape (batch, heads, seq_len_k, head_dim_v)
        One floating dtype and one device for all three.
    causal : bool, default False
        Query ``i`` sees keys ``j <= i``: the top-left alignment of
        ``scaled_dot_product_attention(is_causal=True)``, also when
        ``seq_len_q != seq_len_k``. Key tiles wholly above the diagonal are skipped.
    scale : float, optional
        Multiplies the scores; default ``1 / sqrt(head_dim)``.
    block_q, block_k : int, default 64
        Tile sizes of the PyTorch path (queries and keys per tile). Lengths need
        not be multiples of them.
    backend : {"auto", "torch", "triton"}, default "auto"
        ``"torch"``: the tiled PyTorch implementation (any device; float16 and
        bfloat16 inputs are accumulated in float32, float64 in float64).
        ``"triton"``: :func:`mlnotes.sequence._flash_triton.flash_attention_triton`
        (CUDA; float16, bfloat16 or float32; head_dim in ``TRITON_HEAD_DIMS``).
        ``"auto"``: Triton for CUDA float16/bfloat16 inputs it supports when Triton
        is available, else PyTorch.
    check_nan : bool, default True
        Raise on NaN inputs (one reduction over q, k and v; turn off to time the kernel alone).

    Returns
    -------
    torch.Tensor, shape (batch, heads, seq_len_q, head_dim_v)
        In the dtype of the inputs.

    Raises
    ------
    TypeError
        If an input is not a floating tensor, the dtypes differ, or an option has the wrong type.
    ValueError
        If shapes disagree or are empty, devices differ, an input contains NaN,
        a block size is not positive, the backend is unknown, or ``backend="triton"``
        cannot run on these inputs.
    """
    scale = _check_attention_inputs(q, k, v, causal, scale, check_nan)
    block_q, block_k = _check_positive_int("block_q", block_q), _check_positive_int("block_k", block_k)
    if backend not in ("auto", "torch", "triton"):
        raise ValueError(f"backend must be 'auto', 'torch' or 'triton', got {backend!r}")
    causal = bool(causal)
    if backend == "triton":
        reason = _triton_supports(q, k, v)
        if reason is not None:
            raise ValueError(f"backend='triton' cannot run here: {reason}")
        return _flash_triton.flash_attention_triton(q, k, v, causal=causal, scale=scale)
    if backend == "auto" and q.dtype in (torch.float16, torch.bfloat16) and _triton_supports(q, k, v) is None:
        return _flash_triton.flash_attention_triton(q, k, v, causal=causal, scale=scale)
    return FlashAttentionFunction.apply(q, k, v, causal, scale, block_q, block_k)


# --------------------------------------------------------------------------- memory and IO
def saved_tensor_bytes(
    attention: Callable[..., torch.Tensor],
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    include_inputs: bool = False,
    **kwargs: Any,
) -> int:
    """Bytes of the tensors that autograd keeps for the backward pass of one attention call.

    Runs ``attention(q, k, v, **kwargs)`` on fresh leaf copies that require grad,
    under :func:`torch.autograd.graph.saved_tensors_hooks`, and adds up the distinct
    storages that get saved (each once, whole).

    Parameters
    ----------
    attention : callable
        ``naive_attention``, ``flash_attention``, ``scaled_dot_product_attention``, ...
    q, k, v : torch.Tensor, shape (batch, heads, seq_len, head_dim)
    include_inputs : bool, default False
        Count the storages of ``q, k, v`` themselves too. By default only the
        *extra* memory is counted: what the call saves beyond its inputs.
    **kwargs
        Passed to `attention` (``causal=True``, ``is_causal=True``, ...).

    Returns
    -------
    int
        Bytes.
    """
    if not callable(attention):
        raise TypeError(f"attention must be callable, got {type(attention).__name__}")
    for name, value in (("q", q), ("k", k), ("v", v)):
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise TypeError(f"{name} must be a floating-point torch.Tensor, got {type(value).__name__}")
    leaves = [x.detach().clone().requires_grad_(True) for x in (q, k, v)]
    inputs = {x.untyped_storage().data_ptr() for x in leaves}
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        attention(*leaves, **kwargs)
    return sum(n for ptr, n in storages.items() if include_inputs or ptr not in inputs)


@dataclass
class HBMAccesses:
    """Reads and writes of GPU main memory (HBM), in elements, of one attention head.

    Attributes
    ----------
    standard : int
        Algorithm 0 of Dao et al. (2022): ``4 N d + 4 N^2``.
    flash : int
        Algorithm 1 of Dao et al. (2022): ``2 N d + T_c (3 N d + 4 N)`` with
        ``T_c = ceil(N / B_c)`` key blocks and ``B_c = ceil(M / (4 d))``.
    """

    standard: int
    flash: int


def hbm_accesses(seq_len: int, head_dim: int, sram_size: int) -> HBMAccesses:
    r"""Count HBM accesses of standard attention and of FlashAttention (Theorem 2 of Dao et al. 2022).

    Standard attention reads Q, K (``2Nd``), writes and reads S (``2N^2``), writes
    and reads P (``2N^2``), reads V (``Nd``) and writes O (``Nd``):
    :math:`\Theta(Nd + N^2)`. FlashAttention reads K and V once (``2Nd``) and, for
    each of the :math:`T_c` key blocks, reads Q and O and writes O (``3Nd``) and
    reads and writes the running statistics m and l (``4N``): with
    :math:`T_c \approx 4Nd / M` that is :math:`\Theta(N^2 d^2 / M)`.

    Parameters
    ----------
    seq_len : int
        N.
    head_dim : int
        d.
    sram_size : int
        M, on-chip memory in elements; must hold at least ``4 * head_dim``.

    Returns
    -------
    HBMAccesses
    """
    n, d, m = (_check_positive_int(name, value) for name, value in (("seq_len", seq_len), ("head_dim", head_dim), ("sram_size", sram_size)))
    if m < 4 * d:
        raise ValueError(f"sram_size must hold at least 4 * head_dim = {4 * d} elements, got {m}")
    block_cols = -(-m // (4 * d))
    n_key_blocks = -(-n // block_cols)
    return HBMAccesses(standard=4 * n * d + 4 * n * n, flash=2 * n * d + n_key_blocks * (3 * n * d + 4 * n))


# --------------------------------------------------------------------------- exercises


def check_exercise_1(running_max: float, running_sum: float) -> bool:
    """Exercise 1: the online-softmax state after the blocks ``(1, 3)`` and ``(2, 5)``.

    What are the running maximum ``m`` and running sum ``l = sum_i exp(x_i - m)``?
    """
    trace = online_softmax_trace(torch.tensor([1.0, 3.0, 2.0, 5.0], dtype=torch.float64), block_size=2)
    m, l = _as_float(running_max), _as_float(running_sum)
    return _report(
        m is not None and l is not None and math.isclose(m, trace.running_max[-1]) and math.isclose(l, trace.running_sum[-1], rel_tol=1e-3),
        f"Correct: m = 5 and l = (e^-2 + e^0) e^(3-5) + e^-3 + e^0 = {trace.running_sum[-1]:.4f}.",
        "Not yet: after block 1, m = 3 and l = e^-2 + 1; block 2 raises m to 5, so rescale l by e^(3-5) and add e^(2-5) + e^0.",
    )


def check_exercise_2(answer: float) -> bool:
    """Exercise 2: MiB that naive attention's probability matrix needs for one head, N = 8192, float32."""
    value = _as_float(answer)
    return _report(
        value is not None and math.isclose(value, 8192**2 * 4 / 2**20, rel_tol=1e-3),
        "Correct: 8192^2 entries x 4 bytes = 256 MiB, against 32 KiB for the logsumexp that FlashAttention keeps.",
        "Not yet: the matrix has N x N entries of 4 bytes each; 1 MiB is 2^20 bytes.",
    )


def check_exercise_3(answer: int) -> bool:
    """Exercise 3: how many 64 x 64 tiles causal attention computes for N = 1000 (queries and keys)."""
    expected = int(block_schedule(1000, 1000, 64, 64, causal=True).sum())
    value = _as_float(answer)
    return _report(
        value is not None and value == expected,
        f"Correct: 16 blocks per side, and block i sees key blocks 0..i: 16 x 17 / 2 = {expected} of 256 tiles.",
        "Not yet: count the tiles on or below the block diagonal; the last, partial block counts as a block.",
    )
