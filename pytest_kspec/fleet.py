"""Many clusters in one session: one :class:`~pytest_kspec.run.Run` per cluster, and the fleet
summary that sits above their reports. Shared by the plugin and ``kspec drift detect``.

**One cluster** (the classic run) is a fleet of one: its run keeps the spec's node ids
(``<spec>::<type>::<id>``) and writes ``<reports>/drift-report.json`` as it always did.
**More than one** makes each cluster's run its own: node ids ``<spec>::<cluster>::<type>::<id>``,
its report in ``<reports>/clusters/<cluster>/drift-report.json`` (with its ``runs/`` copies),
its history scope, audit chain, trend, alerts, remediation plan and deletion budget; and
``<reports>/fleet-report.json`` says per cluster how it stands, in one file.

**A cluster that cannot be used** (unreachable, credentials rejected, kubeconfig missing) is
checked once, up front and in parallel with the others (:meth:`Fleet.check`): its items then
error at once with that one line (naming the cluster and context), its report and history
record the errored run, and the other clusters run as if it were not there. Only a
one-cluster run stops the session instead (no report, no history entry that would read as a
0 % run).

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_kspec import __version__
from pytest_kspec.cluster import AccessOptions, ClusterAccess, ClusterRef
from pytest_kspec.errors import KspecError
from pytest_kspec.report import max_severity, utc_now, write_json_atomic
from pytest_kspec.run import Run

if TYPE_CHECKING:
    from pytest_kspec.detect import Plan
    from pytest_kspec.history import Location
    from pytest_kspec.remediate import RemediationOptions
    from pytest_kspec.spec import DriftConfig

FLEET_REPORT = "fleet-report.json"
CHECK_THREADS = 8
"""Clusters reached at once when a fleet run starts (each first request: /version)."""
CLUSTERS_DIR = "clusters"


@dataclass
class RunSettings:
    """What every cluster's run shares: the plan, where reports and history go, what to fix."""

    plan: Plan
    spec_node: str
    reports: Path
    config: DriftConfig
    remediation: RemediationOptions
    history: Location | None
    access: AccessOptions = field(default_factory=AccessOptions)
    source: str = "pytest"
    plan_path: Path | None = None
    probe: bool = False


