"""Deep deterministic policy gradient (DDPG) for continuous actions.

The chapter ``book/rl/ddpg.ipynb`` teaches this module.

DDPG :cite:p:`lillicrap2016continuous` is an off-policy actor-critic method. A
deterministic *actor* ``mu_theta(s)`` proposes an action and a *critic*
``Q_w(s, a)`` scores it. The critic is trained like a DQN critic, by regression
on the one-step target

.. math::

    y = r + \\gamma (1 - d)\\, Q_{w'}(s', \\mu_{\\theta'}(s')),

computed with slowly moving *target networks* ``(theta', w')`` that follow the
online networks by Polyak averaging, ``theta' <- tau theta + (1 - tau) theta'``.
The actor climbs the critic along the deterministic policy gradient of
:cite:t:`silver2014deterministic`,

.. math::

    \\nabla_\\theta J \\approx \\frac{1}{N} \\sum_i
    \\nabla_a Q_w(s_i, a)\\big|_{a = \\mu_\\theta(s_i)} \\, \\nabla_\\theta \\mu_\\theta(s_i),

which autograd computes by back-propagating ``-Q_w(s, mu_theta(s))`` through the
critic into the actor (:func:`actor_loss`); :func:`dpg_chain_rule` computes the
same vector with the two factors written out, for the chapter's check.
Exploration adds Gaussian noise (or Ornstein-Uhlenbeck noise, as in the paper)
to the actor's action and clips the sum to the action bounds.

Public API: :class:`DDPGConfig` (every hyperparameter, documented),
:class:`Actor`, :class:`Critic`, :class:`DDPGAgent`, :func:`polyak_update`,
:func:`td_target`, :func:`actor_loss`, :func:`dpg_chain_rule`,
:class:`GaussianNoise`, :class:`OrnsteinUhlenbeckNoise` and the entry point
:func:`train`, which returns a :class:`mlnotes.rl.common.TrainResult`.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from numbers import Real
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mlnotes.exercises import report as _report
from mlnotes.rl.common import Batch, ReplayBuffer, TrainResult, evaluate_policy, make_env
from mlnotes.runtime import as_generator, get_device
from mlnotes.training import _show_progress

__all__ = [
    "Actor",
    "Critic",
    "DDPGAgent",
    "DDPGConfig",
    "GaussianNoise",
    "OrnsteinUhlenbeckNoise",
    "actor_loss",
    "check_exercise_1",
    "check_exercise_2",
    "config_dict",
    "dpg_chain_rule",
    "polyak_update",
    "td_target",
    "train",
]

_NOISE_TYPES = ("gaussian", "ou")


# --------------------------------------------------------------------------- configuration
@dataclass
class DDPGConfig:
    """Hyperparameters of DDPG; the defaults solve ``Pendulum-v1`` in 20,000 steps.

    Attributes
    ----------
    hidden_sizes : tuple of int, default (256, 256)
        Widths of the hidden layers of both the actor and the critic (ReLU).
    actor_lr : float, default 1e-3
        Adam learning rate of the actor.
    critic_lr : float, default 1e-3
        Adam learning rate of the critic.
    gamma : float, default 0.99
        Discount factor, in ``[0, 1)``.
    tau : float, default 0.005
        Polyak averaging rate of the target networks, in ``(0, 1]``; each update
        moves the targets by ``tau`` of their gap to the online networks.
        ``tau = 1`` copies the online networks: no target networks at all.
    batch_size : int, default 256
        Transitions per gradient step, drawn uniformly from the replay buffer.
    buffer_size : int, default 1_000_000
        Replay buffer capacity (larger than any run of the book: nothing is forgotten).
    learning_starts : int, default 1000
        Environment steps taken with uniformly random actions before the first
        update; the actor acts (with noise) from then on.
    exploration_noise : float, default 0.1
        Standard deviation of the exploration noise, as a fraction of the action
        half-range ``(high - low) / 2`` (0.2 for Pendulum's torque in [-2, 2]).
    noise_type : {"gaussian", "ou"}, default "gaussian"
        Independent Gaussian noise at every step, or the temporally correlated
        Ornstein-Uhlenbeck process of the DDPG paper.
    ou_theta : float, default 0.15
        Mean-reversion rate of the Ornstein-Uhlenbeck noise (ignored for Gaussian).
    updates_per_step : int, default 1
        Gradient steps (critic and actor) per environment step after ``learning_starts``.
    policy_delay : int, default 1
        Update the actor (and the targets) once every ``policy_delay`` critic
        updates; 1 is DDPG, 2 is TD3's delayed policy update.
    """

    hidden_sizes: tuple[int, ...] = (256, 256)
    actor_lr: float = 1e-3
    critic_lr: float = 1e-3
    gamma: float = 0.99
    tau: float = 0.005
    batch_size: int = 256
    buffer_size: int = 1_000_000
    learning_starts: int = 1000
    exploration_noise: float = 0.1
    noise_type: str = "gaussian"
    ou_theta: float = 0.15
    updates_per_step: int = 1
    policy_delay: int = 1

    def __post_init__(self) -> None:
        self.hidden_sizes = tuple(self.hidden_sizes)
        if not self.hidden_sizes or any(
            isinstance(h, bool) or not isinstance(h, (int, np.integer)) or h < 1 for h in self.hidden_sizes
        ):
            raise ValueError(f"hidden_sizes must be a non-empty tuple of positive ints, got {self.hidden_sizes!r}")
        for name in ("actor_lr", "critic_lr"):
            _check_real(name, getattr(self, name), low=0.0, low_open=True)
        _check_real("gamma", self.gamma, low=0.0, high=1.0, high_open=True)
        _check_real("tau", self.tau, low=0.0, high=1.0, low_open=True)
        _check_real("exploration_noise", self.exploration_noise, low=0.0)
        _check_real("ou_theta", self.ou_theta, low=0.0, high=1.0, low_open=True)
        for name in ("batch_size", "buffer_size", "updates_per_step", "policy_delay"):
            _check_int(name, getattr(self, name), low=1)
        _check_int("learning_starts", self.learning_starts, low=0)
        if self.noise_type not in _NOISE_TYPES:
            raise ValueError(f"noise_type must be one of {_NOISE_TYPES}, got {self.noise_type!r}")


def _check_real(
    name: str, value: Any, *, low: float | None = None, high: float | None = None,
    low_open: bool = False, high_open: bool = False,
) -> None:
    if isinstance(value, bool) or not isinstance(value, Real) or not np.isfinite(value):
        raise TypeError(f"{name} must be a finite real number, got {value!r}")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        interval = f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"
        raise ValueError(f"{name} must lie in {interval}, got {value!r}")


def _check_int(name: str, value: Any, *, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")


# --------------------------------------------------------------------------- networks
def _mlp(in_dim: int, hidden_sizes: tuple[int, ...], out_dim: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden_sizes:
        layers += [nn.Linear(in_dim, width), nn.ReLU()]
        in_dim = width
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


class Actor(nn.Module):
    """Deterministic policy ``mu(s) = bias + scale * tanh(MLP(s))``, inside the action box.

    Parameters
    ----------
    obs_dim, act_dim : int
        Sizes of an observation and an action.
    action_low, action_high : array_like, shape (act_dim,)
        Bounds of the action box; the tanh output in ``(-1, 1)`` is mapped onto them.
    hidden_sizes : tuple of int, default (256, 256)
        Hidden layer widths.

    Notes
    -----
    ``forward`` maps observations ``(batch, obs_dim)`` to actions ``(batch, act_dim)``.
    """

    def __init__(
        self, obs_dim: int, act_dim: int, action_low: Any, action_high: Any,
        hidden_sizes: tuple[int, ...] = (256, 256),
    ) -> None:
        super().__init__()
        low = torch.as_tensor(np.asarray(action_low, dtype=np.float32).reshape(act_dim))
        high = torch.as_tensor(np.asarray(action_high, dtype=np.float32).reshape(act_dim))
        self.net = _mlp(obs_dim, tuple(hidden_sizes), act_dim)
        self.register_buffer("action_scale", (high - low) / 2)
        self.register_buffer("action_bias", (high + low) / 2)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.action_bias + self.action_scale * torch.tanh(self.net(obs))


class Critic(nn.Module):
    """Action-value network ``Q(s, a)``: an MLP on the concatenation ``[s, a]``.

    Parameters
    ----------
    obs_dim, act_dim : int
        Sizes of an observation and an action.
    hidden_sizes : tuple of int, default (256, 256)
        Hidden layer widths.

    Notes
    -----
    ``forward(obs, action)`` maps ``(batch, obs_dim)`` and ``(batch, act_dim)`` to
    values of shape ``(batch,)``.
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden_sizes: tuple[int, ...] = (256, 256)) -> None:
        super().__init__()
        self.net = _mlp(obs_dim + act_dim, tuple(hidden_sizes), 1)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([obs, action], dim=-1)).squeeze(-1)


