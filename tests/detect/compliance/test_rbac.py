"""RBAC: forbidden rules with wildcards on both sides; minimum rules covered by some role."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_kspec.detect import evaluate

from .fakes import MemorySnapshot, ref_for, role

WILD = {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}
SECRETS_READ = {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}


def forbid(group: str, resource: str, verbs: list[str]) -> dict[str, Any]:
    return {"rbac": {"forbiddenRules": [{"apiGroup": group, "resource": resource,
                                         "verbs": verbs}]}}


def minimum(group: str, resource: str, verbs: list[str]) -> dict[str, Any]:
    return {"rbac": {"minimumRules": [{"apiGroup": group, "resource": resource,
                                       "verbs": verbs}]}}


@pytest.mark.parametrize(
    ("spec_rule", "role_rule", "flagged"),
    [
        (("*", "*", ["*"]), WILD, True),
        (("*", "*", ["*"]), {"apiGroups": [""], "resources": ["*"], "verbs": ["*"]}, False),
        (("*", "*", ["*"]), {"apiGroups": ["*"], "resources": ["*"], "verbs": ["get"]}, False),
        (("", "secrets", ["get"]), WILD, True),
        (("", "secrets", ["get"]), SECRETS_READ, True),
        (("", "secrets", ["delete"]), SECRETS_READ, False),
        (("", "secrets", ["get"]), {"apiGroups": ["apps"], "resources": ["secrets"],
                                    "verbs": ["get"]}, False),
        (("", "pods/exec", ["create"]), {"apiGroups": [""], "resources": ["*/exec"],
                                         "verbs": ["create"]}, True),
        (("", "pods/exec", ["create"]), {"apiGroups": [""], "resources": ["pods"],
                                         "verbs": ["create"]}, False),
        (("", "secrets", ["get"]), {"nonResourceURLs": ["/healthz"], "verbs": ["get"]}, False),
    ],
)
def test_forbidden_wildcards(spec_rule: tuple[str, str, list[str]], role_rule: dict[str, Any],
                             flagged: bool) -> None:
    snap = MemorySnapshot(role("custom", [role_rule]))
    res = evaluate(ref_for(forbid(*spec_rule)), snap)
    assert (not res.passed) is flagged


def test_forbidden_exemptions_and_messages() -> None:
    snap = MemorySnapshot(
        role("system:controller:x", [WILD]),
        role("cluster-admin", [WILD], labels={"kubernetes.io/bootstrapping": "rbac-defaults"}),
        role("cluster-admin-copy", [SECRETS_READ, WILD]),
        role("ci-deployer", [WILD], ns="ci"),
        role("sys-role", [WILD], ns="kube-system"),
        role("aggregated", [], aggregationRule={"clusterRoleSelectors": []}),
    )
    res = evaluate(ref_for(forbid("*", "*", ["*"])), snap)
    assert [str(v) for v in res.violations] == [
        "ClusterRole/cluster-admin-copy: rules[1] grants verbs=* resources=* apiGroups=*",
        "Role/ci/ci-deployer: rules[0] grants verbs=* resources=* apiGroups=*",
    ]
    assert res.evaluated == 3  # cluster-admin-copy, aggregated, ci-deployer
    assert res.summary == "2 of 3 roles violate: No role grants * on */*"


def test_forbidden_default_role_name_without_bootstrap_label_is_checked() -> None:
    snap = MemorySnapshot(role("cluster-admin", [WILD]))
    assert not evaluate(ref_for(forbid("*", "*", ["*"])), snap).passed


@pytest.mark.parametrize(
    ("rules", "passed"),
    [
        ([SECRETS_READ], True),
        ([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}], False),
        ([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}], True),
        ([{**SECRETS_READ, "resourceNames": ["tls"]}], False),
        ([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
          {"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}], False),
    ],
)
def test_minimum_rule(rules: list[dict[str, Any]], passed: bool) -> None:
    snap = MemorySnapshot(role("reader", rules, ns="ops"))
    res = evaluate(ref_for(minimum("", "secrets", ["get", "list"])), snap)
    assert res.passed is passed
    if passed:
        assert res.summary == "Role/ops/reader grants get,list on secrets (apiGroup core)"
    else:
        assert [str(v) for v in res.violations] == [
            "ClusterRole/*: no Role or ClusterRole grants get,list on secrets (apiGroup core)"]
