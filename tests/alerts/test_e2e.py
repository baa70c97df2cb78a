"""Alerts as users get them: ``kspec drift detect`` runs (a CronJob's view: one process per
run) and a pytest session with xdist, each against a simulator, into a loopback receiver."""

from __future__ import annotations

import copy
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from e2e.conftest import Cluster, run_pytest

from pytest_kspec.desired import generate_policies
from pytest_kspec.sim import Simulator
from pytest_kspec.spec import load_spec
from tests.alerts.receivers import HttpReceiver

NAME = "require-run-as-non-root"
POLICY = ("kyverno.io/v1", "ClusterPolicy")


@pytest.fixture
def sim(cluster: Cluster) -> Iterator[Simulator]:
    with Simulator(objects=cluster.objects, kyverno=True, version="1.29.4") as s:
        yield s


def config(cluster: Cluster, receiver: HttpReceiver, **channel: Any) -> Path:
    path = cluster.spec_path.parent / "drift.yaml"
    path.write_text(yaml.safe_dump({
        "apiVersion": "kspec.dev/v1", "kind": "DriftConfig", "metadata": {"name": "t"},
        "spec": {"alerts": {"enabled": True, "minInterval": "0s", "channels": [
            {"name": "ops", "type": "webhook", "url": f"{receiver.url}/hook",
             "severity": "low", **channel}]}}}))
    return path


def detect(cluster: Cluster, sim: Simulator, cfg: Path) -> tuple[int, str]:
    cwd = cluster.spec_path.parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["KUBECONFIG"] = str(cwd / "no-such-kubeconfig")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_kspec.cli", "drift", "detect", "--spec",
         "cluster-spec.yaml", "--kubeconfig", sim.kubeconfig_path, "--config", str(cfg),
         "--types", "policy", "-q"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def expected(cluster: Cluster) -> dict[str, Any]:
    for policy in generate_policies(load_spec(cluster.spec_path)):
        if policy["metadata"]["name"] == NAME:
            return copy.deepcopy(policy)
    raise KeyError(NAME)


def test_cronjob_runs_alert_once_then_resolve(cluster: Cluster, sim: Simulator,
                                              receiver: HttpReceiver) -> None:
    cfg = config(cluster, receiver)
    code, out = detect(cluster, sim, cfg)
    assert code == 0 and receiver.requests == [], out  # no drift, nothing sent
    sim.delete(*POLICY, NAME)
    code, out = detect(cluster, sim, cfg)
    assert code == 1, out
    assert "kspec: alert ops (webhook) sent: 1 new" in out
    [body] = receiver.bodies()
    [event] = body["events"]
    assert (event["resource"], event["drift"], event["status"]) == (
        f"ClusterPolicy/{NAME}", "deleted", "new")
    assert body["spec"]["name"] == "shop-prod" and body["run"]["source"] == "cli"
    code, out = detect(cluster, sim, cfg)  # a new process: the history remembers it was sent
    assert code == 1 and len(receiver.requests) == 1, out
    assert "kspec: alert" not in out
    sim.create(expected(cluster))
    code, out = detect(cluster, sim, cfg)
    assert code == 0, out
    assert [e["status"] for e in receiver.bodies()[1]["events"]] == ["resolved"]
    db = sqlite3.connect(cluster.spec_path.parent / "reports" / "history.db")
    rows = db.execute("SELECT result, new, resolved FROM alert_deliveries ORDER BY id").fetchall()
    assert rows == [("sent", 1, 0), ("sent", 0, 1)]


def test_failed_delivery_is_recorded_and_never_fails_detection(
        cluster: Cluster, sim: Simulator, receiver: HttpReceiver) -> None:
    receiver.statuses = [502] * 10
    cfg = config(cluster, receiver, retries=1)
    sim.delete(*POLICY, NAME)
    code, out = detect(cluster, sim, cfg)
    assert code == 1, out  # drift, not "could not complete"
    assert "kspec: alert ops (webhook) failed: 1 new after 2 attempt(s): http://127.0.0.1:" in out
    assert "/hook" not in out
    report = json.loads((cluster.spec_path.parent / "reports" / "drift-report.json").read_text())
    assert report["drift"]["detected"] is True
    db = sqlite3.connect(cluster.spec_path.parent / "reports" / "history.db")
    [(result, attempts)] = db.execute("SELECT result, attempts FROM alert_deliveries").fetchall()
    assert (result, attempts) == ("failed", 2)
    records = [json.loads(r[0]) for r in db.execute("SELECT record FROM audit")]
    assert [r["channel"] for r in records if r["kind"] == "alert"] == ["ops"]
    verify = subprocess.run([sys.executable, "-m", "pytest_kspec.cli", "drift", "history",
                             "--verify"], cwd=cluster.spec_path.parent, capture_output=True,
                            text=True, timeout=60, check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    # the next run tries again (the drift was never delivered)
    receiver.statuses = []
    code, out = detect(cluster, sim, cfg)
    assert "kspec: alert ops (webhook) sent: 1 new" in out


def test_pytest_session_alerts_once_from_the_xdist_controller(
        cluster: Cluster, sim: Simulator, receiver: HttpReceiver) -> None:
    cfg = config(cluster, receiver)
    sim.delete(*POLICY, NAME)
    result = run_pytest(cluster.spec_path.parent, "--kspec-spec", str(cluster.spec_path),
                        "--kspec-kubeconfig", sim.kubeconfig_path, "--kspec-config", str(cfg),
                        "--kspec-types", "policy", "-n", "2")
    assert result.returncode == 1, result.stdout
    [body] = receiver.bodies()
    assert body["run"]["source"] == "pytest"
    assert [e["resource"] for e in body["events"]] == [f"ClusterPolicy/{NAME}"]
    assert "kspec: alert ops (webhook) sent: 1 new" in result.stdout
