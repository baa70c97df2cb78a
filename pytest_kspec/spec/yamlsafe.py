"""Safe YAML reading for spec files: one document of plain data, and where each value stands.

PyYAML alone would silently accept duplicate keys, arbitrary tags, several documents and alias
bombs, and would forget line numbers. Here the YAML is composed into nodes (marks kept), checked,
and turned into plain dicts/lists/scalars while a :class:`Locator` records the line and column
of every key and value, so later validation can say ``FILE:LINE:COL: spec.path: problem``.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.events import StreamEndEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from pytest_kspec.errors import SpecError

MAX_BYTES = 1024 * 1024
"""Largest spec or config file we read (1 MiB); real specs are a few KiB."""

MAX_NODES = 100_000
"""Most values a document may hold once aliases are expanded (guards against alias bombs)."""

FieldPath = tuple[str | int, ...]

_STD = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_STD + name for name in ("str", "int", "float", "bool", "null")}
_TIMESTAMP = _STD + "timestamp"
_MERGE = _STD + "merge"

_Fail = Callable[["Mark", str], SpecError]


@dataclass(frozen=True, order=True)
class Mark:
    """A 1-based position in the source text."""

    line: int
    col: int


DOCUMENT_START = Mark(1, 1)


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a document; ``str()`` is the user-facing line."""

    mark: Mark
    path: FieldPath
    message: str

    def render(self, source: str) -> str:
        """``SOURCE:LINE:COL: path: message``."""
        return f"{source}:{self.mark.line}:{self.mark.col}: {dotted(self.path)}: {self.message}"


