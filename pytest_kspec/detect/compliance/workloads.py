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
    CONTAINER_KINDS,
    CheckResult,
    ComplianceError,
    ComplianceOptions,
    Snapshot,
    Violation,
    display,
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


class Accessor:
    """``lookup(obj, parts)`` compiled once per rule: the dotted keys each step may try
    (longest first, keys may contain dots) are joined up front, so judging a container
    is a few dict reads with no string building. Same answers as :func:`lookup`."""

    __slots__ = ("_simple", "_steps")

    def __init__(self, parts: Sequence[str]) -> None:
        n = len(parts)
        # _steps[i]: (key, next position) candidates at position i, longest key first
        self._steps: tuple[tuple[tuple[str, int], ...], ...] = tuple(
            tuple((".".join(parts[i:j]), j) for j in range(n, i, -1)) for i in range(n))
        self._simple = tuple(parts)

    def __call__(self, obj: Any) -> Any:
        steps = self._steps
        if len(steps) == 2 and type(obj) is dict and steps[0][0][0] not in obj:
            # the common two-segment key (securityContext.privileged), no dotted key here
            sub = obj.get(self._simple[0], _MISSING)
            if type(sub) is dict:
                value = sub.get(self._simple[1])
                return _MISSING if value is None else value
            if sub is _MISSING:
                return _MISSING
            return self._at(sub, 1)
        return self._at(obj, 0)

    def _at(self, obj: Any, i: int) -> Any:
        steps = self._steps
        n = len(steps)
        while True:
            if i == n:
                return _MISSING if obj is None else obj
            if isinstance(obj, dict):
                hit: tuple[str, int] | None = None
                for candidate in steps[i]:
                    if candidate[0] in obj:
                        if hit is not None:  # two keys fit: try each, longest first
                            return self._either(obj, i)
                        hit = candidate
                if hit is None:
                    return _MISSING
                obj, i = obj[hit[0]], hit[1]
                continue
            if isinstance(obj, Mapping):
                return lookup(obj, self._simple[i:])
            part = self._simple[i]
            if isinstance(obj, list) and part.isdigit() and int(part) < len(obj):
                obj, i = obj[int(part)], i + 1
                continue
            return _MISSING

    def _either(self, obj: dict[str, Any], i: int) -> Any:
        for key, j in self._steps[i]:
            if key in obj:
                found = self._at(obj[key], j)
                if found is not _MISSING:
                    return found
        return _MISSING


class ContainerJudge:
    """A required/forbidden container rule compiled once (see the module docs)."""

    def __init__(self, ref: CheckRef, options: ComplianceOptions) -> None:
        self.ref = ref
        self.options = options
        self.required = ref.kind.endswith(".required")
        self.rule = rule = Rule.parse(ref.rule, ref.spec_path)
        self.value_of = Accessor(rule.parts)
        self.container = rule.scope == "container"
        self.skip_ephemeral = self.container and rule.parts[0] == "resources"
        self.inherits = (self.container and len(rule.parts) > 1
                         and rule.parts[0] == "securityContext"
                         and rule.parts[1] in SHARED_SECURITY_FIELDS)
        self.own_context = Accessor(rule.parts[:2])
        self.pod_context = Accessor(rule.parts[1:])
        self._exempt: dict[str | None, bool] = {}
        self._same: dict[tuple[type, Any], bool] = {}
        # without a value the verdict depends on presence alone: decided once
        self._if_present = rule.must_exist != self.required
        self._if_absent = rule.must_exist == self.required

    def judge(self, unit: podspecs.Unit) -> list[Violation] | None:
        ns = unit.namespace
        exempt = self._exempt.get(ns)
        if exempt is None:
            exempt = self._exempt[ns] = self.options.exempts(ns, self.rule.key)
        if exempt:
            return None
        pod = unit.pod
        if not self.container:
            value = self.value_of(pod.get(self.rule.scope) or {})
            if not self._breaks(value):
                return []
            return [violation(unit.obj, self._message("pod", value, False), owner=unit.owner)]
        spec = pod.get("spec") or {}
        found: list[Violation] = []
        for field_name, word in CONTAINER_KINDS:
            items = spec.get(field_name)
            if not items:
                continue
            if self.skip_ephemeral and field_name == "ephemeralContainers":
                continue  # the API server forbids resources on ephemeral containers
            for container in items:
                value, inherited = self.value_of(container), False
                if value is _MISSING and self.inherits and self.own_context(
                        container) is _MISSING:
                    pod_value = self.pod_context(spec.get("securityContext"))
                    if pod_value is not _MISSING:
                        value, inherited = pod_value, True
                if self._breaks(value):
                    name = container.get("name", "")
                    found.append(violation(
                        unit.obj, self._message(f'{word} "{name}"', value, inherited),
                        container=str(name), owner=unit.owner))
        return found

    def finish(self, violations: list[Violation], evaluated: int) -> CheckResult:
        return result(self.ref, violations, evaluated, podspecs.NOUN)

    def _breaks(self, value: Any) -> bool:
        if value is _MISSING:
            return self.required if self.rule.has_value else self._if_absent
        if self.rule.has_value:
            return self.required != self._same_value(value)
        return self._if_present

    def _same_value(self, value: Any) -> bool:
        if not isinstance(value, str | int | float | bool):
            return same_value(value, self.rule.value)
        key = (type(value), value)
        same = self._same.get(key)
        if same is None:
            if len(self._same) > 4096:  # values of a cluster repeat; a bound keeps it flat
                self._same.clear()
            same = self._same[key] = same_value(value, self.rule.value)
        return same

    def _message(self, who: str, value: Any, inherited: bool) -> str:
        msg = _problem(self.rule, self.required, who, value, inherited)
        assert msg is not None
        return msg


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
    return podspecs.judge_units(ContainerJudge(ref, options), podspecs.units(snapshot, options))
