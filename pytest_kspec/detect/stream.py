"""One pass, page by page: every check that reads Pods or workload controllers judges each
LIST page as it arrives, all checks together, and keeps only its conclusions.

The checks on the pass (:data:`ON_THE_PASS`) are the container, image (registry, digest,
signature) checks, which judge "units" (workload controllers on their pod templates, then
pods, a pod's violation folded into its failing controller's, see
:mod:`pytest_kspec.detect.compliance.podspecs`), and the checks that read those kinds across
objects: ``network.disallowedPorts`` (Services, then Pods), ``observability.auditLog``
(kube-system's apiserver Pods) and ``observability.metrics`` (Deployments, DaemonSets,
StatefulSets). Each is compiled once for its rule (field accessors, registry patterns,
expected values), then one pass:

1. LISTs each controller kind once, page by page: a ReplicaSet or Job leaves only its own
   controller's (kind, name) in the owner index; every controller becomes a unit (unless
   it is judged through its Deployment / CronJob) judged by every unit check, and is fed to
   the metrics check;
2. LISTs Pods once, page by page: each in-scope pod becomes one unit (its owner resolved
   once) judged by every unit check; a pod violation whose top-level controller already
   fails is dropped at once; pods are fed to the ports and audit checks;
3. keeps, per check, its violations and counts; every page is dropped after it is judged.

Nothing the pass reads is held for the session: what grows with the cluster is the owner
index (a few strings per ReplicaSet and Job) and the violations themselves. Each check's
result is what its whole-list evaluation (:func:`pytest_kspec.detect.compliance.evaluate`)
gives, by construction: both run the same compiled judge; tests/detect/test_scale.py pins
the equality over several pages and that the traced peak does not grow from 2,000 to
20,000 pods.

Failures keep their meaning: a LIST that fails makes an error of every check that reads
that kind (the first failing kind in the order the check reads them, as a whole-list run
would report), owner lookups stay best-effort, a rule that cannot be compiled makes that
check an error and leaves the others, and a continue token that expires mid-way starts the
pass again, once.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from pytest_kspec.desired import CheckRef
from pytest_kspec.detect.compliance import CheckResult, ComplianceOptions, Violation
from pytest_kspec.detect.compliance.base import OWNER_RESOURCES, OwnerResolver, labels_of
from pytest_kspec.detect.compliance.images import DigestJudge, RegistryJudge, SignatureJudge
from pytest_kspec.detect.compliance.network import PortsJudge
from pytest_kspec.detect.compliance.observability import METRICS_KINDS, AuditJudge, MetricsJudge
from pytest_kspec.detect.compliance.podspecs import (
    CONTROLLERS,
    POD_RESOURCES,
    Unit,
    UnitJudge,
    controller_unit,
    pod_unit,
)
from pytest_kspec.detect.compliance.workloads import ContainerJudge
from pytest_kspec.errors import ApiError, KspecError

log = logging.getLogger("pytest_kspec.detect.stream")

Verdict = CheckResult | KspecError
Kind = tuple[str, str]
POD: Kind = ("v1", "Pod")
SERVICE: Kind = ("v1", "Service")
POLICY: Kind = ("kyverno.io/v1", "ClusterPolicy")
METRICS: tuple[Kind, ...] = tuple(("apps/v1", k) for k in METRICS_KINDS)

# check kind -> the kinds the pass feeds it, in the order a whole-list run reads them (the
# first of them that fails is the check's error)
ON_THE_PASS: Mapping[str, tuple[Kind, ...]] = {
    "workloads.containers.required": tuple(POD_RESOURCES),
    "workloads.containers.forbidden": tuple(POD_RESOURCES),
    "workloads.images.allowedRegistries": tuple(POD_RESOURCES),
    "workloads.images.blockedRegistries": tuple(POD_RESOURCES),
    "workloads.images.requireDigests": tuple(POD_RESOURCES),
    "workloads.images.requireSignatures": tuple(POD_RESOURCES),
    "network.disallowedPorts": (POD,),
    "observability.auditLog": (POD,),
    "observability.metrics": METRICS,
}
_NEEDS_OWNERS = frozenset(k for k in ON_THE_PASS if k.startswith("workloads.")) | {
    "network.disallowedPorts"}
_ORDER: tuple[Kind, ...] = (*CONTROLLERS, POD)  # what the pass LISTs, in this order
_PARENT_KINDS = {kind for _, kind in OWNER_RESOURCES}


def streamed_kind(ref: CheckRef) -> Kind | None:
    """The first kind the pass feeds ``ref``, or None when ``ref`` reads whole lists."""
    kinds = ON_THE_PASS.get(ref.kind)
    return kinds[0] if kinds else None


class PagedSnapshot(Protocol):
    """What the pass reads: the run's snapshot (``pytest_kspec.cluster.Snapshot``)."""

    def list(self, api_version: str, kind: str,
             namespace: str | None = None) -> builtins.list[dict[str, Any]]: ...

    def pages(self, api_version: str, kind: str) -> Iterator[builtins.list[dict[str, Any]]]:
        ...

    def server_version(self) -> Mapping[str, Any]: ...