# --------------------------------------------------------------------------- the three equations
def polyak_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """Move every parameter of `target` by ``tau`` of its gap to `source`, in place.

    ``theta_target <- theta_target + tau * (theta_source - theta_target)``, which is
    ``tau * theta_source + (1 - tau) * theta_target``. Buffers (the actor's action
    bounds) are copied as they are.

    Parameters
    ----------
    target, source : torch.nn.Module
        Networks of the same architecture.
    tau : float
        Averaging rate in ``(0, 1]``; 1 copies `source`.
    """
    _check_real("tau", tau, low=0.0, high=1.0, low_open=True)
    target_params, source_params = list(target.parameters()), list(source.parameters())
    if len(target_params) != len(source_params) or any(
        t.shape != s.shape for t, s in zip(target_params, source_params)
    ):
        raise ValueError("target and source must be networks of the same architecture")
    with torch.no_grad():
        for t, s in zip(target_params, source_params):
            t.lerp_(s, float(tau))
        for t, s in zip(target.buffers(), source.buffers()):
            t.copy_(s)


def td_target(
    reward: torch.Tensor, next_q: torch.Tensor, terminated: torch.Tensor, gamma: float
) -> torch.Tensor:
    """The critic's regression target ``y = r + gamma * (1 - terminated) * Q'(s', mu'(s'))``.

    Parameters
    ----------
    reward, next_q, terminated : torch.Tensor, shape (batch,)
        Rewards, target-network values of the next states, and 1.0 where the
        episode *terminated* (a time-limit truncation is not a termination: its
        next state is bootstrapped).
    gamma : float
        Discount factor in ``[0, 1)``.

    Returns
    -------
    torch.Tensor, shape (batch,)
    """
    return reward + gamma * (1.0 - terminated) * next_q


