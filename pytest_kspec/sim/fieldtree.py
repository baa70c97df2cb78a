"""The managedFields a create records, built in one walk of the object.

A create (an API POST, or loading a state file) gives its manager every field of the object:
one ``Update`` entry whose FieldsV1 tree holds every field set. :func:`pytest_kspec.sim.apply.
record_update` gets the same tree the general way (the field set of the object before and
after as path tuples, their difference, the tree rebuilt from the paths and sorted); with
nothing before, that is all work spent on a difference with nothing. Here the sorted tree
is built directly, with the same rules (which maps and lists carry ``.``, how list items are
keyed, what the server leaves out), so loading 10,000 objects does not cost seconds.
``tests/sim/test_fieldtree.py`` holds the two equal.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import json
from typing import Any

from pytest_kspec.sim.mergekeys import KEY_DEFAULTS, Field, field_of, is_builtin

__all__ = ["created_fields", "created_managed", "item_key"]

_compact = json.JSONEncoder(separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode
_quote: Any = json.encoder.encode_basestring  # a JSON string, as _compact writes one
_ROOT_STRIPPED = frozenset({"apiVersion", "kind"})
_META_STRIPPED = frozenset({
    "name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
    "managedFields", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds"})
# Non-pointer struct fields of built-in kinds: never marked with "." (they always exist).
_ALWAYS_PRESENT = frozenset({"metadata", "spec", "template", "containers", "jobTemplate"})
_OBJECT_META = Field(type="ObjectMeta")


_UNSEEN: Any = object()
_MAX_KNOWN = 256  # field names remembered per type (free-form maps have arbitrary keys)
_KNOWN: dict[str | None, dict[str, Field | None]] = {}


def _fields(type_name: str | None) -> dict[str, Field | None]:
    """The fields of ``type_name`` looked up so far (``field_of`` answers, remembered)."""
    known = _KNOWN.get(type_name)
    if known is None:
        known = _KNOWN.setdefault(type_name, {})
    return known


class _Walk:
    def __init__(self, builtin: bool) -> None:
        self.builtin = builtin

    def map(self, obj: dict[str, Any], type_name: str | None, skip: frozenset[str] | None,
            at_root: bool, dotted: bool) -> dict[str, Any] | None:
        """The sorted node of a map: ``.`` first when ``dotted`` (the map may be absent),
        then its fields (``skip``: names the server leaves out). A dotted map with nothing
        under it is a leaf (``{}``); an undotted one is no node at all (None)."""
        out: dict[str, Any] = {".": {}} if dotted else {}
        builtin = self.builtin
        known = _fields(type_name)
        for key in sorted(obj):
            if skip is not None and key in skip:
                continue
            value = obj[key]
            cls = value.__class__
            if cls is not dict and cls is not list and not isinstance(value, (dict, list)):
                out["f:" + key] = {}  # a scalar: a leaf, whatever its field
                continue
            field = known.get(key, _UNSEEN)
            if field is _UNSEEN:
                field = field_of(type_name, key)
                if len(known) < _MAX_KNOWN:
                    known[key] = field
            if at_root and key == "metadata" and not builtin:
                field = _OBJECT_META
            node = self.value(value, field, type_name, key, at_root)
            if node is not None:
                out["f:" + key] = node
        if dotted:
            return out if len(out) > 1 else {}
        return out or None

    def value(self, value: Any, field: Field | None, parent: str | None, name: str,
              at_root: bool) -> dict[str, Any] | None:
        """The node of a map or list field; None when nothing under it is recorded."""
        if field is not None and field.type:
            child: str | None = field.type
        else:
            child = "Generic" if self.builtin and parent is not None else None
        if isinstance(value, dict):
            if not value or (field is not None and field.atomic):
                return {}
            skip = _META_STRIPPED if at_root and name == "metadata" else None
            return self.map(value, child, skip, False, self.optional(name, at_root))
        if value and field is not None:
            if field.list == "map" and all(isinstance(v, dict) for v in value):
                items: dict[str, Any] = {}
                for item in value:
                    ident = item_key(item, field.keys)
                    node = self.map(item, child, None, False, True)
                    if ident in items:  # the same key twice: one item's fields, merged
                        node = _merged(items[ident], node or {})
                    items[ident] = node
                return _list(items, self.optional(name, at_root))
            if field.list == "set" and not any(isinstance(v, (dict, list)) for v in value):
                return _list({"v:" + _compact(v): {} for v in value}, True)
        return {}

    def optional(self, name: str, at_root: bool) -> bool:
        """Whether a map or list at this place is marked with "." (it may be absent)."""
        if not self.builtin:
            return not (at_root and name == "metadata")
        return name not in _ALWAYS_PRESENT and not (at_root and name == "status")


def _list(items: dict[str, Any], dotted: bool) -> dict[str, Any]:
    out: dict[str, Any] = {".": {}} if dotted else {}
    for ident in sorted(items):
        out[ident] = items[ident]
    return out


def item_key(item: dict[str, Any], keys: tuple[str, ...]) -> str:
    """A keyed list item's path element: ``k:`` and its key fields (a manifest's missing
    ``protocol`` as TCP) as compact JSON with sorted keys."""
    found = {}
    for key in keys:
        if key in item:
            found[key] = item[key]
        elif key in KEY_DEFAULTS:
            found[key] = KEY_DEFAULTS[key]
    parts = []
    for key in sorted(found):  # key names are identifiers: no escaping needed
        value = found[key]
        if value.__class__ is str:
            parts.append(f'"{key}":{_quote(value)}')
        elif value.__class__ is int:
            parts.append(f'"{key}":{value}')
        else:
            return "k:" + str(_compact(found))
    return "k:{" + ",".join(parts) + "}"


def _merged(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for key, value in b.items():
        out[key] = _merged(out[key], value) if key in out else value
    return {k: out[k] for k in sorted(out)}


def created_fields(obj: dict[str, Any], api_version: str, kind: str, *,
                   status_is_subresource: bool = True) -> dict[str, Any]:
    """The FieldsV1 tree a create of ``obj`` records for its manager (``Update`` shape)."""
    builtin = is_builtin(api_version, kind)
    scoped = obj
    if status_is_subresource and "status" in obj:
        scoped = {k: v for k, v in obj.items() if k != "status"}
    tree = _Walk(builtin).map(scoped, "root:" + kind if builtin else None, _ROOT_STRIPPED,
                              True, False)
    return tree or {}


def created_managed(obj: dict[str, Any], *, manager: str, api_version: str, kind: str,
                    time: str, status_is_subresource: bool = True) -> list[dict[str, Any]]:
    """The managedFields list of a freshly created ``obj``: one ``Update`` entry, or none
    when the object sets nothing a manager can own."""
    tree = created_fields(obj, str(obj.get("apiVersion", api_version)), kind,
                          status_is_subresource=status_is_subresource)
    if not tree:
        return []
    return [{"manager": manager, "operation": "Update", "apiVersion": api_version,
             "time": time, "fieldsType": "FieldsV1", "fieldsV1": tree}]
