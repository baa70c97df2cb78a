"""Built-in compliance checks: evaluate one catalog CheckRef against a cluster snapshot.

``evaluate(ref, snapshot)`` picks the evaluator by ``ref.kind``. API failures
(:class:`~pytest_kspec.errors.ApiError`) propagate so the caller reports an error, never a
pass; an unusable rule raises :class:`ComplianceError`.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from pytest_kspec.desired import CheckRef

from . import admission, images, network, observability, podsecurity, rbac, workloads
from .base import (
    OWNER_RESOURCES,
    SYSTEM_NAMESPACES,
    CheckResult,
    ComplianceError,
    ComplianceOptions,
    Snapshot,
    Violation,
)
from .images import ImageRef, parse_image

Evaluator = Callable[[CheckRef, Snapshot, ComplianceOptions], CheckResult]

EVALUATORS: Mapping[str, Evaluator] = {
    "podsecurity.level": podsecurity.check_level,
    "network.defaultDeny": network.check_default_deny,
    "network.requiredPolicy": network.check_required_policy,
    "network.allowedServiceTypes": network.check_service_types,
    "network.disallowedPorts": network.check_disallowed_ports,
    "workloads.containers.required": workloads.check_containers,
    "workloads.containers.forbidden": workloads.check_containers,
    "workloads.images.allowedRegistries": images.check_registries,
    "workloads.images.blockedRegistries": images.check_registries,
    "workloads.images.requireDigests": images.check_digests,
    "workloads.images.requireSignatures": images.check_signatures,
    "rbac.forbiddenRule": rbac.check_forbidden,
    "rbac.minimumRule": rbac.check_minimum,
    "admission.required": admission.check_required,
    "admission.policies.minCount": admission.check_policy_count,
    "observability.metrics": observability.check_metrics,
    "observability.auditLog": observability.check_audit_log,
}

_RESOURCES: dict[str, list[tuple[str, str]]] = {}
for _module in (podsecurity, network, workloads, images, rbac, admission, observability):
    _RESOURCES.update(_module.RESOURCES)


def supports(kind: str) -> bool:
    """True when ``kind`` (a CheckRef's ``kind``) has a compliance evaluator."""
    return kind in EVALUATORS


def resources_needed(ref: CheckRef) -> list[tuple[str, str]]:
    """The ``(api_version, kind)`` pairs the check lists (owner lookups are extra and
    best-effort: see ``OWNER_RESOURCES``)."""
    if ref.kind == "admission.required":
        return admission.required_resources(ref)
    if ref.kind not in _RESOURCES:
        raise ComplianceError(f"{ref.spec_path}: no compliance check for kind {ref.kind!r}")
    return list(_RESOURCES[ref.kind])


def evaluate(ref: CheckRef, snapshot: Snapshot,
             options: ComplianceOptions | None = None) -> CheckResult:
    """Run the check ``ref`` against ``snapshot``; ApiError from the snapshot propagates."""
    evaluator = EVALUATORS.get(ref.kind)
    if evaluator is None:
        raise ComplianceError(f"{ref.spec_path}: no compliance check for kind {ref.kind!r}")
    return evaluator(ref, snapshot, options or ComplianceOptions())


__all__ = [
    "EVALUATORS",
    "OWNER_RESOURCES",
    "SYSTEM_NAMESPACES",
    "CheckResult",
    "ComplianceError",
    "ComplianceOptions",
    "ImageRef",
    "Snapshot",
    "Violation",
    "evaluate",
    "parse_image",
    "resources_needed",
    "supports",
]
