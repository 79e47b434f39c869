"""Finite Markov decision processes solved exactly: the Bellman (optimality) equation.

The chapter ``book/rl/bellman_optimality.ipynb`` teaches this module.

A finite MDP is given by two arrays: ``P[s, a, s']``, the probability of moving
from state ``s`` to ``s'`` under action ``a``, of shape ``(states, actions,
states)``, and ``R[s, a]``, the expected immediate reward, of shape ``(states,
actions)``; ``gamma`` in ``[0, 1)`` discounts the future. For a policy ``pi``
the state values solve the *Bellman equation*

.. math::

    v_\\pi = r_\\pi + \\gamma P_\\pi v_\\pi
    \\quad\\Longleftrightarrow\\quad
    v_\\pi = (I - \\gamma P_\\pi)^{-1} r_\\pi ,

computed by :func:`policy_evaluation` with one linear solve. The optimal values
solve the *Bellman optimality equation* ``v = T v`` with
``(T v)(s) = max_a [R(s, a) + gamma sum_s' P(s, a, s') v(s')]``
(:func:`bellman_optimality_operator`), a ``gamma``-contraction in the sup norm.
Three dynamic-programming algorithms find its fixed point:
:func:`value_iteration`, :func:`policy_iteration` (Howard 1960) and
:func:`truncated_policy_iteration` (modified policy iteration, Puterman and Shin
1978), which interpolates between the two. The textbook account is Sutton and
Barto (2018), chapters 3 and 4; Bellman (1957) introduced the equation.

Two sources of MDPs: :class:`GridWorld`, the grid of forbidden cells and a target
used throughout the chapter, and :func:`from_gymnasium_toy_text`, which reads the
transition table of a gymnasium toy-text environment such as ``FrozenLake-v1``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from numbers import Real
from typing import TYPE_CHECKING, Any

import numpy as np

from mlnotes.exercises import report as _report
from mlnotes.runtime import as_generator

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "GridWorld",
    "SolverResult",
    "action_values",
    "bellman_optimality_operator",
    "check_exercise_1",
    "check_exercise_2",
    "check_exercise_3",
    "exercise_1_mdp",
    "from_gymnasium_toy_text",
    "greedy_policy",
    "policy_evaluation",
    "policy_iteration",
    "policy_model",
    "random_mdp",
    "truncated_policy_iteration",
    "value_iteration",
]

#: Rows of ``P`` may miss 1 by this much (gymnasium's thirds sum to 1 + 2e-16).
PROBABILITY_TOLERANCE = 1e-8
#: Actions whose values are within this of the best one count as tied (the lowest index wins).
TIE_TOLERANCE = 1e-9


# --------------------------------------------------------------------------- validation
def _as_float_array(x: Any, name: str) -> np.ndarray:
    try:
        array = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be an array of real numbers, got {type(x).__name__}") from exc
    return array


def _check_gamma(gamma: Any) -> float:
    if isinstance(gamma, bool) or not isinstance(gamma, Real):
        raise TypeError(f"gamma must be a real number in [0, 1), got {type(gamma).__name__}")
    gamma = float(gamma)
    if not 0.0 <= gamma < 1.0:  # also rejects NaN
        raise ValueError(f"gamma must be in [0, 1) (a discount factor below 1), got {gamma!r}")
    return gamma


def _check_mdp(P: Any, R: Any, gamma: Any) -> tuple[np.ndarray, np.ndarray, float]:
    """Validate ``(P, R, gamma)`` and return them as float64 arrays and a float."""
    P = _as_float_array(P, "P")
    R = _as_float_array(R, "R")
    if P.ndim != 3 or P.shape[0] != P.shape[2] or P.shape[0] == 0 or P.shape[1] == 0:
        raise ValueError(f"P must have shape (states, actions, states) with states, actions >= 1, got shape {P.shape}")
    if R.shape != P.shape[:2]:
        raise ValueError(
            f"R must have shape (states, actions) = {P.shape[:2]} to match P of shape {P.shape}, got shape {R.shape}"
        )
    if not np.all(np.isfinite(P)):
        raise ValueError("P must be finite; it contains NaN or infinite entries")
    if not np.all(np.isfinite(R)):
        raise ValueError("R must be finite; it contains NaN or infinite entries")
    if P.min() < 0:
        s, a, t = np.unravel_index(np.argmin(P), P.shape)
        raise ValueError(f"P must hold probabilities >= 0, got P[{s}, {a}, {t}] = {P[s, a, t]!r}")
    sums = P.sum(axis=2)
    gap = np.abs(sums - 1.0)
    if gap.max() > PROBABILITY_TOLERANCE:
        s, a = np.unravel_index(np.argmax(gap), gap.shape)
        raise ValueError(
            f"every row P[s, a, :] must sum to 1 (tolerance {PROBABILITY_TOLERANCE:g}), "
            f"but P[{s}, {a}, :] sums to {sums[s, a]!r}"
        )
    return P, R, _check_gamma(gamma)


def _check_values(v: Any, n_states: int, name: str = "v") -> np.ndarray:
    v = _as_float_array(v, name)
    if v.shape != (n_states,):
        raise ValueError(f"{name} must have shape (states,) = ({n_states},), got shape {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} must be finite; it contains NaN or infinite entries")
    return v


def _check_policy(policy: Any, n_states: int, n_actions: int) -> np.ndarray:
    """Return the policy as an ``(states, actions)`` matrix of probabilities."""
    array = np.asarray(policy)
    if array.ndim == 1:
        if array.shape != (n_states,):
            raise ValueError(f"policy must have shape (states,) = ({n_states},) of actions, got shape {array.shape}")
        if not np.issubdtype(array.dtype, np.integer):
            raise TypeError(f"a deterministic policy must hold integer actions, got dtype {array.dtype}")
        if array.min() < 0 or array.max() >= n_actions:
            raise ValueError(f"policy actions must lie in [0, {n_actions}), got values in [{array.min()}, {array.max()}]")
        matrix = np.zeros((n_states, n_actions))
        matrix[np.arange(n_states), array] = 1.0
        return matrix
    matrix = _as_float_array(array, "policy")
    if matrix.shape != (n_states, n_actions):
        raise ValueError(
            f"policy must have shape (states,) of actions or (states, actions) = ({n_states}, {n_actions}) "
            f"of probabilities, got shape {matrix.shape}"
        )
    if not np.all(np.isfinite(matrix)) or matrix.min() < 0:
        raise ValueError("policy probabilities must be finite and >= 0")
    sums = matrix.sum(axis=1)
    if np.abs(sums - 1.0).max() > PROBABILITY_TOLERANCE:
        s = int(np.argmax(np.abs(sums - 1.0)))
        raise ValueError(f"every row policy[s, :] must sum to 1, but policy[{s}, :] sums to {sums[s]!r}")
    return matrix


def _check_positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _check_tol(tol: Any) -> float:
    if isinstance(tol, bool) or not isinstance(tol, Real) or not (float(tol) > 0 and math.isfinite(tol)):
        raise ValueError(f"tol must be a positive finite number, got {tol!r}")
    return float(tol)


# --------------------------------------------------------------------------- the Bellman operators
def policy_model(P: np.ndarray, R: np.ndarray, policy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Markov chain a policy induces: ``P_pi`` and ``r_pi``.

    .. math::

        P_\\pi[s, s'] = \\sum_a \\pi(a|s) P[s, a, s'], \\qquad
        r_\\pi[s] = \\sum_a \\pi(a|s) R[s, a].

    Parameters
    ----------
    P : ndarray of shape (states, actions, states)
    R : ndarray of shape (states, actions)
    policy : ndarray of shape (states,) or (states, actions)
        Deterministic actions (integers) or action probabilities per state.

    Returns
    -------
    P_pi : ndarray of shape (states, states)
    r_pi : ndarray of shape (states,)
    """
    P, R, _ = _check_mdp(P, R, 0.0)
    pi = _check_policy(policy, *R.shape)
    return np.einsum("sa,sat->st", pi, P), np.einsum("sa,sa->s", pi, R)


