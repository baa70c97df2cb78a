"""Kyverno's validate engine for one resource: which rules apply, and which of them fail.

Follows Kyverno's source for the forms kspec generates and the policy library uses:
``match`` / ``exclude`` on kinds and namespaces (``any`` / ``all`` blocks), ``preconditions``,
``validate.pattern`` / ``anyPattern`` (:mod:`.patterns`), ``validate.foreach`` with ``deny``
conditions over a JMESPath ``list`` (:mod:`.jmes`), and **autogen**: a rule matching Pods
also judges Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs (``autogen-<rule>``) and
CronJobs (``autogen-cronjob-<rule>``) on their pod template. The effective action of a rule
is its ``validate.failureAction`` (Kyverno >= 1.13), else the policy's
``validationFailureAction``, else Audit.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_kspec.sim.admission import jmes
from pytest_kspec.sim.admission.patterns import mismatch
from pytest_kspec.sim.admission.wildcard import wildcard_match

AUTOGEN_KINDS: frozenset[str] = frozenset({"Deployment", "StatefulSet", "DaemonSet",
                                           "ReplicaSet", "Job"})
CRONJOB = "CronJob"
DEFAULT_AUTOGEN = "DaemonSet,Deployment,Job,StatefulSet,ReplicaSet,CronJob"
AUTOGEN_ANNOTATION = "pod-policies.kyverno.io/autogen-controllers"


@dataclass(frozen=True)
class Failure:
    """A rule the resource fails: ``rule`` as Kyverno names it (``autogen-…`` for
    controllers), ``message`` as Kyverno words it, ``action`` Enforce or Audit."""

    policy: str
    rule: str
    message: str
    action: str


def effective_action(policy: Mapping[str, Any], rule: Mapping[str, Any]) -> str:
    """``Enforce`` or ``Audit``: the rule-level action, else the policy-level one."""
    raw = ((rule.get("validate") or {}).get("failureAction")
           or (policy.get("spec") or {}).get("validationFailureAction") or "Audit")
    return "Enforce" if str(raw).lower() == "enforce" else "Audit"


def _kinds_match(kinds: Sequence[str], kind: str) -> bool:
    return any(wildcard_match(k.rsplit("/", 1)[-1], kind) for k in kinds)


def _filter_matches(block: Mapping[str, Any], kind: str, namespace: str | None,
                    operation: str) -> bool:
    resources = block.get("resources") or {}
    if not resources:
        return False
    kinds = [str(k) for k in resources.get("kinds") or []]
    if kinds and not _kinds_match(kinds, kind):
        return False
    namespaces = [str(n) for n in resources.get("namespaces") or []]
    if namespaces and not any(wildcard_match(n, namespace or "") for n in namespaces):
        return False
    operations = [str(o) for o in resources.get("operations") or []]
    return not operations or operation in operations


def _selects(spec: Mapping[str, Any] | None, kind: str, namespace: str | None,
             operation: str) -> bool:
    if not spec:
        return False
    if "any" in spec:
        return any(_filter_matches(b, kind, namespace, operation) for b in spec["any"] or [])
    if "all" in spec:
        blocks = spec["all"] or []
        return bool(blocks) and all(_filter_matches(b, kind, namespace, operation)
                                    for b in blocks)
    return _filter_matches(spec, kind, namespace, operation)


def _condition(cond: Mapping[str, Any], context: Mapping[str, Any]) -> bool:
    key = jmes.substitute(cond.get("key"), context)
    value = jmes.substitute(cond.get("value"), context)
    op = str(cond.get("operator", "Equals"))
    return evaluate_operator(op, key, value)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _in(item: Any, values: Sequence[Any]) -> bool:
    a = _text(item)
    return any(wildcard_match(_text(v), a) or wildcard_match(a, _text(v)) for v in values)


def evaluate_operator(op: str, key: Any, value: Any) -> bool:
    """One Kyverno condition operator (the subset kspec and the library's Pod rules use)."""
    keys = key if isinstance(key, list) else [key]
    values = value if isinstance(value, list) else [value]
    if op in ("Equals", "Equal"):
        if isinstance(key, bool) or isinstance(value, bool):
            return bool(key == value)
        return bool(key == value) or (isinstance(key, str) and isinstance(value, str)
                                and wildcard_match(value, key))
    if op in ("NotEquals", "NotEqual"):
        return not evaluate_operator("Equals", key, value)
    if op == "AnyIn":
        return any(_in(k, values) for k in keys)
    if op == "AnyNotIn":
        return any(not _in(k, values) for k in keys)
    if op == "AllIn":
        return all(_in(k, values) for k in keys)
    if op == "AllNotIn":
        return all(not _in(k, values) for k in keys)
    if op == "In":
        return _in(key, values)
    if op == "NotIn":
        return not _in(key, values)
    raise jmes.KyvernoJmesError(f"operator {op!r} is not supported by the simulator")


def conditions_hold(conditions: Any, context: Mapping[str, Any]) -> bool:
    """``any`` / ``all`` condition blocks (or a bare list, meaning all)."""
    if isinstance(conditions, list):
        return all(_condition(c, context) for c in conditions)
    conditions = conditions or {}
    ok = True
    if "any" in conditions:
        ok = any(_condition(c, context) for c in conditions["any"] or [])
    if ok and "all" in conditions:
        ok = all(_condition(c, context) for c in conditions["all"] or [])
    return ok


def _validate(validate: Mapping[str, Any], resource: Mapping[str, Any],
              context: Mapping[str, Any], rule: str) -> str | None:
    """The failure message of a validate block, or None when it passes."""
    message = str(jmes.substitute(validate.get("message", ""), context))
    if "pattern" in validate:
        path = mismatch(resource, validate["pattern"])
        if path is not None:
            return f"validation error: {message} rule {rule} failed at path {path}"
    if "anyPattern" in validate:
        paths = [mismatch(resource, p) for p in validate["anyPattern"] or []]
        if paths and all(p is not None for p in paths):
            detail = " ".join(f"rule {rule}[{i}] failed at path {p}"
                              for i, p in enumerate(paths))
            return f"validation error: {message} {detail}"
    if "deny" in validate and conditions_hold((validate["deny"] or {}).get("conditions"),
                                              context):
        return message
    for each in validate.get("foreach") or []:
        elements = jmes.search(str(each.get("list", "")), context) or []
        for index, element in enumerate(elements if isinstance(elements, list) else []):
            scoped = dict(context, element=element, elementIndex=index)
            if "preconditions" in each and not conditions_hold(each["preconditions"], scoped):
                continue
            failed = _validate({k: v for k, v in each.items() if k != "list"} | {
                "message": validate.get("message", "")}, element, scoped, rule)
            if failed is not None:
                return failed
    return None


def _autogen_controllers(policy: Mapping[str, Any]) -> set[str]:
    annotations = (policy.get("metadata") or {}).get("annotations") or {}
    raw = str(annotations.get(AUTOGEN_ANNOTATION, DEFAULT_AUTOGEN))
    if raw.strip().lower() == "none":
        return set()
    return {k.strip() for k in raw.split(",") if k.strip()}


def _pod_of(resource: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = resource.get("spec") or {}
    if resource.get("kind") == CRONJOB:
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    template = spec.get("template") or {}
    meta = dict(template.get("metadata") or {})
    meta.setdefault("namespace", (resource.get("metadata") or {}).get("namespace"))
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": template.get("spec") or {}}


def evaluate(policy: Mapping[str, Any], resource: Mapping[str, Any], *,
             operation: str = "CREATE", user: str = "") -> list[Failure]:
    """The rules of ``policy`` that ``resource`` fails (autogen included); JMESPath errors
    count as failures, as Kyverno blocks on a rule error in Enforce mode."""
    kind = str(resource.get("kind", ""))
    namespace = (resource.get("metadata") or {}).get("namespace")
    name = str((policy.get("metadata") or {}).get("name", ""))
    judged, prefix = resource, ""
    if kind in AUTOGEN_KINDS or kind == CRONJOB:
        if kind not in _autogen_controllers(policy):
            return []
        judged = _pod_of(resource)
        prefix = "autogen-cronjob-" if kind == CRONJOB else "autogen-"
    failures: list[Failure] = []
    for rule in (policy.get("spec") or {}).get("rules") or []:
        if "validate" not in rule:
            continue
        as_kind = "Pod" if prefix else kind
        if not _selects(rule.get("match"), as_kind, namespace, operation):
            continue
        if _selects(rule.get("exclude"), as_kind, namespace, operation):
            continue
        rule_name = prefix + str(rule.get("name", ""))
        context = {"request": {"object": judged, "operation": operation,
                               "namespace": namespace, "userInfo": {"username": user}}}
        try:
            if "preconditions" in rule and not conditions_hold(rule["preconditions"], context):
                continue
            message = _validate(rule["validate"], judged, context, rule_name)
        except jmes.KyvernoJmesError as err:
            message = f"failed to evaluate rule {rule_name}: {err}"
        if message is not None:
            failures.append(Failure(name, rule_name, message, effective_action(policy, rule)))
    return failures
