"""kubectl drives workloads on the simulator: create, rollout status, wait, delete."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator

import pytest

from pytest_kspec.sim import Simulator

pytestmark = [pytest.mark.kubectl,
              pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not on PATH")]

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
PHASES = ["get", "pods", "-o", "jsonpath={range .items[*]}{.status.phase}{'\\n'}{end}"]


@pytest.fixture
def kubectl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubectl]:
    cache = tmp_path_factory.mktemp("kubectl-cache")
    with Simulator(nodes=2) as sim:
        def run(*args: str, check: bool = True,
                stdin: str | None = None) -> subprocess.CompletedProcess[str]:
            done = subprocess.run(["kubectl", "--kubeconfig", sim.kubeconfig_path,
                                   "--cache-dir", str(cache), *args], input=stdin,
                                  capture_output=True, text=True, timeout=60)
            if check:
                assert done.returncode == 0, done.stderr
            return done
        yield run


def test_create_deployment_rolls_out_three_running_pods(kubectl: Kubectl) -> None:
    kubectl("create", "deployment", "web", "--image=nginx:1.27", "--replicas=3")
    status = kubectl("rollout", "status", "deployment/web", "--timeout=30s")
    assert 'deployment "web" successfully rolled out' in status.stdout
    assert kubectl(*PHASES).stdout.split() == ["Running"] * 3
    kubectl("set", "image", "deployment/web", "nginx=nginx:1.28")
    assert "successfully rolled out" in kubectl("rollout", "status", "deployment/web",
                                                "--timeout=30s").stdout
    images = kubectl("get", "pods", "-o", "jsonpath={.items[*].spec.containers[0].image}")
    assert images.stdout.split() == ["nginx:1.28"] * 3
    history = kubectl("rollout", "history", "deployment/web").stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"]
    kubectl("rollout", "undo", "deployment/web")
    kubectl("rollout", "status", "deployment/web", "--timeout=30s")
    images = kubectl("get", "pods", "-o", "jsonpath={.items[*].spec.containers[0].image}")
    assert images.stdout.split() == ["nginx:1.27"] * 3


def test_delete_deployment_leaves_no_pods(kubectl: Kubectl) -> None:
    kubectl("create", "deployment", "web", "--image=nginx:1.27", "--replicas=3")
    assert 'deployment.apps "web" deleted' in kubectl("delete", "deployment", "web").stdout
    left = kubectl("get", "pods,replicasets")
    assert left.stdout == "" and "No resources found" in left.stderr


def test_wait_for_a_ready_pod(kubectl: Kubectl) -> None:
    kubectl("run", "x", "--image=nginx:1.27")
    waited = kubectl("wait", "--for=condition=Ready", "pod/x", "--timeout=30s")
    assert waited.stdout.strip() == "pod/x condition met"
    kubectl("delete", "pod", "x")
    assert kubectl("get", "pod", "x", check=False).returncode == 1


def test_job_completes_and_statefulset_rolls_out(kubectl: Kubectl) -> None:
    kubectl("create", "job", "once", "--image=busybox", "--", "true")
    waited = kubectl("wait", "--for=condition=complete", "job/once", "--timeout=30s")
    assert waited.stdout.strip() == "job.batch/once condition met"
    manifest = """apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 2
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: "postgres:16"}]}
"""
    applied = kubectl("apply", "-f", "-", stdin=manifest)
    assert "statefulset.apps/db created" in applied.stdout
    status = kubectl("rollout", "status", "statefulset/db", "--timeout=30s")
    # the server defaults updateStrategy.rollingUpdate.partition to 0, so kubectl says this
    assert status.stdout.strip() == "partitioned roll out complete: 2 new pods have been updated..."
    names = kubectl("get", "pods", "-l", "app=db", "-o", "jsonpath={.items[*].metadata.name}")
    assert names.stdout.split() == ["db-0", "db-1"]


def test_namespace_delete_takes_its_contents(kubectl: Kubectl) -> None:
    kubectl("create", "namespace", "tmp")
    kubectl("create", "deployment", "web", "--image=nginx", "-n", "tmp", "--replicas=2")
    kubectl("delete", "namespace", "tmp")
    assert kubectl("get", "namespace", "tmp", check=False).returncode == 1
    assert kubectl("get", "pods", "-A", "-o", "name").stdout == ""
