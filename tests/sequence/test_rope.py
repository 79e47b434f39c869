"""Tests of mlnotes.sequence.rope (chapter book/sequence/rope.ipynb)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mlnotes.sequence.rope import (
    apply_rope,
    apply_rope_2d,
    apply_rope_complex,
    check_exercise_1,
    check_exercise_2,
    check_exercise_3,
    elu_feature_map,
    grid_positions,
    interleaved_to_half_permutation,
    linear_attention_rope,
    ntk_scaled_base,
    rope_cache,
    rope_decay_bound,
    rope_frequencies,
    rotate_pairs,
)

LAYOUTS = ["half", "interleaved"]


def randn(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# --------------------------------------------------------------------------- independent references
def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """Hugging Face LLaMA's helper: (x1, x2) -> (-x2, x1) on the two halves."""
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)


def llama_style_rope(x: torch.Tensor, positions: torch.Tensor, base: float) -> torch.Tensor:
    """GPT-NeoX / LLaMA (transformers) formulation: x * cos + rotate_half(x) * sin, frequencies duplicated."""
    dim = x.shape[-1]
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
    freqs = torch.outer(positions.double(), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return x * emb.cos() + rotate_half(x) * emb.sin()


def rotation_matrix(position: float, dim: int, base: float) -> torch.Tensor:
    """RoFormer eq. (15): the block-diagonal matrix R_{Theta, m} acting on interleaved pairs."""
    R = torch.zeros(dim, dim, dtype=torch.float64)
    for i in range(dim // 2):
        angle = position * base ** (-2.0 * i / dim)
        c, s = math.cos(angle), math.sin(angle)
        R[2 * i : 2 * i + 2, 2 * i : 2 * i + 2] = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    return R


def quadratic_linear_attention(q, k, v, causal, positions=None, base=10000.0):
    """RoFormer eq. (19) written out with the full (seq_len x seq_len) score matrix."""
    n, dim = q.shape[-2], q.shape[-1]
    positions = torch.arange(n) if positions is None else positions
    phi_q, phi_k = elu_feature_map(q), elu_feature_map(k)
    rot_q = llama_style_rope(phi_q, positions, base)
    rot_k = llama_style_rope(phi_k, positions, base)
    scores = rot_q @ rot_k.transpose(-1, -2)
    weights = phi_q @ phi_k.transpose(-1, -2)
    if causal:
        mask = torch.tril(torch.ones(n, n, dtype=torch.bool))
        scores, weights = scores * mask, weights * mask
    return (scores @ v) / (weights.sum(-1, keepdim=True) + 1e-6)


# --------------------------------------------------------------------------- golden tests
def test_frequencies_closed_form():
    theta = rope_frequencies(8, 10000.0)
    assert torch.allclose(theta, torch.tensor([1.0, 0.1, 0.01, 0.001], dtype=torch.float64), rtol=1e-14)


@pytest.mark.parametrize("dim", [2, 8, 64])
def test_half_layout_equals_llama_rotate_half(dim):
    x = randn(2, 3, 11, dim)
    positions = torch.arange(11) * 7 + 3
    assert torch.allclose(apply_rope(x, positions, 500.0), llama_style_rope(x, positions, 500.0), atol=1e-12)


def test_interleaved_layout_equals_rotation_matrices():
    dim, base = 10, 10000.0
    x = randn(6, dim)
    positions = torch.tensor([0.0, 1.0, 2.5, 17.0, 300.0, 4097.0], dtype=torch.float64)
    expected = torch.stack([rotation_matrix(float(m), dim, base) @ x[j] for j, m in enumerate(positions)])
    assert torch.allclose(apply_rope(x, positions, base, layout="interleaved"), expected, atol=1e-12)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_complex_and_real_forms_agree(layout):
    x = randn(2, 4, 9, 16)
    positions = randn(9, seed=1).abs() * 100
    assert torch.allclose(apply_rope_complex(x, positions, layout=layout), apply_rope(x, positions, layout=layout), atol=1e-12)


def test_complex_form_is_multiplication_by_phase():
    x = randn(5, 2)  # one pair: z = a + ib turns by e^{i m}
    out = apply_rope_complex(x, layout="interleaved")
    z = torch.complex(x[:, 0], x[:, 1]) * torch.exp(1j * torch.arange(5, dtype=torch.float64))
    assert torch.allclose(out, torch.view_as_real(z), atol=1e-14)


def test_layouts_agree_after_permutation():
    dim = 12
    perm = interleaved_to_half_permutation(dim)
    assert perm.tolist() == [0, 2, 4, 6, 8, 10, 1, 3, 5, 7, 9, 11]
    x = randn(3, 7, dim)
    assert torch.allclose(apply_rope(x[..., perm], layout="half"), apply_rope(x, layout="interleaved")[..., perm], atol=1e-13)


def test_default_positions_are_arange():
    x = randn(2, 13, 8)
    assert torch.equal(apply_rope(x), apply_rope(x, torch.arange(13)))
    assert torch.equal(apply_rope(x), apply_rope(x, torch.arange(13, dtype=torch.float64)))


def test_batched_positions_broadcast():
    x = randn(2, 3, 5, 8)  # (batch, heads, seq_len, dim)
    positions = torch.tensor([[0, 1, 2, 3, 4], [10, 11, 12, 13, 14]]).unsqueeze(1)  # (batch, 1, seq_len)
    out = apply_rope(x, positions)
    assert torch.allclose(out[1], apply_rope(x[1], torch.arange(10, 15)), atol=1e-13)
    assert torch.allclose(out[0], apply_rope(x[0]), atol=1e-13)


def test_cache_and_rotate_pairs_reproduce_apply_rope():
    x = randn(4, 6, 16)
    cos, sin = rope_cache(6, 16, dtype=torch.float64)
    assert cos.shape == (6, 8)
    assert torch.allclose(rotate_pairs(x, cos, sin), apply_rope(x), atol=1e-14)


# --------------------------------------------------------------------------- properties
@settings(max_examples=30, deadline=None)
@given(
    m=st.integers(0, 5000),
    n=st.integers(0, 5000),
    shift=st.integers(-5000, 50_000),
    seed=st.integers(0, 2**16),
    layout=st.sampled_from(LAYOUTS),
)
def test_score_depends_only_on_relative_position(m, n, shift, seed, layout):
    q, k = randn(1, 32, seed=seed), randn(1, 32, seed=seed + 1)

    def score(a: int, b: int) -> float:
        rq = apply_rope(q, torch.tensor([a]), layout=layout)
        rk = apply_rope(k, torch.tensor([b]), layout=layout)
        return float((rq * rk).sum())

    shifted = (m + shift, n + shift) if min(m, n) + shift >= 0 else (m, n)
    assert abs(score(m, n) - score(*shifted)) < 1e-10


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16), base=st.floats(2.0, 1e6), layout=st.sampled_from(LAYOUTS))
def test_norms_preserved(seed, base, layout):
    x = randn(3, 10, 16, seed=seed)
    positions = randn(10, seed=seed + 1) * 1000
    out = apply_rope(x, positions, base, layout=layout)
    assert torch.allclose(out.norm(dim=-1), x.norm(dim=-1), rtol=1e-12)


