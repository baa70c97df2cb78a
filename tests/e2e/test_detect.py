"""Drift detection end to end: ``pytest --kspec-spec`` in a subprocess against a simulator."""

from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from pytest_kspec.desired.expected import GENERATED_ANNOTATION, MANAGED_BY_LABEL
from pytest_kspec.sim import Simulator

from .conftest import Cluster, Result, _namespace, _pod, run_pytest, write_state


def detect(cluster: Cluster, *args: str) -> Result:
    state = write_state(cluster, cluster.spec_path.parent / "state.yaml")
    return run_pytest(cluster.spec_path.parent, "--kspec-spec", str(cluster.spec_path),
                      "--kspec-sim", str(state), *args)


def test_clean_cluster_built_from_the_spec_has_no_drift(cluster: Cluster) -> None:
    result = detect(cluster)
    assert result.returncode == 0, result.stdout
    assert result.report is not None
    assert result.report["drift"] == {
        "detected": False, "severity": "none", "types": [],
        "summary": {"total": 0, "policies": 0, "compliance": 0, "configuration": 0,
                    "resources": 0, "custom": 0}}
    statuses = result.statuses()
    assert set(statuses.values()) == {"passed"}
    assert statuses["policy::disallow-privileged-containers"] == "passed"
    assert statuses["compliance::workloads.containers.forbidden.privileged"] == "passed"
    assert statuses["configuration::kubernetes.version"] == "passed"
    # Admission coverage: which workload rules a generated policy backs.
    coverage = result.report["kspec"]["coverage"]
    assert 0 < coverage["backed"] <= coverage["rules"] == len(coverage["by_rule"])
    assert coverage["rules"] - coverage["backed"] == len(coverage["audit_only"])
    assert "kspec: admission coverage: " in result.stdout


def test_deleted_policy_is_missing_high(cluster: Cluster) -> None:
    cluster.remove("ClusterPolicy", "require-run-as-non-root")
    result = detect(cluster)
    assert result.returncode == 1
    assert result.item("policy::require-run-as-non-root")["status"] == "failed"
    (event,) = result.events(type="policy")
    assert event["resource"] == "ClusterPolicy/require-run-as-non-root"
    assert event["drift"] == "missing"
    assert event["severity"] == "high"
    assert event["actual"] is None
    assert "ClusterPolicy/require-run-as-non-root" in result.stdout


def _set_action(policy: dict[str, Any], action: str, *, rule_level: bool) -> None:
    if rule_level:
        for rule in policy["spec"]["rules"]:
            rule["validate"]["failureAction"] = action
    else:
        policy["spec"]["validationFailureAction"] = action
        for rule in policy["spec"]["rules"]:
            rule["validate"].pop("failureAction", None)


@pytest.mark.parametrize("rule_level", [False, True], ids=["spec-level", "rule-level"])
def test_enforce_weakened_to_audit_is_high(cluster: Cluster, rule_level: bool) -> None:
    _set_action(cluster.policy("disallow-privileged-containers"), "Audit", rule_level=rule_level)
    result = detect(cluster)
    assert result.returncode == 1
    (event,) = result.events(type="policy")
    assert event["drift"] == "modified"
    assert event["severity"] == "high"
    assert any("failureAction" in c["path"] and c["actual"] == "Audit" for c in event["changes"])
    assert "Audit" in result.stdout


def test_removed_rule_is_high(cluster: Cluster) -> None:
    rules = cluster.policy("block-image-registries")["spec"]["rules"]
    assert len(rules) == 2
    removed = rules.pop()["name"]
    result = detect(cluster)
    (event,) = result.events(type="policy", resource="ClusterPolicy/block-image-registries")
    assert event["drift"] == "modified"
    assert event["severity"] == "high"
    assert removed in json.dumps(event["changes"])
    assert removed in result.stdout


