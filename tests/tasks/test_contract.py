"""The parts of the Task contract that every family shares: names, instance sets, absorbing."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ceiling.errors import CeilingError
from ceiling.tasks import TEST_SEED_OFFSET, instances, make, names, seeds_of_test_set, train_keys


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
