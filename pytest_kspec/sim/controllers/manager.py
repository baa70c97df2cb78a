"""The controller manager: runs the simulator's controllers on what API writes change.

Design. The store tells the manager of every write (a listener on ``Store``). Writes made
through the HTTP API, and writes the controllers make themselves, queue the objects they touch
for the controllers that care (a ReplicaSet for its pods, a Deployment for its ReplicaSets, the
fake kubelet for every Pod, ...). Writes made while ``muted()`` — loading state files and the
Simulator's direct ``create/update/delete`` — are taken as they are: a state file's Deployment
never grows pods of its own, so what a state file says is what checks see.

Timing. ``drain()`` runs every queued reconcile that is due, and what they cause, until nothing
is due; the server calls it after each request, before answering, so with the default delay of
0 a created Pod is Running (and a Deployment rolled out) by the next request a client makes.
A reconcile may ask to run again later (the kubelet's ``delay`` between pod phases, a CronJob's
next schedule); a background thread runs those when they fall due. ``Clock`` is the time
controllers see: wall time plus an offset tests move with ``advance()``.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Protocol

from pytest_kspec.sim.resources import Registry
from pytest_kspec.sim.store import Event, Key, Store
from pytest_kspec.sim.writes import Writer

log = logging.getLogger("pytest_kspec.sim")

Item = tuple[str, str, str]  # (controller name, namespace, name)
_MAX_STEPS = 20000  # a drain that runs this many reconciles is a controller loop: stop it


class Clock:
    """Wall time plus an offset; ``advance(seconds)`` moves the simulated cluster's time."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds

    def stamp(self, at: float | None = None) -> str:
        """RFC 3339 UTC time, seconds precision, as the API server writes it."""
        when = self.now() if at is None else at
        return datetime.fromtimestamp(when, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.strptime(value[:19], "%Y-%m-%dT%H:%M:%S").replace(
            tzinfo=UTC).timestamp()
    except ValueError:
        return None


class Controller(Protocol):
    """One control loop: which objects a store event concerns, and how to reconcile one."""

    name: str

    def triggers(self, key: Key, obj: dict[str, Any], event_type: str) -> list[tuple[str, str]]:
        """(namespace, name) of the objects this controller must look at after the event."""

    def reconcile(self, namespace: str, name: str) -> float | None:
        """Bring one object towards its desired state; seconds until it wants another look."""


class Manager:
    """Queues reconciles from store events and runs them (see the module docstring)."""

    def __init__(self, store: Store, writer: Writer, registry: Registry) -> None:
        self.store = store
        self.writer = writer
        self.registry = registry
        self.clock = Clock()
        self.controllers: dict[str, Controller] = {}
        self._events: deque[Event] = deque()
        self._due: dict[Item, float] = {}  # item -> monotonic time it is due
        self._lock = threading.RLock()  # one drain at a time
        self._local = threading.local()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        store.listeners.append(self._on_event)

    def add(self, controller: Controller) -> None:
        self.controllers[controller.name] = controller

    # --- what gets queued --------------------------------------------------------------------
    @contextlib.contextmanager
    def muted(self) -> Iterator[None]:
        """Writes made by this thread inside the block queue nothing (state taken as-is)."""
        before = getattr(self._local, "muted", False)
        self._local.muted = True
        try:
            yield
        finally:
            self._local.muted = before

    @property
    def is_muted(self) -> bool:
        return bool(getattr(self._local, "muted", False))

    def _on_event(self, event: Event) -> None:  # called with the store lock held
        if not self.is_muted:
            self._events.append(event)

    def enqueue(self, controller: str, namespace: str, name: str, after: float = 0.0) -> None:
        item = (controller, namespace, name)
        due = time.monotonic() + max(0.0, after)
        with self._lock:
            current = self._due.get(item)
            if current is None or due < current:
                self._due[item] = due
        if after > 0:
            self._wake.set()

    def reconcile_all(self) -> None:
        """Queue every object each controller is primarily about (its ``primary`` kind)."""
        for controller in self.controllers.values():
            key = getattr(controller, "primary", None)
            if key is not None:
                for entry in self.store.entries(key):
                    self.enqueue(controller.name, entry.namespace, entry.name)

    def tick(self) -> None:
        """The clock moved: queue what controllers run on a schedule (``timed`` kinds)."""
        for controller in self.controllers.values():
            key = getattr(controller, "timed", None)
            if key is not None:
                for entry in self.store.entries(key):
                    self.enqueue(controller.name, entry.namespace, entry.name)

    # --- running -----------------------------------------------------------------------------
    def drain(self) -> None:
        """Run every due reconcile, and those they cause, until nothing is due now."""
        with self._lock:
            for _ in range(_MAX_STEPS):
                while self._events:
                    self._dispatch(self._events.popleft())
                now = time.monotonic()
                ready = [item for item, due in self._due.items() if due <= now]
                if not ready:
                    return
                item = min(ready, key=lambda i: (self._due[i], i))
                del self._due[item]
                self._run(item)
            log.warning("simulator controllers did not settle after %d steps", _MAX_STEPS)

    def _dispatch(self, event: Event) -> None:
        obj = event.entry.obj
        for controller in self.controllers.values():
            try:
                targets = controller.triggers(event.key, obj, event.type)
            except Exception:  # a controller bug must not break the API write that caused it
                log.exception("controller %s failed on an event", controller.name)
                continue
            for ns, name in targets:
                self.enqueue(controller.name, ns, name)

    def _run(self, item: Item) -> None:
        name, ns, obj_name = item
        try:
            again = self.controllers[name].reconcile(ns, obj_name)
        except Exception:
            log.exception("controller %s failed on %s/%s", name, ns, obj_name)
            return
        if again is not None:
            self.enqueue(name, ns, obj_name, after=again)

    def pending(self) -> float | None:
        """Seconds until the next queued reconcile (0 if one is due), None if none is queued."""
        with self._lock:
            if self._events:
                return 0.0
            if not self._due:
                return None
            return max(0.0, min(self._due.values()) - time.monotonic())

    def settle(self, timeout: float = 10.0, horizon: float = 5.0) -> bool:
        """Run reconciles, waiting for delayed ones due within ``horizon`` seconds, until none
        is left (True) or ``timeout`` passes (False)."""
        deadline = time.monotonic() + timeout
        while True:
            self.drain()
            wait = self.pending()
            if wait is None or wait > horizon:
                return True
            if time.monotonic() + wait > deadline:
                return False
            time.sleep(min(wait, 0.05) if wait else 0)

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="kspec-sim-controllers",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        self._wake.set()
        thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            wait = self.pending()
            self._wake.wait(timeout=0.5 if wait is None else min(wait, 0.5))
            self._wake.clear()
            if self._stop.is_set():
                return
            if self.pending() == 0.0:
                try:
                    self.drain()
                except Exception:
                    log.exception("simulator controllers failed")
