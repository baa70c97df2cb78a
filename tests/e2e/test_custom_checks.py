"""Users' own checks end to end: ``pytest checks/ --kspec-spec ... --kspec-sim ...`` in a
subprocess, as a team's CronJob runs it; then the JSON, JUnit, HTML reports and the history."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_kspec.sim import Simulator
from tests.alerts.receivers import http_receiver
from tests.e2e.conftest import Cluster, Result, run_pytest, write_state

KUBE_SYSTEM = {"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": "kube-system", "uid": "0b5e1c2d-0000-4000-8000-0000000c0571"}}

CHECKS = '''
import pytest


@pytest.mark.kspec(severity="high", controls=["AV-1"], id="deployments.replicas")
def test_deployments_run_two_replicas(kspec_cluster, kspec_violations):
    """Deployments run at least two replicas."""
    for d in kspec_cluster.list("apps/v1", "Deployment"):
        meta = d["metadata"]
        if d["spec"].get("replicas", 1) < 2:
            name = meta["name"]
            kspec_violations.add(f"Deployment/{meta['namespace']}/{name}",
                                 f"runs {d['spec'].get('replicas', 1)} replica(s), want >= 2",
                                 fix=scale(meta["namespace"], name))


def scale(namespace, name):
    def fix(client):
        client.patch("apps/v1", "Deployment", name, {"spec": {"replicas": 2}},
                     namespace=namespace)
    return fix


def test_namespaces_name_an_owner(kspec_cluster):
    unowned = [n["metadata"]["name"] for n in kspec_cluster.list("v1", "Namespace")
               if n["metadata"]["name"] in ("shop", "payments")
               and "owner" not in (n["metadata"].get("labels") or {})]
    assert not unowned, "namespaces without an owner label: " + ", ".join(unowned)
'''

ERRORING = '''
def test_reads_what_it_may_not(kspec_cluster):
    kspec_cluster.list("v1", "Secret")
'''


def _deployment(name: str, namespace: str, replicas: int) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {
                         "containers": [{"name": "app", "image": "registry.example.com/" + name
                                         + "@sha256:" + "c" * 64,
                                         "securityContext": {"runAsNonRoot": True}}]}}}}


@pytest.fixture
def suite(cluster: Cluster) -> Cluster:
    """The e2e cluster plus two single-replica Deployments, and a checks/ folder beside it."""
    cluster.add(KUBE_SYSTEM)
    cluster.add(_deployment("web", "shop", 1))
    cluster.add(_deployment("api", "payments", 1))
    cluster.add(_deployment("ledger", "payments", 3))
    checks = cluster.spec_path.parent / "checks"
    checks.mkdir()
    (checks / "test_team.py").write_text(CHECKS)
    return cluster


def run_checks(cluster: Cluster, name: str, *args: str) -> Result:
    state = write_state(cluster, cluster.spec_path.parent / name)
    return run_pytest(cluster.spec_path.parent, "checks/", "--kspec-spec", "cluster-spec.yaml",
                      "--kspec-sim", str(state), *args)


def _custom(result: Result) -> dict[tuple[str, str], dict[str, Any]]:
    return {(e["check"], e["resource"]): e for e in result.events(type="custom")}


def _props(result: Result, name: str) -> dict[str, str]:
    root = ET.parse(result.junit).getroot()
    (case,) = [c for c in root.iter("testcase") if c.get("name") == name]
    return {str(p.get("name")): str(p.get("value")) for p in case.iter("property")}


def _owned(cluster: Cluster, *names: str) -> None:
    for obj in cluster.objects:
        if obj["kind"] == "Namespace" and obj["metadata"]["name"] in names:
            obj["metadata"]["labels"]["owner"] = "team-a"


def test_custom_checks_in_every_report_and_the_history(suite: Cluster) -> None:
    first = run_checks(suite, "state1.yaml")
    assert first.returncode == 1, first.stdout
    assert first.report is not None
    assert set(_custom(first)) == {
        ("deployments.replicas", "Deployment/shop/web"),
        ("deployments.replicas", "Deployment/payments/api"),
        ("test_namespaces_name_an_owner", "Check/test_namespaces_name_an_owner")}
    web = _custom(first)[("deployments.replicas", "Deployment/shop/web")]
    assert (web["severity"], web["drift"], web["controls"], web["message"]) == (
        "high", "violation", ["AV-1"], "runs 1 replica(s), want >= 2")
    plain = _custom(first)[("test_namespaces_name_an_owner",
                            "Check/test_namespaces_name_an_owner")]
    assert plain["severity"] == "medium"
    assert plain["message"] == "namespaces without an owner label: payments, shop"
    assert first.report["drift"]["summary"]["custom"] == 3
    assert "custom" in first.report["drift"]["types"]
    assert first.item("checks/test_team.py::test_deployments_run_two_replicas")["status"] == (
        "failed")
    assert "kspec: 12 checks (2 custom), 10 passed, 2 drifted, 0 error(s)" in first.stdout
    # the readable list, as kspec's own items print it
    assert ("2 resource(s) break deployments.replicas: Deployments run at least two replicas.\n"
            "  Deployment/payments/api: runs 1 replica(s), want >= 2\n"
            "  Deployment/shop/web: runs 1 replica(s), want >= 2\n") in first.stdout

    props = _props(first, "test_deployments_run_two_replicas")
    assert props["kspec.type"] == "custom" and props["kspec.id"] == "deployments.replicas"
    assert props["kspec.severity"] == "high" and props["kspec.controls"] == "AV-1"
    assert props["kspec.resources"] == "Deployment/payments/api,Deployment/shop/web"
    assert _props(first, "test_namespaces_name_an_owner")["kspec.drift"] == "violation"

    html = (suite.spec_path.parent / "reports" / "report.html").read_text()
    assert "Deployment/payments/api: violation (high)" in html
    assert "Check/test_namespaces_name_an_owner" in html

    # run 2: web scaled up, namespaces owned -> resolved; api persists with its first_seen
    for obj in suite.objects:
        if obj["kind"] == "Deployment" and obj["metadata"]["name"] == "web":
            obj["spec"]["replicas"] = 2
    _owned(suite, "shop", "payments")
    second = run_checks(suite, "state2.yaml")
    drift = {k: e["drift"] for k, e in _custom(second).items()}
    assert drift == {
        ("deployments.replicas", "Deployment/shop/web"): "resolved",
        ("deployments.replicas", "Deployment/payments/api"): "violation",
        ("test_namespaces_name_an_owner", "Check/test_namespaces_name_an_owner"): "resolved"}
    api = ("deployments.replicas", "Deployment/payments/api")
    assert _custom(second)[api]["first_seen"] == _custom(first)[api]["first_seen"]
    assert second.report is not None and second.report["drift"]["summary"]["custom"] == 1
    # the trend's pass % counts the custom checks: 10 of 12, then 11 of 12
    assert second.report["kspec"]["trend"]["pass_rates"] == [83.3, 91.7]

    # run 3: a new Deployment breaks the rule: new-violation
    suite.add(_deployment("cart", "shop", 1))
    third = run_checks(suite, "state3.yaml")
    assert {k[1]: e["drift"] for k, e in _custom(third).items()} == {
        "Deployment/payments/api": "violation", "Deployment/shop/cart": "new-violation"}

    history = subprocess.run(
        [sys.executable, "-m", "pytest_kspec.cli", "drift", "history", "--reports",
         str(suite.spec_path.parent / "reports"), "--type", "custom", "--format", "json"],
        capture_output=True, text=True, timeout=60, check=True)
    rows = {e["resource"]: e for e in json.loads(history.stdout)["events"]}
    assert set(rows) == {"Deployment/shop/web", "Deployment/payments/api", "Deployment/shop/cart",
                         "Check/test_namespaces_name_an_owner"}
    assert rows["Deployment/shop/web"]["active"] is False
    assert rows["Deployment/payments/api"]["active"] is True
    assert rows["Deployment/payments/api"]["item"] == "custom::deployments.replicas"
    with sqlite3.connect(suite.spec_path.parent / "reports" / "history.db") as db:
        records = [json.loads(r[0]) for r in db.execute(
            "SELECT record FROM audit WHERE record LIKE '%\"kind\":\"run\"%' ORDER BY seq")]
    appeared = [a[:2] for a in records[0]["appeared"] if a[0].startswith("custom::")]
    assert sorted(appeared) == [
        ["custom::deployments.replicas", "Deployment/payments/api"],
        ["custom::deployments.replicas", "Deployment/shop/web"],
        ["custom::test_namespaces_name_an_owner", "Check/test_namespaces_name_an_owner"]]
    assert len(records[1]["resolved"]) >= 2


def test_an_erroring_custom_check_is_an_error(suite: Cluster) -> None:
    """A check whose read is forbidden (403) is an error in every report, never a pass: run
    with kspec's own read-only ClusterRole (manifests/base/rbac.yaml), which never reads Secrets."""
    (suite.spec_path.parent / "checks" / "test_secrets.py").write_text(ERRORING)
    rbac = Path(__file__).resolve().parents[2] / "manifests" / "base" / "rbac.yaml"
    for obj in yaml.safe_load_all(rbac.read_text()):
        if obj:
            suite.add(obj)
    suite.add({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": "auditor-detect"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                           "name": "kspec-detect"},
               "subjects": [{"kind": "User", "name": "auditor",
                             "apiGroup": "rbac.authorization.k8s.io"}]})
    with Simulator(objects=suite.objects, kyverno=True, rbac=True, version="1.29.4",
                   users={"auditor-token": ("auditor", ())}) as sim:
        result = run_pytest(suite.spec_path.parent, "checks/", "--kspec-spec",
                            "cluster-spec.yaml", "--kspec-kubeconfig",
                            sim.kubeconfig_for("auditor-token"))
    record = result.item("checks/test_secrets.py::test_reads_what_it_may_not")
    assert record["status"] == "error"
    assert "could not evaluate test_reads_what_it_may_not:" in record["message"]
    assert "403" in record["message"] and "secrets" in record["message"]
    assert result.report is not None
    errors = result.report["kspec"]["errors"]
    assert len(errors) == 1, errors  # the only error of the run
    (error,) = errors
    assert error["node_id"].endswith("checks/test_secrets.py::test_reads_what_it_may_not")
    assert not [e for e in result.events(type="custom") if e["check"] ==
                "test_reads_what_it_may_not"]
    assert result.report["kspec"]["items"]["error"] == 1
    assert "test_secrets.py:3: could not evaluate test_reads_what_it_may_not" in result.stdout
    root = ET.parse(result.junit).getroot()
    (case,) = [c for c in root.iter("testcase") if c.get("name") == "test_reads_what_it_may_not"]
    assert case.find("failure") is not None or case.find("error") is not None
    # the other checks still ran on what they may read
    assert result.item("checks/test_team.py::test_deployments_run_two_replicas")[
        "status"] == "failed"


