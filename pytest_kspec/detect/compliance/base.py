"""Types and helpers shared by every compliance check: snapshot protocol, results, owners.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pytest_kspec.desired import CheckRef, catalog
from pytest_kspec.errors import ApiError, KspecError

log = logging.getLogger("pytest_kspec.detect.compliance")

SYSTEM_NAMESPACES: frozenset[str] = frozenset(catalog.SYSTEM_NAMESPACES)

Obj = Mapping[str, Any]


class Snapshot(Protocol):
    """Read access to the cluster state the checks inspect.

    ``list`` returns raw JSON objects exactly as the API server returns them (with
    ``apiVersion`` and ``kind`` set on each item), from every namespace when ``namespace`` is
    None, and raises :class:`~pytest_kspec.errors.ApiError` when the API fails.
    """

    def list(
        self, api_version: str, kind: str, namespace: str | None = None
    ) -> list[dict[str, Any]]: ...

    def server_version(self) -> Mapping[str, str]: ...


class ComplianceError(KspecError):
    """A check cannot be evaluated because its spec rule is unusable (unknown kind, bad regex)."""


@dataclass(frozen=True)
class ComplianceOptions:
    """How checks treat system namespaces (skipped unless ``include_system_namespaces``) and
    namespaces the spec exempts from pod security rules."""

    system_namespaces: frozenset[str] = SYSTEM_NAMESPACES
    include_system_namespaces: bool = False
    exemptions: Mapping[str, str] = field(default_factory=dict)
    default_registry: str = "docker.io"
    """Where short image names resolve (Kyverno's ``defaultRegistry``)."""

    @classmethod
    def for_spec(cls, body: Mapping[str, Any]) -> ComplianceOptions:
        """Options carrying the spec's ``podSecurity.exemptions`` (namespace → level)."""
        return cls(exemptions=catalog.exemption_levels(body))

    def exempts(self, namespace: str | None, key: str) -> bool:
        """True when ``namespace``'s exemption level frees it from container rule ``key``."""
        level = self.exemptions.get(namespace or "")
        return level is not None and catalog.pss_exempts(level, key)

    def skips(self, namespace: str | None) -> bool:
        """True when objects in ``namespace`` are left out of namespace-scoped checks."""
        return (not self.include_system_namespaces and namespace is not None
                and namespace in self.system_namespaces)


@dataclass(frozen=True)
class Violation:
    """One resource (and container, where it applies) that breaks a check's rule.

    ``resource`` reads ``Kind/namespace/name`` or ``Kind/name``; ``message`` is one line saying
    what is wrong. ``str(violation)`` is ``"<resource>: <message>"``.
    """

    resource: str
    message: str
    container: str | None = None
    api_version: str = ""
    kind: str = ""
    namespace: str | None = None
    name: str = ""
    uid: str = ""
    owner: str | None = None

    def __str__(self) -> str:
        return f"{self.resource}: {self.message}"


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check: every violation and how many resources were looked at."""

    ref: CheckRef
    violations: tuple[Violation, ...]
    evaluated: int
    summary: str

    @property
    def passed(self) -> bool:
        """True when nothing violates the rule."""
        return not self.violations


def resource_name(obj: Obj) -> str:
    """``Kind/namespace/name`` for namespaced objects, ``Kind/name`` otherwise."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    name = str(meta.get("name", ""))
    kind = str(obj.get("kind", ""))
    return f"{kind}/{ns}/{name}" if ns else f"{kind}/{name}"


def violation(obj: Obj, message: str, *, container: str | None = None,
              owner: str | None = None) -> Violation:
    """A violation about API object ``obj``, identity fields filled from its metadata."""
    meta = obj.get("metadata") or {}
    return Violation(
        resource=resource_name(obj),
        message=message,
        container=container,
        api_version=str(obj.get("apiVersion", "")),
        kind=str(obj.get("kind", "")),
        namespace=meta.get("namespace"),
        name=str(meta.get("name", "")),
        uid=str(meta.get("uid", "")),
        owner=owner,
    )


def cluster_violation(resource: str, message: str, *, kind: str = "") -> Violation:
    """A violation about something missing cluster-wide (no single object to name)."""
    return Violation(resource=resource, message=message, kind=kind)


def namespace_of(obj: Obj) -> str | None:
    """The object's namespace, None for cluster-scoped objects."""
    ns = (obj.get("metadata") or {}).get("namespace")
    return str(ns) if ns else None


def name_of(obj: Obj) -> str:
    """The object's name."""
    return str((obj.get("metadata") or {}).get("name", ""))


def labels_of(obj: Obj) -> Mapping[str, str]:
    """The object's labels (empty mapping when none)."""
    return (obj.get("metadata") or {}).get("labels") or {}


def in_scope(objs: Sequence[Obj], options: ComplianceOptions) -> list[Obj]:
    """Objects outside the skipped system namespaces."""
    return [o for o in objs if not options.skips(namespace_of(o))]


CONTAINER_KINDS: tuple[tuple[str, str], ...] = (
    ("containers", "container"),
    ("initContainers", "initContainer"),
    ("ephemeralContainers", "ephemeralContainer"),
)


def iter_containers(pod: Obj) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """``(label, container)`` for every container, init and ephemeral container of a pod.

    ``label`` reads ``container "app"``, ``initContainer "setup"``, ``ephemeralContainer "dbg"``.
    """
    spec = pod.get("spec") or {}
    for field_name, word in CONTAINER_KINDS:
        for container in spec.get(field_name) or []:
            yield f'{word} "{container.get("name", "")}"', container


def result(ref: CheckRef, violations: Sequence[Violation], evaluated: int, noun: str,
           what: str | None = None) -> CheckResult:
    """A CheckResult whose summary counts violating resources among those ``evaluated``.

    The summary reads ``"2 of 37 pods violate: <what>"`` or ``"all 37 pods comply: <what>"``;
    ``what`` defaults to the check's title.
    """
    what = what if what is not None else ref.title
    offending = len({v.resource for v in violations})
    if violations:
        summary = f"{offending} of {evaluated} {noun} violate: {what}"
    else:
        summary = f"all {evaluated} {noun} comply: {what}"
    return CheckResult(ref=ref, violations=tuple(violations), evaluated=evaluated,
                       summary=summary)


def display(value: Any) -> str:
    """A value as a spec author would write it (``true``, ``1000``, ``RuntimeDefault``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# Owner kinds whose own controller is the owner users know (ReplicaSet → Deployment, ...).
_PARENTS: Mapping[str, tuple[str, str]] = {
    "ReplicaSet": ("apps/v1", "ReplicaSet"),
    "Job": ("batch/v1", "Job"),
}
OWNER_RESOURCES: tuple[tuple[str, str], ...] = tuple(_PARENTS.values())


Parent = tuple[str, str] | None
"""What an owner index keeps of a ReplicaSet or Job: its own controller's (kind, name)."""


@dataclass
class OwnerResolver:
    """Top-level owners of pods: ReplicaSet→Deployment and Job→CronJob, listed once, lazily.

    Owner lookups are best-effort: when ReplicaSets or Jobs cannot be listed the direct owner
    is reported instead (the check itself does not depend on owners). The index keeps only
    each ReplicaSet's and Job's controller (kind, name), never the objects: a pass that
    reads them page by page (:mod:`pytest_kspec.detect.stream`) feeds them with :meth:`add`
    and holds a few strings per object. Without a snapshot, kinds not fed are empty.
    """

    snapshot: Snapshot | None
    _by_kind: dict[str, _ParentIndex] = field(default_factory=dict)

    def owner(self, obj: Obj) -> str | None:
        """``Kind/ns/name`` of the top-level owner of ``obj``, or None when it has none."""
        ref = _controller_ref(obj)
        if ref is None:
            return None
        ns = namespace_of(obj)
        kind, name = str(ref.get("kind", "")), str(ref.get("name", ""))
        if kind in _PARENTS:
            grand = self._lookup(kind, ns, name, str(ref.get("uid", "")))
            if grand is not None:
                return _owner_text(grand[0], ns, grand[1])
        return _owner_text(kind, ns, name)

    def parent_kind(self, obj: Obj) -> str | None:
        """The kind whose index ``owner(obj)`` reads (ReplicaSet or Job), else None."""
        ref = _controller_ref(obj)
        kind = str(ref.get("kind", "")) if ref is not None else ""
        return kind if kind in _PARENTS else None

    def remember(self, kind: str, items: Sequence[Obj]) -> None:
        """Index ``items`` (all ReplicaSets or all Jobs) already listed by the caller."""
        if kind in _PARENTS and kind not in self._by_kind:
            self._by_kind[kind] = _ParentIndex()
            for item in items:
                self.add(kind, item)

    def add(self, kind: str, item: Obj) -> None:
        """Index one ReplicaSet or Job (the pass feeds them as their pages arrive)."""
        index = self._by_kind.get(kind)
        if index is None:
            index = self._by_kind[kind] = _ParentIndex()
        meta = item.get("metadata") or {}
        grand = _controller_ref(item)
        parent = None if grand is None else (sys.intern(str(grand.get("kind", ""))),
                                             str(grand.get("name", "")))
        index.names[f"{meta.get('namespace') or ''}/{meta.get('name', '')}"] = parent
        uid_of = meta.get("uid")
        if uid_of:
            index.uids[str(uid_of)] = parent

    def clear(self, kind: str) -> None:
        """Forget ``kind`` (its listing failed): owners are then reported directly."""
        self._by_kind[kind] = _ParentIndex()

    def _lookup(self, kind: str, ns: str | None, name: str, uid: str) -> Parent:
        if kind not in self._by_kind:
            items: Sequence[Obj] = []
            if self.snapshot is not None:
                api_version, list_kind = _PARENTS[kind]
                try:
                    items = self.snapshot.list(api_version, list_kind)
                except ApiError as err:
                    log.debug("owner lookup: cannot list %s: %s", list_kind, err)
            self.remember(kind, items)
        index = self._by_kind[kind]
        if uid and uid in index.uids:
            return index.uids[uid]
        return index.names.get(f"{ns or ''}/{name}")


@dataclass
class _ParentIndex:
    """ReplicaSets (or Jobs) by ``namespace/name`` and by uid: their controller, if any."""

    names: dict[str, Parent] = field(default_factory=dict)
    uids: dict[str, Parent] = field(default_factory=dict)


def _controller_ref(obj: Obj) -> Mapping[str, Any] | None:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    for ref in refs:
        if ref.get("controller"):
            return dict(ref)
    return dict(refs[0]) if refs else None


def _owner_text(kind: str, ns: str | None, name: str) -> str:
    if kind == "Node" or not ns:
        return f"{kind}/{name}"
    return f"{kind}/{ns}/{name}"
