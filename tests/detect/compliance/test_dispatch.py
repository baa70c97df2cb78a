"""Dispatcher: every catalog kind has an evaluator; resources_needed; unknown kinds."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pytest_kspec.desired import CheckRef, enumerate_checks
from pytest_kspec.detect.compliance import (
    ComplianceError,
    evaluate,
    resources_needed,
    supports,
)

from .fakes import MemorySnapshot, container, namespace, netpol, pod, ref_for

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def example_refs(name: str) -> list[CheckRef]:
    body = yaml.safe_load((EXAMPLES / name).read_text())["spec"]
    return [r for r in enumerate_checks(body) if r.type == "compliance"]


@pytest.mark.parametrize("name", ["minimal.yaml", "moderate.yaml", "strict.yaml"])
def test_every_example_check_evaluates(name: str) -> None:
    snap = MemorySnapshot(
        namespace("payments"), namespace("kube-system"),
        netpol("default-deny-all", "payments", policyTypes=["Ingress", "Egress"]),
        pod("web", containers=[container(image="nginx")]),
    )
    refs = example_refs(name)
    assert refs
    for ref in refs:
        assert supports(ref.kind), ref.kind
        needed = resources_needed(ref)
        assert needed and all(len(pair) == 2 for pair in needed)
        res = evaluate(ref, snap)
        assert res.ref == ref
        assert res.summary
        listed = {(api, kind) for api, kind, _ in snap.calls}
        assert set(needed) <= listed, (ref.kind, needed, listed)


def test_resources_needed() -> None:
    assert resources_needed(ref_for({"network": {"defaultDeny": True}})) == [
        ("v1", "Namespace"), ("networking.k8s.io/v1", "NetworkPolicy")]
    adm = ref_for({"admission": {"required": [
        {"type": "MutatingWebhookConfiguration", "namePattern": "x"}]}})
    assert resources_needed(adm) == [
        ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration")]


def test_unknown_kind() -> None:
    version = next(r for r in enumerate_checks({"kubernetes": {"minVersion": "1.29.0"}}))
    assert not supports(version.kind)
    with pytest.raises(ComplianceError, match=r"spec\.kubernetes: no compliance check for kind "
                                              r"'kubernetes\.version'"):
        evaluate(version, MemorySnapshot())
    with pytest.raises(ComplianceError):
        resources_needed(version)
