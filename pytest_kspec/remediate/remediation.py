"""Remediation: fix what an item found, conservatively and exactly, and prove that it worked.

Auto-remediation that causes an outage is the top risk, so every write here is guarded: an
update carries the resourceVersion seen at detection (a concurrent edit gives 409 and is
never overwritten), deletions carry uid preconditions and are capped per run, dry-run sends
the very same requests with ``dryRun=All``, and a write only counts as ``verified`` once the
object, read back from the API server, matches the spec. Compliance and configuration drift
are never touched (``manual-required``); users' own checks run the fix they registered, if
any (:mod:`pytest_kspec.remediate.custom`). Every attempt goes to a :class:`RemediationRecorder`.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import copy
import fcntl
import json
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pytest_kspec.detect import (
    COMPLIANCE,
    CONFIGURATION,
    CUSTOM,
    EXTRA,
    NOT_ENFORCING,
    POLICY,
    RESOURCE,
    DriftEvent,
    Outcome,
    PolicyComparison,
    Target,
    compare_policy,
    summarize,
)
from pytest_kspec.errors import ApiError, KspecError
from pytest_kspec.remediate.custom import custom_block
from pytest_kspec.remediate.writes import planned_write
from pytest_kspec.report import REMEDIATION_STATUSES, remediation_counts, utc_now

__all__ = [
    "ACTIONS",
    "STATUSES",
    "DeletionBudget",
    "MemoryRecorder",
    "RemediationOptions",
    "RemediationRecorder",
    "Remediator",
    "remediation_counts",
    "remediation_line",
    "remediation_properties",
    "remediation_text",
]

if TYPE_CHECKING:
    from pytest_kspec.cluster import Cluster, Snapshot
    from pytest_kspec.detect import Violation
    from pytest_kspec.spec import DriftConfig

log = logging.getLogger("pytest_kspec.remediate.remediation")

APPLIED, VERIFIED, FAILED = "applied", "verified", "failed"
DRY_RUN, MANUAL, SKIPPED = "dry-run", "manual-required", "skipped"
STATUSES: tuple[str, ...] = REMEDIATION_STATUSES  # applied, verified, failed, dry-run, ...
CREATE, UPDATE, DELETE, REPORT, FIX = "create", "update", "delete", "report", "fix"
ACTIONS: tuple[str, ...] = (CREATE, UPDATE, DELETE, REPORT, FIX)
"""``fix``: a user's check ran its registered fix (see :mod:`pytest_kspec.remediate.custom`)."""

RBAC_FILE = "manifests/base/rbac.yaml"
POLICY_ROLE = "kspec-remediate"
RESOURCE_ROLE = "kspec-remediate-resources"
RESOURCE_SETTINGS = ("report", "delete")
_SHORT = 60


class RemediationRecorder(Protocol):
    """Where remediation attempts go (the audit trail); the history store implements it.

    ``record`` is called once per attempt — dry-run, skipped and manual-required included —
    with a plain JSON-ready mapping:

    - ``node_id``: the item (``cluster-spec.yaml::policy::require-run-as-non-root``)
    - ``resource``: what was acted on (``ClusterPolicy/x``, ``Pod/ns/name``)
    - ``action``: ``create``, ``update``, ``delete`` or ``report``
    - ``status``: ``applied``, ``verified``, ``failed``, ``dry-run``, ``manual-required``
      or ``skipped``
    - ``dry_run``: whether the requests were sent with ``dryRun=All``
    - ``timestamp``: RFC 3339 UTC (``2025-01-15T10:30:05Z``)
    - ``error``: one line saying why it failed or was skipped, else None
    - ``details``: a mapping — the field diff of an update (``changes``: path, from, to),
      the resourceVersion or uid the write was guarded by, the owner of a pod, a reason
    """

    def record(self, attempt: Mapping[str, Any]) -> None: ...


class MemoryRecorder:
    """The default recorder: keeps every attempt in ``attempts`` (thread-safe)."""

    def __init__(self) -> None:
        self.attempts: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def record(self, attempt: Mapping[str, Any]) -> None:
        with self._lock:
            self.attempts.append(dict(attempt))


