"""What a long-running command shows while it works, on stderr: a live line in a terminal,
plain timestamped lines when stderr is a file or a pipe (CI logs, `2>&1 | tee`).

A live display (rich) renders nothing useful into a log: the run looks hung until it ends. So
when stderr is not a terminal, `Progress` prints a line when the phase starts, one whenever
`update` brings news but at most one every `interval` seconds (steps of a short counted phase
are all printed), a line every `interval` seconds while nothing else is said (a compile or a
batch can take minutes), and one when it ends, each prefixed with the seconds since it
started.
Results go to stdout as before; only progress goes here. Shared by `ceiling.cli` and the
`ceiling bench` commands, hence at the base of the package.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, TextIO

# A counted phase with at most this many steps prints every step when piped.
EVERY_STEP_UP_TO = 50


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


class Progress:
    """Progress of one phase: `with Progress("searching", total=12) as p: p.update(...)`.

    `total` makes it a counted phase (a bar and N/M in a terminal); `update(info, advance)`
    sets the text after the description and moves the count on. `live=None` picks the form
    from whether stderr is a terminal; `enabled=False` shows nothing.
    """

    def __init__(self, description: str, total: int | None = None, *, info: str = "",
                 interval: float = 10.0, live: bool | None = None, enabled: bool = True,
                 stream: TextIO | None = None) -> None:
        self.description, self.total, self.interval = description, total, interval
        self.enabled = enabled
        self.stream = stream
        self.live = stderr_is_terminal() if live is None else live
        self.completed = 0
        self.info = info
        self._start = self._last_line = 0.0
        self._rich: Any = None
        self._task: Any = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    # -- plain lines -----------------------------------------------------------------------
    def _line(self, text: str) -> None:
        with self._lock:
            stream = self.stream or sys.stderr
            print(f"[{time.perf_counter() - self._start:7.1f} s] {text}", file=stream,
                  flush=True)
            self._last_line = time.perf_counter()

    def _beat(self) -> None:
        """While the phase runs: a line whenever `interval` seconds passed without one."""
        while not self._stop.wait(self.interval / 4):
            if time.perf_counter() - self._last_line >= self.interval:
                count = f" {self.completed}/{self.total}" if self.total is not None else ""
                last = f"; last: {self.info}" if self.info and self.completed else (
                    f": {self.info}" if self.info else "")
                self._line(f"{self.description}{count} (still working{last})")

    def _plain_text(self) -> str:
        count = f" {self.completed}/{self.total}" if self.total is not None else ""
        return f"{self.description}{count}" + (f": {self.info}" if self.info else "")

    # -- the phase -------------------------------------------------------------------------
    def __enter__(self) -> Progress:
        self._start = time.perf_counter()
        if not self.enabled:
            return self
        if self.live:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )
            from rich.progress import Progress as RichProgress

            # The elapsed time first: a narrow terminal cuts the end of the line.
            columns: list[Any] = [SpinnerColumn(), TimeElapsedColumn(),
                                  TextColumn("{task.description}")]
            if self.total is not None:
                columns += [BarColumn(), MofNCompleteColumn()]
            columns.append(TextColumn("{task.fields[info]}"))
            console = Console(file=self.stream or sys.stderr, highlight=False)
            self._rich = RichProgress(*columns, console=console, transient=False)
            self._rich.__enter__()
            self._task = self._rich.add_task(self.description, total=self.total,
                                             info=self.info)
        else:
            self._line(self._plain_text() + " ...")
            self._heartbeat = threading.Thread(target=self._beat, daemon=True)
            self._heartbeat.start()
        return self

    def update(self, info: str | None = None, advance: int = 0,
               description: str | None = None, completed: int | None = None,
               total: int | None = None, announce: bool = False) -> None:
        """New text after the description (`info`), `advance` more steps done (or
        `completed` in all, out of a new `total`); `announce` prints a plain line now
        whatever the interval."""
        if info is not None:
            self.info = info
        if description is not None:
            self.description = description
        if total is not None:
            self.total = total
        self.completed = self.completed + advance if completed is None else completed
        if not self.enabled:
            return
        if self._rich is not None:
            self._rich.update(self._task, completed=self.completed, total=self.total,
                              info=self.info, description=self.description)
            return
        every_step = bool(advance) and self.total is not None and self.total <= EVERY_STEP_UP_TO
        if announce or every_step or time.perf_counter() - self._last_line >= self.interval:
            self._line(self._plain_text())

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        if not self.enabled:
            return
        if self._heartbeat is not None:
            self._stop.set()
            self._heartbeat.join()
        if self._rich is not None:
            self._rich.__exit__(kind, error, trace)
        elif kind is None:
            self._line(self._plain_text() + " - done")
