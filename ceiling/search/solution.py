"""Solutions and their verification by replay.

A solution is a joint action sequence for one instance. Its `verified` return is obtained by
resetting the instance and stepping `task.step` through the actions, independently of the
search that found it; a mismatch with the reported return is an error, never a warning.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ceiling.errors import CeilingError
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


@functools.partial(jax.jit, static_argnums=0)
def replay(task: Task, instance_key: jax.Array, actions: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(total return, won) of playing `actions` [T, A] from the instance `instance_key`."""
    state, _ = task.reset(instance_key)

    def body(state: Any, action: jax.Array) -> tuple[Any, jax.Array]:
        state, timestep = task.step(state, action)
        return state, timestep.reward

    state, rewards = jax.lax.scan(body, state, actions)
    return rewards.sum(), state.timestep.won


def verified_solution(
    task: Task, instance_key: jax.Array, actions: Any, total_return: float, won: bool
) -> Solution:
    """Replay `actions` and build the Solution; raise if the replay disagrees."""
    actions = np.asarray(actions, dtype=np.int32)
    replayed, replayed_won = replay(task, jnp.asarray(instance_key), jnp.asarray(actions))
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
