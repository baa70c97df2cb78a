"""ReplicaSet and ReplicationController: keep ``spec.replicas`` pods of the template running.

Pods are matched by the controller ownerReference (orphans are not adopted, so pods a state
file leaves unowned stay unowned). A missing pod is created from the template; extra ones are
deleted, not-ready and newest first. ``status`` (replicas, fullyLabeledReplicas,
readyReplicas, availableReplicas, observedGeneration) follows the pods.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

from typing import Any

from pytest_kspec.sim.controllers.base import (
    PODS,
    RCS,
    REPLICASETS,
    Base,
    deleting,
    owner_triggers,
    pod_active,
    pod_ready,
    selector_matches,
)
from pytest_kspec.sim.store import Key


class ReplicaSetController(Base):
    name = "replicaset"
    component = "replicaset-controller"
    primary: Key = REPLICASETS
    kind = "ReplicaSet"

    def triggers(self, key: Key, obj: dict[str, Any], event_type: str) -> list[tuple[str, str]]:
        if key in (self.primary, PODS):
            return owner_triggers(key, obj, self.kind, self.primary)
        return []

    def reconcile(self, namespace: str, name: str) -> float | None:
        with self.store.cond:
            owner = self.get(self.primary, namespace, name)
            if owner is None or deleting(owner):
                return None
            spec = owner.get("spec") or {}
            wanted = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
            pods = [p for p in self.pods_of(owner) if pod_active(p)]
            template = spec.get("template") or {}
            if len(pods) < wanted:
                for _ in range(wanted - len(pods)):
                    pod = self.create(PODS, self.pod_from_template(owner, template))
                    if pod is None:
                        break
                    self.event(owner, "SuccessfulCreate",
                               f"Created pod: {pod['metadata']['name']}")
            elif len(pods) > wanted:
                pods.sort(key=lambda p: (pod_ready(p), p["metadata"].get("creationTimestamp")
                                         or "", p["metadata"]["name"]))
                for pod in pods[: len(pods) - wanted]:
                    self.delete(PODS, namespace, pod["metadata"]["name"])
                    self.event(owner, "SuccessfulDelete",
                               f"Deleted pod: {pod['metadata']['name']}")
            self._status(owner)
        return None

    def _status(self, owner: dict[str, Any]) -> None:
        pods = [p for p in self.pods_of(owner) if pod_active(p)]
        selector = (owner.get("spec") or {}).get("selector") or {}
        labels = ((owner.get("spec") or {}).get("template") or {}).get("metadata", {}).get(
            "labels") or {}
        ready = sum(1 for p in pods if pod_ready(p))
        status: dict[str, Any] = {
            "replicas": len(pods),
            "fullyLabeledReplicas": sum(
                1 for p in pods if all((p["metadata"].get("labels") or {}).get(k) == v
                                       for k, v in labels.items())
                and selector_matches(selector, p["metadata"].get("labels") or {})),
            "readyReplicas": ready, "availableReplicas": ready,
            "observedGeneration": owner["metadata"].get("generation", 1)}
        for key in ("readyReplicas", "availableReplicas", "fullyLabeledReplicas"):
            if not status[key]:
                del status[key]  # omitempty, as the server writes them
        old = owner.get("status") or {}
        if old.get("conditions"):
            status["conditions"] = old["conditions"]
        self.set_status(self.primary, owner, status)


class ReplicationControllerController(ReplicaSetController):
    name = "replicationcontroller"
    component = "replication-controller"
    primary: Key = RCS
    kind = "ReplicationController"
