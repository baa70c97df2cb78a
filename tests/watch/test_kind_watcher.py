"""The watch stream of one kind, in process: events, bookmarks, 410 re-list."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pytest_kspec.cluster import Backoff, Change, Cluster, KindWatcher, Snapshot
from pytest_kspec.sim import Simulator

CM = ("v1", "ConfigMap")


def _cm(name: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default"}, "data": {"k": name}}


def _next(changes: queue.Queue[Change], event: str) -> Change:
    while True:
        change = changes.get(timeout=20)
        if change.event == event:
            return change


@contextmanager
def watching(cluster: Cluster, snapshot: Snapshot, version: str,
             **options: Any) -> Iterator[tuple[KindWatcher, queue.Queue[Change]]]:
    """A started ConfigMap watcher and the queue of its changes; stopped, joined and the
    cluster closed on the way out."""
    changes: queue.Queue[Change] = queue.Queue()
    stop = threading.Event()
    w = KindWatcher(cluster, snapshot, *CM, version, changes.put, stop, **options)
    w.start()
    try:
        yield w, changes
    finally:
        stop.set()
        w.join(timeout=10)
        cluster.close()


def test_events_update_the_snapshot_in_place() -> None:
    with Simulator() as sim:
        cluster = Cluster.connect(sim.kubeconfig_path)
        snapshot = Snapshot(cluster)
        _, version = cluster.list_versioned(*CM)
        snapshot.put(*CM, [])
        with watching(cluster, snapshot, version) as (w, changes):
            assert w.connected.wait(10)
            sim.create(_cm("a"))
            change = _next(changes, "ADDED")
            assert change.name == "default/a"
            assert [o["metadata"]["name"] for o in snapshot.list(*CM)] == ["a"]
            sim.delete("v1", "ConfigMap", "a", "default")
            _next(changes, "DELETED")
            assert snapshot.list(*CM) == []


def test_410_gone_relists_the_kind() -> None:
    with Simulator(watch_window=3) as sim:
        cluster = Cluster.connect(sim.kubeconfig_path)
        _, old = cluster.list_versioned(*CM)
        for i in range(6):  # the window moves past `old`
            sim.create(_cm(f"c{i}"))
        snapshot = Snapshot(cluster)
        snapshot.put(*CM, [])
        with watching(cluster, snapshot, old) as (w, changes):
            _next(changes, "RELIST")
            assert w.relists == 1 and w.reconnects == 0
            assert len(snapshot.list(*CM)) == 6
            sim.create(_cm("after"))
            assert _next(changes, "ADDED").name == "default/after"


def test_a_planned_resync_relists_a_quiet_kind_on_time() -> None:
    with Simulator() as sim:
        sim.bookmark_interval = 3600.0  # no bookmark wakes the stream up
        cluster = Cluster.connect(sim.kubeconfig_path)
        snapshot = Snapshot(cluster)
        with watching(cluster, snapshot, "",
                      resync_at=time.monotonic() + 1.0, resync_every=1.0) as (w, changes):
            assert _next(changes, "RELIST").cause == "start"
            for _ in range(2):  # nothing happens on the cluster, yet the kind is re-listed
                assert _next(changes, "RELIST").cause == "resync"
            assert w.reconnects == 0


def test_an_outage_is_reported_with_what_changed_meanwhile() -> None:
    with Simulator() as sim:
        for name in ("keep", "gone", "edited"):
            sim.create(_cm(name))
        cluster = Cluster.connect(sim.kubeconfig_path)
        snapshot = Snapshot(cluster)
        with watching(cluster, snapshot, "",
                      backoff=Backoff(base=0.05, cap=0.2)) as (w, changes):
            _next(changes, "RELIST")
            assert w.connected.wait(10)
            sim.stop()
            lost = _next(changes, "LOST")
            sim.delete("v1", "ConfigMap", "gone", "default")
            sim.update({**_cm("edited"), "data": {"k": "new"}})
            sim.create(_cm("new"))
            sim.start()
            back = _next(changes, "RELIST")
            assert back.cause == "reconnect"
            assert back.outage is not None and back.outage > 0 and lost.at <= back.at
            assert back.diff == (1, 1, 1)  # added, deleted, changed
            assert sorted(o["metadata"]["name"] for o in snapshot.list(*CM)) == [
                "edited", "keep", "new"]


def test_410_on_an_open_stream_relists_the_kind() -> None:
    with Simulator() as sim:
        cluster = Cluster.connect(sim.kubeconfig_path)
        snapshot = Snapshot(cluster)
        with watching(cluster, snapshot, "") as (w, changes):
            _next(changes, "RELIST")
            assert w.connected.wait(10)
            sim.create(_cm("before"))
            _next(changes, "ADDED")
            sim.expire_watches()
            assert _next(changes, "RELIST").cause == "410"
            assert w.reconnects == 0
            sim.create(_cm("after"))
            assert _next(changes, "ADDED").name == "default/after"


def test_a_requested_resync_relists_at_the_next_event() -> None:
    with Simulator() as sim:
        sim.bookmark_interval = 3600.0
        cluster = Cluster.connect(sim.kubeconfig_path)
        snapshot = Snapshot(cluster)
        with watching(cluster, snapshot, "") as (w, changes):
            _next(changes, "RELIST")
            assert w.connected.wait(10)
            snapshot.forget(*CM)  # as a remediation write does
            w.resync()
            sim.create(_cm("a"))
            assert _next(changes, "RELIST").cause == "requested"
            assert [o["metadata"]["name"] for o in snapshot.held(*CM) or []] == ["a"]
