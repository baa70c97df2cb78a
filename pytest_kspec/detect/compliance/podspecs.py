"""What container checks judge: Pods and the pod templates of workload controllers.

Kyverno's autogen extends every Pod rule to Deployments, StatefulSets, DaemonSets, Jobs,
CronJobs and ReplicaSets, so a controller with a bad template is refused at admission. The
audit judges the same objects: a Deployment scaled to zero or a CronJob between runs has no
pod, yet its template is what the next pod will be.

Judged, each once:

- Deployments, StatefulSets, DaemonSets, CronJobs (on ``spec.template`` /
  ``spec.jobTemplate.spec.template``);
- ReplicaSets without an owning Deployment and Jobs without an owning CronJob (an owned one
  is its owner's template, judged there);
- Pods. A pod whose top-level controller is judged here is reported only when its controller
  is not: a Deployment with a privileged template is one violation, not one per replica,
  while a pod that breaks a rule its controller's template does not (a ``kubectl debug``
  container, an injected sidecar, a replica of an older template) is still reported, under
  its own name with its owner.

Events name the controller: ``Deployment/shop/web``.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .base import (
    ComplianceOptions,
    Obj,
    OwnerResolver,
    Snapshot,
    Violation,
    in_scope,
    namespace_of,
    resource_name,
)

CONTROLLERS: tuple[tuple[str, str], ...] = (
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "DaemonSet"),
    ("apps/v1", "ReplicaSet"),
    ("batch/v1", "Job"),
    ("batch/v1", "CronJob"),
)
POD_RESOURCES: list[tuple[str, str]] = [("v1", "Pod"), *CONTROLLERS]
NOUN = "workloads"  # pods and controllers

# A controller owned by one of these is judged through its owner.
_JUDGED_OWNER: Mapping[str, str] = {"ReplicaSet": "Deployment", "Job": "CronJob"}


@dataclass(frozen=True)
class Unit:
    """One judged object: ``obj`` is what a violation names, ``pod`` its pod-shaped view
    (``metadata`` with the namespace, ``spec`` a PodSpec), ``owner`` the top-level owner."""

    obj: Obj
    pod: Obj
    owner: str | None = None

    @property
    def is_pod(self) -> bool:
        return self.obj.get("kind") == "Pod"


def _controller_kind(obj: Obj) -> str | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("kind", ""))
    return None


def template_of(obj: Obj) -> Mapping[str, Any]:
    """The pod template of a controller object (empty when it has none)."""
    spec = obj.get("spec") or {}
    if obj.get("kind") == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    template = spec.get("template") or {}
    return template if isinstance(template, Mapping) else {}


def pod_view(obj: Obj) -> Obj:
    """``obj`` itself for a Pod; for a controller, its template shaped as a Pod."""
    if obj.get("kind") == "Pod":
        return obj
    template = template_of(obj)
    meta = dict(template.get("metadata") or {})
    meta["namespace"] = namespace_of(obj)
    meta.setdefault("name", (obj.get("metadata") or {}).get("name", ""))
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": template.get("spec") or {}}


def units(snapshot: Snapshot, options: ComplianceOptions) -> list[Unit]:
    """Every object a container check judges, controllers first (see the module docs)."""
    owners = OwnerResolver(snapshot)
    pods = in_scope(snapshot.list("v1", "Pod"), options)
    listed = {kind: snapshot.list(api_version, kind) for api_version, kind in CONTROLLERS}
    for kind, items in listed.items():
        owners.remember(kind, items)  # pods' owner lookups reuse these lists
    out: list[Unit] = []
    for kind, items in listed.items():
        for obj in in_scope(items, options):
            if kind in _JUDGED_OWNER and _controller_kind(obj) == _JUDGED_OWNER[kind]:
                continue  # judged through its Deployment / CronJob
            out.append(Unit(obj, pod_view(obj), owners.owner(obj)))
    for pod in pods:
        out.append(Unit(pod, pod, owners.owner(pod)))
    return out


def collapse(units_: Sequence[Unit], violations: Sequence[Violation]) -> list[Violation]:
    """Drop pod violations whose judged top-level controller already violates."""
    judged = {resource_name(u.obj) for u in units_ if not u.is_pod}
    failing = {v.resource for v in violations if v.resource in judged}
    return [v for v in violations
            if not (v.kind == "Pod" and v.owner is not None and v.owner in failing)]
