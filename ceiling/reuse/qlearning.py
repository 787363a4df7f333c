"""Tabular Q-learning, vectorised across learners: how library policies and the from-scratch
baseline are trained.

One jitted `lax.scan` advances a batch of independent learners (objectives × seeds × discount
factors) by a chunk of environment steps; each learner has its own weight vector, discount and
random stream. The environment is read through its transition tables (`gridworld.Tables`), which
are `step` evaluated everywhere. Every episode starts at the layout's start state, so each
learner's visit counts are its own *support*: the transitions it actually saw. The learning rate
defaults to 1, which is exact in a deterministic world. Training runs in chunks until each
learner's greedy return has stopped changing for `patience` chunks (convergence), or until
`max_chunks`.
"""

from __future__ import annotations

import time
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ceiling.reuse.gridworld import EMPTY, NUM_ACTIONS, Layout, Tables, greedy_policy, rollout


class QLearningConfig(NamedTuple):
    steps_per_chunk: int = 50_000
    min_chunks: int = 8
    max_chunks: int = 40
    patience: int = 4  # chunks with an unchanged greedy return before stopping
    epsilon: float = 0.2  # ε-greedy exploration
    learning_rate: float = 1.0
    exploring_starts: float = 0.5  # share of episodes starting at a random safe cell, no flags
    eval_rollouts: int = 8


DEFAULT_CONFIG = QLearningConfig()


class Trained(NamedTuple):
    """A batch of `B` learners: `q [B, S, A]`, `visits [B, S, A]`, `steps [B]`,
    `seconds` (per learner: the batch's training time divided by `B`, compile excluded),
    `converged [B]`, `eval_returns [B]` (the last greedy evaluation)."""

    q: np.ndarray
    visits: np.ndarray
    steps: np.ndarray
    seconds: np.ndarray
    converged: np.ndarray
    eval_returns: np.ndarray


@partial(jax.jit, static_argnames=("steps",))
def train_chunk(q: jax.Array, visits: jax.Array, state: jax.Array, time_step: jax.Array,
                key: jax.Array, next_state: jax.Array, reward: jax.Array, terminal: jax.Array,
                weights: jax.Array, gammas: jax.Array, start_state: jax.Array,
                start_cells: jax.Array, exploring_starts: jax.Array, horizon: jax.Array,
                epsilon: jax.Array, learning_rate: jax.Array,
                steps: int) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """`steps` Q-learning updates for each of the `B` learners.

    Shapes: `q, visits [B, S, A]`, `state, time_step [B]`, `weights [B, C]`, `gammas [B]`;
    the tables as in `gridworld.Tables`; `start_cells [K]` the states an exploring start may
    pick (safe cells, no flags).
    """
    batch = q.shape[0]
    noise = jax.random.uniform(key, (steps, batch, 4 + NUM_ACTIONS))

    Carry = tuple[jax.Array, jax.Array, jax.Array, jax.Array]

    def learner(q_b: jax.Array, v_b: jax.Array, s: jax.Array, t: jax.Array, u: jax.Array,
                w: jax.Array, gamma: jax.Array) -> Carry:
        # a tiny random jitter breaks ties between equal values uniformly
        greedy = jnp.argmax(q_b[s] + 1e-6 * u[4:])
        explore = jnp.minimum((u[1] * NUM_ACTIONS).astype(jnp.int32), NUM_ACTIONS - 1)
        action = jnp.where(u[0] < epsilon, explore, greedy)
        r = reward[s, action] @ w
        s_next = next_state[s, action]
        done = terminal[s, action]
        target = r + gamma * jnp.where(done, 0.0, q_b[s_next].max())
        q_b = q_b.at[s, action].add(learning_rate * (target - q_b[s, action]))
        v_b = v_b.at[s, action].add(1)
        t_next = t + 1
        reset = done | (t_next >= horizon)
        pick = jnp.minimum((u[3] * start_cells.shape[0]).astype(jnp.int32),
                           start_cells.shape[0] - 1)
        restart = jnp.where(u[2] < exploring_starts, start_cells[pick], start_state)
        return q_b, v_b, jnp.where(reset, restart, s_next), jnp.where(reset, 0, t_next)

    def body(carry: Carry, u: jax.Array) -> tuple[Carry, None]:
        q_, v_, s_, t_ = carry
        return jax.vmap(learner)(q_, v_, s_, t_, u, weights, gammas), None

    (q, visits, state, time_step), _ = jax.lax.scan(body, (q, visits, state, time_step), noise)
    return q, visits, state, time_step


