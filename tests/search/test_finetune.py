"""Fine-tuning search: it adapts the parameters, never loses the best solution, and refuses
non-finite updates while keeping the incumbent."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ceiling.errors import CeilingError
from ceiling.policies.networks import make_policy
from ceiling.policies.rollout import run_episode
from ceiling.policies.sable import sable_config
from ceiling.search import Budget, SearchAborted, SearchState, make_strategy, solve
from ceiling.tasks import instances

KEYS = instances("connector:con-5x5x3a", "test", 2)
WIDTH = 8


def _layers(params, network: str) -> dict[str, dict[str, np.ndarray]]:
    return jax.tree_util.tree_map(np.asarray, params[network]["params"])


@pytest.fixture(scope="module")
def tuned(connector_task, small_policy):
    """A fine-tuning strategy with imitation and its jitted step, compiled once: compiling
    dominates these tests, and `solve` reuses the compiled step of an equal strategy."""
    policy, params = small_policy
    strategy = make_strategy("finetune", connector_task, policy, WIDTH, imitation_coef=0.5)
    step = jax.jit(strategy.step)
    step(strategy.init(jax.random.PRNGKey(0), params, KEYS[0]))
    return strategy, step


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"learning_rate": 0.0}, "learning_rate must be a finite number > 0"),
        ({"learning_rate": float("inf")}, "learning_rate must be a finite number > 0"),
        ({"num_updates": 0}, "num_updates must be an integer >= 1"),
        ({"num_updates": 2.5}, "num_updates must be an integer >= 1"),
        ({"scope": "body"}, "scope must be one of all, head"),
        ({"imitation_coef": -1.0}, "imitation_coef must be a finite number >= 0"),
        ({"temperature": 0.0}, "temperature must be a finite number > 0"),
        ({"gamma": 1.5}, r"gamma must be a finite number in \[0, 1\]"),
        ({"clip_eps": "big"}, "clip_eps must be a finite number >= 0"),
    ],
)
def test_bad_options(connector_task, small_policy, options, message) -> None:
    policy, _ = small_policy
    with pytest.raises(CeilingError, match=message):
        make_strategy("finetune", connector_task, policy, WIDTH, **options)


def test_minibatches_must_divide_the_width(connector_task, small_policy) -> None:
    policy, _ = small_policy
    with pytest.raises(CeilingError, match=r"num_minibatches must divide the width \(parallel "
                       r"attempts\) 8; got 3. Valid values: 1, 2, 4, 8"):
        make_strategy("finetune", connector_task, policy, WIDTH, num_minibatches=3)


def _adam_steps(opt_state) -> list[int]:
    return [int(leaf) for path, leaf in jax.tree_util.tree_leaves_with_path(opt_state)
            if "count" in jax.tree_util.keystr(path)]


@pytest.mark.slow
def test_minibatches_take_a_step_each_on_their_share_of_the_attempts(
    connector_task, small_policy
) -> None:
    """Passes x minibatches gradient steps per learning batch; a step on half the attempts is
    not a step on all of them; the search keeps its best and replays it."""
    policy, params = small_policy
    updated = {}
    for passes, minibatches in ((2, 1), (1, 2)):
        strategy = make_strategy("finetune", connector_task, policy, WIDTH,
                                 num_updates=passes, num_minibatches=minibatches)
        state = jax.jit(strategy.step)(strategy.init(jax.random.PRNGKey(0), params, KEYS[0]))
        assert bool(state.inner.finite)
        assert set(_adam_steps(state.inner.opt_state)) == {passes * minibatches}
        updated[passes, minibatches] = _layers(state.params, "actor")["Dense_0"]["kernel"]
    assert not np.allclose(updated[2, 1], updated[1, 2])
    assert not np.array_equal(updated[1, 2], _layers(params, "actor")["Dense_0"]["kernel"])
    result = solve(strategy, params, KEYS[0], Budget(rollouts=2 * WIDTH), jax.random.PRNGKey(2))
    assert result.learning_batches == 1
    assert result.solution.verified == pytest.approx(result.solution.total_return, abs=1e-6)


@pytest.mark.slow
def test_fine_tuning_changes_the_parameters_and_never_loses_the_best(
    connector_task, small_policy, tuned
) -> None:
    policy, params = small_policy
    strategy, step = tuned
    sample = jax.jit(jax.vmap(
        lambda p, k: run_episode(connector_task, policy, p, KEYS[0], k, greedy=False),
        (None, 0)))
    state: SearchState = strategy.init(jax.random.PRNGKey(1), params, KEYS[0])
    best_seen = -np.inf
    for _ in range(3):
        # The batch `step` samples: the current parameters, keyed as in sampling.
        _, batch_key = jax.random.split(state.key)
        rollout_key, _ = jax.random.split(batch_key)
        episodes = sample(state.params, jax.random.split(rollout_key, WIDTH))
        previous = float(state.incumbent.total_return)
        state = step(state)
        best_seen = max(best_seen, float(episodes.total_return.max()))
        assert float(state.incumbent.total_return) == pytest.approx(best_seen, abs=1e-6)
        assert float(state.incumbent.total_return) >= previous
    assert bool(state.inner.finite)
    strategy.check(state)  # nothing to report
    before, after = _layers(params, "actor"), _layers(state.params, "actor")
    assert not np.array_equal(before["Dense_0"]["kernel"], after["Dense_0"]["kernel"])


@pytest.mark.slow
def test_head_scope_updates_only_the_last_layer(connector_task, small_policy) -> None:
    policy, params = small_policy
    strategy = make_strategy("finetune", connector_task, policy, WIDTH, scope="head",
                             learning_rate=1e-3, num_updates=1)
    state = jax.jit(strategy.step)(strategy.init(jax.random.PRNGKey(0), params, KEYS[0]))
    assert bool(state.inner.finite)
    for network in ("actor", "critic"):
        before, after = _layers(params, network), _layers(state.params, network)
        for layer in ("Dense_0", "Dense_1"):
            for name in ("kernel", "bias"):
                np.testing.assert_array_equal(before[layer][name], after[layer][name])
        assert not np.array_equal(before["Dense_2"]["kernel"], after["Dense_2"]["kernel"])


@pytest.mark.slow
def test_head_scope_on_sable_updates_only_its_output_layers(connector_task) -> None:
    # SABLE's heads are the policy logits and the value; the encoder and decoder stay put.
    # With imitation, the incumbent's joint actions are scored by teacher forcing.
    policy = make_policy(connector_task.spec, sable_config(embed_dim=16))
    params = jax.jit(policy.init)(jax.random.PRNGKey(0))
    strategy = make_strategy("finetune", connector_task, policy, WIDTH, scope="head",
                             learning_rate=1e-3, num_updates=1, imitation_coef=0.5)
    step = jax.jit(strategy.step)
    state = step(step(strategy.init(jax.random.PRNGKey(0), params, KEYS[0])))
    assert bool(state.inner.finite)
    flat = jax.tree_util.tree_flatten_with_path
    for (path, before), (_, after) in zip(flat(params)[0], flat(state.params)[0], strict=True):
        name = jax.tree_util.keystr(path)
        if "policy_head" in name or "value_head" in name:
            assert not np.array_equal(np.asarray(before), np.asarray(after)), name
        else:
            np.testing.assert_array_equal(np.asarray(before), np.asarray(after), err_msg=name)


def test_nan_parameters_stop_the_search_keeping_the_best(
    connector_task, small_policy, tuned
) -> None:
    policy, params = small_policy
    strategy, step = tuned
    kernel = params["actor"]["params"]["Dense_0"]["kernel"]
    poisoned = jax.tree_util.tree_map(lambda x: x, params)
    poisoned["actor"]["params"]["Dense_0"]["kernel"] = kernel.at[0, 0].set(jnp.nan)
    state = step(strategy.init(jax.random.PRNGKey(0), poisoned, KEYS[0]))
    assert not bool(state.inner.finite)
    for old, new in zip(jax.tree_util.tree_leaves(poisoned),
                        jax.tree_util.tree_leaves(state.params), strict=True):
        np.testing.assert_array_equal(old, new)  # NaN-aware: unchanged, not updated
    with pytest.raises(CeilingError, match="non-finite"):
        strategy.check(state)
    # Through the driver: it stops after the first batch with a verified best solution.
    with pytest.raises(SearchAborted, match="non-finite") as raised:
        solve(strategy, poisoned, KEYS[0], Budget(rollouts=4 * WIDTH),
              jax.random.PRNGKey(0))
    result = raised.value.result
    assert result.batches == 1 and np.isfinite(result.solution.total_return)
    assert result.solution.verified == pytest.approx(result.solution.total_return, abs=1e-6)


@pytest.mark.slow
def test_an_overflowing_update_is_refused(connector_task, small_policy) -> None:
    policy, params = small_policy
    # Finite and positive, so it passes validation, but the first update overflows the logits.
    strategy = make_strategy("finetune", connector_task, policy, WIDTH, learning_rate=1e38,
                             num_updates=1)
    initial = strategy.init(jax.random.PRNGKey(0), params, KEYS[0])
    state = jax.jit(strategy.step)(initial)
    assert not bool(state.inner.finite)
    assert np.isfinite(float(state.incumbent.total_return))
    for old, new in zip(jax.tree_util.tree_leaves((params, initial.inner.opt_state)),
                        jax.tree_util.tree_leaves((state.params, state.inner.opt_state)),
                        strict=True):
        np.testing.assert_array_equal(old, new)


@pytest.mark.slow
def test_the_last_batch_of_a_rollout_budget_leaves_out_its_unusable_update(
    connector_task, small_policy, tuned
) -> None:
    policy, params = small_policy
    strategy, step = tuned
    result = solve(strategy, params, KEYS[0], Budget(rollouts=3 * WIDTH), jax.random.PRNGKey(4))
    assert (result.batches, result.learning_batches) == (3, 2)
    # The same incumbent as three full batches: the update left out could not have changed it.
    state = strategy.init(jax.random.PRNGKey(4), params, KEYS[0])
    for _ in range(3):
        state = step(state)
    np.testing.assert_array_equal(result.solution.actions, np.asarray(state.incumbent.actions))
    assert result.solution.total_return == pytest.approx(float(state.incumbent.total_return))


@pytest.mark.slow
@pytest.mark.parametrize(("tick", "batches", "learning_batches"), [(1.0, 3, 2), (10.0, 1, 0)])
def test_a_learning_batch_that_would_end_after_the_clock_budget_is_not_taken(
    connector_task, small_policy, tuned, tick, batches, learning_batches
) -> None:
    """A fake clock advancing `tick` seconds per reading, so that every batch (and the
    warm-up's estimate of one) takes `tick` seconds, under a 3-second budget: a learning
    batch is taken only while it ends before the budget; then the batches only sample."""
    policy, params = small_policy
    strategy, _ = tuned
    readings = iter(range(1000))
    result = solve(strategy, params, KEYS[0], Budget(seconds=3.0), jax.random.PRNGKey(0),
                   clock=lambda: tick * next(readings))
    assert (result.batches, result.learning_batches) == (batches, learning_batches)
    assert result.to_dict()["learning_batches"] == learning_batches
