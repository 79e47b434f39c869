"""Tests of mlnotes.sequence.position_encoding (chapter book/sequence/position_encoding.ipynb)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn import functional as F

from mlnotes.sequence.position_encoding import (
    SCHEMES,
    ALiBi,
    ExtrapolationConfig,
    LearnedEncoding,
    NoPositionEncoding,
    PositionEncoding,
    RotaryEncoding,
    ShawRelativeEncoding,
    SinusoidalEncoding,
    T5RelativeBias,
    TinyAttentionModel,
    alibi_slopes,
    attention_scores,
    check_alibi_exercise,
    check_sinusoidal_exercise,
    check_t5_bucket_exercise,
    make_encoding,
    make_recall_task,
    positional_attention,
    recall_accuracy,
    recall_attention,
    score_translation_gap,
    sinusoidal_dot_product,
    sinusoidal_encoding,
    sinusoidal_shift_matrix,
    t5_relative_position_bucket,
    train_recall_model,
)


def random_qkv(batch=2, heads=4, q_len=5, k_len=7, head_dim=8, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(batch, heads, n, head_dim, generator=g, dtype=dtype) for n in (q_len, k_len, k_len))


def tiny_model(scheme: str, dim=16, heads=4, max_len=64, seed=0) -> TinyAttentionModel:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        encoding = make_encoding(scheme, dim=dim, num_heads=heads, max_len=max_len, max_relative_position=4,
                                 num_buckets=8, max_distance=16)
        return TinyAttentionModel(10, dim, heads, encoding).double()


# --------------------------------------------------------------------------- sinusoidal
def test_sinusoidal_matches_the_papers_formula():
    # Vaswani et al. (2017), section 3.5, written out with the math module.
    dim, positions = 6, [0, 1, 5, 40]
    expected = [
        [math.sin(p / 10000 ** (2 * (i // 2) / dim)) if i % 2 == 0 else math.cos(p / 10000 ** (2 * (i // 2) / dim)) for i in range(dim)]
        for p in positions
    ]
    got = sinusoidal_encoding(torch.tensor(positions), dim, dtype=torch.float64)
    assert torch.allclose(got, torch.tensor(expected, dtype=torch.float64), atol=1e-14)
    assert sinusoidal_encoding(3, 4).dtype == torch.float32 and sinusoidal_encoding(3, 4).shape == (3, 4)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 5000), st.integers(0, 5000), st.integers(-1000, 1000), st.sampled_from([2, 8, 64]))
def test_sinusoidal_dot_product_depends_only_on_the_offset(m, n, shift, dim):
    pe = sinusoidal_encoding(torch.tensor([m, n, m + shift, n + shift]), dim, dtype=torch.float64)
    dot, dot_shifted = pe[0] @ pe[1], pe[2] @ pe[3]
    assert math.isclose(float(dot), float(dot_shifted), abs_tol=1e-9)
    assert math.isclose(float(dot), float(sinusoidal_dot_product(m - n, dim)), abs_tol=1e-9)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 3000), st.integers(-500, 500), st.sampled_from([4, 16, 32]))
def test_sinusoidal_shift_is_a_rotation_independent_of_position(m, k, dim):
    rotation = sinusoidal_shift_matrix(k, dim)
    pe = sinusoidal_encoding(torch.tensor([m, m + k]), dim, dtype=torch.float64)
    assert torch.allclose(rotation @ pe[0], pe[1], atol=1e-9)
    assert torch.allclose(rotation @ rotation.T, torch.eye(dim, dtype=torch.float64), atol=1e-12)


def test_shift_matrices_compose():
    assert torch.allclose(sinusoidal_shift_matrix(3, 8) @ sinusoidal_shift_matrix(4, 8), sinusoidal_shift_matrix(7, 8), atol=1e-12)
    assert torch.allclose(sinusoidal_shift_matrix(0, 8), torch.eye(8, dtype=torch.float64))


# --------------------------------------------------------------------------- T5 buckets
def reference_bucket(relative: int, bidirectional: bool, num_buckets: int, max_distance: int) -> int:
    """Mesh TensorFlow's _relative_position_bucket for one int, written independently with the math module."""
    bucket, n = 0, -relative
    if bidirectional:
        num_buckets //= 2
        bucket += num_buckets if n < 0 else 0
        n = abs(n)
    else:
        n = max(n, 0)
    max_exact = num_buckets // 2
    if n < max_exact:
        return bucket + n
    large = max_exact + int(np.float32(math.log(np.float32(n) / max_exact)) / math.log(max_distance / max_exact) * (num_buckets - max_exact))
    return bucket + min(large, num_buckets - 1)


