"""Rule bodies of the Kyverno ClusterPolicies kspec generates, one builder per policy name.

Written in the idiom of the kyverno/policies library (anchored ``pattern`` / ``anyPattern``
for field checks, ``foreach`` + ``deny.conditions`` for list membership) but derived from the
spec: which limits, which host namespaces, which registries all come from the spec's rules.
Which policies exist at all is decided by :mod:`pytest_kspec.desired.catalog`; this module only
says what each one contains. :mod:`pytest_kspec.desired.expected` wraps the result in
ClusterPolicy objects.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_kspec.desired import catalog, imagerefs

# Excluded from every generated rule. kspec's own compliance checks skip these namespaces
# (spec-format.md), and an Enforce policy that reached them would block kube-proxy, CNI and
# CSI daemons (hostNetwork, privileged) the next time they roll. Admission and audit must
# agree, or a cluster would pass `kspec drift detect` while Kyverno rejects its own system
# pods, or the reverse. Kyverno's library policies do not exclude them because they ship in
# Audit; ours ship in Enforce.
SYSTEM_NAMESPACES: tuple[str, ...] = catalog.SYSTEM_NAMESPACES

ENFORCE = "Enforce"

# All three container lists, ephemeral first, as the Kyverno library writes it.
CONTAINER_LISTS = "request.object.spec.[ephemeralContainers, initContainers, containers][]"


@dataclass(frozen=True)
class PolicyBody:
    """What one generated policy says: its annotations and its rules."""

    title: str
    category: str
    severity: str
    description: str
    rules: list[dict[str, Any]]


# ---------------------------------------------------------------------------------- helpers


def _match() -> dict[str, Any]:
    return {"any": [{"resources": {"kinds": ["Pod"]}}]}


def _exclude() -> dict[str, Any]:
    return {"any": [{"resources": {"kinds": ["Pod"], "namespaces": list(SYSTEM_NAMESPACES)}}]}


def _rule(name: str, message: str, check: Mapping[str, Any],
          preconditions: Mapping[str, Any] | None = None) -> dict[str, Any]:
    # Rule-level ``failureAction`` is what Kyverno >= 1.13 reads (and it overrides the
    # spec-level field); older Kyverno only knows ``spec.validationFailureAction``. expected.py
    # sets both so the policy enforces on every Kyverno a team may run.
    rule: dict[str, Any] = {"name": name, "match": _match(), "exclude": _exclude()}
    if preconditions is not None:
        rule["preconditions"] = dict(preconditions)
    rule["validate"] = {"failureAction": ENFORCE, "message": message, **check}
    return rule


def _containers(pattern: Mapping[str, Any], *, ephemeral: bool = True) -> dict[str, Any]:
    """The same per-container pattern for containers, initContainers and ephemeralContainers.

    ``containers`` is required by the Pod schema; the other two lists are optional, hence the
    ``=()`` conditional anchors (checked only when present).
    """
    out: dict[str, Any] = {}
    if ephemeral:
        out["=(ephemeralContainers)"] = [copy.deepcopy(dict(pattern))]
    out["=(initContainers)"] = [copy.deepcopy(dict(pattern))]
    out["containers"] = [copy.deepcopy(dict(pattern))]
    return out


def _not_delete() -> dict[str, Any]:
    # deny rules see DELETE requests too; never stop a Pod from being deleted.
    return {"all": [{"key": "{{ request.operation || 'BACKGROUND' }}",
                     "operator": "NotEquals", "value": "DELETE"}]}


def _triggering(body: Mapping[str, Any], which: str, policy: str) -> list[Mapping[str, Any]]:
    """Rules of ``workloads.containers.<which>`` that on their own make the catalog generate
    ``policy`` — the catalog's triggers, reused rule by rule rather than re-implemented."""
    containers = (body.get("workloads") or {}).get("containers") or {}
    out: list[Mapping[str, Any]] = []
    for rule in containers.get(which) or []:
        alone = {"workloads": {"containers": {which: [rule]}}}
        if policy in catalog.generated_policy_names(alone):
            out.append(rule)
    return out


def _scalar(value: Any) -> str:
    """A spec value as a Kyverno pattern string (bools lower-case, like the library writes)."""
    as_bool = catalog.as_bool(value)
    if as_bool is not None:
        return "true" if as_bool else "false"
    return str(value)


def _fields(names: Sequence[str]) -> str:
    paths = [f"spec.{lst}[*].{name}" for lst in ("containers", "initContainers",
                                                 "ephemeralContainers") for name in names]
    return ", ".join(paths)


