"""RWARE tasks honour the Task contract: shapes, masks, ids, determinism, rewards, termination."""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jumanji.environments.routing.robot_warehouse.constants import _AGENTS, _SHELVES
from jumanji.environments.routing.robot_warehouse.generator import RandomGenerator
from jumanji.environments.routing.robot_warehouse.types import Position

from ceiling.errors import CeilingError
from ceiling.tasks.base import TaskState, TimeStep
from ceiling.tasks.rware import TASKS, RwareTask, make_task

NUM_STEPS = 20
# Every jitted test uses this one task, so the file compiles reset and step once each.
TINY = "tiny-2ag"


@functools.cache
def _task(name: str) -> RwareTask:
    task = make_task(name)
    assert isinstance(task, RwareTask)
    return task


@functools.cache
def _jitted(name: str) -> tuple[Callable, Callable]:  # one compile per task for the file
    task = _task(name)
    return jax.jit(task.reset), jax.jit(task.step)


def _play(name: str, key: jax.Array, seed: int) -> tuple[float, TimeStep]:
    """Return and last timestep of NUM_STEPS random legal joint actions chosen by `seed`."""
    reset, step = _jitted(name)
    rng = np.random.default_rng(seed)
    state, timestep = reset(key)
    total = 0.0
    for _ in range(NUM_STEPS):
        mask = np.asarray(timestep.action_mask)
        action = np.array([rng.choice(np.flatnonzero(legal)) for legal in mask], np.int32)
        state, timestep = step(state, jnp.asarray(action))
        total += float(timestep.reward)
    return total, timestep


def test_task_names_and_unknown_name() -> None:
    assert len(TASKS) == 15
    assert "medium-6ag" in TASKS and "medium-6ag-hard" not in TASKS
    assert TASKS["xlarge-4ag"]["shelf_rows"] == 4
    with pytest.raises(CeilingError, match="tiny-2ag-hard"):
        make_task("tiny-3ag")


@pytest.mark.parametrize("name", ["tiny-2ag-hard", "large-8ag"])
def test_spec_matches_reset_and_step_shapes(name: str) -> None:
    task = _task(name)
    spec = task.spec
    assert spec.name == f"rware:{name}" and spec.family == "rware"
    assert spec.horizon == 500 and spec.num_actions == 5 and not spec.has_win
    num_agents = spec.num_agents
    state, timestep = jax.eval_shape(task.reset, jax.random.PRNGKey(0))
    action = jax.ShapeDtypeStruct((num_agents,), jnp.int32)
    _, stepped = jax.eval_shape(task.step, state, action)
    for ts in (timestep, stepped):
        assert ts.observation.shape == (num_agents, *spec.observation_shape)
        assert ts.observation.dtype == jnp.float32
        assert ts.action_mask.shape == (num_agents, spec.num_actions)
        assert ts.action_mask.dtype == jnp.bool_
        assert ts.global_state.shape == spec.global_state_shape
        assert ts.reward.shape == () and ts.reward.dtype == jnp.float32
        assert ts.done.shape == () and ts.won.shape == ()


def test_tiny_2ag_hard_spec_values() -> None:
    spec = _task("tiny-2ag-hard").spec
    # 66 view features + 2 ids; 2 views + an 11 x 10 floor map + elapsed time.
    assert spec.num_agents == 2
    assert spec.observation_shape == (68,)
    assert spec.global_state_shape == (2 * 66 + 11 * 10 + 1,)


@pytest.mark.slow
def test_reset_observation_mask_and_ids() -> None:
    reset, _ = _jitted(TINY)
    state, timestep = reset(jax.random.PRNGKey(3))
    assert timestep.action_mask.dtype == jnp.bool_
    assert bool(timestep.action_mask.any(axis=-1).all())
    np.testing.assert_array_equal(timestep.observation[:, -2:], np.eye(2, dtype=np.float32))
    # The views are jumanji's, unchanged apart from dtype.
    view = _task(TINY).env._make_observations(state.env.grid, state.env.agents, state.env.shelves)
    np.testing.assert_array_equal(timestep.observation[:, :-2], np.asarray(view, np.float32))
    np.testing.assert_array_equal(timestep.global_state[: 2 * 66], np.asarray(view).reshape(-1))
    # Exactly the requested shelves are marked on the floor map, and no time has elapsed.
    floor = timestep.global_state[2 * 66 : -1]
    assert int(floor.sum()) == int(state.env.shelves.is_requested.sum()) == 2
    assert float(timestep.global_state[-1]) == 0.0
    assert float(timestep.reward) == 0.0 and not bool(timestep.done)


def test_same_key_same_actions_is_deterministic_and_keys_differ() -> None:
    key = jax.random.PRNGKey(0)
    first_return, first = _play(TINY, key, seed=7)
    again_return, again = _play(TINY, key, seed=7)
    assert first_return == again_return
    for x, y in zip(first, again, strict=True):
        np.testing.assert_array_equal(x, y)
    # Team rewards count deliveries: non-negative whole numbers.
    assert first_return >= 0 and first_return == round(first_return)
    # After NUM_STEPS steps the elapsed-time feature says so (unless a collision ended it).
    if not bool(first.done):
        assert float(first.global_state[-1]) == pytest.approx(NUM_STEPS / 500)
    # The same key always gives the same instance, another key another instance.
    reset, _ = _jitted(TINY)
    one, same, other = (reset(jax.random.PRNGKey(k))[1] for k in (0, 0, 1))
    np.testing.assert_array_equal(one.global_state, same.global_state)
    assert not np.array_equal(one.global_state, other.global_state)