LabelKey = tuple[str, str | None, str]  # kind, namespace, name


@dataclass
class PassResult:
    """Each check's result (or the error that kept it from one) by check id; the kinds
    each check read; and the labels of every object a violation names, when asked for
    (waivers that select by label read them there instead of listing the kind again)."""

    verdicts: dict[str, Verdict] = field(default_factory=dict)
    reads: dict[str, set[Kind]] = field(default_factory=dict)
    labels: dict[LabelKey, dict[str, str]] = field(default_factory=dict)


@dataclass
class _Check:
    """One check on the pass: what it reads, its compiled judge, what it concluded."""

    ref: CheckRef
    kinds: tuple[Kind, ...]
    reads: set[Kind]
    units: UnitJudge | None = None
    ports: PortsJudge | None = None
    audit: AuditJudge | None = None
    metrics: MetricsJudge | None = None
    error: KspecError | None = None
    by_kind: dict[str, builtins.list[Violation]] = field(default_factory=dict)
    pods: builtins.list[Violation] = field(default_factory=builtins.list)
    failing: set[str] = field(default_factory=set)
    evaluated: int = 0

    def verdict(self, errors: Mapping[Kind, ApiError]) -> Verdict:
        if self.error is not None:
            return self.error
        for kind in self.kinds:
            if kind in errors:
                return errors[kind]
        try:
            if self.units is not None:
                found = [v for _, k in CONTROLLERS for v in self.by_kind.get(k, ())]
                return self.units.finish(found + self.pods, self.evaluated)
            judge = self.ports or self.audit or self.metrics
            assert judge is not None
            return judge.finish()
        except KspecError as e:
            return e


def _compile(ref: CheckRef, snapshot: PagedSnapshot, options: ComplianceOptions) -> _Check:
    """The check compiled for its rule; what it reads besides the pass comes from the
    snapshot (Services, ClusterPolicies). A rule or a read that fails is the check's error."""
    check = _Check(ref, ON_THE_PASS[ref.kind], set(ON_THE_PASS[ref.kind]))
    if ref.kind in _NEEDS_OWNERS:
        check.reads.update(OWNER_RESOURCES)
    try:
        if ref.kind.startswith("workloads.containers."):
            check.units = ContainerJudge(ref, options)
        elif ref.kind == "workloads.images.requireDigests":
            check.units = DigestJudge(ref, options)
        elif ref.kind == "workloads.images.requireSignatures":
            check.reads.add(POLICY)
            check.units = SignatureJudge(ref, options, snapshot.list(*POLICY))
        elif ref.kind.startswith("workloads.images."):
            check.units = RegistryJudge(ref, options)
        elif ref.kind == "network.disallowedPorts":
            check.reads.add(SERVICE)
            check.ports = PortsJudge(ref, options)
            check.ports.services(snapshot.list(*SERVICE))
        elif ref.kind == "observability.auditLog":
            check.audit = AuditJudge(ref)
        else:
            check.metrics = MetricsJudge(ref)
    except KspecError as e:
        check.error = e
    return check


def run_pass(refs: Sequence[CheckRef], snapshot: PagedSnapshot, options: ComplianceOptions,
             *, keep_labels: bool = False) -> PassResult:
    """Judge every check of ``refs`` (all :func:`streamed_kind`) in one pass: one LIST per
    kind they read, page by page."""
    for attempt in (1, 2):
        try:
            return _Pass(refs, snapshot, options, keep_labels).run()
        except _Expired:
            if attempt == 2:
                raise
            log.info("a list expired mid-way; starting the pass again")
    raise AssertionError("unreachable")


class _Expired(Exception):
    pass


