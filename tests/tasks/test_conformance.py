"""The Task contract on every registered task: shapes match the spec, finished states absorb.

A new family gets these by registering its tasks and adding one of them to `FAMILY_TASKS`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ceiling.tasks import make, names

FAMILY_TASKS = {
    "connector": "connector:con-5x5x3a",
    "rware": "rware:tiny-2ag",
    "smax": "smax:3m",
}


def test_every_family_is_covered() -> None:
    assert {name.split(":")[0] for name in names()} == set(FAMILY_TASKS)


@pytest.mark.parametrize("name", names())
def test_reset_and_step_shapes_match_the_spec(name: str) -> None:
    task = make(name)
    spec = task.spec
    key = jax.ShapeDtypeStruct((2,), jnp.uint32)
    state, timestep = jax.eval_shape(task.reset, key)  # traced, not compiled
    action = jax.ShapeDtypeStruct((spec.num_agents,), jnp.int32)
    _, stepped = jax.eval_shape(task.step, state, action)
    for ts in (timestep, stepped):
        assert ts.observation.shape == (spec.num_agents, *spec.observation_shape)
        assert ts.action_mask.shape == (spec.num_agents, spec.num_actions)
        assert ts.action_mask.dtype == jnp.bool_
        assert ts.global_state.shape == spec.global_state_shape
        assert ts.reward.shape == ts.done.shape == ts.won.shape == ()


def _random_episode(task, key):  # noqa: ANN001, ANN202 (a jitted helper of this test)
    """Random legal joint actions for a whole horizon, then one more step."""

    def body(carry, step_key):  # noqa: ANN001, ANN202
        state, timestep = carry
        logits = jnp.where(timestep.action_mask, 0.0, -jnp.inf)
        action = jax.random.categorical(step_key, logits).astype(jnp.int32)
        return task.step(state, action), timestep.reward

    start = task.reset(key)
    (state, timestep), _ = jax.lax.scan(body, start,
                                        jax.random.split(key, task.spec.horizon))
    after, after_timestep = task.step(
        state, jnp.full((task.spec.num_agents,), task.spec.num_actions - 1, jnp.int32))
    return state, timestep, after, after_timestep


@pytest.mark.slow
@pytest.mark.parametrize("family", list(FAMILY_TASKS))
def test_a_finished_episode_is_absorbing(family: str) -> None:
    task = make(FAMILY_TASKS[family])
    state, timestep, after, after_timestep = jax.jit(_random_episode, static_argnums=0)(
        task, jax.random.PRNGKey(5))
    assert bool(timestep.done) and int(state.step) <= task.spec.horizon
    # After the end: zero reward, still done, and nothing else changes.
    assert float(after_timestep.reward) == 0.0 and bool(after_timestep.done)
    before = state._replace(timestep=state.timestep._replace(reward=jnp.zeros(())))
    for a, b in zip(jax.tree_util.tree_leaves(before), jax.tree_util.tree_leaves(after),
                    strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
