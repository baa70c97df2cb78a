"""The controller's side of a kspec session: every item's record (from xdist workers too), the
reports written once at the end, the terminal summary and the HTML report's summary blocks."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from pytest_kspec.plugin.keys import get_fleet


class Reporter:
    """Controller-side: gathers every item's record (from workers too) and writes the report."""

    def __init__(self, config: pytest.Config, metrics_file: Path | None = None) -> None:
        self.config = config
        self.path: Path | None = None
        self.metrics_file = metrics_file
        self.metrics_line: str | None = None
        self.started = time.monotonic()

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.started = time.monotonic()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        from pytest_kspec.report import ItemRecord

        fleet = get_fleet(self.config)
        for data in getattr(report, "kspec_records", None) or ():
            fleet.run(str(data.get("cluster", ""))).report.add(ItemRecord.from_json(data))
        for attempt in getattr(report, "kspec_attempts", None) or ():
            fleet.run(str(getattr(report, "kspec_cluster", ""))).take_attempt(attempt)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if not self.config.option.collectonly:
            self.path = get_fleet(self.config).finish()
            if self.path is not None and self.metrics_file is not None:
                self.metrics_line = self._write_metrics(self.metrics_file)

    def _write_metrics(self, target: Path) -> str:
        """``--kspec-metrics-file``: the whole session's metrics (every worker's items), once,
        here on the controller; a failure is a summary line, never a failed session."""
        from pytest_kspec.metrics import Metrics

        fleet = get_fleet(self.config)
        metrics = Metrics(clusters=fleet.multi)  # several clusters: a cluster label
        for run in fleet.ran():
            metrics.record_run(run, time.monotonic() - self.started)
        try:
            metrics.write_textfile(target)
        except OSError as e:
            return f"kspec: metrics not written to {target}: {e.strerror or e}"
        return f"kspec: metrics written to {target}"

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.path is None:
            return
        terminalreporter.write_sep("-", "kspec")
        lines = get_fleet(self.config).summary()
        if self.metrics_line is not None:
            lines.append(self.metrics_line)
        for line in lines:
            terminalreporter.write_line(line, yellow=_warning(line))

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_summary(self, prefix: list[str], summary: list[str],
                                    postfix: list[str], session: pytest.Session) -> None:
        """The trend (direction, rule, inline SVG chart of pass %), the waivers and the
        remediation plan written this run atop the HTML report. A fleet run: the cluster by
        check matrix first, then the waivers (one DriftConfig for all) and each cluster's
        remediation plan."""
        from pytest_kspec.report import plan_html, summary_html, waivers_html

        fleet = get_fleet(self.config)
        report = fleet.first.report
        if not fleet.multi:
            blocks = [summary_html(report.trend), waivers_html(report.waivers),
                      plan_html(report.plan)]
        else:
            from pytest_kspec.report import fleet_matrix_html

            blocks = [fleet_matrix_html(fleet.to_json(),
                                        {n: r.report for n, r in fleet.runs.items()}),
                      waivers_html(report.waivers),
                      *(plan_html(r.report.plan) for r in fleet.ran())]
        prefix.extend(block for block in blocks if block)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        """Every report file is written by now: a fleet run splits the JUnit file into one
        testsuite per cluster; keep copies under <reports>/runs/<run-id>/."""
        fleet = get_fleet(config)
        xml = Path(config.option.xmlpath or "")
        if self.path is not None and fleet.multi and xml.name and xml.is_file():
            from pytest_kspec.report import split_junit_by_cluster

            split_junit_by_cluster(xml, {n: r.report for n, r in fleet.runs.items()})
        if self.path is not None and not fleet.multi:
            run = fleet.first
            files = [self.path, xml, Path(getattr(config.option, "htmlpath", None) or "")]
            run.history.archive(run.reports, [f for f in files if f.name])
        elif self.path is not None:
            fleet.archive([xml, Path(getattr(config.option, "htmlpath", None) or "")])
        for run in fleet:
            run.history.close()


def _warning(line: str) -> bool:
    text = line.split(": ", 1)[1] if ": " in line else line
    return text.startswith(("history not", "waiver ", "metrics not")) or "cannot be used" in text
