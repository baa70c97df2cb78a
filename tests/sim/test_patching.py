"""Merge, JSON and strategic merge patches behave as the API server applies them."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_kspec.sim.patching import (
    UNSUPPORTED_MEDIA_MESSAGE,
    PatchError,
    is_builtin,
    json_merge_patch,
    json_patch,
    strategic_merge_patch,
)

# ---------------------------------------------------------------- realistic objects


def pod() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web-0",
            "namespace": "shop",
            "labels": {"app": "web", "tier": "front"},
            "finalizers": ["example.com/a", "example.com/b"],
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": "u-1"}
            ],
        },
        "spec": {
            "containers": [
                {
                    "name": "nginx",
                    "image": "nginx:1.25",
                    "command": ["nginx", "-g", "daemon off;"],
                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                },
                {"name": "sidecar", "image": "busybox:1.36"},
            ],
            "volumes": [{"name": "data", "emptyDir": {}}],
            "tolerations": [{"key": "a", "operator": "Exists"}],
        },
        "status": {"conditions": [{"type": "Ready", "status": "False"}]},
    }


def deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "annotations": {"a": "1"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {"name": "nginx", "image": "nginx:1.25"},
                        {"name": "sidecar", "image": "busybox:1.36"},
                    ]
                },
            },
        },
    }


def cluster_policy() -> dict[str, Any]:
    return {
        "apiVersion": "kyverno.io/v1",
        "kind": "ClusterPolicy",
        "metadata": {"name": "require-labels"},
        "spec": {
            "validationFailureAction": "Audit",
            "background": True,
            "rules": [
                {
                    "name": "check-team",
                    "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
                    "validate": {"message": "label team is required",
                                 "pattern": {"metadata": {"labels": {"team": "?*"}}}},
                }
            ],
        },
    }


# ---------------------------------------------------------------- JSON merge patch


def test_merge_patch_sets_deletes_and_replaces_lists() -> None:
    policy = cluster_policy()
    before = copy.deepcopy(policy)
    patched = json_merge_patch(policy, {
        "spec": {"validationFailureAction": "Enforce", "background": None,
                 "rules": [{"name": "other"}]},
        "metadata": {"labels": {"team": "sec"}},
    })
    assert patched["spec"] == {"validationFailureAction": "Enforce", "rules": [{"name": "other"}]}
    assert patched["metadata"] == {"name": "require-labels", "labels": {"team": "sec"}}
    assert policy == before


def test_merge_patch_non_object_patch_replaces_target() -> None:
    assert json_merge_patch({"a": 1}, [1, 2]) == [1, 2]
    assert json_merge_patch([1], {"a": {"b": None, "c": 1}}) == {"a": {"c": 1}}


def test_merge_patch_result_shares_nothing_with_inputs() -> None:
    target: dict[str, Any] = {"a": {"b": [1]}, "c": {"d": 1}}
    result = json_merge_patch(target, {"c": {"e": 2}})
    result["a"]["b"].append(2)
    assert target["a"]["b"] == [1]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=12,
)
no_null_docs = st.recursive(
    st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=12,
)


def merge_diff(source: Any, target: Any) -> Any:
    """The RFC 7386 patch that turns ``source`` into ``target`` (targets without nulls)."""
    if not (isinstance(source, dict) and isinstance(target, dict)):
        return target
    patch: dict[str, Any] = {}
    for key in source:
        if key not in target:
            patch[key] = None
    for key, value in target.items():
        if key not in source:
            patch[key] = value
        elif source[key] != value or type(source[key]) is not type(value):
            patch[key] = merge_diff(source[key], value)
    return patch


@settings(max_examples=150, deadline=None)
@given(no_null_docs, no_null_docs)
def test_merge_patch_of_a_diff_reproduces_the_target(source: Any, target: Any) -> None:
    assert json_merge_patch(source, merge_diff(source, target)) == target


@settings(max_examples=100, deadline=None)
@given(json_values, json_values)
def test_merge_patch_is_idempotent(target: Any, patch: Any) -> None:
    once = json_merge_patch(target, patch)
    assert json_merge_patch(once, patch) == once


# ---------------------------------------------------------------- JSON patch


def test_json_patch_all_operations_on_a_custom_resource() -> None:
    policy = cluster_policy()
    before = copy.deepcopy(policy)
    result = json_patch(policy, [
        {"op": "test", "path": "/spec/validationFailureAction", "value": "Audit"},
        {"op": "replace", "path": "/spec/validationFailureAction", "value": "Enforce"},
        {"op": "add", "path": "/metadata/annotations", "value": {}},
        {"op": "add", "path": "/metadata/annotations/policies.kyverno.io~1title",
         "value": "Require labels"},
        {"op": "add", "path": "/spec/rules/-", "value": {"name": "second"}},
        {"op": "add", "path": "/spec/rules/0", "value": {"name": "first"}},
        {"op": "copy", "from": "/spec/rules/1/name", "path": "/spec/copied"},
        {"op": "move", "from": "/spec/background", "path": "/spec/backgroundScan"},
        {"op": "remove", "path": "/spec/rules/2"},
        {"op": "add", "path": "/metadata/labels", "value": {"a~b": "x"}},
        {"op": "test", "path": "/metadata/labels/a~0b", "value": "x"},
    ])
    assert policy == before
    assert result["spec"]["validationFailureAction"] == "Enforce"
    assert result["metadata"]["annotations"] == {"policies.kyverno.io/title": "Require labels"}
    assert [r["name"] for r in result["spec"]["rules"]] == ["first", "check-team"]
    assert result["spec"]["copied"] == "check-team"
    assert result["spec"]["backgroundScan"] is True and "background" not in result["spec"]


def test_json_patch_failed_test_is_422_and_changes_nothing() -> None:
    policy = cluster_policy()
    with pytest.raises(PatchError) as err:
        json_patch(policy, [
            {"op": "replace", "path": "/spec/background", "value": False},
            {"op": "test", "path": "/spec/validationFailureAction", "value": "Enforce"},
        ])
    assert (err.value.code, err.value.reason) == (422, "Invalid")
    assert err.value.message == "the server rejected our request due to an error in our request"
    assert "/spec/validationFailureAction" in err.value.cause
    assert policy["spec"]["background"] is True


@pytest.mark.parametrize("ops", [
    [{"op": "replace", "path": "/spec/missing", "value": 1}],
    [{"op": "remove", "path": "/spec/missing"}],
    [{"op": "add", "path": "/spec/no/such/parent", "value": 1}],
    [{"op": "add", "path": "/spec/rules/5", "value": {}}],
    [{"op": "remove", "path": "/spec/rules/-"}],
    [{"op": "move", "from": "/spec", "path": "/spec/inner"}],
    [{"op": "test", "path": "/spec/background", "value": 1}],
])
def test_json_patch_paths_that_do_not_apply_are_422(ops: list[dict[str, Any]]) -> None:
    with pytest.raises(PatchError) as err:
        json_patch(cluster_policy(), ops)
    assert err.value.code == 422


@pytest.mark.parametrize("body", [{"op": "add"}, "x", [1], [{"op": "frobnicate", "path": "/a"}]])
def test_json_patch_malformed_body_is_400(body: Any) -> None:
    with pytest.raises(PatchError) as err:
        json_patch({"a": 1}, body)
    assert (err.value.code, err.value.reason) == (400, "BadRequest")


def test_json_patch_test_distinguishes_true_from_one() -> None:
    assert json_patch({"a": 1}, [{"op": "test", "path": "/a", "value": 1}]) == {"a": 1}
    with pytest.raises(PatchError):
        json_patch({"a": True}, [{"op": "test", "path": "/a", "value": 1}])


@settings(max_examples=100, deadline=None)
@given(no_null_docs.filter(lambda d: isinstance(d, dict)), st.text(min_size=1, max_size=4),
       json_values)
def test_json_patch_never_mutates_its_input(doc: Any, key: str, value: Any) -> None:
    frozen = json.dumps(doc, sort_keys=True)
    ops = [{"op": "add", "path": "/" + key.replace("~", "~0").replace("/", "~1"), "value": value}]
    result = json_patch(doc, ops)
    assert json.dumps(doc, sort_keys=True) == frozen
    assert result[key] == value
    if doc:
        first = next(iter(doc))
        pointer = "/" + first.replace("~", "~0").replace("/", "~1")
        removed = json_patch(doc, [{"op": "remove", "path": pointer}])
        assert first not in removed
        assert json.dumps(doc, sort_keys=True) == frozen


# ---------------------------------------------------------------- strategic merge patch


def test_is_builtin() -> None:
    assert is_builtin("v1", "Pod")
    assert is_builtin("apps/v1", "Deployment")
    assert is_builtin("rbac.authorization.k8s.io/v1", "ClusterRole")
    assert not is_builtin("kyverno.io/v1", "ClusterPolicy")


def test_strategic_on_custom_resource_is_415() -> None:
    with pytest.raises(PatchError) as err:
        strategic_merge_patch(cluster_policy(), {"spec": {}}, "kyverno.io/v1", "ClusterPolicy")
    assert (err.value.code, err.value.reason) == (415, "UnsupportedMediaType")
    assert err.value.message == UNSUPPORTED_MEDIA_MESSAGE


def test_kubectl_three_way_patch_updates_one_container_in_place() -> None:
    live = deployment()
    before = copy.deepcopy(live)
    body = {
        "metadata": {"annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": "{...}\n"}},
        "spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "nginx"}, {"name": "sidecar"}],
            "containers": [{"image": "nginx:1.27", "name": "nginx"}],
        }}},
    }
    result = strategic_merge_patch(live, body, "apps/v1", "Deployment")
    assert live == before
    assert result["spec"]["template"]["spec"]["containers"] == [
        {"name": "nginx", "image": "nginx:1.27"},
        {"name": "sidecar", "image": "busybox:1.36"},
    ]
    assert result["metadata"]["annotations"]["a"] == "1"
    assert "$setElementOrder/containers" not in json.dumps(result)


def test_set_element_order_reorders_and_keeps_server_only_items() -> None:
    live = deployment()
    live["spec"]["template"]["spec"]["containers"].append({"name": "injected", "image": "x"})
    body = {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "nginx"}, {"name": "new"}],
        "containers": [{"name": "new", "image": "new:1"}],
    }}}}
    result = strategic_merge_patch(live, body, "apps/v1", "Deployment")
    names = [c["name"] for c in result["spec"]["template"]["spec"]["containers"]]
    assert names == ["sidecar", "nginx", "new", "injected"]


def test_delete_directive_removes_list_element_by_merge_key() -> None:
    body = {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "nginx"}],
        "containers": [{"$patch": "delete", "name": "sidecar"}],
    }}}}
    result = strategic_merge_patch(deployment(), body, "apps/v1", "Deployment")
    assert result["spec"]["template"]["spec"]["containers"] == [
        {"name": "nginx", "image": "nginx:1.25"}]


def test_replace_directive_on_list_and_map() -> None:
    body = {"spec": {"containers": [{"name": "only", "image": "x"}, {"$patch": "replace"}],
                     "securityContext": {"$patch": "replace", "runAsUser": 1000}}}
    live = pod()
    live["spec"]["securityContext"] = {"runAsNonRoot": True}
    result = strategic_merge_patch(live, body, "v1", "Pod")
    assert result["spec"]["containers"] == [{"name": "only", "image": "x"}]
    assert result["spec"]["securityContext"] == {"runAsUser": 1000}


def test_nested_merge_keys_ports_env_volume_mounts() -> None:
    body = {"spec": {"containers": [{
        "name": "nginx",
        "ports": [{"containerPort": 443, "protocol": "TCP"}],
        "env": [{"name": "A", "value": "changed"}, {"name": "B", "$patch": "delete"}],
        "volumeMounts": [{"mountPath": "/data", "readOnly": True}],
        "command": ["sh"],
    }]}}
    result = strategic_merge_patch(pod(), body, "v1", "Pod")
    nginx = result["spec"]["containers"][0]
    assert [p["containerPort"] for p in nginx["ports"]] == [80, 443]
    assert nginx["env"] == [{"name": "A", "value": "changed"}]
    assert nginx["volumeMounts"] == [{"name": "data", "mountPath": "/data", "readOnly": True}]
    assert nginx["command"] == ["sh"]  # untagged list: replaced whole
    assert result["spec"]["containers"][1] == {"name": "sidecar", "image": "busybox:1.36"}


def test_untagged_lists_are_replaced_and_null_deletes() -> None:
    body = {"spec": {"tolerations": [{"key": "b", "operator": "Exists"}]},
            "metadata": {"labels": {"tier": None}}}
    result = strategic_merge_patch(pod(), body, "v1", "Pod")
    assert result["spec"]["tolerations"] == [{"key": "b", "operator": "Exists"}]
    assert result["metadata"]["labels"] == {"app": "web"}


def test_finalizers_merge_as_a_set_and_delete_from_primitive_list() -> None:
    body = {"metadata": {"finalizers": ["example.com/b", "example.com/c"],
                         "$deleteFromPrimitiveList/finalizers": ["example.com/a"]}}
    result = strategic_merge_patch(pod(), body, "v1", "Pod")
    assert result["metadata"]["finalizers"] == ["example.com/b", "example.com/c"]
    emptied = strategic_merge_patch(pod(), {"metadata": {
        "$deleteFromPrimitiveList/finalizers": ["example.com/a", "example.com/b"]}},
        "v1", "Pod")
    assert "finalizers" not in emptied["metadata"]


def test_set_element_order_on_primitive_list() -> None:
    body = {"metadata": {"$setElementOrder/finalizers": ["example.com/b", "example.com/a"]}}
    result = strategic_merge_patch(pod(), body, "v1", "Pod")
    assert result["metadata"]["finalizers"] == ["example.com/b", "example.com/a"]


def test_owner_references_merge_by_uid_and_conditions_by_type() -> None:
    body = {"metadata": {"ownerReferences": [
        {"apiVersion": "v1", "kind": "Node", "name": "n", "uid": "u-2"}]},
        "status": {"conditions": [{"type": "Ready", "status": "True"},
                                  {"type": "Initialized", "status": "True"}]}}
    result = strategic_merge_patch(pod(), body, "v1", "Pod")
    assert [o["uid"] for o in result["metadata"]["ownerReferences"]] == ["u-1", "u-2"]
    assert result["status"]["conditions"] == [
        {"type": "Ready", "status": "True"}, {"type": "Initialized", "status": "True"}]


def test_volumes_retain_keys_switch_the_volume_source() -> None:
    body = {"spec": {"volumes": [{"$retainKeys": ["configMap", "name"], "name": "data",
                                  "configMap": {"name": "cfg"}}]}}
    result = strategic_merge_patch(pod(), body, "v1", "Pod")
    assert result["spec"]["volumes"] == [{"name": "data", "configMap": {"name": "cfg"}}]


def test_deployment_strategy_retain_keys() -> None:
    body = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate",
                                  "rollingUpdate": None}}}
    result = strategic_merge_patch(deployment(), body, "apps/v1", "Deployment")
    assert result["spec"]["strategy"] == {"type": "Recreate"}


def test_retain_keys_must_cover_the_patch() -> None:
    body = {"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": 1}}}}
    with pytest.raises(PatchError) as err:
        strategic_merge_patch(deployment(), body, "apps/v1", "Deployment")
    assert err.value.code == 422


@pytest.mark.parametrize(("api_version", "kind", "path"), [
    ("apps/v1", "ReplicaSet", ("spec", "template", "spec")),
    ("apps/v1", "DaemonSet", ("spec", "template", "spec")),
    ("apps/v1", "StatefulSet", ("spec", "template", "spec")),
    ("batch/v1", "Job", ("spec", "template", "spec")),
    ("batch/v1", "CronJob", ("spec", "jobTemplate", "spec", "template", "spec")),
])
def test_pod_spec_is_found_in_every_workload(
    api_version: str, kind: str, path: tuple[str, ...]
) -> None:
    def nest(value: Any) -> dict[str, Any]:
        for key in reversed(path):
            value = {key: value}
        return value  # type: ignore[no-any-return]

    live = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "w"},
            **nest({"containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}],
                    "imagePullSecrets": [{"name": "reg"}]})}
    body = nest({"containers": [{"name": "b", "image": "b:2"}],
                 "imagePullSecrets": [{"name": "other"}]})
    result = strategic_merge_patch(live, body, api_version, kind)
    spec = result
    for key in path:
        spec = spec[key]
    assert spec["containers"] == [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:2"}]
    assert spec["imagePullSecrets"] == [{"name": "reg"}, {"name": "other"}]


def test_service_ports_merge_by_port() -> None:
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
           "spec": {"ports": [{"port": 80, "targetPort": 8080}], "selector": {"app": "web"}}}
    body = {"spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443}]}}
    result = strategic_merge_patch(svc, body, "v1", "Service")
    assert result["spec"]["ports"] == [{"port": 80, "targetPort": 8080, "name": "http"},
                                       {"port": 443}]


def test_pod_spec_host_aliases_and_topology_spread() -> None:
    live = pod()
    live["spec"]["hostAliases"] = [{"ip": "10.0.0.1", "hostnames": ["a"]}]
    live["spec"]["topologySpreadConstraints"] = [
        {"topologyKey": "zone", "maxSkew": 1, "whenUnsatisfiable": "DoNotSchedule"}]
    body = {"spec": {"hostAliases": [{"ip": "10.0.0.1", "hostnames": ["b"]}],
                     "topologySpreadConstraints": [{"topologyKey": "zone", "maxSkew": 2}]}}
    result = strategic_merge_patch(live, body, "v1", "Pod")
    assert result["spec"]["hostAliases"] == [{"ip": "10.0.0.1", "hostnames": ["b"]}]
    assert result["spec"]["topologySpreadConstraints"][0]["maxSkew"] == 2
    assert result["spec"]["topologySpreadConstraints"][0]["whenUnsatisfiable"] == "DoNotSchedule"


def test_new_keys_from_patch_lose_their_directives() -> None:
    live = pod()
    del live["spec"]["volumes"]
    body = {"spec": {"volumes": [{"name": "v", "emptyDir": {}, "$retainKeys": ["emptyDir", "name"]},
                                 {"name": "gone", "$patch": "delete"}],
                     "affinity": {"nodeAffinity": {"$patch": "merge", "x": 1}}}}
    result = strategic_merge_patch(live, body, "v1", "Pod")
    assert result["spec"]["volumes"] == [{"name": "v", "emptyDir": {}}]
    assert result["spec"]["affinity"] == {"nodeAffinity": {"x": 1}}
    assert "$" not in json.dumps(result)


def test_missing_merge_key_and_unknown_directive_are_errors() -> None:
    with pytest.raises(PatchError) as err:
        strategic_merge_patch(pod(), {"spec": {"containers": [{"image": "x"}]}}, "v1", "Pod")
    assert err.value.code == 500
    assert "does not contain declared merge key: name" in err.value.message
    with pytest.raises(PatchError):
        strategic_merge_patch(pod(), {"spec": {"$patch": "explode"}}, "v1", "Pod")


def test_strategic_patch_never_mutates_inputs() -> None:
    live, body = pod(), {"spec": {"containers": [{"name": "nginx", "image": "n:2"}]}}
    live_before, body_before = copy.deepcopy(live), copy.deepcopy(body)
    result = strategic_merge_patch(live, body, "v1", "Pod")
    result["spec"]["containers"][1]["image"] = "mutated"
    result["metadata"]["labels"]["new"] = "x"
    assert live == live_before and body == body_before
