"""managedFields bookkeeping and server-side apply, with structured-merge-diff's visible rules.

Callers (the simulator's PATCH/PUT/POST handlers) own the request checks this module does
not make: a missing ``fieldManager`` on an apply patch is a 422 ``fieldManager: Required
value: is required for apply patch``, and ``force`` on a non-apply patch is a 422 too.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from typing import Any

from pytest_kspec.sim.fieldtree import item_key
from pytest_kspec.sim.mergekeys import KEY_DEFAULTS, Field, field_of, is_builtin

__all__ = [
    "BEFORE_FIRST_APPLY",
    "ApplyConflict",
    "ApplyError",
    "fields_v1",
    "path_string",
    "record_update",
    "server_side_apply",
]

Path = tuple[str, ...]
BEFORE_FIRST_APPLY = "before-first-apply"


class _Node:
    """Marks a path that is a map or list item rather than a leaf value."""

    def __repr__(self) -> str:
        return "<node>"


_NODE = _Node()
# Fields the API server never records in managedFields (structured-merge-diff "stripMeta").
_STRIPPED: frozenset[Path] = frozenset({
    ("f:apiVersion",), ("f:kind",),
    *(("f:metadata", "f:" + name) for name in (
        "name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
        "managedFields", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds",
    )),
})
# Non-pointer struct fields: an Update never marks them with "." (they always exist).
_ALWAYS_PRESENT = frozenset({"metadata", "spec", "template", "containers", "jobTemplate"})


class ApplyError(Exception):
    """An apply request the API server refuses outright (``code``, ``reason``, ``message``)."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        self.code = code
        self.reason = reason
        self.message = message
        super().__init__(message)


class ApplyConflict(Exception):
    """An apply that would overrule other managers: the server's 409 Conflict.

    ``conflicts`` lists (manager, field path) pairs; ``causes`` gives the Status
    ``details.causes`` entries and ``message`` the Status message, worded as the server does.
    """

    def __init__(self, found: list[tuple[dict[str, Any], Path]]) -> None:
        self.conflicts: list[tuple[str, str]] = [
            (str(entry.get("manager", "")), path_string(path)) for entry, path in found
        ]
        self.causes: list[dict[str, str]] = [
            {"reason": "FieldManagerConflict",
             "message": f"conflict with {_print_manager(entry)}",
             "field": path_string(path)}
            for entry, path in found
        ]
        self.message = _conflict_message(found)
        super().__init__(self.message)


def _identifier(entry: dict[str, Any]) -> str:
    ident: dict[str, Any] = {"manager": entry.get("manager", ""),
                             "operation": entry.get("operation", "")}
    if entry.get("operation") != "Apply":
        ident["apiVersion"] = entry.get("apiVersion", "")
    if entry.get("subresource"):
        ident["subresource"] = entry["subresource"]
    return json.dumps(ident, separators=(",", ":"))


def _print_manager(entry: dict[str, Any]) -> str:
    text = json.dumps(str(entry.get("manager", "")))
    if entry.get("subresource"):
        text += f" with subresource {json.dumps(entry['subresource'])}"
    if entry.get("operation") == "Update":
        text += f" using {entry.get('apiVersion', '')}"
    return text


def _conflict_message(found: list[tuple[dict[str, Any], Path]]) -> str:
    if len(found) == 1:
        entry, path = found[0]
        return (f"Apply failed with 1 conflict: conflict with {_print_manager(entry)}: "
                f"{path_string(path)}")
    groups: dict[str, list[Path]] = {}
    entries: dict[str, dict[str, Any]] = {}
    for entry, path in found:
        ident = _identifier(entry)
        groups.setdefault(ident, []).append(path)
        entries[ident] = entry
    lines: list[str] = []
    for ident in sorted(groups):
        lines.append(f"conflicts with {_print_manager(entries[ident])}:")
        lines.extend(f"- {path_string(p)}" for p in groups[ident])
    return f"Apply failed with {len(found)} conflicts: " + "\n".join(lines)


def path_string(path: Path) -> str:
    """A managedFields path as the server prints it: ``.spec.containers[name="a"].image``."""
    out = []
    for element in path:
        tag, _, rest = element.partition(":")
        if tag == "f":
            out.append("." + rest)
        elif tag == "k":
            keys = json.loads(rest)
            out.append("[" + ",".join(
                f"{k}={json.dumps(keys[k], ensure_ascii=False)}" for k in sorted(keys)) + "]")
        elif tag == "v":
            out.append(f"[={rest}]")
        else:
            out.append(f"[{rest}]")
    return "".join(out)


# ------------------------------------------------------------------------- field sets


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


