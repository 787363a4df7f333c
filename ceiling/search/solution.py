"""Solutions and their verification by replay.

A solution is a joint action sequence for one instance. Its `verified` return is obtained by
resetting the instance and stepping `task.step` through the actions, independently of the
search that found it; a mismatch with the reported return is an error, never a warning.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import threading
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ceiling.compile_options import RUN_ONCE_COMPILER_OPTIONS
from ceiling.errors import CeilingError
from ceiling.programs import on_release
from ceiling.tasks.base import Task

# Search rollouts run vmapped and fused differently from a lone replay, so float rewards
# (SMAX's health fractions) may differ in the last bits; anything larger is a real mismatch.
REPLAY_TOLERANCE = 1e-4


@dataclasses.dataclass(frozen=True)
class Solution:
    task: str
    actions: np.ndarray  # [T, A] int32 joint actions
    total_return: float  # as reported by the search
    won: bool | None  # None where the task has no win condition
    verified: float  # the return obtained by replaying `actions` from the instance

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "actions": self.actions.tolist(),
            "return": self.total_return,
            "won": self.won,
            "verified": self.verified,
        }


def _play_back(task: Task, instance_key: jax.Array,
               actions: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(total return, won) of playing `actions` [T, A] from the instance `instance_key`."""
    state, _ = task.reset(instance_key)

    def body(state: Any, action: jax.Array) -> tuple[Any, jax.Array]:
        state, timestep = task.step(state, action)
        return state, timestep.reward

    state, rewards = jax.lax.scan(body, state, actions)
    return rewards.sum(), state.timestep.won


def _play_back_batch(task: Task, instance_key: jax.Array, actions: jax.Array,
                     width: int) -> tuple[jax.Array, jax.Array]:
    """`_play_back` run in `width` identical lanes (vmapped), lane 0's outcome."""
    keys = jnp.broadcast_to(instance_key, (width, *instance_key.shape))
    lanes = jnp.broadcast_to(actions, (width, *actions.shape))
    total, won = jax.vmap(lambda k, a: _play_back(task, k, a))(keys, lanes)
    return total[0], won[0]


# A replay runs the float arithmetic the search ran. XLA compiles the same step differently
# with its run-once options (optimisation off) and with its defaults, and differently again
# when vmapped over a batch (vectorised across the lanes) than alone, and in SMAX a last-bit
# difference in a unit's health or position can decide a battle:
# - SGBS from IPPO on smax:smacv2_5_units test instance 25 found a won episode (return 2.0)
#   that the run-once replay lost (0.98);
# - the same SGBS on test instance 4 found a won episode that a default-compiled replay lost
#   (0.944) alone or vmapped over 2 or 8 lanes, and won vmapped over 64 lanes, the search's
#   width (`ceiling solve --checkpoint shipped:ippo --task smax:smacv2_5_units --instance 4
#   --strategy sgbs --width 64 --seconds 30` failed its verification before this replay).
# So a budget-free strategy's single episode (compiled with the run-once options,
# `Strategy.jitted_step`) is replayed alone by `replay_run_once`, and a search's solution by
# `replay_batch`, in as many identical lanes as the search's rollouts ran (its width), with the
# default options. Every lane plays the same actions; lane 0 is read.
replay = jax.jit(_play_back, static_argnums=0)
replay_run_once = jax.jit(_play_back, static_argnums=0,
                          compiler_options=RUN_ONCE_COMPILER_OPTIONS)
replay_batch = jax.jit(_play_back_batch, static_argnums=(0, 3))


def _lower(run_once: bool, width: int, task: Task, key: Any, actions: Any) -> Any:
    """The replay program for a solution of this kind, lowered for these arguments."""
    if run_once:
        return replay_run_once.lower(task, key, actions)
    if width > 1:
        return replay_batch.lower(task, key, actions, width)
    return replay.lower(task, key, actions)


