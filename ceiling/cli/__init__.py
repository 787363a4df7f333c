"""The `ceiling` command: parse, validate, call the library, print. No logic lives here.

One module per area adds its subcommand (`add_parser`) and handles it: `tasks`, `train`,
`evaluate`, `solve`, `tune`, `strategies`, `defaults`, `demo`; `ceiling.reuse.cli` and
`ceiling.bench.cli` add theirs. Each area imports the library inside its handler, so building
the parser stays cheap; the reuse commands' parser is built only when the command is `reuse` (or
not yet known), as importing `ceiling.reuse` imports JAX, which `ceiling tasks` does without.
Every `CeilingError` becomes a one-line message on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

from ceiling import __version__
from ceiling.cli import defaults, demo, evaluate, solve, strategies, tasks, train, tune
from ceiling.cli.common import Parser, enable_compile_cache
from ceiling.errors import CeilingError

AREAS = (tasks, train, evaluate, solve, tune, strategies, defaults, demo)
# Commands that compile JAX programs: they keep them in the persistent compilation cache
# (`ceiling.cli.common.enable_compile_cache`; CEILING_COMPILE_CACHE=off turns it off).
COMPILING = ("solve", "tune", "evaluate", "demo", "bench", "train", "reuse")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The `ceiling` parser; `command`, the subcommand about to run where it is known, lets
    the parser skip building the reuse commands when they are not the one."""
    parser = Parser(
        prog="ceiling", description="Inference strategies for trained multi-agent RL policies."
    )
    parser.add_argument("--version", action="version", version=f"ceiling {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for area in AREAS:
        area.add_parser(sub)
    from ceiling.bench.cli import add_bench_parsers

    add_bench_parsers(sub)
    if command is None or command not in sub.choices:
        from ceiling.reuse.cli import add_reuse_parser

        add_reuse_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((word for word in argv if not word.startswith("-")), None)
    args = build_parser(command).parse_args(argv)
    if args.command in COMPILING:
        enable_compile_cache()
    try:
        return int(args.func(args))
    except CeilingError as err:
        print(f"ceiling: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ceiling: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`ceiling strategies --json | head`): stop quietly, and keep
        # Python from failing again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


__all__ = ["build_parser", "main"]
