"""Fields the API server fills in on create: a Service's clusterIP, ports and status, a Pod's
Pending status, and the workload controllers' spec defaults (replicas, update strategies,
history limits) that ``kubectl rollout`` reads. Loaded state keeps what it says (defaults
apply to new objects only).

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import copy
import hashlib
import ipaddress
from typing import Any

from pytest_kspec.sim.store import Store

SERVICE_NET = ipaddress.ip_network("10.96.0.0/12")
NODE_PORTS = range(30000, 32768)
SERVICES = ("", "services")


ROLLING = {"type": "RollingUpdate"}
WORKLOAD_DEFAULTS: dict[tuple[str, str], dict[str, Any]] = {
    ("apps", "deployments"): {
        "replicas": 1, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
        "strategy": {"type": "RollingUpdate",
                     "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}},
    ("apps", "replicasets"): {"replicas": 1},
    ("", "replicationcontrollers"): {"replicas": 1},
    ("apps", "statefulsets"): {
        "replicas": 1, "revisionHistoryLimit": 10, "podManagementPolicy": "OrderedReady",
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
        "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain",
                                                 "whenScaled": "Retain"}},
    ("apps", "daemonsets"): {
        "revisionHistoryLimit": 10,
        "updateStrategy": {"type": "RollingUpdate",
                           "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}},
    ("batch", "jobs"): {"parallelism": 1, "completions": 1, "backoffLimit": 6,
                        "completionMode": "NonIndexed", "suspend": False,
                        "podReplacementPolicy": "TerminatingOrFailed"},
    ("batch", "cronjobs"): {"concurrencyPolicy": "Allow", "suspend": False,
                            "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1},
}


def on_create(key: tuple[str, str], obj: dict[str, Any], store: Store) -> None:
    if key == ("", "pods"):
        pod_defaults(obj)
    elif key == SERVICES:
        _service(obj, store)
    elif key in WORKLOAD_DEFAULTS and isinstance(obj.get("spec"), dict):
        _fill(obj["spec"], WORKLOAD_DEFAULTS[key])


def _fill(target: dict[str, Any], defaults: dict[str, Any]) -> None:
    """Set what ``target`` lacks; a strategy of another type keeps its own shape."""
    for k, v in defaults.items():
        if k not in target or target[k] is None:
            target[k] = copy.deepcopy(v)
        elif isinstance(v, dict) and isinstance(target[k], dict) and (
                target[k].get("type", v.get("type")) == v.get("type")):
            _fill(target[k], v)


def qos_class(spec: dict[str, Any]) -> str:
    containers = list(spec.get("containers") or []) + list(spec.get("initContainers") or [])
    requests, limits = [], []
    for c in containers:
        res = c.get("resources") or {}
        requests.append(res.get("requests") or {})
        limits.append(res.get("limits") or {})
    if not any(requests) and not any(limits):
        return "BestEffort"
    guaranteed = all(lim.get(r) is not None and req.get(r, lim.get(r)) == lim.get(r)
                     for req, lim in zip(requests, limits, strict=True) for r in ("cpu", "memory"))
    return "Guaranteed" if guaranteed else "Burstable"


def pod_defaults(pod: dict[str, Any]) -> None:
    """What the API server sets on a Pod it creates: ``status.phase: Pending`` and qosClass."""
    status = pod.setdefault("status", {})
    if isinstance(status, dict):
        status.setdefault("phase", "Pending")
        status.setdefault("qosClass", qos_class(pod.get("spec") or {}))


def _service(svc: dict[str, Any], store: Store) -> None:
    spec = svc.setdefault("spec", {})
    if not isinstance(spec, dict):
        return
    kind = spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if kind != "ExternalName":
        spec.setdefault("internalTrafficPolicy", "Cluster")
        if not spec.get("clusterIP"):
            spec["clusterIP"] = _free_ip(svc, store)
        if spec["clusterIP"] != "None":
            spec.setdefault("clusterIPs", [spec["clusterIP"]])
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
    if kind in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    used = _used_node_ports(store)
    for port in spec.get("ports") or []:
        if not isinstance(port, dict):
            continue
        port.setdefault("protocol", "TCP")
        if "port" in port:
            port.setdefault("targetPort", port["port"])
        if kind in ("NodePort", "LoadBalancer") and not port.get("nodePort"):
            port["nodePort"] = _free_port(svc, used)
            used.add(port["nodePort"])
    status = svc.get("status")
    if not isinstance(status, dict) or not status:
        svc["status"] = {"loadBalancer": {}}


def _seed(svc: dict[str, Any]) -> int:
    meta = svc.get("metadata") or {}
    text = f"{meta.get('namespace')}/{meta.get('name')}"
    return int(hashlib.sha256(text.encode()).hexdigest(), 16)


def _free_ip(svc: dict[str, Any], store: Store) -> str:
    used = {str((e.obj.get("spec") or {}).get("clusterIP")) for e in store.entries(SERVICES)}
    size = SERVICE_NET.num_addresses - 12
    start = _seed(svc) % size
    for step in range(size):
        ip = str(SERVICE_NET[10 + (start + step) % size])
        if ip not in used:
            return ip
    return "None"


def _used_node_ports(store: Store) -> set[int]:
    return {int(p["nodePort"]) for e in store.entries(SERVICES)
            for p in (e.obj.get("spec") or {}).get("ports") or []
            if isinstance(p, dict) and isinstance(p.get("nodePort"), int)}


def _free_port(svc: dict[str, Any], used: set[int]) -> int:
    start = _seed(svc) % len(NODE_PORTS)
    for step in range(len(NODE_PORTS)):
        port = NODE_PORTS[(start + step) % len(NODE_PORTS)]
        if port not in used:
            return port
    return NODE_PORTS[start]