def test_rotation_by_zero_is_identity_and_score_is_toeplitz():
    x = randn(1, 8)
    assert torch.equal(apply_rope(x, torch.zeros(1)), x)
    q, k = randn(1, 16, seed=2), randn(1, 16, seed=3)
    n = 20
    rq = apply_rope(q.expand(n, 16), torch.arange(n))
    rk = apply_rope(k.expand(n, 16), torch.arange(n))
    scores = rq @ rk.T
    for offset in range(-n + 1, n):
        diagonal = torch.diagonal(scores, offset)
        assert torch.allclose(diagonal, diagonal[0].expand_as(diagonal), atol=1e-12)


# --------------------------------------------------------------------------- half precision
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_is_float32_accurate(dtype):
    x = randn(2, 4096, 64, dtype=torch.float32).to(dtype)
    out = apply_rope(x)
    assert out.dtype == dtype
    exact = apply_rope(x.double())  # the exact rotation of the same (rounded) inputs
    unit_roundoff = 2.0**-8 if dtype == torch.bfloat16 else 2.0**-11
    # one rounding of the exact result (relative error <= unit roundoff), plus float32 error
    assert bool(((out.double() - exact).abs() <= unit_roundoff * exact.abs() + 1e-5).all())
    assert torch.equal(out, apply_rope(x.float()).to(dtype))


