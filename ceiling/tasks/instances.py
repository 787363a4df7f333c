"""Named instance sets. An instance is identified by the key its task is reset with.

Every instance key is `jax.random.PRNGKey(seed)` for an integer seed, and the sets are
separated by seed range, so they are disjoint by construction and the same for every task:

- `train`: fresh seeds drawn uniformly from [0, 2**30) by the trainer's own key;
- `test`: the fixed list of seeds 2**30 + i for i = 0, 1, ..., TEST_SET_SIZE - 1.

`instances(task, "test", n)` returns the first n test keys, so "the first 32 test instances" of a
task means the same states on every machine and in every paper table produced with ceiling.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ceiling.errors import CeilingError

TRAIN_SEED_LIMIT = 2**30
TEST_SEED_OFFSET = 2**30
TEST_SET_SIZE = 100_000
SPLITS = ("train", "test")


def seeds_of_test_set(n: int) -> list[int]:
    """The integer seeds of the first n test instances."""
    _check_count(n)
    return [TEST_SEED_OFFSET + i for i in range(n)]


def keys_from_seeds(seeds: jax.Array) -> jax.Array:
    """[N] int seeds -> [N, 2] uint32 instance keys."""
    return jax.vmap(jax.random.PRNGKey)(jnp.asarray(seeds, jnp.uint32))


def train_keys(key: jax.Array, n: int) -> jax.Array:
    """[n, 2] fresh training-instance keys, never equal to a test key."""
    seeds = jax.random.randint(key, (n,), 0, TRAIN_SEED_LIMIT, dtype=jnp.int32)
    return keys_from_seeds(seeds)


def instances(task: object, split: str, n: int, key: jax.Array | None = None) -> jax.Array:
    """[n, 2] instance keys of `split` for `task` (a Task or a task name).

    The test set is the same for every task; `task` is validated so that a typo fails loudly.
    The train split needs `key` (its instances are drawn fresh).
    """
    from ceiling.tasks.registry import make

    if isinstance(task, str):
        make(task)
    if split not in SPLITS:
        raise CeilingError(f"unknown instance set {split!r}; valid sets: {', '.join(SPLITS)}")
    if split == "test":
        return keys_from_seeds(jnp.asarray(seeds_of_test_set(n), jnp.uint32))
    if key is None:
        raise CeilingError(
            "the 'train' set draws fresh instances: pass key=jax.random.PRNGKey(...)"
        )
    if n < 1:
        raise CeilingError(f"number of instances must be at least 1, got {n}")
    return train_keys(key, n)


def _check_count(n: int) -> None:
    if not 1 <= n <= TEST_SET_SIZE:
        raise CeilingError(
            f"number of test instances must be between 1 and {TEST_SET_SIZE}, got {n}"
        )
