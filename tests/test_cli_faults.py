"""Faults a new user meets: an `--out` that cannot be written (refused before the work, and a
write that still fails keeps the result), a width beyond memory (refused before compiling),
progress when output is a log, help that shows defaults, and a quick `ceiling tasks`.

The searches and evaluations here are replaced by stand-ins where the test is about what
happens around them, so these tests compile nothing."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ceiling import search
from ceiling.cli import main
from ceiling.policies.checkpoint import save_checkpoint
from ceiling.progress import Progress
from ceiling.search.driver import SearchResult, TracePoint
from ceiling.search.solution import Solution

TASK = "connector:con-5x5x3a"


@pytest.fixture()
def checkpoint(tmp_path: Path, small_policy: Any) -> str:
    policy, params = small_policy
    return str(save_checkpoint(tmp_path / "ckpt", policy, params))


@pytest.fixture()
def blocker(tmp_path: Path) -> Path:
    """A regular file: nothing can be written below it."""
    path = tmp_path / "a-file"
    path.write_text("")
    return path


@pytest.fixture()
def searches(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """`ceiling solve`'s search replaced by a finished one (the strategies it was asked for
    are recorded)."""
    ran: list[str] = []

    def finished(strategy: Any, params: Any, instance_key: Any, budget: Any, key: Any,
                 on_batch: Any = None) -> SearchResult:
        ran.append(strategy.name)
        solution = Solution(TASK, np.zeros((25, 3), np.int32), 2.5, None, 2.5)
        return SearchResult(solution, [TracePoint(0.1, 16, 2.5)], budget, strategy.name,
                            strategy.width, 0.5, 0.1, 16, 1)

    monkeypatch.setattr(search, "solve", finished)
    return ran


def _solve(checkpoint: str, out: Path, *extra: str) -> list[str]:
    return ["solve", "--checkpoint", checkpoint, "--task", TASK, "--strategy", "sampling",
            "--rollouts", "16", "--width", "16", "--out", str(out), *extra]


def test_solve_refuses_an_unwritable_out_before_searching(
        tmp_path: Path, checkpoint: str, blocker: Path, searches: list[str],
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_solve(checkpoint, blocker / "result.json")) == 2
    assert f"cannot write --out {blocker / 'result.json'}: {blocker} is a file, not a " \
           "directory" in capsys.readouterr().err
    folder = tmp_path / "folder"
    folder.mkdir()
    assert main(_solve(checkpoint, folder, "--force")) == 2  # a directory, even with --force
    assert f"--out {folder} is a directory; give a file path" in capsys.readouterr().err
    assert searches == []  # refused before the search
    assert main(_solve(checkpoint, tmp_path / "new" / "result.json")) == 0
    assert searches == ["sampling"]
    assert json.loads((tmp_path / "new" / "result.json").read_text())["solution"]["return"] == 2.5


def test_a_solve_result_whose_write_fails_is_saved_beside_and_nothing_half_written_stays(
        tmp_path: Path, checkpoint: str, blocker: Path, searches: list[str],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The path passes the check, then cannot be written when the search is done (the folder
    was replaced by a file meanwhile): the result is kept in the working directory."""
    from ceiling.cli import solve as solve_module

    monkeypatch.setattr(solve_module, "check_writable", lambda *args, **kwargs: None)
    monkeypatch.chdir(tmp_path)
    assert main(_solve(checkpoint, blocker / "result.json")) == 2
    err = capsys.readouterr().err
    assert searches == ["sampling"]
    assert f"could not write the search result to {blocker / 'result.json'}" in err
    (saved,) = tmp_path.glob("result-*.json")
    assert f"it was saved to {saved} instead" in err
    assert json.loads(saved.read_text())["solution"]["return"] == 2.5
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_evaluate_refuses_an_unwritable_out_and_keeps_a_result_it_cannot_write(
        tmp_path: Path, checkpoint: str, blocker: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from ceiling.cli import evaluate as evaluate_module
    from ceiling.policies import evaluation

    evaluated: list[str] = []
    summary = {"task": TASK, "algorithm": "ippo", "mode": "greedy", "num_instances": 4,
               "mean_return": 2.5, "ci95": [2.0, 3.0], "win_rate": None}
    monkeypatch.setattr(evaluation, "evaluate_checkpoint",
                        lambda *args, **kwargs: evaluated.append("ran") or summary)
    args = ["evaluate", "--checkpoint", checkpoint, "--instances", "4", "--out"]
    assert main([*args, str(blocker / "e.json")]) == 2
    assert "is a file, not a directory" in capsys.readouterr().err
    assert evaluated == []
    monkeypatch.setattr(evaluate_module, "check_writable", lambda *args, **kwargs: None)
    monkeypatch.chdir(tmp_path)
    assert main([*args, str(blocker / "e.json")]) == 2
    captured = capsys.readouterr()
    assert "mean return 2.500" in captured.out  # printed before the write was tried
    (saved,) = tmp_path.glob("e-*.json")
    assert f"could not write the evaluation to {blocker / 'e.json'}" in captured.err
    assert json.loads(saved.read_text()) == summary


def test_a_width_beyond_memory_is_refused_before_compiling_with_one_that_fits(
        checkpoint: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from ceiling.search import memory

    compiled: list[str] = []
    monkeypatch.setattr(search, "solve", lambda *args, **kwargs: compiled.append("solve"))
    monkeypatch.setattr(memory, "available_bytes", lambda device=None: 256 * 1024**2)
    assert main(["solve", "--checkpoint", checkpoint, "--task", TASK, "--strategy", "sampling",
                 "--seconds", "1", "--width", "10000000"]) == 2
    err = capsys.readouterr().err
    assert compiled == []
    assert "sampling at width 10,000,000 on connector:con-5x5x3a needs about" in err
    assert "before compiling), but 256 MiB is available here" in err
    fits = int(err.split("(--width ")[1].split(")")[0])
    assert 16 <= fits < 10_000_000


def test_progress_is_plain_lines_when_stderr_is_not_a_terminal() -> None:
    stream = io.StringIO()
    with Progress("zero-shot", total=3, live=False, stream=stream, interval=3600) as progress:
        for name in ("a", "b", "c"):
            progress.update(name, advance=1)
    lines = stream.getvalue().splitlines()
    assert [line.split("] ", 1)[1] for line in lines] == [
        "zero-shot 0/3 ...", "zero-shot 1/3: a", "zero-shot 2/3: b", "zero-shot 3/3: c",
        "zero-shot 3/3: c - done"]
    assert all(line.startswith("[") and " s] " in line for line in lines)


def test_a_silent_phase_still_prints_a_line_every_interval() -> None:
    import time

    stream = io.StringIO()
    with Progress("compiling", live=False, stream=stream, interval=0.2):
        time.sleep(1.0)
    assert stream.getvalue().count("(still working)") >= 2


def test_help_shows_defaults() -> None:
    from ceiling.cli import build_parser

    parser = build_parser()
    subcommands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    solve_help = subcommands["solve"].format_help()
    assert "--width WIDTH         parallel attempts per batch (default: 64)" in solve_help
    assert "(default: None)" not in solve_help and "(default: False)" not in solve_help
    assert "(default: 128)" in subcommands["evaluate"].format_help()
    assert "(default: 1.5)" in subcommands["demo"].format_help()


def test_tasks_lists_the_spec_table_without_importing_jax() -> None:
    from ceiling.cli.tasks import FAMILIES, spec_records
    from ceiling.tasks import registry

    assert spec_records() == registry.spec_records()
    assert FAMILIES == tuple(registry.FAMILIES)
    code = ("import sys; from ceiling.cli import main; code = main(['tasks', '--json']); "
            "assert 'jax' not in sys.modules, 'jax imported'; sys.exit(code)")
    finished = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=120)
    assert finished.returncode == 0, finished.stderr
    assert len(json.loads(finished.stdout)) == 24


def test_demo_shows_its_zero_shot_phase_as_lines_in_a_log(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from ceiling.policies import evaluation, shipped

    every = shipped.shipped_checkpoints()
    two = {key: path for key, path in every.items()
           if key[0] == TASK and key[1] in ("ippo", "mappo")}
    monkeypatch.setattr(shipped, "shipped_checkpoints", lambda: two)
    zero_shot = {"mean_return": 1.0, "ci95": [0.5, 1.5], "win_rate": None}
    monkeypatch.setattr(evaluation, "evaluate_checkpoint", lambda *a, **k: zero_shot)
    assert main(["demo", "--instances", "2", "--search-instances", "0"]) == 0
    err = capsys.readouterr().err  # pytest's capture is not a terminal
    steps = [line for line in err.splitlines() if "zero-shot on 2 test instances" in line]
    # a start, a line per evaluation (greedy and stochastic per checkpoint, the random policy
    # once per task), the end
    assert len(steps) == 2 * len(two) + 1 + 2
    assert f"5/5: {TASK} " in err
    assert sum("random policy" in line for line in steps) == 1


def test_the_compile_cache_folder_can_be_moved_or_turned_off(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from ceiling.cli.common import default_compile_cache

    monkeypatch.setenv("CEILING_COMPILE_CACHE", "off")
    assert default_compile_cache() is None
    monkeypatch.setenv("CEILING_COMPILE_CACHE", str(tmp_path / "cache"))
    assert default_compile_cache() == tmp_path / "cache"
    monkeypatch.delenv("CEILING_COMPILE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_compile_cache() == tmp_path / "xdg" / "ceiling" / "jax"


def test_an_unknown_task_is_named_before_the_checkpoint_is_read(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["solve", "--checkpoint", "/nowhere", "--task", "rware:tiny",
                 "--strategy", "greedy"]) == 2
    assert "unknown task 'rware:tiny'; valid tasks: rware:tiny-2ag" in capsys.readouterr().err



def test_demo_and_train_refuse_an_unwritable_output_before_any_work(
        blocker: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from ceiling.policies import evaluation

    evaluated: list[str] = []
    monkeypatch.setattr(evaluation, "evaluate_checkpoint",
                        lambda *args, **kwargs: evaluated.append("ran"))
    assert main(["demo", "--plot", str(blocker / "anytime.png")]) == 2
    assert f"cannot write --plot {blocker / 'anytime.png'}: {blocker} is a file" in \
        capsys.readouterr().err
    assert evaluated == []
    assert main(["train", "--task", TASK, "--algo", "ippo", "--steps", "1M", "--quiet",
                 "--out", str(blocker / "run")]) == 2
    assert f"cannot write --out {blocker / 'run'}: {blocker} is a file" in \
        capsys.readouterr().err
