"""Generated Kyverno ClusterPolicies: golden files, determinism, shape, coverage, spec values.

Golden files live in tests/desired/golden/<example>.yaml, one per spec in examples/. After an
intended change to the generated policies, regenerate them and review the diff:

    KSPEC_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/desired -q -p no:randomly
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_kspec.desired import catalog, imagerefs
from pytest_kspec.desired.expected import (
    GENERATED_ANNOTATION,
    MANAGED_BY_LABEL,
    SPEC_NAME_ANNOTATION,
    SPEC_VERSION_ANNOTATION,
    expected_policies,
    expected_policies_for,
    generate_policies,
    generate_policies_for,
    is_kspec_managed,
    render_yaml,
)
from pytest_kspec.desired.rules import CONTAINER_LISTS, SYSTEM_NAMESPACES
from pytest_kspec.spec import ClusterSpec, load_spec

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
GOLDEN = Path(__file__).resolve().parent / "golden"
EXAMPLE_NAMES = ("minimal", "moderate", "strict")
UPDATE = os.environ.get("KSPEC_UPDATE_GOLDEN") == "1"

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS_1123_SUBDOMAIN = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")
DNS_1123_LABEL = re.compile(rf"^{_LABEL}$")
CHECK_KINDS = ("pattern", "anyPattern", "deny", "foreach", "podSecurity")
SEVERITIES = ("high", "medium", "low")


def _spec(name: str) -> ClusterSpec:
    return load_spec(EXAMPLES / f"{name}.yaml")


def shape_problems(obj: Mapping[str, Any], exempt: Sequence[str] = ()) -> list[str]:
    """Everything that keeps ``obj`` from being a kyverno.io/v1 ClusterPolicy as kspec writes it."""
    out: list[str] = []
    if obj.get("apiVersion") != "kyverno.io/v1" or obj.get("kind") != "ClusterPolicy":
        out.append("not a kyverno.io/v1 ClusterPolicy")
    meta = obj.get("metadata") or {}
    name = str(meta.get("name", ""))
    if not DNS_1123_SUBDOMAIN.match(name) or len(name) > 253:
        out.append(f"name {name!r} is not DNS-1123")
    ann = meta.get("annotations") or {}
    for key in ("policies.kyverno.io/title", "policies.kyverno.io/category",
                "policies.kyverno.io/description", SPEC_NAME_ANNOTATION, SPEC_VERSION_ANNOTATION):
        if not isinstance(ann.get(key), str) or not ann[key]:
            out.append(f"annotation {key} missing")
    if ann.get("policies.kyverno.io/severity") not in SEVERITIES:
        out.append("severity annotation not high|medium|low")
    if ann.get("policies.kyverno.io/subject") != "Pod":
        out.append("subject annotation is not Pod")
    if ann.get(GENERATED_ANNOTATION) != "true":
        out.append("generated annotation is not the string 'true'")
    if (meta.get("labels") or {}).get(MANAGED_BY_LABEL) != "kspec":
        out.append("managed-by label missing")
    spec = obj.get("spec") or {}
    if spec.get("validationFailureAction") != "Enforce" or spec.get("background") is not True:
        out.append("spec is not Enforce with background: true")
    rules = spec.get("rules") or []
    if not rules:
        out.append("no rules")
    names = [r.get("name") for r in rules]
    if len(set(names)) != len(names):
        out.append("duplicate rule names")
    for rule in rules:
        rname = str(rule.get("name", ""))
        if not DNS_1123_LABEL.match(rname) or len(rname) > 63:
            out.append(f"rule name {rname!r} is not a DNS-1123 label")
        kinds = [k for r in (rule.get("match") or {}).get("any") or []
                 for k in (r.get("resources") or {}).get("kinds") or []]
        if kinds != ["Pod"]:
            out.append(f"rule {rname} does not match Pods only")
        excluded = [ns for r in (rule.get("exclude") or {}).get("any") or []
                    for ns in (r.get("resources") or {}).get("namespaces") or []]
        if excluded != list(SYSTEM_NAMESPACES) + list(exempt):
            out.append(f"rule {rname} excludes {excluded}")
        validate = rule.get("validate") or {}
        if not isinstance(validate.get("message"), str) or not validate["message"]:
            out.append(f"rule {rname} has no message")
        if validate.get("failureAction") != "Enforce":
            out.append(f"rule {rname} failureAction is not Enforce")
        present = [k for k in CHECK_KINDS if k in validate]
        if len(present) != 1:
            out.append(f"rule {rname} has {present}, want exactly one of {CHECK_KINDS}")
        for each in validate.get("foreach") or []:
            if not isinstance(each.get("list"), str) or not ("deny" in each or "pattern" in each):
                out.append(f"rule {rname} foreach entry needs list and deny/pattern")
            if "deny" in each and "preconditions" not in rule:
                out.append(f"rule {rname} denies without sparing DELETE")
    return out


def container_patterns(rule: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    validate = rule["validate"]
    if "pattern" in validate:
        return [validate["pattern"]["spec"]]
    return [alt["spec"] for alt in validate.get("anyPattern") or []]


# ------------------------------------------------------------------------------------ golden


@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_matches_golden_file(example: str) -> None:
    text = render_yaml(generate_policies(_spec(example)))
    golden = GOLDEN / f"{example}.yaml"
    if UPDATE:
        golden.write_bytes(text.encode("utf-8"))
    assert golden.exists(), f"{golden} missing: run with KSPEC_UPDATE_GOLDEN=1"
    assert text.encode("utf-8") == golden.read_bytes(), (
        f"generated policies for examples/{example}.yaml differ from {golden.name}; "
        "if intended, regenerate with KSPEC_UPDATE_GOLDEN=1 and review the diff")


@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_generating_twice_gives_identical_bytes(example: str) -> None:
    first = render_yaml(generate_policies(_spec(example))).encode()
    second = render_yaml(generate_policies(_spec(example))).encode()
    assert first == second


def _reversed_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _reversed_keys(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reversed_keys(v) for v in value]
    return value


def test_key_order_in_the_spec_does_not_change_the_bytes() -> None:
    spec = _spec("strict")
    body = dict(spec.body)
    a = render_yaml(generate_policies_for(body, spec_name="s", spec_version="1.0.0"))
    b = render_yaml(generate_policies_for(_reversed_keys(copy.deepcopy(body)),
                                          spec_name="s", spec_version="1.0.0"))
    assert a == b


# ------------------------------------------------------------------------------------- shape


@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_every_generated_policy_is_a_valid_cluster_policy(example: str) -> None:
    spec = _spec(example)
    objs = generate_policies(spec)
    assert [o["metadata"]["name"] for o in objs] == catalog.generated_policy_names(spec.body)
    for obj in objs:
        name = obj["metadata"]["name"]
        exempt = catalog.exempt_namespaces(spec.body, catalog.POLICY_PSS_KEYS.get(name, ""))
        assert shape_problems(obj, exempt) == [], name
        ann = obj["metadata"]["annotations"]
        assert ann[SPEC_NAME_ANNOTATION] == spec.name
        assert ann[SPEC_VERSION_ANNOTATION] == spec.version
        assert is_kspec_managed(obj)


def test_shape_check_catches_broken_policies() -> None:
    obj = generate_policies(_spec("minimal"))[0]
    broken = copy.deepcopy(obj)
    broken["metadata"]["name"] = "Require_Root"
    rule = broken["spec"]["rules"][0]
    rule["validate"]["deny"] = {"conditions": {"any": []}}
    del rule["validate"]["message"]
    problems = shape_problems(broken)
    assert any("DNS-1123" in p for p in problems)
    assert any("exactly one" in p for p in problems)
    assert any("no message" in p for p in problems)


@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_yaml_round_trips_without_anchors(example: str) -> None:
    objs = generate_policies(_spec(example))
    text = render_yaml(objs)
    assert text.startswith("---\napiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n")
    assert text.count("\n---\n") == len(objs) - 1
    assert not re.search(r"[&*]id\d+", text)
    assert list(yaml.safe_load_all(text)) == objs


def test_shared_subobjects_are_written_out_not_aliased() -> None:
    shared = {"kinds": ["Pod"]}
    text = render_yaml([{"apiVersion": "v1", "kind": "List", "a": shared, "b": shared}])
    assert "&" not in text and "*" not in text
    assert text.count("kinds:") == 2


def test_render_of_nothing_is_empty() -> None:
    assert render_yaml([]) == ""


# ---------------------------------------------------------------------------------- coverage


@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_every_container_level_rule_covers_init_and_ephemeral_containers(example: str) -> None:
    for obj in generate_policies(_spec(example)):
        name = obj["metadata"]["name"]
        for rule in obj["spec"]["rules"]:
            if name == "disallow-host-namespaces":
                assert set(rule["validate"]["pattern"]["spec"]) <= {
                    f"=({k})" for k in catalog.HOST_NAMESPACE_KEYS}
                continue
            for each in rule["validate"].get("foreach") or []:
                assert each["list"] == CONTAINER_LISTS
            for spec in container_patterns(rule):
                assert "containers" in spec and "=(initContainers)" in spec, name
                if name == "require-resource-limits":
                    # The API server forbids resources on ephemeral containers.
                    assert "=(ephemeralContainers)" not in spec
                else:
                    assert "=(ephemeralContainers)" in spec, name
                lists = [spec[k] for k in ("containers", "=(initContainers)",
                                           "=(ephemeralContainers)") if k in spec]
                assert all(lst == lists[0] for lst in lists), name
            assert "foreach" in rule["validate"] or container_patterns(rule), name


# ------------------------------------------------------------------------ values from the spec


def _registry_rules(body: Mapping[str, Any]) -> dict[str, Any]:
    objs = generate_policies_for(body, spec_name="t", spec_version="0.1.0")
    (policy,) = [o for o in objs if o["metadata"]["name"] == "block-image-registries"]
    return {r["name"]: r for r in policy["spec"]["rules"]}


def _deny(rule: Mapping[str, Any]) -> dict[str, Any]:
    [each] = rule["validate"]["foreach"]
    [condition] = each["deny"]["conditions"]["any"]
    return dict(condition)


def test_blocked_and_allowed_registries_come_from_the_spec() -> None:
    spec = _spec("strict")
    images = spec.body["workloads"]["images"]
    rules = _registry_rules(spec.body)
    assert set(rules) == {"block-registries", "allowed-registries"}
    blocked, allowed = _deny(rules["block-registries"]), _deny(rules["allowed-registries"])
    # Deny when the image is under a blocked entry / not under any allowed entry, judged by
    # the shared host-first regex on the canonical name of the normalized image.
    assert (blocked["operator"], blocked["value"]) == ("Equals", True)
    assert (allowed["operator"], allowed["value"]) == ("Equals", False)
    assert imagerefs.registry_regex(images["blockedRegistries"]) in blocked["key"]
    assert imagerefs.registry_regex(images["allowedRegistries"]) in allowed["key"]
    assert "image_normalize(element.image)" in blocked["key"]
    for glob in images["blockedRegistries"] + images["allowedRegistries"]:
        assert glob in rules["block-registries"]["validate"]["message"] + \
            rules["allowed-registries"]["validate"]["message"]


def test_registries_are_not_hard_coded() -> None:
    body = {"workloads": {"images": {"blockedRegistries": ["quay.io/*", "ghcr.io/untrusted/*"]}}}
    rules = _registry_rules(body)
    assert set(rules) == {"block-registries"}
    key = _deny(rules["block-registries"])["key"]
    assert imagerefs.registry_regex(["quay.io/*", "ghcr.io/untrusted/*"]) in key
    assert "quay" in key and "untrusted" in key and "gcr.io" not in key.replace("ghcr.io", "")


def test_allowed_registries_alone_give_only_the_allow_rule() -> None:
    rules = _registry_rules({"workloads": {"images": {"allowedRegistries": ["r.example/*"]}}})
    assert list(rules) == ["allowed-registries"]


def _policy(body: Mapping[str, Any], name: str) -> dict[str, Any]:
    objs = generate_policies_for(body, spec_name="t", spec_version="0.1.0")
    (policy,) = [o for o in objs if o["metadata"]["name"] == name]
    return policy


def test_resource_limits_are_the_ones_the_spec_names() -> None:
    body = {"workloads": {"containers": {"required": [
        {"key": "resources.limits.ephemeral-storage", "exists": True},
        {"key": "resources.limits.memory", "value": "512Mi"},
        {"key": "resources.limits.cpu", "exists": False},
        {"key": "resources.requests.cpu", "exists": True},
    ]}}}
    rule = _policy(body, "require-resource-limits")["spec"]["rules"][0]
    limits = rule["validate"]["pattern"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits == {"ephemeral-storage": "?*", "memory": "512Mi"}


def test_host_namespaces_are_only_those_the_spec_forbids() -> None:
    body = {"workloads": {"containers": {"forbidden": [
        {"key": "hostPID", "value": "true"}, {"key": "hostNetwork", "value": False}]}}}
    rule = _policy(body, "disallow-host-namespaces")["spec"]["rules"][0]
    assert rule["validate"]["pattern"] == {"spec": {"=(hostPID)": "false"}}


def test_privilege_escalation_required_vs_only_forbidden() -> None:
    required = {"workloads": {"containers": {"required": [
        {"key": "securityContext.allowPrivilegeEscalation", "value": False}]}}}
    forbidden = {"workloads": {"containers": {"forbidden": [
        {"key": "securityContext.allowPrivilegeEscalation", "value": "true"}]}}}
    strict = _policy(required, "disallow-privilege-escalation")["spec"]["rules"][0]
    lenient = _policy(forbidden, "disallow-privilege-escalation")["spec"]["rules"][0]
    assert strict["validate"]["pattern"]["spec"]["containers"] == [
        {"securityContext": {"allowPrivilegeEscalation": "false"}}]
    assert lenient["validate"]["pattern"]["spec"]["containers"] == [
        {"=(securityContext)": {"=(allowPrivilegeEscalation)": "false"}}]


def test_run_as_non_root_accepts_pod_or_container_level() -> None:
    rule = _policy(_spec("minimal").body, "require-run-as-non-root")["spec"]["rules"][0]
    pod_level, container_level = rule["validate"]["anyPattern"]
    assert pod_level["spec"]["securityContext"] == {"runAsNonRoot": "true"}
    assert pod_level["spec"]["containers"] == [{"=(securityContext)": {"=(runAsNonRoot)": "true"}}]
    assert "securityContext" not in container_level["spec"]
    assert container_level["spec"]["containers"] == [{"securityContext": {"runAsNonRoot": "true"}}]


# ------------------------------------------------------------------------ expected + marker


def test_expected_policies_generated_then_presence_only() -> None:
    spec = _spec("strict")
    expected = expected_policies(spec)
    assert [p.name for p in expected] == catalog.expected_policy_names(spec.body)
    generated = [p for p in expected if not p.presence_only]
    required = [p for p in expected if p.presence_only]
    assert [p.name for p in required] == ["disallow-latest-tag", "require-pod-probes",
                                          "verify-image-signatures"]
    assert all(p.manifest is None and p.severity in SEVERITIES for p in required)
    assert all(p.manifest is not None for p in generated)
    assert [p.manifest for p in generated] == generate_policies(spec)
    by_name = {p.name: p.severity for p in generated}
    assert by_name["disallow-privileged-containers"] == "high"
    assert by_name["require-image-digests"] == "medium"


def test_required_policy_we_generate_is_not_listed_twice() -> None:
    body = _spec("moderate").body
    names = [p.name for p in expected_policies_for(body, spec_name="m", spec_version="1.0.0")]
    assert names.count("require-run-as-non-root") == 1
    assert names[-1] == "disallow-latest-tag"


def test_empty_spec_expects_nothing() -> None:
    assert generate_policies_for({}, spec_name="e", spec_version="0.0.1") == []
    assert expected_policies_for({}, spec_name="e", spec_version="0.0.1") == []


@pytest.mark.parametrize(("obj", "managed"), [
    ({"metadata": {"annotations": {GENERATED_ANNOTATION: "true"}}}, True),
    ({"metadata": {"annotations": {GENERATED_ANNOTATION: "True"}}}, True),
    ({"metadata": {"labels": {MANAGED_BY_LABEL: "kspec"}}}, True),
    ({"metadata": {"annotations": {GENERATED_ANNOTATION: "false"}}}, False),
    ({"metadata": {"labels": {MANAGED_BY_LABEL: "Helm"}}}, False),
    ({"metadata": {"name": "disallow-latest-tag"}}, False),
    ({"metadata": None}, False),
    ({}, False),
])
def test_is_kspec_managed(obj: Mapping[str, Any], managed: bool) -> None:
    assert is_kspec_managed(obj) is managed


# ------------------------------------------------------------------------------- examples


@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_example_compliance_mappings_resolve(example: str) -> None:
    spec = _spec(example)
    ids = catalog.check_ids(spec.body) + catalog.expected_policy_names(spec.body)
    for framework in (spec.body.get("compliance") or {}).get("frameworks") or []:
        for control in framework["controls"]:
            for mapping in control["mappings"]:
                assert catalog.resolve_mapping(mapping["check"], ids), (
                    f"{example}: {framework['name']} {control['id']} -> {mapping['check']}")


def test_strict_example_maps_both_frameworks() -> None:
    frameworks = _spec("strict").body["compliance"]["frameworks"]
    assert [f["name"] for f in frameworks] == ["CIS Kubernetes Benchmark", "NIST SP 800-53"]


def test_namespaces_exempted_by_the_spec_are_excluded_where_the_level_allows() -> None:
    body = {
        "podSecurity": {"enforce": "restricted", "exemptions": [
            {"namespace": "monitoring", "level": "privileged", "reason": "node exporter"},
            {"namespace": "legacy", "level": "baseline", "reason": "old images"}]},
        "workloads": {"containers": {
            "required": [{"key": "securityContext.runAsNonRoot", "value": True},
                         {"key": "resources.limits.memory", "exists": True}],
            "forbidden": [{"key": "securityContext.privileged", "value": True}]}},
    }
    objs = {o["metadata"]["name"]: o for o in generate_policies_for(
        body, spec_name="s", spec_version="1.0.0")}

    def excluded(name: str) -> list[str]:
        return [ns for rule in objs[name]["spec"]["rules"]
                for block in rule["exclude"]["any"] for ns in block["resources"]["namespaces"]]

    system = list(SYSTEM_NAMESPACES)
    assert set(excluded("require-run-as-non-root")) == {*system, "legacy", "monitoring"}
    assert set(excluded("disallow-privileged-containers")) == {*system, "monitoring"}
    assert set(excluded("require-resource-limits")) == set(system)