# Replays compiled ahead of time by `prepare_replay`, keyed by (run once, width, task, key
# shape, actions shape), the most recently used last. At most `PREPARED_REPLAYS` are kept: a
# long-lived process (a sweep's worker) meets many tasks and widths, and every program kept
# holds memory mappings of its own (`ceiling.programs`).
PREPARED_REPLAYS = 16
_prepared: collections.OrderedDict[tuple[Any, ...], concurrent.futures.Future[Any]] = (
    collections.OrderedDict())
_prepared_lock = threading.Lock()
_compiler = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="ceiling-replay")


@on_release
def forget_prepared_replays() -> None:
    """Drop every replay `prepare_replay` compiled (`ceiling.programs`)."""
    with _prepared_lock:
        _prepared.clear()


def _signature(task: Task, instance_key: Any, actions_shape: tuple[int, ...],
               run_once: bool, width: int) -> tuple[Any, ...]:
    # A run-once replay plays alone whatever the width (`_lower`): one program for all widths.
    return (run_once, 1 if run_once else width, task, tuple(instance_key.shape),
            str(instance_key.dtype), tuple(actions_shape))


def prepare_replay(task: Task, instance_key: jax.Array, actions_shape: tuple[int, ...],
                   run_once: bool = False, width: int = 1) -> None:
    """Start compiling the replay of `actions_shape` solutions in a background thread.

    A search compiles its own program first; XLA releases the GIL while it compiles, so on a
    machine with a second core the replay's compile overlaps the search's instead of
    following it (`driver.solve` calls this before compiling its step). Idempotent.
    """
    _prepared_replay(task, instance_key, actions_shape, run_once, width)


def _prepared_replay(task: Task, instance_key: jax.Array, actions_shape: tuple[int, ...],
                     run_once: bool, width: int) -> concurrent.futures.Future[Any]:
    """The (future) compiled replay for this signature, its compile started if not yet."""
    signature = _signature(task, instance_key, actions_shape, run_once, width)
    with _prepared_lock:
        if signature in _prepared:
            _prepared.move_to_end(signature)
            return _prepared[signature]
        key = jax.ShapeDtypeStruct(instance_key.shape, instance_key.dtype)
        actions = jax.ShapeDtypeStruct(actions_shape, jnp.int32)
        future = _prepared[signature] = _compiler.submit(
            lambda: _lower(run_once, width, task, key, actions).compile())
        while len(_prepared) > PREPARED_REPLAYS:
            _prepared.popitem(last=False)
        return future


def _replay(task: Task, instance_key: jax.Array, actions: jax.Array, run_once: bool,
            width: int) -> Any:
    compiled = _prepared_replay(task, instance_key, actions.shape, run_once, width).result()
    return compiled(instance_key, actions)


def verified_solution(
    task: Task, instance_key: jax.Array, actions: Any, total_return: float, won: bool,
    run_once: bool = False, width: int = 1,
) -> Solution:
    """Replay `actions` and build the Solution; raise if the replay disagrees. `run_once`: the
    solution came from a program compiled with the run-once options (a budget-free strategy),
    so the replay is compiled with them too; otherwise `width` > 1 replays it in that many
    identical vmapped lanes, as the search that found it ran its rollouts."""
    actions = np.asarray(actions, dtype=np.int32)
    # device_put, not jnp.asarray: the latter compiles a small program per new shape
    if not isinstance(instance_key, jax.Array):
        instance_key = jax.device_put(np.asarray(instance_key))
    replayed, replayed_won = _replay(task, instance_key, jax.device_put(actions), run_once,
                                     width)
    replayed = float(replayed)
    if not np.isclose(replayed, total_return, rtol=0.0, atol=REPLAY_TOLERANCE):
        raise CeilingError(
            f"solution failed verification on {task.spec.name}: the search reported return "
            f"{total_return!r} but replaying its actions gives {replayed!r}"
        )
    has_win = task.spec.has_win
    if has_win and bool(replayed_won) != bool(won):
        raise CeilingError(
            f"solution failed verification on {task.spec.name}: reported won={bool(won)} but "
            f"the replay gives won={bool(replayed_won)}"
        )
    return Solution(task=task.spec.name, actions=actions, total_return=float(total_return),
                    won=bool(won) if has_win else None, verified=replayed)