def policy_evaluation(P: np.ndarray, R: np.ndarray, gamma: float, policy: np.ndarray) -> np.ndarray:
    """State values of a policy by solving its Bellman equation directly.

    Solves the linear system ``(I - gamma P_pi) v = r_pi`` (one
    ``numpy.linalg.solve``). ``I - gamma P_pi`` is invertible for every
    ``gamma < 1``: its eigenvalues are at least ``1 - gamma`` away from zero.

    Parameters
    ----------
    P : ndarray of shape (states, actions, states)
        Transition probabilities ``P[s, a, s']``.
    R : ndarray of shape (states, actions)
        Expected immediate rewards.
    gamma : float
        Discount factor in ``[0, 1)``.
    policy : ndarray of shape (states,) or (states, actions)
        Deterministic actions (integers) or action probabilities per state.

    Returns
    -------
    ndarray of shape (states,)
        ``v_pi``.

    Raises
    ------
    ValueError, TypeError
        If the arrays have inconsistent shapes, ``P`` is not a transition
        tensor, ``gamma`` is outside ``[0, 1)`` or the policy is malformed.
    """
    P, R, gamma = _check_mdp(P, R, gamma)
    pi = _check_policy(policy, *R.shape)
    P_pi = np.einsum("sa,sat->st", pi, P)
    r_pi = np.einsum("sa,sa->s", pi, R)
    return np.linalg.solve(np.eye(len(r_pi)) - gamma * P_pi, r_pi)