def test_reset_and_step_vmap() -> None:
    task = _task("tiny-4ag-hard")
    keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(3))
    states, timesteps = jax.eval_shape(jax.vmap(task.reset), keys)
    actions = jax.ShapeDtypeStruct((3, 4), jnp.int32)
    _, stepped = jax.eval_shape(jax.vmap(task.step), states, actions)
    assert timesteps.observation.shape == stepped.observation.shape == (3, 4, 66 + 4)
    assert stepped.reward.shape == (3,) and stepped.done.shape == (3,)


def test_step_ignores_step_key() -> None:
    """The state alone decides the transition: a different instance key changes nothing."""
    reset, step = _jitted(TINY)
    state, _ = reset(jax.random.PRNGKey(5))
    action = jnp.array([1, 3], jnp.int32)
    _, a = step(state, action)
    _, b = step(state._replace(key=jax.random.PRNGKey(99)), action)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def _with_requested_shelves_at_goals(task: RwareTask, state: TaskState) -> TaskState:
    """Move the first two requested shelves onto the two goal cells."""
    env = state.env
    height, width = task.env.grid_size
    grid, shelves = env.grid, env.shelves
    xs, ys = shelves.position.x, shelves.position.y
    goal_columns = (width // 2 - 1, width // 2)  # both goals sit on the bottom row
    for shelf, column in zip(env.request_queue[:2].tolist(), goal_columns, strict=True):
        grid = grid.at[_SHELVES, xs[shelf], ys[shelf]].set(0)
        grid = grid.at[_SHELVES, height - 1, column].set(shelf + 1)
        xs, ys = xs.at[shelf].set(height - 1), ys.at[shelf].set(column)
    shelves = shelves._replace(position=Position(x=xs, y=ys))
    return state._replace(env=env.replace(grid=grid, shelves=shelves))


def test_team_reward_counts_all_deliveries() -> None:
    task = _task(TINY)  # two requests, so both goals can score in one step
    reset, step = _jitted(TINY)
    state, _ = reset(jax.random.PRNGKey(2))
    assert state.env.request_queue.shape == (2,)
    state = _with_requested_shelves_at_goals(task, state)
    state, timestep = step(state, jnp.zeros(2, jnp.int32))
    assert timestep.reward.shape == () and float(timestep.reward) == 2.0
    assert not bool(timestep.done)
    # Delivered shelves stop being requested, so standing still earns nothing more.
    _, timestep = step(state, jnp.zeros(2, jnp.int32))
    assert float(timestep.reward) == 0.0


def test_collision_terminates_and_state_absorbs() -> None:
    reset, step = _jitted(TINY)
    state, _ = reset(jax.random.PRNGKey(0))
    env = state.env
    # Agent 0 at (0, 0) facing down, agent 1 just below it: moving forward collides.
    agents_layer = jnp.zeros_like(env.grid[_AGENTS]).at[0, 0].set(1).at[1, 0].set(2)
    agents = env.agents._replace(
        position=Position(x=jnp.array([0, 1]), y=jnp.array([0, 0])),
        direction=jnp.array([2, 2]),
        is_carrying=env.agents.is_carrying * 0,  # keeps its dtype, so step is not recompiled
    )
    env = env.replace(grid=env.grid.at[_AGENTS].set(agents_layer), agents=agents)
    state = state._replace(env=env)
    _, safe = step(state, jnp.array([0, 2], jnp.int32))  # turning never collides
    assert not bool(safe.done)
    state, crashed = step(state, jnp.array([1, 0], jnp.int32))
    assert bool(crashed.done) and int(state.step) == 1
    later, again = step(state, jnp.array([1, 1], jnp.int32))
    assert bool(again.done) and float(again.reward) == 0.0 and int(later.step) == 1


@pytest.mark.parametrize(
    ("name", "queue"),
    [("tiny-2ag-hard", 1), ("tiny-4ag-hard", 2), ("large-8ag-hard", 4), ("large-8ag", 8)],
)
def test_request_queue_size(name: str, queue: int) -> None:
    task = _task(name)
    assert task.env.request_queue_size == queue
    state, _ = jax.eval_shape(task.reset, jax.random.PRNGKey(0))
    assert state.env.request_queue.shape == (queue,)


def test_hard_halves_the_plain_queue() -> None:
    for name, config in TASKS.items():
        if name.endswith("-hard"):
            plain = TASKS[name.removesuffix("-hard")]
            assert config["request_queue_size"] == max(1, plain["request_queue_size"] // 2)
        else:
            assert config["request_queue_size"] == config["num_agents"]


@pytest.mark.parametrize("name", sorted({f"{s}-{n}ag" for s, n in [
    ("tiny", 2), ("small", 4), ("medium", 4), ("large", 8), ("xlarge", 4)]}))
def test_numpy_layout_matches_jumanjis(name: str) -> None:
    """The layout computed in NumPy (no compiles at task build) is jumanji's, value and dtype."""
    generator = _task(name).env._generator
    reference = RandomGenerator(
        shelf_rows=generator.shelf_rows, shelf_columns=generator.shelf_columns,
        column_height=generator.column_height, num_agents=generator.num_agents,
        sensor_range=generator.sensor_range, request_queue_size=generator.request_queue_size,
    )
    for attribute in ("goals", "highways", "shelf_ids", "not_in_queue_size"):
        ours, theirs = getattr(generator, attribute), getattr(reference, attribute)
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape, attribute
        np.testing.assert_array_equal(ours, theirs, err_msg=attribute)
    np.testing.assert_array_equal(generator._shelf_positions, reference._shelf_positions)
    assert generator._shelf_positions.dtype == reference._shelf_positions.dtype
