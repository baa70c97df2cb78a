"""What alerts are made of: drift events in, deliveries out.

:class:`AlertEvent` is a drift reduced to the fields a message may carry (never a raw object,
never expected/actual values); :class:`Batch` is one cycle's view of the open drift; a
:class:`Delivery` is what one channel did with it. Detection, waivers and custom checks feed
batches; the history and the summary read deliveries.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_kspec.history import fingerprint
from pytest_kspec.report import active_drift

SEVERITY_ORDER: tuple[str, ...] = ("info", "low", "warning", "medium", "high", "critical")


def severity_rank(severity: str) -> int:
    """Rank of ``severity`` (unknown ranks as ``info``)."""
    return SEVERITY_ORDER.index(severity) if severity in SEVERITY_ORDER else 0


@dataclass(frozen=True)
class AlertEvent:
    """One open drift as alerts show it. ``key`` is the item (``type::id``)."""

    key: str
    type: str
    severity: str
    resource: str
    drift: str
    check: str = ""
    node_id: str = ""
    message: str = ""
    first_seen: str | None = None
    remediation: str | None = None

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.key, self.resource)

    @property
    def state(self) -> str:
        """What must change for the drift to be alerted again: its kind and its severity."""
        return f"{self.drift}/{self.severity}"

    @classmethod
    def from_report(cls, key: str, event: Mapping[str, Any]) -> AlertEvent:
        remediation = event.get("remediation")
        status = str(remediation.get("status")) if isinstance(remediation, Mapping) else None
        return cls(key=key, type=str(event.get("type", "")),
                   severity=str(event.get("severity", "info")),
                   resource=str(event.get("resource", "")), drift=str(event.get("drift", "")),
                   check=str(event.get("check") or ""), node_id=str(event.get("node_id", "")),
                   message=str(event.get("message") or ""),
                   first_seen=event.get("first_seen"), remediation=status)


@dataclass(frozen=True)
class Batch:
    """The open drift after one cycle (a run, or a burst of watch events).

    ``judged`` holds the items evaluated without error in this cycle: an alerted drift of a
    judged item that is no longer in ``events`` is resolved; drift of items not judged (an
    API error, a type not checked) keeps its state.
    """

    spec: Mapping[str, str]
    cluster: Mapping[str, str]
    run: Mapping[str, str]
    scope: str
    events: tuple[AlertEvent, ...]
    judged: frozenset[str]
    notices: tuple[str, ...] = ()
    """Operational alerts (e.g. a remediation loop), sent to every channel regardless of
    severity thresholds, once."""


@dataclass(frozen=True)
class Notice:
    """What one channel is about to be told."""

    new: tuple[AlertEvent, ...] = ()
    reminders: tuple[AlertEvent, ...] = ()
    resolved: tuple[AlertEvent, ...] = ()
    notices: tuple[str, ...] = ()
    open: int = 0

    def __bool__(self) -> bool:
        return bool(self.new or self.reminders or self.resolved or self.notices)

    def counts(self) -> dict[str, int]:
        return {"new": len(self.new), "reminder": len(self.reminders),
                "resolved": len(self.resolved), "open": self.open}

    def title(self, cluster: str) -> str:
        parts = []
        if self.new:
            parts.append(f"{len(self.new)} new drift")
        if self.reminders:
            parts.append(f"{len(self.reminders)} still open")
        if self.resolved:
            parts.append(f"{len(self.resolved)} resolved")
        if self.notices:
            parts.append(f"{len(self.notices)} notice(s)")
        worst = max((e.severity for e in (*self.new, *self.reminders)), key=severity_rank,
                    default="")
        head = ", ".join(parts)
        return f"kspec: {head}" + (f" (highest {worst})" if worst else "") + f" on {cluster}"


@dataclass
class Delivery:
    """What one channel did in one cycle: ``sent``, ``failed`` or ``rate-limited``."""

    channel: str
    type: str
    result: str
    counts: dict[str, int] = field(default_factory=dict)
    attempts: int = 0
    error: str = ""

    def line(self) -> str:
        told = ", ".join(f"{n} {k}" for k, n in self.counts.items() if n and k != "open")
        text = f"{self.channel} ({self.type}) {self.result}"
        if told:
            text += f": {told}"
        if self.result == "failed":
            text += f" after {self.attempts} attempt(s): {self.error}"
        return text

    def to_json(self) -> dict[str, Any]:
        return {"channel": self.channel, "type": self.type, "result": self.result,
                "counts": dict(self.counts), "attempts": self.attempts, "error": self.error}


def events_from_items(items: Iterable[Any]) -> tuple[tuple[AlertEvent, ...], frozenset[str]]:
    """Open drift and judged keys from report records (:class:`~pytest_kspec.report.ItemRecord`).

    ``resolved`` events of the report are not drift, nor are events a waiver accepted (never
    alerted); items in error are not judged.
    """
    events: list[AlertEvent] = []
    judged: set[str] = set()
    for record in items:
        key = f"{record.type}::{record.id}"
        if record.status in ("passed", "failed", "waived"):
            judged.add(key)
        if record.status != "failed":
            continue
        events.extend(AlertEvent.from_report(key, event) for event in active_drift(record.events))
    return tuple(events), frozenset(judged)
