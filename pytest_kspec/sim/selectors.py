"""Label and field selectors as the API server parses and applies them to LIST and WATCH.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pytest_kspec.sim.status import StatusError, bad_request

Matcher = Callable[[dict[str, Any]], bool]

_KEY = r"[A-Za-z0-9][-A-Za-z0-9_./]*"
_SET_RE = re.compile(rf"^\s*({_KEY})\s+(in|notin)\s+\(([^)]*)\)\s*$")
_OP_RE = re.compile(rf"^\s*({_KEY})\s*(==|!=|=|>|<)\s*([-A-Za-z0-9_.]*)\s*$")
_EXISTS_RE = re.compile(rf"^\s*(!?)\s*({_KEY})\s*$")


def _split_terms(selector: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    terms: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    terms.append("".join(cur))
    return [t for t in terms if t.strip()]


def _label_term(term: str) -> Callable[[dict[str, str]], bool]:
    m = _SET_RE.match(term)
    if m:
        key, op = m.group(1), m.group(2)
        values = {v.strip() for v in m.group(3).split(",") if v.strip()}
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    m = _OP_RE.match(term)
    if m:
        key, op, value = m.group(1), m.group(2), m.group(3)
        if op in ("=", "=="):
            return lambda labels: labels.get(key) == value
        if op == "!=":
            return lambda labels: labels.get(key) != value
        try:
            bound = int(value)
        except ValueError:
            raise bad_request(f'unable to parse requirement: for \'Gt\', \'Lt\' operators, the '
                              f'value must be an integer: "{value}"') from None
        sign = 1 if op == ">" else -1
        return lambda labels: (_int(labels.get(key)) or 0) * sign > bound * sign and _int(
            labels.get(key)) is not None
    m = _EXISTS_RE.match(term)
    if m:
        neg, key = m.group(1) == "!", m.group(2)
        if neg:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    raise bad_request(f"unable to parse requirement: invalid label selector: {term.strip()!r}")


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def label_matcher(selector: str | None) -> Matcher | None:
    """None when the selector selects everything."""
    if not selector or not selector.strip():
        return None
    tests = [_label_term(t) for t in _split_terms(selector)]

    def match(obj: dict[str, Any]) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(t(labels) for t in tests)

    return match


# Field selectors supported per (group, plural) beyond metadata.name/metadata.namespace.
_FIELDS: dict[tuple[str, str], dict[str, str]] = {
    ("", "pods"): {
        "spec.nodeName": "spec.nodeName", "spec.host": "spec.nodeName",
        "spec.restartPolicy": "spec.restartPolicy", "spec.schedulerName": "spec.schedulerName",
        "spec.serviceAccountName": "spec.serviceAccountName", "status.phase": "status.phase",
        "status.podIP": "status.podIP", "status.nominatedNodeName": "status.nominatedNodeName",
    },
    ("", "nodes"): {"spec.unschedulable": "spec.unschedulable"},
    ("", "namespaces"): {"status.phase": "status.phase"},
    ("", "secrets"): {"type": "type"},
    ("", "services"): {"spec.clusterIP": "spec.clusterIP", "spec.type": "spec.type"},
    ("", "events"): {
        **{f"involvedObject.{f}": f"involvedObject.{f}" for f in (
            "kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")},
        "reason": "reason", "reportingComponent": "reportingComponent",
        "source": "source.component", "type": "type",
    },
    ("", "replicationcontrollers"): {"status.replicas": "status.replicas"},
}
_CORE_CONVERTERS = {k[1] for k in _FIELDS if k[0] == ""}


def _field_value(obj: dict[str, Any], path: str) -> str:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    if cur is None:
        return "false" if path == "spec.unschedulable" else ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def field_matcher(selector: str | None, group: str, plural: str) -> Matcher | None:
    """Parse a field selector for one resource; unsupported fields give 400 BadRequest."""
    if not selector or not selector.strip():
        return None
    allowed = {"metadata.name": "metadata.name", "metadata.namespace": "metadata.namespace",
               **_FIELDS.get((group, plural), {})}
    tests: list[tuple[str, bool, str]] = []
    for term in _split_terms(selector):
        m = re.match(r"^\s*([^!=\s]+)\s*(==|!=|=)\s*(.*?)\s*$", term)
        if not m:
            raise bad_request(f"invalid selector: '{selector}'; can't understand '{term}'")
        name, op, value = m.group(1), m.group(2), m.group(3)
        if name not in allowed:
            raise _unsupported(name, group, plural)
        tests.append((allowed[name], op != "!=", value))

    def match(obj: dict[str, Any]) -> bool:
        return all((_field_value(obj, path) == value) == want for path, want, value in tests)

    return match


def _unsupported(name: str, group: str, plural: str) -> StatusError:
    if group == "" and plural in _CORE_CONVERTERS | {"pods"}:
        return bad_request(f"field label not supported: {name}")
    return bad_request(f'"{name}" is not a known field selector: only "metadata.name", '
                       f'"metadata.namespace"')


def combine(*matchers: Matcher | None) -> Matcher | None:
    active = [m for m in matchers if m is not None]
    if not active:
        return None
    if len(active) == 1:
        return active[0]
    return lambda obj: all(m(obj) for m in active)


def label_selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Does a LabelSelector object (``matchLabels`` and ``matchExpressions``, ANDed) select
    ``labels``? An empty selector selects everything; an unknown operator selects nothing."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key", ""), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False
    return True
