"""The remediation loop breaker: a resource restored N times within M seconds is left alone.

Something else (a controller, a GitOps tool, a person with a script) keeps changing it back;
fixing it again only makes the two fight. The breaker stops kspec's side and names the other
side from ``managedFields``: the most recent manager that is not kspec.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

KSPEC_MANAGER = "kspec"


class LoopBreaker:
    """Counts restores per resource in a sliding window; ``tripped`` ones are not fixed."""

    def __init__(self, restores: int, window: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.restores = restores
        self.window = window
        self.clock = clock
        self._seen: dict[str, deque[float]] = {}
        self.tripped: set[str] = set()

    def allows(self, resource: str) -> bool:
        return resource not in self.tripped

    def restored(self, resource: str) -> bool:
        """Count one restore; True when this one trips the breaker."""
        now = self.clock()
        times = self._seen.setdefault(resource, deque())
        times.append(now)
        while times and now - times[0] > self.window:
            times.popleft()
        if len(times) >= self.restores and resource not in self.tripped:
            self.tripped.add(resource)
            return True
        return False


def other_manager(obj: Mapping[str, Any] | None) -> str:
    """The latest ``managedFields`` manager that is not kspec (``an unknown manager``)."""
    entries = [e for e in ((obj or {}).get("metadata") or {}).get("managedFields") or []
               if isinstance(e, Mapping) and e.get("manager") != KSPEC_MANAGER]
    if not entries:
        return "an unknown manager"
    _, _, latest = max((str(e.get("time") or ""), i, e) for i, e in enumerate(entries))
    return str(latest.get("manager") or "an unknown manager")
