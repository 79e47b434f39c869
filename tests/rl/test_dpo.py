"""Tests of mlnotes.rl.dpo (chapter book/rl/dpo.ipynb)."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mlnotes.rl.dpo import (
    SequenceDPOConfig,
    SFTConfig,
    TabularDPOConfig,
    TinyGRULanguageModel,
    bradley_terry_probability,
    check_exercise_1,
    check_exercise_2,
    check_exercise_3,
    dpo_gradient_weights,
    dpo_loss,
    expected_preference_pairs,
    implicit_reward,
    kl_regularised_optimum,
    kl_to_reference,
    make_preference_problem,
    make_sequence_preferences,
    make_sft_sequences,
    pretrain_sft,
    sample_preference_pairs,
    sample_sequences,
    sequence_log_probs,
    token_count_reward,
    total_variation,
    train_sequence_dpo,
    train_tabular_dpo,
    win_rate,
)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: one thread is faster than several on a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def t64(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def plain_python_dpo(pc: float, pr: float, rc: float, rr: float, beta: float) -> tuple[float, float, float]:
    """An independent scalar implementation with the math module only."""
    chosen, rejected = beta * (pc - rc), beta * (pr - rr)
    return math.log1p(math.exp(-(chosen - rejected))), chosen, rejected


# --------------------------------------------------------------------------- (1) the loss, golden
def test_dpo_loss_hand_computed():
    # Pair 1: log-ratios +0.5 and -0.5, beta = 1 -> margin 1 -> loss log(1 + e^-1) = 0.31326168751822286.
    # Pair 2: policy equals reference -> margin 0 -> loss log 2.
    # Pair 3: log-ratios -1 and +1, beta = 1 -> margin -2 -> loss log(1 + e^2) = 2.1269280110429727.
    losses, chosen, rejected = dpo_loss(t64(-1.0, -3.0, -4.0), t64(-2.0, -2.0, -1.0), t64(-1.5, -3.0, -3.0), t64(-1.5, -2.0, -2.0), beta=1.0)
    assert torch.allclose(losses, t64(0.31326168751822286, math.log(2.0), 2.1269280110429727), atol=1e-12)
    assert torch.allclose(chosen, t64(0.5, 0.0, -1.0)) and torch.allclose(rejected, t64(-0.5, 0.0, 1.0))


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(-20, 0), min_size=4, max_size=4),
    st.floats(0.01, 5.0),
)
def test_dpo_loss_matches_plain_python(logps, beta):
    losses, chosen, rejected = dpo_loss(*(t64(v) for v in logps), beta=beta)
    ref_loss, ref_chosen, ref_rejected = plain_python_dpo(*logps, beta)
    assert math.isclose(float(losses[0]), ref_loss, rel_tol=1e-9, abs_tol=1e-12)
    assert math.isclose(float(chosen[0]), ref_chosen, abs_tol=1e-12)
    assert math.isclose(float(rejected[0]), ref_rejected, abs_tol=1e-12)


def test_rewards_are_detached_and_loss_is_differentiable():
    policy = t64(-1.0, -2.0).requires_grad_(True)
    losses, chosen, _ = dpo_loss(policy, t64(-2.0, -1.0), t64(-1.0, -1.0), t64(-1.0, -1.0))
    assert losses.requires_grad and not chosen.requires_grad


def test_gradient_is_sigmoid_weighted():
    # d loss / d log pi(y_w) = -beta * sigmoid(r_l - r_w); d loss / d log pi(y_l) = +beta * sigmoid(r_l - r_w).
    gen = torch.Generator().manual_seed(0)
    logps = [torch.randn(16, generator=gen, dtype=torch.float64) for _ in range(4)]
    chosen, rejected = logps[0].clone().requires_grad_(True), logps[1].clone().requires_grad_(True)
    losses, r_w, r_l = dpo_loss(chosen, rejected, logps[2], logps[3], beta=0.3)
    losses.sum().backward()
    weight = dpo_gradient_weights(logps[0], logps[1], logps[2], logps[3], beta=0.3)
    assert torch.allclose(weight, 0.3 * torch.sigmoid(r_l - r_w))
    assert torch.allclose(chosen.grad, -weight, atol=1e-12)
    assert torch.allclose(rejected.grad, weight, atol=1e-12)


def test_bradley_terry():
    assert bradley_terry_probability(1.0, 1.0) == pytest.approx(0.5)
    assert bradley_terry_probability(math.log(3.0), 0.0) == pytest.approx(0.75)
    assert bradley_terry_probability(800.0, 0.0) == pytest.approx(1.0)  # stable, no overflow


# --------------------------------------------------------------------------- (2) closed forms, properties
@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.05, 10.0))
def test_kl_optimum_maximises_regularised_objective(seed, beta):
    problem = make_preference_problem(3, 5, rng=seed)
    optimum = kl_regularised_optimum(problem.ref_probs, problem.rewards, beta)
    assert np.allclose(optimum.sum(axis=1), 1.0)

    def objective(pi):
        return (pi * problem.rewards).sum(1) - beta * (pi * np.log(pi / problem.ref_probs)).sum(1)

    # The value at the optimum is beta * log Z, and no other policy does better.
    log_z = np.log((problem.ref_probs * np.exp(problem.rewards / beta)).sum(1))
    assert np.allclose(objective(optimum), beta * log_z, atol=1e-9)
    other = np.random.default_rng(seed).dirichlet(np.ones(5), size=3)
    assert np.all(objective(other) <= objective(optimum) + 1e-12)
    # The implicit reward is the true reward shifted by beta * log Z per prompt.
    shift = implicit_reward(optimum, problem.ref_probs, beta) - problem.rewards
    assert np.allclose(shift, -beta * log_z[:, None], atol=1e-8)


def test_beta_limits():
    problem = make_preference_problem(2, 4, rng=3)
    assert np.allclose(kl_regularised_optimum(problem.ref_probs, problem.rewards, 1e4), problem.ref_probs, atol=1e-3)
    greedy = kl_regularised_optimum(problem.ref_probs, problem.rewards, 1e-3)
    assert np.array_equal(greedy.argmax(1), problem.rewards.argmax(1)) and greedy.max(1).min() > 0.999


def test_expected_pairs_are_a_distribution():
    problem = make_preference_problem(3, 4, rng=0)
    x, i, j, w = expected_preference_pairs(problem)
    # Over all ordered pairs of distinct responses the probability is 1 - P(y1 == y2).
    assert w.sum() == pytest.approx(1.0 - (problem.prompt_probs * (problem.ref_probs**2).sum(1)).sum())
    # Chosen over rejected and the reverse add up to the probability of drawing the pair at all.
    both = {(a, b, c): v for a, b, c, v in zip(x, i, j, w)}
    assert both[0, 1, 2] + both[0, 2, 1] == pytest.approx(2 * problem.prompt_probs[0] * problem.ref_probs[0, 1] * problem.ref_probs[0, 2])
    assert np.all(i != j)


def test_sampled_pairs_follow_bradley_terry():
    problem = make_preference_problem(1, 2, rng=0)
    prompts, chosen, _ = sample_preference_pairs(problem, 40_000, rng=1)
    expected = bradley_terry_probability(problem.rewards[0, 0], problem.rewards[0, 1])
    assert np.mean(chosen == 0) == pytest.approx(expected, abs=0.015)


# --------------------------------------------------------------------------- (3) DPO recovers the RLHF optimum
def test_tabular_dpo_exact_loss_reaches_closed_form_optimum():
    problem = make_preference_problem(4, 6, rng=0)
    result = train_tabular_dpo(problem, *expected_preference_pairs(problem), config=TabularDPOConfig(beta=0.5))
    optimum = kl_regularised_optimum(problem.ref_probs, problem.rewards, 0.5)
    assert total_variation(result.policy_probs, optimum).max() < 1e-4
    assert result.loss_history[-1] < result.loss_history[0]


def test_tabular_dpo_on_samples_recovers_reward():
    problem = make_preference_problem(4, 6, rng=0)
    pairs = sample_preference_pairs(problem, 100_000, rng=1)
    result = train_tabular_dpo(problem, *pairs, config=TabularDPOConfig(beta=0.5))
    optimum = kl_regularised_optimum(problem.ref_probs, problem.rewards, 0.5)
    assert total_variation(result.policy_probs, optimum).max() <= 0.05
    recovered = implicit_reward(result.policy_probs, problem.ref_probs, 0.5)
    centre = lambda a: a - a.mean(axis=1, keepdims=True)  # noqa: E731 - remove the per-prompt constant
    assert np.corrcoef(centre(recovered).ravel(), centre(problem.rewards).ravel())[0, 1] >= 0.99


# --------------------------------------------------------------------------- (4) the sequence model
@pytest.fixture(scope="module")
def reference():
    torch.manual_seed(0)
    model = TinyGRULanguageModel(n_tokens=4, max_len=5, embed_dim=16, hidden_dim=32)
    sequences = torch.as_tensor(make_sft_sequences(1000, n_tokens=4, max_len=5, min_len=2, rng=0))
    history = pretrain_sft(model, sequences, SFTConfig(steps=60, batch_size=64, lr=1e-2), generator=0)
    assert np.mean(history[-10:]) < np.mean(history[:10])  # smoke: maximum likelihood improves
    return model


def test_sequence_probabilities_sum_to_one(reference):
    # Enumerate every sequence of the model (lengths 0..max_len over 4 tokens) and sum their probabilities.
    import itertools

    rows = []
    for length in range(reference.max_len + 1):
        for body in itertools.product(range(reference.n_tokens), repeat=length):
            rows.append(list(body) + [reference.eos] + [reference.pad] * (reference.max_len - length))
    with torch.no_grad():
        total = sequence_log_probs(reference, torch.tensor(rows)).double().exp().sum()
    assert float(total) == pytest.approx(1.0, abs=1e-4)


@torch.no_grad()
def test_sequence_log_probs_match_token_loop(reference):
    samples = sample_sequences(reference, 8, generator=3)
    batched = sequence_log_probs(reference, samples)
    for row, value in zip(samples, batched):
        end = int((row == reference.eos).nonzero()[0]) + 1
        inputs = torch.cat([torch.tensor([reference.bos]), row[: end - 1]])[None]
        log_probs, _ = reference(inputs)
        by_hand = sum(float(log_probs[0, t, row[t]]) for t in range(end))
        assert float(value) == pytest.approx(by_hand, abs=1e-5)
    # Samples end in EOS and are padded after it; seeded sampling repeats.
    assert torch.equal(samples, sample_sequences(reference, 8, generator=3))
    assert bool((samples == reference.eos).any(dim=1).all())


def test_sequence_dpo_improves_margin_and_win_rate(reference):
    data = make_sequence_preferences(reference, token_count_reward, 400, generator=1)
    policy = copy.deepcopy(reference)
    config = SequenceDPOConfig(beta=0.3, steps=60, batch_size=64, lr=1e-2, eval_every=60, eval_samples=400)
    result = train_sequence_dpo(policy, reference, data, token_count_reward, config, generator=2)
    assert np.mean(result.reward_margin[-10:]) > np.mean(result.reward_margin[:10]) + 0.2
    assert np.mean(result.loss[-10:]) < np.mean(result.loss[:10])
    assert result.kl[0] == pytest.approx(0.0, abs=1e-6) and result.kl[-1] > 0.1
    assert result.win_rate[-1] > 0.6
    assert kl_to_reference(reference, reference, 64) == pytest.approx(0.0, abs=1e-6)
    assert win_rate(reference, reference, token_count_reward, 2000, generator=5) == pytest.approx(0.5, abs=0.04)


def test_token_count_reward():
    tokens = torch.tensor([[0, 0, 1, 4, 6], [1, 1, 4, 6, 6]])
    assert torch.equal(token_count_reward(tokens), torch.tensor([1.0, -2.0]))


# --------------------------------------------------------------------------- (5) bad input
def test_bad_inputs():
    ok = t64(-1.0, -2.0)
    with pytest.raises(ValueError, match="policy_rejected_logps must have the shape"):
        dpo_loss(ok, t64(-1.0), ok, ok)
    with pytest.raises(ValueError, match=r"shape \(batch,\)"):
        dpo_loss(ok[None], ok[None], ok[None], ok[None])
    with pytest.raises(TypeError, match="floating-point"):
        dpo_loss(torch.tensor([1, 2]), ok, ok, ok)
    with pytest.raises(TypeError, match="torch.Tensor"):
        dpo_loss([-1.0], ok, ok, ok)
    with pytest.raises(ValueError, match="beta must be a positive"):
        dpo_loss(ok, ok, ok, ok, beta=0.0)
    with pytest.raises(ValueError, match="each row of ref_probs must sum to 1"):
        kl_regularised_optimum(np.array([[0.5, 0.6]]), np.zeros((1, 2)), 1.0)
    with pytest.raises(ValueError, match="rewards must have the shape"):
        kl_regularised_optimum(np.array([[0.5, 0.5]]), np.zeros((1, 3)), 1.0)
    problem = make_preference_problem(2, 3, rng=0)
    with pytest.raises(ValueError, match="chosen must hold indices"):
        train_tabular_dpo(problem, [0], [3], [1])
    with pytest.raises(ValueError, match="n_responses must be at least 2"):
        make_preference_problem(2, 1)
    model = TinyGRULanguageModel(n_tokens=3, max_len=4)
    with pytest.raises(ValueError, match="int64 tensor"):
        sequence_log_probs(model, torch.zeros(2, 3))
    with pytest.raises(TypeError, match="generator must be"):
        sample_sequences(model, 2, generator="seed")


def test_exercise_checkers(capsys):
    assert check_exercise_1(math.log1p(math.exp(-1.0))) and not check_exercise_1(0.0)
    assert check_exercise_2(math.exp(2) / (math.exp(2) + 1)) and not check_exercise_2("x")
    assert check_exercise_3(0.1 / (1 + math.exp(-0.5))) and not check_exercise_3(0.05)
    assert "Correct" in capsys.readouterr().out


# --------------------------------------------------------------------------- (6) GPU
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_dpo_loss_on_cuda(dtype):
    logps = [t64(-1.0, -3.0, -4.0), t64(-2.0, -2.0, -1.0), t64(-1.5, -3.0, -3.0), t64(-1.5, -2.0, -2.0)]
    cpu, _, _ = dpo_loss(*logps, beta=1.0)
    gpu, chosen, _ = dpo_loss(*(v.to("cuda", dtype) for v in logps), beta=1.0)
    assert gpu.device.type == "cuda" and gpu.dtype == dtype and chosen.dtype == dtype
    assert torch.allclose(gpu.double().cpu(), cpu, atol=2e-2 if dtype == torch.bfloat16 else 1e-6)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_sequence_dpo_on_cuda(dtype):
    torch.manual_seed(0)
    reference = TinyGRULanguageModel(n_tokens=4, max_len=5).to("cuda")
    sequences = torch.as_tensor(make_sft_sequences(512, n_tokens=4, max_len=5, rng=0), device="cuda")
    pretrain_sft(reference, sequences, SFTConfig(steps=20, batch_size=64, lr=1e-2), generator=0)
    reference = reference.to(dtype)
    data = make_sequence_preferences(reference, token_count_reward, 256, generator=1)
    assert data.chosen.device.type == "cuda"
    policy = copy.deepcopy(reference)
    config = SequenceDPOConfig(beta=0.3, steps=40, batch_size=64, lr=1e-2, eval_every=40, eval_samples=256)
    result = train_sequence_dpo(policy, reference, data, token_count_reward, config, generator=2)
    assert all(math.isfinite(v) for v in result.loss + result.kl + result.win_rate)
    assert np.mean(result.reward_margin[-5:]) > np.mean(result.reward_margin[:5])
