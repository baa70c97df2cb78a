"""Who changed a field: read ``metadata.managedFields`` so drift names a manager and a time.

``managedFields`` lists, per field manager (``kubectl-edit``, ``kubectl-client-side-apply``,
``argocd-controller``...), the fields it last set, as a FieldsV1 tree (``f:<field>``,
``k:{json}`` for list items by key, ``v:<json>`` for set values, ``i:<n>`` for indices,
``.`` for the item itself). Lists without merge keys are atomic: in a Kyverno policy
``spec.rules`` is owned as a whole, so the owner of ``f:spec.f:rules`` owns every rule change.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pytest_kspec.detect.normalize import parse_path


def managed_by(live: Mapping[str, Any], path: str) -> tuple[str, str] | None:
    """The most recent ``(manager, time)`` whose managed fields cover ``path``, or None.

    ``path`` is a drift path (``spec.rules[check-privileged].validate.failureAction``).
    Effective values are traced back to the raw field that set them: a rule's effective
    action comes from ``spec.validationFailureAction`` when the rule sets none itself.
    A removed field is covered only through an atomic ancestor (``f:rules``); when no
    manager covers the path the answer is None rather than a guess.
    """
    meta = live.get("metadata") or {}
    segments = _raw_segments(live, parse_path(path))
    best: tuple[str, str] | None = None
    for entry in meta.get("managedFields") or []:
        if not isinstance(entry, Mapping) or entry.get("subresource"):
            continue
        fields = entry.get("fieldsV1")
        if not isinstance(fields, Mapping) or not _covers(fields, segments):
            continue
        manager = str(entry.get("manager") or "unknown")
        time = str(entry.get("time") or "")
        if best is None or time > best[1]:
            best = (manager, time)
    return best


def _raw_segments(live: Mapping[str, Any], segs: list[str | int]) -> list[str | int]:
    """Map a normalized (effective) path onto the raw field of the live object."""
    spec = live.get("spec") or {}
    if len(segs) >= 5 and segs[:2] == ["spec", "rules"] and segs[3] == "validate":
        field = segs[4]
        raw_rule = next((r for r in spec.get("rules") or []
                         if isinstance(r, Mapping) and r.get("name") == segs[2]), {})
        validate = raw_rule.get("validate") or {}
        if field == "failureAction" and validate.get("failureAction") is None:
            return ["spec", "validationFailureAction"]
        if field == "failureActionOverrides" and not validate.get("failureActionOverrides"):
            return ["spec", "validationFailureActionOverrides"]
    if len(segs) == 2 and segs[0] == "spec":
        webhook = spec.get("webhookConfiguration") or {}
        if segs[1] == "failurePolicy" and webhook.get("failurePolicy") is not None:
            return ["spec", "webhookConfiguration", "failurePolicy"]
        if segs[1] == "webhookTimeoutSeconds" and webhook.get("timeoutSeconds") is not None:
            return ["spec", "webhookConfiguration", "timeoutSeconds"]
        if segs[1] == "emitWarning" and "auditWarning" in spec:
            return ["spec", "auditWarning"]
    return segs


def _covers(node: Mapping[str, Any], segments: list[str | int]) -> bool:
    for seg in segments:
        if not node:
            return True  # an atomic ancestor owned as a whole
        child = _child(node, seg)
        if child is None:
            return False
        node = child
    return True


def _child(node: Mapping[str, Any], seg: str | int) -> Mapping[str, Any] | None:
    for key in (f"f:{seg}", f"i:{seg}", f"v:{json.dumps(seg)}"):
        child = node.get(key)
        if isinstance(child, Mapping):
            return child
    for key, child in node.items():
        if key.startswith("k:") and isinstance(child, Mapping):
            try:
                ident = json.loads(key[2:])
            except ValueError:
                continue
            if isinstance(ident, Mapping) and str(seg) in {str(v) for v in ident.values()}:
                return child
    return None