def actor_loss(actor: nn.Module, critic: nn.Module, obs: torch.Tensor) -> torch.Tensor:
    """``-mean_i Q(s_i, mu(s_i))``: its gradient in the actor's parameters is minus the DPG.

    Parameters
    ----------
    actor, critic : torch.nn.Module
        ``actor(obs) -> (batch, act_dim)`` and ``critic(obs, action) -> (batch,)``.
    obs : torch.Tensor, shape (batch, obs_dim)

    Returns
    -------
    torch.Tensor
        A scalar.
    """
    return -critic(obs, actor(obs)).mean()


def dpg_chain_rule(actor: nn.Module, critic: nn.Module, obs: torch.Tensor) -> torch.Tensor:
    """The deterministic policy gradient with its two factors computed separately.

    For each state ``s_i`` this forms the action gradient of the critic
    ``g_i = grad_a Q(s_i, a)`` at ``a = mu(s_i)``, shape ``(act_dim,)``, and the
    Jacobian of the actor ``J_i = d mu(s_i) / d theta``, shape ``(act_dim, n_params)``,
    one row per action component, then returns ``mean_i g_i^T J_i``. It equals
    minus the autograd gradient of :func:`actor_loss`; it is written for clarity
    (one backward pass per state and action component), not speed.

    Parameters
    ----------
    actor, critic : torch.nn.Module
    obs : torch.Tensor, shape (batch, obs_dim)

    Returns
    -------
    torch.Tensor, shape (n_params,)
        The gradient of ``J(theta)`` with respect to the actor's parameters,
        flattened in the order of ``actor.parameters()``.
    """
    params = [p for p in actor.parameters() if p.requires_grad]
    action = actor(obs)  # (batch, act_dim)
    # Factor 1: grad_a Q(s, a) at a = mu(s), with the action treated as an input.
    a = action.detach().requires_grad_(True)
    grad_a = torch.autograd.grad(critic(obs, a).sum(), a)[0]  # (batch, act_dim)
    batch, act_dim = action.shape
    total = torch.zeros(sum(p.numel() for p in params), dtype=action.dtype, device=action.device)
    for i in range(batch):
        for j in range(act_dim):
            # Factor 2: one row of the actor's Jacobian, d mu_j(s_i) / d theta.
            row = torch.autograd.grad(action[i, j], params, retain_graph=True)
            total += grad_a[i, j] * torch.cat([r.reshape(-1) for r in row])
    return total / batch