# --------------------------------------------------------------------------------- builders


def _run_as_non_root(body: Mapping[str, Any]) -> PolicyBody:
    # Satisfied at pod level (every container may leave it unset, none may set false) or at
    # container level (every container sets it true) — the library's anyPattern idiom.
    pod_level = {"securityContext": {"runAsNonRoot": "true"},
                 **_containers({"=(securityContext)": {"=(runAsNonRoot)": "true"}})}
    container_level = _containers({"securityContext": {"runAsNonRoot": "true"}})
    message = ("Running as root is not allowed. Set spec.securityContext.runAsNonRoot to true, "
               "or set securityContext.runAsNonRoot to true in every container, init container "
               "and ephemeral container.")
    rule = _rule("run-as-non-root", message,
                 {"anyPattern": [{"spec": pod_level}, {"spec": container_level}]})
    return PolicyBody(
        "Require runAsNonRoot", "Pod Security Standards (Restricted)", "medium",
        "Containers must run as a non-root user: runAsNonRoot must be true at pod level or in "
        "every container (containers, initContainers, ephemeralContainers).", [rule])


def _privilege_escalation(body: Mapping[str, Any]) -> PolicyBody:
    required = _triggering(body, "required", "disallow-privilege-escalation")
    if required:
        # spec requires allowPrivilegeEscalation=false: it must be written, as in PSS Restricted.
        pattern: dict[str, Any] = {"securityContext": {"allowPrivilegeEscalation": "false"}}
        wording = "must be set to false"
    else:
        # spec only forbids allowPrivilegeEscalation=true: unset is acceptable.
        pattern = {"=(securityContext)": {"=(allowPrivilegeEscalation)": "false"}}
        wording = "must be unset or set to false"
    message = ("Privilege escalation is disallowed. The fields "
               f"{_fields(['securityContext.allowPrivilegeEscalation'])} {wording}.")
    rule = _rule("privilege-escalation", message, {"pattern": {"spec": _containers(pattern)}})
    return PolicyBody(
        "Disallow Privilege Escalation", "Pod Security Standards (Restricted)", "high",
        f"Privilege escalation (setuid binaries, file capabilities) is disallowed: "
        f"allowPrivilegeEscalation {wording} in every container.", [rule])


def _resource_limits(body: Mapping[str, Any]) -> PolicyBody:
    limits: dict[str, str] = {}
    for rule in _triggering(body, "required", "require-resource-limits"):
        name = str(rule["key"])[len("resources.limits."):]
        if name and name not in limits:
            limits[name] = _scalar(rule["value"]) if "value" in rule else "?*"
    wanted = ", ".join(sorted(limits))
    message = (f"Resource limits are required: set resources.limits ({wanted}) in every "
               "container and init container.")
    # Not ephemeralContainers: the API server forbids resources on them, so requiring limits
    # there would reject every `kubectl debug`.
    pattern = {"resources": {"limits": dict(sorted(limits.items()))}}
    rule = _rule("require-limits", message,
                 {"pattern": {"spec": _containers(pattern, ephemeral=False)}})
    return PolicyBody(
        "Require Resource Limits", "Best Practices", "medium",
        f"Containers must declare resource limits ({wanted}) so one workload cannot starve a "
        "node. Ephemeral containers cannot carry resources and are not checked.", [rule])


def _privileged(body: Mapping[str, Any]) -> PolicyBody:
    pattern = {"=(securityContext)": {"=(privileged)": "false"}}
    message = ("Privileged mode is disallowed. The fields "
               f"{_fields(['securityContext.privileged'])} must be unset or set to false.")
    rule = _rule("privileged-containers", message, {"pattern": {"spec": _containers(pattern)}})
    return PolicyBody(
        "Disallow Privileged Containers", "Pod Security Standards (Baseline)", "high",
        "Privileged mode disables most isolation between a container and its node and must "
        "not be allowed in any container, init container or ephemeral container.", [rule])


def _host_namespaces(body: Mapping[str, Any]) -> PolicyBody:
    forbidden = {str(r["key"]) for r in _triggering(body, "forbidden", "disallow-host-namespaces")}
    keys = [k for k in catalog.HOST_NAMESPACE_KEYS if k in forbidden]
    names = ", ".join(f"spec.{k}" for k in keys)
    message = f"Sharing the host namespaces is disallowed. The fields {names} must be unset or " \
              "set to false."
    rule = _rule("host-namespaces", message,
                 {"pattern": {"spec": {f"=({k})": "false" for k in keys}}})
    return PolicyBody(
        "Disallow Host Namespaces", "Pod Security Standards (Baseline)", "high",
        f"Pods must not share the node's namespaces ({', '.join(keys)}): that exposes host "
        "processes, IPC and network to the container.", [rule])


