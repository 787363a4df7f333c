"""`ceiling defaults`: show or record a checkpoint's search defaults.

A checkpoint's manifest may record, per strategy, the options chosen for it by measurement
(e.g. COMPASS scoring latents with sampled rollouts on a task where that searched better).
`ceiling solve`, `ceiling bench` and `ceiling demo` search the checkpoint with them unless an
option is set explicitly. Replacing or removing recorded defaults needs `--force`.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ceiling.cli.common import console, parse_assignments
from ceiling.errors import CeilingError


def add_parser(sub: Any) -> None:
    p = sub.add_parser("defaults", help="show or record a checkpoint's search defaults",
                       description=__doc__)
    p.add_argument("checkpoint", help="checkpoint directory")
    p.add_argument("--strategy", help="the strategy whose defaults to record or remove")
    p.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                   help="an option to record for --strategy (repeatable)")
    p.add_argument("--clear", action="store_true", help="remove --strategy's defaults")
    p.add_argument("--force", action="store_true",
                   help="replace or remove defaults the checkpoint already records")
    p.set_defaults(func=cmd_defaults)


def cmd_defaults(args: argparse.Namespace) -> int:
    from ceiling.policies.checkpoint import SEARCH_DEFAULTS, read_manifest, search_defaults
    from ceiling.search import build_options, strategy_class

    manifest = read_manifest(args.checkpoint)
    search_defaults(manifest, "", args.checkpoint)  # the recorded table's shape
    if args.strategy is None:
        if args.option or args.clear:
            raise CeilingError("--option and --clear need --strategy NAME")
        table = manifest.get(SEARCH_DEFAULTS, {})
        if not table:
            console().print(f"{args.checkpoint} records no search defaults")
        for name, options in table.items():
            console().print(f"{name}: {json.dumps(options, sort_keys=True)}")
        return 0
    cls = strategy_class(args.strategy)  # an unknown name, naming the valid ones
    if args.clear == bool(args.option):
        raise CeilingError("give --option NAME=VALUE (to record) or --clear (to remove), "
                           "not both or neither")
    options = None if args.clear else parse_assignments(args.option, "--option")
    if options is not None:  # its names, types and rules, as `ceiling solve --option` checks
        build_options(args.strategy, cls.Options, options)
    record_defaults(args.checkpoint, args.strategy, options, args.force)
    return 0


def record_defaults(checkpoint: str, strategy: str, options: dict[str, Any] | None,
                    force: bool) -> None:
    """Write `options` (None: remove them) as `checkpoint`'s search defaults for `strategy`,
    refusing to replace or remove different recorded ones without `force`; says what it did."""
    from ceiling.policies.checkpoint import read_manifest, search_defaults, write_search_defaults

    recorded = search_defaults(read_manifest(checkpoint), strategy, checkpoint)
    if recorded and recorded != options and not force:
        raise CeilingError(f"{checkpoint} already records {strategy} defaults "
                           f"{json.dumps(recorded, sort_keys=True)}; pass --force to "
                           f"{'remove' if options is None else 'replace'} them")
    write_search_defaults(checkpoint, strategy, options)
    console().print(f"{checkpoint}: {strategy} " + (
        "has no search defaults" if options is None
        else f"defaults {json.dumps(options, sort_keys=True)}"))
