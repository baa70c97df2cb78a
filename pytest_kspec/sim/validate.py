"""The few server-side validations clients rely on (names, required container fields).

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import re
from typing import Any

from pytest_kspec.sim.resources import ResourceType

Cause = tuple[str, str, str]  # (reason, message, field)

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
# Kinds whose names are path segments with looser rules (RBAC allows ':' etc.).
_LOOSE_NAMES = {"roles", "clusterroles", "rolebindings", "clusterrolebindings"}
_LABEL_NAMES = {"namespaces", "services"}


def validate(rt: ResourceType, obj: dict[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    meta = obj.get("metadata") or {}
    name = str(meta.get("name") or "")
    if rt.plural in _LOOSE_NAMES:
        if "/" in name or "%" in name or name in (".", ".."):
            causes.append(("FieldValueInvalid",
                           f'Invalid value: "{name}": may not contain \'/\'', "metadata.name"))
    elif rt.plural in _LABEL_NAMES:
        if len(name) > 63 or not _LABEL.match(name):
            causes.append(("FieldValueInvalid", f'Invalid value: "{name}": {_LABEL_MSG}',
                           "metadata.name"))
    elif len(name) > 253 or not _SUBDOMAIN.match(name):
        causes.append(("FieldValueInvalid", f'Invalid value: "{name}": {_SUBDOMAIN_MSG}',
                       "metadata.name"))
    for field in ("labels", "annotations"):
        values = meta.get(field)
        if values is None:
            continue
        if not isinstance(values, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in values.items()):
            causes.append(("FieldValueInvalid", "Invalid value: must be a map of strings",
                           f"metadata.{field}"))
    if rt.group == "" and rt.plural == "pods":
        causes.extend(_pod_spec(obj.get("spec"), "spec"))
    elif rt.group in ("apps", "batch") and rt.plural != "cronjobs":
        template = ((obj.get("spec") or {}).get("template") or {})
        causes.extend(_pod_spec(template.get("spec"), "spec.template.spec"))
    return causes


def _pod_spec(spec: Any, prefix: str) -> list[Cause]:
    if not isinstance(spec, dict):
        return [("FieldValueRequired", "Required value", f"{prefix}.containers")]
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        return [("FieldValueRequired", "Required value", f"{prefix}.containers")]
    causes: list[Cause] = []
    for i, c in enumerate(containers):
        if not isinstance(c, dict) or not c.get("name"):
            causes.append(("FieldValueRequired", "Required value",
                           f"{prefix}.containers[{i}].name"))
        elif not c.get("image"):
            causes.append(("FieldValueRequired", "Required value",
                           f"{prefix}.containers[{i}].image"))
    return causes
