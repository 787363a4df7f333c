from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import ceiling.reuse.library as library_module
from ceiling.cli import main
from ceiling.errors import CeilingError
from ceiling.reuse.library import build_library, load_library

from .conftest import TINY


@pytest.mark.slow
def test_library_stores_every_policy_with_its_record(tiny_library_path: Path) -> None:
    library = load_library(tiny_library_path, grid=8)
    assert len(library.policies) == 1 * 4 * 2 * 2  # layouts x objectives x seeds x regimes
    assert {p.gamma for p in library.policies} == {0.0, 0.99}
    for record in library.policies:
        arrays = library.arrays(record.id)
        states = library.layout(0).layout.num_states
        assert arrays.q.shape == (states, 4) and arrays.visits.shape == (states, 4)
        assert arrays.psi.shape == (states, 4, 4)
        assert (arrays.visits > 0).sum() == record.support_size > 0
        assert arrays.trajectory.shape[1] == 2 and record.train_steps > 0
        assert len(record.embedding) == 4 and record.train_seconds > 0
    names = {p.name for p in tiny_library_path.rglob("*") if p.is_file()}
    assert not any(name.endswith((".pkl", ".pickle")) for name in names)


def test_existing_library_is_not_overwritten_without_force(tiny_library_path: Path) -> None:
    before = (tiny_library_path / "manifest.json").read_bytes()
    with pytest.raises(CeilingError, match="already exists; pass --force"):
        build_library(tiny_library_path, grid=8, num_layouts=1, num_seeds=1, config=TINY)
    assert (tiny_library_path / "manifest.json").read_bytes() == before


def test_failed_build_leaves_the_previous_library_intact(
        tiny_library_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "library"
    shutil.copytree(tiny_library_path, path)
    before = {p.relative_to(path): p.read_bytes() for p in path.rglob("*") if p.is_file()}

    def broken_train(*args: object, **kwargs: object) -> None:
        raise RuntimeError("training crashed")

    monkeypatch.setattr(library_module, "train", broken_train)
    with pytest.raises(RuntimeError, match="training crashed"):
        build_library(path, grid=8, num_layouts=1, num_seeds=1, force=True, config=TINY)
    after = {p.relative_to(path): p.read_bytes() for p in path.rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["library"]  # no staging left
    load_library(path)


@pytest.mark.slow
def test_force_replaces_the_library(tiny_library_path: Path, tmp_path: Path) -> None:
    path = tmp_path / "library"
    shutil.copytree(tiny_library_path, path)
    build_library(path, grid=8, num_layouts=1, num_seeds=1, force=True, config=TINY)
    assert len(load_library(path).policies) == 8
    assert sorted(p.name for p in tmp_path.iterdir()) == ["library"]


@pytest.mark.slow
def test_build_is_deterministic_by_seed(tiny_library_path: Path, tmp_path: Path) -> None:
    path = tmp_path / "again"
    build_library(path, grid=8, num_layouts=1, num_seeds=2, config=TINY)
    first, second = load_library(tiny_library_path), load_library(path)
    for a, b in zip(first.policies, second.policies, strict=True):
        assert (a.objective, a.gamma, a.seed) == (b.objective, b.gamma, b.seed)
        np.testing.assert_array_equal(first.arrays(a.id).q, second.arrays(b.id).q)
        np.testing.assert_array_equal(first.arrays(a.id).visits, second.arrays(b.id).visits)
    np.testing.assert_array_equal(first.layout(0).layout.cells, second.layout(0).layout.cells)


def test_corrupted_file_is_a_clear_error(tiny_library_path: Path, tmp_path: Path) -> None:
    path = tmp_path / "library"
    shutil.copytree(tiny_library_path, path)
    victim = path / "policies" / "policy_0003.npz"
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    with pytest.raises(CeilingError, match="policy_0003.npz is corrupted"):
        load_library(path)


def test_unreadable_npz_is_a_clear_error(tiny_library_path: Path, tmp_path: Path) -> None:
    path = tmp_path / "library"
    shutil.copytree(tiny_library_path, path)
    victim = path / "policies" / "policy_0002.npz"
    victim.write_bytes(b"not an npz file")
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["policies"][2]["sha256"] = library_module._sha256(victim)
    (path / "manifest.json").write_text(json.dumps(manifest))
    library = load_library(path)
    with pytest.raises(CeilingError, match="policy_0002.npz is unreadable"):
        library.arrays(2)


def test_wrong_grid_and_missing_library(tiny_library_path: Path, tmp_path: Path) -> None:
    with pytest.raises(CeilingError, match="built on 8x8 grids, not 16x16"):
        load_library(tiny_library_path, grid=16)
    with pytest.raises(CeilingError, match="not a policy library"):
        load_library(tmp_path)


def test_cli_query_and_errors(tiny_library_path: Path, capsys: pytest.CaptureFixture[str],
                              tmp_path: Path) -> None:
    library = str(tiny_library_path)
    assert main(["reuse", "query", "--library", library, "--objective", "path+gold",
                 "--method", "plan", "--selection", "targeted", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert set(payload["candidates"]) == {"path", "gold"}
    assert payload["selection"] == "targeted" and "strategy" not in payload
    assert 0.0 <= payload["coverage"]["pairs"] <= 1.0 and payload["candidates_evaluated"] >= 2
    cases = [
        (["--objective", "path+silver"], "unknown component 'silver'"),
        (["--objective", ""], "empty objective"),
        (["--objective", "1,0,1"], "3 weights but there are 4 components"),
        (["--objective", "path", "--grid", "16"], "built on 8x8 grids"),
        (["--objective", "path", "--method", "mean"], "valid: sum, gpi, plan"),
        (["--objective", "path", "--gamma", "0.5"], "no policies with gamma 0.5"),
        (["--objective", "path", "--selection", "all"], "unknown candidate selection 'all'"),
        # the flag's old name says what it became rather than failing as unknown
        (["--objective", "path", "--strategy", "targeted"], "pass `--selection targeted`"),
    ]
    for extra, message in cases:
        assert main(["reuse", "query", "--library", library, *extra]) == 2
        assert "ceiling: error: " in (err := capsys.readouterr().err) and message in err
    assert main(["reuse", "build", "--grid", "12", "--out", str(tmp_path / "x")]) == 2
    assert "valid: 8, 16, 32" in capsys.readouterr().err
    assert main(["reuse", "build", "--grid", "8", "--out", library]) == 2
    assert "--force" in capsys.readouterr().err
