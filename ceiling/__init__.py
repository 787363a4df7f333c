"""ceiling: inference strategies that push trained multi-agent RL policies past their ceiling."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ceiling")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.1.0"

from ceiling.errors import CeilingError

__all__ = ["CeilingError", "__version__"]
