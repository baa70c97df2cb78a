"""Shared helpers for the simulator's own tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client
from sim_helpers import api_client

from pytest_kspec.sim import Simulator


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(kyverno=True) as s:
        yield s


@pytest.fixture(scope="module")
def api(sim: Simulator) -> Iterator[client.ApiClient]:
    c = api_client(sim)
    yield c
    c.close()
