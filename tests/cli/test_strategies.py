"""`ceiling strategies` and the strategy list in `ceiling solve --help`: every registered
strategy, its capabilities and its typed options, read from the registry."""

from __future__ import annotations

import json

import pytest

from ceiling.cli import main
from ceiling.search import STRATEGIES, strategy_options


def test_strategies_json_lists_every_strategy_with_typed_options(capsys) -> None:
    assert main(["strategies", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert [entry["strategy"] for entry in entries] == list(STRATEGIES)
    for entry in entries:
        cls = STRATEGIES[entry["strategy"]]
        assert entry["summary"] == cls.summary() and entry["summary"]
        assert entry["capabilities"] == {
            "needs_latent": cls.needs_latent, "budget_free": cls.budget_free,
            "updates_parameters": cls.updates_parameters, "min_width": cls.min_width}
        expected = strategy_options(entry["strategy"])
        assert [option["name"] for option in entry["options"]] == [s.name for s in expected]
        for option, spec in zip(entry["options"], expected, strict=True):
            assert option == {"name": spec.name, "type": spec.type, "default": spec.default,
                              "rule": spec.rule, "help": spec.help}
    by_name = {entry["strategy"]: entry for entry in entries}
    temperature = by_name["sampling"]["options"][0]
    assert (temperature["name"], temperature["type"], temperature["default"]) == \
        ("temperature", "float", 1.0)
    assert by_name["greedy"]["capabilities"]["budget_free"] is True
    assert by_name["compass"]["capabilities"]["needs_latent"] is True
    assert by_name["finetune"]["capabilities"]["updates_parameters"] is True


def test_strategies_table_shows_every_strategy_and_option(capsys) -> None:
    assert main(["strategies"]) == 0
    out = capsys.readouterr().out
    for name, cls in STRATEGIES.items():
        assert name in out
        assert cls.summary().split()[0] in out
        for spec in strategy_options(name):
            assert spec.name in out and spec.rule in out
    assert "budget-free" in out and "needs a COMPASS" in out
    assert "one of all, head" in out  # finetune's scope, with its valid values


def test_solve_help_lists_every_strategy_with_option_types_and_defaults(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["solve", "--help"])
    assert info.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())  # argparse may wrap anywhere
    for name in STRATEGIES:
        assert f"{name}: " in help_text
        for spec in strategy_options(name):
            assert f"{spec.name} ({spec.type}, default {spec.default}" in help_text
    for flag in ("--temperature", "--beam-width", "--expansion", "--finetune-scope",
                 "--option NAME=VALUE"):
        assert flag in help_text