# --------------------------------------------------------------------------- exploration noise
class GaussianNoise:
    """Independent zero-mean Gaussian noise, ``sigma`` per action component.

    Parameters
    ----------
    sigma : array_like, shape (act_dim,)
        Standard deviations.
    rng : numpy.random.Generator or int
    """

    def __init__(self, sigma: Any, rng: np.random.Generator | int) -> None:
        self.sigma = np.asarray(sigma, dtype=np.float64)
        self.rng = as_generator(rng)

    def reset(self) -> None:
        """Nothing to reset: the draws are independent."""

    def __call__(self) -> np.ndarray:
        return self.sigma * self.rng.standard_normal(self.sigma.shape)


class OrnsteinUhlenbeckNoise:
    """Temporally correlated noise ``x <- x - theta * x + sigma * sqrt(2 theta) * N(0, 1)``.

    The discretised Ornstein-Uhlenbeck process used by the DDPG paper (there with
    ``theta = 0.15``). The factor ``sqrt(2 theta - theta^2)`` makes the stationary
    standard deviation exactly ``sigma``, so the two noise types of
    :class:`DDPGConfig` have the same size and differ only in their correlation
    (lag-1 autocorrelation ``1 - theta``). :meth:`reset` restarts it at 0, at the
    start of every episode.

    Parameters
    ----------
    sigma : array_like, shape (act_dim,)
        Stationary standard deviations.
    theta : float
        Mean-reversion rate in ``(0, 1]``; 1 gives independent Gaussian noise.
    rng : numpy.random.Generator or int
    """

    def __init__(self, sigma: Any, theta: float, rng: np.random.Generator | int) -> None:
        _check_real("theta", theta, low=0.0, high=1.0, low_open=True)
        self.sigma = np.asarray(sigma, dtype=np.float64)
        self.theta = float(theta)
        self.rng = as_generator(rng)
        self.state = np.zeros_like(self.sigma)

    def reset(self) -> None:
        """Restart the process at zero."""
        self.state = np.zeros_like(self.sigma)

    def __call__(self) -> np.ndarray:
        step_std = self.sigma * np.sqrt(2 * self.theta - self.theta**2)
        self.state = (1 - self.theta) * self.state + step_std * self.rng.standard_normal(self.sigma.shape)
        return self.state.copy()