def test_t5_buckets_hand_computed():
    # Bidirectional, 32 buckets, max_distance 128: 16 per side, exact below 8, then
    # 8 + floor(8 log(n/8) / log(16)): 16 -> 10, 32 -> 12, 64 -> 14, 127 -> 15, beyond -> 15.
    past = torch.tensor([0, -1, -7, -8, -15, -16, -31, -32, -63, -64, -127, -128, -5000])
    expected_past = [0, 1, 7, 8, 9, 10, 11, 12, 13, 14, 15, 15, 15]
    assert t5_relative_position_bucket(past).tolist() == expected_past
    # Keys after the query: the same distances, shifted by 16.
    assert t5_relative_position_bucket(-past[1:]).tolist() == [b + 16 for b in expected_past[1:]]
    # Causal, 32 buckets: exact below 16, then 16 + floor(16 log(n/16) / log(8)): 20 -> 17, 32 -> 21, 64 -> 26.
    causal = t5_relative_position_bucket(torch.tensor([3, 0, -15, -16, -20, -32, -64, -128, -999]), bidirectional=False)
    assert causal.tolist() == [0, 0, 15, 16, 17, 21, 26, 31, 31]


@pytest.mark.parametrize("bidirectional,num_buckets,max_distance", [(True, 32, 128), (False, 32, 128), (True, 16, 40), (False, 10, 50)])
def test_t5_buckets_match_reference(bidirectional, num_buckets, max_distance):
    relative = torch.arange(-400, 401)
    got = t5_relative_position_bucket(relative, bidirectional=bidirectional, num_buckets=num_buckets, max_distance=max_distance)
    expected = [reference_bucket(int(r), bidirectional, num_buckets, max_distance) for r in relative]
    assert got.tolist() == expected


def test_t5_buckets_monotone_exact_then_log_spaced():
    distance = torch.arange(0, 1000)
    buckets = t5_relative_position_bucket(-distance, bidirectional=False, num_buckets=32, max_distance=128)
    assert (buckets[1:] >= buckets[:-1]).all()  # monotone in distance
    assert buckets[:16].tolist() == list(range(16))  # one bucket per small distance
    assert (buckets[128:] == 31).all()  # everything from max_distance on shares the last bucket
    # log spacing: the first distance of each bucket grows geometrically, by (128/16)^(1/16) per bucket
    starts = np.array([int(distance[buckets == b][0]) for b in range(16, 32)], dtype=float)
    assert np.allclose(starts, 16 * 8 ** (np.arange(16) / 16), rtol=0.1, atol=1.0)


# --------------------------------------------------------------------------- ALiBi slopes
def test_alibi_slopes_powers_of_two():
    assert alibi_slopes(8) == [1 / 2**j for j in range(1, 9)]
    assert np.allclose(alibi_slopes(16), [2 ** (-j / 2) for j in range(1, 17)])
    assert alibi_slopes(1) == [1 / 256]


def test_alibi_slopes_interpolate_for_other_head_counts():
    assert np.allclose(alibi_slopes(6), [1 / 4, 1 / 16, 1 / 64, 1 / 256, 1 / 2, 1 / 8])
    assert np.allclose(alibi_slopes(12), [1 / 2**j for j in range(1, 9)] + [2**-0.5, 2**-1.5, 2**-2.5, 2**-3.5])
    assert len(alibi_slopes(24)) == 24 and len(set(alibi_slopes(24))) == 24


# --------------------------------------------------------------------------- golden: one attention, every scheme
@pytest.mark.parametrize("causal", [False, True])
def test_no_encoding_equals_sdpa(causal):
    q, k, v = random_qkv(q_len=6, k_len=6)
    out, weights = positional_attention(q, k, v, NoPositionEncoding(), causal=causal)
    assert torch.allclose(out, F.scaled_dot_product_attention(q, k, v, is_causal=causal), atol=1e-12)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 4, 6, dtype=torch.float64))


@pytest.mark.parametrize("causal", [False, True])
def test_alibi_equals_sdpa_with_the_papers_bias(causal):
    q, k, v = random_qkv(q_len=6, k_len=6)
    slopes = torch.tensor([2.0 ** (-8 * (h + 1) / 4) for h in range(4)], dtype=torch.float64)
    i, j = torch.arange(6)[:, None], torch.arange(6)[None, :]
    bias = -slopes[:, None, None] * (i - j).abs()
    if causal:
        bias = bias.masked_fill(j > i, float("-inf"))
    out, _ = positional_attention(q, k, v, ALiBi(4), causal=causal)
    assert torch.allclose(out, F.scaled_dot_product_attention(q, k, v, attn_mask=bias), atol=1e-12)


