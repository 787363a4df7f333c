"""Connector adapter: shapes, masks, encoding, determinism, episode end and team reward.

One jitted, vmapped rollout of con-5x5x3a (a batch of instances, horizon + 3 steps) is compiled
once per module and shared by the tests; larger tasks are only shape-checked with eval_shape.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ceiling.errors import CeilingError
from ceiling.tasks import connector
from ceiling.tasks.base import Task, TaskState
from ceiling.tasks.registry import make

TASK_NAME = "con-5x5x3a"
BATCH = 8
EXTRA_STEPS = 3  # steps past the horizon, to exercise the absorbing state
WINDOW_CELLS = connector.WINDOW * connector.WINDOW


def _moving_action(key: jax.Array, mask: jax.Array) -> jax.Array:
    """A random legal move per agent; no-op only when no move is legal (ends episodes early)."""
    allowed = mask.at[:, 0].set(~jnp.any(mask[:, 1:], axis=-1))
    return jax.random.categorical(key, jnp.where(allowed, 0.0, -jnp.inf)).astype(jnp.int32)


def _rollout(task: Task, steps: int, instance_key: jax.Array, action_key: jax.Array) -> Any:
    state, first = task.reset(instance_key)

    def body(state: TaskState, key: jax.Array) -> tuple[TaskState, Any]:
        action = _moving_action(key, state.timestep.action_mask)
        _, raw = task.env.step(state.env, action)  # the wrapped env's own view of the transition
        next_state, timestep = task.step(state, action)
        return next_state, (state, action, timestep, raw.reward)

    keys = jax.random.split(action_key, steps)
    final, (states, actions, timesteps, raw_rewards) = jax.lax.scan(body, state, keys)
    return first, final, states, actions, timesteps, raw_rewards


@pytest.fixture(scope="module")
def task() -> connector.ConnectorTask:
    made = connector.make_task(TASK_NAME)
    assert isinstance(made, connector.ConnectorTask)
    return made


@pytest.fixture(scope="module")
def run_batch(task: connector.ConnectorTask) -> Any:
    steps = task.spec.horizon + EXTRA_STEPS
    return jax.jit(jax.vmap(functools.partial(_rollout, task, steps)))


@pytest.fixture(scope="module")
def batch(run_batch: Any) -> Any:
    instance_keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(BATCH))
    action_keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(BATCH) + 100)
    return jax.tree_util.tree_map(np.asarray, run_batch(instance_keys, action_keys))


def test_tasks_and_registry() -> None:
    assert list(connector.TASKS) == ["con-5x5x3a", "con-7x7x5a", "con-10x10x10a", "con-15x15x23a"]
    assert [t["time_limit"] for t in connector.TASKS.values()] == [25, 49, 100, 225]
    assert make("connector:con-5x5x3a").spec.name == "connector:con-5x5x3a"
    with pytest.raises(CeilingError, match="con-5x5x3a"):
        connector.make_task("con-4x4x2a")


@pytest.mark.parametrize("name", list(connector.TASKS))
def test_spec_matches_shapes(name: str) -> None:
    task = connector.make_task(name)
    spec, size, agents = task.spec, connector.TASKS[name]["grid_size"], task.spec.num_agents
    assert (spec.num_agents, spec.num_actions, spec.has_win) == (
        connector.TASKS[name]["num_agents"],
        5,
        False,
    )
    assert spec.horizon == connector.TASKS[name]["time_limit"] == task.env.time_limit
    assert spec.observation_shape == (WINDOW_CELLS * 4 + 8 + agents,)
    assert spec.global_state_shape == (3 * size * size + 5 * agents + 1,)
    assert spec.observation_shape[0] < 2000
    state, first = jax.eval_shape(task.reset, jax.random.PRNGKey(0))
    action = jax.ShapeDtypeStruct((agents,), jnp.int32)
    _, after = jax.eval_shape(task.step, state, action)
    for timestep in (first, after):
        assert timestep.observation.shape == (agents, *spec.observation_shape)
        assert timestep.observation.dtype == jnp.float32
        assert timestep.action_mask.shape == (agents, spec.num_actions)
        assert timestep.action_mask.dtype == jnp.bool_
        assert timestep.global_state.shape == spec.global_state_shape
        assert timestep.reward.shape == timestep.done.shape == timestep.won.shape == ()


@pytest.mark.slow
def test_masks_legal_and_match_grid(task: connector.ConnectorTask, batch: Any) -> None:
    _, _, states, _, _, _ = batch
    grid, agents, mask = states.env.grid, states.env.agents, states.timestep.action_mask
    assert mask.dtype == np.bool_ and mask[..., 0].all()  # no-op is always legal
    size = task.grid_size
    moves = np.array([[-1, 0], [0, 1], [1, 0], [0, -1]])  # up, right, down, left
    own_target = 3 * np.arange(task.num_agents) + 3
    for b, t in np.ndindex(grid.shape[:2]):
        for i, (r, c) in enumerate(agents.position[b, t]):
            connected = (agents.position[b, t, i] == agents.target[b, t, i]).all()
            for a, (dr, dc) in enumerate(moves, start=1):
                rr, cc = r + dr, c + dc
                inside = 0 <= rr < size and 0 <= cc < size
                free = inside and grid[b, t, rr, cc] in (0, own_target[i])
                assert mask[b, t, i, a] == (free and not connected), (b, t, i, a)


def test_observation_encoding(task: connector.ConnectorTask, batch: Any) -> None:
    first, _, states, _, timesteps, _ = batch
    agents_n = task.num_agents
    obs = np.concatenate([first.observation[:, None], timesteps.observation], axis=1)
    np.testing.assert_array_equal(
        obs[..., -agents_n:], np.broadcast_to(np.eye(agents_n), obs[..., -agents_n:].shape)
    )
    # The blocked channel at the four neighbours of the head is exactly the complement of the
    # move mask for an agent that has not connected.
    obs, mask, env = states.timestep.observation, states.timestep.action_mask, states.env
    blocked = obs[..., :WINDOW_CELLS].reshape(*obs.shape[:3], connector.WINDOW, connector.WINDOW)
    centre = connector.WINDOW // 2
    neighbours = np.stack(
        [
            blocked[..., centre - 1, centre],
            blocked[..., centre, centre + 1],
            blocked[..., centre + 1, centre],
            blocked[..., centre, centre - 1],
        ],
        axis=-1,
    )
    moving = ~(env.agents.position == env.agents.target).all(-1)
    np.testing.assert_array_equal(neighbours[moving] == 1.0, ~mask[..., 1:][moving])
    # Scalars: head and target coordinates, offset and connected flag, as documented.
    scalars = obs[..., 4 * WINDOW_CELLS : 4 * WINDOW_CELLS + 8]
    scale = task.grid_size - 1
    np.testing.assert_allclose(scalars[..., 0:2], env.agents.position / scale, atol=1e-6)
    np.testing.assert_allclose(scalars[..., 2:4], env.agents.target / scale, atol=1e-6)
    np.testing.assert_allclose(scalars[..., 5:7], scalars[..., 2:4] - scalars[..., 0:2], atol=1e-6)
    np.testing.assert_array_equal(scalars[..., 4], ~moving)
    # The own-target channel marks the target cell when it lies in the window and is open.
    own = obs[..., WINDOW_CELLS : 2 * WINDOW_CELLS]
    offset = env.agents.target - env.agents.position
    visible = moving & (np.abs(offset) <= centre).all(-1)
    assert visible.any()
    rows, cols = (offset + centre)[visible].T
    np.testing.assert_array_equal(
        own[visible].reshape(-1, connector.WINDOW, connector.WINDOW)[
            np.arange(rows.size), rows, cols
        ],
        1.0,
    )
    assert (own[visible].sum(-1) == 1).all()


def test_global_state(task: connector.ConnectorTask, batch: Any) -> None:
    _, _, states, _, _, _ = batch
    cells, agents_n = task.grid_size**2, task.num_agents
    state, env = states.timestep.global_state, states.env
    paths, heads, targets = (state[..., k * cells : (k + 1) * cells] for k in range(3))
    connected = (env.agents.position == env.agents.target).all(-1)
    assert (heads.sum(-1) == agents_n).all()  # a connected head sits on its target
    np.testing.assert_array_equal(targets.sum(-1), (~connected).sum(-1))
    np.testing.assert_array_equal(paths.sum(-1) > 0, states.step > 0)
    per_agent = state[..., 3 * cells : 3 * cells + 5 * agents_n].reshape(*state.shape[:2], -1, 5)
    np.testing.assert_array_equal(per_agent[..., 4], connected)
    np.testing.assert_allclose(state[..., -1], states.step / task.spec.horizon, atol=1e-6)


def test_different_keys_give_different_instances(batch: Any) -> None:
    first_states = batch[2]
    grids = first_states.env.grid[:, 0].reshape(BATCH, -1)
    assert len({g.tobytes() for g in grids}) == BATCH


def test_deterministic_replay(task: connector.ConnectorTask, run_batch: Any, batch: Any) -> None:
    instance_keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(BATCH))
    action_keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(BATCH) + 100)
    again = run_batch(instance_keys, action_keys)
    for old, new in zip(
        jax.tree_util.tree_leaves(batch), jax.tree_util.tree_leaves(again), strict=True
    ):
        np.testing.assert_array_equal(old, np.asarray(new))
    # Replaying the recorded actions with plain (unbatched) step calls gives the same returns.
    _, _, states, actions, timesteps, _ = batch
    state = jax.tree_util.tree_map(lambda leaf: jnp.asarray(leaf[0, 0]), states)  # the reset state
    step = jax.jit(task.step)
    rewards = []
    for action in actions[0]:
        state, timestep = step(state, jnp.asarray(action))
        rewards.append(float(timestep.reward))
    np.testing.assert_array_equal(np.array(rewards, np.float32), timesteps.reward[0])


def test_episode_end_and_absorbing(task: connector.ConnectorTask, batch: Any) -> None:
    _, final, states, _, timesteps, _ = batch
    horizon = task.spec.horizon
    done, mask = timesteps.done, timesteps.action_mask
    assert done[:, horizon - 1].all()  # the horizon ends every episode
    assert (np.diff(done.astype(int), axis=1) >= 0).all()  # done never reverts
    first_done = done.argmax(axis=1)
    # jumanji's own end: every agent connected or unable to move, before the time limit.
    stuck = ~mask[..., 1:].any(axis=(-1, -2))
    np.testing.assert_array_equal(done[:, : horizon - 1], stuck[:, : horizon - 1])
    assert (first_done < horizon - 1).any(), "no episode ended before the horizon"
    assert not timesteps.won.any()
    for b in range(BATCH):
        after = slice(first_done[b] + 1, None)
        assert (timesteps.reward[b, after] == 0.0).all()
        np.testing.assert_array_equal(
            states.env.grid[b, after],
            final.env.grid[b][None].repeat(states.env.grid[b, after].shape[0], axis=0),
        )
        assert states.step[b, -1] == final.step[b] == first_done[b] + 1


def test_team_reward_is_sum_of_agent_rewards(batch: Any) -> None:
    _, _, states, _, timesteps, raw_rewards = batch
    assert raw_rewards.shape[-1] == 3  # jumanji 1.1.2 rewards each agent separately
    live = ~states.timestep.done
    np.testing.assert_allclose(timesteps.reward[live], raw_rewards.sum(-1)[live], rtol=1e-6)
    assert timesteps.reward.dtype == np.float32
    assert (timesteps.reward[live] != 0).all()  # -0.03 per unconnected agent, +1 per connection
