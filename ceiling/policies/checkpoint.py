"""Checkpoints: a directory with `params.msgpack` and a JSON `manifest.json`.

The manifest names the task, the algorithm and network config (with its architecture), every
parameter's shape, the package version and the sha256 of the parameter bytes. Loading verifies
the hash and, when a task is given, that the checkpoint was made for it. Nothing is ever
pickled. Writes go to a temporary sibling directory that is renamed into place, so a reader
never sees half a checkpoint and an existing one is only replaced with `force=True`.

Loading builds neither the task nor fresh parameters: the task's spec comes from the spec table
(`ceiling.tasks.task_spec`) and the parameter template from abstract shape inference
(`parameter_template`), so a checkpoint loads in a fraction of a second without compiling.

Manifests carry `format_version`. Version 2 records `network.architecture`; version 1 (the
checkpoints shipped before architectures were pluggable) has none and is read as "mlp", as it
is on disk: loading never rewrites a checkpoint. A manifest without a version, or with one newer
than `FORMAT_VERSION`, is refused with a message saying which versions this ceiling reads.

An optional `search_defaults` field ({strategy: {option: value}}) records the strategy options
chosen for this checkpoint by measurement; `write_search_defaults` (`ceiling defaults`) rewrites
only the manifest, so the parameters and their hash are untouched.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import serialization

from ceiling import __version__
from ceiling.errors import CeilingError
from ceiling.outputs import write_json
from ceiling.policies.networks import NetworkConfig, Params, Policy, make_policy
from ceiling.tasks import task_spec

FORMAT_VERSION = 2  # what `save_checkpoint` writes; 1 .. FORMAT_VERSION are read
PARAMS_FILE = "params.msgpack"
MANIFEST_FILE = "manifest.json"
SEARCH_DEFAULTS = "search_defaults"  # optional manifest field: {strategy: {option: value}}


@dataclasses.dataclass
class Checkpoint:
    policy: Policy
    params: Params
    manifest: dict[str, Any]
    path: Path

    @property
    def task_name(self) -> str:
        return str(self.manifest["task"])

    @property
    def algorithm(self) -> str:
        return str(self.manifest["algorithm"])

    def search_defaults(self, strategy: str) -> dict[str, Any]:
        """The options `strategy` searches this checkpoint with unless told otherwise."""
        return search_defaults(self.manifest, strategy, self.path)


def search_defaults(manifest: dict[str, Any], strategy: str,
                    source: str | os.PathLike[str]) -> dict[str, Any]:
    """`manifest`'s search defaults for `strategy` (empty if it records none): strategy options
    chosen by measurement for this checkpoint and written with `ceiling defaults`."""
    table = manifest.get(SEARCH_DEFAULTS, {})
    if not isinstance(table, dict) or not all(
            isinstance(options, dict) for options in table.values()):
        raise CeilingError(f"{source}: the manifest's {SEARCH_DEFAULTS!r} must map strategy "
                           f"names to option mappings, got {table!r}")
    return dict(table.get(strategy, {}))


def write_search_defaults(path: str | os.PathLike[str], strategy: str,
                          options: dict[str, Any] | None) -> None:
    """Record `options` as checkpoint `path`'s search defaults for `strategy` (None removes
    them). Only `manifest.json` is rewritten, atomically; the parameters and their hash are
    untouched."""
    directory = Path(path)
    manifest = read_manifest(directory)
    search_defaults(manifest, strategy, directory)  # a damaged table fails before the write
    table = dict(manifest.get(SEARCH_DEFAULTS, {}))
    if options is None:
        table.pop(strategy, None)
    else:
        table[strategy] = dict(sorted(options.items()))
    if table:
        manifest[SEARCH_DEFAULTS] = dict(sorted(table.items()))
    else:
        manifest.pop(SEARCH_DEFAULTS, None)
    write_json(directory / MANIFEST_FILE, manifest, force=True, what="the manifest")


def parameter_shapes(params: Params) -> dict[str, list[int]]:
    flat = jax.tree_util.tree_flatten_with_path(params)[0]
    return {jax.tree_util.keystr(path): list(np.shape(leaf)) for path, leaf in flat}


def save_checkpoint(
    path: str | os.PathLike[str],
    policy: Policy,
    params: Params,
    extra: dict[str, Any] | None = None,
    force: bool = False,
) -> Path:
    """Write `params` of `policy` to directory `path` atomically; returns the path."""
    target = Path(path)
    if target.exists() and not force:
        raise CeilingError(f"checkpoint {target} already exists; pass --force to overwrite it")
    data = serialization.msgpack_serialize(
        jax.tree_util.tree_map(np.asarray, serialization.to_state_dict(params))
    )
    manifest = {
        "format_version": FORMAT_VERSION,
        "task": policy.spec.name,
        "algorithm": policy.config.label,
        "network": policy.config.to_dict(),
        "task_spec": {
            "num_agents": policy.spec.num_agents,
            "observation_shape": list(policy.spec.observation_shape),
            "num_actions": policy.spec.num_actions,
            "global_state_shape": list(policy.spec.global_state_shape),
            "observation_fields": [
                [name, list(shape)] for name, shape in policy.spec.observation_fields
            ],
        },
        "parameter_shapes": parameter_shapes(params),
        "num_parameters": policy.num_parameters(params),
        "ceiling_version": __version__,
        "sha256": hashlib.sha256(data).hexdigest(),
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        **(extra or {}),
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        (staging / PARAMS_FILE).write_bytes(data)
        (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
        if target.exists():
            # Move the old one aside first so that a crash leaves one complete checkpoint.
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
            os.replace(target, old / "ckpt")
            os.replace(staging, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of checkpoint directory `path`, after checking that this ceiling reads it."""
    directory = Path(path)
    if directory.is_file():
        hint = (f"; its directory is {directory.parent}"
                if directory.name in (MANIFEST_FILE, PARAMS_FILE) else "")
        raise CeilingError(f"checkpoint {directory} is a file, not a directory: a checkpoint is "
                           f"the directory holding {MANIFEST_FILE} and {PARAMS_FILE}{hint}")
    if not directory.is_dir():
        raise CeilingError(f"checkpoint directory {directory} does not exist")
    manifest_path = directory / MANIFEST_FILE
    if not manifest_path.is_file():
        raise CeilingError(f"{directory} is not a checkpoint: {MANIFEST_FILE} is missing")
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as err:
        raise CeilingError(f"{manifest_path} is not valid JSON: {err}") from None
    if not isinstance(manifest, dict):
        raise CeilingError(f"{manifest_path} is not a checkpoint manifest (not a JSON object)")
    check_format_version(manifest, manifest_path)
    for field in ("task", "network", "sha256", "parameter_shapes"):
        if field not in manifest:
            raise CeilingError(f"{manifest_path} lacks the field {field!r}")
    return manifest