def action_values(P: np.ndarray, R: np.ndarray, gamma: float, v: np.ndarray) -> np.ndarray:
    """One-step look-ahead: ``q[s, a] = R[s, a] + gamma * sum_s' P[s, a, s'] v[s']``.

    Parameters
    ----------
    P : ndarray of shape (states, actions, states)
    R : ndarray of shape (states, actions)
    gamma : float
        Discount factor in ``[0, 1)``.
    v : ndarray of shape (states,)
        State values to look ahead with.

    Returns
    -------
    ndarray of shape (states, actions)
        With ``v = v_pi`` these are the action values ``q_pi``; with ``v = v*``, ``q*``.
    """
    P, R, gamma = _check_mdp(P, R, gamma)
    v = _check_values(v, P.shape[0])
    return R + gamma * (P @ v)


def bellman_optimality_operator(P: np.ndarray, R: np.ndarray, gamma: float, v: np.ndarray) -> np.ndarray:
    """The Bellman optimality operator ``T``: ``(T v)[s] = max_a q[s, a]``.

    Its unique fixed point is the optimal value ``v*``; it is a
    ``gamma``-contraction in the sup norm, ``||T v - T w|| <= gamma ||v - w||``.

    Parameters
    ----------
    P : ndarray of shape (states, actions, states)
    R : ndarray of shape (states, actions)
    gamma : float
        Discount factor in ``[0, 1)``.
    v : ndarray of shape (states,)

    Returns
    -------
    ndarray of shape (states,)
    """
    return action_values(P, R, gamma, v).max(axis=1)


def _greedy(q: np.ndarray, atol: float) -> np.ndarray:
    # The lowest-index action among those within atol of the best: ties broken the same way by everyone.
    return np.argmax(q >= q.max(axis=1, keepdims=True) - atol, axis=1)


def greedy_policy(
    P: np.ndarray, R: np.ndarray, gamma: float, v: np.ndarray, *, atol: float = TIE_TOLERANCE
) -> np.ndarray:
    """The deterministic policy that is greedy with respect to ``v``.

    ``pi(s) = argmax_a q[s, a]`` with ``q`` from :func:`action_values`. Actions
    whose values lie within ``atol`` of the best are treated as tied and the one
    with the lowest index is taken, so that values equal up to rounding give the
    same policy.

    Parameters
    ----------
    P : ndarray of shape (states, actions, states)
    R : ndarray of shape (states, actions)
    gamma : float
        Discount factor in ``[0, 1)``.
    v : ndarray of shape (states,)
    atol : float, default 1e-9
        Tie tolerance.

    Returns
    -------
    ndarray of int, shape (states,)
    """
    if isinstance(atol, bool) or not isinstance(atol, Real) or not atol >= 0:
        raise ValueError(f"atol must be a number >= 0, got {atol!r}")
    return _greedy(action_values(P, R, gamma, v), float(atol))


# --------------------------------------------------------------------------- the three algorithms
@dataclass
class SolverResult:
    """What :func:`value_iteration`, :func:`policy_iteration` and :func:`truncated_policy_iteration` return.

    Attributes
    ----------
    values : ndarray of shape (states,)
        The final value estimate. For value iteration and truncated policy
        iteration ``||values - v*|| < tol`` is guaranteed when ``converged``;
        for policy iteration these are the exact values of the final policy.
    policy : ndarray of int, shape (states,)
        The greedy policy of ``values`` (:func:`greedy_policy`, lowest index
        among tied actions).
    iterations : int
        Value-iteration sweeps, or policy-improvement steps for the two policy
        iterations.
    sweeps : int
        Bellman backups over all states (applications of ``T`` or ``T_pi``).
        Policy iteration's exact evaluations are linear solves and are not
        counted; its improvement steps are.
    value_history : ndarray of shape (iterations + 1, states)
        The value estimate before the first iteration and after each one. For
        policy iteration, row ``t`` holds ``v_{pi_t}``.
    policy_history : ndarray of int, shape (iterations + 1, states)
        The greedy (or, for policy iteration, the evaluated) policy before the first
        iteration and after each one.
    residuals : ndarray of shape (iterations,)
        ``||v_{t+1} - v_t||_inf`` for each iteration.
    converged : bool
        Whether the stopping rule was met within ``max_iter``.
    method : str
        ``"value iteration"``, ``"policy iteration"`` or ``"truncated policy iteration (k=...)"``.
    """

    values: np.ndarray
    policy: np.ndarray
    iterations: int
    sweeps: int
    value_history: np.ndarray = field(repr=False)
    policy_history: np.ndarray = field(repr=False)
    residuals: np.ndarray = field(repr=False)
    converged: bool
    method: str

    def errors(self, v_star: np.ndarray) -> np.ndarray:
        """Sup-norm distance of every stored value estimate to ``v_star``, shape ``(iterations + 1,)``."""
        v_star = _check_values(v_star, self.values.shape[0], "v_star")
        return np.abs(self.value_history - v_star).max(axis=1)


