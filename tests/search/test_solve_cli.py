"""`ceiling solve`: the result file, the budget it reports, the search identity it uses, its
option flags, and bad input refused before compiling."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from ceiling import search
from ceiling.cli import main
from ceiling.errors import CeilingError
from ceiling.policies.checkpoint import save_checkpoint

TASK = "connector:con-5x5x3a"


@pytest.fixture()
def checkpoint(tmp_path, small_policy):
    policy, params = small_policy
    return str(save_checkpoint(tmp_path / "ckpt", policy, params))


@pytest.mark.slow
def test_solve_writes_a_verified_result(tmp_path, checkpoint) -> None:
    out = tmp_path / "result.json"
    args = ["solve", "--checkpoint", checkpoint, "--task", TASK,
            "--instance", "2", "--strategy", "sampling", "--rollouts", "16", "--width", "8",
            "--temperature", "0.5", "--out", str(out)]
    assert main(args) == 0
    result = json.loads(out.read_text())
    assert result["solution"]["return"] == pytest.approx(result["solution"]["verified"])
    assert len(result["solution"]["actions"]) == 25
    assert result["budget"] == {"seconds": None, "rollouts": 16, "width": 8}
    assert [point["rollouts"] for point in result["trace"]] == [8, 16]
    assert result["compile_seconds"] > 0 and result["ceiling_version"]
    assert result["instance"] == 2 and result["seed"] == 0 and result["aborted"] is None
    assert result["options"] == {"temperature": 0.5}
    assert main(args) == 2  # the user's file stays unless --force
    assert main([*args, "--force"]) == 0

    # The temperature recorded as the checkpoint's search default does what the flag did.
    assert main(["defaults", checkpoint, "--strategy", "sampling",
                 "--option", "temperature=0.5"]) == 0
    flagless = [a for a in args if a not in ("--temperature", "0.5")]
    assert main([*flagless, "--force"]) == 0
    again = json.loads(out.read_text())
    assert again["options"] == {"temperature": 0.5}
    assert again["solution"]["actions"] == result["solution"]["actions"]


@pytest.fixture()
def captured(monkeypatch) -> dict[str, Any]:
    """What `ceiling solve` hands the driver; the search itself is not run."""
    seen: dict[str, Any] = {}

    def capture(strategy, params, instance_key, budget, key, on_batch=None):
        seen.update(strategy=strategy, instance_key=instance_key, budget=budget, key=key)
        raise CeilingError("captured before searching")

    monkeypatch.setattr(search, "solve", capture)
    return seen


def test_solve_starts_from_the_search_identity_of_a_bench_cell(checkpoint, captured) -> None:
    """`--seed S --instance I` searches instance_key(task, I) from search_key(S, task, I), the
    keys `ceiling bench` uses for that cell, with the width on the strategy."""
    assert main(["solve", "--checkpoint", checkpoint, "--task", TASK, "--instance", "3",
                 "--seed", "7", "--strategy", "sampling", "--rollouts", "32",
                 "--width", "16"]) == 2
    np.testing.assert_array_equal(captured["key"], search.search_key(7, TASK, 3))
    np.testing.assert_array_equal(captured["instance_key"], search.instance_key(TASK, 3))
    assert captured["budget"] == search.Budget(rollouts=32)
    assert captured["strategy"].width == 16


def test_solve_takes_the_task_from_the_checkpoint_and_shipped_labels(checkpoint, captured,
                                                                      capsys) -> None:
    """Without --task the checkpoint's own task is solved; `--checkpoint shipped:LABEL` with
    --task takes that task's shipped checkpoint (the `shipped:LABEL` of suites)."""
    assert main(["solve", "--checkpoint", checkpoint, "--instance", "3", "--strategy",
                 "sampling", "--rollouts", "16", "--width", "16"]) == 2
    np.testing.assert_array_equal(captured["instance_key"], search.instance_key(TASK, 3))
    captured.clear()
    assert main(["solve", "--checkpoint", "shipped:mappo", "--task", "smax:3m", "--strategy",
                 "sampling", "--rollouts", "16", "--width", "16"]) == 2
    np.testing.assert_array_equal(captured["instance_key"], search.instance_key("smax:3m", 0))
    assert captured["strategy"].task.spec.name == "smax:3m"
    capsys.readouterr()
    shipped = ["solve", "--strategy", "sampling", "--rollouts", "16", "--checkpoint"]
    assert main([*shipped, "shipped:mappo"]) == 2
    assert "give its task with --task" in capsys.readouterr().err
    assert main([*shipped, "shipped:compass-sable", "--task", "smax:3m"]) == 2
    assert "no shipped compass-sable checkpoint for smax:3m; shipped for smax:3m: compass, " \
           "ippo, mappo, sable" in capsys.readouterr().err
    assert main([*shipped, "shipped:mappo", "--task", "smax:smacv2_20_units"]) == 2
    err = capsys.readouterr().err
    assert "no checkpoint is shipped for smax:smacv2_20_units" in err and "smax:3m" in err


