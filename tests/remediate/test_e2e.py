"""Remediation end to end: ``pytest --kspec-remediate`` in a subprocess against a simulator
served by the test, so the test can inject concurrent edits, count writes and dump state."""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from e2e.conftest import _pod
from kubernetes import client, config

from pytest_kspec.detect import compare_policy
from pytest_kspec.sim import Simulator

from .conftest import POLICY, Cluster, drift_config, expected_policy, kspec_run, rbac_objects

SimFor = Callable[..., Simulator]
PRIVILEGED = "workloads.containers.forbidden.privileged"
NON_ROOT = "workloads.containers.required.runAsNonRoot"


def _weaken(policy: dict[str, Any]) -> None:
    policy["spec"]["validationFailureAction"] = "Audit"
    for rule in policy["spec"]["rules"]:
        rule["validate"].pop("failureAction", None)


def _junit_props(result: Any, name: str) -> dict[str, str]:
    root = ET.parse(result.junit).getroot()
    (case,) = [c for c in root.iter("testcase") if c.get("name") == name]
    return {str(p.get("name")): str(p.get("value")) for p in case.iter("property")}


@pytest.mark.parametrize("workers", ["0", "2"])
def test_deleted_policy_is_restored_and_verified(cluster: Cluster, sim_for: SimFor,
                                                 workers: str) -> None:
    cluster.remove("ClusterPolicy", "require-run-as-non-root")
    sim = sim_for()
    result = kspec_run(cluster, sim.kubeconfig_path, "--kspec-remediate", "-n", workers)
    assert result.returncode == 1, result.stdout  # the drift happened: the item still fails
    assert result.item("policy::require-run-as-non-root")["status"] == "failed"
    (event,) = result.events(type="policy")
    block = event["remediation"]
    assert block["action"] == "create" and block["status"] == "verified", block
    assert block["error"] is None and block["timestamp"].endswith("Z")
    live = sim.get(*POLICY, "require-run-as-non-root")
    assert live is not None
    assert compare_policy(expected_policy(cluster, "require-run-as-non-root"), live) is None
    assert "kspec: remediation: 1 drifted, 1 fixed (verified), 0 failed" in result.stdout
    assert result.report is not None
    counts = result.report["kspec"]["remediation"]
    assert (counts["drifted"], counts["verified"], counts["failed"]) == (1, 1, 0)
    props = _junit_props(result, "require-run-as-non-root")
    assert props["kspec.remediation.action"] == "create"
    assert props["kspec.remediation.status"] == "verified"
    (write,) = sim.writes()
    assert (write.method, write.verb) == ("POST", "create")


def test_weakened_policy_is_restored_keeping_other_tools_labels(
        cluster: Cluster, sim_for: SimFor) -> None:
    policy = cluster.policy("disallow-privileged-containers")
    _weaken(policy)
    policy["metadata"].setdefault("labels", {})["team.example.com/owner"] = "platform"
    policy["metadata"].setdefault("annotations", {})["argocd.argoproj.io/tracking-id"] = "x"
    sim = sim_for()
    seen_rv = sim.get(*POLICY, "disallow-privileged-containers")["metadata"]["resourceVersion"]
    result = kspec_run(cluster, sim.kubeconfig_path, "--kspec-remediate")
    (event,) = result.events(type="policy")
    block = event["remediation"]
    assert (block["action"], block["status"]) == ("update", "verified"), block
    assert block["details"]["resourceVersion"] == seen_rv
    assert any(c["from"] == "Audit" and c["to"] == "Enforce"
               for c in block["details"]["changes"]), block["details"]
    live = sim.get(*POLICY, "disallow-privileged-containers")
    assert compare_policy(expected_policy(cluster, "disallow-privileged-containers"),
                          live) is None
    assert live["metadata"]["labels"]["team.example.com/owner"] == "platform"
    assert live["metadata"]["annotations"]["argocd.argoproj.io/tracking-id"] == "x"
    (write,) = sim.writes()
    assert write.method == "PUT" and write.query["fieldManager"] == "kspec"
    assert "Captured kspec remediation teardown" in result.stdout


