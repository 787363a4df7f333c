"""The command line: what a user types and sees, including every error path."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ceiling.cli import main
from ceiling.policies.checkpoint import save_checkpoint

TINY_SETS = ["--set", "num_envs=16", "--set", "rollout_length=16", "--set", "num_minibatches=2",
             "--set", "hidden_sizes=16,16", "--set", "eval_every=256", "--set",
             "eval_instances=2"]


def test_tasks_lists_every_task_with_its_spec(capsys) -> None:
    assert main(["tasks", "--json"]) == 0
    rows = {row["task"]: row for row in json.loads(capsys.readouterr().out)}
    assert len(rows) == 24
    assert rows["rware:tiny-2ag-hard"]["agents"] == 2
    assert rows["rware:tiny-2ag-hard"]["horizon"] == 500
    assert rows["connector:con-10x10x10a"]["horizon"] == 100
    assert rows["smax:3m"]["win_condition"] is True
    assert main(["tasks", "--family", "smax"]) == 0
    assert "smax:smacv2_20_units" in capsys.readouterr().out
    assert main(["tasks", "--family", "mpe"]) == 2
    assert "valid: rware, connector, smax" in capsys.readouterr().err


@pytest.mark.slow
def test_evaluate_prints_and_writes_json(tmp_path, capsys, small_policy) -> None:
    policy, params = small_policy
    ckpt = save_checkpoint(tmp_path / "ckpt", policy, params)
    out = tmp_path / "eval.json"
    code = main(["evaluate", "--checkpoint", str(ckpt), "--instances", "4", "--json",
                 "--out", str(out)])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    written = json.loads(out.read_text())
    for result in (printed, written):
        assert {"mean_return", "ci95", "win_rate", "num_instances"} <= set(result)
        assert result["num_instances"] == 4 and result["win_rate"] is None
        assert result["ci95"][0] <= result["mean_return"] <= result["ci95"][1]
    # The file is the user's now: not overwritten without --force.
    assert main(["evaluate", "--checkpoint", str(ckpt), "--instances", "4", "--stochastic",
                 "--out", str(out)]) == 2
    assert "already exists; pass --force" in capsys.readouterr().err
    assert json.loads(out.read_text()) == written


def test_evaluate_errors_are_one_line_messages(tmp_path, capsys, small_policy) -> None:
    policy, params = small_policy
    ckpt = save_checkpoint(tmp_path / "ckpt", policy, params)
    assert main(["evaluate", "--checkpoint", str(ckpt), "--task", "smax:3m"]) == 2
    assert "trained for 'connector:con-5x5x3a', not 'smax:3m'" in capsys.readouterr().err
    assert main(["evaluate", "--checkpoint", str(tmp_path / "none")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["evaluate", "--checkpoint", str(ckpt), "--instances", "0"]) == 2
    (ckpt / "params.msgpack").write_bytes(b"\x00" + (ckpt / "params.msgpack").read_bytes())
    assert main(["evaluate", "--checkpoint", str(ckpt)]) == 2
    assert "modified or corrupted" in capsys.readouterr().err


@pytest.mark.slow
def test_train_end_to_end_and_bad_input(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    args = ["train", "--task", "connector:con-5x5x3a", "--algo", "mappo", "--steps", "1024",
            "--out", str(out), "--quiet", *TINY_SETS]
    assert main(args) == 0
    assert (out / "last" / "manifest.json").is_file()
    assert json.loads((out / "last" / "manifest.json").read_text())["algorithm"] == "mappo"
    capsys.readouterr()
    assert main(args) == 2
    assert "already exists; pass --force" in capsys.readouterr().err
    assert main([*args, "--force"]) == 0
    assert main(["train", "--task", "rware:tiny", "--algo", "ippo", "--out", "x"]) == 2
    assert "valid tasks" in capsys.readouterr().err
    bad = ["train", "--task", "smax:3m", "--algo", "ippo", "--out", str(tmp_path / "b"),
           "--set", "num_envs=10", "--set", "num_minibatches=3"]
    assert main(bad) == 2
    assert "num_envs (10) must be divisible by num_minibatches (3)" in capsys.readouterr().err
    assert main(["train", "--task", "smax:3m", "--algo", "ippo", "--out", str(tmp_path / "c"),
                 "--set", "learning_rate=-1"]) == 2
    assert "learning_rate must be positive" in capsys.readouterr().err
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()


def test_installed_entry_point_reports_errors_without_traceback() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ceiling.cli", "evaluate", "--checkpoint", "/nonexistent"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    expected = "ceiling: error: checkpoint directory /nonexistent does not exist"
    assert result.stderr.strip() == expected


def test_every_command_prints_its_help(capsys) -> None:
    import argparse

    from ceiling.cli import build_parser

    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    for name in sub.choices:
        with pytest.raises(SystemExit) as info:
            main([name, "--help"])
        assert info.value.code == 0, name
        assert capsys.readouterr().out.startswith(f"usage: ceiling {name}")
    main_help = subprocess.run([sys.executable, "-m", "ceiling.cli", "bench", "--help"],
                               capture_output=True, text=True, timeout=120)
    assert "cells that had less than 90 % of a CPU core" in " ".join(main_help.stdout.split())


@pytest.mark.parametrize("argv", [["train"], ["evaluate"], ["frobnicate"]])
def test_usage_errors_exit_nonzero(argv) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code != 0


@pytest.mark.slow
def test_demo_prints_a_row_per_shipped_checkpoint(monkeypatch, capsys) -> None:
    from ceiling.policies import shipped

    every = shipped.shipped_checkpoints()
    one = {key: path for key, path in every.items() if key == ("connector:con-5x5x3a", "ippo")}
    monkeypatch.setattr(shipped, "shipped_checkpoints", lambda: one)
    assert main(["demo", "--instances", "2", "--search-instances", "0"]) == 0
    out = capsys.readouterr().out
    assert "connector:con-5x5x3a" in out and "ippo" in out and "smax:3m" not in out
    monkeypatch.setattr(shipped, "shipped_checkpoints", lambda: {})
    assert main(["demo"]) == 2
    assert "no shipped checkpoints" in capsys.readouterr().err


def test_demo_searches_with_the_compass_checkpoint_where_a_strategy_needs_a_latent(
    tmp_path, monkeypatch, capsys
) -> None:
    """The demo's search: every registered strategy, those needing a latent on the shipped
    COMPASS checkpoint, the others on the MAPPO one, at the requested budget and width."""
    from ceiling.errors import CeilingError
    from ceiling.policies import evaluation, shipped
    from ceiling.search import STRATEGIES, Budget
    from ceiling.search import compare as compare_module

    task = "rware:tiny-2ag-hard"
    every = shipped.shipped_checkpoints()
    ours = {key: path for key, path in every.items() if key[0] == task}
    assert {"mappo", "compass"} <= {algorithm for _, algorithm in ours}
    monkeypatch.setattr(shipped, "shipped_checkpoints", lambda: ours)
    zero_shot = {"mean_return": 1.0, "ci95": [0.5, 1.5], "win_rate": None}
    monkeypatch.setattr(evaluation, "evaluate_checkpoint", lambda *a, **k: zero_shot)
    seen = {}

    class FakeComparison:
        def __init__(self, checkpoint, strategies, budget, other_checkpoints, *, width):
            seen.update(checkpoint=checkpoint, strategies=strategies, budget=budget,
                        other_checkpoints=other_checkpoints, width=width)
            self.closed, self.built = False, dict.fromkeys(strategies)
            seen["comparison"] = self

        def run(self, num_instances, **kwargs):
            seen.update(num_instances=num_instances)
            raise CeilingError("stopped before searching")

        def close(self):
            self.closed = True

    monkeypatch.setattr(compare_module, "Comparison", FakeComparison)
    plot = tmp_path / "anytime.png"
    assert main(["demo", "--instances", "2", "--search-instances", "3", "--seconds", "0.5",
                 "--width", "8", "--plot", str(plot)]) == 2
    assert "stopped before searching" in capsys.readouterr().err
    latent = {name for name, cls in STRATEGIES.items() if cls.needs_latent}
    assert latent and sorted(seen["strategies"]) == sorted(STRATEGIES)
    assert seen["strategies"][: len(STRATEGIES) - len(latent)] == [
        name for name in STRATEGIES if name not in latent]  # the same order as before
    assert set(seen["other_checkpoints"]) == latent
    assert {c.algorithm for c in seen["other_checkpoints"].values()} == {"compass"}
    assert seen["checkpoint"].algorithm == "mappo"
    assert seen["budget"] == Budget(seconds=0.5) and seen["width"] == 8
    assert seen["num_instances"] == 3
    assert seen["comparison"].closed  # background compiles not yet started are dropped
    plot.write_bytes(b"")  # an existing plot is the user's: kept unless --force
    assert main(["demo", "--search-instances", "1", "--plot", str(plot)]) == 2
    assert "already exists; pass --force" in capsys.readouterr().err
