"""Tabular Q-learning, vectorised across learners: how library policies and the from-scratch
baseline are trained (one learner, one configuration, for both).

One jitted `lax.scan` advances a batch of independent learners (objectives × seeds × discount
factors) by a chunk of environment steps; each learner has its own weight vector, discount and
random stream. The environment is read through its transition tables (`gridworld.Tables`), which
are `step` evaluated everywhere. The learning rate defaults to 1, which is exact in a
deterministic world.

Why optimistic initialisation. With Q initialised to 0, ε-greedy learning with exploring starts
stops far short of the optimum on composites: the value of collecting the last gold or pulling
the lever sits in flag layers (position × collected flags) that random exploration rarely
reaches, and even when it does, one-step backups have to be replayed in reverse order along the
whole route before the start state sees it (3.27 of 4 on path+gold after 400k+ steps, still 3
of 4 on some layouts after 3M steps with exploring starts that also randomise the flag bits).
Instead, every pair starts at an upper bound of any return (`return_bound`: each positive
component counted as often as it can pay in one episode). With learning rate 1 in a
deterministic world the backup `Q(s, a) ← r + γ max Q(s')` keeps Q an upper bound of Q*, so the
greedy learner is drawn to pairs it has not tried (directed exploration, polynomial in the
number of pairs for deterministic worlds) and only settles on a route once every pair along it
has been backed up to its true value.

That gives a convergence *certificate* rather than a plateau heuristic: if the greedy
trajectory from the start (ties to the lowest action) consists of visited pairs whose values
are fixed points of the backup (`tight`), its discounted return equals Q(start) ≥ V*(start), so
it is optimal for the learner's discount. A learner stops (and is frozen: no more updates,
steps or visits) once the certificate has held for `patience` consecutive chunks after
`min_chunks`. At γ = 0 the certificate says each greedy step is one-step optimal, which is all
a myopic learner can be; Q is then the immediate reward on the visited pairs, as Lever's
support-limited regime needs (optimism only makes it try each action once where it goes).

The price of optimism is breadth: to certify a route, a learner must rule out every pair whose
optimistic value could still beat it, so at γ = 0.99 its support (visit counts: the transitions
it actually saw) spans most flag layers, and a library trained this way covers the optimal
trajectory of every composite. For a support-limited library, `optimistic = False` keeps the
earlier zero-initialised learner (`ceiling reuse build --no-optimism`): narrower supports, but
Q is then not an upper bound and the same test only says the greedy route is self-consistent,
not that it is optimal. Exploring starts (a share of episodes begins at a random empty cell,
no flags; `random_flags` also draws the collected flags) broaden the data behind the library's
successor features; flag-randomised starts alone did not make zero-initialised learning
converge (see above), so they are off by default. Optimism is an exploration device only: the
returned Q-tables hold 0 at pairs never tried (no information), as they would without it.
"""

from __future__ import annotations

import time
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ceiling.reuse.gridworld import (
    EMPTY,
    NUM_ACTIONS,
    NUM_FLAGS,
    NUM_GOLD,
    Layout,
    Tables,
    greedy_policy,
    rollout,
)
from ceiling.reuse.objectives import COMPONENTS

NUM_FLAG_STATES = 1 << NUM_FLAGS
MAX_PAYOUTS = np.array([NUM_GOLD if name == "gold" else 1 for name in COMPONENTS], np.float64)
"""How often each component can pay in one episode: the exit and a hazard end it, each gold
cell and the lever pay once."""


class QLearningConfig(NamedTuple):
    steps_per_chunk: int = 50_000
    min_chunks: int = 8
    max_chunks: int = 200
    patience: int = 2  # consecutive chunks the convergence certificate must hold
    epsilon: float = 0.2  # ε-greedy exploration
    learning_rate: float = 1.0
    exploring_starts: float = 0.5  # share of episodes starting at a random empty cell
    random_flags: float = 0.0  # share of exploring starts that also draw the collected flags
    optimistic: bool = True  # initialise Q at an upper bound of any return (see the docstring)
    eval_rollouts: int = 8


