"""Remediation against the simulator directly: actions, preconditions, verification, budget."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e.conftest import _pod

from pytest_kspec.cluster import AccessOptions, Cluster, ClusterAccess, Snapshot
from pytest_kspec.detect import Detector, Outcome, Plan, make_plan
from pytest_kspec.remediate.options import DeletionBudget, RemediationOptions
from pytest_kspec.remediate.remediator import Remediator
from pytest_kspec.remediate.render import remediation_counts, remediation_line
from pytest_kspec.run import Run
from pytest_kspec.sim import Simulator
from pytest_kspec.spec import load_spec
from pytest_kspec.spec.driftconfig import DriftConfig, Remediation

from .conftest import POLICY, expected_policy
from .conftest import Cluster as Objects

PRIVILEGED = "workloads.containers.forbidden.privileged"
NAME = "disallow-privileged-containers"


class Env:
    """A started simulator, a connected Cluster and the plan of the e2e spec."""

    def __init__(self, objects: Objects, sim: Simulator, resources: dict[str, str]) -> None:
        self.objects = objects
        self.sim = sim
        self.cluster = Cluster.connect(sim.kubeconfig_path)
        self.resources = resources
        self.plan: Plan = make_plan(load_spec(objects.spec_path), resources=resources)

    def outcome(self, key: str) -> Outcome:
        (target,) = [t for t in self.plan.targets if t.key == key]
        return Detector(self.plan, Snapshot(self.cluster)).evaluate(target)

    def remediator(self, **options: Any) -> Remediator:
        opts = RemediationOptions(explicit=True, resources=self.resources, **options)
        return Remediator(self.cluster, opts, clock=lambda: "2025-01-15T10:30:05Z")


@pytest.fixture
def env(cluster: Objects, request: pytest.FixtureRequest) -> Iterator[Any]:
    started: list[Env] = []

    def make(resources: dict[str, str] | None = None, **sim_kwargs: Any) -> Env:
        sim = Simulator(objects=cluster.objects, kyverno=True, **sim_kwargs).start()
        e = Env(cluster, sim, resources or {})
        started.append(e)
        return e

    yield make
    for e in started:
        e.cluster.close()
        e.sim.stop()


def _weaken(policy: dict[str, Any]) -> None:
    policy["spec"]["validationFailureAction"] = "Audit"
    for rule in policy["spec"]["rules"]:
        rule["validate"].pop("failureAction", None)


def test_update_that_does_not_stick_is_failed_not_verified(cluster: Objects, env: Any) -> None:
    _weaken(cluster.policy(NAME))
    e = env()

    def revert(sim: Simulator, method: str, path: str, query: dict[str, str]) -> None:
        obj = sim.get(*POLICY, NAME)
        _weaken(obj)
        sim.update(obj)  # e.g. another controller fighting over the object

    e.sim.on_request(revert, method="GET", path=f"/clusterpolicies/{NAME}$")
    outcome = e.outcome(f"policy::{NAME}")
    (attempt,) = e.remediator().remediate(outcome, "spec::policy::x")
    assert attempt["status"] == "failed"
    assert attempt["error"].startswith(f"ClusterPolicy/{NAME} applied but still drifts:")
    assert "Audit" in attempt["error"]
    assert outcome.events[0].remediation == {k: v for k, v in attempt.items()
                                             if k not in ("node_id", "resource")}
    assert set(attempt) == {"node_id", "resource", "action", "status", "dry_run", "timestamp",
                            "error", "details"}


def test_policy_deleted_between_detection_and_update_is_not_recreated(
        cluster: Objects, env: Any) -> None:
    _weaken(cluster.policy(NAME))
    e = env()
    outcome = e.outcome(f"policy::{NAME}")
    e.sim.delete(*POLICY, NAME)
    (attempt,) = e.remediator().remediate(outcome)
    assert attempt["status"] == "failed"
    assert "it was deleted" in attempt["error"] and "not overwritten" in attempt["error"]
    assert e.sim.get(*POLICY, NAME) is None


def test_update_that_now_matches_is_skipped(cluster: Objects, env: Any) -> None:
    _weaken(cluster.policy(NAME))
    e = env()
    outcome = e.outcome(f"policy::{NAME}")
    fixed = e.sim.get(*POLICY, NAME)
    fixed["spec"] = copy.deepcopy(expected_policy(cluster, NAME)["spec"])
    e.sim.update(fixed)
    (attempt,) = e.remediator().remediate(outcome)
    assert attempt["status"] == "skipped"
    assert "now matches the spec" in attempt["details"]["reason"]


@pytest.mark.parametrize("same", [True, False])
def test_policy_created_by_someone_else_meanwhile(cluster: Objects, env: Any,
                                                  same: bool) -> None:
    cluster.remove("ClusterPolicy", NAME)
    e = env()
    outcome = e.outcome(f"policy::{NAME}")
    theirs = copy.deepcopy(expected_policy(cluster, NAME))
    if not same:
        _weaken(theirs)
    e.sim.create(theirs)
    (attempt,) = e.remediator().remediate(outcome)
    assert attempt["action"] == "create"
    if same:
        assert attempt["status"] == "skipped"
    else:
        assert attempt["status"] == "failed"
        assert "created by someone else" in attempt["error"]
        assert e.sim.get(*POLICY, NAME)["spec"]["validationFailureAction"] == "Audit"


def test_required_by_name_only_is_manual(cluster: Objects, env: Any, tmp_path: Path) -> None:
    spec = cluster.spec_path.read_text().replace(
        "  compliance:\n", "  admission:\n    policies:\n      requiredPolicies:\n"
        "        - name: vendor-policy\n  compliance:\n", 1)
    cluster.spec_path.write_text(spec)
    e = env()
    outcome = e.outcome("policy::vendor-policy")
    assert outcome.failed
    (attempt,) = e.remediator().remediate(outcome)
    assert (attempt["action"], attempt["status"]) == ("report", "manual-required")
    assert "by name only" in attempt["details"]["reason"]
    assert e.sim.writes() == []


def test_configuration_drift_is_manual(env: Any) -> None:
    e = env(version="1.31.2")
    outcome = e.outcome("configuration::kubernetes.version")
    (attempt,) = e.remediator().remediate(outcome)
    assert (attempt["action"], attempt["status"]) == ("report", "manual-required")
    assert e.sim.writes() == []


def test_pod_with_two_violations_is_deleted_once(cluster: Objects, env: Any) -> None:
    pod = _pod("debug", "shop", privileged=True)
    pod["spec"]["containers"].append(copy.deepcopy(pod["spec"]["containers"][0]))
    pod["spec"]["containers"][1]["name"] = "sidecar"
    cluster.add(pod)
    e = env({PRIVILEGED: "delete"})
    outcome = e.outcome(f"resource::{PRIVILEGED}")
    assert len(outcome.events) == 2
    attempts = e.remediator().remediate(outcome)
    assert [a["status"] for a in attempts] == ["verified"]
    assert [ev.remediation["status"] for ev in outcome.events] == ["verified", "verified"]
    assert len(e.sim.writes()) == 1


def test_pod_held_by_a_finalizer_is_applied_not_verified(cluster: Objects, env: Any) -> None:
    pod = _pod("debug", "shop", privileged=True)
    pod["metadata"]["finalizers"] = ["example.com/hold"]
    cluster.add(pod)
    e = env({PRIVILEGED: "delete"})
    (attempt,) = e.remediator().remediate(e.outcome(f"resource::{PRIVILEGED}"))
    assert attempt["status"] == "applied"
    assert "deletion in progress" in attempt["details"]["reason"]


def test_recreated_pod_is_not_deleted(cluster: Objects, env: Any) -> None:
    cluster.add(_pod("debug", "shop", privileged=True))
    e = env({PRIVILEGED: "delete"})
    outcome = e.outcome(f"resource::{PRIVILEGED}")
    e.sim.delete("v1", "Pod", "debug", "shop")
    e.sim.create(_pod("debug", "shop", privileged=True))  # same name, new uid
    (attempt,) = e.remediator().remediate(outcome)
    assert attempt["status"] == "failed" and "changed since detection" in attempt["error"]
    assert e.sim.get("v1", "Pod", "debug", "shop") is not None


def test_forbidden_pod_delete_names_the_resources_role(cluster: Objects, env: Any) -> None:
    cluster.add(_pod("debug", "shop", privileged=True))
    e = env({PRIVILEGED: "delete"})
    e.sim.faults.add(method="DELETE", path=r"/pods/debug$", status=403)
    (attempt,) = e.remediator().remediate(e.outcome(f"resource::{PRIVILEGED}"))
    assert attempt["status"] == "failed"
    assert attempt["error"].startswith('forbidden: cannot delete pods "debug" (403)')
    assert "kspec-remediate-resources ClusterRole from manifests/base/rbac.yaml" in attempt["error"]


def test_dry_run_delete_sends_dry_run_and_keeps_the_pod(cluster: Objects, env: Any) -> None:
    cluster.add(_pod("debug", "shop", privileged=True))
    e = env({PRIVILEGED: "delete"})
    (attempt,) = e.remediator(dry_run=True).remediate(e.outcome(f"resource::{PRIVILEGED}"))
    assert (attempt["status"], attempt["dry_run"]) == ("dry-run", True)
    assert e.sim.get("v1", "Pod", "debug", "shop") is not None
    (request,) = [r for r in e.sim.requests if r.method == "DELETE"]
    assert request.dry_run


def test_other_api_errors_fail_with_the_server_message(cluster: Objects, env: Any) -> None:
    _weaken(cluster.policy(NAME))
    e = env()
    e.sim.faults.add(method="PUT", path=f"/clusterpolicies/{NAME}$", status=422)
    (attempt,) = e.remediator().remediate(e.outcome(f"policy::{NAME}"))
    assert attempt["status"] == "failed"
    assert attempt["error"].startswith(f'cannot update clusterpolicies.kyverno.io "{NAME}": 422')


def test_run_records_every_attempt(cluster: Objects, env: Any, tmp_path: Path) -> None:
    cluster.remove("ClusterPolicy", NAME)
    cluster.add(_pod("debug", "shop", privileged=True))
    e = env()
    access = ClusterAccess(AccessOptions(kubeconfig=e.sim.kubeconfig_path))
    run = Run(e.plan.spec, e.plan, access, spec_node="cluster-spec.yaml", reports=tmp_path,
              remediation=RemediationOptions(explicit=True, dry_run=True))
    try:
        for target in e.plan.targets:
            run.remediate(run.evaluate(target))
    finally:
        access.close()
    attempts = run.recorder.attempts  # type: ignore[attr-defined]
    by_node = {a["node_id"]: a for a in attempts}
    assert by_node[f"cluster-spec.yaml::policy::{NAME}"]["status"] == "dry-run"
    assert by_node[f"cluster-spec.yaml::compliance::{PRIVILEGED}"]["status"] == "manual-required"
    assert all(a["dry_run"] is True for a in attempts)
    assert e.sim.writes() == []


def test_budget_in_memory_and_shared_through_a_file(tmp_path: Path) -> None:
    mem = DeletionBudget(2)
    assert [mem.take() for _ in range(3)] == [True, True, False]
    assert mem.used == 2
    assert DeletionBudget(0).take() is False
    path = tmp_path / "budget"
    one, two = DeletionBudget(3, path), DeletionBudget(3, path)
    assert [one.take(), two.take(), one.take(), two.take()] == [True, True, True, False]
    assert one.used == two.used == 3


def test_options_resolve_flags_over_config() -> None:
    config = DriftConfig(remediation=Remediation(auto=True, dry_run=True,
                                                 types=frozenset({"policy"}),
                                                 max_deletions=7, resources={"x": "delete"}))
    auto = RemediationOptions.resolve(config)
    assert auto.active and auto.dry_run and auto.max_deletions == 7
    assert auto.applies_to("policy") and not auto.applies_to("compliance")
    off = RemediationOptions.resolve(config, allow_auto=False)
    assert not off.active and not off.applies_to("policy")
    explicit = RemediationOptions.resolve(DriftConfig.default(), remediate=True,
                                          max_deletions=0, prune=True)
    assert explicit.applies_to("compliance") and explicit.prune
    assert explicit.max_deletions == 0 and not explicit.dry_run
    assert RemediationOptions.resolve(DriftConfig.default(), dry_run=True).applies_to("policy")
    assert not RemediationOptions.resolve(DriftConfig.default()).active


def test_summary_line_counts_statuses() -> None:
    events = [{"remediation": {"status": s}} for s in
              ("verified", "verified", "failed", "manual-required", "dry-run", "skipped")]
    events.append({"remediation": None})
    assert remediation_counts(events)["drifted"] == 6
    assert remediation_line(events) == (
        "remediation: 6 drifted, 2 fixed (verified), 1 failed, 1 need a person, "
        "1 dry-run planned, 1 skipped")
    assert remediation_line([{"remediation": None}]) is None


def test_unknown_resource_check_is_a_clear_error(cluster: Objects) -> None:
    from pytest_kspec.errors import UsageError

    with pytest.raises(UsageError, match=r"remediation.resources: 'no.such.check' is not a "
                                         r"compliance check of .*cluster-spec.yaml"):
        make_plan(load_spec(cluster.spec_path), resources={"no.such.check": "delete"})
