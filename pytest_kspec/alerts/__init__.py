"""Alerts stage: drift events in, deliveries out (webhook, Slack, PagerDuty, e-mail).

Producers (detection, watch mode, waivers, custom checks) build a :class:`Batch` of open
drift; :class:`Alerter` decides per channel what is new, reminded or resolved, applies the
severity threshold and the rate limit, sends with retries and returns one
:class:`Delivery` per channel. State (what was sent) lives in the history when there is
one, so a CronJob alerts a drift once, not every run.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

from pytest_kspec.alerts.background import BackgroundAlerter
from pytest_kspec.alerts.dispatch import Alerter, Deliverer, make_alerter
from pytest_kspec.alerts.model import AlertEvent, Batch, Delivery, Notice, events_from_items
from pytest_kspec.alerts.redact import Redactor, host_of
from pytest_kspec.alerts.state import AlertState, ChannelState, MemoryState, Sent, StoredState

__all__ = [
    "AlertEvent",
    "AlertState",
    "Alerter",
    "BackgroundAlerter",
    "Batch",
    "ChannelState",
    "Deliverer",
    "Delivery",
    "MemoryState",
    "Notice",
    "Redactor",
    "Sent",
    "StoredState",
    "events_from_items",
    "host_of",
    "make_alerter",
]
