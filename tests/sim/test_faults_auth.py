"""Fault injection, request records, restarts, authentication and RBAC authorization."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import requests
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from sim_helpers import api_client, pod, raw

from pytest_kspec.sim import Simulator

RBAC = [
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
     "metadata": {"name": "pod-reader", "namespace": "default"},
     "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
     "metadata": {"name": "alice-reads", "namespace": "default"},
     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
     "subjects": [{"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"}]},
]


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(RBAC, rbac=True, users={"alice-token": ("alice", ["devs"])}) as s:
        s.create(pod("p1"))
        yield s


@pytest.fixture(autouse=True)
def _no_faults(sim: Simulator) -> Iterator[None]:
    yield
    sim.faults.clear()


def test_status_faults_count_down(sim: Simulator) -> None:
    fault = sim.faults.add(method="GET", path=r"/pods$", status=503, count=2)
    assert raw(sim, "GET", "/api/v1/namespaces/default/pods").status_code == 503
    assert raw(sim, "GET", "/api/v1/namespaces/default/pods/p1").status_code == 200
    second = raw(sim, "GET", "/api/v1/namespaces/default/pods")
    assert second.json()["reason"] == "ServiceUnavailable" and second.json()["code"] == 503
    assert raw(sim, "GET", "/api/v1/namespaces/default/pods").status_code == 200
    assert fault.hits == 2 and fault.remaining == 0


def test_429_carries_retry_after(sim: Simulator) -> None:
    sim.faults.add(path="/configmaps", status=429, retry_after=7)
    resp = raw(sim, "GET", "/api/v1/namespaces/default/configmaps")
    assert resp.status_code == 429 and resp.headers["Retry-After"] == "7"
    assert resp.json()["details"]["retryAfterSeconds"] == 7
    assert resp.json()["reason"] == "TooManyRequests"


def test_delay_cut_and_truncate(sim: Simulator) -> None:
    sim.faults.add(path="/pods/p1$", delay=0.3)
    started = time.monotonic()
    assert raw(sim, "GET", "/api/v1/namespaces/default/pods/p1").status_code == 200
    assert time.monotonic() - started >= 0.3
    sim.faults.add(path="/pods/p1$", cut=True)
    with pytest.raises(requests.exceptions.RequestException):
        raw(sim, "GET", "/api/v1/namespaces/default/pods/p1").json()
    sim.faults.add(path="/pods/p1$", truncate=True)
    resp = raw(sim, "GET", "/api/v1/namespaces/default/pods/p1")
    assert resp.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(resp.content)
    assert raw(sim, "GET", "/api/v1/namespaces/default/pods/p1").json()["kind"] == "Pod"


def test_on_request_injects_a_concurrent_edit(sim: Simulator) -> None:
    v1 = client.CoreV1Api(api_client(sim))
    v1.create_namespaced_config_map("default", {"metadata": {"name": "raced"}})
    current = v1.read_namespaced_config_map("raced", "default")

    def edit(s: Simulator, method: str, path: str, query: dict[str, str]) -> None:
        obj = s.get("v1", "ConfigMap", "raced", "default")
        assert obj is not None
        obj["data"] = {"by": "someone-else"}
        s.update(obj)

    sim.on_request(edit, method="PUT", path="/configmaps/raced")
    current.data = {"by": "me"}
    with pytest.raises(ApiException) as e:
        v1.replace_namespaced_config_map("raced", "default", current)
    assert e.value.status == 409


def test_request_records_and_writes(sim: Simulator) -> None:
    before = len(sim.writes())
    v1 = client.CoreV1Api(api_client(sim))
    v1.create_namespaced_config_map("default", {"metadata": {"name": "rec"}})
    v1.create_namespaced_config_map("default", {"metadata": {"name": "rec2"}}, dry_run="All")
    v1.list_namespaced_config_map("default")
    writes = sim.writes()[before:]
    assert [(w.verb, w.method, w.user, w.status) for w in writes] == [
        ("create", "POST", "kspec-admin", 201)]
    last = sim.requests[-1]
    assert (last.verb, last.path, last.status) == (
        "list", "/api/v1/namespaces/default/configmaps", 200)


def test_restart_keeps_port_and_state(sim: Simulator) -> None:
    url = sim.url
    sim.stop()
    with pytest.raises(requests.exceptions.ConnectionError):
        raw(sim, "GET", "/version")
    sim.start()
    assert sim.url == url
    assert raw(sim, "GET", "/api/v1/namespaces/default/pods/p1").status_code == 200


def test_unknown_token_is_unauthorized(sim: Simulator) -> None:
    resp = raw(sim, "GET", "/api/v1/pods", token="wrong")
    assert resp.status_code == 401 and resp.json()["message"] == "Unauthorized"
    bare = requests.get(sim.url + "/api/v1/pods", verify=sim.ca_path, timeout=5)
    assert bare.status_code == 401


def test_rbac_allows_and_forbids(sim: Simulator) -> None:
    v1 = client.CoreV1Api(api_client(sim, "alice-token"))
    assert [p.metadata.name for p in v1.list_namespaced_pod("default").items] == ["p1"]
    with pytest.raises(ApiException) as e:
        v1.delete_namespaced_pod("p1", "default")
    body = json.loads(e.value.body)
    assert (e.value.status, body["reason"]) == (403, "Forbidden")
    assert body["message"].startswith('pods "p1" is forbidden: User "alice" cannot delete '
                                      'resource "pods" in API group "" in the namespace '
                                      '"default"')
    with pytest.raises(ApiException) as e:
        v1.list_namespace()
    assert "at the cluster scope" in json.loads(e.value.body)["message"]
    # discovery stays open to every authenticated user
    assert client.VersionApi(api_client(sim, "alice-token")).get_code().git_version


def test_self_subject_access_review(sim: Simulator) -> None:
    authz = client.AuthorizationV1Api(api_client(sim, "alice-token"))

    def can(verb: str, resource: str, namespace: str = "default") -> bool:
        review = authz.create_self_subject_access_review({
            "spec": {"resourceAttributes": {"verb": verb, "resource": resource,
                                            "namespace": namespace}}})
        assert review.spec.resource_attributes.resource == resource
        return bool(review.status.allowed)

    assert can("list", "pods") and not can("delete", "pods")
    assert not can("list", "pods", "kube-system")
