"""Loading a checkpoint compiles nothing: the task's spec comes from the spec table and the
parameter template from abstract shapes, and the parameters are exactly the ones saved."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
import pytest

from ceiling.policies.checkpoint import load_checkpoint, parameter_template, save_checkpoint
from ceiling.policies.networks import NetworkConfig, Policy
from ceiling.tasks import task_spec


def test_a_checkpoint_loads_without_compiling_and_round_trips(
        tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    # Sizes no other test uses, so no compiled program of an earlier test can hide a compile
    # (building the parameters from the template keeps this test from compiling them too).
    policy = Policy(task_spec("smax:2s3z"), NetworkConfig("mappo", (23, 17), "tanh"))
    rng = np.random.default_rng(3)
    params = jax.tree_util.tree_map(
        lambda like: rng.normal(size=like.shape).astype(like.dtype), parameter_template(policy))
    path = save_checkpoint(tmp_path / "ckpt", policy, params)
    with jax.log_compiles(True), caplog.at_level("WARNING"):
        loaded = load_checkpoint(path, task="smax:2s3z")
    compiles = [r.getMessage() for r in caplog.records if "Compiling" in r.getMessage()]
    assert compiles == []
    same = jax.tree_util.tree_map(
        lambda a, b: bool(np.array_equal(np.asarray(a), b) and a.dtype == b.dtype),
        loaded.params, params)
    assert all(jax.tree_util.tree_leaves(same))


def test_the_template_has_the_shapes_and_dtypes_of_fresh_parameters(small_policy: Any) -> None:
    policy, fresh = small_policy
    template = parameter_template(policy)
    assert jax.tree_util.tree_map(lambda leaf: (leaf.shape, leaf.dtype), template) == \
        jax.tree_util.tree_map(lambda leaf: (leaf.shape, leaf.dtype), fresh)
