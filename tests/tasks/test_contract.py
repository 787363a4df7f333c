"""The parts of the Task contract that every family shares: names, instance sets, absorbing."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ceiling.errors import CeilingError
from ceiling.tasks import TEST_SEED_OFFSET, instances, make, names, seeds_of_test_set, train_keys
from ceiling.tasks.base import TaskSpec, split_observation


def test_names_cover_every_family_and_the_literature_tasks() -> None:
    all_names = names()
    for expected in ("rware:tiny-2ag-hard", "rware:xlarge-4ag-hard", "connector:con-10x10x10a",
                     "connector:con-15x15x23a", "smax:3m", "smax:2s3z", "smax:smacv2_20_units"):
        assert expected in all_names
    assert len(all_names) == len(set(all_names)) == 15 + 4 + 5


def test_unknown_task_lists_valid_names() -> None:
    with pytest.raises(CeilingError, match="unknown task 'rware:tiny-3ag'.*rware:tiny-2ag-hard"):
        make("rware:tiny-3ag")
    with pytest.raises(CeilingError, match="valid tasks"):
        make("nope")


def test_test_set_is_fixed_and_prefix_stable() -> None:
    first = np.asarray(instances("smax:3m", "test", 8))
    again = np.asarray(instances("rware:tiny-2ag", "test", 16))
    np.testing.assert_array_equal(first, again[:8])
    np.testing.assert_array_equal(first[0], np.asarray(jax.random.PRNGKey(TEST_SEED_OFFSET)))
    assert seeds_of_test_set(3) == [TEST_SEED_OFFSET, TEST_SEED_OFFSET + 1, TEST_SEED_OFFSET + 2]
    assert len({tuple(k) for k in first.tolist()}) == 8


def test_train_and_test_sets_are_disjoint() -> None:
    test = {tuple(k) for k in np.asarray(instances("smax:3m", "test", 4096)).tolist()}
    train = {tuple(k) for k in np.asarray(train_keys(jax.random.PRNGKey(7), 50_000)).tolist()}
    assert not test & train
    # Disjoint by construction: PRNGKey(seed) = [0, seed] for 32-bit seeds, and train seeds are
    # below the test offset.
    assert max(k[1] for k in train) < TEST_SEED_OFFSET <= min(k[1] for k in test)


def test_instance_set_errors() -> None:
    with pytest.raises(CeilingError, match="valid sets: train, test"):
        instances("smax:3m", "validation", 4)
    with pytest.raises(CeilingError, match="between 1 and"):
        instances("smax:3m", "test", 0)
    with pytest.raises(CeilingError, match="pass key="):
        instances("smax:3m", "train", 4)
    with pytest.raises(CeilingError, match="unknown task"):
        instances("smax:4m", "test", 4)
    assert instances("smax:3m", "train", 5, key=jax.random.PRNGKey(0)).shape == (5, 2)


@pytest.mark.slow
def test_finished_episode_is_absorbing(connector_task) -> None:
    task = connector_task
    state, timestep = task.reset(jax.random.PRNGKey(3))
    step = jax.jit(task.step)
    noop = jnp.zeros(task.spec.num_agents, jnp.int32)
    for _ in range(task.spec.horizon):
        state, timestep = step(state, noop)
    assert bool(timestep.done) and int(state.step) == task.spec.horizon
    after, after_ts = step(state, noop + 1)
    assert float(after_ts.reward) == 0.0 and bool(after_ts.done)
    # Everything is frozen but the repeated timestep's reward, which is zero after the end.
    before = state._replace(timestep=state.timestep._replace(reward=jnp.zeros(())))
    for a, b in zip(jax.tree_util.tree_leaves(before), jax.tree_util.tree_leaves(after),
                    strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


# -- observation fields ----------------------------------------------------------------------

FIELD_TASKS = ("rware:tiny-2ag-hard", "rware:small-4ag", "connector:con-5x5x3a",
               "connector:con-10x10x10a", "smax:3m", "smax:2s3z")


@pytest.mark.parametrize("name", FIELD_TASKS)
def test_observation_fields_add_up_to_the_observation(name: str) -> None:
    spec = make(name).spec
    assert spec.observation_fields, f"{name} does not describe its observation"
    names_ = [field for field, _ in spec.observation_fields]
    assert len(names_) == len(set(names_))
    sizes = [math.prod(shape) for _, shape in spec.observation_fields]
    assert sum(sizes) == spec.observation_shape[0]
    assert spec.observation_fields[-1] == ("agent_id", (spec.num_agents,))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["rware:tiny-2ag-hard", "connector:con-5x5x3a", "smax:3m"])
def test_split_observation_round_trips(name: str) -> None:
    task = make(name)
    spec = task.spec
    keys = instances(name, "test", 2)
    _, timestep = jax.jit(jax.vmap(task.reset))(keys)
    observation = timestep.observation  # [2, A, obs_dim]
    parts = split_observation(spec, observation)
    assert list(parts) == [field for field, _ in spec.observation_fields]
    for field, shape in spec.observation_fields:
        assert parts[field].shape == (2, spec.num_agents, *shape)
    flat = jnp.concatenate([p.reshape(2, spec.num_agents, -1) for p in parts.values()], axis=-1)
    np.testing.assert_array_equal(np.asarray(flat), np.asarray(observation))
    np.testing.assert_array_equal(np.asarray(parts["agent_id"][0]), np.eye(spec.num_agents))
    # NumPy arrays split the same way.
    numpy_parts = split_observation(spec, np.asarray(observation[0]))
    for field in parts:
        np.testing.assert_array_equal(numpy_parts[field], np.asarray(parts[field][0]))


@pytest.mark.slow
def test_observation_fields_mean_what_they_say() -> None:
    # RWARE: one direction per agent.
    rware = make("rware:tiny-2ag-hard")
    _, ts = rware.reset(jax.random.PRNGKey(0))
    np.testing.assert_array_equal(
        np.asarray(split_observation(rware.spec, ts.observation)["direction"].sum(-1)), 1.0
    )
    # Connector: channels first; each agent's head, the window's centre, blocks it.
    connector = make("connector:con-5x5x3a")
    state, ts = connector.reset(jax.random.PRNGKey(0))
    parts = split_observation(connector.spec, ts.observation)
    centre = parts["local_view"][:, :, 3, 3]  # [A, channel]
    np.testing.assert_array_equal(np.asarray(centre[:, 0]), 1.0)
    np.testing.assert_array_equal(
        np.asarray(parts["head_position"]), np.asarray(state.env.agents.position) / 4
    )
    # SMAX: every ally starts at full health with one unit type.
    smax = make("smax:3m")
    _, ts = smax.reset(jax.random.PRNGKey(0))
    own = split_observation(smax.spec, ts.observation)["own"]
    np.testing.assert_array_equal(np.asarray(own[:, 0]), 1.0)
    np.testing.assert_array_equal(np.asarray(own[:, 4:].sum(-1)), 1.0)


def test_split_observation_errors_and_undescribed_tasks() -> None:
    spec = make("connector:con-5x5x3a").spec
    with pytest.raises(CeilingError, match=r"does not end in .* observation shape \(207,\)"):
        split_observation(spec, jnp.zeros((3, 206)))
    broken = spec._replace(observation_fields=(("local_view", (4, 7, 7)),))
    with pytest.raises(CeilingError, match="fields add up to 196 features, but its observation "
                                           r"shape is \(207,\)"):
        split_observation(broken, jnp.zeros((3, 207)))
    plain = TaskSpec("test:plain", 2, (5,), 3, (4,), 10, False)
    assert plain.observation_fields == () and plain.fields == (("observation", (5,)),)
    observation = jnp.arange(10.0).reshape(2, 5)
    np.testing.assert_array_equal(np.asarray(split_observation(plain, observation)["observation"]),
                                  np.asarray(observation))
