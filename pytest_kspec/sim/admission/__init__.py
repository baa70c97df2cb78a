"""Kyverno admission in the simulator: Enforce ClusterPolicies judge Pods and controllers.

When Kyverno's ClusterPolicy CRD is loaded, every create and update of a Pod or a workload
controller is reviewed against the stored ClusterPolicies the way Kyverno's validating
webhook reviews it (:mod:`.engine`); a failing rule whose effective action is ``Enforce``
refuses the request with Kyverno's message (:func:`denial_message`). An update of an object
that already failed the same rule is let through, as Kyverno's
``validate.allowExistingViolations`` (default true) does.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pytest_kspec.sim.admission.engine import Failure, effective_action, evaluate

WEBHOOK = "validate.kyverno.svc-fail"
REVIEWED_KINDS: frozenset[str] = frozenset({"Pod", "Deployment", "StatefulSet", "DaemonSet",
                                            "ReplicaSet", "Job", "CronJob"})

__all__ = ["REVIEWED_KINDS", "WEBHOOK", "Failure", "denial_message", "effective_action",
           "evaluate", "review"]


def review(policies: Iterable[Mapping[str, Any]], obj: Mapping[str, Any], *,
           operation: str, old: Mapping[str, Any] | None = None) -> list[Failure]:
    """The Enforce failures that refuse ``obj`` (empty: admitted)."""
    if obj.get("kind") not in REVIEWED_KINDS:
        return []
    out: list[Failure] = []
    for policy in policies:
        failures = [f for f in evaluate(policy, obj, operation=operation)
                    if f.action == "Enforce"]
        if failures and old is not None and operation == "UPDATE":
            before = {f.rule for f in evaluate(policy, old, operation=operation)}
            failures = [f for f in failures if f.rule not in before]
        out.extend(failures)
    return out


def denial_message(obj: Mapping[str, Any], failures: Sequence[Failure]) -> str:
    """Kyverno's admission message naming each failing policy and rule."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    who = f"{obj.get('kind')}/{ns}/{meta.get('name', '')}" if ns else \
        f"{obj.get('kind')}/{meta.get('name', '')}"
    lines = [f'admission webhook "{WEBHOOK}" denied the request: ', "",
             f"resource {who} was blocked due to the following policies ", ""]
    by_policy: dict[str, list[Failure]] = {}
    for failure in failures:
        by_policy.setdefault(failure.policy, []).append(failure)
    for policy, items in by_policy.items():
        lines.append(f"{policy}:")
        lines += [f"  {f.rule}: '{f.message}'" for f in items]
    return "\n".join(lines)
