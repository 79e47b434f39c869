"""Triton kernels behind :func:`mlnotes.sequence.flash_attention.flash_attention` on CUDA.

The same algorithm as the chapter's PyTorch version (FlashAttention-2, Dao 2023),
written as three GPU kernels:

- ``_fwd_kernel``: one program per block of ``BLOCK_M`` queries of one (batch, head).
  It keeps its queries, a running row maximum ``m``, a running row sum ``l`` and the
  output accumulator on chip and streams over the keys and values in blocks of
  ``BLOCK_N``. It writes the output and the row log-sum-exp (in base 2), nothing of
  size ``N x N``.
- ``_bwd_dkdv_kernel``: one program per block of keys. It recomputes the
  probabilities of its keys against every block of queries from the saved
  log-sum-exp and accumulates ``dK`` and ``dV`` on chip.
- ``_bwd_dq_kernel``: one program per block of queries, accumulating ``dQ`` the same
  way. Two kernels instead of one with atomic adds keep every result deterministic.

Two details matter for speed. Scores are kept in base 2 (``exp2`` is one hardware
instruction; the factor ``log2(e)`` is folded into the softmax scale), and each key
loop is split in two: blocks that need no mask (strictly below the causal diagonal
and inside the sequence) run a loop with no masking code at all, and only the few
blocks on the diagonal or at the ragged end run the masked loop.

Causal masking is aligned top-left, as in ``scaled_dot_product_attention(...,
is_causal=True)``: query ``i`` sees keys ``0..i``.

The module imports on machines without Triton (the kernels are then simply not
defined), so the chapter can show their source anywhere. The kernels are autotuned
over a few block sizes; with the environment variable ``MLNOTES_FLASH_AUTOTUNE=0`` only
the first candidate is compiled (quick test runs; never for benchmarks).
"""

from __future__ import annotations

import math
import os

import torch

try:  # triton comes with CUDA builds of PyTorch; CPU machines do not have it
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - depends on the machine
    triton = None
    tl = None

__all__ = ["SUPPORTED_HEAD_DIMS", "flash_attention_triton", "triton_available"]

#: Head dimensions the kernels are compiled for (a power of two, so one tile holds a row).
SUPPORTED_HEAD_DIMS = (16, 32, 64, 128)

_LOG2E = 1.4426950408889634


def triton_available() -> bool:
    """Whether the Triton path can run here: triton importable and a CUDA device present."""
    return triton is not None and torch.cuda.is_available()


