"""The search budget: wall-clock seconds and/or a number of rollouts.

Seconds are wall-clock, measured after `block_until_ready`, with compilation done before the
clock starts; a run may overrun by at most one batch. A rollout budget is exact: it is counted
in the rollouts a strategy reports, and a strategy refuses one that is not a whole number of
its batches (`Strategy.batch_limit`), which makes a search deterministic given its key. The
number of parallel attempts per batch (the width) belongs to the strategy, not the budget.
"""

from __future__ import annotations

import dataclasses
import math

from ceiling.errors import CeilingError


@dataclasses.dataclass(frozen=True)
class Budget:
    seconds: float | None = None
    rollouts: int | None = None

    def __post_init__(self) -> None:
        if self.seconds is None and self.rollouts is None:
            raise CeilingError("a budget needs at least one limit: seconds and/or rollouts")
        if self.seconds is not None and not (
            isinstance(self.seconds, int | float) and not isinstance(self.seconds, bool)
            and math.isfinite(self.seconds) and self.seconds > 0
        ):
            raise CeilingError(f"seconds must be a positive number, got {self.seconds!r}")
        if self.rollouts is not None and (
            isinstance(self.rollouts, bool) or not isinstance(self.rollouts, int)
            or self.rollouts < 1
        ):
            raise CeilingError(f"rollouts must be an integer >= 1, got {self.rollouts!r}")

    def to_dict(self) -> dict[str, float | int | None]:
        return {"seconds": self.seconds, "rollouts": self.rollouts}
