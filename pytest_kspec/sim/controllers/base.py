"""What every controller shares: reads and writes through the Writer, owner references,
pods from templates, Events, and the label selectors controllers match pods with.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import random
import time
from typing import Any

from pytest_kspec.sim.controllers.manager import Manager
from pytest_kspec.sim.resources import ResourceType
from pytest_kspec.sim.selectors import label_selector_matches
from pytest_kspec.sim.status import StatusError
from pytest_kspec.sim.store import Key

log = logging.getLogger("pytest_kspec.sim")

PODS: Key = ("", "pods")
NODES: Key = ("", "nodes")
EVENTS: Key = ("", "events")
NAMESPACES: Key = ("", "namespaces")
REPLICASETS: Key = ("apps", "replicasets")
DEPLOYMENTS: Key = ("apps", "deployments")
STATEFULSETS: Key = ("apps", "statefulsets")
DAEMONSETS: Key = ("apps", "daemonsets")
RCS: Key = ("", "replicationcontrollers")
JOBS: Key = ("batch", "jobs")
CRONJOBS: Key = ("batch", "cronjobs")
_SAFE = "bcdfghjklmnpqrstvwxz2456789"


def template_hash(template: Any, collisions: int = 0) -> str:
    """A short stable hash of a pod template (the ``pod-template-hash`` label's value)."""
    digest = hashlib.sha256((repr(_canonical(template)) + str(collisions)).encode()).digest()
    value = int.from_bytes(digest[:8], "big")
    out = ""
    for _ in range(10):
        value, rest = divmod(value, len(_SAFE))
        out += _SAFE[rest]
    return out


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _canonical(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_canonical(v) for v in value)
    return value


def random_suffix(n: int = 5) -> str:
    return "".join(random.choice(_SAFE) for _ in range(n))


def selector_matches(selector: Any, labels: dict[str, str]) -> bool:
    """A LabelSelector (matchLabels/matchExpressions) or a plain map (ReplicationController)."""
    if not isinstance(selector, dict) or not selector:
        return False
    if "matchLabels" not in selector and "matchExpressions" not in selector:
        return all(labels.get(k) == v for k, v in selector.items())
    return label_selector_matches(selector, labels)


def owner_ref(owner: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"],
            "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
            "controller": True, "blockOwnerDeletion": True}


def controller_of(obj: dict[str, Any]) -> dict[str, Any] | None:
    for ref in obj.get("metadata", {}).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller"):
            return ref
    return None


def owned_by(obj: dict[str, Any], owner: dict[str, Any]) -> bool:
    ref = controller_of(obj)
    return ref is not None and ref.get("uid") == owner["metadata"].get("uid")


def deleting(obj: dict[str, Any]) -> bool:
    return bool(obj.get("metadata", {}).get("deletionTimestamp"))


def pod_ready(pod: dict[str, Any]) -> bool:
    if pod.get("status", {}).get("phase") != "Running" or deleting(pod):
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in pod.get("status", {}).get("conditions") or [])


def pod_active(pod: dict[str, Any]) -> bool:
    """Counts toward a controller's replicas: not finished and not being deleted."""
    return not deleting(pod) and pod.get("status", {}).get("phase") not in ("Succeeded",
                                                                            "Failed")