def check_format_version(manifest: dict[str, Any], source: str | os.PathLike[str]) -> int:
    """The manifest's `format_version`; a `CeilingError` unless 1 <= it <= FORMAT_VERSION."""
    readable = (f"this version of ceiling ({__version__}) reads format versions 1 to "
                f"{FORMAT_VERSION}")
    if "format_version" not in manifest:
        raise CeilingError(f"{source} has no format_version, so it is not a ceiling checkpoint "
                           f"manifest or it is damaged; {readable}")
    version = manifest["format_version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise CeilingError(f"{source} has format_version {version!r}; {readable}")
    if version > FORMAT_VERSION:
        raise CeilingError(f"{source} has format_version {version}, but {readable}; a newer "
                           "ceiling wrote it: upgrade ceiling to load it")
    return version


def network_config(manifest: dict[str, Any]) -> NetworkConfig:
    """The manifest's network config; format 1 predates architectures and means "mlp"."""
    network = manifest["network"]
    if manifest["format_version"] >= 2 and "architecture" not in network:
        raise CeilingError(f"a format {manifest['format_version']} manifest must record "
                           "network.architecture")
    try:
        return NetworkConfig.from_dict(network)
    except (KeyError, TypeError, ValueError) as err:
        message = f"the manifest's network config {network!r} is invalid: {err!r}"
        raise CeilingError(message) from None


def parameter_template(policy: Policy) -> Params:
    """The shapes and dtypes of `policy`'s parameters (`jax.ShapeDtypeStruct` leaves), found
    by tracing `init` abstractly: running it would compile and run every initialiser op by op
    (over a hundred small compiles, seconds), only to be overwritten by the stored values."""
    return jax.eval_shape(policy.init, jax.ShapeDtypeStruct((2,), np.uint32))


def load_checkpoint(path: str | os.PathLike[str], task: str | None = None) -> Checkpoint:
    """Load and verify a checkpoint; with `task`, also check it was trained for that task."""
    directory = Path(path)
    manifest = read_manifest(directory)
    if task is not None and manifest["task"] != task:
        raise CeilingError(
            f"checkpoint {directory} was trained for {manifest['task']!r}, not {task!r}"
        )
    params_path = directory / PARAMS_FILE
    if not params_path.is_file():
        raise CeilingError(f"checkpoint {directory} is missing {PARAMS_FILE}")
    data = params_path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != manifest["sha256"]:
        raise CeilingError(
            f"{params_path} does not match its manifest (sha256 {digest[:12]}… != "
            f"{str(manifest['sha256'])[:12]}…): the file was modified or corrupted"
        )
    spec = task_spec(str(manifest["task"]))
    policy = make_policy(spec, network_config(manifest))
    template = parameter_template(policy)
    try:
        state = serialization.msgpack_restore(data)
        params = serialization.from_state_dict(template, state)
    except (ValueError, KeyError, TypeError) as err:
        raise CeilingError(f"cannot read parameters from {params_path}: {err}") from None
    if parameter_shapes(params) != parameter_shapes(template):
        raise CeilingError(
            f"checkpoint {directory} has parameter shapes that do not fit {spec.name} "
            "(was the task's observation size changed?)"
        )
    params = jax.tree_util.tree_map(
        lambda leaf, like: jax.numpy.asarray(leaf, dtype=like.dtype), params, template)
    return Checkpoint(policy=policy, params=params, manifest=manifest, path=directory)
