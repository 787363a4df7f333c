"""A checkpoint's search defaults: recorded with `ceiling defaults`, never overwritten without
--force, applied by the suite's cells and by `with_checkpoint_defaults` unless an option is set
explicitly, and bad ones refused naming the checkpoint."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ceiling.bench.suite import parse_suite
from ceiling.cli import main
from ceiling.errors import CeilingError
from ceiling.policies.checkpoint import MANIFEST_FILE, load_checkpoint
from ceiling.policies.shipped import shipped_checkpoint
from ceiling.search import with_checkpoint_defaults

TASK = "connector:con-5x5x3a"


@pytest.fixture
def compass_copy(tmp_path: Path) -> Path:
    target = tmp_path / "compass"
    shutil.copytree(shipped_checkpoint(TASK, "compass"), target)
    return target


def _ceiling(*argv: str) -> int:
    return main(["defaults", *map(str, argv)])


def test_defaults_are_recorded_shown_and_only_replaced_with_force(
        compass_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    params = (compass_copy / "params.msgpack").read_bytes()
    assert _ceiling(compass_copy) == 0
    assert "records no search defaults" in capsys.readouterr().out
    assert _ceiling(compass_copy, "--strategy", "compass", "--option", "temperature=1") == 0
    assert _ceiling(compass_copy) == 0
    assert 'compass: {"temperature": 1}' in capsys.readouterr().out
    checkpoint = load_checkpoint(compass_copy, task=TASK)  # the hash still verifies
    assert checkpoint.search_defaults("compass") == {"temperature": 1}
    assert checkpoint.search_defaults("latent-sampling") == {}
    assert (compass_copy / "params.msgpack").read_bytes() == params

    manifest = (compass_copy / MANIFEST_FILE).read_text()
    for argv, message in [
        (["--option", "temperature=2"], "already records compass defaults"),
        (["--clear"], "pass --force to remove them"),
        (["--option", "temperature=-1"], "temperature must be a finite number >= 0"),
        (["--option", "tempo=1"],
         "valid options: num_distributions, sigma_init, temperature, warm_start"),
        (["--option", "temperature=1", "--clear"], "not both or neither"),
    ]:
        assert _ceiling(compass_copy, "--strategy", "compass", *argv) == 2
        assert message in capsys.readouterr().err
        assert (compass_copy / MANIFEST_FILE).read_text() == manifest  # nothing written
    assert _ceiling(compass_copy, "--strategy", "compas", "--option", "temperature=1") == 2
    assert "valid strategies: greedy" in capsys.readouterr().err

    assert _ceiling(compass_copy, "--strategy", "compass", "--option", "temperature=2",
                    "--force") == 0
    assert load_checkpoint(compass_copy).search_defaults("compass") == {"temperature": 2}
    assert _ceiling(compass_copy, "--strategy", "compass", "--clear", "--force") == 0
    assert "search_defaults" not in json.loads((compass_copy / MANIFEST_FILE).read_text())


def test_explicit_options_win_over_the_checkpoints_defaults() -> None:
    defaults = {"temperature": 1, "sigma_init": 0.5}
    assert with_checkpoint_defaults("compass", defaults, {"temperature": 0}, "ck") == {
        "temperature": 0, "sigma_init": 0.5}
    with pytest.raises(CeilingError, match="checkpoint ck records search defaults for "
                                           "compass that do not fit it .*'beam'"):
        with_checkpoint_defaults("compass", {"beam": 3}, {}, "ck")


SUITE = """\
name: defaults
instances: 2
seeds: [0]
widths: [16]
budgets:
  - rollouts: 64
tasks:
  connector:con-5x5x3a:
    checkpoints: [{ckpt}]
strategies:
  - compass
  - {{name: compass, options: {{temperature: 0}}}}
  - latent-sampling
"""


def test_suite_cells_search_with_the_checkpoints_defaults(compass_copy: Path) -> None:
    text = SUITE.format(ckpt=compass_copy)
    before = {c.key for c in parse_suite(text, "defaults.yaml").cells()}
    assert _ceiling(compass_copy, "--strategy", "compass", "--option", "temperature=1") == 0
    cells = parse_suite(text, "defaults.yaml").cells()
    options = {(c.strategy, c.options) for c in cells}
    # `compass` takes the recorded temperature; the suite's explicit 0 wins; latent sampling
    # has no defaults recorded. Cells whose options changed are new cells (new keys).
    assert options == {("compass", '{"temperature": 1}'), ("compass", '{"temperature": 0}'),
                       ("latent-sampling", "{}")}
    after = {c.key: c for c in cells}
    assert {after[k].options for k in set(after) - before} == {'{"temperature": 1}'}
    # What a stored row records as the options a plain entry gets (the claims' primary one).
    assert {c.strategy: c.checkpoint.defaults_for(c.strategy) for c in cells} == {
        "compass": '{"temperature": 1}', "latent-sampling": "{}"}
    assert len(cells) == len(after) == 3 * 2  # three option sets x two instances

    # Recorded defaults equal to an explicit entry's options make the plain entry's cells
    # that entry's: they are listed once, not searched twice.
    assert _ceiling(compass_copy, "--strategy", "compass", "--option", "temperature=0",
                    "--force") == 0
    cells = parse_suite(text, "defaults.yaml").cells()
    assert sorted((c.strategy, c.options, c.instance) for c in cells) == [
        ("compass", '{"temperature": 0}', 0), ("compass", '{"temperature": 0}', 1),
        ("latent-sampling", "{}", 0), ("latent-sampling", "{}", 1)]

    manifest = json.loads((compass_copy / MANIFEST_FILE).read_text())
    manifest["search_defaults"]["sgbs"] = {"beam": 3}
    (compass_copy / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(CeilingError, match=r"defaults.yaml:9: checkpoint .* records search "
                                           r"defaults for sgbs that do not fit it"):
        parse_suite(text, "defaults.yaml")
