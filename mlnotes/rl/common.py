"""Shared pieces of Part 7 (reinforcement learning): environments, a replay buffer, evaluation.

The value-based (``book/rl/value_approximation.ipynb``) and actor-critic
(``book/rl/ddpg.ipynb``) chapters both learn off-policy from stored transitions
and both report the mean return of a greedy policy over seeded evaluation
episodes; those two pieces live here once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mlnotes.runtime import as_generator

if TYPE_CHECKING:
    import gymnasium as gym
    import torch

__all__ = ["ReplayBuffer", "Batch", "TrainResult", "make_env", "evaluate_policy"]


def make_env(env_id: str, *, seed: int | None = None, **kwargs: Any) -> gym.Env:
    """Create a gymnasium environment, seeding its first reset and its action space.

    Only environments that need no download (classic control, toy text) are used
    in the book.
    """
    import gymnasium as gym

    if not isinstance(env_id, str) or not env_id:
        raise ValueError(f"env_id must be a gymnasium environment id such as 'CartPole-v1', got {env_id!r}")
    env = gym.make(env_id, **kwargs)
    if seed is not None:
        env.reset(seed=int(seed))
        env.action_space.seed(int(seed))
    return env


@dataclass(frozen=True)
class Batch:
    """A mini-batch of transitions as tensors on one device.

    Attributes
    ----------
    obs, next_obs : torch.Tensor, shape ``(batch, *obs_shape)``
    action : torch.Tensor, shape ``(batch, *action_shape)``; int64 for discrete actions
    reward : torch.Tensor, shape (batch,)
    terminated : torch.Tensor, shape (batch,)
        1.0 where the episode ended in a terminal state (no bootstrapping from
        ``next_obs``), 0.0 otherwise; time-limit truncations are *not* terminal.
    """

    obs: torch.Tensor
    action: torch.Tensor
    reward: torch.Tensor
    next_obs: torch.Tensor
    terminated: torch.Tensor


class ReplayBuffer:
    """A fixed-size circular store of transitions ``(s, a, r, s', terminated)``.

    Parameters
    ----------
    capacity : int
        Transitions kept; the oldest is overwritten once full.
    obs_shape : tuple of int
        Shape of one observation.
    action_shape : tuple of int, default ()
        Shape of one action: ``()`` for a discrete action index.
    action_dtype : numpy dtype, default int64
        ``np.int64`` for discrete actions, ``np.float32`` for continuous ones.

    Examples
    --------
    >>> buffer = ReplayBuffer(100, obs_shape=(4,))
    >>> buffer.add(np.zeros(4), 1, 1.0, np.ones(4), False)
    >>> len(buffer)
    1
    """

    def __init__(
        self,
        capacity: int,
        obs_shape: tuple[int, ...],
        action_shape: tuple[int, ...] = (),
        action_dtype: type | np.dtype = np.int64,
    ) -> None:
        if not isinstance(capacity, (int, np.integer)) or isinstance(capacity, bool) or capacity < 1:
            raise ValueError(f"capacity must be a positive int, got {capacity!r}")
        self.capacity = int(capacity)
        self.obs = np.zeros((capacity, *obs_shape), dtype=np.float32)
        self.next_obs = np.zeros((capacity, *obs_shape), dtype=np.float32)
        self.action = np.zeros((capacity, *action_shape), dtype=action_dtype)
        self.reward = np.zeros(capacity, dtype=np.float32)
        self.terminated = np.zeros(capacity, dtype=np.float32)
        self._next = 0
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def add(self, obs: np.ndarray, action: Any, reward: float, next_obs: np.ndarray, terminated: bool) -> None:
        """Store one transition (overwriting the oldest when full)."""
        obs = np.asarray(obs, dtype=np.float32)
        if obs.shape != self.obs.shape[1:]:
            raise ValueError(f"obs must have shape {self.obs.shape[1:]}, got {obs.shape}")
        i = self._next
        self.obs[i] = obs
        self.action[i] = action
        self.reward[i] = reward
        self.next_obs[i] = next_obs
        self.terminated[i] = float(terminated)
        self._next = (i + 1) % self.capacity
        self._size = min(self._size + 1, self.capacity)

    def sample(
        self, batch_size: int, rng: np.random.Generator | int, device: torch.device | str = "cpu"
    ) -> Batch:
        """Draw ``batch_size`` transitions uniformly with replacement, as tensors on ``device``."""
        import torch

        if self._size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        idx = as_generator(rng).integers(0, self._size, size=batch_size)

        def tensor(a: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(a[idx], device=device)

        return Batch(tensor(self.obs), tensor(self.action), tensor(self.reward), tensor(self.next_obs),
                     tensor(self.terminated))


@dataclass
class TrainResult:
    """What the training entry points of Part 7 (``train_dqn``, ``ddpg.train``) return.

    Attributes
    ----------
    agent : object
        The trained agent; ``agent.act(obs)`` gives its greedy (noise-free) action.
    episode_end_steps : ndarray of int, shape (n_episodes,)
        Environment step at which each training episode ended.
    episode_returns : ndarray of float, shape (n_episodes,)
        Undiscounted return of each training episode (exploration included).
    eval_returns : ndarray of float, shape (n_eval_episodes,)
        Returns of the final greedy policy in seeded evaluation episodes.
    config : object
        The hyperparameters used (a dataclass).
    """

    agent: Any
    episode_end_steps: np.ndarray
    episode_returns: np.ndarray
    eval_returns: np.ndarray
    config: Any


def evaluate_policy(
    policy: Callable[[np.ndarray], Any], env_id: str, *, n_episodes: int = 10, seed: int = 0, **env_kwargs: Any
) -> np.ndarray:
    """Undiscounted return of ``policy`` (observation -> action) in ``n_episodes`` seeded episodes.

    Episode ``i`` starts from ``env.reset(seed=seed + i)``, so two policies are
    compared on the same start states. Returns an array of shape ``(n_episodes,)``.
    """
    if not isinstance(n_episodes, (int, np.integer)) or n_episodes < 1:
        raise ValueError(f"n_episodes must be a positive int, got {n_episodes!r}")
    env = make_env(env_id, **env_kwargs)
    returns = np.zeros(n_episodes)
    try:
        for i in range(n_episodes):
            obs, _ = env.reset(seed=seed + i)
            done = False
            while not done:
                obs, reward, terminated, truncated, _ = env.step(policy(obs))
                returns[i] += float(reward)
                done = terminated or truncated
    finally:
        env.close()
    return returns