def test_t5_bias_equals_sdpa_with_looked_up_bias():
    q, k, v = random_qkv(q_len=5, k_len=9)
    t5 = T5RelativeBias(4, num_buckets=8, max_distance=6).double()
    q_pos, k_pos = torch.arange(3, 8), torch.arange(0, 9)
    bias = torch.empty(4, 5, 9, dtype=torch.float64)
    for a, i in enumerate(q_pos.tolist()):
        for b, j in enumerate(k_pos.tolist()):
            bias[:, a, b] = t5.bias[reference_bucket(j - i, True, 8, 6)]
    out, _ = positional_attention(q, k, v, t5, q_pos, k_pos)
    assert torch.allclose(out, F.scaled_dot_product_attention(q, k, v, attn_mask=bias), atol=1e-12)


def test_shaw_matches_the_papers_equations_with_loops():
    q, k, v = random_qkv(batch=1, heads=2, q_len=4, k_len=6, head_dim=3)
    shaw = ShawRelativeEncoding(3, max_relative_position=2).double()
    out, _ = positional_attention(q, k, v, shaw)
    K, d = 2, 3
    expected = torch.zeros_like(out)
    for h in range(2):
        for i in range(4):
            e = torch.stack([q[0, h, i] @ (k[0, h, j] + shaw.key_table[max(-K, min(K, j - i)) + K]) / math.sqrt(d) for j in range(6)])
            alpha = torch.softmax(e, 0)
            expected[0, h, i] = sum(alpha[j] * (v[0, h, j] + shaw.value_table[max(-K, min(K, j - i)) + K]) for j in range(6))
    assert torch.allclose(out, expected, atol=1e-12)


def test_causal_output_ignores_the_future():
    model = tiny_model("shaw")
    tokens = torch.randint(0, 10, (2, 12), generator=torch.Generator().manual_seed(1))
    changed = tokens.clone()
    changed[:, 8:] = (changed[:, 8:] + 1) % 10
    with torch.no_grad():
        assert torch.allclose(model(tokens)[:, :8], model(changed)[:, :8], atol=1e-12)


# --------------------------------------------------------------------------- translation invariance
@pytest.mark.parametrize("scheme", SCHEMES)
def test_translation_invariance_of_the_score(scheme):
    model = tiny_model(scheme, max_len=200)
    tokens = torch.randint(0, 10, (3, 20), generator=torch.Generator().manual_seed(2))
    gap = score_translation_gap(model, tokens, shifts=(1, 5, 60))
    if scheme in ("none", "shaw", "t5", "alibi", "rope"):
        assert gap < 1e-10
    else:
        assert gap > 1e-2


def test_relative_scores_depend_on_offset_only():
    # score of the same (query, key) pair at (m, n) and (m + s, n + s), explicitly
    q, k, _ = random_qkv(q_len=1, k_len=1)
    for encoding in (ShawRelativeEncoding(8, 3).double(), T5RelativeBias(4).double(), ALiBi(4), RotaryEncoding()):
        for m, n in [(0, 5), (9, 2), (30, 30)]:
            base = attention_scores(q, k, encoding, torch.tensor([m]), torch.tensor([n]))
            for s in (1, 17, 250):
                assert torch.allclose(base, attention_scores(q, k, encoding, torch.tensor([m + s]), torch.tensor([n + s])))


def test_sinusoidal_pe_term_alone_is_relative_but_projections_break_it():
    # With zero token embeddings and identity projections the logit is PE(m).PE(n)/sqrt(d): relative.
    model = tiny_model("sinusoidal", dim=8, heads=1)
    with torch.no_grad():
        model.embed.weight.zero_()
        model.attention.qkv.weight.copy_(torch.cat([torch.eye(8)] * 3).double())
        model.attention.qkv.bias.zero_()
    tokens = torch.zeros(1, 10, dtype=torch.long)
    assert score_translation_gap(model, tokens) < 1e-9
    with torch.no_grad():
        model.attention.qkv.weight[:8] = torch.randn(8, 8, generator=torch.Generator().manual_seed(0)).double()
    assert score_translation_gap(model, tokens) > 1e-2


