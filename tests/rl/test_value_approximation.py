"""Tests of mlnotes.rl.value_approximation (chapter book/rl/value_approximation.ipynb)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mlnotes.rl.common import ReplayBuffer
from mlnotes.rl.value_approximation import (
    DQNAgent,
    DQNConfig,
    QNetwork,
    chain_features,
    check_exercise_1,
    check_exercise_2,
    dqn_targets,
    linear_schedule,
    projected_values_weights,
    random_chain,
    random_walk_chain,
    stationary_distribution,
    td0_linear,
    td_fixed_point,
    train_dqn,
    true_values,
)


SMOKE = DQNConfig(learning_starts=500, exploration_steps=1_500, target_update_interval=200, buffer_size=5_000,
                  batch_size=64, learning_rate=1e-3, hidden_sizes=(64, 64))


# --------------------------------------------------------------------------- closed forms (golden)
def projected_bellman_iteration(P, r, gamma, Phi, d, sweeps=2000):
    """Independent route to w_TD: iterate w <- Pi_D T(Phi w), a contraction in the D-norm."""
    w = np.zeros(Phi.shape[1])
    for _ in range(sweeps):
        w = projected_values_weights(r + gamma * P @ (Phi @ w), Phi, d)
    return w


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_td_fixed_point_matches_projected_bellman_iteration(seed):
    P, r = random_chain(6, seed)
    Phi = np.random.default_rng(seed).standard_normal((6, 3))
    d = stationary_distribution(P)
    expected = projected_bellman_iteration(P, r, 0.8, Phi, d)
    np.testing.assert_allclose(td_fixed_point(P, r, 0.8, Phi), expected, atol=1e-10)


def test_expected_td_update_vanishes_at_fixed_point():
    """sum_s d(s) sum_s' P(s, s') [R(s, s') + gamma phi(s')w - phi(s)w] phi(s) = 0, as an explicit double loop."""
    P, R = random_walk_chain(7, left_reward=0.0, right_reward=1.0)
    Phi = chain_features(7, "aggregate", n_features=3)
    w = td_fixed_point(P, R, 0.9, Phi)
    d = stationary_distribution(P)
    total = np.zeros(3)
    for s in range(7):
        for s2 in range(7):
            total += d[s] * P[s, s2] * (R[s, s2] + 0.9 * Phi[s2] @ w - Phi[s] @ w) * Phi[s]
    np.testing.assert_allclose(total, 0.0, atol=1e-12)


def test_tabular_fixed_point_is_true_values_and_aggregation_is_not_the_projection():
    P, R = random_walk_chain(5, left_reward=0.0, right_reward=1.0)
    v = true_values(P, R, 0.9)
    np.testing.assert_allclose(td_fixed_point(P, R, 0.9, chain_features(5)), v, atol=1e-12)
    Phi = chain_features(5, "aggregate", n_features=2)
    d = stationary_distribution(P)
    gap = np.abs(Phi @ td_fixed_point(P, R, 0.9, Phi) - Phi @ projected_values_weights(v, Phi, d)).max()
    assert gap > 0.05


def test_true_values_solve_bellman_equation_and_stationary_distribution_is_stationary():
    P, r = random_chain(8, 3)
    v = true_values(P, r, 0.95)
    np.testing.assert_allclose(v, r + 0.95 * P @ v, atol=1e-10)
    d = stationary_distribution(P)
    np.testing.assert_allclose(d @ P, d, atol=1e-12)
    assert d.sum() == pytest.approx(1.0) and np.all(d > 0)


@settings(max_examples=25, deadline=None)
@given(st.integers(3, 9).map(lambda n: 2 * (n // 2) + 1), st.floats(0.0, 0.95), st.integers(0, 10_000))
def test_random_walk_is_a_stochastic_matrix_and_gamma_zero_fixed_point_fits_rewards(n, gamma, seed):
    P, R = random_walk_chain(n, left_reward=float(seed % 7) - 3, right_reward=1.0)
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    Phi = chain_features(n, "polynomial", n_features=2)
    d = stationary_distribution(P)
    r = (P * R).sum(axis=1)
    np.testing.assert_allclose(td_fixed_point(P, R, 0.0, Phi), projected_values_weights(r, Phi, d), atol=1e-9)
    # Tabular features represent any v: the fixed point is v for every gamma.
    np.testing.assert_allclose(td_fixed_point(P, R, gamma, chain_features(n)), true_values(P, R, gamma),
                               atol=1e-8)


# --------------------------------------------------------------------------- TD(0) sampling
def test_td0_converges_to_fixed_point_on_a_random_walk():
    P, R = random_walk_chain(5, left_reward=0.0, right_reward=1.0)
    Phi = chain_features(5, "aggregate", n_features=2)
    w_td = td_fixed_point(P, R, 0.9, Phi)
    steps, W = td0_linear(P, R, 0.9, Phi, n_steps=40_000, step_size=lambda t: 0.1 * 2000 / (2000 + t), rng=0,
                          record_every=1000)
    assert steps[-1] == 40_000 and W.shape == (41, 2)
    errors = np.linalg.norm(W - w_td, axis=1)
    assert errors[-1] < 0.06 and errors[-1] < errors[0] / 5


def test_td0_single_step_by_hand_and_reproducible():
    P = np.array([[0.0, 1.0], [1.0, 0.0]])
    r = np.array([1.0, 2.0])
    Phi = np.array([[1.0, 0.0], [0.0, 2.0]])
    steps, W = td0_linear(P, r, 0.5, Phi, n_steps=2, step_size=0.1, start_state=0, w0=np.array([1.0, 1.0]))
    # step 1: s=0 -> 1, delta = 1 + 0.5*2 - 1 = 1, w += 0.1 * 1 * [1, 0]
    # step 2: s=1 -> 0, delta = 2 + 0.5*1.1 - 2 = 0.55, w += 0.1 * 0.55 * [0, 2]
    np.testing.assert_allclose(W, [[1.0, 1.0], [1.1, 1.0], [1.1, 1.11]])
    np.testing.assert_array_equal(steps, [0, 1, 2])
    a = td0_linear(P, r, 0.5, Phi, n_steps=50, rng=4)[1]
    b = td0_linear(P, r, 0.5, Phi, n_steps=50, rng=4)[1]
    np.testing.assert_array_equal(a, b)


def test_exercise_checkers(capsys):
    P, R = random_walk_chain(5)
    assert check_exercise_1(td_fixed_point(P, R, 0.0, chain_features(5, "polynomial", n_features=2)))
    assert not check_exercise_1(np.zeros(2))
    P19, R19 = random_walk_chain(19)
    assert check_exercise_2(np.linalg.solve(np.eye(19) - 0.9 * P19, (P19 * R19).sum(1)))
    assert not check_exercise_2(np.zeros(5))
    assert "Not yet" in capsys.readouterr().out


# --------------------------------------------------------------------------- DQN pieces
def test_dqn_targets_by_hand():
    torch.manual_seed(0)
    online, target = QNetwork(3, 2, (8,)), QNetwork(3, 2, (8,))
    next_obs = torch.randn(5, 3)
    reward = torch.arange(5, dtype=torch.float32)
    terminated = torch.tensor([0.0, 1.0, 0.0, 0.0, 1.0])
    q_t, q_o = target(next_obs).detach(), online(next_obs).detach()
    for double in (False, True):
        y = dqn_targets(online, target, reward, next_obs, terminated, 0.9, double=double)
        for i in range(5):
            a = int(q_o[i].argmax()) if double else int(q_t[i].argmax())
            expected = reward[i] + (0.0 if terminated[i] else 0.9 * q_t[i, a])
            assert y[i].item() == pytest.approx(float(expected), abs=1e-6)
        assert not y.requires_grad


def test_linear_schedule_and_qnetwork_shapes():
    assert linear_schedule(1.0, 0.05, 100, 0) == 1.0
    assert linear_schedule(1.0, 0.05, 100, 50) == pytest.approx(0.525)
    assert linear_schedule(1.0, 0.05, 100, 10**6) == 0.05
    net = QNetwork(4, 2, (16, 16))
    assert net(torch.zeros(7, 4)).shape == (7, 2)


def test_agent_update_lowers_the_loss_on_a_fixed_batch_and_target_update_copies():
    agent = DQNAgent(4, 2, DQNConfig(learning_rate=1e-2, hidden_sizes=(32,)), seed=0)
    buffer = ReplayBuffer(64, obs_shape=(4,))
    rng = np.random.default_rng(0)
    for _ in range(64):
        buffer.add(rng.standard_normal(4), int(rng.integers(2)), 1.0, rng.standard_normal(4), True)
    batch = buffer.sample(64, 0)
    losses = [agent.update(batch) for _ in range(50)]
    assert losses[-1] < 0.1 * losses[0]
    agent.update_target(1.0)
    for p, q in zip(agent.q_network.parameters(), agent.target_network.parameters()):
        torch.testing.assert_close(p, q)


def test_train_dqn_improves_and_is_deterministic():
    result = train_dqn(SMOKE, total_steps=4_000, seed=0, n_eval_episodes=5, progress=False)
    first = result.episode_returns[:10].mean()  # random actions before learning starts
    assert result.eval_returns.mean() > 3 * first, (first, result.eval_returns)
    assert result.episode_end_steps[-1] <= 4_000 and len(result.episode_end_steps) == len(result.episode_returns)
    a = train_dqn(SMOKE, total_steps=700, seed=3, n_eval_episodes=2, progress=False)
    b = train_dqn(SMOKE, total_steps=700, seed=3, n_eval_episodes=2, progress=False)
    np.testing.assert_array_equal(a.episode_returns, b.episode_returns)
    for p, q in zip(a.agent.q_network.parameters(), b.agent.q_network.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


# --------------------------------------------------------------------------- bad input
def test_bad_input():
    P, R = random_walk_chain(5)
    Phi = chain_features(5)
    with pytest.raises(ValueError, match="gamma must be a number in \\[0, 1\\)"):
        td_fixed_point(P, R, 1.0, Phi)
    with pytest.raises(ValueError, match="sum to one"):
        td_fixed_point(P * 0.9, R, 0.5, Phi)
    with pytest.raises(ValueError, match="square"):
        true_values(P[:, :4], R, 0.5)
    with pytest.raises(ValueError, match="reward must have shape"):
        true_values(P, np.zeros(4), 0.5)
    with pytest.raises(ValueError, match="features must have shape"):
        td_fixed_point(P, R, 0.5, np.eye(4))
    with pytest.raises(ValueError, match="linearly independent"):
        td_fixed_point(P, R, 0.5, np.ones((5, 2)))
    with pytest.raises(ValueError, match="step_size"):
        td0_linear(P, R, 0.5, Phi, n_steps=10, step_size=-1.0)
    with pytest.raises(ValueError, match="n_states must be an odd"):
        random_walk_chain(4)
    with pytest.raises(ValueError, match="kind must be"):
        chain_features(5, "fourier")
    with pytest.raises(ValueError, match="DQNConfig.batch_size"):
        DQNConfig(batch_size=0)
    with pytest.raises(TypeError, match="config must be a DQNConfig"):
        train_dqn({"learning_rate": 1e-3}, total_steps=10)


def test_train_dqn_rejects_continuous_actions():
    with pytest.raises(ValueError, match="discrete action space.*'Pendulum-v1'.*Box"):
        train_dqn(total_steps=10, env_id="Pendulum-v1")


# --------------------------------------------------------------------------- GPU
@pytest.mark.gpu
def test_dqn_runs_on_cuda_and_matches_cpu_targets():
    result = train_dqn(SMOKE, total_steps=1_500, seed=0, device="cuda", n_eval_episodes=2, progress=False)
    agent = result.agent
    assert next(agent.q_network.parameters()).device.type == "cuda"
    assert next(agent.target_network.parameters()).device.type == "cuda"
    obs = torch.randn(16, 4)
    cpu_online = QNetwork(4, 2, SMOKE.hidden_sizes)
    cpu_online.load_state_dict({k: v.cpu() for k, v in agent.q_network.state_dict().items()})
    cpu_target = QNetwork(4, 2, SMOKE.hidden_sizes)
    cpu_target.load_state_dict({k: v.cpu() for k, v in agent.target_network.state_dict().items()})
    reward, term = torch.ones(16), torch.zeros(16)
    y_cpu = dqn_targets(cpu_online, cpu_target, reward, obs, term, 0.99)
    y_gpu = dqn_targets(agent.q_network, agent.target_network, reward.cuda(), obs.cuda(), term.cuda(), 0.99)
    torch.testing.assert_close(y_gpu.cpu(), y_cpu, atol=1e-4, rtol=1e-4)
