"""XLA compiler options shared by the library and its test suite. This module imports nothing
of jax, so it can be read before jax creates its backend (the tests turn it into XLA_FLAGS)."""

from __future__ import annotations

# For a program that runs once or a few times per instance (a replay, a greedy episode): its
# compile, not its run, is what the user waits for. Skipping LLVM's expensive passes cuts the
# compile of an RWARE episode by about a third; the run is milliseconds either way. Measured in
# BENCHMARKS.md, "Start-up and demo times".
RUN_ONCE_COMPILER_OPTIONS: dict[str, int | bool] = {
    "xla_backend_optimization_level": 0,
    "xla_llvm_disable_expensive_passes": True,
}


def as_xla_flags(options: dict[str, int | bool]) -> str:
    """The same options as an XLA_FLAGS string, for a whole process."""
    return " ".join(f"--{name}={str(value).lower()}" for name, value in options.items())
