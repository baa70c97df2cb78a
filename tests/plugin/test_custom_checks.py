"""Users' own checks in the plugin (pytester): marker, fixture, outcomes, what counts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

SPEC = """\
apiVersion: kspec.dev/v1
kind: ClusterSpecification
metadata: {name: team-a, version: 1.0.0}
spec:
  kubernetes: {minVersion: "1.28", maxVersion: "1.31"}
"""


def _deployment(name: str, replicas: int) -> str:
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: default}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec: {{containers: [{{name: app, image: "registry.example.com/{name}:1.0"}}]}}
"""


STATE = _deployment("web", 1) + "---\n" + _deployment("api", 3)

CHECKS = '''
import pytest

@pytest.mark.kspec(severity="high", controls=["AV-1"], id="deployments.replicas")
def test_replicas(kspec_cluster, kspec_violations):
    """Deployments run two replicas."""
    for d in kspec_cluster.list("apps/v1", "Deployment"):
        if d["spec"]["replicas"] < 2:
            kspec_violations.add("Deployment/default/" + d["metadata"]["name"],
                                 "runs %d replica(s)" % d["spec"]["replicas"])

def test_plain(kspec_cluster):
    assert len(kspec_cluster.list("apps/v1", "Deployment")) > 5, "too few deployments"

def test_ok():
    pass

def test_reads_forbidden_kind(kspec_cluster):
    kspec_cluster.list("example.com/v1", "Widget")

@pytest.mark.skip(reason="not today")
def test_skipped():
    pass
'''


@pytest.fixture
def files(pytester: pytest.Pytester) -> list[str]:
    spec = pytester.makefile(".yaml", **{"cluster-spec": SPEC})
    state = pytester.makefile(".yaml", state=STATE)
    pytester.makepyfile(test_checks=CHECKS)
    return [".", "--kspec-spec", str(spec), "--kspec-sim", str(state), "-p", "no:randomly"]


def _report(pytester: pytest.Pytester) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (pytester.path / "reports" / "drift-report.json").read_text())
    return data


def test_custom_checks_are_items_of_the_drift_report(pytester: pytest.Pytester,
                                                     files: list[str]) -> None:
    result = pytester.runpytest(*files)
    result.assert_outcomes(passed=2, failed=3, skipped=1)
    result.stdout.fnmatch_lines([
        "*1 resource(s) break deployments.replicas: Deployments run two replicas.",
        "  Deployment/default/web: runs 1 replica(s)",
        "kspec: 6 checks (5 custom), 2 passed, 2 drifted, 1 error(s)*"])
    # an API error inside a check is one line naming the check, where, and what failed
    result.stdout.fnmatch_lines([
        "test_checks.py:18: could not evaluate test_reads_forbidden_kind: the server at * does "
        "not serve Widget (example.com/v1)"])
    assert "snapshot.py" not in result.stdout.str()
    report = _report(pytester)
    results = {r["id"]: r for r in report["kspec"]["results"] if r["type"] == "custom"}
    assert {k: r["status"] for k, r in results.items()} == {
        "deployments.replicas": "failed", "test_plain": "failed", "test_ok": "passed",
        "test_reads_forbidden_kind": "error", "test_skipped": "skipped"}
    assert results["deployments.replicas"]["node_id"] == "test_checks.py::test_replicas"
    assert report["drift"]["summary"]["custom"] == 2
    custom = [e for e in report["events"] if e["type"] == "custom"]
    assert [(e["check"], e["resource"], e["severity"], e["drift"]) for e in custom] == [
        ("deployments.replicas", "Deployment/default/web", "high", "violation"),
        ("test_plain", "Check/test_plain", "medium", "violation")]
    assert custom[1]["message"] == "too few deployments"
    assert custom[0]["controls"] == ["AV-1"]
    (error,) = report["kspec"]["errors"]
    assert error["node_id"] == "test_checks.py::test_reads_forbidden_kind"
    assert "could not evaluate test_reads_forbidden_kind:" in error["message"]
    assert report["kspec"]["items"]["custom"] == 5
    # custom checks follow the spec's items, in collection order
    assert [r["id"] for r in report["kspec"]["results"]] == [
        "kubernetes.version", "deployments.replicas", "test_plain", "test_ok",
        "test_reads_forbidden_kind", "test_skipped"]


