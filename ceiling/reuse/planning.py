"""Value iteration on a (possibly partial) tabular model: the exact optimum of an objective on
the true model (the oracle that coverage and the tests compare against) and, masked to the
library's observed support, the `plan` composition.

A pair outside `support` is not an action the planner may take: its value is −∞, and a state
where nothing is supported is worth 0 (we know nothing there, and pretending otherwise would
invent transitions the library never saw).
"""

from __future__ import annotations

import numpy as np

from ceiling.reuse.gridworld import Tables


def value_iteration(tables: Tables, weights: np.ndarray, gamma: float,
                    support: np.ndarray | None = None, tolerance: float = 1e-8,
                    max_iterations: int = 100_000) -> np.ndarray:
    """Optimal action values `q [S, A]` of `reward · weights` under discount `gamma`, planning
    only through `support [S, A]` (bool; default everything). Unsupported pairs are −∞."""
    reward = tables.reward.astype(np.float64) @ np.asarray(weights, np.float64)
    continuation = np.where(tables.terminal, 0.0, gamma)
    allowed = np.ones_like(tables.terminal) if support is None else support.astype(bool)
    value = np.zeros(reward.shape[0])
    q = reward.copy()
    for _ in range(max_iterations):
        q = reward + continuation * value[tables.next_state]
        masked = np.where(allowed, q, -np.inf)
        new_value = masked.max(axis=1)
        new_value[~allowed.any(axis=1)] = 0.0
        if gamma == 0 or np.max(np.abs(new_value - value)) < tolerance:
            value = new_value
            break
        value = new_value
    q = reward + continuation * value[tables.next_state]
    return np.where(allowed, q, -np.inf)


def optimal_trajectory(tables: Tables, q: np.ndarray, start_state: int,
                       horizon: int) -> np.ndarray:
    """The greedy trajectory of `q` from `start_state` as `[T, 2]` (state, action) pairs, ties to
    the lowest action index, stopping at a terminal move or the horizon."""
    pairs = []
    state = start_state
    for _ in range(horizon):
        action = int(np.argmax(q[state]))
        pairs.append((state, action))
        if tables.terminal[state, action]:
            break
        state = int(tables.next_state[state, action])
    return np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
