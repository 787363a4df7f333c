"""`ceiling converged`: the convergence check on a run's metrics, from the command line."""

from __future__ import annotations

import json

from ceiling.cli import main


def write_run(path, rising: bool) -> None:
    path.mkdir()
    lines = []
    for i in range(1, 101):
        step = i * 100_000
        level = 1.0 + (0.5 * i / 100 if rising else 0.001 * (i % 3))
        record = {"step": step, "train_return": level}
        if i % 4 == 0:
            record["eval_return"] = level
        lines.append(json.dumps(record))
    (path / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    (path / "convergence.json").write_text(json.dumps({"train_seconds": 12.5, "end": {}}))


def test_converged_reports_each_run_and_fails_a_rising_one(tmp_path, capsys) -> None:
    write_run(tmp_path / "flat", rising=False)
    write_run(tmp_path / "rising", rising=True)
    assert main(["converged", str(tmp_path / "flat")]) == 0
    assert "flat: converged (flat over the last third" in capsys.readouterr().out
    assert main(["converged", str(tmp_path / "flat"), str(tmp_path / "rising"), "--write"]) == 1
    out = capsys.readouterr().out
    assert "rising: NOT converged (greedy test return still rising" in out
    report = json.loads((tmp_path / "rising" / "convergence.json").read_text())
    assert report["converged"] is False and report["train_seconds"] == 12.5
    assert "end" not in report  # the replaced check's fields are dropped
    assert main(["converged", str(tmp_path)]) == 2
    assert "holds no metrics.jsonl" in capsys.readouterr().err
