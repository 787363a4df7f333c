"""SGBS: exact K-best joint actions, search on hand-built trees, the driver on Connector."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ceiling.errors import CeilingError
from ceiling.policies.joint import top_k_joint_actions
from ceiling.policies.networks import NetworkConfig, Policy, make_policy
from ceiling.policies.rollout import evaluate_batch
from ceiling.policies.sable import sable_config
from ceiling.search import Budget, make_strategy, solve, solve_instances
from ceiling.tasks import instances
from ceiling.tasks.base import Observed, Task, TaskSpec

# A complete 4-ary tree of depth 3 (two agents, two actions each): node v's child under joint
# action j = 2 * a0 + a1 is 4 v + 1 + j; 1 + 4 + 16 + 64 nodes.
NUM_NODES = 85


class TreeTask(Task):
    """Every node has a reward (paid on arrival), per-agent logits (its observation) and an
    action mask. The tables are drawn from the instance key unless fixed by hand."""

    spec = TaskSpec("test:tree", 2, (2,), 2, (1,), 3, False)

    def __init__(self, tables: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> None:
        self.tables = tables

    def _draw(self, key: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        if self.tables is not None:
            return tuple(jnp.asarray(t) for t in self.tables)  # type: ignore[return-value]
        reward_key, logit_key, mask_key = jax.random.split(key, 3)
        rewards = jax.random.normal(reward_key, (NUM_NODES,))
        logits = jax.random.normal(logit_key, (NUM_NODES, 2, 2))
        masks = jax.random.uniform(mask_key, (NUM_NODES, 2, 2)) > 0.3
        masks = masks.at[:, :, 0].set(masks[:, :, 0] | ~masks[:, :, 1])  # one legal at least
        return rewards, logits, masks

    def _observe(self, env: tuple) -> Observed:
        (_, logits, masks), node = env
        return Observed(logits[node], masks[node], jnp.zeros(1))

    def _reset(self, key: jax.Array) -> tuple[tuple, Observed]:
        env = (self._draw(key), jnp.zeros((), jnp.int32))
        return env, self._observe(env)

    def _step(self, env: tuple, action: jax.Array, key: jax.Array) -> tuple:
        tables, node = env
        child = jnp.minimum(4 * node + 1 + 2 * action[0] + action[1], NUM_NODES - 1)
        false = jnp.zeros((), bool)
        return (tables, child), self._observe((tables, child)), tables[0][child], false, false


class ObservedLogits(Policy):
    """A factorised policy whose logits are the observation itself: [..., A, n]. It has no
    network, so it skips the base class's config checks; `Policy`'s default joint-action
    methods (greedy, top-K expansion) act on these logits."""

    def __init__(self) -> None:
        self.spec, self.config = TreeTask.spec, NetworkConfig()

    def act(self, params, observation, action_mask, latent=None):
        return jnp.where(action_mask, observation, -jnp.inf)


def tree_optimum_and_greedy(task: TreeTask, instance_key: jax.Array) -> tuple[float, float]:
    """Brute force over every legal action sequence, and the greedy (arg-max) return."""
    state, _ = task.reset(instance_key)
    rewards, logits, masks = (np.asarray(t) for t in state.env[0])

    def walk(node: int, depth: int) -> float:
        if depth == 3:
            return 0.0
        best = -np.inf
        for a0, a1 in itertools.product(range(2), repeat=2):
            if masks[node, 0, a0] and masks[node, 1, a1]:
                child = 4 * node + 1 + 2 * a0 + a1
                best = max(best, rewards[child] + walk(child, depth + 1))
        return best

    node, greedy = 0, 0.0
    for _ in range(3):
        a0, a1 = (int(np.argmax(np.where(masks[node, i], logits[node, i], -np.inf)))
                  for i in range(2))
        node = 4 * node + 1 + 2 * a0 + a1
        greedy += rewards[node]
    return walk(0, 0), greedy


@pytest.mark.parametrize(("num_agents", "num_actions", "k"), [(1, 4, 3), (3, 3, 5), (4, 2, 16)])
def test_top_k_joint_actions_match_brute_force(num_agents, num_actions, k) -> None:
    rng = np.random.default_rng(num_agents)
    logits = rng.normal(size=(num_agents, num_actions)).astype(np.float32)
    logits[0, -1] = -np.inf  # a masked action
    actions, log_probs = top_k_joint_actions(jnp.asarray(logits), k)
    log_softmax = np.asarray(jax.nn.log_softmax(jnp.asarray(logits), axis=-1))
    joint = {a: sum(log_softmax[i, a[i]] for i in range(num_agents))
             for a in itertools.product(range(num_actions), repeat=num_agents)}
    expected = sorted(joint.values(), reverse=True)[:k]
    expected += [-np.inf] * (k - len(expected))
    np.testing.assert_allclose(np.asarray(log_probs), expected, rtol=1e-5)
    legal = [(tuple(int(x) for x in a), float(lp))
             for a, lp in zip(np.asarray(actions), np.asarray(log_probs), strict=True)
             if np.isfinite(lp)]
    assert len({action for action, _ in legal}) == len(legal)  # distinct joint actions
    for action, log_prob in legal:
        assert joint[action] == pytest.approx(log_prob, rel=1e-5)


def test_top_k_puts_the_greedy_joint_action_first_and_marks_missing_ones() -> None:
    logits = jnp.array([[2.0, 2.0, -jnp.inf], [1.0, 0.0, 1.0]])  # ties on both agents
    actions, log_probs = top_k_joint_actions(logits, 6)
    np.testing.assert_array_equal(actions[0], jnp.argmax(logits, axis=-1))
    # Two legal actions for agent 0 times three for agent 1: all six, in probability order.
    assert [tuple(map(int, a)) for a in actions] == [(0, 0), (0, 2), (1, 0), (1, 2), (0, 1),
                                                     (1, 1)]
    assert bool(jnp.all(jnp.isfinite(log_probs)))
    _, log_probs = top_k_joint_actions(logits, 8)
    assert np.isneginf(np.asarray(log_probs[6:])).all()


def test_sgbs_finds_the_optimum_greedy_misses() -> None:
    # Greedy's favourite first move pays 1 and leads nowhere; the third most probable one pays
    # nothing at once and 2 + 2 afterwards, on the greedy path.
    rewards = np.zeros(NUM_NODES, np.float32)
    rewards[1] = 1.0  # joint action 0 = (0, 0) from the root
    rewards[3] = 0.0  # joint action 2 = (1, 0) from the root ...
    rewards[13], rewards[53] = 2.0, 2.0  # ... then (0, 0), (0, 0)
    logits = np.broadcast_to(np.array([[1.0, 0.0], [1.0, 0.5]], np.float32), (NUM_NODES, 2, 2))
    task = TreeTask((rewards, np.array(logits), np.ones((NUM_NODES, 2, 2), bool)))
    key = jax.random.PRNGKey(0)
    optimum, greedy = tree_optimum_and_greedy(task, key)
    assert (optimum, greedy) == (4.0, 1.0)
    strategy = make_strategy("sgbs", task, ObservedLogits(), 4, expansion=3)
    assert (strategy.beam_width, strategy.rollouts_per_step) == (2, 4)
    result = solve(strategy, None, key, Budget(rollouts=4 * 3), key)
    assert result.solution.total_return == optimum == result.solution.verified
    np.testing.assert_array_equal(result.solution.actions, [[1, 0], [0, 0], [0, 0]])
    assert result.batches == strategy.max_steps == 3


@pytest.mark.slow
def test_an_exhaustive_beam_is_exact_and_vmaps_over_instances() -> None:
    # Beam 16 x expansion 4 keeps every legal node of this tree, so SGBS must find the true
    # optimum; random masks leave some nodes fewer than 4 legal joint actions.
    task = TreeTask()
    keys = jax.random.split(jax.random.PRNGKey(7), 6)
    strategy = make_strategy("sgbs", task, ObservedLogits(), 48, beam_width=16, expansion=4)
    solutions = solve_instances(strategy, None, keys, Budget(rollouts=48 * 3),
                                jax.random.PRNGKey(0))
    small = make_strategy("sgbs", task, ObservedLogits(), 2, beam_width=1, expansion=2)
    narrow = solve_instances(small, None, keys, Budget(rollouts=2 * 3),
                             jax.random.PRNGKey(0))
    for key, exhaustive, limited in zip(keys, solutions, narrow, strict=True):
        optimum, greedy = tree_optimum_and_greedy(task, key)
        assert exhaustive.total_return == pytest.approx(optimum, abs=1e-5)
        assert greedy - 1e-5 <= limited.total_return <= optimum + 1e-5


@pytest.mark.slow
def test_sgbs_on_connector_is_verified_deterministic_and_beats_greedy(
    connector_task, small_policy
) -> None:
    policy, params = small_policy
    keys = instances("connector:con-5x5x3a", "test", 3)  # as in test_driver: compiled once
    strategy = make_strategy("sgbs", connector_task, policy, 8)
    assert (strategy.beam_width, strategy.expansion, strategy.rollouts_per_step) == (2, 5, 8)
    horizon = connector_task.spec.horizon
    budget = Budget(rollouts=8 * (horizon + 5))  # more than the search can use
    result = solve(strategy, params, keys[0], budget, jax.random.PRNGKey(0))
    assert result.batches == strategy.max_steps == horizon
    assert result.rollouts == 8 * horizon
    best = [p.best_return for p in result.trace]
    assert best == sorted(best)
    assert result.solution.verified == pytest.approx(result.solution.total_return, abs=1e-4)
    greedy = evaluate_batch(connector_task, policy, params, keys[:1], jax.random.PRNGKey(0))
    assert result.solution.total_return >= float(greedy.total_return[0])
    # Deterministic: the search draws nothing at random, so any key gives the same answer.
    again = solve(strategy, params, keys[0], budget, jax.random.PRNGKey(5))
    np.testing.assert_array_equal(again.solution.actions, result.solution.actions)
    assert again.trace[-1].best_return == result.trace[-1].best_return


@pytest.mark.slow
def test_sgbs_on_sable_expands_sampled_children_and_is_verified(connector_task) -> None:
    # SABLE's children are the greedy joint action and sampled ones (duplicates dropped), so
    # the search depends on its key, deterministically; the greedy child keeps SGBS at least
    # as good as the greedy rollout.
    policy = make_policy(connector_task.spec, sable_config(embed_dim=16))
    params = jax.jit(policy.init)(jax.random.PRNGKey(0))
    key = instances("connector:con-5x5x3a", "test", 1)[0]
    strategy = make_strategy("sgbs", connector_task, policy, 8)
    budget = Budget(rollouts=8 * 6)
    result = solve(strategy, params, key, budget, jax.random.PRNGKey(0))
    assert result.batches == 6
    assert result.solution.verified == pytest.approx(result.solution.total_return, abs=1e-4)
    greedy = evaluate_batch(connector_task, policy, params, key[None], jax.random.PRNGKey(0))
    assert result.solution.total_return >= float(greedy.total_return[0])
    again = solve(strategy, params, key, budget, jax.random.PRNGKey(0))
    np.testing.assert_array_equal(again.solution.actions, result.solution.actions)
    # Every live beam node is a distinct path: duplicated children never enter the beam twice.
    state = strategy.init(jax.random.PRNGKey(1), params, key)
    for _ in range(2):
        state = strategy.jitted_step(state)
    beam = state.inner
    paths = {np.asarray(p).tobytes() for p, alive in zip(beam.prefix_actions, beam.alive,
                                                          strict=True) if alive}
    assert len(paths) == int(np.asarray(beam.alive).sum()) >= 2


def test_restarts_search_again_from_the_root_with_sampled_children() -> None:
    # A 1-node beam with 2 children per node: one pass often misses this tree's optimum.
    # With restarts the first pass is the plain search's, then pass after pass begins again
    # at the root with sampled children until the rollout budget is spent.
    task = TreeTask()
    plain = make_strategy("sgbs", task, ObservedLogits(), 2, beam_width=1, expansion=2)
    again = make_strategy("sgbs", task, ObservedLogits(), 2, beam_width=1, expansion=2,
                          restarts=True)
    assert (plain.max_steps, again.max_steps) == (3, None)
    passes = 20
    budget = Budget(rollouts=2 * 3 * passes)
    improved = 0
    for instance in jax.random.split(jax.random.PRNGKey(11), 4):
        optimum, greedy = tree_optimum_and_greedy(task, instance)
        one = solve(plain, None, instance, budget, jax.random.PRNGKey(0))
        many = solve(again, None, instance, budget, jax.random.PRNGKey(0))
        assert (one.batches, many.batches) == (3, 3 * passes)
        assert many.rollouts == budget.rollouts  # the whole budget is spent
        assert many.solution.verified == pytest.approx(many.solution.total_return, abs=1e-5)
        # The first pass is the plain search: its best after 3 steps is the plain answer.
        first = [p.best_return for p in many.trace if p.rollouts <= 2 * 3]
        assert first[-1] == one.solution.total_return
        assert greedy - 1e-5 <= one.solution.total_return <= many.solution.total_return
        assert many.solution.total_return <= optimum + 1e-5
        improved += many.solution.total_return > one.solution.total_return + 1e-6
    assert improved >= 1  # later passes explored children the first one never tried

    # A finished pass leaves the beam at the root, alone, for the next one.
    state = again.init(jax.random.PRNGKey(0), None, jax.random.PRNGKey(3))
    step = jax.jit(again.step)
    for _ in range(3):
        state = step(state)
    assert (int(state.inner.passes), int(state.inner.depth)) == (1, 0)
    np.testing.assert_array_equal(state.inner.alive, [True])
    assert int(state.inner.nodes.env[1][0]) == 0  # the root node


def test_sampled_children_start_with_the_greedy_action_and_drop_repeats() -> None:
    policy = ObservedLogits()
    logits = jnp.array([[[2.0, 0.0], [0.0, 1.0]]])  # one node, 2 agents x 2 actions
    mask = jnp.array([[[True, True], [True, False]]])  # agent 1 has one legal action
    actions, log_probs = policy.sample_children(None, logits, mask, jax.random.PRNGKey(0), 6)
    assert actions.shape == (1, 6, 2) and log_probs.shape == (1, 6)
    np.testing.assert_array_equal(actions[0, 0], [0, 0])  # greedy first
    assert bool((actions[0, :, 1] == 0).all())  # never a masked action
    # Only 2 legal joint actions exist: at most 2 children are real, the rest are repeats.
    real = np.isfinite(np.asarray(log_probs[0]))
    assert real[0] and 1 <= real.sum() <= 2
    seen = {tuple(a) for a, r in zip(np.asarray(actions[0]), real, strict=True) if r}
    assert len(seen) == real.sum()


def test_every_beam_score_is_its_greedy_rollout_return() -> None:
    # Greedy children are never simulated: their inherited score must still be exact.
    task = TreeTask()
    strategy = make_strategy("sgbs", task, ObservedLogits(), 3, beam_width=1, expansion=3)
    step = jax.jit(strategy.step)
    for instance in jax.random.split(jax.random.PRNGKey(3), 3):
        rewards, logits, masks = (np.asarray(t) for t in task.reset(instance)[0].env[0])
        state = strategy.init(jax.random.PRNGKey(0), None, instance)
        for depth in range(1, 3):
            state = step(state)
            for node, prefix, score, alive in zip(
                np.asarray(state.inner.nodes.env[1]), np.asarray(state.inner.prefix_return),
                np.asarray(state.inner.score), np.asarray(state.inner.alive), strict=True,
            ):
                if not alive:
                    continue
                rollout = 0.0
                for _ in range(3 - depth):
                    a0, a1 = (int(np.argmax(np.where(masks[node, i], logits[node, i], -np.inf)))
                              for i in range(2))
                    node = 4 * node + 1 + 2 * a0 + a1
                    rollout += rewards[node]
                assert score == pytest.approx(prefix + rollout, abs=1e-5)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"beam_width": 0}, r"beam_width must be an integer between 1 and 2 "),
        ({"expansion": 0}, r"expansion must be an integer between 1 and 8 "),
        ({"expansion": 9}, r"expansion must be an integer between 1 and 8 "),
        ({"expansion": 3, "beam_width": 5}, r"beam_width must be an integer between 1 and 4 "),
        ({"beam_width": 2.5}, r"beam_width must be an integer"),
    ],
)
def test_bad_options_fail_before_compiling(connector_task, small_policy, options, message):
    with pytest.raises(CeilingError, match=message):
        make_strategy("sgbs", connector_task, small_policy[0], 8, **options)


def test_defaults_fill_the_width() -> None:
    task = TreeTask()
    for width, beam_width, expansion in [(64, 16, 5), (8, 2, 5), (4, 1, 4), (1, 1, 1)]:
        strategy = make_strategy("sgbs", task, ObservedLogits(), width)
        assert (strategy.beam_width, strategy.expansion) == (beam_width, expansion)
        assert strategy.rollouts_per_step == width
    single = make_strategy("sgbs", task, ObservedLogits(), 8, expansion=1)  # greedy, in effect
    assert (single.beam_width, single.rollouts_per_step) == (1, 1)
