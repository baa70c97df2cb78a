"""Users' own checks in the engine: marker arguments, violations, verdicts against a baseline."""

from __future__ import annotations

import pytest

from pytest_kspec.detect import (
    CustomCheck,
    CustomViolation,
    Violations,
    judge_custom,
    parse_marker,
    unique_ids,
    with_history,
)
from pytest_kspec.errors import UsageError
from pytest_kspec.history import Baseline, fingerprint
from pytest_kspec.history.store import ActiveEvent

NODE = "checks/test_apps.py::test_replicas"


def test_unmarked_test_is_medium_with_its_name_as_id_and_docstring_title() -> None:
    check = parse_marker(NODE, "test_replicas", (), {}, doc="\n  Two replicas.\n\n  More.")
    assert (check.id, check.severity, check.controls, check.title) == (
        "test_replicas", "medium", (), "Two replicas.")
    assert check.target.key == "custom::test_replicas"
    assert check.resource == "Check/test_replicas"
    assert dict(check.target.properties())["kspec.type"] == "custom"


def test_marker_arguments_are_kept() -> None:
    check = parse_marker(NODE, "test_replicas", (), {
        "severity": "high", "controls": ["CIS-5.2.1", " NIST-AC-6 "], "id": "deployments.replicas",
        "title": "Replicas"})
    assert (check.id, check.severity, check.controls, check.title) == (
        "deployments.replicas", "high", ("CIS-5.2.1", "NIST-AC-6"), "Replicas")
    assert parse_marker(NODE, "t", (), {"controls": "CIS-1"}).controls == ("CIS-1",)


@pytest.mark.parametrize(("args", "kwargs", "says"), [
    (("high",), {}, "keyword arguments only"),
    ((), {"severty": "high"}, "unknown argument(s) severty"),
    ((), {"severity": "urgent"}, "severity='urgent'): use one of critical, high"),
    ((), {"controls": [1]}, "controls=[1]): give a list of control ids"),
    ((), {"id": "has space"}, "id='has space'): an id is letters"),
    ((), {"id": "a::b"}, "id='a::b')"),
])
def test_bad_marker_arguments_name_the_test(args: tuple[object, ...], kwargs: dict[str, object],
                                            says: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_marker(NODE, "test_replicas", args, kwargs)
    assert str(err.value).startswith(f"{NODE}: @pytest.mark.kspec")
    assert says in str(err.value)


def test_two_checks_with_one_id_are_refused() -> None:
    a = CustomCheck(id="x", node_id="checks/a.py::test_x")
    b = CustomCheck(id="x", node_id="checks/b.py::test_x")
    unique_ids([a, CustomCheck(id="y", node_id="checks/a.py::test_y")])
    with pytest.raises(UsageError, match=r"two checks share the kspec id 'x': checks/a.py::"
                                         r"test_x and checks/b.py::test_x"):
        unique_ids([a, b])


def test_violations_validate_what_is_added() -> None:
    found = Violations()
    with pytest.raises(UsageError, match="the resource must name"):
        found.add("  ", "x")
    with pytest.raises(UsageError, match="fix must be callable"):
        found.add("Pod/a/b", "x", fix="kubectl delete")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="severity='urgent'"):
        found.add("Pod/a/b", "x", severity="urgent")
    assert not found


def test_each_resource_is_one_event_repeated_adds_merge() -> None:
    check = CustomCheck(id="deployments.replicas", node_id=NODE, severity="high",
                        controls=("CIS-1",), title="Two replicas")
    found = Violations()
    found.add("Deployment/shop/web", "runs 1 replica")
    found.add("Deployment/shop/api", "runs 0 replicas", severity="critical")
    found.add("Deployment/shop/web", "has no PodDisruptionBudget")
    outcome = judge_custom(check, list(found))
    assert outcome.status == "failed"
    assert [(e.resource, e.severity, e.message, e.type, e.check, e.controls)
            for e in outcome.events] == [
        ("Deployment/shop/web", "high", "runs 1 replica; has no PodDisruptionBudget", "custom",
         "deployments.replicas", ["CIS-1"]),
        ("Deployment/shop/api", "critical", "runs 0 replicas", "custom",
         "deployments.replicas", ["CIS-1"])]
    assert outcome.text.splitlines() == [
        "2 resource(s) break deployments.replicas: Two replicas",
        "  Deployment/shop/web: runs 1 replica; has no PodDisruptionBudget",
        "  Deployment/shop/api: runs 0 replicas"]
    assert found.text(check) == outcome.text
    report = outcome.events[0].to_report()
    assert list(report)[:6] == ["type", "severity", "check", "drift", "resource", "message"]


def test_plain_assert_is_one_event_naming_the_check_and_other_exceptions_are_errors() -> None:
    check = CustomCheck(id="test_owner", node_id=NODE)
    failed = judge_custom(check, [], failure="namespaces without an owner: a, b\nassert not [..]")
    assert failed.status == "failed"
    assert [(e.resource, e.message, e.severity) for e in failed.events] == [
        ("Check/test_owner", "namespaces without an owner: a, b", "medium")]
    errored = judge_custom(check, [CustomViolation("Pod/a/b", "x")], error="forbidden (403)")
    assert (errored.status, errored.events, errored.text) == ("error", [], "forbidden (403)")
    assert judge_custom(check, []).status == "passed"


def test_history_new_persisting_resolved_per_resource() -> None:
    check = CustomCheck(id="deployments.replicas", node_id=NODE)
    key = check.target.key

    def active(resource: str, first_seen: float) -> ActiveEvent:
        return ActiveEvent(fingerprint(key, resource), key, "custom", resource, "violation",
                           "medium", "runs 1 replica", first_seen, 1)

    baseline = Baseline("run-1", frozenset(), {
        a.fingerprint: a for a in (active("Deployment/shop/web", 1_700_000_000.0),
                                   active("Deployment/shop/old", 1_700_000_000.0))})
    found = [CustomViolation("Deployment/shop/web", "runs 1 replica"),
             CustomViolation("Deployment/shop/api", "runs 1 replica")]
    outcome = with_history(judge_custom(check, found), baseline, "2026-01-01T00:00:00Z")
    assert {e.resource: (e.drift, e.first_seen) for e in outcome.events} == {
        "Deployment/shop/web": ("violation", "2023-11-14T22:13:20Z"),
        "Deployment/shop/api": ("new-violation", "2026-01-01T00:00:00Z")}
    assert [(e.resource, e.drift, e.type, e.severity) for e in outcome.resolved] == [
        ("Deployment/shop/old", "resolved", "custom", "info")]
    # no previous run: plain violations, first seen now
    fresh = with_history(judge_custom(check, found), Baseline(), "2026-01-01T00:00:00Z")
    assert {e.drift for e in fresh.events} == {"violation"} and not fresh.resolved
