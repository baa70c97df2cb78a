"""One detection run: spec, plan, cluster access and the report, shared by plugin and CLI.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_kspec.alerts import (
    Batch,
    Deliverer,
    Delivery,
    MemoryState,
    StoredState,
    events_from_items,
    make_alerter,
)
from pytest_kspec.cluster import ClusterAccess
from pytest_kspec.desired import coverage_json, coverage_lines
from pytest_kspec.detect import (
    CUSTOM,
    CustomCheck,
    CustomViolation,
    Detector,
    Outcome,
    Plan,
    Prober,
    Target,
    judge_custom,
    with_history,
)
from pytest_kspec.errors import KspecError
from pytest_kspec.history import (
    AlertStateStore,
    Baseline,
    HistoryRecorder,
    Location,
    RunHistory,
    RunPoint,
    Scope,
    parse_iso,
    run_input,
)
from pytest_kspec.remediate import (
    DeletionBudget,
    MemoryRecorder,
    PlanBuilder,
    RemediationOptions,
    RemediationRecorder,
    Remediator,
    remediation_line,
    write_plan,
)
from pytest_kspec.report import ItemRecord, RunReport, summary_line, utc_now, write_json_atomic
from pytest_kspec.spec import DriftConfig

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
                 remediation: RemediationOptions | None = None,
                 history: Location | None = None, source: str = "pytest",
                 plan_path: Path | None = None, alerter: Deliverer | None = None,
                 scope: Scope | None = None, probe: bool = False,
                 cluster_name: str = "") -> None:
        self.spec = spec
        # A fleet run's name for the cluster ("" in a one-cluster run: its context names it).
        self.cluster_name = cluster_name
        self.config = config or DriftConfig.default()
        # --kspec-probe / --probe / DriftConfig detection.efficacy: dry-run probe pods
        self.probe = probe or self.config.detection.efficacy
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
            spec_hash=spec.content_hash, cluster={}, started=utc_now(),
            coverage=coverage_json(spec.body))
        # History (None: off): the baseline detection compares with, the run appended at
        # the end, and remediation attempts written to the audit trail as they happen.
        self.source = source
        self.history = RunHistory(history, retention=self.config.storage.retention,
                                  keep_runs=self.config.storage.keep_runs)
        self._scope: Scope | None = scope
        if self.history.enabled:
            self.recorder = HistoryRecorder(self.history, self.scope)
        # --plan / --kspec-plan: the dry run's writes become a plan file for approval.
        self.plan_path = plan_path
        self.planner = PlanBuilder() if plan_path is not None else None
        # Alerts (None: off): a long-lived alerter (watch mode) or one for this run whose
        # memory of what was sent lives in the history, so a CronJob alerts each drift once.
        self._alerter = alerter
        self.deliveries: list[Delivery] = []
        self.notices: list[str] = []

    def scope(self) -> Scope:
        """Whose history this run extends: the spec's name on this cluster, identified by the
        kube-system namespace uid (a 403 leaves it empty: then the server URL). A named
        cluster (fleet run) that cannot be read keeps the identity the history knows it by,
        so its errored run lands in its own history, not in a new one."""
        if self._scope is None:
            described = self.access.describe()
            server = described.get("server", "")
            uid = ""
            try:
                namespace = self.access.snapshot().get("v1", "Namespace", "kube-system")
                uid = str(((namespace or {}).get("metadata") or {}).get("uid") or "")
            except KspecError:
                pass
            name = self.cluster_name or described.get("context", "")
            scope = Scope(self.spec.name, server, uid, name=name)
            if not uid and self.cluster_name and self.history.enabled:
                known = self.history.known_scope(self.spec.name, self.cluster_name)
                if known is not None and (not server or known.server == server):
                    scope = Scope(self.spec.name, known.server, known.uid, name=name)
            self._scope = scope
        return self._scope

    def identity(self) -> tuple[dict[str, str], dict[str, str]]:
        """The spec (name, version, sha256, path) and cluster (server, context, kube-system
        uid) of this run: what a remediation plan is bound to."""
        scope = self.scope()
        where = self.access.describe()
        spec = {"name": self.spec.name, "version": self.spec.version,
                "hash": self.spec.content_hash, "path": str(self.spec.path)}
        cluster = {"server": scope.server, "context": where.get("context", ""),
                   "uid": scope.uid}
        return spec, cluster

    def node_id(self, target: Target) -> str:
        return f"{self.spec_node}::{target.key}"

    def detector(self) -> Detector:
        if self._detector is None:
            snapshot = self.access.snapshot()
            prober = (Prober(self.access.cluster(), self.spec.body,
                             self.config.detection.probe_namespace) if self.probe else None)
            self._detector = Detector(self.plan, snapshot,
                                      baseline=self.history.baseline(self.scope()),
                                      now=self.report.started, waivers=self.config.waivers,
                                      prober=prober)
        return self._detector

    def evaluate(self, target: Target) -> Outcome:
        """Judge ``target``; a cluster that cannot be reached makes it an error, never a pass."""
        try:
            detector = self.detector()
        except KspecError as e:
            return Outcome(target, "error", text=str(e))
        return detector.evaluate(target)

    def judge_custom(self, check: CustomCheck, violations: Sequence[CustomViolation], *,
                     failure: str | None = None, error: str | None = None) -> Outcome:
        """The verdict on a user's own check (see :mod:`pytest_kspec.detect.custom`), compared
        with the previous run like a compliance check: new, persisting, resolved."""
        outcome = judge_custom(check, violations, failure=failure, error=error)
        if outcome.status == "error":
            return outcome
        baseline = self.history.baseline(self.scope()) if self.history.enabled else None
        return with_history(outcome, baseline or Baseline(), self.report.started)

    def record(self, outcome: Outcome, check: CustomCheck | None = None) -> ItemRecord:
        """The report record for ``outcome`` (events carry the node id); ``check`` gives a
        custom check's own node id and place."""
        target = outcome.target
        node_id = check.node_id if check else self.node_id(target)
        events = []
        for event in [*outcome.events, *outcome.waived, *outcome.resolved]:
            event.node_id = node_id
            events.append(event.to_report())
        message = outcome.text.splitlines()[0] if outcome.text else ""
        return ItemRecord(node_id=node_id, type=target.type, id=target.id,
                          status=outcome.status, severity=target.severity, message=message,
                          events=events, order=(len(self.order) + check.order if check
                                                else self.order.get(target.key, 0)))

    def remediates(self, outcome: Outcome) -> bool:
        """Whether ``outcome`` is drift this run is asked to remediate (users' own checks:
        only when asked explicitly, ``--kspec-remediate`` / ``--kspec-dry-run``)."""
        if outcome.target.type == CUSTOM:
            return outcome.failed and self.remediation.explicit
        return outcome.failed and self.remediation.applies_to(outcome.target.type)

    def remediate(self, outcome: Outcome, *, record: bool = True,
                  node_id: str = "") -> list[dict[str, Any]]:
        """Fix what ``outcome`` found (its events get their ``remediation`` blocks); returns
        the attempts, also handed to ``recorder`` unless ``record`` is False (the plugin
        records them on the xdist controller instead)."""
        if not self.remediates(outcome):
            return []
        node_id = node_id or self.node_id(outcome.target)
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
                self.take_attempt(attempt)
        return attempts

    def take_attempt(self, attempt: dict[str, Any]) -> None:
        """Hand one remediation attempt to the plan (when planning) and the recorder; the
        write a dry run attached goes to the plan only."""
        if self.planner is not None:
            key = "::".join(str(attempt.get("node_id", "")).split("::")[-2:])
            self.planner.add(attempt, self.order.get(key, 0))
        self.recorder.record({k: v for k, v in attempt.items() if k != "write"})

    def summary(self, report_path: Path) -> list[str]:
        """The closing lines both the plugin and ``kspec drift`` print after a run."""
        events = self.report.events()
        lines = [f"kspec: {summary_line(self.report.counts(), events)}"]
        fixes = remediation_line(events)
        if fixes:
            lines.append(f"kspec: {fixes}")
        lines += [f"kspec: {line}" for line in coverage_lines(self.spec.body)]
        lines.append(f"kspec: drift report written to {report_path}")
        if self.history.trend is not None:
            lines.append(f"kspec: {self.history.trend.line()}")
        if self.history.error:
            lines.append(f"kspec: history not updated: {self.history.error}")
        lines += [f"kspec: {line}" for line in self.waiver_warnings()]
        plan = self.report.plan
        if plan is not None:
            lines.append(f"kspec: remediation plan written to {plan['path']}: "
                         f"{len(plan['writes'])} write(s), {len(plan['manual'])} need a person,"
                         f" {len(plan['unplanned'])} could not be planned; digest "
                         f"{plan['digest']}")
            lines.append(f"kspec: review it with `kspec drift plan show {plan['path']}`, apply "
                         f"it with `kspec drift remediate --apply {plan['path']} --approved-by "
                         "NAME`")
        lines += [f"kspec: alert {d.line()}" for d in self.deliveries]
        return lines

    def alerter(self) -> Deliverer | None:
        """This run's alerter (None when the DriftConfig turns alerts off)."""
        if self._alerter is None:
            store = self.history.store() if self.history.enabled else None
            state = (StoredState(AlertStateStore(store, self.scope())) if store is not None
                     else MemoryState())
            self._alerter = make_alerter(self.config.alerts, state)
        return self._alerter

    def batch(self) -> Batch:
        """The open drift of this run as alerts see it."""
        events, judged = events_from_items(self.report.items)
        scope = self.scope()
        cluster = dict(self.report.cluster or self.access.describe())
        cluster.pop("error", None)
        return Batch(spec={"name": self.spec.name, "version": self.spec.version},
                     cluster=cluster,
                     run={"id": self.history.run_id, "source": self.source,
                          "time": self.report.finished or utc_now()},
                     scope=f"{scope.spec_name}\0{scope.cluster}", events=events,
                     judged=judged,
                     notices=(*self.notices, *self.waiver_warnings()))

    def alert(self) -> list[Delivery]:
        """Send what changed to the DriftConfig's channels; failures are kept, never raised."""
        alerter = self.alerter()
        if alerter is None:
            return []
        self.deliveries = alerter.deliver(self.batch())
        return self.deliveries

    def waiver_warnings(self) -> list[str]:
        """One line per DriftConfig waiver that expired or ends within 7 days."""
        now = parse_iso(self.report.started)
        return [line for w in self.config.waivers if (line := w.warning(now)) is not None]

    def waiver_listing(self) -> list[dict[str, Any]]:
        """Every DriftConfig waiver with its state and how many events it waived this run."""
        now = parse_iso(self.report.started)
        used: dict[str, int] = {}
        for event in self.report.events():
            ref = event.get("waiver")
            if isinstance(ref, dict):
                used[str(ref.get("id"))] = used.get(str(ref.get("id")), 0) + 1
        return [{**w.to_json(now), "waived_events": used.get(w.id, 0)}
                for w in self.config.waivers]

    def finish(self) -> Path:
        """Close the report and write ``drift-report.json`` atomically; returns its path."""
        self.report.finished = utc_now()
        if not self.report.cluster:
            where = dict(self.access.describe())
            if self.cluster_name:
                where["name"] = self.cluster_name
            if self.access.unusable is not None:
                where["error"] = str(self.access.unusable)
            self.report.cluster = where
        if self.config.waivers:
            self.report.waivers = self.waiver_listing()
        scope = self.scope() if self.history.enabled else None
        if scope is not None:
            counts = self.report.counts()
            point = RunPoint(self.history.run_id, parse_iso(self.report.finished),
                             counts["passed"], counts["failed"], counts["error"])
            trend = self.history.compute_trend(scope, point)
            self.report.trend = trend.to_json() if trend else None
        if self.planner is not None and self.plan_path is not None:
            spec, cluster = self.identity()
            plan = self.planner.build(created=self.report.started, spec=spec, cluster=cluster)
            write_plan(self.plan_path, plan)
            self.report.plan = plan.summary(str(self.plan_path))
        path = self.reports / REPORT_NAME
        write_json_atomic(path, self.report.to_json())
        if scope is not None:
            self.history.append(run_input(self.history.run_id, scope, self.report,
                                          source=self.source))
        self.alert()
        return path
