"""Tests of the shared RL pieces (mlnotes/rl/common.py)."""

from __future__ import annotations

import numpy as np
import pytest

from mlnotes.rl.common import ReplayBuffer, evaluate_policy, make_env


def test_replay_buffer_overwrites_the_oldest_and_samples_stored_rows():
    buffer = ReplayBuffer(3, obs_shape=(2,))
    for t in range(5):
        buffer.add(np.full(2, t), t % 2, float(t), np.full(2, t + 1), t == 4)
    assert len(buffer) == 3
    assert sorted(buffer.reward.tolist()) == [2.0, 3.0, 4.0]
    batch = buffer.sample(64, rng=0)
    assert batch.obs.shape == (64, 2) and batch.action.dtype.is_floating_point is False
    assert set(batch.reward.tolist()) <= {2.0, 3.0, 4.0}
    np.testing.assert_array_equal(batch.next_obs.numpy(), batch.obs.numpy() + 1)
    np.testing.assert_array_equal(batch.terminated.numpy(), (batch.reward.numpy() == 4.0).astype(np.float32))


def test_replay_buffer_sampling_is_seeded():
    buffer = ReplayBuffer(50, obs_shape=(1,), action_shape=(1,), action_dtype=np.float32)
    for t in range(50):
        buffer.add([t], [0.5 * t], 0.0, [t], False)
    a, b = buffer.sample(8, rng=3), buffer.sample(8, rng=3)
    np.testing.assert_array_equal(a.obs.numpy(), b.obs.numpy())


def test_replay_buffer_bad_input():
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(0, obs_shape=(2,))
    buffer = ReplayBuffer(4, obs_shape=(2,))
    with pytest.raises(ValueError, match="empty"):
        buffer.sample(2, rng=0)
    with pytest.raises(ValueError, match="obs must have shape"):
        buffer.add(np.zeros(3), 0, 0.0, np.zeros(3), False)


def test_evaluate_policy_is_seeded_and_counts_cartpole_steps():
    always_left = evaluate_policy(lambda obs: 0, "CartPole-v1", n_episodes=3, seed=0)
    again = evaluate_policy(lambda obs: 0, "CartPole-v1", n_episodes=3, seed=0)
    np.testing.assert_array_equal(always_left, again)
    # CartPole pays +1 per step; pushing one way only topples the pole within a few dozen steps.
    assert np.all((always_left >= 5) & (always_left < 60))
    with pytest.raises(ValueError, match="n_episodes"):
        evaluate_policy(lambda obs: 0, "CartPole-v1", n_episodes=0)


def test_make_env_rejects_bad_ids():
    with pytest.raises(ValueError, match="env_id"):
        make_env("")
    env = make_env("FrozenLake-v1", seed=0, is_slippery=True)
    assert env.observation_space.n == 16
