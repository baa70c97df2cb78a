"""The session-wide cluster snapshot: each kind is listed once, lazily, and shared by all items.

A failed LIST is remembered too, so every item that needs that kind reports the same error
(naming the resource and verb) without asking the API server again.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Protocol

from pytest_kspec.errors import ApiError


class Source(Protocol):
    """What a snapshot reads from: :class:`pytest_kspec.cluster.client.Cluster` or a test double."""

    def list(self, api_version: str, kind: str,
             namespace: str | None = None) -> list[dict[str, Any]]: ...

    def version(self) -> dict[str, Any]: ...


Held = dict[tuple[Any, Any], dict[str, Any]]
"""A held kind: its objects by (namespace, name), in the order listed, so a watch event
updates one entry instead of copying the list."""


def _ident(obj: Mapping[str, Any]) -> tuple[Any, Any]:
    meta = obj.get("metadata") or {}
    name = meta.get("name")
    return (meta.get("namespace"), name) if name is not None else ("", id(obj))


def _held(objects: Iterable[dict[str, Any]]) -> Held:
    return {_ident(o): o for o in objects}


class Snapshot:
    """Lazy, cached view of the cluster for one run.

    ``list("apps/v1", "Deployment", namespace="shop")`` lists Deployments cluster-wide once,
    then answers from memory. Objects are the API server's raw JSON; treat them as read-only.
    Detection reads Pods and workload controllers with :meth:`pages` instead (one pass,
    page by page, see :mod:`pytest_kspec.detect.stream`), so a one-shot run holds only the
    small kinds; watch mode holds what its watches :meth:`put` there.
    """

    def __init__(self, source: Source) -> None:
        self._source = source
        self._lists: dict[tuple[str, str], Held | ApiError] = {}
        self._version: dict[str, Any] | ApiError | None = None
        self._lock = threading.Lock()
        self._reads: set[tuple[str, str]] | None = None

    @contextmanager
    def tracking(self) -> Iterator[set[tuple[str, str]]]:
        """Collect the kinds read inside the block (``("", "version")`` for /version): what
        watch mode needs to know which targets an event on a kind affects."""
        reads: set[tuple[str, str]] = set()
        outer, self._reads = self._reads, reads
        try:
            yield reads
        finally:
            self._reads = outer  # a block inside another one counts for both
            if outer is not None:
                outer |= reads

    def note_reads(self, kinds: Iterable[tuple[str, str]]) -> None:
        """Count ``kinds`` as read by the tracked block (a verdict reused from a pass that
        read them earlier, see :mod:`pytest_kspec.detect.stream`)."""
        if self._reads is not None:
            self._reads.update(kinds)

    def list(self, api_version: str, kind: str,
             namespace: str | None = None) -> list[dict[str, Any]]:
        key = (api_version, kind)
        if self._reads is not None:
            self._reads.add(key)
        with self._lock:
            if key not in self._lists:
                try:
                    self._lists[key] = _held(self._source.list(api_version, kind))
                except ApiError as e:
                    self._lists[key] = e
            cached = self._lists[key]
            if isinstance(cached, ApiError):
                raise cached
            if namespace is None:
                return list(cached.values())
            return [o for (ns, _), o in cached.items() if ns == namespace]

    def server_version(self) -> Mapping[str, Any]:
        if self._reads is not None:
            self._reads.add(("", "version"))
        with self._lock:
            if self._version is None:
                try:
                    self._version = self._source.version()
                except ApiError as e:
                    self._version = e
            cached = self._version
        if isinstance(cached, ApiError):
            raise cached
        return cached

    def pages(self, api_version: str, kind: str) -> Iterator[builtins.list[dict[str, Any]]]:
        """``kind`` page by page, for a reader that keeps only its conclusions: the pages
        are not cached (a kind listed before comes from memory, as one page). A failure is
        remembered like a failed :meth:`list`. Sources without paging give one page."""
        key = (api_version, kind)
        if self._reads is not None:
            self._reads.add(key)
        with self._lock:
            cached = self._lists.get(key)
            held = None if cached is None or isinstance(cached, ApiError) else list(
                cached.values())
        if isinstance(cached, ApiError):
            raise cached
        if held is not None:
            yield held
            return
        paged = getattr(self._source, "pages", None)
        try:
            if paged is None:
                yield self._source.list(api_version, kind)
            else:
                yield from paged(api_version, kind)
        except ApiError as e:
            if e.status != 410:  # an expired continue token: the reader may start again
                with self._lock:
                    self._lists[key] = e
            raise

    def forget(self, api_version: str, kind: str) -> None:
        """Drop a cached kind (after a write, so the next read sees the cluster again)."""
        with self._lock:
            self._lists.pop((api_version, kind), None)

    def forget_version(self) -> None:
        with self._lock:
            self._version = None

    def put(self, api_version: str, kind: str, objects: Iterable[dict[str, Any]]) -> None:
        """Replace a kind's objects (a watch's re-list)."""
        with self._lock:
            self._lists[(api_version, kind)] = _held(objects)

    def held(self, api_version: str, kind: str) -> builtins.list[dict[str, Any]] | None:
        """A kind's objects as held now, or None when it is not held (never lists)."""
        with self._lock:
            cached = self._lists.get((api_version, kind))
            return list(cached.values()) if isinstance(cached, dict) else None

    def apply(self, api_version: str, kind: str, event: str, obj: dict[str, Any]) -> bool:
        """Apply one watch event (``ADDED``/``MODIFIED``/``DELETED``) to a listed kind in
        place; False when the kind is not held (nothing to update)."""
        ident = _ident(obj)
        obj.setdefault("apiVersion", api_version)
        obj.setdefault("kind", kind)
        with self._lock:
            held = self._lists.get((api_version, kind))
            if not isinstance(held, dict):
                return False
            held.pop(ident, None)  # an updated object moves to the end
            if event != "DELETED":
                held[ident] = obj
        return True

    def get(self, api_version: str, kind: str, name: str,
            namespace: str | None = None) -> dict[str, Any] | None:
        """One object from the cached list (None if absent)."""
        for obj in self.list(api_version, kind, namespace):
            if (obj.get("metadata") or {}).get("name") == name:
                return obj
        return None
