"""Interrupted training resumes from `resume/` and ends exactly where an uninterrupted run does."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from ceiling.cli import main
from ceiling.errors import CeilingError
from ceiling.policies.checkpoint import load_checkpoint
from ceiling.training import loop
from ceiling.training.config import PPOConfig
from ceiling.training.run import train

TASK = "connector:con-5x5x3a"
# 1024 steps per update, 2 updates per chunk (eval_every), 4 chunks.
CONFIG = PPOConfig(total_steps=8192, num_envs=16, rollout_length=64, num_minibatches=2,
                   hidden_sizes=(16, 16), eval_every=2048, eval_instances=2)


class Interrupted(Exception):
    pass


def stop_after(step: int):
    def on_progress(record: dict) -> None:
        if record["step"] >= step:
            raise Interrupted

    return on_progress


def params_of(path):
    return [np.asarray(x) for x in
            __import__("jax").tree_util.tree_leaves(load_checkpoint(path).params)]


@pytest.mark.slow
def test_interrupted_run_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(loop, "SAVE_EVERY_SECONDS", 0.0)
    whole = train(TASK, CONFIG, tmp_path / "whole")
    assert not (tmp_path / "whole" / loop.RESUME_DIR).exists()

    out = tmp_path / "cut"
    with pytest.raises(Interrupted):
        train(TASK, CONFIG, out, on_progress=stop_after(4096))
    assert (out / loop.RESUME_DIR / "counters.json").exists()
    assert not (out / "last").exists()
    resumed = train(TASK, CONFIG, out, resume=True)

    for a, b in zip(params_of(tmp_path / "whole" / "last"), params_of(out / "last"), strict=True):
        np.testing.assert_array_equal(a, b)
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    expected = [json.loads(x) for x in (tmp_path / "whole" / "metrics.jsonl").read_text()
                .splitlines()]
    assert [r["step"] for r in lines] == [r["step"] for r in expected]
    assert [r.get("eval_return") for r in lines] == [r.get("eval_return") for r in expected]
    assert resumed["final_eval"] == whole["final_eval"]
    assert not (out / loop.RESUME_DIR).exists()
    with pytest.raises(CeilingError, match="already finished"):
        train(TASK, CONFIG, out, resume=True)


@pytest.mark.slow
def test_a_resumed_run_has_its_earlier_metrics_on_disk_before_its_first_chunk(
        tmp_path, monkeypatch) -> None:
    # A run killed hard (SIGKILL, a session's end) during its first chunk after a resume must
    # still hold every metrics line up to the resume point; they were once rewritten into a
    # write buffer only, so such a kill lost them. The first chunk sees the file on disk.
    import dataclasses

    from ceiling.training import run

    monkeypatch.setattr(loop, "SAVE_EVERY_SECONDS", 0.0)
    out = tmp_path / "cut"
    with pytest.raises(Interrupted):
        train(TASK, CONFIG, out, on_progress=stop_after(4096))
    before = (out / "metrics.jsonl").read_text()
    assert [json.loads(x)["step"] for x in before.splitlines()] == [0, 2048, 4096]
    seen = []

    def killed(runner, call):
        seen.append((out / "metrics.jsonl").read_text())
        raise Interrupted

    real = run.run_loop
    monkeypatch.setattr(run, "run_loop", lambda trainer_loop, *args: real(
        dataclasses.replace(trainer_loop, advance=killed), *args))
    with pytest.raises(Interrupted):
        train(TASK, CONFIG, out, resume=True)
    assert seen == [before]
    assert not list(out.glob("*.tmp"))


def test_resume_refuses_a_different_config_or_a_missing_run(tmp_path) -> None:
    with pytest.raises(CeilingError, match="no run was started there"):
        train(TASK, CONFIG, tmp_path / "nothing", resume=True)
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.yaml").write_text("task: connector:con-5x5x3a\nnum_envs: 8\n")
    with pytest.raises(CeilingError, match="num_envs"):
        train(TASK, CONFIG, out, resume=True)
    with pytest.raises(CeilingError, match="--resume continues a run and --force"):
        train(TASK, CONFIG, out, force=True, resume=True)


def test_a_run_started_before_a_field_existed_resumes_at_its_default(tmp_path) -> None:
    header = {"task": TASK, **PPOConfig(compass_temperature=1.0).to_dict()}
    older = {k: v for k, v in header.items() if k != "compass_temperature"}
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.yaml").write_text(yaml.safe_dump(older, sort_keys=False))
    loop.start_run_dir(out, header, force=False, resume=True)  # the field's default: the same
    with pytest.raises(CeilingError, match=r"compass_temperature \(run: None, now: 0.5\)"):
        loop.start_run_dir(out, {**header, "compass_temperature": 0.5}, False, True)
    # A field that the run's file records is compared as it is, default or not.
    (out / "config.yaml").write_text(yaml.safe_dump({**header, "compass_temperature": 0.5}))
    with pytest.raises(CeilingError, match="compass_temperature"):
        loop.start_run_dir(out, header, force=False, resume=True)


@pytest.mark.slow
def test_cli_resume_reads_the_run_config(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(loop, "SAVE_EVERY_SECONDS", 0.0)
    out = tmp_path / "run"
    config = CONFIG.to_dict()
    config.pop("algorithm")
    sets = [x for k, v in config.items() if k in ("total_steps", "num_envs", "rollout_length",
                                                   "num_minibatches", "eval_every",
                                                   "eval_instances")
            for x in ("--set", f"{k}={v}")]
    args = ["train", "--task", TASK, "--algo", "ippo", "--out", str(out), "--quiet",
            "--set", "hidden_sizes=16,16", *sets]
    # Interrupt by making the final save fail once: the run stops after its resume state.
    real = loop.save_checkpoint
    calls = {"last": 0}

    def failing(path, *a, **k):
        if path.name == "last" and calls["last"] == 0:
            calls["last"] += 1
            raise KeyboardInterrupt
        return real(path, *a, **k)

    monkeypatch.setattr(loop, "save_checkpoint", failing)
    assert main(args) == 130
    assert f"continue with: ceiling train --resume --out {out}" in capsys.readouterr().err
    assert main(args) == 2
    assert "--resume to continue it" in capsys.readouterr().err
    assert main(["train", "--resume", "--out", str(out), "--set", "seed=3"]) == 2
    assert "drop --set" in capsys.readouterr().err
    assert main(["train", "--resume", "--out", str(out), "--algo", "mappo"]) == 2
    assert "does not match" in capsys.readouterr().err
    assert main(["train", "--resume", "--out", str(out), "--quiet"]) == 0
    assert "resuming ippo on connector:con-5x5x3a" in capsys.readouterr().err
    assert (out / "last" / "manifest.json").exists()


def test_sigterm_stops_after_the_chunk_with_its_resume_state(tmp_path, monkeypatch) -> None:
    # SIGTERM mid-run (sent by the run's own progress callback after the first chunk) does not
    # kill the process: the loop saves its state at that chunk and stops with KeyboardInterrupt.
    import os
    import signal

    out = tmp_path / "cut"
    before = signal.getsignal(signal.SIGTERM)  # not always SIG_DFL: Ray, in an earlier test,
    # installs its own in this worker

    def terminate(record: dict) -> None:
        if record["step"] == 2048:
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(KeyboardInterrupt, match="SIGTERM at 2,048 steps"):
        train(TASK, CONFIG, out, on_progress=terminate)
    counters = json.loads((out / loop.RESUME_DIR / "counters.json").read_text())
    assert counters["steps"] == 2048
    assert [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()] \
        == [0, 2048]
    assert signal.getsignal(signal.SIGTERM) is before  # the loop's handler is gone
