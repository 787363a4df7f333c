"""Deterministic GridWorlds with a vector reward: the world that the policy library lives in.

An N×N grid (N in 8, 16, 32) holds walls, `NUM_GOLD` gold cells, hazards, one lever and one
exit. Four moves; a move into a wall or off the grid stays in place; entering a hazard or the
exit ends the episode; the horizon is N² steps. Each step pays a reward *vector* over
`COMPONENTS`: `path` +1 on reaching the exit, `gold` +1 the first time each gold cell is
entered, `hazard` −1 on entering a hazard, `lever` +1 the first time the lever is entered.

Gold and the lever are collected once, so the Markov state is the position together with the
collected flags: `state = flags · N² + row · N + col` with `NUM_GOLD + 1` flag bits, i.e.
16 · N² states (4,096 on 16×16). Keeping gold to three cells is what keeps the state space
small enough that tabular methods are exact: successor features are a sparse linear solve and
value iteration touches every state. Non-consumable gold would make the state smaller but lets
an agent farm reward by stepping on and off a cell, so that is not what we chose.

`step` is the environment (pure JAX, jittable). `transition_tables` evaluates it once for every
state and action; training reads those tables, which is the same dynamics as calling `step`.
Layouts come from a seed and are rejected and redrawn until the start, every gold cell, the
lever and the exit lie in one hazard-free connected region, so a safe path start→exit and a
safe detour via the lever always exist.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ceiling.errors import CeilingError
from ceiling.reuse.objectives import NUM_COMPONENTS

GRID_SIZES: tuple[int, ...] = (8, 16, 32)
EMPTY, WALL, GOLD, HAZARD, LEVER, EXIT = range(6)
NUM_GOLD = 3
NUM_FLAGS = NUM_GOLD + 1  # gold bits, then the lever bit
LEVER_BIT = NUM_GOLD
NUM_ACTIONS = 4
ACTION_NAMES = ("up", "down", "left", "right")
MOVES = np.array([[-1, 0], [1, 0], [0, -1], [0, 1]], dtype=np.int32)
WALL_DENSITY = 0.18
HAZARD_FRACTION = 1 / 14


@dataclass(frozen=True)
class Layout:
    """One grid. `cells [N, N]` holds the cell codes, `gold_index [N, N]` the gold cell's
    number (−1 elsewhere), `start` the start position `row · N + col`."""

    size: int
    cells: np.ndarray
    gold_index: np.ndarray
    start: int
    seed: int

    @property
    def num_positions(self) -> int:
        return self.size * self.size

    @property
    def num_states(self) -> int:
        return (1 << NUM_FLAGS) * self.num_positions

    @property
    def horizon(self) -> int:
        return self.size * self.size

    @property
    def start_state(self) -> int:
        return self.start  # no flags set

    def position(self, state: int) -> tuple[int, int, int]:
        """`(row, col, flags)` of a state index."""
        flags, pos = divmod(int(state), self.num_positions)
        return pos // self.size, pos % self.size, flags

    def render(self) -> str:
        symbols = {EMPTY: ".", WALL: "#", GOLD: "g", HAZARD: "x", LEVER: "L", EXIT: "E"}
        rows = []
        for r in range(self.size):
            row = [symbols[int(v)] for v in self.cells[r]]
            if r == self.start // self.size:
                row[self.start % self.size] = "S"
            rows.append("".join(row))
        return "\n".join(rows)


class Tables(NamedTuple):
    """The whole dynamics as arrays: `next_state [S, A]` int32, `reward [S, A, C]` float32
    (C = number of components), `terminal [S, A]` bool (the move ends the episode)."""

    next_state: np.ndarray
    reward: np.ndarray
    terminal: np.ndarray


def check_size(size: int) -> None:
    if size not in GRID_SIZES:
        raise CeilingError(f"grid size {size} is not supported; valid: "
                           f"{', '.join(map(str, GRID_SIZES))}")


def _safe_reachable(cells: np.ndarray, start: tuple[int, int]) -> np.ndarray:
    """Cells reachable from `start` without entering a wall or a hazard (the exit is entered
    but not passed through, because entering it ends the episode)."""
    n = cells.shape[0]
    seen = np.zeros_like(cells, dtype=bool)
    seen[start] = True
    queue = deque([start])
    while queue:
        r, c = queue.popleft()
        if cells[r, c] == EXIT:
            continue
        for dr, dc in MOVES:
            nr, nc = r + dr, c + dc
            if 0 <= nr < n and 0 <= nc < n and not seen[nr, nc] and cells[nr, nc] not in (
                    WALL, HAZARD):
                seen[nr, nc] = True
                queue.append((nr, nc))
    return seen


def generate_layout(size: int, seed: int) -> Layout:
    """A layout drawn from `seed`: start in the top-left quarter, exit in the bottom-right
    quarter, the lever in an off-diagonal corner quarter (a detour), gold anywhere. Redrawn
    (deterministically) until everything lies in one safe region."""
    check_size(size)
    rng = np.random.default_rng([seed, size])
    quarter = max(2, size // 4)
    for _ in range(1000):
        cells = np.full((size, size), EMPTY, dtype=np.int8)
        gold_index = np.full((size, size), -1, dtype=np.int8)

        def corner(rows: range, cols: range) -> tuple[int, int]:
            return int(rng.choice(list(rows))), int(rng.choice(list(cols)))

        low, high = range(0, quarter), range(size - quarter, size)
        start = corner(low, low)
        exit_cell = corner(high, high)
        lever = corner(low, high) if rng.random() < 0.5 else corner(high, low)
        reserved = {start, exit_cell, lever}
        free = [(r, c) for r in range(size) for c in range(size) if (r, c) not in reserved]
        order = rng.permutation(len(free))
        golds = [free[i] for i in order[:NUM_GOLD]]
        reserved.update(golds)
        rest = [free[i] for i in order[NUM_GOLD:]]
        num_walls = int(WALL_DENSITY * size * size)
        num_hazards = max(1, int(HAZARD_FRACTION * size * size))
        for r, c in rest[:num_walls]:
            cells[r, c] = WALL
        for r, c in rest[num_walls:num_walls + num_hazards]:
            cells[r, c] = HAZARD
        cells[exit_cell] = EXIT
        cells[lever] = LEVER
        for index, (r, c) in enumerate(golds):
            cells[r, c] = GOLD
            gold_index[r, c] = index
        seen = _safe_reachable(cells, start)
        if all(seen[p] for p in (exit_cell, lever, *golds)):
            return Layout(size, cells, gold_index, start[0] * size + start[1], seed)
    raise CeilingError(f"could not draw a valid {size}x{size} layout from seed {seed}")


def layout_arrays(layout: Layout) -> dict[str, jax.Array]:
    return {"cells": jnp.asarray(layout.cells.reshape(-1), jnp.int32),
            "gold_index": jnp.asarray(layout.gold_index.reshape(-1), jnp.int32),
            "moves": jnp.asarray(MOVES)}


def step(arrays: dict[str, jax.Array], size: int, state: jax.Array,
         action: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """One move: `(next_state, reward [C], terminal)`. Pure and jittable; `size` is static."""
    num_positions = size * size
    flags, pos = state // num_positions, state % num_positions
    row, col = pos // size, pos % size
    move = arrays["moves"][action]
    target_row, target_col = row + move[0], col + move[1]
    inside = (target_row >= 0) & (target_row < size) & (target_col >= 0) & (target_col < size)
    target = jnp.clip(target_row, 0, size - 1) * size + jnp.clip(target_col, 0, size - 1)
    blocked = ~inside | (arrays["cells"][target] == WALL)
    new_pos = jnp.where(blocked, pos, target)
    cell = arrays["cells"][new_pos]
    moved = ~blocked
    gold = arrays["gold_index"][new_pos]
    gold_bit = jnp.left_shift(1, jnp.maximum(gold, 0))
    new_gold = moved & (cell == GOLD) & ((flags & gold_bit) == 0)
    lever_bit = 1 << LEVER_BIT
    new_lever = moved & (cell == LEVER) & ((flags & lever_bit) == 0)
    hazard = moved & (cell == HAZARD)
    reached_exit = moved & (cell == EXIT)
    new_flags = flags | jnp.where(new_gold, gold_bit, 0) | jnp.where(new_lever, lever_bit, 0)
    reward = jnp.stack([reached_exit, new_gold, hazard, new_lever]).astype(jnp.float32)
    reward = reward * jnp.array([1.0, 1.0, -1.0, 1.0], jnp.float32)
    return new_flags * num_positions + new_pos, reward, hazard | reached_exit


def transition_tables(layout: Layout) -> Tables:
    """`step` evaluated for every state and action (the exact model of the layout)."""
    arrays = layout_arrays(layout)
    states = jnp.arange(layout.num_states, dtype=jnp.int32)
    actions = jnp.arange(NUM_ACTIONS, dtype=jnp.int32)

    def one_state(s: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        return jax.vmap(lambda a: step(arrays, layout.size, s, a))(actions)

    next_state, reward, terminal = jax.jit(jax.vmap(one_state))(states)
    assert reward.shape[-1] == NUM_COMPONENTS
    return Tables(np.asarray(next_state, np.int32), np.asarray(reward, np.float32),
                  np.asarray(terminal, bool))


def greedy_policy(q: np.ndarray, tolerance: float = 1e-6) -> np.ndarray:
    """Action probabilities `[S, A]`: uniform over the actions within `tolerance` of the best.
    Ties are common (unvisited states have all-zero values), and breaking them at random keeps a
    policy from walking into a wall forever where it knows nothing."""
    best = q.max(axis=1, keepdims=True)
    ties = q >= best - tolerance
    return ties / ties.sum(axis=1, keepdims=True)


class Rollouts(NamedTuple):
    """`returns [M]` (undiscounted, under the given weights), `lengths [M]`,
    `states [M, H]` and `actions [M, H]` (−1 after the episode ended)."""

    returns: np.ndarray
    lengths: np.ndarray
    states: np.ndarray
    actions: np.ndarray


def rollout(tables: Tables, policy: np.ndarray, start_state: int, horizon: int,
            weights: np.ndarray, num_rollouts: int, seed: int) -> Rollouts:
    """`num_rollouts` episodes of the stochastic policy `policy [S, A]` from `start_state`.
    This steps the environment (through its tables): evaluation, never composition."""
    rng = np.random.default_rng(seed)
    state = np.full(num_rollouts, start_state, dtype=np.int64)
    alive = np.ones(num_rollouts, dtype=bool)
    returns = np.zeros(num_rollouts)
    lengths = np.zeros(num_rollouts, dtype=np.int64)
    states = np.full((num_rollouts, horizon), -1, dtype=np.int64)
    actions = np.full((num_rollouts, horizon), -1, dtype=np.int64)
    cumulative = np.cumsum(policy, axis=1)
    reward_w = tables.reward @ weights
    for t in range(horizon):
        if not alive.any():
            break
        u = rng.random(num_rollouts)
        action = (u[:, None] > cumulative[state]).sum(axis=1).clip(0, NUM_ACTIONS - 1)
        states[alive, t] = state[alive]
        actions[alive, t] = action[alive]
        returns += np.where(alive, reward_w[state, action], 0.0)
        lengths += alive
        done = tables.terminal[state, action]
        state = np.where(alive, tables.next_state[state, action], state)
        alive &= ~done
    return Rollouts(returns, lengths, states, actions)
