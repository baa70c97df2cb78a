"""Kubernetes watch streams that keep a :class:`Snapshot` current, one thread per kind.

Each :class:`KindWatcher` starts from its LIST's ``resourceVersion`` with
``allowWatchBookmarks`` (so a quiet kind's position stays fresh), applies every event to the
snapshot in place (through ``project``: what the caller keeps of each object; by default
:func:`slim` drops ``managedFields`` and ``last-applied-configuration``) and reports a
:class:`Change`. ``410 Gone`` (the position fell out of the server's window) re-lists that
kind. A broken connection reconnects with capped exponential backoff and full jitter and
then re-lists, because an API server that went away may have lost or gained anything
meanwhile (a restore, a restart of a test server): the first failure reports a ``LOST``
change (when the outage began), the re-list a ``RELIST`` change carrying how long the kind
was disconnected and how many of its objects were added, deleted or changed meanwhile. A
stream the server ends normally (``timeoutSeconds``) resumes at once from the last
position; a stream never outlives ``resync_at`` (the periodic full resync), so a quiet
cluster re-lists on time rather than at its next event.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import logging
import math
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
SLACK = 0.05
"""Seconds early a planned re-list may run (a stream the server ended on time)."""


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


Project = Callable[[dict[str, Any]], dict[str, Any]]
Ident = tuple[str | None, str | None]


@dataclass(frozen=True)
class Change:
    """A kind changed: ``event`` is ADDED/MODIFIED/DELETED, RELIST (re-listed: ``cause`` is
    ``start``, ``410``, ``reconnect``, ``resync`` or ``requested``) or LOST (its connection
    broke: an outage begins); ``at`` is when it arrived (monotonic clock). A RELIST after a
    reconnect carries ``outage`` (seconds since the connection broke) and ``diff``: objects
    added, deleted and changed while disconnected."""

    api_version: str
    kind: str
    event: str
    name: str = ""
    at: float = field(default_factory=time.monotonic)
    cause: str = ""
    outage: float | None = None
    diff: tuple[int, int, int] = (0, 0, 0)

    @property
    def key(self) -> tuple[str, str]:
        return (self.api_version, self.kind)


class KindWatcher(threading.Thread):
    """Watches one kind until ``stop`` is set; never dies of an error (it logs and retries)."""

    def __init__(self, cluster: Cluster, snapshot: Snapshot, api_version: str, kind: str,
                 resource_version: str, notify: Callable[[Change], None],
                 stop: threading.Event, *, backoff: Backoff | None = None,
                 timeout_seconds: int = WATCH_TIMEOUT, seed: int | None = None,
                 project: Project | None = slim, resync_at: float | None = None,
                 resync_every: float | None = None) -> None:
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
        self.project: Project = project or (lambda o: o)
        self.resync_at = resync_at
        """When the next periodic re-list is due (monotonic clock; None: not planned)."""
        self.resync_every = resync_every
        self.rng = random.Random(seed)
        self.reconnects = 0
        self.relists = 0
        self.relisted_at = 0.0
        """When the last re-list completed (monotonic clock)."""
        self.connected = threading.Event()
        self.outage_since: float | None = None
        """When the connection broke (monotonic clock), until the re-list that follows."""
        self._relist = "" if resource_version else "start"
        self._resync = threading.Event()

    def resync(self) -> None:
        """Ask for a re-list at the next opportunity."""
        self._resync.set()

    def _planned_due(self) -> bool:
        return self.resync_at is not None and time.monotonic() >= self.resync_at - SLACK

    def _resync_due(self) -> bool:
        return self._planned_due() or self._resync.is_set()

    def run(self) -> None:
        failures = 0
        while not self.stop.is_set():
            try:
                if self._relist or self._resync_due():
                    self._do_relist(self._relist or (
                        "resync" if self._planned_due() else "requested"))
                self._stream()
                failures = 0
            except ApiError as e:
                if e.status == 410:
                    log.info("watch %s: %s; re-listing", self.kind, e)
                    self._relist = self._relist or "410"
                    continue
                failures += 1
                self._lost(failures, str(e))
            except Exception as e:  # transport errors of any layer: reconnect
                failures += 1
                self._lost(failures, f"{type(e).__name__}: {e}")

    def _lost(self, failures: int, reason: str) -> None:
        self.connected.clear()
        self.reconnects += 1
        self._relist = "reconnect"
        if self.outage_since is None:
            self.outage_since = time.monotonic()
            self.notify(Change(self.api_version, self.kind, "LOST", at=self.outage_since,
                               cause=" ".join(reason.split())[:200]))
        wait = self.backoff.delay(failures, self.rng)
        log.warning("watch %s: connection lost (%s); reconnecting in %.1fs (attempt %d)",
                    self.kind, " ".join(reason.split())[:200], wait, failures)
        self.stop.wait(wait)

    def _do_relist(self, cause: str) -> None:
        before: dict[Ident, str] = {}
        if self.outage_since is not None:  # what the snapshot held when the connection broke
            before = {_ident(o): _version(o)
                      for o in self.snapshot.held(self.api_version, self.kind) or ()}
        items, version = self.cluster.list_versioned(self.api_version, self.kind,
                                                     project=self.project)
        self.snapshot.put(self.api_version, self.kind, items)
        self.resource_version = version
        self.relists += 1
        self.relisted_at = time.monotonic()
        self._relist = ""
        if self._resync_due():  # done, whatever caused it: plan the next one
            self._resync.clear()
            now = time.monotonic()
            if self.resync_at is not None and self.resync_every:
                while self.resync_at <= now + SLACK:  # the same schedule as the caller's
                    self.resync_at += self.resync_every
            elif self.resync_at is not None and self.resync_at <= now + SLACK:
                self.resync_at = None
        outage, diff = None, (0, 0, 0)
        if self.outage_since is not None:
            outage = time.monotonic() - self.outage_since
            diff = _diff(before, {_ident(o): _version(o) for o in items})
            self.outage_since = None
        self.notify(Change(self.api_version, self.kind, "RELIST", cause=cause,
                           outage=outage, diff=diff))

    def _timeout(self) -> int:
        """Seconds the next stream may stay open: never past the planned re-list."""
        if self.resync_at is None:
            return self.timeout_seconds
        left = math.ceil(self.resync_at - time.monotonic())
        return max(1, min(self.timeout_seconds, left))

    def _stream(self) -> None:
        events = self.cluster.watch(self.api_version, self.kind, self.resource_version,
                                    timeout_seconds=self._timeout())
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
                self.snapshot.apply(self.api_version, self.kind, kind, self.project(obj))
                name = "/".join(p for p in (meta.get("namespace"), meta.get("name")) if p)
                self.notify(Change(self.api_version, self.kind, kind, name))
            if self.stop.is_set() or self._resync_due():
                return


def _ident(obj: dict[str, Any]) -> Ident:
    meta = obj.get("metadata") or {}
    return (meta.get("namespace"), meta.get("name"))


def _version(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def _diff(before: dict[Ident, str], after: dict[Ident, str]) -> tuple[int, int, int]:
    """(added, deleted, changed) objects between two listings (changed: another
    resourceVersion)."""
    added = sum(1 for k in after if k not in before)
    deleted = sum(1 for k in before if k not in after)
    changed = sum(1 for k, v in after.items() if k in before and before[k] != v)
    return added, deleted, changed