class _Pass:
    def __init__(self, refs: Sequence[CheckRef], snapshot: PagedSnapshot,
                 options: ComplianceOptions, keep_labels: bool) -> None:
        self.snapshot = snapshot
        self.options = options
        self.keep_labels = keep_labels
        self.checks = [_compile(ref, snapshot, options) for ref in refs]
        live = [c for c in self.checks if c.error is None]
        self.units = [c for c in live if c.units is not None]
        self.ports = [c for c in live if c.ports is not None]
        self.audit = [c for c in live if c.audit is not None]
        self.metrics = [c for c in live if c.metrics is not None]
        wanted: set[Kind] = set().union(*(check.reads for check in live))
        self.kinds = [k for k in _ORDER if k in wanted]  # reads beside the pass: not listed
        self.owners = OwnerResolver(None)
        self.errors: dict[Kind, ApiError] = {}
        self.incomplete = {kind for _, kind in OWNER_RESOURCES}
        self.labels: dict[LabelKey, dict[str, str]] = {}
        # controller violations whose owner waits for an index still being read
        self.fixups: list[tuple[builtins.list[Violation], int, int, Mapping[str, Any]]] = []

    def run(self) -> PassResult:
        for kind in self.kinds:
            if kind == POD:
                self._resolve_fixups()
                for check in self.units:
                    check.failing = {v.resource for b in check.by_kind.values() for v in b}
            try:
                self._read(kind)
            except ApiError as e:
                if e.status == 410:
                    raise _Expired() from e
                self.errors[kind] = e
                if kind[1] in _PARENT_KINDS:
                    self.owners.clear(kind[1])  # best-effort owners: direct ones
            self.incomplete.discard(kind[1])
        self._resolve_fixups()
        out = PassResult(labels=self.labels)
        for check in self.checks:
            out.verdicts[check.ref.id] = check.verdict(self.errors)
            out.reads[check.ref.id] = check.reads
        return out

    def _read(self, kind: Kind) -> None:
        pages = self.snapshot.pages(*kind)
        while (page := next(pages, None)) is not None:
            if kind == POD:
                self._pods(page)
            else:
                self._controllers(kind[1], page)
            page = None  # dropped before the next page is read: one page held at a time

    def _controllers(self, kind: str, page: builtins.list[dict[str, Any]]) -> None:
        parent = kind in _PARENT_KINDS
        feeds_metrics = kind in METRICS_KINDS and self.metrics
        for obj in page:
            if parent:
                self.owners.add(kind, obj)
            if feeds_metrics:
                for check in self.metrics:
                    assert check.metrics is not None
                    check.metrics.feed(kind, obj)
            if not self.units:
                continue
            unit = controller_unit(kind, obj, self.owners, self.options)
            if unit is None:
                continue
            waits = self.owners.parent_kind(obj) in self.incomplete
            for check in self.units:
                bucket = check.by_kind.setdefault(kind, [])
                start = len(bucket)
                if self._judge(check, unit, bucket) and waits:
                    meta = obj.get("metadata") or {}
                    self.fixups.append((bucket, start, len(bucket), {"metadata": {
                        "namespace": meta.get("namespace"),
                        "ownerReferences": meta.get("ownerReferences")}}))

    def _pods(self, page: builtins.list[dict[str, Any]]) -> None:
        for pod in page:
            for check in self.audit:
                assert check.audit is not None
                before = len(check.audit.violations)
                check.audit.feed(pod)
                if self.keep_labels and len(check.audit.violations) > before:
                    self._remember(pod)
            unit: Unit | None = None
            if self.units or self.ports:
                unit = pod_unit(pod, self.owners, self.options)
            if unit is None:
                continue
            for check in self.units:
                self._judge(check, unit, check.pods, check.failing)
            for check in self.ports:
                assert check.ports is not None
                before = len(check.ports.violations)
                check.ports.pod(pod, unit.owner)
                if self.keep_labels and len(check.ports.violations) > before:
                    self._remember(pod)

    def _judge(self, check: _Check, unit: Unit, into: builtins.list[Violation],
               failing: set[str] | None = None) -> bool:
        """Judge ``unit`` for ``check``; True when it added violations to ``into``."""
        if check.error is not None:
            return False
        assert check.units is not None
        try:
            found = check.units.judge(unit)
        except KspecError as e:
            check.error = e
            return False
        if found is None:
            return False
        check.evaluated += 1
        if not found:
            return False
        if failing and unit.owner is not None and unit.owner in failing:
            return False  # its controller's violation stands for it
        into += found
        if self.keep_labels:
            self._remember(unit.obj)
        return True

    def _remember(self, obj: Mapping[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        key = (str(obj.get("kind", "")), meta.get("namespace"), str(meta.get("name", "")))
        self.labels[key] = dict(labels_of(obj))

    def _resolve_fixups(self) -> None:
        for bucket, start, end, lite in self.fixups:
            owner = self.owners.owner(lite)
            bucket[start:end] = [replace(v, owner=owner) for v in bucket[start:end]]
        self.fixups.clear()