def _comparable(report: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in report.items() if k != "timestamp"}
    out["kspec"] = {k: v for k, v in report["kspec"].items()
                    if k not in ("started", "finished", "cluster")}
    out["events"] = [{k: v for k, v in e.items() if k not in ("first_seen", "remediation")}
                     | {"remediation": _no_time(e.get("remediation"))} for e in report["events"]]
    return out


def _no_time(block: Any) -> Any:
    return {k: v for k, v in block.items() if k != "timestamp"} if block else block


@pytest.mark.parametrize("remediate", [False, True], ids=["detect", "remediate"])
def test_xdist_report_equals_serial_report(suite: Cluster, remediate: bool) -> None:
    (suite.spec_path.parent / "checks" / "test_more.py").write_text(
        "def test_a():\n    pass\n\ndef test_b():\n    assert 1 == 2, 'one is not two'\n")
    extra = ("--kspec-dry-run",) if remediate else ()
    serial = run_checks(suite, "state.yaml", "-n", "0", "--kspec-no-history", *extra)
    parallel = run_checks(suite, "state.yaml", "-n", "2", "--kspec-no-history", *extra)
    assert serial.report is not None and parallel.report is not None
    assert serial.report["drift"]["summary"]["custom"] == 4
    assert _comparable(parallel.report) == _comparable(serial.report)
    if remediate:
        statuses = {e["resource"]: e["remediation"]["status"]
                    for e in parallel.events(type="custom")}
        assert statuses["Deployment/shop/web"] == "dry-run"
        assert statuses["Check/test_b"] == "manual-required"


