"""Container rules (``workloads.containers.required``/``forbidden``) evaluated over live Pods.

A rule is ``{key, value?, exists?}``. ``key`` is a dotted path:

- inside a container when its first segment is a Container field (``securityContext.privileged``,
  ``resources.limits.cpu``); every container, initContainer and ephemeralContainer is checked
  and each offending one gives a violation naming it (``initContainer "setup"``);
- in the PodSpec otherwise (``hostNetwork``, ``hostPID``, ``automountServiceAccountToken``) or
  when written ``spec.<path>``; ``metadata.<path>`` reads pod metadata. Pod-level keys give one
  violation per pod.

``securityContext.<f>`` for a field both PodSecurityContext and SecurityContext define
(``runAsNonRoot``, ``runAsUser``, ``runAsGroup``, ``seccompProfile``, ``seLinuxOptions``,
``windowsOptions``, ``appArmorProfile``) falls back to the pod's ``securityContext`` when the
container does not set it: the container value overrides the pod value, as the kubelet does.

Semantics: required + ``value`` → must equal; required (+ ``exists: true`` or neither) → must be
present; forbidden + ``value`` → must not equal; forbidden (+ ``exists: true`` or neither) →
must not be present; ``exists: false`` flips presence. Values compare as a spec author means
them: ``true`` equals ``"true"``, ``1000`` equals ``"1000"``, and two quantities compare as
quantities (``0.5Gi`` equals ``512Mi``), as Kyverno compares them.

Ephemeral containers are exempt from ``resources.*`` rules: the API server forbids
``resources`` on them, so such a rule could never be met (a ``kubectl debug`` session would
be drift forever).

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_kspec.desired import CheckRef, same_quantity

from . import podspecs
from .base import (
    CheckResult,
    ComplianceError,
    ComplianceOptions,
    Obj,
    Snapshot,
    Violation,
    display,
    iter_containers,
    namespace_of,
    result,
    violation,
)

RESOURCES: Mapping[str, list[tuple[str, str]]] = {
    "workloads.containers.required": podspecs.POD_RESOURCES,
    "workloads.containers.forbidden": podspecs.POD_RESOURCES,
}

CONTAINER_FIELDS: frozenset[str] = frozenset({
    "name", "image", "command", "args", "workingDir", "ports", "envFrom", "env", "resources",
    "resizePolicy", "restartPolicy", "restartPolicyRules", "volumeMounts", "volumeDevices",
    "livenessProbe", "readinessProbe", "startupProbe", "lifecycle", "terminationMessagePath",
    "terminationMessagePolicy", "imagePullPolicy", "securityContext", "stdin", "stdinOnce",
    "tty", "targetContainerName",
})

# Fields of SecurityContext that PodSecurityContext also has: the pod value is the default.
SHARED_SECURITY_FIELDS: frozenset[str] = frozenset({
    "runAsUser", "runAsGroup", "runAsNonRoot", "seLinuxOptions", "seccompProfile",
    "windowsOptions", "appArmorProfile",
})

_MISSING = object()


@dataclass(frozen=True)
class Rule:
    """A parsed container rule: where the key lives and what it demands."""

    key: str
    parts: tuple[str, ...]
    scope: str  # "container", "spec" (PodSpec) or "metadata"
    has_value: bool
    value: Any
    must_exist: bool

    @classmethod
    def parse(cls, rule: Mapping[str, Any], where: str) -> Rule:
        """Read a ``{key, value?, exists?}`` rule; ``where`` names it in errors."""
        key = str(rule.get("key", "")).strip()
        parts = tuple(p for p in key.split("."))
        if not key or any(not p for p in parts):
            raise ComplianceError(f"{where}.key: {key!r} is not a dotted path "
                                  "(e.g. securityContext.privileged)")
        if parts[0] in ("spec", "metadata") and len(parts) > 1:
            scope, parts = parts[0], parts[1:]
        elif parts[0] in CONTAINER_FIELDS:
            scope = "container"
        else:
            scope = "spec"
        exists = rule.get("exists")
        return cls(key=key, parts=parts, scope=scope, has_value="value" in rule,
                   value=rule.get("value"), must_exist=exists is not False)


def lookup(obj: Any, parts: Sequence[str]) -> Any:
    """The value at dotted ``parts`` inside ``obj`` (keys may contain dots), or ``_MISSING``."""
    if not parts:
        return _MISSING if obj is None else obj
    if isinstance(obj, Mapping):
        for j in range(len(parts), 0, -1):
            candidate = ".".join(parts[:j])
            if candidate in obj:
                found = lookup(obj[candidate], parts[j:])
                if found is not _MISSING:
                    return found
        return _MISSING
    if isinstance(obj, list) and parts[0].isdigit() and int(parts[0]) < len(obj):
        return lookup(obj[int(parts[0])], parts[1:])
    return _MISSING


def same_value(actual: Any, wanted: Any) -> bool:
    """Equality the way spec authors mean it: ``true``/``"true"``, ``1000``/``"1000"``, and
    quantities as quantities (``0.5Gi`` == ``512Mi``)."""
    as_quantities = same_quantity(actual, wanted)
    if as_quantities is not None:
        return as_quantities
    return _norm(actual) == _norm(wanted)


def _norm(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return display(value)
    if isinstance(value, str):
        text = value.strip()
        return text.lower() if text.lower() in ("true", "false") else text
    return json.dumps(value, sort_keys=True, default=str)


def _container_value(pod: Obj, container: Mapping[str, Any], rule: Rule) -> tuple[Any, bool]:
    """(value, inherited from the pod securityContext) for a container-scoped rule."""
    value = lookup(container, rule.parts)
    if (value is _MISSING and len(rule.parts) > 1 and rule.parts[0] == "securityContext"
            and rule.parts[1] in SHARED_SECURITY_FIELDS):
        own = lookup(container, rule.parts[:2])
        if own is _MISSING:
            pod_value = lookup((pod.get("spec") or {}).get("securityContext"), rule.parts[1:])
            if pod_value is not _MISSING:
                return pod_value, True
    return value, False


def _problem(rule: Rule, required: bool, who: str, value: Any, inherited: bool) -> str | None:
    """The violation message for one container/pod, or None when it complies."""
    present = value is not _MISSING
    via = " (pod securityContext)" if inherited else ""
    shown = f"{rule.key}={display(value)}{via}" if present else rule.key
    if required:
        if rule.has_value:
            if not present:
                return f"{who} does not set {rule.key}, want {display(rule.value)}"
            if not same_value(value, rule.value):
                return f"{who} sets {shown}, want {display(rule.value)}"
            return None
        if rule.must_exist and not present:
            return f"{who} does not set {rule.key}"
        if not rule.must_exist and present:
            return f"{who} sets {shown}, which must be absent"
        return None
    if rule.has_value:
        return f"{who} sets {shown}" if present and same_value(value, rule.value) else None
    if rule.must_exist and present:
        return f"{who} sets {shown}"
    if not rule.must_exist and not present:
        return f"{who} does not set {rule.key}"
    return None


def check_containers(ref: CheckRef, snapshot: Snapshot,
                     options: ComplianceOptions) -> CheckResult:
    """Containers (or pods, for pod-level keys) that break a required/forbidden rule."""
    required = ref.kind.endswith(".required")
    rule = Rule.parse(ref.rule, ref.spec_path)
    judged = [u for u in podspecs.units(snapshot, options)
              if not options.exempts(namespace_of(u.obj), rule.key)]
    violations: list[Violation] = []
    for unit in judged:
        pod = unit.pod
        if rule.scope != "container":
            source = pod.get(rule.scope) or {}
            msg = _problem(rule, required, "pod", lookup(source, rule.parts), False)
            if msg:
                violations.append(violation(unit.obj, msg, owner=unit.owner))
            continue
        for label, container in iter_containers(pod):
            if rule.parts[0] == "resources" and label.startswith("ephemeralContainer"):
                continue  # the API server forbids resources on ephemeral containers
            value, inherited = _container_value(pod, container, rule)
            msg = _problem(rule, required, label, value, inherited)
            if msg:
                violations.append(violation(unit.obj, msg,
                                            container=str(container.get("name", "")),
                                            owner=unit.owner))
    return result(ref, podspecs.collapse(judged, violations), len(judged), podspecs.NOUN)