# --------------------------------------------------------------------------- learned absolute
def test_learned_encoding_cannot_go_past_its_table():
    learned = LearnedEncoding(8, 4)
    x = torch.zeros(1, 9, 4)
    assert learned.encode_inputs(x[:, :8], torch.arange(8)).shape == (1, 8, 4)
    with pytest.raises(ValueError, match=r"positions must lie in \[0, 8\)"):
        learned.encode_inputs(x, torch.arange(9))


# --------------------------------------------------------------------------- the recall task and training
def test_recall_targets_are_the_most_recent_signal():
    tokens, targets = make_recall_task(20, 30, num_signals=3, num_noise=5, signal_prob=0.3, rng=0)
    for row_tokens, row_targets in zip(tokens.tolist(), targets.tolist()):
        last = None
        for token, target in zip(row_tokens, row_targets):
            last = token if token < 3 else last
            assert target == last
    assert (tokens[:, 0] < 3).all()


@pytest.mark.parametrize("scheme", SCHEMES)
def test_training_improves_the_loss(scheme):
    config = ExtrapolationConfig(train_length=12, steps=40, batch_size=16, dim=16, num_heads=4, max_relative_position=6, num_buckets=8, lr=1e-2)
    result = train_recall_model(scheme, config, seed=0)
    assert np.mean(result.loss[-5:]) < np.mean(result.loss[:5]) - 0.1
    accuracy = recall_accuracy(result, 24, n=32, rng=1, blocks=2)
    if scheme == "learned":
        assert all(math.isnan(a) for a in accuracy)
        assert 0 <= recall_accuracy(result, 12, n=32, rng=1)[0] <= 1
    else:
        assert all(0 <= a <= 1 for a in accuracy)


def test_training_is_reproducible_and_leaves_global_rng_alone():
    config = ExtrapolationConfig(train_length=8, steps=5, batch_size=8, dim=16, num_heads=4, num_buckets=8)
    state = torch.random.get_rng_state()
    first = train_recall_model("t5", config, seed=3)
    assert torch.equal(state, torch.random.get_rng_state())
    assert first.loss == train_recall_model("t5", config, seed=3).loss


def test_recall_attention_of_uniform_attention():
    # Zero query/key projections: every query spreads its weight evenly over its i + 1 visible keys,
    # so the weight on the target is 1 / (i + 1), whatever the head and the data.
    config = ExtrapolationConfig(train_length=8, steps=1, batch_size=4, dim=16, num_heads=4, num_buckets=8)
    result = train_recall_model("none", config, seed=0)
    with torch.no_grad():
        result.model.attention.qkv.weight[:32].zero_()
        result.model.attention.qkv.bias[:32].zero_()
    got = recall_attention(result, 12, n=8, rng=0, blocks=3)
    expected = [np.mean([1 / (i + 1) for i in range(b * 4, b * 4 + 4)]) for b in range(3)]
    assert np.allclose(got, expected, atol=1e-12)
    learned = train_recall_model("learned", config, seed=0)
    assert math.isnan(recall_attention(learned, 16, rng=0)[0]) and 0 < recall_attention(learned, 8, rng=0)[0] <= 1


# --------------------------------------------------------------------------- bad input
def test_bad_inputs_raise():
    q, k, v = random_qkv()
    with pytest.raises(TypeError, match="encoding must be a PositionEncoding"):
        attention_scores(q, k, "alibi")
    with pytest.raises(ValueError, match=r"q must have shape \(batch, heads, q_len, head_dim\)"):
        attention_scores(q[0], k, ALiBi(4))
    with pytest.raises(TypeError, match="q must be a floating-point tensor"):
        attention_scores(q.long(), k, ALiBi(4))
    with pytest.raises(ValueError, match="q contains NaN"):
        attention_scores(q.clone().fill_(float("nan")), k, ALiBi(4))
    with pytest.raises(ValueError, match="q and k must agree"):
        attention_scores(q, k[..., :4], ALiBi(4))
    with pytest.raises(TypeError, match="q_positions must have an integer dtype"):
        attention_scores(q, k, ALiBi(4), torch.arange(5.0))
    with pytest.raises(ValueError, match="k_positions must have length 7"):
        attention_scores(q, k, ALiBi(4), None, torch.arange(6))
    with pytest.raises(ValueError, match="q must have 4 heads, got 2"):
        attention_scores(q[:, :2], k[:, :2], ALiBi(4))
    with pytest.raises(ValueError, match="v must have the batch, heads and length of k"):
        positional_attention(q, k, v[:, :, :3], ALiBi(4))
    with pytest.raises(ValueError, match="q must not be empty"):
        attention_scores(q[:, :, :0], k, ALiBi(4))


