from __future__ import annotations

import json

import jax
import numpy as np
import pytest

from ceiling.errors import CeilingError
from ceiling.policies.checkpoint import load_checkpoint, read_manifest, save_checkpoint


def _leaves_equal(a, b) -> bool:
    return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in
               zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True))


def test_round_trip(tmp_path, small_policy):
    policy, params = small_policy
    path = save_checkpoint(tmp_path / "ckpt", policy, params, extra={"training": {"step": 5}})
    loaded = load_checkpoint(path, task="connector:con-5x5x3a")
    assert _leaves_equal(loaded.params, params)
    assert loaded.policy.config == policy.config
    manifest = read_manifest(path)
    assert manifest["task"] == "connector:con-5x5x3a" and manifest["algorithm"] == "ippo"
    assert manifest["training"] == {"step": 5}
    assert len(manifest["sha256"]) == 64
    assert manifest["parameter_shapes"]["['actor']['params']['Dense_0']['kernel']"] == [207, 32]
    assert not (path / "params.msgpack").read_bytes().startswith(b"\x80")  # not a pickle
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]  # no temp dirs left behind


def test_existing_checkpoint_needs_force(tmp_path, small_policy):
    policy, params = small_policy
    path = save_checkpoint(tmp_path / "ckpt", policy, params)
    before = (path / "params.msgpack").read_bytes()
    other = policy.init(jax.random.PRNGKey(1))
    with pytest.raises(CeilingError, match="already exists; pass --force"):
        save_checkpoint(path, policy, other)
    assert (path / "params.msgpack").read_bytes() == before
    save_checkpoint(path, policy, other, force=True)
    assert _leaves_equal(load_checkpoint(path).params, other)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_tampered_parameters_are_detected(tmp_path, small_policy):
    policy, params = small_policy
    path = save_checkpoint(tmp_path / "ckpt", policy, params)
    data = bytearray((path / "params.msgpack").read_bytes())
    data[-3] ^= 0xFF
    (path / "params.msgpack").write_bytes(bytes(data))
    with pytest.raises(CeilingError, match="does not match its manifest"):
        load_checkpoint(path)


def test_task_mismatch_and_missing_files(tmp_path, small_policy):
    policy, params = small_policy
    path = save_checkpoint(tmp_path / "ckpt", policy, params)
    with pytest.raises(CeilingError, match="trained for 'connector:con-5x5x3a', not 'smax:3m'"):
        load_checkpoint(path, task="smax:3m")
    with pytest.raises(CeilingError, match="does not exist"):
        load_checkpoint(tmp_path / "nowhere")
    (path / "params.msgpack").unlink()
    with pytest.raises(CeilingError, match="missing params.msgpack"):
        load_checkpoint(path)
    (path / "manifest.json").unlink()
    with pytest.raises(CeilingError, match="manifest.json is missing"):
        load_checkpoint(path)


def test_manifest_for_a_differently_shaped_task_is_rejected(tmp_path, small_policy):
    policy, params = small_policy
    path = save_checkpoint(tmp_path / "ckpt", policy, params)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["task"] = "connector:con-7x7x5a"  # more agents: the id one-hot is longer
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CeilingError, match="parameter shapes that do not fit"):
        load_checkpoint(path)
