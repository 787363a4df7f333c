"""`ceiling tune`: candidates searched pair by pair on train instances, the same searches a
plain `solve` from the same keys makes, resumed from its file, refused on bad input before
anything is written, and the best recorded as search defaults only as `ceiling defaults` would."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import jax
import numpy as np
import pytest

from ceiling.cli import main
from ceiling.errors import CeilingError
from ceiling.policies.checkpoint import MANIFEST_FILE, load_checkpoint
from ceiling.policies.shipped import shipped_checkpoint
from ceiling.search import Budget, make_strategy, search_keys, solve
from ceiling.search.tune import Candidate, candidates, summarise, tune
from ceiling.tasks import instances, make

TASK = "connector:con-5x5x3a"
SMALL = ["--instances", "2", "--rollouts", "32", "--width", "16"]


@pytest.fixture
def mappo_copy(tmp_path: Path) -> Path:
    target = tmp_path / "mappo"
    shutil.copytree(shipped_checkpoint(TASK, "mappo"), target)
    return target


def _tune(*argv: str | Path) -> int:
    return main(["tune", *map(str, argv)])


def test_candidates_start_with_the_reference_and_are_checked() -> None:
    found = candidates("sampling", {}, {"temperature": [0.5, 2.0, 0.5]})
    assert found == [{}, {"temperature": 0.5}, {"temperature": 2.0}]
    # The default written out searches as {} does: one candidate, not two.
    assert candidates("sampling", {}, {"temperature": [1.0, 2.0]}) == [{}, {"temperature": 2.0}]
    assert candidates("compass", {}, {"temperature": [0, 0.1], "num_distributions": [1, 3]}) == [
        {}, {"temperature": 0, "num_distributions": 1},
        {"temperature": 0.1, "num_distributions": 1}, {"temperature": 0.1, "num_distributions": 3}]
    product = candidates("sgbs", {"beam_width": 2},
                         {"beam_width": [2, 4], "expansion": [2, 3]})
    assert product[0] == {"beam_width": 2}
    assert product[1:] == [{"beam_width": b, "expansion": e} for b in (2, 4) for e in (2, 3)]
    with pytest.raises(CeilingError, match="valid options: temperature"):
        candidates("sampling", {}, {"tempo": [1]})
    with pytest.raises(CeilingError, match="temperature must be a finite number > 0"):
        candidates("sampling", {}, {"temperature": [0.5, -1]})
    with pytest.raises(CeilingError, match="only repeats the reference"):
        candidates("sampling", {"temperature": 2}, {"temperature": [2]})
    with pytest.raises(CeilingError, match="at least one option"):
        candidates("sampling", {}, {})


def test_summary_pairs_candidates_on_their_common_instances() -> None:
    found = [Candidate({}, {0: 1.0, 1: 3.0, 2: 5.0}),
             Candidate({"temperature": 2}, {0: 2.0, 1: 3.0}),
             Candidate({"temperature": 0.5}, {0: 0.0, 1: 2.0})]
    rows = summarise(found)  # instance 2 is left out: not every candidate searched it
    assert [row.options for row in rows] == [{"temperature": 2}, {}, {"temperature": 0.5}]
    assert rows[0].mean[0] == pytest.approx(2.5)
    assert rows[0].versus_reference[0] == pytest.approx(0.5)
    assert (rows[0].better, rows[0].worse) == (1, 0)
    assert rows[1].versus_reference == (0.0, 0.0, 0.0)
    assert rows[2].versus_reference[0] == pytest.approx(-1.0)
    assert (rows[2].better, rows[2].worse) == (0, 2)
    with pytest.raises(CeilingError, match="no instance has been searched by every"):
        summarise([Candidate({}, {0: 1.0}), Candidate({"temperature": 2}, {1: 1.0})])


def test_tune_makes_the_searches_solve_makes_and_skips_kept_ones() -> None:
    checkpoint = load_checkpoint(shipped_checkpoint(TASK, "mappo"))
    task = make(TASK)
    keys = instances(TASK, "train", 2, key=jax.random.PRNGKey(1))
    seeds = search_keys(0, TASK, [0, 1])
    budget = Budget(rollouts=32)
    options = [{}, {"temperature": 3.0}]
    heard: list[tuple[str, int]] = []
    found = tune("sampling", task, checkpoint.policy, checkpoint.params, options, keys, seeds,
                 budget, 16, done={json.dumps({"temperature": 3.0}): {0: -99.0}},
                 on_result=lambda o, i, s, t: heard.append((json.dumps(o), i)))
    assert heard == [("{}", 0), ("{}", 1), ('{"temperature": 3.0}', 1)]
    assert found[1].returns[0] == -99.0  # kept, not searched again
    for index in (0, 1):
        strategy = make_strategy("sampling", task, checkpoint.policy, 16)
        alone = solve(strategy, checkpoint.params, keys[index], budget,
                      jax.numpy.asarray(seeds[index]))
        assert found[0].returns[index] == alone.solution.verified
    hot = make_strategy("sampling", task, checkpoint.policy, 16, temperature=3.0)
    alone = solve(hot, checkpoint.params, keys[1], budget, jax.numpy.asarray(seeds[1]))
    assert found[1].returns[1] == alone.solution.verified
    with pytest.raises(ValueError, match="2 instances but 1 search keys"):
        tune("sampling", task, checkpoint.policy, checkpoint.params, options, keys,
             seeds[:1], budget, 16)


def test_tune_command_writes_resumes_and_records(
        mappo_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "tune.json"
    assert _tune("--checkpoint", mappo_copy, "--strategy", "sampling",
                 "--grid", "temperature=0.5,3", "--out", out, *SMALL) == 0
    printed = capsys.readouterr().out
    assert "2 train instances" in printed and "today's" in printed and "best)" in printed
    run = json.loads(out.read_text())
    assert run["settings"]["split"] == "train" and run["reference"] == {}
    assert sorted(run["results"]) == ['{"temperature": 0.5}', '{"temperature": 3}', "{}"]
    assert all(sorted(entry["returns"]) == ["0", "1"] for entry in run["results"].values())
    means = {json.dumps(row["options"], sort_keys=True): row["mean"][0]
             for row in run["summary"]}
    for key, entry in run["results"].items():
        assert means[key] == pytest.approx(np.mean(list(entry["returns"].values())))

    # The same command again searches nothing; one more grid value searches only it.
    kept = out.read_text()
    assert _tune("--checkpoint", mappo_copy, "--strategy", "sampling",
                 "--grid", "temperature=0.5,3", "--out", out, *SMALL) == 0
    assert "resuming: 6 of 6 searches kept" in capsys.readouterr().err
    assert json.loads(out.read_text())["results"] == json.loads(kept)["results"]
    assert _tune("--checkpoint", mappo_copy, "--strategy", "sampling",
                 "--grid", "temperature=0.5,3,1.5", "--out", out, *SMALL) == 0
    err = capsys.readouterr().err
    assert "resuming: 6 of 8 searches kept" in err
    grown = json.loads(out.read_text())["results"]
    assert {k: v for k, v in grown.items() if k in json.loads(kept)["results"]} \
        == json.loads(kept)["results"]

    # Other settings are refused without --force, and nothing is written.
    grown_text = out.read_text()
    assert _tune("--checkpoint", mappo_copy, "--strategy", "sampling", "--grid",
                 "temperature=0.5", "--out", out, "--instances", "3", "--rollouts", "32",
                 "--width", "16") == 2
    assert "instances: 2 there, 3 here" in capsys.readouterr().err
    assert out.read_text() == grown_text

    # --record writes the best as `ceiling defaults` would, replacing only with --force.
    best = json.loads(out.read_text())["summary"][0]["options"]
    assert _tune("--checkpoint", mappo_copy, "--strategy", "sampling", "--grid",
                 "temperature=0.5,3,1.5", "--out", out, "--record", *SMALL) == 0
    assert load_checkpoint(mappo_copy).search_defaults("sampling") == best
    # Today's options changed, the searches did not: the same command resumes, searching nothing.
    assert _tune("--checkpoint", mappo_copy, "--strategy", "sampling", "--grid",
                 "temperature=0.5,3,1.5", "--out", out, *SMALL) == 0
    assert re.search(r"resuming: (\d+) of \1 searches kept", capsys.readouterr().err)
    assert main(["defaults", str(mappo_copy), "--strategy", "sampling", "--option",
                 "temperature=7", "--force"]) == 0
    manifest = (mappo_copy / MANIFEST_FILE).read_text()
    other = tmp_path / "other.json"
    assert _tune("--checkpoint", mappo_copy, "--strategy", "sampling", "--option",
                 "temperature=0.5", "--grid", "temperature=3", "--out", other, "--record",
                 *SMALL) == 2
    assert 'already records sampling defaults {"temperature": 7}' in capsys.readouterr().err
    assert (mappo_copy / MANIFEST_FILE).read_text() == manifest
    assert json.loads(other.read_text())["summary"]  # the measurement itself is kept
    assert _tune("--checkpoint", mappo_copy, "--strategy", "sampling", "--option",
                 "temperature=0.5", "--grid", "temperature=3", "--out", other, "--record",
                 "--force", *SMALL) == 0
    assert "resuming: 4 of 4 searches kept" in capsys.readouterr().err
    assert load_checkpoint(mappo_copy).search_defaults("sampling") \
        == json.loads(other.read_text())["summary"][0]["options"]


@pytest.mark.parametrize(("argv", "message"), [
    (["--strategy", "greedy", "--grid", "temperature=1"], "nothing to tune"),
    (["--strategy", "sampling", "--grid", "tempo=1,2"], "valid options: temperature"),
    (["--strategy", "sampling", "--grid", "temperature=1,,2"], "comma-separated values"),
    (["--strategy", "sampling", "--grid", "temperature"], "expects NAME=V1,V2"),
    (["--strategy", "sampling", "--grid", "temperature=0.5", "--rollouts", "20"],
     "cannot be met exactly"),
    (["--strategy", "sampling", "--grid", "temperature=0.5", "--instances", "0"],
     "at least 1"),
    (["--strategy", "sampling", "--grid", "temperature=0.5", "--seed", "-1"],
     "seed must be an integer"),
])
def test_bad_input_is_refused_before_anything_is_written(
        argv: list[str], message: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "tune.json"
    base = {"--instances": "1", "--rollouts": "32", "--width": "16"}
    for flag in argv[::2]:  # the case's own flags replace the small defaults
        base.pop(flag, None)
    extra = [part for flag, value in base.items() for part in (flag, value)]
    assert _tune("--checkpoint", "shipped:mappo", "--task", TASK, *argv, *extra,
                 "--out", out) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_a_file_that_is_not_a_tuning_run_is_not_overwritten(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "notes.json"
    out.write_text('{"mine": 1}')
    assert _tune("--checkpoint", "shipped:mappo", "--task", TASK, "--strategy", "sampling",
                 "--grid", "temperature=0.5", "--out", out, *SMALL) == 2
    assert "is not a tuning run; pass --force" in capsys.readouterr().err
    assert out.read_text() == '{"mine": 1}'


def test_an_unwritable_out_is_refused_before_any_search(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert _tune("--checkpoint", "shipped:mappo", "--task", TASK, "--strategy", "sampling",
                 "--grid", "temperature=0.5", "--out", blocker / "tune.json", *SMALL) == 2
    err = capsys.readouterr().err
    assert "a-file" in err and "tuning sampling" not in err
