"""StatefulSet (ordered pods ``<name>-0..N-1``) and DaemonSet (one pod per Node).

Both label their pods with ``controller-revision-hash`` (a hash of the template) and replace
pods of an older revision after a template change (RollingUpdate; OnDelete leaves them).
A StatefulSet with ``podManagementPolicy: OrderedReady`` (the default) creates pod N only once
pods 0..N-1 are Ready and replaces from the highest ordinal down. Status follows the pods.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import copy
from typing import Any

from pytest_kspec.sim.controllers.base import (
    DAEMONSETS,
    NODES,
    PODS,
    STATEFULSETS,
    Base,
    deleting,
    owner_triggers,
    pod_active,
    pod_ready,
    template_hash,
)
from pytest_kspec.sim.controllers.kubelet import node_ready
from pytest_kspec.sim.store import Key

REVISION = "controller-revision-hash"


def _revision(obj: dict[str, Any]) -> str:
    return f"{obj['metadata']['name']}-{template_hash((obj.get('spec') or {}).get('template'))}"


def _drop_zero(status: dict[str, Any], *keep: str) -> dict[str, Any]:
    return {k: v for k, v in status.items() if v or k in keep}


class StatefulSetController(Base):
    name = "statefulset"
    component = "statefulset-controller"
    primary: Key = STATEFULSETS

    def triggers(self, key: Key, obj: dict[str, Any], event_type: str) -> list[tuple[str, str]]:
        if key in (STATEFULSETS, PODS):
            return owner_triggers(key, obj, "StatefulSet", STATEFULSETS)
        return []

    def reconcile(self, namespace: str, name: str) -> float | None:
        with self.store.cond:
            sts = self.get(STATEFULSETS, namespace, name)
            if sts is None or deleting(sts):
                return None
            spec = sts.get("spec") or {}
            replicas = 1 if spec.get("replicas") is None else int(spec["replicas"])
            ordered = spec.get("podManagementPolicy", "OrderedReady") == "OrderedReady"
            revision = _revision(sts)
            pods = {p["metadata"]["name"]: p for p in self.pods_of(sts)}
            for i in range(replicas):
                pod_name = f"{name}-{i}"
                pod = pods.get(pod_name)
                if pod is None:
                    labels = {REVISION: revision, "apps.kubernetes.io/pod-index": str(i),
                              "statefulset.kubernetes.io/pod-name": pod_name}
                    new = self.pod_from_template(sts, spec.get("template") or {},
                                                 name=pod_name, labels=labels)
                    new["spec"]["hostname"] = pod_name
                    if spec.get("serviceName"):
                        new["spec"]["subdomain"] = spec["serviceName"]
                    if self.create(PODS, new) is not None:
                        self.event(sts, "SuccessfulCreate", f"create Pod {pod_name} in "
                                   f"StatefulSet {name} successful")
                    if ordered:
                        break
                elif ordered and not pod_ready(pod):
                    break
            for pod_name, pod in pods.items():
                index = pod_name.rsplit("-", 1)[-1]
                if index.isdigit() and int(index) >= replicas and not deleting(pod):
                    self.delete(PODS, namespace, pod_name)
                    self.event(sts, "SuccessfulDelete", f"delete Pod {pod_name} in "
                               f"StatefulSet {name} successful")
            strategy = (spec.get("updateStrategy") or {}).get("type", "RollingUpdate")
            if strategy == "RollingUpdate":
                stale = sorted((p for p in pods.values() if not deleting(p)
                                and (p["metadata"].get("labels") or {}).get(REVISION)
                                != revision), key=lambda p: p["metadata"]["name"],
                               reverse=True)
                live = [p for p in pods.values() if pod_active(p)]
                if stale and len(live) >= replicas and all(pod_ready(p) for p in live):
                    self.delete(PODS, namespace, stale[0]["metadata"]["name"])
            self._status(sts, revision)
        return None

    def _status(self, sts: dict[str, Any], revision: str) -> None:
        pods = [p for p in self.pods_of(sts) if pod_active(p)]
        updated = [p for p in pods if (p["metadata"].get("labels") or {}).get(REVISION)
                   == revision]
        ready = sum(1 for p in pods if pod_ready(p))
        old = sts.get("status") or {}
        all_updated = len(updated) == len(pods)
        status = _drop_zero({
            "observedGeneration": sts["metadata"].get("generation", 1),
            "replicas": len(pods), "readyReplicas": ready, "availableReplicas": ready,
            "currentReplicas": len(updated) if all_updated else len(pods) - len(updated),
            "updatedReplicas": len(updated),
            "currentRevision": revision if all_updated else old.get("currentRevision",
                                                                     revision),
            "updateRevision": revision, "collisionCount": 0}, "replicas", "collisionCount",
            "availableReplicas")
        self.set_status(STATEFULSETS, sts, status)


class DaemonSetController(Base):
    name = "daemonset"
    component = "daemonset-controller"
    primary: Key = DAEMONSETS

    def triggers(self, key: Key, obj: dict[str, Any], event_type: str) -> list[tuple[str, str]]:
        if key == NODES:
            return [(e.namespace, e.name) for e in self.store.entries(DAEMONSETS)]
        if key in (DAEMONSETS, PODS):
            return owner_triggers(key, obj, "DaemonSet", DAEMONSETS)
        return []

    def _eligible(self, ds: dict[str, Any]) -> list[str]:
        selector = (((ds.get("spec") or {}).get("template") or {}).get("spec") or {}).get(
            "nodeSelector") or {}
        out = []
        for node in self.objects(NODES):
            labels = node["metadata"].get("labels") or {}
            if node_ready(node) and all(labels.get(k) == v for k, v in selector.items()):
                out.append(node["metadata"]["name"])
        return out

    def reconcile(self, namespace: str, name: str) -> float | None:
        with self.store.cond:
            ds = self.get(DAEMONSETS, namespace, name)
            if ds is None or deleting(ds):
                return None
            spec = ds.get("spec") or {}
            revision = template_hash(spec.get("template"))
            nodes = self._eligible(ds)
            by_node: dict[str, list[dict[str, Any]]] = {}
            for pod in self.pods_of(ds):
                if pod_active(pod):
                    by_node.setdefault(str((pod.get("spec") or {}).get("nodeName")),
                                       []).append(pod)
            rolling = (spec.get("updateStrategy") or {}).get("type", "RollingUpdate") \
                == "RollingUpdate"
            for node in nodes:
                pods = by_node.get(node, [])
                stale = [p for p in pods if (p["metadata"].get("labels") or {}).get(REVISION)
                         != revision]
                if rolling and stale:
                    for pod in stale:
                        self.delete(PODS, namespace, pod["metadata"]["name"])
                    pods = [p for p in pods if p not in stale]
                if not pods:
                    self._create(ds, node, revision)
            for node, pods in by_node.items():
                if node not in nodes:
                    for pod in pods:
                        self.delete(PODS, namespace, pod["metadata"]["name"])
            self._status(ds, nodes, revision)
        return None

    def _create(self, ds: dict[str, Any], node: str, revision: str) -> None:
        labels = {REVISION: revision, "pod-template-generation":
                  str(ds["metadata"].get("generation", 1))}
        pod = self.pod_from_template(ds, (ds.get("spec") or {}).get("template") or {},
                                     labels=labels)
        pod["spec"]["nodeName"] = node
        pod["spec"]["affinity"] = copy.deepcopy(pod["spec"].get("affinity") or {})
        pod["spec"]["affinity"]["nodeAffinity"] = {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchFields": [{"key": "metadata.name", "operator": "In",
                                  "values": [node]}]}]}}
        created = self.create(PODS, pod)
        if created is not None:
            self.event(ds, "SuccessfulCreate", f"Created pod: {created['metadata']['name']}")

    def _status(self, ds: dict[str, Any], nodes: list[str], revision: str) -> None:
        pods = [p for p in self.pods_of(ds) if pod_active(p)]
        on_nodes = {str((p.get("spec") or {}).get("nodeName")) for p in pods}
        ready = sum(1 for p in pods if pod_ready(p))
        updated = sum(1 for p in pods if (p["metadata"].get("labels") or {}).get(REVISION)
                      == revision)
        status = _drop_zero({
            "currentNumberScheduled": len(on_nodes & set(nodes)),
            "desiredNumberScheduled": len(nodes),
            "numberMisscheduled": len(on_nodes - set(nodes)),
            "numberReady": ready, "numberAvailable": ready,
            "numberUnavailable": max(0, len(nodes) - ready),
            "updatedNumberScheduled": updated,
            "observedGeneration": ds["metadata"].get("generation", 1)},
            "currentNumberScheduled", "desiredNumberScheduled", "numberMisscheduled",
            "numberReady")
        self.set_status(DAEMONSETS, ds, status)