class _Walker:
    def __init__(self, builtin: bool, dots: bool) -> None:
        self.builtin = builtin
        self.dots = dots
        self.out: dict[Path, Any] = {}

    def child(self, type_name: str | None, field: Field | None) -> str | None:
        if field is not None and field.type:
            return field.type
        return "Generic" if self.builtin and type_name is not None else None

    def map(self, obj: dict[str, Any], type_name: str | None, prefix: Path) -> None:
        for key, value in obj.items():
            field = field_of(type_name, key)
            if type_name is None and not self.builtin and prefix == () and key == "metadata":
                field = Field(type="ObjectMeta")
            self.value(value, field, self.child(type_name, field), (*prefix, "f:" + key), key)

    def optional(self, path: Path, name: str) -> bool:
        """Whether an Update marks this map with "." (it may be absent, unlike spec)."""
        if not self.builtin:
            return path != ("f:metadata",)
        return name not in _ALWAYS_PRESENT and path != ("f:status",)

    def value(
        self, value: Any, field: Field | None, type_name: str | None, path: Path, name: str
    ) -> None:
        if path in _STRIPPED:
            return
        if isinstance(value, dict):
            if not value or (field is not None and field.atomic):
                self.out[path] = value
                return
            if self.dots and self.optional(path, name):
                self.out[path] = _NODE
            self.map(value, type_name, path)
        elif isinstance(value, list):
            kind = field.list if field is not None else ""
            if value and kind == "map" and field is not None and all(
                isinstance(v, dict) for v in value
            ):
                if self.dots and self.optional(path, name):
                    self.out[path] = _NODE
                for item in value:
                    item_path = (*path, item_key(item, field.keys))
                    self.out[item_path] = _NODE
                    self.map(item, type_name, item_path)
            elif value and kind == "set" and not any(isinstance(v, (dict, list)) for v in value):
                if self.dots:
                    self.out[path] = _NODE
                for item in value:
                    self.out[(*path, "v:" + _compact(item))] = item
            else:
                self.out[path] = value
        else:
            self.out[path] = value


def _scoped(obj: dict[str, Any], subresource: str | None, status_is_subresource: bool) -> Any:
    if subresource == "status":
        return {"status": obj["status"]} if "status" in obj else {}
    if status_is_subresource and "status" in obj:
        return {k: v for k, v in obj.items() if k != "status"}
    return obj


def _fieldset(
    obj: dict[str, Any] | None, api_version: str, kind: str, *, dots: bool,
    subresource: str | None = None, status_is_subresource: bool = True,
) -> dict[Path, Any]:
    if not obj:
        return {}
    builtin = is_builtin(api_version, kind)
    walker = _Walker(builtin, dots)
    walker.map(_scoped(obj, subresource, status_is_subresource),
               "root:" + kind if builtin else None, ())
    return walker.out


