"""Value function approximation: linear TD(0) and deep Q-networks (DQN).

The chapter ``book/rl/value_approximation.ipynb`` teaches this module.

*Linear TD(0)* :cite:p:`sutton1988learning` estimates the state values of a
Markov reward process with a linear function :math:`\\hat v(s) = \\phi(s)^\\top w`
and the semi-gradient update

.. math::

    w_{t+1} = w_t + \\alpha_t \\bigl(r_{t+1} + \\gamma \\phi(s_{t+1})^\\top w_t
              - \\phi(s_t)^\\top w_t\\bigr) \\phi(s_t).

Along a trajectory of an ergodic chain it converges (Robbins-Monro step sizes)
to the *TD fixed point* :cite:p:`tsitsiklis1997analysis`

.. math::

    w_{TD} = \\bigl(\\Phi^\\top D (I - \\gamma P) \\Phi\\bigr)^{-1} \\Phi^\\top D r,

with :math:`D` the diagonal matrix of the stationary distribution; it is *not*
the least-squares projection of the true values unless the features can
represent them. :func:`td0_linear`, :func:`td_fixed_point`,
:func:`projected_values_weights` and the chain generators
:func:`random_walk_chain`, :func:`random_chain` and :func:`chain_features` cover
this half.

*DQN* :cite:p:`mnih2015human` learns action values with a neural network
(:class:`QNetwork`) from a replay buffer (:class:`mlnotes.rl.common.ReplayBuffer`)
against the targets of a slowly updated *target network*, acting
epsilon-greedily with a linearly decaying epsilon. The option ``double`` gives
Double DQN :cite:p:`vanhasselt2016deep`: the online network picks the next
action, the target network values it. :func:`train_dqn` is the entry point,
:class:`DQNConfig` documents every hyperparameter.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch

from mlnotes.rl.common import Batch, ReplayBuffer, TrainResult, evaluate_policy, make_env
from mlnotes.runtime import as_generator, get_device

__all__ = [
    "DQNAgent",
    "DQNConfig",
    "QNetwork",
    "chain_features",
    "check_exercise_1",
    "check_exercise_2",
    "dqn_targets",
    "linear_schedule",
    "projected_values_weights",
    "random_chain",
    "random_walk_chain",
    "stationary_distribution",
    "td0_linear",
    "td_fixed_point",
    "train_dqn",
    "true_values",
]


# --------------------------------------------------------------------------- validation
def _check_gamma(gamma: Any) -> float:
    if isinstance(gamma, bool) or not isinstance(gamma, Real) or not 0.0 <= float(gamma) < 1.0:
        raise ValueError(f"gamma must be a number in [0, 1), got {gamma!r}")
    return float(gamma)


def _check_positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _check_chain(P: Any, reward: Any | None = None,
                 features: Any | None = None) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Validate a transition matrix, a reward (per state or per transition) and features.

    Returns ``P``, the expected reward per state ``r`` of shape ``(states,)`` (None without a
    reward) and the features.
    """
    P = np.asarray(P, dtype=np.float64)
    if P.ndim != 2 or P.shape[0] != P.shape[1] or P.shape[0] == 0:
        raise ValueError(f"P must be a square (states, states) transition matrix, got shape {P.shape}")
    if np.any(P < 0) or not np.allclose(P.sum(axis=1), 1.0, atol=1e-8):
        raise ValueError("P must have non-negative rows that sum to one (P[s, s'] = Pr(s' | s)); "
                         f"row sums range over [{P.sum(axis=1).min():.6g}, {P.sum(axis=1).max():.6g}]")
    n = P.shape[0]
    reward = None if reward is None else np.asarray(reward, dtype=np.float64)
    if reward is None or reward.shape == (n,):
        r = reward
    elif reward.shape == (n, n):
        r = (P * reward).sum(axis=1)
    else:
        raise ValueError(f"reward must have shape (states,) = ({n},) or (states, states) = ({n}, {n}) "
                         f"to match P, got {reward.shape}")
    if features is not None:
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2 or features.shape[0] != n:
            raise ValueError(f"features must have shape (states, n_features) = ({n}, k) to match P, "
                             f"got {features.shape}")
        if np.linalg.matrix_rank(features) < features.shape[1]:
            raise ValueError(f"features must have linearly independent columns; rank "
                             f"{np.linalg.matrix_rank(features)} < {features.shape[1]} columns")
    return P, r, features


