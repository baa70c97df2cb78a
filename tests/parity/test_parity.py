"""Parity: every case agrees three ways — the verdict written beside it, the simulator's
Kyverno admission under the generated policies, and the compliance audit.

Each case is created over the API in a simulator holding the spec's generated ClusterPolicies
(admitted: 201, denied: 400 from Kyverno's webhook) and audited by the spec's workload
compliance checks. The cases cover each way the two halves used to part (registry globs,
Docker Hub aliases, bare hosts, digests, quantities, ephemeral containers, controllers) and
the kinds of resources in the Kyverno policy library's test folders.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from pytest_kspec.desired import catalog
from pytest_kspec.desired.expected import generate_policies_for
from pytest_kspec.detect.compliance import ComplianceOptions, evaluate
from pytest_kspec.sim import Simulator

DIGEST = "sha256:" + "0123456789abcdef" * 4
FORBID_PRIV = {"key": "securityContext.privileged", "value": True}

SPECS: Mapping[str, dict[str, Any]] = {
    "allow": {"workloads": {"images": {"allowedRegistries": [
        "*.example.com/*", "registry.example.com", "gcr.io/project"]}}},
    "block-hub": {"workloads": {"images": {"blockedRegistries": ["docker.io/*", "quay.io"]}}},
    "block-library": {"workloads": {"images": {"blockedRegistries": ["docker.io/library/*"]}}},
    "digest": {"workloads": {"images": {"requireDigests": True}}},
    "security": {"workloads": {"containers": {
        "forbidden": [FORBID_PRIV, {"key": "hostNetwork", "value": True}],
        "required": [{"key": "securityContext.allowPrivilegeEscalation", "value": False},
                     {"key": "resources.limits.memory", "value": "512Mi"}]}}},
    "nonroot": {"workloads": {"containers": {"required": [
        {"key": "securityContext.runAsNonRoot", "value": True}]}}},
}

SAFE = {"allowPrivilegeEscalation": False}
LIMITS = {"limits": {"memory": "512Mi"}}


def c(image: str = "registry.example.com/app:1", **fields: Any) -> dict[str, Any]:
    return {"name": fields.pop("name", "app"), "image": image, **fields}


def secure(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"securityContext": dict(SAFE), "resources": copy.deepcopy(LIMITS)}
    for key, value in fields.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return c(**base)


def pod_spec(*containers: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"containers": list(containers), **extra}


@dataclass(frozen=True)
class Case:
    id: str
    spec: str
    kind: str
    pod: dict[str, Any]
    admitted: bool
    namespace: str = "shop"


def _image(id_: str, spec: str, image: str, admitted: bool) -> Case:
    return Case(id_, spec, "Pod", pod_spec(c(image)), admitted)


CASES: list[Case] = [
    # registry allow-list: a glob's host never reaches into the path
    _image("allow-subdomain", "allow", "eu.example.com/app:1", True),
    _image("allow-glob-in-path-is-not-the-host", "allow", "evil.io/x.example.com/app:1", False),
    _image("allow-glob-after-port", "allow", "evil.io:5000/a.example.com/app:1", False),
    _image("allow-bare-host-covers-paths", "allow", "registry.example.com/app", True),
    _image("allow-bare-host-covers-deep-paths", "allow", "registry.example.com/t/app:2", True),
    _image("allow-host-path-covers-below", "allow", "gcr.io/project/app", True),
    _image("allow-host-path-not-a-prefix-match", "allow", "gcr.io/projectx/app", False),
    _image("allow-short-name-is-docker-hub", "allow", "nginx:1.25", False),
    # registry block-list: Docker Hub's aliases and library/ fold into docker.io
    _image("block-hub-alias-index", "block-hub", "index.docker.io/library/nginx", False),
    _image("block-hub-alias-registry-1", "block-hub", "registry-1.docker.io/nginx:1", False),
    _image("block-hub-short-name", "block-hub", "nginx", False),
    _image("block-hub-org-short-name", "block-hub", "bitnami/redis:7", False),
    _image("block-bare-host-blocks-everything-under-it", "block-hub",
           "quay.io/prometheus/node-exporter:v1", False),
    _image("block-hub-other-registry-ok", "block-hub", "ghcr.io/org/app:1", True),
    _image("block-library-short-name", "block-library", "nginx:1.25", False),
    _image("block-library-explicit", "block-library", "docker.io/library/nginx", False),
    _image("block-library-org-ok", "block-library", "bitnami/redis:7", True),
    # digests are 64 hex
    _image("digest-valid", "digest", f"registry.example.com/app@{DIGEST}", True),
    _image("digest-tag-and-digest", "digest", f"registry.example.com/app:1@{DIGEST}", True),
    _image("digest-not-hex", "digest", "registry.example.com/app@sha256:x" + "y" * 63, False),
    _image("digest-tag-only", "digest", "registry.example.com/app:1", False),
    # container security
    Case("secure-pod", "security", "Pod", pod_spec(secure()), True),
    Case("privileged", "security", "Pod",
         pod_spec(secure(securityContext={"privileged": True})), False),
    Case("privileged-init-container", "security", "Pod",
         pod_spec(secure(), initContainers=[secure(name="init", securityContext={
             "privileged": True})]), False),
    Case("host-network", "security", "Pod", pod_spec(secure(), hostNetwork=True), False),
    Case("escalation-unset", "security", "Pod",
         pod_spec(c(resources=copy.deepcopy(LIMITS))), False),
    Case("limits-as-another-quantity", "security", "Pod",
         pod_spec(secure(resources={"limits": {"memory": "0.5Gi"}})), True),
    Case("limits-different-quantity", "security", "Pod",
         pod_spec(secure(resources={"limits": {"memory": "1Gi"}})), False),
    Case("limits-missing", "security", "Pod", pod_spec(c(securityContext=dict(SAFE))), False),
    Case("ephemeral-container-without-resources", "security", "Pod",
         pod_spec(secure(), ephemeralContainers=[c("busybox", name="debugger",
                                                   securityContext=dict(SAFE))]), True),
    Case("privileged-in-system-namespace", "security", "Pod",
         pod_spec(secure(securityContext={"privileged": True})), True, "kube-system"),
    Case("run-as-non-root-at-pod-level", "nonroot", "Pod",
         pod_spec(c(), securityContext={"runAsNonRoot": True}), True),
    Case("run-as-non-root-per-container", "nonroot", "Pod",
         pod_spec(c(securityContext={"runAsNonRoot": True})), True),
    Case("run-as-root-overrides-pod-level", "nonroot", "Pod",
         pod_spec(c(securityContext={"runAsNonRoot": False}),
                  securityContext={"runAsNonRoot": True}), False),
    Case("run-as-non-root-unset", "nonroot", "Pod", pod_spec(c()), False),
    # controllers: judged on their templates, at admission (autogen) and in the audit
    Case("deployment-scaled-to-zero-privileged", "security", "Deployment",
         pod_spec(secure(securityContext={"privileged": True})), False),
    Case("deployment-compliant", "security", "Deployment", pod_spec(secure()), True),
    Case("statefulset-host-network", "security", "StatefulSet",
         pod_spec(secure(), hostNetwork=True), False),
    Case("daemonset-blocked-registry", "block-hub", "DaemonSet", pod_spec(c("nginx")), False),
    Case("cronjob-without-digest", "digest", "CronJob", pod_spec(c()), False),
    Case("job-with-digest", "digest", "Job", pod_spec(c(f"registry.example.com/a@{DIGEST}")),
         True),
    Case("replicaset-outside-allow-list", "allow", "ReplicaSet", pod_spec(c("docker.io/x")),
         False),
]

_API = {"Pod": ("v1", "pods"), "Deployment": ("apps/v1", "deployments"),
        "StatefulSet": ("apps/v1", "statefulsets"), "DaemonSet": ("apps/v1", "daemonsets"),
        "ReplicaSet": ("apps/v1", "replicasets"), "Job": ("batch/v1", "jobs"),
        "CronJob": ("batch/v1", "cronjobs")}


def manifest(case: Case) -> dict[str, Any]:
    api_version, _ = _API[case.kind]
    meta = {"name": case.id, "namespace": case.namespace}
    spec = copy.deepcopy(case.pod)
    if case.kind == "Pod":
        return {"apiVersion": api_version, "kind": "Pod", "metadata": meta, "spec": spec}
    if case.kind in ("Job", "CronJob"):
        spec["restartPolicy"] = "Never"
    template = {"metadata": {"labels": {"app": case.id}}, "spec": spec}
    body: dict[str, Any] = {"selector": {"matchLabels": {"app": case.id}}, "template": template}
    if case.kind == "Deployment":
        body["replicas"] = 0
    if case.kind == "Job":
        body = {"template": template}
    if case.kind == "CronJob":
        body = {"schedule": "0 1 * * *", "jobTemplate": {"spec": {"template": template}}}
    return {"apiVersion": api_version, "kind": case.kind, "metadata": meta, "spec": body}


class _OneObject:
    """A snapshot holding one object (and nothing else)."""

    def __init__(self, obj: dict[str, Any]) -> None:
        self.obj = obj

    def list(self, api_version: str, kind: str,
             namespace: str | None = None) -> list[dict[str, Any]]:
        same = (self.obj["apiVersion"], self.obj["kind"]) == (api_version, kind)
        return [copy.deepcopy(self.obj)] if same else []

    def server_version(self) -> Mapping[str, str]:
        return {"major": "1", "minor": "30", "gitVersion": "v1.30.0"}


def audit(body: Mapping[str, Any], obj: dict[str, Any]) -> list[str]:
    """The workload compliance violations of ``obj`` under the spec section ``body``."""
    out: list[str] = []
    for ref in catalog.enumerate_checks(body):
        if ref.type == catalog.COMPLIANCE and ref.kind.startswith("workloads."):
            result = evaluate(ref, _OneObject(obj), ComplianceOptions.for_spec(body))
            out += [f"{ref.id}: {v}" for v in result.violations]
    return out


@pytest.fixture(scope="module")
def sims() -> Iterator[dict[str, Simulator]]:
    started: dict[str, Simulator] = {}
    try:
        for name, body in SPECS.items():
            policies = generate_policies_for(body, spec_name=name, spec_version="1.0.0")
            started[name] = Simulator([*policies, {"apiVersion": "v1", "kind": "Namespace",
                                                   "metadata": {"name": "shop"}}],
                                      kyverno=True).start()
        yield started
    finally:
        for sim in started.values():
            sim.stop()


def admit(sim: Simulator, obj: dict[str, Any]) -> tuple[bool, str]:
    api_version, plural = _API[obj["kind"]]
    prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    resp = requests.post(f"{sim.url}{prefix}/namespaces/{obj['metadata']['namespace']}/{plural}",
                         json=obj, verify=sim.ca_path, timeout=10,
                         headers={"Authorization": f"Bearer {sim.admin_token}"})
    assert resp.status_code in (201, 400), resp.text
    return resp.status_code == 201, "" if resp.status_code == 201 else resp.json()["message"]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_intended_admission_and_audit_agree(sims: dict[str, Simulator], case: Case) -> None:
    obj = manifest(case)
    admitted, message = admit(sims[case.spec], obj)
    violations = audit(SPECS[case.spec], obj)
    assert admitted is case.admitted, f"admission: {message or 'admitted'}"
    assert (not violations) is case.admitted, f"audit: {violations or 'compliant'}"


def test_the_corpus_covers_every_controller_kind_and_both_verdicts() -> None:
    assert {c.kind for c in CASES} == set(_API)
    assert {c.admitted for c in CASES} == {True, False}
