"""RBAC authorization from the Role/ClusterRole/binding objects the simulator stores.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from pytest_kspec.sim.selectors import label_selector_matches

__all__ = [
    "Attributes",
    "Decision",
    "RbacObjects",
    "UserInfo",
    "authorize",
    "effective_cluster_role_rules",
    "forbidden_message",
    "rule_allows",
]

MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"
_SA_PREFIX = "system:serviceaccount:"


@dataclass(frozen=True)
class UserInfo:
    """Who makes the request: a user name and the groups the authenticator gave it."""

    name: str
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class Attributes:
    """What the request does, as the authorizer sees it."""

    verb: str
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    namespace: str = ""
    path: str = ""
    resource_request: bool = True


@dataclass(frozen=True)
class Decision:
    """The answer; ``reason`` names the binding that allowed it ("" when denied)."""

    allowed: bool
    reason: str


class RbacObjects(Protocol):
    """Read access to the stored RBAC objects (plain dicts as served by the API)."""

    def roles(self, namespace: str) -> list[dict[str, Any]]: ...

    def role_bindings(self, namespace: str) -> list[dict[str, Any]]: ...

    def cluster_roles(self) -> list[dict[str, Any]]: ...

    def cluster_role_bindings(self) -> list[dict[str, Any]]: ...


def _groups(user: UserInfo) -> set[str]:
    groups = set(user.groups) | {AUTHENTICATED}
    if user.name.startswith(_SA_PREFIX):
        namespace = user.name[len(_SA_PREFIX):].partition(":")[0]
        groups |= {"system:serviceaccounts", f"system:serviceaccounts:{namespace}"}
    return groups


def _applies_to(subject: dict[str, Any], user: UserInfo, groups: set[str],
                binding_namespace: str) -> bool:
    kind = subject.get("kind")
    name = subject.get("name", "")
    if kind == "User":
        return bool(name == user.name)
    if kind == "Group":
        return name in groups
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return user.name == f"{_SA_PREFIX}{namespace}:{name}"
    return False


def _describe_subject(subject: dict[str, Any], binding_namespace: str) -> str:
    kind = str(subject.get("kind", ""))
    name = str(subject.get("name", ""))
    if kind == "ServiceAccount":
        name = f"{name}/{subject.get('namespace') or binding_namespace}"
    return f"{kind} {json.dumps(name)}"


def effective_cluster_role_rules(
    role: dict[str, Any], cluster_roles: list[dict[str, Any]], _seen: frozenset[str] = frozenset()
) -> list[dict[str, Any]]:
    """A ClusterRole's rules, with aggregation resolved as the aggregation controller does.

    A role with ``aggregationRule.clusterRoleSelectors`` gets the union of the rules of every
    other ClusterRole whose labels match a selector (those may aggregate in turn).
    """
    name = role.get("metadata", {}).get("name", "")
    selectors = (role.get("aggregationRule") or {}).get("clusterRoleSelectors")
    if not selectors:
        return list(role.get("rules") or [])
    rules: list[dict[str, Any]] = []
    seen = _seen | {name}
    for selector in selectors:
        matched = sorted(
            (r for r in cluster_roles
             if r.get("metadata", {}).get("name") != name
             and label_selector_matches(selector or {}, r.get("metadata", {}).get("labels") or {})),
            key=lambda r: str(r.get("metadata", {}).get("name", "")),
        )
        for other in matched:
            # In a cycle, a role already being resolved contributes its stored rules.
            other_rules = (list(other.get("rules") or [])
                           if other.get("metadata", {}).get("name") in seen
                           else effective_cluster_role_rules(other, cluster_roles, seen))
            for rule in other_rules:
                if rule not in rules:
                    rules.append(rule)
    return rules


def _has(values: list[str], wanted: str) -> bool:
    return "*" in values or wanted in values


def rule_allows(attrs: Attributes, rule: dict[str, Any]) -> bool:
    """Whether one PolicyRule covers the request (every field of the rule must match)."""
    if not _has(rule.get("verbs") or [], attrs.verb):
        return False
    if not attrs.resource_request:
        for url in rule.get("nonResourceURLs") or []:
            if url == "*" or url == attrs.path:
                return True
            if url.endswith("*") and attrs.path.startswith(url.rstrip("*")):
                return True
        return False
    if not _has(rule.get("apiGroups") or [], attrs.api_group):
        return False
    combined = attrs.resource + ("/" + attrs.subresource if attrs.subresource else "")
    resources = rule.get("resources") or []
    if not any(
        r == "*" or r == combined or (attrs.subresource and r == "*/" + attrs.subresource)
        for r in resources
    ):
        return False
    names = rule.get("resourceNames") or []
    return not names or attrs.name in names


def _role_rules(ref: dict[str, Any], namespace: str, objects: RbacObjects) -> list[dict[str, Any]]:
    kind, name = ref.get("kind"), ref.get("name")
    if kind == "ClusterRole":
        cluster_roles = objects.cluster_roles()
        for role in cluster_roles:
            if role.get("metadata", {}).get("name") == name:
                return effective_cluster_role_rules(role, cluster_roles)
    elif kind == "Role" and namespace:
        for role in objects.roles(namespace):
            if role.get("metadata", {}).get("name") == name:
                return list(role.get("rules") or [])
    return []


def _grants(
    user: UserInfo, attrs: Attributes, objects: RbacObjects
) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Each binding that names the user, as (description, rules), in the server's order."""
    groups = _groups(user)
    for binding in objects.cluster_role_bindings():
        ref = binding.get("roleRef") or {}
        for subject in binding.get("subjects") or []:
            if _applies_to(subject, user, groups, ""):
                where = (f'ClusterRoleBinding {json.dumps(binding["metadata"]["name"])} '
                         f'of {ref.get("kind")} {json.dumps(ref.get("name", ""))} '
                         f"to {_describe_subject(subject, '')}")
                yield where, _role_rules(ref, "", objects)
                break
    if not attrs.namespace:
        return
    for binding in objects.role_bindings(attrs.namespace):
        ref = binding.get("roleRef") or {}
        namespace = binding.get("metadata", {}).get("namespace") or attrs.namespace
        for subject in binding.get("subjects") or []:
            if _applies_to(subject, user, groups, namespace):
                label = f'{binding["metadata"]["name"]}/{namespace}'
                where = (f"RoleBinding {json.dumps(label)} "
                         f'of {ref.get("kind")} {json.dumps(ref.get("name", ""))} '
                         f"to {_describe_subject(subject, namespace)}")
                yield where, _role_rules(ref, namespace, objects)
                break


