"""LIST (selectors, pagination, snapshots) and WATCH (events, bookmarks, expiry)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from sim_helpers import api_client, pod, raw

from pytest_kspec.sim import Simulator
from pytest_kspec.sim.selectors import field_matcher, label_matcher
from pytest_kspec.sim.status import StatusError


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(watch_window=50) as s:
        s.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "web"}})
        for i in range(12):
            s.create(pod(f"p{i:02d}", "web", {"app": "web", "tier": "a" if i % 2 else "b"},
                         nodeName=f"node-{i % 3}"))
        s.create(pod("lonely", "default"))
        yield s


def test_label_selector_grammar() -> None:
    objs = [{"metadata": {"labels": labels}} for labels in (
        {"a": "1", "b": "x"}, {"a": "2"}, {"b": "y"}, {})]

    def names(selector: str) -> list[int]:
        m = label_matcher(selector)
        assert m is not None
        return [i for i, o in enumerate(objs) if m(o)]

    assert names("a=1") == [0] and names("a==1") == [0]
    assert names("a!=1") == [1, 2, 3]  # objects without the key match !=
    assert names("a in (1,2)") == [0, 1]
    assert names("a notin (1)") == [1, 2, 3]
    assert names("b") == [0, 2] and names("!b") == [1, 3]
    assert names("a,b") == [0]
    assert names("a>1") == [1]
    assert label_matcher("") is None


def test_field_selector_support() -> None:
    m = field_matcher("spec.host=n1,status.phase!=Failed", "", "pods")
    assert m is not None
    assert m({"spec": {"nodeName": "n1"}, "status": {"phase": "Running"}})
    assert not m({"spec": {"nodeName": "n2"}})
    with pytest.raises(StatusError) as e:
        field_matcher("spec.foo=1", "", "pods")
    assert (e.value.code, e.value.message) == (400, "field label not supported: spec.foo")
    with pytest.raises(StatusError) as e:
        field_matcher("spec.foo=1", "kyverno.io", "clusterpolicies")
    assert e.value.message == ('"spec.foo" is not a known field selector: only '
                               '"metadata.name", "metadata.namespace"')


def test_list_selectors_through_client(sim: Simulator) -> None:
    v1 = client.CoreV1Api(api_client(sim))
    pods = v1.list_namespaced_pod("web", label_selector="tier=a")
    assert [p.metadata.name for p in pods.items] == ["p01", "p03", "p05", "p07", "p09", "p11"]
    assert pods.kind == "PodList" and pods.api_version == "v1"
    on_node = v1.list_pod_for_all_namespaces(field_selector="spec.nodeName=node-0")
    assert [p.metadata.name for p in on_node.items] == ["p00", "p03", "p06", "p09"]
    none = v1.list_namespaced_pod("web", label_selector="app=nothing")
    assert none.items == []
    with pytest.raises(ApiException) as e:
        v1.list_namespaced_pod("web", field_selector="spec.image=x")
    assert e.value.status == 400
    everywhere = v1.list_pod_for_all_namespaces(field_selector="metadata.namespace=default")
    assert [p.metadata.name for p in everywhere.items] == ["lonely"]


def test_pagination_is_a_consistent_snapshot(sim: Simulator) -> None:
    first = raw(sim, "GET", "/api/v1/namespaces/web/pods?limit=5").json()
    assert len(first["items"]) == 5
    assert first["metadata"]["remainingItemCount"] == 7
    snapshot_rv = first["metadata"]["resourceVersion"]
    sim.create(pod("p99", "web", {"app": "web"}))  # lands after the snapshot
    names = [p["metadata"]["name"] for p in first["items"]]
    token = first["metadata"]["continue"]
    while token:
        page = raw(sim, "GET", f"/api/v1/namespaces/web/pods?limit=5&continue={token}").json()
        assert page["metadata"]["resourceVersion"] == snapshot_rv
        names += [p["metadata"]["name"] for p in page["items"]]
        token = page["metadata"].get("continue")
        if not token:
            assert "remainingItemCount" not in page["metadata"]
    assert names == [f"p{i:02d}" for i in range(12)]
    filtered = raw(sim, "GET", "/api/v1/namespaces/web/pods?limit=2&labelSelector=app").json()
    assert "remainingItemCount" not in filtered["metadata"] and filtered["metadata"]["continue"]
    sim.delete("v1", "Pod", "p99", "web")


def test_expired_or_bad_continue(sim: Simulator) -> None:
    resp = raw(sim, "GET", "/api/v1/pods?limit=1&continue=eyJzbmFwIjoibm9wZSIsInN0YXJ0IjoxfQ")
    assert resp.status_code == 410 and resp.json()["reason"] == "Expired"
    assert resp.json()["message"].startswith("The provided continue parameter is too old")
    assert raw(sim, "GET", "/api/v1/pods?continue=%%%").status_code == 400


def test_watch_events_from_resource_version(sim: Simulator) -> None:
    v1 = client.CoreV1Api(api_client(sim))
    rv = v1.list_namespaced_pod("web").metadata.resource_version
    seen: list[tuple[str, str]] = []

    def consume() -> None:
        w = watch.Watch()
        for ev in w.stream(v1.list_namespaced_pod, "web", resource_version=rv,
                           timeout_seconds=5):
            seen.append((ev["type"], ev["object"].metadata.name))
            if ev["type"] == "DELETED":
                w.stop()

    t = threading.Thread(target=consume)
    t.start()
    time.sleep(0.2)
    sim.create(pod("w1", "web"))
    sim.create(pod("other", "default"))  # another namespace: not seen
    live = sim.get("v1", "Pod", "w1", "web")
    assert live is not None
    live["metadata"]["labels"] = {"changed": "yes"}
    sim.update(live)
    sim.delete("v1", "Pod", "w1", "web")
    t.join(10)
    assert seen == [("ADDED", "w1"), ("MODIFIED", "w1"), ("DELETED", "w1")]


def test_watch_from_zero_replays_and_bookmarks(sim: Simulator) -> None:
    resp = raw(sim, "GET", "/api/v1/namespaces/web/pods?watch=true&resourceVersion=0"
               "&allowWatchBookmarks=true&timeoutSeconds=1&labelSelector=tier%3Db", stream=True)
    assert resp.status_code == 200 and resp.headers["Transfer-Encoding"] == "chunked"
    events = [json.loads(line) for line in resp.iter_lines() if line]
    added = [e["object"]["metadata"]["name"] for e in events if e["type"] == "ADDED"]
    assert added == ["p00", "p02", "p04", "p06", "p08", "p10"]
    bookmarks = [e for e in events if e["type"] == "BOOKMARK"]
    assert bookmarks and bookmarks[-1]["object"]["kind"] == "Pod"
    assert set(bookmarks[-1]["object"]["metadata"]) == {"resourceVersion"}


def test_watch_selector_transitions(sim: Simulator) -> None:
    start = sim.resource_version
    obj = sim.get("v1", "Pod", "p00", "web")
    assert obj is not None
    obj["metadata"]["labels"]["tier"] = "moved"
    sim.update(obj)
    resp = raw(sim, "GET", f"/api/v1/namespaces/web/pods?watch=1&resourceVersion={start}"
               "&timeoutSeconds=1&labelSelector=tier%3Db", stream=True)
    events = [json.loads(line) for line in resp.iter_lines() if line]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("DELETED", "p00")]


def test_watch_too_old_resource_version(sim: Simulator) -> None:
    for i in range(60):  # push the first events out of the 50-event window
        sim.create({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": f"churn-{i}", "namespace": "default"}})
    resp = raw(sim, "GET", "/api/v1/namespaces/web/pods?watch=true&resourceVersion=2",
               stream=True)
    assert resp.status_code == 200
    events = [json.loads(line) for line in resp.iter_lines() if line]
    assert len(events) == 1 and events[0]["type"] == "ERROR"
    status = events[0]["object"]
    assert (status["code"], status["reason"]) == (410, "Expired")
    assert status["message"].startswith("too old resource version: 2 (")
    v1 = client.CoreV1Api(api_client(sim))
    with pytest.raises(ApiException) as e:
        for _ in watch.Watch().stream(v1.list_namespaced_pod, "web", resource_version="2",
                                      timeout_seconds=1):
            pass
    assert e.value.status == 410


def test_expire_watches_ends_open_streams_with_410() -> None:
    with Simulator() as s:
        start = s.resource_version
        resp = raw(s, "GET", f"/api/v1/pods?watch=true&resourceVersion={start}"
                   "&timeoutSeconds=20", stream=True)
        events: list[dict[str, object]] = []
        reader = threading.Thread(target=lambda: events.extend(
            json.loads(line) for line in resp.iter_lines() if line))
        reader.start()
        s.create(pod("before", "default"))
        deadline = time.monotonic() + 10
        while not events and time.monotonic() < deadline:
            time.sleep(0.05)
        s.expire_watches()
        reader.join(10)
        assert not reader.is_alive()  # the stream ended long before its timeout
        assert [e["type"] for e in events] == ["ADDED", "ERROR"]
        status = events[1]["object"]
        assert isinstance(status, dict) and (status["code"], status["reason"]) == (410, "Expired")
        # resuming from before the compaction is refused; from now on is served
        again = raw(s, "GET", f"/api/v1/pods?watch=true&resourceVersion={start}",
                    stream=True)
        assert [json.loads(x)["type"] for x in again.iter_lines() if x] == ["ERROR"]
        now = s.resource_version
        fresh = raw(s, "GET", f"/api/v1/pods?watch=true&resourceVersion={now}"
                    "&timeoutSeconds=1", stream=True)
        assert [json.loads(x)["type"] for x in fresh.iter_lines() if x] == []
