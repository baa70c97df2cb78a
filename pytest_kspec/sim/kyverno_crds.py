"""Kyverno's ClusterPolicy CRD with a structural schema, in its 1.12 and 1.13 shapes.

Written from Kyverno's API types for the fields kspec and the policy library write: policy
settings, rules with ``match`` / ``exclude`` resource filters and ``validate`` (``pattern``,
``anyPattern``, ``deny``, ``foreach``, ``message``). Free-form parts (patterns, conditions,
mutate, generate, verifyImages) keep unknown fields, as upstream's schema does. The 1.13 shape
adds ``validate.failureAction``, ``failureActionOverrides`` and ``allowExistingViolations``;
on 1.12 those are undeclared, so the simulator prunes them and strict field validation
(``kubectl apply``) refuses them, as a 1.12 API server does.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import copy
from typing import Any

APP_VERSIONS = {"1.12": "v1.12.7", "1.13": "v1.13.4"}

_OPEN: dict[str, Any] = {"x-kubernetes-preserve-unknown-fields": True}
_OPEN_OBJECT: dict[str, Any] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
_STR: dict[str, Any] = {"type": "string"}
_BOOL: dict[str, Any] = {"type": "boolean"}
_STRS: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
_OPEN_LIST: dict[str, Any] = {"type": "array", "items": _OPEN_OBJECT}


def _obj(**props: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props}


def _filters() -> dict[str, Any]:
    resources = _obj(kinds=_STRS, names=_STRS, name=_STR, namespaces=_STRS,
                     operations=_STRS, annotations={"type": "object",
                                                    "additionalProperties": _STR},
                     selector=_OPEN_OBJECT, namespaceSelector=_OPEN_OBJECT)
    one = _obj(resources=resources, subjects=_OPEN_LIST, roles=_STRS, clusterRoles=_STRS)
    return _obj(any={"type": "array", "items": one}, all={"type": "array", "items": one},
                resources=resources, subjects=_OPEN_LIST, roles=_STRS, clusterRoles=_STRS)


def _validate(minor: int) -> dict[str, Any]:
    deny = _obj(conditions=_OPEN)
    foreach = _obj(list=_STR, context=_OPEN_LIST, preconditions=_OPEN, elementScope=_BOOL,
                   pattern=_OPEN, anyPattern=_OPEN, deny=deny, foreach=_OPEN)
    props: dict[str, Any] = {
        "message": _STR, "pattern": _OPEN, "anyPattern": _OPEN, "deny": deny,
        "foreach": {"type": "array", "items": foreach}, "podSecurity": _OPEN_OBJECT,
        "cel": _OPEN_OBJECT, "manifests": _OPEN_OBJECT,
    }
    if minor >= 13:
        props["failureAction"] = {"type": "string", "enum": ["Audit", "Enforce"]}
        props["failureActionOverrides"] = _OPEN_LIST
        props["allowExistingViolations"] = _BOOL
    return {"type": "object", "properties": props}


def _spec(minor: int) -> dict[str, Any]:
    rule = _obj(name=_STR, match=_filters(), exclude=_filters(), preconditions=_OPEN,
                context=_OPEN_LIST, validate=_validate(minor), mutate=_OPEN_OBJECT,
                generate=_OPEN_OBJECT, verifyImages=_OPEN_LIST, imageExtractors=_OPEN_OBJECT,
                celPreconditions=_OPEN_LIST, skipBackgroundRequests=_BOOL)
    return _obj(
        validationFailureAction={"type": "string",
                                 "enum": ["audit", "enforce", "Audit", "Enforce"]},
        validationFailureActionOverrides=_OPEN_LIST, background=_BOOL, admission=_BOOL,
        failurePolicy=_STR, webhookTimeoutSeconds={"type": "integer"}, emitWarning=_BOOL,
        schemaValidation=_BOOL, useServerSideApply=_BOOL, applyRules=_STR,
        mutateExistingOnPolicyUpdate=_BOOL, generateExisting=_BOOL,
        generateExistingOnPolicyUpdate=_BOOL, webhookConfiguration=_OPEN_OBJECT,
        rules={"type": "array", "items": rule})


def clusterpolicy_crd(base: dict[str, Any], version: str) -> dict[str, Any]:
    """``base`` (the simulator's open ClusterPolicy CRD) with Kyverno ``version``'s
    structural schema and version label."""
    if version not in APP_VERSIONS:
        raise ValueError(f"Kyverno {version!r}: the simulator has CRD schemas for "
                         f"{', '.join(sorted(APP_VERSIONS))}")
    minor = int(version.split(".")[1])
    crd = copy.deepcopy(base)
    crd["metadata"].setdefault("labels", {})["app.kubernetes.io/version"] = APP_VERSIONS[version]
    schema = {"type": "object", "description": f"ClusterPolicy (Kyverno {version})",
              "properties": {"apiVersion": _STR, "kind": _STR, "metadata": {"type": "object"},
                             "spec": _spec(minor), "status": _OPEN_OBJECT}}
    for served in crd["spec"]["versions"]:
        served["schema"] = {"openAPIV3Schema": copy.deepcopy(schema)}
    return crd
