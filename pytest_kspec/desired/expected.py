"""Desired state: the Kyverno ClusterPolicies a spec expects, as objects and as review-ready YAML.

Generated policies carry kspec's marker (annotation ``kspec.dev/generated: "true"`` and label
``app.kubernetes.io/managed-by: kspec``); drift detection only ever touches objects with it.
``admission.policies.requiredPolicies`` kspec does not generate are expected by name only.
The output is deterministic: the same spec always gives byte-identical YAML.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

from pytest_kspec.desired import catalog, kyverno_versions, rules

if TYPE_CHECKING:
    from pytest_kspec.spec import ClusterSpec

log = logging.getLogger("pytest_kspec.desired.expected")

API_VERSION = "kyverno.io/v1"
KIND = "ClusterPolicy"
GENERATED_ANNOTATION = "kspec.dev/generated"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "kspec"
SPEC_NAME_ANNOTATION = "kspec.dev/spec-name"
SPEC_VERSION_ANNOTATION = "kspec.dev/spec-version"

# Severity of a presence-only required policy: a missing admission policy is a hole in
# enforcement, which the drift model rates high.
REQUIRED_POLICY_SEVERITY = "high"

__all__ = [
    "GENERATED_ANNOTATION",
    "MANAGED_BY_LABEL",
    "SPEC_NAME_ANNOTATION",
    "SPEC_VERSION_ANNOTATION",
    "ExpectedPolicy",
    "expected_policies",
    "expected_policies_for",
    "generate_policies",
    "generate_policies_for",
    "is_kspec_managed",
    "render_yaml",
]


@dataclass(frozen=True)
class ExpectedPolicy:
    """One policy item: a generated ClusterPolicy (``manifest`` set) or a required one that is
    checked for presence only (``manifest`` None, ``presence_only`` True)."""

    name: str
    manifest: dict[str, Any] | None
    presence_only: bool
    severity: str


def is_kspec_managed(obj: Mapping[str, Any]) -> bool:
    """True when ``obj`` carries kspec's marker (generated annotation or managed-by label)."""
    metadata = obj.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        return False
    annotations = metadata.get("annotations") or {}
    labels = metadata.get("labels") or {}
    generated = isinstance(annotations, Mapping) and \
        str(annotations.get(GENERATED_ANNOTATION, "")).lower() == "true"
    managed = isinstance(labels, Mapping) and labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE
    return generated or managed


def generate_policies_for(
    body: Mapping[str, Any], *, spec_name: str, spec_version: str,
    kyverno_version: tuple[int, int] | None = None,
) -> list[dict[str, Any]]:
    """The ClusterPolicies for the ``spec`` section ``body``, in catalog order, written for
    ``kyverno_version`` (see :mod:`pytest_kspec.desired.kyverno_versions`; None: both
    action fields)."""
    out = []
    for name in catalog.generated_policy_names(body):
        part = rules.build(name, body)
        _exclude_exempt(part.rules, catalog.exempt_namespaces(
            body, catalog.POLICY_PSS_KEYS.get(name, "")))
        out.append({
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {
                "name": name,
                "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE},
                "annotations": {
                    GENERATED_ANNOTATION: "true",
                    SPEC_NAME_ANNOTATION: str(spec_name),
                    SPEC_VERSION_ANNOTATION: str(spec_version),
                    "policies.kyverno.io/title": part.title,
                    "policies.kyverno.io/category": part.category,
                    "policies.kyverno.io/severity": part.severity,
                    "policies.kyverno.io/subject": "Pod",
                    "policies.kyverno.io/description": part.description,
                },
            },
            "spec": {
                # Both the spec-level action (the only one Kyverno < 1.13 reads; deprecated
                # since) and each rule's validate.failureAction (what Kyverno >= 1.13 reads,
                # overriding the former) say Enforce, so every Kyverno version enforces.
                "validationFailureAction": rules.ENFORCE,
                "background": True,
                "rules": part.rules,
            },
        })
    log.debug("generated %d policies for spec %s", len(out), spec_name)
    return [kyverno_versions.for_kyverno(p, kyverno_version) for p in out]


def _exclude_exempt(rules: list[dict[str, Any]], namespaces: Sequence[str]) -> None:
    """Add namespaces the spec exempts (podSecurity.exemptions) to each rule's exclude."""
    if not namespaces:
        return
    for rule in rules:
        for block in rule.get("exclude", {}).get("any", []):
            listed = block.setdefault("resources", {}).setdefault("namespaces", [])
            listed.extend(ns for ns in namespaces if ns not in listed)


def generate_policies(spec: ClusterSpec,
                      kyverno_version: tuple[int, int] | None = None) -> list[dict[str, Any]]:
    """The ClusterPolicies a loaded spec expects (see :func:`generate_policies_for`)."""
    return generate_policies_for(spec.body, spec_name=spec.name, spec_version=spec.version,
                                 kyverno_version=kyverno_version)


def expected_policies_for(
    body: Mapping[str, Any], *, spec_name: str, spec_version: str
) -> list[ExpectedPolicy]:
    """Every policy item for ``body``: generated ones, then presence-only required ones."""
    out = [
        ExpectedPolicy(
            name=obj["metadata"]["name"],
            manifest=obj,
            presence_only=False,
            severity=obj["metadata"]["annotations"]["policies.kyverno.io/severity"],
        )
        for obj in generate_policies_for(body, spec_name=spec_name, spec_version=spec_version)
    ]
    out += [ExpectedPolicy(name=name, manifest=None, presence_only=True,
                           severity=REQUIRED_POLICY_SEVERITY)
            for name in catalog.required_policy_names(body)]
    return out


def expected_policies(spec: ClusterSpec) -> list[ExpectedPolicy]:
    """Every policy item a loaded spec expects (see :func:`expected_policies_for`)."""
    return expected_policies_for(spec.body, spec_name=spec.name, spec_version=spec.version)


# ------------------------------------------------------------------------------- rendering

_TOP_ORDER = ("apiVersion", "kind", "metadata", "spec", "status")
# `name` leads every other mapping (metadata, rules, containers), as people write them.
_NESTED_ORDER = ("name", "namespace")


def _ordered(value: Any, first: Sequence[str] = _NESTED_ORDER) -> Any:
    """A copy of ``value`` whose mappings list ``first`` keys (in that order), then the rest
    sorted; the dumper keeps insertion order, so this fixes the byte layout."""
    if isinstance(value, Mapping):
        keys = [k for k in first if k in value]
        keys += sorted((k for k in value if k not in keys), key=str)
        return {k: _ordered(value[k]) for k in keys}
    if isinstance(value, (list, tuple)):
        return [_ordered(item) for item in value]
    return value


class _Dumper(yaml.SafeDumper):
    """Block style, list items indented under their key, and never anchors or aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def render_yaml(objs: Sequence[Mapping[str, Any]]) -> str:
    """``objs`` as multi-document YAML (each document opens with ``---``), byte-stable."""
    docs = [_ordered(obj, _TOP_ORDER) for obj in objs]
    if not docs:
        return ""
    text: str = yaml.dump_all(docs, Dumper=_Dumper, explicit_start=True, sort_keys=False,
                              default_flow_style=False, allow_unicode=True, width=100,
                              indent=2, line_break="\n")
    return text
