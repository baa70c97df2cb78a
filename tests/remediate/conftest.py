"""Remediation test helpers: a simulated cluster built from the e2e spec, served in-process so
tests can inject edits, count writes and dump state while pytest runs in a subprocess."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from e2e.conftest import SPEC, Cluster, Result, _namespace, _pod, run_pytest

from pytest_kspec.desired import generate_policies
from pytest_kspec.sim import Simulator
from pytest_kspec.spec import load_spec

RBAC_MANIFEST = Path(__file__).resolve().parents[2] / "manifests" / "base" / "rbac.yaml"
POLICY = ("kyverno.io/v1", "ClusterPolicy")


@pytest.fixture
def cluster(tmp_path: Path) -> Cluster:
    """A cluster that matches the e2e SPEC exactly (policies, namespaces, good pods)."""
    spec_path = tmp_path / "cluster-spec.yaml"
    spec_path.write_text(SPEC)
    objects: list[dict[str, Any]] = [copy.deepcopy(p)
                                     for p in generate_policies(load_spec(spec_path))]
    objects += [_namespace(ns, "privileged" if ns == "monitoring" else "baseline")
                for ns in ("default", "shop", "payments", "monitoring")]
    objects += [_pod("web-1", "shop"), _pod("api-1", "payments")]
    return Cluster(spec_path, objects)


def expected_policy(cluster: Cluster, name: str) -> dict[str, Any]:
    for policy in generate_policies(load_spec(cluster.spec_path)):
        if policy["metadata"]["name"] == name:
            return policy
    raise KeyError(name)


def kspec_run(cluster: Cluster, kubeconfig: str, *args: str) -> Result:
    """``pytest --kspec-spec SPEC --kspec-kubeconfig KUBECONFIG ARGS`` in a subprocess."""
    return run_pytest(cluster.spec_path.parent, "--kspec-spec", str(cluster.spec_path),
                      "--kspec-kubeconfig", kubeconfig, *args)


def drift_config(path: Path, remediation: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "kspec.dev/v1", "kind": "DriftConfig", "metadata": {"name": "test"},
        "spec": {"remediation": remediation}}))
    return path


def rbac_objects() -> list[dict[str, Any]]:
    return [o for o in yaml.safe_load_all(RBAC_MANIFEST.read_text()) if o]


@pytest.fixture
def sim_for(cluster: Cluster) -> Iterator[Any]:
    """``sim_for(**kwargs)`` starts a Simulator(kyverno=True) on the cluster's objects."""
    started: list[Simulator] = []

    def start(**kwargs: Any) -> Simulator:
        sim = Simulator(objects=cluster.objects, kyverno=True, version="1.29.4", **kwargs)
        sim.start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()
