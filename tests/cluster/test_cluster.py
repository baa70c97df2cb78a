"""Cluster access against the simulator: pagination, raw JSON, retries, clear errors."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from pytest_kspec.cluster import Cluster, RetryPolicy, Snapshot
from pytest_kspec.errors import ApiError, ClusterError
from pytest_kspec.sim import Simulator

PODS = 1203


def _pod(i: int) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"web-{i:05d}", "namespace": "shop", "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "app", "image": "registry.example.com/web:1"}]}}


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(objects=[_pod(i) for i in range(PODS)], kyverno=True) as s:
        yield s


@pytest.fixture
def cluster(sim: Simulator) -> Iterator[Cluster]:
    sim.faults.clear()
    c = Cluster.connect(sim.kubeconfig_path, retry=RetryPolicy(attempts=4, base=0.01, cap=0.05))
    slept: list[float] = []
    c.sleep = slept.append
    c.slept = slept  # type: ignore[attr-defined]
    yield c
    c.close()


def _lists(sim: Simulator, since: int) -> list[dict[str, str]]:
    return [r.query for r in sim.requests[since:] if r.path == "/api/v1/pods" and r.verb == "list"]


def test_list_is_paginated_raw_json_with_kind_set(sim: Simulator, cluster: Cluster) -> None:
    since = len(sim.requests)
    pods = cluster.list("v1", "Pod")
    assert len(pods) == PODS
    assert all(type(p) is dict and p["kind"] == "Pod" and p["apiVersion"] == "v1" for p in pods)
    pages = _lists(sim, since)
    assert len(pages) == 3
    assert all(q["limit"] == "500" for q in pages)
    assert "continue" not in pages[0] and all("continue" in q for q in pages[1:])


def test_429_waits_for_retry_after_then_succeeds(sim: Simulator, cluster: Cluster) -> None:
    sim.faults.add(path=r"^/api/v1/namespaces$", status=429, retry_after=7, count=2)
    names = {n["metadata"]["name"] for n in cluster.list("v1", "Namespace")}
    assert "shop" in names
    assert cluster.slept == [7.0, 7.0]  # type: ignore[attr-defined]


@pytest.mark.parametrize("fault", [{"status": 503}, {"status": 500}, {"cut": True},
                                   {"truncate": True}], ids=["503", "500", "cut", "truncated"])
def test_transient_failures_are_retried(sim: Simulator, cluster: Cluster,
                                        fault: dict[str, object]) -> None:
    sim.faults.add(path=r"^/api/v1/namespaces$", count=2, **fault)  # type: ignore[arg-type]
    assert cluster.list("v1", "Namespace")
    assert len(cluster.slept) == 2  # type: ignore[attr-defined]
    assert all(0 <= s <= 0.05 for s in cluster.slept)  # type: ignore[attr-defined]


def test_persistent_5xx_gives_up_with_verb_and_resource(sim: Simulator, cluster: Cluster) -> None:
    sim.faults.add(path=r"^/api/v1/pods$", status=503, count=10)
    with pytest.raises(ApiError) as info:
        cluster.list("v1", "Pod")
    assert info.value.status == 503 and info.value.verb == "list"
    assert str(info.value).startswith("cannot list pods: 503")
    assert len(cluster.slept) == 3  # type: ignore[attr-defined]


def test_not_found_is_not_retried(sim: Simulator, cluster: Cluster) -> None:
    assert cluster.get("v1", "Pod", "nope", "shop") is None
    assert cluster.slept == []  # type: ignore[attr-defined]


def test_unserved_kind_names_kyverno(sim: Simulator, cluster: Cluster) -> None:
    expected = re.escape("does not serve Policy2 (kyverno.io/v1) — is Kyverno")
    with pytest.raises(ApiError, match=expected):
        cluster.resource("kyverno.io/v1", "Policy2")


def test_snapshot_lists_each_kind_once_and_filters_namespaces(sim: Simulator,
                                                               cluster: Cluster) -> None:
    snap = Snapshot(cluster)
    since = len(sim.requests)
    assert len(snap.list("v1", "Pod", namespace="shop")) == PODS
    assert snap.list("v1", "Pod", namespace="other") == []
    assert len(snap.list("v1", "Pod")) == PODS
    assert len(_lists(sim, since)) == 3  # one paginated LIST, shared


def test_snapshot_remembers_a_failure_for_every_caller(sim: Simulator, cluster: Cluster) -> None:
    sim.faults.add(path=r"^/api/v1/services$", status=403, count=1)
    snap = Snapshot(cluster)
    for _ in range(2):
        with pytest.raises(ApiError, match="cannot list services: 403"):
            snap.list("v1", "Service")
    assert sum(1 for r in sim.requests if r.path == "/api/v1/services") == 1


def test_missing_kubeconfig_is_one_clear_line(tmp_path: pytest.TempPathFactory) -> None:
    expected = re.escape("kubeconfig not found (pass --kspec-kubeconfig")
    with pytest.raises(ClusterError, match=expected):
        Cluster.connect(str(tmp_path) + "/absent")


def test_kubeconfig_without_the_context_is_one_clear_line(sim: Simulator) -> None:
    with pytest.raises(ClusterError, match="cannot load cluster credentials"):
        Cluster.connect(sim.kubeconfig_path, "no-such-context")
