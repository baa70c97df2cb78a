"""End-to-end helpers: a spec, a simulated cluster built from it, and pytest run as a user would."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_kspec.desired import generate_policies
from pytest_kspec.spec import load_spec

SPEC = """\
apiVersion: kspec.dev/v1
kind: ClusterSpecification
metadata:
  name: shop-prod
  version: 2.1.0
spec:
  kubernetes:
    minVersion: "1.28"
    maxVersion: "1.30"
  podSecurity:
    enforce: baseline
    exemptions:
      - namespace: monitoring
        level: privileged
        reason: node exporters need host access
  workloads:
    containers:
      required:
        - key: securityContext.runAsNonRoot
          value: true
      forbidden:
        - key: securityContext.privileged
          value: true
    images:
      allowedRegistries: ["registry.example.com/*", "registry.k8s.io/*"]
      blockedRegistries: ["docker.io/*"]
  compliance:
    frameworks:
      - name: CIS Kubernetes Benchmark
        revision: "1.8"
        controls:
          - id: "5.2.2"
            title: Minimize the admission of privileged containers
            mappings:
              - check: workloads.containers.forbidden.privileged
              - check: disallow-privileged-containers
"""

NAMESPACES = ("default", "shop", "payments", "monitoring")


def _namespace(name: str, level: str | None = "baseline") -> dict[str, Any]:
    labels = {"kubernetes.io/metadata.name": name}
    if level:
        labels["pod-security.kubernetes.io/enforce"] = level
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def _pod(name: str, namespace: str, *, privileged: bool = False,
         image: str = "registry.example.com/shop/web@sha256:" + "a" * 64) -> dict[str, Any]:
    ctx: dict[str, Any] = {"runAsNonRoot": True}
    if privileged:
        ctx["privileged"] = True
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {"containers": [{"name": "app", "image": image, "securityContext": ctx}]},
    }


@dataclass
class Cluster:
    """The objects of a simulated cluster, edited by a test before the run."""

    spec_path: Path
    objects: list[dict[str, Any]]

    def policy(self, name: str) -> dict[str, Any]:
        for obj in self.objects:
            if obj["kind"] == "ClusterPolicy" and obj["metadata"]["name"] == name:
                return obj
        raise KeyError(name)

    def remove(self, kind: str, name: str) -> None:
        self.objects = [o for o in self.objects
                        if not (o["kind"] == kind and o["metadata"]["name"] == name)]

    def add(self, obj: dict[str, Any]) -> None:
        self.objects.append(obj)


@pytest.fixture
def cluster(tmp_path: Path) -> Cluster:
    """A cluster that matches SPEC exactly: generated policies, labelled namespaces, good pods."""
    spec_path = tmp_path / "cluster-spec.yaml"
    spec_path.write_text(SPEC)
    policies = generate_policies(load_spec(spec_path))
    objects: list[dict[str, Any]] = [copy.deepcopy(p) for p in policies]
    objects += [_namespace(ns, "privileged" if ns == "monitoring" else "baseline")
                for ns in NAMESPACES]
    objects += [_pod("web-1", "shop"), _pod("api-1", "payments")]
    objects.append(_pod("coredns-1", "kube-system", privileged=True,
                        image="registry.k8s.io/coredns/coredns@sha256:" + "b" * 64))
    return Cluster(spec_path, objects)


@dataclass
class Result:
    returncode: int
    stdout: str
    report: dict[str, Any] | None
    junit: Path

    def item(self, node_suffix: str) -> dict[str, Any]:
        assert self.report is not None, self.stdout
        for record in self.report["kspec"]["results"]:
            if record["node_id"].endswith(node_suffix):
                return dict(record)
        raise AssertionError(f"no item {node_suffix} in {self.stdout}")

    def events(self, **match: Any) -> list[dict[str, Any]]:
        assert self.report is not None, self.stdout
        return [e for e in self.report["events"]
                if all(e.get(k) == v for k, v in match.items())]

    def statuses(self) -> dict[str, str]:
        assert self.report is not None, self.stdout
        return {r["node_id"].split("::", 1)[1]: r["status"]
                for r in self.report["kspec"]["results"]}


def run_pytest(cwd: Path, *args: str, timeout: float = 120) -> Result:
    """``pytest ARGS`` in a subprocess in ``cwd``, as a user runs it; reads the reports
    (``--kspec-reports`` defaults to ``cwd/reports``; a later one in ARGS wins)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["KUBECONFIG"] = str(cwd / "no-such-kubeconfig")  # never the developer's cluster
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly",
         "--kspec-reports", str(cwd / "reports"), *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    report_path = cwd / "reports" / "drift-report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else None
    return Result(proc.returncode, proc.stdout + proc.stderr, report,
                  cwd / "reports" / "junit.xml")


def write_state(cluster: Cluster, path: Path) -> Path:
    path.write_text(yaml.safe_dump_all(cluster.objects, sort_keys=False))
    return path