# --------------------------------------------------------------------------- the agent
class DDPGAgent:
    """Actor, critic, their target copies and optimisers; one DDPG update at a time.

    Parameters
    ----------
    obs_dim, act_dim : int
        Sizes of an observation and an action.
    action_low, action_high : array_like, shape (act_dim,)
        The action box.
    config : DDPGConfig
    device : torch.device or str, default "cpu"
    seed : int, default 0
        Seeds the networks' initial weights (without touching PyTorch's global generator).

    Attributes
    ----------
    actor, critic, actor_target, critic_target : torch.nn.Module
    n_updates : int
        Critic updates made so far.
    log : dict of str to list of float
        Filled by :func:`train`: the mean ``critic_loss``, ``q_mean`` and
        ``actor_loss`` of the updates made during each training episode (NaN
        for episodes without updates).
    """

    def __init__(
        self, obs_dim: int, act_dim: int, action_low: Any, action_high: Any, config: DDPGConfig,
        *, device: torch.device | str = "cpu", seed: int = 0,
    ) -> None:
        self.config = config
        self.device = torch.device(device)
        self.action_low = np.asarray(action_low, dtype=np.float32).reshape(act_dim)
        self.action_high = np.asarray(action_high, dtype=np.float32).reshape(act_dim)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            actor = Actor(obs_dim, act_dim, self.action_low, self.action_high, config.hidden_sizes)
            critic = Critic(obs_dim, act_dim, config.hidden_sizes)
        self.actor, self.critic = actor.to(self.device), critic.to(self.device)
        self.actor_target, self.critic_target = copy.deepcopy(self.actor), copy.deepcopy(self.critic)
        for p in (*self.actor_target.parameters(), *self.critic_target.parameters()):
            p.requires_grad_(False)
        self.actor_optimizer = torch.optim.Adam(self.actor.parameters(), lr=config.actor_lr)
        self.critic_optimizer = torch.optim.Adam(self.critic.parameters(), lr=config.critic_lr)
        self.n_updates = 0
        self.log: dict[str, list[float]] = {"critic_loss": [], "q_mean": [], "actor_loss": []}

    def act(self, obs: np.ndarray) -> np.ndarray:
        """The greedy action ``mu(s)`` (no noise) for one observation, shape ``(act_dim,)``."""
        with torch.no_grad():
            x = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.device).unsqueeze(0)
            return self.actor(x)[0].cpu().numpy()

    def update(self, batch: Batch) -> dict[str, float]:
        """One DDPG step on a :class:`~mlnotes.rl.common.Batch`: critic, then (maybe) actor and targets.

        Returns
        -------
        dict
            ``critic_loss`` (mean squared TD error), ``q_mean`` (mean ``Q(s, a)`` of
            the batch) and, on steps that update the actor, ``actor_loss``.
        """
        cfg = self.config
        with torch.no_grad():
            next_q = self.critic_target(batch.next_obs, self.actor_target(batch.next_obs))
            y = td_target(batch.reward, next_q, batch.terminated, cfg.gamma)
        q = self.critic(batch.obs, batch.action)
        critic_loss = F.mse_loss(q, y)
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_optimizer.step()
        self.n_updates += 1
        info = {"critic_loss": critic_loss.item(), "q_mean": q.mean().item()}
        if self.n_updates % cfg.policy_delay == 0:
            loss = actor_loss(self.actor, self.critic, batch.obs)
            self.actor_optimizer.zero_grad(set_to_none=True)
            loss.backward()  # also fills the critic's grads, which its next zero_grad clears
            self.actor_optimizer.step()
            polyak_update(self.actor_target, self.actor, cfg.tau)
            polyak_update(self.critic_target, self.critic, cfg.tau)
            info["actor_loss"] = loss.item()
        return info


