"""Connector (jumanji 1.1.2) as a `Task`: route every agent's head to its own target on a grid.

This module owns the Connector family: its named tasks (`TASKS`), the encoding of jumanji's
integer grid into float features for shared-parameter MLP policies and centralised critics,
and the mapping of jumanji's per-agent rewards and step types onto the `Task` contract.

Instances come from jumanji's `RandomWalkGenerator` (every instance is solvable). Each agent
moves its head one cell per step (actions: no-op, up, right, down, left) and leaves an
impassable path behind; a cell is enterable only if it is empty or the agent's own target.

Observation of agent i, `[7 * 7 * 4 + 8 + A]` float32:
- a 7x7 window centred on the agent's head, four one-hot channels per cell: *blocked for i*
  (outside the grid, any path, any head, another agent's target), *own target*, *other
  agents' open targets*, *other agents' moving heads* (heads not yet on their target);
- eight scalars: head row/col, target row/col and the signed offset target minus head, all
  divided by `grid_size - 1`; whether i is connected; the fraction of the horizon elapsed;
- the agent-id one-hot. A local window keeps the size independent of the grid (227 features
  on con-15x15x23a) while the scalars still point to a target that lies outside the window.
The window is stored channel by channel (`observation_fields` names it `local_view`,
[4, 7, 7] = [channel, row, column]), then the scalars as `head_position`, `target_position`,
`connected`, `target_offset` and `elapsed`, then `agent_id`.

Global state, `[3 * G * G + 5 * A + 1]` float32: the full grid as three one-hot planes (paths,
heads, open targets), then per agent head row/col, target row/col (normalised) and the
connected flag, then the fraction of the horizon elapsed.

Reward: the sum of jumanji's per-agent dense rewards (+1 when an agent connects, -0.03 per
step for each agent not yet connected). `terminated` is jumanji's own episode end (every agent
connected or unable to move), read from a last step with all discounts zero; jumanji is given
the same time limit as the task horizon so both agree, but truncation is left to the base
class. Connector has no win condition in the literature (returns only), so `has_win` is False.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jumanji.environments.routing.connector import Connector
from jumanji.environments.routing.connector.constants import PATH, POSITION, TARGET
from jumanji.environments.routing.connector.generator import RandomWalkGenerator
from jumanji.environments.routing.connector.types import State
from jumanji.environments.routing.connector.utils import get_position, get_target

from ceiling.errors import CeilingError
from ceiling.tasks.base import ObservationFields, Observed, Task, TaskSpec, with_agent_ids

# grid_size x grid_size x agents; the time limit (also the task horizon) is G * G steps.
TASKS: dict[str, dict[str, int]] = {
    "con-5x5x3a": {"grid_size": 5, "num_agents": 3, "time_limit": 25},
    "con-7x7x5a": {"grid_size": 7, "num_agents": 5, "time_limit": 49},
    "con-10x10x10a": {"grid_size": 10, "num_agents": 10, "time_limit": 100},
    "con-15x15x23a": {"grid_size": 15, "num_agents": 23, "time_limit": 225},
}

WINDOW = 7  # side of the local view; odd so that the head sits in the centre
NUM_CHANNELS = 4  # blocked, own target, other open targets, other moving heads
NUM_SCALARS = 8
NUM_ACTIONS = 5


def observation_fields(num_agents: int) -> ObservationFields:
    """The named parts of an agent's observation, in the order `_observation` writes them."""
    return (
        ("local_view", (NUM_CHANNELS, WINDOW, WINDOW)),  # channels first, then rows, columns
        ("head_position", (2,)),  # row, column / (G - 1)
        ("target_position", (2,)),
        ("connected", (1,)),
        ("target_offset", (2,)),  # target minus head / (G - 1)
        ("elapsed", (1,)),  # fraction of the horizon
        ("agent_id", (num_agents,)),
    )