@dataclass(frozen=True)
class RemediationOptions:
    """What may be fixed and how.

    ``explicit`` (``--kspec-remediate`` / ``--kspec-dry-run`` / ``kspec drift remediate``)
    covers every type the run checks; ``auto`` (DriftConfig ``remediation.auto``) only the
    types in ``auto_types``. ``resources`` maps a compliance check id to ``report`` or
    ``delete``; ``prune`` allows deleting extra kspec policies; ``max_deletions`` caps
    destructive actions per run.
    """

    explicit: bool = False
    auto: bool = False
    dry_run: bool = False
    auto_types: frozenset[str] = frozenset({POLICY})
    prune: bool = False
    max_deletions: int = 5
    resources: Mapping[str, str] = field(default_factory=dict, hash=False)

    @property
    def active(self) -> bool:
        return self.explicit or self.auto

    def applies_to(self, kind: str) -> bool:
        """Whether drift of type ``kind`` is remediated in this run."""
        return self.explicit or (self.auto and kind in self.auto_types)

    @classmethod
    def resolve(cls, config: DriftConfig, *, remediate: bool = False, dry_run: bool = False,
                prune: bool = False, max_deletions: int | None = None,
                allow_auto: bool = True) -> RemediationOptions:
        """Command-line flags over the DriftConfig; ``allow_auto`` False is
        ``--no-auto-remediate``. A dry run alone already plans the fixes."""
        rem = config.remediation
        return cls(explicit=remediate or dry_run, auto=rem.auto and allow_auto,
                   dry_run=dry_run or rem.dry_run, auto_types=rem.types,
                   prune=prune or rem.prune,
                   max_deletions=rem.max_deletions if max_deletions is None else max_deletions,
                   resources=dict(rem.resources))


class DeletionBudget:
    """How many destructive actions the run may still take.

    In memory by default; with ``path`` the count lives in that file under an exclusive lock,
    so every xdist worker of one run draws from the same budget.
    """

    def __init__(self, limit: int, path: Path | None = None) -> None:
        self.limit = max(int(limit), 0)
        self.path = path
        self._used = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        """Reserve one deletion; False once ``limit`` deletions were taken this run."""
        with self._lock:
            if self.path is None:
                if self._used >= self.limit:
                    return False
                self._used += 1
                return True
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                raw = os.read(fd, 64).decode("ascii", "replace").strip()
                used = int(raw) if raw.isdigit() else 0
                if used >= self.limit:
                    return False
                os.lseek(fd, 0, os.SEEK_SET)
                os.ftruncate(fd, 0)
                os.write(fd, str(used + 1).encode("ascii"))
                return True
            finally:
                os.close(fd)  # closing releases the lock

    @property
    def used(self) -> int:
        if self.path is None:
            return self._used
        try:
            raw = self.path.read_text(encoding="ascii").strip()
        except OSError:
            return 0
        return int(raw) if raw.isdigit() else 0


