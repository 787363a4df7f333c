"""Output paths: checked before the work starts, written safely after it.

A command that searches for minutes and then cannot write its `--out` must not lose the
result, and a path that can never be written should be refused before the minutes are spent.
`check_writable` finds, up front, every reason a later write would fail that can be known then
(an existing path without --force, a directory where a file goes, a path below a regular
file, a folder that refuses new files). `write_text_safely` writes through a temporary name
and a rename, so a reader never sees half a file, and if the write still fails it leaves
nothing half-written and saves the text where it can be found, saying where. Shared by
`ceiling.cli` and the `ceiling bench`/`report` commands, hence at the base of the package.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from ceiling.errors import CeilingError


def refuse_existing(path: str | Path, force: bool) -> None:
    """Never overwrite a user's file without --force."""
    if Path(path).exists() and not force:
        raise CeilingError(f"{path} already exists; pass --force to overwrite it")


def _nearest_existing(path: Path) -> Path:
    """`path` itself or its closest ancestor that exists."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(path.anchor or ".")


def check_writable(path: str | Path, force: bool, flag: str = "--out",
                   directory: bool = False, example: str = "result.json") -> Path:
    """Fail now, before any work, if `path` could not be written afterwards.

    Refused: an existing path without `force`; a directory where a file goes (or a file where
    a directory goes, with `directory`); a path below a regular file; a place that does not
    accept new files (read-only, permission denied) - found by creating and removing a
    temporary file in the nearest existing folder, which also holds for root and read-only
    mounts where permission bits say nothing. Missing folders are not created here.
    """
    target = Path(path)
    folders = [_nearest_existing(target.parent)]  # where the new file or folder goes
    if target.exists():
        if target.is_dir() and not directory:
            raise CeilingError(f"{flag} {path} is a directory; give a file path, e.g. "
                               f"{target / example}")
        if directory and not target.is_dir():
            raise CeilingError(f"{flag} {path} is a file; give a directory")
        refuse_existing(target, force)
        if directory:
            folders.append(target)  # its files are replaced in place
    for folder in folders:
        if not folder.is_dir():
            raise CeilingError(f"cannot write {flag} {path}: {folder} is a file, not a "
                               "directory")
        try:
            handle, probe = tempfile.mkstemp(prefix=".ceiling-write-check-", dir=folder)
        except OSError as err:
            raise CeilingError(f"cannot write {flag} {path}: {folder} does not accept new "
                               f"files ({err.strerror or err}); choose another path") from None
        os.close(handle)
        os.unlink(probe)
    return target


def _save_elsewhere(text: str, name: str) -> str:
    """Save `text` where it can be found after the intended write failed: the working
    directory, else the temporary folder, else stdout. Returns where it went, in words."""
    stem, suffix = Path(name).stem or "result", Path(name).suffix or ".json"
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    for folder in (Path.cwd(), Path(tempfile.gettempdir())):
        try:
            handle, saved = tempfile.mkstemp(prefix=f"{stem}-{stamp}-", suffix=suffix,
                                             dir=folder)
            with os.fdopen(handle, "w") as file:
                file.write(text)
            return f"was saved to {saved} instead"
        except OSError:
            continue
    sys.stdout.write(text)
    sys.stdout.flush()
    return "is printed above instead"


def write_text_safely(path: str | Path, text: str, force: bool, what: str = "the result") -> None:
    """Write `text` to `path` through a temporary name and a rename. If that fails (the disk
    filled, the folder went away), nothing half-written is left and `text` is saved elsewhere
    (`_save_elsewhere`); the `CeilingError` says why and where it went."""
    target = Path(path)
    refuse_existing(target, force)
    staging = target.with_name(f".{target.name}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging.write_text(text)
        os.replace(staging, target)
    except OSError as err:
        with contextlib.suppress(OSError):
            staging.unlink(missing_ok=True)
        where = _save_elsewhere(text, target.name)
        raise CeilingError(f"could not write {what} to {path} ({err.strerror or err}); it "
                           f"{where}") from None


def write_json(path: str | Path, data: dict[str, Any], force: bool,
               what: str = "the result") -> None:
    """`write_text_safely` of `data` as indented JSON."""
    write_text_safely(path, json.dumps(data, indent=2) + "\n", force, what)
