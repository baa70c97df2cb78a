"""Extra policies (kspec-marked only) and the report shape of drift events."""

from __future__ import annotations

from typing import Any

from drift_policies import expected_policy

from pytest_kspec.detect.policydrift import (
    DriftEvent,
    FieldChange,
    compare_policy,
    extra_event,
    find_extra,
)


def _policy(name: str, *, annotations: dict[str, str] | None = None,
            labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy",
            "metadata": {"name": name, "annotations": annotations or {},
                         "labels": labels or {}},
            "spec": {"rules": [{"name": "r", "validate": {"message": "m",
                                                          "pattern": {"x": "y"}}}]}}


def test_find_extra_returns_only_marked_unexpected_policies() -> None:
    live = [
        _policy("disallow-privileged-containers", annotations={"kspec.dev/generated": "true"}),
        _policy("old-kspec-policy", annotations={"kspec.dev/generated": "true"}),
        _policy("labelled-kspec-policy", labels={"app.kubernetes.io/managed-by": "kspec"}),
        _policy("team-policy"),
        _policy("helm-policy", labels={"app.kubernetes.io/managed-by": "Helm"}),
        _policy("not-generated", annotations={"kspec.dev/generated": "false"}),
    ]
    extra = find_extra(["disallow-privileged-containers"], live)
    assert [p["metadata"]["name"] for p in extra] == ["old-kspec-policy",
                                                      "labelled-kspec-policy"]


def test_find_extra_is_empty_when_all_expected() -> None:
    live = [_policy("a", annotations={"kspec.dev/generated": "true"})]
    assert find_extra({"a"}, live) == []


def test_extra_event() -> None:
    event = extra_event(_policy("old-kspec-policy", annotations={"kspec.dev/generated": "true"}))
    report = event.to_report()
    assert (report["drift"], report["resource"], report["severity"]) == (
        "extra", "ClusterPolicy/old-kspec-policy", "low")
    assert report["expected"] is None and report["actual"]["name"] == "old-kspec-policy"


PLAN_DELETED = {
    "type": "policy",
    "severity": "high",
    "resource": "ClusterPolicy/require-run-as-non-root",
    "drift": "deleted",
    "expected": {"name": "require-run-as-non-root", "validationFailureAction": "Enforce"},
    "actual": None,
    "remediation": {"action": "create", "status": "applied",
                    "timestamp": "2025-01-15T10:30:05Z"},
}
PLAN_COMPLIANCE = {
    "type": "compliance",
    "severity": "high",
    "check": "workload-security",
    "drift": "new-violation",
    "resource": "Pod/default/privileged-pod",
    "message": "Privileged pod detected in production namespace",
    "remediation": {"action": "report", "status": "manual-required"},
}


def test_policy_event_has_the_plans_shape() -> None:
    event = DriftEvent(type="policy", severity="high",
                       resource="ClusterPolicy/require-run-as-non-root", drift="deleted",
                       expected={"name": "require-run-as-non-root",
                                 "validationFailureAction": "Enforce"},
                       remediation=PLAN_DELETED["remediation"])  # type: ignore[arg-type]
    report = event.to_report()
    assert report == PLAN_DELETED
    assert list(report) == list(PLAN_DELETED)


def test_compliance_event_has_the_plans_shape() -> None:
    event = DriftEvent(type="compliance", severity="high", check="workload-security",
                       drift="new-violation", resource="Pod/default/privileged-pod",
                       message="Privileged pod detected in production namespace",
                       remediation=PLAN_COMPLIANCE["remediation"])  # type: ignore[arg-type]
    report = event.to_report()
    assert report == PLAN_COMPLIANCE
    assert list(report) == list(PLAN_COMPLIANCE)


def test_extras_appear_only_when_set() -> None:
    change = FieldChange("spec.background", True, False, True, "kubectl-edit",
                         "2025-01-15T10:29:58Z")
    event = DriftEvent(type="policy", severity="high", resource="ClusterPolicy/p",
                       drift="modified", node_id="spec.yaml::policy::p", changes=[change],
                       controls=["CIS-1.8:5.2.1"], first_seen="2025-01-15T10:30:00Z")
    report = event.to_report()
    assert list(report)[:7] == ["type", "severity", "resource", "drift", "expected", "actual",
                                "remediation"]
    assert report["changes"] == [{"path": "spec.background", "expected": True,
                                  "actual": False, "weakening": True,
                                  "manager": "kubectl-edit",
                                  "time": "2025-01-15T10:29:58Z"}]
    assert report["node_id"] == "spec.yaml::policy::p"
    assert report["controls"] == ["CIS-1.8:5.2.1"]
    assert report["first_seen"] == "2025-01-15T10:30:00Z"
    bare = DriftEvent(type="policy", severity="low", resource="ClusterPolicy/p",
                      drift="modified").to_report()
    assert set(bare) == {"type", "severity", "resource", "drift", "expected", "actual",
                         "remediation"}


def test_comparison_event_from_a_real_comparison() -> None:
    expected = expected_policy()
    cmp = compare_policy(expected, None, seen_before=True)
    assert cmp is not None
    report = cmp.to_event("disallow-privileged-containers",
                          node_id="s.yaml::policy::disallow-privileged-containers").to_report()
    assert report["drift"] == "deleted" and report["actual"] is None
    assert report["expected"]["validationFailureAction"] == "Enforce"
    assert report["message"].startswith("ClusterPolicy/disallow-privileged-containers was "
                                        "deleted")
