from __future__ import annotations

import json

import jax
import numpy as np
import pytest

from ceiling.errors import CeilingError
from ceiling.policies.checkpoint import (
    FORMAT_VERSION,
    load_checkpoint,
    read_manifest,
    save_checkpoint,
)


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


# -- format versions -------------------------------------------------------------------------

def _edit_manifest(path, edit) -> None:
    manifest = json.loads((path / "manifest.json").read_text())
    edit(manifest)
    (path / "manifest.json").write_text(json.dumps(manifest, indent=2))


def test_new_checkpoints_are_format_2_and_record_the_architecture(tmp_path, small_policy):
    policy, params = small_policy
    manifest = read_manifest(save_checkpoint(tmp_path / "ckpt", policy, params))
    assert manifest["format_version"] == FORMAT_VERSION == 2
    assert manifest["network"]["architecture"] == "mlp"
    fields = manifest["task_spec"]["observation_fields"]
    assert fields[0] == ["local_view", [4, 7, 7]] and fields[-1] == ["agent_id", [3]]


def test_format_1_manifest_loads_unchanged_as_mlp(tmp_path, small_policy):
    policy, params = small_policy
    path = save_checkpoint(tmp_path / "ckpt", policy, params)

    def to_version_1(manifest):
        manifest["format_version"] = 1
        del manifest["network"]["architecture"]
        del manifest["task_spec"]["observation_fields"]

    _edit_manifest(path, to_version_1)
    before = {p.name: p.read_bytes() for p in path.iterdir()}
    loaded = load_checkpoint(path, task="connector:con-5x5x3a")
    assert loaded.policy == policy and loaded.policy.config.architecture == "mlp"
    assert _leaves_equal(loaded.params, params)
    assert {p.name: p.read_bytes() for p in path.iterdir()} == before  # not upgraded on disk
    assert loaded.manifest["format_version"] == 1


@pytest.mark.parametrize(
    ("version", "message"),
    [
        (3, "has format_version 3, but this version of ceiling .* reads format versions 1 to "
            "2; a newer ceiling wrote it: upgrade ceiling to load it"),
        (0, "has format_version 0; this version of ceiling .* reads format versions 1 to 2"),
        ("2", "has format_version '2'; this version"),
        (None, "has no format_version, so it is not a ceiling checkpoint manifest or it is "
               "damaged; this version of ceiling .* reads format versions 1 to 2"),
    ],
)
def test_unreadable_format_versions_are_refused(tmp_path, small_policy, version, message):
    policy, params = small_policy
    path = save_checkpoint(tmp_path / "ckpt", policy, params)

    def set_version(manifest):
        if version is None:
            del manifest["format_version"]
        else:
            manifest["format_version"] = version

    _edit_manifest(path, set_version)
    with pytest.raises(CeilingError, match=message):
        load_checkpoint(path)
    with pytest.raises(CeilingError, match=message):
        read_manifest(path)


def test_format_2_needs_a_known_architecture(tmp_path, small_policy):
    policy, params = small_policy
    path = save_checkpoint(tmp_path / "ckpt", policy, params)
    _edit_manifest(path, lambda m: m["network"].update(architecture="transformer"))
    with pytest.raises(CeilingError, match="unknown architecture 'transformer'; valid: mlp, sable"):
        load_checkpoint(path)
    _edit_manifest(path, lambda m: m["network"].pop("architecture"))
    with pytest.raises(CeilingError, match="must record network.architecture"):
        load_checkpoint(path)


def test_a_regular_file_is_not_a_checkpoint_directory(tmp_path, small_policy):
    policy, params = small_policy
    path = save_checkpoint(tmp_path / "ckpt", policy, params)
    with pytest.raises(CeilingError, match=r"manifest.json is a file, not a directory: .*; its "
                                           rf"directory is {path}$"):
        load_checkpoint(path / "manifest.json")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(CeilingError, match=r"notes.txt is a file, not a directory: a checkpoint "
                                           r"is the directory holding manifest.json and "
                                           r"params.msgpack$"):
        load_checkpoint(tmp_path / "notes.txt")