def _edit_before_put(sim: Simulator, name: str, change: Callable[[dict[str, Any]], None]) -> None:
    def edit(s: Simulator, method: str, path: str, query: dict[str, str]) -> None:
        obj = s.get(*POLICY, name)
        assert obj is not None
        change(obj)
        s.update(obj)

    sim.on_request(edit, method="PUT", path=f"/clusterpolicies/{name}$")


def test_concurrent_edit_is_not_clobbered(cluster: Cluster, sim_for: SimFor) -> None:
    name = "disallow-privileged-containers"
    _weaken(cluster.policy(name))
    sim = sim_for()

    def turn_background_off(obj: dict[str, Any]) -> None:
        obj["spec"]["background"] = False

    _edit_before_put(sim, name, turn_background_off)
    result = kspec_run(cluster, sim.kubeconfig_path, "--kspec-remediate")
    (event,) = result.events(type="policy")
    block = event["remediation"]
    assert (block["action"], block["status"]) == ("update", "failed"), block
    assert "changed since detection" in block["error"]
    assert "not overwritten" in block["error"] and "background" in block["error"]
    live = sim.get(*POLICY, name)
    assert live["spec"]["background"] is False  # the other change survived
    assert live["spec"]["validationFailureAction"] == "Audit"
    assert [w.method for w in sim.writes()] == ["PUT"]  # ours was refused with 409
    assert sim.writes()[0].status == 409


def test_concurrent_edit_that_leaves_the_same_drift_is_retried_once(
        cluster: Cluster, sim_for: SimFor) -> None:
    name = "disallow-privileged-containers"
    _weaken(cluster.policy(name))
    sim = sim_for()

    def annotate(obj: dict[str, Any]) -> None:
        obj["metadata"].setdefault("annotations", {})["example.com/touched"] = "yes"

    _edit_before_put(sim, name, annotate)
    result = kspec_run(cluster, sim.kubeconfig_path, "--kspec-remediate")
    (event,) = result.events(type="policy")
    block = event["remediation"]
    assert (block["action"], block["status"]) == ("update", "verified"), block
    assert block["details"]["retried"] is True
    live = sim.get(*POLICY, name)
    assert live["metadata"]["annotations"]["example.com/touched"] == "yes"
    assert compare_policy(expected_policy(cluster, name), live) is None
    assert [w.status for w in sim.writes()] == [409, 200]


def test_dry_run_changes_nothing_and_reports_the_plan(cluster: Cluster, sim_for: SimFor) -> None:
    _weaken(cluster.policy("disallow-privileged-containers"))
    cluster.remove("ClusterPolicy", "require-run-as-non-root")
    sim = sim_for()
    before = sim.dump()
    result = kspec_run(cluster, sim.kubeconfig_path, "--kspec-remediate", "--kspec-dry-run")
    assert sim.dump() == before
    assert sim.writes() == []
    blocks = {e["resource"]: e["remediation"] for e in result.events(type="policy")}
    update = blocks["ClusterPolicy/disallow-privileged-containers"]
    assert (update["action"], update["status"], update["dry_run"]) == ("update", "dry-run", True)
    assert any(c["from"] == "Audit" and c["to"] == "Enforce"
               for c in update["details"]["changes"])
    create = blocks["ClusterPolicy/require-run-as-non-root"]
    assert (create["action"], create["status"]) == ("create", "dry-run")
    dry = [r for r in sim.requests if r.dry_run]
    assert sorted(r.method for r in dry) == ["POST", "PUT"]  # the same requests, dryRun=All
    assert "2 dry-run planned" in result.stdout
    assert "Audit → Enforce" in result.stdout