def test_solve_shorthand_flags_set_the_strategy_options(checkpoint, captured, capsys) -> None:
    base = ["solve", "--checkpoint", checkpoint, "--task", TASK, "--rollouts", "8",
            "--width", "8"]
    assert main([*base, "--strategy", "sgbs", "--beam-width", "2", "--expansion", "3"]) == 2
    options = captured["strategy"].options
    assert (options.beam_width, options.expansion) == (2, 3)
    assert main([*base, "--strategy", "finetune", "--finetune-scope", "head",
                 "--temperature", "2", "--option", "num_updates=1"]) == 2
    options = captured["strategy"].options
    assert (options.scope, options.temperature, options.num_updates) == ("head", 2.0, 1)
    assert isinstance(options.temperature, float)
    capsys.readouterr()
    # --STRATEGY-NAME belongs to that strategy only; one option set twice is refused.
    assert main([*base, "--strategy", "sampling", "--finetune-scope", "head"]) == 2
    assert "--finetune-scope sets option scope of strategy finetune" in capsys.readouterr().err
    assert main([*base, "--strategy", "sampling", "--temperature", "0.5",
                 "--option", "temperature=0.7"]) == 2
    assert "temperature is given twice" in capsys.readouterr().err
    # Shorthand values are typed and checked where --option values are.
    assert main([*base, "--strategy", "finetune", "--finetune-scope", "body"]) == 2
    err = capsys.readouterr().err
    assert "option scope must be" in err and "one of all, head, got 'body'" in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--strategy", "beam", "--seconds", "1"], "valid strategies: greedy, sampling"),
        (["--strategy", "sampling"], "at least one limit"),
        (["--strategy", "sampling", "--seconds", "1", "--width", "0"], "width"),
        (["--strategy", "sampling", "--seconds", "1", "--temperature", "0"], "temperature"),
        (["--strategy", "sampling", "--seconds", "1", "--temperature", "hot"], "got 'hot'"),
        (["--strategy", "sampling", "--seconds", "1", "--instance", "-1"], "test-set index"),
        (["--strategy", "sampling", "--seconds", "1", "--seed", "-1"], "--seed must be"),
        (["--strategy", "sampling", "--rollouts", "12", "--width", "8"], "e.g. 8 or 16"),
        (["--strategy", "greedy", "--seconds", "1", "--option", "depth=3"], "no option 'depth'"),
        (["--strategy", "greedy", "--seconds", "1", "--option", "depth"], "NAME=VALUE"),
        (["--strategy", "compass", "--seconds", "1"], "latent-conditioned"),
    ],
)
def test_solve_rejects_bad_input(checkpoint, capsys, extra, message) -> None:
    base = ["solve", "--checkpoint", checkpoint, "--task", TASK]
    assert main([*base, *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
