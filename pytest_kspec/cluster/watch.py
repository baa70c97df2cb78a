"""Kubernetes watch streams that keep a :class:`Snapshot` current, one thread per kind.

Each :class:`KindWatcher` starts from its LIST's ``resourceVersion`` with
``allowWatchBookmarks`` (so a quiet kind's position stays fresh), applies every event to the
snapshot in place (``keep_history_fields`` False drops ``managedFields`` and
``last-applied-configuration``, which only policy drift reads) and reports a
:class:`Change`. ``410 Gone`` (the position fell out of the server's window) re-lists that
kind. A broken connection reconnects with capped exponential
backoff and full jitter and then re-lists, because an API server that went away may have
lost or gained anything meanwhile (a restore, a restart of a test server): the re-list is
reported as a change, so what happened during the outage is judged. A stream the server
ends normally (``timeoutSeconds``) resumes at once from the last position.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_kspec.errors import ApiError

if TYPE_CHECKING:
    from pytest_kspec.cluster.client import Cluster
    from pytest_kspec.cluster.snapshot import Snapshot

log = logging.getLogger("pytest_kspec.cluster.watch")

WATCH_TIMEOUT = 300
"""Seconds each watch request asks the server to keep the stream open."""


LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def slim(obj: dict[str, Any]) -> dict[str, Any]:
    """Drop what only policy drift reads (``managedFields``, ``last-applied-configuration``)
    from an object held for a long time: at 10,000 pods they are a good part of the memory."""
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
        annotations = meta.get("annotations")
        if isinstance(annotations, dict):
            annotations.pop(LAST_APPLIED, None)
    return obj


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff with full jitter: ``uniform(0, min(cap, base * 2**n))``."""

    base: float = 0.2
    cap: float = 10.0

    def delay(self, failures: int, rng: random.Random) -> float:
        return rng.uniform(0, min(self.cap, self.base * 2 ** max(failures - 1, 0)))


@dataclass(frozen=True)
class Change:
    """A kind changed: ``event`` is ADDED/MODIFIED/DELETED, or RELIST (re-listed after 410
    or an outage); ``at`` is when it arrived (monotonic clock)."""

    api_version: str
    kind: str
    event: str
    name: str = ""
    at: float = field(default_factory=time.monotonic)

    @property
    def key(self) -> tuple[str, str]:
        return (self.api_version, self.kind)


class KindWatcher(threading.Thread):
    """Watches one kind until ``stop`` is set; never dies of an error (it logs and retries)."""

    def __init__(self, cluster: Cluster, snapshot: Snapshot, api_version: str, kind: str,
                 resource_version: str, notify: Callable[[Change], None],
                 stop: threading.Event, *, backoff: Backoff | None = None,
                 timeout_seconds: int = WATCH_TIMEOUT, seed: int | None = None,
                 keep_history_fields: bool = False) -> None:
        super().__init__(name=f"kspec-watch-{kind}", daemon=True)
        self.cluster = cluster
        self.snapshot = snapshot
        self.api_version = api_version
        self.kind = kind
        self.resource_version = resource_version
        self.notify = notify
        self.stop = stop
        self.backoff = backoff or Backoff()
        self.timeout_seconds = timeout_seconds
        self.trim: Callable[[dict[str, Any]], dict[str, Any]] = (
            (lambda o: o) if keep_history_fields else slim)
        self.rng = random.Random(seed)
        self.reconnects = 0
        self.relists = 0
        self.connected = threading.Event()
        self._relist = not resource_version
        self._resync = threading.Event()

    def resync(self) -> None:
        """Ask for a re-list at the next opportunity (the full-resync period)."""
        self._resync.set()

    def run(self) -> None:
        failures = 0
        while not self.stop.is_set():
            try:
                if self._relist or self._resync.is_set():
                    self._resync.clear()
                    self._do_relist()
                self._stream()
                failures = 0
            except ApiError as e:
                if e.status == 410:
                    log.info("watch %s: %s; re-listing", self.kind, e)
                    self._relist = True
                    continue
                failures += 1
                self._lost(failures, str(e))
            except Exception as e:  # transport errors of any layer: reconnect
                failures += 1
                self._lost(failures, f"{type(e).__name__}: {e}")

    def _lost(self, failures: int, reason: str) -> None:
        self.connected.clear()
        self.reconnects += 1
        self._relist = True
        wait = self.backoff.delay(failures, self.rng)
        log.warning("watch %s: connection lost (%s); reconnecting in %.1fs (attempt %d)",
                    self.kind, " ".join(reason.split())[:200], wait, failures)
        self.stop.wait(wait)

    def _do_relist(self) -> None:
        items, version = self.cluster.list_versioned(self.api_version, self.kind)
        self.snapshot.put(self.api_version, self.kind, [self.trim(o) for o in items])
        self.resource_version = version
        self.relists += 1
        self._relist = False
        self.notify(Change(self.api_version, self.kind, "RELIST"))

    def _stream(self) -> None:
        events = self.cluster.watch(self.api_version, self.kind, self.resource_version,
                                    timeout_seconds=self.timeout_seconds)
        self.connected.set()
        for event in events:
            kind = str(event.get("type", ""))
            obj = event.get("object") or {}
            meta = obj.get("metadata") or {}
            if kind == "ERROR":
                code = int(obj.get("code") or 0)
                raise ApiError(f"watch of {self.kind}: {obj.get('message', 'error')}",
                               verb="watch", resource=self.kind, status=code,
                               reason=str(obj.get("reason", "")))
            version = str(meta.get("resourceVersion") or "")
            if version:
                self.resource_version = version
            if kind in ("ADDED", "MODIFIED", "DELETED"):
                self.snapshot.apply(self.api_version, self.kind, kind, self.trim(obj))
                name = "/".join(p for p in (meta.get("namespace"), meta.get("name")) if p)
                self.notify(Change(self.api_version, self.kind, kind, name))
            if self.stop.is_set() or self._resync.is_set():
                return
