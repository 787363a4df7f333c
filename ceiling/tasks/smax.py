"""SMAX (JaxMARL's StarCraft Multi-Agent Challenge in JAX) against the built-in heuristic enemy.

This module owns the adapter from `jaxmarl.environments.smax.HeuristicEnemySMAX` to the `Task`
contract: the allied units are the agents (in JaxMARL's order `ally_0, ally_1, ...`), the enemy
team is driven by JaxMARL's scripted heuristic (shoot the closest ally in range, otherwise
advance or chase a visible ally), and every random draw of a transition (the heuristic's choices,
weapon-cooldown jitter) comes from the step key the base class derives from the instance key,
so stepping is deterministic given the state. The SMACv2 scenarios draw unit types and start
positions at reset, so their instances differ by key; the classic ones (`3m`, `2s3z`) differ
only by small position noise.

Quantities, per task with A allies and E enemies (N = A + E units):
- observation [A, 13 (A - 1) + 13 E + 10 + A]: JaxMARL's "unit_list" observation (13 features
  per other unit, 10 own features) with the agent-id one-hot appended. Its fields
  (`observation_fields`): `allies` [A - 1, 13] (the other allies in index order), `enemies`
  [E, 13], each row [health fraction, x, y, last movement x, y, last targeted, weapon cooldown,
  unit-type one-hot (6)] relative to the observer and zero when unseen or dead; `own` [10]
  [health fraction, x, y, weapon cooldown, unit-type one-hot (6)]; `agent_id` [A].
- actions: E + 5 discrete (0-3 move, 4 stop, 5 + j shoot enemy j); dead units may only stop.
- global state [12 N]: JaxMARL's own `world_state`, unnormalised: per unit [health fraction,
  x, y in map units, weapon cooldown in seconds, unit-type one-hot (6)], zeros for dead units,
  then every unit's team (0 ally, 1 enemy) and unit-type id.
- reward: JaxMARL's shared ally reward, unscaled: the enemy team's lost health as a fraction of
  its total (at most 1 over an episode) plus 1 on the step the allies win, so a return is at
  most 2.
"""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp

from ceiling.errors import CeilingError
from ceiling.tasks.base import Observed, Task, TaskSpec, with_agent_ids


@contextlib.contextmanager
def _silenced_stdout() -> Iterator[None]:
    # JaxMARL prints about optional submodules on first import, and its MABrax module resets
    # sys.stdout/stderr to sys.__stdout__/__stderr__ on the way: swap sys.__stdout__ as well,
    # and restore all three afterwards.
    saved = sys.stdout, sys.stderr, sys.__stdout__
    sys.stdout = sys.__stdout__ = io.StringIO()  # type: ignore[assignment,misc]
    try:
        yield
    finally:
        sys.stdout, sys.stderr, sys.__stdout__ = saved  # type: ignore[misc]


with _silenced_stdout():
    from jaxmarl.environments.smax import HeuristicEnemySMAX, map_name_to_scenario

HORIZON = 100  # JaxMARL's own default `max_steps` for SMAX.

TASKS: dict[str, dict[str, Any]] = {
    "3m": {"map_name": "3m"},
    "2s3z": {"map_name": "2s3z"},
    "smacv2_5_units": {"map_name": "smacv2_5_units"},
    "smacv2_10_units": {"map_name": "smacv2_10_units"},
    "smacv2_20_units": {"map_name": "smacv2_20_units"},
}


class SMAXTask(Task):
    """One SMAX scenario (`map_name` in JaxMARL's scenario table) with the heuristic enemy."""

    def __init__(self, name: str, map_name: str) -> None:
        # max_steps == HORIZON: JaxMARL's time-limit termination and the base-class horizon fire
        # on the same step, so `terminated` never ends an episode the horizon would not.
        self.env = HeuristicEnemySMAX(
            scenario=map_name_to_scenario(map_name),
            max_steps=HORIZON,
            action_type="discrete",
            observation_type="unit_list",
            enemy_shoots=True,
            attack_mode="closest",
        )
        self.agents: list[str] = list(self.env.agents)
        self.num_allies: int = self.env.num_allies
        self.stop_action: int = self.env.num_movement_actions - 1
        self.spec = TaskSpec(
            name=f"smax:{name}",
            num_agents=self.num_allies,
            observation_shape=(self.env.obs_size + self.num_allies,),
            num_actions=self.env.num_ally_actions,
            global_state_shape=(self.env.state_size,),
            horizon=HORIZON,
            has_win=True,
            observation_fields=(
                ("allies", (self.num_allies - 1, len(self.env.unit_features))),
                ("enemies", (self.env.num_enemies, len(self.env.unit_features))),
                ("own", (len(self.env.own_features),)),
                ("agent_id", (self.num_allies,)),
            ),
        )

    # -- the family adapter --------------------------------------------------------------------
    def _reset(self, key: jax.Array) -> tuple[Any, Observed]:
        obs, env_state = self.env.reset(key)
        # The heuristic's initial memory holds weakly typed Python ints; stepped states hold
        # strong int32. Strengthen them so reset and stepped states share one pytree type (one
        # compilation of `step`, and states that mix freely in a beam or a `lax.scan` carry).
        env_state = jax.tree.map(lambda leaf: leaf.astype(leaf.dtype), env_state)
        return env_state, self._observed(obs, env_state)

    def _step(
        self, env_state: Any, action: jax.Array, key: jax.Array
    ) -> tuple[Any, Observed, jax.Array, jax.Array, jax.Array]:
        actions = {agent: action[i].astype(jnp.int32) for i, agent in enumerate(self.agents)}
        # `step_env`, not `step`: JaxMARL's `step` auto-resets on done, which would break the
        # base class's absorbing state and spend part of the key on a reset.
        obs, env_state, rewards, dones, _ = self.env.step_env(key, env_state, actions)
        # Every ally gets the same team reward (computed once per team in JaxMARL): take one copy.
        reward = rewards[self.agents[0]]
        observed = self._observed(obs, env_state)
        return env_state, observed, reward, dones["__all__"], self._won(env_state)

    # -- helpers -----------------------------------------------------------------------------
    def _observed(self, obs: dict[str, jax.Array], env_state: Any) -> Observed:
        features = jnp.stack([obs[agent] for agent in self.agents])
        avail = self.env.get_avail_actions(env_state)
        mask = jnp.stack([avail[agent] for agent in self.agents]).astype(bool)
        # JaxMARL already leaves "stop" legal for every unit, dead or alive; force it anyway
        # wherever a row would be empty, because the contract promises one legal action.
        empty = ~mask.any(axis=-1)
        mask = mask.at[:, self.stop_action].set(mask[:, self.stop_action] | empty)
        return Observed(
            observation=with_agent_ids(features),
            action_mask=mask,
            global_state=obs["world_state"].astype(jnp.float32),
        )

    def _won(self, env_state: Any) -> jax.Array:
        # JaxMARL's win condition (the one that pays its won-battle bonus): every enemy dead and
        # at least one ally alive; all units dying together is a draw, not a win.
        alive = env_state.state.unit_alive
        return ~alive[self.num_allies :].any() & alive[: self.num_allies].any()


def make_task(name: str) -> Task:
    """The SMAX task `name`, one of `TASKS`."""
    if name not in TASKS:
        raise CeilingError(f"unknown SMAX task {name!r}; valid tasks: {', '.join(TASKS)}")
    return SMAXTask(name, **TASKS[name])
