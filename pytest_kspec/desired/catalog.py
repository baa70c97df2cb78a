"""The check catalog: which compliance and configuration checks a spec asks for, and their ids.

Check ids are part of the node-id contract (``<spec>::compliance::<id>``) and the history keys
on them, so the rules that build them are fixed here, in one place, and never depend on
anything but the spec. A spec rule gives exactly one check; only sections present in the
spec give checks.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

COMPLIANCE = "compliance"
CONFIGURATION = "configuration"

# The original tool's coarse check ids, still accepted in ``compliance.frameworks`` mappings:
# each stands for every finer check whose id starts with one of its prefixes.
LEGACY_GROUPS: Mapping[str, tuple[str, ...]] = {
    "kubernetes.version": ("kubernetes.version",),
    "podsecurity.standards": ("podsecurity.",),
    "network.policies": ("network.",),
    "workload.security": ("workloads.",),
    "rbac.validation": ("rbac.",),
    "admission.controllers": ("admission.",),
    "observability.validation": ("observability.",),
}

# Skipped by workload and pod-security checks (and excluded from generated policies) unless a
# spec's podSecurity.exemptions bring one in.
SYSTEM_NAMESPACES: tuple[str, ...] = ("kube-system", "kube-public", "kube-node-lease")

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Control:
    """A compliance-framework control that maps to a check (``compliance.frameworks``)."""

    framework: str
    revision: str
    id: str
    title: str

    def label(self) -> str:
        """Short form for reports, e.g. ``CIS-1.8:5.2.1``."""
        rev = f"-{self.revision}" if self.revision else ""
        return f"{self.framework}{rev}:{self.id}"


@dataclass(frozen=True)
class CheckRef:
    """One check the spec asks for.

    ``kind`` selects the evaluator (``workloads.containers.forbidden``), ``id`` is the stable
    id in node ids, ``rule`` the spec fragment the check enforces and ``spec_path`` where it
    stands in the spec (``spec.workloads.containers.forbidden[0]``).
    """

    type: str
    id: str
    kind: str
    title: str
    severity: str
    spec_path: str
    rule: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)


def slug(text: str) -> str:
    """Make ``text`` safe inside a node id: keep letters, digits, ``_ . -``; ``*`` reads ``all``."""
    text = text.replace("*", "all")
    return _UNSAFE.sub("_", text).strip("_") or "_"


def enumerate_checks(body: Mapping[str, Any]) -> list[CheckRef]:
    """All checks that the ``spec`` section ``body`` asks for, in spec order, ids unique."""
    refs = list(_kubernetes(body)) + list(_pod_security(body)) + list(_network(body))
    refs += list(_workloads(body)) + list(_rbac(body)) + list(_admission(body))
    refs += list(_observability(body))
    return _deduplicate(refs)


def check_ids(body: Mapping[str, Any]) -> list[str]:
    """The ids of :func:`enumerate_checks`, in order."""
    return [ref.id for ref in enumerate_checks(body)]


def resolve_mapping(check: str, ids: Sequence[str]) -> list[str]:
    """The check ids a ``mappings[].check`` value stands for (empty when it names none)."""
    if check in ids:
        return [check]
    prefixes = LEGACY_GROUPS.get(check)
    if prefixes is None:
        return []
    return [i for i in ids if i.startswith(prefixes)]


def controls_by_check(
    body: Mapping[str, Any], extra_ids: Sequence[str] = ()
) -> dict[str, list[Control]]:
    """Map each check id (and each id in ``extra_ids``, e.g. policy names) to its controls."""
    ids = check_ids(body) + list(extra_ids)
    out: dict[str, list[Control]] = {}
    compliance = body.get("compliance") or {}
    for fw in compliance.get("frameworks") or []:
        for ctl in fw.get("controls") or []:
            control = Control(
                framework=str(fw.get("name", "")),
                revision=str(fw.get("revision", "")),
                id=str(ctl.get("id", "")),
                title=str(ctl.get("title", "")),
            )
            for mapping in ctl.get("mappings") or []:
                for check_id in resolve_mapping(str(mapping.get("check", "")), ids):
                    bucket = out.setdefault(check_id, [])
                    if control not in bucket:
                        bucket.append(control)
    return out


def _deduplicate(refs: list[CheckRef]) -> list[CheckRef]:
    seen: dict[str, int] = {}
    out: list[CheckRef] = []
    for ref in refs:
        n = seen.get(ref.id, 0) + 1
        seen[ref.id] = n
        if n > 1:
            ref = CheckRef(ref.type, f"{ref.id}-{n}", ref.kind, ref.title, ref.severity,
                           ref.spec_path, ref.rule)
        out.append(ref)
    return out


def _kubernetes(body: Mapping[str, Any]) -> Iterator[CheckRef]:
    k8s = body.get("kubernetes")
    if not k8s:
        return
    yield CheckRef(CONFIGURATION, "kubernetes.version", "kubernetes.version",
                   "Kubernetes version is within the allowed range", "high",
                   "spec.kubernetes", k8s)


def _pod_security(body: Mapping[str, Any]) -> Iterator[CheckRef]:
    pss = body.get("podSecurity")
    if not pss:
        return
    exemptions = list(pss.get("exemptions") or [])
    for mode, severity in (("enforce", "high"), ("audit", "medium"), ("warn", "low")):
        level = pss.get(mode)
        if level is None:
            continue
        yield CheckRef(COMPLIANCE, f"podsecurity.{mode}", "podsecurity.level",
                       f"Namespaces carry pod-security.kubernetes.io/{mode}={level}", severity,
                       f"spec.podSecurity.{mode}",
                       {"mode": mode, "level": level, "exemptions": exemptions})


def _network(body: Mapping[str, Any]) -> Iterator[CheckRef]:
    net = body.get("network")
    if not net:
        return
    if net.get("defaultDeny"):
        yield CheckRef(COMPLIANCE, "network.defaultDeny", "network.defaultDeny",
                       "Every application namespace has a default-deny NetworkPolicy", "high",
                       "spec.network.defaultDeny", {"defaultDeny": True})
    for i, req in enumerate(net.get("requiredPolicies") or []):
        name = str(req.get("name", ""))
        yield CheckRef(COMPLIANCE, f"network.requiredPolicies.{slug(name)}",
                       "network.requiredPolicy", f"NetworkPolicy {name} exists", "medium",
                       f"spec.network.requiredPolicies[{i}]", req)
    if net.get("allowedServiceTypes"):
        yield CheckRef(COMPLIANCE, "network.allowedServiceTypes", "network.allowedServiceTypes",
                       "Services use only allowed types", "medium",
                       "spec.network.allowedServiceTypes",
                       {"allowedServiceTypes": list(net["allowedServiceTypes"])})
    if net.get("disallowedPorts"):
        yield CheckRef(COMPLIANCE, "network.disallowedPorts", "network.disallowedPorts",
                       "No Service or container exposes a disallowed port", "medium",
                       "spec.network.disallowedPorts",
                       {"disallowedPorts": list(net["disallowedPorts"])})


_CONTAINER_SEVERITY: Mapping[str, str] = {
    "securityContext.privileged": "high",
    "hostNetwork": "high",
    "hostPID": "high",
    "hostIPC": "high",
    "securityContext.allowPrivilegeEscalation": "high",
    "securityContext.runAsNonRoot": "medium",
}


def _workloads(body: Mapping[str, Any]) -> Iterator[CheckRef]:
    workloads = body.get("workloads") or {}
    containers = workloads.get("containers") or {}
    for which in ("required", "forbidden"):
        rules = list(containers.get(which) or [])
        last = [str(r.get("key", "")).rsplit(".", 1)[-1] for r in rules]
        for i, rule in enumerate(rules):
            key = str(rule.get("key", ""))
            name = last[i] if last.count(last[i]) == 1 or _same_key(rules, last[i]) else key
            verb = "must" if which == "required" else "must not"
            yield CheckRef(COMPLIANCE, f"workloads.containers.{which}.{slug(name)}",
                           f"workloads.containers.{which}",
                           f"Containers {verb} set {key}{_value_text(rule)}",
                           _CONTAINER_SEVERITY.get(key, "medium"),
                           f"spec.workloads.containers.{which}[{i}]", rule)
    images = workloads.get("images") or {}
    for name, severity, title in (
        ("allowedRegistries", "high", "Images come only from allowed registries"),
        ("blockedRegistries", "high", "No image comes from a blocked registry"),
        ("requireDigests", "medium", "Images are pinned by digest"),
        ("requireSignatures", "medium", "Images carry a verified signature"),
    ):
        if images.get(name):
            yield CheckRef(COMPLIANCE, f"workloads.images.{name}", f"workloads.images.{name}",
                           title, severity, f"spec.workloads.images.{name}",
                           {name: images[name]})


def _same_key(rules: Sequence[Mapping[str, Any]], last: str) -> bool:
    keys = {str(r.get("key", "")) for r in rules}
    keys = {k for k in keys if k.rsplit(".", 1)[-1] == last}
    return len(keys) == 1


def _value_text(rule: Mapping[str, Any]) -> str:
    if "value" in rule:
        value = rule["value"]
        return f"={str(value).lower() if isinstance(value, bool) else value}"
    return ""


def _rbac(body: Mapping[str, Any]) -> Iterator[CheckRef]:
    rbac = body.get("rbac") or {}
    for which, kind, severity in (("minimumRules", "rbac.minimumRule", "medium"),
                                  ("forbiddenRules", "rbac.forbiddenRule", "high")):
        for i, rule in enumerate(rbac.get(which) or []):
            group = str(rule.get("apiGroup", "")) or "core"
            resource = str(rule.get("resource", ""))
            verbs = "-".join(str(v) for v in rule.get("verbs") or [])
            title = (f"Some role grants {verbs} on {group}/{resource}" if which == "minimumRules"
                     else f"No role grants {verbs} on {group}/{resource}")
            yield CheckRef(COMPLIANCE, f"rbac.{which}.{slug(group)}.{slug(resource)}.{slug(verbs)}",
                           kind, title, severity, f"spec.rbac.{which}[{i}]", rule)


def _admission(body: Mapping[str, Any]) -> Iterator[CheckRef]:
    admission = body.get("admission") or {}
    for i, req in enumerate(admission.get("required") or []):
        kind = str(req.get("type", ""))
        pattern = str(req.get("namePattern", ""))
        yield CheckRef(COMPLIANCE, f"admission.required.{slug(kind)}.{slug(pattern)}",
                       "admission.required",
                       f"At least {req.get('minCount', 1)} {kind} matching /{pattern}/", "high",
                       f"spec.admission.required[{i}]", req)
    policies = admission.get("policies") or {}
    if policies.get("minCount") is not None:
        yield CheckRef(COMPLIANCE, "admission.policies.minCount", "admission.policies.minCount",
                       f"At least {policies['minCount']} Kyverno ClusterPolicies", "high",
                       "spec.admission.policies.minCount", {"minCount": policies["minCount"]})


def _observability(body: Mapping[str, Any]) -> Iterator[CheckRef]:
    obs = body.get("observability") or {}
    metrics = obs.get("metrics") or {}
    if metrics.get("required"):
        yield CheckRef(COMPLIANCE, "observability.metrics", "observability.metrics",
                       "A metrics provider runs in the cluster", "medium",
                       "spec.observability.metrics", metrics)
    audit = (obs.get("logging") or {}).get("auditLog") or {}
    if audit.get("required"):
        yield CheckRef(COMPLIANCE, "observability.logging.auditLog", "observability.auditLog",
                       "API server audit logging is on with the required retention", "medium",
                       "spec.observability.logging.auditLog", audit)


# Kyverno ClusterPolicies generated from the spec, in the order they are generated. The names
# are the original tool's (users already know them); the triggers are the spec rules below.
GENERATED_POLICIES: tuple[str, ...] = (
    "require-run-as-non-root",
    "disallow-privilege-escalation",
    "require-resource-limits",
    "disallow-privileged-containers",
    "disallow-host-namespaces",
    "require-image-digests",
    "block-image-registries",
)

HOST_NAMESPACE_KEYS: tuple[str, ...] = ("hostNetwork", "hostPID", "hostIPC")


def as_bool(value: Any) -> bool | None:
    """A spec ``value`` written as YAML bool or string (``true``, ``"true"``); None if neither."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def _rule_is(rule: Mapping[str, Any], key: str, value: bool) -> bool:
    if rule.get("key") != key:
        return False
    if "value" in rule:
        return as_bool(rule["value"]) is value
    return value is True and rule.get("exists") is True


