"""Remediation plans end to end: ``kspec drift remediate --plan``, ``drift plan show``,
``--apply --approved-by`` against a simulator the test serves, and ``pytest --kspec-plan``."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytest_kspec.detect import compare_policy
from pytest_kspec.remediate import RemediationPlan, load_plan, write_plan
from pytest_kspec.sim import Simulator

from .conftest import POLICY, Cluster, expected_policy, kspec_run

SimFor = Callable[..., Simulator]
MISSING = "require-run-as-non-root"
WEAK = "disallow-privileged-containers"


def _weaken(policy: dict[str, Any]) -> None:
    policy["spec"]["validationFailureAction"] = "Audit"
    for rule in policy["spec"]["rules"]:
        rule["validate"].pop("failureAction", None)


def _others(cluster: Cluster) -> list[str]:
    return sorted(o["metadata"]["name"] for o in cluster.objects
                  if o["kind"] == "ClusterPolicy" and o["metadata"]["name"] != WEAK)


def kspec(cluster: Cluster, kubeconfig: str, *args: str, spec: bool = True) -> tuple[int, str]:
    cwd = cluster.spec_path.parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["KUBECONFIG"] = str(cwd / "no-such-kubeconfig")
    extra = ["--spec", "cluster-spec.yaml", "--kubeconfig", kubeconfig] if spec else []
    proc = subprocess.run([sys.executable, "-m", "pytest_kspec.cli", "drift", *args, *extra],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    return proc.returncode, proc.stdout + proc.stderr


def _drifted(cluster: Cluster) -> str:
    """Two policies weakened and one deleted: a plan of one create and two updates."""
    cluster.remove("ClusterPolicy", MISSING)
    second = next(n for n in _others(cluster) if n != MISSING)
    _weaken(cluster.policy(WEAK))
    _weaken(cluster.policy(second))
    return second


def _audit(cluster: Cluster) -> list[dict[str, Any]]:
    db = cluster.spec_path.parent / "reports" / "history.db"
    with sqlite3.connect(db) as conn:
        return [json.loads(r[0]) for r in conn.execute("SELECT record FROM audit ORDER BY seq")]


def test_plan_then_apply_skips_the_changed_target_and_applies_the_rest(
        cluster: Cluster, sim_for: SimFor) -> None:
    second = _drifted(cluster)
    sim = sim_for()
    before = sim.dump()
    code, out = kspec(cluster, sim.kubeconfig_path, "remediate", "--plan", "plan.json")
    assert code == 1, out  # drift found; the plan is a dry run
    assert sim.dump() == before and sim.writes() == []
    assert "kspec: remediation plan written to plan.json: 3 write(s)" in out
    plan = load_plan(cluster.spec_path.parent / "plan.json")
    by_name = {w["target"]["name"]: w for w in plan.writes}
    assert [w["id"] for w in plan.writes] == [1, 2, 3]
    assert by_name[MISSING]["action"] == "create" and by_name[MISSING]["resourceVersion"] is None
    live = sim.get(*POLICY, WEAK)
    assert by_name[WEAK]["action"] == "update"
    assert by_name[WEAK]["resourceVersion"] == live["metadata"]["resourceVersion"]
    assert {"path": "spec.rules[privileged-containers].validate.failureAction",
            "from": "Audit", "to": "Enforce"} in \
        by_name[WEAK]["changes"]
    assert plan.spec["name"] == "shop-prod" and plan.cluster["uid"] == sim.kube_system_uid
    assert plan.digest.startswith("sha256:")

    code, out = kspec(cluster, sim.kubeconfig_path, "plan", "show", "plan.json", spec=False)
    assert code == 0, out
    assert plan.digest in out and "(matches its content)" in out
    assert f"update  ClusterPolicy/{WEAK}" in out
    assert 'validate.failureAction: Audit → Enforce' in out

    # Someone edits one target after the plan was made: its write must not clobber it.
    edited = sim.get(*POLICY, second)
    edited["metadata"].setdefault("labels", {})["team.example.com/owner"] = "payments"
    edited_rv = sim.update(edited)["metadata"]["resourceVersion"]
    code, out = kspec(cluster, sim.kubeconfig_path, "remediate", "--apply", "plan.json",
                      "--approved-by", "alice@example.com")
    assert code == 1, out
    assert f"SKIPPED  #{by_name[second]['id']} update ClusterPolicy/{second}" in out
    assert f"resourceVersion {by_name[second]['resourceVersion']} → {edited_rv}" in out
    assert "approved by alice@example.com: 3 write(s): 1 skipped, 2 verified" in out
    for name in (MISSING, WEAK):
        assert compare_policy(expected_policy(cluster, name), sim.get(*POLICY, name)) is None
    after = sim.get(*POLICY, second)
    assert after["metadata"]["resourceVersion"] == edited_rv  # untouched
    assert after["spec"]["validationFailureAction"] == "Audit"
    writes = [(w.method, w.verb) for w in sim.writes() if "clusterpolicies" in w.path]
    assert sorted(writes) == [("POST", "create"), ("PUT", "update"), ("PUT", "update")]

    records = [r for r in _audit(cluster) if r["kind"] == "remediation"]
    applied = [r for r in records if r.get("approved_by")]
    assert len(applied) == 3
    assert {r["approved_by"] for r in applied} == {"alice@example.com"}
    assert {r["plan_digest"] for r in applied} == {plan.digest}
    assert sorted(r["status"] for r in applied) == ["skipped", "verified", "verified"]
    code, out = kspec(cluster, sim.kubeconfig_path, "history", "--verify", spec=False)
    assert code == 0 and "audit trail intact" in out, out


def test_plan_for_another_cluster_is_refused(cluster: Cluster, sim_for: SimFor) -> None:
    _drifted(cluster)
    planned_on = sim_for()
    code, out = kspec(cluster, planned_on.kubeconfig_path, "remediate", "--plan", "plan.json")
    assert code == 1, out
    other = sim_for()  # same objects, another cluster (its own kube-system uid)
    code, out = kspec(cluster, other.kubeconfig_path, "remediate", "--apply", "plan.json",
                      "--approved-by", "alice")
    assert code == 2, out
    assert "plan.json was made for another cluster (kube-system uid" in out
    assert "refused" in out and other.writes() == []


def test_stale_plan_is_refused_unless_max_age_allows_it(cluster: Cluster,
                                                        sim_for: SimFor) -> None:
    cluster.remove("ClusterPolicy", MISSING)
    sim = sim_for()
    kspec(cluster, sim.kubeconfig_path, "remediate", "--plan", "plan.json")
    path = cluster.spec_path.parent / "plan.json"
    plan = load_plan(path)
    # The same plan, made two hours earlier (sealed again: its digest is valid).
    old = RemediationPlan.from_json({**plan.to_json(), "created": "2000-01-01T00:00:00Z"},
                                    "plan.json")
    write_plan(path, old)
    code, out = kspec(cluster, sim.kubeconfig_path, "remediate", "--apply", "plan.json",
                      "--approved-by", "alice")
    assert code == 2, out
    assert "plan.json was made" in out and "more than --max-age 1h00m" in out
    assert sim.writes() == []
    code, out = kspec(cluster, sim.kubeconfig_path, "remediate", "--apply", "plan.json",
                      "--approved-by", "alice", "--max-age", "99999d")
    assert code == 0, out
    assert "1 write(s): 1 verified" in out


def test_edited_plan_or_other_spec_is_refused(cluster: Cluster, sim_for: SimFor) -> None:
    _drifted(cluster)
    sim = sim_for()
    kspec(cluster, sim.kubeconfig_path, "remediate", "--plan", "plan.json")
    path = cluster.spec_path.parent / "plan.json"
    original = path.read_text()
    data = json.loads(original)
    data["writes"][0]["body"]["spec"]["validationFailureAction"] = "Audit"  # weaken it
    path.write_text(json.dumps(data))
    code, out = kspec(cluster, sim.kubeconfig_path, "plan", "show", "plan.json", spec=False)
    assert code == 2 and "does not match its digest" in out, out
    code, out = kspec(cluster, sim.kubeconfig_path, "remediate", "--apply", "plan.json",
                      "--approved-by", "mallory")
    assert code == 2 and "changed after kspec wrote it; refused" in out, out
    path.write_text(original)
    cluster.spec_path.write_text(cluster.spec_path.read_text().replace("2.1.0", "2.2.0"))
    code, out = kspec(cluster, sim.kubeconfig_path, "remediate", "--apply", "plan.json",
                      "--approved-by", "alice")
    assert code == 2, out
    assert "was made for spec shop-prod 2.1.0" in out and "not shop-prod 2.2.0" in out
    code, out = kspec(cluster, sim.kubeconfig_path, "remediate", "--apply", "plan.json")
    assert code == 2 and "--apply needs --approved-by NAME" in out, out
    assert sim.writes() == []


def test_pytest_plan_with_workers_lists_every_write_and_shows_it_in_html(
        cluster: Cluster, sim_for: SimFor) -> None:
    _drifted(cluster)
    sim = sim_for()
    result = kspec_run(cluster, sim.kubeconfig_path, "--kspec-dry-run", "--kspec-plan",
                       "plan.json", "-n", "2")
    assert result.returncode == 1, result.stdout
    assert sim.writes() == []
    plan = load_plan(cluster.spec_path.parent / "plan.json")
    assert sorted(w["action"] for w in plan.writes) == ["create", "update", "update"]
    assert all(w["node_id"].endswith(f"cluster-spec.yaml::policy::{w['target']['name']}")
               for w in plan.writes), plan.writes
    assert result.report is not None
    assert result.report["kspec"]["plan"]["digest"] == plan.digest
    assert "body" not in result.report["kspec"]["plan"]["writes"][0]
    assert "kspec: remediation plan written to" in result.stdout
    html = (cluster.spec_path.parent / "reports" / "report.html").read_text()
    assert "kspec remediation plan: 3 write(s)" in html and plan.digest in html
    assert "planned resourceVersion" in html
    # The plan from pytest applies with the CLI like any other.
    code, out = kspec(cluster, sim.kubeconfig_path, "remediate", "--apply", "plan.json",
                      "--approved-by", "alice")
    assert code == 0, out
    assert "3 write(s): 3 verified" in out


def test_pytest_plan_refuses_real_remediation(cluster: Cluster, sim_for: SimFor) -> None:
    sim = sim_for()
    result = kspec_run(cluster, sim.kubeconfig_path, "--kspec-remediate", "--kspec-plan",
                       "plan.json")
    assert result.returncode == 4, result.stdout
    assert "--kspec-plan writes the fixes to a plan" in result.stdout
    assert not Path(cluster.spec_path.parent / "plan.json").exists()
