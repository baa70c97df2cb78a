"""What each channel was already told, so a drift is alerted once per state change.

A CronJob is a new process every run, so the state must outlive the process: with a history
database it lives there (:class:`pytest_kspec.history.AlertStateStore`); without one, in
memory (enough for watch mode, which is one process).

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from pytest_kspec.alerts.model import Delivery


@dataclass(frozen=True)
class Sent:
    """One drift a channel was told about: its item, resource, state and when."""

    key: str
    resource: str
    state: str
    at: float
    severity: str = "info"


@dataclass
class ChannelState:
    sent: dict[str, Sent] = field(default_factory=dict)
    last_sent: float | None = None


class AlertState(Protocol):
    """Per-channel memory of sent alerts, and the record of deliveries."""

    def load(self, channel: str) -> ChannelState: ...

    def save(self, channel: str, sent: Mapping[str, Sent], removed: Iterable[str],
             last_sent: float) -> None: ...

    def record(self, delivery: Delivery, run_id: str, at: float) -> None: ...


class MemoryState:
    """In-process state (no history); also keeps every delivery for tests and summaries."""

    def __init__(self) -> None:
        self.channels: dict[str, ChannelState] = {}
        self.deliveries: list[Delivery] = []

    def load(self, channel: str) -> ChannelState:
        state = self.channels.get(channel, ChannelState())
        return ChannelState(dict(state.sent), state.last_sent)

    def save(self, channel: str, sent: Mapping[str, Sent], removed: Iterable[str],
             last_sent: float) -> None:
        state = self.channels.setdefault(channel, ChannelState())
        state.sent.update(sent)
        for fp in removed:
            state.sent.pop(fp, None)
        state.last_sent = last_sent

    def record(self, delivery: Delivery, run_id: str, at: float) -> None:
        self.deliveries.append(delivery)


class _Backend(Protocol):
    def load(self, channel: str) -> tuple[dict[str, tuple[str, str, str, float, str]],
                                          float | None]: ...

    def save(self, channel: str, sent: Mapping[str, Sent], removed: Iterable[str],
             last_sent: float) -> None: ...

    def record(self, delivery: Delivery, run_id: str, at: float) -> None: ...


class StoredState:
    """State kept in the history (:class:`pytest_kspec.history.AlertStateStore`)."""

    def __init__(self, backend: _Backend) -> None:
        self.backend = backend

    def load(self, channel: str) -> ChannelState:
        rows, last = self.backend.load(channel)
        return ChannelState({fp: Sent(*row) for fp, row in rows.items()}, last)

    def save(self, channel: str, sent: Mapping[str, Sent], removed: Iterable[str],
             last_sent: float) -> None:
        self.backend.save(channel, sent, removed, last_sent)

    def record(self, delivery: Delivery, run_id: str, at: float) -> None:
        self.backend.record(delivery, run_id, at)