def test_read_only_token_fails_with_a_clear_message(cluster: Cluster, sim_for: SimFor) -> None:
    cluster.remove("ClusterPolicy", "require-run-as-non-root")
    for obj in rbac_objects():
        cluster.add(obj)
    cluster.add({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                 "metadata": {"name": "auditor-detect"},
                 "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                             "name": "kspec-detect"},
                 "subjects": [{"kind": "User", "name": "auditor",
                               "apiGroup": "rbac.authorization.k8s.io"}]})
    sim = sim_for(rbac=True, users={"auditor-token": ("auditor", ())})
    result = kspec_run(cluster, sim.kubeconfig_for("auditor-token"), "--kspec-remediate")
    (event,) = result.events(type="policy")
    block = event["remediation"]
    assert (block["action"], block["status"]) == ("create", "failed"), block
    error = block["error"]
    assert "\n" not in error
    assert 'cannot create clusterpolicies.kyverno.io "require-run-as-non-root"' in error
    assert "403" in error and "kspec-remediate ClusterRole" in error
    assert "manifests/base/rbac.yaml" in error
    assert sim.get(*POLICY, "require-run-as-non-root") is None
    assert "1 failed" in result.stdout


def test_second_run_after_remediation_finds_no_policy_drift_and_writes_nothing(
        cluster: Cluster, sim_for: SimFor) -> None:
    cluster.remove("ClusterPolicy", "require-run-as-non-root")
    _weaken(cluster.policy("disallow-privileged-containers"))
    sim = sim_for()
    first = kspec_run(cluster, sim.kubeconfig_path, "--kspec-remediate")
    assert {e["remediation"]["status"] for e in first.events(type="policy")} == {"verified"}
    writes = len(sim.writes())
    assert writes == 2
    second = kspec_run(cluster, sim.kubeconfig_path, "--kspec-remediate")
    assert second.returncode == 0, second.stdout
    assert second.events(type="policy") == []
    assert len(sim.writes()) == writes
    assert "remediation:" not in second.stdout


def test_types_limit_remediation(cluster: Cluster, sim_for: SimFor) -> None:
    cluster.remove("ClusterPolicy", "require-run-as-non-root")
    cluster.add(_pod("debug-shell", "shop", privileged=True))
    sim = sim_for()
    result = kspec_run(cluster, sim.kubeconfig_path, "--kspec-remediate",
                       "--kspec-types", "compliance")
    assert sim.writes() == []
    (event,) = result.events(resource="Pod/shop/debug-shell")
    assert event["type"] == "compliance"
    assert (event["remediation"]["action"], event["remediation"]["status"]) == (
        "report", "manual-required")


def _owned_pod(sim: Simulator, name: str, namespace: str) -> None:
    """A privileged pod owned by a ReplicaSet owned by Deployment ``name``."""
    template = _pod(name, namespace, privileged=True)
    deploy = sim.create({"apiVersion": "apps/v1", "kind": "Deployment",
                         "metadata": {"name": name, "namespace": namespace},
                         "spec": {"selector": {"matchLabels": {"app": name}},
                                  "template": {"metadata": {"labels": {"app": name}},
                                               "spec": template["spec"]}}})
    rs = sim.create({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                     "metadata": {"name": f"{name}-7d9f", "namespace": namespace,
                                  "ownerReferences": [_ref(deploy)]},
                     "spec": {"selector": {"matchLabels": {"app": name}},
                              "template": {"metadata": {"labels": {"app": name}},
                                           "spec": template["spec"]}}})
    pod = copy.deepcopy(template)
    pod["metadata"]["name"] = f"{name}-7d9f-x2x4q"
    pod["metadata"]["ownerReferences"] = [_ref(rs)]
    sim.create(pod)


def _ref(owner: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"],
            "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
            "controller": True}