def test_float32_input_is_accurate_at_large_positions():
    x = randn(1, 64, dtype=torch.float32).expand(3, 64)
    positions = torch.tensor([100_000, 1_000_000, 10_000_000])
    out = apply_rope(x, positions)
    exact = apply_rope(x.double(), positions)
    assert out.dtype == torch.float32 and torch.allclose(out.double(), exact, atol=1e-5)


# --------------------------------------------------------------------------- 2-D RoPE
def test_2d_default_grid_equals_explicit_positions():
    x = randn(2, 12, 16)
    positions = grid_positions(3, 4)
    assert positions[5].tolist() == [1, 1]
    assert torch.equal(apply_rope_2d(x, grid=(3, 4)), apply_rope_2d(x, positions))


def test_2d_splits_pairs_between_column_and_row():
    x = randn(1, 16)
    only_col = apply_rope_2d(x, torch.tensor([[0, 5]]), base=100.0)
    only_row = apply_rope_2d(x, torch.tensor([[5, 0]]), base=100.0)
    # the first 4 pairs (features 0-3 and 8-11 in the half layout) turn with the column
    col_pairs, row_pairs = [0, 1, 2, 3, 8, 9, 10, 11], [4, 5, 6, 7, 12, 13, 14, 15]
    assert torch.equal(only_col[:, row_pairs], x[:, row_pairs]) and not torch.allclose(only_col[:, col_pairs], x[:, col_pairs])
    assert torch.equal(only_row[:, col_pairs], x[:, col_pairs]) and not torch.allclose(only_row[:, row_pairs], x[:, row_pairs])
    half = torch.cat((x[:, [0, 1, 2, 3]], x[:, [8, 9, 10, 11]]), dim=-1)  # the 4 column pairs, half layout
    assert torch.allclose(only_col[:, col_pairs], llama_style_rope(half, torch.tensor([5.0]), 100.0), atol=1e-13)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_2d_score_depends_only_on_offset(layout):
    q, k = randn(1, 32, seed=4), randn(1, 32, seed=5)

    def score(pq, pk):
        rq = apply_rope_2d(q, torch.tensor([pq]), layout=layout)
        rk = apply_rope_2d(k, torch.tensor([pk]), layout=layout)
        return float((rq * rk).sum())

    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        a, b, shift = (torch.randint(0, 64, (2,), generator=gen).tolist() for _ in range(3))
        moved = score([a[0] + shift[0], a[1] + shift[1]], [b[0] + shift[0], b[1] + shift[1]])
        assert abs(score(a, b) - moved) < 1e-10
    # and it does depend on the offset, separately in each axis
    assert abs(score([0, 0], [0, 3]) - score([0, 0], [3, 0])) > 1e-3


# --------------------------------------------------------------------------- linear attention
@pytest.mark.parametrize("causal", [False, True])
def test_linear_attention_matches_quadratic_reference(causal):
    q, k, v = randn(2, 3, 17, 8, seed=6), randn(2, 3, 17, 8, seed=7), randn(2, 3, 17, 5, seed=8)
    out = linear_attention_rope(q, k, v, causal=causal)
    assert out.shape == (2, 3, 17, 5)
    assert torch.allclose(out, quadratic_linear_attention(q, k, v, causal), atol=1e-10)
    positions = torch.arange(17) * 3.0 + 100
    shifted = linear_attention_rope(q, k, v, causal=causal, positions=positions)
    assert torch.allclose(shifted, quadratic_linear_attention(q, k, v, causal, positions), atol=1e-10)
    # relative: a common shift of every position changes nothing
    assert torch.allclose(linear_attention_rope(q, k, v, causal=causal, positions=torch.arange(17) + 1000), out, atol=1e-10)