def test_cluster_unreachable_ends_the_session_before_custom_checks(
        pytester: pytest.Pytester, files: list[str]) -> None:
    kubeconfig = pytester.makefile(".kubeconfig", cfg="""\
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://127.0.0.1:9"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
""")
    args = [a for a in files if a not in (files[4], "--kspec-sim")]
    # An unusable cluster is one line and exit 2: no custom check runs against it (none
    # would pass), and no report or history entry reads as a 0 % run.
    result = pytester.runpytest_subprocess(*args, "--kspec-kubeconfig", str(kubeconfig), "-k",
                                           "replicas or plain or ok")
    assert result.ret == 2
    lines = [line for line in result.outlines + result.errlines if line.strip()]
    assert len(lines) == 1 and "no check ran" in lines[0], lines
    assert not (pytester.path / "reports" / "drift-report.json").exists()


def test_marker_and_fixture_are_documented(pytester: pytest.Pytester) -> None:
    pytester.runpytest("--markers").stdout.fnmatch_lines([
        "@pytest.mark.kspec(severity='medium', controls=[], id=<test name>*"])
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    pytester.runpytest("--fixtures").stdout.fnmatch_lines([
        "kspec_violations*", "*Report every resource that breaks your check*"])


def test_bad_marker_is_a_usage_error_naming_the_test(pytester: pytest.Pytester,
                                                     files: list[str]) -> None:
    pytester.makepyfile(test_bad='''
import pytest

@pytest.mark.kspec(severity="urgent")
def test_bad():
    pass
''')
    result = pytester.runpytest(*files)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*test_bad.py::test_bad: @pytest.mark.kspec(severity='urgent')"
                                 ": use one of critical, high, medium, low, info"])
    assert not (pytester.path / "reports" / "drift-report.json").exists()


def test_duplicate_ids_are_a_usage_error(pytester: pytest.Pytester, files: list[str]) -> None:
    pytester.makepyfile(test_dup='''
import pytest

@pytest.mark.kspec(id="deployments.replicas")
def test_other():
    pass
''')
    result = pytester.runpytest(*files)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*two checks share the kspec id 'deployments.replicas'*"])


def test_violations_fail_the_test_without_a_spec_too(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_v='''
def test_v(kspec_violations):
    kspec_violations.add("Namespace/shop", "has no owner label")
    kspec_violations.add("Namespace/pay", "has no owner label")

def test_clean(kspec_violations):
    pass
''')
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["2 resource(s) break test_v", "  Namespace/shop: has no owner "
                                 "label", "  Namespace/pay: has no owner label"])
    assert "Traceback" not in result.stdout.str()
    assert not (pytester.path / "reports").exists()


def test_junit_properties_of_custom_checks(pytester: pytest.Pytester, files: list[str]) -> None:
    import xml.etree.ElementTree as ET

    pytester.runpytest(*files)
    root = ET.parse(pytester.path / "reports" / "junit.xml").getroot()
    (case,) = [c for c in root.iter("testcase") if c.get("name") == "test_replicas"]
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props == {"kspec.type": "custom", "kspec.id": "deployments.replicas",
                     "kspec.severity": "high", "kspec.resource": "Check/deployments.replicas",
                     "kspec.controls": "AV-1", "kspec.drift": "violation",
                     "kspec.resources": "Deployment/default/web"}
    assert case.find("failure") is not None


def test_paths_given_define_the_suite(pytester: pytest.Pytester, files: list[str]) -> None:
    pytester.mkdir("other")
    Path(pytester.path, "other", "test_elsewhere.py").write_text("def test_far():\n    pass\n")
    pytester.runpytest(*files[1:], "test_checks.py", "-k", "ok")
    ids = {r["id"] for r in _report(pytester)["kspec"]["results"] if r["type"] == "custom"}
    assert ids == {"test_ok"}
