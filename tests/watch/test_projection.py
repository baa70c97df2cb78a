"""What watch mode keeps of each object: the same verdicts as the raw objects, less memory."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from pytest_kspec.cluster import Cluster, Snapshot
from pytest_kspec.detect import Detector, Outcome, make_plan
from pytest_kspec.errors import ApiError
from pytest_kspec.sim import Simulator
from pytest_kspec.spec import load_spec
from pytest_kspec.watch.projection import Projection, rule_roots

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
VERSION = ("", "version")


def _verdicts(outcomes: list[Outcome]) -> list[tuple[str, str, list[tuple[str, str, str]]]]:
    return [(o.target.key, o.status,
             sorted((e.resource, e.drift, e.message) for e in o.events)) for o in outcomes]


@pytest.mark.parametrize("spec", ["moderate.yaml", "strict.yaml"])
def test_projected_objects_give_the_same_verdicts(spec: str) -> None:
    plan = make_plan(load_spec(EXAMPLES / spec))
    with Simulator(kyverno=True) as sim:
        sim.load(EXAMPLES / "demo-cluster.yaml")
        cluster = Cluster.connect(sim.kubeconfig_path)
        try:
            raw = Snapshot(cluster)
            with raw.tracking() as kinds:
                whole = [Detector(plan, raw).evaluate(t) for t in plan.targets]
            projection = Projection(plan)
            projected = Snapshot(cluster)
            raw_size = kept_size = 0
            for api_version, kind in sorted(kinds - {VERSION}):
                try:
                    items = raw.list(api_version, kind)
                except ApiError:  # a kind the cluster does not serve
                    continue
                project = projection.for_kind(api_version, kind)
                kept = [project(copy.deepcopy(o)) if project else o for o in items]
                projected.put(api_version, kind, kept)
                raw_size += len(json.dumps(items))
                kept_size += len(json.dumps(kept))
            seen = [Detector(plan, projected).evaluate(t) for t in plan.targets]
        finally:
            cluster.close()
    assert any(o.status == "failed" for o in whole)  # the demo cluster drifted
    assert _verdicts(seen) == _verdicts(whole)
    assert kept_size < raw_size / 2


def _pod() -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": "web", "namespace": "shop", "uid": "u1", "resourceVersion": "7",
            "labels": {"app": "web"}, "creationTimestamp": "2024-01-01T00:00:00Z",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{...}",
                            "team": "a"},
            "managedFields": [{"manager": "kubectl"}],
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                 "name": "web-1", "uid": "u0", "controller": True,
                                 "blockOwnerDeletion": True}]},
        "spec": {
            "hostNetwork": True, "dnsPolicy": "ClusterFirst",
            "volumes": [{"name": "token", "projected": {"sources": []}}],
            "tolerations": [{"key": "k", "operator": "Exists"}],
            "securityContext": {"runAsNonRoot": True},
            "containers": [{"name": "app", "image": "r/app:1", "env": [{"name": "PW",
                                                                          "value": "s3cret"}],
                            "resources": {"limits": {"memory": "1Gi"}},
                            "volumeMounts": [{"name": "token", "mountPath": "/var"}],
                            "securityContext": {"privileged": False}}]},
        "status": {"phase": "Running", "podIP": "10.0.0.1"},
    }


def test_a_pod_keeps_what_the_rules_name_and_nothing_else() -> None:
    plan = make_plan(load_spec(EXAMPLES / "moderate.yaml"))
    project = Projection(plan).for_kind("v1", "Pod")
    assert project is not None
    pod = project(_pod())
    assert "status" not in pod
    assert pod["metadata"] == {
        "name": "web", "namespace": "shop", "uid": "u1", "resourceVersion": "7",
        "labels": {"app": "web"}, "annotations": {"team": "a"},
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1",
                             "uid": "u0", "controller": True}]}
    # moderate.yaml asks for limits and forbids host namespaces: those fields stay
    assert pod["spec"]["hostNetwork"] is True
    container = pod["spec"]["containers"][0]
    assert container["resources"] == {"limits": {"memory": "1Gi"}}
    assert "env" not in container and "volumeMounts" not in container
    assert "volumes" not in pod["spec"] and "tolerations" not in pod["spec"]


def test_policies_are_kept_whole() -> None:
    plan = make_plan(load_spec(EXAMPLES / "minimal.yaml"))
    assert Projection(plan).for_kind("kyverno.io/v1", "ClusterPolicy") is None


def test_rule_roots_cover_keys_with_dots() -> None:
    assert rule_roots(["resources.limits.memory"]) == {
        "resources", "resources.limits", "resources.limits.memory"}
