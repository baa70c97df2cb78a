"""Watch stage: event-driven detection (watch streams, targeted re-evaluation, loop breaker).

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

from pytest_kspec.watch.breaker import LoopBreaker, other_manager
from pytest_kspec.watch.loop import Stats, WatchLoop, WatchOptions

__all__ = ["LoopBreaker", "Stats", "WatchLoop", "WatchOptions", "other_manager"]
