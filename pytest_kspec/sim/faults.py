"""Fault injection: make the next N matching requests fail, stall, or break on the wire.

Reliability tests use this to prove that callers retry, time out and report errors properly::

    sim.faults.add(method="GET", path=r"/pods$", status=503, count=2)   # two 503s, then normal
    sim.faults.add(path="/apis/apps", status=429, retry_after=3)          # Retry-After: 3
    sim.faults.add(path="/configmaps", delay=2.0)                          # answer 2 s late
    sim.faults.add(path="/pods", cut=True)       # headers and half the body, then the
                                                 # connection is closed (IncompleteRead)
    sim.faults.add(path="/pods", truncate=True)  # a complete HTTP reply whose JSON body is
                                                 # cut in half (Content-Length matches)
    sim.faults.clear()

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Fault:
    """One injected fault; ``remaining`` counts down as matching requests consume it.

    ``method`` (e.g. "GET", case-insensitive) and ``path`` (a regex searched in the request
    path, without the query) select requests; None matches all. ``status`` answers with a
    Status body of that code (429 adds ``Retry-After`` and ``details.retryAfterSeconds``);
    ``delay`` sleeps before handling; ``cut`` closes the connection mid-response;
    ``truncate`` sends a complete reply with half of its body. ``hits`` counts the requests
    that were affected.
    """

    method: str | None = None
    path: str | None = None
    status: int | None = None
    count: int = 1
    retry_after: int | None = None
    delay: float = 0.0
    cut: bool = False
    truncate: bool = False
    remaining: int = field(init=False)
    hits: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.remaining = self.count
        self._regex = re.compile(self.path) if self.path is not None else None

    def matches(self, method: str, path: str) -> bool:
        if self.remaining <= 0:
            return False
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self._regex is None or self._regex.search(path) is not None


class Faults:
    """The simulator's fault list (``sim.faults``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, *, method: str | None = None, path: str | None = None,
            status: int | None = None, count: int = 1, retry_after: int | None = None,
            delay: float = 0.0, cut: bool = False, truncate: bool = False) -> Fault:
        """Make the next ``count`` requests matching ``method``/``path`` misbehave."""
        if status is None and not delay and not cut and not truncate:
            raise ValueError("a fault needs status, delay, cut or truncate")
        fault = Fault(method, path, status, count, retry_after, delay, cut, truncate)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, method: str, path: str) -> Fault | None:
        """The first active fault matching the request, consuming one of its uses."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.remaining -= 1
                    fault.hits += 1
                    return fault
        return None


Callback = Callable[[Any, str, str, dict[str, str]], None]


@dataclass
class Hook:
    callback: Callback
    method: str | None
    path: str | None
    remaining: int

    def matches(self, method: str, path: str) -> bool:
        if self.remaining <= 0:
            return False
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self.path is None or re.search(self.path, path) is not None


class Hooks:
    """``sim.on_request`` callbacks run just before a matching request is handled."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hooks: list[Hook] = []

    def add(self, callback: Callback, method: str | None, path: str | None, count: int) -> Hook:
        hook = Hook(callback, method, path, count)
        with self._lock:
            self._hooks.append(hook)
        return hook

    def take(self, method: str, path: str) -> list[Hook]:
        with self._lock:
            due = [h for h in self._hooks if h.matches(method, path)]
            for h in due:
                h.remaining -= 1
            self._hooks = [h for h in self._hooks if h.remaining > 0]
            return due
