"""Everything a live cluster adds to a policy, and every equal-but-differently-spelled value,
compares equal: one case per fact in reference/kyverno-defaults.md."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from drift_policies import defaulted, expected_policy, live_copy, rule

from pytest_kspec.detect import compare_policy
from pytest_kspec.detect.normalize import normalize_policy

Policy = dict[str, Any]


def _spec_default(key: str, value: Any) -> Callable[[Policy, Policy], None]:
    def apply(expected: Policy, live: Policy) -> None:
        expected["spec"].pop(key, None)
        live["spec"][key] = value
    return apply


def _rule_default(key: str, value: Any) -> Callable[[Policy, Policy], None]:
    def apply(expected: Policy, live: Policy) -> None:
        for r in live["spec"]["rules"]:
            r[key] = value
    return apply


def _validate_default(key: str, value: Any) -> Callable[[Policy, Policy], None]:
    def apply(expected: Policy, live: Policy) -> None:
        for r in live["spec"]["rules"]:
            r["validate"][key] = value
    return apply


def _api_call_method(expected: Policy, live: Policy) -> None:
    entry: dict[str, Any] = {"name": "nsLabels", "apiCall": {
        "urlPath": "/api/v1/namespaces/{{request.namespace}}", "jmesPath": "metadata.labels"}}
    rule(expected, "check-privileged")["context"] = [copy.deepcopy(entry)]
    entry["apiCall"]["method"] = "GET"
    rule(live, "check-privileged")["context"] = [entry]


def _default_action(expected: Policy, live: Policy) -> None:
    expected["spec"].pop("validationFailureAction")
    live["spec"]["validationFailureAction"] = "Audit"


def _lowercase_action(expected: Policy, live: Policy) -> None:
    live["spec"]["validationFailureAction"] = "enforce"


def _timeout_float(expected: Policy, live: Policy) -> None:
    expected["spec"]["webhookTimeoutSeconds"] = 10
    live["spec"]["webhookTimeoutSeconds"] = 10.0


def _timeout_float_reverse(expected: Policy, live: Policy) -> None:
    expected["spec"]["webhookTimeoutSeconds"] = 10.0
    live["spec"]["webhookTimeoutSeconds"] = 10


def _autogen_rules(expected: Policy, live: Policy) -> None:
    for r in list(live["spec"]["rules"]):
        auto = copy.deepcopy(r)
        auto["name"] = f"autogen-{r['name']}"
        auto["match"] = {"any": [{"resources": {"kinds": ["Deployment", "StatefulSet"]}}]}
        live["spec"]["rules"].append(auto)


def _rule_level_action(expected: Policy, live: Policy) -> None:
    live["spec"].pop("validationFailureAction")
    for r in live["spec"]["rules"]:
        r["validate"]["failureAction"] = "Enforce"


def _key_order(expected: Policy, live: Policy) -> None:
    live["spec"] = dict(reversed(list(live["spec"].items())))
    for r in live["spec"]["rules"]:
        r["validate"] = dict(reversed(list(r["validate"].items())))
    live["spec"]["rules"].reverse()


def _old_kyverno_empty_fields(expected: Policy, live: Policy) -> None:
    for r in live["spec"]["rules"]:
        r.setdefault("exclude", {"resources": {}})
        r["mutate"] = {}
        r["generate"] = {"clone": {}}


def _extra_live_metadata(expected: Policy, live: Policy) -> None:
    live["metadata"]["selfLink"] = "/apis/kyverno.io/v1/clusterpolicies/x"
    live["metadata"]["labels"]["argocd.argoproj.io/instance"] = "policies"


def _match_list_order(expected: Policy, live: Policy) -> None:
    for p in (expected, live):
        rule(p, "check-privileged")["match"]["any"][0]["resources"]["kinds"] = (
            ["Pod", "Deployment"] if p is expected else ["Deployment", "Pod"])


DEFAULTS: dict[str, Callable[[Policy, Policy], None]] = {
    "spec.admission=true": _spec_default("admission", True),
    "spec.background=true": _spec_default("background", True),
    "spec.emitWarning=false": _spec_default("emitWarning", False),
    "spec.auditWarning=false": _spec_default("auditWarning", False),
    "spec.validationFailureAction=Audit": _default_action,
    "validationFailureAction lowercase enforce": _lowercase_action,
    "spec.failurePolicy=Fail": _spec_default("failurePolicy", "Fail"),
    "spec.webhookTimeoutSeconds=10": _spec_default("webhookTimeoutSeconds", 10),
    "webhookTimeoutSeconds 10 vs 10.0": _timeout_float,
    "webhookTimeoutSeconds 10.0 vs 10": _timeout_float_reverse,
    "rules[].skipBackgroundRequests=true": _rule_default("skipBackgroundRequests", True),
    "rules[].validate.allowExistingViolations=true":
        _validate_default("allowExistingViolations", True),
    "rules[].context[].apiCall.method=GET": _api_call_method,
    "rule-level failureAction instead of spec-level": _rule_level_action,
    "autogen rules in spec.rules": _autogen_rules,
    "key and rule order": _key_order,
    "empty exclude/mutate/generate of old Kyverno": _old_kyverno_empty_fields,
    "selfLink and foreign labels": _extra_live_metadata,
    "order of kinds in match": _match_list_order,
}


@pytest.mark.parametrize("apply", DEFAULTS.values(), ids=DEFAULTS.keys())
def test_default_is_not_drift(apply: Callable[[Policy, Policy], None]) -> None:
    expected = expected_policy()
    live = live_copy(expected)
    apply(expected, live)
    assert compare_policy(expected, live) is None


def test_fully_defaulted_live_policy_is_not_drift(expected: Policy, live: Policy) -> None:
    assert live["status"] and live["metadata"]["managedFields"]
    assert compare_policy(expected, live) is None


def test_every_default_at_once_is_not_drift() -> None:
    expected = expected_policy()
    live = defaulted(live_copy(expected))
    for name, apply in DEFAULTS.items():
        if name != "spec.validationFailureAction=Audit":  # the policy under test is Enforce
            apply(expected, live)
    assert compare_policy(expected, live) is None


def test_normalize_does_not_change_its_input(live: Policy) -> None:
    before = copy.deepcopy(live)
    normalize_policy(live)
    assert live == before


def test_normalized_form_has_effective_actions_and_no_server_fields(live: Policy) -> None:
    live["spec"]["validationFailureAction"] = "enforce"
    rule(live, "check-privileged")["validate"]["failureAction"] = "audit"
    norm = normalize_policy(live)
    assert set(norm) == {"metadata", "spec"}
    assert "uid" not in norm["metadata"] and "managedFields" not in norm["metadata"]
    assert "kubectl.kubernetes.io/last-applied-configuration" not in norm["metadata"][
        "annotations"]
    rules = norm["spec"]["rules"]
    assert list(rules) == ["check-privileged", "check-privileged-ephemeral"]
    assert rules["check-privileged"]["validate"]["failureAction"] == "Audit"
    assert rules["check-privileged-ephemeral"]["validate"]["failureAction"] == "Enforce"
    assert "validationFailureAction" not in norm["spec"]


def test_deletion_timestamp_is_kept_and_weakens(expected: Policy, live: Policy) -> None:
    live["metadata"]["deletionTimestamp"] = "2025-01-15T10:29:58Z"
    live["metadata"]["deletionGracePeriodSeconds"] = 0
    cmp = compare_policy(expected, live)
    assert cmp is not None and cmp.severity == "high"
    assert [c.path for c in cmp.changes] == ["metadata.deletionTimestamp"]


def test_crd_default_audit_beside_rule_level_enforce_is_not_drift() -> None:
    """kspec generates rule-level Enforce; the CRD still fills spec-level Audit."""
    expected = expected_policy()
    expected["spec"].pop("validationFailureAction")
    for r in expected["spec"]["rules"]:
        r["validate"]["failureAction"] = "Enforce"
    live = defaulted(live_copy(expected))
    live["spec"]["validationFailureAction"] = "Audit"
    assert compare_policy(expected, live) is None
    rule(live, "check-privileged")["validate"].pop("failureAction")
    cmp = compare_policy(expected, live)
    assert cmp is not None and cmp.severity == "high"
    assert [c.path for c in cmp.changes] == [
        "spec.rules[check-privileged].validate.failureAction"]


def test_webhook_configuration_twins_are_equivalent() -> None:
    expected = expected_policy()
    expected["spec"]["failurePolicy"] = "Fail"
    expected["spec"]["webhookTimeoutSeconds"] = 15
    live = defaulted(live_copy(expected))
    for key in ("failurePolicy", "webhookTimeoutSeconds"):
        live["spec"].pop(key)
    live["spec"]["webhookConfiguration"] = {"failurePolicy": "Fail", "timeoutSeconds": 15.0}
    assert compare_policy(expected, live) is None
