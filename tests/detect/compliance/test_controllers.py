"""Controllers are judged on their pod templates; a pod under a judged controller that
breaks the rule the same way is reported once, under its controller."""

from __future__ import annotations

from typing import Any

from pytest_kspec.detect.compliance import evaluate

from .fakes import MemorySnapshot, container, meta, pod, ref_for

PRIV = {"securityContext": {"privileged": True}}
RULE = {"workloads": {"containers": {"forbidden": [
    {"key": "securityContext.privileged", "value": True}]}}}


def controller(kind: str, name: str, containers: list[dict[str, Any]], ns: str = "shop",
               owner: tuple[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    api = "batch/v1" if kind in ("Job", "CronJob") else "apps/v1"
    template = {"metadata": {"labels": {"app": name}}, "spec": {"containers": containers}}
    body: dict[str, Any] = {"template": template, **spec}
    if kind == "CronJob":
        body = {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": template}}}
    m = meta(name, ns)
    if owner:
        m["ownerReferences"] = [{"apiVersion": api, "kind": owner[0], "name": owner[1],
                                 "uid": f"uid-{ns}-{owner[1]}", "controller": True}]
    return {"apiVersion": api, "kind": kind, "metadata": m, "spec": body}


def replicas(rs: str, n: int, containers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [pod(f"{rs}-{i}", ns="shop", containers=containers, owner=("ReplicaSet", rs))
            for i in range(n)]


def test_deployment_scaled_to_zero_with_a_privileged_template_is_drift() -> None:
    snap = MemorySnapshot(controller("Deployment", "web", [container(**PRIV)], replicas=0))
    [v] = evaluate(ref_for(RULE), snap).violations
    assert str(v) == 'Deployment/shop/web: container "app" sets securityContext.privileged=true'
    assert (v.kind, v.api_version) == ("Deployment", "apps/v1")


def test_compliant_deployment_with_three_replicas_yields_nothing() -> None:
    snap = MemorySnapshot(
        controller("Deployment", "web", [container()], replicas=3),
        controller("ReplicaSet", "web-7d4b9", [container()], owner=("Deployment", "web")),
        *replicas("web-7d4b9", 3, [container()]))
    res = evaluate(ref_for(RULE), snap)
    assert res.violations == ()
    assert res.evaluated == 4  # the Deployment and its three pods; the owned RS is not apart


def test_violating_deployment_with_three_replicas_is_one_violation_not_four() -> None:
    snap = MemorySnapshot(
        controller("Deployment", "web", [container(**PRIV)], replicas=3),
        controller("ReplicaSet", "web-7d4b9", [container(**PRIV)],
                   owner=("Deployment", "web")),
        *replicas("web-7d4b9", 3, [container(**PRIV)]))
    assert [v.resource for v in evaluate(ref_for(RULE), snap).violations] == [
        "Deployment/shop/web"]


def test_a_pod_breaking_the_rule_its_template_keeps_is_still_reported() -> None:
    debug = {"name": "debugger", "image": "busybox", **PRIV}
    snap = MemorySnapshot(
        controller("Deployment", "web", [container()]),
        controller("ReplicaSet", "web-7d4b9", [container()], owner=("Deployment", "web")),
        *replicas("web-7d4b9", 2, [container()]),
        pod("web-7d4b9-x", ns="shop", owner=("ReplicaSet", "web-7d4b9"),
            ephemeralContainers=[debug]))
    [v] = evaluate(ref_for(RULE), snap).violations
    assert (v.resource, v.owner) == ("Pod/shop/web-7d4b9-x", "Deployment/shop/web")
    assert v.message.startswith('ephemeralContainer "debugger"')


def test_every_controller_kind_is_judged_and_owned_ones_through_their_owner() -> None:
    bad = [container(**PRIV)]
    snap = MemorySnapshot(
        controller("StatefulSet", "db", bad),
        controller("DaemonSet", "agent", bad),
        controller("ReplicaSet", "bare-rs", bad),
        controller("Job", "once", bad),
        controller("CronJob", "nightly", bad),
        controller("Job", "nightly-2901", bad, owner=("CronJob", "nightly")),
        controller("Deployment", "app", [container()], ns="kube-system"))
    resources = [v.resource for v in evaluate(ref_for(RULE), snap).violations]
    assert sorted(resources) == ["CronJob/shop/nightly", "DaemonSet/shop/agent",
                                 "Job/shop/once", "ReplicaSet/shop/bare-rs",
                                 "StatefulSet/shop/db"]


def test_image_checks_judge_templates_too() -> None:
    body = {"workloads": {"images": {"allowedRegistries": ["registry.example.com"],
                                     "requireDigests": True}}}
    snap = MemorySnapshot(controller("CronJob", "report", [container(image="evil.io/app:1")]))
    registries = evaluate(ref_for(body, 0), snap)
    digests = evaluate(ref_for(body, 1), snap)
    assert [v.resource for v in registries.violations] == ["CronJob/shop/report"]
    assert [v.resource for v in digests.violations] == ["CronJob/shop/report"]


def test_ephemeral_containers_are_exempt_from_resource_rules() -> None:
    body = {"workloads": {"containers": {"required": [
        {"key": "resources.limits.memory", "value": "512Mi"}]}}}
    limited = container(resources={"limits": {"memory": "0.5Gi"}})
    debug = {"name": "debugger", "image": "busybox"}
    snap = MemorySnapshot(pod("web", containers=[limited], ephemeralContainers=[debug]))
    assert evaluate(ref_for(body), snap).violations == ()
