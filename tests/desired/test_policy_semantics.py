"""What the generated policies admit and reject, judged by the simulator's Kyverno engine
(pytest_kspec.sim.admission, written from Kyverno's source: anchors, wildcards, anyPattern,
foreach + deny, image_normalize, autogen).

A change that quietly stops a policy from rejecting a privileged init container (say) fails
here. The demo cluster's pods must be rejected by exactly the policies whose compliance
checks they fail.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_kspec.desired.expected import generate_policies, generate_policies_for
from pytest_kspec.sim.admission import evaluate
from pytest_kspec.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
DIGEST = "sha256:" + "ab12" * 16


def rejects(policy: Mapping[str, Any], pod: Mapping[str, Any]) -> bool:
    """True when some rule of ``policy`` matches ``pod`` and fails validation."""
    return bool(evaluate(policy, {"apiVersion": "v1", "kind": "Pod", **pod}))


def test_demo_pods_are_rejected_by_exactly_the_policies_they_break() -> None:
    objs = list(yaml.safe_load_all((ROOT / "examples" / "demo-cluster.yaml").read_text()))
    pods = [o for o in objs if o["kind"] == "Pod"]
    verdicts = {}
    for policy in generate_policies(load_spec(ROOT / "examples" / "moderate.yaml")):
        verdicts[policy["metadata"]["name"]] = sorted(
            f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in pods
            if rejects(policy, p))
    generator = "legacy-batch/report-generator-59f4d8c7b6-x7k2p"
    web = "storefront/web-84c5b7f6d9-x7k2p"
    assert verdicts == {
        "require-run-as-non-root": [],
        "disallow-privilege-escalation": ["storefront/node-debugger"],
        "require-resource-limits": [generator],
        "disallow-privileged-containers": ["storefront/node-debugger"],
        "disallow-host-namespaces": [generator],
        "require-image-digests": [web],
        "block-image-registries": [web],
    }


GOOD = {
    "metadata": {"name": "ok", "namespace": "apps"},
    "spec": {
        "securityContext": {"runAsNonRoot": True},
        "containers": [{"name": "app", "image": f"registry.example.com/app@{DIGEST}",
                        "securityContext": {"allowPrivilegeEscalation": False},
                        "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}],
    },
}
BODY = yaml.safe_load((ROOT / "examples" / "strict.yaml").read_text())["spec"]


def _policies(body: Mapping[str, Any] = BODY) -> dict[str, dict[str, Any]]:
    objs = generate_policies_for(body, spec_name="t", spec_version="1.0.0")
    return {o["metadata"]["name"]: o for o in objs}


def _with(path: str, value: Any, base: Mapping[str, Any] = GOOD) -> dict[str, Any]:
    pod = copy.deepcopy(dict(base))
    node: Any = pod
    *parents, last = path.split(".")
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    node[last] = value
    return pod


def test_a_compliant_pod_passes_every_policy() -> None:
    pod = _with("spec.containers.0.resources.limits.ephemeral-storage", "1Gi")
    assert {n: rejects(p, pod) for n, p in _policies().items()} == dict.fromkeys(_policies(),
                                                                                 False)


@pytest.mark.parametrize("lst", ["initContainers", "ephemeralContainers"])
def test_privileged_init_and_ephemeral_containers_are_rejected(lst: str) -> None:
    extra = {"name": "x", "image": f"registry.example.com/x@{DIGEST}",
             "securityContext": {"privileged": True}}
    pod = _with(f"spec.{lst}", [extra])
    assert rejects(_policies()["disallow-privileged-containers"], pod)
    assert not rejects(_policies()["disallow-privileged-containers"], GOOD)


@pytest.mark.parametrize(("image", "rejected"), [
    ("nginx:1.25", True),  # short name resolves to docker.io
    (f"docker.io/library/nginx@{DIGEST}", True),
    (f"quay.io/prometheus/node-exporter@{DIGEST}", True),  # not on the allow-list
    (f"registry.k8s.io/pause@{DIGEST}", False),
    (f"registry.example.com/team/app@{DIGEST}", False),
])
def test_registries(image: str, rejected: bool) -> None:
    pod = _with("spec.initContainers", [{"name": "i", "image": image}])
    assert rejects(_policies()["block-image-registries"], pod) is rejected


def test_run_as_non_root_pod_level_cannot_be_undone_by_a_container() -> None:
    policy = _policies()["require-run-as-non-root"]
    assert not rejects(policy, GOOD)
    assert rejects(policy, _with("spec.containers.0.securityContext.runAsNonRoot", False))
    no_pod_level = _with("spec.securityContext", {})
    assert rejects(policy, no_pod_level)
    assert not rejects(policy, _with("spec.containers.0.securityContext.runAsNonRoot", True,
                                     no_pod_level))


def test_system_namespaces_are_not_checked() -> None:
    pod = _with("spec.hostNetwork", True)
    policy = _policies()["disallow-host-namespaces"]
    assert rejects(policy, pod)
    assert not rejects(policy, _with("metadata.namespace", "kube-system", pod))
