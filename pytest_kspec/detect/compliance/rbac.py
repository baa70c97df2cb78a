"""RBAC rules: no Role/ClusterRole grants a forbidden permission; some role grants the minimum.

A spec rule is ``{apiGroup, resource, verbs}`` (``apiGroup: ""`` is the core group). A role
rule *grants* it when its ``apiGroups`` contain the group or ``*``, its ``resources`` contain
the resource, ``*`` or ``*/<subresource>`` (for ``pods/exec``-style resources), and:

- forbidden: its verbs intersect the forbidden verbs or contain ``*``;
- minimum: its verbs contain every listed verb (or ``*``) and it has no ``resourceNames``
  restriction (a rule limited to named objects does not grant the permission in general).

The spec's own ``*`` is literal: ``{apiGroup: "*", resource: "*", verbs: ["*"]}`` flags only
roles granting ``*`` on ``*``/``*``. Exempt from forbidden rules: ClusterRoles and Roles named
``system:*``, the API server's default user-facing ClusterRoles (``cluster-admin``, ``admin``,
``edit``, ``view`` labelled ``kubernetes.io/bootstrapping: rbac-defaults``; the API server
recreates them, so flagging them would fail every cluster) and Roles in system namespaces.
Aggregated ClusterRoles are judged by the rules the controller filled in (empty is fine).

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pytest_kspec.desired import CheckRef

from .base import (
    CheckResult,
    ComplianceOptions,
    Obj,
    Snapshot,
    Violation,
    cluster_violation,
    labels_of,
    name_of,
    namespace_of,
    resource_name,
    violation,
)
from .base import result as make_result

RESOURCES: Mapping[str, list[tuple[str, str]]] = {
    "rbac.forbiddenRule": [("rbac.authorization.k8s.io/v1", "ClusterRole"),
                           ("rbac.authorization.k8s.io/v1", "Role")],
    "rbac.minimumRule": [("rbac.authorization.k8s.io/v1", "ClusterRole"),
                         ("rbac.authorization.k8s.io/v1", "Role")],
}

DEFAULT_ROLES: frozenset[str] = frozenset({"cluster-admin", "admin", "edit", "view"})
BOOTSTRAP_LABEL = "kubernetes.io/bootstrapping"


def _strs(values: Any) -> list[str]:
    return [str(v) for v in values or []]


def covers_group(rule: Mapping[str, Any], group: str) -> bool:
    """The role rule applies to API group ``group`` (or to every group)."""
    groups = _strs(rule.get("apiGroups"))
    return group in groups or "*" in groups


def covers_resource(rule: Mapping[str, Any], resource: str) -> bool:
    """The role rule applies to ``resource`` (``*`` and ``*/<sub>`` count)."""
    resources = _strs(rule.get("resources"))
    if resource in resources or "*" in resources:
        return True
    _, slash, sub = resource.partition("/")
    return bool(slash) and f"*/{sub}" in resources


def grants_any(rule: Mapping[str, Any], group: str, resource: str, verbs: Sequence[str]) -> bool:
    """The role rule grants at least one of ``verbs`` on group/resource."""
    have = set(_strs(rule.get("verbs")))
    return (covers_group(rule, group) and covers_resource(rule, resource)
            and ("*" in have or bool(have & set(verbs))))


def grants_all(rule: Mapping[str, Any], group: str, resource: str, verbs: Sequence[str]) -> bool:
    """The role rule grants every one of ``verbs`` on group/resource, unrestricted by name."""
    have = set(_strs(rule.get("verbs")))
    return (covers_group(rule, group) and covers_resource(rule, resource)
            and not rule.get("resourceNames")
            and ("*" in have or set(verbs) <= have))


def _spec_rule(ref: CheckRef) -> tuple[str, str, list[str]]:
    return (str(ref.rule.get("apiGroup", "")), str(ref.rule.get("resource", "")),
            _strs(ref.rule.get("verbs")))


def _exempt(role: Obj, options: ComplianceOptions) -> bool:
    name = name_of(role)
    if name.startswith("system:"):
        return True
    if role.get("kind") == "ClusterRole":
        return (name in DEFAULT_ROLES
                and labels_of(role).get(BOOTSTRAP_LABEL) == "rbac-defaults")
    return options.skips(namespace_of(role))


def _describe(rule: Mapping[str, Any]) -> str:
    groups = ",".join(g or '""' for g in _strs(rule.get("apiGroups")))
    text = (f"verbs={','.join(_strs(rule.get('verbs')))} "
            f"resources={','.join(_strs(rule.get('resources')))} apiGroups={groups}")
    names = _strs(rule.get("resourceNames"))
    return f"{text} resourceNames={','.join(names)}" if names else text


def _roles(snapshot: Snapshot) -> list[dict[str, Any]]:
    api = "rbac.authorization.k8s.io/v1"
    return snapshot.list(api, "ClusterRole") + snapshot.list(api, "Role")


def check_forbidden(ref: CheckRef, snapshot: Snapshot, options: ComplianceOptions) -> CheckResult:
    """Roles and ClusterRoles with a rule granting the forbidden permission."""
    group, resource, verbs = _spec_rule(ref)
    roles = [r for r in _roles(snapshot) if not _exempt(r, options)]
    violations: list[Violation] = []
    for role in roles:
        for i, rule in enumerate(role.get("rules") or []):
            if grants_any(rule, group, resource, verbs):
                violations.append(violation(role, f"rules[{i}] grants {_describe(rule)}"))
                break
    return make_result(ref, violations, len(roles), "roles")


def check_minimum(ref: CheckRef, snapshot: Snapshot, options: ComplianceOptions) -> CheckResult:
    """Some Role or ClusterRole grants every listed verb on group/resource."""
    group, resource, verbs = _spec_rule(ref)
    roles = _roles(snapshot)
    for role in roles:
        for rule in role.get("rules") or []:
            if grants_all(rule, group, resource, verbs):
                return CheckResult(ref=ref, violations=(), evaluated=len(roles),
                                   summary=f"{resource_name(role)} grants {','.join(verbs)} "
                                           f"on {resource} (apiGroup {group or 'core'})")
    missing = cluster_violation(
        "ClusterRole/*", f"no Role or ClusterRole grants {','.join(verbs)} on {resource} "
                         f"(apiGroup {group or 'core'})", kind="ClusterRole")
    return CheckResult(ref=ref, violations=(missing,), evaluated=len(roles),
                       summary=f"none of {len(roles)} roles grants {','.join(verbs)} "
                               f"on {resource} (apiGroup {group or 'core'})")
