"""Pod Security Standards: namespaces carry pod-security.kubernetes.io/<mode> labels strict enough.

Rule (``podsecurity.level``): ``{mode, level, exemptions}``. Every namespace outside the
system namespaces must carry ``pod-security.kubernetes.io/<mode>`` with a level *at least as
strict* as required (privileged < baseline < restricted). An exemption for a namespace
replaces the required level for that namespace: it must then carry at least the exemption's
level (a stricter label still complies, as it does for the spec-wide level). Exemptions also
bring a system namespace into the check. When the required level is ``privileged`` every
namespace complies, labelled or not: no label is less strict than privileged.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_kspec.desired import CheckRef

from .base import (
    CheckResult,
    ComplianceError,
    ComplianceOptions,
    Snapshot,
    Violation,
    labels_of,
    name_of,
    result,
    violation,
)

LEVELS: Mapping[str, int] = {"privileged": 0, "baseline": 1, "restricted": 2}
LABEL_PREFIX = "pod-security.kubernetes.io/"

RESOURCES: Mapping[str, list[tuple[str, str]]] = {
    "podsecurity.level": [("v1", "Namespace")],
}


def check_level(ref: CheckRef, snapshot: Snapshot, options: ComplianceOptions) -> CheckResult:
    """Namespaces whose ``pod-security.kubernetes.io/<mode>`` label is missing or too weak."""
    mode = str(ref.rule.get("mode", ""))
    required = _level(ref.rule.get("level"), f"{ref.spec_path}")
    exemptions: dict[str, str] = {}
    for i, exemption in enumerate(ref.rule.get("exemptions") or []):
        exempt_ns = str(exemption.get("namespace", ""))
        exemptions[exempt_ns] = _level(exemption.get("level"),
                                f"spec.podSecurity.exemptions[{i}].level")
    label = f"{LABEL_PREFIX}{mode}"
    violations: list[Violation] = []
    evaluated = 0
    for ns in snapshot.list("v1", "Namespace"):
        name = name_of(ns)
        if options.skips(name) and name not in exemptions:
            continue
        evaluated += 1
        want = exemptions.get(name, required)
        if LEVELS[want] == 0:
            continue
        have = labels_of(ns).get(label)
        if have is None:
            violations.append(violation(ns, f"missing label {label} (want {want})"))
        elif have not in LEVELS:
            violations.append(violation(ns, f"label {label}={have} is not a valid level "
                                            f"(want {want})"))
        elif LEVELS[have] < LEVELS[want]:
            violations.append(violation(ns, f"label {label}={have} is weaker than {want}"))
    return result(ref, violations, evaluated, "namespaces")


def _level(value: Any, where: str) -> str:
    text = str(value)
    if text not in LEVELS:
        raise ComplianceError(
            f"{where}: pod security level {text!r} is not one of privileged, baseline, "
            "restricted")
    return text