def test_kyverno_defaults_and_cosmetic_changes_are_not_drift(cluster: Cluster) -> None:
    for obj in cluster.objects:
        if obj["kind"] != "ClusterPolicy":
            continue
        spec = obj["spec"]
        spec.update({"admission": True, "background": True, "emitWarning": False,
                     "failurePolicy": "Fail", "webhookTimeoutSeconds": 10.0})
        spec["validationFailureAction"] = spec.get("validationFailureAction", "Enforce").lower()
        for rule in spec["rules"]:
            rule["skipBackgroundRequests"] = True
            rule["validate"]["allowExistingViolations"] = True
            rule["validate"]["failureAction"] = rule["validate"].get(
                "failureAction", "Enforce").lower()
        obj["metadata"].setdefault("annotations", {})[
            "kubectl.kubernetes.io/last-applied-configuration"] = '{"kind":"ClusterPolicy"}'
        obj["status"] = {"ready": True, "conditions": [
            {"type": "Ready", "status": "True", "reason": "Succeeded", "message": "Ready",
             "lastTransitionTime": "2026-11-01T00:00:00Z"}]}
        autogen = copy.deepcopy(spec["rules"][0])
        autogen["name"] = "autogen-" + autogen["name"]
        autogen["match"] = {"any": [{"resources": {"kinds": ["Deployment", "StatefulSet"]}}]}
        spec["rules"].append(autogen)  # written by old Kyverno versions: not drift
        obj["spec"] = dict(reversed(list(spec.items())))  # key order never matters
    result = detect(cluster)
    assert result.returncode == 0, result.stdout
    assert result.events() == []


def test_extra_policy_with_kspec_marker_is_drift_without_marker_is_not(cluster: Cluster) -> None:
    template = cluster.policy("require-run-as-non-root")
    marked = {"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy",
              "metadata": {"name": "legacy-kspec-policy",
                           "annotations": {GENERATED_ANNOTATION: "true"},
                           "labels": {MANAGED_BY_LABEL: "kspec"}},
              "spec": template["spec"]}
    unmarked = {"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy",
                "metadata": {"name": "team-owned-policy"}, "spec": template["spec"]}
    cluster.add(marked)
    cluster.add(unmarked)
    result = detect(cluster)
    assert result.item("policy::extra")["status"] == "failed"
    events = result.events(drift="extra")
    assert [e["resource"] for e in events] == ["ClusterPolicy/legacy-kspec-policy"]


def test_privileged_pod_in_app_namespace_is_named_exempt_namespace_is_not(
        cluster: Cluster) -> None:
    cluster.add(_pod("debug-shell", "shop", privileged=True))
    cluster.add(_pod("node-exporter", "monitoring", privileged=True))  # exempted: privileged
    result = detect(cluster)
    events = result.events(check="workloads.containers.forbidden.privileged")
    assert [e["resource"] for e in events] == ["Pod/shop/debug-shell"]
    assert events[0]["drift"] == "violation"
    assert '"app"' in events[0]["message"]
    assert "Pod/shop/debug-shell" in result.stdout
    assert "coredns" not in str(result.events())  # kube-system is skipped
    assert "node-exporter" not in str(result.events())


def test_namespace_without_pod_security_label(cluster: Cluster) -> None:
    cluster.add(_namespace("checkout", level=None))
    result = detect(cluster)
    events = result.events(check="podsecurity.enforce")
    assert [e["resource"] for e in events] == ["Namespace/checkout"]


def test_version_out_of_range(cluster: Cluster) -> None:
    result = detect(cluster, "--kspec-sim-version", "1.31.2")
    assert result.item("configuration::kubernetes.version")["status"] == "failed"
    (event,) = result.events(type="configuration")
    assert event["resource"] == "Cluster/kubernetes"
    assert event["actual"] == {"version": "v1.31.2"}


