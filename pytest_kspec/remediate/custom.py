"""Remediation of users' own checks: ``manual-required``, unless the check registered a fix.

A check registers a fix per violation, ``kspec_violations.add(resource, message, fix=fn)``.
Under ``--kspec-remediate`` (never by DriftConfig ``remediation.auto`` alone) ``fn`` is
called once, in the test's teardown, with a :class:`FixClient`: the run's API client bound
to the run's rules. Its writes carry ``dryRun=All`` under ``--kspec-dry-run``; each
``delete`` takes one unit of the run's deletion budget (shared with kspec's own deletions
and across xdist workers) and refuses once it is spent. What happened is recorded in the
event's ``remediation`` block and the audit trail like any other attempt:

- the fix returned: ``applied`` (``dry-run`` under ``--kspec-dry-run``); kspec does not
  judge the result, the next run of the check does (the violation is then ``resolved``);
- the deletion budget was spent: ``skipped``, with the cap in the note;
- the fix raised: ``failed``, with the error's first line;
- no fix registered: ``report`` / ``manual-required``.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pytest_kspec.errors import KspecError
from pytest_kspec.remediate.options import APPLIED, DRY_RUN, FAILED, FIX, MANUAL, REPORT, SKIPPED

if TYPE_CHECKING:
    from pytest_kspec.cluster import Cluster, Snapshot
    from pytest_kspec.detect import DriftEvent
    from pytest_kspec.remediate.options import DeletionBudget
    from pytest_kspec.remediate.remediator import Remediator

log = logging.getLogger("pytest_kspec.remediate.custom")



class BudgetSpent(KspecError):
    """A custom fix asked to delete after the run's deletion cap was reached."""


class FixClient:
    """What a check's fix may do to the cluster; every write follows the run's rules.

    ``get``/``list`` read the live cluster (not the session snapshot); ``patch``,
    ``replace``, ``create`` and ``delete`` send ``dryRun=All`` when ``dry_run`` is True;
    ``delete`` first takes one deletion from the run's budget (``BudgetSpent`` when none
    is left). API failures raise :class:`pytest_kspec.errors.ApiError`.
    """

    def __init__(self, cluster: Cluster, budget: DeletionBudget, *, dry_run: bool,
                 snapshot: Snapshot | None = None) -> None:
        self._cluster = cluster
        self._budget = budget
        self._snapshot = snapshot
        self.dry_run = dry_run
        self.writes = 0

    def get(self, api_version: str, kind: str, name: str,
            namespace: str | None = None) -> dict[str, Any] | None:
        return self._cluster.get(api_version, kind, name, namespace)

    def list(self, api_version: str, kind: str,
             namespace: str | None = None) -> list[dict[str, Any]]:
        return self._cluster.list(api_version, kind, namespace)

    def patch(self, api_version: str, kind: str, name: str, patch: Any, *,
              namespace: str | None = None,
              content_type: str = "application/merge-patch+json") -> dict[str, Any]:
        out = self._cluster.patch(api_version, kind, name, patch, namespace=namespace,
                                  content_type=content_type, dry_run=self.dry_run)
        self._wrote(api_version, kind)
        return out

    def replace(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        out = self._cluster.replace(obj, dry_run=self.dry_run)
        self._wrote(str(obj.get("apiVersion")), str(obj.get("kind")))
        return out

    def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        out = self._cluster.create(obj, dry_run=self.dry_run)
        self._wrote(str(obj.get("apiVersion")), str(obj.get("kind")))
        return out

    def delete(self, api_version: str, kind: str, name: str, *, namespace: str | None = None,
               uid: str | None = None) -> dict[str, Any]:
        if not self._budget.take():
            where = f"{namespace}/{name}" if namespace else name
            raise BudgetSpent(f"{kind}/{where} not deleted: this run reached its cap of "
                              f"{self._budget.limit} deletion(s); raise it with "
                              "--kspec-max-deletions N after checking what would go")
        out = self._cluster.delete(api_version, kind, name, namespace=namespace, uid=uid,
                                   dry_run=self.dry_run)
        self._wrote(api_version, kind)
        return out

    def _wrote(self, api_version: str, kind: str) -> None:
        self.writes += 1
        if self._snapshot is not None and not self.dry_run:
            self._snapshot.forget(api_version, kind)


def custom_block(remediator: Remediator, event: DriftEvent, subject: Any) -> dict[str, Any]:
    """The remediation block of one custom event: run its fix, or say a person must act."""
    fix = getattr(subject, "fix", None)
    if fix is None:
        return remediator._block(REPORT, MANUAL, details={
            "reason": f"{event.check} registers no fix: fix {event.resource} by hand (or pass "
                      "fix=callable to kspec_violations.add)"})
    name = getattr(fix, "__qualname__", None) or type(fix).__name__
    client = FixClient(remediator.cluster, remediator.budget, dry_run=remediator.dry_run,
                       snapshot=remediator.snapshot)
    details: dict[str, Any] = {"fix": name}
    try:
        fix(client)
    except BudgetSpent as e:
        return remediator._block(FIX, SKIPPED, error=str(e), details=details)
    except Exception as e:  # a user's fix: whatever it raises is a failed attempt
        line = (str(e).strip().splitlines() or [""])[0]
        error = line if isinstance(e, KspecError) else f"{type(e).__name__}: {line}".rstrip(": ")
        return remediator._block(FIX, FAILED, error=f"fix {name} failed: {error}",
                                 details={**details, "writes": client.writes})
    details["writes"] = client.writes
    return remediator._block(FIX, DRY_RUN if remediator.dry_run else APPLIED,
                             details=details)