class Remediator:
    """Fixes the drift of one outcome at a time against ``cluster``.

    ``snapshot`` (optional) is told to forget a kind after each real write, so later reads
    in the run see the cluster as it now is.
    """

    def __init__(self, cluster: Cluster, options: RemediationOptions, *,
                 budget: DeletionBudget | None = None, snapshot: Snapshot | None = None,
                 clock: Callable[[], str] = utc_now) -> None:
        self.cluster = cluster
        self.options = options
        self.budget = budget or DeletionBudget(options.max_deletions)
        self.snapshot = snapshot
        self.clock = clock

    @property
    def dry_run(self) -> bool:
        return self.options.dry_run

    def remediate(self, outcome: Outcome, node_id: str = "") -> list[dict[str, Any]]:
        """Fix what ``outcome`` found; sets each event's ``remediation`` block and returns
        the attempts (see :class:`RemediationRecorder`), one per resource acted on."""
        target = outcome.target
        if not outcome.failed or not outcome.events:
            return []
        subjects = list(outcome.subjects) + [None] * (len(outcome.events) - len(outcome.subjects))
        self._expected = outcome.expected  # the policy as written for this cluster's Kyverno
        attempts: list[dict[str, Any]] = []
        done: dict[str, dict[str, Any]] = {}
        for event, subject in zip(outcome.events, subjects, strict=False):
            key = _subject_key(event, subject)
            if key in done:  # a second violation of the same pod: one action covers both
                event.remediation = dict(done[key])
                continue
            try:
                block = self._one(target, event, subject)
            except KspecError as e:
                block = self._block(REPORT if target.type in (COMPLIANCE, CONFIGURATION, CUSTOM)
                                    else _planned_action(target, event), FAILED, error=str(e))
            write = block.pop("write", None)  # on the attempt (for a plan), not in reports
            event.remediation = block
            done[key] = block
            attempt = {"node_id": node_id or event.node_id, "resource": event.resource, **block}
            if write is not None:
                attempt["write"] = write
            attempts.append(attempt)
            log.info("remediation %s %s: %s%s", block["action"], event.resource,
                     block["status"], f" ({block['error']})" if block["error"] else "")
        return attempts

    # -- dispatch -----------------------------------------------------------------------

    def _one(self, target: Target, event: DriftEvent, subject: Any) -> dict[str, Any]:
        if target.type == POLICY:
            if target.id == EXTRA:
                return self._extra(event, subject)
            return self._policy(target, event, subject)
        if target.type == RESOURCE:
            return self._resource(target, event, subject)
        if target.type == CUSTOM:
            return custom_block(self, event, subject)
        if target.type == CONFIGURATION:
            return self._block(REPORT, MANUAL, details={
                "reason": "configuration drift needs a person: bring the cluster to a "
                          "version the spec allows (kspec never changes cluster settings)"})
        owner = getattr(subject, "owner", None)
        reason = "compliance drift needs a person: fix or remove the resource"
        if owner:
            reason += f" through its owner {owner}"
        details: dict[str, Any] = {"reason": reason}
        if owner:
            details["owner"] = owner
        return self._block(REPORT, MANUAL, details=details)

    def _block(self, action: str, status: str, *, error: str | None = None,
               details: Mapping[str, Any] | None = None,
               write: Mapping[str, Any] | None = None) -> dict[str, Any]:
        block = {"action": action, "status": status, "timestamp": self.clock(),
                 "error": error, "details": dict(details or {}), "dry_run": self.dry_run}
        if write is not None:  # the exact request a dry run validated: a plan's write
            block["write"] = dict(write)
        return block

    # -- policies -----------------------------------------------------------------------

    def _policy(self, target: Target, event: DriftEvent,
                live: Mapping[str, Any] | None) -> dict[str, Any]:
        pol = target.policy
        if pol is None or pol.manifest is None:
            return self._block(REPORT, MANUAL, details={
                "reason": f"{event.resource} is required by name only "
                          "(admission.policies.requiredPolicies): kspec has no manifest to "
                          "create it from; install it from its source"})
        if event.drift == NOT_ENFORCING:
            return self._block(REPORT, MANUAL, details={
                "reason": f"{event.resource} matches the spec but blocks nothing: check that "
                          "Kyverno's admission controller runs, its webhook failurePolicy, and "
                          "namespace exclusions (kspec does not change those)"})
        expected = getattr(self, "_expected", None) or pol.manifest
        cmp = compare_policy(expected, live)
        if cmp is None:
            return self._block(UPDATE, SKIPPED, details={"reason": "matches the spec already"})
        if live is None:
            return self._create(event.resource, expected)
        return self._update(event.resource, expected, live, cmp)

    def _create(self, resource: str, expected: Mapping[str, Any]) -> dict[str, Any]:
        details: dict[str, Any] = {"object": summarize(expected)}
        try:
            self.cluster.create(copy.deepcopy(dict(expected)), dry_run=self.dry_run)
        except ApiError as e:
            if e.status != 409:
                return self._block(CREATE, FAILED, error=_why(e, POLICY_ROLE), details=details)
            fresh = self._read(expected)
            again = compare_policy(expected, fresh)
            if again is None:
                return self._block(CREATE, SKIPPED, details={
                    **details, "reason": "created by someone else since detection; it "
                                         "matches the spec, nothing written"})
            return self._block(CREATE, FAILED, details=details, error=(
                f"{resource} was created by someone else since detection and differs from "
                f"the spec ({_describe(again)}); not overwritten: run again to judge it"))
        if self.dry_run:
            return self._block(CREATE, DRY_RUN, details=details, write=planned_write(
                CREATE, resource, expected, body=expected))
        return self._verify(CREATE, resource, expected, details)

    def _update(self, resource: str, expected: Mapping[str, Any], live: Mapping[str, Any],
                cmp: PolicyComparison) -> dict[str, Any]:
        seen_rv = _rv(live)
        details: dict[str, Any] = {"resourceVersion": seen_rv, "changes": _diff(cmp)}
        for attempt in (1, 2):
            body = _restored(expected, live)
            try:
                self.cluster.replace(body, dry_run=self.dry_run)
                break
            except ApiError as e:
                if e.status not in (404, 409):  # 404: deleted since detection
                    return self._block(UPDATE, FAILED, error=_why(e, POLICY_ROLE),
                                       details=details)
            fresh = self._read(expected)
            again = compare_policy(expected, fresh)
            details["liveResourceVersion"] = _rv(fresh) if fresh is not None else None
            if fresh is not None and again is None:
                return self._block(UPDATE, SKIPPED, details={
                    **details, "reason": f"changed since detection (resourceVersion "
                                         f"{seen_rv} → {_rv(fresh)}) and now matches the spec; "
                                         "nothing written"})
            assert again is not None
            if attempt == 2 or fresh is None or _signature(again) != _signature(cmp):
                now = "it was deleted" if fresh is None else _describe(again)
                when = "again while retrying" if attempt == 2 else "since detection"
                return self._block(UPDATE, FAILED, details=details, error=(
                    f"{resource} changed {when} (resourceVersion {seen_rv} → "
                    f"{_rv(fresh) if fresh is not None else 'gone'}; now {now}): not "
                    "overwritten — run again to judge the new state"))
            log.info("%s changed since detection but drifts the same way; retrying once",
                     resource)
            live = fresh
            details["retried"] = True
        if self.dry_run:
            return self._block(UPDATE, DRY_RUN, details=details, write=planned_write(
                UPDATE, resource, expected, body=body, resource_version=_rv(live),
                changes=details["changes"]))
        return self._verify(UPDATE, resource, expected, details)

    def _verify(self, action: str, resource: str, expected: Mapping[str, Any],
                details: dict[str, Any]) -> dict[str, Any]:
        self._forget(expected)
        try:
            fresh = self._read(expected)
        except ApiError as e:
            return self._block(action, APPLIED, details=details,
                               error=f"written, but could not read it back to verify: {e}")
        again = compare_policy(expected, fresh)
        if again is None:
            if fresh is not None:
                details["resourceVersionAfter"] = _rv(fresh)
            return self._block(action, VERIFIED, details=details)
        return self._block(action, FAILED, details=details,
                           error=f"{resource} applied but still drifts: {_describe(again)}")

    def _read(self, obj: Mapping[str, Any]) -> dict[str, Any] | None:
        meta = obj.get("metadata") or {}
        return self.cluster.get(str(obj.get("apiVersion")), str(obj.get("kind")),
                                str(meta.get("name")), meta.get("namespace"))

    def _current_rv(self, obj: Mapping[str, Any]) -> str | None:
        try:
            return _rv(self._read(obj)) or None
        except ApiError:
            return None

    def _forget(self, obj: Mapping[str, Any]) -> None:
        if self.snapshot is not None:
            self.snapshot.forget(str(obj.get("apiVersion")), str(obj.get("kind")))

    # -- deletions ----------------------------------------------------------------------

    def _extra(self, event: DriftEvent, obj: Mapping[str, Any] | None) -> dict[str, Any]:
        if not self.options.prune or obj is None:
            return self._block(REPORT, SKIPPED, details={
                "reason": f"{event.resource} carries kspec's marker but the spec does not ask "
                          "for it; kept: pass --kspec-prune (DriftConfig remediation.prune) "
                          "to delete it"})
        meta = obj.get("metadata") or {}
        return self._delete(event.resource, obj, uid=str(meta.get("uid") or "") or None,
                            resource_version=_rv(obj) or None, role=POLICY_ROLE)

    def _resource(self, target: Target, event: DriftEvent,
                  violation: Violation | None) -> dict[str, Any]:
        setting = self.options.resources.get(target.id, "report")
        if violation is None or setting != "delete":
            details: dict[str, Any] = {
                "reason": f"DriftConfig remediation.resources sets {target.id} to report: "
                          "fix or remove the resource by hand"}
            if violation is not None and violation.owner:
                details["owner"] = violation.owner
                details["reason"] += f" (through its owner {violation.owner})"
            return self._block(REPORT, MANUAL, details=details)
        if violation.owner:
            return self._block(REPORT, MANUAL, details={
                "owner": violation.owner,
                "reason": f"{violation.resource} is owned by {violation.owner}: deleting it "
                          f"would only make its controller recreate it; fix {violation.owner}"})
        if violation.kind != "Pod" or not violation.name:
            return self._block(REPORT, MANUAL, details={
                "reason": f"{violation.resource}: kspec deletes only pods without an owner; "
                          "fix the pod template of this controller"})
        obj = {"apiVersion": violation.api_version or "v1", "kind": violation.kind,
               "metadata": {"name": violation.name, "namespace": violation.namespace,
                            "uid": violation.uid}}
        # uid only: a pod's resourceVersion moves with every status update, its uid does not.
        return self._delete(violation.resource, obj, uid=violation.uid or None,
                            resource_version=None, role=RESOURCE_ROLE)

    def _delete(self, resource: str, obj: Mapping[str, Any], *, uid: str | None,
                resource_version: str | None, role: str) -> dict[str, Any]:
        meta = obj.get("metadata") or {}
        api_version, kind = str(obj.get("apiVersion")), str(obj.get("kind"))
        name, namespace = str(meta.get("name")), meta.get("namespace")
        details: dict[str, Any] = {"uid": uid, "resourceVersion": resource_version}
        if not self.budget.take():
            return self._block(DELETE, SKIPPED, details=details, error=(
                f"{resource} not deleted: this run reached its cap of "
                f"{self.budget.limit} deletion(s); raise it with --kspec-max-deletions N "
                "(DriftConfig remediation.maxDeletions) after checking what would go"))
        try:
            self.cluster.delete(api_version, kind, name, namespace=namespace, uid=uid,
                                resource_version=resource_version, dry_run=self.dry_run)
        except ApiError as e:
            if e.status == 404:
                return self._block(DELETE, SKIPPED, details={
                    **details, "reason": f"{resource} is already gone"})
            if e.status == 409:
                return self._block(DELETE, FAILED, details=details, error=(
                    f"{resource} changed since detection ({e}): not deleted — run again "
                    "to judge the new state"))
            return self._block(DELETE, FAILED, error=_why(e, role), details=details)
        if self.dry_run:
            # A plan guards the deletion by the resourceVersion too: approved as it was seen.
            planned_rv = resource_version or self._current_rv(obj)
            return self._block(DELETE, DRY_RUN, details=details, write=planned_write(
                DELETE, resource, obj, uid=uid, resource_version=planned_rv))
        if self.snapshot is not None:
            self.snapshot.forget(api_version, kind)
        try:
            fresh = self.cluster.get(api_version, kind, name, namespace)
        except ApiError as e:
            return self._block(DELETE, APPLIED, details=details,
                               error=f"deleted, but could not read it back to verify: {e}")
        fresh_meta = (fresh or {}).get("metadata") or {}
        if fresh is None or (uid and fresh_meta.get("uid") != uid):
            return self._block(DELETE, VERIFIED, details=details)
        if fresh_meta.get("deletionTimestamp"):
            return self._block(DELETE, APPLIED, details={
                **details, "reason": "deletion in progress (finalizers or grace period)"})
        return self._block(DELETE, FAILED, details=details,
                           error=f"{resource} was deleted but is still there")


