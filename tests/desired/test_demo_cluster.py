"""examples/demo-cluster.yaml: up to date, shaped like a real API server's objects, and drifted
from examples/moderate.yaml exactly as its header says (checked with the real engine)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from pytest_kspec.cluster import Snapshot
from pytest_kspec.desired import catalog, expected_policies, is_kspec_managed
from pytest_kspec.detect import compliance
from pytest_kspec.detect.policydrift import compare_policy, compare_presence
from pytest_kspec.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo-cluster.yaml"
CLUSTER_SCOPED = {"Namespace", "Node", "ClusterRole", "ClusterRoleBinding", "ClusterPolicy",
                  "CustomResourceDefinition", "ValidatingWebhookConfiguration",
                  "MutatingWebhookConfiguration"}


def _script() -> ModuleType:
    path = Path(__file__).resolve().parent / "make_demo_cluster.py"
    spec = importlib.util.spec_from_file_location("kspec_make_demo_cluster", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def objs() -> list[dict[str, Any]]:
    return list(yaml.safe_load_all(DEMO.read_text(encoding="utf-8")))


def test_committed_file_is_what_the_script_writes() -> None:
    assert DEMO.read_text(encoding="utf-8") == _script().render(), (
        "examples/demo-cluster.yaml is stale: run .venv/bin/python "
        "tests/desired/make_demo_cluster.py")


def test_header_describes_the_drift() -> None:
    head = DEMO.read_text(encoding="utf-8").split("\n---\n", 1)[0]
    for words in ("Enforce -> Audit", "block-image-registries: missing", "node-debugger",
                  "hostNetwork", "NodePort", "ci-deployer"):
        assert words in head


def test_objects_look_like_api_server_objects(objs: list[dict[str, Any]]) -> None:
    namespaces = {o["metadata"]["name"] for o in objs if o["kind"] == "Namespace"}
    assert {"kube-system", "kube-public", "kube-node-lease", "default"} <= namespaces
    seen: set[tuple[str, str, str]] = set()
    for o in objs:
        md = o["metadata"]
        assert o["apiVersion"] and md["name"] and md["uid"] and md["creationTimestamp"]
        key = (o["kind"], md.get("namespace", ""), md["name"])
        assert key not in seen, key
        seen.add(key)
        if o["kind"] in CLUSTER_SCOPED:
            assert "namespace" not in md, key
        else:
            assert md.get("namespace") in namespaces, key
    assert len({o["metadata"]["uid"] for o in objs}) == len(objs)


def _pods(objs: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    return (o for o in objs if o["kind"] == "Pod")


def test_owner_references_link_pods_to_replicasets_to_deployments(
    objs: list[dict[str, Any]]
) -> None:
    by_uid = {o["metadata"]["uid"]: o for o in objs}
    chains = 0
    for o in objs:
        for ref in o["metadata"].get("ownerReferences") or []:
            owner = by_uid[ref["uid"]]
            assert (owner["kind"], owner["metadata"]["name"]) == (ref["kind"], ref["name"])
            assert owner["metadata"]["namespace"] == o["metadata"]["namespace"]
            assert owner["apiVersion"] == ref["apiVersion"]
        if o["kind"] == "Pod" and o["metadata"].get("ownerReferences"):
            rs = by_uid[o["metadata"]["ownerReferences"][0]["uid"]]
            if rs["kind"] == "ReplicaSet":
                dep = by_uid[rs["metadata"]["ownerReferences"][0]["uid"]]
                assert dep["kind"] == "Deployment"
                chains += 1
    assert chains >= 5
    for pod in _pods(objs):
        names = [c["name"] for c in pod["spec"]["containers"]
                 + pod["spec"].get("initContainers", [])]
        assert all(names) and len(set(names)) == len(names)


class _Source:
    def __init__(self, objs: list[dict[str, Any]]) -> None:
        self.objs = objs

    def list(self, api_version: str, kind: str,
             namespace: str | None = None) -> list[dict[str, Any]]:
        return [o for o in self.objs if o["apiVersion"] == api_version and o["kind"] == kind
                and namespace in (None, o["metadata"].get("namespace"))]

    def version(self) -> dict[str, Any]:
        return {"major": "1", "minor": "29", "gitVersion": "v1.29.4"}


def test_compliance_drift_is_the_one_the_header_describes(objs: list[dict[str, Any]]) -> None:
    spec = load_spec(ROOT / "examples" / "moderate.yaml")
    snapshot = Snapshot(_Source(objs))
    failing: dict[str, list[str]] = {}
    for ref in catalog.enumerate_checks(spec.body):
        if compliance.supports(ref.kind):
            result = compliance.evaluate(ref, snapshot)
            if not result.passed:
                failing[ref.id] = [v.resource for v in result.violations]
    assert failing == {
        "podsecurity.enforce": ["Namespace/legacy-batch"],
        "podsecurity.warn": ["Namespace/storefront", "Namespace/legacy-batch"],
        "network.defaultDeny": ["Namespace/storefront", "Namespace/legacy-batch"],
        "network.allowedServiceTypes": ["Service/storefront/web"],
        "workloads.containers.required.allowPrivilegeEscalation": [
            "Pod/storefront/node-debugger"],
        "workloads.containers.required.memory": [
            "Deployment/legacy-batch/report-generator"],
        "workloads.containers.required.cpu": [
            "Deployment/legacy-batch/report-generator"],
        "workloads.containers.forbidden.privileged": ["Pod/storefront/node-debugger"],
        "workloads.containers.forbidden.hostNetwork": [
            "Deployment/legacy-batch/report-generator"],
        "workloads.images.blockedRegistries": ["Deployment/storefront/web"],
        "workloads.images.requireDigests": ["Deployment/storefront/web"],
        "rbac.forbiddenRules.all.all.all": ["ClusterRole/ci-deployer"],
    }


def test_policy_drift_is_one_weakened_and_one_missing(objs: list[dict[str, Any]]) -> None:
    live = {o["metadata"]["name"]: o for o in objs if o["kind"] == "ClusterPolicy"}
    drift = {}
    for pol in expected_policies(load_spec(ROOT / "examples" / "moderate.yaml")):
        if pol.presence_only:
            cmp = compare_presence(pol.name, live.get(pol.name))
        else:
            assert pol.manifest is not None
            cmp = compare_policy(pol.manifest, live.get(pol.name))
        if cmp is not None:
            drift[pol.name] = cmp
    assert set(drift) == {"disallow-privileged-containers", "block-image-registries"}
    weakened = drift["disallow-privileged-containers"]
    assert (weakened.drift, weakened.severity) == ("modified", "high")
    assert {(c.actual, c.manager) for c in weakened.changes} == {("Audit", "kubectl-edit")}
    assert drift["block-image-registries"].drift == "missing"
    # Live copies carry Kyverno's defaults and server fields, and still compare equal.
    defaulted = live["require-run-as-non-root"]
    assert defaulted["spec"]["admission"] is True and "status" in defaulted
    assert defaulted["spec"]["rules"][0]["skipBackgroundRequests"] is True
    assert not is_kspec_managed(live["disallow-latest-tag"])
