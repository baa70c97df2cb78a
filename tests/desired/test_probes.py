"""Probe pods: the base meets every workload rule of the spec, each probe breaks its own.

kspec's compliance checks judge workloads the way the generated policies do (one meaning per
rule), so they tell whether a probe pod breaks the policy it is built for and nothing else.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from pytest_kspec.desired import (
    catalog,
    enumerate_checks,
    expected_policies,
    generate_policies,
    probe_pod,
)
from pytest_kspec.desired.probes import PROBES, compliant_pod
from pytest_kspec.detect.compliance import ComplianceOptions, evaluate
from pytest_kspec.spec import load_spec

STRICT = Path(__file__).resolve().parents[2] / "examples" / "strict.yaml"


class _Pods:
    """A snapshot holding one pod (and its namespace)."""

    def __init__(self, pod: dict[str, Any]) -> None:
        self.pod = copy.deepcopy(pod)
        self.pod["metadata"]["name"] = "kspec-probe-x"
        self.pod["metadata"]["uid"] = "uid-1"

    def list(self, api_version: str, kind: str,
             namespace: str | None = None) -> list[dict[str, Any]]:
        if kind == "Pod":
            return [self.pod]
        if kind == "Namespace":
            return [{"apiVersion": "v1", "kind": "Namespace",
                     "metadata": {"name": "default", "labels": {}}}]
        return []

    def server_version(self) -> dict[str, str]:
        return {"major": "1", "minor": "30", "gitVersion": "v1.30.2"}


def _violated(body: dict[str, Any], pod: dict[str, Any]) -> set[str]:
    options = ComplianceOptions.for_spec(body)
    refs = [r for r in enumerate_checks(body)
            if r.type == "compliance" and r.id.startswith("workloads.")
            and "Signatures" not in r.id]
    return {r.id for r in refs if not evaluate(r, _Pods(pod), options).passed}  # type: ignore[arg-type]


def test_the_base_pod_meets_every_workload_rule_of_the_strict_example() -> None:
    body = load_spec(STRICT).body
    assert _violated(body, compliant_pod(body, "default", "x")) == set()


@pytest.mark.parametrize("policy", sorted(PROBES))
def test_each_probe_breaks_the_rule_of_its_policy(policy: str) -> None:
    spec = load_spec(STRICT)
    body = spec.body
    if policy not in catalog.generated_policy_names(body):
        pytest.skip(f"{STRICT.name} does not generate {policy}")
    built = probe_pod(policy, body, "shop")
    assert built is not None
    what, pod = built
    assert what and pod["metadata"]["namespace"] == "shop"
    assert pod["metadata"]["labels"]["kspec.dev/probe"] == policy
    broken = _violated(body, pod)
    assert broken, f"the {policy} probe pod breaks no workload rule"
    others = {p: _violated(body, probe_pod(p, body, "shop")[1])  # type: ignore[index]
              for p in PROBES if p != policy and p in catalog.generated_policy_names(body)}
    assert all(broken != v for v in others.values()), (broken, others)


def test_policies_without_a_probe_are_not_probed() -> None:
    spec = load_spec(STRICT)
    assert probe_pod("some-required-policy", spec.body, "default") is None
    names = {p.name for p in expected_policies(spec) if p.manifest is not None}
    assert names <= set(PROBES), names - set(PROBES)


def test_kyverno_admission_refuses_each_probe_for_its_own_policy_only() -> None:
    """The simulator's Kyverno admission (Kyverno's semantics) on the generated policies."""
    from pytest_kspec.sim.admission import review

    spec = load_spec(STRICT)
    policies = generate_policies(spec)

    def named(pod: dict[str, Any]) -> dict[str, Any]:
        return {**pod, "metadata": {**pod["metadata"], "name": "kspec-probe-x"}}

    assert review(policies, named(compliant_pod(spec.body, "shop", "x")),
                  operation="CREATE") == []
    for name in sorted(PROBES):
        built = probe_pod(name, spec.body, "shop")
        assert built is not None
        failures = review(policies, named(built[1]), operation="CREATE")
        assert {f.policy for f in failures} == {name}, (name, failures)