def test_server_errors_and_forbidden_make_errors_not_passes(cluster: Cluster) -> None:
    with Simulator(objects=cluster.objects, kyverno=True, version="1.29.4") as sim:
        sim.faults.add(path=r"^/api/v1/pods$", status=500, count=1000)
        result = run_pytest(cluster.spec_path.parent, "--kspec-spec", str(cluster.spec_path),
                            "--kspec-kubeconfig", str(sim.kubeconfig_path))
    assert result.returncode == 1
    pod_checks = ["compliance::workloads.containers.forbidden.privileged",
                  "compliance::workloads.containers.required.runAsNonRoot"]
    for key in pod_checks:
        record = result.item(key)
        assert record["status"] == "error", record
        assert "list pods" in record["message"] and "500" in record["message"]
    assert result.item("policy::disallow-privileged-containers")["status"] == "passed"


def test_forbidden_resource_type_is_an_error_naming_verb_and_resource(cluster: Cluster) -> None:
    reader_rules = [{"apiGroups": ["", "kyverno.io", "rbac.authorization.k8s.io",
                                   "networking.k8s.io", "apps", "batch"],
                     "resources": ["namespaces", "clusterpolicies"], "verbs": ["get", "list"]}]
    cluster.add({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                 "metadata": {"name": "kspec-partial"}, "rules": reader_rules})
    cluster.add({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                 "metadata": {"name": "kspec-partial"},
                 "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                             "name": "kspec-partial"},
                 "subjects": [{"kind": "User", "name": "auditor",
                               "apiGroup": "rbac.authorization.k8s.io"}]})
    with Simulator(objects=cluster.objects, kyverno=True, rbac=True,
                   users={"auditor-token": ("auditor", ())}) as sim:
        kubeconfig = sim.kubeconfig_for("auditor-token")
        result = run_pytest(cluster.spec_path.parent, "--kspec-spec", str(cluster.spec_path),
                            "--kspec-kubeconfig", kubeconfig)
    record = result.item("compliance::workloads.containers.forbidden.privileged")
    assert record["status"] == "error"
    assert "cannot list pods" in record["message"] and "403" in record["message"]
    assert result.item("policy::disallow-privileged-containers")["status"] == "passed"
    assert result.item("compliance::podsecurity.enforce")["status"] == "passed"


def test_junit_carries_item_properties(cluster: Cluster) -> None:
    cluster.add(_pod("debug-shell", "shop", privileged=True))
    result = detect(cluster)
    root = ET.parse(result.junit).getroot()
    cases = {c.get("name"): c for c in root.iter("testcase")}
    case = cases["workloads.containers.forbidden.privileged"]
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["kspec.type"] == "compliance"
    assert props["kspec.severity"] == "high"
    assert props["kspec.controls"] == "CIS Kubernetes Benchmark-1.8:5.2.2"
    assert props["kspec.resources"] == "Pod/shop/debug-shell"
    assert case.find("failure") is not None


def _without_times(report: dict[str, Any]) -> dict[str, Any]:
    report = dict(report)
    report.pop("timestamp")
    extra = dict(report.pop("kspec"))
    for key in ("started", "finished", "cluster"):
        extra.pop(key)
    report["kspec"] = extra
    report["events"] = [{k: v for k, v in e.items() if k != "first_seen"}
                        for e in report["events"]]
    return report


def test_xdist_report_equals_serial_report(cluster: Cluster, tmp_path: Path) -> None:
    cluster.remove("ClusterPolicy", "require-run-as-non-root")
    cluster.add(_pod("debug-shell", "shop", privileged=True))
    serial = detect(cluster, "-n", "0")
    parallel = detect(cluster, "-n", "2")
    assert serial.report is not None and parallel.report is not None
    assert serial.report["drift"]["detected"] is True
    assert _without_times(parallel.report) == _without_times(serial.report)


def test_custom_checks_run_beside_the_spec_items(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    result = run_pytest(repo, "checks/", "-v", "--kspec-spec", "examples/moderate.yaml",
                        "--kspec-sim", "examples/demo-cluster.yaml",
                        "--kspec-reports", str(tmp_path / "reports"))
    out = result.stdout
    assert "checks/test_workload_hygiene.py::test_no_image_uses_the_latest_tag" in out
    assert "examples/moderate.yaml::policy::block-image-registries FAILED" in out
    report = (tmp_path / "reports" / "drift-report.json").read_text()
    assert "ClusterPolicy/block-image-registries" in report
