"""Image rules: allowed/blocked registries (globs), digest pinning, signature enforcement.

What an image reference, a registry entry and a digest mean is defined once, in
:mod:`pytest_kspec.desired.imagerefs`, and shared with the generated Kyverno policy: short
names resolve to Kyverno's ``defaultRegistry`` (``docker.io`` unless the cluster's Kyverno
ConfigMap says otherwise, see ``ComplianceOptions.default_registry``), Docker Hub's aliases and
``library/`` are folded, a bare host or ``host/path`` covers everything under it, and a glob's
host part is matched against the host alone.

``requireSignatures`` cannot be verified from the API alone: it is satisfied for an image when a
Kyverno ClusterPolicy (kyverno.io/v1) with a ``verifyImages`` rule in Enforce mode lists an
``imageReferences`` pattern matching it (Kyverno wildcards: ``*`` matches anything). The
policy's match/exclude blocks are not evaluated.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any

from pytest_kspec.desired import CheckRef, imagerefs

from . import podspecs
from .base import (
    CheckResult,
    ComplianceOptions,
    Snapshot,
    Violation,
    cluster_violation,
    iter_containers,
    name_of,
    result,
    violation,
)

ImageRef = imagerefs.ImageRef
matches_registry = imagerefs.matches_registry
parse_image = imagerefs.parse_image

RESOURCES: Mapping[str, list[tuple[str, str]]] = {
    "workloads.images.allowedRegistries": podspecs.POD_RESOURCES,
    "workloads.images.blockedRegistries": podspecs.POD_RESOURCES,
    "workloads.images.requireDigests": podspecs.POD_RESOURCES,
    "workloads.images.requireSignatures": [*podspecs.POD_RESOURCES,
                                           ("kyverno.io/v1", "ClusterPolicy")],
}

__all__ = ["ImageRef", "check_digests", "check_registries", "check_signatures",
           "matches_registry", "parse_image"]


def _image_label(label: str, image: str, ref: ImageRef) -> str:
    return f'{label} image "{image}" ({ref.name})'


def check_registries(ref: CheckRef, snapshot: Snapshot,
                     options: ComplianceOptions) -> CheckResult:
    """Containers whose image is outside ``allowedRegistries`` / inside ``blockedRegistries``."""
    allowed = ref.kind.endswith("allowedRegistries")
    key = "allowedRegistries" if allowed else "blockedRegistries"
    patterns = [str(p) for p in ref.rule.get(key) or []]
    judged = podspecs.units(snapshot, options)
    violations: list[Violation] = []
    for unit in judged:
        for label, container in iter_containers(unit.pod):
            image = str(container.get("image", ""))
            parsed = parse_image(image, options.default_registry)
            hit = imagerefs.matching_entry(parsed, patterns)
            if allowed and hit is None:
                msg = f"{_image_label(label, image, parsed)} is not from an allowed registry"
            elif not allowed and hit is not None:
                msg = f'{_image_label(label, image, parsed)} matches blocked registry "{hit}"'
            else:
                continue
            violations.append(violation(unit.obj, msg,
                                        container=str(container.get("name", "")),
                                        owner=unit.owner))
    return result(ref, podspecs.collapse(judged, violations), len(judged), podspecs.NOUN)


def check_digests(ref: CheckRef, snapshot: Snapshot, options: ComplianceOptions) -> CheckResult:
    """Containers whose image is not pinned by ``@sha256:`` and 64 hex digits."""
    judged = podspecs.units(snapshot, options)
    violations: list[Violation] = []
    for unit in judged:
        for label, container in iter_containers(unit.pod):
            image = str(container.get("image", ""))
            if not imagerefs.is_pinned(image):
                violations.append(violation(
                    unit.obj, f'{label} image "{image}" is not pinned by digest',
                    container=str(container.get("name", "")), owner=unit.owner))
    return result(ref, podspecs.collapse(judged, violations), len(judged), podspecs.NOUN)


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
    judged = podspecs.units(snapshot, options)
    if not patterns:
        names = ", ".join(sorted(name_of(p) for p in policies)) or "none"
        missing = cluster_violation("ClusterPolicy/*",
                                    "no verifyImages policy enforces signatures",
                                    kind="ClusterPolicy")
        return CheckResult(ref=ref, violations=(missing,), evaluated=len(judged),
                           summary="no Kyverno verifyImages policy in Enforce mode "
                                   f"(ClusterPolicies: {names})")
    violations: list[Violation] = []
    for unit in judged:
        for label, container in iter_containers(unit.pod):
            image = str(container.get("image", ""))
            if not _signed(image, patterns):
                violations.append(violation(
                    unit.obj, f'{label} image "{image}" is not covered by an enforcing '
                              "verifyImages policy",
                    container=str(container.get("name", "")), owner=unit.owner))
    return result(ref, podspecs.collapse(judged, violations), len(judged), podspecs.NOUN)