def safe_cells(layout: Layout) -> np.ndarray:
    """States (no flags) of the empty cells: where an exploring start may begin."""
    return np.flatnonzero(layout.cells.reshape(-1) == EMPTY)


def greedy_return(tables: Tables, q: np.ndarray, layout: Layout, weights: np.ndarray,
                  num_rollouts: int, seed: int = 0) -> float:
    """Mean undiscounted return of the greedy policy of `q [S, A]` (ties at random)."""
    result = rollout(tables, greedy_policy(q), layout.start_state, layout.horizon, weights,
                     num_rollouts, seed)
    return float(result.returns.mean())


def train(layout: Layout, tables: Tables, weights: np.ndarray, gammas: np.ndarray,
          seeds: np.ndarray, config: QLearningConfig = DEFAULT_CONFIG) -> Trained:
    """Train `B = len(seeds)` learners (`weights [B, C]`, `gammas [B]`) to convergence."""
    batch = len(seeds)
    weights = np.asarray(weights, np.float32).reshape(batch, -1)
    gammas = np.asarray(gammas, np.float32).reshape(batch)
    shape = (batch, layout.num_states, NUM_ACTIONS)
    q, visits = jnp.zeros(shape, jnp.float32), jnp.zeros(shape, jnp.int32)
    state = jnp.full((batch,), layout.start_state, jnp.int32)
    time_step = jnp.zeros((batch,), jnp.int32)
    key = jax.random.PRNGKey(int(np.sum(np.asarray(seeds) * 1_000_003) % (2**31)))
    constants = (jnp.asarray(tables.next_state), jnp.asarray(tables.reward),
                 jnp.asarray(tables.terminal), jnp.asarray(weights), jnp.asarray(gammas),
                 jnp.int32(layout.start_state), jnp.asarray(safe_cells(layout), jnp.int32),
                 jnp.float32(config.exploring_starts), jnp.int32(layout.horizon),
                 jnp.float32(config.epsilon), jnp.float32(config.learning_rate))
    # compile outside the clock: the same shapes and static step count as the real chunks
    jax.block_until_ready(train_chunk(q, visits, state, time_step, key, *constants,
                                      steps=config.steps_per_chunk))
    history: list[np.ndarray] = []
    converged = np.zeros(batch, dtype=bool)
    steps = np.zeros(batch, dtype=np.int64)
    train_seconds = 0.0
    for chunk in range(config.max_chunks):
        key, chunk_key = jax.random.split(key)
        started = time.perf_counter()
        q, visits, state, time_step = jax.block_until_ready(train_chunk(
            q, visits, state, time_step, chunk_key, *constants, steps=config.steps_per_chunk))
        train_seconds += time.perf_counter() - started
        steps += np.where(converged, 0, config.steps_per_chunk)
        q_np = np.asarray(q)
        returns = np.array([greedy_return(tables, q_np[b], layout, weights[b].astype(np.float64),
                                          config.eval_rollouts) for b in range(batch)])
        history.append(returns)
        if chunk + 1 >= config.min_chunks and len(history) > config.patience:
            recent = np.stack(history[-(config.patience + 1):])
            converged |= np.all(np.abs(recent - recent[-1]) < 1e-9, axis=0)
        if converged.all():
            break
    return Trained(np.asarray(q), np.asarray(visits), steps,
                   np.full(batch, train_seconds / batch), converged, history[-1])
