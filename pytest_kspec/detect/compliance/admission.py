"""Admission checks: required webhook configurations by name pattern; Kyverno policy count.

``admission.required`` counts ValidatingWebhookConfigurations or MutatingWebhookConfigurations
(admissionregistration.k8s.io/v1) whose name matches ``namePattern`` with ``re.search`` (an
unanchored match, like the original tool's Go ``MatchString``: write ``^...$`` to anchor).
Fewer than ``minCount`` (default 1) gives one violation with the count and the names found.

``admission.policies.minCount`` counts Kyverno ClusterPolicies (kyverno.io/v1). When the API
answers 404 for them (Kyverno's CRD is not installed) that counts as zero policies, with a
message saying so; any other API error propagates.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from pytest_kspec.desired import CheckRef
from pytest_kspec.errors import ApiError

from .base import (
    CheckResult,
    ComplianceError,
    ComplianceOptions,
    Snapshot,
    cluster_violation,
    name_of,
)

ADMISSION_API = "admissionregistration.k8s.io/v1"
WEBHOOK_KINDS: frozenset[str] = frozenset({"ValidatingWebhookConfiguration",
                                           "MutatingWebhookConfiguration"})

RESOURCES: Mapping[str, list[tuple[str, str]]] = {
    "admission.policies.minCount": [("kyverno.io/v1", "ClusterPolicy")],
}


def required_resources(ref: CheckRef) -> list[tuple[str, str]]:
    """The webhook configuration kind an ``admission.required`` rule counts."""
    kind = str(ref.rule.get("type", ""))
    return [(ADMISSION_API, kind)] if kind in WEBHOOK_KINDS else []


def _min_count(ref: CheckRef) -> int:
    raw = ref.rule.get("minCount", 1)
    try:
        count = int(raw if raw is not None else 1)
    except (TypeError, ValueError):
        raise ComplianceError(f"{ref.spec_path}.minCount: {raw!r} is not a whole number") from None
    if count < 0:
        raise ComplianceError(f"{ref.spec_path}.minCount: {count} must not be negative")
    return count


def check_required(ref: CheckRef, snapshot: Snapshot, options: ComplianceOptions) -> CheckResult:
    """At least ``minCount`` webhook configurations of ``type`` match ``namePattern``."""
    kind = str(ref.rule.get("type", ""))
    if kind not in WEBHOOK_KINDS:
        raise ComplianceError(f"{ref.spec_path}.type: {kind!r} is not one of "
                              f"{', '.join(sorted(WEBHOOK_KINDS))}")
    pattern = str(ref.rule.get("namePattern", ""))
    try:
        regex = re.compile(pattern)
    except re.error as err:
        raise ComplianceError(f"{ref.spec_path}.namePattern: {pattern!r} is not a valid "
                              f"regular expression ({err})") from None
    need = _min_count(ref)
    configs = snapshot.list(ADMISSION_API, kind)
    found = sorted(name_of(c) for c in configs if regex.search(name_of(c)))
    names = ", ".join(found) if found else "none"
    text = f"found {len(found)} matching /{pattern}/, need {need}: {names}"
    if len(found) >= need:
        return CheckResult(ref=ref, violations=(), evaluated=len(configs),
                           summary=f"{kind}: {text}")
    missing = cluster_violation(f"{kind}/{pattern}", text, kind=kind)
    return CheckResult(ref=ref, violations=(missing,), evaluated=len(configs),
                       summary=f"{kind}: {text}")


def check_policy_count(ref: CheckRef, snapshot: Snapshot,
                       options: ComplianceOptions) -> CheckResult:
    """At least ``minCount`` Kyverno ClusterPolicies exist (none when Kyverno is absent)."""
    need = _min_count(ref)
    try:
        policies = snapshot.list("kyverno.io/v1", "ClusterPolicy")
    except ApiError as err:
        if err.status != 404:
            raise
        text = f"Kyverno's ClusterPolicy CRD is not installed (found 0, need {need})"
        if need == 0:
            return CheckResult(ref=ref, violations=(), evaluated=0, summary=text)
        missing = cluster_violation("ClusterPolicy/*", text, kind="ClusterPolicy")
        return CheckResult(ref=ref, violations=(missing,), evaluated=0, summary=text)
    names = sorted(name_of(p) for p in policies)
    text = (f"found {len(names)} Kyverno ClusterPolicies, need {need}: "
            f"{', '.join(names) if names else 'none'}")
    if len(names) >= need:
        return CheckResult(ref=ref, violations=(), evaluated=len(names), summary=text)
    missing = cluster_violation("ClusterPolicy/*", text, kind="ClusterPolicy")
    return CheckResult(ref=ref, violations=(missing,), evaluated=len(names), summary=text)
