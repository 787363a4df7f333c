"""Offline composition: a policy for a new objective from library policies, with no step of the
world, and the coverage diagnostic reported with it.

Methods (all read only library arrays: Q-tables, visit counts, successor features, and the
layout's transitions through the chosen policies' support):

- `sum`: Σ_c w_c Q_c, with Q_c the retrieved Q-table of sub-objective c (Lever's rule). With
  γ = 0 a Q-table is the immediate reward on its support, so the sum *is* the composite's
  one-step value there; with γ > 0 the max in each Q-table does not add up and the rule is a
  heuristic. Several candidates of one sub-objective are merged pair by pair, averaging those
  that visited the pair.
- `gpi`: generalised policy improvement, π(s) = argmax_a max_i ψ_i(s, a)·w; never worse than
  the best source policy under w (Barreto et al.'s guarantee, tested).
- `plan`: value iteration on the empirical model of the union of the chosen policies' supports,
  taking only observed actions; it propagates value along transitions the library has seen and
  nowhere else.

A selection bounds how many candidates are explored: `targeted` (top-1 per sub-objective),
`hybrid` (top-k), `exhaustive` (every policy of the group; `sum` takes every seed trained on
each sub-objective). Each composition records the candidates it evaluated and its time. A
selection is not a search strategy: nothing here tries solutions online.

Coverage: the share of the (state, action) pairs on a reference optimal trajectory for the new
objective that lie in the union support of the chosen policies, plus the per-step variant (which
steps are covered, and how far the trajectory gets before its first uncovered step).
"""

from __future__ import annotations

import time
from typing import NamedTuple

import numpy as np

from ceiling.errors import CeilingError
from ceiling.reuse.gridworld import greedy_policy
from ceiling.reuse.library import Library
from ceiling.reuse.objectives import COMPONENTS, weights_of
from ceiling.reuse.planning import optimal_trajectory, value_iteration
from ceiling.reuse.retrieval import PolicyIndex, Retrieval

METHODS: tuple[str, ...] = ("sum", "gpi", "plan")
SELECTIONS: tuple[str, ...] = ("targeted", "hybrid", "exhaustive")
HYBRID_K = 3
ORACLE_GAMMA = 0.99


class Coverage(NamedTuple):
    """`pairs`: share of the reference trajectory's pairs in the support; `per_step [T]`: which
    steps are covered; `first_gap`: index of the first uncovered step (T if none);
    `prefix`: first_gap / T, the share of the trajectory followed before leaving the support."""

    pairs: float
    per_step: np.ndarray
    first_gap: int
    prefix: float

    def to_dict(self) -> dict[str, float | int]:
        return {"pairs": self.pairs, "prefix": self.prefix, "first_gap": self.first_gap,
                "steps": int(self.per_step.size)}


class Composition(NamedTuple):
    """A composed policy `policy [S, A]` (action probabilities), the scores it is greedy in
    `scores [S, A]`, the union support `support [S, A]` of the policies it used, their ids, and
    the bookkeeping of the selection."""

    method: str
    selection: str
    policy: np.ndarray
    scores: np.ndarray
    support: np.ndarray
    policy_ids: list[int]
    retrieval: Retrieval
    candidates_evaluated: int
    seconds: float  # retrieval + composition, wall clock


def coverage(trajectory: np.ndarray, support: np.ndarray) -> Coverage:
    """Coverage of `trajectory [T, 2]` (state, action) by `support [S, A]` (bool)."""
    if trajectory.size == 0:
        return Coverage(1.0, np.zeros(0, bool), 0, 1.0)
    covered = support[trajectory[:, 0], trajectory[:, 1]].astype(bool)
    first_gap = int(np.argmin(covered)) if not covered.all() else covered.size
    return Coverage(float(covered.mean()), covered, first_gap, first_gap / covered.size)


def reference_trajectory(library: Library, layout: int, weights: np.ndarray) -> np.ndarray:
    """The optimal trajectory for `weights` on the layout's true model (γ = 0.99, ties to the
    lowest action): the coverage reference of `ceiling reuse query` and `ceiling reuse bench`.
    Where several routes are optimal this is one of them."""
    data = library.layout(layout)
    q = value_iteration(data.tables, weights, ORACLE_GAMMA)
    return optimal_trajectory(data.tables, q, data.layout.start_state, data.layout.horizon)


def _check(method: str, selection: str, k: int) -> None:
    if method not in METHODS:
        raise CeilingError(f"unknown composition method {method!r}; valid: {', '.join(METHODS)}")
    if selection not in SELECTIONS:
        raise CeilingError(f"unknown candidate selection {selection!r}; valid: "
                           f"{', '.join(SELECTIONS)}")
    if k < 1:
        raise CeilingError(f"k must be at least 1, got {k}")


def compose(library: Library, layout: int, objective: str | np.ndarray, gamma: float,
            method: str = "gpi", selection: str = "hybrid", k: int = HYBRID_K,
            index: PolicyIndex | None = None) -> Composition:
    """Compose a policy for `objective` on `layout` from the library's policies of discount
    `gamma`, offline. `index` may be passed to reuse a built index (else built here, timed)."""
    _check(method, selection, k)
    weights = weights_of(objective)
    started = time.perf_counter()
    index = index if index is not None else PolicyIndex(library, layout, gamma)
    per_sub = {"targeted": 1, "hybrid": k, "exhaustive": None}[selection]
    retrieval = index.search(weights, per_sub)
    groups = {name: [c.policy_id for c in found] for name, found in retrieval.candidates.items()}
    if selection == "exhaustive" and method != "sum":
        chosen = [record.id for record in index.records]
    else:
        chosen = sorted({pid for ids in groups.values() for pid in ids})
    arrays = {pid: library.arrays(pid) for pid in chosen}
    support = np.zeros_like(arrays[chosen[0]].visits, dtype=bool)
    for pid in chosen:
        support |= arrays[pid].visits > 0
    if method == "sum":
        scores = np.zeros(support.shape)
        for name, ids in groups.items():
            total = np.zeros(support.shape)
            count = np.zeros(support.shape)
            for pid in ids:
                seen = arrays[pid].visits > 0
                total += np.where(seen, arrays[pid].q, 0.0)
                count += seen
            scores += weights[COMPONENTS.index(name)] * total / np.maximum(count, 1)
    elif method == "gpi":
        scores = np.max(np.stack([arrays[pid].psi.astype(np.float64) @ weights
                                  for pid in chosen]), axis=0)
    else:
        scores = value_iteration(library.layout(layout).tables, weights, gamma, support=support)
    policy = greedy_policy(scores)
    return Composition(method, selection, policy, scores, support, chosen, retrieval,
                       len(chosen), time.perf_counter() - started)