# --------------------------------------------------------------------------- training
def train(
    config: DDPGConfig | None = None,
    *,
    env_id: str = "Pendulum-v1",
    total_steps: int = 20_000,
    seed: int = 0,
    device: Any = None,
    n_eval_episodes: int = 10,
    progress: bool | None = None,
) -> TrainResult:
    """Train a DDPG agent on a continuous-action gymnasium environment.

    The first ``config.learning_starts`` steps take uniformly random actions;
    after that the agent acts with ``clip(mu(s) + noise, low, high)`` and makes
    ``config.updates_per_step`` updates per step. Episodes that end by time limit
    are bootstrapped (only ``terminated`` stops the bootstrap). Everything is
    seeded by `seed`: the same call on the same CPU gives the same result.

    Parameters
    ----------
    config : DDPGConfig, optional
        Hyperparameters; default ``DDPGConfig()``.
    env_id : str, default "Pendulum-v1"
        A gymnasium environment with a ``Box`` action space.
    total_steps : int, default 20_000
        Environment steps of training.
    seed : int, default 0
        Seeds the environment, the network weights, the exploration noise and the
        replay sampling.
    device : torch.device or str, optional
        Where the networks live; default :func:`mlnotes.runtime.get_device`.
    n_eval_episodes : int, default 10
        Greedy evaluation episodes after training, started from
        ``reset(seed=10_000 + seed + i)`` (states the agent did not train from).
    progress : bool, optional
        Show a tqdm progress bar; default: in an interactive session, unless
        ``TQDM_DISABLE=1``.

    Returns
    -------
    mlnotes.rl.common.TrainResult
        The agent (its ``act`` is the greedy policy; ``agent.log`` holds the mean
        critic loss, mean ``Q`` and actor loss of every training episode), the
        step and undiscounted return at the end of every training episode, the
        evaluation returns and the config.

    Raises
    ------
    TypeError
        If `config` is not a :class:`DDPGConfig` or `env_id` names an environment
        whose actions are not continuous (``Box``): use DQN for discrete actions.
    ValueError
        If `total_steps`, `seed` or `n_eval_episodes` is out of range.
    """
    import gymnasium as gym

    config = DDPGConfig() if config is None else config
    if not isinstance(config, DDPGConfig):
        raise TypeError(f"config must be a DDPGConfig, got {type(config).__name__}")
    _check_int("total_steps", total_steps, low=1)
    _check_int("seed", seed, low=0)
    _check_int("n_eval_episodes", n_eval_episodes, low=1)
    device = get_device(device)

    env = make_env(env_id, seed=seed)
    space = env.action_space
    if not isinstance(space, gym.spaces.Box):
        env.close()
        raise TypeError(
            f"env_id must name an environment with continuous (Box) actions for DDPG; {env_id!r} has "
            f"{type(space).__name__} actions (use the DQN of mlnotes.rl.value_approximation for discrete ones)"
        )
    if not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
        env.close()
        raise ValueError(f"env_id must have a bounded action box, {env_id!r} has low={space.low}, high={space.high}")
    obs_shape = env.observation_space.shape
    obs_dim, act_dim = int(np.prod(obs_shape)), int(np.prod(space.shape))
    low, high = space.low.astype(np.float32).reshape(act_dim), space.high.astype(np.float32).reshape(act_dim)

    rng = np.random.default_rng(seed)
    agent = DDPGAgent(obs_dim, act_dim, low, high, config, device=device, seed=seed)
    sigma = config.exploration_noise * (high - low) / 2
    noise = (
        GaussianNoise(sigma, rng) if config.noise_type == "gaussian"
        else OrnsteinUhlenbeckNoise(sigma, config.ou_theta, rng)
    )
    buffer = ReplayBuffer(min(config.buffer_size, total_steps), (obs_dim,), (act_dim,), np.float32)
    episode_end_steps, episode_returns = [], []
    episode_stats: dict[str, list[float]] = {key: [] for key in agent.log}

    bar = None
    if _show_progress(progress):
        from tqdm.std import tqdm  # the plain text bar: it renders in terminals and notebooks alike

        bar = tqdm(total=total_steps, desc=f"DDPG {env_id}", unit="step")
    try:
        obs, _ = env.reset(seed=seed)
        obs = np.asarray(obs, dtype=np.float32).reshape(obs_dim)
        episode_return = 0.0
        for step in range(total_steps):
            if step < config.learning_starts:
                action = rng.uniform(low, high).astype(np.float32)
            else:
                action = np.clip(agent.act(obs) + noise(), low, high).astype(np.float32)
            next_obs, reward, terminated, truncated, _ = env.step(action.reshape(space.shape))
            next_obs = np.asarray(next_obs, dtype=np.float32).reshape(obs_dim)
            buffer.add(obs, action, float(reward), next_obs, bool(terminated))
            episode_return += float(reward)
            obs = next_obs
            if step >= config.learning_starts:
                for _ in range(config.updates_per_step):
                    info = agent.update(buffer.sample(config.batch_size, rng, device))
                    for key, value in info.items():
                        episode_stats[key].append(value)
            if terminated or truncated:
                episode_end_steps.append(step + 1)
                episode_returns.append(episode_return)
                for key, values in episode_stats.items():
                    agent.log[key].append(float(np.mean(values)) if values else float("nan"))
                    values.clear()
                if bar is not None:
                    bar.set_postfix(episode_return=f"{episode_return:.0f}")
                obs, _ = env.reset()
                obs = np.asarray(obs, dtype=np.float32).reshape(obs_dim)
                noise.reset()
                episode_return = 0.0
            if bar is not None:
                bar.update(1)
    finally:
        env.close()
        if bar is not None:
            bar.close()

    eval_returns = evaluate_policy(
        lambda o: agent.act(o).reshape(space.shape), env_id, n_episodes=n_eval_episodes, seed=10_000 + seed
    )
    return TrainResult(
        agent=agent,
        episode_end_steps=np.asarray(episode_end_steps, dtype=np.int64),
        episode_returns=np.asarray(episode_returns, dtype=np.float64),
        eval_returns=eval_returns,
        config=config,
    )


