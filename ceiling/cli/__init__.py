"""The `ceiling` command: parse, validate, call the library, print. No logic lives here.

One module per area adds its subcommand (`add_parser`) and handles it: `tasks`, `train`,
`evaluate`, `solve`, `strategies`, `demo`; `ceiling.reuse.cli` and `ceiling.bench.cli` add
theirs. Each area imports the library inside its handler, so building the parser stays cheap.
Every `CeilingError` becomes a one-line message on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

from ceiling import __version__
from ceiling.cli import demo, evaluate, solve, strategies, tasks, train
from ceiling.cli.common import Parser
from ceiling.errors import CeilingError


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="ceiling", description="Inference strategies for trained multi-agent RL policies."
    )
    parser.add_argument("--version", action="version", version=f"ceiling {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for area in (tasks, train, evaluate, solve, strategies, demo):
        area.add_parser(sub)
    from ceiling.reuse.cli import add_reuse_parser

    add_reuse_parser(sub)
    from ceiling.bench.cli import add_bench_parsers

    add_bench_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