def _each_container(message: str, key: str, value: bool) -> dict[str, Any]:
    """validate: deny when the JMESPath ``key`` (per container) equals ``value``."""
    condition = {"key": key, "operator": "Equals", "value": value}
    return {"message": message,
            "foreach": [{"list": CONTAINER_LISTS, "deny": {"conditions": {"any": [condition]}}}]}


def _image_digests(body: Mapping[str, Any]) -> PolicyBody:
    # A digest is @sha256: and 64 hex digits (imagerefs.DIGEST_REGEX); a wildcard pattern
    # such as `*@sha256:?*` would admit `app@sha256:x`.
    message = ("Images must be pinned by digest (image@sha256: and 64 hex digits) in every "
               "container, init container and ephemeral container.")
    check = _each_container(
        message, f"{{{{ regex_match('{imagerefs.DIGEST_REGEX}', element.image) }}}}", False)
    check.pop("message")
    rule = _rule("require-image-digest", message, check, _not_delete())
    return PolicyBody(
        "Require Image Digests", "Supply Chain Security", "medium",
        "Tags are mutable; a digest names exactly one image. Every image reference must carry "
        "a sha256 digest of 64 hex digits.", [rule])


def _registry_key(entries: Sequence[str]) -> str:
    """Whether the container's image falls under ``entries``, as kspec means it: the
    canonical host/path of the normalized image against the entries' host-first regex."""
    regex = imagerefs.registry_regex(entries)  # punctuation is escaped: no bare quote
    return f"{{{{ regex_match('{regex}', {imagerefs.KYVERNO_IMAGE_NAME}) }}}}"


def _registries(body: Mapping[str, Any]) -> PolicyBody:
    # Not wildcard patterns or AnyIn/AnyNotIn: Kyverno's `*` crosses `/`, so `*.example.com/*`
    # would admit `evil.io/x.example.com/app`, and `quay.io` would be an exact string. The
    # image is normalized (image_normalize), reduced to its canonical host/path (Docker Hub
    # aliases and library/ folded) and matched against one regular expression whose host part
    # cannot cross into the path: the same meaning the compliance check applies
    # (pytest_kspec.desired.imagerefs).
    images = (body.get("workloads") or {}).get("images") or {}
    rules: list[dict[str, Any]] = []
    parts: list[str] = []
    blocked = [str(g) for g in images.get("blockedRegistries") or []]
    allowed = [str(g) for g in images.get("allowedRegistries") or []]
    if blocked:
        message = (f"Images from blocked registries ({', '.join(blocked)}) are not allowed in "
                   "any container, init container or ephemeral container.")
        check = _each_container(message, _registry_key(blocked), True)
        check.pop("message")
        rules.append(_rule("block-registries", message, check, _not_delete()))
        parts.append(f"no image may come from {', '.join(blocked)}")
    if allowed:
        message = (f"Images must come from an allowed registry ({', '.join(allowed)}) in every "
                   "container, init container and ephemeral container.")
        check = _each_container(message, _registry_key(allowed), False)
        check.pop("message")
        rules.append(_rule("allowed-registries", message, check, _not_delete()))
        parts.append(f"every image must come from {', '.join(allowed)}")
    return PolicyBody(
        "Restrict Image Registries", "Supply Chain Security", "high",
        "Images are pulled only from registries the cluster spec trusts: "
        + "; ".join(parts) + ". A bare host or host/path covers everything under it; Docker "
        "Hub's aliases and library/ images count as docker.io.", rules)


BUILDERS: Mapping[str, Callable[[Mapping[str, Any]], PolicyBody]] = {
    "require-run-as-non-root": _run_as_non_root,
    "disallow-privilege-escalation": _privilege_escalation,
    "require-resource-limits": _resource_limits,
    "disallow-privileged-containers": _privileged,
    "disallow-host-namespaces": _host_namespaces,
    "require-image-digests": _image_digests,
    "block-image-registries": _registries,
}


def build(name: str, body: Mapping[str, Any]) -> PolicyBody:
    """The annotations and rules of generated policy ``name`` for the spec section ``body``."""
    try:
        builder = BUILDERS[name]
    except KeyError:
        raise KeyError(f"no builder for generated policy {name!r}") from None
    return builder(body)
