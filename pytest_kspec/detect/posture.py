"""Posture: does a policy change let more through? Weakening drift is high severity.

Each change between the normalized expected and live policy is classified by where it is
and which way it goes. The rule is conservative on purpose: a missed weakening hides a hole
in enforcement, an over-reported one costs a look. So every change not known to keep or
tighten enforcement counts as weakening; the known non-weakening ones are listed below.

Weakening (True): effective action Enforce -> Audit; a rule removed; ``background`` or
``admission`` true -> false; ``failurePolicy`` Fail -> Ignore; ``applyRules`` All -> One;
``allowExistingViolations`` false -> true; ``skipBackgroundRequests`` false -> true;
overrides that add an Audit namespace or drop an Enforce one; a wider ``exclude`` (an item
or a name/kind/namespace added, a restriction removed, an exclude added); a narrower
``match`` (an ``any`` filter or a name/kind/namespace removed, a restriction added); a
pattern loosened (a key removed, an anchor changed, a value changed, unless it went from a
wildcard to a concrete value); an ``anyPattern`` alternative added; preconditions added or
changed; a shorter webhook timeout under ``failurePolicy: Ignore``; the policy being deleted;
and anything else not listed as non-weakening.

Not weakening (False): Audit -> Enforce; a rule or pattern key added; message, metadata
labels and annotations, ``emitWarning``; the reverse of each weakening above.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

Path = Sequence[str | int]

_SCALAR_LISTS = frozenset({
    "kinds", "namespaces", "names", "operations", "roles", "clusterRoles", "subjects",
})
_SELECTORS = frozenset({"selector", "namespaceSelector", "matchLabels", "matchExpressions"})


def is_weakening(
    path: Path, expected: Any, actual: Any,
    expected_policy: Mapping[str, Any], live_policy: Mapping[str, Any],
) -> bool:
    """Whether changing ``path`` from ``expected`` to ``actual`` weakens enforcement.

    ``path`` is a segment list into the normalized policies (rules keyed by name);
    ``None`` stands for "absent". The whole normalized policies give context (overrides are
    judged as a whole, a timeout against the live failure policy).
    """
    if not path:
        return True
    if path[0] == "metadata":
        return len(path) >= 2 and path[1] == "deletionTimestamp" and actual is not None
    if path[0] != "spec" or len(path) < 2:
        return True
    if len(path) == 2:
        return _spec_field(str(path[1]), expected, actual, live_policy)
    if path[1] != "rules":
        return True
    if len(path) == 3:
        return actual is None  # a rule removed weakens, a rule added does not
    name = path[2]
    exp_rule = _rule(expected_policy, name)
    live_rule = _rule(live_policy, name)
    return _rule_change(list(path[3:]), expected, actual, exp_rule, live_rule)


def _spec_field(key: str, expected: Any, actual: Any, live: Mapping[str, Any]) -> bool:
    if key in ("background", "admission"):
        return expected is True and actual is not True
    if key == "failurePolicy":
        return bool(expected == "Fail" and actual != "Fail")
    if key == "applyRules":
        return bool(expected == "All" and actual != "All")
    if key == "emitWarning":
        return False
    if key == "webhookTimeoutSeconds":
        ignore = (live.get("spec") or {}).get("failurePolicy") == "Ignore"
        if isinstance(expected, int) and isinstance(actual, int):
            return ignore and actual < expected
        return True
    return True


def _rule(policy: Mapping[str, Any], name: str | int) -> Mapping[str, Any]:
    rules = (policy.get("spec") or {}).get("rules") or {}
    rule = rules.get(name) if isinstance(rules, Mapping) else None
    return rule if isinstance(rule, Mapping) else {}


def _rule_change(rest: list[str | int], expected: Any, actual: Any,
                 exp_rule: Mapping[str, Any], live_rule: Mapping[str, Any]) -> bool:
    head = rest[0]
    if head == "skipBackgroundRequests":
        return expected is False and actual is not False
    if head == "validate":
        return _validate(rest[1:], expected, actual, exp_rule, live_rule)
    if head == "match":
        return _match(rest[1:], expected, actual)
    if head == "exclude":
        return _exclude(rest[1:], expected, actual)
    if head == "preconditions":
        return not (len(rest) == 1 and actual is None)
    return True


def _validate(rest: list[str | int], expected: Any, actual: Any,
              exp_rule: Mapping[str, Any], live_rule: Mapping[str, Any]) -> bool:
    if not rest:
        return actual is None  # validation removed from the rule
    field = rest[0]
    if field == "failureAction":
        return bool(expected == "Enforce" and actual != "Enforce")
    if field == "failureActionOverrides":
        return _overrides_weaken(
            (exp_rule.get("validate") or {}).get("failureActionOverrides") or [],
            (live_rule.get("validate") or {}).get("failureActionOverrides") or [])
    if field == "allowExistingViolations":
        return expected is False and actual is not False
    if field == "message":
        return False
    if field == "pattern":
        return _pattern(expected, actual)
    if field == "anyPattern":
        if len(rest) == 2 and isinstance(rest[1], int):
            return expected is None  # an alternative added lets more through
        return _pattern(expected, actual)
    return True


def _overrides_weaken(expected: Sequence[Any], actual: Sequence[Any]) -> bool:
    def entries(items: Sequence[Any], action: str) -> set[str]:
        out = set()
        for item in items:
            if isinstance(item, Mapping) and item.get("action") == action:
                rest = {k: v for k, v in item.items() if k != "action"}
                out.add(repr(sorted(rest.items(), key=lambda kv: str(kv[0]))))
        return out
    new_audit = entries(actual, "Audit") - entries(expected, "Audit")
    lost_enforce = entries(expected, "Enforce") - entries(actual, "Enforce")
    return bool(new_audit or lost_enforce)


def _is_wildcard(value: Any) -> bool:
    return isinstance(value, str) and set(value) <= {"*", "?"}


def _pattern(expected: Any, actual: Any) -> bool:
    if expected is None:
        return False  # a key added to a pattern checks more
    if actual is None:
        return True  # a key removed (or renamed: an anchor changed) checks less
    return not (_is_wildcard(expected) and not _is_wildcard(actual))


def _list_step(rest: list[str | int]) -> str | None:
    """The list name when ``rest`` ends at a list item (``[..., "kinds", 2]``)."""
    if len(rest) >= 2 and isinstance(rest[-1], int):
        return str(rest[-2])
    return None


def _match(rest: list[str | int], expected: Any, actual: Any) -> bool:
    """A narrower match weakens: fewer resources are checked."""
    listed = _list_step(rest)
    added, removed = expected is None, actual is None
    if listed is not None and (added or removed):
        if listed == "any" or listed in _SCALAR_LISTS:
            return removed
        if listed == "all":
            return added
    in_selector = any(seg in _SELECTORS for seg in rest if isinstance(seg, str))
    # a selector requirement dropped: more resources match
    return not (in_selector and removed and not added)


def _exclude(rest: list[str | int], expected: Any, actual: Any) -> bool:
    """A wider exclude weakens: more resources skip the check."""
    added, removed = expected is None, actual is None
    if not rest:
        return not removed  # whole exclude added (or changed) weakens; dropped does not
    listed = _list_step(rest)
    if listed is not None and (added or removed):
        if listed == "any" or listed in _SCALAR_LISTS:
            return added
        if listed == "all":
            return removed
    # a restriction added inside an exclude filter narrows it
    return not (added and len(rest) >= 2 and str(rest[-2]) in ("resources", *_SELECTORS))
