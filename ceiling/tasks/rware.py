"""Robotic Warehouse (RWARE) tasks: jumanji's `RobotWarehouse` behind the `Task` contract.

This module owns the named RWARE layouts and the adapter from jumanji's types to ours. Sizes
follow Mava's scenario configs (shelf rows x shelf columns: tiny 1x3, small 2x3, medium 2x5,
large 3x5, xlarge 4x5), with column height 8, sensor range 1, a request queue as long as the
number of agents (halved, at least 1, for `-hard`) and a 500-step horizon. jumanji's own time
limit is set to the horizon, so both stop the episode at the same step. Besides time, jumanji
ends an episode when two agents collide (its moves do not check occupancy); that is the task's
`terminated`. There is no win condition. The team reward is jumanji's shared reward: the number
of requested shelves delivered in the step, i.e. the sum of deliveries over all agents (Mava
copies this same number to every agent). Per-agent observation: jumanji's `agents_view`
[A, F] (F = 66 at sensor range 1) with the agent-id one-hot appended; its fields
(`observation_fields`) are the agent's own grid position (row, column), whether it carries a
shelf, its direction one-hot (4), whether it stands on a highway cell, for each of the other
cells of its (2r + 1)^2 sensor window (row-major, own cell skipped) whether an agent is there
and that agent's direction one-hot, for every cell of the window whether a shelf is there and
whether it is requested, then the agent id. Global state, for
centralised critics: every agent's view flattened [A * F], then a map of the floor [H * W]
marking where requested shelves stand (agents see only 3x3 around them, so a critic otherwise
cannot tell how far the next delivery is), then the fraction of the horizon elapsed [1] (values
depend on the time left in a fixed-length episode). jumanji keeps its random key in its state
(it draws new requests after each delivery), so stepping is deterministic given the state and
the base class's step key is not used.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jumanji.environments.routing.robot_warehouse import RobotWarehouse
from jumanji.environments.routing.robot_warehouse.constants import _SHELVES
from jumanji.environments.routing.robot_warehouse.generator import RandomGenerator
from jumanji.environments.routing.robot_warehouse.types import State

from ceiling.errors import CeilingError
from ceiling.tasks.base import ObservationFields, Observed, Task, TaskSpec, with_agent_ids

HORIZON = 500
COLUMN_HEIGHT = 8
SENSOR_RANGE = 1
NUM_ACTIONS = 5  # noop, forward, left, right, toggle load

# (shelf rows, shelf columns) per layout size, as in Mava's RWARE scenario configs.
SIZES: dict[str, tuple[int, int]] = {
    "tiny": (1, 3),
    "small": (2, 3),
    "medium": (2, 5),
    "large": (3, 5),
    "xlarge": (4, 5),
}
_PLAIN = [
    ("tiny", 2), ("tiny", 4), ("small", 4), ("medium", 4),
    ("medium", 6), ("large", 4), ("large", 8), ("xlarge", 4),
]  # fmt: skip
_HARD = [
    ("tiny", 2), ("tiny", 4), ("small", 4), ("medium", 4),
    ("large", 4), ("large", 8), ("xlarge", 4),
]  # fmt: skip


def _config(size: str, num_agents: int, hard: bool) -> dict:
    shelf_rows, shelf_columns = SIZES[size]
    # Fewer simultaneous requests make deliveries rarer, hence "hard".
    queue = max(1, num_agents // 2) if hard else num_agents
    return {
        "shelf_rows": shelf_rows,
        "shelf_columns": shelf_columns,
        "num_agents": num_agents,
        "request_queue_size": queue,
    }


TASKS: dict[str, dict] = {
    **{f"{s}-{n}ag": _config(s, n, hard=False) for s, n in _PLAIN},
    **{f"{s}-{n}ag-hard": _config(s, n, hard=True) for s, n in _HARD},
}


class _Generator(RandomGenerator):
    """jumanji's `RandomGenerator` with its fixed floor layout computed in NumPy.

    jumanji builds the layout (goals, highways, shelf positions) op by op in JAX when the
    generator is made, about sixty tiny compiles, two CPU-seconds before anything runs. The
    rule is the same here; `tests/tasks/test_rware.py` checks every layout against jumanji's.
    (`jax.device_put`, not `jnp.asarray`, which compiles a small program per array.)
    """

    def _make_warehouse(self) -> None:
        rows, columns = self._grid_size
        self._goals = jax.device_put(np.array(
            [(columns // 2 - 1, rows - 1), (columns // 2, rows - 1)], dtype=np.int32))
        x, y = np.indices((rows, columns))
        highways = (
            (y % 3 == 0)  # vertical highways
            | (x % (self.column_height + 1) == 0)  # horizontal highways
            | (x == rows - 1)  # the delivery row
            # no shelves in front of the goals, so that agents can queue there
            | ((x > rows - (self.column_height + 3))
               & ((y == columns // 2 - 1) | (y == columns // 2)))
        )
        self._highways = jax.device_put(highways)
        shelves = np.argwhere(~highways).astype(np.int32)
        self._shelf_positions = jax.device_put(shelves)
        self._shelf_ids = jax.device_put(np.arange(len(shelves), dtype=np.int32))
        self._not_in_queue_size = jax.device_put(
            np.int32(len(shelves) - self.request_queue_size))


def observation_fields(sensor_range: int, num_agents: int) -> ObservationFields:
    """The named parts of jumanji's `agents_view` (in its writing order) and the agent id."""
    cells = (2 * sensor_range + 1) ** 2
    return (
        ("position", (2,)),
        ("carrying", (1,)),
        ("direction", (4,)),
        ("on_highway", (1,)),
        ("nearby_agents", (cells - 1, 5)),  # [is an agent, its direction one-hot]
        ("nearby_shelves", (cells, 2)),  # [is a shelf, is requested]
        ("agent_id", (num_agents,)),
    )


