"""Triton kernels for :mod:`mlnotes.sequence.flash_attention` (CUDA only).

Work in progress by the lead: ``flash_attention_triton`` will run the forward and
backward passes of FlashAttention-2 as Triton kernels. Until then it raises.
"""

from __future__ import annotations

import torch

try:  # triton comes with CUDA builds of PyTorch; CPU machines do not have it
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - depends on the machine
    triton = None
    tl = None


def triton_available() -> bool:
    """Whether the Triton path can run here: triton importable and a CUDA device present."""
    return triton is not None and torch.cuda.is_available()


def flash_attention_triton(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False, scale: float | None = None) -> torch.Tensor:
    """FlashAttention on CUDA tensors of shape ``(batch, heads, seq_len, head_dim)``; differentiable."""
    raise NotImplementedError("the Triton FlashAttention kernel is not written yet")
