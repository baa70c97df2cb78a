"""Alerts off the detection path: watch mode hands each batch to a worker thread.

A slow or failing receiver (timeouts and retries can take a minute) must never delay the
next detection cycle. The worker keeps only the newest pending batch: batches are states,
not deltas, so the newest one says everything an older one would have (what is new or
resolved is worked out against what each channel was told).

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from pytest_kspec.alerts.dispatch import Alerter
from pytest_kspec.alerts.model import Batch, Delivery

log = logging.getLogger("pytest_kspec.alerts")


class BackgroundAlerter:
    """Delivers through ``alerter`` on its own thread; ``report`` gets each cycle's
    deliveries (print them, count them). ``deliver`` returns at once with no deliveries."""

    def __init__(self, alerter: Alerter, report: Callable[[list[Delivery]], None]) -> None:
        self.alerter = alerter
        self.report = report
        self._pending: Batch | None = None
        self._cond = threading.Condition()
        self._closed = False
        self._busy = False
        self._thread = threading.Thread(target=self._work, name="kspec-alerts", daemon=True)
        self._thread.start()

    def due(self) -> float | None:
        return self.alerter.due()

    def deliver(self, batch: Batch) -> list[Delivery]:
        with self._cond:
            self._pending = batch
            self._cond.notify_all()
        return []

    def _work(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending is not None or self._closed)
                batch, self._pending = self._pending, None
                if batch is None:
                    return
                self._busy = True
            try:
                deliveries = self.alerter.deliver(batch)
                if deliveries:
                    self.report(deliveries)
            except Exception as e:  # never let the worker die
                log.warning("alerts: delivery worker error %s", type(e).__name__)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def close(self, timeout: float = 30.0) -> None:
        """Send what is pending (waiting up to ``timeout``), then stop the worker."""
        with self._cond:
            self._cond.wait_for(lambda: self._pending is None and not self._busy, timeout)
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=5)
