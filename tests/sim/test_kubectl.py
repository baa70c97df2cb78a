"""The simulator through kubectl itself (skipped where kubectl is not installed)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator

import pytest

from pytest_kspec.sim import Simulator

pytestmark = [pytest.mark.kubectl,
              pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not on PATH")]

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
RBAC = [
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
     "metadata": {"name": "reader", "namespace": "default"},
     "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
     "metadata": {"name": "bob-reads", "namespace": "default"},
     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
     "subjects": [{"kind": "User", "name": "bob", "apiGroup": "rbac.authorization.k8s.io"}]},
]
POD = """apiVersion: v1
kind: Pod
metadata:
  name: web-1
  labels: {app: web}
spec:
  nodeName: node-a
  containers:
  - name: web
    image: nginx:1.27
"""
POLICY = """apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: require-labels
spec:
  background: {background}
  rules: []
"""


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(RBAC, kyverno=True, rbac=True, users={"bob-token": ("bob", [])}) as s:
        yield s


@pytest.fixture(scope="module")
def run(sim: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubectl]:
    cache = tmp_path_factory.mktemp("kubectl-cache")

    def _run(*args: str, stdin: str | None = None, kubeconfig: str | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = ["kubectl", "--kubeconfig", kubeconfig or sim.kubeconfig_path,
               "--cache-dir", str(cache), *args]
        done = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=60)
        if check:
            assert done.returncode == 0, done.stderr
        return done

    yield _run


@pytest.fixture(scope="module")
def created(run: Kubectl, tmp_path_factory: pytest.TempPathFactory) -> str:
    """``kubectl create`` of pod web-1, once per module on whichever worker runs these tests:
    the tests below read, patch, watch and finally delete it (xdist may split the module)."""
    manifest = tmp_path_factory.mktemp("pod") / "pod.yaml"
    manifest.write_text(POD)
    return run("create", "-f", str(manifest)).stdout


def test_create_get_and_selectors(sim: Simulator, run: Kubectl, created: str) -> None:
    assert "pod/web-1 created" in created
    assert sim.get("v1", "Pod", "web-1")["metadata"]["managedFields"][0]["manager"] == (
        "kubectl-create")
    everything = json.loads(run("get", "pods", "-A", "-o", "json").stdout)
    assert [p["metadata"]["name"] for p in everything["items"]] == ["web-1"]
    assert run("get", "pods", "-l", "app=web", "-o", "name").stdout.split() == ["pod/web-1"]
    assert run("get", "pods", "-l", "app!=web", "-o", "name").stdout.split() == []
    by_node = run("get", "pods", "--field-selector", "spec.nodeName=node-a", "-o", "name")
    assert by_node.stdout.split() == ["pod/web-1"]
    bad = run("get", "pods", "--field-selector", "spec.image=x", check=False)
    assert bad.returncode != 0 and "field label not supported: spec.image" in bad.stderr


def test_patch_label_annotate(sim: Simulator, run: Kubectl, created: str) -> None:
    run("patch", "pod", "web-1", "--type", "strategic",
        "-p", '{"spec":{"containers":[{"name":"web","image":"nginx:1.28"}]}}')
    run("patch", "pod", "web-1", "--type", "merge", "-p", '{"metadata":{"labels":{"m":"1"}}}')
    run("patch", "pod", "web-1", "--type", "json",
        "-p", '[{"op":"add","path":"/metadata/labels/j","value":"2"}]')
    run("label", "pod", "web-1", "team=blue")
    run("annotate", "pod", "web-1", "owner=ops")
    live = sim.get("v1", "Pod", "web-1")
    assert live is not None
    assert live["spec"]["containers"][0]["image"] == "nginx:1.28"
    assert live["metadata"]["labels"] == {"app": "web", "m": "1", "j": "2", "team": "blue"}
    assert live["metadata"]["annotations"] == {"owner": "ops"}
    managers = {m["manager"] for m in live["metadata"]["managedFields"]}
    assert {"kubectl-patch", "kubectl-label", "kubectl-annotate"} <= managers


def test_apply_client_and_server_side(sim: Simulator, run: Kubectl) -> None:
    out = run("apply", "-f", "-", stdin=POLICY.format(background="true")).stdout
    assert "clusterpolicy.kyverno.io/require-labels created" in out
    out = run("apply", "-f", "-", stdin=POLICY.format(background="false")).stdout
    assert "configured" in out
    cp = sim.get("kyverno.io/v1", "ClusterPolicy", "require-labels")
    assert cp is not None and cp["spec"]["background"] is False
    assert cp["metadata"]["generation"] == 2
    assert "kubectl.kubernetes.io/last-applied-configuration" in cp["metadata"]["annotations"]
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  k: v\n"
    assert "serverside-applied" in run("apply", "--server-side", "-f", "-", stdin=cm).stdout
    applied = sim.get("v1", "ConfigMap", "ssa")
    assert applied is not None
    assert applied["metadata"]["managedFields"][0]["manager"] == "kubectl"
    assert applied["metadata"]["managedFields"][0]["operation"] == "Apply"
    assert "cpol" in run("api-resources", "-o", "wide").stdout


def test_auth_can_i_and_forbidden(sim: Simulator, run: Kubectl) -> None:
    bob = sim.kubeconfig_for("bob-token")
    assert run("auth", "can-i", "list", "pods", kubeconfig=bob).stdout.strip() == "yes"
    no = run("auth", "can-i", "delete", "pods", kubeconfig=bob, check=False)
    assert no.returncode == 1 and no.stdout.strip().startswith("no")
    denied = run("get", "configmaps", kubeconfig=bob, check=False)
    assert denied.returncode != 0
    assert ('Error from server (Forbidden): configmaps is forbidden: User "bob" cannot list '
            'resource "configmaps" in API group "" in the namespace "default"') in denied.stderr


def test_watch_and_delete(sim: Simulator, run: Kubectl, created: str) -> None:
    watched = run("get", "pods", "--watch", "--request-timeout", "2s", "-o", "name")
    assert "pod/web-1" in watched.stdout
    assert 'pod "web-1" deleted' in run("delete", "pod", "web-1").stdout
    assert sim.get("v1", "Pod", "web-1") is None
