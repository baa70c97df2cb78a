"""One detection run: spec, plan, cluster access and the report, shared by plugin and CLI."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_kspec.access import ClusterAccess
from pytest_kspec.config import DriftConfig
from pytest_kspec.detect import Detector, Outcome, Plan, Target
from pytest_kspec.errors import KspecError
from pytest_kspec.remediate import (
    DeletionBudget,
    MemoryRecorder,
    RemediationOptions,
    RemediationRecorder,
    Remediator,
)
from pytest_kspec.report.json_report import write_json_atomic
from pytest_kspec.report.model import ItemRecord, RunReport, utc_now

if TYPE_CHECKING:
    from pytest_kspec.spec import ClusterSpec

log = logging.getLogger("pytest_kspec.run")

REPORT_NAME = "drift-report.json"


class Run:
    """Evaluates targets lazily against one snapshot and keeps the run's report.

    ``remediation`` says what the run may fix (default: nothing); ``recorder`` receives
    every remediation attempt (the audit trail; in memory unless the history store is
    plugged in); ``budget`` caps deletions for the whole run.
    """

    def __init__(self, spec: ClusterSpec, plan: Plan, access: ClusterAccess, *,
                 spec_node: str, reports: Path, config: DriftConfig | None = None,
                 remediation: RemediationOptions | None = None) -> None:
        self.spec = spec
        self.config = config or DriftConfig.default()
        self.remediation = remediation or RemediationOptions()
        self.recorder: RemediationRecorder = MemoryRecorder()
        self.budget = DeletionBudget(self.remediation.max_deletions)
        self.plan = plan
        self.access = access
        self.spec_node = spec_node
        self.reports = reports
        self._detector: Detector | None = None
        self.order = {t.key: i for i, t in enumerate(plan.targets)}
        self.report = RunReport(
            spec_name=spec.name, spec_version=spec.version, spec_path=str(spec.path),
            spec_hash=spec.content_hash, cluster={}, started=utc_now())

    def node_id(self, target: Target) -> str:
        return f"{self.spec_node}::{target.key}"

    def detector(self) -> Detector:
        if self._detector is None:
            self._detector = Detector(self.plan, self.access.snapshot())
        return self._detector

    def evaluate(self, target: Target) -> Outcome:
        """Judge ``target``; a cluster that cannot be reached makes it an error, never a pass."""
        try:
            detector = self.detector()
        except KspecError as e:
            return Outcome(target, "error", text=str(e))
        return detector.evaluate(target)

    def record(self, outcome: Outcome) -> ItemRecord:
        """The report record for ``outcome`` (events carry the node id)."""
        target = outcome.target
        node_id = self.node_id(target)
        events = []
        for event in outcome.events:
            event.node_id = node_id
            events.append(event.to_report())
        message = outcome.text.splitlines()[0] if outcome.text else ""
        return ItemRecord(node_id=node_id, type=target.type, id=target.id,
                          status=outcome.status, severity=target.severity, message=message,
                          events=events, order=self.order.get(target.key, 0))

    def remediates(self, outcome: Outcome) -> bool:
        """Whether ``outcome`` is drift this run is asked to remediate."""
        return outcome.failed and self.remediation.applies_to(outcome.target.type)

    def remediate(self, outcome: Outcome, *, record: bool = True) -> list[dict[str, Any]]:
        """Fix what ``outcome`` found (its events get their ``remediation`` blocks); returns
        the attempts, also handed to ``recorder`` unless ``record`` is False (the plugin
        records them on the xdist controller instead)."""
        if not self.remediates(outcome):
            return []
        node_id = self.node_id(outcome.target)
        try:
            cluster = self.access.cluster()
            snapshot = self.access.snapshot()
        except KspecError as e:
            remediator = None
            error = str(e)
        else:
            remediator = Remediator(cluster, self.remediation, budget=self.budget,
                                    snapshot=snapshot)
        if remediator is None:
            attempts = []
            for event in outcome.events:
                event.remediation = {"action": "report", "status": "failed",
                                     "timestamp": utc_now(), "error": error, "details": {},
                                     "dry_run": self.remediation.dry_run}
                attempts.append({"node_id": node_id, "resource": event.resource,
                                 **event.remediation})
        else:
            attempts = remediator.remediate(outcome, node_id)
        if record:
            for attempt in attempts:
                self.recorder.record(attempt)
        return attempts

    def finish(self) -> Path:
        """Close the report and write ``drift-report.json`` atomically; returns its path."""
        self.report.finished = utc_now()
        if not self.report.cluster:
            self.report.cluster = self.access.describe()
        path = self.reports / REPORT_NAME
        write_json_atomic(path, self.report.to_json())
        return path