# -- report helpers ------------------------------------------------------------------------


def remediation_line(events: Iterable[Mapping[str, Any]]) -> str | None:
    """``remediation: 4 drifted, 2 fixed (verified), 1 failed, 1 need a person, ...``;
    None when nothing was remediated in this run."""
    c = remediation_counts(events)
    if not c["drifted"]:
        return None
    parts = [f"{c['drifted']} drifted", f"{c[VERIFIED]} fixed (verified)",
             f"{c[FAILED]} failed", f"{c[MANUAL]} need a person",
             f"{c[DRY_RUN]} dry-run planned"]
    if c[APPLIED]:
        parts.append(f"{c[APPLIED]} applied, not verified")
    if c[SKIPPED]:
        parts.append(f"{c[SKIPPED]} skipped")
    return "remediation: " + ", ".join(parts)


def remediation_properties(events: Sequence[DriftEvent]) -> list[tuple[str, str]]:
    """JUnit properties ``kspec.remediation.action`` / ``.status`` (comma-joined)."""
    blocks = [e.remediation for e in events if e.remediation]
    if not blocks:
        return []
    actions = sorted({str(b["action"]) for b in blocks})
    statuses = sorted({str(b["status"]) for b in blocks})
    return [("kspec.remediation.action", ",".join(actions)),
            ("kspec.remediation.status", ",".join(statuses))]


