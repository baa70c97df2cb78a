"""In-memory Snapshot and realistic API objects for the compliance check tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_kspec.desired import CheckRef, enumerate_checks
from pytest_kspec.errors import ApiError

_PLURALS = {"Pod": "pods", "Namespace": "namespaces", "ClusterPolicy": "clusterpolicies"}


class MemorySnapshot:
    """A Snapshot over a dict of (api_version, kind) → objects; ``fail`` makes a kind raise."""

    def __init__(self, *objects: dict[str, Any],
                 fail: Mapping[tuple[str, str], int] | None = None) -> None:
        self.objects: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for obj in objects:
            self.objects.setdefault((obj["apiVersion"], obj["kind"]), []).append(obj)
        self.fail = dict(fail or {})
        self.calls: list[tuple[str, str, str | None]] = []

    def list(self, api_version: str, kind: str,
             namespace: str | None = None) -> list[dict[str, Any]]:
        self.calls.append((api_version, kind, namespace))
        status = self.fail.get((api_version, kind))
        if status is not None:
            resource = _PLURALS.get(kind, kind.lower() + "s")
            raise ApiError(f"list {resource}: HTTP {status}", verb="list", resource=resource,
                           status=status, reason="NotFound" if status == 404 else "Forbidden")
        items = self.objects.get((api_version, kind), [])
        return [o for o in items
                if namespace is None or o["metadata"].get("namespace") == namespace]

    def server_version(self) -> Mapping[str, str]:
        return {"major": "1", "minor": "30", "gitVersion": "v1.30.2"}


def ref_for(body: dict[str, Any], index: int = 0) -> CheckRef:
    """The ``index``-th compliance CheckRef the catalog derives from spec section ``body``."""
    refs = [r for r in enumerate_checks(body) if r.type == "compliance"]
    return refs[index]


def meta(name: str, namespace: str | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "uid": f"uid-{namespace}-{name}"}
    if namespace:
        out["namespace"] = namespace
    out.update(extra)
    return out


def namespace(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": meta(name, labels={"kubernetes.io/metadata.name": name, **labels})}


def container(name: str = "app", image: str = "registry.example.com/team/app:1.0",
              **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": image, **fields}


def pod(name: str, ns: str = "payments", containers: list[dict[str, Any]] | None = None,
        owner: tuple[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    m = meta(name, ns)
    if owner:
        m["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": owner[0], "name": owner[1],
                                 "uid": f"uid-{ns}-{owner[1]}", "controller": True}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": m,
            "spec": {"containers": containers or [container()], **spec},
            "status": {"phase": "Running"}}


def replicaset(name: str, ns: str, deployment: str) -> dict[str, Any]:
    m = meta(name, ns, ownerReferences=[{"apiVersion": "apps/v1", "kind": "Deployment",
                                         "name": deployment, "uid": "uid-dep",
                                         "controller": True}])
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": m, "spec": {}}


def netpol(name: str, ns: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": meta(name, ns), "spec": {"podSelector": {}, **spec}}


def service(name: str, ns: str = "payments", type_: str | None = None,
            ports: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"ports": ports or [{"port": 80, "targetPort": 8080}]}
    if type_:
        spec["type"] = type_
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta(name, ns), "spec": spec}


def role(name: str, rules: list[dict[str, Any]], ns: str | None = None,
         **metadata: Any) -> dict[str, Any]:
    kind = "Role" if ns else "ClusterRole"
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind,
            "metadata": meta(name, ns, **metadata), "rules": rules}


def cluster_policy(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy", "metadata": meta(name),
            "spec": {"background": True, "rules": [], **spec}}