@pytest.mark.parametrize("setting", ["delete", "report"])
def test_resource_drift_deletes_only_unowned_pods_when_configured(
        cluster: Cluster, sim_for: SimFor, tmp_path: Path, setting: str) -> None:
    cluster.add(_pod("debug-shell", "shop", privileged=True))
    sim = sim_for()
    _owned_pod(sim, "miner", "shop")
    config = drift_config(tmp_path / "drift.yaml", {"resources": {PRIVILEGED: setting}})
    result = kspec_run(cluster, sim.kubeconfig_path, "--kspec-remediate",
                       "--kspec-config", str(config))
    assert result.item(f"resource::{PRIVILEGED}")["status"] == "failed"
    blocks = {e["resource"]: e["remediation"] for e in result.events(type="resource")}
    # The owned pod breaks the rule its Deployment's template breaks: it is reported once,
    # as the Deployment, and a controller is never deleted.
    assert "Pod/shop/miner-7d9f-x2x4q" not in blocks
    owned = blocks["Deployment/shop/miner"]
    assert (owned["action"], owned["status"]) == ("report", "manual-required")
    if setting == "delete":
        assert "pod template" in owned["details"]["reason"]
    assert sim.get("v1", "Pod", "miner-7d9f-x2x4q", "shop") is not None
    assert sim.get("apps/v1", "Deployment", "miner", "shop") is not None
    unowned = blocks["Pod/shop/debug-shell"]
    if setting == "delete":
        assert (unowned["action"], unowned["status"]) == ("delete", "verified"), unowned
        assert sim.get("v1", "Pod", "debug-shell", "shop") is None
        (write,) = sim.writes()
        assert (write.method, write.path) == ("DELETE", "/api/v1/namespaces/shop/pods/debug-shell")
    else:
        assert (unowned["action"], unowned["status"]) == ("report", "manual-required")
        assert sim.get("v1", "Pod", "debug-shell", "shop") is not None
        assert sim.writes() == []
    # compliance events for the same pods are reported, never acted on
    compliance = result.events(type="compliance", resource="Pod/shop/debug-shell")
    assert compliance[0]["remediation"]["status"] == "manual-required"


def test_deleted_owned_pod_comes_back_so_kspec_points_at_its_owner(
        cluster: Cluster, sim_for: SimFor, tmp_path: Path) -> None:
    """Why kspec reports an owned pod's controller and never deletes the pod: the controller
    recreates it from the same template, still violating."""
    # without admission, as when the Deployment predates the Enforce policies (with them,
    # Kyverno refuses it: see tests/sim/test_admission.py)
    sim = sim_for(nodes=1, admission=False)
    template = _pod("miner", "shop", privileged=True)
    api = config.new_client_from_config(sim.kubeconfig_path)
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    apps.create_namespaced_deployment("shop", {
        "metadata": {"name": "miner"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "miner"}},
                 "template": {"metadata": {"labels": {"app": "miner"}},
                              "spec": template["spec"]}}})
    (first,) = core.list_namespaced_pod("shop", label_selector="app=miner").items
    assert first.status.phase == "Running"
    settings = drift_config(tmp_path / "drift.yaml", {"resources": {PRIVILEGED: "delete"}})
    writes = len(sim.writes())
    result = kspec_run(cluster, sim.kubeconfig_path, "--kspec-remediate",
                       "--kspec-config", str(settings))
    assert len(sim.writes()) == writes  # kspec deleted nothing
    blocks = {e["resource"]: e["remediation"] for e in result.events(type="resource")}
    assert list(blocks) == ["Deployment/shop/miner"]  # reported as its controller
    block = blocks["Deployment/shop/miner"]
    assert (block["action"], block["status"]) == ("report", "manual-required")
    assert "pod template" in block["details"]["reason"]
    # what deleting it (as a naive remediation would) achieves: a new, equally privileged pod
    core.delete_namespaced_pod(first.metadata.name, "shop")
    (second,) = core.list_namespaced_pod("shop", label_selector="app=miner").items
    assert second.metadata.name != first.metadata.name
    assert second.status.phase == "Running"
    assert second.spec.containers[0].security_context.privileged is True
    again = kspec_run(cluster, sim.kubeconfig_path, "--kspec-types", "resource",
                      "--kspec-config", str(settings))
    assert [e["resource"] for e in again.events(type="resource")] == ["Deployment/shop/miner"]
    api.close()


