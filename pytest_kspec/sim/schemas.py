"""Structural schemas of CustomResourceDefinitions: pruning and strict field validation.

As the API server decodes a custom resource it drops every field its CRD's structural schema
does not declare (``properties``; ``additionalProperties`` for maps; ``items`` for lists),
except below ``x-kubernetes-preserve-unknown-fields: true``. With ``fieldValidation=Strict``
(what ``kubectl apply`` / ``create`` send) an undeclared field refuses the request instead:
``strict decoding error: unknown field "spec.rules[0].validate.failureAction"``. Metadata at
the root is ObjectMeta and never pruned.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_ROOT_KEEP = frozenset({"apiVersion", "kind", "metadata"})


def _walk(schema: Mapping[str, Any], value: Any, path: str, unknown: list[str],
          root: bool = False) -> Any:
    """``value`` pruned by ``schema``; undeclared field paths are appended to ``unknown``."""
    if not isinstance(schema, Mapping):
        return value
    preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
    if isinstance(value, dict):
        props = schema.get("properties")
        additional = schema.get("additionalProperties")
        if props is None and additional is None and preserve:
            return value
        out: dict[str, Any] = {}
        for key, item in value.items():
            where = f"{path}.{key}" if path else key
            if root and key in _ROOT_KEEP:
                out[key] = item
            elif isinstance(props, Mapping) and key in props:
                out[key] = _walk(props[key], item, where, unknown)
            elif isinstance(additional, Mapping):
                out[key] = _walk(additional, item, where, unknown)
            elif additional is True or preserve:
                out[key] = item
            else:
                unknown.append(where)
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        return [_walk(schema["items"], item, f"{path}[{i}]", unknown)
                for i, item in enumerate(value)]
    return value


def prune(schema: Mapping[str, Any], obj: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(``obj`` without undeclared fields, the undeclared fields' paths)."""
    unknown: list[str] = []
    pruned = _walk(schema, obj, "", unknown, root=True)
    return (pruned if isinstance(pruned, dict) else obj), unknown


def version_schema(crd: Mapping[str, Any], version: str) -> Mapping[str, Any] | None:
    """The structural ``openAPIV3Schema`` of ``version`` (None when the CRD keeps the whole
    object open, as a schema-less CRD does)."""
    for served in (crd.get("spec") or {}).get("versions") or []:
        if served.get("name") == version:
            schema = (served.get("schema") or {}).get("openAPIV3Schema")
            if isinstance(schema, Mapping) and not schema.get(
                    "x-kubernetes-preserve-unknown-fields"):
                return schema
    return None


CRD_KEY = ("apiextensions.k8s.io", "customresourcedefinitions")


class Decoder:
    """Prunes custom resources by their CRD's schema as requests are decoded; refuses
    undeclared fields under ``fieldValidation=Strict``."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def __call__(self, rt: Any, obj: Any, query: Mapping[str, str]) -> None:
        """Prune ``obj`` in place, or raise a 400 ``StatusError`` (Strict)."""
        from pytest_kspec.sim.status import StatusError

        if not getattr(rt, "custom", False) or not isinstance(obj, dict):
            return
        entry = self.store.get(CRD_KEY, "", f"{rt.plural}.{rt.group}")
        schema = version_schema(entry.obj, rt.version) if entry is not None else None
        if schema is None:
            return
        pruned, unknown = prune(schema, obj)
        if unknown and query.get("fieldValidation") == "Strict":
            fields = ", ".join(f'unknown field "{u}"' for u in unknown)
            raise StatusError(400, "BadRequest", (
                f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                f"strict decoding error: {fields}"), {})
        obj.clear()
        obj.update(pruned)
