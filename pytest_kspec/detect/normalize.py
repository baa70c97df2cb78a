"""Bring a Kyverno policy to one canonical form, so only real differences count as drift.

A policy read back from a cluster carries what the API server and Kyverno added (server
metadata, ``status``, defaults, autogen rules, numbers re-typed, actions in another case)
and may say the same thing another way (spec-level or rule-level failure action). Both the
expected and the live object go through :func:`normalize_policy`; what still differs is drift.
The facts behind each step are in ``reference/kyverno-defaults.md``.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from typing import Any

# Set by the API server on every object; never part of what anyone asked for.
SERVER_METADATA: tuple[str, ...] = (
    "uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink",
    # Set together with deletionTimestamp; the timestamp alone says "being deleted" (kept:
    # a policy on its way out is about to stop enforcing, which is drift worth seeing).
    "deletionGracePeriodSeconds",
)
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
AUTOGEN_PREFIX = "autogen-"

# Kyverno's admission defaults (spec level). The deprecated spec-level failure action and
# overrides are folded into each rule (see effective action below), so they are not listed.
SPEC_DEFAULTS: Mapping[str, Any] = {
    "admission": True,
    "background": True,
    "emitWarning": False,
    "failurePolicy": "Fail",
    "webhookTimeoutSeconds": 10,
    "applyRules": "All",
}
# Boolean spec fields Go writes with omitempty: ``false`` and absent are the same object.
_FALSE_IS_ABSENT: tuple[str, ...] = (
    "mutateExistingOnPolicyUpdate", "generateExisting", "useServerSideApply",
)
DEFAULT_ACTION = "Audit"
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
# Lists inside match/exclude whose order carries no meaning.
_SET_LIKE: frozenset[str] = frozenset({
    "kinds", "namespaces", "names", "operations", "roles", "clusterRoles", "any", "all",
    "subjects",
})
# Subtrees kept verbatim (pattern semantics: empty maps and list order may matter there).
_VERBATIM: frozenset[str] = frozenset({
    "pattern", "anyPattern", "deny", "patchStrategicMerge", "patchesJson6902", "cel",
    "assert", "podSecurity", "manifests",
})


def normalize_policy(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Canonical form of a ClusterPolicy / Policy (pure: ``obj`` is never changed).

    Result: ``{"metadata": {...}, "spec": {...}}`` where ``spec.rules`` is a dict keyed by
    rule name (reordering rules is not drift), autogen rules are gone, every Kyverno default
    is filled, actions are ``Enforce``/``Audit``, integral floats are ints, and every
    validate rule carries its *effective* ``failureAction`` and ``failureActionOverrides``
    (the deprecated spec-level fields are folded in and dropped). ``deletionTimestamp`` is
    kept on purpose: a policy being deleted is about to stop enforcing.
    """
    src = _numbers(copy.deepcopy(dict(obj)))
    meta = dict(src.get("metadata") or {})
    for key in SERVER_METADATA:
        meta.pop(key, None)
    annotations = dict(meta.get("annotations") or {})
    annotations.pop(LAST_APPLIED, None)
    meta["annotations"] = annotations
    meta["labels"] = dict(meta.get("labels") or {})
    meta = {k: v for k, v in meta.items() if v not in (None, "") or k in ("annotations", "labels")}
    return {"metadata": meta, "spec": _spec(dict(src.get("spec") or {}))}


def canonical_action(value: Any) -> str:
    """``enforce``/``Enforce`` -> ``Enforce``, ``audit``/``Audit`` -> ``Audit``; others as-is."""
    text = str(value).strip()
    low = text.lower()
    if low in ("enforce", "audit"):
        return low.capitalize()
    return text


def effective_actions(normalized: Mapping[str, Any]) -> dict[str, str]:
    """Rule name -> effective failure action, for the validate rules of a normalized policy."""
    out: dict[str, str] = {}
    for name, rule in (normalized.get("spec") or {}).get("rules", {}).items():
        validate = rule.get("validate")
        if isinstance(validate, Mapping) and "failureAction" in validate:
            out[name] = str(validate["failureAction"])
    return out


def policy_action(normalized: Mapping[str, Any]) -> str | None:
    """The policy-wide action: ``Enforce``/``Audit`` when all rules agree, else ``Mixed``."""
    actions = set(effective_actions(normalized).values())
    if not actions:
        return None
    return actions.pop() if len(actions) == 1 else "Mixed"