if triton is not None:

    def _fwd_configs() -> list:
        configs = []
        for block_m, block_n, warps, stages in [
            (128, 64, 4, 3),
            (128, 64, 8, 3),
            (128, 64, 8, 4),
            (128, 128, 8, 2),
            (128, 128, 8, 3),
            (128, 128, 8, 4),
            (128, 64, 4, 4),
            (64, 64, 4, 3),
            (64, 128, 4, 3),
        ]:
            configs.append(triton.Config({"BLOCK_M": block_m, "BLOCK_N": block_n}, num_warps=warps, num_stages=stages))
        return _maybe_first(configs)

    def _maybe_first(configs: list) -> list:
        # MLNOTES_FLASH_AUTOTUNE=0 keeps only the first configuration: one compilation per
        # kernel and shape instead of one per candidate (for quick test runs; slower kernels).
        return configs[:1] if os.environ.get("MLNOTES_FLASH_AUTOTUNE", "1") == "0" else configs

    @triton.jit
    def _fwd_inner(
        acc, l_i, m_i, q, k_base, v_base, stride_kn, stride_kd, stride_vn, stride_vd,
        start, end, offs_m, offs_d, n_k, qk_scale,
        BLOCK_N: tl.constexpr, MASKED: tl.constexpr, CAUSAL: tl.constexpr, IEEE: tl.constexpr,
    ):
        offs_n = tl.arange(0, BLOCK_N)
        for start_n in range(start, end, BLOCK_N):
            start_n = tl.multiple_of(start_n, BLOCK_N)
            cols = start_n + offs_n
            k_ptrs = k_base + cols[None, :] * stride_kn + offs_d[:, None] * stride_kd  # (HEAD_DIM, BLOCK_N)
            v_ptrs = v_base + cols[:, None] * stride_vn + offs_d[None, :] * stride_vd  # (BLOCK_N, HEAD_DIM)
            if MASKED:
                k = tl.load(k_ptrs, mask=cols[None, :] < n_k, other=0.0)
            else:
                k = tl.load(k_ptrs)
            if IEEE:
                s = tl.dot(q, k, input_precision="ieee")
            else:
                s = tl.dot(q, k)
            if MASKED:
                keep = cols[None, :] < n_k
                if CAUSAL:
                    keep = keep & (offs_m[:, None] >= cols[None, :])
                s = tl.where(keep, s * qk_scale, float("-inf"))
                m_new = tl.maximum(m_i, tl.max(s, 1))
                p = tl.math.exp2(s - m_new[:, None])
            else:
                # Scale inside the exponent: one fused multiply-add per score instead of two operations.
                m_new = tl.maximum(m_i, tl.max(s, 1) * qk_scale)
                p = tl.math.exp2(s * qk_scale - m_new[:, None])
            alpha = tl.math.exp2(m_i - m_new)
            l_i = l_i * alpha + tl.sum(p, 1)
            acc = acc * alpha[:, None]
            if MASKED:
                v = tl.load(v_ptrs, mask=cols[:, None] < n_k, other=0.0)
            else:
                v = tl.load(v_ptrs)
            if IEEE:
                acc = tl.dot(p.to(v.dtype), v, acc, input_precision="ieee")
            else:
                acc = tl.dot(p.to(v.dtype), v, acc)
            m_i = m_new
        return acc, l_i, m_i

    @triton.autotune(configs=_fwd_configs(), key=["HEAD_DIM", "CAUSAL", "IEEE", "n_q_bucket"])
    @triton.heuristics({"EVEN_M": lambda a: a["n_q"] % a["BLOCK_M"] == 0})
    @triton.jit
    def _fwd_kernel(
        Q, K, V, O, LSE, qk_scale,
        stride_qb, stride_qh, stride_qm, stride_qd,
        stride_kb, stride_kh, stride_kn, stride_kd,
        stride_vb, stride_vh, stride_vn, stride_vd,
        stride_ob, stride_oh, stride_om, stride_od,
        n_heads, n_q, n_k, n_q_bucket,
        HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
        CAUSAL: tl.constexpr, IEEE: tl.constexpr, EVEN_M: tl.constexpr,
    ):
        pid_m = tl.program_id(0)
        bh = tl.program_id(1)
        b = (bh // n_heads).to(tl.int64)
        h = (bh % n_heads).to(tl.int64)
        offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        offs_d = tl.arange(0, HEAD_DIM)
        q_ptrs = Q + b * stride_qb + h * stride_qh + offs_m[:, None] * stride_qm + offs_d[None, :] * stride_qd
        if EVEN_M:
            q = tl.load(q_ptrs)
        else:
            q = tl.load(q_ptrs, mask=offs_m[:, None] < n_q, other=0.0)
        k_base = K + b * stride_kb + h * stride_kh
        v_base = V + b * stride_vb + h * stride_vh

        m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
        l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
        acc = tl.zeros([BLOCK_M, HEAD_DIM], dtype=tl.float32)

        # Keys [0, full_end) need no mask; keys [full_end, end) do.
        if CAUSAL:
            end = tl.minimum((pid_m + 1) * BLOCK_M, n_k)
            full_end = tl.minimum((pid_m * BLOCK_M) // BLOCK_N * BLOCK_N, n_k // BLOCK_N * BLOCK_N)
        else:
            end = n_k
            full_end = n_k // BLOCK_N * BLOCK_N
        acc, l_i, m_i = _fwd_inner(
            acc, l_i, m_i, q, k_base, v_base, stride_kn, stride_kd, stride_vn, stride_vd,
            0, full_end, offs_m, offs_d, n_k, qk_scale, BLOCK_N, False, CAUSAL, IEEE,
        )
        acc, l_i, m_i = _fwd_inner(
            acc, l_i, m_i, q, k_base, v_base, stride_kn, stride_kd, stride_vn, stride_vd,
            full_end, end, offs_m, offs_d, n_k, qk_scale, BLOCK_N, True, CAUSAL, IEEE,
        )

        out = acc / l_i[:, None]
        lse = m_i + tl.math.log2(l_i)  # base-2 log-sum-exp of the scaled scores
        o_ptrs = O + b * stride_ob + h * stride_oh + offs_m[:, None] * stride_om + offs_d[None, :] * stride_od
        if EVEN_M:
            tl.store(o_ptrs, out.to(O.dtype.element_ty))
            tl.store(LSE + bh.to(tl.int64) * n_q + offs_m, lse)
        else:
            tl.store(o_ptrs, out.to(O.dtype.element_ty), mask=offs_m[:, None] < n_q)
            tl.store(LSE + bh.to(tl.int64) * n_q + offs_m, lse, mask=offs_m < n_q)

    def _bwd_configs() -> list:
        return _maybe_first([
            triton.Config({"BLOCK_M": 64, "BLOCK_N": 64}, num_warps=4, num_stages=3),
            triton.Config({"BLOCK_M": 64, "BLOCK_N": 128}, num_warps=8, num_stages=3),
            triton.Config({"BLOCK_M": 32, "BLOCK_N": 128}, num_warps=4, num_stages=3),
            triton.Config({"BLOCK_M": 64, "BLOCK_N": 64}, num_warps=4, num_stages=4),
        ])

    @triton.autotune(configs=_bwd_configs(), key=["HEAD_DIM", "CAUSAL", "IEEE", "n_q_bucket"])
    @triton.jit
    def _bwd_dkdv_kernel(
        Q, K, V, DO, LSE, DELTA, DK, DV, qk_scale, sm_scale,
        stride_b, stride_h, stride_n, stride_d,
        stride_kb, stride_kh, stride_kn, stride_kd,
        n_heads, n_q, n_k, n_q_bucket,
        HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
        CAUSAL: tl.constexpr, IEEE: tl.constexpr,
    ):
        # Q, DO share (stride_b, stride_h, stride_n, stride_d); K, V, DK, DV share the stride_k* set.
        pid_n = tl.program_id(0)
        bh = tl.program_id(1)
        b = (bh // n_heads).to(tl.int64)
        h = (bh % n_heads).to(tl.int64)
        offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        offs_d = tl.arange(0, HEAD_DIM)
        offs_mb = tl.arange(0, BLOCK_M)
        kv_off = b * stride_kb + h * stride_kh + offs_n[:, None] * stride_kn + offs_d[None, :] * stride_kd
        k = tl.load(K + kv_off, mask=offs_n[:, None] < n_k, other=0.0)
        v = tl.load(V + kv_off, mask=offs_n[:, None] < n_k, other=0.0)
        dk = tl.zeros([BLOCK_N, HEAD_DIM], dtype=tl.float32)
        dv = tl.zeros([BLOCK_N, HEAD_DIM], dtype=tl.float32)
        q_base = Q + b * stride_b + h * stride_h
        do_base = DO + b * stride_b + h * stride_h
        row_base = bh.to(tl.int64) * n_q
        start = 0
        if CAUSAL:
            start = (pid_n * BLOCK_N) // BLOCK_M * BLOCK_M
        for start_m in range(start, n_q, BLOCK_M):
            offs_m = start_m + offs_mb
            row_ok = offs_m < n_q
            qd_off = offs_m[:, None] * stride_n + offs_d[None, :] * stride_d
            q = tl.load(q_base + qd_off, mask=row_ok[:, None], other=0.0)
            do = tl.load(do_base + qd_off, mask=row_ok[:, None], other=0.0)
            lse = tl.load(LSE + row_base + offs_m, mask=row_ok, other=0.0)
            delta = tl.load(DELTA + row_base + offs_m, mask=row_ok, other=0.0)
            if IEEE:
                s_t = tl.dot(k, tl.trans(q), input_precision="ieee") * qk_scale  # (BLOCK_N, BLOCK_M)
            else:
                s_t = tl.dot(k, tl.trans(q)) * qk_scale
            p_t = tl.math.exp2(s_t - lse[None, :])
            keep = row_ok[None, :] & (offs_n[:, None] < n_k)
            if CAUSAL:
                keep = keep & (offs_m[None, :] >= offs_n[:, None])
            p_t = tl.where(keep, p_t, 0.0)
            if IEEE:
                dv = tl.dot(p_t.to(do.dtype), do, dv, input_precision="ieee")
                dp_t = tl.dot(v, tl.trans(do), input_precision="ieee")
            else:
                dv = tl.dot(p_t.to(do.dtype), do, dv)
                dp_t = tl.dot(v, tl.trans(do))
            ds_t = p_t * (dp_t - delta[None, :])
            if IEEE:
                dk = tl.dot(ds_t.to(q.dtype), q, dk, input_precision="ieee")
            else:
                dk = tl.dot(ds_t.to(q.dtype), q, dk)
        dk = dk * sm_scale
        tl.store(DK + kv_off, dk.to(DK.dtype.element_ty), mask=offs_n[:, None] < n_k)
        tl.store(DV + kv_off, dv.to(DV.dtype.element_ty), mask=offs_n[:, None] < n_k)

    @triton.autotune(configs=_bwd_configs(), key=["HEAD_DIM", "CAUSAL", "IEEE", "n_q_bucket"])
    @triton.jit
    def _bwd_dq_kernel(
        Q, K, V, DO, LSE, DELTA, DQ, qk_scale, sm_scale,
        stride_b, stride_h, stride_n, stride_d,
        stride_kb, stride_kh, stride_kn, stride_kd,
        n_heads, n_q, n_k, n_q_bucket,
        HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
        CAUSAL: tl.constexpr, IEEE: tl.constexpr,
    ):
        # Q, DO, DQ share (stride_b, stride_h, stride_n, stride_d); K, V share the stride_k* set.
        pid_m = tl.program_id(0)
        bh = tl.program_id(1)
        b = (bh // n_heads).to(tl.int64)
        h = (bh % n_heads).to(tl.int64)
        offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        offs_d = tl.arange(0, HEAD_DIM)
        offs_nb = tl.arange(0, BLOCK_N)
        row_ok = offs_m < n_q
        qd_off = b * stride_b + h * stride_h + offs_m[:, None] * stride_n + offs_d[None, :] * stride_d
        q = tl.load(Q + qd_off, mask=row_ok[:, None], other=0.0)
        do = tl.load(DO + qd_off, mask=row_ok[:, None], other=0.0)
        row_base = bh.to(tl.int64) * n_q
        lse = tl.load(LSE + row_base + offs_m, mask=row_ok, other=0.0)
        delta = tl.load(DELTA + row_base + offs_m, mask=row_ok, other=0.0)
        dq = tl.zeros([BLOCK_M, HEAD_DIM], dtype=tl.float32)
        k_base = K + b * stride_kb + h * stride_kh
        v_base = V + b * stride_kb + h * stride_kh
        end = n_k
        if CAUSAL:
            end = tl.minimum((pid_m + 1) * BLOCK_M, n_k)
        for start_n in range(0, end, BLOCK_N):
            cols = start_n + offs_nb
            col_ok = cols < n_k
            kv_off = cols[:, None] * stride_kn + offs_d[None, :] * stride_kd
            k = tl.load(k_base + kv_off, mask=col_ok[:, None], other=0.0)
            v = tl.load(v_base + kv_off, mask=col_ok[:, None], other=0.0)
            if IEEE:
                s = tl.dot(q, tl.trans(k), input_precision="ieee") * qk_scale
            else:
                s = tl.dot(q, tl.trans(k)) * qk_scale
            p = tl.math.exp2(s - lse[:, None])
            keep = row_ok[:, None] & col_ok[None, :]
            if CAUSAL:
                keep = keep & (offs_m[:, None] >= cols[None, :])
            p = tl.where(keep, p, 0.0)
            if IEEE:
                dp = tl.dot(do, tl.trans(v), input_precision="ieee")
            else:
                dp = tl.dot(do, tl.trans(v))
            ds = p * (dp - delta[:, None])
            if IEEE:
                dq = tl.dot(ds.to(k.dtype), k, dq, input_precision="ieee")
            else:
                dq = tl.dot(ds.to(k.dtype), k, dq)
        dq = dq * sm_scale
        tl.store(DQ + qd_off, dq.to(DQ.dtype.element_ty), mask=row_ok[:, None])


def _bucket(n: int) -> int:
    """Autotuning key for a sequence length: its power-of-two bucket, so lengths share tuning."""
    return 1 << max(int(n) - 1, 0).bit_length()


def _check(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    if not triton_available():
        raise RuntimeError("the Triton FlashAttention path needs triton and a CUDA device; use backend='torch'")
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not t.is_cuda:
            raise ValueError(f"{name} must be a CUDA tensor for the Triton path, got device {t.device}")
        if t.dtype not in (torch.float16, torch.bfloat16, torch.float32):
            raise TypeError(f"{name} must be float16, bfloat16 or float32 for the Triton path, got {t.dtype}")
        if t.ndim != 4:
            raise ValueError(f"{name} must have shape (batch, heads, seq_len, head_dim), got {tuple(t.shape)}")
    if not (q.dtype == k.dtype == v.dtype):
        raise TypeError(f"q, k and v must share a dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    if q.shape[-1] not in SUPPORTED_HEAD_DIMS or k.shape[-1] != q.shape[-1] or v.shape[-1] != q.shape[-1]:
        raise ValueError(f"the Triton path needs one head_dim in {SUPPORTED_HEAD_DIMS} for q, k and v, got {q.shape[-1]}, {k.shape[-1]}, {v.shape[-1]}")
    if k.shape != v.shape or q.shape[:2] != k.shape[:2]:
        raise ValueError(f"q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}: batch, heads and head_dim must agree, and k, v must have one shape")
    if q.shape[2] == 0 or k.shape[2] == 0:
        raise ValueError("sequence lengths must be at least 1")


#: Compiled forward kernels by launch signature: (compiled kernel, BLOCK_M, BLOCK_N).
_FWD_LAUNCHES: dict[tuple, tuple] = {}


def _int_spec(x: int) -> tuple[bool, bool, bool]:
    """What Triton specialises an integer argument on: equal to 1, divisible by 16, needs 64 bits."""
    return (x == 1, x % 16 == 0, x >= 2**31)


def _forward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool, sm_scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    batch, heads, n_q, head_dim = q.shape
    n_k = k.shape[2]
    out = torch.empty_like(q)
    lse = torch.empty((batch * heads, n_q), device=q.device, dtype=torch.float32)
    ieee = q.dtype == torch.float32
    ints = (*q.stride(), *k.stride(), *v.stride(), *out.stride(), heads, n_q, n_k, _bucket(n_q))
    # Launching through the autotuner and the JIT dispatcher costs tens of microseconds of
    # Python per call, as long as the whole kernel at N = 1024. After the first call of a
    # launch signature (what Triton compiles a kernel for: dtypes, constants, integer and
    # pointer specialisations, the tuning key), launch the compiled kernel directly.
    signature = (
        q.device.index, q.dtype, head_dim, causal, _bucket(n_q), n_q % 64 == 0, n_q % 128 == 0,
        tuple(_int_spec(i) for i in ints), tuple(t.data_ptr() % 16 == 0 for t in (q, k, v, out, lse)),
    )
    launch = _FWD_LAUNCHES.get(signature)
    if launch is None:
        compiled = _fwd_kernel[lambda meta: (triton.cdiv(n_q, meta["BLOCK_M"]), batch * heads)](
            q, k, v, out, lse, sm_scale * _LOG2E, *ints, HEAD_DIM=head_dim, CAUSAL=causal, IEEE=ieee,
        )
        best = _fwd_kernel.best_config.kwargs
        _FWD_LAUNCHES[signature] = (compiled, best["BLOCK_M"], best["BLOCK_N"])
    else:
        compiled, block_m, block_n = launch
        compiled[(triton.cdiv(n_q, block_m), batch * heads, 1)](
            q, k, v, out, lse, sm_scale * _LOG2E, *ints, head_dim, block_m, block_n, causal, ieee, n_q % block_m == 0,
        )
    return out, lse


def _backward(q, k, v, out, lse, grad_out, causal: bool, sm_scale: float):
    batch, heads, n_q, head_dim = q.shape
    n_k = k.shape[2]
    grad_out = grad_out.contiguous()
    # Q, dO, dQ share strides (all contiguous); K, V, dK, dV share strides (all contiguous).
    q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    delta = (grad_out.float() * out.float()).sum(-1).reshape(batch * heads, n_q)
    dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    args = dict(HEAD_DIM=head_dim, CAUSAL=causal, IEEE=q.dtype == torch.float32)
    _bwd_dkdv_kernel[lambda meta: (triton.cdiv(n_k, meta["BLOCK_N"]), batch * heads)](
        q, k, v, grad_out, lse, delta, dk, dv, sm_scale * _LOG2E, sm_scale,
        *q.stride(), *k.stride(), heads, n_q, n_k, _bucket(n_q), **args,
    )
    _bwd_dq_kernel[lambda meta: (triton.cdiv(n_q, meta["BLOCK_M"]), batch * heads)](
        q, k, v, grad_out, lse, delta, dq, sm_scale * _LOG2E, sm_scale,
        *q.stride(), *k.stride(), heads, n_q, n_k, _bucket(n_q), **args,
    )
    return dq, dk, dv


class _FlashAttentionTriton(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, causal, sm_scale):
        out, lse = _forward(q, k, v, causal, sm_scale)
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.causal = causal
        ctx.sm_scale = sm_scale
        return out

    @staticmethod
    def backward(ctx, grad_out):
        q, k, v, out, lse = ctx.saved_tensors
        dq, dk, dv = _backward(q, k, v, out, lse, grad_out, ctx.causal, ctx.sm_scale)
        return dq, dk, dv, None, None


def flash_attention_triton(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False, scale: float | None = None) -> torch.Tensor:
    """FlashAttention-2 as Triton kernels; differentiable.

    Parameters
    ----------
    q : torch.Tensor
        Queries, shape ``(batch, heads, n_q, head_dim)``, CUDA, float16, bfloat16 or float32.
    k, v : torch.Tensor
        Keys and values, shape ``(batch, heads, n_k, head_dim)``, same device and dtype.
    causal : bool, default False
        Mask so that query ``i`` sees keys ``0..i`` (top-left aligned, like
        ``scaled_dot_product_attention(is_causal=True)``).
    scale : float, optional
        Softmax scale; default ``1 / sqrt(head_dim)``.

    Returns
    -------
    torch.Tensor
        The attention output, shape ``(batch, heads, n_q, head_dim)``, dtype of ``q``.
        Only ``q, k, v``, the output and one float32 log-sum-exp per query row are
        kept for the backward pass.

    Notes
    -----
    float32 inputs use exact (IEEE) fp32 matrix products inside the kernels, which is
    correct but several times slower than the half-precision path; the half-precision
    path multiplies in fp16/bf16 and accumulates in fp32, as FlashAttention does.
    """
    _check(q, k, v)
    head_dim = q.shape[-1]
    sm_scale = float(scale) if scale is not None else 1.0 / math.sqrt(head_dim)
    if not math.isfinite(sm_scale) or sm_scale <= 0:
        raise ValueError(f"scale must be a finite positive number, got {scale}")
    if torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad):
        return _FlashAttentionTriton.apply(q, k, v, bool(causal), sm_scale)
    return _forward(q, k, v, bool(causal), sm_scale)[0]  # inference: skip the autograd bookkeeping
