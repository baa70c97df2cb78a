"""YAML state files read fast: parsed by libyaml, resolved by YAML 1.1 rules, built at once.

A state file of 10,000 pods holds about a million scalars. ``yaml.load_all(text,
Loader=yaml.CSafeLoader)`` parses it in C but then resolves each scalar's tag and constructs
each node through PyYAML's generic, pure-Python constructor (a dispatch per node, flattening
every mapping for merge keys, generators for recursive structures). Here libyaml still parses
and composes the nodes, scalars are resolved with the same implicit resolvers (a table
lookup on the first character first, so ``app-7d4b9c`` never meets a regular expression),
and the nodes become dicts, lists and scalars in one tight walk. What a Kubernetes object
holds comes out exactly as the safe loader makes it (YAML 1.1): ``on``/``yes``/``true``
unquoted are booleans, ``"on"`` and ``08`` are strings, ``017``/``0x1f``/``1_000`` are ints,
``~`` and empty values are null. Anything rarer (merge keys ``<<``, ``!!set``, ``!!binary``,
explicit tags) goes through PyYAML's own constructor, so it loads as before. Without libyaml
the same walk runs over PyYAML's pure-Python parser.

Two deliberate differences from ``yaml.safe_load``: an unquoted timestamp
(``creationTimestamp: 2024-01-02T03:04:05Z``) stays the string written, as the API server's
YAML reader keeps it (a ``datetime`` is not JSON and could not be served); and an anchor
used inside itself is an error (no Kubernetes object can hold a cycle).

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

__all__ = ["load_documents"]

_STD = "tag:yaml.org,2002:"
STR = _STD + "str"
_MAP = _STD + "map"
_SEQ = _STD + "seq"
_NULL = _STD + "null"
_BOOL = _STD + "bool"
_INT = _STD + "int"
_FLOAT = _STD + "float"
_TIMESTAMP = _STD + "timestamp"
_MERGE = _STD + "merge"

_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SHORT = 16  # plain scalars up to this length have their tag remembered (they recur)
_NONE: list[tuple[str, Any]] = []
_BUILDING = object()  # memo mark of a collection being built (an alias into itself)


class _Loader(_Base):  # type: ignore[misc]
    """The safe loader with resolver hooks cut to what the safe schema uses.

    The safe schema has no path resolvers, so descending and ascending are no-ops, and the
    implicit resolvers are looked up by first character only when a scalar is plain.
    """

    _first: dict[str, list[tuple[str, Any]]] = {
        key: list(value) for key, value in _Base.yaml_implicit_resolvers.items()
        if key is not None}
    _wildcard: list[tuple[str, Any]] = list(_Base.yaml_implicit_resolvers.get(None, []))

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._tags: dict[str, str] = {}  # short plain scalars resolved so far ("TCP", "80")

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        return None

    def ascend_resolver(self) -> None:
        return None

    def resolve(self, kind: type, value: Any, implicit: Any) -> str:
        if kind is not ScalarNode:
            return _SEQ if kind is SequenceNode else _MAP
        if not implicit[0]:
            return STR  # quoted (or a block scalar): a string whatever it looks like
        tag = self._tags.get(value)
        if tag is None:
            tag = self._implicit(value)
            if len(value) <= _SHORT:
                self._tags[value] = tag
        return tag

    def _implicit(self, value: str) -> str:
        for tag, regexp in self._first.get(value[:1], _NONE):
            if regexp.match(value):
                return str(tag)
        for tag, regexp in self._wildcard:
            if regexp.match(value):
                return str(tag)
        return STR

    def keep_timestamp(self, node: Any) -> str:
        return str(self.construct_scalar(node))


_Loader.add_constructor(_TIMESTAMP, _Loader.keep_timestamp)


class _Builder:
    """Turns one document's nodes into plain values (aliases shared, as PyYAML shares them)."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader
        self.memo: dict[int, Any] = {}
        self.bools: dict[str, bool] = loader.bool_values

    def value(self, node: Node) -> Any:
        cls = node.__class__
        tag = node.tag
        if cls is ScalarNode:
            return node.value if tag == STR else self.scalar(node)
        if cls is MappingNode and tag == _MAP:
            return self.mapping(node)
        if cls is SequenceNode and tag == _SEQ:
            return self.sequence(node)
        return self.generic(node)

    def scalar(self, node: Any) -> Any:
        tag = node.tag
        if tag == _BOOL:
            return self.bools[node.value.lower()]
        if tag == _NULL:
            return None
        if tag == _INT:
            return self.loader.construct_yaml_int(node)
        if tag == _FLOAT:
            return self.loader.construct_yaml_float(node)
        if tag == _TIMESTAMP:
            return node.value  # as Kubernetes' YAML reader keeps it: a string
        return self.generic(node)

    def generic(self, node: Node) -> Any:
        """PyYAML's own construction, for what state files rarely hold."""
        loader = self.loader
        loader.constructed_objects = {}
        loader.recursive_objects = {}
        return loader.construct_object(node, deep=True)

    def mapping(self, node: Any) -> dict[Any, Any]:
        key_id = id(node)
        memo = self.memo
        found = memo.get(key_id)
        if found is not None:
            return self._reuse(found, node)  # type: ignore[no-any-return]
        pairs = node.value
        for knode, _ in pairs:
            if knode.tag == _MERGE:
                result: dict[Any, Any] = self.generic(node)
                memo[key_id] = result
                return result
        memo[key_id] = _BUILDING
        out: dict[Any, Any] = {}
        value = self.value
        for knode, vnode in pairs:
            if knode.__class__ is ScalarNode and knode.tag == STR:
                key = knode.value
            else:
                key = value(knode)
                if not isinstance(key, Hashable):
                    raise ConstructorError("while constructing a mapping", node.start_mark,
                                           "found unhashable key", knode.start_mark)
            if vnode.__class__ is ScalarNode and vnode.tag == STR:
                out[key] = vnode.value
            else:
                out[key] = value(vnode)
        memo[key_id] = out
        return out

    def sequence(self, node: Any) -> list[Any]:
        key_id = id(node)
        memo = self.memo
        found = memo.get(key_id)
        if found is not None:
            return self._reuse(found, node)  # type: ignore[no-any-return]
        memo[key_id] = _BUILDING
        value = self.value
        out = [v.value if v.__class__ is ScalarNode and v.tag == STR else value(v)
               for v in node.value]
        memo[key_id] = out
        return out

    @staticmethod
    def _reuse(found: Any, node: Any) -> Any:
        if found is _BUILDING:
            raise ConstructorError(None, None, "found a recursive alias (an anchor used inside "
                                   "itself); a Kubernetes object cannot hold one",
                                   node.start_mark)
        return found


def load_documents(text: str | bytes) -> Iterator[Any]:
    """Every document of a YAML stream as plain values (None for an empty document).

    Raises ``yaml.YAMLError`` (with ``problem_mark`` where libyaml gives one) on bad YAML.
    """
    loader = _Loader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            yield None if node is None else _Builder(loader).value(node)
    finally:
        loader.dispose()
