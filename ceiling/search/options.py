"""Typed strategy options: one frozen dataclass per strategy, validated in one place.

A strategy declares its options as a dataclass whose fields come from `option(...)`: a default,
a rule (what values are valid, in words, and the test) and a one-line help. `build_options`
turns user keyword values into that dataclass: unknown names, wrong types and values outside a
rule all fail with a `CeilingError` that names the option and what is valid. `describe_options`
lists them with types and defaults for `ceiling strategies` and `ceiling solve --help`.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any

from ceiling.errors import CeilingError


@dataclasses.dataclass(frozen=True)
class Rule:
    """What values are valid, in words (`> 0`, `one of all, head`), and the test itself."""

    words: str
    test: Callable[[Any], bool]


POSITIVE = Rule("> 0", lambda v: v > 0)
NON_NEGATIVE = Rule(">= 0", lambda v: v >= 0)
UNIT = Rule("in [0, 1]", lambda v: 0 <= v <= 1)
ANY = Rule("any value", lambda v: True)


def at_least(low: int) -> Rule:
    return Rule(f">= {low}", lambda v: v >= low)


def one_of(choices: Sequence[str]) -> Rule:
    return Rule(f"one of {', '.join(choices)}", lambda v: v in choices)


def option(default: Any, rule: Rule = ANY, help: str = "") -> Any:  # noqa: A002 (argparse's word)
    """A dataclass field of a strategy's options with its rule and help."""
    return dataclasses.field(default=default, metadata={"rule": rule, "help": help})


@dataclasses.dataclass(frozen=True)
class StrategyOptions:
    """A strategy without options; strategies with options subclass it."""


@dataclasses.dataclass(frozen=True)
class OptionSpec:
    """One option as `ceiling strategies` lists it."""

    name: str
    type: str  # int, float, str, or e.g. "int | None"
    default: Any
    rule: str
    help: str


def _field_types(options_type: type[StrategyOptions]) -> dict[str, Any]:
    return typing.get_type_hints(options_type)


def _accepted(annotation: Any) -> tuple[tuple[type, ...], bool]:
    """(the Python types an annotation accepts, whether None is allowed)."""
    args = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else ()
    members = args or (annotation,)
    optional = type(None) in members
    accepted = tuple(m for m in members if m is not type(None))
    return accepted, optional


def _type_words(annotation: Any) -> str:
    accepted, optional = _accepted(annotation)
    words = " | ".join(t.__name__ for t in accepted)
    return f"{words} | None" if optional else words


NOUNS = {int: "an integer", float: "a finite number", str: "text", bool: "true or false"}


def _requirement(annotation: Any, rule: Rule) -> str:
    """`an integer >= 1`, `a finite number > 0 (or None)`, `one of all, head`."""
    accepted, optional = _accepted(annotation)
    if rule.words.startswith("one of"):
        words = rule.words
    else:
        words = " or ".join(NOUNS.get(t, t.__name__) for t in accepted)
        words += "" if rule is ANY else f" {rule.words}"
    return f"{words} (or None)" if optional else words


def _coerce(strategy: str, name: str, value: Any, annotation: Any, rule: Rule) -> Any:
    accepted, optional = _accepted(annotation)
    if value is None and optional:
        return None
    problem = f"{strategy} option {name} must be {_requirement(annotation, rule)}"
    if isinstance(value, bool) and bool not in accepted:
        raise CeilingError(f"{problem}, got {value!r}")
    if float in accepted and isinstance(value, int | float):
        if not math.isfinite(value):
            raise CeilingError(f"{problem}, got {value!r}")
        value = float(value)
    elif not isinstance(value, accepted):
        raise CeilingError(f"{problem}, got {value!r}")
    if not rule.test(value):
        raise CeilingError(f"{problem}, got {value!r}")
    return value


def build_options(
    strategy: str, options_type: type[StrategyOptions], values: dict[str, Any]
) -> StrategyOptions:
    """The validated options of `strategy` from user keyword values (missing ones: defaults)."""
    fields = {f.name: f for f in dataclasses.fields(options_type)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise CeilingError(f"strategy {strategy!r} has no option "
                           f"{', '.join(map(repr, unknown))}; valid options: "
                           f"{', '.join(fields) or 'none'}")
    hints = _field_types(options_type)
    checked = {
        name: _coerce(strategy, name, values[name], hints[name], fields[name].metadata["rule"])
        for name in values
    }
    return options_type(**checked)


def validate_options(strategy: str, options: StrategyOptions) -> StrategyOptions:
    """Re-check an options object built directly (not through `build_options`)."""
    return build_options(strategy, type(options), dataclasses.asdict(options))


def describe_options(options_type: type[StrategyOptions]) -> list[OptionSpec]:
    hints = _field_types(options_type)
    return [OptionSpec(f.name, _type_words(hints[f.name]), f.default,
                       f.metadata["rule"].words, f.metadata["help"])
            for f in dataclasses.fields(options_type)]