def config_dict(config: DDPGConfig) -> dict[str, Any]:
    """The config as a JSON-ready dict (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()}


# --------------------------------------------------------------------------- exercises

def check_exercise_1(answer: Any) -> bool:
    """Exercise 1: one Polyak step.

    A target parameter is 1.0, the online parameter is 3.0 and ``tau = 0.01``.
    What is the target parameter after one :func:`polyak_update`?
    """
    target, source = torch.nn.Linear(1, 1, bias=False), torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        target.weight.fill_(1.0)
        source.weight.fill_(3.0)
    polyak_update(target, source, 0.01)
    target.weight.requires_grad_(False)
    try:
        ok = bool(np.isclose(float(answer), target.weight.item(), rtol=1e-6))
    except (TypeError, ValueError):
        ok = False
    return _report(
        ok, "Correct: the target moves 1% of the way, from 1.0 towards 3.0.",
        "Not yet: the target moves by tau times the gap (online - target).",
    )


def check_exercise_2(answer: Any) -> bool:
    """Exercise 2: the DPG for a linear actor and a quadratic critic.

    One state ``s = 2``, actor ``mu_theta(s) = theta * s`` with ``theta = 0.5``,
    critic ``Q(s, a) = -(a - s)**2``. What is ``dJ/dtheta``?
    """
    s, theta = 2.0, 0.5
    a = theta * s
    expected = -2 * (a - s) * s  # grad_a Q times d mu / d theta
    try:
        ok = bool(np.isclose(float(answer), expected, rtol=1e-6))
    except (TypeError, ValueError):
        ok = False
    return _report(
        ok, "Correct: grad_a Q = -2(a - s) = 2 at a = 1, times d mu/d theta = s = 2.",
        "Not yet: multiply grad_a Q(s, a) at a = mu(s) by d mu / d theta = s.",
    )
