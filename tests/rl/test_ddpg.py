"""Tests of mlnotes.rl.ddpg (chapter book/rl/ddpg.ipynb)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mlnotes.rl.common import Batch
from mlnotes.rl.ddpg import (
    Actor,
    Critic,
    DDPGAgent,
    DDPGConfig,
    GaussianNoise,
    OrnsteinUhlenbeckNoise,
    actor_loss,
    check_exercise_1,
    check_exercise_2,
    dpg_chain_rule,
    polyak_update,
    td_target,
    train,
)


# --------------------------------------------------------------------------- a one-step toy task
class TargetBandit(gym.Env):
    """Observe s ~ U(-1, 1), act a in [-1, 1], get -(a - s)^2; every episode is one step.

    The best policy is mu(s) = s with return 0; a random one averages about -2/3.
    """

    observation_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._s = self.np_random.uniform(-1, 1, size=1).astype(np.float32)
        return self._s.copy(), {}

    def step(self, action):
        reward = -float((np.asarray(action).reshape(1)[0] - self._s[0]) ** 2)
        return self._s.copy(), reward, True, False, {}


TOY_ID = "mlnotes-test/TargetBandit-v0"
if TOY_ID not in gym.registry:
    gym.register(TOY_ID, entry_point=TargetBandit)

TOY_CONFIG = dict(hidden_sizes=(32, 32), batch_size=64, learning_starts=100, actor_lr=3e-3, critic_lr=3e-3)


def random_networks(seed: int, obs_dim: int = 3, act_dim: int = 2, hidden=(16, 16), device="cpu"):
    torch.manual_seed(seed)
    low, high = np.array([-2.0, 0.0][:act_dim]), np.array([2.0, 1.0][:act_dim])
    actor = Actor(obs_dim, act_dim, low, high, hidden).double().to(device)
    critic = Critic(obs_dim, act_dim, hidden).double().to(device)
    obs = torch.randn(7, obs_dim, dtype=torch.float64, device=device)
    return actor, critic, obs


def autograd_dpg(actor, critic, obs) -> torch.Tensor:
    actor.zero_grad()
    actor_loss(actor, critic, obs).backward()
    return -torch.cat([p.grad.reshape(-1) for p in actor.parameters()])


# --------------------------------------------------------------------------- the deterministic policy gradient
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_actor_gradient_is_the_chain_rule_of_the_dpg_theorem(seed):
    actor, critic, obs = random_networks(seed)
    explicit = dpg_chain_rule(actor, critic, obs)
    assert explicit.shape == (sum(p.numel() for p in actor.parameters()),)
    torch.testing.assert_close(autograd_dpg(actor, critic, obs), explicit, rtol=1e-10, atol=1e-12)


def test_dpg_chain_rule_against_finite_differences():
    """An independent reference: dJ/dtheta_k by central differences of J = mean Q(s, mu(s))."""
    actor, critic, obs = random_networks(3, hidden=(4,))
    explicit = dpg_chain_rule(actor, critic, obs)
    flat = torch.nn.utils.parameters_to_vector(actor.parameters()).detach()
    eps, numeric = 1e-6, torch.zeros_like(flat)
    for k in range(flat.numel()):
        values = []
        for sign in (1, -1):
            shifted = flat.clone()
            shifted[k] += sign * eps
            torch.nn.utils.vector_to_parameters(shifted, actor.parameters())
            with torch.no_grad():
                values.append(critic(obs, actor(obs)).mean())
        numeric[k] = (values[0] - values[1]) / (2 * eps)
    torch.nn.utils.vector_to_parameters(flat, actor.parameters())
    torch.testing.assert_close(explicit, numeric, rtol=1e-5, atol=1e-7)


def test_actor_update_does_not_change_the_critic():
    cfg = DDPGConfig(hidden_sizes=(8,), tau=0.5)
    agent = DDPGAgent(3, 1, [-2.0], [2.0], cfg, seed=0)
    batch = Batch(torch.randn(16, 3), torch.rand(16, 1) * 4 - 2, torch.randn(16), torch.randn(16, 3), torch.zeros(16))
    before = [p.detach().clone() for p in agent.critic.parameters()]
    agent.critic_optimizer.step = lambda: None  # freeze the critic's own step: only the actor step remains
    info = agent.update(batch)
    assert set(info) == {"critic_loss", "q_mean", "actor_loss"}
    for p, q in zip(agent.critic.parameters(), before):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


# --------------------------------------------------------------------------- target networks
@settings(max_examples=25, deadline=None)
@given(tau=st.floats(1e-4, 1.0), seed=st.integers(0, 1000))
def test_polyak_moves_the_target_by_exactly_tau_of_the_gap(tau, seed):
    torch.manual_seed(seed)
    target, source = Critic(3, 1, (5,)).double(), Critic(3, 1, (5,)).double()
    old = [p.detach().clone() for p in target.parameters()]
    polyak_update(target, source, tau)
    for new, before, src in zip(target.parameters(), old, source.parameters()):
        torch.testing.assert_close(new - before, tau * (src - before), rtol=1e-12, atol=1e-12)


def test_polyak_with_tau_one_copies_and_repeated_steps_close_the_gap_geometrically():
    torch.manual_seed(0)
    target, source = Actor(2, 1, [-1.0], [3.0], (4,)), Actor(2, 1, [-1.0], [3.0], (4,))
    gap0 = torch.nn.utils.parameters_to_vector(source.parameters()) - torch.nn.utils.parameters_to_vector(
        target.parameters()
    )
    for _ in range(10):
        polyak_update(target, source, 0.1)
    gap10 = torch.nn.utils.parameters_to_vector(source.parameters()) - torch.nn.utils.parameters_to_vector(
        target.parameters()
    )
    torch.testing.assert_close(gap10, 0.9**10 * gap0, rtol=1e-5, atol=1e-7)
    polyak_update(target, source, 1.0)
    for t, s in zip(target.state_dict().values(), source.state_dict().values()):
        torch.testing.assert_close(t, s, rtol=0, atol=0)


def test_td_target_bootstraps_unless_terminated():
    reward, next_q = torch.tensor([1.0, 1.0, -2.0]), torch.tensor([10.0, 10.0, 4.0])
    terminated = torch.tensor([0.0, 1.0, 0.0])
    torch.testing.assert_close(td_target(reward, next_q, terminated, 0.9), torch.tensor([10.0, 1.0, 1.6]))


# --------------------------------------------------------------------------- networks and noise
def test_actor_stays_inside_asymmetric_bounds_and_critic_shapes():
    torch.manual_seed(0)
    actor = Actor(3, 2, [-2.0, 0.0], [2.0, 1.0], (16,))
    actions = actor(1e3 * torch.randn(500, 3))
    assert actions.shape == (500, 2)
    assert torch.all(actions[:, 0] >= -2) and torch.all(actions[:, 0] <= 2)
    assert torch.all(actions[:, 1] >= 0) and torch.all(actions[:, 1] <= 1)
    assert actions[:, 0].min() < -1.9 and actions[:, 1].max() > 0.95  # saturates near both ends
    assert Critic(3, 2, (16,))(torch.randn(5, 3), actions[:5]).shape == (5,)


def test_noise_processes_have_the_stated_size_and_correlation():
    sigma, theta, n = np.array([0.2, 0.5]), 0.15, 40_000
    ou = OrnsteinUhlenbeckNoise(sigma, theta, rng=0)
    xs = np.array([ou() for _ in range(n)])[1000:]
    np.testing.assert_allclose(xs.std(axis=0), sigma, rtol=0.06)
    lag1 = [np.corrcoef(xs[:-1, k], xs[1:, k])[0, 1] for k in range(2)]
    np.testing.assert_allclose(lag1, 1 - theta, atol=0.02)
    gauss = np.array([GaussianNoise(sigma, rng=1)() for _ in range(1)])
    assert gauss.shape == (1, 2)
    g = GaussianNoise(sigma, rng=1)
    ys = np.array([g() for _ in range(n)])
    np.testing.assert_allclose(ys.std(axis=0), sigma, rtol=0.03)
    assert abs(np.corrcoef(ys[:-1, 0], ys[1:, 0])[0, 1]) < 0.02
    ou.reset()
    np.testing.assert_array_equal(ou.state, 0.0)


# --------------------------------------------------------------------------- training
def test_train_learns_the_toy_task_and_is_deterministic():
    cfg = DDPGConfig(**TOY_CONFIG)
    untrained = train(cfg, env_id=TOY_ID, total_steps=1, seed=0, device="cpu", n_eval_episodes=50, progress=False)
    first = train(cfg, env_id=TOY_ID, total_steps=700, seed=0, device="cpu", n_eval_episodes=50, progress=False)
    again = train(cfg, env_id=TOY_ID, total_steps=700, seed=0, device="cpu", n_eval_episodes=50, progress=False)
    assert len(first.episode_returns) == 700 and first.episode_end_steps[-1] == 700
    assert first.eval_returns.shape == (50,)
    # The objective improves: from an untrained actor (about -0.5) to nearly the optimum 0.
    assert untrained.eval_returns.mean() < -0.1
    assert first.eval_returns.mean() > -0.02
    assert first.eval_returns.mean() > untrained.eval_returns.mean() + 0.1
    # The critic's loss falls once the actor settles.
    losses = np.array(first.agent.log["critic_loss"])
    assert np.nanmean(losses[-100:]) < 0.5 * np.nanmean(losses[100:200])
    np.testing.assert_array_equal(first.episode_returns, again.episode_returns)
    np.testing.assert_array_equal(first.eval_returns, again.eval_returns)


def test_train_on_pendulum_runs_with_ou_noise_and_bootstraps_truncations():
    cfg = DDPGConfig(hidden_sizes=(16,), batch_size=32, learning_starts=150, noise_type="ou")
    result = train(cfg, total_steps=400, seed=1, device="cpu", n_eval_episodes=1, progress=False)
    np.testing.assert_array_equal(result.episode_end_steps, [200, 400])  # 200-step time limit, no termination
    assert result.eval_returns.shape == (1,) and result.config is cfg
    assert result.agent.n_updates == 400 - 150
    action = result.agent.act(np.zeros(3, dtype=np.float32))
    assert action.shape == (1,) and -2 <= action[0] <= 2


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(gamma=1.0), ValueError, r"gamma must lie in \[0.0, 1.0\)"),
        (dict(tau=0.0), ValueError, r"tau must lie in \(0.0, 1.0\]"),
        (dict(actor_lr=-1e-3), ValueError, "actor_lr"),
        (dict(batch_size=0), ValueError, "batch_size must be an int >= 1"),
        (dict(batch_size=2.5), TypeError, "batch_size must be an int"),
        (dict(noise_type="uniform"), ValueError, "noise_type must be one of"),
        (dict(hidden_sizes=()), ValueError, "hidden_sizes"),
        (dict(exploration_noise=float("nan")), TypeError, "exploration_noise must be a finite real"),
    ],
)
def test_config_rejects_bad_hyperparameters(kwargs, error, match):
    with pytest.raises(error, match=match):
        DDPGConfig(**kwargs)


def test_train_rejects_discrete_actions_and_bad_arguments():
    with pytest.raises(TypeError, match=r"continuous \(Box\) actions.*'CartPole-v1' has Discrete actions"):
        train(env_id="CartPole-v1", total_steps=10, progress=False)
    with pytest.raises(TypeError, match="config must be a DDPGConfig"):
        train({"gamma": 0.9}, total_steps=10, progress=False)
    with pytest.raises(ValueError, match="total_steps must be an int >= 1"):
        train(total_steps=0, progress=False)
    with pytest.raises(ValueError, match="n_eval_episodes"):
        train(total_steps=10, n_eval_episodes=0, progress=False)
    with pytest.raises(ValueError, match="tau must lie in"):
        polyak_update(Critic(1, 1, (2,)), Critic(1, 1, (2,)), 1.5)
    with pytest.raises(ValueError, match="same architecture"):
        polyak_update(Critic(1, 1, (2,)), Critic(1, 1, (3,)), 0.5)


def test_exercise_checkers_accept_the_right_answer_only(capsys):
    assert check_exercise_1(1.02) and not check_exercise_1(2.98) and not check_exercise_1("x")
    assert check_exercise_2(4.0) and not check_exercise_2(-4.0)
    assert "Correct" in capsys.readouterr().out


# --------------------------------------------------------------------------- GPU
@pytest.mark.gpu
def test_networks_update_and_dpg_on_cuda():
    actor, critic, obs = random_networks(0, device="cuda")
    torch.testing.assert_close(autograd_dpg(actor, critic, obs), dpg_chain_rule(actor, critic, obs), rtol=1e-9, atol=1e-11)
    cfg = DDPGConfig(hidden_sizes=(64, 64), batch_size=128)
    agent = DDPGAgent(3, 1, [-2.0], [2.0], cfg, device="cuda", seed=0)
    assert next(agent.actor.parameters()).is_cuda and next(agent.critic_target.parameters()).is_cuda
    dev = torch.device("cuda")
    batch = Batch(torch.randn(128, 3, device=dev), torch.rand(128, 1, device=dev) * 4 - 2,
                  torch.randn(128, device=dev), torch.randn(128, 3, device=dev), torch.zeros(128, device=dev))
    info = agent.update(batch)
    assert np.isfinite(info["critic_loss"]) and np.isfinite(info["actor_loss"])
    assert agent.act(np.zeros(3, dtype=np.float32)).shape == (1,)


@pytest.mark.gpu
def test_train_learns_the_toy_task_on_cuda():
    result = train(DDPGConfig(**TOY_CONFIG), env_id=TOY_ID, total_steps=700, seed=0, device="cuda",
                   n_eval_episodes=50, progress=False)
    assert str(next(result.agent.actor.parameters()).device).startswith("cuda")
    assert result.eval_returns.mean() > -0.02
