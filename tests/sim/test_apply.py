"""managedFields and server-side apply follow the API server's visible rules."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from pytest_kspec.sim.apply import (
    BEFORE_FIRST_APPLY,
    ApplyConflict,
    ApplyError,
    fields_v1,
    path_string,
    record_update,
    server_side_apply,
)

T1, T2, T3 = "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z", "2024-05-01T12:00:00Z"


def deployment(replicas: int = 2, image: str = "nginx:1.25") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "uid": "u", "resourceVersion": "5",
                     "generation": 1, "creationTimestamp": T1, "labels": {"app": "web"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [
                    {"name": "nginx", "image": image, "ports": [{"containerPort": 80}]}]},
            },
        },
        "status": {"replicas": 2},
    }


def pod() -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "ns",
                     "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
                     "finalizers": ["example.com/guard"]},
        "spec": {"containers": [{"name": "nginx", "image": "nginx",
                                 "env": [{"name": "A", "value": "1"}]}]},
    }


def policy(action: str = "Audit") -> dict[str, Any]:
    return {"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy",
            "metadata": {"name": "require-labels", "labels": {"team": "sec"}},
            "spec": {"validationFailureAction": action, "background": True,
                     "rules": [{"name": "check-team", "match": {"any": []}}]}}


def entry(obj: dict[str, Any], manager: str) -> dict[str, Any]:
    found = [e for e in obj["metadata"]["managedFields"] if e["manager"] == manager]
    assert len(found) == 1, obj["metadata"]["managedFields"]
    result: dict[str, Any] = found[0]
    return result


# ------------------------------------------------------------------------- fields_v1


def test_fields_v1_update_shape_matches_the_fact_sheet() -> None:
    tree = fields_v1(pod(), "v1", "Pod")
    assert tree == {
        "f:metadata": {
            "f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}},
            "f:finalizers": {".": {}, 'v:"example.com/guard"': {}},
        },
        "f:spec": {"f:containers": {'k:{"name":"nginx"}': {
            ".": {}, "f:env": {".": {}, 'k:{"name":"A"}': {".": {}, "f:name": {}, "f:value": {}}},
            "f:image": {}, "f:name": {}}}},
    }
    assert json.dumps(tree["f:spec"], separators=(",", ":")).startswith(
        '{"f:containers":{"k:{\\"name\\":\\"nginx\\"}":{".":{}')


def test_fields_v1_skips_server_metadata_and_status_and_keeps_keys_sorted() -> None:
    tree = fields_v1(deployment(), "apps/v1", "Deployment")
    assert set(tree) == {"f:metadata", "f:spec"}
    assert tree["f:metadata"] == {"f:labels": {".": {}, "f:app": {}}}
    assert tree["f:spec"]["f:selector"] == {}  # LabelSelector is atomic
    ports = tree["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"nginx"}']["f:ports"]
    assert list(ports) == [".", 'k:{"containerPort":80,"protocol":"TCP"}']
    assert "f:status" in fields_v1(deployment(), "apps/v1", "Deployment", include_status=True)


def test_fields_v1_apply_shape_marks_only_list_items() -> None:
    tree = fields_v1(deployment(), "apps/v1", "Deployment", apply=True)
    assert tree["f:metadata"] == {"f:labels": {"f:app": {}}}
    item = tree["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"nginx"}']
    assert item["."] == {}


def test_fields_v1_custom_resource_lists_are_atomic() -> None:
    tree = fields_v1(policy(), "kyverno.io/v1", "ClusterPolicy")
    assert tree["f:spec"] == {".": {}, "f:background": {}, "f:rules": {},
                              "f:validationFailureAction": {}}
    assert tree["f:metadata"] == {"f:labels": {".": {}, "f:team": {}}}


def test_path_string() -> None:
    assert path_string(("f:spec", "f:replicas")) == ".spec.replicas"
    assert path_string(("f:spec", "f:containers", 'k:{"name":"a"}', "f:image")) == (
        '.spec.containers[name="a"].image')
    assert path_string(("f:ports", 'k:{"containerPort":80,"protocol":"TCP"}')) == (
        '.ports[containerPort=80,protocol="TCP"]')
    assert path_string(("f:metadata", "f:finalizers", 'v:"x"')) == '.metadata.finalizers[="x"]'


# ------------------------------------------------------------------------- record_update


def test_create_records_one_update_entry() -> None:
    managed = record_update([], None, deployment(), manager="kubectl-create",
                            operation="Update", api_version="apps/v1", time=T1)
    assert len(managed) == 1
    assert {k: v for k, v in managed[0].items() if k != "fieldsV1"} == {
        "manager": "kubectl-create", "operation": "Update", "apiVersion": "apps/v1",
        "time": T1, "fieldsType": "FieldsV1"}
    assert managed[0]["fieldsV1"] == fields_v1(deployment(), "apps/v1", "Deployment")


def test_update_moves_changed_fields_and_drops_removed_ones() -> None:
    old = deployment()
    created = record_update([], None, old, manager="kubectl-create", operation="Update",
                            api_version="apps/v1", time=T1)
    new = deployment(replicas=5)
    del new["metadata"]["labels"]
    managed = record_update(created, old, new, manager="kubectl-scale", operation="Update",
                            api_version="apps/v1", time=T2)
    assert [e["manager"] for e in managed] == ["kubectl-create", "kubectl-scale"]
    assert managed[1]["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    create_fields = managed[0]["fieldsV1"]
    assert "f:replicas" not in create_fields["f:spec"]
    assert "f:metadata" not in create_fields
    assert managed[0]["time"] == T1


def test_update_merges_into_the_same_managers_entry_and_drops_empty_entries() -> None:
    old = deployment()
    managed = record_update([], None, old, manager="a", operation="Update",
                            api_version="apps/v1", time=T1)
    new = deployment(replicas=3)
    managed = record_update(managed, old, new, manager="b", operation="Update",
                            api_version="apps/v1", time=T2)
    newer = deployment(replicas=4, image="nginx:2")
    managed = record_update(managed, new, newer, manager="b", operation="Update",
                            api_version="apps/v1", time=T3)
    b = [e for e in managed if e["manager"] == "b"]
    assert len(b) == 1 and b[0]["time"] == T3
    assert b[0]["fieldsV1"]["f:spec"]["f:replicas"] == {}
    only_replicas = record_update(
        [{"manager": "x", "operation": "Update", "apiVersion": "apps/v1", "time": T1,
          "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}}],
        deployment(), deployment(replicas=9), manager="y", operation="Update",
        api_version="apps/v1", time=T2)
    assert [e["manager"] for e in only_replicas] == ["y"]


def test_status_subresource_update_is_scoped_and_marked() -> None:
    old = deployment()
    new = copy.deepcopy(old)
    new["status"] = {"replicas": 3, "readyReplicas": 3}
    managed = record_update([], old, new, manager="kube-controller-manager",
                            operation="Update", api_version="apps/v1", time=T1,
                            subresource="status")
    assert managed == [{
        "manager": "kube-controller-manager", "operation": "Update", "apiVersion": "apps/v1",
        "time": T1, "fieldsType": "FieldsV1",
        "fieldsV1": {"f:status": {"f:readyReplicas": {}, "f:replicas": {}}},
        "subresource": "status"}]


def test_no_op_update_adds_no_entry() -> None:
    assert record_update([], deployment(), deployment(), manager="m", operation="Update",
                         api_version="apps/v1", time=T1) == []


# ------------------------------------------------------------------------- apply


def applied_deployment(replicas: int | None = 3, image: str = "nginx:1.25") -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}},
                     "spec": {"containers": [{"name": "nginx", "image": image}]}},
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop"}, "spec": spec}


def apply(live: dict[str, Any] | None, body: dict[str, Any], manager: str = "kubectl",
          force: bool = False, time: str = T2) -> dict[str, Any]:
    return server_side_apply(live, body, manager=manager, force=force, api_version="apps/v1",
                             kind="Deployment", time=time)


def csa_live() -> dict[str, Any]:
    live = deployment()
    live["metadata"]["managedFields"] = record_update(
        [], None, live, manager="kubectl-client-side-apply", operation="Update",
        api_version="apps/v1", time=T1)
    return live


def test_apply_creates_with_an_apply_entry() -> None:
    created = apply(None, applied_deployment())
    assert created["spec"]["replicas"] == 3
    assert created["metadata"]["managedFields"] == [{
        "manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1", "time": T2,
        "fieldsType": "FieldsV1",
        "fieldsV1": fields_v1(applied_deployment(), "apps/v1", "Deployment", apply=True)}]


def test_conflict_with_one_field_has_the_servers_wording() -> None:
    with pytest.raises(ApplyConflict) as err:
        apply(csa_live(), applied_deployment(replicas=3))
    assert err.value.message == ('Apply failed with 1 conflict: conflict with '
                                 '"kubectl-client-side-apply" using apps/v1: .spec.replicas')
    assert err.value.conflicts == [("kubectl-client-side-apply", ".spec.replicas")]
    assert err.value.causes == [{"reason": "FieldManagerConflict",
                                 "message": 'conflict with "kubectl-client-side-apply" using '
                                            "apps/v1",
                                 "field": ".spec.replicas"}]


def test_conflicts_with_several_fields_and_managers() -> None:
    live = csa_live()
    live["metadata"]["managedFields"].append({
        "manager": "other", "operation": "Apply", "apiVersion": "apps/v1", "time": T1,
        "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:template": {"f:spec": {
            "f:containers": {'k:{"name":"nginx"}': {".": {}, "f:image": {}}}}}}}})
    with pytest.raises(ApplyConflict) as err:
        apply(live, applied_deployment(replicas=3, image="nginx:2"))
    assert err.value.message == (
        "Apply failed with 3 conflicts: "
        'conflicts with "kubectl-client-side-apply" using apps/v1:\n'
        "- .spec.replicas\n"
        '- .spec.template.spec.containers[name="nginx"].image\n'
        'conflicts with "other":\n'
        '- .spec.template.spec.containers[name="nginx"].image')


def test_same_value_is_shared_ownership_not_a_conflict() -> None:
    result = apply(csa_live(), applied_deployment(replicas=2))
    csa = entry(result, "kubectl-client-side-apply")
    mine = entry(result, "kubectl")
    assert "f:replicas" in csa["fieldsV1"]["f:spec"]
    assert "f:replicas" in mine["fieldsV1"]["f:spec"]
    assert [e["operation"] for e in result["metadata"]["managedFields"]] == ["Apply", "Update"]


def test_force_takes_ownership() -> None:
    result = apply(csa_live(), applied_deployment(replicas=7), force=True)
    assert result["spec"]["replicas"] == 7
    assert "f:replicas" not in entry(result, "kubectl-client-side-apply")["fieldsV1"]["f:spec"]
    assert entry(result, "kubectl")["fieldsV1"]["f:spec"]["f:replicas"] == {}


def test_fields_dropped_from_the_apply_are_removed_unless_someone_else_owns_them() -> None:
    first = apply(None, applied_deployment(replicas=3))
    second = apply(first, applied_deployment(replicas=None), time=T3)
    assert "replicas" not in second["spec"]
    assert "f:replicas" not in entry(second, "kubectl")["fieldsV1"]["f:spec"]
    shared = apply(first, applied_deployment(replicas=3), manager="ci")
    third = apply(shared, applied_deployment(replicas=None), time=T3)
    assert third["spec"]["replicas"] == 3
    assert entry(third, "ci")["fieldsV1"]["f:spec"]["f:replicas"] == {}


def test_dropped_list_item_is_removed() -> None:
    body = applied_deployment()
    body["spec"]["template"]["spec"]["containers"].append({"name": "sidecar", "image": "b"})
    first = apply(None, body)
    second = apply(first, applied_deployment())
    assert [c["name"] for c in second["spec"]["template"]["spec"]["containers"]] == ["nginx"]


def test_apply_merges_keyed_lists_and_keeps_other_fields() -> None:
    live = csa_live()
    result = apply(live, applied_deployment(replicas=2))
    container = result["spec"]["template"]["spec"]["containers"][0]
    assert container["ports"] == [{"containerPort": 80}]
    assert result["status"] == {"replicas": 2}
    assert live == csa_live()


def test_update_after_apply_takes_fields_from_the_applier() -> None:
    applied = apply(None, applied_deployment(replicas=3))
    scaled = copy.deepcopy(applied)
    scaled["spec"]["replicas"] = 6
    managed = record_update(applied["metadata"]["managedFields"], applied, scaled,
                            manager="kubectl-scale", operation="Update",
                            api_version="apps/v1", time=T3)
    kubectl = next(e for e in managed if e["manager"] == "kubectl")
    assert "f:replicas" not in kubectl["fieldsV1"]["f:spec"]
    scaled["metadata"]["managedFields"] = managed
    with pytest.raises(ApplyConflict) as err:
        apply(scaled, applied_deployment(replicas=3))
    assert '"kubectl-scale" using apps/v1: .spec.replicas' in err.value.message


def test_object_without_managed_fields_belongs_to_before_first_apply() -> None:
    with pytest.raises(ApplyConflict) as err:
        apply(deployment(), applied_deployment(replicas=4))
    assert err.value.conflicts == [(BEFORE_FIRST_APPLY, ".spec.replicas")]


def test_custom_resource_apply_treats_lists_atomically() -> None:
    live = policy()
    live["metadata"]["managedFields"] = record_update(
        [], None, live, manager="kubectl-client-side-apply", operation="Update",
        api_version="kyverno.io/v1", time=T1)
    body = {"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy",
            "metadata": {"name": "require-labels"},
            "spec": {"validationFailureAction": "Enforce",
                     "rules": [{"name": "new-rule"}]}}
    with pytest.raises(ApplyConflict) as err:
        server_side_apply(live, body, manager="kyverno-admin", force=False,
                          api_version="kyverno.io/v1", kind="ClusterPolicy", time=T2)
    assert [path for _, path in err.value.conflicts] == [
        ".spec.rules", ".spec.validationFailureAction"]
    forced = server_side_apply(live, body, manager="kyverno-admin", force=True,
                               api_version="kyverno.io/v1", kind="ClusterPolicy", time=T2)
    assert forced["spec"]["rules"] == [{"name": "new-rule"}]
    assert forced["spec"]["background"] is True
    assert entry(forced, "kyverno-admin")["fieldsV1"] == {
        "f:spec": {"f:rules": {}, "f:validationFailureAction": {}}}


def test_bad_apply_bodies() -> None:
    body = applied_deployment()
    body["metadata"]["managedFields"] = [{"manager": "x"}]
    with pytest.raises(ApplyError) as err:
        apply(None, body)
    assert (err.value.code, err.value.message) == (400, "metadata.managedFields must be nil")
    dup = applied_deployment()
    dup["spec"]["template"]["spec"]["containers"].append({"name": "nginx", "image": "x"})
    with pytest.raises(ApplyError) as err:
        apply(None, dup)
    assert err.value.code == 422
    assert 'duplicate entries for key [name="nginx"]' in err.value.message
