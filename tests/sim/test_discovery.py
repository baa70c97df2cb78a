"""Discovery, version and OpenAPI documents as the official client and kubectl read them."""

from __future__ import annotations

import requests
from kubernetes import client
from kubernetes.dynamic import DynamicClient

from pytest_kspec.sim import Simulator

KUBECTL_ACCEPT = ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
                  "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
                  "application/json")


def _get(sim: Simulator, path: str, **headers: str) -> requests.Response:
    return requests.get(sim.url + path, verify=sim.ca_path, timeout=5,
                        headers={"Authorization": f"Bearer {sim.admin_token}", **headers})


def test_version_has_every_field(api: client.ApiClient) -> None:
    info = client.VersionApi(api).get_code()
    assert info.git_version == "v1.29.4"
    assert (info.major, info.minor, info.platform) == ("1", "29", "linux/amd64")


def test_aggregated_discovery_accept_gets_plain_json(sim: Simulator) -> None:
    for path in ("/api", "/apis"):
        resp = _get(sim, path, Accept=KUBECTL_ACCEPT)
        assert resp.status_code == 200
        assert resp.headers["Content-Type"] == "application/json"
    groups = {g["name"]: g for g in _get(sim, "/apis").json()["groups"]}
    assert "" not in groups
    assert groups["apps"]["preferredVersion"] == {"groupVersion": "apps/v1", "version": "v1"}
    assert {"kyverno.io", "wgpolicyk8s.io", "rbac.authorization.k8s.io"} <= set(groups)
    assert _get(sim, "/api").json()["versions"] == ["v1"]


def test_resource_lists(sim: Simulator) -> None:
    core = {r["name"]: r for r in _get(sim, "/api/v1").json()["resources"]}
    assert core["pods"] == {
        "name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod",
        "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update",
                  "watch"],
        "shortNames": ["po"], "categories": ["all"], "storageVersionHash": "xPOwRZ+Yhw8="}
    assert core["pods/status"]["verbs"] == ["get", "patch", "update"]
    assert core["pods/log"]["kind"] == "Pod"
    assert core["namespaces"]["namespaced"] is False
    apps = {r["name"]: r for r in _get(sim, "/apis/apps/v1").json()["resources"]}
    assert apps["deployments/scale"]["kind"] == "Scale"
    assert apps["deployments"]["shortNames"] == ["deploy"]
    kyverno = {r["name"]: r for r in _get(sim, "/apis/kyverno.io/v1").json()["resources"]}
    assert kyverno["clusterpolicies"]["shortNames"] == ["cpol"]
    assert kyverno["clusterpolicies"]["namespaced"] is False
    assert "clusterpolicies/status" in kyverno
    group = _get(sim, "/apis/kyverno.io").json()
    assert group["kind"] == "APIGroup" and group["versions"][0]["version"] == "v1"
    assert _get(sim, "/apis/nope.io/v1").status_code == 404


def test_openapi_v3_advertises_field_validation(sim: Simulator) -> None:
    root = _get(sim, "/openapi/v3").json()["paths"]
    assert root["api/v1"]["serverRelativeURL"].startswith("/openapi/v3/api/v1?hash=")
    doc = _get(sim, root["apis/apps/v1"]["serverRelativeURL"]).json()
    patch = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {
        "group": "apps", "version": "v1", "kind": "Deployment"}
    assert {"name": "fieldValidation", "in": "query"}.items() <= next(
        p for p in patch["parameters"] if p["name"] == "fieldValidation").items()
    assert _get(sim, "/openapi/v2").status_code == 404


def test_dynamic_client_discovers_builtins_and_crds(api: client.ApiClient) -> None:
    dyn = DynamicClient(api)
    pods = dyn.resources.get(api_version="v1", kind="Pod")
    assert pods.namespaced and pods.name == "pods"
    cpol = dyn.resources.get(api_version="kyverno.io/v1", kind="ClusterPolicy")
    assert cpol.name == "clusterpolicies"
    listed = cpol.get()
    assert listed.kind == "ClusterPolicyList"
