"""Tests of mlnotes.sequence.rnn (chapter book/sequence/rnn.ipynb).

The independent reference is ``torch.nn.RNN`` / ``torch.nn.RNNCell`` with copied weights
(and autograd for the hand-written BPTT); closed forms for the gradient-flow analysis.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mlnotes.sequence.rnn import (
    RNN,
    AddingConfig,
    RNNCell,
    RNNRegressor,
    bptt,
    check_exercise_1,
    check_exercise_2,
    check_exercise_3,
    clip_grad_norm,
    gradient_flow,
    recurrent_matrix,
    rnn_cell,
    spectral_radius,
    train_adding_problem,
)

F64 = torch.float64


def randn(*shape: int, seed: int = 0, dtype: torch.dtype = F64) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def torch_rnn(*args, seed: int = 0, **kwargs) -> torch.nn.RNN:
    torch.manual_seed(seed)  # torch.nn.RNN draws its initial weights from the global generator
    return torch.nn.RNN(*args, dtype=F64, **kwargs)


# --------------------------------------------------------------------------- (1) golden: torch.nn.RNN with copied weights
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("num_layers", [1, 3])
@pytest.mark.parametrize("with_h0", [False, True])
def test_forward_and_gradients_equal_torch(nonlinearity, batch_first, num_layers, with_h0):
    ref = torch_rnn(4, 6, num_layers=num_layers, nonlinearity=nonlinearity, batch_first=batch_first)
    ours = RNN.from_torch(ref)
    batch, seq_len = 5, 7
    x = randn(*((batch, seq_len, 4) if batch_first else (seq_len, batch, 4)), seed=1)
    h0 = randn(num_layers, batch, 6, seed=2) if with_h0 else None
    inputs = []
    for module in (ref, ours):
        xi = x.clone().requires_grad_()
        hi = None if h0 is None else h0.clone().requires_grad_()
        out, h_n = module(xi, hi)
        # A loss that touches every output and the final states, with distinct weights.
        loss = (out * randn(*out.shape, seed=3)).sum() + (h_n * randn(*h_n.shape, seed=4)).sum()
        loss.backward()
        inputs.append((out, h_n, xi, hi))
    (out_r, hn_r, x_r, h_r), (out_o, hn_o, x_o, h_o) = inputs
    assert out_o.shape == out_r.shape and hn_o.shape == hn_r.shape
    torch.testing.assert_close(out_o, out_r, atol=1e-6, rtol=0)
    torch.testing.assert_close(hn_o, hn_r, atol=1e-6, rtol=0)
    torch.testing.assert_close(x_o.grad, x_r.grad, atol=1e-6, rtol=0)
    if with_h0:
        torch.testing.assert_close(h_o.grad, h_r.grad, atol=1e-6, rtol=0)
    ref_params = dict(ref.named_parameters())
    for name, param in ours.named_parameters():
        torch.testing.assert_close(param.grad, ref_params[name].grad, atol=1e-6, rtol=0)


def test_parameters_named_and_shaped_like_torch():
    for kwargs in ({"num_layers": 3}, {"num_layers": 2, "bias": False}):
        ref = torch_rnn(3, 8, **kwargs)
        ours = RNN(3, 8, seed=0, **kwargs)
        assert [(n, tuple(p.shape)) for n, p in ours.named_parameters()] == [(n, tuple(p.shape)) for n, p in ref.named_parameters()]


@settings(max_examples=15, deadline=None)
@given(
    seq_len=st.integers(1, 6), input_size=st.integers(1, 4), hidden_size=st.integers(1, 5),
    num_layers=st.integers(1, 2), bias=st.booleans(), seed=st.integers(0, 1000),
)
def test_any_shape_matches_torch_and_state_dict_copies(seq_len, input_size, hidden_size, num_layers, bias, seed):
    ref = torch_rnn(input_size, hidden_size, num_layers=num_layers, bias=bias, seed=seed)
    ours = RNN(input_size, hidden_size, num_layers, bias=bias, dtype=F64, seed=seed)
    ours.load_state_dict(ref.state_dict())  # same names and shapes: a plain state_dict copy works
    x = randn(seq_len, 3, input_size, seed=seed)
    for a, b in zip(ours(x), ref(x)):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


def test_unbatched_input_like_torch():
    ref = torch_rnn(3, 4, num_layers=2)
    ours = RNN.from_torch(ref)
    x, h0 = randn(6, 3, seed=1), randn(2, 4, seed=2)
    for a, b in zip(ours(x, h0), ref(x, h0)):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


def test_cell_equals_torch_cell_and_the_functional_step():
    for nonlinearity, bias in (("tanh", True), ("relu", False)):
        torch.manual_seed(0)
        ref = torch.nn.RNNCell(3, 5, bias=bias, nonlinearity=nonlinearity, dtype=F64)
        ours = RNNCell.from_torch(ref)
        x, h = randn(4, 3, seed=1), randn(4, 5, seed=2)
        torch.testing.assert_close(ours(x, h), ref(x, h), atol=1e-6, rtol=0)
        torch.testing.assert_close(ours(x), ref(x), atol=1e-6, rtol=0)
        torch.testing.assert_close(ours(x[0], h[0]), ref(x[0], h[0]), atol=1e-6, rtol=0)
        step = rnn_cell(x, h, ours.weight_ih, ours.weight_hh, ours.bias_ih, ours.bias_hh, nonlinearity)
        torch.testing.assert_close(step, ref(x, h), atol=1e-12, rtol=0)


def test_initialisation_is_seeded_and_in_torchs_range():
    a, b, c = RNN(3, 16, 2, seed=5), RNN(3, 16, 2, seed=5), RNN(3, 16, 2, seed=6)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))
    bound = 1 / math.sqrt(16)
    values = torch.cat([p.detach().flatten() for p in a.parameters()])
    assert values.abs().max() <= bound and values.abs().max() > 0.9 * bound  # U(-1/sqrt(h), 1/sqrt(h))


# --------------------------------------------------------------------------- (2) BPTT by hand equals autograd
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("with_h0", [False, True])
def test_bptt_equals_autograd(batch_first, bias, with_h0):
    rnn = RNN(3, 5, bias=bias, batch_first=batch_first, dtype=F64, seed=0)
    with torch.no_grad():
        rnn.weight_hh_l0.mul_(3.0)  # a larger recurrence, so that tanh' varies over time
    seq_len, batch = 9, 4
    x = randn(*((batch, seq_len, 3) if batch_first else (seq_len, batch, 3)), seed=1)
    grad_output = randn(*x.shape[:-1], 5, seed=2)
    h0 = randn(1, batch, 5, seed=3) if with_h0 else None
    result = bptt(rnn, x, grad_output, h0)

    h0_leaf = (h0 if h0 is not None else torch.zeros(1, batch, 5, dtype=F64)).clone().requires_grad_()
    out, _ = rnn(x, h0_leaf)
    out.backward(grad_output)
    assert set(result.params) == {name for name, _ in rnn.named_parameters()}
    for name, param in rnn.named_parameters():
        torch.testing.assert_close(result.params[name], param.grad, atol=1e-8, rtol=0)
    torch.testing.assert_close(result.h0, h0_leaf.grad[0], atol=1e-8, rtol=0)


def test_bptt_hidden_adjoints_equal_autograd_of_the_tail():
    """dL/dh_t is the gradient of the loss of steps t..T with respect to h_t, re-run from h_t."""
    rnn = RNN(2, 4, dtype=F64, seed=1)
    x, grad_output = randn(8, 3, 2, seed=1), randn(8, 3, 4, seed=2)
    result = bptt(rnn, x, grad_output)
    out, _ = rnn(x)
    for t in (0, 3, 7):
        h_t = out[t].detach().clone().requires_grad_()
        tail = (grad_output[t] * h_t).sum()
        if t + 1 < len(x):
            later, _ = rnn(x[t + 1 :], h_t.unsqueeze(0))
            tail = tail + (grad_output[t + 1 :] * later).sum()
        (grad,) = torch.autograd.grad(tail, h_t)
        torch.testing.assert_close(result.hidden[t], grad, atol=1e-10, rtol=0)


# --------------------------------------------------------------------------- (3) vanishing and exploding gradients
def test_spectral_radius_and_recurrent_matrix():
    for kind in ("orthogonal", "gaussian"):
        w = recurrent_matrix(20, 0.7, kind=kind, generator=3)
        assert spectral_radius(w) == pytest.approx(0.7, rel=1e-9)
        assert spectral_radius(w) == pytest.approx(np.abs(np.linalg.eigvals(w.numpy())).max(), rel=1e-9)
    singular = torch.linalg.svdvals(recurrent_matrix(20, 0.7, kind="orthogonal", generator=3))
    torch.testing.assert_close(singular, torch.full((20,), 0.7, dtype=F64))
    assert torch.linalg.matrix_norm(recurrent_matrix(20, 0.7, kind="gaussian", generator=3), ord=2) > 1.2 * 0.7
    assert torch.equal(recurrent_matrix(8, 1.0, generator=1), recurrent_matrix(8, 1.0, generator=1))


@pytest.mark.parametrize("radius", [0.5, 0.9, 1.1, 1.5])
def test_linear_gradient_norms_are_radius_to_the_lag(radius):
    flow = gradient_flow(recurrent_matrix(16, radius, generator=0), 30, nonlinearity="linear", batch_size=4)
    np.testing.assert_allclose(flow.grad_norms, radius ** flow.lags, rtol=1e-9)
    steps = np.diff(flow.grad_norms)
    assert (steps < 0).all() if radius < 1 else (steps > 0).all()


@settings(max_examples=10, deadline=None)
@given(radius=st.floats(0.3, 3.0), kind=st.sampled_from(["orthogonal", "gaussian"]),
       nonlinearity=st.sampled_from(["tanh", "relu", "linear"]), input_scale=st.floats(0.0, 2.0), seed=st.integers(0, 100))
def test_jacobian_products_obey_the_bound(radius, kind, nonlinearity, input_scale, seed):
    flow = gradient_flow(recurrent_matrix(8, radius, kind=kind, generator=seed), 20, nonlinearity=nonlinearity,
                         batch_size=3, input_scale=input_scale, generator=seed)
    assert (flow.jacobian_norms <= flow.bounds * (1 + 1e-9) + 1e-300).all()
    assert (flow.grad_norms <= flow.jacobian_norms.mean(axis=0) * (1 + 1e-9) + 1e-300).all()  # ||M^T u|| <= ||M||
    if nonlinearity == "tanh":
        assert (flow.max_derivative <= 1.0).all()


def test_gradient_flow_equals_autograd():
    """Rebuild the same inputs and check ||dL/dh_0|| against autograd through the torch RNN."""
    n, seq_len, batch = 6, 12, 5
    w = recurrent_matrix(n, 1.3, kind="gaussian", generator=2)
    flow = gradient_flow(w, seq_len, batch_size=batch, input_scale=0.5, generator=7)
    gen = torch.Generator().manual_seed(7)
    x = 0.5 * torch.randn(seq_len, batch, n, generator=gen, dtype=F64)
    u = torch.randn(n, generator=gen, dtype=F64)
    ref = torch.nn.RNN(n, n, bias=False, dtype=F64)
    with torch.no_grad():
        ref.weight_ih_l0.copy_(torch.eye(n, dtype=F64))
        ref.weight_hh_l0.copy_(w)
    h0 = torch.zeros(1, batch, n, dtype=F64, requires_grad=True)
    _, h_n = ref(x, h0)
    (h_n[0] @ (u / u.norm())).sum().backward()
    assert flow.grad_norms[-1] == pytest.approx(float(h0.grad[0].norm(dim=-1).mean()), rel=1e-9)
    assert flow.spectral_radius == pytest.approx(1.3, rel=1e-9)


# --------------------------------------------------------------------------- (4) gradient clipping
def test_clip_grad_norm_equals_torch_and_bounds_an_exploding_gradient():
    rnn = RNN(4, 16, dtype=F64, seed=0)
    with torch.no_grad():
        rnn.weight_hh_l0.copy_(recurrent_matrix(16, 1.5, generator=0))
        rnn.weight_ih_l0.mul_(0.05)
    twin = RNN(4, 16, dtype=F64, seed=0)
    twin.load_state_dict(rnn.state_dict())
    x = randn(60, 2, 4, seed=1)
    for module in (rnn, twin):
        out, _ = module(x)
        out[-1].sum().backward()
    before = torch.cat([p.grad.flatten() for p in rnn.parameters()]).clone()
    assert before.norm() > 100  # an exploding gradient
    total = clip_grad_norm(rnn.parameters(), 1.0)
    total_torch = torch.nn.utils.clip_grad_norm_(twin.parameters(), 1.0)
    after = torch.cat([p.grad.flatten() for p in rnn.parameters()])
    assert float(total) == pytest.approx(float(before.norm()), rel=1e-12)
    assert float(total) == pytest.approx(float(total_torch), rel=1e-9)
    torch.testing.assert_close(after, torch.cat([p.grad.flatten() for p in twin.parameters()]), atol=1e-12, rtol=1e-9)
    assert after.norm() <= 1.0 + 1e-9
    assert torch.nn.functional.cosine_similarity(after, before, dim=0) > 1 - 1e-12  # same direction


def test_clip_grad_norm_leaves_small_gradients_alone():
    p = torch.zeros(3, dtype=F64, requires_grad=True)
    p.grad = torch.tensor([0.3, 0.4, 0.0], dtype=F64)
    assert float(clip_grad_norm(p, 1.0)) == pytest.approx(0.5)
    torch.testing.assert_close(p.grad, torch.tensor([0.3, 0.4, 0.0], dtype=F64))


# --------------------------------------------------------------------------- (5) the sequence task (smoke)
def test_train_adding_problem_improves_on_a_tiny_budget():
    config = AddingConfig(seq_len=5, hidden_size=16, n_train=1024, n_test=256, epochs=6, batch_size=16, lr=1e-2, seed=0)
    result = train_adding_problem(config)
    assert len(result.train_loss) == len(result.test_mse) == 6 and len(result.step_loss) == 6 * 1024 // 16
    assert result.baseline_mse == pytest.approx(1 / 6, abs=0.03)
    assert result.train_loss[-1] < 0.6 * result.train_loss[0]
    assert result.test_mse[-1] < 0.5 * result.baseline_mse
    again = train_adding_problem(config)
    assert again.test_mse == result.test_mse  # seeded end to end


def test_regressor_output_shape():
    model = RNNRegressor(2, 8, num_layers=2, seed=0)
    assert model(torch.zeros(5, 7, 2)).shape == (5,)


# --------------------------------------------------------------------------- (6) bad input
def test_bad_input_raises():
    rnn = RNN(3, 4, num_layers=2, seed=0)
    with pytest.raises(ValueError, match="x must have shape"):
        rnn(torch.zeros(5, 2, 7))
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        rnn(torch.zeros(5, 2, 3, dtype=torch.long))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        rnn(np.zeros((5, 2, 3)))
    with pytest.raises(ValueError, match="x must not be empty"):
        rnn(torch.zeros(0, 2, 3))
    with pytest.raises(ValueError, match=r"h0 must have shape \(2, 2, 4\)"):
        rnn(torch.zeros(5, 2, 3), torch.zeros(1, 2, 4))
    with pytest.raises(ValueError, match="nonlinearity must be one of"):
        RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="hidden_size must be an int >= 1"):
        RNN(3, 0)
    with pytest.raises(ValueError, match="num_layers must be an int >= 1"):
        RNN(3, 4, num_layers=0)


def test_weight_copy_rejects_what_it_cannot_copy():
    rnn = RNN(3, 4, seed=0)
    with pytest.raises(TypeError, match="module must be a torch.nn.RNN"):
        rnn.load_torch_weights(torch.nn.GRU(3, 4))
    with pytest.raises(ValueError, match="unidirectional"):
        RNN.from_torch(torch.nn.RNN(3, 4, bidirectional=True))
    with pytest.raises(ValueError, match="num_layers, nonlinearity, bias"):
        rnn.load_torch_weights(torch.nn.RNN(3, 4, nonlinearity="relu"))
    with pytest.raises(TypeError, match="module must be a torch.nn.RNNCell"):
        RNNCell.from_torch(torch.nn.RNN(3, 4))


def test_bptt_bad_input():
    x, g = torch.zeros(4, 2, 3, dtype=F64), torch.zeros(4, 2, 5, dtype=F64)
    with pytest.raises(ValueError, match="one-layer tanh RNN"):
        bptt(RNN(3, 5, num_layers=2, dtype=F64, seed=0), x, g)
    with pytest.raises(ValueError, match="one-layer tanh RNN"):
        bptt(RNN(3, 5, nonlinearity="relu", dtype=F64, seed=0), x, g)
    rnn = RNN(3, 5, dtype=F64, seed=0)
    with pytest.raises(ValueError, match="grad_output must have shape"):
        bptt(rnn, x, g[:, :, :4])
    with pytest.raises(ValueError, match="x must be finite"):
        bptt(rnn, torch.full_like(x, float("nan")), g)
    with pytest.raises(ValueError, match="x must be batched"):
        bptt(rnn, x[:, 0], g[:, 0])
    with pytest.raises(TypeError, match="rnn must be an mlnotes RNN"):
        bptt(torch.nn.RNN(3, 5), x, g)


def test_analysis_bad_input():
    with pytest.raises(ValueError, match="radius must be a positive finite float"):
        recurrent_matrix(4, -1.0)
    with pytest.raises(ValueError, match="kind must be one of"):
        recurrent_matrix(4, 1.0, kind="uniform")
    with pytest.raises(ValueError, match="weight_hh must be square"):
        gradient_flow(torch.zeros(3, 4), 5)
    with pytest.raises(ValueError, match="weight_hh must be finite"):
        gradient_flow(torch.full((3, 3), float("inf")), 5)
    with pytest.raises(ValueError, match="nonlinearity must be one of"):
        gradient_flow(torch.eye(3), 5, nonlinearity="gelu")
    with pytest.raises(ValueError, match="matrix must be square"):
        spectral_radius(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="max_norm must be a positive finite float"):
        clip_grad_norm([torch.zeros(2, requires_grad=True)], 0.0)
    with pytest.raises(TypeError, match="config must be an AddingConfig"):
        train_adding_problem({"seq_len": 5})
    with pytest.raises(ValueError, match="config.epochs must be an int >= 1"):
        train_adding_problem(AddingConfig(epochs=0))


def test_exercise_checkers(capsys):
    assert check_exercise_1(110) and not check_exercise_1(100)
    assert check_exercise_2(0.9**50) and not check_exercise_2(0.9)
    assert check_exercise_3(0.5 ** 0.1) and not check_exercise_3(0.5)
    assert "Correct" in capsys.readouterr().out


# --------------------------------------------------------------------------- (7) GPU
@pytest.mark.gpu
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_on_cuda_float32(nonlinearity):
    ref = torch_rnn(4, 32, num_layers=2, nonlinearity=nonlinearity, batch_first=True)
    ours = RNN.from_torch(ref).float().cuda()
    assert next(ours.parameters()).device.type == "cuda"
    x = randn(8, 20, 4, seed=1)
    out, h_n = ours(x.float().cuda())
    ref_out, ref_hn = ref(x)
    assert out.device.type == "cuda" and out.dtype == torch.float32
    torch.testing.assert_close(out.double().cpu(), ref_out.detach(), atol=1e-4, rtol=0)
    torch.testing.assert_close(h_n.double().cpu(), ref_hn.detach(), atol=1e-4, rtol=0)
    out.sum().backward()
    ref_out.sum().backward()
    for name, param in ours.named_parameters():
        torch.testing.assert_close(param.grad.double().cpu(), getattr(ref, name).grad, atol=1e-3, rtol=1e-3)


@pytest.mark.gpu
def test_rnn_on_cuda_bf16_autocast():
    ours = RNN(4, 32, num_layers=2, batch_first=True, seed=0).cuda()
    x = randn(8, 20, 4, seed=1, dtype=torch.float32).cuda()
    full, _ = ours(x)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out, h_n = ours(x)
    assert out.dtype == torch.bfloat16 and h_n.dtype == torch.bfloat16
    assert (out.float() - full).abs().max() < 5e-2
    out.float().pow(2).mean().backward()
    grads = [p.grad for p in ours.parameters()]
    assert all(g is not None and g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)
    ours.zero_grad()
    full.pow(2).mean().backward()
    for g_bf16, p in zip(grads, ours.parameters()):
        assert (g_bf16 - p.grad).norm() <= 0.1 * p.grad.norm() + 1e-3


@pytest.mark.gpu
def test_bptt_and_training_on_cuda():
    rnn = RNN(3, 8, dtype=torch.float32, seed=0).cuda()
    x, g = randn(10, 4, 3, seed=1, dtype=torch.float32).cuda(), randn(10, 4, 8, seed=2, dtype=torch.float32).cuda()
    result = bptt(rnn, x, g)
    out, _ = rnn(x)
    out.backward(g)
    for name, param in rnn.named_parameters():
        assert result.params[name].device.type == "cuda"
        torch.testing.assert_close(result.params[name], param.grad, atol=1e-4, rtol=1e-4)
    config = AddingConfig(seq_len=5, hidden_size=16, n_train=512, n_test=256, epochs=5, batch_size=32)
    trained = train_adding_problem(config, device="cuda")
    assert next(trained.model.parameters()).device.type == "cuda"
    assert trained.test_mse[-1] < trained.initial_test_mse