def test_causal_linear_attention_ignores_the_future():
    q, k, v = randn(1, 10, 8, seed=9), randn(1, 10, 8, seed=10), randn(1, 10, 4, seed=11)
    out = linear_attention_rope(q, k, v, causal=True)
    v2 = v.clone()
    v2[:, 6:] += 100.0
    k2 = k.clone()
    k2[:, 6:] -= 3.0
    assert torch.allclose(linear_attention_rope(q, k2, v2, causal=True)[:, :6], out[:, :6], atol=1e-12)


# --------------------------------------------------------------------------- decay bound, context extension
def brute_force_bound(r: float, dim: int, base: float) -> float:
    theta = [base ** (-2.0 * i / dim) for i in range(dim // 2)]
    total, partial = 0.0, 0j
    for t in theta:
        partial += complex(math.cos(r * t), math.sin(r * t))
        total += abs(partial)
    return total / (dim // 2)


def test_decay_bound_closed_form_and_bounds_the_score():
    distances = torch.tensor([0, 1, 5, 40, 300, 2000])
    bound = rope_decay_bound(distances, 32, 10000.0)
    assert bound[0] == pytest.approx(8.5)  # (1 + 2 + ... + 16) / 16
    expected = [brute_force_bound(float(r), 32, 10000.0) for r in distances]
    assert torch.allclose(bound, torch.tensor(expected, dtype=torch.float64), atol=1e-10)
    # for all-ones q and k (h_i = 2, h_{d/2} = 0): |q_m . k_n| <= 2 * sum_j |S_j| = dim * bound
    ones = torch.ones(1, 32, dtype=torch.float64)
    r = torch.arange(0, 3000)
    scores = (apply_rope(ones.expand(len(r), 32), r) * apply_rope(ones, torch.zeros(1))).sum(-1)
    assert bool((scores.abs() <= 32 * rope_decay_bound(r, 32) + 1e-9).all())


def test_decay_bound_decays_on_average():
    bound = rope_decay_bound(torch.arange(0, 4096), 128, 10000.0)
    windows = [bound[a:b].mean() for a, b in [(0, 16), (16, 128), (128, 1024), (1024, 4096)]]
    assert all(later < earlier for earlier, later in zip(windows, windows[1:]))


def test_ntk_scaled_base_keeps_fastest_and_interpolates_slowest_pair():
    dim, base, scale, trained = 64, 10000.0, 8.0, 2048
    new = ntk_scaled_base(base, scale, dim)
    old_theta, new_theta = rope_frequencies(dim, base), rope_frequencies(dim, new)
    assert new_theta[0] == old_theta[0] == 1.0
    assert float(new_theta[-1] * scale * trained) == pytest.approx(float(old_theta[-1] * trained), rel=1e-12)


def test_exercise_checkers(capsys):
    assert check_exercise_1(1e-3) and not check_exercise_1(1e-4) and not check_exercise_1("x")
    assert check_exercise_2([0, 2, 4, 6, 1, 3, 5, 7]) and not check_exercise_2([0, 1, 2, 3, 4, 5, 6, 7])
    assert check_exercise_3(2 * math.pi * 10000 ** (126 / 128)) and not check_exercise_3(10000.0)
    assert "Correct" in capsys.readouterr().out


# --------------------------------------------------------------------------- bad input
def test_bad_inputs():
    x = randn(4, 8)
    with pytest.raises(ValueError, match="multiple of 2, got 7"):
        apply_rope(randn(4, 7))
    with pytest.raises(ValueError, match="multiple of 4, got 6"):
        apply_rope_2d(randn(4, 6), grid=(2, 2))
    with pytest.raises(ValueError, match=r"positions must have shape .* got shape \(5,\)"):
        apply_rope(x, torch.arange(5))
    with pytest.raises(ValueError, match=r"positions must have shape .* got shape \(3, 4\)"):
        apply_rope(x, torch.zeros(3, 4))
    with pytest.raises(ValueError, match="x must be finite"):
        apply_rope(torch.full((4, 8), float("nan")))
    with pytest.raises(ValueError, match="positions must be finite"):
        apply_rope(x, torch.tensor([0.0, 1.0, float("nan"), 3.0]))
    with pytest.raises(TypeError, match="real floating-point tensor, got dtype torch.int64"):
        apply_rope(torch.ones(4, 8, dtype=torch.int64))
    with pytest.raises(TypeError, match="positions must be an integer or real"):
        apply_rope(x, torch.ones(4, dtype=torch.bool))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        apply_rope([[1.0, 2.0]])
    with pytest.raises(ValueError, match="shape \\(..., seq_len, dim\\), got shape \\(8,\\)"):
        apply_rope(torch.ones(8))
    with pytest.raises(ValueError, match="base must be a finite float > 1, got 0.5"):
        apply_rope(x, base=0.5)
    with pytest.raises(ValueError, match="layout must be one of"):
        apply_rope(x, layout="neox")
    with pytest.raises(ValueError, match="grid must be"):
        apply_rope_2d(randn(4, 8))
    with pytest.raises(ValueError, match="grid \\(2, 3\\) has 6 patches but x has n_patches = 4"):
        apply_rope_2d(randn(4, 8), grid=(2, 3))
    with pytest.raises(ValueError, match="k must have the shape of q"):
        linear_attention_rope(x, randn(5, 8), x)
    with pytest.raises(ValueError, match="v must have shape"):
        linear_attention_rope(x, x, randn(5, 3))
    with pytest.raises(ValueError, match="scale must be"):
        ntk_scaled_base(10000.0, 0.5, 64)
    with pytest.raises(ValueError, match="distances must have shape"):
        rope_decay_bound(torch.zeros(2, 2), 8)


# --------------------------------------------------------------------------- GPU
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_apply_rope_on_cuda(dtype, layout):
    x = randn(2, 4, 4096, 128)
    positions = torch.arange(4096) + 12_345
    expected = apply_rope(x, positions, layout=layout)
    out = apply_rope(x.to("cuda", dtype), positions.cuda(), layout=layout)
    assert out.device.type == "cuda" and out.dtype == dtype
    exact = apply_rope(x.to(dtype).double(), positions, layout=layout)  # same rounded inputs, exact rotation
    if dtype == torch.float32:
        assert torch.allclose(out.double().cpu(), expected, atol=1e-5)
    else:
        assert bool(((out.double().cpu() - exact).abs() <= 2.0**-8 * exact.abs() + 1e-5).all())
        assert (out.double().cpu() - expected).abs().max() < 0.05


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_2d_and_linear_attention_on_cuda(dtype):
    x = randn(2, 64, 32)
    expected_2d = apply_rope_2d(x, grid=(8, 8))
    out_2d = apply_rope_2d(x.to("cuda", dtype), grid=(8, 8))
    assert torch.allclose(out_2d.double().cpu(), expected_2d, atol=1e-5 if dtype == torch.float32 else 3e-2)
    q, k, v = randn(2, 2, 64, 16, seed=1), randn(2, 2, 64, 16, seed=2), randn(2, 2, 64, 8, seed=3)
    for causal in (False, True):
        expected = linear_attention_rope(q, k, v, causal=causal)
        out = linear_attention_rope(*(t.to("cuda", dtype) for t in (q, k, v)), causal=causal)
        assert out.dtype == dtype
        tol = 1e-4 if dtype == torch.float32 else 0.1
        assert torch.allclose(out.double().cpu(), expected, atol=tol, rtol=tol)
