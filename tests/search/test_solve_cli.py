"""`ceiling solve`: the result file, the budget it reports, and bad input before compiling."""

from __future__ import annotations

import json

import pytest

from ceiling.cli import main
from ceiling.policies.checkpoint import save_checkpoint


@pytest.fixture()
def checkpoint(tmp_path, small_policy):
    policy, params = small_policy
    return str(save_checkpoint(tmp_path / "ckpt", policy, params))


def test_solve_writes_a_verified_result(tmp_path, checkpoint) -> None:
    out = tmp_path / "result.json"
    args = ["solve", "--checkpoint", checkpoint, "--task", "connector:con-5x5x3a",
            "--instance", "2", "--strategy", "sampling", "--rollouts", "16", "--width", "8",
            "--temperature", "0.5", "--out", str(out)]
    assert main(args) == 0
    result = json.loads(out.read_text())
    assert result["solution"]["return"] == pytest.approx(result["solution"]["verified"])
    assert len(result["solution"]["actions"]) == 25
    assert result["budget"] == {"seconds": None, "rollouts": 16, "width": 8}
    assert [point["rollouts"] for point in result["trace"]] == [8, 16]
    assert result["compile_seconds"] > 0 and result["ceiling_version"]
    assert result["instance"] == 2 and result["aborted"] is None
    assert main(args) == 2  # the user's file stays unless --force
    assert main([*args, "--force"]) == 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--strategy", "beam", "--seconds", "1"], "valid strategies"),
        (["--strategy", "sampling"], "at least one limit"),
        (["--strategy", "sampling", "--seconds", "1", "--width", "0"], "width"),
        (["--strategy", "sampling", "--seconds", "1", "--temperature", "0"], "temperature"),
        (["--strategy", "sampling", "--seconds", "1", "--instance", "-1"], "test-set index"),
        (["--strategy", "greedy", "--seconds", "1", "--option", "depth=3"], "no option 'depth'"),
    ],
)
def test_solve_rejects_bad_input(checkpoint, capsys, extra, message) -> None:
    base = ["solve", "--checkpoint", checkpoint, "--task", "connector:con-5x5x3a"]
    assert main([*base, *extra]) == 2
    assert message in capsys.readouterr().err