def test_fix_runs_only_under_remediate_through_the_budget_and_audit(suite: Cluster) -> None:
    state = write_state(suite, suite.spec_path.parent / "state.yaml")
    with Simulator(objects=suite.objects, kyverno=True, version="1.29.4") as sim:
        kubeconfig = str(sim.kubeconfig_path)
        args = ("checks/", "--kspec-spec", "cluster-spec.yaml", "--kspec-kubeconfig", kubeconfig)
        detect = run_pytest(suite.spec_path.parent, *args)
        assert all(e["remediation"] is None for e in detect.events(type="custom"))
        assert sim.get("apps/v1", "Deployment", "web", "shop")["spec"]["replicas"] == 1
        fixed = run_pytest(suite.spec_path.parent, *args, "--kspec-remediate")
        assert sim.get("apps/v1", "Deployment", "web", "shop")["spec"]["replicas"] == 2
        assert sim.get("apps/v1", "Deployment", "api", "payments")["spec"]["replicas"] == 2
        again = run_pytest(suite.spec_path.parent, *args)
    blocks = {e["resource"]: e["remediation"] for e in fixed.events(type="custom")}
    assert blocks["Deployment/shop/web"]["action"] == "fix"
    assert blocks["Deployment/shop/web"]["status"] == "applied"
    assert blocks["Check/test_namespaces_name_an_owner"]["status"] == "manual-required"
    assert "Deployment/shop/web: fix → applied" in fixed.stdout
    drift = {e["resource"]: e["drift"] for e in again.events(type="custom")}
    assert drift["Deployment/shop/web"] == "resolved"
    assert drift["Deployment/payments/api"] == "resolved"
    history = subprocess.run(
        [sys.executable, "-m", "pytest_kspec.cli", "drift", "history", "--reports",
         str(suite.spec_path.parent / "reports"), "--resource", "Deployment/shop/web",
         "--format", "json"], capture_output=True, text=True, timeout=60, check=True)
    (attempt,) = json.loads(history.stdout)["remediations"]
    assert (attempt["action"], attempt["status"]) == ("fix", "applied")
    assert state.exists()


