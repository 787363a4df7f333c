from __future__ import annotations

import numpy as np
import pytest

from ceiling.reuse.gridworld import NUM_ACTIONS, generate_layout, greedy_policy, transition_tables
from ceiling.reuse.objectives import weights_of
from ceiling.reuse.planning import value_iteration
from ceiling.reuse.successor import canonical_states, embedding, successor_features


def monte_carlo_features(tables, policy: np.ndarray, gamma: float, state: int, action: int,
                         num_rollouts: int, length: int, seed: int) -> np.ndarray:
    """Discounted feature sums of episodes that take `action` in `state`, then follow `policy`
    (no time limit: the closed form is the infinite-horizon quantity)."""
    rng = np.random.default_rng(seed)
    s = np.full(num_rollouts, state)
    a = np.full(num_rollouts, action)
    alive = np.ones(num_rollouts, dtype=bool)
    total = np.zeros((num_rollouts, tables.reward.shape[-1]))
    cumulative = np.cumsum(policy, axis=1)
    for t in range(length):
        total += np.where(alive[:, None], gamma**t * tables.reward[s, a], 0.0)
        alive &= ~tables.terminal[s, a]
        s = tables.next_state[s, a]
        a = (rng.random(num_rollouts)[:, None] > cumulative[s]).sum(axis=1).clip(0, 3)
    return total.mean(axis=0)


@pytest.fixture(scope="module")
def world():
    layout = generate_layout(8, 0)
    return layout, transition_tables(layout)


@pytest.mark.parametrize("gamma", [0.9, 0.99])
def test_closed_form_matches_monte_carlo_for_a_deterministic_policy(world, gamma) -> None:
    layout, tables = world
    q = value_iteration(tables, weights_of("path+gold+lever"), gamma)
    policy = np.eye(NUM_ACTIONS)[q.argmax(axis=1)]  # deterministic: one rollout is exact
    features = successor_features(tables, policy, gamma)
    for action in range(NUM_ACTIONS):
        estimate = monte_carlo_features(tables, policy, gamma, layout.start_state, action, 1,
                                        3000, 0)
        np.testing.assert_allclose(features.state_action[layout.start_state, action], estimate,
                                   atol=1e-6)


def test_closed_form_matches_monte_carlo_for_a_stochastic_policy(world) -> None:
    layout, tables = world
    gamma = 0.9
    rng = np.random.default_rng(1)
    policy = rng.dirichlet(np.ones(NUM_ACTIONS), size=layout.num_states)
    features = successor_features(tables, policy, gamma)
    for action in (0, 3):
        estimate = monte_carlo_features(tables, policy, gamma, layout.start_state, action, 4000,
                                        300, 1)
        exact = features.state_action[layout.start_state, action]
        assert np.abs(exact).sum() > 0.01  # the comparison is not between zeros
        np.testing.assert_allclose(exact, estimate, atol=0.05)


def test_value_under_any_weights_is_psi_dot_w(world) -> None:
    layout, tables = world
    gamma = 0.99
    for objective in ("path", "path+gold", "path+gold+hazard+lever"):
        w = weights_of(objective)
        q = value_iteration(tables, w, gamma)
        features = successor_features(tables, greedy_policy(q, 0.0), gamma)
        np.testing.assert_allclose(features.state @ w, q.max(axis=1), atol=1e-6)


def test_gamma_zero_features_are_the_immediate_rewards(world) -> None:
    layout, tables = world
    uniform = np.full((layout.num_states, NUM_ACTIONS), 0.25)
    features = successor_features(tables, uniform, 0.0)
    np.testing.assert_allclose(features.state_action, tables.reward)


def test_embedding_is_fixed_length_mean_over_canonical_states(world) -> None:
    layout, tables = world
    canonical = canonical_states(layout)
    assert canonical[0] == layout.start_state and len(set(canonical.tolist())) == len(canonical)
    np.testing.assert_array_equal(canonical, canonical_states(layout))
    q = value_iteration(tables, weights_of("gold"), 0.99)
    features = successor_features(tables, greedy_policy(q), 0.99)
    embed = embedding(features.state, canonical)
    assert embed.shape == (4,)
    np.testing.assert_allclose(embed, features.state[canonical].mean(axis=0))
