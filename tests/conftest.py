"""Shared fixtures. Tests run on the CPU with small configs; nothing here is timed."""

from __future__ import annotations

import jax
import pytest

from ceiling.policies.networks import NetworkConfig, Policy
from ceiling.tasks import make


@pytest.fixture(scope="session")
def connector_task():
    return make("connector:con-5x5x3a")


@pytest.fixture(scope="session")
def small_policy(connector_task):
    policy = Policy(connector_task.spec, NetworkConfig("ippo", (32, 32), "relu"))
    return policy, policy.init(jax.random.PRNGKey(0))