def remediation_text(events: Sequence[DriftEvent]) -> str:
    """One line per remediated event: what was done, its status, and why."""
    lines = []
    for event in events:
        block = event.remediation
        if not block:
            continue
        why = block.get("error") or (block.get("details") or {}).get("reason") or ""
        head = f"{event.resource}: {block['action']} → {block['status']}"
        lines.append(f"{head}: {why}" if why else head)
        if block["status"] == DRY_RUN:
            for change in (block.get("details") or {}).get("changes") or []:
                lines.append(f"    {change['path']}: {_short(change['from'])} → "
                             f"{_short(change['to'])}")
    return "\n".join(lines)


# -- helpers -------------------------------------------------------------------------------


def _planned_action(target: Target, event: DriftEvent) -> str:
    if target.type == POLICY and target.id != EXTRA:
        return CREATE if event.drift in ("missing", "deleted") else UPDATE
    return DELETE


def _subject_key(event: DriftEvent, subject: Any) -> str:
    uid = getattr(subject, "uid", "") or ""
    return f"uid:{uid}" if uid else f"resource:{event.resource}:{id(event)}"


def _rv(obj: Mapping[str, Any] | None) -> str:
    return str(((obj or {}).get("metadata") or {}).get("resourceVersion") or "")


def _restored(expected: Mapping[str, Any], live: Mapping[str, Any]) -> dict[str, Any]:
    """The expected policy as an update of ``live``: its resourceVersion as precondition,
    and the labels, annotations, finalizers and owners other tools set on it kept."""
    body = copy.deepcopy(dict(expected))
    meta = dict(body.get("metadata") or {})
    live_meta = live.get("metadata") or {}
    for key in ("labels", "annotations"):
        merged = {**(live_meta.get(key) or {}), **(meta.get(key) or {})}
        if merged:
            meta[key] = merged
    for key in ("finalizers", "ownerReferences"):
        if live_meta.get(key) and key not in meta:
            meta[key] = copy.deepcopy(live_meta[key])
    meta["resourceVersion"] = _rv(live)
    body["metadata"] = meta
    return body


def _diff(cmp: PolicyComparison) -> list[dict[str, Any]]:
    """The field diff an update restores: each path, its live value (from) and the spec's (to)."""
    return [{"path": c.path, "from": c.actual, "to": c.expected} for c in cmp.changes]


def _signature(cmp: PolicyComparison) -> frozenset[tuple[str, str, str]]:
    return frozenset((c.path, _json(c.expected), _json(c.actual)) for c in cmp.changes)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else _json(value)
    return text if len(text) <= _SHORT else text[: _SHORT - 3] + "..."


def _describe(cmp: PolicyComparison) -> str:
    if cmp.drift in ("missing", "deleted"):
        return "it is absent"
    parts = [f"{c.path}: expected {_short(c.expected)}, got {_short(c.actual)}"
             for c in cmp.changes[:3]]
    more = len(cmp.changes) - 3
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _why(e: ApiError, role: str) -> str:
    """One line for a failed write; a 403 names the verb, the resource and the ClusterRole."""
    if e.status == 403:
        return (f"forbidden: cannot {e.verb} {e.resource} (403): the credentials kspec runs "
                f"with lack '{e.verb}' on it; bind the {role} ClusterRole from {RBAC_FILE}")
    return str(e)
