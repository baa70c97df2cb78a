"""Network checks: default deny honours policyTypes; required policies; Service types; ports."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_kspec.detect import evaluate

from .fakes import MemorySnapshot, container, namespace, netpol, pod, ref_for, service

DENY = {"network": {"defaultDeny": True}}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"policyTypes": ["Ingress"]}, None),
        ({"policyTypes": ["Ingress", "Egress"]}, None),
        ({}, None),  # policyTypes absent defaults to Ingress
        ({"podSelector": {"matchLabels": {}, "matchExpressions": []}}, None),
        ({"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}]}, None),
        ({"policyTypes": ["Egress"]},
         "NetworkPolicy deny denies egress only; no default-deny ingress policy"),
        ({"policyTypes": ["Ingress"], "ingress": [{}]}, "no default-deny ingress NetworkPolicy"),
        ({"policyTypes": ["Ingress"], "podSelector": {"matchLabels": {"app": "web"}}},
         "no default-deny ingress NetworkPolicy"),
        ({"policyTypes": ["Ingress"],
          "ingress": [{"from": [{"namespaceSelector": {}}]}]},
         "no default-deny ingress NetworkPolicy"),
    ],
)
def test_default_deny_shapes(spec: dict[str, Any], expected: str | None) -> None:
    snap = MemorySnapshot(namespace("payments"), namespace("kube-system"),
                          netpol("deny", "payments", **spec))
    res = evaluate(ref_for(DENY), snap)
    assert [v.message for v in res.violations] == ([expected] if expected else [])
    assert res.evaluated == 1


def test_default_deny_per_namespace_and_overridden_by_allow_all() -> None:
    snap = MemorySnapshot(
        namespace("payments"), namespace("shop"), namespace("empty"), namespace("kube-system"),
        netpol("default-deny", "payments", policyTypes=["Ingress", "Egress"]),
        netpol("allow-web", "payments", podSelector={"matchLabels": {"app": "web"}},
               ingress=[{}]),
        netpol("default-deny", "shop", policyTypes=["Ingress"]),
        netpol("open", "shop", ingress=[{}]),
    )
    res = evaluate(ref_for(DENY), snap)
    assert [str(v) for v in res.violations] == [
        "Namespace/shop: NetworkPolicy open allows all ingress to every pod, overriding "
        "default deny default-deny",
        "Namespace/empty: no default-deny ingress NetworkPolicy",
    ]
    assert res.summary.startswith("2 of 3 namespaces violate: ")


def test_required_policy() -> None:
    body = {"network": {"requiredPolicies": [{"name": "deny-metadata", "description": "x"},
                                             {"name": "allow-dns"}]}}
    snap = MemorySnapshot(netpol("deny-metadata", "payments"),
                          netpol("deny-metadata", "kube-system"))
    found = evaluate(ref_for(body, 0), snap)
    assert found.passed
    assert found.summary == "NetworkPolicy deny-metadata found in kube-system, payments"
    missing = evaluate(ref_for(body, 1), snap)
    assert [str(v) for v in missing.violations] == [
        "NetworkPolicy/allow-dns: not found in any namespace"]


def test_allowed_service_types() -> None:
    body = {"network": {"allowedServiceTypes": ["ClusterIP", "NodePort"]}}
    snap = MemorySnapshot(service("web"), service("edge", type_="LoadBalancer"),
                          service("api", type_="NodePort"),
                          service("lb", ns="kube-system", type_="LoadBalancer"))
    res = evaluate(ref_for(body), snap)
    assert [str(v) for v in res.violations] == [
        "Service/payments/edge: type LoadBalancer is not allowed (allowed: ClusterIP, NodePort)"]
    assert res.evaluated == 3


def test_disallowed_ports_services_and_all_container_kinds() -> None:
    body = {"network": {"disallowedPorts": [22, 3389]}}
    snap = MemorySnapshot(
        service("ssh", ports=[{"port": 2222, "targetPort": 22, "nodePort": 3389}]),
        service("named", ports=[{"port": 80, "targetPort": "ssh"}]),
        pod("debug", containers=[container(ports=[{"containerPort": 22, "hostPort": 22}])],
            initContainers=[container("init", ports=[{"containerPort": 8080}])],
            ephemeralContainers=[container("dbg", ports=[{"containerPort": 3389}])]),
        pod("sys", ns="kube-system",
            containers=[container(ports=[{"containerPort": 22}])]),
    )
    res = evaluate(ref_for(body), snap)
    assert [str(v) for v in res.violations] == [
        "Service/payments/ssh: exposes disallowed targetPort 22, nodePort 3389",
        'Pod/payments/debug: container "app" exposes disallowed containerPort 22, hostPort 22',
        'Pod/payments/debug: ephemeralContainer "dbg" exposes disallowed containerPort 3389',
    ]
    assert res.violations[1].container == "app"
    assert res.summary.startswith("2 of 3 services and pods violate")