def generated_policy_names(body: Mapping[str, Any]) -> list[str]:
    """Names of the Kyverno ClusterPolicies kspec generates for this spec, in fixed order."""
    workloads = body.get("workloads") or {}
    containers = workloads.get("containers") or {}
    required = list(containers.get("required") or [])
    forbidden = list(containers.get("forbidden") or [])
    images = workloads.get("images") or {}
    wanted = {
        "require-run-as-non-root": any(
            _rule_is(r, "securityContext.runAsNonRoot", True) for r in required),
        "disallow-privilege-escalation": any(
            _rule_is(r, "securityContext.allowPrivilegeEscalation", False) for r in required)
        or any(_rule_is(r, "securityContext.allowPrivilegeEscalation", True) for r in forbidden),
        "require-resource-limits": any(
            str(r.get("key", "")).startswith("resources.limits.")
            and (r.get("exists") is True or ("value" in r and r.get("exists") is not False))
            for r in required),
        "disallow-privileged-containers": any(
            _rule_is(r, "securityContext.privileged", True) for r in forbidden),
        "disallow-host-namespaces": any(
            _rule_is(r, key, True) for r in forbidden for key in HOST_NAMESPACE_KEYS),
        "require-image-digests": images.get("requireDigests") is True,
        "block-image-registries": bool(images.get("blockedRegistries"))
        or bool(images.get("allowedRegistries")),
    }
    return [name for name in GENERATED_POLICIES if wanted[name]]