class RwareTask(Task):
    """One RWARE layout. `self.env` is the wrapped jumanji environment."""

    def __init__(
        self,
        name: str,
        shelf_rows: int,
        shelf_columns: int,
        num_agents: int,
        request_queue_size: int,
        column_height: int = COLUMN_HEIGHT,
        sensor_range: int = SENSOR_RANGE,
        horizon: int = HORIZON,
    ) -> None:
        generator = _Generator(
            shelf_rows=shelf_rows,
            shelf_columns=shelf_columns,
            column_height=column_height,
            num_agents=num_agents,
            sensor_range=sensor_range,
            request_queue_size=request_queue_size,
        )
        self.env = RobotWarehouse(generator=generator, time_limit=horizon)
        num_features = int(self.env.num_obs_features)
        height, width = self.env.grid_size
        self.spec = TaskSpec(
            name=f"rware:{name}",
            num_agents=num_agents,
            observation_shape=(num_features + num_agents,),
            num_actions=NUM_ACTIONS,
            global_state_shape=(num_agents * num_features + height * width + 1,),
            horizon=horizon,
            has_win=False,
            observation_fields=observation_fields(sensor_range, num_agents),
        )

    def _reset(self, key: jax.Array) -> tuple[State, Observed]:
        env_state, timestep = self.env.reset(key)
        return env_state, self._observe(env_state, timestep.observation.agents_view)

    def _step(
        self, env_state: State, action: jax.Array, key: jax.Array
    ) -> tuple[State, Observed, jax.Array, jax.Array, jax.Array]:
        del key  # jumanji's own key in `env_state` drives the new requests
        env_state, timestep = self.env.step(env_state, action.astype(jnp.int32))
        # jumanji's episode ends on a collision or at its time limit (= the horizon, which the
        # base class applies itself); an end before the limit is a collision.
        terminated = timestep.last() & (env_state.step_count < self.spec.horizon)
        observed = self._observe(env_state, timestep.observation.agents_view)
        reward = jnp.asarray(timestep.reward, jnp.float32).reshape(())
        return env_state, observed, reward, terminated, jnp.zeros((), bool)

    def _observe(self, env_state: State, agents_view: jax.Array) -> Observed:
        """agents_view [A, F] int -> observation [A, F + A], mask [A, 5], global state."""
        shelf_on_cell = env_state.grid[_SHELVES]  # [H, W] shelf id + 1, 0 where none
        requested = env_state.shelves.is_requested[jnp.maximum(shelf_on_cell - 1, 0)]
        requested_map = (shelf_on_cell > 0) & (requested > 0)
        elapsed = env_state.step_count.astype(jnp.float32) / self.spec.horizon
        global_state = jnp.concatenate(
            [
                agents_view.astype(jnp.float32).reshape(-1),
                requested_map.astype(jnp.float32).reshape(-1),
                elapsed.reshape(1),
            ]
        )
        return Observed(
            observation=with_agent_ids(agents_view),
            action_mask=env_state.action_mask,
            global_state=global_state,
        )


def make_task(name: str) -> Task:
    """The RWARE task `name` (without the "rware:" prefix), e.g. "tiny-2ag-hard"."""
    if name not in TASKS:
        raise CeilingError(f"unknown RWARE task {name!r}; valid tasks: {', '.join(TASKS)}")
    return RwareTask(name, **TASKS[name])
