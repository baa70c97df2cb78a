"""LIST with limit/continue over consistent snapshots, and the chunked WATCH event loop.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from pytest_kspec.sim import status
from pytest_kspec.sim.resources import ResourceType
from pytest_kspec.sim.selectors import Matcher
from pytest_kspec.sim.store import Entry, Event, Store, dumps, gc_paused

_CONTINUE_EXPIRED = ("The provided continue parameter is too old to display a consistent list "
                     "result. You can start a new list without the continue parameter.")


def served_raw(rt: ResourceType, entry: Entry) -> bytes:
    """The entry's JSON as served at ``rt``'s version (CRDs may serve several versions)."""
    if entry.body.get("apiVersion") == rt.api_version:
        return entry.raw
    return dumps(dict(entry.obj, apiVersion=rt.api_version))


def served_obj(rt: ResourceType, entry: Entry) -> dict[str, Any]:
    """The entry's object as served at ``rt``'s version, to read only (never changed)."""
    obj = entry.obj
    if obj.get("apiVersion") == rt.api_version:
        return obj
    return dict(obj, apiVersion=rt.api_version)


class Lister:
    """Serves LIST pages; a continue token names a cached snapshot and a position in it."""

    def __init__(self, store: Store, max_snapshots: int = 64) -> None:
        self.store = store
        self._snapshots: OrderedDict[str, tuple[int, list[Entry]]] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_snapshots

    def select(self, rt: ResourceType, namespace: str | None,
               matcher: Matcher | None) -> tuple[int, list[Entry]]:
        with self.store.cond:
            entries = self.store.entries(rt.key, namespace)
            rv = self.store.rv
        if matcher is not None:
            entries = [e for e in entries if matcher(e.body)]
        return rv, entries

    def page(self, rt: ResourceType, namespace: str | None, matcher: Matcher | None,
             query: dict[str, str]) -> bytes:
        """One LIST page as JSON."""
        return self.encode(rt, *self.page_entries(rt, namespace, matcher, query))

    @staticmethod
    def encode(rt: ResourceType, meta: dict[str, Any], entries: list[Entry]) -> bytes:
        """A page's JSON, from its list metadata and entries (each entry's cached JSON)."""
        with gc_paused():  # a cold page makes thousands of dicts (JSON, managedFields)
            items = b",".join(served_raw(rt, e) for e in entries)
        head = dumps({"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": meta})
        return head[:-1] + b',"items":[' + items + b"]}"

    def page_entries(self, rt: ResourceType, namespace: str | None, matcher: Matcher | None,
                     query: dict[str, str]) -> tuple[dict[str, Any], list[Entry]]:
        """One LIST page: its list metadata (resourceVersion, continue) and its entries."""
        limit = _int_param(query, "limit")
        token = query.get("continue") or ""
        if token:
            if query.get("resourceVersion") not in (None, "", "0"):
                raise status.bad_request(
                    "specifying resource version is not allowed when using continue")
            snap_id, start = _decode(token)
            with self._lock:
                snap = self._snapshots.get(snap_id)
                if snap is not None:
                    self._snapshots.move_to_end(snap_id)
            if snap is None:
                raise status.expired(_CONTINUE_EXPIRED)
            rv, entries = snap
        else:
            rv, entries = self.select(rt, namespace, matcher)
            start, snap_id = 0, ""
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        end = len(entries) if not limit else min(len(entries), start + limit)
        if end < len(entries):
            if not snap_id:
                snap_id = uuid.uuid4().hex[:16]
                with self._lock:
                    self._snapshots[snap_id] = (rv, entries)
                    while len(self._snapshots) > self._max:
                        self._snapshots.popitem(last=False)
            meta["continue"] = _encode(snap_id, end, rv)
            if matcher is None:
                meta["remainingItemCount"] = len(entries) - end
        return meta, entries[start:end]


def _int_param(query: dict[str, str], name: str) -> int:
    value = query.get(name) or "0"
    try:
        return max(0, int(value))
    except ValueError:
        raise status.bad_request(f'invalid value for {name}: "{value}"') from None


def _encode(snap_id: str, pos: int, rv: int) -> str:
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": pos, "snap": snap_id})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(token: str) -> tuple[str, int]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        return str(data["snap"]), int(data["start"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise status.bad_request(f"continue key is not valid: {token}") from None


Send = Callable[[bytes], None]


def _line(kind: str, raw: bytes) -> bytes:
    return b'{"type":"' + kind.encode() + b'","object":' + raw + b"}\n"


def watch(store: Store, rt: ResourceType, namespace: str | None, matcher: Matcher | None,
          query: dict[str, str], send: Send, stopping: threading.Event,
          bookmark_interval: float) -> None:
    """Stream events until timeoutSeconds, the client going away, or the server stopping."""
    timeout = float(_int_param(query, "timeoutSeconds") or 1800)
    deadline = time.monotonic() + timeout
    bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
    rv_param = query.get("resourceVersion") or ""

    def wanted(e: Entry) -> bool:
        return (namespace is None or e.namespace == namespace) and (
            matcher is None or matcher(e.body))

    with store.cond:
        compactions = store.compactions
        if rv_param in ("", "0"):
            last = store.rv
            initial = [e for e in store.entries(rt.key, namespace) if wanted(e)]
        else:
            try:
                last = int(rv_param)
            except ValueError:
                raise status.bad_request(
                    f'invalid resource version "{rv_param}": strconv.ParseUint: parsing '
                    f'"{rv_param}": invalid syntax') from None
            oldest = store.oldest_watchable_rv()
            if last < oldest:
                err = status.expired(f"too old resource version: {last} ({oldest + 1})")
                send(_line("ERROR", dumps(err.body())))
                return
            initial = []
    for e in initial:
        send(_line("ADDED", served_raw(rt, e)))
    if bookmarks and initial:
        send(_bookmark(rt, last))
    next_bookmark = time.monotonic() + bookmark_interval
    while not stopping.is_set():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        with store.cond:
            events = store.events_after(last, rt.key)
            if not events:
                store.cond.wait(min(remaining, 0.5, max(0.01, next_bookmark - time.monotonic())))
                events = store.events_after(last, rt.key)
            current = store.rv
            compacted = store.compactions != compactions
        if compacted:
            send(_line("ERROR", dumps(status.expired(
                f"too old resource version: {last} ({store.oldest_watchable_rv() + 1})"
            ).body())))
            return
        for ev in events:
            last = ev.rv
            out = _transform(ev, rt, namespace, matcher)
            if out is not None:
                send(out)
        if bookmarks and time.monotonic() >= next_bookmark:
            last = max(last, current)
            send(_bookmark(rt, last))
            next_bookmark = time.monotonic() + bookmark_interval
    if bookmarks and not stopping.is_set():
        send(_bookmark(rt, max(last, store.rv)))


def _transform(ev: Event, rt: ResourceType, namespace: str | None,
               matcher: Matcher | None) -> bytes | None:
    if namespace is not None and ev.entry.namespace != namespace:
        return None
    if matcher is None:
        return ev.line if ev.entry.body.get("apiVersion") == rt.api_version else _line(
            ev.type, served_raw(rt, ev.entry))
    now_in = matcher(ev.entry.body)
    was_in = ev.prev is not None and matcher(ev.prev.body)
    if ev.type == "MODIFIED":
        kind = ("MODIFIED" if was_in else "ADDED") if now_in else ("DELETED" if was_in else "")
    else:
        kind = ev.type if now_in else ""
    return _line(kind, served_raw(rt, ev.entry)) if kind else None


def _bookmark(rt: ResourceType, rv: int) -> bytes:
    return _line("BOOKMARK", dumps({"kind": rt.kind, "apiVersion": rt.api_version,
                                    "metadata": {"resourceVersion": str(rv)}}))
