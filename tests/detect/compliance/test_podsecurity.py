"""Pod Security Standards labels: levels, strictness order, exemptions, system namespaces."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_kspec.detect.compliance import ComplianceError, ComplianceOptions, evaluate

from .fakes import MemorySnapshot, namespace, ref_for

ENFORCE = "pod-security.kubernetes.io/enforce"


def body(level: str = "restricted",
         exemptions: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {"podSecurity": {"enforce": level, "exemptions": exemptions or []}}


@pytest.mark.parametrize(
    ("labels", "want", "expected"),
    [
        ({}, "restricted",
         ["Namespace/payments: missing label pod-security.kubernetes.io/enforce "
          "(want restricted)"]),
        ({ENFORCE: "baseline"}, "restricted",
         ["Namespace/payments: label pod-security.kubernetes.io/enforce=baseline is weaker "
          "than restricted"]),
        ({ENFORCE: "restricted"}, "restricted", []),
        ({ENFORCE: "restricted"}, "baseline", []),  # stricter than required complies
        ({ENFORCE: "strict"}, "baseline",
         ["Namespace/payments: label pod-security.kubernetes.io/enforce=strict is not a valid "
          "level (want baseline)"]),
        ({}, "privileged", []),
    ],
)
def test_levels(labels: dict[str, str], want: str, expected: list[str]) -> None:
    snap = MemorySnapshot(namespace("payments", **labels), namespace("kube-system"))
    res = evaluate(ref_for(body(want)), snap)
    assert [str(v) for v in res.violations] == expected
    assert res.evaluated == 1  # kube-system skipped
    assert res.passed is (not expected)


def test_exemption_sets_the_level_at_least() -> None:
    exemptions = [{"namespace": "ingress", "level": "baseline", "reason": "hostPorts"},
                  {"namespace": "kube-system", "level": "privileged", "reason": "cni"}]
    snap = MemorySnapshot(
        namespace("ingress", **{ENFORCE: "baseline"}),
        namespace("monitoring", **{ENFORCE: "baseline"}),
        namespace("legacy-exempt"),
        namespace("kube-system"),
    )
    legacy = {"namespace": "legacy-exempt", "level": "baseline", "reason": "x"}
    ref = ref_for(body("restricted", [*exemptions, legacy]))
    res = evaluate(ref, snap)
    assert [str(v) for v in res.violations] == [
        "Namespace/monitoring: label pod-security.kubernetes.io/enforce=baseline is weaker "
        "than restricted",
        "Namespace/legacy-exempt: missing label pod-security.kubernetes.io/enforce "
        "(want baseline)",
    ]
    assert res.evaluated == 4  # the exemption brings kube-system in
    assert res.summary == ("2 of 4 namespaces violate: Namespaces carry "
                           "pod-security.kubernetes.io/enforce=restricted")


def test_audit_mode_reads_its_own_label() -> None:
    snap = MemorySnapshot(namespace("payments", **{ENFORCE: "restricted"}))
    ref = ref_for({"podSecurity": {"audit": "restricted"}})
    assert ref.id == "podsecurity.audit"
    [v] = evaluate(ref, snap).violations
    assert v.message == "missing label pod-security.kubernetes.io/audit (want restricted)"
    assert (v.kind, v.name, v.namespace) == ("Namespace", "payments", None)


def test_include_system_namespaces() -> None:
    snap = MemorySnapshot(namespace("kube-system"))
    opts = ComplianceOptions(include_system_namespaces=True)
    assert [v.resource for v in evaluate(ref_for(body()), snap, opts).violations] == [
        "Namespace/kube-system"]


def test_bad_level_is_a_clear_error() -> None:
    with pytest.raises(ComplianceError, match=r"spec.podSecurity.enforce: pod security level "
                                              r"'strict' is not one of"):
        evaluate(ref_for(body("strict")), MemorySnapshot(namespace("a")))