def _to_tree(paths: Iterable[Path]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    members: list[dict[str, Any]] = []
    for path in paths:
        node = root
        for element in path:
            node = node.setdefault(element, {})
        members.append(node)
    for node in members:  # a member with members under it is marked "." itself
        if node and "." not in node:
            node["."] = {}
    return _sorted_tree(root)


def _sorted_tree(node: dict[str, Any]) -> dict[str, Any]:
    return {k: _sorted_tree(v) if v else {} for k, v in sorted(node.items())}


def _from_tree(tree: Any, prefix: Path = ()) -> set[Path]:
    out: set[Path] = set()
    if not isinstance(tree, dict):
        return out
    for key, child in tree.items():
        if key == ".":
            if prefix:
                out.add(prefix)
        elif isinstance(child, dict) and child:
            out |= _from_tree(child, (*prefix, key))
        else:
            out.add((*prefix, key))
    return out


def fields_v1(
    obj: dict[str, Any], api_version: str, kind: str, *, include_status: bool = False,
    apply: bool = False,
) -> dict[str, Any]:
    """The FieldsV1 tree of every field set in ``obj`` (server-managed metadata left out).

    By default the tree has the shape of an ``Update`` entry (``.`` on maps and lists that
    may be absent); ``apply=True`` gives an ``Apply`` entry's shape (``.`` on list items only).
    """
    return _to_tree(_fieldset(obj, api_version, kind, dots=not apply,
                              status_is_subresource=not include_status))


# ------------------------------------------------------------------------- updates


def _same(a: Any, b: Any) -> bool:
    if a is _NODE or b is _NODE:
        return a is b
    return type(a) is type(b) and bool(a == b)


def _entry_sort_key(entry: dict[str, Any]) -> tuple[str, str, str, str, str]:
    return (str(entry.get("operation", "")), str(entry.get("time", "")),
            str(entry.get("manager", "")), str(entry.get("apiVersion", "")),
            str(entry.get("subresource", "")))


def _parsed(managed: Iterable[Any]) -> list[tuple[dict[str, Any], set[Path]]]:
    out = []
    for entry in managed or []:
        if isinstance(entry, dict):
            meta = {k: v for k, v in entry.items() if k != "fieldsV1"}
            out.append((meta, _from_tree(entry.get("fieldsV1", {}))))
    return out


def _serialized(entries: list[tuple[dict[str, Any], set[Path]]]) -> list[dict[str, Any]]:
    out = []
    for meta, paths in entries:
        if not paths:
            continue
        entry: dict[str, Any] = {
            k: meta[k] for k in ("manager", "operation", "apiVersion", "time") if k in meta
        }
        entry["fieldsType"] = "FieldsV1"
        entry["fieldsV1"] = _to_tree(paths)
        if meta.get("subresource"):
            entry["subresource"] = meta["subresource"]
        out.append(entry)
    return sorted(out, key=_entry_sort_key)


def record_update(
    managed: list[dict[str, Any]], old: dict[str, Any] | None, new: dict[str, Any], *,
    manager: str, operation: str, api_version: str, time: str,
    subresource: str | None = None, kind: str | None = None,
    status_is_subresource: bool = True,
) -> list[dict[str, Any]]:
    """The managedFields list after a write that is not an apply (create, update, patch).

    Fields ``new`` adds or changes become ``manager``'s and leave every other manager's set;
    fields it drops leave every set; entries left empty are dropped. ``kind`` defaults to
    ``new["kind"]``.
    """
    kind = kind or str(new.get("kind", ""))
    schema_version = str(new.get("apiVersion", api_version))
    scope = {"subresource": subresource, "status_is_subresource": status_is_subresource}
    before = _fieldset(old, schema_version, kind, dots=True, **scope)  # type: ignore[arg-type]
    after = _fieldset(new, schema_version, kind, dots=True, **scope)  # type: ignore[arg-type]
    changed = {p for p, v in after.items() if p not in before or not _same(before[p], v)}
    removed = set(before) - set(after)
    entries = _parsed(managed)
    mine = None
    for meta, paths in entries:
        is_mine = (meta.get("manager") == manager and meta.get("operation") == operation
                   and meta.get("apiVersion") == api_version
                   and (meta.get("subresource") or None) == subresource)
        if is_mine:
            mine = (meta, paths)
            paths -= removed
            if changed:
                paths |= changed
                meta["time"] = time
        else:
            paths -= changed | removed
    if mine is None and changed:
        meta = {"manager": manager, "operation": operation, "apiVersion": api_version,
                "time": time}
        if subresource:
            meta["subresource"] = subresource
        entries.append((meta, set(changed)))
    return _serialized(entries)


# ------------------------------------------------------------------------- apply


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def _check_duplicates(paths: dict[Path, Any], obj: dict[str, Any], gvk: str,
                      api_version: str, kind: str) -> None:
    walker = _Walker(is_builtin(api_version, kind), dots=False)
    seen: set[Path] = set()
    del paths  # the walk below re-derives item keys in order, so duplicates show

    def visit(value: Any, field: Field | None, type_name: str | None, path: Path) -> None:
        if isinstance(value, dict):
            for key, child in value.items():
                sub = field_of(type_name, key)
                visit(child, sub, walker.child(type_name, sub), (*path, "f:" + key))
        elif isinstance(value, list) and field is not None and field.list == "map":
            for item in value:
                if not isinstance(item, dict):
                    continue
                item_path = (*path, item_key(item, field.keys))
                if item_path in seen:
                    raise ApplyError(422, "Invalid", (
                        f"failed to create typed patch object ({gvk}): {path_string(path)}: "
                        f"duplicate entries for key {path_string(item_path[-1:])}"))
                seen.add(item_path)
                visit(item, None, type_name, item_path)

    root = "root:" + kind if walker.builtin else None
    visit(obj, Field(type=root) if root else None, root, ())


def _merge(live: Any, applied: Any, field: Field | None, type_name: str | None,
           walker: _Walker) -> Any:
    if isinstance(live, dict) and isinstance(applied, dict):
        if field is not None and field.atomic:
            return copy.deepcopy(applied)
        result = dict(live)
        for key, value in applied.items():
            sub = field_of(type_name, key)
            if type_name is None and not walker.builtin and key == "metadata" and field is None:
                sub = Field(type="ObjectMeta")
            result[key] = _merge(live.get(key), value, sub, walker.child(type_name, sub), walker)
        return result
    if isinstance(live, list) and isinstance(applied, list) and field is not None:
        if field.list == "map" and all(isinstance(v, dict) for v in live + applied):
            merged = list(live)
            index = {item_key(item, field.keys): i for i, item in enumerate(merged)}
            for item in applied:
                key = item_key(item, field.keys)
                if key in index:
                    merged[index[key]] = _merge(merged[index[key]], item, None, type_name,
                                                walker)
                else:
                    index[key] = len(merged)
                    merged.append(copy.deepcopy(item))
            return merged
        if field.list == "set":
            return list(live) + [copy.deepcopy(v) for v in applied if v not in live]
    return copy.deepcopy(applied)


def _remove_path(obj: Any, path: Path) -> None:
    parents: list[tuple[Any, Any]] = []
    node = obj
    for element in path:
        tag, _, rest = element.partition(":")
        found: Any = None
        if tag == "f" and isinstance(node, dict) and rest in node:
            found = rest
        elif tag in ("k", "v") and isinstance(node, list):
            for i, item in enumerate(node):
                if (tag == "v" and _compact(item) == rest) or (
                    tag == "k" and isinstance(item, dict)
                    and all(item.get(k, KEY_DEFAULTS.get(k)) == v
                            for k, v in json.loads(rest).items())):
                    found = i
                    break
        if found is None:
            return
        parents.append((node, found))
        node = node[found]
    container, slot = parents.pop()
    del container[slot]
    # Maps and lists the removal left empty go too, like fields nobody sets.
    while parents and not container:
        container, slot = parents.pop()
        if isinstance(container, dict) and not path[len(parents)].startswith("f:"):
            break
        del container[slot]


def server_side_apply(
    live: dict[str, Any] | None, applied: dict[str, Any], *, manager: str, force: bool,
    api_version: str, kind: str, time: str, status_is_subresource: bool = True,
) -> dict[str, Any]:
    """Apply ``applied`` for ``manager`` to ``live`` (None creates) and return the new object.

    The result carries updated ``metadata.managedFields``: an ``Apply`` entry for ``manager``
    holding exactly the applied fields. Raises ApplyConflict when another manager owns a
    field with a different value (unless ``force``), ApplyError for a malformed request.
    """
    if not isinstance(applied, dict):
        raise ApplyError(400, "BadRequest", "the apply patch must be a JSON or YAML object")
    if applied.get("metadata", {}).get("managedFields"):
        raise ApplyError(400, "BadRequest", "metadata.managedFields must be nil")
    group = api_version.rpartition("/")[0]
    gvk = f"{group}/{api_version.rpartition('/')[2]}, Kind={kind}"
    body = _drop_nulls(copy.deepcopy(applied))
    if status_is_subresource:
        body.pop("status", None)
    walker = _Walker(is_builtin(api_version, kind), dots=False)
    applied_set = _fieldset(body, api_version, kind, dots=False,
                            status_is_subresource=status_is_subresource)
    _check_duplicates(applied_set, body, gvk, api_version, kind)
    current: dict[str, Any] = copy.deepcopy(live) if live else {}
    live_set = _fieldset(current, api_version, kind, dots=False,
                         status_is_subresource=status_is_subresource)
    managed = current.get("metadata", {}).get("managedFields") or []
    entries = _parsed(managed)
    if live and not entries:
        entries = [({"manager": BEFORE_FIRST_APPLY, "operation": "Update",
                     "apiVersion": str(live.get("apiVersion", api_version))},
                    set(_fieldset(live, api_version, kind, dots=True,
                                  status_is_subresource=status_is_subresource)))]
    mine: set[Path] = set()
    others: list[tuple[dict[str, Any], set[Path]]] = []
    for meta, paths in entries:
        if meta.get("manager") == manager and meta.get("operation") == "Apply" and not (
            meta.get("subresource")
        ):
            mine = paths
        else:
            others.append((meta, paths))
    found: list[tuple[dict[str, Any], Path]] = []
    for meta, paths in others:
        for path in sorted(paths & applied_set.keys()):
            if path in live_set and not _same(live_set[path], applied_set[path]):
                found.append((meta, path))
    if found and not force:
        raise ApplyConflict(found)
    for meta, path in found:
        for other_meta, paths in others:
            if other_meta is meta:
                paths.discard(path)
    result = _merge(current, body, None, "root:" + kind if walker.builtin else None, walker)
    owned_elsewhere = set().union(*(paths for _, paths in others)) if others else set()
    dropped = [p for p in mine - applied_set.keys()
               if not any(o[: len(p)] == p for o in owned_elsewhere)
               and not any(a[: len(p)] == p for a in applied_set)]
    for path in sorted(dropped, key=lambda p: (len(p), p)):  # whole items before their keys
        _remove_path(result, path)
    mine_meta = {"manager": manager, "operation": "Apply", "apiVersion": api_version,
                 "time": time}
    final = [*others, (mine_meta, set(applied_set))]
    result.setdefault("metadata", {})["managedFields"] = _serialized(final)
    return result  # type: ignore[no-any-return]
