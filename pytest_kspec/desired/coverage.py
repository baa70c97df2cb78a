"""Admission coverage: which workload rules of a spec an admission policy backs.

kspec states each workload rule twice: as a compliance check (audit of what runs) and, where
Kyverno can enforce it in kspec's policy catalog, as a generated ClusterPolicy (refusal at
admission). Rules without a policy (``resources.requests.*``, ``readOnlyRootFilesystem``,
``images.requireSignatures``, ...) are *audit-only*: a cluster admits what breaks them and
only the next audit reports it. ``kspec policies`` and the run's summary name them, and the
JSON report carries ``kspec.coverage``.

Only workload rules (``spec.workloads``) count: the other sections describe cluster state
(namespace labels, NetworkPolicies, RBAC, webhooks) that no Pod admission policy could back.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pytest_kspec.desired import catalog

_IMAGE_POLICIES: Mapping[str, str | None] = {
    "workloads.images.allowedRegistries": "block-image-registries",
    "workloads.images.blockedRegistries": "block-image-registries",
    "workloads.images.requireDigests": "require-image-digests",
    "workloads.images.requireSignatures": None,
}


@dataclass(frozen=True)
class RuleCoverage:
    """One workload rule: its check id, where it stands in the spec, and the generated
    policy that enforces it at admission (None: audit-only)."""

    check_id: str
    spec_path: str
    title: str
    policy: str | None

    @property
    def backed(self) -> bool:
        return self.policy is not None


def _policy_for(ref: catalog.CheckRef) -> str | None:
    if ref.kind in _IMAGE_POLICIES:
        return _IMAGE_POLICIES[ref.kind]
    which = ref.kind.rsplit(".", 1)[-1]  # required / forbidden
    alone = {"workloads": {"containers": {which: [dict(ref.rule)]}}}
    names = catalog.generated_policy_names(alone)
    return names[0] if names else None


def rule_coverage(body: Mapping[str, Any]) -> list[RuleCoverage]:
    """Every workload rule of the ``spec`` section ``body`` with its backing policy."""
    out: list[RuleCoverage] = []
    for ref in catalog.enumerate_checks(body):
        if ref.type != catalog.COMPLIANCE or not ref.kind.startswith("workloads."):
            continue
        out.append(RuleCoverage(ref.id, ref.spec_path, ref.title, _policy_for(ref)))
    return out


def audit_only(body: Mapping[str, Any]) -> list[RuleCoverage]:
    """The workload rules no generated admission policy backs."""
    return [r for r in rule_coverage(body) if not r.backed]


def coverage_json(body: Mapping[str, Any]) -> dict[str, Any]:
    """``kspec.coverage`` of the JSON report: counts and every rule's backing."""
    rules = rule_coverage(body)
    return {
        "backed": sum(1 for r in rules if r.backed),
        "rules": len(rules),
        "audit_only": [r.check_id for r in rules if not r.backed],
        "by_rule": [{"check": r.check_id, "spec_path": r.spec_path, "policy": r.policy}
                    for r in rules],
    }


def coverage_lines(body: Mapping[str, Any]) -> list[str]:
    """Human lines: ``N of M workload rules are enforced at admission`` and the audit-only
    ones, each with its spec path."""
    rules = rule_coverage(body)
    if not rules:
        return []
    backed = sum(1 for r in rules if r.backed)
    lines = [f"admission coverage: {backed} of {len(rules)} workload rules are enforced at "
             "admission by a generated policy"]
    lines += [f"  audit-only: {r.spec_path} ({r.title}): no admission policy, reported by "
              f"compliance::{r.check_id}" for r in rules if not r.backed]
    return lines
