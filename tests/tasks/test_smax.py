"""SMAX adapter: shapes, masks, determinism, episode end, win and reward bookkeeping.

SMAX compiles slowly, so only `3m` is stepped (with one jitted `step` shared by every test); the
other scenarios are checked by tracing alone (`jax.eval_shape`) or by a single reset.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ceiling.errors import CeilingError
from ceiling.tasks.base import TaskState, TimeStep
from ceiling.tasks.registry import make
from ceiling.tasks.smax import HORIZON, TASKS, make_task

STOP = 4  # JaxMARL's "stop" action: the only one a dead unit may take


@pytest.fixture(scope="module")
def task3m() -> Any:
    return make_task("3m")


@pytest.fixture(scope="module")
def jitted(task3m: Any) -> tuple[Any, Any]:
    return jax.jit(task3m.reset), jax.jit(task3m.step)


@pytest.fixture(scope="module")
def episode0(jitted: tuple[Any, Any]) -> list[tuple[TaskState, TimeStep]]:
    return _episode(jitted, seed=0)


@jax.jit
def _random_action(key: jax.Array, mask: jax.Array) -> jax.Array:
    return jax.random.categorical(key, jnp.where(mask, 0.0, -jnp.inf)).astype(jnp.int32)


def _episode(jitted: tuple[Any, Any], seed: int) -> list[tuple[TaskState, TimeStep]]:
    """Reset from `seed`, play uniformly random legal actions until done, then two more steps."""
    reset, step = jitted
    state, timestep = reset(jax.random.PRNGKey(seed))
    trajectory = [(state, timestep)]
    action_key = jax.random.PRNGKey(seed + 1000)
    for t in range(HORIZON + 2):
        action = _random_action(jax.random.fold_in(action_key, t), timestep.action_mask)
        state, timestep = step(state, action)
        trajectory.append((state, timestep))
        if len(trajectory) > 3 and bool(trajectory[-3][1].done):
            break
    return trajectory


def _trees_equal(a: Any, b: Any) -> bool:
    leaves_a, tree_a = jax.tree_util.tree_flatten(a)
    leaves_b, tree_b = jax.tree_util.tree_flatten(b)
    return tree_a == tree_b and all(
        np.array_equal(np.asarray(x), np.asarray(y))
        for x, y in zip(leaves_a, leaves_b, strict=True)
    )


def test_task_names_and_registry() -> None:
    assert set(TASKS) == {"3m", "2s3z", "smacv2_5_units", "smacv2_10_units", "smacv2_20_units"}
    assert make("smax:3m").spec.name == "smax:3m"
    with pytest.raises(CeilingError, match="valid tasks"):
        make_task("4m")


def test_spec_of_3m(task3m: Any) -> None:
    spec = task3m.spec
    # 13 features per other unit (2 allies + 3 enemies), 10 own features, 3 agent ids.
    assert spec.num_agents == 3
    assert spec.observation_shape == (13 * 5 + 10 + 3,)
    assert spec.num_actions == 3 + 5
    assert spec.global_state_shape == (12 * 6,)
    assert spec.horizon == HORIZON == 100
    assert spec.has_win and spec.family == "smax"


@pytest.mark.parametrize("name", sorted(TASKS))
def test_spec_matches_traced_shapes(name: str) -> None:
    task = make_task(name)
    spec = task.spec
    keys = jnp.stack([jax.random.PRNGKey(0), jax.random.PRNGKey(1)])
    # vmapped reset and step must trace; their shapes must agree with the spec.
    states, timesteps = jax.eval_shape(jax.vmap(task.reset), keys)
    actions = jax.ShapeDtypeStruct((2, spec.num_agents), jnp.int32)
    _, stepped = jax.eval_shape(jax.vmap(task.step), states, actions)
    for timestep in (timesteps, stepped):
        assert timestep.observation.shape == (2, spec.num_agents, *spec.observation_shape)
        assert timestep.observation.dtype == jnp.float32
        assert timestep.action_mask.shape == (2, spec.num_agents, spec.num_actions)
        assert timestep.action_mask.dtype == jnp.bool_
        assert timestep.global_state.shape == (2, *spec.global_state_shape)
        assert timestep.reward.shape == timestep.done.shape == timestep.won.shape == (2,)
        assert timestep.won.dtype == timestep.done.dtype == jnp.bool_


def test_reset_and_step_states_have_one_type(task3m: Any) -> None:
    state, _ = jax.eval_shape(task3m.reset, jax.random.PRNGKey(0))
    action = jax.ShapeDtypeStruct((task3m.spec.num_agents,), jnp.int32)
    stepped, _ = jax.eval_shape(task3m.step, state, action)
    assert jax.tree_util.tree_structure(state) == jax.tree_util.tree_structure(stepped)
    for a, b in zip(
        jax.tree_util.tree_leaves(state), jax.tree_util.tree_leaves(stepped), strict=True
    ):
        assert (a.shape, a.dtype, a.weak_type) == (b.shape, b.dtype, b.weak_type)


def test_reset_timestep(task3m: Any, jitted: tuple[Any, Any]) -> None:
    reset, _ = jitted
    _, timestep = reset(jax.random.PRNGKey(0))
    num_agents = task3m.spec.num_agents
    np.testing.assert_array_equal(timestep.observation[:, -num_agents:], np.eye(num_agents))
    mask = np.asarray(timestep.action_mask)
    # At the start everyone is alive and out of range: move or stop, no shooting.
    assert mask[:, :5].all() and not mask[:, 5:].any()
    assert float(timestep.reward) == 0.0 and not bool(timestep.done) and not bool(timestep.won)


def test_different_keys_give_different_instances(jitted: tuple[Any, Any]) -> None:
    reset, _ = jitted
    a, _ = reset(jax.random.PRNGKey(0))
    b, _ = reset(jax.random.PRNGKey(1))
    assert not np.array_equal(a.env.state.unit_positions, b.env.state.unit_positions)
    # SMACv2 draws unit types too: over a few keys the allied line-ups must differ.
    task = make_task("smacv2_5_units")
    smacv2_reset = jax.jit(task.reset)
    units = [smacv2_reset(jax.random.PRNGKey(seed))[0].env.state for seed in range(4)]
    line_ups = {tuple(np.asarray(u.unit_types[: task.spec.num_agents])) for u in units}
    assert len(line_ups) > 1
    assert not np.array_equal(units[0].unit_positions, units[1].unit_positions)


@pytest.mark.slow
def test_episode_ends_and_is_absorbing(task3m: Any, episode0: list[Any]) -> None:
    trajectory = episode0
    dones = [bool(ts.done) for _, ts in trajectory]
    assert True in dones[: HORIZON + 1] and not dones[0]
    end = dones.index(True)
    assert len(trajectory) == end + 3  # two steps taken after the end
    for before, after in zip(trajectory[end:], trajectory[end + 1 :], strict=False):
        assert float(after[1].reward) == 0.0 and bool(after[1].done)
        assert _trees_equal(before[0].env, after[0].env)
        assert int(after[0].step) == end
    assert trajectory[end][1].won.dtype == jnp.bool_
    # Random play against the heuristic loses: the team is wiped out well before the horizon.
    assert end < HORIZON and not bool(trajectory[end][1].won)
    # Masks: at least one legal action each, and dead allies may only stop.
    num_agents = task3m.spec.num_agents
    saw_dead = False
    for state, timestep in trajectory:
        mask = np.asarray(timestep.action_mask)
        assert mask.dtype == bool and mask.any(axis=-1).all()
        dead = ~np.asarray(state.env.state.unit_alive[:num_agents])
        saw_dead |= bool(dead.any())
        assert (mask[dead] == np.eye(task3m.spec.num_actions, dtype=bool)[STOP]).all()
    assert saw_dead


def test_reward_is_one_copy_of_the_team_reward(task3m: Any, episode0: list[Any]) -> None:
    trajectory = episode0
    env = task3m.env
    total = 0.0
    for (before, _), (after, timestep) in zip(trajectory, trajectory[1:], strict=False):
        health_lost = before.env.state.unit_health - after.env.state.unit_health
        max_health = env.unit_type_health[after.env.state.unit_types]
        enemy_fraction = float(jnp.sum((health_lost / max_health)[env.num_allies :]))
        expected = enemy_fraction / env.num_enemies + float(timestep.won)
        assert float(timestep.reward) == pytest.approx(expected, abs=1e-5)
        total += float(timestep.reward)
    assert 0.0 < total < 1.0  # some damage dealt, no win


@pytest.mark.parametrize("num_killed", [1, 3])
def test_win_needs_every_enemy_dead_and_pays_the_bonus(
    task3m: Any, jitted: tuple[Any, Any], num_killed: int
) -> None:
    reset, step = jitted
    state, _ = reset(jax.random.PRNGKey(0))
    units = state.env.state
    num_allies = task3m.spec.num_agents
    # Put the first `num_killed` enemies, nearly dead, right in front of their allies (the others
    # stay out of range): a volley by each ally at its own enemy kills exactly those.
    enemies = jnp.arange(num_allies, num_allies + num_killed)
    positions = units.unit_positions.at[enemies].set(
        units.unit_positions[:num_killed] + jnp.array([1.5, 0.0])
    )
    health = units.unit_health.at[enemies].set(0.5)
    state = state._replace(
        env=state.env.replace(state=units.replace(unit_positions=positions, unit_health=health))
    )
    shoot_own_enemy = jnp.arange(num_allies, dtype=jnp.int32) + 5
    state, timestep = step(state, shoot_own_enemy)
    alive = np.asarray(state.env.state.unit_alive)
    assert alive[:num_allies].all() and alive[num_allies:].sum() == num_allies - num_killed
    won = num_killed == num_allies
    assert bool(timestep.won) == won and bool(timestep.done) == won
    # Damage: 0.5 of 45 hit points per killed enemy, averaged over the 3 enemies; +1 for a win.
    assert float(timestep.reward) == pytest.approx(won + num_killed * (0.5 / 45.0) / 3, abs=1e-5)
    if won:
        _, after = step(state, shoot_own_enemy)
        assert float(after.reward) == 0.0 and bool(after.won) and bool(after.done)


def test_horizon_ends_the_episode(jitted: tuple[Any, Any]) -> None:
    reset, step = jitted
    state, _ = reset(jax.random.PRNGKey(0))
    # Both clocks (ours and JaxMARL's, which agree) one step short of the horizon.
    last = jnp.asarray(HORIZON - 1, jnp.int32)
    state = state._replace(
        step=last, env=state.env.replace(state=state.env.state.replace(step=last))
    )
    stop = jnp.full((3,), STOP, jnp.int32)
    state, timestep = step(state, stop)
    assert bool(timestep.done) and not bool(timestep.won) and int(state.step) == HORIZON


def test_stepping_is_deterministic(jitted: tuple[Any, Any]) -> None:
    first = _episode(jitted, seed=3)
    second = _episode(jitted, seed=3)
    assert all(_trees_equal(a, b) for a, b in zip(first, second, strict=True))
    _, step = jitted
    state, timestep = first[1]
    action = _random_action(jax.random.PRNGKey(9), timestep.action_mask)
    assert _trees_equal(step(state, action), step(state, action))
    # The step key comes from the state: in a fire fight (weapon cooldowns are jittered by the
    # step key) another instance key gives another transition.
    state, timestep = next((s, t) for s, t in first if t.action_mask[:, 5:].any())
    volley = jnp.where(
        timestep.action_mask[:, 5:].any(-1), 5 + jnp.argmax(timestep.action_mask[:, 5:], -1), STOP
    )
    other = state._replace(key=jax.random.PRNGKey(12345))
    cooldowns = step(state, volley)[0].env.state.unit_weapon_cooldowns
    assert not np.array_equal(cooldowns, step(other, volley)[0].env.state.unit_weapon_cooldowns)
