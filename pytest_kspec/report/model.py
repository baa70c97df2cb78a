"""The run report model: one record per checked item plus its drift events, built once per run.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_kspec import __version__
from pytest_kspec.detect import max_severity as _highest

TYPE_SUMMARY_KEYS: Mapping[str, str] = {
    "policy": "policies",
    "compliance": "compliance",
    "configuration": "configuration",
    "resource": "resources",
    "custom": "custom",
}
"""Event type -> its ``drift.summary`` key (``custom``: users' own checks, e.g. ``checks/``)."""


def utc_now() -> str:
    """RFC 3339 UTC timestamp with a ``Z``, to the second, as the report format writes it."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ItemRecord:
    """What happened to one item: ``passed``, ``failed``, ``error`` or ``skipped``."""

    node_id: str
    type: str
    id: str
    status: str
    severity: str = ""
    message: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)
    order: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"node_id": self.node_id, "type": self.type, "id": self.id,
                "status": self.status, "severity": self.severity, "message": self.message}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ItemRecord:
        return cls(node_id=str(data["node_id"]), type=str(data["type"]), id=str(data["id"]),
                   status=str(data["status"]), severity=str(data.get("severity", "")),
                   message=str(data.get("message", "")),
                   events=list(data.get("events") or []), order=int(data.get("order", 0)))


@dataclass
class RunReport:
    """One run: the spec, the cluster, every item's record."""

    spec_name: str
    spec_version: str
    spec_path: str
    spec_hash: str
    cluster: Mapping[str, str]
    started: str
    finished: str = ""
    items: list[ItemRecord] = field(default_factory=list)
    trend: dict[str, Any] | None = None  # from the history: kspec.trend in the JSON
    plan: dict[str, Any] | None = None  # remediation plan written this run: kspec.plan
    coverage: dict[str, Any] | None = None  # admission coverage of the spec's workload rules
    waivers: list[dict[str, Any]] | None = None  # DriftConfig waivers and their state
    notices: list[str] | None = None  # watch mode: an outage, a remediation loop

    def add(self, record: ItemRecord) -> None:
        self.items = [r for r in self.items if r.node_id != record.node_id] + [record]

    def ordered(self) -> list[ItemRecord]:
        return sorted(self.items, key=lambda r: (r.order, r.node_id))

    def events(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for record in self.ordered():
            out.extend(record.events)
        return out

    def counts(self) -> dict[str, int]:
        """Items per status; ``custom`` counts users' own checks among ``total``."""
        counts = {"total": len(self.items), "passed": 0, "failed": 0, "error": 0, "skipped": 0,
                  "waived": 0, "custom": 0}
        for record in self.items:
            counts[record.status] = counts.get(record.status, 0) + 1
            if record.type == "custom":
                counts["custom"] += 1
        return counts

    def to_json(self) -> dict[str, Any]:
        """The drift report: exactly the plan's format, with extra fields under ``kspec``."""
        events = self.events()
        active = active_drift(events)  # resolved and waived events are not drift
        types = [t for t in TYPE_SUMMARY_KEYS if any(e.get("type") == t for e in active)]
        summary: dict[str, int] = {"total": len(active)}
        for kind, key in TYPE_SUMMARY_KEYS.items():
            summary[key] = sum(1 for e in active if e.get("type") == kind)
        counts = self.counts()
        return {
            "timestamp": self.finished or self.started,
            "spec": {"name": self.spec_name, "version": self.spec_version},
            "drift": {
                "detected": bool(active),
                "severity": max_severity(str(e.get("severity", "")) for e in active),
                "types": types,
                "summary": summary,
            },
            "events": events,
            "kspec": {
                "version": __version__,
                "spec_path": self.spec_path,
                "spec_hash": self.spec_hash,
                "cluster": dict(self.cluster),
                "started": self.started,
                "finished": self.finished,
                "items": counts,
                "pass_rate": pass_rate(counts),
                "results": [r.to_json() for r in self.ordered()],
                "errors": [{"node_id": r.node_id, "message": r.message}
                           for r in self.ordered() if r.status == "error"],
                "remediation": remediation_counts(events),
                **({"trend": self.trend} if self.trend is not None else {}),
                **({"plan": self.plan} if self.plan is not None else {}),
                **({"coverage": self.coverage} if self.coverage is not None else {}),
                **({"waivers": self.waivers} if self.waivers is not None else {}),
                **({"notices": self.notices} if self.notices else {}),
            },
        }


REMEDIATION_STATUSES: tuple[str, ...] = (
    "applied", "verified", "failed", "dry-run", "manual-required", "skipped")


def remediation_counts(events: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Events that got a remediation block (``drifted``), and how many per status."""
    counts = {"drifted": 0, **{s: 0 for s in REMEDIATION_STATUSES}}
    for event in events:
        block = event.get("remediation")
        if isinstance(block, Mapping) and block.get("status"):
            counts["drifted"] += 1
            status = str(block["status"])
            counts[status] = counts.get(status, 0) + 1
    return counts


def active_drift(events: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The events that are drift now: not ``resolved``, not accepted by a waiver."""
    return [e for e in events if e.get("drift") != "resolved" and not e.get("waived")]


def max_severity(severities: Iterable[str]) -> str:
    """The highest severity among ``severities``; ``none`` when there is none."""
    found = list(severities)
    return _highest(found) if found else "none"


def pass_rate(counts: Mapping[str, int]) -> float | None:
    """Passed checks as a percentage of those evaluated (passed or drifted): errors and
    skips are counted apart; None when nothing was evaluated."""
    evaluated = counts.get("passed", 0) + counts.get("failed", 0)
    return round(100.0 * counts.get("passed", 0) / evaluated, 1) if evaluated else None


def summary_line(counts: Mapping[str, int], events: Sequence[Mapping[str, Any]]) -> str:
    """``kspec: 12 checks (3 custom), 9 passed, 2 drifted, 1 error; 5 drift events (high)``."""
    events = active_drift(events)
    waived = f"{counts['waived']} waived, " if counts.get("waived") else ""
    custom = f" ({counts['custom']} custom)" if counts.get("custom") else ""
    return (f"{counts.get('total', 0)} checks{custom}, {counts.get('passed', 0)} passed, "
            f"{counts.get('failed', 0)} drifted, {waived}{counts.get('error', 0)} error(s); "
            f"{len(events)} drift event(s)"
            + (f", highest severity {max_severity(str(e.get('severity')) for e in events)}"
               if events else ""))
