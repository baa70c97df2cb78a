"""Many clusters in one pytest session: two simulators served as two contexts of one
kubeconfig, ``pytest --kspec-context a,b`` (or ``all``, or DriftConfig ``clusters:``) in a
subprocess, as a user runs it; per-cluster items, reports, JUnit suites and history."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_kspec.plugin.reference import FLEET_REPORT_FIELDS
from pytest_kspec.sim import Simulator

from .conftest import Cluster, Result, run_pytest

DRIFTED = "policy::require-run-as-non-root"


@pytest.fixture
def sims(cluster: Cluster) -> Iterator[dict[str, Simulator]]:
    """Two clusters of the same spec: ``a`` matches it, ``b`` lost one expected policy."""
    drifted = Cluster(cluster.spec_path, list(cluster.objects))
    drifted.remove("ClusterPolicy", "require-run-as-non-root")
    started = {"a": Simulator(objects=cluster.objects, kyverno=True),
               "b": Simulator(objects=drifted.objects, kyverno=True)}
    for sim in started.values():
        sim.start()
    yield started
    for sim in started.values():
        sim.stop()


def kubeconfig(path: Path, sims: dict[str, Simulator], *, current: str = "a") -> Path:
    """One kubeconfig with a context (and cluster and user) per simulator, named as in ``sims``."""
    merged: dict[str, Any] = {"apiVersion": "v1", "kind": "Config", "current-context": current,
                              "clusters": [], "users": [], "contexts": [], "preferences": {}}
    for name, sim in sims.items():
        own = yaml.safe_load(Path(sim.kubeconfig_path).read_text())
        merged["clusters"].append({"name": name, "cluster": own["clusters"][0]["cluster"]})
        merged["users"].append({"name": name, "user": own["users"][0]["user"]})
        merged["contexts"].append({"name": name, "context": {"cluster": name, "user": name}})
    path.write_text(yaml.safe_dump(merged, sort_keys=False))
    return path


def fleet_run(cluster: Cluster, kube: Path, *args: str) -> Result:
    return run_pytest(cluster.spec_path.parent, "--kspec-spec", str(cluster.spec_path),
                      "--kspec-kubeconfig", str(kube), *args)


def reports(cluster: Cluster) -> Path:
    return cluster.spec_path.parent / "reports"


def statuses(cluster: Cluster, name: str) -> dict[str, str]:
    data = json.loads((reports(cluster) / "clusters" / name / "drift-report.json").read_text())
    return {r["node_id"]: r["status"] for r in data["kspec"]["results"]}


def one_cluster_statuses(cluster: Cluster) -> dict[str, str]:
    data = json.loads((reports(cluster) / "drift-report.json").read_text())
    return {r["node_id"]: r["status"] for r in data["kspec"]["results"]}


def fleet_report(cluster: Cluster) -> dict[str, Any]:
    return dict(json.loads((reports(cluster) / "fleet-report.json").read_text()))


def _fields(data: dict[str, Any], path: str = "") -> set[str]:
    out = set()
    for key, value in data.items():
        where = f"{path}.{key}" if path else key
        out.add(where)
        if key == "clusters" and not path:
            for entry in value:
                out |= {f"clusters[].{k}" for k in entry}
        elif isinstance(value, dict) and where in ("drift", "kspec"):
            out |= _fields(value, where)
    return out


def test_two_contexts_in_one_run_give_per_cluster_items_and_reports(
        cluster: Cluster, sims: dict[str, Simulator], tmp_path: Path) -> None:
    kube = kubeconfig(tmp_path / "kubeconfig", sims)
    result = fleet_run(cluster, kube, "--kspec-context", "a,b", "-v")
    assert result.returncode == 1, result.stdout  # b drifted
    a, b = statuses(cluster, "a"), statuses(cluster, "b")
    assert a and set(a.values()) == {"passed"}, a
    assert all(node.startswith("cluster-spec.yaml::a::") for node in a)
    assert b[f"cluster-spec.yaml::b::{DRIFTED}"] == "failed"
    assert {k.split("::", 2)[2] for k in a} == {k.split("::", 2)[2] for k in b}
    assert f"cluster-spec.yaml::b::{DRIFTED} FAILED" in result.stdout
    # each cluster's report is its own: its server, its name, its drift only
    report_b = json.loads((reports(cluster) / "clusters/b/drift-report.json").read_text())
    assert report_b["kspec"]["cluster"]["server"] == sims["b"].url
    assert report_b["kspec"]["cluster"]["name"] == "b"
    assert [e["resource"] for e in report_b["events"]] == [
        "ClusterPolicy/require-run-as-non-root"]
    assert not (reports(cluster) / "drift-report.json").exists()
    fleet = fleet_report(cluster)
    assert [(c["name"], c["status"]) for c in fleet["clusters"]] == [("a", "clean"),
                                                                   ("b", "drift")]
    assert fleet["drift"] == {"detected": True, "severity": "high", "clusters": ["b"]}
    assert fleet["clusters"][1]["report"] == "clusters/b/drift-report.json"
    assert fleet["kspec"]["items"]["total"] == len(a) + len(b)
    assert _fields(fleet) <= set(FLEET_REPORT_FIELDS)  # docs/configuration.md has each field
    assert "kspec: fleet: 2 clusters, 1 with drift (b), 0 unreachable" in result.stdout
    # copies kept per run: each cluster's report in its folder, the session's files together
    for name in ("a", "b"):
        run_id = next(c["run_id"] for c in fleet["clusters"] if c["name"] == name)
        assert (reports(cluster) / f"clusters/{name}/runs/{run_id}/drift-report.json").is_file()
    kept = reports(cluster) / "runs" / fleet["clusters"][0]["run_id"]
    assert sorted(p.name for p in kept.iterdir()) == ["fleet-report.json", "junit.xml",
                                                      "report.html"]
    # JUnit: one testsuite per cluster, counts recomputed
    suites = {s.get("name"): s for s in ET.parse(result.junit).getroot().iter("testsuite")}
    assert set(suites) == {"pytest.a", "pytest.b"}
    assert suites["pytest.a"].get("failures") == "0"
    assert suites["pytest.b"].get("failures") == "1"
    assert suites["pytest.b"].get("tests") == str(len(b))
    props = {p.get("name"): p.get("value") for p in suites["pytest.b"].find("properties") or []}
    assert props["kspec.server"] == sims["b"].url
    # HTML: the cluster x check matrix, one column per cluster
    html = (reports(cluster) / "report.html").read_text()
    assert "kspec fleet: 2 clusters, 1 with drift" in html
    matrix = html[html.index('<table class="kspec-matrix"'):]
    matrix = matrix[:matrix.index("</table>")]
    assert matrix.count("<tr>") == 1 + len(a)  # a header, then one row per check
    assert matrix.count('class="kspec-failed"') == 1
    assert matrix.count('class="kspec-passed"') == len(a) + len(b) - 1
    row = re.search(rf"<code>{DRIFTED}</code></td>(.*?)</tr>", matrix)
    assert row is not None and re.findall(r'class="kspec-(\w+)"', row.group(1)) == [
        "passed", "failed"]  # columns in cluster order: a, b


def _worker_of(stdout: str) -> dict[str, str]:
    """node id -> xdist worker, from ``-v`` lines such as ``[gw1] [ 50%] PASSED <id>``."""
    found = {}
    for match in re.finditer(r"\[(gw\d+)\][^\n]*?(?:PASSED|FAILED|ERROR) (\S+)", stdout):
        found[match.group(2)] = match.group(1)
    return found


def test_two_workers_give_what_one_process_gives_and_keep_each_cluster_on_one_worker(
        cluster: Cluster, sims: dict[str, Simulator], tmp_path: Path) -> None:
    kube = kubeconfig(tmp_path / "kubeconfig", sims)
    serial = fleet_run(cluster, kube, "--kspec-context", "a,b", "-n", "0", "--kspec-no-history")
    assert serial.returncode == 1, serial.stdout
    expected = {name: statuses(cluster, name) for name in ("a", "b")}
    for sim in sims.values():
        sim.requests.clear()
    parallel = fleet_run(cluster, kube, "--kspec-context", "a,b", "-n", "2", "-v",
                         "--kspec-no-history", "--kspec-metrics-file", "kspec.prom")
    assert parallel.returncode == 1, parallel.stdout
    assert {name: statuses(cluster, name) for name in ("a", "b")} == expected
    # one metrics file for the fleet: every cluster's series, told apart by a cluster label
    prom = (cluster.spec_path.parent / "kspec.prom").read_text()
    for name, want in (("a", "passed"), ("b", "failed")):
        assert (f'kspec_check_result{{cluster="{name}",id="require-run-as-non-root",'
                f'result="{want}",severity="medium",type="policy"}} 1.0') in prom, prom
    workers = _worker_of(parallel.stdout)
    for name in ("a", "b"):
        mine = {w for node, w in workers.items() if node.startswith(f"cluster-spec.yaml::{name}::")}
        assert len(mine) == 1, (name, workers)  # all of a cluster's items on one worker
        # ... so each kind was listed once in that cluster
        lists = [r.path for r in sims[name].requests
                 if r.method == "GET" and "limit" in r.query]
        assert lists and len(lists) == len(set(lists)), lists
    assert {w for w in workers.values()} == {"gw0", "gw1"}  # and the clusters spread out


def test_one_cluster_under_two_workers_is_listed_once(
        cluster: Cluster, sims: dict[str, Simulator], tmp_path: Path) -> None:
    kube = kubeconfig(tmp_path / "kubeconfig", sims)
    serial = fleet_run(cluster, kube, "--kspec-context", "b", "-n", "0", "--kspec-no-history")
    assert serial.returncode == 1, serial.stdout
    expected = one_cluster_statuses(cluster)
    sims["b"].requests.clear()
    parallel = fleet_run(cluster, kube, "--kspec-context", "b", "-n", "2", "-v",
                         "--kspec-no-history")
    assert parallel.returncode == 1, parallel.stdout
    assert one_cluster_statuses(cluster) == expected
    workers = _worker_of(parallel.stdout)
    assert any(node.startswith("cluster-spec.yaml::policy::") for node in workers), workers
    assert len(set(workers.values())) == 1, workers  # the cluster's items on one worker ...
    lists = [r.path for r in sims["b"].requests if r.method == "GET" and "limit" in r.query]
    assert lists and len(lists) == len(set(lists)), lists  # ... so each kind is listed once


def test_one_cluster_down_errors_its_own_items_only(
        cluster: Cluster, sims: dict[str, Simulator], tmp_path: Path) -> None:
    kube = kubeconfig(tmp_path / "kubeconfig", sims)
    sims["b"].stop()
    result = fleet_run(cluster, kube, "--kspec-context", "a,b", "-n", "2")
    assert result.returncode == 1, result.stdout
    a, b = statuses(cluster, "a"), statuses(cluster, "b")
    assert set(a.values()) == {"passed"} and set(b.values()) == {"error"}, (a, b)
    report_b = json.loads((reports(cluster) / "clusters/b/drift-report.json").read_text())
    message = report_b["kspec"]["errors"][0]["message"]
    assert "cluster b cannot be used" in message and "is the API server up" in message
    assert len(message.splitlines()) == 1
    fleet = fleet_report(cluster)
    assert [(c["name"], c["status"]) for c in fleet["clusters"]] == [("a", "clean"),
                                                                   ("b", "unreachable")]
    assert fleet["kspec"]["unreachable"] == ["b"]
    assert "kspec: fleet: 2 clusters, 0 with drift, 1 unreachable (b)" in result.stdout


def test_all_takes_every_context_of_the_kubeconfig(
        cluster: Cluster, sims: dict[str, Simulator], tmp_path: Path) -> None:
    kube = kubeconfig(tmp_path / "kubeconfig", sims)
    result = fleet_run(cluster, kube, "--kspec-context", "all")
    assert result.returncode == 1, result.stdout
    assert [c["name"] for c in fleet_report(cluster)["clusters"]] == ["a", "b"]
    assert statuses(cluster, "b")[f"cluster-spec.yaml::b::{DRIFTED}"] == "failed"


def test_driftconfig_clusters_name_contexts_and_kubeconfigs(
        cluster: Cluster, sims: dict[str, Simulator], tmp_path: Path) -> None:
    kube = kubeconfig(tmp_path / "kubeconfig", {"a": sims["a"]})
    config = tmp_path / "drift.yaml"
    config.write_text(yaml.safe_dump({
        "apiVersion": "kspec.dev/v1", "kind": "DriftConfig", "metadata": {"name": "fleet"},
        "spec": {"clusters": [{"name": "prod-eu", "context": "a"},
                              {"name": "prod-us", "kubeconfig": sims["b"].kubeconfig_path},
                              {"name": "prod-ap", "kubeconfig": "secrets/ap.kubeconfig"}]}}))
    result = fleet_run(cluster, kube, "--kspec-config", str(config))
    assert result.returncode == 1, result.stdout
    assert set(statuses(cluster, "prod-eu").values()) == {"passed"}
    assert statuses(cluster, "prod-us")[f"cluster-spec.yaml::prod-us::{DRIFTED}"] == "failed"
    # a cluster whose kubeconfig is missing errors its own items (relative to the start dir)
    assert set(statuses(cluster, "prod-ap").values()) == {"error"}
    fleet = fleet_report(cluster)
    assert [(c["name"], c["context"], c["status"]) for c in fleet["clusters"]] == [
        ("prod-eu", "a", "clean"), ("prod-us", "kspec-sim", "drift"),
        ("prod-ap", "", "unreachable")]
    missing = cluster.spec_path.parent / "secrets" / "ap.kubeconfig"
    assert fleet["clusters"][2]["error"].startswith(
        f"cluster prod-ap cannot be used: {missing}: kubeconfig not found (fix the kubeconfig "
        "of the DriftConfig's clusters: entry 'prod-ap'"), fleet["clusters"][2]["error"]


def test_history_keeps_each_cluster_apart_and_the_fleet_view_shows_them(
        cluster: Cluster, sims: dict[str, Simulator], tmp_path: Path) -> None:
    kube = kubeconfig(tmp_path / "kubeconfig", sims)
    first = fleet_run(cluster, kube, "--kspec-context", "a,b")
    assert first.returncode == 1, first.stdout
    sims["b"].stop()  # b is down for the second run: its errored run lands in b's history
    second = fleet_run(cluster, kube, "--kspec-context", "a,b")
    assert second.returncode == 1, second.stdout
    proc = subprocess.run([sys.executable, "-m", "pytest_kspec.cli", "drift", "history",
                           "--reports", str(reports(cluster)), "--fleet", "--format", "json"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)["clusters"]}
    assert set(rows) == {"a", "b"}  # one row per cluster: b's errored run joined b's history
    assert rows["a"]["runs"] == 2 and rows["a"]["pass_rate"] == 100.0
    assert rows["b"]["runs"] == 2 and rows["b"]["status"] == "error"
    assert rows["b"]["pass_rate"] is None
    assert rows["b"]["open_drift"] == 1  # the drift seen in run 1 is not resolved by an error
    table = subprocess.run([sys.executable, "-m", "pytest_kspec.cli", "drift", "history",
                            "--reports", str(reports(cluster)), "--fleet"],
                           capture_output=True, text=True, timeout=60, check=False).stdout
    assert re.search(r"^b .*error \(\d+ checks\)", table, re.M), table


def test_unknown_context_is_one_line_naming_the_kubeconfig_and_its_contexts(
        cluster: Cluster, sims: dict[str, Simulator], tmp_path: Path) -> None:
    kube = kubeconfig(tmp_path / "kubeconfig", sims)
    result = fleet_run(cluster, kube, "--kspec-context", "a,prod")
    assert result.returncode == 4, result.stdout
    assert (f"--kspec-context: no context 'prod' in {kube} (it has: a, b)"
            in result.stdout), result.stdout
    assert "Traceback" not in result.stdout
    assert not reports(cluster).exists()


def test_collect_only_names_each_cluster_without_a_kubeconfig(cluster: Cluster) -> None:
    result = run_pytest(cluster.spec_path.parent, "--kspec-spec", str(cluster.spec_path),
                        "--kspec-context", "a,b", "--collect-only", "-q")
    assert result.returncode == 0, result.stdout
    assert f"cluster-spec.yaml::a::{DRIFTED}" in result.stdout
    assert f"cluster-spec.yaml::b::{DRIFTED}" in result.stdout
    assert "cluster-spec.yaml::policy::" not in result.stdout
    # the embedded simulator is one cluster
    sim = run_pytest(cluster.spec_path.parent, "--kspec-spec", str(cluster.spec_path),
                     "--kspec-sim", str(cluster.spec_path), "--kspec-context", "a,b")
    assert sim.returncode == 4
    assert "--kspec-sim runs one embedded cluster: drop --kspec-context a,b" in sim.stdout


def kspec_detect(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
           "KUBECONFIG": str(cluster.spec_path.parent / "no-such-kubeconfig")}
    return subprocess.run([sys.executable, "-m", "pytest_kspec.cli", "drift", "detect",
                           "--spec", str(cluster.spec_path), *args],
                          cwd=cluster.spec_path.parent, env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def test_kspec_drift_detect_takes_the_same_cluster_selection(
        cluster: Cluster, sims: dict[str, Simulator], tmp_path: Path) -> None:
    kube = kubeconfig(tmp_path / "kubeconfig", sims)
    proc = kspec_detect(cluster, "--kubeconfig", str(kube), "--context", "all", "--quiet")
    assert proc.returncode == 1, proc.stdout + proc.stderr  # drift in b
    assert f"FAILED  cluster-spec.yaml::b::{DRIFTED}" in proc.stdout
    assert set(statuses(cluster, "a").values()) == {"passed"}
    assert [c["status"] for c in fleet_report(cluster)["clusters"]] == ["clean", "drift"]
    suites = [s.get("name") for s in
              ET.parse(reports(cluster) / "junit.xml").getroot().iter("testsuite")]
    assert suites == ["kspec.a", "kspec.b"]
    sims["a"].stop()
    proc = kspec_detect(cluster, "--kubeconfig", str(kube), "--context", "a,b", "--quiet")
    assert proc.returncode == 2, proc.stdout  # a check could not be evaluated
    assert proc.stdout.count("cluster a cannot be used") == 2  # once up front, once in the summary
    assert f"FAILED  cluster-spec.yaml::b::{DRIFTED}" in proc.stdout
    proc = kspec_detect(cluster, "--kubeconfig", str(kube), "--context", "a,zz")
    assert proc.returncode == 2
    assert f"--context: no context 'zz' in {kube} (it has: a, b)" in proc.stderr
    proc = kspec_detect(cluster, "--kubeconfig", str(kube), "--context", "a,b", "--watch")
    assert proc.returncode == 2
    assert "--watch follows one cluster: run one watch per cluster" in proc.stderr


def test_remediation_budgets_and_audit_chains_are_per_cluster(
        cluster: Cluster, tmp_path: Path) -> None:
    from .conftest import _pod

    privileged = "workloads.containers.forbidden.privileged"
    for i in range(2):
        cluster.add(_pod(f"debug-{i}", "shop", privileged=True))
    cluster.remove("ClusterPolicy", "require-run-as-non-root")
    sims = {name: Simulator(objects=cluster.objects, kyverno=True) for name in ("a", "b")}
    for sim in sims.values():
        sim.start()
    try:
        kube = kubeconfig(tmp_path / "kubeconfig", sims)
        config = tmp_path / "drift.yaml"
        config.write_text(yaml.safe_dump({
            "apiVersion": "kspec.dev/v1", "kind": "DriftConfig", "metadata": {"name": "fix"},
            "spec": {"remediation": {"resources": {privileged: "delete"},
                                     "maxDeletions": 1}}}))
        result = fleet_run(cluster, kube, "--kspec-context", "a,b", "--kspec-remediate",
                           "--kspec-config", str(config), "-n", "2")
        assert result.returncode == 1, result.stdout
        for name, sim in sims.items():
            report = json.loads((reports(cluster) / f"clusters/{name}/drift-report.json")
                                .read_text())
            fixes = sorted((e["type"], e["resource"], e["remediation"]["status"])
                           for e in report["events"] if e.get("remediation"))
            # the cap of 1 deletion holds per cluster (not 1 for the whole run)
            assert sorted(s for t, _, s in fixes if t == "resource") == ["skipped", "verified"]
            assert ("policy", "ClusterPolicy/require-run-as-non-root", "verified") in fixes
            assert sim.get("kyverno.io/v1", "ClusterPolicy", "require-run-as-non-root")
            assert len([p for p in sim.list("v1", "Pod", "shop")
                        if p["metadata"]["name"].startswith("debug-")]) == 1
    finally:
        for sim in sims.values():
            sim.stop()
    proc = subprocess.run([sys.executable, "-m", "pytest_kspec.cli", "drift", "history",
                           "--reports", str(reports(cluster)), "--verify"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "in 2 chain(s)" in proc.stdout, proc.stdout


FLEET_CHECKS = '''
import pytest


@pytest.mark.kspec(severity="high", id="pods.web-present")
def test_web_runs(kspec_cluster, kspec_violations):
    """The shop's web pod runs."""
    names = [p["metadata"]["name"] for p in kspec_cluster.list("v1", "Pod", namespace="shop")]
    if "web-1" not in names:
        kspec_violations.add("Pod/shop/web-1", "not running")


