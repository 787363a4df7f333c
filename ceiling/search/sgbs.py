"""SGBS: simulation-guided beam search (Choo et al. 2022) over the policy's joint actions.

The beam holds search nodes (task states) that all sit at the same depth. One `step` expands
every node into `expansion` joint actions (`Policy.expand`: for a factorised per-agent policy
the exact K most probable, `top_k_joint_actions`; for an autoregressive one such as SABLE,
whose K best cannot be merged agent by agent, the greedy joint action and K - 1 sampled ones
with duplicates dropped), scores each child by a greedy rollout to the end of the
episode, offers every rollout to the incumbent, and keeps the `beam_width` best unfinished
children across all parents by (return so far + rollout return). A node's greedy child
continues exactly the rollout that scored the node, so it inherits that score instead of being
simulated again: below the root a step runs `beam_width * (expansion - 1)` rollouts (at the
root, `expansion`), which the defaults make equal to `width` when `expansion - 1` divides it.
Every node is finished after `horizon` steps, so one pass of the search is at most `horizon`
steps. Without restarts (the default, SGBS as published) that is `max_steps`: the search ends
when its one pass does, whatever budget is left, and a step on an exhausted beam changes
nothing. With `restarts`, a finished pass starts again from the root, and every later pass
expands each node into its greedy joint action and `expansion - 1` joint actions sampled from
the policy (`Policy.sample_children`), so each pass explores other children and the search
spends its whole budget.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ceiling.errors import CeilingError
from ceiling.policies.networks import Params
from ceiling.policies.rollout import Episode, play
from ceiling.search.base import Batch, SearchState, Strategy
from ceiling.search.options import StrategyOptions, option
from ceiling.tasks.base import Task, TaskState

DEFAULT_EXPANSION = 5  # 4 fresh rollouts per node: beam_width = width / 4 for widths of 2^k


class Beam(NamedTuple):
    """SGBS's own search state: the beam."""

    nodes: TaskState  # [B] nodes, all `depth` steps from the root
    prefix_return: jax.Array  # [B] float32 reward collected from the root to each node
    prefix_actions: jax.Array  # [B, T, A] int32 joint actions from the root (rows >= depth: 0)
    score: jax.Array  # [B] float32 prefix return + return of the node's greedy rollout
    alive: jax.Array  # [B] bool: the slot holds an unfinished node to expand
    depth: jax.Array  # [] int32 levels expanded so far in this pass
    root: TaskState  # the instance's initial state, where a restart begins
    passes: jax.Array  # [] int32 passes finished (only restarts make it more than 1)


@dataclasses.dataclass(frozen=True)
class SGBSOptions(StrategyOptions):
    # Their valid ranges depend on the width, so `setup` checks them.
    beam_width: int | None = option(
        None, help="nodes kept per level, at most width // (expansion - 1) (the default)")
    expansion: int | None = option(
        None, help=f"children per node, at most width (default: min({DEFAULT_EXPANSION}, width))")
    restarts: bool = option(
        False, help="when a pass from the root has finished every node, start another whose "
                    "children are the greedy joint action and sampled ones, until the budget "
                    "is spent (default: one pass, as published)")


# `init` runs outside the driver's jit, and an eager reset dispatches op by op (seconds).
@functools.partial(jax.jit, static_argnums=0)
def _reset(task: Task, instance_key: jax.Array) -> TaskState:
    return task.reset(instance_key)[0]


def _check_count(name: str, value: int, most: int, why: str) -> int:
    if not 1 <= value <= most:
        raise CeilingError(f"sgbs option {name} must be an integer between 1 and {most} "
                           f"({why}), got {value!r}")
    return value


