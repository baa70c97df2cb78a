"""Waivers and alerts: a waived violation is never alerted; a waiver about to end is."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from e2e.conftest import Cluster, _pod

from pytest_kspec.sim import Simulator
from tests.alerts.receivers import HttpReceiver

PRIVILEGED = "workloads.containers.forbidden.privileged"


@pytest.fixture
def sim(cluster: Cluster) -> Iterator[Simulator]:
    cluster.add(_pod("debug-1", "shop", privileged=True))
    cluster.add(_pod("debug-2", "payments", privileged=True))
    with Simulator(objects=cluster.objects, kyverno=True, version="1.29.4") as s:
        yield s


def _config(cluster: Cluster, receiver: HttpReceiver, days: int) -> Path:
    expires = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=days)).isoformat()
    waiver: dict[str, Any] = {"name": "debug-pod", "check": PRIVILEGED,
                              "resources": {"namespace": "shop"}, "reason": "INC-4711",
                              "owner": "sre@example.com", "expires": expires}
    path = cluster.spec_path.parent / "drift.yaml"
    path.write_text(yaml.safe_dump({
        "apiVersion": "kspec.dev/v1", "kind": "DriftConfig", "metadata": {"name": "t"},
        "spec": {"waivers": [waiver], "alerts": {"enabled": True, "minInterval": "0s",
                                                  "channels": [{"name": "ops", "type": "webhook",
                                                                "url": f"{receiver.url}/hook",
                                                                "severity": "low"}]}}}))
    return path


def _detect(cluster: Cluster, sim: Simulator, cfg: Path) -> tuple[int, str]:
    cwd = cluster.spec_path.parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_kspec.cli", "drift", "detect", "--spec",
         "cluster-spec.yaml", "--kubeconfig", sim.kubeconfig_path, "--config", str(cfg),
         "--types", "compliance", "-q"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def test_waived_violations_are_not_alerted_and_expiring_waivers_are(
        cluster: Cluster, sim: Simulator, receiver: HttpReceiver) -> None:
    code, out = _detect(cluster, sim, _config(cluster, receiver, days=30))
    assert code == 1, out  # payments/debug-2 is not waived
    [body] = receiver.bodies()
    assert [e["resource"] for e in body["events"]] == ["Pod/payments/debug-2"]
    assert body["notices"] == []

    code, out = _detect(cluster, sim, _config(cluster, receiver, days=3))
    assert code == 1, out
    [_, second] = receiver.bodies()
    assert second["events"] == []  # nothing new: the waived pod is still not alerted
    [notice] = second["notices"]
    assert notice.startswith(f"waiver debug-pod (check {PRIVILEGED}, owner sre@example.com) "
                             "expires in 3 day(s)")
