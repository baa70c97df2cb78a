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

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .base import (
    CheckResult,
    ComplianceOptions,
    Obj,
    OwnerResolver,
    Snapshot,
    Violation,
    namespace_of,
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


@dataclass(frozen=True, slots=True)
class Unit:
    """One judged object: ``obj`` is what a violation names, ``pod`` its pod-shaped view
    (``metadata`` with the namespace, ``spec`` a PodSpec), ``owner`` the top-level owner,
    ``namespace`` the object's."""

    obj: Obj
    pod: Obj
    owner: str | None = None
    namespace: str | None = None

    @property
    def is_pod(self) -> bool:
        return self.obj is self.pod


class UnitJudge(Protocol):
    """One container check compiled for its rule (accessors, patterns, expected values
    prepared once): ``judge(unit)`` gives the unit's violations, or None when the rule
    does not apply to it (not counted); ``finish`` makes the check's result."""

    def judge(self, unit: Unit) -> list[Violation] | None: ...

    def finish(self, violations: list[Violation], evaluated: int) -> CheckResult: ...


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


def controller_unit(kind: str, obj: Obj, owners: OwnerResolver,
                    options: ComplianceOptions) -> Unit | None:
    """The unit of a workload controller of ``kind``, or None when it is not judged (in a
    skipped namespace, or judged through its Deployment / CronJob)."""
    ns = namespace_of(obj)
    if options.skips(ns):
        return None
    if kind in _JUDGED_OWNER and _controller_kind(obj) == _JUDGED_OWNER[kind]:
        return None
    return Unit(obj, pod_view(obj), owners.owner(obj), ns)


def pod_unit(pod: Obj, owners: OwnerResolver, options: ComplianceOptions) -> Unit | None:
    """The unit of a Pod, or None when its namespace is skipped."""
    ns = namespace_of(pod)
    if options.skips(ns):
        return None
    return Unit(pod, pod, owners.owner(pod), ns)


def units(snapshot: Snapshot, options: ComplianceOptions) -> list[Unit]:
    """Every object a container check judges, controllers first (see the module docs)."""
    owners = OwnerResolver(snapshot)
    pods = snapshot.list("v1", "Pod")
    listed = {kind: snapshot.list(api_version, kind) for api_version, kind in CONTROLLERS}
    for kind, items in listed.items():
        owners.remember(kind, items)  # pods' owner lookups reuse these lists
    out: list[Unit] = []
    for kind, items in listed.items():
        out += [u for u in (controller_unit(kind, obj, owners, options) for obj in items)
                if u is not None]
    out += [u for u in (pod_unit(pod, owners, options) for pod in pods) if u is not None]
    return out


def judge_units(judge: UnitJudge, units_: Iterable[Unit]) -> CheckResult:
    """Run a compiled check over whole lists of units (the page-by-page pass in
    :mod:`pytest_kspec.detect.stream` runs the same judge a page at a time)."""
    violations: list[Violation] = []
    evaluated = 0
    for unit in units_:
        found = judge.judge(unit)
        if found is not None:
            evaluated += 1
            violations += found
    return judge.finish(collapse(violations), evaluated)


def collapse(violations: Sequence[Violation]) -> list[Violation]:
    """Drop pod violations whose judged top-level controller already violates (a
    controller's violations name the controller: every non-Pod violation is one)."""
    failing = {v.resource for v in violations if v.kind != "Pod"}
    if not failing:
        return list(violations)
    return [v for v in violations
            if not (v.kind == "Pod" and v.owner is not None and v.owner in failing)]