class SGBS(Strategy):
    """one level of simulation-guided beam search: expand each node into its top joint actions, score each child by a greedy rollout, keep the best"""  # noqa: E501

    name = "sgbs"
    Options = SGBSOptions
    options: SGBSOptions

    def setup(self) -> None:
        """`expansion` defaults to min(5, width), `beam_width` to width // (expansion - 1)."""
        width, task = self.width, self.task
        expansion = self.options.expansion
        if expansion is None:
            expansion = min(DEFAULT_EXPANSION, width)
        # The root's children are all simulated in one batch, so at most `width` of them.
        expansion = _check_count("expansion", expansion, width,
                                 f"children per beam node, at most width = {width}")
        most_beam = width // (expansion - 1) if expansion > 1 else width
        beam_width = self.options.beam_width
        if beam_width is None:  # a single child per node leaves one path: no beam needed
            beam_width = most_beam if expansion > 1 else 1
        beam_width = _check_count(
            "beam_width", beam_width, most_beam,
            f"each node costs expansion - 1 = {expansion - 1} rollouts of a batch of {width}")
        self.beam_width, self.expansion = beam_width, expansion
        self.num_simulations = max(beam_width * (expansion - 1), expansion)
        # Static slot -> child maps (children are flat [B * K], parent-major). At the root every
        # child is simulated; below it the greedy child (rank 0) reuses its parent's score.
        # Padding points one past the end and is dropped on scatter.
        children = beam_width * expansion
        below = [p * expansion + k for p in range(beam_width) for k in range(1, expansion)]

        def pad(slots: list[int]) -> np.ndarray:
            return np.array(slots + [children] * (self.num_simulations - len(slots)), np.int32)

        self._root_slots, self._below_slots = pad(list(range(expansion))), pad(below)
        # Children have taken at least one step, so at most horizon - 1 remain.
        self._rollout_length = max(task.spec.horizon - 1, 1)

    @property
    def rollouts_per_step(self) -> int:
        return self.num_simulations

    @property
    def max_steps(self) -> int | None:
        # Every node is finished after one pass; restarts search on until the budget ends.
        return None if self.options.restarts else self.task.spec.horizon

    def init_inner(self, key: jax.Array, params: Params, instance_key: jax.Array) -> Beam:
        del key, params  # every search starts from the root alone
        return self._start(_reset(self.task, instance_key), jnp.zeros((), jnp.int32))

    def _start(self, root: TaskState, passes: jax.Array) -> Beam:
        """A beam holding the root alone, to begin pass number `passes` (from 0)."""
        spec, size = self.task.spec, self.beam_width
        return Beam(
            nodes=jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (size, *x.shape)), root),
            prefix_return=jnp.zeros((size,), jnp.float32),
            prefix_actions=jnp.zeros((size, spec.horizon, spec.num_agents), jnp.int32),
            score=jnp.full((size,), -jnp.inf, jnp.float32),
            alive=jnp.arange(size) == 0,
            depth=jnp.zeros((), jnp.int32),
            root=root,
            passes=passes,
        )

    def _greedy_rollout(self, params: Params, state: TaskState) -> Episode:
        """Greedy actions [L, A] from `state` to the end; absorbing states make L fixed."""
        episode, _ = play(self.task, self.policy, params, state, state.timestep, state.key,
                          self._rollout_length, greedy=True)
        return episode

    def batch(self, search: SearchState, key: jax.Array) -> Batch:
        state: Beam = search.inner
        params = search.params
        size, k = self.beam_width, self.expansion
        horizon = self.task.spec.horizon
        observed = state.nodes.timestep
        # [B, K, A]; child 0 is the greedy action, so it inherits its parent's score. `key`
        # only matters to a policy that samples its children (a factorised one does not).
        actions, log_probs = self.policy.expand(params, observed.observation,
                                                observed.action_mask, key, k)
        if self.options.restarts:  # passes after the first expand into sampled children
            sampled = self.policy.sample_children(params, observed.observation,
                                                  observed.action_mask, key, k)
            later = state.passes > 0
            actions = jnp.where(later, sampled[0], actions)
            log_probs = jnp.where(later, sampled[1], log_probs)
        legal = (jnp.isfinite(log_probs) & state.alive[:, None]).reshape(-1)  # [B * K]
        flat_actions = actions.reshape(size * k, -1)

        parents = jax.tree_util.tree_map(lambda x: jnp.repeat(x, k, axis=0), state.nodes)
        children, timestep = jax.vmap(self.task.step)(parents, flat_actions)
        prefix_return = jnp.repeat(state.prefix_return, k) + timestep.reward
        row = jnp.minimum(state.depth, horizon - 1)  # exhausted beams keep stepping harmlessly
        prefix_actions = jnp.repeat(state.prefix_actions, k, axis=0).at[:, row].set(flat_actions)

        # Simulate the children that need it; illegal children and padding score -inf.
        first = state.depth == 0
        slots = jnp.where(first, self._root_slots, self._below_slots)  # [S]
        gather = jnp.minimum(slots, size * k - 1)
        simulate = (slots < size * k) & legal[gather]
        starts = jax.tree_util.tree_map(lambda x: x[gather], children)
        rollout = jax.vmap(self._greedy_rollout, (None, 0))(params, starts)
        totals = jnp.where(simulate, prefix_return[gather] + rollout.total_return, -jnp.inf)
        # Full [T, A] sequences that replay from the instance: the child's prefix up to and
        # including row `depth`, then its rollout.
        times = jnp.arange(horizon)
        offset = jnp.clip(times - state.depth - 1, 0, self._rollout_length - 1)
        sequences = jnp.where((times <= state.depth)[None, :, None], prefix_actions[gather],
                              rollout.actions[:, offset])
        attempts = Episode(sequences, totals, rollout.won, rollout.length,
                           early_return=jnp.full_like(totals, jnp.nan))  # not kept on the beam

        reused = (jnp.arange(size * k) % k == 0) & ~first & legal
        child_score = jnp.where(reused, jnp.repeat(state.score, k), -jnp.inf)
        child_score = child_score.at[slots].set(totals, mode="drop")
        # A finished child's whole episode is already in the incumbent: only live ones go on.
        kept, order = jax.lax.top_k(jnp.where(timestep.done, -jnp.inf, child_score), size)
        beam = Beam(
            nodes=jax.tree_util.tree_map(lambda x: x[order], children),
            prefix_return=prefix_return[order],
            prefix_actions=prefix_actions[order],
            score=kept,
            alive=jnp.isfinite(kept),
            depth=state.depth + 1,
            root=state.root,
            passes=state.passes,
        )
        if self.options.restarts:  # every node finished: the next step begins a new pass
            over = ~beam.alive.any()
            again = self._start(state.root, state.passes + 1)
            beam = jax.tree_util.tree_map(lambda fresh, old: jnp.where(over, fresh, old),
                                          again, beam)
        return Batch(attempts, inner=beam)
