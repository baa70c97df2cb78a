"""Loaded state gets its managedFields when first needed, and kubectl sees them as before."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sim_helpers import raw

from pytest_kspec.sim import Simulator, load_objects

Kubectl = Callable[..., subprocess.CompletedProcess[str]]

DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
             "template": {"metadata": {"labels": {"app": "web"}},
                          "spec": {"containers": [{"name": "web", "image": "nginx:1.27",
                                                   "ports": [{"containerPort": 80}]}]}}},
}
POD = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "web-1", "namespace": "shop", "labels": {"app": "web"}},
    "spec": {"nodeName": "node-a",
             "containers": [{"name": "web", "image": "nginx:1.27",
                             "securityContext": {"privileged": False}}]},
    "status": {"phase": "Running"},
}
MANAGED_ELSEWHERE = {
    "apiVersion": "v1", "kind": "ConfigMap",
    "metadata": {"name": "settings", "namespace": "shop", "managedFields": [{
        "manager": "helm", "operation": "Update", "apiVersion": "v1",
        "time": "2024-01-02T03:04:05Z", "fieldsType": "FieldsV1",
        "fieldsV1": {"f:data": {".": {}, "f:mode": {}}}}]},
    "data": {"mode": "strict"},
}


def untimed(managed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in m.items() if k != "time"} for m in managed]


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("state") / "state.yaml"
    path.write_text(yaml.safe_dump_all([DEPLOYMENT, POD, MANAGED_ELSEWHERE]))
    return path


@pytest.fixture(scope="module")
def sim(state: Path) -> Iterator[Simulator]:
    with Simulator(load_objects(state), kyverno=True) as s:
        yield s


def created_through_the_api(obj: dict[str, Any], name: str) -> dict[str, Any]:
    """The same object created by POST as manager kspec-sim (managedFields made at once)."""
    with Simulator() as other:
        body = copy.deepcopy(obj)
        body["metadata"]["name"] = name
        path = ("/apis/apps/v1/namespaces/shop/deployments" if obj["kind"] == "Deployment"
                else "/api/v1/namespaces/shop/pods")
        raw(other, "POST", "/api/v1/namespaces", json={"metadata": {"name": "shop"}})
        resp = raw(other, "POST", path + "?fieldManager=kspec-sim", json=body)
        assert resp.status_code == 201, resp.text
        created: dict[str, Any] = resp.json()
        return created


def test_loading_computes_no_managed_fields_until_they_are_read(state: Path) -> None:
    sim = Simulator(load_objects(state))
    store = sim._store
    pod = store.get(("", "pods"), "shop", "web-1")
    assert pod is not None and pod.pending is not None  # not made at load
    assert pod.body["metadata"]["managedFields"] == []  # a placeholder, keeping its place
    kept = store.get(("", "configmaps"), "shop", "settings")
    assert kept is not None and kept.pending is None  # the state file says who manages it
    served = sim.get("v1", "Pod", "web-1", "shop")
    assert served is not None and served["metadata"]["managedFields"][0]["manager"] == (
        "kspec-sim")
    assert pod.pending is None and pod.body["metadata"]["managedFields"]


@pytest.mark.parametrize("obj", [DEPLOYMENT, POD], ids=["Deployment", "Pod"])
def test_loaded_objects_carry_what_a_create_records(sim: Simulator, obj: dict[str, Any]) -> None:
    plural = "deployments" if obj["kind"] == "Deployment" else "pods"
    prefix = "/apis/apps/v1" if obj["kind"] == "Deployment" else "/api/v1"
    served = raw(sim, "GET", f"{prefix}/namespaces/shop/{plural}/{obj['metadata']['name']}")
    managed = served.json()["metadata"]["managedFields"]
    created = created_through_the_api(obj, obj["metadata"]["name"])
    assert untimed(managed) == untimed(created["metadata"]["managedFields"])
    assert managed[0]["manager"] == "kspec-sim" and managed[0]["operation"] == "Update"
    keys = list(served.json()["metadata"])  # managedFields where a create puts it
    assert keys.index("managedFields") == keys.index("generation") + 1


def test_state_that_names_its_managers_keeps_them(sim: Simulator) -> None:
    cm = sim.get("v1", "ConfigMap", "settings", "shop")
    assert cm is not None
    assert cm["metadata"]["managedFields"] == MANAGED_ELSEWHERE["metadata"]["managedFields"]


def test_lists_watches_and_dumps_serve_them(sim: Simulator) -> None:
    listed = raw(sim, "GET", "/api/v1/pods?labelSelector=app%3Dweb&limit=1").json()
    assert [p["metadata"]["name"] for p in listed["items"]] == ["web-1"]
    assert listed["items"][0]["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]
    watched = raw(sim, "GET", "/apis/apps/v1/deployments?watch=1&timeoutSeconds=1")
    events = [json.loads(line) for line in watched.text.splitlines() if line]
    added = [e["object"] for e in events if e["type"] == "ADDED"]
    assert [d["metadata"]["name"] for d in added] == ["web"]
    assert added[0]["metadata"]["managedFields"][0]["manager"] == "kspec-sim"
    dumped = {d["metadata"]["name"]: d for d in yaml.safe_load_all(sim.dump())}
    assert dumped["web-1"]["metadata"]["managedFields"][0]["manager"] == "kspec-sim"


@pytest.fixture
def kubectl(state: Path, tmp_path: Path) -> Iterator[Kubectl]:
    """kubectl against a simulator of its own (these tests change what they load)."""
    with Simulator(load_objects(state), kyverno=True) as own:

        def run(*args: str, stdin: str | None = None,
                check: bool = True) -> subprocess.CompletedProcess[str]:
            cmd = ["kubectl", "--kubeconfig", own.kubeconfig_path, "--cache-dir",
                   str(tmp_path / "cache"), *args]
            done = subprocess.run(cmd, input=stdin, capture_output=True, text=True,
                                  timeout=60)
            if check:
                assert done.returncode == 0, done.stderr
            return done

        yield run


@pytest.mark.kubectl
@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not on PATH")
def test_kubectl_shows_them_and_server_side_apply_conflicts_with_them(kubectl: Kubectl) -> None:
    shown = yaml.safe_load(kubectl("get", "pod", "web-1", "-n", "shop", "-o", "yaml",
                                   "--show-managed-fields").stdout)
    entry = shown["metadata"]["managedFields"][0]
    assert (entry["manager"], entry["operation"]) == ("kspec-sim", "Update")
    assert "f:privileged" in entry["fieldsV1"]["f:spec"]["f:containers"][
        'k:{"name":"web"}']["f:securityContext"]
    hidden = yaml.safe_load(kubectl("get", "pod", "web-1", "-n", "shop", "-o", "yaml").stdout)
    assert "managedFields" not in hidden["metadata"]

    change = copy.deepcopy(DEPLOYMENT)
    change["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.28"
    manifest = yaml.safe_dump(change)
    refused = kubectl("apply", "--server-side", "--field-manager=ops", "-f", "-",
                      stdin=manifest, check=False)
    assert refused.returncode != 0
    assert 'conflict with "kspec-sim" using apps/v1' in refused.stderr
    assert '.spec.template.spec.containers[name="web"].image' in refused.stderr

    kubectl("apply", "--server-side", "--field-manager=ops", "--force-conflicts", "-f", "-",
            stdin=manifest)
    after = json.loads(kubectl("get", "deployment", "web", "-n", "shop", "-o", "json",
                               "--show-managed-fields").stdout)
    managers = {(m["manager"], m["operation"]) for m in after["metadata"]["managedFields"]}
    assert {("ops", "Apply"), ("kspec-sim", "Update")} <= managers  # (+ the controller's)
    ours = next(m for m in after["metadata"]["managedFields"] if m["manager"] == "kspec-sim")
    container = ours["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"][
        'k:{"name":"web"}']
    assert "f:image" not in container  # taken over by ops
    assert after["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.28"

    kubectl("label", "pod", "web-1", "-n", "shop", "tier=front")
    labelled = json.loads(kubectl("get", "pod", "web-1", "-n", "shop", "-o", "json",
                                  "--show-managed-fields").stdout)
    assert {"kspec-sim", "kubectl-label"} <= {
        m["manager"] for m in labelled["metadata"]["managedFields"]}


def test_concurrent_first_reads_agree(tmp_path: Path) -> None:
    """Server threads completing the same loaded objects at once serve the same JSON."""
    pods = [dict(copy.deepcopy(POD), metadata={"name": f"web-{i}", "namespace": "shop",
                                                "labels": {"app": "web"}})
            for i in range(200)]
    path = tmp_path / "pods.yaml"
    path.write_text(yaml.safe_dump_all(pods))
    with Simulator(load_objects(path)) as sim:
        bodies: list[bytes] = []
        lock = threading.Lock()

        def read() -> None:
            body = raw(sim, "GET", "/api/v1/namespaces/shop/pods").content
            with lock:
                bodies.append(body)

        threads = [threading.Thread(target=read) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert len(bodies) == 4 and len(set(bodies)) == 1
    items = json.loads(bodies[0])["items"]
    assert len(items) == 200
    assert all(i["metadata"]["managedFields"][0]["manager"] == "kspec-sim" for i in items)
