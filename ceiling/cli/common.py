"""What every `ceiling` subcommand shares: the console, safe JSON writes, NAME=VALUE pairs, and
a parser whose help text may be built only when help is shown.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ceiling.errors import CeilingError


def console(stderr: bool = False) -> Any:
    """A rich console on stdout (or stderr); piped output gets 160-column lines."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # Piped output (logs, CI) gets wide lines rather than rich's 80-column wrapping.
    width = None if stream.isatty() else 160
    return Console(stderr=stderr, highlight=False, width=width)


def refuse_existing(path: str | Path, force: bool) -> None:
    """Never overwrite a user's file without --force."""
    if Path(path).exists() and not force:
        raise CeilingError(f"{path} already exists; pass --force to overwrite it")


def write_json(path: str | Path, data: dict[str, Any], force: bool) -> None:
    """Write `data` to `path` through a temporary name and a rename."""
    target = Path(path)
    refuse_existing(target, force)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.tmp")
    staging.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(staging, target)


def parse_assignments(pairs: list[str], flag: str) -> dict[str, Any]:
    """{name: value} from `NAME=VALUE` strings; values read as numbers, booleans or text."""
    from ceiling.training.config import parse_scalar

    values: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise CeilingError(f"{flag} expects NAME=VALUE, got {pair!r}")
        if name in values:
            raise CeilingError(f"{flag} {name} is given twice")
        values[name] = parse_scalar(value)
    return values


class Parser(argparse.ArgumentParser):
    """An argument parser that can build its epilog when help is shown (`epilog_from`): the
    list of strategies at the end of `ceiling solve --help` needs every strategy imported,
    which no other command should pay for. The subcommand parsers are made with this class."""

    def __init__(self, *args: Any, epilog_from: Callable[[], str] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.epilog_from = epilog_from

    def format_help(self) -> str:
        if self.epilog_from is not None:
            self.epilog, self.epilog_from = self.epilog_from(), None
        return super().format_help()
