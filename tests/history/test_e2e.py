"""History end to end: ``pytest --kspec-spec ... --kspec-sim state.yaml`` run twice in a
subprocess with different cluster states; the JSON, JUnit and HTML reports it leaves."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_kspec.cli import main
from tests.e2e.conftest import Cluster, Result, _pod, run_pytest, write_state
from tests.pgserver import PostgresServer

KUBE_SYSTEM_UID = "5f1c6a2e-0000-4000-8000-00000000c1a5"
PRIVILEGED = "compliance::workloads.containers.forbidden.privileged"


def kube_system(uid: str = KUBE_SYSTEM_UID) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "kube-system", "uid": uid}}


def detect(cluster: Cluster, name: str, *args: str) -> Result:
    state = write_state(cluster, cluster.spec_path.parent / name)
    return run_pytest(cluster.spec_path.parent, "--kspec-spec", str(cluster.spec_path),
                      "--kspec-sim", str(state), *args)


def drift_of(result: Result, **match: Any) -> dict[str, str]:
    return {e["resource"]: e["drift"] for e in result.events(**match)}


def test_deleted_vs_missing_and_new_persisting_resolved(cluster: Cluster) -> None:
    cluster.add(kube_system())
    cluster.remove("ClusterPolicy", "disallow-privileged-containers")  # never seen: missing
    cluster.add(_pod("debug-shell", "shop", privileged=True))
    first = detect(cluster, "state1.yaml")
    assert first.returncode == 1, first.stdout
    assert drift_of(first, type="policy") == {
        "ClusterPolicy/disallow-privileged-containers": "missing"}
    # no earlier run to compare with: a plain violation
    assert drift_of(first, check=PRIVILEGED.split("::")[1]) == {"Pod/shop/debug-shell": "violation"}

    cluster.remove("ClusterPolicy", "require-run-as-non-root")  # seen in run 1: deleted
    cluster.add(_pod("miner", "payments", privileged=True))
    second = detect(cluster, "state2.yaml")
    assert drift_of(second, type="policy") == {
        "ClusterPolicy/disallow-privileged-containers": "missing",
        "ClusterPolicy/require-run-as-non-root": "deleted"}
    assert drift_of(second, check=PRIVILEGED.split("::")[1]) == {
        "Pod/shop/debug-shell": "violation", "Pod/payments/miner": "new-violation"}
    persisting = second.events(resource="Pod/shop/debug-shell")[0]
    assert persisting["first_seen"] == first.events(resource="Pod/shop/debug-shell")[0][
        "first_seen"]

    cluster.remove("Pod", "debug-shell")
    third = detect(cluster, "state3.yaml")
    assert drift_of(third, check=PRIVILEGED.split("::")[1]) == {
        "Pod/shop/debug-shell": "resolved", "Pod/payments/miner": "violation"}
    resolved = third.events(drift="resolved")[0]
    assert resolved["severity"] == "info"
    assert third.report is not None
    assert third.report["drift"]["summary"]["compliance"] == 1  # resolved is not drift
    trend = third.report["kspec"]["trend"]
    assert len(trend["pass_rates"]) == 3 and trend["direction"] in {"stable", "degrading"}
    assert "kspec: trend:" in third.stdout
    runs = sorted(p.name for p in (cluster.spec_path.parent / "reports" / "runs").iterdir())
    assert len(runs) == 3
    assert {f.name for f in (cluster.spec_path.parent / "reports" / "runs" / runs[-1]).iterdir()
            } == {"drift-report.json", "junit.xml", "report.html"}


def test_another_cluster_does_not_inherit_the_history(cluster: Cluster) -> None:
    cluster.add(kube_system())
    detect(cluster, "state1.yaml")
    cluster.remove("ClusterPolicy", "require-run-as-non-root")
    cluster.objects = [o for o in cluster.objects if o["metadata"]["name"] != "kube-system"]
    cluster.add(kube_system("another-cluster-uid"))
    other = detect(cluster, "state2.yaml")
    assert drift_of(other, type="policy") == {"ClusterPolicy/require-run-as-non-root": "missing"}
    # and --kspec-no-history forgets it even on the same cluster
    cluster.objects = [o for o in cluster.objects if o["metadata"]["name"] != "kube-system"]
    cluster.add(kube_system())
    same = detect(cluster, "state3.yaml", "--kspec-no-history")
    assert drift_of(same, type="policy") == {"ClusterPolicy/require-run-as-non-root": "missing"}
    assert "trend" not in (same.report or {}).get("kspec", {})
    remembered = detect(cluster, "state3.yaml")
    assert drift_of(remembered, type="policy") == {
        "ClusterPolicy/require-run-as-non-root": "deleted"}


JUNIT_TESTSUITE_REQUIRED = ("name", "tests", "failures", "errors")
JUNIT_TESTCASE_REQUIRED = ("name", "classname")


def test_junit_has_what_jenkins_and_gitlab_read(cluster: Cluster) -> None:
    cluster.add(kube_system())
    cluster.remove("ClusterPolicy", "require-run-as-non-root")
    result = detect(cluster, "state.yaml", "-n", "2")
    root = ET.parse(result.junit).getroot()
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    for attr in JUNIT_TESTSUITE_REQUIRED:
        assert suite.get(attr) is not None, attr
    cases = suite.findall("testcase")
    assert int(suite.get("tests", "0")) == len(cases) > 0
    assert int(suite.get("failures", "0")) == sum(1 for c in cases if c.find("failure") is not None)
    assert int(suite.get("errors", "0")) == sum(1 for c in cases if c.find("error") is not None)
    for case in cases:
        for attr in JUNIT_TESTCASE_REQUIRED:
            assert case.get(attr), (attr, ET.tostring(case))
        float(case.get("time", "0"))  # a number, as the schema says
        children = [child.tag for child in case]
        assert set(children) <= {"properties", "failure", "error", "skipped", "system-out",
                                 "system-err"}
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        assert {"kspec.type", "kspec.id", "kspec.severity", "kspec.resource"} <= set(props)
        for prop in case.iter("property"):
            assert prop.get("name") and prop.get("value") is not None
    failed = next(c for c in cases if c.get("name") == "require-run-as-non-root")
    failure = failed.find("failure")
    assert failure is not None and failure.get("message")
    props = {p.get("name"): p.get("value") for p in failed.iter("property")}
    assert props["kspec.drift"] == "missing"
    assert props["kspec.resource"] == "ClusterPolicy/require-run-as-non-root"


def test_html_report_has_the_trend_chart_and_the_drift_extras(cluster: Cluster) -> None:
    cluster.add(kube_system())
    detect(cluster, "state1.yaml")
    policy = cluster.policy("disallow-privileged-containers")
    policy["spec"]["validationFailureAction"] = "Audit"
    for rule in policy["spec"]["rules"]:
        rule["validate"].pop("failureAction", None)
    result = detect(cluster, "state2.yaml")
    html = (cluster.spec_path.parent / "reports" / "report.html").read_text()
    assert "<svg" in html and "kspec-trend" in html and "<polyline" in html
    assert "kspec trend:" in html
    assert "pass % over the last 2 run(s)" in html
    # per-item extras travel as JSON inside the report: the diff table and the YAML
    assert "kspec-diff" in html and "kspec-yaml" in html
    assert "validationFailureAction" in html
    assert "cdn" not in html.lower() and "<script src=" not in html
    assert result.returncode == 1


def drift_config(path: Path, url: str, **password: str) -> Path:
    storage = {"type": "postgres", "url": url, **password}
    path.write_text(yaml.safe_dump({"apiVersion": "kspec.dev/v1", "kind": "DriftConfig",
                                    "metadata": {"name": "fleet"},
                                    "spec": {"storage": storage}}))
    return path


def test_a_postgres_history_from_the_driftconfig(
        cluster: Cluster, postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("KSPEC_TEST_PG_PASSWORD", postgres.password)
    config = drift_config(cluster.spec_path.parent / "drift.yaml", postgres.url(),
                          passwordEnv="KSPEC_TEST_PG_PASSWORD")
    cluster.add(kube_system())
    first = detect(cluster, "state1.yaml", "--kspec-config", str(config))
    assert "history not updated" not in first.stdout, first.stdout
    cluster.remove("ClusterPolicy", "require-run-as-non-root")
    second = detect(cluster, "state2.yaml", "--kspec-config", str(config))
    assert drift_of(second, type="policy") == {"ClusterPolicy/require-run-as-non-root": "deleted"}
    assert len(second.report["kspec"]["trend"]["pass_rates"]) == 2  # type: ignore[index]
    assert not (cluster.spec_path.parent / "reports" / "history.db").exists()

    assert main(["drift", "history", "--config", str(config), "--fleet",
                 "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["clusters"]
    assert row["cluster"] == f"uid:{KUBE_SYSTEM_UID}" and row["runs"] == 2
    assert row["open_drift"] == 1 and row["specs"] == ["shop-prod"]
    assert main(["drift", "history", "--config", str(config), "--verify"]) == 0
    assert "1 chain(s)" in capsys.readouterr().out

    # the same database through a password file (a mounted Secret)
    secret = cluster.spec_path.parent / "password"
    secret.write_text(postgres.password + "\n")
    by_file = drift_config(cluster.spec_path.parent / "drift-file.yaml",
                           config_url(config), passwordFile=str(secret))
    assert main(["drift", "history", "--config", str(by_file), "--cluster", "all"]) == 0
    assert "require-run-as-non-root" in capsys.readouterr().out


def config_url(path: Path) -> str:
    return str(yaml.safe_load(path.read_text())["spec"]["storage"]["url"])


def test_a_wrong_password_leaves_the_run_complete_and_says_so(
        cluster: Cluster, postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("KSPEC_TEST_PG_PASSWORD", "wrong")
    config = drift_config(cluster.spec_path.parent / "drift.yaml", postgres.base_url,
                          passwordEnv="KSPEC_TEST_PG_PASSWORD")
    cluster.add(kube_system())
    result = detect(cluster, "state.yaml", "--kspec-config", str(config))
    assert result.report is not None and result.returncode == 0, result.stdout
    line = next(x for x in result.stdout.splitlines() if "history not updated" in x)
    assert "password authentication failed" in line and postgres.password not in line
    monkeypatch.delenv("KSPEC_TEST_PG_PASSWORD")
    result = detect(cluster, "state.yaml", "--kspec-config", str(config))
    assert "passwordEnv names KSPEC_TEST_PG_PASSWORD, which is not set" in result.stdout