DEFAULT_CONFIG = QLearningConfig()


class Trained(NamedTuple):
    """A batch of `B` learners: `q [B, S, A]` (0 at pairs never visited), `visits [B, S, A]`,
    `steps [B]` (updates made until convergence), `seconds` (per learner: the batch's training
    time divided by `B`, compile excluded), `converged [B]` (the certificate held),
    `eval_returns [B]` (greedy return at the end)."""

    q: np.ndarray
    visits: np.ndarray
    steps: np.ndarray
    seconds: np.ndarray
    converged: np.ndarray
    eval_returns: np.ndarray


@partial(jax.jit, static_argnames=("steps",))
def train_chunk(q: jax.Array, visits: jax.Array, state: jax.Array, time_step: jax.Array,
                key: jax.Array, active: jax.Array, next_state: jax.Array, reward: jax.Array,
                terminal: jax.Array, weights: jax.Array, gammas: jax.Array,
                start_state: jax.Array, start_cells: jax.Array, exploring_starts: jax.Array,
                random_flags: jax.Array, num_positions: jax.Array, horizon: jax.Array,
                epsilon: jax.Array, learning_rate: jax.Array,
                steps: int) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """`steps` Q-learning updates for each active one of the `B` learners.

    Shapes: `q, visits [B, S, A]`, `state, time_step [B]`, `active [B]` (bool: frozen learners
    neither update nor count visits), `weights [B, C]`, `gammas [B]`; the tables as in
    `gridworld.Tables`; `start_cells [K]` the positions an exploring start may pick (empty
    cells); with probability `random_flags` it also draws the collected flags.
    """
    batch = q.shape[0]
    noise = jax.random.uniform(key, (steps, batch, 6 + NUM_ACTIONS))

    Carry = tuple[jax.Array, jax.Array, jax.Array, jax.Array]

    def learner(q_b: jax.Array, v_b: jax.Array, s: jax.Array, t: jax.Array, u: jax.Array,
                w: jax.Array, gamma: jax.Array, on: jax.Array) -> Carry:
        # a tiny random jitter breaks ties between equal values uniformly
        greedy = jnp.argmax(q_b[s] + 1e-6 * u[6:])
        explore = jnp.minimum((u[1] * NUM_ACTIONS).astype(jnp.int32), NUM_ACTIONS - 1)
        action = jnp.where(u[0] < epsilon, explore, greedy)
        r = reward[s, action] @ w
        s_next = next_state[s, action]
        done = terminal[s, action]
        target = r + gamma * jnp.where(done, 0.0, q_b[s_next].max())
        rate = jnp.where(on, learning_rate, 0.0)
        q_b = q_b.at[s, action].add(rate * (target - q_b[s, action]))
        v_b = v_b.at[s, action].add(on.astype(v_b.dtype))
        t_next = t + 1
        reset = done | (t_next >= horizon)
        pick = jnp.minimum((u[3] * start_cells.shape[0]).astype(jnp.int32),
                           start_cells.shape[0] - 1)
        flags = jnp.where(u[4] < random_flags,
                          jnp.minimum((u[5] * NUM_FLAG_STATES).astype(jnp.int32),
                                      NUM_FLAG_STATES - 1), 0)
        restart = jnp.where(u[2] < exploring_starts,
                            flags * num_positions + start_cells[pick], start_state)
        return q_b, v_b, jnp.where(reset, restart, s_next), jnp.where(reset, 0, t_next)

    def body(carry: Carry, u: jax.Array) -> tuple[Carry, None]:
        q_, v_, s_, t_ = carry
        return jax.vmap(learner)(q_, v_, s_, t_, u, weights, gammas, active), None

    (q, visits, state, time_step), _ = jax.lax.scan(body, (q, visits, state, time_step), noise)
    return q, visits, state, time_step


def safe_cells(layout: Layout) -> np.ndarray:
    """Positions of the empty cells: where an exploring start may begin."""
    return np.flatnonzero(layout.cells.reshape(-1) == EMPTY)


