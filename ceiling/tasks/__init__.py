"""Cooperative multi-agent tasks (RWARE, Connector, SMAX) behind one functional contract."""

from ceiling.tasks.base import Observed, Task, TaskSpec, TaskState, TimeStep, with_agent_ids
from ceiling.tasks.instances import TEST_SEED_OFFSET, instances, test_seeds, train_keys
from ceiling.tasks.registry import FAMILIES, make, names

__all__ = [
    "FAMILIES",
    "Observed",
    "TEST_SEED_OFFSET",
    "Task",
    "TaskSpec",
    "TaskState",
    "TimeStep",
    "instances",
    "make",
    "names",
    "test_seeds",
    "train_keys",
    "with_agent_ids",
]