class Fleet:
    """The runs of one session, one per cluster, in the order the clusters were given."""

    def __init__(self, refs: list[ClusterRef], settings: RunSettings) -> None:
        self.refs = refs
        self.settings = settings
        self.reports = settings.reports
        self.runs: dict[str, Run] = {}
        for ref in refs:
            self.runs[ref.name] = self._run(ref)
        self.path: Path | None = None  # the fleet report, once written

    @property
    def multi(self) -> bool:
        """More than one cluster: node ids, reports and summaries name the cluster."""
        return len(self.refs) > 1

    @property
    def first(self) -> Run:
        return next(iter(self.runs.values()))

    def __iter__(self) -> Iterator[Run]:
        return iter(self.runs.values())

    def run(self, cluster: str = "") -> Run:
        """The run of ``cluster``; the first cluster's when none is named (a one-cluster
        run: its only run, whatever the name)."""
        return self.runs[cluster] if self.multi and cluster else self.first

    def _run(self, ref: ClusterRef) -> Run:
        s = self.settings
        access = ClusterAccess(dataclasses.replace(s.access, kubeconfig=ref.kubeconfig,
                                                   context=ref.context,
                                                   kubeconfig_hint=ref.hint))
        if not self.multi:
            return Run(s.plan.spec, s.plan, access, spec_node=s.spec_node, reports=s.reports,
                       config=s.config, remediation=s.remediation, history=s.history,
                       source=s.source, plan_path=s.plan_path, probe=s.probe,
                       cluster_name=ref.name)
        plan_path = (s.plan_path.with_name(f"{s.plan_path.stem}.{ref.folder}"
                                           f"{s.plan_path.suffix}") if s.plan_path else None)
        return Run(s.plan.spec, s.plan, access, spec_node=f"{s.spec_node}::{ref.name}",
                   reports=s.reports / CLUSTERS_DIR / ref.folder, config=s.config,
                   remediation=s.remediation, history=s.history, source=s.source,
                   plan_path=plan_path, probe=s.probe, cluster_name=ref.name)

    def check(self) -> None:
        """Reach every cluster once before any check runs. One cluster: raise its
        :class:`~pytest_kspec.errors.ClusterError` (the run cannot go on). Several: mark the
        ones that fail unusable, so their items error at once with one line each."""
        if not self.multi:
            self.first.access.check()
            return

        def attempt(run: Run) -> str | None:
            try:
                run.access.check()
            except KspecError as e:
                return str(e)
            return None

        # In parallel: a cluster that does not answer waits through its retries, and
        # several of them in a row would add up before any check runs.
        with ThreadPoolExecutor(max_workers=min(CHECK_THREADS, len(self.runs)),
                                thread_name_prefix="kspec-check") as pool:
            errors = list(pool.map(attempt, self.runs.values()))
        for (name, run), error in zip(self.runs.items(), errors, strict=True):
            if error is not None:
                run.access.mark_unusable(f"{self.label(name)} cannot be used: {error}")

    def label(self, name: str) -> str:
        """``cluster prod-eu (context gke_prod_eu)``: how messages name a cluster."""
        ref = next(r for r in self.refs if r.name == name)
        shown = ref.context is not None and ref.context != name
        return f"cluster {name}" + (f" (context {ref.context})" if shown else "")

    def unusable(self) -> dict[str, str]:
        """Cluster name → why it cannot be used, for the clusters found so."""
        return {name: str(run.access.unusable) for name, run in self.runs.items()
                if run.access.unusable is not None}

    def mark_unusable(self, found: dict[str, str]) -> None:
        """Take over what :meth:`check` found elsewhere (an xdist worker, from its controller)."""
        for name, error in found.items():
            if name in self.runs:
                self.runs[name].access.mark_unusable(error)

    def ran(self) -> list[Run]:
        """The runs that have items (``-k``/``--deselect`` may leave a cluster out)."""
        return [run for run in self.runs.values() if run.report.items]

    def finish(self) -> Path | None:
        """Close every run that ran (its drift report, history, alerts); with several
        clusters, then the fleet report. Returns the fleet report, or the one drift report."""
        paths = [run.finish() for run in self.ran()]
        if not paths:
            return None
        if not self.multi:
            self.path = paths[0]
            return self.path
        self.path = self.reports / FLEET_REPORT
        write_json_atomic(self.path, self.to_json())
        return self.path

    def archive(self, session_files: list[Path]) -> None:
        """Keep copies of a fleet run's reports: each cluster's drift report under its own
        ``runs/<run-id>/``, and the fleet report with the session's ``session_files`` (JUnit,
        HTML) under ``<reports>/runs/<first cluster's run id>/``."""
        ran = self.ran()
        for run in ran:
            run.history.archive(run.reports, [run.reports / "drift-report.json"])
        if ran and self.path is not None:
            files = [self.path, *(f for f in session_files if f.name)]
            ran[0].history.archive(self.reports, files)

    def to_json(self) -> dict[str, Any]:
        """The fleet report: per cluster its standing and where its drift report is."""
        clusters = [self._cluster_json(name, run) for name, run in self.runs.items()
                    if run.report.items]
        totals: dict[str, int] = {}
        for entry in clusters:
            for key, value in entry["items"].items():
                totals[key] = totals.get(key, 0) + int(value)
        drifted = [c["name"] for c in clusters if c["drift"]["detected"]]
        spec = self.first.spec
        started = min((r.report.started for r in self.ran()), default=utc_now())
        finished = max((r.report.finished for r in self.ran()), default=started)
        return {
            "timestamp": finished,
            "spec": {"name": spec.name, "version": spec.version},
            "drift": {
                "detected": bool(drifted),
                "severity": max_severity(c["drift"]["severity"] for c in clusters
                                         if c["drift"]["detected"]),
                "clusters": drifted,
            },
            "clusters": clusters,
            "kspec": {"version": __version__, "spec_path": str(spec.path),
                      "spec_hash": spec.content_hash, "started": started,
                      "finished": finished, "items": totals,
                      "unreachable": [c["name"] for c in clusters
                                      if c["status"] == "unreachable"]},
        }

    def _cluster_json(self, name: str, run: Run) -> dict[str, Any]:
        report = run.report.to_json()
        cluster = dict(run.report.cluster)
        error = cluster.pop("error", None)
        kspec = report["kspec"]
        if run.access.unusable is not None:
            status = "unreachable"
        elif report["drift"]["detected"]:
            status = "drift"
        elif kspec["items"].get("error"):
            status = "error"
        else:
            status = "clean"
        try:
            where = (run.reports / "drift-report.json").relative_to(self.reports).as_posix()
        except ValueError:
            where = str(run.reports / "drift-report.json")
        return {"name": name, "context": cluster.get("context", ""),
                "server": cluster.get("server", ""), "status": status,
                **({"error": error} if error else {}),
                "drift": report["drift"], "items": kspec["items"],
                "pass_rate": kspec["pass_rate"], "run_id": run.history.run_id,
                "report": where,
                **({"trend": kspec["trend"]} if "trend" in kspec else {})}

    def summary(self) -> list[str]:
        """The closing lines: a one-cluster run's as ever; a fleet's per cluster, then the
        fleet line."""
        if self.path is None:
            return []
        ran = self.ran()
        if not self.multi:
            return ran[0].summary(self.path)
        lines: list[str] = []
        for name, run in self.runs.items():
            if not run.report.items:
                continue
            report_path = run.reports / "drift-report.json"
            if run.access.unusable is not None:
                lines.append(f"kspec [{name}]: {run.access.unusable}")
            for line in run.summary(report_path):
                lines.append(line.replace("kspec: ", f"kspec [{name}]: ", 1))
        data = self.to_json()
        down, drifted, items = (data["kspec"]["unreachable"], data["drift"]["clusters"],
                                data["kspec"]["items"])
        lines.append(
            f"kspec: fleet: {len(data['clusters'])} clusters, {len(drifted)} with drift"
            f"{_names(drifted)}, {len(down)} unreachable{_names(down)}; "
            f"{items.get('total', 0)} checks, {items.get('passed', 0)} passed, "
            f"{items.get('failed', 0)} drifted, {items.get('error', 0)} error(s)")
        lines.append(f"kspec: fleet report written to {self.path}")
        return lines


def _names(names: list[str]) -> str:
    return f" ({', '.join(names)})" if names else ""
