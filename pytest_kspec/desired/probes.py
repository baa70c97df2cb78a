"""Probe pods: for each policy kspec generates, a pod built to break exactly that policy.

An efficacy probe (:mod:`pytest_kspec.detect.efficacy`) sends one of these to the API server
as a server-side dry run: if the policy enforces, admission refuses it naming the policy. To
make the verdict about *that* policy, every probe starts from a pod that satisfies the spec's
other workload rules (non-root, no privilege escalation, limits, an allowed registry pinned by
digest) and breaks one thing: a privileged container, host namespaces, an image from a
blocked registry, a missing limit...

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import copy
import fnmatch
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["PROBES", "PROBE_LABEL", "probe_pod"]

PROBE_LABEL = "kspec.dev/probe"
DIGEST = "@sha256:" + "0" * 64
_FALLBACK_REGISTRY = "registry.k8s.io"
_OUTSIDE_REGISTRY = "kspec-probe.invalid"


def _images(body: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    images = (body.get("workloads") or {}).get("images") or {}
    return ([str(g) for g in images.get("allowedRegistries") or []],
            [str(g) for g in images.get("blockedRegistries") or []])


def _from_glob(glob: str) -> str:
    """An image reference a registry glob matches (``registry.example.com/*`` →
    ``registry.example.com/kspec/probe``)."""
    base = glob.rstrip("*").rstrip("/").replace("*", "kspec")
    return f"{base}/kspec/probe" if base else "kspec/probe"


def allowed_image(body: Mapping[str, Any]) -> str:
    """An image the spec allows (an allowed registry, not a blocked one), pinned by digest."""
    allowed, blocked = _images(body)
    for glob in [*allowed, f"{_FALLBACK_REGISTRY}/*"]:
        image = _from_glob(glob) + DIGEST
        if not any(fnmatch.fnmatchcase(image, b) for b in blocked):
            return image
    return f"{_FALLBACK_REGISTRY}/kspec/probe{DIGEST}"


def compliant_pod(body: Mapping[str, Any], namespace: str, policy: str) -> dict[str, Any]:
    """A pod meeting every generated workload policy: the base each probe breaks once."""
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"generateName": "kspec-probe-", "namespace": namespace,
                     "labels": {"app.kubernetes.io/name": "kspec-probe", PROBE_LABEL: policy}},
        "spec": {
            "automountServiceAccountToken": False, "restartPolicy": "Never",
            "securityContext": {"runAsNonRoot": True, "runAsUser": 65534},
            "containers": [{
                "name": "probe", "image": allowed_image(body),
                "securityContext": {"runAsNonRoot": True, "allowPrivilegeEscalation": False,
                                    "privileged": False, "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]}},
                "resources": {"limits": {"cpu": "10m", "memory": "16Mi",
                                         "ephemeral-storage": "16Mi"},
                              "requests": {"cpu": "10m", "memory": "16Mi"}},
            }],
        },
    }


def _container(pod: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = pod["spec"]["containers"][0]
    return container


def _root(pod: dict[str, Any], body: Mapping[str, Any]) -> None:
    pod["spec"]["securityContext"] = {"runAsNonRoot": False, "runAsUser": 0}
    _container(pod)["securityContext"]["runAsNonRoot"] = False


def _escalation(pod: dict[str, Any], body: Mapping[str, Any]) -> None:
    _container(pod)["securityContext"]["allowPrivilegeEscalation"] = True


def _no_limits(pod: dict[str, Any], body: Mapping[str, Any]) -> None:
    _container(pod).pop("resources")


def _privileged(pod: dict[str, Any], body: Mapping[str, Any]) -> None:
    _container(pod)["securityContext"]["privileged"] = True


def _host_namespaces(pod: dict[str, Any], body: Mapping[str, Any]) -> None:
    pod["spec"].update({"hostNetwork": True, "hostPID": True, "hostIPC": True})


def _tag_only(pod: dict[str, Any], body: Mapping[str, Any]) -> None:
    image = str(_container(pod)["image"])
    _container(pod)["image"] = image.split("@", 1)[0] + ":latest"


def _bad_registry(pod: dict[str, Any], body: Mapping[str, Any]) -> None:
    blocked = _images(body)[1]
    image = (_from_glob(blocked[0]) if blocked else f"{_OUTSIDE_REGISTRY}/kspec/probe") + DIGEST
    _container(pod)["image"] = image


PROBES: Mapping[str, tuple[str, Callable[[dict[str, Any], Mapping[str, Any]], None]]] = {
    "require-run-as-non-root": ("a container running as root", _root),
    "disallow-privilege-escalation": ("allowPrivilegeEscalation: true", _escalation),
    "require-resource-limits": ("a container without resource limits", _no_limits),
    "disallow-privileged-containers": ("a privileged container", _privileged),
    "disallow-host-namespaces": ("hostNetwork, hostPID and hostIPC", _host_namespaces),
    "require-image-digests": ("an image by tag, without digest", _tag_only),
    "block-image-registries": ("an image from a registry the spec does not allow",
                               _bad_registry),
}
"""Policy name → (what the probe pod breaks, how to break the compliant pod)."""


def probe_pod(policy: str, body: Mapping[str, Any],
              namespace: str) -> tuple[str, dict[str, Any]] | None:
    """What the probe breaks and the pod breaking generated policy ``policy`` (None: kspec
    knows no pod that breaks it, e.g. a policy required by name only)."""
    entry = PROBES.get(policy)
    if entry is None:
        return None
    what, breaker = entry
    pod = copy.deepcopy(compliant_pod(body, namespace, policy))
    breaker(pod, body)
    return what, pod
