"""Waivers end to end: a waived violation is an xfail with its reason and owner, a violation
again once the waiver expired, and warned about a week before; listed in every report."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import yaml

from .conftest import Cluster, Result, _pod, run_pytest, write_state

PRIVILEGED = "workloads.containers.forbidden.privileged"
ITEM = f"compliance::{PRIVILEGED}"
REASON = "debug pod for the payment outage, INC-4711"
OWNER = "sre-oncall@example.com"


def _day(offset: int) -> str:
    return (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=offset)).isoformat()


def _config(path: Path, *waivers: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "kspec.dev/v1", "kind": "DriftConfig", "metadata": {"name": "w"},
        "spec": {"waivers": list(waivers)}}, sort_keys=False))
    return path


def _waiver(expires: str, **extra: Any) -> dict[str, Any]:
    return {"name": "debug-pod", "check": PRIVILEGED, "resources": {"namespace": "shop"},
            "reason": REASON, "owner": OWNER, "expires": expires, **extra}


def detect(cluster: Cluster, config: Path, *args: str) -> Result:
    state = write_state(cluster, cluster.spec_path.parent / "state.yaml")
    return run_pytest(cluster.spec_path.parent, "--kspec-spec", str(cluster.spec_path),
                      "--kspec-sim", str(state), "--kspec-config", str(config), *args)


def _case(result: Result, name: str) -> ET.Element:
    root = ET.parse(result.junit).getroot()
    (case,) = [c for c in root.iter("testcase") if c.get("name") == name]
    return case


def test_waived_violation_is_an_xfail_with_reason_and_owner_and_warned_before_expiry(
        cluster: Cluster, tmp_path: Path) -> None:
    cluster.add(_pod("debug-1", "shop", privileged=True))
    config = _config(tmp_path / "drift.yaml", _waiver(_day(3)))
    result = detect(cluster, config)
    assert result.returncode == 0, result.stdout
    assert "1 xfailed" in result.stdout
    assert result.item(ITEM)["status"] == "waived"
    (event,) = result.events(check=PRIVILEGED)
    assert event["resource"] == "Pod/shop/debug-1" and event["waived"] is True
    assert event["waiver"]["id"] == "debug-pod" and event["waiver"]["owner"] == OWNER
    assert event["waiver"]["reason"] == REASON
    assert event["waiver"]["source"].endswith("drift.yaml:7")
    assert result.report is not None
    assert result.report["drift"]["detected"] is False
    assert result.report["kspec"]["items"]["waived"] == 1
    (listed,) = result.report["kspec"]["waivers"]
    assert (listed["state"], listed["days_left"], listed["waived_events"]) == ("expiring", 3, 1)
    skipped = _case(result, PRIVILEGED).find("skipped")
    assert skipped is not None and skipped.get("type") == "pytest.xfail"
    message = str(skipped.get("message"))
    assert REASON in message and OWNER in message and "waived by debug-pod" in message
    assert (f"kspec: waiver debug-pod (check {PRIVILEGED}, owner {OWNER}) expires in 3 "
            f"day(s), {_day(3)}T00:00:00Z") in result.stdout
    html = (cluster.spec_path.parent / "reports" / "report.html").read_text()
    assert "kspec waivers" in html and REASON in html and "expiring (in 3 day(s))" in html

    # A month ahead: the same, without a warning.
    result = detect(cluster, _config(tmp_path / "drift.yaml", _waiver(_day(30))))
    assert result.returncode == 0 and result.item(ITEM)["status"] == "waived"
    assert "kspec: waiver" not in result.stdout


def test_after_expiry_the_violation_fails_again_and_says_the_waiver_expired(
        cluster: Cluster, tmp_path: Path) -> None:
    cluster.add(_pod("debug-1", "shop", privileged=True))
    result = detect(cluster, _config(tmp_path / "drift.yaml", _waiver(_day(-1))))
    assert result.returncode == 1, result.stdout
    assert result.item(ITEM)["status"] == "failed"
    (event,) = result.events(check=PRIVILEGED)
    assert "waived" not in event and "waiver" not in event
    assert result.report is not None and result.report["drift"]["detected"] is True
    assert f"(waiver debug-pod expired {_day(-1)}T00:00:00Z: no longer waives this" in \
        result.stdout
    assert f"kspec: waiver debug-pod (check {PRIVILEGED}, owner {OWNER}) expired" in \
        result.stdout
    assert result.report["kspec"]["waivers"][0]["state"] == "expired"
    failure = _case(result, PRIVILEGED).find("failure")
    assert failure is not None


def test_a_waiver_accepts_only_what_it_selects(cluster: Cluster, tmp_path: Path) -> None:
    cluster.add(_pod("debug-1", "shop", privileged=True))
    cluster.add(_pod("debug-2", "payments", privileged=True))
    by_label = {**_waiver(_day(20)), "resources": {"labels": {"app": "debug-1"}}}
    result = detect(cluster, _config(tmp_path / "drift.yaml", by_label))
    assert result.returncode == 1, result.stdout
    assert result.item(ITEM)["status"] == "failed"
    waived = {e["resource"]: bool(e.get("waived")) for e in result.events(check=PRIVILEGED)}
    assert waived == {"Pod/shop/debug-1": True, "Pod/payments/debug-2": False}
    assert "Pod/payments/debug-2" in result.stdout and "(1 more waived: debug-pod)" in \
        result.stdout
    assert result.report is not None
    assert result.report["drift"]["summary"]["compliance"] == 1


def test_waived_policy_drift_is_not_remediated(cluster: Cluster, tmp_path: Path) -> None:
    policy = cluster.policy("disallow-privileged-containers")
    for rule in policy["spec"]["rules"]:
        rule["validate"]["failureAction"] = "Audit"
    config = _config(tmp_path / "drift.yaml", {
        "policy": "disallow-privileged-containers", "reason": "rollout of a new CNI",
        "owner": "platform", "expires": _day(10)})
    result = detect(cluster, config, "--kspec-remediate")
    assert result.returncode == 0, result.stdout
    assert result.item("policy::disallow-privileged-containers")["status"] == "waived"
    (event,) = result.events(type="policy")
    assert event["remediation"] is None and event["waiver"]["id"] == "waivers[0]"


def test_kspec_drift_detect_reports_waived_and_exits_0(cluster: Cluster,
                                                       tmp_path: Path) -> None:
    cluster.add(_pod("debug-1", "shop", privileged=True))
    config = _config(tmp_path / "drift.yaml", _waiver(_day(3)))
    state = write_state(cluster, tmp_path / "state.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_kspec.cli", "drift", "detect", "--spec",
         str(cluster.spec_path), "--sim", str(state), "--config", str(config)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert f"WAIVED  cluster-spec.yaml::{ITEM}" in out
    assert f"waived by debug-pod until {_day(3)}T00:00:00Z: {REASON} (owner: {OWNER}" in out
    assert "1 waived" in out and "kspec: waiver debug-pod" in out
    junit = ET.parse(tmp_path / "reports" / "junit.xml").getroot()
    (case,) = [c for c in junit.iter("testcase") if c.get("name") == PRIVILEGED]
    skipped = case.find("skipped")
    assert skipped is not None and str(skipped.get("message")).startswith("waived: ")
