"""Cooperative multi-agent tasks (RWARE, Connector, SMAX) behind one functional contract."""

from ceiling.tasks.base import Observed, Task, TaskSpec, TaskState, TimeStep, with_agent_ids
from ceiling.tasks.instances import TEST_SEED_OFFSET, instances, seeds_of_test_set, train_keys
from ceiling.tasks.registry import FAMILIES, make, names, spec_table, task_spec

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
    "seeds_of_test_set",
    "spec_table",
    "task_spec",
    "train_keys",
    "with_agent_ids",
]