def authorize(user: UserInfo, attrs: Attributes, objects: RbacObjects) -> Decision:
    """Decide a request: ``system:masters`` always; otherwise the first binding that allows."""
    if MASTERS in user.groups:
        return Decision(True, "")
    for where, rules in _grants(user, attrs, objects):
        for rule in rules:
            if rule_allows(attrs, rule):
                return Decision(True, f"RBAC: allowed by {where}")
    return Decision(False, "")


def _sanitize(text: str) -> str:
    """The server escapes what could read as HTML in forbidden messages (quotes stay)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def forbidden_message(user: UserInfo, attrs: Attributes) -> str:
    """The 403 Status message the API server sends for a denied request."""
    if not attrs.resource_request:
        return "forbidden: " + _sanitize(
            f"User {json.dumps(user.name)} cannot {attrs.verb} path {json.dumps(attrs.path)}")
    resource = attrs.resource + ("/" + attrs.subresource if attrs.subresource else "")
    detail = (f"User {json.dumps(user.name)} cannot {attrs.verb} resource {json.dumps(resource)} "
              f"in API group {json.dumps(attrs.api_group)}")
    if attrs.namespace:
        detail += f" in the namespace {json.dumps(attrs.namespace)}"
    else:
        detail += " at the cluster scope"
    detail = _sanitize(detail)
    qualified = attrs.resource + ("." + attrs.api_group if attrs.api_group else "")
    if attrs.name:
        return f"{qualified} {json.dumps(attrs.name)} is forbidden: {detail}"
    return f"{qualified} is forbidden: {detail}"
