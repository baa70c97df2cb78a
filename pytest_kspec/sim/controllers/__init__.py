"""The simulator's control plane: scheduler, fake kubelets, workload controllers, garbage
collection. ``install()`` wires them into a ``Manager``; see ``manager`` for when they run.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

from pytest_kspec.sim.controllers.deployment import DeploymentController
from pytest_kspec.sim.controllers.jobs import CronJobController, JobController
from pytest_kspec.sim.controllers.kubelet import Kubelet
from pytest_kspec.sim.controllers.lifecycle import Deferrer, GarbageCollector, NamespaceController
from pytest_kspec.sim.controllers.manager import Clock, Manager
from pytest_kspec.sim.controllers.nodes import NodeController, make_node
from pytest_kspec.sim.controllers.replicas import (
    ReplicaSetController,
    ReplicationControllerController,
)
from pytest_kspec.sim.controllers.sets import DaemonSetController, StatefulSetController

__all__ = ["Clock", "Manager", "install", "make_node"]


def install(manager: Manager, *, version: str, kubelet_delay: float = 0.0) -> None:
    """Add every controller to ``manager`` and hook graceful deletion into its writer."""
    manager.add(NodeController(manager, version))
    manager.add(Kubelet(manager, kubelet_delay))
    manager.add(ReplicaSetController(manager))
    manager.add(ReplicationControllerController(manager))
    manager.add(DeploymentController(manager))
    manager.add(StatefulSetController(manager))
    manager.add(DaemonSetController(manager))
    manager.add(JobController(manager))
    manager.add(CronJobController(manager))
    manager.add(GarbageCollector(manager))
    manager.add(NamespaceController(manager, kubelet_delay))
    manager.writer.defer = Deferrer(manager)
