"""Fake Nodes, kwok-style: a Node object is a kubelet that reports Ready and runs pods.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import copy
from typing import Any

from pytest_kspec.sim.controllers.base import NODES, Base
from pytest_kspec.sim.controllers.kubelet import node_ip
from pytest_kspec.sim.controllers.manager import Manager
from pytest_kspec.sim.store import Key

CAPACITY = {"cpu": "32", "memory": "256Gi", "pods": "110", "ephemeral-storage": "100Gi"}


def node_status(name: str, version: str, when: str, ip: str) -> dict[str, Any]:
    def cond(kind: str, ok: bool, reason: str, message: str) -> dict[str, Any]:
        return {"type": kind, "status": "True" if ok else "False", "reason": reason,
                "message": message, "lastHeartbeatTime": when, "lastTransitionTime": when}

    return {
        "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname",
                                                             "address": name}],
        "allocatable": dict(CAPACITY), "capacity": dict(CAPACITY),
        "conditions": [
            cond("MemoryPressure", False, "KubeletHasSufficientMemory",
                 "kubelet has sufficient memory available"),
            cond("DiskPressure", False, "KubeletHasNoDiskPressure",
                 "kubelet has no disk pressure"),
            cond("PIDPressure", False, "KubeletHasSufficientPID",
                 "kubelet has sufficient PID available"),
            cond("Ready", True, "KubeletReady", "kubelet is posting ready status")],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {"architecture": "amd64", "bootID": "", "containerRuntimeVersion":
                     "containerd://1.7.22", "kernelVersion": "6.1.0-kspec-sim",
                     "kubeProxyVersion": f"v{version}", "kubeletVersion": f"v{version}",
                     "machineID": "", "operatingSystem": "linux",
                     "osImage": "kspec simulated node", "systemUUID": ""},
        "phase": "Running",
    }


def make_node(name: str, version: str, when: str) -> dict[str, Any]:
    """A Ready worker Node as ``kubectl get node -o yaml`` shows one."""
    node: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {
            "beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64", "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux", "type": "kwok"},
            "annotations": {"kwok.x-k8s.io/node": "fake",
                            "node.alpha.kubernetes.io/ttl": "0"}},
        "spec": {}}
    node["status"] = node_status(name, version, when, node_ip(node))
    return node


class NodeController(Base):
    """Gives a Node created without a status the status of a Ready kubelet."""

    name = "node"
    component = "kwok-controller"

    def __init__(self, manager: Manager, version: str) -> None:
        super().__init__(manager)
        self.version = version

    def triggers(self, key: Key, obj: dict[str, Any], event_type: str) -> list[tuple[str, str]]:
        if key == NODES and event_type == "ADDED" and not (obj.get("status") or {}).get(
                "conditions"):
            return [("", obj["metadata"]["name"])]
        return []

    def reconcile(self, namespace: str, name: str) -> float | None:
        with self.store.cond:
            node = self.get(NODES, "", name)
            if node is None or (node.get("status") or {}).get("conditions"):
                return None
            status = copy.deepcopy(node.get("status") or {})
            status.update(node_status(name, self.version, self.clock.stamp(), node_ip(node)))
            self.set_status(NODES, node, status)
        return None