def _spec(spec: dict[str, Any]) -> dict[str, Any]:
    spec_action = canonical_action(spec.pop("validationFailureAction", None) or DEFAULT_ACTION)
    spec_overrides = _overrides(spec.pop("validationFailureActionOverrides", None))
    # Deprecated spelling of emitWarning in some Kyverno versions.
    if "auditWarning" in spec:
        spec.setdefault("emitWarning", spec.pop("auditWarning"))
    webhook = dict(spec.get("webhookConfiguration") or {})
    # The webhookConfiguration fields win over their deprecated spec-level twins.
    if webhook.get("failurePolicy") is not None:
        spec["failurePolicy"] = webhook.pop("failurePolicy")
    if webhook.get("timeoutSeconds") is not None:
        spec["webhookTimeoutSeconds"] = webhook.pop("timeoutSeconds")
    if webhook:
        spec["webhookConfiguration"] = webhook
    else:
        spec.pop("webhookConfiguration", None)
    for key, default in SPEC_DEFAULTS.items():
        if spec.get(key) is None:
            spec[key] = default
    spec["failurePolicy"] = str(spec["failurePolicy"]).capitalize()
    for key in _FALSE_IS_ABSENT:
        if spec.get(key) is False:
            del spec[key]
    rules: dict[str, Any] = {}
    for i, raw in enumerate(spec.get("rules") or []):
        rule = dict(raw)
        name = str(rule.pop("name", "") or f"#{i}")
        if name.startswith(AUTOGEN_PREFIX):
            continue
        rules[name] = _rule(rule, spec_action, spec_overrides)
    spec["rules"] = rules
    return {k: _tidy(k, v) for k, v in spec.items()}


def _rule(rule: dict[str, Any], spec_action: str, spec_overrides: list[Any]) -> dict[str, Any]:
    if rule.get("skipBackgroundRequests") is None:
        rule["skipBackgroundRequests"] = True
    context = []
    for entry in rule.get("context") or []:
        entry = dict(entry)
        if isinstance(entry.get("apiCall"), Mapping):
            call = dict(entry["apiCall"])
            call["method"] = str(call.get("method") or "GET").upper()
            entry["apiCall"] = call
        context.append(entry)
    if context:
        rule["context"] = context
    validate = rule.get("validate")
    if isinstance(validate, Mapping) and validate:
        validate = dict(validate)
        own = validate.get("failureAction")
        validate["failureAction"] = canonical_action(own) if own else spec_action
        own_overrides = _overrides(validate.get("failureActionOverrides"))
        validate["failureActionOverrides"] = own_overrides or spec_overrides
        if validate.get("allowExistingViolations") is None:
            validate["allowExistingViolations"] = True
        rule["validate"] = validate
    return {k: _tidy(k, v) for k, v in rule.items()}


def _overrides(raw: Any) -> list[Any]:
    out = []
    for item in raw or []:
        item = dict(item)
        if "action" in item:
            item["action"] = canonical_action(item["action"])
        if item.get("namespaces"):
            item["namespaces"] = sorted(str(n) for n in item["namespaces"])
        out.append(item)
    return sorted(out, key=_sort_key)


def _tidy(key: str, value: Any) -> Any:
    """Drop empty maps/lists (Go omitempty: ``{}`` and absent are the same) and sort the
    set-like lists of match/exclude; pattern-like subtrees stay verbatim."""
    if key in _VERBATIM:
        return value
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            v = _tidy(str(k), v)
            if v is None or (isinstance(v, (dict, list)) and not v):
                continue
            out[k] = v
        return out
    if isinstance(value, list):
        items = [_tidy("", v) for v in value]
        if key in _SET_LIKE:
            items = sorted(items, key=_sort_key)
        return items
    return value


def _sort_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _numbers(value: Any) -> Any:
    """Integral floats become ints everywhere (``10.0`` and ``10`` are the same value)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    return value


def format_path(segments: list[str | int]) -> str:
    """``['spec', 'rules', 'r1', 'validate', 'failureAction']`` ->
    ``spec.rules[r1].validate.failureAction``; rule names, indices and keys that are not
    plain words (``policies.kyverno.io/title``, ``=(securityContext)``) go in brackets."""
    out = ""
    for i, seg in enumerate(segments):
        rule_name = i == 2 and segments[:2] == ["spec", "rules"]
        if isinstance(seg, int) or rule_name or not _PLAIN.fullmatch(str(seg)):
            out += f"[{seg}]"
        else:
            out += f".{seg}" if out else str(seg)
    return out


def parse_path(text: str) -> list[str | int]:
    """Inverse of :func:`format_path` (bracketed digits read back as indices)."""
    segments: list[str | int] = []
    i = 0
    while i < len(text):
        if text[i] == "[":
            end = text.index("]", i)
            inner = text[i + 1:end]
            rule_name = len(segments) == 2 and segments == ["spec", "rules"]
            segments.append(int(inner) if inner.isdigit() and not rule_name else inner)
            i = end + 1
        elif text[i] == ".":
            i += 1
        else:
            j = i
            while j < len(text) and text[j] not in ".[":
                j += 1
            segments.append(text[i:j])
            i = j
    return segments
