"""Server-side Table output: kubectl get prints the API server's columns."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from sim_helpers import raw

from pytest_kspec.sim import Simulator
from pytest_kspec.sim.tables import human_duration, json_path, table_version

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def _objects() -> list[dict[str, Any]]:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-1", "namespace": "shop"},
           "spec": {"containers": [{"name": "a", "image": "nginx"},
                                   {"name": "b", "image": "nginx"}], "nodeName": "node-1"},
           "status": {"phase": "Running", "podIP": "10.0.0.7", "containerStatuses": [
               {"name": "a", "ready": True, "restartCount": 2, "state": {"running": {}}},
               {"name": "b", "ready": False, "restartCount": 1,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}}
    dep = {"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "web", "namespace": "shop"},
           "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}},
                                 "spec": {"containers": [{"name": "a", "image": "nginx"}]}}},
           "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}}
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop"},
           "spec": {"type": "NodePort", "clusterIP": "10.96.0.10",
                    "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}]}}
    node = {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "node-1", "labels": {"node-role.kubernetes.io/control-plane": ""}},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                       "nodeInfo": {"kubeletVersion": "v1.29.4"}}}
    policy = {"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy",
              "metadata": {"name": "p"},
              "spec": {"validationFailureAction": "Enforce", "background": True, "rules": []}}
    return [pod, dep, svc, node, policy]


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(_objects(), kyverno=True) as s:
        yield s


def test_pods_list_as_a_table(sim: Simulator) -> None:
    table = raw(sim, "GET", "/api/v1/namespaces/shop/pods", headers={"Accept": TABLE}).json()
    assert (table["kind"], table["apiVersion"]) == ("Table", "meta.k8s.io/v1")
    names = [c["name"] for c in table["columnDefinitions"] if c["priority"] == 0]
    assert names == ["Name", "Ready", "Status", "Restarts", "Age"]
    [row] = table["rows"]
    assert row["cells"][:4] == ["web-1", "1/2", "CrashLoopBackOff", 3]
    assert row["object"]["kind"] == "PartialObjectMetadata"
    plain = raw(sim, "GET", "/api/v1/namespaces/shop/pods").json()
    assert plain["kind"] == "PodList"


def test_kinds_without_columns_stay_plain_json(sim: Simulator) -> None:
    body = raw(sim, "GET", "/api/v1/namespaces/shop/configmaps",
               headers={"Accept": TABLE}).json()
    assert body["kind"] == "ConfigMapList"


def test_helpers() -> None:
    assert table_version(TABLE) == "v1"
    assert table_version("application/json") is None
    assert [human_duration(s) for s in (45, 303, 2820, 18480, 100000, 270000)] == [
        "45s", "5m3s", "47m", "5h8m", "27h", "3d3h"]
    obj = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    assert json_path(obj, '.status.conditions[?(@.type == "Ready")].status') == "True"


@pytest.mark.kubectl
@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not on PATH")
def test_kubectl_get_prints_the_servers_columns(sim: Simulator) -> None:
    def get(*args: str) -> list[list[str]]:
        out = subprocess.run(["kubectl", "--kubeconfig", sim.kubeconfig_path, "get", *args],
                             capture_output=True, text=True, timeout=60, check=True).stdout
        return [line.split() for line in out.strip().splitlines()]

    pods = get("pods", "-n", "shop")
    assert pods[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert pods[1][:4] == ["web-1", "1/2", "CrashLoopBackOff", "3"]
    assert get("pods", "-n", "shop", "-o", "wide")[0][5:7] == ["IP", "NODE"]
    deployments = get("deployments", "-n", "shop")
    assert deployments[0] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert deployments[1][:4] == ["web", "2/3", "3", "2"]
    assert get("namespaces")[0] == ["NAME", "STATUS", "AGE"]
    assert get("services", "-n", "shop")[1][:5] == ["web", "NodePort", "10.96.0.10", "<none>",
                                                    "80:30080/TCP"]
    nodes = get("nodes")
    assert nodes[0] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert nodes[1][:3] == ["node-1", "Ready", "control-plane"]
    policies = get("clusterpolicies")
    assert policies[0][:4] == ["NAME", "ADMISSION", "BACKGROUND", "VALIDATE"]
    assert policies[1][:3] == ["p", "true", "Enforce"]  # ADMISSION unset: an empty cell
