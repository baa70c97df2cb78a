"""Kyverno admission in the simulator: generated Enforce policies refuse Pods and controllers
over the API (kubectl included) with Kyverno's message; state loading is never admitted."""

from __future__ import annotations

import copy
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from sim_helpers import raw

from pytest_kspec.desired.expected import generate_policies_for
from pytest_kspec.sim import Simulator

BODY: dict[str, Any] = {"workloads": {"containers": {"forbidden": [
    {"key": "securityContext.privileged", "value": True}]}}}
PRIVILEGED = {"name": "app", "image": "nginx:1.27", "securityContext": {"privileged": True}}


def _pod(name: str, container: dict[str, Any], ns: str = "default") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
            "spec": {"containers": [container]}}


def _deployment(name: str, container: dict[str, Any], replicas: int = 0) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [container]}}}}


@pytest.fixture()
def sim() -> Iterator[Simulator]:
    with Simulator(generate_policies_for(BODY, spec_name="t", spec_version="1.0.0"),
                   kyverno=True) as s:
        yield s


def test_a_privileged_pod_is_refused_with_kyvernos_message(sim: Simulator) -> None:
    resp = raw(sim, "POST", "/api/v1/namespaces/default/pods", json=_pod("bad", PRIVILEGED))
    assert resp.status_code == 400
    status = resp.json()
    assert (status["kind"], status["reason"], status["code"]) == ("Status", "BadRequest", 400)
    message = status["message"]
    assert message.startswith('admission webhook "validate.kyverno.svc-fail" denied the '
                              "request")
    assert "resource Pod/default/bad was blocked due to the following policies" in message
    assert "disallow-privileged-containers:" in message
    assert "privileged-containers: 'validation error: Privileged mode is disallowed." in message
    assert "/spec/containers/0/securityContext/privileged/" in message
    assert sim.get("v1", "Pod", "bad") is None


def test_controllers_are_refused_through_autogen(sim: Simulator) -> None:
    resp = raw(sim, "POST", "/apis/apps/v1/namespaces/default/deployments",
               json=_deployment("web", PRIVILEGED))
    assert resp.status_code == 400
    assert "autogen-privileged-containers:" in resp.json()["message"]
    cron = {"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "nightly", "namespace": "default"},
            "spec": {"schedule": "0 1 * * *", "jobTemplate": {"spec": {"template": {
                "spec": {"restartPolicy": "Never", "containers": [PRIVILEGED]}}}}}}
    resp = raw(sim, "POST", "/apis/batch/v1/namespaces/default/cronjobs", json=cron)
    assert resp.status_code == 400
    assert "autogen-cronjob-privileged-containers:" in resp.json()["message"]


def test_an_update_that_breaks_the_rule_is_refused_and_dry_run_too(sim: Simulator) -> None:
    ok = {"name": "app", "image": "nginx:1.27"}
    assert raw(sim, "POST", "/apis/apps/v1/namespaces/default/deployments",
               json=_deployment("web", ok)).status_code == 201
    patch = {"spec": {"template": {"spec": {"containers": [PRIVILEGED]}}}}
    resp = raw(sim, "PATCH", "/apis/apps/v1/namespaces/default/deployments/web", json=patch,
               headers={"Content-Type": "application/strategic-merge-patch+json"})
    assert resp.status_code == 400
    live = sim.get("apps/v1", "Deployment", "web", "default")
    assert live is not None
    assert "securityContext" not in live["spec"]["template"]["spec"]["containers"][0]
    resp = raw(sim, "POST", "/api/v1/namespaces/default/pods?dryRun=All",
               json=_pod("dry", PRIVILEGED))
    assert resp.status_code == 400


def test_system_namespaces_and_compliant_pods_are_admitted(sim: Simulator) -> None:
    assert raw(sim, "POST", "/api/v1/namespaces/kube-system/pods",
               json=_pod("kube-proxy", PRIVILEGED, "kube-system")).status_code == 201
    assert raw(sim, "POST", "/api/v1/namespaces/default/pods",
               json=_pod("ok", {"name": "app", "image": "nginx"})).status_code == 201


def test_admission_off_admits_and_state_loading_is_never_admitted() -> None:
    policies = generate_policies_for(BODY, spec_name="t", spec_version="1.0.0")
    with Simulator([*policies, _pod("loaded", PRIVILEGED)], kyverno=True,
                   admission=False) as sim:
        assert sim.get("v1", "Pod", "loaded") is not None  # state: as etcd holds it
        assert sim.admission_enabled is False
        assert raw(sim, "POST", "/api/v1/namespaces/default/pods",
                   json=_pod("p1", PRIVILEGED)).status_code == 201
        sim.admission_enabled = True
        assert raw(sim, "POST", "/api/v1/namespaces/default/pods",
                   json=_pod("p2", PRIVILEGED)).status_code == 400


def test_audit_policies_do_not_refuse() -> None:
    policies = generate_policies_for(BODY, spec_name="t", spec_version="1.0.0")
    for policy in policies:
        policy["spec"]["validationFailureAction"] = "Audit"
        for rule in policy["spec"]["rules"]:
            rule["validate"]["failureAction"] = "Audit"
    with Simulator(policies, kyverno=True) as sim:
        assert raw(sim, "POST", "/api/v1/namespaces/default/pods",
                   json=_pod("p", PRIVILEGED)).status_code == 201


@pytest.mark.kubectl
@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not on PATH")
def test_kubectl_run_privileged_is_refused_until_the_policy_is_deleted(sim: Simulator) -> None:
    def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["kubectl", "--kubeconfig", sim.kubeconfig_path, *args],
                              capture_output=True, text=True, timeout=60, check=False)

    run = ("run", "shell", "--image=busybox", "--privileged", "--restart=Never")
    refused = kubectl(*run)
    assert refused.returncode == 1
    assert "denied the request" in refused.stderr
    assert "disallow-privileged-containers" in refused.stderr
    assert kubectl("delete", "clusterpolicy", "disallow-privileged-containers").returncode == 0
    admitted = kubectl(*run)
    assert admitted.returncode == 0, admitted.stderr
    assert copy.deepcopy(sim.get("v1", "Pod", "shell")) is not None
