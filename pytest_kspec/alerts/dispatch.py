"""The alerter: per channel, decide what is new, remind, resolve, rate-limit, send, record.

Rules (per channel):

- **threshold**: only drift at or above the channel's ``severity`` counts;
- **once per state**: a drift is sent when first seen or when its kind or severity changes;
  resolved and back is new; with ``reminder`` set, drift still open is re-sent that often;
- **resolved**: an alerted drift of an item judged this cycle that is gone is sent once as
  resolved (PagerDuty: ``resolve`` on its ``dedup_key``);
- **one message per cycle** with counts (PagerDuty: one event per drift, as its API wants);
- **rate limit**: at most one message per ``minInterval``; what is held back goes out in the
  first cycle after it (``due()`` tells watch mode when);
- **failure**: recorded and reported; state is not advanced, so the next cycle tries again.
  Nothing here raises into detection.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from pytest_kspec.alerts.channels import DeliveryError, Sender
from pytest_kspec.alerts.model import AlertEvent, Batch, Delivery, Notice, severity_rank
from pytest_kspec.alerts.redact import Redactor
from pytest_kspec.alerts.state import AlertState, MemoryState, Sent
from pytest_kspec.spec import Channel

log = logging.getLogger("pytest_kspec.alerts")


class Alerter:
    """Delivers batches to ``channels``; ``state`` remembers what each channel was told."""

    def __init__(self, channels: Sequence[Channel], state: AlertState | None = None, *,
                 redactor: Redactor | None = None, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep, backoff: float = 0.5) -> None:
        self.channels = tuple(channels)
        self.state: AlertState = state or MemoryState()
        self.redactor = redactor or Redactor()
        self.clock = clock
        self.senders = {c.name: Sender(c, self.redactor, sleep=sleep, backoff=backoff)
                        for c in self.channels}
        self._held: dict[str, float] = {}
        self._notices_sent: dict[str, set[str]] = {}

    def due(self) -> float | None:
        """When a rate-limited channel may send what it holds (None: nothing held)."""
        return min(self._held.values()) if self._held else None

    def deliver(self, batch: Batch) -> list[Delivery]:
        """Tell every channel what changed in ``batch``; one :class:`Delivery` per channel
        that had something to say."""
        out = []
        for channel in self.channels:
            try:
                delivery = self._channel(channel, batch)
            except Exception as e:  # never let alerting break detection
                log.warning("alerts: channel %s: unexpected error %s", channel.name,
                            type(e).__name__)
                delivery = Delivery(channel.name, channel.type, "failed",
                                    error=f"unexpected error ({type(e).__name__})")
            if delivery is not None:
                out.append(delivery)
                try:
                    self.state.record(delivery, str(batch.run.get("id", "")), self.clock())
                except Exception as e:
                    log.warning("alerts: could not record the delivery to %s: %s",
                                channel.name, self.redactor.text(str(e)))
        return out

    def notice_for(self, channel: Channel, batch: Batch, now: float) -> tuple[Notice, dict[
            str, Sent], list[str]]:
        """What ``channel`` would be told now, the state to save after, the fingerprints to
        forget."""
        state = self.state.load(channel.name)
        wanted = [e for e in batch.events
                  if severity_rank(e.severity) >= severity_rank(channel.severity)]
        current = {e.fingerprint: e for e in wanted}
        new: list[AlertEvent] = []
        reminders: list[AlertEvent] = []
        saved: dict[str, Sent] = {}
        for fp, event in current.items():
            before = state.sent.get(fp)
            if before is None or before.state != event.state:
                new.append(event)
            elif channel.reminder is not None and now - before.at >= channel.reminder:
                reminders.append(event)
            else:
                continue
            saved[fp] = Sent(event.key, event.resource, event.state, now, event.severity)
        resolved: list[AlertEvent] = []
        removed: list[str] = []
        for fp, sent in state.sent.items():
            if fp in current or sent.key not in batch.judged:
                continue
            kind, _, drift = sent.key.partition("::")
            resolved.append(AlertEvent(key=sent.key, type=kind, severity=sent.severity,
                                       resource=sent.resource, drift="resolved", check=drift))
            removed.append(fp)
        told = self._notices_sent.setdefault(channel.name, set())
        notices = tuple(n for n in batch.notices if n not in told)
        notice = Notice(tuple(new), tuple(reminders), tuple(resolved), notices,
                        open=len(current))
        return notice, saved, removed

    def _channel(self, channel: Channel, batch: Batch) -> Delivery | None:
        now = self.clock()
        notice, saved, removed = self.notice_for(channel, batch, now)
        if not notice:
            self._held.pop(channel.name, None)
            return None
        counts = notice.counts()
        last = self.state.load(channel.name).last_sent
        if last is not None and now - last < channel.min_interval and not notice.notices:
            self._held[channel.name] = last + channel.min_interval
            log.info("alerts: %s rate-limited (%s held until the next %ss window)",
                     channel.name, counts, channel.min_interval)
            return Delivery(channel.name, channel.type, "rate-limited", counts)
        self._held.pop(channel.name, None)
        sender = self.senders[channel.name]
        try:
            sender.send(notice, batch)
        except DeliveryError as e:
            error = self.redactor.text(str(e))
            log.warning("alerts: delivery to %s failed after %d attempt(s): %s",
                        channel.name, sender.attempts, error)
            if e.delivered:  # PagerDuty: the events sent before the failure stay sent
                done = {ev.fingerprint for ev in e.delivered}
                self.state.save(channel.name, {fp: s for fp, s in saved.items() if fp in done},
                                [fp for fp in removed if fp in done], now)
            return Delivery(channel.name, channel.type, "failed", counts,
                            attempts=sender.attempts, error=error)
        self.state.save(channel.name, saved, removed, now)
        self._notices_sent[channel.name].update(notice.notices)
        log.info("alerts: sent to %s: %s", channel.name, counts)
        return Delivery(channel.name, channel.type, "sent", counts, attempts=sender.attempts)


class Deliverer(Protocol):
    """What a run hands its batch to: an :class:`Alerter` or a background one."""

    def deliver(self, batch: Batch) -> list[Delivery]: ...

    def due(self) -> float | None: ...


def make_alerter(alerts: object, state: AlertState | None = None) -> Alerter | None:
    """The alerter a DriftConfig's ``alerts`` section asks for (None: alerts are off)."""
    channels: tuple[Channel, ...] = getattr(alerts, "channels", ())
    if not getattr(alerts, "enabled", False) or not channels:
        return None
    return Alerter(channels, state)
