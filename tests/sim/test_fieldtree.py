"""A create's managedFields, built in one walk, equal what the general bookkeeping records."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_kspec.sim.apply import record_update
from pytest_kspec.sim.fieldtree import created_fields, created_managed
from pytest_kspec.sim.mergekeys import ROOTS, TYPES

WHEN = "2024-05-01T10:00:00Z"


def general(obj: dict[str, Any], api_version: str, kind: str, *,
            status_is_subresource: bool = True) -> list[dict[str, Any]]:
    """What ``record_update`` records for the create of ``obj`` (nothing before it)."""
    return record_update([], None, obj, manager="m", operation="Update",
                         api_version=api_version, time=WHEN, kind=kind,
                         status_is_subresource=status_is_subresource)


def fast(obj: dict[str, Any], api_version: str, kind: str, *,
         status_is_subresource: bool = True) -> list[dict[str, Any]]:
    return created_managed(obj, manager="m", api_version=api_version, kind=kind, time=WHEN,
                           status_is_subresource=status_is_subresource)


def same_json(a: Any, b: Any) -> bool:
    """Equal, key order included (the tree is served as JSON, sorted)."""
    return json.dumps(a) == json.dumps(b)


POD = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "web-1", "namespace": "shop", "uid": "u-1", "generation": 1,
                 "labels": {"app": "web", "tier": "front"}, "annotations": {"a": "1"},
                 "finalizers": ["example.com/guard", "example.com/other"],
                 "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                      "name": "web-7d4b9c", "uid": "rs-1", "controller": True}]},
    "spec": {
        "nodeName": "node-a", "nodeSelector": {}, "volumes": [],
        "containers": [
            {"name": "web", "image": "nginx:1.27",
             "ports": [{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}],
             "env": [{"name": "A", "value": "1"}, {"name": 'q"uoted-ü\\', "value": "2"},
                     {"name": "B", "valueFrom": {
                 "fieldRef": {"fieldPath": "metadata.name"}}}],
             "resources": {"limits": {"cpu": "1"}, "requests": {}},
             "securityContext": {"privileged": False, "capabilities": {"drop": ["ALL"]}}},
            {"name": "sidecar", "image": "busybox", "args": ["sleep", "1d"]}],
        "tolerations": [{"key": "k", "operator": "Exists"}],
    },
    "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.1"}],
               "conditions": [{"type": "Ready", "status": "True"}]},
}
DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "shop"},
    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
             "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
             "template": {"metadata": {"labels": {"app": "web"}, "name": "kept"},
                          "spec": {"containers": [{"name": "web", "image": "nginx"}]}}},
}
CRONJOB = {
    "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly"},
    "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {"spec": {
        "restartPolicy": "Never", "containers": [{"name": "job", "image": "busybox"}]}}}}},
}
SERVICE = {
    "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
    "spec": {"selector": {"app": "web"},
             "ports": [{"port": 80, "targetPort": 8080}, {"port": 53, "protocol": "UDP"}]},
}
NODE = {
    "apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-a"},
    "spec": {"podCIDRs": ["10.0.0.0/24", "fd00::/64"]},
    "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.5"}],
               "capacity": {"cpu": "4"}},
}
NETPOL = {
    "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
    "metadata": {"name": "deny", "namespace": "shop"},
    "spec": {"podSelector": {"matchLabels": {"a": "b"}}, "policyTypes": ["Ingress"]},
}
CONFIGMAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "only-a-name"}}
DUPLICATES = {  # the API server refuses these; the bookkeeping must still agree
    "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "dup"},
    "spec": {"containers": [
        {"name": "a", "image": "x", "ports": [{"containerPort": 80},
                                              {"containerPort": 80, "protocol": "TCP",
                                               "name": "http"}]},
        {"name": "a", "args": ["y"], "env": [{"value": "no name"}, {"valueFrom": {}}]}]},
}
POLICY = {
    "apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy",
    "metadata": {"name": "require-labels", "labels": {"team": "sec"}},
    "spec": {"validationFailureAction": "Audit", "background": True,
             "rules": [{"name": "check-team", "match": {"any": []}}]},
    "status": {"ready": True},
}


@pytest.mark.parametrize("obj", [POD, DEPLOYMENT, CRONJOB, SERVICE, NODE, NETPOL, CONFIGMAP,
                                 DUPLICATES, POLICY],
                         ids=lambda o: f"{o['kind']}-{o['metadata']['name']}")
@pytest.mark.parametrize("status_is_subresource", [True, False])
def test_a_create_records_what_the_general_bookkeeping_records(
        obj: dict[str, Any], status_is_subresource: bool) -> None:
    args = (obj, obj["apiVersion"], obj["kind"])
    expected = general(*args, status_is_subresource=status_is_subresource)
    assert same_json(fast(*args, status_is_subresource=status_is_subresource), expected)


def test_the_tree_a_pod_create_records() -> None:
    """Spelled out once: sorted keys, "." on what may be absent, list items by their keys."""
    tree = created_fields(POD, "v1", "Pod")
    assert list(tree) == ["f:metadata", "f:spec"]  # status: a subresource; no apiVersion
    assert list(tree["f:metadata"]) == ["f:annotations", "f:finalizers", "f:labels",
                                        "f:ownerReferences"]  # name, uid... left out
    assert tree["f:metadata"]["f:finalizers"] == {
        ".": {}, 'v:"example.com/guard"': {}, 'v:"example.com/other"': {}}
    containers = tree["f:spec"]["f:containers"]
    assert "." not in containers  # always present in a pod
    assert list(containers) == ['k:{"name":"sidecar"}', 'k:{"name":"web"}']
    assert list(containers['k:{"name":"web"}']["f:ports"]) == [
        ".", 'k:{"containerPort":53,"protocol":"UDP"}',
        'k:{"containerPort":80,"protocol":"TCP"}']  # the protocol a manifest leaves out
    assert tree["f:spec"]["f:nodeSelector"] == {} and tree["f:spec"]["f:volumes"] == {}


def test_nothing_to_own_records_no_entry() -> None:
    assert fast(CONFIGMAP, "v1", "ConfigMap") == [] == general(CONFIGMAP, "v1", "ConfigMap")


# Field names the schema tables know (and a few they do not), so generated objects reach
# keyed lists, sets, atomic structs, granular maps and the paths the server leaves out.
_NAMES = sorted({name for table in (*TYPES.values(), *ROOTS.values()) for name in table}
                | {"metadata", "name", "namespace", "uid", "resourceVersion", "status",
                   "containerPort", "protocol", "port", "mountPath", "type", "ip", "key",
                   "image", "apiVersion", "kind", "spec", "x", "y"})
_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from(
    ["a", "b", "TCP", "UDP", "", "web"]))
_VALUE = st.recursive(
    _SCALAR,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.sampled_from(_NAMES), inner, max_size=4)),
    max_leaves=30)
_KINDS = st.sampled_from([(api, kind) for kind in ROOTS for api in ("v1", "apps/v1")]
                         + [("example.com/v1", "Widget"), ("v1", "Unlisted")])


@settings(max_examples=400, deadline=None)
@given(kind=_KINDS, body=st.dictionaries(st.sampled_from(_NAMES), _VALUE, max_size=6),
       status_is_subresource=st.booleans())
def test_any_object_records_the_same(kind: tuple[str, str], body: dict[str, Any],
                                     status_is_subresource: bool) -> None:
    api_version, name = kind
    obj = {**body, "apiVersion": api_version, "kind": name}
    obj["metadata"] = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
    obj["metadata"].setdefault("name", "x")
    assert same_json(fast(obj, api_version, name, status_is_subresource=status_is_subresource),
                     general(obj, api_version, name,
                             status_is_subresource=status_is_subresource))
