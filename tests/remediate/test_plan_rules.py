"""Plan rules without a cluster: digest, refusals by spec, cluster and age, builder order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_kspec.remediate import PlanBuilder, PlanError, check_plan, load_plan, write_plan
from pytest_kspec.remediate.plan import _epoch

SPEC = {"name": "shop-prod", "version": "2.1.0", "hash": "a" * 64, "path": "cluster-spec.yaml"}
CLUSTER = {"server": "https://10.0.0.1:6443", "context": "prod", "uid": "uid-1"}
CREATED = "2026-12-01T12:00:00Z"


def _plan(tmp_path: Path) -> Path:
    builder = PlanBuilder()
    builder.add({"node_id": "s::policy::b", "resource": "ClusterPolicy/b", "status": "dry-run",
                 "write": {"action": "update", "resource": "ClusterPolicy/b",
                           "target": {"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy",
                                      "name": "b", "namespace": None},
                           "resourceVersion": "7", "uid": None, "changes": [], "body": {}}},
                order=2)
    builder.add({"node_id": "s::policy::a", "resource": "ClusterPolicy/a", "status": "dry-run",
                 "write": {"action": "create", "resource": "ClusterPolicy/a",
                           "target": {"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy",
                                      "name": "a", "namespace": None},
                           "resourceVersion": None, "uid": None, "changes": [], "body": {}}},
                order=1)
    builder.add({"node_id": "s::compliance::c", "resource": "Pod/x/y", "status":
                 "manual-required", "details": {"reason": "needs a person"}}, order=3)
    builder.add({"node_id": "s::policy::d", "resource": "ClusterPolicy/d", "status": "failed",
                 "action": "update", "error": "forbidden"}, order=4)
    plan = builder.build(created=CREATED, spec=SPEC, cluster=CLUSTER)
    path = tmp_path / "plan.json"
    write_plan(path, plan)
    return path


def test_builder_orders_writes_as_the_report_and_keeps_what_it_cannot_plan(
        tmp_path: Path) -> None:
    plan = load_plan(_plan(tmp_path))
    assert [(w["id"], w["resource"]) for w in plan.writes] == [
        (1, "ClusterPolicy/a"), (2, "ClusterPolicy/b")]
    assert plan.manual == [{"node_id": "s::compliance::c", "resource": "Pod/x/y",
                            "reason": "needs a person"}]
    assert plan.unplanned[0]["error"] == "forbidden"


def test_digest_covers_every_field(tmp_path: Path) -> None:
    path = _plan(tmp_path)
    data = json.loads(path.read_text())
    for edit in (lambda d: d["writes"][1].update(resourceVersion="8"),
                 lambda d: d["cluster"].update(uid="uid-2"),
                 lambda d: d.update(created="2026-12-01T12:30:00Z"),
                 lambda d: d["manual"].clear()):
        changed = json.loads(json.dumps(data))
        edit(changed)
        path.write_text(json.dumps(changed))
        with pytest.raises(PlanError, match="does not match its digest"):
            load_plan(path)
    path.write_text(json.dumps(data, indent=None))  # formatting is not content
    assert load_plan(path).digest == data["digest"]


@pytest.mark.parametrize(("spec", "cluster", "now", "message"), [
    ({**SPEC, "hash": "b" * 64}, CLUSTER, 0, "was made for spec shop-prod 2.1.0"),
    ({**SPEC, "name": "other"}, CLUSTER, 0, "not other 2.1.0"),
    (SPEC, {**CLUSTER, "uid": "uid-2"}, 0, "another cluster (kube-system uid uid-1, this one "
                                           "is uid-2)"),
    (SPEC, {**CLUSTER, "uid": "", "server": "https://elsewhere"}, 0,
     "another cluster (server https://10.0.0.1:6443, this one is https://elsewhere)"),
    (SPEC, CLUSTER, 3601, "made 1h00m ago"),
    (SPEC, CLUSTER, -301, "in the future"),
])
def test_refusals(tmp_path: Path, spec: dict[str, str], cluster: dict[str, str], now: int,
                  message: str) -> None:
    plan = load_plan(_plan(tmp_path))
    with pytest.raises(PlanError, match=r"refused|clocks") as err:
        check_plan(plan, source="plan.json", spec=spec, cluster=cluster,
                   now=_epoch(CREATED) + now, max_age=3600)
    assert message in str(err.value)


def test_same_cluster_by_uid_even_behind_another_address(tmp_path: Path) -> None:
    plan = load_plan(_plan(tmp_path))
    check_plan(plan, source="plan.json", spec=SPEC,
               cluster={**CLUSTER, "server": "https://lb.example.com"},
               now=_epoch(CREATED) + 3600, max_age=3600)


@pytest.mark.parametrize("content", ["", "{", "[]", '{"kind": "RemediationPlan", '
                                                   '"apiVersion": "kspec.dev/v1"}'])
def test_unreadable_plans_say_so_in_one_line(tmp_path: Path, content: str) -> None:
    path = tmp_path / "plan.json"
    path.write_text(content)
    with pytest.raises(PlanError) as err:
        load_plan(path)
    assert str(err.value).startswith(f"{path}: ") and "\n" not in str(err.value)
