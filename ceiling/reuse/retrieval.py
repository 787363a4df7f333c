"""Retrieval: a vector index over the library's objective weights and behavioural embeddings.

Two exact inner-product FAISS indexes per (layout, discount) group: one over the unit-normalised
training weights (which policies were trained for this sub-objective) and one over the
embeddings (which policies are worth most under the query: embedding·w is a policy's mean
predicted value over the canonical states, so a maximum-inner-product search ranks by predicted
value). A flat index is exact; the groups are tens of policies, where an approximate index would
only add error. A query is split into its sub-objectives; for each, the policies trained for it
are ranked by the embedding search under the *whole* query and the top k returned, each with its
predicted start value ψ(start)·w.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import faiss
import numpy as np

from ceiling.reuse.library import Library, PolicyRecord
from ceiling.reuse.objectives import sub_objectives

MATCH_SIMILARITY = 0.999  # cosine similarity at which a trained objective *is* the sub-objective


class Candidate(NamedTuple):
    policy_id: int
    objective: str
    seed: int
    similarity: float  # cosine between its training weights and the sub-objective
    embedding_score: float  # embedding·w (mean predicted value over canonical states)
    predicted_value: float  # ψ_0.99(start)·w


class Retrieval(NamedTuple):
    """Top candidates per sub-objective name; `scored`: policies the index scored."""

    candidates: dict[str, list[Candidate]]
    scored: int
    seconds: float


class PolicyIndex:
    """The indexes of one (layout, discount) group of a library."""

    def __init__(self, library: Library, layout: int, gamma: float) -> None:
        library.check_query(layout, gamma)
        self.records: list[PolicyRecord] = library.group(layout, gamma)
        weights = np.stack([r.weight_vector for r in self.records]).astype(np.float32)
        weights /= np.linalg.norm(weights, axis=1, keepdims=True)
        embeddings = np.stack([r.embedding for r in self.records]).astype(np.float32)
        self.weight_index = faiss.IndexFlatIP(weights.shape[1])
        self.weight_index.add(weights)
        self.embedding_index = faiss.IndexFlatIP(embeddings.shape[1])
        self.embedding_index.add(embeddings)

    def __len__(self) -> int:
        return len(self.records)

    def search(self, weights: np.ndarray, k: int | None) -> Retrieval:
        """Top `k` (None: all matching) candidates per sub-objective of `weights [C]`."""
        started = time.perf_counter()
        n = len(self.records)
        query = np.asarray(weights, np.float32)[None, :]
        scores, order = self.embedding_index.search(query, n)
        embedding_score = dict(zip(order[0].tolist(), scores[0].tolist(), strict=True))
        ranking = order[0].tolist()
        result: dict[str, list[Candidate]] = {}
        for name, unit in sub_objectives(np.asarray(weights)):
            similarity, rows = self.weight_index.search(unit.astype(np.float32)[None, :], n)
            sim = dict(zip(rows[0].tolist(), similarity[0].tolist(), strict=True))
            matching = [row for row in ranking if sim[row] >= MATCH_SIMILARITY]
            if not matching:  # the library lacks this component: the closest objectives
                best = max(sim.values())
                matching = [row for row in ranking if sim[row] >= best - 1e-6]
            chosen = matching if k is None else matching[:k]
            result[name] = [Candidate(
                self.records[row].id, self.records[row].objective, self.records[row].seed,
                sim[row], embedding_score[row],
                float(np.dot(self.records[row].psi_start, weights))) for row in chosen]
        return Retrieval(result, n, time.perf_counter() - started)
