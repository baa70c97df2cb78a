"""Valid specs load into the right ClusterSpec; file-level edge cases give one clear line."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from pytest_kspec.desired import catalog
from pytest_kspec.errors import SpecError
from pytest_kspec.spec.model import ClusterSpec, load_spec, parse_kube_version, parse_spec
from pytest_kspec.spec.yamlsafe import MAX_BYTES, MAX_NODES

VALID = Path(__file__).parent / "valid"
EXAMPLES = Path(__file__).parents[2] / "examples"
HEADER = (
    "apiVersion: kspec.dev/v1\nkind: ClusterSpecification\n"
    "metadata:\n  name: payments-prod\n  version: 1.4.0\n"
)


def _error(text: str | bytes, source: str = "cluster-spec.yaml") -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    with pytest.raises(SpecError) as info:
        parse_spec(data, source)
    return info.value.problems


def test_minimal_spec() -> None:
    spec = load_spec(VALID / "minimal.yaml")
    assert spec.name == "minimal"
    assert spec.version == "0.1.0"
    assert spec.label == "minimal@0.1.0"
    assert spec.description == ""
    assert spec.labels == {}
    assert spec.body == {}
    assert spec.path == VALID / "minimal.yaml"
    assert spec.document["kind"] == "ClusterSpecification"
    data = (VALID / "minimal.yaml").read_bytes()
    assert spec.content_hash == hashlib.sha256(data).hexdigest()


def test_full_spec_model() -> None:
    spec = load_spec(VALID / "full.yaml")
    assert spec.label == "payments-prod@1.4.0-rc.1+build.7"
    assert spec.description == "Payments production cluster"
    assert spec.labels == {"environment": "production", "owner": "platform"}
    body = spec.body
    assert sorted(body) == ["admission", "compliance", "kubernetes", "network",
                            "observability", "podSecurity", "rbac", "workloads"]
    # YAML numbers in version fields keep their written text (1.30 is not 1.3)
    assert body["kubernetes"] == {"minVersion": "1.28", "maxVersion": "v1.30.4",
                                  "excludedVersions": ["1.29.0", "1.30"]}
    assert body["podSecurity"]["exemptions"] == [
        {"namespace": "monitoring", "level": "privileged",
         "reason": "node-exporter reads host metrics"}]
    assert body["network"]["disallowedPorts"] == [22, 3389]
    assert body["workloads"]["containers"]["required"][0] == {
        "key": "securityContext.runAsNonRoot", "value": "true"}
    assert body["workloads"]["containers"]["forbidden"][0] == {
        "key": "securityContext.privileged", "value": True}
    assert body["workloads"]["images"]["requireSignatures"] is False
    assert body["rbac"]["forbiddenRules"] == [{"apiGroup": "*", "resource": "*", "verbs": ["*"]}]
    assert body["admission"]["required"][1] == {
        "type": "MutatingWebhookConfiguration", "namePattern": "kyverno-.*"}
    assert body["observability"]["logging"]["auditLog"]["minRetentionDays"] == 365
    frameworks = body["compliance"]["frameworks"]
    assert [f["name"] for f in frameworks] == ["CIS", "NSA"]
    assert spec.document["spec"] is body
    # every mapping resolves to a real check (id, legacy group or policy name)
    controls = catalog.controls_by_check(body, catalog.expected_policy_names(body))
    assert "workloads.containers.forbidden.privileged" in controls
    assert "rbac.forbiddenRules.all.all.all" in controls
    assert "require-team-label" in controls


@pytest.mark.parametrize("name", ["minimal.yaml", "moderate.yaml", "strict.yaml"])
def test_examples_load(name: str) -> None:
    spec = load_spec(EXAMPLES / name)
    assert spec.name == Path(name).stem


def test_spec_is_frozen_and_hashable() -> None:
    spec = load_spec(VALID / "minimal.yaml")
    with pytest.raises(AttributeError):
        spec.name = "other"  # type: ignore[misc]
    assert hash(spec) == hash(load_spec(VALID / "minimal.yaml"))
    assert isinstance(spec, ClusterSpec)


def test_bom_is_accepted() -> None:
    spec = parse_spec(b"\xef\xbb\xbf" + (HEADER + "spec: {}\n").encode(), "bom.yaml")
    assert spec.name == "payments-prod"


def test_error_positions_ignore_the_bom() -> None:
    data = b"\xef\xbb\xbf" + (HEADER + "spec: {}\nstatus: {}\n").encode()
    assert _error(data) == ['cluster-spec.yaml:7:1: status: unknown field "status" '
                            "(allowed: apiVersion, kind, metadata, spec)"]


def test_harmless_aliases_work() -> None:
    text = HEADER + (
        "spec:\n  rbac:\n"
        "    minimumRules:\n      - &podread {apiGroup: \"\", resource: pods, verbs: &rv [get]}\n"
        "    forbiddenRules:\n      - {apiGroup: \"\", resource: secrets, verbs: *rv}\n"
        "      - *podread\n"
    )
    rbac = parse_spec(text.encode(), "aliases.yaml").body["rbac"]
    assert rbac["forbiddenRules"][0]["verbs"] == ["get"]
    assert rbac["forbiddenRules"][1] == {"apiGroup": "", "resource": "pods", "verbs": ["get"]}


def test_billion_laughs_is_rejected_with_a_clear_error() -> None:
    lines = ["lol: &a0 [lol]"] + [
        f"l{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    assert _error("\n".join(lines) + "\n") == [
        f"cluster-spec.yaml:1:1: <document>: aliases expand to more than {MAX_NODES} values "
        "(write the values out instead of nesting aliases; a spec is small)"]


def test_oversized_file_names_size_and_limit() -> None:
    data = (HEADER + "spec: {}\n").encode() + b"#" * MAX_BYTES
    assert _error(data) == [
        f"cluster-spec.yaml:1:1: <document>: file is too large: over {MAX_BYTES} bytes (1 MiB) "
        "(split it; a spec is a few KiB)"]


def test_file_at_the_limit_is_read() -> None:
    text = HEADER + "spec: {}\n"
    data = text.encode() + b"#" * (MAX_BYTES - len(text.encode()))
    assert len(data) == MAX_BYTES
    assert parse_spec(data, "big.yaml").name == "payments-prod"


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(SpecError) as info:
        load_spec(missing)
    assert str(info.value) == f"{missing}: cannot read: No such file or directory " \
                              "(check --kspec-spec)"


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path)
    assert str(info.value) == f"{tmp_path}: cannot read: Is a directory (check --kspec-spec)"


def test_mapping_checks_skipped_when_other_sections_are_broken() -> None:
    # the catalog cannot be trusted on a broken body: only the real problem is reported
    text = HEADER + (
        "spec:\n  network:\n    requiredPolicies: [default-deny]\n"
        "  compliance:\n    frameworks:\n      - name: CIS\n        controls:\n"
        "          - id: '1'\n            mappings: [{check: network.requiredPolicies.x}]\n"
    )
    assert _error(text) == [
        "cluster-spec.yaml:8:24: spec.network.requiredPolicies[0]: expected a mapping, got a "
        'string (write "field: value" lines indented under it)']


def test_mapping_to_a_required_policy_name_is_known() -> None:
    text = HEADER + (
        "spec:\n  admission:\n    policies:\n      requiredPolicies: [{name: team-labels}]\n"
        "  compliance:\n    frameworks:\n      - name: SOC2\n        controls:\n"
        "          - id: CC6.1\n            mappings: [{check: team-labels}]\n"
    )
    assert parse_spec(text.encode(), "x.yaml").body["compliance"]["frameworks"][0]["name"] == "SOC2"


@pytest.mark.parametrize(("text", "parsed"), [
    ("1.29", (1, 29, None)), ("1.29.4", (1, 29, 4)), ("v1.30", (1, 30, None)),
    ("v1.30.0", (1, 30, 0)),
])
def test_parse_kube_version(text: str, parsed: tuple[int, int, int | None]) -> None:
    assert parse_kube_version(text) == parsed


@pytest.mark.parametrize("text", ["1", "1.29.4.1", "V1.29", "1.29-rc", "01.29", "", "1.x"])
def test_parse_kube_version_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="is not a Kubernetes version"):
        parse_kube_version(text)


def test_min_equal_max_minor_is_fine() -> None:
    text = HEADER + "spec:\n  kubernetes: {minVersion: 1.29.5, maxVersion: '1.29'}\n"
    assert parse_spec(text.encode(), "x.yaml").body["kubernetes"]["maxVersion"] == "1.29"


def test_wrong_types_and_unknown_keys_all_reported_at_once() -> None:
    text = HEADER + "  owner: me\nspec:\n  network:\n    defaultDeny: 1\n  rbacs: {}\n"
    assert _error(text) == [
        'cluster-spec.yaml:6:3: metadata.owner: unknown field "owner" '
        "(allowed: name, version, description, labels)",
        "cluster-spec.yaml:9:18: spec.network.defaultDeny: expected a boolean (true or false), "
        "got an integer (write true or false)",
        'cluster-spec.yaml:10:3: spec.rbacs: unknown field "rbacs" (did you mean "rbac"? '
        "allowed: kubernetes, podSecurity, network, workloads, rbac, admission, observability, "
        "compliance)",
    ]
