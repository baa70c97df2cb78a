"""Which Kyverno a generated policy is written for: where the Enforce action goes.

Kyverno 1.13 added the rule-level ``validate.failureAction`` (and deprecated the spec-level
``validationFailureAction``). On 1.12 the rule-level field is unknown: the API server prunes
it, and ``kubectl apply``'s strict field validation refuses the policy. So:

- Kyverno 1.12 (and older): the spec-level action only;
- Kyverno 1.13 and later: the rule-level action only;
- unknown version: both (valid on 1.13+, where the rule-level field wins).

The installed version is read from the cluster (:func:`installed_version`): the
``clusterpolicies.kyverno.io`` CRD's schema (does ``validate.failureAction`` exist?), else its
``app.kubernetes.io/version`` label.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

RULE_LEVEL_SINCE = (1, 13)
POLICY_CRD = "clusterpolicies.kyverno.io"
_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.\d+)?(?:[-+].*)?$")


def parse_version(text: str | None) -> tuple[int, int] | None:
    """``"1.12"``, ``"v1.13.4"`` → ``(1, 12)`` / ``(1, 13)``; None when it is not one."""
    match = _VERSION.match(str(text or "").strip())
    return (int(match.group(1)), int(match.group(2))) if match else None


def for_kyverno(policy: Mapping[str, Any], version: tuple[int, int] | None) -> dict[str, Any]:
    """A copy of a generated policy with the Enforce action where ``version`` reads it."""
    out = copy.deepcopy(dict(policy))
    if version is None:
        return out
    spec = out.get("spec") or {}
    rules = spec.get("rules") or []
    if version < RULE_LEVEL_SINCE:
        actions = {str((r.get("validate") or {}).pop("failureAction", "")) for r in rules
                   if isinstance(r.get("validate"), dict)} - {""}
        if actions and "validationFailureAction" not in spec:
            spec["validationFailureAction"] = "Enforce" if "Enforce" in actions else "Audit"
    else:
        action = spec.pop("validationFailureAction", None)
        for rule in rules:
            validate = rule.get("validate")
            if isinstance(validate, dict) and action is not None:
                validate.setdefault("failureAction", action)
    return out


def _storage_schema(crd: Mapping[str, Any]) -> Mapping[str, Any]:
    versions = (crd.get("spec") or {}).get("versions") or []
    chosen = next((v for v in versions if v.get("storage")), versions[0] if versions else {})
    return ((chosen.get("schema") or {}).get("openAPIV3Schema")) or {}


def _props(schema: Any, *path: str) -> Mapping[str, Any] | None:
    node = schema
    for step in path:
        if not isinstance(node, Mapping):
            return None
        node = (node.get("items") if step == "[]" else (node.get("properties") or {}).get(step))
    return node if isinstance(node, Mapping) else None


def installed_version(crd: Mapping[str, Any] | None) -> tuple[int, int] | None:
    """The Kyverno generation the ClusterPolicy CRD belongs to, as far as it tells."""
    if not crd:
        return None
    validate = _props(_storage_schema(crd), "spec", "rules", "[]", "validate")
    if validate is not None and validate.get("properties"):
        return (1, 13) if "failureAction" in validate["properties"] else (1, 12)
    labels = (crd.get("metadata") or {}).get("labels") or {}
    version = parse_version(labels.get("app.kubernetes.io/version"))
    return version if version is not None and version[0] == 1 else None
