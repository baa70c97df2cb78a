"""JSON merge patch, JSON patch and strategic merge patch, as the API server applies them.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from pytest_kspec.sim.mergekeys import Field, field_of, is_builtin, root_type

__all__ = [
    "UNSUPPORTED_MEDIA_MESSAGE",
    "PatchError",
    "is_builtin",
    "json_merge_patch",
    "json_patch",
    "strategic_merge_patch",
]

UNSUPPORTED_MEDIA_MESSAGE = (
    "the body of the request was in an unknown format - accepted media types include: "
    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
)
# What the server answers when a JSON patch decodes but does not apply (a failed test, a
# missing path): a generic 422 whose cause carries the json-patch library's text.
_REJECTED = "the server rejected our request due to an error in our request"

_PATCH = "$patch"
_RETAIN = "$retainKeys"
_DELETE_PRIMITIVE = "$deleteFromPrimitiveList/"
_ORDER = "$setElementOrder/"


class PatchError(Exception):
    """A patch the API server would refuse: ``code``/``reason``/``message`` form its Status.

    ``cause`` holds the detail the server puts in ``details.causes[0].message`` (or "").
    """

    def __init__(self, code: int, reason: str, message: str, cause: str = "") -> None:
        self.code = code
        self.reason = reason
        self.message = message
        self.cause = cause
        super().__init__(message if not cause else f"{message}: {cause}")


def _bad_request(message: str) -> PatchError:
    return PatchError(400, "BadRequest", message)


def _unprocessable(cause: str) -> PatchError:
    return PatchError(422, "Invalid", _REJECTED, cause)


# --------------------------------------------------------------------------- RFC 7386


def json_merge_patch(target: Any, patch: Any) -> Any:
    """Apply an RFC 7386 merge patch: maps merge, ``null`` deletes, anything else replaces.

    Works on a copy: neither argument is changed and the result shares nothing with them.
    """
    return _merge_patch(copy.deepcopy(target), patch)


def _merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result: dict[str, Any] = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result


# --------------------------------------------------------------------------- RFC 6902


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _pointer(path: Any, what: str) -> list[str]:
    if not isinstance(path, str):
        raise _bad_request(f"{what} must be a string in a JSON patch operation")
    if path == "":
        return []
    if not path.startswith("/"):
        raise _unprocessable(f"JSON pointer {path!r} must start with '/'")
    return [_unescape(t) for t in path[1:].split("/")]


def _index(token: str, length: int, *, adding: bool, path: str) -> int:
    if adding and token == "-":
        return length
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise _unprocessable(f"invalid array index {token!r} in {path}")
    index = int(token)
    limit = length if adding else length - 1
    if index > limit:
        raise _unprocessable(f"array index out of bounds: {index} in {path}")
    return index


def _parent(doc: Any, tokens: list[str], path: str) -> Any:
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict):
            if token not in node:
                raise _unprocessable(f"doc is missing path: {path!r}")
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(token, len(node), adding=False, path=path)]
        else:
            raise _unprocessable(f"doc is missing path: {path!r}")
    return node


def _get(doc: Any, tokens: list[str], path: str) -> Any:
    if not tokens:
        return doc
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise _unprocessable(f"doc is missing key: {path!r}")
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(last, len(parent), adding=False, path=path)]
    raise _unprocessable(f"doc is missing path: {path!r}")


def _add(doc: Any, tokens: list[str], value: Any, path: str) -> Any:
    if not tokens:
        return value
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(last, len(parent), adding=True, path=path), value)
    else:
        raise _unprocessable(f"add operation does not apply: doc is missing path: {path!r}")
    return doc


def _remove(doc: Any, tokens: list[str], path: str, op: str = "remove") -> Any:
    if not tokens:
        raise _unprocessable(f"{op} operation does not apply: cannot remove the root document")
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise _unprocessable(f"{op} operation does not apply: doc is missing key: {path!r}")
        del parent[last]
    elif isinstance(parent, list):
        del parent[_index(last, len(parent), adding=False, path=path)]
    else:
        raise _unprocessable(f"{op} operation does not apply: doc is missing path: {path!r}")
    return doc


def _json_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def json_patch(target: Any, ops: Any) -> Any:
    """Apply an RFC 6902 JSON patch to a copy of ``target`` and return the copy.

    A body that is not a list of operations is a 400 BadRequest; an operation that does not
    apply (a failed ``test``, a missing path) is a 422 with the real generic message.
    """
    if not isinstance(ops, list):
        raise _bad_request(
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch"
        )
    doc = copy.deepcopy(target)
    for number, op in enumerate(ops):
        if not isinstance(op, dict):
            raise _bad_request(f"operation {number} of the JSON patch is not an object")
        kind = op.get("op")
        path = op.get("path")
        tokens = _pointer(path, "path")
        spath = str(path)
        if kind in ("add", "replace", "test") and "value" not in op:
            raise _unprocessable(f"{kind} operation has no value for path {spath!r}")
        if kind == "add":
            doc = _add(doc, tokens, copy.deepcopy(op["value"]), spath)
        elif kind == "remove":
            doc = _remove(doc, tokens, spath)
        elif kind == "replace":
            _get(doc, tokens, spath)
            if tokens:
                doc = _remove(doc, tokens, spath, "replace")
            doc = _add(doc, tokens, copy.deepcopy(op["value"]), spath)
        elif kind in ("move", "copy"):
            source = op.get("from")
            from_tokens = _pointer(source, "from")
            value = copy.deepcopy(_get(doc, from_tokens, str(source)))
            if kind == "move":
                if tokens[: len(from_tokens)] == from_tokens and len(tokens) > len(from_tokens):
                    raise _unprocessable(f"cannot move {source!r} into its own child {spath!r}")
                doc = _remove(doc, from_tokens, str(source), "move")
            doc = _add(doc, tokens, value, spath)
        elif kind == "test":
            if not _json_equal(_get(doc, tokens, spath), op["value"]):
                raise _unprocessable(f"testing value {spath} failed: test failed")
        else:
            raise _bad_request(f"Unexpected kind: {kind}")
    return doc


# --------------------------------------------------------------------- strategic merge


def strategic_merge_patch(
    original: dict[str, Any], patch: dict[str, Any], api_version: str, kind: str
) -> dict[str, Any]:
    """Apply a Kubernetes strategic merge patch to a copy of a built-in object.

    Lists tagged with a merge key merge element by element, ``$patch``, ``$retainKeys``,
    ``$deleteFromPrimitiveList/`` and ``$setElementOrder/`` directives are honoured and never
    left in the result. Kinds without a compiled-in schema (custom resources) raise the
    server's 415 UnsupportedMediaType.
    """
    if not is_builtin(api_version, kind):
        raise PatchError(415, "UnsupportedMediaType", UNSUPPORTED_MEDIA_MESSAGE)
    if not isinstance(patch, dict):
        raise _bad_request("invalid JSON document")
    base = copy.deepcopy(original) if isinstance(original, dict) else {}
    return _merge_map(base, patch, root_type(api_version, kind))


def _child_type(field: Field | None) -> str:
    return field.type if field is not None and field.type else "Generic"


def _strip(value: Any, type_name: str | None) -> Any:
    """A patch value for a key the original lacks: merged into nothing, so directives go."""
    if isinstance(value, dict):
        return _merge_map({}, value, type_name)
    if isinstance(value, list):
        return [_strip(v, type_name) if isinstance(v, dict) else copy.deepcopy(v)
                for v in value if not (isinstance(v, dict) and _PATCH in v and len(v) == 1)
                and not (isinstance(v, dict) and v.get(_PATCH) == "delete")]
    return copy.deepcopy(value)


def _patch_directive(patch: dict[str, Any]) -> str | None:
    directive = patch.get(_PATCH)
    if directive is None:
        return None
    if directive not in ("replace", "merge", "delete"):
        raise PatchError(500, "", f"unknown patch type: {directive} in map: {patch}")
    return str(directive)


def _merge_map(
    original: dict[str, Any], patch: dict[str, Any], type_name: str | None
) -> dict[str, Any]:
    directive = _patch_directive(patch)
    if directive == "replace":
        return {k: _strip(v, _child_type(field_of(type_name, k)))
                for k, v in patch.items() if k != _PATCH and not k.startswith("$")}
    if directive == "delete":
        return {}
    result = dict(original)
    retain = patch.get(_RETAIN)
    if retain is not None:
        if not isinstance(retain, list):
            raise _bad_request("invalid patch format for $retainKeys: it must be a list")
        for key in patch:
            if not key.startswith("$") and key not in retain and patch[key] is not None:
                raise _unprocessable("the content of the $retainKeys patch does not match")
        result = {k: v for k, v in result.items() if k in retain}
    for key, values in patch.items():
        if key.startswith(_DELETE_PRIMITIVE):
            name = key[len(_DELETE_PRIMITIVE):]
            if not isinstance(values, list):
                raise _bad_request(
                    "invalid patch format for $deleteFromPrimitiveList: it must be a list"
                )
            current = result.get(name)
            if isinstance(current, list):
                kept = [v for v in current if v not in values]
                if kept:
                    result[name] = kept
                else:
                    del result[name]  # an empty list is omitted once the server decodes it
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
            continue
        field = field_of(type_name, key) if type_name is not None else None
        sub_type = _child_type(field) if type_name is not None else None
        if key not in result:
            result[key] = _strip(value, sub_type)
            if isinstance(value, list):
                result[key] = _merge_list([], value, field, sub_type)
            continue
        current = result[key]
        if isinstance(value, dict) and isinstance(current, dict):
            if field is not None and (field.atomic or field.strategy == "replace"):
                result[key] = _strip(value, sub_type)
            else:
                result[key] = _merge_map(current, value, sub_type)
        elif isinstance(value, list) and isinstance(current, list):
            result[key] = _merge_list(current, value, field, sub_type)
        else:
            result[key] = _strip(value, sub_type)
    for key, order in patch.items():
        if key.startswith(_ORDER):
            name = key[len(_ORDER):]
            if not isinstance(order, list):
                raise _bad_request(
                    "invalid patch format for $setElementOrder list: it must be a list"
                )
            field = field_of(type_name, name) if type_name is not None else None
            if isinstance(result.get(name), list) and isinstance(original.get(name), list):
                result[name] = _order(result[name], order, original[name], field)
            elif isinstance(result.get(name), list):
                result[name] = _order(result[name], order, [], field)
    return result


def _merge_key(field: Field | None) -> str | None:
    if field is None or "merge" not in field.strategy.split(","):
        return None
    return field.keys[0] if field.keys else ""


def _merge_list(
    original: list[Any], patch: list[Any], field: Field | None, elem_type: str | None
) -> list[Any]:
    key = _merge_key(field)
    if key is None:
        return _strip(patch, elem_type)  # type: ignore[no-any-return]
    if any(isinstance(p, dict) and p.get(_PATCH) == "replace" for p in patch):
        return [_strip(p, elem_type) for p in patch
                if not (isinstance(p, dict) and _PATCH in p)]
    if key == "":
        result = list(original)
        for item in patch:
            if isinstance(item, (dict, list)):
                raise _bad_request("invalid patch format for a list of primitives")
            if item not in result:
                result.append(item)
        return result
    result = [copy.deepcopy(o) for o in original]
    for item in patch:
        if not isinstance(item, dict):
            raise _bad_request(f"invalid patch: list element {item!r} is not a map")
        directive = _patch_directive(item)
        if directive == "merge" and len(item) == 1:
            continue
        if key not in item:
            raise PatchError(
                500, "", f"map: {item} does not contain declared merge key: {key}"
            )
        matches = [i for i, o in enumerate(result)
                   if isinstance(o, dict) and o.get(key) == item[key]]
        if directive == "delete":
            result = [o for i, o in enumerate(result) if i not in matches]
        elif matches:
            result[matches[0]] = _merge_map(result[matches[0]], item, elem_type)
        else:
            result.append(_merge_map({}, item, elem_type))
    return result


def _identity(item: Any, key: str | None) -> str:
    if key and isinstance(item, dict):
        return json.dumps(item.get(key), sort_keys=True)
    return json.dumps(item, sort_keys=True)


def _order(
    merged: list[Any], order: list[Any], server: list[Any], field: Field | None
) -> list[Any]:
    """Reorder a merged list the way ``$setElementOrder`` asks (apimachinery's algorithm).

    Items named in the order list come in that order; items only the server had keep their
    place relative to them.
    """
    key = _merge_key(field) or None
    rank = {_identity(o, key): i for i, o in enumerate(order)}
    server_rank = {_identity(o, key): i for i, o in enumerate(server)}
    named = sorted((m for m in merged if _identity(m, key) in rank),
                   key=lambda m: rank[_identity(m, key)])
    others = [m for m in merged if _identity(m, key) not in rank]
    out: list[Any] = []
    i = j = 0
    while i < len(others) or j < len(named):
        if i >= len(others):
            out.append(named[j])
            j += 1
        elif j >= len(named):
            out.append(others[i])
            i += 1
        else:
            li = server_rank.get(_identity(others[i], key), -1)
            ri = server_rank.get(_identity(named[j], key), -1)
            if li >= 0 and ri >= 0 and li < ri:
                out.append(others[i])
                i += 1
            else:
                out.append(named[j])
                j += 1
    return out
