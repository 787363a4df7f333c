"""What every `ceiling` subcommand shares: the console, output paths checked before the work
and written safely after it (`ceiling.outputs`, re-exported here), NAME=VALUE pairs, progress,
the persistent compilation cache, and a parser that shows defaults and may build its help text
only when help is shown.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ceiling.errors import CeilingError
from ceiling.outputs import check_writable, refuse_existing, write_json, write_text_safely

# Where compiled programs are kept between runs unless the user says otherwise (see
# `enable_compile_cache`); `CEILING_COMPILE_CACHE=off` turns it off, `=DIR` moves it.
COMPILE_CACHE_VARIABLE = "CEILING_COMPILE_CACHE"
COMPILE_CACHE_MAX_BYTES = 2 * 1024**3


def console(stderr: bool = False) -> Any:
    """A rich console on stdout (or stderr); piped output gets 160-column lines."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # Piped output (logs, CI) gets wide lines rather than rich's 80-column wrapping.
    width = None if stream.isatty() else 160
    return Console(stderr=stderr, highlight=False, width=width)


# -- arguments -------------------------------------------------------------------------------
def parse_assignments(pairs: list[str], flag: str, parse: Callable[[str], Any] | None = None,
                      form: str = "NAME=VALUE") -> dict[str, Any]:
    """{name: value} from `NAME=VALUE` strings; values read as numbers, booleans or text, or
    by `parse` (whose errors are said with the flag and name)."""
    from ceiling.training.config import parse_scalar

    values: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise CeilingError(f"{flag} expects {form}, got {pair!r}")
        if name in values:
            raise CeilingError(f"{flag} {name} is given twice")
        try:
            values[name] = (parse or parse_scalar)(value)
        except CeilingError as err:
            raise CeilingError(f"{flag} {name}: {err}") from None
    return values


CHECKPOINT_HELP = ("checkpoint directory, or shipped:LABEL for the task's shipped one "
                   "(shipped:ippo, shipped:mappo, shipped:sable, shipped:compass, ...)")


def resolve_checkpoint(spec: str, task: str | None) -> str:
    """A `--checkpoint` value as a directory: itself, or for `shipped:LABEL` the shipped
    checkpoint of that label for `task` (the `shipped:LABEL` of suites)."""
    if not spec.startswith("shipped:"):
        return spec
    if task is None:
        raise CeilingError(f"--checkpoint {spec} names a shipped checkpoint: give its task with "
                           "--task (e.g. --task rware:tiny-2ag-hard)")
    from ceiling.policies.shipped import shipped_checkpoint

    return str(shipped_checkpoint(task, spec.removeprefix("shipped:")))


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help that ends each option with its default, unless it has none worth saying (None,
    False, an empty list) or the help text already says it; descriptions and epilogs are
    printed as written."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (not action.option_strings or "%(default)" in text or "default" in text
                or default is None or default is False or default == []
                or default is argparse.SUPPRESS):
            return action.help
        return f"{text} (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """An argument parser that shows defaults (`HelpFormatter`) and can build its epilog when
    help is shown (`epilog_from`): the list of strategies at the end of `ceiling solve --help`
    needs every strategy imported, which no other command should pay for. The subcommand
    parsers are made with this class."""

    def __init__(self, *args: Any, epilog_from: Callable[[], str] | None = None,
                 **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)
        self.epilog_from = epilog_from

    def format_help(self) -> str:
        if self.epilog_from is not None:
            self.epilog, self.epilog_from = self.epilog_from(), None
        return super().format_help()


# -- compiled programs -----------------------------------------------------------------------
def default_compile_cache() -> Path | None:
    """The folder `enable_compile_cache` uses, or None when the user turned it off."""
    chosen = os.environ.get(COMPILE_CACHE_VARIABLE, "").strip()
    if chosen.lower() in ("off", "0", "no", "false", "none"):
        return None
    if chosen:
        return Path(chosen).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ceiling" / "jax"


def enable_compile_cache() -> Path | None:
    """Keep compiled programs on disk between runs (JAX's persistent compilation cache), so a
    second `ceiling solve` or `ceiling evaluate` of the same task and network loads its search
    step and replay instead of compiling them for seconds. Only programs that took over a
    second to compile are kept (JAX's default), in at most 2 GiB, least recently used first
    out. A cache the user set up (`JAX_COMPILATION_CACHE_DIR`, `jax.config`) is left as it
    is; `CEILING_COMPILE_CACHE=off` turns this off. A cache changes when code is compiled,
    never a result. Returns the folder in use (None: none)."""
    import jax

    configured = getattr(jax.config, "jax_compilation_cache_dir", None)
    if configured:
        return Path(configured)
    folder = default_compile_cache()
    if folder is None:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # an unwritable home only loses the speed-up
    jax.config.update("jax_compilation_cache_dir", str(folder))
    if importlib.util.find_spec("filelock") is not None:  # JAX needs it to bound the size
        jax.config.update("jax_compilation_cache_max_size", COMPILE_CACHE_MAX_BYTES)
    return folder


@contextlib.contextmanager
def phase(description: str, total: int | None = None, **kwargs: Any) -> Iterator[Any]:
    """`ceiling.progress.Progress` as a context manager (see there)."""
    from ceiling.progress import Progress

    with Progress(description, total, **kwargs) as progress:
        yield progress


__all__ = [
    "HelpFormatter", "Parser", "check_writable", "console", "enable_compile_cache",
    "parse_assignments", "phase", "refuse_existing", "write_json", "write_text_safely",
]
