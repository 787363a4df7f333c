"""Shared fixtures. Tests run on the CPU with small configs; nothing here is timed."""
# ruff: noqa: E402  (XLA_FLAGS must be set before anything imported below creates the backend)

from __future__ import annotations

import os

from ceiling.compile_options import RUN_ONCE_COMPILER_OPTIONS, as_xla_flags

# The suite's programs are tiny and mostly run once, so XLA's compile, not the run, is what a
# test waits for: the run-once options, for the whole process, cut the suite's CPU time
# (measured in BENCHMARKS.md, "Test suite"). Set before jax creates its backend; a user's own
# XLA_FLAGS stay, and `CEILING_TEST_XLA_OPT=on` keeps the optimising compiler.
if os.environ.get("CEILING_TEST_XLA_OPT", "").lower() != "on":
    os.environ["XLA_FLAGS"] = (f"{os.environ.get('XLA_FLAGS', '')} "
                               f"{as_xla_flags(RUN_ONCE_COMPILER_OPTIONS)}").strip()

import jax
import pytest

from ceiling.policies.networks import NetworkConfig, Policy
from ceiling.programs import MappingWatch, release_compiled_programs
from ceiling.tasks import make


@pytest.fixture(scope="session", autouse=True)
def run_compile_cache(tmp_path_factory: pytest.TempPathFactory):
    """One persistent JAX compilation cache for the whole test run, shared by the xdist
    workers (the folder above each worker's temporary folder) and empty at its start: a
    program that several tests compile alike (a task's replay, evaluation, a search step) is
    compiled once per run. It also keeps the tests out of the user's own cache, which
    `ceiling`'s commands would otherwise fill. A cache changes when code is compiled, never a
    result. `CEILING_TEST_COMPILE_CACHE=off` runs without it."""
    from jax._src import compilation_cache

    if os.environ.get("CEILING_TEST_COMPILE_CACHE", "").lower() == "off":
        # No cache at all: without this the `ceiling` commands that tests run would turn on
        # the user's own (`ceiling.cli.common.enable_compile_cache`), and fill it.
        os.environ["CEILING_COMPILE_CACHE"] = "off"
        yield None
        return
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    folder = shared / "jax-compile-cache"
    folder.mkdir(exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    compilation_cache.reset_cache()
    yield folder


# A worker runs hundreds of tests, each compiling programs that jax's caches keep, and every
# kept program holds memory mappings: past `vm.max_map_count` the next compile dies in a
# segmentation fault (the full suite did, at about 64,000 mappings).
_mappings = MappingWatch(1 / 3)


@pytest.fixture(autouse=True)
def release_programs_near_the_mapping_limit():
    """After any test that leaves the worker past a third of its allowed mappings, the cached
    programs are dropped (`ceiling.programs`)."""
    yield
    if _mappings.due():
        release_compiled_programs()
        _mappings.released()


@pytest.fixture(scope="session")
def connector_task():
    return make("connector:con-5x5x3a")


@pytest.fixture(scope="session")
def small_policy(connector_task):
    policy = Policy(connector_task.spec, NetworkConfig("ippo", (32, 32), "relu"))
    return policy, policy.init(jax.random.PRNGKey(0))
