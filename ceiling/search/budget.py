"""The search budget: wall-clock seconds and/or a number of rollouts, and the batch width.

Seconds are wall-clock, measured after `block_until_ready`, with compilation done before the
clock starts; a run may overrun by at most one batch. A rollout budget is exact: a search runs
exactly `rollouts / width` batches (so it must be a multiple of the width), which makes it
deterministic given the key.
"""

from __future__ import annotations

import dataclasses
import math

from ceiling.errors import CeilingError


@dataclasses.dataclass(frozen=True)
class Budget:
    seconds: float | None = None
    rollouts: int | None = None
    width: int = 64  # parallel attempts per batch

    def __post_init__(self) -> None:
        if self.seconds is None and self.rollouts is None:
            raise CeilingError("a budget needs at least one limit: seconds and/or rollouts")
        if isinstance(self.width, bool) or not isinstance(self.width, int) or self.width < 1:
            raise CeilingError(f"width (parallel attempts) must be an integer >= 1, got "
                               f"{self.width!r}")
        if self.seconds is not None and not (
            isinstance(self.seconds, int | float) and math.isfinite(self.seconds)
            and self.seconds > 0
        ):
            raise CeilingError(f"seconds must be a positive number, got {self.seconds!r}")
        if self.rollouts is not None:
            if isinstance(self.rollouts, bool) or not isinstance(self.rollouts, int) \
                    or self.rollouts < 1:
                raise CeilingError(f"rollouts must be an integer >= 1, got {self.rollouts!r}")
            if self.rollouts % self.width:
                nearest = self.width * max(1, self.rollouts // self.width)
                raise CeilingError(
                    f"rollouts ({self.rollouts}) must be a multiple of width ({self.width}) so "
                    f"that the budget is exact; e.g. {nearest}"
                )

    @property
    def max_batches(self) -> int | None:
        return None if self.rollouts is None else self.rollouts // self.width

    def to_dict(self) -> dict[str, float | int | None]:
        return {"seconds": self.seconds, "rollouts": self.rollouts, "width": self.width}
