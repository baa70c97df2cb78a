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

import re
from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any

from pytest_kspec.desired import CheckRef, imagerefs

from . import podspecs
from .base import (
    CONTAINER_KINDS,
    CheckResult,
    ComplianceOptions,
    Snapshot,
    Violation,
    cluster_violation,
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

__all__ = ["DigestJudge", "ImageRef", "RegistryJudge", "SignatureJudge", "check_digests",
           "check_registries", "check_signatures", "matches_registry", "parse_image"]


class _Images:
    """What every image check does per unit: each container's image, parsed once per
    distinct image string (bounded, so a cluster of unique digests stays flat)."""

    def __init__(self, ref: CheckRef, options: ComplianceOptions) -> None:
        self.ref = ref
        self.options = options
        self._verdicts: dict[str, str | None] = {}

    def judge(self, unit: podspecs.Unit) -> list[Violation] | None:
        spec = unit.pod.get("spec") or {}
        found: list[Violation] = []
        for field_name, word in CONTAINER_KINDS:
            for container in spec.get(field_name) or ():
                image = str(container.get("image", ""))
                problem = self._verdicts.get(image, _UNSEEN)
                if problem is _UNSEEN:
                    if len(self._verdicts) > 4096:
                        self._verdicts.clear()
                    problem = self._verdicts[image] = self.problem(image)
                if problem is not None:
                    name = container.get("name", "")
                    found.append(violation(unit.obj, f'{word} "{name}" {problem}',
                                           container=str(name), owner=unit.owner))
        return found

    def problem(self, image: str) -> str | None:
        """What is wrong with ``image`` (the message after the container's label)."""
        raise NotImplementedError

    def finish(self, violations: list[Violation], evaluated: int) -> CheckResult:
        return result(self.ref, violations, evaluated, podspecs.NOUN)


_UNSEEN: Any = object()


class RegistryJudge(_Images):
    """``allowedRegistries`` / ``blockedRegistries``, patterns compiled once."""

    def __init__(self, ref: CheckRef, options: ComplianceOptions) -> None:
        super().__init__(ref, options)
        self.allowed = ref.kind.endswith("allowedRegistries")
        key = "allowedRegistries" if self.allowed else "blockedRegistries"
        self.patterns = [(p, re.compile(imagerefs.entry_regex(p)))
                         for p in (str(p) for p in ref.rule.get(key) or [])]

    def problem(self, image: str) -> str | None:
        parsed = parse_image(image, self.options.default_registry)
        name = parsed.name
        hit = next((p for p, regex in self.patterns if regex.fullmatch(name)), None)
        if self.allowed and hit is None:
            return f'image "{image}" ({name}) is not from an allowed registry'
        if not self.allowed and hit is not None:
            return f'image "{image}" ({name}) matches blocked registry "{hit}"'
        return None


class DigestJudge(_Images):
    """``requireDigests``: ``@sha256:`` and 64 hex digits."""

    def problem(self, image: str) -> str | None:
        return None if imagerefs.is_pinned(image) else f'image "{image}" is not pinned by digest'


class SignatureJudge(_Images):
    """``requireSignatures``: covered by an Enforce-mode ``verifyImages`` rule of
    ``policies`` (the live ClusterPolicies, read once)."""

    def __init__(self, ref: CheckRef, options: ComplianceOptions,
                 policies: list[dict[str, Any]]) -> None:
        super().__init__(ref, options)
        self.patterns = signature_patterns(policies)
        self.policy_names = sorted(name_of(p) for p in policies)

    def judge(self, unit: podspecs.Unit) -> list[Violation] | None:
        return super().judge(unit) if self.patterns else []  # counted either way

    def problem(self, image: str) -> str | None:
        if _signed(image, self.patterns):
            return None
        return f'image "{image}" is not covered by an enforcing verifyImages policy'

    def finish(self, violations: list[Violation], evaluated: int) -> CheckResult:
        if self.patterns:
            return super().finish(violations, evaluated)
        names = ", ".join(self.policy_names) or "none"
        missing = cluster_violation("ClusterPolicy/*",
                                    "no verifyImages policy enforces signatures",
                                    kind="ClusterPolicy")
        return CheckResult(ref=self.ref, violations=(missing,), evaluated=evaluated,
                           summary="no Kyverno verifyImages policy in Enforce mode "
                                   f"(ClusterPolicies: {names})")


def check_registries(ref: CheckRef, snapshot: Snapshot,
                     options: ComplianceOptions) -> CheckResult:
    """Containers whose image is outside ``allowedRegistries`` / inside ``blockedRegistries``."""
    return podspecs.judge_units(RegistryJudge(ref, options), podspecs.units(snapshot, options))


def check_digests(ref: CheckRef, snapshot: Snapshot, options: ComplianceOptions) -> CheckResult:
    """Containers whose image is not pinned by ``@sha256:`` and 64 hex digits."""
    return podspecs.judge_units(DigestJudge(ref, options), podspecs.units(snapshot, options))


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
    judge = SignatureJudge(ref, options, snapshot.list("kyverno.io/v1", "ClusterPolicy"))
    return podspecs.judge_units(judge, podspecs.units(snapshot, options))
