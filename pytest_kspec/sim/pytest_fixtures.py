"""The ``kspec_sim`` pytest fixture (imported by the plugin; meant for pytest only)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # imported when a test asks for the fixture, not when pytest loads plugins
    from pytest_kspec.sim.simulator import Simulator


@pytest.fixture
def kspec_sim() -> Iterator[Simulator]:
    """A running Kubernetes API simulator with Kyverno's CRDs, fresh for each test.

    Point any client at it: ``kubernetes.config.load_kube_config(kspec_sim.kubeconfig_path)``
    or ``kubectl --kubeconfig <kspec_sim.kubeconfig_path>``. Seed state with
    ``kspec_sim.load("state.yaml")`` or ``kspec_sim.create(obj)``; read it back with
    ``kspec_sim.get(...)``/``list(...)``/``dump()``. Inject failures with
    ``kspec_sim.faults.add(status=503, path="/pods")`` and check what a tool wrote with
    ``kspec_sim.writes()``.
    """
    from pytest_kspec.sim.simulator import Simulator

    with Simulator(kyverno=True) as sim:
        yield sim
