"""Prometheus metrics: the textfile of a one-shot run, a Pushgateway push and watch mode's
``/metrics``, each parsed with prometheus-client's own parser."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import pytest
from e2e.conftest import Cluster
from prometheus_client.parser import text_string_to_metric_families

from pytest_kspec.metrics import Metrics
from pytest_kspec.report import ItemRecord
from pytest_kspec.sim import Simulator
from tests.alerts.receivers import HttpReceiver
from tests.watch.conftest import WatchProcess

NAME = "require-run-as-non-root"
POLICY = ("kyverno.io/v1", "ClusterPolicy")


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
          **labels: str) -> float:
    return found[(name, frozenset(labels.items()))]


def test_record_items_and_deliveries() -> None:
    from pytest_kspec.alerts import Delivery

    m = Metrics()
    m.record_items([
        ItemRecord("s::policy::p", "policy", "p", "failed", "high",
                   events=[{"type": "policy", "severity": "high", "drift": "deleted"}]),
        ItemRecord("s::compliance::c", "compliance", "c", "passed", "medium"),
        ItemRecord("s::compliance::e", "compliance", "e", "error", "low"),
        ItemRecord("s::compliance::w", "compliance", "w", "waived", "low",
                   events=[{"type": "compliance", "severity": "low", "drift": "violation",
                            "waived": {"reason": "r"}}]),
    ], now=1234.0)
    m.record_cycle(0.2, latency=0.4)
    m.record_deliveries([Delivery("ops", "slack", "sent"), Delivery("ops", "slack", "failed")])
    m.record_remediations([{"status": "verified"}, {"status": "verified"}])
    m.reconnects_from(lambda: {"Pod": 2})
    from prometheus_client import generate_latest

    found = samples(generate_latest(m.registry).decode())
    assert value(found, "kspec_check_result", type="policy", id="p", severity="high",
                 result="failed") == 1
    assert value(found, "kspec_check_result", type="policy", id="p", severity="high",
                 result="passed") == 0
    assert value(found, "kspec_check_result", type="compliance", id="e", severity="low",
                 result="error") == 1
    assert value(found, "kspec_drift_open", type="policy", severity="high") == 1
    assert value(found, "kspec_check_result", type="compliance", id="w", severity="low",
                 result="waived") == 1
    assert ("kspec_drift_open", frozenset({("type", "compliance"), ("severity", "low")})
            ) not in found
    # a check error: the cycle is not "successful"
    assert ("kspec_last_successful_cycle_timestamp_seconds", frozenset()) in found
    assert value(found, "kspec_last_successful_cycle_timestamp_seconds") == 0
    assert value(found, "kspec_cycle_duration_seconds_count") == 1
    assert value(found, "kspec_drift_detection_latency_seconds_bucket", le="0.5") == 1
    assert value(found, "kspec_alert_deliveries_total", channel="ops", result="failed") == 1
    assert value(found, "kspec_remediations_total", status="verified") == 2
    assert value(found, "kspec_watch_reconnects_total", kind="Pod") == 2


@pytest.fixture
def sim(cluster: Cluster) -> Iterator[Simulator]:
    with Simulator(objects=cluster.objects, kyverno=True, version="1.29.4") as s:
        yield s


def _detect(cluster: Cluster, sim: Simulator, *args: str) -> subprocess.CompletedProcess[str]:
    cwd = cluster.spec_path.parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run(
        [sys.executable, "-m", "pytest_kspec.cli", "drift", "detect", "--spec",
         "cluster-spec.yaml", "--kubeconfig", sim.kubeconfig_path, "-q", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_one_shot_textfile_and_pushgateway(cluster: Cluster, sim: Simulator,
                                           receiver: HttpReceiver) -> None:
    sim.delete(*POLICY, NAME)
    textfile = cluster.spec_path.parent / "node-exporter" / "kspec.prom"
    proc = _detect(cluster, sim, "--metrics-file", str(textfile), "--pushgateway",
                   receiver.url)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"kspec: metrics written to {textfile}" in proc.stdout
    found = samples(textfile.read_text())
    assert value(found, "kspec_check_result", type="policy", id=NAME, severity="medium",
                 result="failed") == 1
    assert value(found, "kspec_drift_open", type="policy", severity="high") == 1
    assert value(found, "kspec_last_successful_cycle_timestamp_seconds") > 1.7e9
    assert value(found, "kspec_cycle_duration_seconds_count") == 1
    [push] = receiver.requests
    assert push.path == "/metrics/job/kspec/spec/shop-prod"
    pushed = samples(push.raw.decode())
    assert value(pushed, "kspec_drift_open", type="policy", severity="high") == 1


def _scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        return samples(resp.read().decode())


def test_watch_serves_metrics(watcher: list[WatchProcess], cluster: Cluster,
                              sim: Simulator) -> None:
    w = WatchProcess(cluster.spec_path.parent, sim.kubeconfig_path, "-q", "--metrics-port",
                     "0")
    watcher.append(w)
    port = int(w.wait_for(r"kspec: metrics at http://0.0.0.0:(\d+)/metrics")[1])
    w.wait_for(r"kspec: watching")
    found = _scrape(port)
    assert value(found, "kspec_check_result", type="policy", id=NAME, severity="medium",
                 result="passed") == 1
    mark = w.mark()
    sim.delete(*POLICY, NAME)
    w.wait_for(r"drift report written", after=mark)
    found = _scrape(port)
    assert value(found, "kspec_check_result", type="policy", id=NAME, severity="medium",
                 result="failed") == 1
    assert value(found, "kspec_drift_detection_latency_seconds_count") >= 1
    assert value(found, "kspec_cycle_duration_seconds_count") >= 3
    assert value(found, "kspec_last_successful_cycle_timestamp_seconds") > 1.7e9
    assert w.terminate() == 0


def test_metrics_port_is_checked() -> None:
    proc = subprocess.run([sys.executable, "-m", "pytest_kspec.cli", "drift", "detect",
                           "--spec", "x.yaml", "--metrics-port", "99999"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert "'99999' is not a port number (0-65535)" in proc.stderr
    assert re.search(r"--metrics-port", proc.stderr)
