"""Sweep workers claim distinct cores and pin every thread to theirs (ceiling.bench.pinning)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ceiling.bench.pinning import claim_core

LINUX_AFFINITY = hasattr(os, "sched_setaffinity") and os.path.isdir("/proc/self/task")


def test_claims_are_exclusive_until_released(tmp_path):
    first = claim_core([3, 1, 2], str(tmp_path))
    second = claim_core([3, 1, 2], str(tmp_path))
    third = claim_core([3, 1, 2], str(tmp_path))
    assert first is not None and second is not None and third is not None
    assert [first[0], second[0], third[0]] == [1, 2, 3]  # lowest free core first
    assert claim_core([3, 1, 2], str(tmp_path)) is None  # every core held
    second[1].close()  # the worker holding core 2 ends
    again = claim_core([3, 1, 2], str(tmp_path))
    assert again is not None and again[0] == 2
    for claim in (first, third, again):
        claim[1].close()


PROBE = """
import json, os
import jax, jax.numpy as jnp
jax.jit(lambda x: (x @ x).sum())(jnp.ones((64, 64))).block_until_ready()  # jax's threads exist
from ceiling.bench.pinning import pin_worker
core = pin_worker()
affinities = {tid: sorted(os.sched_getaffinity(int(tid))) for tid in os.listdir("/proc/self/task")}
print(json.dumps({"core": core, "again": pin_worker(), "affinities": affinities}))
"""


def probe(tmp_path, **env):
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         check=True, env={**os.environ, "CEILING_CORE_LOCKS": str(tmp_path),
                                          **env})
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not LINUX_AFFINITY or len(os.sched_getaffinity(0)) < 2,
                    reason="needs Linux thread affinity and at least two usable cores")
def test_pin_worker_pins_every_thread_of_the_process(tmp_path):
    result = probe(tmp_path)
    core = result["core"]
    assert core == min(os.sched_getaffinity(0))  # the first free core (no other claims here)
    assert result["again"] == core  # once per process
    assert len(result["affinities"]) > 1  # jax runs threads besides the main one
    assert all(cores == [core] for cores in result["affinities"].values())


@pytest.mark.skipif(not LINUX_AFFINITY or len(os.sched_getaffinity(0)) < 2,
                    reason="needs Linux thread affinity and at least two usable cores")
def test_pinning_can_be_turned_off(tmp_path):
    result = probe(tmp_path, CEILING_PIN_CORES="0")
    assert result["core"] is None
    allowed = sorted(os.sched_getaffinity(0))
    assert all(cores == allowed for cores in result["affinities"].values())