def test_reads_no_cluster(kspec_spec):
    assert kspec_spec.name == "shop-prod"
'''


def test_users_checks_run_once_per_cluster_they_read(
        cluster: Cluster, sims: dict[str, Simulator], tmp_path: Path) -> None:
    sims["b"].delete("v1", "Pod", "web-1", "shop")
    kube = kubeconfig(tmp_path / "kubeconfig", sims)
    checks = cluster.spec_path.parent / "checks"
    checks.mkdir()
    (checks / "test_fleet_checks.py").write_text(FLEET_CHECKS)
    result = fleet_run(cluster, kube, "checks", "--kspec-context", "a,b", "-n", "2", "-v")
    assert result.returncode == 1, result.stdout
    assert "PASSED checks/test_fleet_checks.py::test_web_runs[a]" in result.stdout
    assert "FAILED checks/test_fleet_checks.py::test_web_runs[b]" in result.stdout
    workers = _worker_of(result.stdout)  # with its cluster's items, on that cluster's worker
    assert workers["checks/test_fleet_checks.py::test_web_runs[b]"] == workers[
        f"cluster-spec.yaml::b::{DRIFTED}"]
    for name, want in (("a", "passed"), ("b", "failed")):
        report = json.loads((reports(cluster) / f"clusters/{name}/drift-report.json")
                            .read_text())
        custom = {r["id"]: r["status"] for r in report["kspec"]["results"]
                  if r["type"] == "custom"}
        # one id on every cluster (it keys each cluster's history); the check that reads no
        # cluster counts in each cluster's report
        assert custom == {"pods.web-present": want, "test_reads_no_cluster": "passed"}, custom
    report_b = json.loads((reports(cluster) / "clusters/b/drift-report.json").read_text())
    assert [e["resource"] for e in report_b["events"] if e["type"] == "custom"] == [
        "Pod/shop/web-1"]
    suites = {s.get("name"): s for s in ET.parse(result.junit).getroot().iter("testsuite")}
    names_b = [c.get("name") for c in suites["pytest.b"].iter("testcase")]
    assert "test_web_runs[b]" in names_b and "test_web_runs[a]" not in names_b


def test_a_forbidden_or_rejected_cluster_errors_its_own_items_only(
        cluster: Cluster, tmp_path: Path) -> None:
    good = Simulator(objects=cluster.objects, kyverno=True).start()
    locked = Simulator(objects=cluster.objects, kyverno=True, rbac=True,
                       users={"nobody-token": ("nobody", ())}).start()
    try:
        kube = kubeconfig(tmp_path / "kubeconfig", {"a": good, "b": locked})
        config = yaml.safe_load(kube.read_text())
        config["users"][1]["user"] = {"token": "nobody-token"}  # b: a user with no RBAC
        kube.write_text(yaml.safe_dump(config))
        result = fleet_run(cluster, kube, "--kspec-context", "a,b")
        assert result.returncode == 1, result.stdout
        assert set(statuses(cluster, "a").values()) == {"passed"}
        b = statuses(cluster, "b")  # /version is open to every user: only it passes
        assert b.pop("cluster-spec.yaml::b::configuration::kubernetes.version") == "passed"
        assert set(b.values()) == {"error"}
        report_b = json.loads((reports(cluster) / "clusters/b/drift-report.json").read_text())
        messages = {e["message"] for e in report_b["kspec"]["errors"]}
        assert all("403" in m and "\n" not in m for m in messages), messages
        assert any("cannot list clusterpolicies.kyverno.io" in m for m in messages), messages
        # a forbidden cluster answers: it is judged check by check, not "unreachable"
        assert [c["status"] for c in fleet_report(cluster)["clusters"]] == ["clean", "error"]
        locked.revoke_token("nobody-token")  # now its credentials are rejected (401)
        result = fleet_run(cluster, kube, "--kspec-context", "a,b")
        assert result.returncode == 1, result.stdout
        assert set(statuses(cluster, "a").values()) == {"passed"}
        fleet = fleet_report(cluster)
        assert [c["status"] for c in fleet["clusters"]] == ["clean", "unreachable"]
        assert "401" in fleet["clusters"][1]["error"]
        assert "credentials rejected" in fleet["clusters"][1]["error"]
    finally:
        good.stop()
        locked.stop()


def test_a_plan_per_cluster_for_approval(
        cluster: Cluster, sims: dict[str, Simulator], tmp_path: Path) -> None:
    kube = kubeconfig(tmp_path / "kubeconfig", sims)
    result = fleet_run(cluster, kube, "--kspec-context", "a,b", "--kspec-dry-run",
                       "--kspec-plan", "plan.json")
    assert result.returncode == 1, result.stdout
    base = cluster.spec_path.parent
    plan_a = json.loads((base / "plan.a.json").read_text())
    plan_b = json.loads((base / "plan.b.json").read_text())
    assert not (base / "plan.json").exists()
    assert plan_a["writes"] == []  # a has nothing to fix
    assert [w["resource"] for w in plan_b["writes"]] == [
        "ClusterPolicy/require-run-as-non-root"]
    assert plan_b["cluster"]["server"] == sims["b"].url  # bound to its own cluster
    assert f"kspec [b]: remediation plan written to {base / 'plan.b.json'}" in result.stdout
    assert sims["b"].get("kyverno.io/v1", "ClusterPolicy", "require-run-as-non-root") is None
    html = (reports(cluster) / "report.html").read_text()
    assert html.count('<div class="kspec-plan">') == 2
