"""Admission (webhooks by name pattern, Kyverno policy count) and observability checks."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_kspec.detect.compliance import ComplianceError, evaluate
from pytest_kspec.detect.compliance.observability import audit_problems, parse_flags
from pytest_kspec.errors import ApiError

from .fakes import MemorySnapshot, cluster_policy, container, meta, pod, ref_for

ADM = "admissionregistration.k8s.io/v1"


def webhook(name: str, kind: str = "ValidatingWebhookConfiguration") -> dict[str, Any]:
    return {"apiVersion": ADM, "kind": kind, "metadata": meta(name), "webhooks": []}


def required(pattern: str, min_count: int | None = None,
             kind: str = "ValidatingWebhookConfiguration") -> dict[str, Any]:
    req: dict[str, Any] = {"type": kind, "namePattern": pattern}
    if min_count is not None:
        req["minCount"] = min_count
    return {"admission": {"required": [req]}}


WEBHOOKS = [webhook("kyverno-resource-validating-webhook-cfg"),
            webhook("kyverno-policy-validating-webhook-cfg"),
            webhook("gatekeeper-validating-webhook-configuration"),
            webhook("kyverno-resource-mutating-webhook-cfg", "MutatingWebhookConfiguration")]


@pytest.mark.parametrize(
    ("pattern", "min_count", "expected"),
    [
        ("kyverno", None, None),
        ("kyverno", 2, None),
        ("kyverno", 3,
         "ValidatingWebhookConfiguration/kyverno: found 2 matching /kyverno/, need 3: "
         "kyverno-policy-validating-webhook-cfg, kyverno-resource-validating-webhook-cfg"),
        ("^gatekeeper$", None,
         "ValidatingWebhookConfiguration/^gatekeeper$: found 0 matching /^gatekeeper$/, "
         "need 1: none"),
        ("gatekeeper", 1, None),
    ],
)
def test_required_webhooks(pattern: str, min_count: int | None, expected: str | None) -> None:
    res = evaluate(ref_for(required(pattern, min_count)), MemorySnapshot(*WEBHOOKS))
    assert [str(v) for v in res.violations] == ([expected] if expected else [])
    assert res.evaluated == 3


def test_required_mutating_counts_only_mutating() -> None:
    ref = ref_for(required("kyverno", 2, "MutatingWebhookConfiguration"))
    [v] = evaluate(ref, MemorySnapshot(*WEBHOOKS)).violations
    assert v.message == ("found 1 matching /kyverno/, need 2: "
                         "kyverno-resource-mutating-webhook-cfg")


def test_required_bad_pattern_is_a_clear_error() -> None:
    with pytest.raises(ComplianceError, match=r"spec.admission.required\[0\].namePattern: "
                                              r"'kyverno\(' is not a valid regular expression"):
        evaluate(ref_for(required("kyverno(")), MemorySnapshot())


def policies_body(n: int) -> dict[str, Any]:
    return {"admission": {"policies": {"minCount": n}}}


def test_policy_min_count() -> None:
    snap = MemorySnapshot(cluster_policy("require-run-as-non-root"),
                          cluster_policy("disallow-privileged-containers"))
    assert evaluate(ref_for(policies_body(2)), snap).passed
    [v] = evaluate(ref_for(policies_body(3)), snap).violations
    assert str(v) == ("ClusterPolicy/*: found 2 Kyverno ClusterPolicies, need 3: "
                      "disallow-privileged-containers, require-run-as-non-root")


def test_policy_min_count_without_kyverno_crd() -> None:
    snap = MemorySnapshot(fail={("kyverno.io/v1", "ClusterPolicy"): 404})
    [v] = evaluate(ref_for(policies_body(1)), snap).violations
    assert v.message == "Kyverno's ClusterPolicy CRD is not installed (found 0, need 1)"


def test_policy_min_count_forbidden_propagates() -> None:
    snap = MemorySnapshot(fail={("kyverno.io/v1", "ClusterPolicy"): 403})
    with pytest.raises(ApiError):
        evaluate(ref_for(policies_body(1)), snap)


def workload(kind: str, name: str, ns: str, replicas: int = 1,
             labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": meta(name, ns, labels=labels or {}),
            "spec": {"replicas": replicas}}


METRICS = {"observability": {"metrics": {"required": True,
                                         "providers": ["prometheus", "metrics-server"]}}}


@pytest.mark.parametrize(
    ("objects", "summary"),
    [
        ([workload("Deployment", "metrics-server", "kube-system")],
         "metrics provider metrics-server runs: Deployment/kube-system/metrics-server"),
        ([workload("StatefulSet", "prom-k8s", "monitoring",
                   labels={"app.kubernetes.io/name": "prometheus"})],
         "metrics provider prometheus runs: StatefulSet/monitoring/prom-k8s"),
        ([workload("Deployment", "kube-prometheus-stack-operator", "monitoring")],
         "metrics provider prometheus runs: "
         "Deployment/monitoring/kube-prometheus-stack-operator"),
    ],
)
def test_metrics_provider_found(objects: list[dict[str, Any]], summary: str) -> None:
    res = evaluate(ref_for(METRICS), MemorySnapshot(*objects))
    assert res.passed
    assert res.summary == summary


def test_metrics_provider_missing() -> None:
    snap = MemorySnapshot(workload("Deployment", "prometheusx", "monitoring"),
                          workload("Deployment", "metrics-server", "kube-system", replicas=0))
    [v] = evaluate(ref_for(METRICS), snap).violations
    assert str(v) == "Cluster: no metrics provider found (looked for prometheus, metrics-server)"


AUDIT = {"observability": {"logging": {"auditLog": {"required": True,
                                                     "minRetentionDays": 30}}}}


def apiserver(*flags: str) -> dict[str, Any]:
    p = pod("kube-apiserver-cp1", ns="kube-system", containers=[container(
        "kube-apiserver", image="registry.k8s.io/kube-apiserver:v1.30.2",
        command=["kube-apiserver", "--secure-port=6443", *flags])])
    p["metadata"]["labels"] = {"component": "kube-apiserver", "tier": "control-plane"}
    return p


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--audit-policy-file=/etc/k/audit.yaml", "--audit-log-path=/var/log/audit.log",
          "--audit-log-maxage=30"], None),
        (["--audit-policy-file=/etc/k/audit.yaml", "--audit-log-path", "/var/log/a.log"], None),
        (["--audit-policy-file=/etc/k/audit.yaml", "--audit-log-path=/var/log/a.log",
          "--audit-log-maxage=7"], "--audit-log-maxage=7 is below the required 30 days"),
        (["--audit-policy-file=/p", "--audit-log-path=-"],
         "audit log goes to stdout (--audit-log-path=-): a retention of 30 days cannot be "
         "verified"),
        ([], "--audit-policy-file is not set (no audit events are recorded); "
             "--audit-log-path is not set (audit log is off)"),
    ],
)
def test_audit_log_flags(flags: list[str], expected: str | None) -> None:
    res = evaluate(ref_for(AUDIT), MemorySnapshot(apiserver(*flags), pod("web")))
    assert [str(v) for v in res.violations] == (
        [f"Pod/kube-system/kube-apiserver-cp1: {expected}"] if expected else [])
    assert res.evaluated == 1


def test_audit_log_managed_control_plane() -> None:
    [v] = evaluate(ref_for(AUDIT), MemorySnapshot(pod("coredns", ns="kube-system"))).violations
    assert v.resource == "Cluster"
    assert v.message.startswith("no kube-apiserver pod visible in kube-system")
    assert "cannot be verified from the API" in v.message


def test_parse_flags() -> None:
    assert parse_flags(["kube-apiserver", "--a=1", "--b", "2", "--c", "--d="]) == {
        "a": "1", "b": "2", "c": "", "d": ""}
    assert audit_problems({"audit-policy-file": "/p", "audit-log-path": "/l",
                           "audit-log-maxage": "x"}, 1) == [
        "--audit-log-maxage=x is not a number of days"]
