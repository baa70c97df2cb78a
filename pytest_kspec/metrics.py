"""Prometheus metrics: watch mode serves ``/metrics``; one-shot runs write a textfile or push.

Names (all prefixed ``kspec_``):

- ``check_result{type,id,severity,result}``: 1 for the check's current result
  (``passed``/``failed``/``error``/``waived``), 0 for the others (one series per result, as
  kube-state-metrics does for phases);
- ``drift_open{type,severity}``: open drift events (waived ones are not drift);
- ``last_successful_cycle_timestamp_seconds``: when a detection cycle last completed
  without check errors;
- ``cycle_duration_seconds`` (histogram): one detection cycle, evaluation to reports;
- ``drift_detection_latency_seconds`` (histogram): from a watch event's arrival to the end
  of the cycle that judged it;
- ``watch_reconnects_total{kind}``: watch streams re-established after a failure;
- ``alert_deliveries_total{channel,result}``: ``sent``/``failed``/``rate-limited``;
- ``remediations_total{status}``: remediation attempts by status.

Each :class:`Metrics` has its own registry (no global state), so tests and several runs in
one process never share series.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.exposition import push_to_gateway, start_http_server, write_to_textfile
from prometheus_client.registry import Collector

from pytest_kspec.report import active_drift

RESULTS = ("passed", "failed", "error", "waived")
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
CYCLE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class _Reconnects(Collector):
    def __init__(self, source: Callable[[], Mapping[str, int]]) -> None:
        self.source = source

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily("kspec_watch_reconnects",
                                     "Watch streams re-established after a failure",
                                     labels=["kind"])
        for kind, count in sorted(self.source().items()):
            family.add_metric([kind], count)
        yield family


class Metrics:
    """The metrics of one process (a watch) or one run (CronJob)."""

    def __init__(self, *, clusters: bool = False) -> None:
        """``clusters``: a run over several clusters; check results and open drift then carry
        a ``cluster`` label (its name), so one file holds every cluster's series."""
        self.registry = CollectorRegistry()
        r = self.registry
        extra = ["cluster"] if clusters else []
        self.clusters = clusters
        self._errors = 0
        self.check = Gauge("kspec_check_result", "Current result of each check (1 = this "
                           "result)", ["type", "id", "severity", "result", *extra], registry=r)
        self.drift = Gauge("kspec_drift_open", "Open drift events", ["type", "severity", *extra],
                           registry=r)
        self.last_ok = Gauge("kspec_last_successful_cycle_timestamp_seconds",
                             "Unix time a detection cycle last completed without errors",
                             registry=r)
        self.cycle = Histogram("kspec_cycle_duration_seconds", "Duration of a detection "
                               "cycle", buckets=CYCLE_BUCKETS, registry=r)
        self.latency = Histogram("kspec_drift_detection_latency_seconds", "From a watch "
                                 "event's arrival to the end of the cycle that judged it",
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.deliveries = Counter("kspec_alert_deliveries", "Alert deliveries by channel and "
                                  "result", ["channel", "result"], registry=r)
        self.remediations = Counter("kspec_remediations", "Remediation attempts by status",
                                    ["status"], registry=r)
        self._reconnects: Callable[[], Mapping[str, int]] = dict
        r.register(_Reconnects(lambda: self._reconnects()))
        self._server: Any = None

    # -- recording ---------------------------------------------------------------------------

    def record_items(self, items: Iterable[Any], *, now: float | None = None,
                     cluster: str | None = None) -> None:
        """Check results and open drift from report records (``ItemRecord``). With
        ``clusters``, each call adds ``cluster``'s series to the others'; without, a call
        replaces what was recorded before."""
        extra = [cluster or ""] if self.clusters else []
        if not self.clusters:
            self.check.clear()
            self.drift.clear()
            self._errors = 0
        for record in items:
            for result in RESULTS:
                self.check.labels(record.type, record.id, record.severity or "info",
                                  result, *extra).set(1 if record.status == result else 0)
            self._errors += record.status == "error"
            if record.status != "failed":
                continue
            for event in active_drift(record.events):
                self.drift.labels(str(event.get("type", record.type)),
                                  str(event.get("severity", "info")), *extra).inc()
        if not self._errors:
            self.last_ok.set(time.time() if now is None else now)

    def record_cycle(self, seconds: float, latency: float | None = None) -> None:
        self.cycle.observe(seconds)
        if latency is not None:
            self.latency.observe(latency)

    def record_deliveries(self, deliveries: Iterable[Any]) -> None:
        for delivery in deliveries:
            self.deliveries.labels(delivery.channel, delivery.result).inc()

    def record_remediations(self, attempts: Iterable[Mapping[str, Any]]) -> None:
        for attempt in attempts:
            self.remediations.labels(str(attempt.get("status", "unknown"))).inc()

    def record_run(self, run: Any, seconds: float) -> None:
        """Everything a one-shot run (``kspec drift detect``, the pytest plugin) measured:
        its checks, how long it took, its alert deliveries and remediation attempts."""
        self.record_items(run.report.items, cluster=getattr(run, "cluster_name", None))
        self.record_cycle(seconds)
        self.record_deliveries(run.deliveries)
        self.record_remediations(getattr(run.recorder, "attempts", []))

    def reconnects_from(self, source: Callable[[], Mapping[str, int]]) -> None:
        """Where ``watch_reconnects_total`` is read from at scrape time (kind → count)."""
        self._reconnects = source

    # -- output ------------------------------------------------------------------------------

    def serve(self, port: int, addr: str = "0.0.0.0") -> int:
        """Serve ``/metrics`` on ``port`` (0: any free port); returns the port."""
        server, _thread = start_http_server(port, addr=addr, registry=self.registry)
        self._server = server
        return int(server.server_address[1])

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def write_textfile(self, path: Path) -> None:
        """node-exporter textfile collector format, written atomically."""
        path.parent.mkdir(parents=True, exist_ok=True)
        write_to_textfile(str(path), self.registry)

    def push(self, gateway: str, job: str = "kspec", grouping: Mapping[str, str] | None = None,
             timeout: float = 10.0) -> None:
        push_to_gateway(gateway, job=job, registry=self.registry,
                        grouping_key=dict(grouping or {}), timeout=timeout)
