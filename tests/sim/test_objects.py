"""Object semantics through the official client: metadata, errors, generation, deletion."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from sim_helpers import pod, raw

from pytest_kspec.sim import Simulator


def _status(exc: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.body)
    return body


def test_create_sets_server_metadata(sim: Simulator, api: client.ApiClient) -> None:
    v1 = client.CoreV1Api(api)
    before = sim.resource_version
    created = v1.create_namespaced_pod("default", pod("meta-a"))
    meta = created.metadata
    assert meta.uid and meta.creation_timestamp is not None and meta.generation == 1
    assert int(meta.resource_version) > before
    entry = meta.managed_fields[0]
    assert (entry.manager, entry.operation, entry.api_version, entry.fields_type) == (
        "OpenAPI-Generator", "Update", "v1", "FieldsV1")
    second = v1.create_namespaced_pod("default", pod("meta-b"))
    assert int(second.metadata.resource_version) > int(meta.resource_version)
    named = v1.create_namespaced_config_map(
        "default", {"metadata": {"generateName": "cm-"}}, field_manager="tool")
    assert named.metadata.name.startswith("cm-") and len(named.metadata.name) == 8
    assert named.metadata.managed_fields[0].manager == "tool"


def test_error_statuses(api: client.ApiClient) -> None:
    v1 = client.CoreV1Api(api)
    apps = client.AppsV1Api(api)
    with pytest.raises(ApiException) as e:
        v1.read_namespaced_pod("missing", "default")
    assert e.value.status == 404
    assert _status(e.value)["message"] == 'pods "missing" not found'
    # the core group is omitted, as the real server does (omitempty)
    assert _status(e.value)["details"] == {"name": "missing", "kind": "pods"}
    with pytest.raises(ApiException) as e:
        apps.read_namespaced_deployment("missing", "default")
    assert _status(e.value)["message"] == 'deployments.apps "missing" not found'
    v1.create_namespaced_pod("default", pod("dup"))
    with pytest.raises(ApiException) as e:
        v1.create_namespaced_pod("default", pod("dup"))
    assert (e.value.status, _status(e.value)["reason"]) == (409, "AlreadyExists")
    assert _status(e.value)["message"] == 'pods "dup" already exists'
    with pytest.raises(ApiException) as e:
        v1.create_namespaced_pod("nowhere", pod("x", "nowhere"))
    assert e.value.status == 404
    assert _status(e.value)["message"] == 'namespaces "nowhere" not found'
    bad = pod("bad")
    bad["spec"]["containers"][0]["name"] = ""
    with pytest.raises(ApiException) as e:
        v1.create_namespaced_pod("default", bad)
    status = _status(e.value)
    assert (e.value.status, status["reason"]) == (422, "Invalid")
    assert status["message"] == 'Pod "bad" is invalid: spec.containers[0].name: Required value'
    assert status["details"]["causes"] == [{"reason": "FieldValueRequired",
                                            "message": "Required value",
                                            "field": "spec.containers[0].name"}]


def test_update_conflict_and_generation(sim: Simulator, api: client.ApiClient) -> None:
    apps = client.AppsV1Api(api)
    dep = {"metadata": {"name": "web"},
           "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}},
                                 "spec": {"containers": [{"name": "w", "image": "nginx"}]}}}}
    created = apps.create_namespaced_deployment("default", dep)
    stale = created.metadata.resource_version
    labelled = apps.patch_namespaced_deployment("web", "default",
                                                {"metadata": {"labels": {"team": "a"}}})
    assert labelled.metadata.generation == 1  # metadata-only change
    scaled = apps.patch_namespaced_deployment("web", "default", {"spec": {"replicas": 3}})
    assert scaled.metadata.generation == 2
    body = apps.read_namespaced_deployment("web", "default").to_dict()
    body["metadata"]["resource_version"] = stale
    with pytest.raises(ApiException) as e:
        apps.replace_namespaced_deployment("web", "default", body)
    assert e.value.status == 409 and _status(e.value)["reason"] == "Conflict"
    assert _status(e.value)["message"] == (
        'Operation cannot be fulfilled on deployments.apps "web": the object has been modified;'
        " please apply your changes to the latest version and try again")
    rv = sim.resource_version
    same = apps.read_namespaced_deployment("web", "default")
    apps.replace_namespaced_deployment("web", "default", same)
    assert sim.resource_version == rv  # a no-op update writes nothing
    scale = apps.read_namespaced_deployment_scale("web", "default")
    assert scale.spec.replicas == 3
    apps.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 5}})
    assert apps.read_namespaced_deployment("web", "default").spec.replicas == 5


def test_patch_types(api: client.ApiClient) -> None:
    v1 = client.CoreV1Api(api)
    p = pod("patchy")
    p["spec"]["containers"].append({"name": "side", "image": "busybox"})
    v1.create_namespaced_pod("default", p)
    strategic = v1.patch_namespaced_pod(
        "patchy", "default", {"spec": {"containers": [{"name": "side", "image": "busybox:2"}]}})
    assert [(c.name, c.image) for c in strategic.spec.containers] == [
        ("app", "nginx:1.27"), ("side", "busybox:2")]
    merged = v1.patch_namespaced_pod("patchy", "default", {"metadata": {"labels": {"m": "1"}}},
                                     _content_type="application/merge-patch+json")
    assert merged.metadata.labels == {"m": "1"}
    jp = v1.patch_namespaced_pod(
        "patchy", "default", [{"op": "add", "path": "/metadata/annotations", "value": {"a": "b"}}])
    assert jp.metadata.annotations == {"a": "b"}
    with pytest.raises(ApiException) as e:
        v1.patch_namespaced_pod("patchy", "default", [{"op": "test", "path": "/kind",
                                                        "value": "Nope"}])
    assert e.value.status in (409, 422)


def test_server_side_apply_create_and_conflict(api: client.ApiClient) -> None:
    v1 = client.CoreV1Api(api)
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"},
          "data": {"k": "one"}}
    created = v1.patch_namespaced_config_map("applied", "default", cm, field_manager="alpha",
                                             _content_type="application/apply-patch+yaml")
    assert created.data == {"k": "one"}
    assert created.metadata.managed_fields[0].operation == "Apply"
    cm["data"]["k"] = "two"
    with pytest.raises(ApiException) as e:
        v1.patch_namespaced_config_map("applied", "default", cm, field_manager="beta",
                                       _content_type="application/apply-patch+yaml")
    status = _status(e.value)
    assert (e.value.status, status["reason"]) == (409, "Conflict")
    assert status["details"]["causes"][0]["reason"] == "FieldManagerConflict"
    assert status["details"]["causes"][0]["field"] == ".data.k"
    forced = v1.patch_namespaced_config_map("applied", "default", cm, field_manager="beta",
                                            force=True,
                                            _content_type="application/apply-patch+yaml")
    assert forced.data == {"k": "two"}
    with pytest.raises(ApiException) as e:
        v1.patch_namespaced_config_map("applied", "default", cm,
                                       _content_type="application/apply-patch+yaml")
    assert e.value.status == 422 and "fieldManager: Required value" in _status(e.value)["message"]


def test_custom_objects(api: client.ApiClient) -> None:
    co = client.CustomObjectsApi(api)
    body = {"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy", "metadata": {"name": "cp"},
            "spec": {"background": True, "rules": []}}
    created = co.create_cluster_custom_object("kyverno.io", "v1", "clusterpolicies", body)
    assert created["metadata"]["generation"] == 1
    patched = co.patch_cluster_custom_object("kyverno.io", "v1", "clusterpolicies", "cp",
                                             {"spec": {"background": False}})
    assert patched["metadata"]["generation"] == 2
    labelled = co.patch_cluster_custom_object("kyverno.io", "v1", "clusterpolicies", "cp",
                                              {"metadata": {"labels": {"x": "y"}}})
    assert labelled["metadata"]["generation"] == 2
    with_status = dict(labelled, status={"ready": True})
    kept = co.replace_cluster_custom_object("kyverno.io", "v1", "clusterpolicies", "cp",
                                            with_status)
    assert "status" not in kept  # status goes through /status only
    st = co.patch_cluster_custom_object_status("kyverno.io", "v1", "clusterpolicies", "cp",
                                               {"status": {"ready": True}})
    assert st["status"] == {"ready": True} and st["metadata"]["generation"] == 2
    no_rv = dict(st)
    no_rv["metadata"] = {k: v for k, v in st["metadata"].items() if k != "resourceVersion"}
    with pytest.raises(ApiException) as e:
        co.replace_cluster_custom_object("kyverno.io", "v1", "clusterpolicies", "cp", no_rv)
    assert e.value.status == 422
    assert "must be specified for an update" in _status(e.value)["message"]
    with pytest.raises(ApiException) as e:
        co.patch_cluster_custom_object("kyverno.io", "v1", "clusterpolicies", "cp", {},
                                       _content_type="application/strategic-merge-patch+json")
    assert (e.value.status, _status(e.value)["reason"]) == (415, "UnsupportedMediaType")
    deleted = co.delete_cluster_custom_object("kyverno.io", "v1", "clusterpolicies", "cp")
    assert deleted["status"] == "Success"
    assert deleted["details"]["kind"] == "clusterpolicies"


def test_finalizers_keep_object_until_removed(sim: Simulator, api: client.ApiClient) -> None:
    v1 = client.CoreV1Api(api)
    cm = {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}
    v1.create_namespaced_config_map("default", cm)
    v1.delete_namespaced_config_map("held", "default", propagation_policy="Foreground")
    held = v1.read_namespaced_config_map("held", "default")
    assert held.metadata.deletion_timestamp is not None
    v1.patch_namespaced_config_map("held", "default", {"metadata": {"finalizers": None}},
                                   _content_type="application/merge-patch+json")
    assert sim.get("v1", "ConfigMap", "held", "default") is None


def test_dry_run_changes_nothing(sim: Simulator, api: client.ApiClient) -> None:
    v1 = client.CoreV1Api(api)
    rv, writes = sim.resource_version, len(sim.writes())
    made = v1.create_namespaced_config_map("default", {"metadata": {"name": "dry"}},
                                           dry_run="All")
    assert made.metadata.uid
    assert sim.get("v1", "ConfigMap", "dry", "default") is None
    v1.create_namespaced_config_map("default", {"metadata": {"name": "wet"}})
    rv = sim.resource_version
    v1.patch_namespaced_config_map("wet", "default", {"data": {"a": "b"}}, dry_run="All")
    v1.delete_namespaced_config_map("wet", "default", dry_run="All")
    assert sim.resource_version == rv
    assert sim.get("v1", "ConfigMap", "wet", "default")["metadata"]["resourceVersion"] == str(rv)
    assert len(sim.writes()) == writes + 1
    with pytest.raises(ApiException) as e:
        v1.create_namespaced_config_map("default", {"metadata": {"name": "wet"}}, dry_run="All")
    assert e.value.status == 409
    with pytest.raises(ApiException) as e:
        v1.delete_namespaced_config_map("wet", "default", dry_run="Yes")
    assert e.value.status == 422


def test_namespace_delete_cascades(sim: Simulator, api: client.ApiClient) -> None:
    v1 = client.CoreV1Api(api)
    v1.create_namespace({"metadata": {"name": "doomed"}})
    v1.create_namespaced_pod("doomed", pod("p", "doomed"))
    v1.create_namespaced_config_map("doomed", {"metadata": {"name": "c"}})
    v1.delete_namespace("doomed")
    assert sim.list("v1", "Pod", "doomed") == [] and sim.list("v1", "ConfigMap", "doomed") == []
    assert sim.get("v1", "Namespace", "doomed") is None


def test_owner_references_cascade(sim: Simulator) -> None:
    owner = sim.create({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                        "metadata": {"name": "rs", "namespace": "default"},
                        "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {
                            "metadata": {"labels": {"a": "b"}},
                            "spec": {"containers": [{"name": "c", "image": "i"}]}}}})
    child = pod("rs-child")
    child["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                             "name": "rs", "uid": owner["metadata"]["uid"]}]
    sim.create(child)
    sim.delete("apps/v1", "ReplicaSet", "rs", "default")
    assert sim.get("v1", "Pod", "rs-child", "default") is None


def test_crd_lifecycle(sim: Simulator, api: client.ApiClient) -> None:
    ext = client.ApiextensionsV1Api(api)
    crd = {"metadata": {"name": "widgets.example.com"},
           "spec": {"group": "example.com", "scope": "Namespaced",
                    "names": {"plural": "widgets", "singular": "widget", "kind": "Widget",
                              "shortNames": ["wd"]},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "subresources": {"status": {}},
                                  "schema": {"openAPIV3Schema": {
                                      "type": "object",
                                      "x-kubernetes-preserve-unknown-fields": True}}}]}}
    made = ext.create_custom_resource_definition(crd)
    conditions = {c.type: c.status for c in made.status.conditions}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}
    assert made.status.accepted_names.kind == "Widget"
    res = raw(sim, "GET", "/apis/example.com/v1").json()
    assert {r["name"] for r in res["resources"]} == {"widgets", "widgets/status"}
    co = client.CustomObjectsApi(api)
    co.create_namespaced_custom_object("example.com", "v1", "default", "widgets", {
        "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
        "spec": {"size": 1}})
    assert sim.get("example.com/v1", "Widget", "w", "default") is not None
    ext.delete_custom_resource_definition("widgets.example.com")
    with pytest.raises(ApiException) as e:
        co.list_namespaced_custom_object("example.com", "v1", "default", "widgets")
    assert e.value.status == 404
    assert "example.com" not in {g.name for g in client.ApisApi(api).get_api_versions().groups}


def test_status_subresource_for_builtins(api: client.ApiClient) -> None:
    v1 = client.CoreV1Api(api)
    v1.create_namespaced_pod("default", pod("phased"))
    v1.patch_namespaced_pod_status("phased", "default", {"status": {"phase": "Running"}})
    main = v1.patch_namespaced_pod("phased", "default", {"status": {"phase": "Failed"}})
    assert main.status.phase == "Running"  # the main endpoint ignores status changes
    running = v1.list_namespaced_pod("default", field_selector="status.phase=Running")
    assert "phased" in [p.metadata.name for p in running.items]
    entry = [m for m in v1.read_namespaced_pod("phased", "default").metadata.managed_fields
             if m.subresource == "status"]
    assert entry and entry[0].operation == "Update"


def test_a_missing_namespace_is_refused_before_admission_webhooks() -> None:
    """NamespaceLifecycle answers 404 before Kyverno would judge the pod."""
    import urllib.error
    import urllib.request

    policy = {"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy",
              "metadata": {"name": "deny-all-pods"},
              "spec": {"validationFailureAction": "Enforce", "rules": [{
                  "name": "no-pods", "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
                  "validate": {"message": "no pods", "deny": {}}}]}}
    with Simulator([policy], kyverno=True, tls=False) as sim:
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
               "spec": {"containers": [{"name": "a", "image": "b"}]}}
        for namespace, code in (("nope", 404), ("default", 400)):
            req = urllib.request.Request(
                f"{sim.url}/api/v1/namespaces/{namespace}/pods?dryRun=All",
                data=json.dumps(pod).encode(), method="POST",
                headers={"Content-Type": "application/json",
                         "Authorization": f"Bearer {sim.admin_token}"})
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(req, timeout=10)
            body = err.value.read()
            err.value.close()
            assert err.value.code == code, body
