from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import ceiling.reuse.gridworld as gridworld
import ceiling.reuse.library as library_module
import ceiling.reuse.qlearning as qlearning
from ceiling.errors import CeilingError
from ceiling.reuse.compose import METHODS, SELECTIONS, compose, coverage
from ceiling.reuse.gridworld import greedy_policy, rollout
from ceiling.reuse.library import Library, add_policy, load_library
from ceiling.reuse.objectives import weights_of
from ceiling.reuse.planning import optimal_trajectory
from ceiling.reuse.qlearning import train
from ceiling.reuse.retrieval import PolicyIndex
from ceiling.reuse.successor import successor_features

from .conftest import TINY


def _policy_value(library: Library, policy: np.ndarray, w: np.ndarray, gamma: float):
    return successor_features(library.layout(0).tables, policy, gamma).state @ w


@pytest.mark.slow
def test_gpi_is_at_least_every_source_policy(tiny_library: Library) -> None:
    gamma = 0.99
    for objective in ("path+gold", "path+gold+hazard+lever", "0.5,1,2,0.3"):
        w = weights_of(objective)
        composed = compose(tiny_library, 0, w, gamma, "gpi", "exhaustive")
        assert len(composed.policy_ids) == len(tiny_library.group(0, gamma))
        gpi_value = _policy_value(tiny_library, composed.policy, w, gamma)
        sources = []
        for pid in composed.policy_ids:
            record_policy = greedy_policy(tiny_library.arrays(pid).q.astype(np.float64))
            sources.append(_policy_value(tiny_library, record_policy, w, gamma))
        best_source = np.max(sources, axis=0)
        assert np.all(gpi_value >= best_source - 1e-3)
        start = tiny_library.layout(0).layout.start_state
        assert gpi_value[start] >= max(s[start] for s in sources) - 1e-3


def test_sum_with_gamma_zero_is_one_step_greedy_on_the_summed_reward(
        tiny_library: Library) -> None:
    w = weights_of("path+gold+hazard+lever")
    tables = tiny_library.layout(0).tables
    composed = compose(tiny_library, 0, w, 0.0, "sum", "exhaustive")
    summed_reward = tables.reward @ w
    # on the support of every sub-objective the summed Q-tables are the composite reward
    supported = np.ones_like(composed.support)
    for found in composed.retrieval.candidates.values():
        seen = np.zeros_like(supported)
        for candidate in found:
            seen |= tiny_library.arrays(candidate.policy_id).visits > 0
        supported &= seen
    assert supported.sum() > 100
    np.testing.assert_allclose(composed.scores[supported], summed_reward[supported], atol=1e-6)
    # so wherever a state is fully supported, the composed policy is the one-step greedy one
    full = supported.all(axis=1)
    assert full.sum() > 10
    np.testing.assert_array_equal(composed.policy[full], greedy_policy(summed_reward)[full])
    assert (summed_reward[full] != 0).any()  # and some of those choices matter


def test_composition_never_steps_the_environment(tiny_library_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("composition touched the environment")

    for module, name in [(gridworld, "step"), (gridworld, "transition_tables"),
                         (gridworld, "rollout"), (library_module, "transition_tables"),
                         (library_module, "train"), (qlearning, "train_chunk"),
                         (qlearning, "train")]:
        monkeypatch.setattr(module, name, forbidden)
    with pytest.raises(AssertionError):  # the patch is live
        gridworld.step(None, 8, 0, 0)  # type: ignore[arg-type]
    library = load_library(tiny_library_path)
    for gamma in (0.0, 0.99):
        for method in METHODS:
            for selection in SELECTIONS:
                composed = compose(library, 0, "path+gold+lever", gamma, method, selection)
                assert composed.selection == selection
                assert composed.policy.shape == composed.support.shape
                np.testing.assert_allclose(composed.policy.sum(axis=1), 1.0)
                assert composed.candidates_evaluated >= 1 and composed.seconds > 0


def test_coverage_is_one_when_the_library_contains_the_scratch_policy(
        tiny_library_path: Path, tmp_path: Path) -> None:
    path = tmp_path / "with_scratch"
    shutil.copytree(tiny_library_path, path)
    library = load_library(path)
    data = library.layout(0)
    w = weights_of("path+gold+hazard+lever")
    scratch = train(data.layout, data.tables, w[None], np.array([0.99]), np.array([7]), TINY)
    reference = optimal_trajectory(data.tables, scratch.q[0], data.layout.start_state,
                                   data.layout.horizon)
    before = coverage(reference, compose(library, 0, w, 0.99, "plan", "exhaustive").support)
    add_policy(path, 0, w, 0.99, scratch.q[0], scratch.visits[0], seed=7)
    library = load_library(path)
    composed = compose(library, 0, w, 0.99, "plan", "exhaustive")
    after = coverage(reference, composed.support)
    assert after.pairs == 1.0 and after.prefix == 1.0 and after.per_step.all()
    assert after.pairs >= before.pairs
    # with its own support in the library, planning recovers at least the scratch return
    tables = data.tables
    planned = rollout(tables, composed.policy, data.layout.start_state, data.layout.horizon, w,
                      8, 0).returns.mean()
    learned = rollout(tables, greedy_policy(scratch.q[0]), data.layout.start_state,
                      data.layout.horizon, w, 8, 0).returns.mean()
    assert planned >= learned - 1e-9


def test_coverage_counts_pairs_and_first_gap() -> None:
    support = np.zeros((5, 4), dtype=bool)
    support[0, 1] = support[1, 2] = support[3, 0] = True
    trajectory = np.array([[0, 1], [1, 2], [2, 3], [3, 0]])
    result = coverage(trajectory, support)
    assert result.pairs == 0.75 and result.first_gap == 2 and result.prefix == 0.5
    assert result.per_step.tolist() == [True, True, False, True]


def test_retrieval_returns_top_k_per_sub_objective_with_predicted_values(
        tiny_library: Library) -> None:
    index = PolicyIndex(tiny_library, 0, 0.99)
    w = weights_of("path+gold")
    found = index.search(w, 1)
    assert set(found.candidates) == {"path", "gold"}
    assert all(len(c) == 1 for c in found.candidates.values())
    for name, candidates in found.candidates.items():
        record = tiny_library.policies[candidates[0].policy_id]
        assert record.objective == name and record.gamma == 0.99
        assert candidates[0].predicted_value == pytest.approx(np.dot(record.psi_start, w))
    everything = index.search(w, None)
    assert len(everything.candidates["gold"]) == 2  # both seeds
    ranked = [c.embedding_score for c in everything.candidates["gold"]]
    assert ranked == sorted(ranked, reverse=True)


def test_bad_method_selection_layout_and_regime(tiny_library: Library) -> None:
    with pytest.raises(CeilingError, match="valid: sum, gpi, plan"):
        compose(tiny_library, 0, "path", 0.99, "average")
    with pytest.raises(CeilingError, match="unknown candidate selection 'greedy'; valid: "
                                           "targeted, hybrid, exhaustive"):
        compose(tiny_library, 0, "path", 0.99, "gpi", "greedy")
    with pytest.raises(CeilingError, match="layout 3 is not in the library"):
        compose(tiny_library, 3, "path", 0.99)
    with pytest.raises(CeilingError, match="no policies with gamma 0.5"):
        compose(tiny_library, 0, "path", 0.5)