def dotted(path: Iterable[str | int]) -> str:
    """``("spec", "workloads", 1, "key")`` → ``spec.workloads[1].key``; empty → ``<document>``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part and all(c.isalnum() or c in "_-./" for c in part):
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out or "<document>"


def raise_problems(source: str, problems: Iterable[Problem]) -> None:
    """Raise :class:`SpecError` with every problem (sorted by position, de-duplicated)."""
    lines: list[str] = []
    for problem in sorted(set(problems)):
        line = problem.render(source)
        if line not in lines:
            lines.append(line)
    if lines:
        raise SpecError(lines)


class Locator:
    """Where each key and value of a constructed document stands in the source."""

    def __init__(self) -> None:
        self._keys: dict[FieldPath, Mark] = {}
        self._values: dict[FieldPath, Mark] = {}
        self._raw: dict[FieldPath, str] = {}

    def record(
        self, path: FieldPath, value: Mark, key: Mark | None = None, raw: str | None = None
    ) -> None:
        """Remember the marks of the value at ``path`` (and of its key, in a mapping)."""
        self._values.setdefault(path, value)
        if key is not None:
            self._keys.setdefault(path, key)
        if raw is not None:
            self._raw.setdefault(path, raw)

    def raw(self, path: FieldPath) -> str | None:
        """The source text of the scalar at ``path`` (``1.30`` stays ``1.30``), if a scalar."""
        return self._raw.get(path)

    def key(self, path: FieldPath) -> Mark:
        """The key naming ``path`` (its value for list items; nearest ancestor if unknown)."""
        for n in range(len(path), -1, -1):
            sub = path[:n]
            if sub in self._keys:
                return self._keys[sub]
            if sub in self._values:
                return self._values[sub]
        return DOCUMENT_START

    def value(self, path: FieldPath) -> Mark:
        """The value at ``path`` (nearest ancestor's value if unknown)."""
        for n in range(len(path), -1, -1):
            if path[:n] in self._values:
                return self._values[path[:n]]
        return DOCUMENT_START


@dataclass(frozen=True)
class YamlDocument:
    """The single document of a file as plain data, with the locator of its parts."""

    data: Any
    locator: Locator


def read_file(path: str | os.PathLike[str], flag: str) -> bytes:
    """Read at most ``MAX_BYTES + 1`` bytes; an unreadable file is a one-line :class:`SpecError`.

    ``flag`` names the option that gave the path (``--kspec-spec``), for the hint.
    """
    try:
        with open(path, "rb") as fh:
            return fh.read(MAX_BYTES + 1)
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise SpecError([f"{os.fspath(path)}: cannot read: {reason} (check {flag})"]) from e


def read_document(data: bytes, source: str) -> YamlDocument:
    """Parse ``data`` as exactly one safe YAML document; raise :class:`SpecError` otherwise."""

    def fail(mark: Mark, message: str) -> SpecError:
        return SpecError([Problem(mark, (), message).render(source)])

    if len(data) > MAX_BYTES:
        raise fail(DOCUMENT_START, f"file is too large: over {MAX_BYTES} bytes (1 MiB) "
                   f"(split it; a spec is a few KiB)")
    text = _decode(data, fail)
    if not text.strip():
        raise fail(DOCUMENT_START, "file is empty (write a document starting with "
                   "apiVersion: kspec.dev/v1)")
    try:
        node, loader = _compose_one(text, fail)
    except yaml.MarkedYAMLError as e:
        raise fail(_mark_of(e), _yaml_message(e)) from e
    except yaml.reader.ReaderError as e:
        raise fail(_offset_mark(text, e.position),
                   f"invalid YAML: character {_char(e.character)} is not allowed in YAML "
                   f"(remove it or write it as an escape in a double-quoted string)") from e
    except RecursionError as e:
        raise fail(DOCUMENT_START, "nesting is too deep (flatten the document)") from e
    if node is None:
        raise fail(DOCUMENT_START, "file holds no YAML document, only comments "
                   "(write a document starting with apiVersion: kspec.dev/v1)")
    if isinstance(node, ScalarNode) and node.tag == _STD + "null":
        raise fail(_start(node), "document is empty (write a mapping starting with "
                   "apiVersion: kspec.dev/v1)")
    total, aliased = _expanded_size(node, fail)
    if total > MAX_NODES:
        reason = ("aliases expand to more than" if aliased
                  else "document holds more than")
        raise fail(_start(node), f"{reason} {MAX_NODES} values (write the values out "
                   "instead of nesting aliases; a spec is small)")
    problems: list[Problem] = []
    locator = Locator()
    builder = _Builder(loader, locator, problems)
    data_out = builder.build(node, ())
    if problems:
        raise_problems(source, problems)
    return YamlDocument(data_out, locator)


def _decode(data: bytes, fail: _Fail) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0
        prefix = data[bom:bom + e.start]
        line = prefix.count(b"\n") + 1
        col = len(prefix) - (prefix.rfind(b"\n") + 1) + 1
        bad = data[bom + e.start:bom + e.start + 1].hex()
        raise fail(Mark(line, col), f"not UTF-8: byte 0x{bad} at offset {bom + e.start} "
                   "(save the file as UTF-8)") from e


def _compose_one(text: str, fail: _Fail) -> tuple[Node | None, yaml.SafeLoader]:
    loader = yaml.SafeLoader(text)
    try:
        loader.get_event()  # type: ignore[no-untyped-call]  # StreamStartEvent
        node: Node | None = None
        if not loader.check_event(StreamEndEvent):
            node = loader.compose_document()
        if not loader.check_event(StreamEndEvent):
            second = loader.peek_event().start_mark.line + 1  # type: ignore[no-untyped-call]
            raise fail(Mark(second, 1), f"one document expected, found a second one at line "
                       f"{second} (remove the '---' and what follows, or split the file)")
    finally:
        loader.dispose()
    return node, loader


def _char(code: int | str) -> str:
    value = code if isinstance(code, int) else ord(code[:1] or "\0")
    return f"U+{value:04X}"


def _mark_of(e: yaml.MarkedYAMLError) -> Mark:
    mark = e.problem_mark or e.context_mark
    return Mark(mark.line + 1, mark.column + 1) if mark is not None else DOCUMENT_START


def _yaml_message(e: yaml.MarkedYAMLError) -> str:
    problem = " ".join((e.problem or "syntax error").split())
    context = " ".join((e.context or "").split())
    where = ""
    if context and e.context_mark is not None:
        where = f" {context} at line {e.context_mark.line + 1}"
    elif context:
        where = f" {context}"
    return (f"invalid YAML: {problem}{where.rstrip()} "
            "(check indentation, quotes and the ':' after each key)")


def _offset_mark(text: str, offset: int) -> Mark:
    prefix = text[:offset]
    return Mark(prefix.count("\n") + 1, offset - (prefix.rfind("\n") + 1) + 1)


def _start(node: Node) -> Mark:
    return Mark(node.start_mark.line + 1, node.start_mark.column + 1)


def _expanded_size(root: Node, fail: _Fail) -> tuple[int, bool]:
    """Values in the document once aliases are expanded (capped), and whether aliases occur."""
    sizes: dict[int, int] = {}
    active: set[int] = set()
    distinct = 0

    def size(node: Node) -> int:
        nonlocal distinct
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise fail(_start(node), "recursive alias: an anchor contains an alias to itself "
                       "(remove the alias)")
        active.add(key)
        distinct += 1
        total = 1
        if isinstance(node, SequenceNode):
            total += sum(size(item) for item in node.value)
        elif isinstance(node, MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        active.discard(key)
        sizes[key] = min(total, MAX_NODES + 1)
        return sizes[key]

    total = size(root)
    return total, total > distinct


class _Builder:
    """Turns checked nodes into plain Python data, recording marks and problems."""

    def __init__(self, loader: yaml.SafeLoader, locator: Locator, problems: list[Problem]):
        self.loader = loader
        self.locator = locator
        self.problems = problems

    def build(self, node: Node, path: FieldPath, key: Mark | None = None) -> Any:
        raw = str(node.value) if isinstance(node, ScalarNode) else None
        self.locator.record(path, _start(node), key, raw)
        if not self._tag_ok(node, path):
            return None
        if isinstance(node, MappingNode):
            return self._mapping(node, path)
        if isinstance(node, SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        if node.tag == _TIMESTAMP:
            return node.value
        return self.loader.construct_object(node)

    def _tag_ok(self, node: Node, path: FieldPath) -> bool:
        tag = node.tag
        if isinstance(node, ScalarNode) and (tag in _SCALAR_TAGS or tag == _TIMESTAMP):
            return True
        if isinstance(node, SequenceNode) and tag == _STD + "seq":
            return True
        if isinstance(node, MappingNode) and tag == _STD + "map":
            return True
        shown = "!!" + tag[len(_STD):] if tag.startswith(_STD) else tag
        self.problems.append(Problem(_start(node), path, f"unsupported YAML tag {shown} "
                                     "(remove it: only plain YAML data is allowed)"))
        return False

    def _mapping(self, node: MappingNode, path: FieldPath) -> dict[str, Any]:
        out: dict[str, Any] = {}
        first: dict[str, Mark] = {}
        for key_node, value_node in node.value:
            key_mark = _start(key_node)
            if key_node.tag == _MERGE:
                self.problems.append(Problem(key_mark, path, 'merge keys ("<<") are not '
                                             "supported (write the fields out in full)"))
                continue
            if not isinstance(key_node, ScalarNode):
                self.problems.append(Problem(key_mark, path, "a key must be plain text, not a "
                                             "list or mapping (write key: value)"))
                continue
            if not self._tag_ok(key_node, path):
                continue
            key = str(key_node.value)
            if key in first:
                self.problems.append(Problem(
                    key_mark, (*path, key),
                    f'duplicate key "{key}" (first at line {first[key].line}; keep one)'))
                continue
            first[key] = key_mark
            out[key] = self.build(value_node, (*path, key), key_mark)
        return out
