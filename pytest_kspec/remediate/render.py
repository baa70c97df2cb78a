"""How remediation reads to people and to CI: the summary line, JUnit properties, per-event text.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pytest_kspec.remediate.options import (
    APPLIED,
    DRY_RUN,
    FAILED,
    MANUAL,
    SKIPPED,
    VERIFIED,
)
from pytest_kspec.report import remediation_counts

__all__ = [
    "remediation_counts",
    "remediation_line",
    "remediation_properties",
    "remediation_text",
    "short_value",
]

if TYPE_CHECKING:
    from pytest_kspec.detect import DriftEvent

_SHORT = 60


def remediation_line(events: Iterable[Mapping[str, Any]]) -> str | None:
    """``remediation: 4 drifted, 2 fixed (verified), 1 failed, 1 need a person, ...``;
    None when nothing was remediated in this run."""
    c = remediation_counts(events)
    if not c["drifted"]:
        return None
    parts = [f"{c['drifted']} drifted", f"{c[VERIFIED]} fixed (verified)",
             f"{c[FAILED]} failed", f"{c[MANUAL]} need a person",
             f"{c[DRY_RUN]} dry-run planned"]
    if c[APPLIED]:
        parts.append(f"{c[APPLIED]} applied, not verified")
    if c[SKIPPED]:
        parts.append(f"{c[SKIPPED]} skipped")
    return "remediation: " + ", ".join(parts)


def remediation_properties(events: Sequence[DriftEvent]) -> list[tuple[str, str]]:
    """JUnit properties ``kspec.remediation.action`` / ``.status`` (comma-joined)."""
    blocks = [e.remediation for e in events if e.remediation]
    if not blocks:
        return []
    actions = sorted({str(b["action"]) for b in blocks})
    statuses = sorted({str(b["status"]) for b in blocks})
    return [("kspec.remediation.action", ",".join(actions)),
            ("kspec.remediation.status", ",".join(statuses))]


def remediation_text(events: Sequence[DriftEvent]) -> str:
    """One line per remediated event: what was done, its status, and why."""
    lines = []
    for event in events:
        block = event.remediation
        if not block:
            continue
        why = block.get("error") or (block.get("details") or {}).get("reason") or ""
        head = f"{event.resource}: {block['action']} → {block['status']}"
        lines.append(f"{head}: {why}" if why else head)
        if block["status"] == DRY_RUN:
            for change in (block.get("details") or {}).get("changes") or []:
                lines.append(f"    {change['path']}: {short_value(change['from'])} → "
                             f"{short_value(change['to'])}")
    return "\n".join(lines)


def short_value(value: Any) -> str:
    """``value`` on one line (JSON unless a string), cut to 60 characters."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= _SHORT else text[: _SHORT - 3] + "..."
