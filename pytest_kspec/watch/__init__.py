"""Watch stage: event-driven detection (watch streams, targeted re-evaluation, loop breaker)."""

from __future__ import annotations

from pytest_kspec.watch.breaker import LoopBreaker, other_manager
from pytest_kspec.watch.loop import Stats, WatchLoop, WatchOptions

__all__ = ["LoopBreaker", "Stats", "WatchLoop", "WatchOptions", "other_manager"]
