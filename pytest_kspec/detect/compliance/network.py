"""Network checks: default-deny NetworkPolicies, required policies, Service types, ports.

``network.defaultDeny`` requires, in every namespace outside the system namespaces, a
NetworkPolicy that selects every pod (empty ``podSelector``) and denies all *ingress*:
``Ingress`` among its effective ``policyTypes`` and no ingress rules. ``policyTypes`` are
honoured: when absent they default the way the API server does (Ingress, plus Egress when
egress rules exist). A policy that denies egress only does not satisfy the check (egress deny
is not required, since that is what ``defaultDeny`` meant in the original tool). An
``ingress: [{}]`` rule allows everything and so does not deny; such an allow-all policy over
every pod also cancels a deny-all in the same namespace (policies add up), and is reported.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pytest_kspec.desired import CheckRef

from .base import (
    CheckResult,
    ComplianceOptions,
    Obj,
    OwnerResolver,
    Snapshot,
    Violation,
    cluster_violation,
    in_scope,
    iter_containers,
    name_of,
    namespace_of,
    result,
    violation,
)

RESOURCES: Mapping[str, list[tuple[str, str]]] = {
    "network.defaultDeny": [("v1", "Namespace"), ("networking.k8s.io/v1", "NetworkPolicy")],
    "network.requiredPolicy": [("networking.k8s.io/v1", "NetworkPolicy")],
    "network.allowedServiceTypes": [("v1", "Service")],
    "network.disallowedPorts": [("v1", "Service"), ("v1", "Pod")],
}


def policy_types(policy: Obj) -> list[str]:
    """Effective ``policyTypes``: as written, else the API server's default."""
    spec = policy.get("spec") or {}
    types = spec.get("policyTypes")
    if types:
        return [str(t) for t in types]
    return ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]


def selects_all_pods(policy: Obj) -> bool:
    """True when the policy's ``podSelector`` is empty (selects every pod in its namespace)."""
    selector = (policy.get("spec") or {}).get("podSelector") or {}
    return not selector.get("matchLabels") and not selector.get("matchExpressions")


def denies_all(policy: Obj, direction: str) -> bool:
    """True when the policy selects every pod and denies all ``Ingress``/``Egress`` traffic."""
    rules_key = direction.lower()
    return (selects_all_pods(policy) and direction in policy_types(policy)
            and not (policy.get("spec") or {}).get(rules_key))


def allows_all(policy: Obj, direction: str) -> bool:
    """True when the policy opens ``direction`` for every pod from/to everywhere on any port."""
    if not selects_all_pods(policy) or direction not in policy_types(policy):
        return False
    peer = "from" if direction == "Ingress" else "to"
    rules = (policy.get("spec") or {}).get(direction.lower()) or []
    return any(not rule.get(peer) and not rule.get("ports") for rule in rules)


def check_default_deny(ref: CheckRef, snapshot: Snapshot,
                       options: ComplianceOptions) -> CheckResult:
    """Namespaces without a NetworkPolicy denying all ingress to every pod."""
    by_ns: dict[str, list[Obj]] = {}
    for policy in snapshot.list("networking.k8s.io/v1", "NetworkPolicy"):
        by_ns.setdefault(namespace_of(policy) or "", []).append(policy)
    namespaces = [ns for ns in snapshot.list("v1", "Namespace")
                  if not options.skips(name_of(ns))]
    violations: list[Violation] = []
    for ns in namespaces:
        policies = sorted(by_ns.get(name_of(ns), []), key=name_of)
        deny = [p for p in policies if denies_all(p, "Ingress")]
        if deny:
            opened = [p for p in policies if allows_all(p, "Ingress")]
            if opened:
                violations.append(violation(
                    ns, f"NetworkPolicy {name_of(opened[0])} allows all ingress to every pod, "
                        f"overriding default deny {name_of(deny[0])}"))
            continue
        egress_only = [p for p in policies if denies_all(p, "Egress")]
        if egress_only:
            violations.append(violation(
                ns, f"NetworkPolicy {name_of(egress_only[0])} denies egress only; "
                    "no default-deny ingress policy"))
        else:
            violations.append(violation(ns, "no default-deny ingress NetworkPolicy"))
    return result(ref, violations, len(namespaces), "namespaces")