class Base:
    """Reads and writes for one controller (writes are logged, never raised: a reconcile that
    loses a race simply runs again on the event that beat it)."""

    name = "base"
    component = "kspec-sim"

    def __init__(self, manager: Manager) -> None:
        self.m = manager
        self.store = manager.store
        self.writer = manager.writer
        self.clock = manager.clock

    def rt(self, key: Key) -> ResourceType:
        group, plural = key
        for rt in self.m.registry.all():
            if rt.key == (group, plural) and not rt.custom:
                return rt
        raise KeyError(key)

    def get(self, key: Key, namespace: str, name: str) -> dict[str, Any] | None:
        entry = self.store.get(key, namespace, name)
        return entry.copy() if entry is not None else None

    def objects(self, key: Key, namespace: str | None = None) -> list[dict[str, Any]]:
        return [e.copy() for e in self.store.entries(key, namespace)]

    def create(self, key: Key, obj: dict[str, Any]) -> dict[str, Any] | None:
        rt = self.rt(key)
        try:
            return self.writer.create(rt, obj, obj["metadata"].get("namespace"),
                                      manager=self.component)
        except StatusError as e:
            log.info("%s: cannot create %s: %s", self.name, rt.kind, e.message)
            return None

    def update(self, key: Key, obj: dict[str, Any], *,
               subresource: str | None = None) -> dict[str, Any] | None:
        rt = self.rt(key)
        meta = obj["metadata"]
        try:
            return self.writer.update(rt, obj, meta.get("namespace"), meta["name"],
                                      manager=self.component, subresource=subresource)
        except StatusError as e:
            log.debug("%s: cannot update %s %s: %s", self.name, rt.kind, meta["name"],
                      e.message)
            return None

    def set_status(self, key: Key, obj: dict[str, Any], status: dict[str, Any]) -> bool:
        """Write ``status`` if it differs from the object's; True when written."""
        if obj.get("status") == status:
            return False
        new = copy.deepcopy(obj)
        new["status"] = status
        return self.update(key, new, subresource="status") is not None

    def delete(self, key: Key, namespace: str, name: str, *, propagation: str | None = None,
               grace: int | None = None) -> None:
        try:
            self.writer.delete(self.rt(key), namespace or None, name, propagation=propagation,
                               grace_period=grace)
        except StatusError as e:
            log.debug("%s: cannot delete %s/%s: %s", self.name, namespace, name, e.message)

    def event(self, involved: dict[str, Any], reason: str, message: str, *,
              kind: str = "Normal", component: str | None = None) -> None:
        """Record a core/v1 Event about ``involved`` (as ``kubectl describe`` shows them)."""
        meta = involved["metadata"]
        ns = meta.get("namespace") or "default"
        when = self.clock.stamp()
        source = component or self.component
        self.create(EVENTS, {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{meta['name']}.{time.time_ns():x}"[:253], "namespace": ns},
            "involvedObject": {"apiVersion": involved.get("apiVersion"),
                               "kind": involved.get("kind"), "name": meta["name"],
                               "namespace": meta.get("namespace"), "uid": meta.get("uid"),
                               "resourceVersion": meta.get("resourceVersion")},
            "reason": reason, "message": message, "type": kind, "count": 1,
            "source": {"component": source}, "firstTimestamp": when, "lastTimestamp": when,
            "reportingComponent": source, "reportingInstance": ""})

    def pod_from_template(self, owner: dict[str, Any], template: dict[str, Any], *,
                          name: str | None = None, labels: dict[str, str] | None = None,
                          ) -> dict[str, Any]:
        tmeta = template.get("metadata") or {}
        meta: dict[str, Any] = {"namespace": owner["metadata"].get("namespace") or "default",
                                "labels": {**(tmeta.get("labels") or {}), **(labels or {})},
                                "ownerReferences": [owner_ref(owner)]}
        if tmeta.get("annotations"):
            meta["annotations"] = dict(tmeta["annotations"])
        if name:
            meta["name"] = name
        else:
            meta["generateName"] = owner["metadata"]["name"] + "-"
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
                "spec": copy.deepcopy(template.get("spec") or {})}

    def pods_of(self, owner: dict[str, Any]) -> list[dict[str, Any]]:
        ns = owner["metadata"].get("namespace") or ""
        return [p for p in self.objects(PODS, ns) if owned_by(p, owner)]


def owner_triggers(key: Key, obj: dict[str, Any], kind: str,
                   own_key: Key) -> list[tuple[str, str]]:
    """The object itself for events on ``own_key``; its controller for dependents of ``kind``."""
    ns = obj.get("metadata", {}).get("namespace") or ""
    if key == own_key:
        return [(ns, obj["metadata"]["name"])]
    ref = controller_of(obj)
    if ref is not None and ref.get("kind") == kind:
        return [(ns, str(ref.get("name")))]
    return []
