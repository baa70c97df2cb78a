"""Apply an approved remediation plan: exactly its writes, each guarded, each verified.

Every write is sent as planned: a create is refused by the API server (409) when the object
appeared since; an update carries the planned ``resourceVersion`` (409 when the object
changed since); a delete carries the planned ``uid`` and ``resourceVersion`` preconditions.
A refused write is ``skipped`` and says what changed; the others are still applied, and each
counts as ``verified`` only once the object read back matches what was planned (or, for a
delete, is gone). Every attempt names the approver and the plan's digest, for the audit trail.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pytest_kspec.detect import compare_policy
from pytest_kspec.errors import RBAC_FILE, ApiError, KspecError
from pytest_kspec.remediate.plan import RemediationPlan
from pytest_kspec.report import utc_now

if TYPE_CHECKING:
    from pytest_kspec.cluster import Cluster

__all__ = ["PlanApplier"]

log = logging.getLogger("pytest_kspec.remediate.apply")



class PlanApplier:
    """Performs the writes of ``plan`` against ``cluster`` on behalf of ``approved_by``."""

    def __init__(self, cluster: Cluster, plan: RemediationPlan, *, approved_by: str,
                 clock: Callable[[], str] = utc_now) -> None:
        self.cluster = cluster
        self.plan = plan
        self.approved_by = approved_by
        self.clock = clock

    def apply(self) -> list[dict[str, Any]]:
        """One attempt per planned write, in plan order (see
        :class:`~pytest_kspec.remediate.RemediationRecorder`), plus ``approved_by``,
        ``plan_digest`` and ``plan_write`` (the write's number in the plan)."""
        attempts = []
        for write in self.plan.writes:
            try:
                status, error, details = self._one(write)
            except KspecError as e:
                status, error, details = "failed", str(e), {}
            attempt = {
                "node_id": write.get("node_id", ""), "resource": write.get("resource", ""),
                "action": write["action"], "status": status, "timestamp": self.clock(),
                "error": error, "dry_run": False,
                "details": {"plannedResourceVersion": write.get("resourceVersion"),
                            "changes": write.get("changes") or [], **details},
                "approved_by": self.approved_by, "plan_digest": self.plan.digest,
                "plan_write": write.get("id"),
            }
            log.info("plan write %s %s %s: %s", write.get("id"), write["action"],
                     attempt["resource"], status)
            attempts.append(attempt)
        return attempts

    def _one(self, write: Mapping[str, Any]) -> tuple[str, str | None, dict[str, Any]]:
        action = write["action"]
        target = write["target"]
        resource = str(write.get("resource") or target.get("name"))
        planned = write.get("resourceVersion")
        try:
            if action == "create":
                self.cluster.create(copy.deepcopy(write["body"]))
            elif action == "update":
                self.cluster.replace(copy.deepcopy(write["body"]))
            else:
                self.cluster.delete(target["apiVersion"], target["kind"], target["name"],
                                    namespace=target.get("namespace"), uid=write.get("uid"),
                                    resource_version=planned)
        except ApiError as e:
            if e.status in (404, 409):
                return "skipped", self._changed(write, resource, e), self._live_rv(target)
            if e.status == 403:
                return "failed", (f"forbidden: cannot {e.verb} {e.resource} (403): the "
                                  "credentials applying the plan lack it; bind the "
                                  f"kspec-remediate ClusterRole from {RBAC_FILE}"), {}
            return "failed", str(e), {}
        return self._verify(write, resource)

    def _changed(self, write: Mapping[str, Any], resource: str, e: ApiError) -> str:
        """Why a guarded write was refused: what the object is now versus the plan."""
        target = write["target"]
        try:
            live = self._get(target)
        except ApiError:
            live = None
        now = _rv(live) or "gone"
        if write["action"] == "create":
            what = (f"{resource} was created by someone else since the plan was made "
                    f"(now at resourceVersion {now})")
        elif live is None:
            what = f"{resource} was deleted since the plan was made"
        else:
            what = (f"{resource} changed since the plan was made (resourceVersion "
                    f"{write.get('resourceVersion')} → {now})")
        return f"{what}: not written — make a new plan to judge its new state ({e.status})"

    def _verify(self, write: Mapping[str, Any],
                resource: str) -> tuple[str, str | None, dict[str, Any]]:
        target = write["target"]
        try:
            fresh = self._get(target)
        except ApiError as e:
            return "applied", f"written, but could not read it back to verify: {e}", {}
        if write["action"] == "delete":
            fresh_uid = ((fresh or {}).get("metadata") or {}).get("uid")
            if fresh is None or (write.get("uid") and fresh_uid != write.get("uid")):
                return "verified", None, {}
            if ((fresh.get("metadata") or {}).get("deletionTimestamp")):
                return "applied", None, {"reason": "deletion in progress (finalizers or grace "
                                                   "period)"}
            return "failed", f"{resource} was deleted but is still there", {}
        details = {"resourceVersionAfter": _rv(fresh) or None}
        if fresh is None:
            return "failed", f"{resource} was written but is not there", details
        body = copy.deepcopy(dict(write["body"]))
        (body.get("metadata") or {}).pop("resourceVersion", None)
        if target.get("kind") == "ClusterPolicy":
            again = compare_policy(body, fresh)
            if again is not None:
                paths = ", ".join(c.path for c in again.changes[:3])
                return "failed", f"{resource} written but still differs from the plan ({paths})", \
                    details
        return "verified", None, details

    def _get(self, target: Mapping[str, Any]) -> dict[str, Any] | None:
        return self.cluster.get(str(target["apiVersion"]), str(target["kind"]),
                                str(target["name"]), target.get("namespace"))

    def _live_rv(self, target: Mapping[str, Any]) -> dict[str, Any]:
        try:
            return {"liveResourceVersion": _rv(self._get(target)) or None}
        except ApiError:
            return {}


def _rv(obj: Mapping[str, Any] | None) -> str:
    return str(((obj or {}).get("metadata") or {}).get("resourceVersion") or "")


def apply_line(attempts: list[dict[str, Any]], plan: RemediationPlan, approved_by: str) -> str:
    """``plan sha256:ab12… approved by alice: 3 write(s): 2 verified, 1 skipped``."""
    counts: dict[str, int] = {}
    for a in attempts:
        counts[a["status"]] = counts.get(a["status"], 0) + 1
    parts = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "nothing to do"
    return (f"plan {plan.digest[:19]}… approved by {approved_by}: {len(attempts)} write(s): "
            f"{parts}")
