"""Pods run: the fake kubelet and scheduler, graceful deletion, Services' defaults, and the
served kinds the official Python client's end-to-end suite touches (ReplicationController,
APIService, Status details)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException
from sim_helpers import api_client, pod

from pytest_kspec.sim import Simulator


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(nodes=2) as s:
        yield s


@pytest.fixture
def v1(sim: Simulator) -> Iterator[client.CoreV1Api]:
    api = api_client(sim)
    yield client.CoreV1Api(api)
    api.close()


def _conditions(p: Any) -> dict[str, str]:
    return {c.type: c.status for c in p.status.conditions or []}


def test_created_pod_is_pending_then_running_on_a_node(sim: Simulator,
                                                       v1: client.CoreV1Api) -> None:
    created = v1.create_namespaced_pod("default", pod("busy"))
    assert created.status.phase == "Pending"  # what the API server answers the create with
    live = v1.read_namespaced_pod("busy", "default")
    assert live.status.phase == "Running"
    assert live.spec.node_name in ("kspec-sim-node-1", "kspec-sim-node-2")
    assert _conditions(live) == {"PodReadyToStartContainers": "True", "Initialized": "True",
                                 "Ready": "True", "ContainersReady": "True",
                                 "PodScheduled": "True"}
    (status,) = live.status.container_statuses
    assert (status.name, status.ready, status.started, status.restart_count) == (
        "app", True, True, 0)
    assert status.image == "nginx:1.27"
    assert status.image_id.startswith("docker.io/library/nginx@sha256:")
    assert status.state.running.started_at is not None
    assert live.status.host_ip.startswith("10.0.") and live.status.pod_ip.startswith("10.244.")
    assert live.status.qos_class == "BestEffort"
    assert len(v1.list_pod_for_all_namespaces().items) == 1
    reasons = [e.reason for e in v1.list_namespaced_event(
        "default", field_selector="involvedObject.name=busy").items]
    assert reasons == ["Scheduled", "Pulled", "Created", "Started"]


def test_pod_on_a_missing_node_stays_pending(v1: client.CoreV1Api) -> None:
    v1.create_namespaced_pod("default", pod("lost", nodeName="no-such-node"))
    live = v1.read_namespaced_pod("lost", "default")
    assert live.status.phase == "Pending"
    assert live.status.host_ip is None and live.status.container_statuses is None


def test_a_cluster_without_nodes_leaves_pods_pending() -> None:
    with Simulator() as sim:
        api = api_client(sim)
        core = client.CoreV1Api(api)
        core.create_namespaced_pod("default", pod("p"))
        live = core.read_namespaced_pod("p", "default")
        assert (live.status.phase, live.spec.node_name, live.status.conditions) == (
            "Pending", None, None)
        api.close()


def test_no_schedulable_node_marks_the_pod_unschedulable(sim: Simulator,
                                                         v1: client.CoreV1Api) -> None:
    for name in ("kspec-sim-node-1", "kspec-sim-node-2"):
        v1.patch_node(name, {"spec": {"unschedulable": True}})
    v1.create_namespaced_pod("default", pod("waiting"))
    live = v1.read_namespaced_pod("waiting", "default")
    assert live.status.phase == "Pending"
    (cond,) = live.status.conditions
    assert (cond.type, cond.status, cond.reason) == ("PodScheduled", "False", "Unschedulable")
    assert cond.message.startswith("0/2 nodes are available")
    v1.patch_node("kspec-sim-node-2", {"spec": {"unschedulable": False}})
    live = v1.read_namespaced_pod("waiting", "default")
    assert (live.status.phase, live.spec.node_name) == ("Running", "kspec-sim-node-2")


def test_a_new_node_gets_a_ready_status(v1: client.CoreV1Api) -> None:
    v1.create_node({"metadata": {"name": "extra"}})
    node = v1.read_node("extra")
    assert {c.type: c.status for c in node.status.conditions}["Ready"] == "True"
    assert node.status.node_info.kubelet_version == "v1.29.4"
    assert len(node.metadata.labels or {}) == 0 or isinstance(node.metadata.labels, dict)


def test_graceful_deletion_goes_through_deletion_timestamp(sim: Simulator,
                                                           v1: client.CoreV1Api) -> None:
    v1.create_namespaced_pod("default", pod("bye"))
    rv = v1.read_namespaced_pod("bye", "default").metadata.resource_version
    answer = v1.delete_namespaced_pod("bye", "default")
    assert answer.metadata.deletion_timestamp is not None
    assert answer.metadata.deletion_grace_period_seconds == 30
    events = [(e["type"], e["object"].metadata.deletion_timestamp is not None)
              for e in watch.Watch().stream(v1.list_namespaced_pod, "default",
                                            resource_version=rv, timeout_seconds=1)]
    assert events == [("MODIFIED", True), ("DELETED", True)]
    with pytest.raises(ApiException) as e:
        v1.read_namespaced_pod("bye", "default")
    assert e.value.status == 404


def test_grace_period_zero_deletes_at_once(v1: client.CoreV1Api) -> None:
    v1.create_namespaced_pod("default", pod("now"))
    answer = v1.delete_namespaced_pod("now", "default", grace_period_seconds=0)
    assert answer.metadata.deletion_timestamp is None
    assert v1.list_namespaced_pod("default").items == []


def test_kubelet_delay_shows_the_transitions() -> None:
    with Simulator(nodes=1, kubelet_delay=0.2) as sim:
        api = api_client(sim)
        core = client.CoreV1Api(api)
        created = core.create_namespaced_pod("default", pod("slow"))
        assert core.read_namespaced_pod("slow", "default").status.phase == "Pending"
        assert sim.settle()
        seen = []
        for e in watch.Watch().stream(core.list_namespaced_pod, "default",
                                      resource_version=created.metadata.resource_version,
                                      timeout_seconds=1):
            status = e["object"].status
            waiting = [c.state.waiting.reason for c in status.container_statuses or []
                       if c.state.waiting]
            seen.append((status.phase, e["object"].spec.node_name is not None, waiting))
        assert seen == [("Pending", True, []), ("Pending", True, ["ContainerCreating"]),
                        ("Running", True, [])]
        api.close()


def test_service_gets_cluster_ip_and_status(v1: client.CoreV1Api) -> None:
    body = {"metadata": {"name": "front", "labels": {"name": "front"}},
            "spec": {"ports": [{"name": "port", "port": 80, "protocol": "TCP",
                                "targetPort": 80}], "selector": {"name": "front"}}}
    created = v1.create_namespaced_service("default", body)
    assert created.status is not None and created.status.load_balancer is not None
    assert created.spec.cluster_ip.startswith("10.") and created.spec.type == "ClusterIP"
    assert created.spec.cluster_ips == [created.spec.cluster_ip]
    body["spec"]["ports"] = [{"name": "new", "port": 8080, "protocol": "TCP",
                              "targetPort": 8080}]
    patched = v1.patch_namespaced_service("front", "default", body)
    assert sorted(p.port for p in patched.spec.ports) == [80, 8080]
    assert patched.status is not None and patched.spec.cluster_ip == created.spec.cluster_ip
    node_port = v1.create_namespaced_service("default", {
        "metadata": {"name": "np"}, "spec": {"type": "NodePort", "ports": [{"port": 80}]}})
    assert 30000 <= node_port.spec.ports[0].node_port <= 32767
    assert node_port.spec.ports[0].target_port == 80
    assert node_port.spec.cluster_ip != created.spec.cluster_ip


def _rc(name: str, replicas: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ReplicationController",
            "metadata": {"name": name, "labels": {"name": name}},
            "spec": {"replicas": replicas, "selector": {"name": name},
                     "template": {"metadata": {"labels": {"name": name}},
                                  "spec": {"containers": [{"image": "nginx", "name": "nginx",
                                                           "ports": [{"containerPort": 80}]}]}}}}


def test_replication_controller_runs_its_pods(v1: client.CoreV1Api) -> None:
    created = v1.create_namespaced_replication_controller("default", _rc("front", 2))
    assert created.spec.replicas == 2
    pods = v1.list_namespaced_pod("default", label_selector="name=front").items
    assert [p.status.phase for p in pods] == ["Running", "Running"]
    assert {p.metadata.owner_references[0].uid for p in pods} == {created.metadata.uid}
    rc = v1.read_namespaced_replication_controller("front", "default")
    assert (rc.status.replicas, rc.status.ready_replicas, rc.status.available_replicas) == (
        2, 2, 2)
    scale = v1.patch_namespaced_replication_controller_scale(
        "front", "default", {"spec": {"replicas": 1}})
    assert scale.status.selector == "name=front"
    assert len(v1.list_namespaced_pod("default", label_selector="name=front").items) == 1
    v1.delete_namespaced_replication_controller("front", "default",
                                                propagation_policy="Background")
    assert v1.list_namespaced_pod("default").items == []


def test_apiservice_is_served_and_conflicts_name_its_group(sim: Simulator) -> None:
    api = api_client(sim)
    reg = client.ApiregistrationV1Api(api)
    body = {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
            "metadata": {"name": "v1alpha1.wardle.example.com"},
            "spec": {"group": "wardle.example.com", "version": "v1alpha1",
                     "groupPriorityMinimum": 1000, "versionPriority": 15,
                     "insecureSkipTLSVerify": True,
                     "service": {"name": "api", "namespace": "wardle"}}}
    reg.create_api_service(body)
    read = reg.read_api_service("v1alpha1.wardle.example.com")
    assert (read.spec.group, read.spec.version) == ("wardle.example.com", "v1alpha1")
    with pytest.raises(ApiException) as e:
        reg.create_api_service(body)
    assert e.value.body == (
        '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        '"message":"apiservices.apiregistration.k8s.io \\"v1alpha1.wardle.example.com\\" '
        'already exists","reason":"AlreadyExists","details":{"name":'
        '"v1alpha1.wardle.example.com","group":"apiregistration.k8s.io","kind":"apiservices"},'
        '"code":409}\n')  # the server's JSON encoder ends the body with a newline
    core = client.CoreV1Api(api)
    core.create_namespaced_service("default", {"metadata": {"name": "twice"},
                                               "spec": {"ports": [{"port": 99}]}})
    with pytest.raises(ApiException) as e:
        core.create_namespaced_service("default", {"metadata": {"name": "twice"},
                                                   "spec": {"ports": [{"port": 99}]}})
    assert json.loads(e.value.body)["details"] == {"name": "twice", "kind": "services"}
    reg.delete_api_service("v1alpha1.wardle.example.com")
    api.close()
