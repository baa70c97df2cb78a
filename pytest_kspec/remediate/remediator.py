"""Remediation: fix what an item found, conservatively and exactly, and prove that it worked.

Auto-remediation that causes an outage is the top risk, so every write here is guarded: an
update carries the resourceVersion seen at detection (a concurrent edit gives 409 and is
never overwritten), deletions carry uid preconditions and are capped per run, dry-run sends
the very same requests with ``dryRun=All``, and a write only counts as ``verified`` once the
object, read back from the API server, matches the spec. Compliance and configuration drift
are never touched (``manual-required``); users' own checks run the fix they registered, if
any (:mod:`pytest_kspec.remediate.custom`). Every attempt goes to a :class:`RemediationRecorder`
(:mod:`pytest_kspec.remediate.options`).

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

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
from pytest_kspec.errors import RBAC_FILE, ApiError, KspecError
from pytest_kspec.remediate.custom import custom_block
from pytest_kspec.remediate.options import (
    APPLIED,
    CREATE,
    DELETE,
    DRY_RUN,
    FAILED,
    MANUAL,
    REPORT,
    SKIPPED,
    UPDATE,
    VERIFIED,
    DeletionBudget,
    RemediationOptions,
)
from pytest_kspec.remediate.render import short_value
from pytest_kspec.remediate.writes import planned_write
from pytest_kspec.report import utc_now

__all__ = ["Remediator"]

if TYPE_CHECKING:
    from pytest_kspec.cluster import Cluster, Snapshot
    from pytest_kspec.detect import Violation

log = logging.getLogger("pytest_kspec.remediate.remediator")

POLICY_ROLE = "kspec-remediate"
RESOURCE_ROLE = "kspec-remediate-resources"


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
        the attempts (see :class:`~pytest_kspec.remediate.options.RemediationRecorder`), one
        per resource acted on."""
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


def _describe(cmp: PolicyComparison) -> str:
    if cmp.drift in ("missing", "deleted"):
        return "it is absent"
    parts = [f"{c.path}: expected {short_value(c.expected)}, got {short_value(c.actual)}"
             for c in cmp.changes[:3]]
    more = len(cmp.changes) - 3
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _why(e: ApiError, role: str) -> str:
    """One line for a failed write; a 403 names the verb, the resource and the ClusterRole."""
    if e.status == 403:
        return (f"forbidden: cannot {e.verb} {e.resource} (403): the credentials kspec runs "
                f"with lack '{e.verb}' on it; bind the {role} ClusterRole from {RBAC_FILE}")
    return str(e)
