"""What watch mode needs of the snapshot: which kinds a check reads, in-place updates."""

from __future__ import annotations

from typing import Any

from pytest_kspec.cluster import Snapshot
from pytest_kspec.cluster.watch import slim


class Source:
    def __init__(self) -> None:
        self.lists: list[tuple[str, str]] = []

    def list(self, api_version: str, kind: str,
             namespace: str | None = None) -> list[dict[str, Any]]:
        self.lists.append((api_version, kind))
        return [{"metadata": {"name": "a", "namespace": "ns"}}]

    def version(self) -> dict[str, Any]:
        return {"gitVersion": "v1.29.4"}


def test_tracking_records_the_kinds_read_inside_the_block() -> None:
    snap = Snapshot(Source())
    snap.list("v1", "Pod")
    with snap.tracking() as reads:
        snap.list("v1", "Pod", namespace="ns")  # cached: still a read
        snap.get("kyverno.io/v1", "ClusterPolicy", "p")
        snap.server_version()
    assert reads == {("v1", "Pod"), ("kyverno.io/v1", "ClusterPolicy"), ("", "version")}
    snap.list("v1", "Namespace")
    assert ("v1", "Namespace") not in reads


def test_apply_adds_replaces_and_deletes_by_namespace_and_name() -> None:
    source = Source()
    snap = Snapshot(source)
    assert not snap.apply("v1", "Pod", "ADDED", {"metadata": {"name": "b"}})  # not held
    snap.list("v1", "Pod")
    assert snap.apply("v1", "Pod", "ADDED", {"metadata": {"name": "b", "namespace": "ns"}})
    assert snap.apply("v1", "Pod", "MODIFIED",
                      {"metadata": {"name": "a", "namespace": "ns", "labels": {"x": "1"}}})
    pods = {p["metadata"]["name"]: p for p in snap.list("v1", "Pod")}
    assert set(pods) == {"a", "b"} and pods["a"]["metadata"]["labels"] == {"x": "1"}
    assert pods["b"]["kind"] == "Pod" and pods["b"]["apiVersion"] == "v1"
    snap.apply("v1", "Pod", "DELETED", {"metadata": {"name": "a", "namespace": "ns"}})
    assert [p["metadata"]["name"] for p in snap.list("v1", "Pod")] == ["b"]
    snap.put("v1", "Pod", [])
    assert snap.list("v1", "Pod") == [] and source.lists == [("v1", "Pod")]


def test_events_keep_namespaces_apart_and_leave_earlier_reads_alone() -> None:
    snap = Snapshot(Source())
    before = snap.list("v1", "Pod")
    snap.apply("v1", "Pod", "ADDED", {"metadata": {"name": "a", "namespace": "other"}})
    snap.apply("v1", "Pod", "MODIFIED", {"metadata": {"name": "a", "namespace": "ns",
                                                      "labels": {"x": "1"}}})
    assert [p["metadata"] for p in before] == [{"name": "a", "namespace": "ns"}]
    assert [p["metadata"]["namespace"] for p in snap.list("v1", "Pod")] == ["other", "ns"]
    assert [p["metadata"].get("labels") for p in snap.list("v1", "Pod", "ns")] == [{"x": "1"}]
    snap.apply("v1", "Pod", "DELETED", {"metadata": {"name": "a", "namespace": "other"}})
    assert snap.held("v1", "Pod") == snap.list("v1", "Pod", "ns")


def test_slim_drops_only_what_policy_drift_reads() -> None:
    obj = {"metadata": {"name": "a", "managedFields": [{"manager": "x"}], "annotations": {
        "kubectl.kubernetes.io/last-applied-configuration": "{...}", "keep": "me"}},
           "spec": {"containers": []}}
    assert slim(obj) == {"metadata": {"name": "a", "annotations": {"keep": "me"}},
                         "spec": {"containers": []}}