def test_bad_settings_raise():
    with pytest.raises(ValueError, match="dim must be even"):
        sinusoidal_encoding(4, 5)
    with pytest.raises(ValueError, match="name must be one of"):
        make_encoding("xpos", dim=8, num_heads=2)
    with pytest.raises(ValueError, match="dim must be a multiple of num_heads"):
        make_encoding("shaw", dim=10, num_heads=4)
    with pytest.raises(ValueError, match="num_heads must be an int >= 1"):
        alibi_slopes(0)
    with pytest.raises(TypeError, match="relative_position must be an integer"):
        t5_relative_position_bucket(torch.tensor([1.5]))
    with pytest.raises(ValueError, match="max_distance must exceed the exact range 8"):
        t5_relative_position_bucket(torch.tensor([1]), num_buckets=32, max_distance=8)
    with pytest.raises(ValueError, match="max_distance must exceed the exact range 8"):
        ExtrapolationConfig(train_length=8, num_buckets=16)
    with pytest.raises(ValueError, match="signal_prob must be in"):
        ExtrapolationConfig(signal_prob=0.0)
    with pytest.raises(ValueError, match="scheme must be one of"):
        train_recall_model("xpos")
    with pytest.raises(ValueError, match=r"tokens must lie in \[0, 10\)"):
        tiny_model("none")(torch.tensor([[0, 10]]))
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator or an int seed"):
        make_recall_task(2, 4, rng=None)


def test_base_class_is_the_identity():
    encoding = PositionEncoding()
    x = torch.randn(2, 3, 4)
    assert encoding.encode_inputs(x, torch.arange(3)) is x
    assert encoding.score_bias(x, torch.arange(3), torch.arange(3)) is None
    assert SinusoidalEncoding(4).absolute and LearnedEncoding(2, 4).absolute and not ALiBi(2).absolute


# --------------------------------------------------------------------------- exercises
def test_exercise_checkers(capsys):
    assert check_t5_bucket_exercise(17) and not check_t5_bucket_exercise(20)
    assert check_alibi_exercise([1 / 4, 1 / 16, 1 / 64, 1 / 256, 1 / 2, 1 / 8]) and not check_alibi_exercise([1 / 2] * 6)
    assert check_sinusoidal_exercise(math.cos(1) + math.cos(0.01)) and not check_sinusoidal_exercise(2.0)
    assert not check_alibi_exercise("nonsense")
    assert "Correct" in capsys.readouterr().out


# --------------------------------------------------------------------------- GPU
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("scheme", SCHEMES)
def test_scheme_forward_on_cuda(scheme, dtype):
    model = tiny_model(scheme, dim=32, heads=4, max_len=64)
    tokens = torch.randint(0, 10, (4, 48), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model(tokens)
        gpu_model = model.to("cuda", dtype)
        got = gpu_model(tokens.to("cuda"))
    assert got.device.type == "cuda" and got.dtype == dtype
    tolerance = 1e-4 if dtype == torch.float32 else 0.15
    assert (got.double().cpu() - expected).abs().max() < tolerance * max(1.0, float(expected.abs().max()))


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_attention_with_every_scheme_on_cuda(dtype):
    q, k, v = random_qkv(q_len=33, k_len=33, heads=4, head_dim=16)
    for scheme in ("none", "shaw", "t5", "alibi", "rope"):
        encoding = make_encoding(scheme, dim=64, num_heads=4, num_buckets=16, max_distance=32).double()
        expected, _ = positional_attention(q, k, v, encoding, causal=True)
        got, weights = positional_attention(*(t.to("cuda", dtype) for t in (q, k, v)), encoding.to("cuda"), causal=True)
        assert got.dtype == dtype and weights.device.type == "cuda"
        assert torch.allclose(got.double().cpu(), expected, atol=1e-4 if dtype == torch.float32 else 5e-2)


@pytest.mark.gpu
def test_training_on_cuda():
    config = ExtrapolationConfig(train_length=12, steps=30, batch_size=16, dim=16, num_heads=4, max_relative_position=6, num_buckets=8, lr=1e-2)
    result = train_recall_model("alibi", config, seed=0, device="cuda")
    assert np.mean(result.loss[-5:]) < np.mean(result.loss[:5])
    assert 0 <= recall_accuracy(result, 48, n=32, rng=1)[0] <= 1