# --------------------------------------------------------------------------- chains
def random_walk_chain(n_states: int = 5, *, left_reward: float = -1.0,
                      right_reward: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """A continuing random walk in the style of Sutton & Barto's example 6.2.

    From each of ``n_states`` states in a row the walk moves left or right with
    probability 1/2. Stepping off the left end pays ``left_reward``, off the
    right end ``right_reward``, and restarts the walk in the middle state (so the
    chain never ends and has a stationary distribution); every other move pays 0.

    Returns
    -------
    P : ndarray, shape (n_states, n_states)
        ``P[s, s']`` is the probability of moving from ``s`` to ``s'``.
    R : ndarray, shape (n_states, n_states)
        ``R[s, s']`` is the reward of that move.
    """
    n = _check_positive_int(n_states, "n_states")
    if n < 3 or n % 2 == 0:
        raise ValueError(f"n_states must be an odd int >= 3 (the walk restarts in the middle), got {n_states!r}")
    middle = n // 2
    P = np.zeros((n, n))
    R = np.zeros((n, n))
    for s in range(n):
        for step, end_reward in ((-1, left_reward), (1, right_reward)):
            nxt = s + step
            if 0 <= nxt < n:
                P[s, nxt] += 0.5
            else:
                P[s, middle] += 0.5
                R[s, middle] = end_reward
    return P, R


def random_chain(n_states: int, rng: np.random.Generator | int = 0, *,
                 concentration: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """A random ergodic Markov reward process.

    Rows of ``P`` are Dirichlet(``concentration``) draws (all entries positive
    almost surely, so the chain is ergodic); rewards are standard normal per state.

    Returns
    -------
    P : ndarray, shape (n_states, n_states)
    r : ndarray, shape (n_states,)
        Reward received on leaving each state.
    """
    n = _check_positive_int(n_states, "n_states")
    rng = as_generator(rng)
    P = rng.dirichlet(np.full(n, float(concentration)), size=n)
    return P, rng.standard_normal(n)


def chain_features(n_states: int, kind: str = "tabular", *, n_features: int = 3) -> np.ndarray:
    """Feature matrix ``Phi`` of shape ``(n_states, n_features)`` for a chain of states in a row.

    Parameters
    ----------
    kind : {"tabular", "polynomial", "aggregate"}
        ``tabular``: one-hot (``n_features = n_states``, any value function is
        representable). ``polynomial``: ``1, x, x^2, ...`` of the position ``x``
        scaled to ``[-1, 1]``. ``aggregate``: state aggregation, ``n_features``
        groups of neighbouring states, one indicator per group.
    n_features : int, default 3
        Number of features for ``polynomial`` and ``aggregate``.
    """
    n = _check_positive_int(n_states, "n_states")
    if kind == "tabular":
        return np.eye(n)
    k = _check_positive_int(n_features, "n_features")
    if k > n:
        raise ValueError(f"n_features must be at most n_states = {n}, got {n_features!r}")
    if kind == "polynomial":
        x = np.linspace(-1.0, 1.0, n)
        return np.vander(x, k, increasing=True)
    if kind == "aggregate":
        group = np.arange(n) * k // n
        return np.eye(k)[group]
    raise ValueError(f"kind must be 'tabular', 'polynomial' or 'aggregate', got {kind!r}")


# --------------------------------------------------------------------------- closed forms
def stationary_distribution(P: np.ndarray) -> np.ndarray:
    """The stationary distribution ``d`` (``d P = d``, ``sum(d) = 1``) of an ergodic chain, shape ``(states,)``."""
    P, _, _ = _check_chain(P)
    n = P.shape[0]
    # d (P - I) = 0 with sum(d) = 1: one equation replaced by the normalisation.
    A = np.vstack([(P - np.eye(n)).T[:-1], np.ones(n)])
    b = np.zeros(n)
    b[-1] = 1.0
    return np.linalg.solve(A, b)


def true_values(P: np.ndarray, reward: np.ndarray, gamma: float) -> np.ndarray:
    """State values ``v = (I - gamma P)^{-1} r`` (the Bellman equation solved directly), shape ``(states,)``."""
    gamma = _check_gamma(gamma)
    P, r, _ = _check_chain(P, reward)
    return np.linalg.solve(np.eye(P.shape[0]) - gamma * P, r)


def td_fixed_point(P: np.ndarray, reward: np.ndarray, gamma: float, features: np.ndarray,
                   d: np.ndarray | None = None) -> np.ndarray:
    """The TD(0) fixed point ``w_TD = (Phi^T D (I - gamma P) Phi)^{-1} Phi^T D r``.

    Parameters
    ----------
    P : ndarray, shape (states, states)
    reward : ndarray, shape (states,) or (states, states)
        Reward on leaving each state, or on each transition (then ``r`` is its
        expectation under ``P``).
    gamma : float in [0, 1)
    features : ndarray, shape (states, n_features)
        ``Phi``; linearly independent columns.
    d : ndarray, shape (states,), optional
        State weighting; the stationary distribution of ``P`` when omitted (the
        distribution an on-policy trajectory visits states with).

    Returns
    -------
    ndarray, shape (n_features,)
    """
    gamma = _check_gamma(gamma)
    P, r, Phi = _check_chain(P, reward, features)
    d = stationary_distribution(P) if d is None else np.asarray(d, dtype=np.float64)
    if d.shape != (P.shape[0],):
        raise ValueError(f"d must have shape (states,) = ({P.shape[0]},), got {d.shape}")
    A = Phi.T @ (d[:, None] * (Phi - gamma * P @ Phi))
    b = Phi.T @ (d * r)
    return np.linalg.solve(A, b)


def projected_values_weights(values: np.ndarray, features: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Weights of the ``d``-weighted least-squares projection of ``values`` onto the features' span.

    ``argmin_w sum_s d(s) (phi(s)^T w - v(s))^2 = (Phi^T D Phi)^{-1} Phi^T D v``, shape ``(n_features,)``:
    the best a linear approximator could do in the norm TD is analysed in.
    """
    Phi = np.asarray(features, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    d = np.asarray(d, dtype=np.float64)
    if Phi.ndim != 2 or values.shape != (Phi.shape[0],) or d.shape != (Phi.shape[0],):
        raise ValueError(f"values and d must have shape (states,) matching features (states, n_features) = "
                         f"{Phi.shape}, got {values.shape} and {d.shape}")
    return np.linalg.solve(Phi.T @ (d[:, None] * Phi), Phi.T @ (d * values))


# --------------------------------------------------------------------------- TD(0)
def td0_linear(
    P: np.ndarray,
    reward: np.ndarray,
    gamma: float,
    features: np.ndarray,
    *,
    n_steps: int,
    step_size: float | Callable[[int], float] = 0.05,
    rng: np.random.Generator | int = 0,
    start_state: int | None = None,
    w0: np.ndarray | None = None,
    record_every: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Semi-gradient TD(0) with linear features along one sampled trajectory of the chain.

    ``w <- w + alpha_t (r + gamma phi(s')^T w - phi(s)^T w) phi(s)`` at every step.

    Parameters
    ----------
    P : ndarray, shape (states, states)
        Transition matrix of the Markov reward process (the policy is folded in).
    reward : ndarray, shape (states,) or (states, states)
        Reward on leaving each state, or on each transition ``s -> s'``.
    gamma : float in [0, 1)
    features : ndarray, shape (states, n_features)
    n_steps : int
        Transitions sampled (and updates made).
    step_size : float or callable
        A constant ``alpha``, or a function of the step index ``t = 0, 1, ...``
        (for example ``lambda t: 0.1 * 1000 / (1000 + t)``, which satisfies the
        Robbins-Monro conditions).
    rng : numpy Generator or int, default 0
    start_state : int, optional
        First state; drawn from the stationary distribution when omitted.
    w0 : ndarray, shape (n_features,), optional
        Initial weights (zeros when omitted).
    record_every : int, default 1
        Keep the weights every this many steps.

    Returns
    -------
    steps : ndarray of int, shape (n_records,)
        ``0, record_every, 2 record_every, ...`` up to ``n_steps``.
    weights : ndarray, shape (n_records, n_features)
        ``weights[i]`` is ``w`` after ``steps[i]`` updates.
    """
    gamma = _check_gamma(gamma)
    P, _, Phi = _check_chain(P, reward, features)
    n_steps = _check_positive_int(n_steps, "n_steps")
    record_every = _check_positive_int(record_every, "record_every")
    if not callable(step_size) and (isinstance(step_size, bool) or not isinstance(step_size, Real)
                                    or step_size <= 0):
        raise ValueError(f"step_size must be a positive number or a callable t -> alpha_t, got {step_size!r}")
    alpha = step_size if callable(step_size) else (lambda t, a=float(step_size): a)
    reward = np.asarray(reward, dtype=np.float64)
    per_transition = reward.ndim == 2
    rng = as_generator(rng)
    n = P.shape[0]
    w = np.zeros(Phi.shape[1]) if w0 is None else np.array(w0, dtype=np.float64)
    if w.shape != (Phi.shape[1],):
        raise ValueError(f"w0 must have shape (n_features,) = ({Phi.shape[1]},), got {w.shape}")
    s = int(rng.choice(n, p=stationary_distribution(P))) if start_state is None else int(start_state)
    if not 0 <= s < n:
        raise ValueError(f"start_state must be in [0, {n}), got {start_state!r}")
    # Next states by inverse-CDF sampling of all uniforms at once (same law as rng.choice per step).
    cdf = np.cumsum(P, axis=1)
    cdf[:, -1] = 1.0
    uniforms = rng.random(n_steps)
    steps = [0]
    history = [w.copy()]
    for t in range(n_steps):
        s_next = int(np.searchsorted(cdf[s], uniforms[t], side="right"))
        r = reward[s, s_next] if per_transition else reward[s]
        td_error = r + gamma * Phi[s_next] @ w - Phi[s] @ w
        w += alpha(t) * td_error * Phi[s]
        s = s_next
        if (t + 1) % record_every == 0:
            steps.append(t + 1)
            history.append(w.copy())
    return np.asarray(steps), np.asarray(history)


# --------------------------------------------------------------------------- DQN
def linear_schedule(start: float, end: float, duration: int, t: int) -> float:
    """``start`` moving linearly to ``end`` over ``duration`` steps, then ``end`` (epsilon of DQN)."""
    if t >= duration:
        return end
    return start + (end - start) * t / duration


class QNetwork(torch.nn.Module):
    """An MLP ``obs -> Q(obs, .)`` with ReLU hidden layers.

    Input ``(batch, obs_dim)``, output ``(batch, n_actions)``. Weights come from
    PyTorch's default initialisation (seed it with ``torch.manual_seed`` or build
    the network inside ``torch.random.fork_rng``).
    """

    def __init__(self, obs_dim: int, n_actions: int, hidden_sizes: Sequence[int] = (128, 128)) -> None:
        super().__init__()
        obs_dim = _check_positive_int(obs_dim, "obs_dim")
        n_actions = _check_positive_int(n_actions, "n_actions")
        layers: list[torch.nn.Module] = []
        width = obs_dim
        for size in hidden_sizes:
            layers += [torch.nn.Linear(width, _check_positive_int(size, "each of hidden_sizes")), torch.nn.ReLU()]
            width = int(size)
        layers.append(torch.nn.Linear(width, n_actions))
        self.layers = torch.nn.Sequential(*layers)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """``Q(obs, .)``: ``(batch, obs_dim) -> (batch, n_actions)``."""
        return self.layers(obs)


@dataclass
class DQNConfig:
    """Hyperparameters of :func:`train_dqn` (defaults tuned on ``CartPole-v1``, 100k steps)."""

    learning_rate: float = 1e-3
    """Adam step size (at the first learning step when ``anneal_lr``)."""
    anneal_lr: bool = True
    """Decay the step size linearly from ``learning_rate`` to 0 over the training steps, which
    settles the final policy (late-training collapses are DQN's common failure on CartPole)."""
    buffer_size: int = 100_000
    """Replay buffer capacity (transitions); the oldest are overwritten."""
    batch_size: int = 128
    """Transitions per gradient step, drawn uniformly from the buffer."""
    gamma: float = 0.99
    """Discount factor of the targets."""
    hidden_sizes: tuple[int, ...] = (256, 256)
    """Widths of the hidden layers of :func:`QNetwork`."""
    learning_starts: int = 1_000
    """Steps of uniformly random actions that fill the buffer before learning starts."""
    train_frequency: int = 1
    """Environment steps between gradient steps."""
    target_update_interval: int = 500
    """Environment steps between updates of the target network."""
    tau: float = 1.0
    """Target update ``theta' <- tau theta + (1 - tau) theta'``; 1.0 is the hard copy of the paper."""
    epsilon_start: float = 1.0
    """Exploration rate at the first learning step."""
    epsilon_end: float = 0.05
    """Exploration rate after the decay."""
    exploration_steps: int = 10_000
    """Environment steps over which epsilon decays linearly from start to end."""
    double: bool = True
    """Double DQN targets (the online network picks the next action, the target network values it)."""
    loss: str = "huber"
    """``"huber"`` (smooth L1, the paper's error clipping) or ``"mse"``."""
    max_grad_norm: float | None = 10.0
    """Clip the gradient's global norm to this value; ``None`` for no clipping."""

    def __post_init__(self) -> None:
        for name, low in (("buffer_size", 1), ("batch_size", 1), ("learning_starts", 0), ("train_frequency", 1),
                          ("target_update_interval", 1), ("exploration_steps", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
                raise ValueError(f"DQNConfig.{name} must be an int >= {low}, got {value!r}")
        _check_gamma(self.gamma)
        if not 0.0 < self.tau <= 1.0:
            raise ValueError(f"DQNConfig.tau must be in (0, 1], got {self.tau!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"DQNConfig.learning_rate must be positive, got {self.learning_rate!r}")
        for name in ("epsilon_start", "epsilon_end"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"DQNConfig.{name} must be in [0, 1], got {getattr(self, name)!r}")
        if self.loss not in ("huber", "mse"):
            raise ValueError(f"DQNConfig.loss must be 'huber' or 'mse', got {self.loss!r}")
        self.hidden_sizes = tuple(self.hidden_sizes)


def dqn_targets(q_network: torch.nn.Module, target_network: torch.nn.Module, reward: torch.Tensor,
                next_obs: torch.Tensor, terminated: torch.Tensor, gamma: float, *,
                double: bool = True) -> torch.Tensor:
    """Bootstrapped targets ``y = r + gamma (1 - terminated) Q_target(s', a*)``, shape ``(batch,)``.

    ``a* = argmax_a Q_target(s', a)`` for DQN, ``argmax_a Q_online(s', a)`` for
    Double DQN. Computed without gradient. ``reward``, ``terminated``: ``(batch,)``;
    ``next_obs``: ``(batch, obs_dim)``.
    """
    with torch.no_grad():
        next_q = target_network(next_obs)
        if double:
            best = q_network(next_obs).argmax(dim=1, keepdim=True)
        else:
            best = next_q.argmax(dim=1, keepdim=True)
        next_value = next_q.gather(1, best).squeeze(1)
        return reward + gamma * (1.0 - terminated) * next_value


class DQNAgent:
    """A Q-network, its target network and their optimiser.

    ``act(obs)`` is the greedy action ``argmax_a Q(obs, a)`` (what evaluation
    uses); ``q_values(obs)`` returns ``Q(obs, .)`` as an array.
    """

    def __init__(self, obs_dim: int, n_actions: int, config: DQNConfig, device: torch.device | str = "cpu",
                 seed: int = 0) -> None:
        self.config = config
        self.n_actions = int(n_actions)
        self.device = torch.device(device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.q_network = QNetwork(obs_dim, n_actions, config.hidden_sizes).to(self.device)
        self.target_network = copy.deepcopy(self.q_network)
        self.target_network.requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.q_network.parameters(), lr=config.learning_rate)

    def q_values(self, obs: np.ndarray) -> np.ndarray:
        """``Q(obs, .)``: shape ``(n_actions,)`` for one observation, ``(batch, n_actions)`` for a batch."""
        with torch.no_grad():
            x = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.device)
            return self.q_network(x).cpu().numpy()

    def act(self, obs: np.ndarray) -> int:
        """The greedy action for one observation of shape ``(obs_dim,)``."""
        return int(np.argmax(self.q_values(obs)))

    def update(self, batch: Batch) -> float:
        """One gradient step on a :class:`~mlnotes.rl.common.Batch`; returns the loss."""
        cfg = self.config
        targets = dqn_targets(self.q_network, self.target_network, batch.reward, batch.next_obs,
                              batch.terminated, cfg.gamma, double=cfg.double)
        q = self.q_network(batch.obs).gather(1, batch.action.unsqueeze(1)).squeeze(1)
        if cfg.loss == "huber":
            loss = torch.nn.functional.smooth_l1_loss(q, targets)
        else:
            loss = torch.nn.functional.mse_loss(q, targets)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.q_network.parameters(), cfg.max_grad_norm)
        self.optimizer.step()
        return float(loss.item())

    def update_target(self, tau: float = 1.0) -> None:
        """``theta' <- tau theta + (1 - tau) theta'`` (a hard copy for ``tau = 1``)."""
        with torch.no_grad():
            for target, online in zip(self.target_network.parameters(), self.q_network.parameters()):
                target.lerp_(online, tau)


def _discrete_env_shapes(env: Any, env_id: str) -> tuple[int, int]:
    from gymnasium import spaces

    if not isinstance(env.action_space, spaces.Discrete):
        kind = type(env.action_space).__name__
        raise ValueError(f"DQN needs a discrete action space (gymnasium.spaces.Discrete), but {env_id!r} has "
                         f"a {kind} action space; for continuous actions use mlnotes.rl.ddpg")
    shape = env.observation_space.shape
    if shape is None or len(shape) != 1:
        raise ValueError(f"DQN here needs a flat vector observation space, but {env_id!r} has observations "
                         f"of shape {shape}")
    return int(shape[0]), int(env.action_space.n)


def train_dqn(
    config: DQNConfig | None = None,
    *,
    env_id: str = "CartPole-v1",
    total_steps: int = 100_000,
    seed: int = 0,
    device=None,
    n_eval_episodes: int = 20,
    progress: bool | None = None,
) -> TrainResult:
    """Train DQN (Double DQN by default) on a discrete-action gymnasium environment.

    Parameters
    ----------
    config : DQNConfig, optional
        Hyperparameters; ``DQNConfig()`` when omitted.
    env_id : str, default "CartPole-v1"
        A gymnasium id with a ``Discrete`` action space and vector observations;
        continuous-action environments raise ``ValueError``.
    total_steps : int, default 100_000
        Environment steps of training.
    seed : int, default 0
        Seeds the environment, the network initialisation, exploration and
        replay sampling: two runs with the same seed on the CPU are identical.
    device : str or torch.device, optional
        Where the networks live; :func:`mlnotes.runtime.get_device` when omitted.
    n_eval_episodes : int, default 20
        Seeded evaluation episodes of the final greedy policy (reset seeds
        ``10_000 + seed * n_eval_episodes + i``, disjoint from training).
    progress : bool, optional
        tqdm progress bar; by default only in an interactive session or a TTY,
        never with ``TQDM_DISABLE=1``.

    Returns
    -------
    TrainResult
        ``agent`` (a :class:`DQNAgent`), the training episodes' end steps and
        returns, the evaluation returns and the config.
    """
    from tqdm.std import tqdm  # the plain text bar: it renders in terminals and notebooks alike

    from mlnotes.training import _show_progress

    config = DQNConfig() if config is None else config
    if not isinstance(config, DQNConfig):
        raise TypeError(f"config must be a DQNConfig or None, got {type(config).__name__}")
    total_steps = _check_positive_int(total_steps, "total_steps")
    n_eval_episodes = _check_positive_int(n_eval_episodes, "n_eval_episodes")
    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    seed = int(seed)
    env = make_env(env_id, seed=seed)
    try:
        obs_dim, n_actions = _discrete_env_shapes(env, env_id)
        device = get_device(device)
        agent = DQNAgent(obs_dim, n_actions, config, device=device, seed=seed)
        buffer = ReplayBuffer(config.buffer_size, obs_shape=(obs_dim,))
        rng = np.random.default_rng(seed)
        obs, _ = env.reset(seed=seed)
        episode_return, end_steps, returns = 0.0, [], []
        bar = tqdm(range(total_steps), desc=f"DQN {env_id}", unit="step", disable=not _show_progress(progress),
                   mininterval=1.0)
        for step in bar:
            epsilon = linear_schedule(config.epsilon_start, config.epsilon_end, config.exploration_steps,
                                      max(0, step - config.learning_starts))
            if step < config.learning_starts or rng.random() < epsilon:
                action = int(rng.integers(n_actions))
            else:
                action = agent.act(obs)
            next_obs, reward, terminated, truncated, _ = env.step(action)
            # Truncation by the time limit is not termination: the target still bootstraps from next_obs.
            buffer.add(obs, action, float(reward), next_obs, terminated)
            episode_return += float(reward)
            obs = next_obs
            if terminated or truncated:
                end_steps.append(step + 1)
                returns.append(episode_return)
                bar.set_postfix(ret=f"{episode_return:.0f}", eps=f"{epsilon:.2f}", refresh=False)
                episode_return = 0.0
                obs, _ = env.reset()
            if step >= config.learning_starts:
                if config.anneal_lr:
                    for group in agent.optimizer.param_groups:
                        group["lr"] = config.learning_rate * (1.0 - step / total_steps)
                if (step + 1) % config.train_frequency == 0:
                    agent.update(buffer.sample(config.batch_size, rng, device))
                if (step + 1) % config.target_update_interval == 0:
                    agent.update_target(config.tau)
        bar.close()
    finally:
        env.close()
    eval_returns = evaluate_policy(agent.act, env_id, n_episodes=n_eval_episodes,
                                   seed=10_000 + seed * n_eval_episodes)
    return TrainResult(agent, np.asarray(end_steps, dtype=np.int64), np.asarray(returns, dtype=np.float64),
                       eval_returns, config)


# --------------------------------------------------------------------------- exercises
def _check_close(answer: Any, expected: np.ndarray, what: str, atol: float = 1e-6) -> bool:
    answer = np.asarray(answer, dtype=np.float64)
    if answer.shape != expected.shape:
        print(f"Not yet: {what} should have shape {expected.shape}, got {answer.shape}.")
        return False
    if np.allclose(answer, expected, atol=atol):
        print(f"Correct: {what} matches to {atol:g}.")
        return True
    print(f"Not yet: {what} is off by up to {np.max(np.abs(answer - expected)):.3g}.")
    return False


def check_exercise_1(weights: Any) -> bool:
    """Exercise 1: the TD fixed point of the 5-state walk (``random_walk_chain(5)``) at ``gamma = 0``
    with ``chain_features(5, "polynomial", n_features=2)``, computed as a ``d``-weighted least-squares fit
    of the expected one-step rewards. Prints a verdict and returns whether ``weights`` is right."""
    P, R = random_walk_chain(5)
    Phi = chain_features(5, "polynomial", n_features=2)
    return _check_close(weights, td_fixed_point(P, R, 0.0, Phi), "w_TD at gamma = 0")


def check_exercise_2(values: Any) -> bool:
    """Exercise 2: the true state values of ``random_walk_chain(19)`` at ``gamma = 0.9``, shape ``(19,)``.
    Prints a verdict and returns whether ``values`` is right."""
    P, R = random_walk_chain(19)
    return _check_close(values, true_values(P, R, 0.9), "v")
