"""Tests of mlnotes.sequence.flash_attention (chapter book/sequence/flash_attention.ipynb).

The independent reference is ``torch.nn.functional.scaled_dot_product_attention``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn import functional as F

from mlnotes.sequence import _flash_triton
from mlnotes.sequence.flash_attention import (
    block_schedule,
    check_exercise_1,
    check_exercise_2,
    check_exercise_3,
    flash_attention,
    hbm_accesses,
    naive_attention,
    online_softmax,
    online_softmax_trace,
    saved_tensor_bytes,
)


def qkvo(batch, heads, seq_len_q, seq_len_k, head_dim, *, seed=0, dtype=torch.float64, device="cpu"):
    """Random q, k, v and an upstream gradient dO, drawn in float64 and cast."""
    gen = torch.Generator().manual_seed(seed)
    shapes = [(batch, heads, seq_len_q, head_dim), (batch, heads, seq_len_k, head_dim), (batch, heads, seq_len_k, head_dim), (batch, heads, seq_len_q, head_dim)]
    return [torch.randn(s, generator=gen, dtype=torch.float64).to(device=device, dtype=dtype) for s in shapes]


def output_and_grads(attention, q, k, v, grad_out, dtype=None, **kwargs):
    """Output and (dq, dk, dv) of `attention` on leaf copies of q, k, v cast to `dtype`."""
    leaves = [x.detach().to(dtype or x.dtype).requires_grad_(True) for x in (q, k, v)]
    out = attention(*leaves, **kwargs)
    grads = torch.autograd.grad(out, leaves, grad_out.to(out.dtype))
    return (out, *grads)


def sdpa(q, k, v, causal=False, scale=None):
    return F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale)


def max_errors(results, reference):
    return [float((a.detach().double() - b.detach().double()).abs().max()) for a, b in zip(results, reference)]


# --------------------------------------------------------------------------- online softmax
values = st.one_of(st.floats(-1e4, 1e4), st.just(-math.inf))


@settings(max_examples=80, deadline=None)
@given(st.lists(values, min_size=1, max_size=300), st.integers(1, 100))
def test_online_softmax_equals_softmax(row, block_size):
    x = torch.tensor(row, dtype=torch.float64)
    expected = torch.softmax(x, dim=-1)  # NaN when every value is -inf, for both
    assert torch.allclose(online_softmax(x, block_size), expected, atol=1e-12, rtol=1e-10, equal_nan=True)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 5), st.integers(1, 200), st.integers(1, 70), st.integers(0, 2**16), st.floats(0.1, 500.0))
def test_online_softmax_on_batches(rows, length, block_size, seed, spread):
    x = spread * torch.randn(rows, 2, length, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    assert torch.allclose(online_softmax(x, block_size), torch.softmax(x, dim=-1), atol=1e-12)


def test_online_softmax_trace():
    x = torch.tensor([1.0, 3.0, 2.0, 5.0, -1.0], dtype=torch.float64)
    trace = online_softmax_trace(x, block_size=2)
    assert trace.seen.tolist() == [2, 4, 5]
    assert trace.running_max.tolist() == [3.0, 5.0, 5.0]
    # After each block, l = sum of exp(x_i - m) over the values seen so far.
    for seen, m, l in zip(trace.seen, trace.running_max, trace.running_sum):
        assert l == pytest.approx(float(torch.exp(x[:seen] - m).sum()), rel=1e-12)


# --------------------------------------------------------------------------- golden: forward and gradients
CASES = [  # (seq_len_q, seq_len_k, causal)
    (1, 1, False), (1, 1, True), (63, 63, True), (65, 65, False), (65, 65, True),
    (100, 100, False), (100, 100, True), (257, 257, True),
    (70, 130, False), (130, 70, False), (70, 130, True), (130, 70, True),
]


@pytest.mark.parametrize(("seq_len_q", "seq_len_k", "causal"), CASES)
def test_float64_matches_sdpa(seq_len_q, seq_len_k, causal):
    q, k, v, grad_out = qkvo(2, 3, seq_len_q, seq_len_k, 16, seed=seq_len_q + seq_len_k)
    ours = output_and_grads(flash_attention, q, k, v, grad_out, causal=causal)
    reference = output_and_grads(sdpa, q, k, v, grad_out, causal=causal)
    assert ours[0].dtype == torch.float64 and ours[0].shape == (2, 3, seq_len_q, 16)
    assert max(max_errors(ours, reference)) < 1e-10


@pytest.mark.parametrize(("block_q", "block_k"), [(1, 1), (7, 13), (32, 48), (512, 512)])
def test_block_sizes_and_scale(block_q, block_k):
    q, k, v, grad_out = qkvo(1, 2, 45, 45, 8, seed=3)
    for causal in (False, True):
        ours = output_and_grads(flash_attention, q, k, v, grad_out, causal=causal, scale=0.3, block_q=block_q, block_k=block_k)
        reference = output_and_grads(sdpa, q, k, v, grad_out, causal=causal, scale=0.3)
        assert max(max_errors(ours, reference)) < 1e-10


def test_value_head_dim_may_differ():
    q, k, _, _ = qkvo(1, 2, 30, 40, 8, seed=4)
    v = torch.randn(1, 2, 40, 12, dtype=torch.float64)
    assert torch.allclose(flash_attention(q, k, v, block_q=16, block_k=16), sdpa(q, k, v), atol=1e-12)


@pytest.mark.parametrize("causal", [False, True])
def test_float32_matches_sdpa(causal):
    # Float32 rounds at 6e-8 relative; over 257 keys and 64-dim dot products the errors of any
    # float32 attention against float64 are ~1e-6 (measured: SDPA's own are 5e-7 to 3e-6).
    # Ours must be within atol 2e-5 and at most twice SDPA's float32 error (+1e-6 for ties).
    q, k, v, grad_out = qkvo(2, 4, 257, 257, 64, seed=7)
    exact = output_and_grads(sdpa, q, k, v, grad_out, causal=causal)
    ours = max_errors(output_and_grads(flash_attention, q, k, v, grad_out, dtype=torch.float32, causal=causal), exact)
    theirs = max_errors(output_and_grads(sdpa, q, k, v, grad_out, dtype=torch.float32, causal=causal), exact)
    assert max(ours) < 2e-5
    assert all(a <= 2 * b + 1e-6 for a, b in zip(ours, theirs)), (ours, theirs)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("causal", [False, True])
def test_half_precision_criterion_on_cpu(dtype, causal):
    # The FlashAttention test criterion: error against float64 at most twice that of a naive
    # implementation in the same precision. Ours accumulates in float32, so it does better.
    q, k, v, grad_out = qkvo(1, 4, 200, 200, 64, seed=11)
    exact = output_and_grads(sdpa, q, k, v, grad_out, causal=causal)
    ours = output_and_grads(flash_attention, q, k, v, grad_out, dtype=dtype, causal=causal)
    assert all(t.dtype == dtype for t in ours)
    errors = max_errors(ours, exact)
    naive = max_errors(output_and_grads(naive_attention, q, k, v, grad_out, dtype=dtype, causal=causal), exact)
    assert all(a <= 2 * b for a, b in zip(errors, naive)), (errors, naive)


def test_gradcheck():
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(1, 2, 5, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    k = torch.randn(1, 2, 7, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    v = torch.randn(1, 2, 7, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    for causal in (False, True):
        assert torch.autograd.gradcheck(lambda q, k, v: flash_attention(q, k, v, causal=causal, block_q=2, block_k=3), (q, k, v))


def test_naive_attention_matches_sdpa():
    q, k, v, _ = qkvo(2, 2, 33, 33, 8, seed=5)
    for causal in (False, True):
        assert torch.allclose(naive_attention(q, k, v, causal=causal), sdpa(q, k, v, causal=causal), atol=1e-12)


def test_auto_backend_on_cpu_is_torch():
    q, k, v, _ = qkvo(1, 1, 20, 20, 8, seed=6)
    assert torch.equal(flash_attention(q, k, v), flash_attention(q, k, v, backend="torch"))


# --------------------------------------------------------------------------- tiling, memory, IO
def test_block_schedule():
    full = block_schedule(257, 257, 64, 64)
    assert full.shape == (5, 5) and full.all()
    causal = block_schedule(257, 257, 64, 64, causal=True)
    assert np.array_equal(causal, np.tril(np.ones((5, 5), dtype=bool)))
    assert block_schedule(1000, 1000, 64, 64, causal=True).sum() == 16 * 17 // 2
    # More queries than keys (top-left alignment): the last query blocks see every key block.
    assert block_schedule(256, 128, 64, 64, causal=True).sum(axis=1).tolist() == [1, 2, 2, 2]


def test_saved_bytes_linear_for_ours_quadratic_for_naive():
    lengths = np.array([128, 256, 512, 1024])
    ours, naive = [], []
    for n in lengths:
        q = torch.randn(1, 2, int(n), 32)
        ours.append(saved_tensor_bytes(flash_attention, q, q, q, causal=True))
        naive.append(saved_tensor_bytes(naive_attention, q, q, q, causal=True))
        # Exactly the output (float32) and the logsumexp (float32) beyond the inputs.
        assert ours[-1] == 2 * n * 32 * 4 + 2 * n * 4
    slope_ours = np.polyfit(np.log(lengths), np.log(ours), 1)[0]
    slope_naive = np.polyfit(np.log(lengths), np.log(naive), 1)[0]
    assert abs(slope_ours - 1.0) < 0.01 and abs(slope_naive - 2.0) < 0.05
    q = torch.randn(1, 1, 64, 8)
    assert saved_tensor_bytes(flash_attention, q, q, q, include_inputs=True) == saved_tensor_bytes(flash_attention, q, q, q) + 3 * 64 * 8 * 4


def test_hbm_accesses():
    counts = hbm_accesses(1024, 64, 256 * 64)  # B_c = 64, T_c = 16
    assert counts.standard == 4 * 1024 * 64 + 4 * 1024**2
    assert counts.flash == 2 * 1024 * 64 + 16 * (3 * 1024 * 64 + 4 * 1024)
    # Theta(N^2 d^2 / M): doubling N (nearly) quadruples it, doubling M (nearly) halves it.
    big = hbm_accesses(16384, 64, 16384)
    assert hbm_accesses(32768, 64, 16384).flash / big.flash == pytest.approx(4.0, rel=0.02)
    assert big.flash / hbm_accesses(16384, 64, 32768).flash == pytest.approx(2.0, rel=0.02)


def test_exercise_checkers(capsys):
    trace = online_softmax_trace(torch.tensor([1.0, 3.0, 2.0, 5.0], dtype=torch.float64), 2)
    assert check_exercise_1(5.0, (math.exp(-2) + 1) * math.exp(-2) + math.exp(-3) + 1)
    assert trace.running_sum[-1] == pytest.approx((math.exp(-2) + 1) * math.exp(-2) + math.exp(-3) + 1)
    assert not check_exercise_1(5.0, math.exp(-4) + math.exp(-2) + math.exp(-3) + 2)
    assert check_exercise_2(256) and not check_exercise_2(256 * 1024) and not check_exercise_2("many")
    assert check_exercise_3(136) and not check_exercise_3(128)
    assert "Correct" in capsys.readouterr().out


# --------------------------------------------------------------------------- bad input
def test_bad_inputs():
    q, k, v, _ = qkvo(1, 2, 8, 8, 4)
    with pytest.raises(TypeError, match="q must be a torch.Tensor"):
        flash_attention(q.numpy(), k, v)
    with pytest.raises(TypeError, match="k must be a floating-point tensor"):
        flash_attention(q, k.long(), v)
    with pytest.raises(ValueError, match=r"v must have shape \(batch, heads, seq_len, head_dim\)"):
        flash_attention(q, k, v[0])
    with pytest.raises(ValueError, match="q must not be empty"):
        flash_attention(q[:, :, :0], k, v)
    with pytest.raises(TypeError, match="one dtype"):
        flash_attention(q, k.float(), v)
    with pytest.raises(ValueError, match="share \\(batch, heads\\)"):
        flash_attention(q, k[:, :1], v[:, :1])
    with pytest.raises(ValueError, match="k must have the head_dim of q"):
        flash_attention(q, k[..., :3], v)
    with pytest.raises(ValueError, match="v must have the seq_len of k"):
        flash_attention(q, k, v[:, :, :5])
    with pytest.raises(ValueError, match="q contains NaN"):
        flash_attention(q.clone().fill_(math.nan), k, v)
    with pytest.raises(TypeError, match="causal must be a bool"):
        flash_attention(q, k, v, causal="yes")
    with pytest.raises(ValueError, match="scale must be a positive finite float"):
        flash_attention(q, k, v, scale=-1.0)
    with pytest.raises(ValueError, match="block_q must be a positive int"):
        flash_attention(q, k, v, block_q=0)
    with pytest.raises(TypeError, match="block_k must be a positive int"):
        flash_attention(q, k, v, block_k=2.5)
    with pytest.raises(ValueError, match="backend must be"):
        flash_attention(q, k, v, backend="cuda")
    if not _flash_triton.triton_available():
        with pytest.raises(ValueError, match="backend='triton' cannot run here"):
            flash_attention(q, k, v, backend="triton")
    with pytest.raises(ValueError, match="x must have a non-empty last axis"):
        online_softmax(torch.zeros(3, 0))
    with pytest.raises(ValueError, match="x contains NaN"):
        online_softmax(torch.tensor([1.0, math.nan]))
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        online_softmax(torch.arange(3))
    with pytest.raises(ValueError, match="x must be 1-D"):
        online_softmax_trace(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="sram_size must hold at least"):
        hbm_accesses(1024, 64, 100)
    with pytest.raises(TypeError, match="attention must be callable"):
        saved_tensor_bytes("sdpa", q, k, v)


# --------------------------------------------------------------------------- GPU
def _half_criterion(attention, q, k, v, grad_out, dtype, causal):
    """Errors of `attention` and of a same-precision naive attention against float64 SDPA on the GPU."""
    exact = output_and_grads(sdpa, q, k, v, grad_out, causal=causal)
    ours = output_and_grads(attention, q, k, v, grad_out, dtype=dtype, causal=causal)
    naive = output_and_grads(naive_attention, q, k, v, grad_out, dtype=dtype, causal=causal)
    # Slack: half a unit in the last place at the largest reference value, the error of merely
    # storing the exact answer in `dtype`, which no implementation avoids, plus 1e-6 for float32
    # round-off where the exact gradient is 0 (seq_len 1: dq = dk = 0 exactly, while dP - D
    # cancels two float32 sums of unit-sized terms that are added in different orders).
    eps = torch.finfo(dtype).eps
    slack = [0.5 * eps * float(t.detach().abs().max()) + 1e-6 for t in exact]
    return max_errors(ours, exact), max_errors(naive, exact), slack


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("causal", [False, True])
def test_torch_path_on_cuda(dtype, causal):
    q, k, v, grad_out = qkvo(2, 4, 257, 257, 64, seed=21, device="cuda")
    attention = lambda *x, **kw: flash_attention(*x, backend="torch", **kw)  # noqa: E731
    ours, naive, slack = _half_criterion(attention, q, k, v, grad_out, dtype, causal)
    assert all(a <= 2 * b + s for a, b, s in zip(ours, naive, slack)), (ours, naive)
    if dtype == torch.float32:
        assert max(ours) < 1e-4


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("head_dim", [64, 128])
@pytest.mark.parametrize("seq_len", [1, 63, 257, 1000])
def test_triton_path_criterion(dtype, causal, head_dim, seq_len):
    if not _flash_triton.triton_available():
        pytest.skip("Triton is not available")
    q, k, v, grad_out = qkvo(2, 3, seq_len, seq_len, head_dim, seed=seq_len + head_dim, device="cuda")
    attention = lambda *x, **kw: flash_attention(*x, backend="triton", **kw)  # noqa: E731
    ours, naive, slack = _half_criterion(attention, q, k, v, grad_out, dtype, causal)
    assert all(a <= 2 * b + s for a, b, s in zip(ours, naive, slack)), (ours, naive)


@pytest.mark.gpu
@pytest.mark.parametrize(("seq_len_q", "seq_len_k"), [(100, 300), (300, 100)])
@pytest.mark.parametrize("causal", [False, True])
def test_triton_path_different_lengths(seq_len_q, seq_len_k, causal):
    # Causal with unequal lengths: top-left alignment in both implementations, as SDPA's is_causal.
    if not _flash_triton.triton_available():
        pytest.skip("Triton is not available")
    q, k, v, grad_out = qkvo(1, 2, seq_len_q, seq_len_k, 64, seed=3, device="cuda")
    ours, naive, slack = _half_criterion(
        lambda *x, **kw: flash_attention(*x, backend="triton", **kw), q, k, v, grad_out, torch.bfloat16, causal
    )
    assert all(a <= 2 * b + s for a, b, s in zip(ours, naive, slack)), (ours, naive)


@pytest.mark.gpu
def test_auto_backend_picks_triton_for_half_on_cuda():
    if not _flash_triton.triton_available():
        pytest.skip("Triton is not available")
    q, k, v, _ = qkvo(1, 2, 128, 128, 64, seed=5, device="cuda", dtype=torch.bfloat16)
    assert torch.equal(flash_attention(q, k, v), _flash_triton.flash_attention_triton(q, k, v))


def _peak_extra_mib(attention, seq_len, dtype, **kwargs):
    """Peak CUDA memory of a forward and backward pass beyond the inputs, in MiB."""
    q, k, v, grad_out = qkvo(1, 8, seq_len, seq_len, 64, seed=0, device="cuda", dtype=dtype)
    leaves = [x.requires_grad_(True) for x in (q, k, v)]
    # A first, unmeasured pass: Triton's autotuner benchmarks its configurations (with a 256 MB
    # cache-flushing buffer) on the first call of every length bucket.
    attention(*leaves, causal=True, **kwargs).backward(grad_out)
    for x in leaves:
        x.grad = None
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    out = attention(*leaves, causal=True, **kwargs)
    out.backward(grad_out)
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - before) / 2**20


@pytest.mark.gpu
@pytest.mark.parametrize("backend", ["torch", "triton"])
def test_peak_memory_linear_vs_quadratic(backend):
    if backend == "triton" and not _flash_triton.triton_available():
        pytest.skip("Triton is not available")
    dtype = torch.bfloat16
    lengths = np.array([1024, 2048, 4096, 8192])
    kwargs = {"backend": backend, "block_q": 128, "block_k": 128} if backend == "torch" else {"backend": backend}
    ours = [_peak_extra_mib(flash_attention, int(n), dtype, **kwargs) for n in lengths]
    naive = [_peak_extra_mib(naive_attention, int(n), dtype) for n in lengths]
    slope_ours = np.polyfit(np.log(lengths), np.log(ours), 1)[0]
    slope_naive = np.polyfit(np.log(lengths), np.log(naive), 1)[0]
    assert slope_ours < 1.2 and slope_naive > 1.8, (ours, naive)
    assert naive[-1] > 10 * ours[-1]
