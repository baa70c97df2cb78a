"""JSON-Schema validation of spec documents, with jsonschema's messages turned into human ones.

Shared by the ClusterSpecification and DriftConfig loaders: each error becomes a
:class:`~pytest_kspec.spec.yamlsafe.Problem` placed on the offending key or value and saying what
to write instead.

Most documents are valid, and importing ``jsonschema`` costs more than a small run's
detection, so a document is first checked by :func:`quick_valid`, a strict reading of the
keywords our two schemas use; only a document it does not pass (or a keyword it does not
know) goes to ``jsonschema``, which finds and words the problems. The messages are therefore
``jsonschema``'s whatever the path. The bundled schemas are checked against the 2020-12
metaschema by the tests, not at every run.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jsonschema import ValidationError

from pytest_kspec.spec.yamlsafe import FieldPath, Problem, YamlDocument


@cache
def schema(name: str) -> Mapping[str, Any]:
    """The JSON Schema ``pytest_kspec/schema/<name>.json`` (package data)."""
    # next to this module rather than importlib.resources: editable installs can expose the
    # package as a namespace package, which importlib.resources cannot read from
    text = (Path(__file__).parent / "schema" / f"{name}.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def schema_problems(doc: YamlDocument, name: str) -> list[Problem]:
    """Every way ``doc`` breaks schema ``name``, as problems."""
    root = schema(name)
    if quick_valid(root, doc.data):
        return []
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(root)
    problems: list[Problem] = []
    for error in validator.iter_errors(doc.data):
        problems.extend(_translate(error, doc, root))
    return problems


class _Unsure(Exception):
    """A keyword or value :func:`quick_valid` does not judge: ``jsonschema`` decides."""


_KNOWN = frozenset({"$defs", "$id", "$ref", "$schema", "additionalProperties", "const", "enum",
                    "items", "maximum", "minItems", "minLength", "minimum", "pattern",
                    "properties", "required", "title", "description", "type", "x-hint",
                    "default", "examples"})


def quick_valid(root: Mapping[str, Any], instance: Any) -> bool:
    """Whether ``instance`` is valid against ``root``, judged without ``jsonschema``.

    Sound, not complete: True only when every keyword met is one it reads exactly as JSON
    Schema 2020-12 does; anything else (an unknown keyword, a remote ``$ref``, a value
    whose equality JSON and Python see differently) answers False, and the caller asks
    ``jsonschema``."""
    try:
        return _valid(root, root, instance)
    except _Unsure:
        return False


def _valid(node: Mapping[str, Any], root: Mapping[str, Any], value: Any) -> bool:
    if not isinstance(node, Mapping) or not _KNOWN.issuperset(node):
        raise _Unsure
    ref = node.get("$ref")
    if ref is not None:
        if not isinstance(ref, str) or not ref.startswith("#/$defs/"):
            raise _Unsure
        if not _valid(root["$defs"][ref[len("#/$defs/"):]], root, value):
            return False
    kind = node.get("type")
    if kind is not None and not any(_is(t, value) for t in
                                    ([kind] if isinstance(kind, str) else kind)):
        return False
    if "const" in node and not _same(node["const"], value):
        return False
    if "enum" in node and not any(_same(c, value) for c in node["enum"]):
        return False
    if isinstance(value, str):
        if len(value) < node.get("minLength", 0):
            return False
        pattern = node.get("pattern")
        if pattern is not None and not re.search(pattern, value):
            return False
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in node and value < node["minimum"]:
            return False
        if "maximum" in node and value > node["maximum"]:
            return False
    if isinstance(value, list):
        if len(value) < node.get("minItems", 0):
            return False
        items = node.get("items")
        if items is not None and not all(_valid(items, root, v) for v in value):
            return False
    if isinstance(value, dict):
        return _valid_object(node, root, value)
    return True


def _valid_object(node: Mapping[str, Any], root: Mapping[str, Any],
                  value: dict[Any, Any]) -> bool:
    if not all(key in value for key in node.get("required", ())):
        return False
    props: Mapping[str, Any] = node.get("properties") or {}
    extra = node.get("additionalProperties", True)
    for key, item in value.items():
        if not isinstance(key, str):
            raise _Unsure  # YAML allows keys JSON does not
        if key in props:
            if not _valid(props[key], root, item):
                return False
        elif extra is False or (extra is not True and not _valid(extra, root, item)):
            return False
    return True


def _is(kind: str, value: Any) -> bool:
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "null":
        return value is None
    if isinstance(value, bool):
        return False
    if kind == "integer":
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if kind == "number":
        return isinstance(value, (int, float))
    raise _Unsure


def _same(expected: Any, value: Any) -> bool:
    """JSON equality for the scalars our schemas' ``const``/``enum`` hold."""
    for v in (expected, value):
        if not (v is None or isinstance(v, (str, bool, int, float))):
            raise _Unsure
    if isinstance(expected, bool) or isinstance(value, bool):
        return type(expected) is type(value) and expected == value
    return bool(expected == value)


def type_name(value: Any) -> str:
    """How a YAML value's type reads in a message (``a list``, ``nothing (null)``)."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def show(value: Any) -> str:
    """A scalar as YAML would show it, quoted when text; long text is cut."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "..."
        return json.dumps(text, ensure_ascii=False)
    if isinstance(value, (int, float)):
        return str(value)
    return type_name(value)


def suggest(word: str, choices: Iterable[str]) -> str:
    """``did you mean "x"? `` when a close choice exists, else empty."""
    options = list(choices)
    folded = {c.lower(): c for c in options}
    if word.lower() in folded and folded[word.lower()] != word:
        return f'did you mean "{folded[word.lower()]}"? '
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f'did you mean "{close[0]}"? ' if close else ""