def test_a_fix_that_deletes_takes_from_the_deletion_budget(suite: Cluster) -> None:
    (suite.spec_path.parent / "checks" / "test_team.py").write_text(DELETING)
    with Simulator(objects=suite.objects, kyverno=True, version="1.29.4") as sim:
        result = run_pytest(suite.spec_path.parent, "checks/", "--kspec-spec",
                            "cluster-spec.yaml", "--kspec-kubeconfig", str(sim.kubeconfig_path),
                            "--kspec-remediate", "--kspec-max-deletions", "1")
        left = {d["metadata"]["name"] for d in sim.list("apps/v1", "Deployment")}
    statuses = sorted(e["remediation"]["status"] for e in result.events(type="custom"))
    assert statuses == ["applied", "skipped"]
    (skipped,) = [e for e in result.events(type="custom")
                  if e["remediation"]["status"] == "skipped"]
    assert "reached its cap of 1 deletion(s)" in skipped["remediation"]["error"]
    assert len(left & {"web", "api"}) == 1 and "ledger" in left


DELETING = '''
def test_single_replica_deployments_go(kspec_cluster, kspec_violations):
    for d in kspec_cluster.list("apps/v1", "Deployment"):
        meta = d["metadata"]
        if d["spec"]["replicas"] < 2:
            kspec_violations.add(f"Deployment/{meta['namespace']}/{meta['name']}", "one replica",
                                 fix=lambda client, m=meta: client.delete(
                                     "apps/v1", "Deployment", m["name"],
                                     namespace=m["namespace"], uid=m["uid"]))
'''


def test_custom_drift_is_alerted_and_resolved_like_any_other(suite: Cluster) -> None:
    """The DriftConfig's webhook hears of custom events: new once, then resolved."""
    with http_receiver() as receiver:
        cfg = suite.spec_path.parent / "drift.yaml"
        cfg.write_text(yaml.safe_dump({
            "apiVersion": "kspec.dev/v1", "kind": "DriftConfig", "metadata": {"name": "t"},
            "spec": {"alerts": {"enabled": True, "minInterval": "0s", "channels": [
                {"name": "ops", "type": "webhook", "url": f"{receiver.url}/hook",
                 "severity": "low"}]}}}))
        first = run_checks(suite, "state1.yaml", "--kspec-config", str(cfg), "-n", "2")
        assert "kspec: alert ops (webhook) sent: 3 new" in first.stdout, first.stdout
        again = run_checks(suite, "state1.yaml", "--kspec-config", str(cfg))
        assert "kspec: alert" not in again.stdout  # already told: not sent again
        for obj in suite.objects:
            if obj["kind"] == "Deployment" and obj["metadata"]["name"] == "web":
                obj["spec"]["replicas"] = 2
        run_checks(suite, "state2.yaml", "--kspec-config", str(cfg))
    sent, resolved = receiver.bodies()
    assert {(e["type"], e["resource"], e["severity"], e["status"]) for e in sent["events"]} == {
        ("custom", "Deployment/shop/web", "high", "new"),
        ("custom", "Deployment/payments/api", "high", "new"),
        ("custom", "Check/test_namespaces_name_an_owner", "medium", "new")}
    assert [(e["resource"], e["status"]) for e in resolved["events"]] == [
        ("Deployment/shop/web", "resolved")]