def _initial_values(v0: Any, n_states: int) -> np.ndarray:
    return np.zeros(n_states) if v0 is None else _check_values(v0, n_states, "v0").copy()


def _result(
    P: np.ndarray,
    R: np.ndarray,
    gamma: float,
    values: list[np.ndarray],
    policies: list[np.ndarray],
    residuals: list[float],
    *,
    sweeps: int,
    converged: bool,
    method: str,
) -> SolverResult:
    """Package a solver's history; the reported policy is greedy with respect to the last values."""
    v = values[-1]
    return SolverResult(
        values=v,
        policy=_greedy(R + gamma * (P @ v), TIE_TOLERANCE),
        iterations=len(residuals),
        sweeps=sweeps,
        value_history=np.array(values),
        policy_history=np.array(policies),
        residuals=np.array(residuals),
        converged=converged,
        method=method,
    )


def value_iteration(
    P: np.ndarray,
    R: np.ndarray,
    gamma: float,
    tol: float = 1e-10,
    max_iter: int = 100_000,
    *,
    v0: np.ndarray | None = None,
) -> SolverResult:
    """Value iteration: ``v_{t+1} = T v_t`` until the error bound falls below ``tol``.

    Because ``T`` is a ``gamma``-contraction,
    ``||v_{t+1} - v*|| <= gamma / (1 - gamma) * ||v_{t+1} - v_t||``; the loop
    stops as soon as this bound is below ``tol``, so the returned values are
    within ``tol`` of ``v*`` (up to floating-point rounding).

    Parameters
    ----------
    P : ndarray of shape (states, actions, states)
        Transition probabilities.
    R : ndarray of shape (states, actions)
        Expected immediate rewards.
    gamma : float
        Discount factor in ``[0, 1)``.
    tol : float, default 1e-10
        Guaranteed sup-norm distance of the result to ``v*``.
    max_iter : int, default 100000
        Most sweeps; the result says ``converged=False`` if they run out.
    v0 : ndarray of shape (states,), optional
        Starting values (default zeros).

    Returns
    -------
    SolverResult
    """
    P, R, gamma = _check_mdp(P, R, gamma)
    tol, max_iter = _check_tol(tol), _check_positive_int(max_iter, "max_iter")
    v = _initial_values(v0, P.shape[0])
    bound = gamma / (1.0 - gamma)
    values, policies, residuals = [v], [_greedy(R + gamma * (P @ v), TIE_TOLERANCE)], []
    converged = False
    for _ in range(max_iter):
        q = R + gamma * (P @ v)
        v_next = q.max(axis=1)
        residuals.append(np.abs(v_next - v).max())
        v = v_next
        values.append(v)
        policies.append(_greedy(q, TIE_TOLERANCE))
        if bound * residuals[-1] < tol:
            converged = True
            break
    return _result(P, R, gamma, values, policies, residuals, sweeps=len(residuals), converged=converged,
                   method="value iteration")


def truncated_policy_iteration(
    P: np.ndarray,
    R: np.ndarray,
    gamma: float,
    k: int,
    tol: float = 1e-10,
    max_iter: int = 100_000,
    *,
    v0: np.ndarray | None = None,
) -> SolverResult:
    """Truncated (modified) policy iteration: greedy improvement, then ``k`` evaluation sweeps.

    Each iteration computes ``q`` from the current values ``v``, takes the
    greedy policy ``pi``, and replaces ``v`` by ``T_pi^k v`` (``k`` sweeps of
    iterative policy evaluation, the first of which equals ``T v``). ``k = 1``
    is value iteration, step for step; ``k -> infinity`` is policy iteration.
    The loop stops when ``gamma / (1 - gamma) * ||T v - v|| < tol`` and returns
    ``T v``, which is then within ``tol`` of ``v*``.

    Parameters
    ----------
    P : ndarray of shape (states, actions, states)
        Transition probabilities.
    R : ndarray of shape (states, actions)
        Expected immediate rewards.
    gamma : float
        Discount factor in ``[0, 1)``.
    k : int
        Evaluation sweeps per iteration (``>= 1``).
    tol : float, default 1e-10
        Guaranteed sup-norm distance of the result to ``v*``.
    max_iter : int, default 100000
        Most iterations (each of ``k`` sweeps).
    v0 : ndarray of shape (states,), optional
        Starting values (default zeros).

    Returns
    -------
    SolverResult
    """
    P, R, gamma = _check_mdp(P, R, gamma)
    k = _check_positive_int(k, "k")
    tol, max_iter = _check_tol(tol), _check_positive_int(max_iter, "max_iter")
    n_states = P.shape[0]
    v = _initial_values(v0, n_states)
    bound = gamma / (1.0 - gamma)
    values, policies, residuals = [v], [_greedy(R + gamma * (P @ v), TIE_TOLERANCE)], []
    sweeps, converged = 0, False
    for _ in range(max_iter):
        q = R + gamma * (P @ v)
        policy = _greedy(q, TIE_TOLERANCE)
        v_next = q.max(axis=1)  # the first evaluation sweep, T_pi v = T v
        sweeps += 1
        if bound * np.abs(v_next - v).max() < tol:
            converged = True
        else:
            P_pi, r_pi = P[np.arange(n_states), policy], R[np.arange(n_states), policy]
            for _ in range(k - 1):
                v_next = r_pi + gamma * (P_pi @ v_next)
            sweeps += k - 1
        residuals.append(np.abs(v_next - v).max())
        v = v_next
        values.append(v)
        policies.append(policy)
        if converged:
            break
    return _result(P, R, gamma, values, policies, residuals, sweeps=sweeps, converged=converged,
                   method=f"truncated policy iteration (k={k})")


