"""Exact successor features of tabular policies and the behavioural embedding built from them.

For a policy π on a known tabular model, ψ^π(s) = Σ_t γ^t E[φ(s_t, a_t)] solves the linear system
(I − γ P_π) ψ = φ_π, so we solve it (sparse LU: P_π has at most four entries a row) instead of
estimating it. With ψ in hand, the value of π under *any* weights is ψ·w, which is what lets
retrieval rank and GPI combine policies for a new objective without stepping the world. This is
computed once when the library is built, while the world is still available.

The embedding of a policy is ψ^π at γ = `EMBEDDING_GAMMA` averaged over a fixed set of canonical
states of its layout (as in pi2vec): a `[C]` vector whose inner product with w is the policy's
mean predicted value under w, so nearest-by-inner-product search is "which policy is worth most
under this objective".
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse as sparse
from scipy.sparse.linalg import splu

from ceiling.reuse.gridworld import EMPTY, Layout, Tables

EMBEDDING_GAMMA = 0.99
NUM_CANONICAL_STATES = 32


class SuccessorFeatures(NamedTuple):
    """`state [S, C]` = ψ^π(s) and `state_action [S, A, C]` = ψ^π(s, a)."""

    state: np.ndarray
    state_action: np.ndarray


def successor_features(tables: Tables, policy: np.ndarray, gamma: float) -> SuccessorFeatures:
    """ψ^π for the (possibly stochastic) policy `policy [S, A]` under discount `gamma`.

    A terminal move contributes its own features and nothing after; the horizon is ignored
    (infinite-horizon discounted features, the quantity GPI's guarantee is about).
    """
    num_states, num_actions = policy.shape
    phi = tables.reward.astype(np.float64)  # [S, A, C]
    phi_policy = np.einsum("sa,sac->sc", policy, phi)
    if gamma == 0:
        psi = phi_policy
    else:
        weight = policy * np.where(tables.terminal, 0.0, 1.0)
        rows = np.repeat(np.arange(num_states), num_actions)
        transition = sparse.csr_matrix(
            (weight.reshape(-1), (rows, tables.next_state.reshape(-1))),
            shape=(num_states, num_states))
        system = (sparse.identity(num_states, format="csc") - gamma * transition).tocsc()
        psi = splu(system).solve(phi_policy)
    continuation = np.where(tables.terminal, 0.0, gamma)[..., None]
    psi_sa = phi + continuation * psi[tables.next_state]
    return SuccessorFeatures(psi, psi_sa)


def canonical_states(layout: Layout, count: int = NUM_CANONICAL_STATES) -> np.ndarray:
    """The start state and `count − 1` empty cells (no flags) drawn from the layout's seed:
    the fixed states every embedding of this layout averages over."""
    empty = np.flatnonzero(layout.cells.reshape(-1) == EMPTY)
    empty = empty[empty != layout.start]
    rng = np.random.default_rng([layout.seed, 7])
    chosen = rng.choice(empty, size=min(count - 1, empty.size), replace=False)
    return np.concatenate([[layout.start_state], np.sort(chosen)]).astype(np.int64)


def embedding(psi_state: np.ndarray, canonical: np.ndarray) -> np.ndarray:
    """The behavioural embedding `[C]`: ψ averaged over the canonical states."""
    return psi_state[canonical].mean(axis=0)
