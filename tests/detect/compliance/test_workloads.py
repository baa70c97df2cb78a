"""Container rules over Pods: container kinds, pod-level keys, securityContext inheritance."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_kspec.detect.compliance import ComplianceOptions, evaluate
from pytest_kspec.detect.compliance.workloads import same_value
from pytest_kspec.errors import ApiError

from .fakes import MemorySnapshot, container, pod, ref_for, replicaset


def forbidden(key: str, **rule: Any) -> dict[str, Any]:
    return {"workloads": {"containers": {"forbidden": [{"key": key, **rule}]}}}


def required(key: str, **rule: Any) -> dict[str, Any]:
    return {"workloads": {"containers": {"required": [{"key": key, **rule}]}}}


PRIV: dict[str, Any] = {"securityContext": {"privileged": True}}


def test_privileged_pod_in_app_namespace_not_in_kube_system() -> None:
    snap = MemorySnapshot(
        pod("web", containers=[container(**PRIV)]),
        pod("kube-proxy", ns="kube-system", containers=[container("kube-proxy", **PRIV)]),
        pod("ok"),
    )
    res = evaluate(ref_for(forbidden("securityContext.privileged", value=True)), snap)
    [v] = res.violations
    assert str(v) == 'Pod/payments/web: container "app" sets securityContext.privileged=true'
    assert (v.container, v.kind, v.namespace, v.name, v.api_version) == (
        "app", "Pod", "payments", "web", "v1")
    assert res.evaluated == 2
    assert res.summary == ("1 of 2 workloads violate: Containers must not set "
                           "securityContext.privileged=true")


def test_init_and_ephemeral_containers_count() -> None:
    snap = MemorySnapshot(pod(
        "web", containers=[container()],
        initContainers=[container("setup", **PRIV)],
        ephemeralContainers=[container("debug", securityContext={"privileged": "true"})]))
    res = evaluate(ref_for(forbidden("securityContext.privileged", value="true")), snap)
    assert [v.message for v in res.violations] == [
        'initContainer "setup" sets securityContext.privileged=true',
        'ephemeralContainer "debug" sets securityContext.privileged=true',
    ]
    assert [v.container for v in res.violations] == ["setup", "debug"]


@pytest.mark.parametrize(
    ("pod_sc", "container_sc", "expected"),
    [
        ({"runAsNonRoot": True}, None, None),
        ({"runAsNonRoot": True}, {"runAsNonRoot": False},
         'container "app" sets securityContext.runAsNonRoot=false, want true'),
        ({"runAsNonRoot": False}, None,
         'container "app" sets securityContext.runAsNonRoot=false (pod securityContext), '
         "want true"),
        (None, {"runAsNonRoot": True}, None),
        ({"runAsNonRoot": False}, {"runAsNonRoot": True}, None),
        (None, None, 'container "app" does not set securityContext.runAsNonRoot, want true'),
        (None, {"allowPrivilegeEscalation": False},
         'container "app" does not set securityContext.runAsNonRoot, want true'),
    ],
)
def test_run_as_non_root_pod_and_container_level(
        pod_sc: dict[str, Any] | None, container_sc: dict[str, Any] | None,
        expected: str | None) -> None:
    c = container(securityContext=container_sc) if container_sc else container()
    spec: dict[str, Any] = {"securityContext": pod_sc} if pod_sc else {}
    snap = MemorySnapshot(pod("web", containers=[c], **spec))
    res = evaluate(ref_for(required("securityContext.runAsNonRoot", value=True)), snap)
    assert [v.message for v in res.violations] == ([expected] if expected else [])


def test_seccomp_profile_inherits_as_a_whole() -> None:
    rule = required("securityContext.seccompProfile.type", value="RuntimeDefault")
    pod_sc: dict[str, Any] = {"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}}
    snap = MemorySnapshot(
        pod("a", **pod_sc),
        pod("b", containers=[container(securityContext={"seccompProfile": {
            "type": "Localhost", "localhostProfile": "p.json"}})], **pod_sc),
    )
    res = evaluate(ref_for(rule), snap)
    assert [str(v) for v in res.violations] == [
        'Pod/payments/b: container "app" sets securityContext.seccompProfile.type=Localhost, '
        "want RuntimeDefault"]


def test_privileged_is_not_inherited_from_pod() -> None:
    # privileged exists only in the container SecurityContext: no pod-level fallback
    snap = MemorySnapshot(pod("web", securityContext={"privileged": True}))
    assert evaluate(ref_for(forbidden("securityContext.privileged", value=True)), snap).passed


@pytest.mark.parametrize("key", ["hostNetwork", "spec.hostNetwork"])
def test_pod_level_keys_give_one_violation_per_pod(key: str) -> None:
    snap = MemorySnapshot(
        pod("net", containers=[container(), container("sidecar")], hostNetwork=True),
        pod("fine", hostNetwork=False),
    )
    res = evaluate(ref_for(forbidden(key, value=True)), snap)
    assert [str(v) for v in res.violations] == [f"Pod/payments/net: pod sets {key}=true"]
    assert res.violations[0].container is None


@pytest.mark.parametrize(
    ("rule", "resources", "expected"),
    [
        (required("resources.limits.cpu", exists=True), {"limits": {"memory": "1Gi"}},
         'container "app" does not set resources.limits.cpu'),
        (required("resources.limits.cpu", exists=True), {"limits": {"cpu": "500m"}}, None),
        (required("resources.limits.cpu", value="1"), {"limits": {"cpu": 1}}, None),
        (required("resources.limits.cpu", value=1), {"limits": {"cpu": "2"}},
         'container "app" sets resources.limits.cpu=2, want 1'),
        (forbidden("resources.limits.cpu", exists=True), {"limits": {"cpu": "2"}},
         'container "app" sets resources.limits.cpu=2'),
        (forbidden("resources.limits.cpu", exists=True), {}, None),
        (required("resources.limits.cpu", exists=False), {"limits": {"cpu": "2"}},
         'container "app" sets resources.limits.cpu=2, which must be absent'),
    ],
)
def test_exists_and_value_semantics(rule: dict[str, Any], resources: dict[str, Any],
                                    expected: str | None) -> None:
    snap = MemorySnapshot(pod("web", containers=[container(resources=resources)]))
    res = evaluate(ref_for(rule), snap)
    assert [v.message for v in res.violations] == ([expected] if expected else [])


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [(True, "true", True), ("True", True, True), (False, "true", False), (1000, "1000", True),
     ("1000", 1000.0, True), ("500m", "0.5", True),
     ("512Mi", "0.5Gi", True), ("1Gi", "1G", False), ("2", "2000m", True), ("1e3", "1k", True),
     ("RuntimeDefault", "RuntimeDefault", True)],
)
def test_same_value(a: Any, b: Any, equal: bool) -> None:
    assert same_value(a, b) is equal


def test_owner_resolution_through_replicaset_listed_once() -> None:
    snap = MemorySnapshot(
        pod("web-7d4b9-abcde", containers=[container(**PRIV)], owner=("ReplicaSet", "web-7d4b9")),
        pod("web-7d4b9-fghij", containers=[container(**PRIV)], owner=("ReplicaSet", "web-7d4b9")),
        pod("orphan-rs-x", containers=[container(**PRIV)], owner=("ReplicaSet", "gone")),
        pod("db-0", containers=[container(**PRIV)], owner=("StatefulSet", "db")),
        pod("bare", containers=[container(**PRIV)]),
        replicaset("web-7d4b9", "payments", "web"),
    )
    res = evaluate(ref_for(forbidden("securityContext.privileged", value=True)), snap)
    assert [v.owner for v in res.violations] == [
        "Deployment/payments/web", "Deployment/payments/web", "ReplicaSet/payments/gone",
        "StatefulSet/payments/db", None]
    assert snap.calls.count(("apps/v1", "ReplicaSet", None)) == 1


def test_controllers_that_cannot_be_listed_make_the_check_an_error_not_a_pass() -> None:
    snap = MemorySnapshot(
        pod("web-x", containers=[container(**PRIV)], owner=("ReplicaSet", "web-7d4b9")),
        replicaset("web-7d4b9", "payments", "web"),
        fail={("apps/v1", "ReplicaSet"): 403})
    with pytest.raises(ApiError) as err:
        evaluate(ref_for(forbidden("securityContext.privileged", value=True)), snap)
    assert err.value.status == 403


def test_api_error_propagates() -> None:
    snap = MemorySnapshot(pod("web"), fail={("v1", "Pod"): 500})
    with pytest.raises(ApiError) as err:
        evaluate(ref_for(forbidden("securityContext.privileged", value=True)), snap)
    assert (err.value.status, err.value.resource) == (500, "pods")


def test_namespaces_exempted_by_pod_security_are_exempt_where_their_level_allows() -> None:
    body: dict[str, Any] = {"podSecurity": {"enforce": "restricted", "exemptions": [
        {"namespace": "monitoring", "level": "privileged", "reason": "node exporter"},
        {"namespace": "legacy", "level": "baseline", "reason": "old images"}]}}
    options = ComplianceOptions.for_spec(body)
    snap = MemorySnapshot(
        pod("node-exporter", ns="monitoring", containers=[container(**PRIV)]),
        pod("old-app", ns="legacy", containers=[container(**PRIV)]),
        pod("web", ns="payments", containers=[container()]),
    )
    privileged = evaluate(ref_for(forbidden("securityContext.privileged", value=True)), snap,
                          options)
    assert [v.resource for v in privileged.violations] == ["Pod/legacy/old-app"]
    non_root = evaluate(ref_for(required("securityContext.runAsNonRoot", value=True)), snap,
                        options)
    assert [v.resource for v in non_root.violations] == ["Pod/payments/web"]
    limits = evaluate(ref_for(required("resources.limits.memory", exists=True)), snap, options)
    assert {v.resource for v in limits.violations} == {
        "Pod/monitoring/node-exporter", "Pod/legacy/old-app", "Pod/payments/web"}
