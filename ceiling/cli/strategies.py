"""`ceiling strategies`: every registered strategy, what one batch does, its capabilities and
its typed options, as a table or JSON; the same list, as text, ends `ceiling solve --help`.

Everything shown is read from the registry (`ceiling.search.STRATEGIES`), the capabilities
each class declares and `strategy_options`, so a new strategy appears here by registering it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import textwrap
from typing import Any

from ceiling.cli.common import console


def add_parser(sub: Any) -> None:
    p = sub.add_parser("strategies",
                       help="list the inference strategies, their capabilities and options")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.set_defaults(func=cmd_strategies)


def describe_strategies() -> list[dict[str, Any]]:
    """One entry per registered strategy: name, summary, capabilities, options (typed)."""
    from ceiling.search import STRATEGIES, strategy_options

    return [{
        "strategy": name,
        "summary": cls.summary(),
        "capabilities": {
            "needs_latent": cls.needs_latent, "budget_free": cls.budget_free,
            "updates_parameters": cls.updates_parameters, "min_width": cls.min_width,
        },
        "options": [dataclasses.asdict(spec) for spec in strategy_options(name)],
    } for name, cls in STRATEGIES.items()]


def capability_words(capabilities: dict[str, Any]) -> str:
    words = []
    if capabilities["needs_latent"]:
        words.append("needs a COMPASS (latent-conditioned) checkpoint")
    if capabilities["budget_free"]:
        words.append("budget-free: one deterministic attempt")
    if capabilities["updates_parameters"]:
        words.append("updates the policy's parameters")
    if capabilities["min_width"] > 1:
        words.append(f"width >= {capabilities['min_width']}")
    return "; ".join(words) or "-"


def default_words(value: Any) -> str:
    return "None" if value is None else str(value)


def strategies_epilog(width: int = 96) -> str:
    """The strategies and their options as plain text, for the end of `ceiling solve --help`."""
    lines = ["strategies (--strategy NAME) and their options (--option NAME=VALUE); "
             "`ceiling strategies` shows them as a table:"]
    for entry in describe_strategies():
        capabilities = capability_words(entry["capabilities"])
        head = f"{entry['strategy']}: {entry['summary']}" + (
            f" [{capabilities}]" if capabilities != "-" else "")
        lines += textwrap.wrap(head, width, initial_indent="  ", subsequent_indent="      ",
                               break_on_hyphens=False)
        if not entry["options"]:
            lines.append("    no options")
        for spec in entry["options"]:
            text = (f"{spec['name']} ({spec['type']}, default {default_words(spec['default'])}"
                    f", {spec['rule']}): {spec['help']}")
            lines += textwrap.wrap(text, width, initial_indent="    ",
                                   subsequent_indent="        ", break_on_hyphens=False)
    return "\n".join(lines)


def cmd_strategies(args: argparse.Namespace) -> int:
    entries = describe_strategies()
    if args.json:
        print(json.dumps(entries, indent=2))
        return 0
    from rich.table import Table

    strategies = Table(title="ceiling strategies (ceiling solve --strategy NAME)")
    for column in ("strategy", "what one batch does", "capabilities"):
        strategies.add_column(column)
    options = Table(title="strategy options (ceiling solve --option NAME=VALUE)")
    for column in ("strategy", "option", "type", "default", "valid values", "meaning"):
        options.add_column(column)
    for entry in entries:
        strategies.add_row(entry["strategy"], entry["summary"],
                           capability_words(entry["capabilities"]))
        if not entry["options"]:
            options.add_row(entry["strategy"], "-", "", "", "", "no options")
        for index, spec in enumerate(entry["options"]):
            options.add_row(entry["strategy"] if index == 0 else "", spec["name"], spec["type"],
                            default_words(spec["default"]), spec["rule"], spec["help"])
        options.add_section()
    out = console()
    out.print(strategies)
    out.print(options)
    return 0
