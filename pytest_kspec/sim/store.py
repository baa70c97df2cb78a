"""Object storage: entries with cached JSON, the cluster-wide resourceVersion, watch history.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import bisect
import gc
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

# Makes an object's managedFields from the object (see Entry.pending)
ManagedFields = Callable[[dict[str, Any]], list[dict[str, Any]]]
_COMPLETING = threading.Lock()

Key = tuple[str, str]  # (group, plural)
ObjKey = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped objects


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside the block (bulk work that keeps what it makes).

    Loading a state file makes millions of small dicts, lists and nodes and frees almost
    none, and so does the first LIST of loaded objects (their JSON and managedFields); the
    collector would walk the growing heap again and again for nothing (about a fifth of a
    10,000-pod load). Objects without cycles are still freed as usual.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass
class Entry:
    """A stored object. ``obj`` is never mutated once stored; ``raw`` is its JSON, made once.

    Objects loaded from a state file get their managedFields when first needed: ``pending``
    makes them from the object, and ``obj`` (and so ``raw``, ``copy()``, every write) fills
    them in first. Until then ``body`` is the object with an empty managedFields list in
    their place: enough for what reads names, labels and owners (listing, selectors, the
    store's own indexes), so loading 10,000 pods does not compute 10,000 field trees that
    may never be served.
    """

    body: dict[str, Any]
    rv: int
    pending: ManagedFields | None = field(default=None, repr=False)
    _raw: bytes | None = field(default=None, repr=False)

    @property
    def obj(self) -> dict[str, Any]:
        if self.pending is not None:
            self._complete()
        return self.body

    def _complete(self) -> None:
        with _COMPLETING:  # server threads may serve the same entry at once
            pending = self.pending
            if pending is not None:
                # replaces the placeholder's value: the key keeps its place in metadata
                self.body["metadata"]["managedFields"] = pending(self.body)
                self.pending = None

    @property
    def raw(self) -> bytes:
        if self._raw is None:
            self._raw = dumps(self.obj)
        return self._raw

    @property
    def namespace(self) -> str:
        return str(self.body["metadata"].get("namespace") or "")

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])

    def copy(self) -> dict[str, Any]:
        """A private deep copy (JSON round trip is faster than deepcopy for these trees)."""
        result: dict[str, Any] = json.loads(self.raw)
        return result


@dataclass
class Event:
    rv: int
    type: str  # ADDED, MODIFIED, DELETED
    key: Key
    entry: Entry
    prev: Entry | None = None
    _line: bytes | None = field(default=None, repr=False)

    @property
    def line(self) -> bytes:
        if self._line is None:
            head = b'{"type":"' + self.type.encode() + b'","object":'
            self._line = head + self.entry.raw + b"}\n"
        return self._line


class Store:
    """All objects of one simulator. ``cond`` guards everything; writers hold it while they
    read-modify-write, watchers wait on it for new events."""

    def __init__(self, watch_window: int = 1000) -> None:
        self.cond = threading.Condition(threading.RLock())
        self.rv = 0
        self.window = max(1, watch_window)
        self._data: dict[Key, dict[ObjKey, Entry]] = {}
        self._events: list[Event] = []
        self._event_rvs: list[int] = []
        self._first_kept_rv = 0  # events with rv >= this are still in history
        self.compactions = 0  # open watch streams end (410) when this changes
        # owner uid -> objects naming it in ownerReferences (for cascading deletion)
        self._dependents: dict[str, set[tuple[Key, str, str]]] = {}
        # called with every event, lock held (the controller manager queues work from them)
        self.listeners: list[Callable[[Event], None]] = []

    # --- reads -------------------------------------------------------------------------------
    def get(self, key: Key, namespace: str, name: str) -> Entry | None:
        with self.cond:
            return self._data.get(key, {}).get((namespace, name))

    def entries(self, key: Key, namespace: str | None = None) -> list[Entry]:
        """Entries of one resource sorted by (namespace, name)."""
        with self.cond:
            bucket = self._data.get(key, {})
            if namespace is None:
                return [bucket[k] for k in sorted(bucket)]
            return [bucket[k] for k in sorted(bucket) if k[0] == namespace]

    def resource_keys(self) -> list[Key]:
        with self.cond:
            return sorted(k for k, v in self._data.items() if v)

    # --- writes (callers hold ``cond``) --------------------------------------------------------
    def put(self, key: Key, obj: dict[str, Any], event_type: str, *,
            pending: ManagedFields | None = None) -> Entry:
        """Store ``obj`` under a new resourceVersion (set in its metadata) and record the event
        (``pending``: see :class:`Entry`)."""
        with self.cond:
            self.rv += 1
            obj["metadata"]["resourceVersion"] = str(self.rv)
            entry = Entry(obj, self.rv, pending)
            meta = obj["metadata"]
            where = (meta.get("namespace") or "", meta["name"])
            bucket = self._data.setdefault(key, {})
            old = bucket.get(where)
            if old is not None:
                self._unlink(key, old)
            bucket[where] = entry
            for ref in meta.get("ownerReferences") or []:
                if isinstance(ref, dict) and ref.get("uid"):
                    self._dependents.setdefault(str(ref["uid"]), set()).add((key, *where))
            self._record(Event(self.rv, event_type, key, entry, old))
            return entry

    def remove(self, key: Key, namespace: str, name: str) -> Entry | None:
        """Delete an object; the DELETED event carries the object at the deletion's rv."""
        with self.cond:
            old = self._data.get(key, {}).pop((namespace, name), None)
            if old is None:
                return None
            self._unlink(key, old)
            self.rv += 1
            obj = dict(old.obj)
            obj["metadata"] = dict(obj["metadata"], resourceVersion=str(self.rv))
            entry = Entry(obj, self.rv)
            self._record(Event(self.rv, "DELETED", key, entry, old))
            return entry

    def drop_resource(self, key: Key) -> list[Entry]:
        """Remove every object of a resource (its CRD went away), with DELETED events."""
        with self.cond:
            removed = []
            for ns, name in sorted(self._data.get(key, {})):
                entry = self.remove(key, ns, name)
                if entry is not None:
                    removed.append(entry)
            self._data.pop(key, None)
            return removed

    def _unlink(self, key: Key, entry: Entry) -> None:
        for ref in entry.body["metadata"].get("ownerReferences") or []:
            if isinstance(ref, dict) and ref.get("uid"):
                deps = self._dependents.get(str(ref["uid"]))
                if deps is not None:
                    deps.discard((key, entry.namespace, entry.name))
                    if not deps:
                        del self._dependents[str(ref["uid"])]

    def dependents(self, uid: str) -> list[tuple[Key, str, str]]:
        """Objects whose ownerReferences name ``uid``."""
        with self.cond:
            return sorted(self._dependents.get(uid, ()))

    def _record(self, event: Event) -> None:
        self._events.append(event)
        self._event_rvs.append(event.rv)
        for listener in self.listeners:
            listener(event)
        if len(self._events) > self.window * 2:
            cut = len(self._events) - self.window
            del self._events[:cut]
            del self._event_rvs[:cut]
        if len(self._events) > self.window:
            self._first_kept_rv = self._event_rvs[len(self._events) - self.window]
        self.cond.notify_all()

    # --- watch history -----------------------------------------------------------------------
    def compact(self) -> None:
        """Forget the watch history, as an etcd compaction does: a watch can no longer
        resume from a resourceVersion older than the current one (410 Expired), and open
        watch streams end with that error."""
        with self.cond:
            self._events.clear()
            self._event_rvs.clear()
            self._first_kept_rv = self.rv + 1
            self.compactions += 1
            self.cond.notify_all()

    def oldest_watchable_rv(self) -> int:
        """A watch may start from any rv >= this one (older ones are expired)."""
        with self.cond:
            return max(0, self._first_kept_rv - 1)

    def events_after(self, rv: int, key: Key) -> list[Event]:
        with self.cond:
            start = bisect.bisect_right(self._event_rvs, rv)
            return [e for e in self._events[start:]
                    if e.key == key and e.rv >= self._first_kept_rv]