def check_required_policy(ref: CheckRef, snapshot: Snapshot,
                          options: ComplianceOptions) -> CheckResult:
    """A NetworkPolicy named ``rule.name`` exists in some namespace (system ones included)."""
    name = str(ref.rule.get("name", ""))
    policies = snapshot.list("networking.k8s.io/v1", "NetworkPolicy")
    found = sorted(str(namespace_of(p)) for p in policies if name_of(p) == name)
    if found:
        return CheckResult(ref=ref, violations=(), evaluated=len(policies),
                           summary=f"NetworkPolicy {name} found in {', '.join(found)}")
    missing = cluster_violation(f"NetworkPolicy/{name}", "not found in any namespace",
                                kind="NetworkPolicy")
    return CheckResult(ref=ref, violations=(missing,), evaluated=len(policies),
                       summary=f"NetworkPolicy {name} not found in any namespace")


def check_service_types(ref: CheckRef, snapshot: Snapshot,
                        options: ComplianceOptions) -> CheckResult:
    """Services whose ``spec.type`` (default ClusterIP) is not in ``allowedServiceTypes``."""
    allowed = [str(t) for t in ref.rule.get("allowedServiceTypes") or []]
    services = in_scope(snapshot.list("v1", "Service"), options)
    violations: list[Violation] = []
    for svc in services:
        kind = str((svc.get("spec") or {}).get("type") or "ClusterIP")
        if kind not in allowed:
            violations.append(violation(
                svc, f"type {kind} is not allowed (allowed: {', '.join(allowed)})"))
    return result(ref, violations, len(services), "services")


class PortsJudge:
    """``disallowedPorts`` compiled once: Services first (all at once), then each Pod with
    its top-level owner as it comes (the page-by-page pass feeds them a page at a time)."""

    def __init__(self, ref: CheckRef, options: ComplianceOptions) -> None:
        self.ref = ref
        self.options = options
        self.banned = {int(p) for p in ref.rule.get("disallowedPorts") or []}
        self.violations: list[Violation] = []
        self.evaluated = 0

    def services(self, services: Iterable[Obj]) -> None:
        for svc in in_scope(list(services), self.options):
            self.evaluated += 1
            hits = _hits(((f, p.get(f)) for p in (svc.get("spec") or {}).get("ports") or []
                          for f in ("port", "targetPort", "nodePort")), self.banned)
            if hits:
                self.violations.append(violation(svc, f"exposes disallowed {', '.join(hits)}"))

    def pod(self, pod: Obj, owner: str | None) -> None:
        """One Pod outside the skipped namespaces."""
        self.evaluated += 1
        for label, container in iter_containers(pod):
            ports = container.get("ports")
            if not ports:
                continue
            hits = _hits(((f, p.get(f)) for p in ports
                          for f in ("containerPort", "hostPort")), self.banned)
            if hits:
                self.violations.append(violation(
                    pod, f"{label} exposes disallowed {', '.join(hits)}",
                    container=str(container.get("name", "")), owner=owner))

    def finish(self) -> CheckResult:
        return result(self.ref, self.violations, self.evaluated, "services and pods")


def check_disallowed_ports(ref: CheckRef, snapshot: Snapshot,
                           options: ComplianceOptions) -> CheckResult:
    """Services (port, targetPort, nodePort) and containers (containerPort, hostPort) on a
    disallowed port; named targetPorts are not resolved."""
    judge = PortsJudge(ref, options)
    judge.services(snapshot.list("v1", "Service"))
    pods = in_scope(snapshot.list("v1", "Pod"), options)
    owners = OwnerResolver(snapshot)
    for pod in pods:
        judge.pod(pod, owners.owner(pod))
    return judge.finish()


def _hits(pairs: Iterable[tuple[str, Any]], banned: set[int]) -> list[str]:
    out: list[str] = []
    for field_name, value in pairs:
        if isinstance(value, int) and not isinstance(value, bool) and value in banned:
            text = f"{field_name} {value}"
            if text not in out:
                out.append(text)
    return out
