"""RBAC decisions and 403 messages match the API server's authorizer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from pytest_kspec.sim.rbac import (
    Attributes,
    Decision,
    UserInfo,
    authorize,
    effective_cluster_role_rules,
    forbidden_message,
    rule_allows,
)


@dataclass
class Store:
    """An in-memory RbacObjects."""

    role_list: list[dict[str, Any]] = field(default_factory=list)
    role_binding_list: list[dict[str, Any]] = field(default_factory=list)
    cluster_role_list: list[dict[str, Any]] = field(default_factory=list)
    cluster_role_binding_list: list[dict[str, Any]] = field(default_factory=list)

    def roles(self, namespace: str) -> list[dict[str, Any]]:
        return [r for r in self.role_list if r["metadata"]["namespace"] == namespace]

    def role_bindings(self, namespace: str) -> list[dict[str, Any]]:
        return [b for b in self.role_binding_list if b["metadata"]["namespace"] == namespace]

    def cluster_roles(self) -> list[dict[str, Any]]:
        return self.cluster_role_list

    def cluster_role_bindings(self) -> list[dict[str, Any]]:
        return self.cluster_role_binding_list


def role(name: str, namespace: str, *rules: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": name, "namespace": namespace}, "rules": list(rules)}


def cluster_role(name: str, *rules: dict[str, Any], labels: dict[str, str] | None = None,
                 aggregate: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                           "metadata": {"name": name, "labels": labels or {}},
                           "rules": list(rules)}
    if aggregate is not None:
        obj["aggregationRule"] = {"clusterRoleSelectors": aggregate}
    return obj


def binding(name: str, namespace: str | None, ref_kind: str, ref: str,
            *subjects: dict[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    return {"metadata": meta, "subjects": list(subjects),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": ref_kind, "name": ref}}


def user(name: str) -> dict[str, str]:
    return {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": name}


def rule(verbs: list[str], resources: list[str], groups: list[str] | None = None,
         names: list[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"verbs": verbs, "apiGroups": groups if groups is not None else [""],
                           "resources": resources}
    if names:
        out["resourceNames"] = names
    return out


U = UserInfo("u")
LIST_PODS = Attributes(verb="list", resource="pods", namespace="ns")


def test_role_binding_allows_only_in_its_namespace_with_reason() -> None:
    store = Store(role_list=[role("r", "ns", rule(["get", "list"], ["pods"]))],
                  role_binding_list=[binding("rb", "ns", "Role", "r", user("u"))])
    assert authorize(U, LIST_PODS, store) == Decision(
        True, 'RBAC: allowed by RoleBinding "rb/ns" of Role "r" to User "u"')
    other = Attributes(verb="list", resource="pods", namespace="other")
    assert authorize(U, other, store) == Decision(False, "")
    assert not authorize(UserInfo("someone"), LIST_PODS, store).allowed
    cluster_wide = Attributes(verb="list", resource="pods")
    assert not authorize(U, cluster_wide, store).allowed


def test_role_binding_to_cluster_role_grants_only_in_namespace() -> None:
    store = Store(cluster_role_list=[cluster_role("view", rule(["list"], ["pods"]))],
                  role_binding_list=[binding("rb", "ns", "ClusterRole", "view", user("u"))])
    assert authorize(U, LIST_PODS, store).reason == (
        'RBAC: allowed by RoleBinding "rb/ns" of ClusterRole "view" to User "u"')
    assert not authorize(U, Attributes(verb="list", resource="pods", namespace="x"), store).allowed


def test_cluster_role_binding_grants_everywhere() -> None:
    store = Store(cluster_role_list=[cluster_role("view", rule(["list"], ["pods"]))],
                  cluster_role_binding_list=[binding("crb", None, "ClusterRole", "view",
                                                     user("u"))])
    for namespace in ("ns", "kube-system", ""):
        decision = authorize(U, Attributes(verb="list", resource="pods", namespace=namespace),
                             store)
        assert decision == Decision(
            True, 'RBAC: allowed by ClusterRoleBinding "crb" of ClusterRole "view" to User "u"')


def test_system_masters_always_allowed() -> None:
    assert authorize(UserInfo("admin", ("system:masters",)),
                     Attributes(verb="delete", resource="nodes", name="n1"), Store()).allowed


def test_groups_and_system_authenticated() -> None:
    store = Store(cluster_role_list=[cluster_role("read", rule(["get"], ["configmaps"]))],
                  cluster_role_binding_list=[
                      binding("devs", None, "ClusterRole", "read",
                              {"kind": "Group", "name": "devs"}),
                      binding("all", None, "ClusterRole", "read",
                              {"kind": "Group", "name": "system:authenticated"})])
    attrs = Attributes(verb="get", resource="configmaps", namespace="ns", name="c")
    assert authorize(UserInfo("d", ("devs",)), attrs, store).reason.endswith('to Group "devs"')
    assert authorize(UserInfo("x"), attrs, store).reason.endswith(
        'to Group "system:authenticated"')


def test_service_account_subjects_and_groups() -> None:
    sa = UserInfo("system:serviceaccount:ci:deployer")
    store = Store(
        role_list=[role("r", "ci", rule(["create"], ["deployments"], ["apps"]))],
        role_binding_list=[binding("rb", "ci", "Role", "r",
                                   {"kind": "ServiceAccount", "name": "deployer"})],
        cluster_role_list=[cluster_role("read", rule(["list"], ["secrets"]))],
        cluster_role_binding_list=[
            binding("sas", None, "ClusterRole", "read",
                    {"kind": "Group", "name": "system:serviceaccounts:ci"})])
    create = Attributes(verb="create", api_group="apps", resource="deployments", namespace="ci")
    assert authorize(sa, create, store).reason == (
        'RBAC: allowed by RoleBinding "rb/ci" of Role "r" to ServiceAccount "deployer/ci"')
    other_sa = UserInfo("system:serviceaccount:prod:deployer")
    assert not authorize(other_sa, create, store).allowed
    secrets = Attributes(verb="list", resource="secrets", namespace="x")
    assert authorize(sa, secrets, store).allowed
    assert not authorize(other_sa, secrets, store).allowed


def test_service_account_group_for_all_service_accounts() -> None:
    store = Store(cluster_role_list=[cluster_role("r", rule(["get"], ["pods"]))],
                  cluster_role_binding_list=[binding(
                      "b", None, "ClusterRole", "r",
                      {"kind": "Group", "name": "system:serviceaccounts"})])
    attrs = Attributes(verb="get", resource="pods", namespace="a")
    assert authorize(UserInfo("system:serviceaccount:a:b"), attrs, store).allowed
    assert not authorize(UserInfo("alice"), attrs, store).allowed


@pytest.mark.parametrize(("the_rule", "attrs", "allowed"), [
    (rule(["*"], ["pods"]), LIST_PODS, True),
    (rule(["get"], ["pods"]), LIST_PODS, False),
    (rule(["list"], ["pods"], ["*"]), LIST_PODS, True),
    (rule(["list"], ["pods"], ["apps"]), LIST_PODS, False),
    (rule(["list"], ["deployments"], ["apps"]),
     Attributes(verb="list", api_group="apps", resource="deployments"), True),
    (rule(["list"], ["deployments"], [""]),
     Attributes(verb="list", api_group="apps", resource="deployments"), False),
    (rule(["list"], ["*"]), LIST_PODS, True),
    (rule(["get"], ["*"]), Attributes(verb="get", resource="pods", subresource="log"), True),
    (rule(["get"], ["pods"]), Attributes(verb="get", resource="pods", subresource="log"), False),
    (rule(["get"], ["pods/log"]), Attributes(verb="get", resource="pods", subresource="log"),
     True),
    (rule(["get"], ["pods/log"]), Attributes(verb="get", resource="pods"), False),
    (rule(["get"], ["*/log"]), Attributes(verb="get", resource="pods", subresource="log"), True),
    (rule(["get"], ["*/status"]), Attributes(verb="get", resource="pods", subresource="log"),
     False),
    (rule(["get"], ["*/log"]), Attributes(verb="get", resource="pods"), False),
    (rule(["get"], ["pods"], names=["a"]), Attributes(verb="get", resource="pods", name="a"),
     True),
    (rule(["get"], ["pods"], names=["a"]), Attributes(verb="get", resource="pods", name="b"),
     False),
    (rule(["list"], ["pods"], names=["a"]), LIST_PODS, False),
])
def test_rule_matching(the_rule: dict[str, Any], attrs: Attributes, allowed: bool) -> None:
    assert rule_allows(attrs, the_rule) is allowed


@pytest.mark.parametrize(("urls", "path", "allowed"), [
    (["*"], "/metrics", True),
    (["/metrics"], "/metrics", True),
    (["/metrics"], "/metrics/cadvisor", False),
    (["/healthz*"], "/healthz/etcd", True),
    (["/healthz/*"], "/healthz", False),
    (["/api"], "/apis", False),
])
def test_non_resource_urls(urls: list[str], path: str, allowed: bool) -> None:
    attrs = Attributes(verb="get", path=path, resource_request=False)
    assert rule_allows(attrs, {"verbs": ["get"], "nonResourceURLs": urls}) is allowed


def test_non_resource_urls_need_a_cluster_role_binding() -> None:
    grant = {"verbs": ["get"], "nonResourceURLs": ["/metrics"]}
    attrs = Attributes(verb="get", path="/metrics", resource_request=False)
    via_rb = Store(cluster_role_list=[cluster_role("m", grant)],
                   role_binding_list=[binding("rb", "ns", "ClusterRole", "m", user("u"))])
    assert not authorize(U, attrs, via_rb).allowed
    via_crb = Store(cluster_role_list=[cluster_role("m", grant)],
                    cluster_role_binding_list=[binding("crb", None, "ClusterRole", "m",
                                                       user("u"))])
    assert authorize(U, attrs, via_crb).allowed


def test_aggregated_cluster_role() -> None:
    roles = [
        cluster_role("monitoring", aggregate=[
            {"matchLabels": {"rbac.example.com/aggregate-to-monitoring": "true"}},
            {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["ops"]}]}]),
        cluster_role("pods-reader", rule(["list"], ["pods"]),
                     labels={"rbac.example.com/aggregate-to-monitoring": "true"}),
        cluster_role("ops", rule(["get"], ["nodes"]), labels={"tier": "ops"}),
        cluster_role("unrelated", rule(["delete"], ["pods"]), labels={"tier": "dev"}),
    ]
    rules = effective_cluster_role_rules(roles[0], roles)
    assert rule(["list"], ["pods"]) in rules and rule(["get"], ["nodes"]) in rules
    assert rule(["delete"], ["pods"]) not in rules
    store = Store(cluster_role_list=roles,
                  cluster_role_binding_list=[binding("crb", None, "ClusterRole", "monitoring",
                                                     user("u"))])
    assert authorize(U, LIST_PODS, store).allowed
    assert authorize(U, Attributes(verb="get", resource="nodes", name="n"), store).allowed
    assert not authorize(U, Attributes(verb="delete", resource="pods", namespace="ns",
                                       name="p"), store).allowed


def test_aggregation_expressions_and_cycles() -> None:
    roles = [
        cluster_role("a", rule(["get"], ["a"]), labels={"x": "1"},
                     aggregate=[{"matchExpressions": [{"key": "y", "operator": "Exists"}]}]),
        cluster_role("b", rule(["get"], ["b"]), labels={"y": "1"},
                     aggregate=[{"matchExpressions": [
                         {"key": "x", "operator": "Exists"},
                         {"key": "z", "operator": "DoesNotExist"},
                         {"key": "x", "operator": "NotIn", "values": ["2"]}]}]),
    ]
    assert effective_cluster_role_rules(roles[0], roles) == [rule(["get"], ["a"])]


def test_missing_role_denies() -> None:
    store = Store(role_binding_list=[binding("rb", "ns", "Role", "absent", user("u"))])
    assert authorize(U, LIST_PODS, store) == Decision(False, "")


@pytest.mark.parametrize(("attrs", "message"), [
    (LIST_PODS, 'pods is forbidden: User "u" cannot list resource "pods" in API group "" '
                'in the namespace "ns"'),
    (Attributes(verb="get", resource="pods", name="x", namespace="ns"),
     'pods "x" is forbidden: User "u" cannot get resource "pods" in API group "" '
     'in the namespace "ns"'),
    (Attributes(verb="list", resource="nodes"),
     'nodes is forbidden: User "u" cannot list resource "nodes" in API group "" '
     "at the cluster scope"),
    (Attributes(verb="get", resource="pods", subresource="log", name="x", namespace="ns"),
     'pods "x" is forbidden: User "u" cannot get resource "pods/log" in API group "" '
     'in the namespace "ns"'),
    (Attributes(verb="get", api_group="apps", resource="deployments", name="x", namespace="ns"),
     'deployments.apps "x" is forbidden: User "u" cannot get resource "deployments" '
     'in API group "apps" in the namespace "ns"'),
    (Attributes(verb="get", path="/metrics", resource_request=False),
     'forbidden: User "u" cannot get path "/metrics"'),
])
def test_forbidden_messages(attrs: Attributes, message: str) -> None:
    assert forbidden_message(U, attrs) == message