_TYPE_WORDS = {
    "string": "a string", "integer": "an integer", "number": "a number",
    "boolean": "a boolean (true or false)", "array": "a list", "object": "a mapping",
    "null": "nothing",
}


def _expected(types: str | Sequence[str]) -> str:
    names = [types] if isinstance(types, str) else list(types)
    words = [_TYPE_WORDS.get(t, t) for t in names]
    if len(words) > 1 and "a number" in words and "a string" in words:
        words = [w for w in words if w != "an integer"]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _type_hint(types: str | Sequence[str], value: Any) -> str:
    names = {types} if isinstance(types, str) else set(types)
    if value is None and names == {"object"}:
        return "indent its fields under it, or write {} for none"
    if value is None and names == {"array"}:
        return "list its entries under it, or write [] for none"
    if value is None:
        return "give it a value or remove the line"
    if names == {"string"} and isinstance(value, (bool, int, float)):
        return "put the value in quotes"
    if names == {"boolean"}:
        return "write true or false" + (", without quotes" if isinstance(value, str) else "")
    if names == {"integer"} and isinstance(value, str):
        return "write a whole number, without quotes"
    if names == {"integer"} and isinstance(value, float):
        return "write a whole number"
    if names == {"array"}:
        return 'write a list: one "- item" per line'
    if names == {"object"}:
        return 'write "field: value" lines indented under it'
    if "object" not in names and "array" not in names:
        return "write a single value"
    return "see the spec format"


def _required_hint(field: str, schema_node: Mapping[str, Any], root: Mapping[str, Any]) -> str:
    prop = (schema_node.get("properties") or {}).get(field) or {}
    ref = prop.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        prop = root["$defs"][ref.split("/")[-1]]
    if "const" in prop:
        return f"add {field}: {prop['const']}"
    if "enum" in prop:
        return f"add {field}: one of {', '.join(str(c) for c in prop['enum'])}"
    kind = prop.get("type")
    example = {"array": "[...]", "object": "{...}", "boolean": "true",
               "integer": "1"}.get(kind if isinstance(kind, str) else "", "...")
    return f"add {field}: {example}"


def _translate(
    error: ValidationError, doc: YamlDocument, root: Mapping[str, Any]
) -> Iterator[Problem]:
    path: FieldPath = tuple(error.absolute_path)
    loc = doc.locator
    kind = error.validator
    value = error.instance
    rule: Any = error.validator_value
    node: Mapping[str, Any] = error.schema if isinstance(error.schema, Mapping) else {}
    if kind == "additionalProperties" and isinstance(value, dict):
        allowed = list(node.get("properties") or {})
        for key in value:
            if key in allowed:
                continue
            where = (*path, key)
            yield Problem(loc.key(where), where, f'unknown field "{key}" '
                          f"({suggest(key, allowed)}allowed: {', '.join(allowed)})")
    elif kind == "required" and isinstance(value, dict):
        for field in rule:
            if field not in value:
                yield Problem(loc.key(path), path, f'missing required field "{field}" '
                              f"({_required_hint(field, node, root)})")
    elif kind == "type":
        hint = node.get("x-hint") or _type_hint(rule, value)
        yield Problem(loc.value(path), path, f"expected {_expected(rule)}, got "
                      f"{type_name(value)} ({hint})")
    elif kind == "enum":
        choices = [str(c) for c in rule]
        hint = suggest(value, choices).rstrip() if isinstance(value, str) else ""
        hint = hint or f"write one of them, e.g. {choices[0]}"
        yield Problem(loc.value(path), path, f"must be one of: {', '.join(choices)}; "
                      f"got {show(value)} ({hint})")
    elif kind == "const":
        yield Problem(loc.value(path), path, f"must be {show(rule)}, got {show(value)} "
                      f"(write {path[-1] if path else 'it'}: {rule})")
    elif kind in ("minimum", "maximum"):
        word = "at least" if kind == "minimum" else "at most"
        yield Problem(loc.value(path), path, f"must be {word} {rule}, got {show(value)} "
                      f"(write a number {word} {rule})")
    elif kind == "minLength":
        yield Problem(loc.value(path), path, "must not be empty (write a value or remove "
                      "the field)")
    elif kind == "minItems":
        yield Problem(loc.value(path), path, "must list at least one entry (add an entry "
                      "or remove the field)")
    else:
        yield Problem(loc.value(path), path, f"{error.message} (see the spec format)")


# kind → the option that takes such a file, for the hint when one is passed for the other
KIND_OPTIONS: Mapping[str, str] = {
    "ClusterSpecification": "--kspec-spec",
    "DriftConfig": "--kspec-config",
}


def document_problems(doc: YamlDocument, kind: str, schema_name: str) -> list[Problem]:
    """Problems of a whole document: top-level shape, ``kind``, then the schema.

    A document of another kind is reported by its ``kind`` alone (the rest would be noise).
    """
    data = doc.data
    if not isinstance(data, dict):
        return [Problem(doc.locator.value(()), (), f"expected a mapping at the top level, got "
                        f"{type_name(data)} (start with apiVersion: kspec.dev/v1)")]
    found = data.get("kind")
    if isinstance(found, str) and found != kind:
        hint = f"write kind: {kind}"
        if found in KIND_OPTIONS:
            hint = f"this file is a {found}: pass it with {KIND_OPTIONS[found]}"
        return [Problem(doc.locator.value(("kind",)), ("kind",),
                        f"must be {show(kind)}, got {show(found)} ({hint})")]
    return schema_problems(doc, schema_name)