class ConnectorTask(Task):
    """A jumanji `Connector` with `num_agents` agents on a `grid_size` square grid."""

    def __init__(self, name: str, grid_size: int, num_agents: int, time_limit: int) -> None:
        generator = RandomWalkGenerator(grid_size=grid_size, num_agents=num_agents)
        self.env = Connector(generator=generator, time_limit=time_limit)
        self.grid_size = grid_size
        self.num_agents = num_agents
        self.spec = TaskSpec(
            name=f"connector:{name}",
            num_agents=num_agents,
            observation_shape=(WINDOW * WINDOW * NUM_CHANNELS + NUM_SCALARS + num_agents,),
            num_actions=NUM_ACTIONS,
            global_state_shape=(3 * grid_size * grid_size + 5 * num_agents + 1,),
            horizon=time_limit,
            has_win=False,
            observation_fields=observation_fields(num_agents),
        )

    def _reset(self, key: jax.Array) -> tuple[State, Observed]:
        state, _ = self.env.reset(key)
        return state, self._observe(state)

    def _step(
        self, env_state: State, action: jax.Array, key: jax.Array
    ) -> tuple[State, Observed, jax.Array, jax.Array, jax.Array]:
        # Connector's dynamics are deterministic, so the step key is not needed.
        del key
        state, timestep = self.env.step(env_state, action.astype(jnp.int32))
        reward = jnp.sum(timestep.reward).astype(jnp.float32)
        # A truncation (time limit) keeps some discounts at 1; only jumanji's own end zeroes all.
        terminated = timestep.last() & jnp.all(timestep.discount == 0)
        return state, self._observe(state), reward, terminated, jnp.zeros((), bool)

    # -- encoding --------------------------------------------------------------------------
    def _observe(self, state: State) -> Observed:
        return Observed(
            observation=self._observation(state),
            action_mask=state.action_mask,
            global_state=self._global_state(state),
        )

    def _planes(self, grid: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Paths, heads and open targets of the grid, each [G, G] bool."""
        # Cell values are 3 * id + (PATH | POSITION | TARGET) for an agent's cell, 0 when empty.
        kind = (grid - 1) % 3 + 1
        occupied = grid > 0
        return occupied & (kind == PATH), occupied & (kind == POSITION), occupied & (kind == TARGET)

    def _scalars(self, state: State) -> jax.Array:
        """[A, 5] normalised head row/col, target row/col and connected flag."""
        scale = max(self.grid_size - 1, 1)
        agents = state.agents
        return jnp.concatenate(
            [agents.position / scale, agents.target / scale, agents.connected[:, None]], axis=-1
        ).astype(jnp.float32)

    def _elapsed(self, state: State) -> jax.Array:
        return (state.step_count / self.spec.horizon).astype(jnp.float32)

    def _observation(self, state: State) -> jax.Array:
        """[A, obs_dim] per-agent local windows, scalars and agent ids."""
        grid, agents = state.grid, state.agents
        ids = jnp.arange(self.num_agents)
        _, _, open_targets = self._planes(grid)
        own_target = grid[None] == get_target(ids)[:, None, None]  # [A, G, G]
        own_head = grid[None] == get_position(ids)[:, None, None]
        # Connected heads never move again: they are plain obstacles, already in `blocked`.
        moving_heads = jnp.zeros(grid.shape, bool)
        moving_heads = moving_heads.at[tuple(agents.position.T)].set(~agents.connected)
        channels = jnp.stack(
            [
                (grid > 0)[None] & ~own_target,
                own_target,
                open_targets[None] & ~own_target,
                moving_heads[None] & ~own_head,
            ],
            axis=1,
        ).astype(jnp.float32)  # [A, C, G, G]
        radius = WINDOW // 2
        # Pad so that a window never leaves the array; outside the grid reads as blocked only.
        outside = jnp.array([1.0, 0.0, 0.0, 0.0], jnp.float32)[None, :, None, None]
        pad = ((0, 0), (0, 0), (radius, radius), (radius, radius))
        padded = jnp.pad(channels - outside, pad) + outside

        def window(planes: jax.Array, position: jax.Array) -> jax.Array:
            # The padding shifts coordinates by `radius`, so the head's row is the window start.
            start = (0, position[0], position[1])
            return jax.lax.dynamic_slice(planes, start, (NUM_CHANNELS, WINDOW, WINDOW))

        local = jax.vmap(window)(padded, agents.position).reshape(self.num_agents, -1)
        scale = max(self.grid_size - 1, 1)
        offset = (agents.target - agents.position) / scale
        elapsed = jnp.broadcast_to(self._elapsed(state), (self.num_agents, 1))
        features = jnp.concatenate(
            [local, self._scalars(state), offset.astype(jnp.float32), elapsed], axis=-1
        )
        return with_agent_ids(features)

    def _global_state(self, state: State) -> jax.Array:
        """[3 * G * G + 5 * A + 1] grid planes, per-agent scalars, elapsed fraction."""
        planes = jnp.stack(self._planes(state.grid)).astype(jnp.float32).reshape(-1)
        return jnp.concatenate(
            [planes, self._scalars(state).reshape(-1), self._elapsed(state)[None]]
        )


def make_task(name: str) -> Task:
    """The Connector task `name` (a key of `TASKS`, e.g. "con-5x5x3a")."""
    if name not in TASKS:
        raise CeilingError(f"unknown Connector task {name!r}; valid tasks: {', '.join(TASKS)}")
    return ConnectorTask(name, **TASKS[name])