def required_policy_names(body: Mapping[str, Any]) -> list[str]:
    """``admission.policies.requiredPolicies`` kspec does not generate: expected by name only."""
    generated = set(generated_policy_names(body))
    policies = (body.get("admission") or {}).get("policies") or {}
    out: list[str] = []
    for req in policies.get("requiredPolicies") or []:
        name = str(req.get("name", ""))
        if name and name not in generated and name not in out:
            out.append(name)
    return out


def expected_policy_names(body: Mapping[str, Any]) -> list[str]:
    """Every policy item's name: generated ones first, then presence-only required ones."""
    return generated_policy_names(body) + required_policy_names(body)


# Container settings that Pod Security Standards govern, and the lowest PSS level that stops
# requiring them. A namespace exempted to that level (podSecurity.exemptions) is exempt from
# the matching workload checks and generated policies: an exemption to ``privileged`` for
# node exporters must not be contradicted by a "no privileged containers" rule.
_RESTRICTED_ONLY: tuple[str, ...] = (
    "securityContext.runAsNonRoot",
    "securityContext.runAsUser",
    "securityContext.allowPrivilegeEscalation",
    "securityContext.seccompProfile",
    "securityContext.capabilities.drop",
)
POLICY_PSS_KEYS: Mapping[str, str] = {
    "require-run-as-non-root": "securityContext.runAsNonRoot",
    "disallow-privilege-escalation": "securityContext.allowPrivilegeEscalation",
    "disallow-privileged-containers": "securityContext.privileged",
    "disallow-host-namespaces": "hostNetwork",
}


def pss_exempts(level: str, key: str) -> bool:
    """Whether a namespace at PSS ``level`` is exempt from container rule ``key``."""
    if level == "privileged":
        return key.startswith("securityContext.") or key in HOST_NAMESPACE_KEYS
    if level == "baseline":
        return key.startswith(_RESTRICTED_ONLY)
    return False


def exemption_levels(body: Mapping[str, Any]) -> dict[str, str]:
    """``podSecurity.exemptions`` as namespace → level."""
    pss = body.get("podSecurity") or {}
    return {str(e.get("namespace")): str(e.get("level"))
            for e in pss.get("exemptions") or [] if e.get("namespace")}


def exempt_namespaces(body: Mapping[str, Any], key: str) -> list[str]:
    """Namespaces whose exemption level exempts them from container rule ``key``, sorted."""
    return sorted(ns for ns, level in exemption_levels(body).items() if pss_exempts(level, key))
