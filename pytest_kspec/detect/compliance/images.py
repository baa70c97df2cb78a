"""Image rules: allowed/blocked registries (globs), digest pinning, signature enforcement.

Images are normalized the way the container runtime resolves them before matching: ``nginx``
→ ``docker.io/library/nginx:latest``, ``user/app`` → ``docker.io/user/app``; the first path
segment is a registry host only when it contains ``.`` or ``:`` or is ``localhost``;
``index.docker.io`` and ``registry-1.docker.io`` read ``docker.io``. Tags and digests are not
part of the match.

Registry patterns are globs (``fnmatch``, case-sensitive except the host) split at the first
``/``: the part before is matched against the registry host only, so ``*`` there never
crosses a ``/`` (``*.example.com/*`` cannot match ``evil.io/x.example.com/app``); the part after
is matched against the repository path, where ``*`` does cross ``/``
(``registry.example.com/*`` covers ``registry.example.com/team/app``). A pattern also covers
everything under it: ``gcr.io/project`` matches ``gcr.io/project/app`` (on Docker Hub a
single name means both ``docker.io/nginx`` → ``library/nginx`` and an organisation), and a bare host
(``docker.io``, ``*.azurecr.io``) matches every image on that registry. ``docker.io/*`` matches
``nginx``.

``requireSignatures`` cannot be verified from the API alone: it is satisfied for an image when a
Kyverno ClusterPolicy (kyverno.io/v1) with a ``verifyImages`` rule in Enforce mode lists an
``imageReferences`` pattern matching it (Kyverno wildcards: ``*`` matches anything). The
policy's match/exclude blocks are not evaluated.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from pytest_kspec.desired import CheckRef

from .base import (
    CheckResult,
    ComplianceOptions,
    OwnerResolver,
    Snapshot,
    Violation,
    cluster_violation,
    in_scope,
    iter_containers,
    name_of,
    result,
    violation,
)

RESOURCES: Mapping[str, list[tuple[str, str]]] = {
    "workloads.images.allowedRegistries": [("v1", "Pod")],
    "workloads.images.blockedRegistries": [("v1", "Pod")],
    "workloads.images.requireDigests": [("v1", "Pod")],
    "workloads.images.requireSignatures": [("v1", "Pod"), ("kyverno.io/v1", "ClusterPolicy")],
}

DOCKER_HUB = "docker.io"
_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class ImageRef:
    """A parsed image reference: registry host, repository path, tag and digest."""

    host: str
    path: str
    tag: str
    digest: str

    @property
    def name(self) -> str:
        """``host/path`` without tag or digest (what registry patterns match)."""
        return f"{self.host}/{self.path}"

    @property
    def normalized(self) -> str:
        """The full reference, ``:latest`` added when neither tag nor digest is given."""
        tag = f":{self.tag}" if self.tag else ("" if self.digest else ":latest")
        digest = f"@{self.digest}" if self.digest else ""
        return f"{self.name}{tag}{digest}"


def parse_image(image: str) -> ImageRef:
    """Normalize an image reference as the container runtime resolves it."""
    rest, _, digest = image.strip().partition("@")
    first, sep, remainder = rest.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        host, path = first.lower(), remainder
    else:
        host, path = DOCKER_HUB, rest
    if host in _HUB_ALIASES:
        host = DOCKER_HUB
        if "/" not in path:
            path = f"library/{path}"
    tag = ""
    last_slash = path.rfind("/")
    colon = path.rfind(":")
    if colon > last_slash:
        path, tag = path[:colon], path[colon + 1:]
    return ImageRef(host=host, path=path, tag=tag, digest=digest)


def matches_registry(image: ImageRef, pattern: str) -> bool:
    """True when ``image`` falls under the registry glob ``pattern`` (see module docs)."""
    host_pat, sep, path_pat = pattern.strip().partition("/")
    host_pat = host_pat.lower()
    if host_pat in _HUB_ALIASES:
        host_pat = DOCKER_HUB
    if not fnmatchcase(image.host, host_pat):
        return False
    path_pat = path_pat.rstrip("/")
    if not sep or not path_pat:
        return True
    candidates = [path_pat]
    if image.host == DOCKER_HUB and "/" not in path_pat and not any(c in path_pat for c in "*?["):
        candidates.append(f"library/{path_pat}")  # docker.io/nginx means library/nginx too
    return any(fnmatchcase(image.path, p) or fnmatchcase(image.path, f"{p}/*")
               for p in candidates)


def _image_label(label: str, image: str, ref: ImageRef) -> str:
    return f'{label} image "{image}" ({ref.name})'


def check_registries(ref: CheckRef, snapshot: Snapshot,
                     options: ComplianceOptions) -> CheckResult:
    """Containers whose image is outside ``allowedRegistries`` / inside ``blockedRegistries``."""
    allowed = ref.kind.endswith("allowedRegistries")
    key = "allowedRegistries" if allowed else "blockedRegistries"
    patterns = [str(p) for p in ref.rule.get(key) or []]
    pods = in_scope(snapshot.list("v1", "Pod"), options)
    owners = OwnerResolver(snapshot)
    violations: list[Violation] = []
    for pod in pods:
        for label, container in iter_containers(pod):
            image = str(container.get("image", ""))
            parsed = parse_image(image)
            hit = next((p for p in patterns if matches_registry(parsed, p)), None)
            if allowed and hit is None:
                msg = f"{_image_label(label, image, parsed)} is not from an allowed registry"
            elif not allowed and hit is not None:
                msg = f'{_image_label(label, image, parsed)} matches blocked registry "{hit}"'
            else:
                continue
            violations.append(violation(pod, msg, container=str(container.get("name", "")),
                                        owner=owners.owner(pod)))
    return result(ref, violations, len(pods), "pods")


def check_digests(ref: CheckRef, snapshot: Snapshot, options: ComplianceOptions) -> CheckResult:
    """Containers whose image is not pinned by ``@sha256:<64 hex>``."""
    pods = in_scope(snapshot.list("v1", "Pod"), options)
    owners = OwnerResolver(snapshot)
    violations: list[Violation] = []
    for pod in pods:
        for label, container in iter_containers(pod):
            image = str(container.get("image", ""))
            if not _DIGEST.search(image.strip()):
                violations.append(violation(
                    pod, f'{label} image "{image}" is not pinned by digest',
                    container=str(container.get("name", "")), owner=owners.owner(pod)))
    return result(ref, violations, len(pods), "pods")


def signature_patterns(policies: list[dict[str, Any]]) -> list[str]:
    """``imageReferences`` of every Enforce-mode ``verifyImages`` entry in the policies."""
    out: list[str] = []
    for policy in policies:
        spec = policy.get("spec") or {}
        spec_action = str(spec.get("validationFailureAction") or "Audit")
        for rule in spec.get("rules") or []:
            for entry in rule.get("verifyImages") or []:
                action = str(entry.get("failureAction") or spec_action)
                if action.lower() != "enforce":
                    continue
                refs = entry.get("imageReferences") or (
                    [entry["image"]] if entry.get("image") else [])
                out.extend(str(r) for r in refs)
    return out


def _signed(image: str, patterns: list[str]) -> bool:
    parsed = parse_image(image)
    candidates = (image.strip(), parsed.normalized, parsed.name)
    return any(fnmatchcase(c, p) for p in patterns for c in candidates)


def check_signatures(ref: CheckRef, snapshot: Snapshot,
                     options: ComplianceOptions) -> CheckResult:
    """Containers whose image no Enforce-mode Kyverno ``verifyImages`` rule covers."""
    policies = snapshot.list("kyverno.io/v1", "ClusterPolicy")
    patterns = signature_patterns(policies)
    pods = in_scope(snapshot.list("v1", "Pod"), options)
    if not patterns:
        names = ", ".join(sorted(name_of(p) for p in policies)) or "none"
        missing = cluster_violation("ClusterPolicy/*",
                                    "no verifyImages policy enforces signatures",
                                    kind="ClusterPolicy")
        return CheckResult(ref=ref, violations=(missing,), evaluated=len(pods),
                           summary="no Kyverno verifyImages policy in Enforce mode "
                                   f"(ClusterPolicies: {names})")
    owners = OwnerResolver(snapshot)
    violations: list[Violation] = []
    for pod in pods:
        for label, container in iter_containers(pod):
            image = str(container.get("image", ""))
            if not _signed(image, patterns):
                violations.append(violation(
                    pod, f'{label} image "{image}" is not covered by an enforcing '
                         "verifyImages policy",
                    container=str(container.get("name", "")), owner=owners.owner(pod)))
    return result(ref, violations, len(pods), "pods")

