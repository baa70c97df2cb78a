"""Deletion that takes time, as on a real cluster, and the controllers that finish it.

- A Pod on a Node that exists is deleted gracefully: it gets ``deletionTimestamp`` (now + its
  grace period) and stays until its kubelet has stopped it (see ``kubelet``); grace 0 or a
  Pod no kubelet runs is removed at once.
- A Namespace goes ``Terminating``; the namespace controller then deletes what it holds and
  the namespace itself.
- ``propagationPolicy: Foreground`` marks the owner with the ``foregroundDeletion`` finalizer;
  the garbage collector deletes its dependents, then the owner. Background deletion removes
  dependents with the owner; Orphan drops their reference to it (both in ``writes``).

Writes made while the manager is muted (loading state, the Simulator's direct writes) keep the
old synchronous behaviour: the object and its dependents go at once.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import copy
from typing import Any

from pytest_kspec.sim.controllers.base import NAMESPACES, NODES, PODS, Base, deleting
from pytest_kspec.sim.controllers.manager import Manager, parse_time
from pytest_kspec.sim.resources import ResourceType
from pytest_kspec.sim.store import Key

FOREGROUND = "foregroundDeletion"


class Deferrer:
    """The Writer's ``defer`` hook: what to store instead of removing an object now."""

    def __init__(self, manager: Manager) -> None:
        self.m = manager

    def __call__(self, rt: ResourceType, live: dict[str, Any], propagation: str | None,
                 grace: int | None) -> dict[str, Any] | None:
        if self.m.is_muted:
            return None
        meta = live["metadata"]
        if rt.key == NAMESPACES:
            marked = copy.deepcopy(live)
            marked["metadata"].setdefault("deletionTimestamp", self.m.clock.stamp())
            marked["metadata"].setdefault("deletionGracePeriodSeconds", 0)
            marked.setdefault("status", {})["phase"] = "Terminating"
            return marked
        if propagation == "Foreground" and self.m.store.dependents(str(meta.get("uid") or "")):
            marked = copy.deepcopy(live)
            marked["metadata"].setdefault("deletionTimestamp", self.m.clock.stamp())
            marked["metadata"].setdefault("deletionGracePeriodSeconds", 0)
            marked["metadata"]["finalizers"] = [FOREGROUND]
            return marked
        if rt.key == PODS:
            return self._pod(live, grace)
        return None

    def _pod(self, pod: dict[str, Any], grace: int | None) -> dict[str, Any] | None:
        spec, meta = pod.get("spec") or {}, pod["metadata"]
        if grace is None:
            grace = int(spec.get("terminationGracePeriodSeconds", 30) or 0)
        node = spec.get("nodeName")
        if (grace <= 0 or not node or self.m.store.get(NODES, "", str(node)) is None
                or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")):
            return None
        if meta.get("deletionTimestamp"):
            return pod  # already terminating: the kubelet finishes it
        marked = copy.deepcopy(pod)
        marked["metadata"]["deletionTimestamp"] = self.m.clock.stamp(self.m.clock.now() + grace)
        marked["metadata"]["deletionGracePeriodSeconds"] = grace
        return marked


class GarbageCollector(Base):
    """Finishes foreground deletion: dependents first, then the owner."""

    name = "garbage-collector"
    component = "generic-garbage-collector"

    def triggers(self, key: Key, obj: dict[str, Any], event_type: str) -> list[tuple[str, str]]:
        meta = obj.get("metadata") or {}
        out = []
        if event_type != "DELETED" and FOREGROUND in (meta.get("finalizers") or []):
            out.append(self._id(key, obj))
        if event_type == "DELETED":  # an owner waiting on this dependent may be done now
            for ref in meta.get("ownerReferences") or []:
                owner = self._find(str(ref.get("uid") or ""), ref, meta.get("namespace") or "")
                if owner is not None:
                    out.append(owner)
        return out

    def _id(self, key: Key, obj: dict[str, Any]) -> tuple[str, str]:
        meta = obj["metadata"]
        return (f"{key[0]}/{key[1]}/{meta.get('namespace') or ''}", meta["name"])

    def _find(self, uid: str, ref: dict[str, Any], namespace: str) -> tuple[str, str] | None:
        rt = self.m.registry.by_kind(str(ref.get("apiVersion")), str(ref.get("kind")))
        if rt is None:
            return None
        entry = self.store.get(rt.key, namespace if rt.namespaced else "", str(ref.get("name")))
        if entry is None or entry.obj["metadata"].get("uid") != uid:
            return None
        return self._id(rt.key, entry.obj)

    def reconcile(self, namespace: str, name: str) -> float | None:
        group, plural, ns = namespace.split("/", 2)
        key = (group, plural)
        with self.store.cond:
            obj = self.get(key, ns, name)
            if obj is None or FOREGROUND not in (obj["metadata"].get("finalizers") or []):
                return None
            deps = self.store.dependents(str(obj["metadata"].get("uid")))
            for dep_key, dep_ns, dep_name in deps:
                dep = self.get(dep_key, dep_ns, dep_name)
                if dep is not None and not deleting(dep):
                    self.delete(dep_key, dep_ns, dep_name, propagation="Foreground")
            if any(self.store.get(k, n, nm) is not None for k, n, nm in
                   self.store.dependents(str(obj["metadata"].get("uid")))):
                return None  # the dependents' DELETED events bring us back
            done = copy.deepcopy(obj)
            done["metadata"]["finalizers"] = [f for f in obj["metadata"]["finalizers"]
                                              if f != FOREGROUND]
            self.update(key, done)
        return None


class NamespaceController(Base):
    """Deletes a Terminating namespace's contents, then the namespace."""

    name = "namespace"
    component = "namespace-controller"

    def __init__(self, manager: Manager, delay: float = 0.0) -> None:
        super().__init__(manager)
        self.delay = delay

    def triggers(self, key: Key, obj: dict[str, Any], event_type: str) -> list[tuple[str, str]]:
        if key == NAMESPACES and event_type != "DELETED" and deleting(obj):
            return [("", obj["metadata"]["name"])]
        return []

    def reconcile(self, namespace: str, name: str) -> float | None:
        with self.store.cond:
            ns = self.get(NAMESPACES, "", name)
            if ns is None or not deleting(ns):
                return None
            if self.delay > 0:
                started = parse_time(ns["metadata"]["deletionTimestamp"])
                left = 0.0 if started is None else started + self.delay - self.clock.now()
                if left > 0:
                    return left
            self.writer.remove_now(self.rt(NAMESPACES), None, name)
        return None