def test_deletion_cap_holds(cluster: Cluster, sim_for: SimFor, tmp_path: Path) -> None:
    for i in range(4):
        cluster.add(_pod(f"debug-{i}", "shop", privileged=True))
    sim = sim_for()
    config = drift_config(tmp_path / "drift.yaml", {"resources": {PRIVILEGED: "delete"},
                                                    "maxDeletions": 3})
    result = kspec_run(cluster, sim.kubeconfig_path, "--kspec-remediate",
                       "--kspec-config", str(config), "--kspec-max-deletions", "2")
    statuses = sorted(e["remediation"]["status"] for e in result.events(type="resource"))
    assert statuses == ["skipped", "skipped", "verified", "verified"]
    skipped = [e["remediation"] for e in result.events(type="resource")
               if e["remediation"]["status"] == "skipped"]
    assert all("cap of 2 deletion(s)" in b["error"] and "--kspec-max-deletions" in b["error"]
               for b in skipped)
    left = [p["metadata"]["name"] for p in sim.list("v1", "Pod", "shop")
            if p["metadata"]["name"].startswith("debug-")]
    assert len(left) == 2
    assert len(sim.writes()) == 2


def test_deletion_cap_is_shared_by_xdist_workers(cluster: Cluster, sim_for: SimFor,
                                                 tmp_path: Path) -> None:
    cluster.add(_pod("debug-shell", "shop", privileged=True))
    root = _pod("as-root", "shop")
    root["spec"]["containers"][0]["securityContext"] = {}
    cluster.add(root)
    sim = sim_for()
    config = drift_config(tmp_path / "drift.yaml", {
        "resources": {PRIVILEGED: "delete", NON_ROOT: "delete"}, "maxDeletions": 1})
    result = kspec_run(cluster, sim.kubeconfig_path, "--kspec-remediate", "-n", "2",
                       "--kspec-config", str(config))
    statuses = sorted(e["remediation"]["status"] for e in result.events(type="resource"))
    assert statuses == ["skipped", "verified"], result.stdout
    assert len(sim.writes()) == 1


def test_extra_policy_is_deleted_only_with_prune(cluster: Cluster, sim_for: SimFor) -> None:
    extra = copy.deepcopy(cluster.policy("disallow-privileged-containers"))
    extra["metadata"]["name"] = "old-kspec-policy"
    cluster.add(extra)
    sim = sim_for()
    kept = kspec_run(cluster, sim.kubeconfig_path, "--kspec-remediate")
    (event,) = kept.events(resource="ClusterPolicy/old-kspec-policy")
    assert (event["remediation"]["action"], event["remediation"]["status"]) == (
        "report", "skipped")
    assert "--kspec-prune" in event["remediation"]["details"]["reason"]
    assert sim.get(*POLICY, "old-kspec-policy") is not None
    pruned = kspec_run(cluster, sim.kubeconfig_path, "--kspec-remediate", "--kspec-prune")
    (event,) = pruned.events(resource="ClusterPolicy/old-kspec-policy")
    assert (event["remediation"]["action"], event["remediation"]["status"]) == (
        "delete", "verified")
    assert sim.get(*POLICY, "old-kspec-policy") is None


def test_without_remediation_nothing_is_written(cluster: Cluster, sim_for: SimFor) -> None:
    cluster.remove("ClusterPolicy", "require-run-as-non-root")
    sim = sim_for()
    result = kspec_run(cluster, sim.kubeconfig_path)
    (event,) = result.events(type="policy")
    assert event["remediation"] is None
    assert sim.writes() == [] and not any(r.dry_run for r in sim.requests)


def test_drift_config_auto_remediates_listed_types(cluster: Cluster, sim_for: SimFor,
                                                   tmp_path: Path) -> None:
    cluster.remove("ClusterPolicy", "require-run-as-non-root")
    cluster.add(_pod("debug-shell", "shop", privileged=True))
    sim = sim_for()
    config = drift_config(tmp_path / "drift.yaml", {"auto": True, "types": ["policies"]})
    result = kspec_run(cluster, sim.kubeconfig_path, "--kspec-config", str(config))
    (policy,) = result.events(type="policy")
    assert policy["remediation"]["status"] == "verified"
    (violation,) = result.events(type="compliance")
    assert violation["remediation"] is None  # compliance is not in remediation.types