def return_bound(tables: Tables, weights: np.ndarray) -> float:
    """An upper bound of any (discounted or not) episode return under `weights`: each
    component's largest positive weighted reward times how often it can pay in an episode."""
    best = np.max(tables.reward * np.asarray(weights, np.float64), axis=(0, 1))
    return float(np.sum(np.maximum(best, 0.0) * MAX_PAYOUTS))


def certified(tables: Tables, q: np.ndarray, visits: np.ndarray, weights: np.ndarray,
              gamma: float, start_state: int, horizon: int, tolerance: float = 1e-4) -> bool:
    """Whether the greedy trajectory of `q` from `start_state` (ties to the lowest action) runs
    through visited pairs whose values are fixed points of the backup, until a terminal move or
    the horizon. With `q` an upper bound of Q* this makes the trajectory optimal."""
    state = start_state
    for _ in range(horizon):
        action = int(np.argmax(q[state]))
        if visits[state, action] == 0:
            return False
        done = bool(tables.terminal[state, action])
        target = float(tables.reward[state, action] @ weights)
        if not done:
            target += gamma * float(q[tables.next_state[state, action]].max())
        if abs(float(q[state, action]) - target) > tolerance * max(1.0, abs(target)):
            return False
        if done:
            return True
        state = int(tables.next_state[state, action])
    return True


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
    initial = (np.array([return_bound(tables, w) for w in weights], np.float32)
               if config.optimistic else np.zeros(batch, np.float32))
    q = jnp.broadcast_to(jnp.asarray(initial)[:, None, None], shape).astype(jnp.float32)
    visits = jnp.zeros(shape, jnp.int32)
    state = jnp.full((batch,), layout.start_state, jnp.int32)
    time_step = jnp.zeros((batch,), jnp.int32)
    key = jax.random.PRNGKey(int(np.sum(np.asarray(seeds) * 1_000_003) % (2**31)))
    constants = (jnp.asarray(tables.next_state), jnp.asarray(tables.reward),
                 jnp.asarray(tables.terminal), jnp.asarray(weights), jnp.asarray(gammas),
                 jnp.int32(layout.start_state), jnp.asarray(safe_cells(layout), jnp.int32),
                 jnp.float32(config.exploring_starts), jnp.float32(config.random_flags),
                 jnp.int32(layout.num_positions), jnp.int32(layout.horizon),
                 jnp.float32(config.epsilon), jnp.float32(config.learning_rate))
    converged = np.zeros(batch, dtype=bool)
    # compile outside the clock: the same shapes and static step count as the real chunks
    jax.block_until_ready(train_chunk(q, visits, state, time_step, key,
                                      jnp.asarray(~converged), *constants,
                                      steps=config.steps_per_chunk))
    streak = np.zeros(batch, dtype=np.int64)
    steps = np.zeros(batch, dtype=np.int64)
    train_seconds = 0.0
    for chunk in range(config.max_chunks):
        key, chunk_key = jax.random.split(key)
        started = time.perf_counter()
        q, visits, state, time_step = jax.block_until_ready(train_chunk(
            q, visits, state, time_step, chunk_key, jnp.asarray(~converged), *constants,
            steps=config.steps_per_chunk))
        train_seconds += time.perf_counter() - started
        steps += np.where(converged, 0, config.steps_per_chunk)
        q_np, visits_np = np.asarray(q), np.asarray(visits)
        for b in np.flatnonzero(~converged):
            ok = certified(tables, q_np[b], visits_np[b], weights[b].astype(np.float64),
                           float(gammas[b]), layout.start_state, layout.horizon)
            streak[b] = streak[b] + 1 if ok else 0
        converged |= (chunk + 1 >= config.min_chunks) & (streak >= config.patience)
        if converged.all():
            break
    q_np = np.where(np.asarray(visits) > 0, np.asarray(q), 0.0).astype(np.float32)
    visits_np = np.asarray(visits)
    returns = np.array([greedy_return(tables, q_np[b], layout, weights[b].astype(np.float64),
                                      config.eval_rollouts) for b in range(batch)])
    return Trained(q_np, visits_np, steps, np.full(batch, train_seconds / batch), converged,
                   returns)
