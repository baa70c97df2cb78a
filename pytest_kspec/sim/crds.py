"""CustomResourceDefinitions: what a CRD object serves, and the status its controllers set.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

from typing import Any

from pytest_kspec.sim.resources import ResourceType


def served_types(crd: dict[str, Any]) -> list[ResourceType]:
    """One ResourceType per served version of the CRD (storage version first)."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group = str(spec.get("group") or "")
    plural = str(names.get("plural") or "")
    kind = str(names.get("kind") or "")
    if not group or not plural or not kind:
        return []
    versions = [v for v in spec.get("versions") or [] if v.get("served", True)]
    versions.sort(key=lambda v: not v.get("storage", False))
    out = []
    for v in versions:
        subs = tuple(s for s in ("status", "scale") if s in (v.get("subresources") or {}))
        out.append(ResourceType(
            group=group, version=str(v.get("name")), plural=plural,
            singular=str(names.get("singular") or kind.lower()), kind=kind,
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            short_names=tuple(names.get("shortNames") or ()),
            categories=tuple(names.get("categories") or ()),
            subresources=subs, custom=True))
    return out


def validate(crd: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Invalid causes (reason, message, field) of a CRD the real server would refuse."""
    causes = []
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group = spec.get("group") or ""
    name = (crd.get("metadata") or {}).get("name") or ""
    if not group:
        causes.append(("FieldValueRequired", "Required value", "spec.group"))
    if not names.get("plural"):
        causes.append(("FieldValueRequired", "Required value", "spec.names.plural"))
    if not names.get("kind"):
        causes.append(("FieldValueRequired", "Required value", "spec.names.kind"))
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        causes.append(("FieldValueNotSupported",
                       f'Unsupported value: "{spec.get("scope", "")}": supported values: '
                       '"Cluster", "Namespaced"', "spec.scope"))
    if names.get("plural") and group and name != f"{names['plural']}.{group}":
        causes.append(("FieldValueInvalid",
                       f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group',
                       "metadata.name"))
    if not spec.get("versions"):
        causes.append(("FieldValueRequired", "Required value", "spec.versions"))
    return causes


def with_status(crd: dict[str, Any], now: str) -> dict[str, Any]:
    """Set acceptedNames and the NamesAccepted/Established conditions (single-server timing)."""
    spec = crd.get("spec") or {}
    names = dict(spec.get("names") or {})
    names.setdefault("singular", str(names.get("kind", "")).lower())
    names.setdefault("listKind", f"{names.get('kind', '')}List")
    status = dict(crd.get("status") or {})
    status["acceptedNames"] = names
    status["conditions"] = [
        {"type": "NamesAccepted", "status": "True", "lastTransitionTime": now,
         "reason": "NoConflicts", "message": "no conflicts found"},
        {"type": "Established", "status": "True", "lastTransitionTime": now,
         "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"},
    ]
    status["storedVersions"] = [v.get("name") for v in spec.get("versions") or []
                                if v.get("storage")]
    crd["status"] = status
    return crd
