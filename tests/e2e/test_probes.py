"""Efficacy probes end to end: ``pytest --kspec-probe`` / ``kspec drift detect --probe``
against a simulator the test serves, so it can read every request the probes sent."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_kspec.desired import probe_pod
from pytest_kspec.detect.efficacy import enforcing
from pytest_kspec.sim import Simulator
from pytest_kspec.spec import load_spec

from .conftest import Cluster, run_pytest

REPO = Path(__file__).resolve().parents[2]
SA_USER = "system:serviceaccount:kspec-system:kspec"
SA_GROUPS = ("system:serviceaccounts", "system:serviceaccounts:kspec-system",
             "system:authenticated")
PRIVILEGED = "disallow-privileged-containers"


def _rbac() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((REPO / "manifests/base/rbac.yaml").read_text()) if d]


def _probes(sim: Simulator) -> list[Any]:
    return [r for r in sim.requests if r.method == "POST" and r.path.endswith("/pods")]


def _enforced(cluster: Cluster) -> list[str]:
    spec = load_spec(cluster.spec_path)
    return sorted(o["metadata"]["name"] for o in cluster.objects
                  if o["kind"] == "ClusterPolicy" and enforcing(o)
                  and probe_pod(o["metadata"]["name"], spec.body, "default") is not None)


def _probe(cluster: Cluster, kubeconfig: str, *args: str) -> Any:
    return run_pytest(cluster.spec_path.parent, "--kspec-spec", str(cluster.spec_path),
                      "--kspec-kubeconfig", kubeconfig, "--kspec-types", "policy", *args)


def test_refused_probe_means_the_policy_enforces(cluster: Cluster) -> None:
    # The simulator's Kyverno admission refuses each probe pod with Kyverno's message.
    with Simulator(objects=cluster.objects, kyverno=True) as sim:
        result = _probe(cluster, sim.kubeconfig_path, "--kspec-probe")
        probes = _probes(sim)
        assert sim.writes() == []
    assert result.returncode == 0, result.stdout
    enforced = _enforced(cluster)
    assert len(enforced) >= 3 and len(probes) == len(enforced)
    assert all(r.dry_run and r.status == 400 for r in probes), [r.status for r in probes]
    assert {result.item(f"policy::{n}")["status"] for n in enforced} == {"passed"}


def test_admitted_probe_is_not_enforcing_critical_and_nothing_is_persisted(
        cluster: Cluster) -> None:
    # Admission switched off: every probe pod is admitted, as when Kyverno is down behind a
    # webhook with failurePolicy: Ignore.
    with Simulator(objects=cluster.objects, kyverno=True, admission=False) as sim:
        pods = sim.list("v1", "Pod")
        result = _probe(cluster, sim.kubeconfig_path, "--kspec-probe")
        probes = _probes(sim)
        assert sim.list("v1", "Pod") == pods and sim.writes() == []
    assert result.returncode == 1, result.stdout
    enforced = _enforced(cluster)
    assert len(probes) == len(enforced)
    assert all(r.dry_run and r.query.get("dryRun") == "All" for r in probes)
    assert all(r.path == "/api/v1/namespaces/default/pods" for r in probes)
    for name in enforced:
        assert result.item(f"policy::{name}")["status"] == "failed"
    (event,) = [e for e in result.events(type="policy")
                if e["resource"] == f"ClusterPolicy/{PRIVILEGED}"]
    assert (event["drift"], event["severity"]) == ("not-enforcing", "critical")
    assert "a pod with a privileged container was admitted in namespace default" in \
        event["message"]
    assert result.report is not None and result.report["drift"]["severity"] == "critical"
    assert f"ClusterPolicy/{PRIVILEGED}: not enforcing (critical)" in result.stdout


def test_without_create_pods_the_probe_is_an_error_naming_the_role(cluster: Cluster) -> None:
    objects = cluster.objects + _rbac()
    with Simulator(objects=objects, kyverno=True, rbac=True,
                   users={"sa-token": (SA_USER, SA_GROUPS)}) as sim:
        kubeconfig = sim.kubeconfig_for("sa-token")
        result = _probe(cluster, kubeconfig, "--kspec-probe")
        denied = [r for r in _probes(sim) if r.status == 403]
        assert denied, "the probes were not refused"
        binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                   "metadata": {"name": "kspec-probe"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                               "name": "kspec-probe"},
                   "subjects": [{"kind": "ServiceAccount", "name": "kspec",
                                 "namespace": "kspec-system"}]}
        sim.create(binding)
        allowed = _probe(cluster, kubeconfig, "--kspec-probe")
        assert [r.status for r in _probes(sim)][len(denied):] == [400] * len(_enforced(cluster))
    assert result.returncode == 1, result.stdout
    assert result.item(f"policy::{PRIVILEGED}")["status"] == "error"
    (error,) = [e for e in result.report["kspec"]["errors"]  # type: ignore[index]
                if e["node_id"].endswith(PRIVILEGED)]
    assert "cannot create pods in namespace default (403)" in error["message"]
    assert "bind the kspec-probe ClusterRole from manifests/base/rbac.yaml" in error["message"]
    assert "passed" not in {result.item(f"policy::{n}")["status"] for n in _enforced(cluster)}
    # With the opt-in role bound, the same token probes, and admission refuses each pod.
    assert allowed.returncode == 0, allowed.stdout
    assert allowed.item(f"policy::{PRIVILEGED}")["status"] == "passed"


@pytest.mark.parametrize(("namespace", "message"), [
    ("kube-system", "the probe namespace kube-system is excluded from"),
    ("no-such-namespace", "the probe namespace no-such-namespace does not exist"),
])
def test_a_probe_that_proves_nothing_is_an_error(cluster: Cluster, tmp_path: Path,
                                                 namespace: str, message: str) -> None:
    config = tmp_path / "drift.yaml"
    config.write_text(yaml.safe_dump({
        "apiVersion": "kspec.dev/v1", "kind": "DriftConfig", "metadata": {"name": "p"},
        "spec": {"detection": {"efficacy": True, "probeNamespace": namespace}}}))
    with Simulator(objects=cluster.objects, kyverno=True) as sim:
        result = _probe(cluster, sim.kubeconfig_path, "--kspec-config", str(config))
    assert result.item(f"policy::{PRIVILEGED}")["status"] == "error", result.stdout
    assert message in result.stdout


def test_cli_probe_flag_and_a_policy_that_drifted_is_not_probed(cluster: Cluster) -> None:
    enforced = _enforced(cluster)
    policy = cluster.policy(PRIVILEGED)
    policy["spec"]["rules"][0]["validate"]["failureAction"] = "Audit"
    with Simulator(objects=cluster.objects, kyverno=True, admission=False) as sim:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
        proc = subprocess.run(
            [sys.executable, "-m", "pytest_kspec.cli", "drift", "detect", "--spec",
             str(cluster.spec_path), "--kubeconfig", sim.kubeconfig_path, "--types", "policy",
             "--probe"], cwd=cluster.spec_path.parent, env=env, capture_output=True, text=True,
            timeout=120, check=False)
        probed = {str(r.extra) for r in _probes(sim)}
        count = len(_probes(sim))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "not enforcing (critical)" in out
    assert count == len(enforced) - 1, probed  # the modified one reports its diff
    assert f"ClusterPolicy/{PRIVILEGED}" in out and "Audit" in out
