"""Tests of mlnotes.sequence.lstm_gru_transformer (chapter book/sequence/lstm_gru_transformer.ipynb).

Golden reference: torch.nn.LSTM, LSTMCell, GRU, GRUCell and TransformerEncoderLayer with the
same weights, in float64.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from mlnotes.sequence.lstm_gru_transformer import (
    GRU,
    LSTM,
    AddingProblemConfig,
    GRUCell,
    LSTMCell,
    MultiHeadSelfAttention,
    TransformerEncoderBlock,
    causal_mask,
    check_exercise_1,
    check_exercise_2,
    check_exercise_3,
    critical_path_length,
    forward_time,
    input_gradient_norms,
    set_forget_bias,
    train_adding_problem,
)

ATOL = 1e-6
F64 = torch.float64


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randn(*shape: int, seed: int = 0, dtype: torch.dtype = F64) -> torch.Tensor:
    return torch.randn(*shape, generator=seeded(seed), dtype=dtype)


def assert_close(a: torch.Tensor, b: torch.Tensor, atol: float = ATOL) -> None:
    assert a.shape == b.shape, (a.shape, b.shape)
    assert torch.allclose(a, b, atol=atol, rtol=0), float((a - b).abs().max())


def flatten(out) -> list[torch.Tensor]:
    """Every tensor of a (nested) output structure."""
    if isinstance(out, torch.Tensor):
        return [out]
    return [t for item in out for t in flatten(item)]


def grads_of(outputs: list[torch.Tensor], inputs: list[torch.Tensor], seed: int = 1) -> list[torch.Tensor]:
    """Gradients of a fixed random projection of all outputs: checks the full vector-Jacobian product."""
    loss = sum((o * randn(*o.shape, seed=seed + k)).sum() for k, o in enumerate(outputs))
    return list(torch.autograd.grad(loss, inputs))


# --------------------------------------------------------------------------- recurrent layers against torch
@pytest.mark.parametrize("cls, reference", [(LSTM, nn.LSTM), (GRU, nn.GRU)])
@pytest.mark.parametrize("num_layers, batch_first, bias, with_hx", [(1, False, True, False), (2, True, True, True), (3, False, False, True), (2, False, True, True)])
def test_recurrent_layers_match_torch(cls, reference, num_layers, batch_first, bias, with_hx):
    torch.manual_seed(0)
    ref = reference(3, 5, num_layers=num_layers, bias=bias, batch_first=batch_first).double()
    ours = cls.from_torch(ref)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in ref.named_parameters()]
    x = randn(4, 7, 3, seed=2)
    hx = None
    if with_hx:
        batch = 4 if batch_first else 7
        h0 = randn(num_layers, batch, 5, seed=3)
        hx = (h0, randn(num_layers, batch, 5, seed=4)) if cls is LSTM else h0
    results = []
    for model in (ref, ours):
        xi = x.clone().requires_grad_(True)
        hxi = None if hx is None else tuple(t.clone().requires_grad_(True) for t in flatten(hx))
        arg = hxi if (hxi is None or cls is LSTM) else hxi[0]
        out = model(xi, arg)
        leaves = [xi, *(hxi or ()), *model.parameters()]
        results.append((flatten(out), grads_of(flatten(out), leaves)))
    for a, b in zip(results[0][0] + results[0][1], results[1][0] + results[1][1]):
        assert_close(a, b)


@pytest.mark.parametrize("cls, reference", [(LSTM, nn.LSTM), (GRU, nn.GRU)])
def test_recurrent_layers_unbatched_input_match_torch(cls, reference):
    torch.manual_seed(1)
    ref = reference(3, 4, num_layers=2).double()
    ours = cls.from_torch(ref)
    x = randn(6, 3, seed=5)
    for a, b in zip(flatten(ref(x)), flatten(ours(x))):
        assert_close(a, b)


@pytest.mark.parametrize("cls, reference", [(LSTMCell, nn.LSTMCell), (GRUCell, nn.GRUCell)])
@pytest.mark.parametrize("bias", [True, False])
def test_cells_match_torch(cls, reference, bias):
    torch.manual_seed(2)
    ref = reference(3, 5, bias=bias).double()
    ours = cls(3, 5, bias=bias, dtype=F64)
    ours.load_state_dict(ref.state_dict())
    x = randn(4, 3, seed=6)
    hx = (randn(4, 5, seed=7), randn(4, 5, seed=8)) if cls is LSTMCell else randn(4, 5, seed=7)
    for with_hx in (False, True):
        outs = []
        for model in (ref, ours):
            xi = x.clone().requires_grad_(True)
            out = model(xi, hx if with_hx else None)
            outs.append(flatten(out) + grads_of(flatten(out), [xi, *model.parameters()]))
        for a, b in zip(*outs):
            assert_close(a, b)
    for a, b in zip(flatten(ref(x[0])), flatten(ours(x[0]))):  # unbatched
        assert_close(a, b)


# --------------------------------------------------------------------------- the Transformer block against torch
MASKS = ["none", "causal_bool", "causal_float", "is_causal", "padding", "padding_and_causal"]


def _masks(kind: str, batch: int, seq_len: int) -> dict:
    padding = torch.zeros(batch, seq_len, dtype=torch.bool)
    padding[0, seq_len - 2 :] = True
    padding[1, seq_len - 1] = True
    causal_bool = causal_mask(seq_len)
    causal_float = torch.zeros(seq_len, seq_len, dtype=F64).masked_fill(causal_bool, float("-inf"))
    return {
        "none": {},
        "causal_bool": {"src_mask": causal_bool},
        "causal_float": {"src_mask": causal_float},
        "is_causal": {"src_mask": causal_bool, "is_causal": True},
        "padding": {"src_key_padding_mask": padding},
        "padding_and_causal": {"src_mask": causal_bool, "src_key_padding_mask": padding},
    }[kind]


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("mask", MASKS)
def test_transformer_block_matches_torch(norm_first, activation, mask):
    torch.manual_seed(3)
    ref = nn.TransformerEncoderLayer(12, 3, 20, dropout=0.0, activation=activation, batch_first=True, norm_first=norm_first).double()
    with torch.no_grad():  # non-trivial layer-norm affine parameters
        for norm in (ref.norm1, ref.norm2):
            norm.weight.add_(0.3 * randn(12, seed=9))
            norm.bias.add_(0.3 * randn(12, seed=10))
    ours = TransformerEncoderBlock.from_torch(ref)
    assert ours.norm_first == norm_first and ours.activation_name == activation
    x = randn(3, 6, 12, seed=11)
    kwargs = _masks(mask, 3, 6)
    results = []
    for model in (ref, ours):
        xi = x.clone().requires_grad_(True)
        out = model(xi, **kwargs)
        params = dict(model.named_parameters())
        grads = grads_of([out], [xi, *params.values()])
        named = dict(zip(params, grads[1:]))
        if model is ours:  # stack our q/k/v gradients back into torch's in_proj layout
            for kind in ("weight", "bias"):
                named[f"self_attn.in_proj_{kind}"] = torch.cat([named.pop(f"self_attn.{p}_proj.{kind}") for p in "qkv"])
        results.append((out, grads[0], named))
    assert_close(results[0][0], results[1][0])
    assert_close(results[0][1], results[1][1])
    assert results[0][2].keys() == results[1][2].keys()
    for name, grad in results[0][2].items():
        assert_close(grad, results[1][2][name])


def test_fully_masked_queries_match_torch_without_nan():
    """A sequence made only of padding: PyTorch attends to nothing (zero weights); so do we, gradients included."""
    torch.manual_seed(7)
    ref = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True).double()
    ours = TransformerEncoderBlock.from_torch(ref)
    x = randn(2, 4, 8, seed=21)
    padding = torch.zeros(2, 4, dtype=torch.bool)
    padding[0] = True
    results = []
    for model in (ref, ours):
        xi = x.clone().requires_grad_(True)
        out = model(xi, src_key_padding_mask=padding)
        results.append([out, *grads_of([out], [xi])])
    for a, b in zip(*results):
        assert torch.isfinite(b).all()
        assert_close(a, b)


def test_transformer_block_sequence_first_and_no_bias_match_torch():
    torch.manual_seed(4)
    ref = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=False, bias=False).double()
    ours = TransformerEncoderBlock.from_torch(ref)
    assert not ours.batch_first and ours.linear1.bias is None
    x = randn(5, 2, 8, seed=12)  # (seq_len, batch, d_model)
    assert_close(ref(x), ours(x))
    assert_close(ref(x[:, 0]), ours(x[:, 0]))  # unbatched (seq_len, d_model)


def test_transformer_block_dropout_is_off_in_eval_mode():
    block = TransformerEncoderBlock(8, 2, 16, dropout=0.5, dtype=F64)
    x = randn(2, 5, 8, seed=13)
    block.eval()
    assert torch.equal(block(x), block(x))
    block.train()
    assert not torch.equal(block(x), block(x))


# --------------------------------------------------------------------------- properties
@settings(max_examples=15, deadline=None)
@given(seq_len=st.integers(2, 9), cut=st.integers(0, 8), seed=st.integers(0, 2**16))
def test_causal_models_ignore_the_future(seq_len, cut, seed):
    """Changing inputs after position `cut` changes no output at or before it (LSTM, GRU, causal block)."""
    cut = min(cut, seq_len - 2)
    x = randn(2, seq_len, 8, seed=seed)
    y = x.clone()
    y[:, cut + 1 :] += randn(2, seq_len - cut - 1, 8, seed=seed + 1)
    g = seeded(seed)
    models = [LSTM(8, 4, batch_first=True, generator=g, dtype=F64), GRU(8, 4, batch_first=True, generator=g, dtype=F64)]
    torch.manual_seed(seed)
    block = TransformerEncoderBlock(8, 2, 16, dtype=F64)
    outs = [(m(x)[0], m(y)[0]) for m in models] + [(block(x, is_causal=True), block(y, is_causal=True))]
    for a, b in outs:
        assert_close(a[:, : cut + 1], b[:, : cut + 1], atol=1e-12)
        assert not torch.allclose(a[:, cut + 1 :], b[:, cut + 1 :])


@settings(max_examples=15, deadline=None)
@given(perm_seed=st.integers(0, 2**16), norm_first=st.booleans())
def test_block_without_mask_is_permutation_equivariant(perm_seed, norm_first):
    """Without masks or positions, attention cannot tell where a token is: permuting the inputs permutes the outputs."""
    torch.manual_seed(5)
    block = TransformerEncoderBlock(8, 2, 16, norm_first=norm_first, dtype=F64)
    x = randn(2, 7, 8, seed=14)
    perm = torch.randperm(7, generator=seeded(perm_seed))
    assert_close(block(x)[:, perm], block(x[:, perm]), atol=1e-12)


def test_padded_keys_do_not_influence_other_positions():
    torch.manual_seed(6)
    block = TransformerEncoderBlock(8, 2, 16, dtype=F64)
    x = randn(2, 6, 8, seed=15)
    y = x.clone()
    y[0, 4:] = 100.0 * randn(2, 8, seed=16)
    padding = torch.zeros(2, 6, dtype=torch.bool)
    padding[0, 4:] = True
    a, b = block(x, src_key_padding_mask=padding), block(y, src_key_padding_mask=padding)
    assert_close(a[0, :4], b[0, :4], atol=1e-12)
    assert_close(a[1], b[1], atol=1e-12)


@pytest.mark.parametrize("module", ["ours", "torch"])
def test_set_forget_bias_opens_the_forget_gate(module):
    lstm = LSTM(3, 4, num_layers=2, generator=seeded(0)) if module == "ours" else nn.LSTM(3, 4, num_layers=2)
    set_forget_bias(lstm, 2.0)
    for layer in range(2):
        total = getattr(lstm, f"bias_ih_l{layer}") + getattr(lstm, f"bias_hh_l{layer}")
        assert torch.allclose(total[4:8], torch.full((4,), 2.0))
    # With zero weights and a zero input the candidate is tanh(0) = 0 and the cell keeps sigmoid(2) of its content per step.
    cell_lstm = LSTM(1, 2, generator=seeded(1))
    with torch.no_grad():
        for p in cell_lstm.parameters():
            p.zero_()
    set_forget_bias(cell_lstm, 2.0)
    c0 = torch.ones(1, 1, 2)
    _, (_, c) = cell_lstm(torch.zeros(3, 1, 1), (torch.zeros(1, 1, 2), c0))
    assert torch.allclose(c, c0 * torch.sigmoid(torch.tensor(2.0)) ** 3)


def test_generator_makes_initialisation_reproducible():
    a, b = LSTM(3, 4, generator=seeded(7)), LSTM(3, 4, generator=seeded(7))
    c = LSTM(3, 4, generator=seeded(8))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.weight_hh_l0, c.weight_hh_l0)
    bound = 1 / math.sqrt(4)
    assert all(p.abs().max() <= bound for p in a.parameters())


# --------------------------------------------------------------------------- gradient flow and path length
def test_input_gradient_norms_match_the_full_jacobian():
    gru = GRU(2, 3, batch_first=True, generator=seeded(9), dtype=F64)
    x = randn(2, 5, 2, seed=17)
    norms = input_gradient_norms(gru, x)
    for b in range(2):
        jac = torch.autograd.functional.jacobian(lambda xb: gru(xb)[0][-1], x[b])  # (hidden, seq_len, features)
        expected = jac.pow(2).sum(dim=(0, 2)).sqrt()
        if b == 0:
            total = expected
        else:
            total = total + expected
    assert np.allclose(norms, (total / 2).numpy(), atol=1e-12)


def test_rnn_gradient_vanishes_faster_than_lstm_with_forget_bias():
    torch.manual_seed(10)
    x = randn(8, 60, 2, seed=18, dtype=torch.float32)
    rnn_norms = input_gradient_norms(nn.RNN(2, 16, batch_first=True), x)
    lstm_norms = input_gradient_norms(set_forget_bias(LSTM(2, 16, batch_first=True, generator=seeded(10)), 3.0), x)
    rnn_decay, lstm_decay = rnn_norms[0] / rnn_norms[-1], lstm_norms[0] / lstm_norms[-1]
    assert rnn_decay < 1e-6 and lstm_decay > 100 * rnn_decay


def test_critical_path_length():
    x = torch.randn(3, requires_grad=True)
    assert critical_path_length(((x * 2) + 1).sin()) == 3
    depths = {}
    for seq_len in (4, 8, 16):
        x = torch.randn(2, seq_len, 4, requires_grad=True)
        lstm = LSTM(4, 4, batch_first=True, generator=seeded(0))
        block = TransformerEncoderBlock(4, 2, 8)
        depths[seq_len] = (critical_path_length(lstm(x)[0]), critical_path_length(block(x)))
    lstm_depths, block_depths = zip(*depths.values())
    steps = np.diff(lstm_depths) / np.diff(list(depths))
    assert np.all(steps == steps[0]) and steps[0] >= 1  # linear in seq_len
    assert len(set(block_depths)) == 1  # constant


def test_forward_time_is_positive():
    assert forward_time(nn.Identity(), torch.zeros(2), repeats=2) >= 0.0


# --------------------------------------------------------------------------- training smoke test
def test_train_adding_problem_improves_the_test_mse():
    config = AddingProblemConfig(seq_len=10, hidden_size=8, n_train=256, n_test=128, epochs=3, batch_size=32, lr=1e-2)
    result = train_adding_problem(LSTM(2, 8, batch_first=True, generator=seeded(0)), config, rng=0)
    assert len(result.test_mse) == 4 and len(result.step_loss) == 3 * 8
    assert result.test_mse[-1] < 0.5 * result.test_mse[0]
    assert result.test_mse[-1] < 1.2 * result.baseline_mse
    assert 0.1 < result.baseline_mse < 0.25
    prediction = result.model(torch.zeros(5, 10, 2))
    assert prediction.shape == (5,)


# --------------------------------------------------------------------------- bad input
def test_bad_inputs_raise():
    lstm = LSTM(3, 4, batch_first=True, generator=seeded(0))
    with pytest.raises(ValueError, match="3 features"):
        lstm(torch.zeros(2, 5, 4))
    with pytest.raises(TypeError, match="floating-point"):
        lstm(torch.zeros(2, 5, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="NaN"):
        lstm(torch.full((2, 5, 3), float("nan")))
    with pytest.raises(ValueError, match="2 .* or 3 dimensions"):
        lstm(torch.zeros(1, 2, 5, 3))
    with pytest.raises(ValueError, match="hx\\[1\\] must have shape"):
        lstm(torch.zeros(2, 5, 3), (torch.zeros(1, 2, 4), torch.zeros(1, 3, 4)))
    with pytest.raises(TypeError, match="tuple"):
        lstm(torch.zeros(2, 5, 3), torch.zeros(1, 2, 4))
    with pytest.raises(ValueError, match="hx must have shape"):
        GRU(3, 4)(torch.zeros(5, 2, 3), torch.zeros(2, 2, 4))
    with pytest.raises(ValueError, match="hidden_size must be a positive int"):
        LSTM(3, 0)
    with pytest.raises(ValueError, match="hx must have shape"):
        GRUCell(3, 4)(torch.zeros(2, 3), torch.zeros(3, 4))
    with pytest.raises(TypeError, match="torch.nn.LSTM"):
        LSTM.from_torch(nn.GRU(3, 4))
    with pytest.raises(ValueError, match="unidirectional"):
        GRU.from_torch(nn.GRU(3, 4, bidirectional=True))
    with pytest.raises(ValueError, match="activation must be 'relu' or 'gelu'"):
        TransformerEncoderBlock(8, 2, activation="tanh")
    with pytest.raises(ValueError, match="num_heads must divide embed_dim"):
        MultiHeadSelfAttention(8, 3)
    with pytest.raises(TypeError, match="TransformerEncoderLayer"):
        TransformerEncoderBlock.from_torch(nn.Linear(2, 2))
    block = TransformerEncoderBlock(8, 2, 16)
    with pytest.raises(ValueError, match="src_key_padding_mask must have shape"):
        block(torch.zeros(2, 5, 8), src_key_padding_mask=torch.zeros(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="src_mask must have shape"):
        block(torch.zeros(2, 5, 8), src_mask=causal_mask(4))
    with pytest.raises(ValueError, match="8 features"):
        block(torch.zeros(2, 5, 7))
    with pytest.raises(TypeError, match="LSTM"):
        set_forget_bias(nn.GRU(2, 2), 1.0)
    with pytest.raises(ValueError, match="biases"):
        set_forget_bias(LSTM(2, 2, bias=False), 1.0)
    with pytest.raises(ValueError, match="grad_fn"):
        critical_path_length(torch.zeros(3))
    with pytest.raises(ValueError, match="x must be a floating tensor"):
        input_gradient_norms(lstm, torch.zeros(5, 3))
    with pytest.raises(TypeError, match="AddingProblemConfig"):
        train_adding_problem(lstm, {"seq_len": 10}, rng=0)
    with pytest.raises(ValueError, match="config.epochs"):
        train_adding_problem(LSTM(2, 32, batch_first=True), AddingProblemConfig(epochs=0), rng=0)


def test_exercise_checkers(capsys):
    assert check_exercise_1(4 * (20 * 10 + 20 * 20 + 40)) and not check_exercise_1(2000)
    assert check_exercise_2(0.9**50) and not check_exercise_2(0.9)
    assert check_exercise_3(6) and not check_exercise_3(999)
    assert "Correct" in capsys.readouterr().out


# --------------------------------------------------------------------------- GPU
def _cuda_pair(cls, reference):
    torch.manual_seed(11)
    ref = reference(3, 16, num_layers=2, batch_first=True).double()
    return ref, cls.from_torch(ref).float().cuda()


@pytest.mark.gpu
@pytest.mark.parametrize("cls, reference", [(LSTM, nn.LSTM), (GRU, nn.GRU)])
@pytest.mark.parametrize("precision", ["float32", "bf16_autocast"])
def test_recurrent_layers_on_cuda(cls, reference, precision):
    ref, ours = _cuda_pair(cls, reference)
    x = randn(4, 20, 3, seed=19)
    ref_out = ref(x)[0]
    ref_grads = grads_of([ref_out], list(ref.parameters()))
    xg = x.float().cuda()
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=precision == "bf16_autocast"):
        out = ours(xg)[0]
    assert out.device.type == "cuda"
    grads = grads_of([out.float().cpu().double()], list(ours.parameters()))
    atol = 1e-4 if precision == "float32" else 5e-2
    assert torch.allclose(out.double().cpu(), ref_out, atol=atol)
    for a, b in zip(grads, ref_grads):
        assert torch.isfinite(a).all()
        assert torch.allclose(a.double().cpu(), b, atol=atol * max(1.0, float(b.abs().max())))


@pytest.mark.gpu
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("precision", ["float32", "bf16_autocast"])
def test_transformer_block_on_cuda(norm_first, precision):
    torch.manual_seed(12)
    ref = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True, norm_first=norm_first).double()
    ours = TransformerEncoderBlock.from_torch(ref).float().cuda()
    x = randn(2, 10, 32, seed=20)
    padding = torch.zeros(2, 10, dtype=torch.bool)
    padding[1, 7:] = True
    ref_out = ref(x, src_key_padding_mask=padding)
    ref_grads = grads_of([ref_out], list(ref.parameters())[2:])  # skip in_proj: our q/k/v are split
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=precision == "bf16_autocast"):
        out = ours(x.float().cuda(), src_key_padding_mask=padding.cuda(), is_causal=False)
    grads = grads_of([out.float().cpu().double()], list(ours.parameters())[6:])
    atol = 1e-4 if precision == "float32" else 1e-1
    assert torch.allclose(out.double().cpu(), ref_out, atol=atol)
    for a, b in zip(grads, ref_grads):
        if precision == "float32":
            assert torch.allclose(a.double().cpu(), b, atol=atol * max(1.0, float(b.abs().max())))
        else:
            # In bf16 a pre-activation near 0 can flip the ReLU's mask, which moves single weight-gradient
            # entries by O(1): torch's own layer shows such outliers too (in other configurations). So
            # bf16 gradients are compared by their relative norm error (at most 0.06 measured, torch's alike).
            assert float((a.double().cpu() - b).norm() / b.norm()) < 0.1


@pytest.mark.gpu
def test_train_adding_problem_on_cuda():
    config = AddingProblemConfig(seq_len=10, hidden_size=8, n_train=256, n_test=128, epochs=3, batch_size=32)
    core = LSTM(2, 8, batch_first=True, generator=torch.Generator(device="cuda").manual_seed(0), device="cuda")
    result = train_adding_problem(core, config, rng=0)
    assert next(result.model.parameters()).device.type == "cuda"
    assert result.test_mse[-1] < 0.5 * result.test_mse[0]
