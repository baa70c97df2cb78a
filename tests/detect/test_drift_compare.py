"""Real drift is found, named by rule, and its severity follows posture."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from drift_policies import edit_entry, rule

from pytest_kspec.detect.policydrift import (
    FieldChange,
    compare_policy,
    compare_presence,
    max_severity,
    render_policy_drift,
    severity_at_least,
)

Policy = dict[str, Any]
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "moderate.yaml"
ACTION_PATH = "spec.rules[check-privileged].validate.failureAction"


def _paths(changes: list[FieldChange]) -> list[str]:
    return [c.path for c in changes]


def test_spec_level_enforce_to_audit_is_high_and_names_each_rule(
        expected: Policy, live: Policy) -> None:
    live["spec"]["validationFailureAction"] = "Audit"
    cmp = compare_policy(expected, live)
    assert cmp is not None
    assert (cmp.drift, cmp.severity) == ("modified", "high")
    assert sorted(_paths(cmp.changes)) == sorted([
        ACTION_PATH, "spec.rules[check-privileged-ephemeral].validate.failureAction"])
    assert all(c.weakening and (c.expected, c.actual) == ("Enforce", "Audit")
               for c in cmp.changes)
    assert cmp.expected_summary == {"name": "disallow-privileged-containers",
                                    "validationFailureAction": "Enforce",
                                    "rules": ["check-privileged",
                                              "check-privileged-ephemeral"]}
    assert cmp.actual_summary is not None
    assert cmp.actual_summary["validationFailureAction"] == "Audit"


def test_rule_level_audit_overrides_spec_enforce(expected: Policy, live: Policy) -> None:
    rule(live, "check-privileged")["validate"]["failureAction"] = "Audit"
    cmp = compare_policy(expected, live)
    assert cmp is not None and cmp.severity == "high"
    assert _paths(cmp.changes) == [ACTION_PATH]
    assert cmp.actual_summary is not None
    assert cmp.actual_summary["validationFailureAction"] == "Mixed"


def test_audit_to_enforce_is_low(expected: Policy, live: Policy) -> None:
    expected["spec"]["validationFailureAction"] = "Audit"
    live["spec"]["validationFailureAction"] = "Enforce"
    cmp = compare_policy(expected, live)
    assert cmp is not None and cmp.severity == "low"
    assert not any(c.weakening for c in cmp.changes)


def test_rule_removed_is_high(expected: Policy, live: Policy) -> None:
    live["spec"]["rules"] = [r for r in live["spec"]["rules"]
                             if r["name"] != "check-privileged-ephemeral"]
    cmp = compare_policy(expected, live)
    assert cmp is not None and cmp.severity == "high"
    (change,) = cmp.changes
    assert change.path == "spec.rules[check-privileged-ephemeral]"
    assert change.actual is None and change.weakening


def test_rule_added_is_low(expected: Policy, live: Policy) -> None:
    extra = dict(rule(live, "check-privileged"), name="check-privileged-again")
    live["spec"]["rules"].append(extra)
    cmp = compare_policy(expected, live)
    assert cmp is not None and cmp.severity == "low"
    assert _paths(cmp.changes) == ["spec.rules[check-privileged-again]"]


def test_message_text_change_is_low(expected: Policy, live: Policy) -> None:
    rule(live, "check-privileged")["validate"]["message"] = "No privileged pods, please."
    cmp = compare_policy(expected, live)
    assert cmp is not None and cmp.severity == "low"
    assert _paths(cmp.changes) == ["spec.rules[check-privileged].validate.message"]


def test_background_off_is_high(expected: Policy, live: Policy) -> None:
    live["spec"]["background"] = False
    cmp = compare_policy(expected, live)
    assert cmp is not None and cmp.severity == "high"
    assert [(c.path, c.expected, c.actual) for c in cmp.changes] == [
        ("spec.background", True, False)]


@pytest.mark.parametrize(("field", "value"), [
    ("admission", False), ("failurePolicy", "Ignore"), ("applyRules", "One")])
def test_spec_switches_that_weaken(expected: Policy, live: Policy, field: str,
                                   value: Any) -> None:
    live["spec"][field] = value
    cmp = compare_policy(expected, live)
    assert cmp is not None and cmp.severity == "high"


def test_emit_warning_on_is_low(expected: Policy, live: Policy) -> None:
    live["spec"]["emitWarning"] = True
    cmp = compare_policy(expected, live)
    assert cmp is not None and cmp.severity == "low"


def test_wider_exclude_namespace_is_high(expected: Policy, live: Policy) -> None:
    rule(live, "check-privileged")["exclude"]["any"][0]["resources"]["namespaces"].append(
        "payments")
    cmp = compare_policy(expected, live)
    assert cmp is not None and cmp.severity == "high"
    (change,) = cmp.changes
    assert change.path.startswith("spec.rules[check-privileged].exclude.any[0]")
    assert change.actual == "payments" and change.weakening


def test_new_exclude_block_is_high(expected: Policy, live: Policy) -> None:
    rule(live, "check-privileged-ephemeral")["exclude"] = {
        "any": [{"resources": {"namespaces": ["dev"]}}]}
    cmp = compare_policy(expected, live)
    assert cmp is not None and cmp.severity == "high"


def test_narrower_exclude_is_low(expected: Policy, live: Policy) -> None:
    rule(expected, "check-privileged")["exclude"]["any"][0]["resources"]["namespaces"].append(
        "payments")
    cmp = compare_policy(expected, live)
    assert cmp is not None and cmp.severity == "low"


def test_narrower_match_is_high_and_wider_match_low(expected: Policy, live: Policy) -> None:
    rule(expected, "check-privileged")["match"]["any"][0]["resources"]["kinds"] = [
        "Pod", "Deployment"]
    narrower = compare_policy(expected, live)
    assert narrower is not None and narrower.severity == "high"
    wider = compare_policy(live, expected)
    assert wider is not None and wider.severity == "low"


def test_match_selector_added_is_high(expected: Policy, live: Policy) -> None:
    rule(live, "check-privileged")["match"]["any"][0]["resources"]["selector"] = {
        "matchLabels": {"enforce": "yes"}}
    cmp = compare_policy(expected, live)
    assert cmp is not None and cmp.severity == "high"


@pytest.mark.parametrize("loosen", ["key removed", "anchor changed", "wildcard"])
def test_loosened_pattern_is_high(expected: Policy, live: Policy, loosen: str) -> None:
    container = rule(live, "check-privileged")["validate"]["pattern"]["spec"]["containers"][0]
    if loosen == "key removed":
        del container["=(securityContext)"]
    elif loosen == "anchor changed":
        container["X(securityContext)"] = container.pop("=(securityContext)")
    else:
        container["=(securityContext)"]["=(privileged)"] = "*"
    cmp = compare_policy(expected, live)
    assert cmp is not None and cmp.severity == "high"
    assert all(c.path.startswith("spec.rules[check-privileged].validate.pattern")
               for c in cmp.changes)


def test_pattern_tightened_from_wildcard_is_low(expected: Policy, live: Policy) -> None:
    for policy, value in ((expected, "?*"), (live, "false")):
        rule(policy, "check-privileged")["validate"]["pattern"]["spec"]["containers"][0][
            "=(securityContext)"]["=(privileged)"] = value
    cmp = compare_policy(expected, live)
    assert cmp is not None and cmp.severity == "low"


def test_allow_existing_violations_on_is_high(expected: Policy, live: Policy) -> None:
    rule(expected, "check-privileged")["validate"]["allowExistingViolations"] = False
    cmp = compare_policy(expected, live)
    assert cmp is not None and cmp.severity == "high"
    assert _paths(cmp.changes) == [
        "spec.rules[check-privileged].validate.allowExistingViolations"]


def test_overrides_adding_audit_namespace_is_high(expected: Policy, live: Policy) -> None:
    live["spec"]["validationFailureActionOverrides"] = [
        {"action": "audit", "namespaces": ["legacy"]}]
    cmp = compare_policy(expected, live)
    assert cmp is not None and cmp.severity == "high"
    assert all(".validate.failureActionOverrides" in p for p in _paths(cmp.changes))


def test_spec_and_rule_level_overrides_are_equivalent(expected: Policy, live: Policy) -> None:
    overrides = [{"action": "Enforce", "namespaces": ["prod", "payments"]}]
    expected["spec"]["validationFailureActionOverrides"] = overrides
    for r in live["spec"]["rules"]:
        r["validate"]["failureActionOverrides"] = [
            {"action": "enforce", "namespaces": ["payments", "prod"]}]
    assert compare_policy(expected, live) is None


def test_missing_and_deleted(expected: Policy) -> None:
    missing = compare_policy(expected, None)
    deleted = compare_policy(expected, None, seen_before=True)
    assert missing is not None and deleted is not None
    assert (missing.drift, missing.severity) == ("missing", "high")
    assert (deleted.drift, deleted.severity) == ("deleted", "high")
    assert render_policy_drift("disallow-privileged-containers", missing) == (
        "ClusterPolicy/disallow-privileged-containers is missing: expected Enforce policy "
        "with 2 rule(s) (check-privileged, check-privileged-ephemeral)")
    assert render_policy_drift("disallow-privileged-containers", deleted).startswith(
        "ClusterPolicy/disallow-privileged-containers was deleted: expected Enforce policy")


def test_presence_only_policy() -> None:
    assert compare_presence("require-labels", {"metadata": {"name": "require-labels"}}) is None
    cmp = compare_presence("require-labels", None)
    assert cmp is not None and (cmp.drift, cmp.severity) == ("missing", "high")
    assert "is missing" in render_policy_drift("require-labels", cmp)


def test_managed_fields_name_the_manager_and_time(expected: Policy, live: Policy) -> None:
    live["spec"]["validationFailureAction"] = "Audit"
    live["spec"]["background"] = False
    edit_entry(live, "kubectl-edit", "2025-01-15T10:29:58Z",
               {"f:spec": {"f:validationFailureAction": {}, "f:background": {}}})
    cmp = compare_policy(expected, live)
    assert cmp is not None
    owners = {c.path: (c.manager, c.time) for c in cmp.changes}
    assert owners[ACTION_PATH] == ("kubectl-edit", "2025-01-15T10:29:58Z")
    assert owners["spec.background"] == ("kubectl-edit", "2025-01-15T10:29:58Z")
    text = render_policy_drift("disallow-privileged-containers", cmp)
    lines = text.splitlines()
    assert lines[0] == (
        "ClusterPolicy/disallow-privileged-containers modified (high: weakens enforcement)")
    assert (f"  {ACTION_PATH}: expected Enforce, got Audit  "
            "(changed by kubectl-edit at 2025-01-15T10:29:58Z)") in lines


def test_rule_change_is_attributed_to_owner_of_atomic_rules(
        expected: Policy, live: Policy) -> None:
    rule(live, "check-privileged")["validate"]["failureAction"] = "Audit"
    cmp = compare_policy(expected, live)
    assert cmp is not None
    assert (cmp.changes[0].manager, cmp.changes[0].time) == (
        "kubectl-client-side-apply", "2025-01-10T08:00:00Z")
    edit_entry(live, "argocd-controller", "2025-01-16T00:00:00Z", {"f:spec": {"f:rules": {}}})
    later = compare_policy(expected, live)
    assert later is not None and later.changes[0].manager == "argocd-controller"


def test_unowned_removed_field_has_no_manager(expected: Policy, live: Policy) -> None:
    expected["metadata"]["annotations"]["policies.kyverno.io/subject"] = "Pod"
    cmp = compare_policy(expected, live)
    assert cmp is not None and cmp.severity == "low"
    (change,) = cmp.changes
    assert change.path == "metadata.annotations[policies.kyverno.io/subject]"
    assert change.manager is None and change.time is None


def test_long_values_are_shortened(expected: Policy, live: Policy) -> None:
    rule(live, "check-privileged")["validate"]["message"] = "x" * 300
    cmp = compare_policy(expected, live)
    assert cmp is not None
    line = render_policy_drift("p", cmp).splitlines()[1]
    assert "..." in line and len(line) < 250


def test_severity_helpers() -> None:
    assert max_severity(["low", "critical", "high"]) == "critical"
    assert max_severity([]) == "info"
    assert severity_at_least("high", "medium") and not severity_at_least("low", "medium")
    with pytest.raises(ValueError, match="unknown severity 'urgent'"):
        max_severity(["urgent"])


def test_a_value_of_another_json_type_is_drift(expected: Policy, live: Policy) -> None:
    # equal in Python (True == 1), not in the API: the fast equality path must not hide it
    live["spec"]["background"] = 1
    cmp = compare_policy(expected, live)
    assert cmp is not None and cmp.drift == "modified"
    assert "spec.background" in _paths(cmp.changes)


def test_an_unchanged_policy_is_judged_without_importing_deepdiff(tmp_path: Path) -> None:
    script = (
        "import copy, sys\n"
        "from pytest_kspec.desired import generate_policies\n"
        "from pytest_kspec.detect.policydrift import compare_policy\n"
        "from pytest_kspec.spec import load_spec\n"
        f"policies = generate_policies(load_spec({str(EXAMPLE)!r}))\n"
        "assert all(compare_policy(p, copy.deepcopy(p)) is None for p in policies)\n"
        "assert 'deepdiff' not in sys.modules, 'deepdiff imported'\n"
        "live = copy.deepcopy(policies[0]); live['spec']['background'] = False\n"
        "assert compare_policy(policies[0], live) is not None\n"
        "assert 'deepdiff' in sys.modules\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
