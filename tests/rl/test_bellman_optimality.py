"""Tests of mlnotes.rl.bellman_optimality (chapter book/rl/bellman_optimality.ipynb).

Golden references, written here independently of the module: the direct solve of
the Bellman equation with ``numpy.linalg.solve`` and, on tiny MDPs, brute-force
enumeration of every deterministic policy.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlnotes.rl.bellman_optimality import (
    GridWorld,
    SolverResult,
    action_values,
    bellman_optimality_operator,
    check_exercise_1,
    check_exercise_2,
    check_exercise_3,
    from_gymnasium_toy_text,
    greedy_policy,
    policy_evaluation,
    policy_iteration,
    policy_model,
    random_mdp,
    truncated_policy_iteration,
    value_iteration,
)


# --------------------------------------------------------------------------- independent references
def solve_bellman(P, R, gamma, policy):
    """v_pi of a deterministic policy, by a linear solve written from the definition."""
    n = len(policy)
    P_pi = np.array([P[s, policy[s]] for s in range(n)])
    r_pi = np.array([R[s, policy[s]] for s in range(n)])
    return np.linalg.solve(np.eye(n) - gamma * P_pi, r_pi)


def brute_force(P, R, gamma):
    """Values of every deterministic policy: shape (actions ** states, states)."""
    n_states, n_actions = R.shape
    policies = list(itertools.product(range(n_actions), repeat=n_states))
    return np.array(policies), np.array([solve_bellman(P, R, gamma, np.array(p)) for p in policies])


def frozen_lake(**kwargs):
    env = gym.make("FrozenLake-v1", **kwargs)
    try:
        return from_gymnasium_toy_text(env)
    finally:
        env.close()


def all_solvers(P, R, gamma):
    yield value_iteration(P, R, gamma)
    yield policy_iteration(P, R, gamma)
    for k in (1, 3, 20, 500):
        yield truncated_policy_iteration(P, R, gamma, k)


MDPS = {
    "grid world, gamma 0.9": (GridWorld().P, GridWorld().R, 0.9),
    "grid world, gamma 0.5": (GridWorld().P, GridWorld().R, 0.5),
    "FrozenLake 4x4 slippery, gamma 0.99": (*frozen_lake(), 0.99),
    "FrozenLake 8x8 slippery, gamma 0.95": (*frozen_lake(map_name="8x8"), 0.95),
}


# --------------------------------------------------------------------------- golden tests
@pytest.mark.parametrize("name", list(MDPS))
def test_all_algorithms_reach_the_direct_solution(name):
    P, R, gamma = MDPS[name]
    results = list(all_solvers(P, R, gamma))
    reference_policy = results[0].policy
    v_star = solve_bellman(P, R, gamma, reference_policy)
    # v* satisfies the Bellman optimality equation: no action improves on it anywhere.
    q_star = R + gamma * np.einsum("sat,t->sa", P, v_star)
    np.testing.assert_allclose(q_star.max(axis=1), v_star, atol=1e-10)
    for result in results:
        assert result.converged, result.method
        assert np.abs(result.values - v_star).max() < 1e-8, result.method
        np.testing.assert_array_equal(result.policy, reference_policy, err_msg=result.method)
        assert np.abs(solve_bellman(P, R, gamma, result.policy) - v_star).max() < 1e-8


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    n_states=st.integers(1, 4),
    n_actions=st.integers(1, 3),
    gamma=st.floats(0.0, 0.95),
)
def test_optimum_equals_the_best_of_all_deterministic_policies(seed, n_states, n_actions, gamma):
    P, R = random_mdp(n_states, n_actions, rng=seed)
    policies, values = brute_force(P, R, gamma)
    v_star = values.max(axis=0)
    # Some single policy attains the maximum in every state at once (existence of an optimal policy).
    assert np.any(np.all(values >= v_star - 1e-10, axis=1))
    for result in (value_iteration(P, R, gamma), policy_iteration(P, R, gamma), truncated_policy_iteration(P, R, gamma, 4)):
        np.testing.assert_allclose(result.values, v_star, atol=1e-8)
        np.testing.assert_allclose(solve_bellman(P, R, gamma, result.policy), v_star, atol=1e-8)


def test_policy_evaluation_matches_the_linear_solve_and_stochastic_policies():
    P, R = random_mdp(6, 3, rng=0)
    rng = np.random.default_rng(1)
    deterministic = rng.integers(0, 3, size=6)
    np.testing.assert_allclose(policy_evaluation(P, R, 0.8, deterministic), solve_bellman(P, R, 0.8, deterministic))
    stochastic = rng.dirichlet(np.ones(3), size=6)
    v = policy_evaluation(P, R, 0.8, stochastic)
    P_pi, r_pi = policy_model(P, R, stochastic)
    np.testing.assert_allclose(P_pi, np.einsum("sa,sat->st", stochastic, P))
    # v solves v = r_pi + gamma P_pi v, and equals the limit of the truncated series sum_t (gamma P_pi)^t r_pi.
    np.testing.assert_allclose(v, r_pi + 0.8 * P_pi @ v, atol=1e-12)
    series, term = np.zeros(6), r_pi.copy()
    for _ in range(400):
        series += term
        term = 0.8 * P_pi @ term
    np.testing.assert_allclose(v, series, atol=1e-10)
    # A one-hot stochastic policy is the deterministic one.
    np.testing.assert_allclose(policy_evaluation(P, R, 0.8, np.eye(3)[deterministic]), solve_bellman(P, R, 0.8, deterministic))


def test_action_values_and_operator():
    P, R = random_mdp(5, 2, rng=3)
    v = np.arange(5.0)
    q = action_values(P, R, 0.7, v)
    expected = np.array([[R[s, a] + 0.7 * sum(P[s, a, t] * v[t] for t in range(5)) for a in range(2)] for s in range(5)])
    np.testing.assert_allclose(q, expected)
    np.testing.assert_allclose(bellman_optimality_operator(P, R, 0.7, v), expected.max(axis=1))
    np.testing.assert_array_equal(greedy_policy(P, R, 0.7, v), expected.argmax(axis=1))


# --------------------------------------------------------------------------- properties
@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16), gamma=st.floats(0.0, 0.99))
def test_bellman_optimality_operator_is_a_gamma_contraction(seed, gamma):
    rng = np.random.default_rng(seed)
    P, R = random_mdp(5, 3, rng=rng)
    v, w = 10 * rng.standard_normal(5), 10 * rng.standard_normal(5)
    gap = np.abs(bellman_optimality_operator(P, R, gamma, v) - bellman_optimality_operator(P, R, gamma, w)).max()
    assert gap <= gamma * np.abs(v - w).max() + 1e-12
    # Monotone: v <= w implies T v <= T w.
    low = np.minimum(v, w)
    assert np.all(bellman_optimality_operator(P, R, gamma, low) <= bellman_optimality_operator(P, R, gamma, w) + 1e-12)


@pytest.mark.parametrize("name", list(MDPS))
def test_value_iteration_error_shrinks_by_gamma_every_sweep(name):
    P, R, gamma = MDPS[name]
    v_star = policy_iteration(P, R, gamma).values
    result = value_iteration(P, R, gamma)
    errors = result.errors(v_star)
    # 1e-12: floating-point rounding of v* and of the iterates.
    assert np.all(errors[1:] <= gamma * errors[:-1] + 1e-12)
    assert np.all(errors <= gamma ** np.arange(len(errors)) * errors[0] + 1e-12)
    # The stopping rule's guarantee.
    assert errors[-1] < 1e-10 + 1e-12
    assert result.iterations == len(result.residuals) == result.sweeps
    assert result.value_history.shape == (result.iterations + 1, P.shape[0])


@pytest.mark.parametrize("name", list(MDPS))
def test_policy_iteration_improves_monotonically_in_few_steps(name):
    P, R, gamma = MDPS[name]
    result = policy_iteration(P, R, gamma)
    assert result.converged and 1 <= result.iterations <= 10
    assert np.all(np.diff(result.value_history, axis=0) >= -1e-10)
    # Every step strictly improves some state (no step is wasted).
    assert np.all(np.diff(result.value_history, axis=0).max(axis=1) > 1e-12)
    for policy, values in zip(result.policy_history, result.value_history):
        np.testing.assert_allclose(values, solve_bellman(P, R, gamma, policy), atol=1e-10)


def test_truncated_policy_iteration_interpolates_between_vi_and_pi():
    P, R, gamma = MDPS["FrozenLake 4x4 slippery, gamma 0.99"]
    vi = value_iteration(P, R, gamma)
    tpi1 = truncated_policy_iteration(P, R, gamma, 1)
    # k = 1 is value iteration, bit for bit.
    np.testing.assert_array_equal(tpi1.value_history, vi.value_history)
    assert tpi1.iterations == vi.iterations
    pi = policy_iteration(P, R, gamma)
    iterations = [truncated_policy_iteration(P, R, gamma, k).iterations for k in (1, 2, 5, 20, 100, 1000)]
    assert all(b <= a for a, b in zip(iterations, iterations[1:]))
    assert iterations[-1] <= pi.iterations + 2
    # Values rise monotonically from v0 = 0 here because T 0 >= 0 (rewards are >= 0).
    result = truncated_policy_iteration(P, R, gamma, 5)
    assert np.all(np.diff(result.value_history, axis=0) >= -1e-12)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16), shift=st.floats(-5, 5), scale=st.floats(0.1, 10))
def test_reward_shift_and_positive_scaling_keep_the_optimal_policy(seed, shift, scale):
    P, R = random_mdp(4, 3, rng=seed)
    gamma = 0.9
    base = policy_iteration(P, R, gamma)
    # Compare optimal policies through their values (ties aside, the argmax is the same).
    for R_new, v_expected in ((R + shift, base.values + shift / (1 - gamma)), (scale * R, scale * base.values)):
        result = policy_iteration(P, R_new, gamma)
        np.testing.assert_allclose(result.values, v_expected, atol=1e-8)
        np.testing.assert_allclose(solve_bellman(P, R, gamma, result.policy), base.values, atol=1e-8)


# --------------------------------------------------------------------------- the grid world
def test_grid_world_dynamics_and_rewards():
    grid = GridWorld()
    P, R = grid.P, grid.R
    assert P.shape == (25, 5, 25) and R.shape == (25, 5)
    np.testing.assert_allclose(P.sum(axis=2), 1.0)
    assert set(np.unique(P)) == {0.0, 1.0}  # deterministic
    up, right, down, left, stay = range(5)
    corner = grid.state(0, 0)
    assert R[corner, up] == grid.r_boundary and P[corner, up, corner] == 1
    assert R[corner, left] == grid.r_boundary
    assert R[grid.state(0, 1), down] == grid.r_forbidden and P[grid.state(0, 1), down, grid.state(1, 1)] == 1
    assert R[grid.state(3, 2), stay] == grid.r_target
    assert R[grid.state(4, 2), up] == grid.r_target
    assert R[grid.state(1, 1), stay] == grid.r_forbidden
    assert R[grid.state(0, 3), right] == grid.r_other
    with pytest.raises(ValueError):
        P[0, 0, 0] = 0.5  # read-only


def test_grid_world_optimal_policy_depends_on_gamma_and_penalty():
    grid = GridWorld()

    def entered_forbidden(world, gamma):
        policy = policy_iteration(world.P, world.R, gamma).policy
        cells = [world.cell(int(np.argmax(world.P[s, policy[s]]))) for s in range(world.n_states)]
        return [world.cell(s) for s in range(world.n_states) if cells[s] in world.forbidden and world.cell(s) not in world.forbidden]

    assert len(entered_forbidden(grid, 0.9)) >= 3  # far-sighted: worth crossing a forbidden cell
    assert entered_forbidden(grid, 0.5) == []  # short-sighted: not worth it
    assert entered_forbidden(replace(grid, r_forbidden=-10.0), 0.9) == []
    # With gamma = 0.9 every state ends up at the target and stays there.
    values = policy_iteration(grid.P, grid.R, 0.9).values
    assert values[grid.state(*grid.target)] == pytest.approx(1 / (1 - 0.9))


def test_grid_world_rendering():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = GridWorld()
    result = value_iteration(grid.P, grid.R, 0.9)
    text = grid.render_text(result.values, result.policy)
    assert len(text.splitlines()) == 5 and "T" in text and "#" in text and "10.00" in text
    assert "o" in grid.render_text(policy=result.policy)  # the target's action is "stay"
    assert grid.render_text().count("#") == len(grid.forbidden)
    fig, ax = plt.subplots()
    assert grid.plot(ax, result.values, result.policy, title="v*") is ax
    plt.close(fig)


# --------------------------------------------------------------------------- gymnasium
def test_frozen_lake_conversion():
    P, R = frozen_lake()
    assert P.shape == (16, 4, 16) and R.shape == (16, 4)
    np.testing.assert_allclose(P.sum(axis=2), 1.0, atol=1e-12)
    # Slippery: the intended direction and the two perpendicular ones, 1/3 each.
    left, down, right, up = range(4)
    np.testing.assert_allclose(P[0, right], np.bincount([4, 1, 0], minlength=16) / 3)
    # The reward arrives on the transition into the goal (state 15), with probability 1/3 from 14 moving right.
    assert R[14, right] == pytest.approx(1 / 3)
    assert np.count_nonzero(R) == 3  # 14: down, right, up each reach the goal with probability 1/3
    for terminal in (5, 7, 11, 12, 15):  # holes and goal: absorbing, no reward
        np.testing.assert_array_equal(P[terminal, :, terminal], 1.0)
        np.testing.assert_array_equal(R[terminal], 0.0)
    # Deterministic lake: the shortest path has 6 moves, so v*(start) = gamma^5.
    P_det, R_det = frozen_lake(is_slippery=False)
    assert value_iteration(P_det, R_det, 0.9).values[0] == pytest.approx(0.9**5, abs=1e-9)


def test_frozen_lake_values_match_rollouts_of_the_environment():
    """The converted model predicts what the real environment does (seeded Monte Carlo)."""
    gamma = 0.9
    P, R = frozen_lake()
    result = policy_iteration(P, R, gamma)
    env = gym.make("FrozenLake-v1", max_episode_steps=200)
    returns = []
    for episode in range(600):
        state, _ = env.reset(seed=episode)
        discount, total, done = 1.0, 0.0, False
        while not done:
            state, reward, terminated, truncated, _ = env.step(int(result.policy[state]))
            total += discount * reward
            discount *= gamma
            done = terminated or truncated
        returns.append(total)
    env.close()
    standard_error = np.std(returns) / np.sqrt(len(returns))
    assert abs(np.mean(returns) - result.values[0]) < 4 * standard_error


def test_converter_works_on_cliff_walking():
    env = gym.make("CliffWalking-v1")
    P, R = from_gymnasium_toy_text(env)
    env.close()
    assert P.shape == (48, 4, 48)
    v = value_iteration(P, R, 0.99).values
    # Optimal path hugs the cliff: 13 steps of reward -1 from the start (state 36).
    assert v[36] == pytest.approx(-sum(0.99**t for t in range(13)), abs=1e-8)


# --------------------------------------------------------------------------- bad input
def test_bad_mdp_input_raises_clear_errors():
    P, R = random_mdp(3, 2, rng=0)
    with pytest.raises(ValueError, match=r"R must have shape \(states, actions\)"):
        value_iteration(P, R[:, :1], 0.9)
    with pytest.raises(ValueError, match=r"P must have shape \(states, actions, states\)"):
        policy_iteration(P[:, :, :2], R, 0.9)
    bad = P.copy()
    bad[1, 0] *= 0.5
    with pytest.raises(ValueError, match=r"P\[1, 0, :\] sums to"):
        value_iteration(bad, R, 0.9)
    bad = P.copy()
    bad[0, 1, 0] -= 2
    bad[0, 1, 1] += 2
    with pytest.raises(ValueError, match="probabilities >= 0"):
        truncated_policy_iteration(bad, R, 0.9, 2)
    bad = P.copy()
    bad[2, 1, 0] = np.nan
    with pytest.raises(ValueError, match="P must be finite"):
        policy_evaluation(bad, R, 0.9, [0, 1, 0])
    with pytest.raises(ValueError, match="R must be finite"):
        value_iteration(P, np.full((3, 2), np.nan), 0.9)
    for gamma in (1.0, -0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"gamma must be in \[0, 1\)"):
            value_iteration(P, R, gamma)
    with pytest.raises(TypeError, match="gamma must be a real number"):
        policy_iteration(P, R, "0.9")
    with pytest.raises(TypeError, match="P must be an array of real numbers"):
        value_iteration("P", R, 0.9)


def test_bad_policy_values_and_arguments():
    P, R = random_mdp(3, 2, rng=0)
    with pytest.raises(ValueError, match="policy actions must lie in"):
        policy_evaluation(P, R, 0.9, np.array([0, 2, 1]))
    with pytest.raises(TypeError, match="integer actions"):
        policy_evaluation(P, R, 0.9, np.array([0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="policy must have shape"):
        policy_evaluation(P, R, 0.9, np.ones((3, 3)) / 3)
    with pytest.raises(ValueError, match=r"policy\[1, :\] sums to"):
        policy_evaluation(P, R, 0.9, np.array([[0.5, 0.5], [0.5, 0.4], [1.0, 0.0]]))
    with pytest.raises(ValueError, match=r"v must have shape \(states,\)"):
        bellman_optimality_operator(P, R, 0.9, np.zeros(4))
    with pytest.raises(ValueError, match="k must be a positive int"):
        truncated_policy_iteration(P, R, 0.9, 0)
    with pytest.raises(ValueError, match="tol must be a positive"):
        value_iteration(P, R, 0.9, tol=0.0)
    with pytest.raises(ValueError, match="max_iter must be a positive int"):
        value_iteration(P, R, 0.9, max_iter=0)
    with pytest.raises(ValueError, match="policy0 must be deterministic"):
        policy_iteration(P, R, 0.9, policy0=np.full((3, 2), 0.5))
    with pytest.raises(ValueError, match="v0 must have shape"):
        value_iteration(P, R, 0.9, v0=np.zeros(2))


def test_max_iter_reports_no_convergence():
    P, R, gamma = MDPS["grid world, gamma 0.9"]
    result = value_iteration(P, R, gamma, max_iter=5)
    assert isinstance(result, SolverResult) and not result.converged and result.iterations == 5


def test_bad_environment_and_grid():
    env = gym.make("CartPole-v1")
    with pytest.raises(TypeError, match="toy-text environment"):
        from_gymnasium_toy_text(env)
    env.close()
    with pytest.raises(ValueError, match="inside the 5 x 5 grid"):
        GridWorld(target=(5, 0))
    with pytest.raises(ValueError, match="must not be a forbidden cell"):
        GridWorld(target=(1, 1))
    with pytest.raises(ValueError, match="r_forbidden must be a finite number"):
        GridWorld(r_forbidden=float("nan"))


# --------------------------------------------------------------------------- exercises
def test_exercise_checkers(capsys):
    assert check_exercise_1([0.9 / 0.145, 1 / 0.145])
    assert not check_exercise_1([9.0, 10.0])
    assert check_exercise_2(153) and not check_exercise_2(152) and not check_exercise_2(153.0)
    assert not check_exercise_3(0.5)
    grid = GridWorld()
    s = grid.state(0, 2)
    # The switch point: just below it the action avoids the forbidden cell (1, 2), just above it enters it.
    assert check_exercise_3(0.826)
    below = policy_iteration(grid.P, grid.R, 0.82).policy[s]
    above = policy_iteration(grid.P, grid.R, 0.83).policy[s]
    assert grid.cell(int(np.argmax(grid.P[s, below]))) not in grid.forbidden
    assert grid.cell(int(np.argmax(grid.P[s, above]))) in grid.forbidden
    assert "Correct" in capsys.readouterr().out
