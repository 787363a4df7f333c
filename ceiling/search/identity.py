"""One search identity: the keys that make a search cell reproducible anywhere.

A search is identified by (seed, task, instance). Its instance key is the `instance`-th key of
the task's fixed test set, and its search key is derived here, by this one function, from all
three; `ceiling solve`, `ceiling bench` and every benchmark call it, so `ceiling solve --seed S
--instance I` replays a bench cell with seed S on instance I exactly (with a rollout budget).
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ceiling.errors import CeilingError
from ceiling.tasks.instances import TEST_SEED_OFFSET, TEST_SET_SIZE, keys_from_seeds
from ceiling.tasks.registry import make


def task_tag(task: str) -> int:
    """A stable 31-bit number for a task name (crc32; Python's `hash` changes per process)."""
    return zlib.crc32(task.encode()) & 0x7FFFFFFF


@jax.jit
def _fold(seed: jax.Array, tag: jax.Array, indices: jax.Array) -> jax.Array:
    base = jax.random.fold_in(jax.random.PRNGKey(seed), tag)
    return jax.vmap(lambda i: jax.random.fold_in(base, i))(indices)


SEED_LIMIT = 2**32  # seeds are uint32, like PRNGKey's


def search_keys(seed: int, task: str, instance_indices: Sequence[int]) -> np.ndarray:
    """Search keys [N, 2] of (seed, task, instance) for many instances in one call."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) \
            or not 0 <= seed < SEED_LIMIT:
        raise CeilingError(f"seed must be an integer in [0, 2**32), got {seed!r}")
    indices = jnp.asarray(np.asarray(instance_indices, np.uint32))
    return np.asarray(_fold(jnp.uint32(seed), jnp.uint32(task_tag(task)), indices))


def search_key(seed: int, task: str, instance: int) -> jax.Array:
    """The key a search of test instance `instance` of `task` with seed `seed` starts from."""
    return jnp.asarray(search_keys(seed, task, [instance])[0])


def instance_key(task: str, instance: int) -> jax.Array:
    """The `instance`-th key of `task`'s test set (`instances(task, "test", n)[instance]`)."""
    if isinstance(instance, bool) or not isinstance(instance, int | np.integer) \
            or not 0 <= instance < TEST_SET_SIZE:
        raise CeilingError(f"instance must be a test-set index in [0, {TEST_SET_SIZE}), "
                           f"got {instance!r}")
    return jnp.asarray(_test_key(task, int(instance)))


@functools.lru_cache(maxsize=4096)
def _test_key(task: str, instance: int) -> np.ndarray:
    make(task)  # an unknown task fails here, naming the valid ones
    return np.asarray(keys_from_seeds(jnp.asarray([TEST_SEED_OFFSET + instance]))[0])