def policy_iteration(
    P: np.ndarray,
    R: np.ndarray,
    gamma: float,
    max_iter: int = 1_000,
    *,
    policy0: np.ndarray | None = None,
) -> SolverResult:
    """Policy iteration: exact evaluation (a linear solve), then greedy improvement.

    Starting from ``policy0`` (default: action 0 everywhere), each iteration
    solves ``v = r_pi + gamma P_pi v`` and makes the policy greedy with respect
    to ``v``, keeping the current action wherever it is tied with the best one
    (so that equally good policies cannot cycle). It stops when the policy no
    longer changes; by the policy improvement theorem the values never decrease
    along the way, and a finite MDP has finitely many deterministic policies,
    so it stops after finitely many iterations at an optimal policy.

    Parameters
    ----------
    P : ndarray of shape (states, actions, states)
        Transition probabilities.
    R : ndarray of shape (states, actions)
        Expected immediate rewards.
    gamma : float
        Discount factor in ``[0, 1)``.
    max_iter : int, default 1000
        Most improvement steps.
    policy0 : ndarray of int, shape (states,), optional
        Starting deterministic policy.

    Returns
    -------
    SolverResult
        ``value_history[t]`` is ``v_{pi_t}`` and ``policy_history[t]`` is ``pi_t``.
    """
    P, R, gamma = _check_mdp(P, R, gamma)
    max_iter = _check_positive_int(max_iter, "max_iter")
    n_states, n_actions = R.shape
    if policy0 is None:
        policy = np.zeros(n_states, dtype=np.int64)
    else:
        policy = np.argmax(_check_policy(policy0, n_states, n_actions), axis=1)
        if not np.array_equal(_check_policy(policy, n_states, n_actions), _check_policy(policy0, n_states, n_actions)):
            raise ValueError("policy0 must be deterministic: integer actions or one-hot rows")
    rows = np.arange(n_states)
    identity = np.eye(n_states)

    def evaluate(pi: np.ndarray) -> np.ndarray:
        return np.linalg.solve(identity - gamma * P[rows, pi], R[rows, pi])

    v = evaluate(policy)
    values, policies, residuals = [v], [policy], []
    converged = False
    for _ in range(max_iter):
        q = R + gamma * (P @ v)
        improved = _greedy(q, TIE_TOLERANCE)
        keep = q[rows, policy] >= q.max(axis=1) - TIE_TOLERANCE
        improved = np.where(keep, policy, improved)
        if np.array_equal(improved, policy):
            converged = True
            break
        policy = improved
        v_next = evaluate(policy)
        residuals.append(np.abs(v_next - v).max())
        v = v_next
        values.append(v)
        policies.append(policy)
    return _result(P, R, gamma, values, policies, residuals, sweeps=len(residuals) + int(converged),
                   converged=converged, method="policy iteration")


# --------------------------------------------------------------------------- MDPs to solve
def random_mdp(
    n_states: int, n_actions: int, rng: np.random.Generator | int, *, reward_scale: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """A random finite MDP: Dirichlet(1) transition rows and standard normal rewards.

    Parameters
    ----------
    n_states, n_actions : int
        Sizes.
    rng : numpy.random.Generator or int
        Randomness.
    reward_scale : float, default 1.0
        Standard deviation of the rewards.

    Returns
    -------
    P : ndarray of shape (n_states, n_actions, n_states)
    R : ndarray of shape (n_states, n_actions)
    """
    n_states = _check_positive_int(n_states, "n_states")
    n_actions = _check_positive_int(n_actions, "n_actions")
    rng = as_generator(rng)
    P = rng.dirichlet(np.ones(n_states), size=(n_states, n_actions))
    R = reward_scale * rng.standard_normal((n_states, n_actions))
    return P, R


def from_gymnasium_toy_text(env: Any) -> tuple[np.ndarray, np.ndarray]:
    """``P`` and ``R`` of a gymnasium toy-text environment, read from its transition table.

    Toy-text environments (``FrozenLake-v1``, ``CliffWalking-v1``, ``Taxi``)
    store their dynamics as ``env.unwrapped.P[s][a] = [(prob, next_state,
    reward, terminated), ...]``. ``P[s, a, s']`` sums the probabilities of all
    entries leading to ``s'`` and ``R[s, a]`` is the expected immediate reward
    ``sum prob * reward``. Every state entered with ``terminated=True`` (a hole
    or the goal of FrozenLake) is made *absorbing with zero reward*: all its
    actions lead back to it and pay nothing, so that an infinite-horizon
    discounted value equals the episodic return. Time limits (truncation) are
    not part of the table and play no role here.

    Parameters
    ----------
    env : gymnasium.Env
        A toy-text environment, wrapped or not (for example
        ``gymnasium.make("FrozenLake-v1")``).

    Returns
    -------
    P : ndarray of shape (states, actions, states)
    R : ndarray of shape (states, actions)

    Raises
    ------
    TypeError
        If the environment has no transition table or non-discrete spaces.
    """
    base = getattr(env, "unwrapped", env)
    table = getattr(base, "P", None)
    n_states = getattr(getattr(base, "observation_space", None), "n", None)
    n_actions = getattr(getattr(base, "action_space", None), "n", None)
    if not isinstance(table, dict) or n_states is None or n_actions is None:
        raise TypeError(
            "env must be a gymnasium toy-text environment with discrete spaces and a transition table "
            f"env.unwrapped.P, got {type(base).__name__}"
        )
    n_states, n_actions = int(n_states), int(n_actions)
    P = np.zeros((n_states, n_actions, n_states))
    R = np.zeros((n_states, n_actions))
    terminal = np.zeros(n_states, dtype=bool)
    for s in range(n_states):
        for a in range(n_actions):
            for prob, next_state, reward, terminated in table[s][a]:
                P[s, a, int(next_state)] += prob
                R[s, a] += prob * reward
                terminal[int(next_state)] |= bool(terminated)
    P[terminal] = 0.0
    P[terminal, :, np.flatnonzero(terminal)] = 1.0  # broadcasts one self-loop per terminal state
    R[terminal] = 0.0
    _check_mdp(P, R, 0.0)
    return P, R


@dataclass(frozen=True)
class GridWorld:
    """A grid of cells with forbidden cells and a target, as in the chapter.

    The agent moves ``up``, ``right``, ``down``, ``left`` or ``stay`` (actions
    0-4), deterministically. The reward depends on where the move leads:
    ``r_boundary`` for bumping into the outer wall (the agent stays put),
    ``r_forbidden`` for entering (or staying in) a forbidden cell,
    ``r_target`` for entering (or staying in) the target, ``r_other`` otherwise.
    Forbidden cells can be entered, at a price; the target is not absorbing, so
    the best long-run behaviour is to reach it and stay there.

    States are numbered row by row: ``state = row * n_cols + col``, row 0 on top.

    Parameters
    ----------
    n_rows, n_cols : int, default 5
        Grid size.
    forbidden : tuple of (row, col), default six cells of the 5 x 5 grid
        Forbidden cells.
    target : (row, col), default (3, 2)
        The target cell.
    r_boundary, r_forbidden, r_target, r_other : float
        Rewards, default -1, -1, 1 and 0.
    """

    n_rows: int = 5
    n_cols: int = 5
    forbidden: tuple[tuple[int, int], ...] = ((1, 1), (1, 2), (2, 2), (3, 1), (3, 3), (4, 1))
    target: tuple[int, int] = (3, 2)
    r_boundary: float = -1.0
    r_forbidden: float = -1.0
    r_target: float = 1.0
    r_other: float = 0.0

    ACTIONS = ("up", "right", "down", "left", "stay")
    MOVES = ((-1, 0), (0, 1), (1, 0), (0, -1), (0, 0))
    ARROWS = ("↑", "→", "↓", "←", "o")

    def __post_init__(self) -> None:
        for name in ("n_rows", "n_cols"):
            _check_positive_int(getattr(self, name), name)
        object.__setattr__(self, "forbidden", tuple(tuple(int(x) for x in c) for c in self.forbidden))
        object.__setattr__(self, "target", tuple(int(x) for x in self.target))
        for cell in (*self.forbidden, self.target):
            if len(cell) != 2 or not (0 <= cell[0] < self.n_rows and 0 <= cell[1] < self.n_cols):
                raise ValueError(f"cells must be (row, col) inside the {self.n_rows} x {self.n_cols} grid, got {cell}")
        if self.target in self.forbidden:
            raise ValueError(f"target {self.target} must not be a forbidden cell")
        for name in ("r_boundary", "r_forbidden", "r_target", "r_other"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")

    @property
    def n_states(self) -> int:
        """Number of cells."""
        return self.n_rows * self.n_cols

    @property
    def n_actions(self) -> int:
        """Five: up, right, down, left, stay."""
        return len(self.ACTIONS)

    def state(self, row: int, col: int) -> int:
        """The state index of cell ``(row, col)``."""
        return row * self.n_cols + col

    def cell(self, state: int) -> tuple[int, int]:
        """The ``(row, col)`` of a state index."""
        return divmod(int(state), self.n_cols)

    @cached_property
    def _model(self) -> tuple[np.ndarray, np.ndarray]:
        P = np.zeros((self.n_states, self.n_actions, self.n_states))
        R = np.zeros((self.n_states, self.n_actions))
        forbidden = set(self.forbidden)
        for s in range(self.n_states):
            row, col = self.cell(s)
            for a, (d_row, d_col) in enumerate(self.MOVES):
                r, c = row + d_row, col + d_col
                if not (0 <= r < self.n_rows and 0 <= c < self.n_cols):
                    r, c, reward = row, col, self.r_boundary
                elif (r, c) in forbidden:
                    reward = self.r_forbidden
                elif (r, c) == self.target:
                    reward = self.r_target
                else:
                    reward = self.r_other
                P[s, a, self.state(r, c)] = 1.0
                R[s, a] = reward
        P.setflags(write=False)
        R.setflags(write=False)
        return P, R

    @property
    def P(self) -> np.ndarray:
        """Transition probabilities, shape ``(states, 5, states)`` (read-only)."""
        return self._model[0]

    @property
    def R(self) -> np.ndarray:
        """Immediate rewards, shape ``(states, 5)`` (read-only)."""
        return self._model[1]

    def render_text(self, values: np.ndarray | None = None, policy: np.ndarray | None = None) -> str:
        """The grid as text: one arrow per cell (``o`` = stay) and/or its value.

        Forbidden cells are marked ``#``, the target ``T``; with neither values nor
        policy, the bare map is drawn (``.`` for ordinary cells).
        """
        if values is not None:
            values = _check_values(values, self.n_states, "values")
        if policy is not None:
            policy = np.argmax(_check_policy(policy, self.n_states, self.n_actions), axis=1)
        lines = []
        for row in range(self.n_rows):
            cells = []
            for col in range(self.n_cols):
                s = self.state(row, col)
                mark = "#" if (row, col) in self.forbidden else "T" if (row, col) == self.target else " "
                text = ""
                if policy is not None:
                    text += self.ARROWS[policy[s]]
                if values is not None:
                    text += f"{values[s]:6.2f}"
                if not text:
                    text = "." if mark == " " else ""
                cells.append(f"{mark}{text}")
            lines.append(" ".join(cells))
        return "\n".join(lines)

    def plot(
        self,
        ax: Axes | None = None,
        values: np.ndarray | None = None,
        policy: np.ndarray | None = None,
        *,
        title: str | None = None,
        annotate: bool = True,
    ) -> Axes:
        """Draw the grid: values as colours (and numbers), the policy as arrows.

        Forbidden cells are hatched, the target is outlined. ``stay`` is a dot.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Where to draw (default: the current axes).
        values : ndarray of shape (states,), optional
        policy : ndarray of shape (states,) or (states, 5), optional
            Deterministic actions or action probabilities (the most likely action is drawn).
        title : str, optional
        annotate : bool, default True
            Write the values into the cells.

        Returns
        -------
        matplotlib.axes.Axes
        """
        import matplotlib.pyplot as plt
        from matplotlib.patches import Rectangle
        from matplotlib.patheffects import withStroke

        ax = plt.gca() if ax is None else ax
        outline = [withStroke(linewidth=2.2, foreground="black")]  # white marks stay visible on any colour
        if values is not None:
            values = _check_values(values, self.n_states, "values")
            ax.imshow(values.reshape(self.n_rows, self.n_cols), cmap="viridis", origin="upper")
        else:
            ax.imshow(np.zeros((self.n_rows, self.n_cols)), cmap="Greys", vmin=0, vmax=1, origin="upper")
        for row, col in self.forbidden:
            ax.add_patch(Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False, hatch="xx", edgecolor="#e07b39", lw=0))
        row, col = self.target
        ax.add_patch(Rectangle((col - 0.46, row - 0.46), 0.92, 0.92, fill=False, edgecolor="#2bb5e8", lw=2.5))
        if policy is not None:
            actions = np.argmax(_check_policy(policy, self.n_states, self.n_actions), axis=1)
            for s, a in enumerate(actions):
                row, col = self.cell(s)
                d_row, d_col = self.MOVES[a]
                if a == 4:
                    ax.plot(col, row, "o", color="white", markersize=5, markeredgecolor="black")
                else:
                    arrow = ax.annotate(
                        "", xy=(col + 0.28 * d_col, row + 0.28 * d_row), xytext=(col - 0.2 * d_col, row - 0.2 * d_row),
                        arrowprops=dict(arrowstyle="-|>", color="white", lw=1.5, mutation_scale=11),
                    )
                    arrow.arrow_patch.set_path_effects(outline)
        if values is not None and annotate:
            for s in range(self.n_states):
                row, col = self.cell(s)
                ax.text(col - 0.46, row - 0.44, f"{values[s]:.1f}", ha="left", va="top", fontsize=6.5,
                        color="white", path_effects=[withStroke(linewidth=1.5, foreground="black")])
        ax.set_xticks(range(self.n_cols))
        ax.set_yticks(range(self.n_rows))
        ax.set_xlabel("column")
        ax.set_ylabel("row")
        ax.grid(False)
        if title is not None:
            ax.set_title(title)
        return ax


# --------------------------------------------------------------------------- exercises

def exercise_1_mdp() -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """The two-state MDP of exercise 1: ``(P, R, gamma, policy)``.

    Under the policy, state 0 pays 0 and moves to state 1; state 1 pays 1 and
    then moves to state 0 or stays, each with probability 1/2. ``gamma = 0.9``.
    A second action in both states (stay put, reward 0) is not used by the policy.
    """
    P = np.zeros((2, 2, 2))
    P[0, 0, 1] = 1.0
    P[1, 0] = [0.5, 0.5]
    P[0, 1, 0] = P[1, 1, 1] = 1.0
    R = np.array([[0.0, 0.0], [1.0, 0.0]])
    return P, R, 0.9, np.array([0, 0])


def check_exercise_1(answer: Any) -> bool:
    """Exercise 1: the state values ``(v(0), v(1))`` of the policy of :func:`exercise_1_mdp`."""
    P, R, gamma, policy = exercise_1_mdp()
    expected = policy_evaluation(P, R, gamma, policy)
    try:
        ok = bool(np.allclose(np.asarray(answer, dtype=float).reshape(2), expected, atol=1e-3))
    except (TypeError, ValueError):
        ok = False
    return _report(
        ok,
        "Correct: v(1) = 1 + 0.45 v(0) + 0.45 v(1) and v(0) = 0.9 v(1) give v(1) = 1/0.145.",
        "Not yet: write v(0) = 0 + 0.9 v(1) and v(1) = 1 + 0.9 (v(0) + v(1)) / 2, then solve the two equations.",
    )


def check_exercise_2(answer: Any) -> bool:
    """Exercise 2: the fewest value-iteration sweeps that guarantee an error of at most 1e-6.

    Rewards lie in ``[-1, 1]``, ``gamma = 0.9`` and value iteration starts from
    ``v_0 = 0``; only the contraction bound may be used.
    """
    gamma, r_max, eps = 0.9, 1.0, 1e-6
    # ||v_0 - v*|| <= r_max / (1 - gamma); the error after k sweeps is at most gamma^k times that.
    expected = math.ceil(math.log(eps * (1 - gamma) / r_max) / math.log(gamma))
    ok = isinstance(answer, (int, np.integer)) and not isinstance(answer, bool) and int(answer) == expected
    return _report(
        ok,
        f"Correct: gamma^k * 1 / (1 - gamma) <= 1e-6 first holds at k = {expected}.",
        "Not yet: bound ||v_0 - v*|| by r_max / (1 - gamma) = 10, then find the smallest integer k with 0.9^k * 10 <= 1e-6.",
    )


def _switch_gamma(grid: GridWorld, state: int, tol: float = 1e-6) -> float:
    """Smallest gamma at which the optimal action in ``state`` enters a forbidden cell (bisection)."""

    def crosses(gamma: float) -> bool:
        result = policy_iteration(grid.P, grid.R, gamma)
        return bool(grid.cell(np.argmax(grid.P[state, result.policy[state]])) in grid.forbidden)

    low, high = 0.0, 0.99
    if not crosses(high):
        raise ValueError("the optimal action in this state never enters a forbidden cell for gamma <= 0.99")
    while high - low > tol:
        middle = 0.5 * (low + high)
        if crosses(middle):
            high = middle
        else:
            low = middle
    return high


def check_exercise_3(answer: Any) -> bool:
    """Exercise 3: from which discount factor does the optimal move in cell (0, 2) cut through a forbidden cell?

    Default :class:`GridWorld`; answer within 0.005.
    """
    grid = GridWorld()
    expected = _switch_gamma(grid, grid.state(0, 2))
    try:
        ok = abs(float(answer) - expected) <= 5e-3
    except (TypeError, ValueError):
        ok = False
    return _report(
        ok,
        f"Correct: the switch happens at gamma = {expected:.3f}.",
        "Not yet: solve the grid world for a range of gamma (policy_iteration) and watch the action in cell (0, 2); "
        "then narrow the interval by bisection.",
    )
