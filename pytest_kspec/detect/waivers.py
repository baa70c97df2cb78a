"""Waived drift: set aside the events a waiver in force accepts, and say which waiver did.

Runs on an outcome after it was judged: each event whose resource a waiver in force selects
(:meth:`~pytest_kspec.spec.waivers.Waiver.selects`) moves to ``outcome.waived`` and records the
waiver (``event.waiver``). When every event was waived the outcome is ``waived`` (pytest: an
xfail carrying the reason and owner; never remediated, never alerted); when some were, the
item still fails on the others. An expired waiver waives nothing; the failure then says it
expired.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pytest_kspec.detect.compliance import Violation
from pytest_kspec.detect.policydrift import DriftEvent

if TYPE_CHECKING:
    from pytest_kspec.detect.engine import Outcome
    from pytest_kspec.spec import Waiver

__all__ = ["apply_waivers", "waived_text"]

LabelLookup = Callable[[str, str, str, str | None], Mapping[str, str]]


def apply_waivers(outcome: Outcome, waivers: Sequence[Waiver], now: float,
                  labels: LabelLookup | None = None) -> Outcome:
    """Move the events of ``outcome`` that waivers in force at ``now`` accept to
    ``outcome.waived``; ``labels(api_version, kind, name, namespace)`` reads a resource's
    labels (only asked when a waiver selects by label)."""
    target = outcome.target
    relevant = [w for w in waivers if w.covers(target.type, target.id)]
    if not relevant or outcome.status != "failed":
        return outcome
    active = [w for w in relevant if w.in_force(now)]
    aligned = len(outcome.subjects) == len(outcome.events)
    subjects: list[Any] = list(outcome.subjects) if aligned else [None] * len(outcome.events)
    kept: list[tuple[DriftEvent, Any]] = []
    for event, subject in zip(outcome.events, subjects, strict=True):
        waiver = _first(active, event, subject, target.id, labels)
        if waiver is None:
            kept.append((event, subject))
            continue
        event.waiver = waiver.ref()
        outcome.waived.append(event)
    expired = [w for w in relevant if not w.in_force(now)]
    if not outcome.waived:
        if expired:
            outcome.text += "".join(f"\n  (waiver {w.id} expired {w.ref()['expires']}: no "
                                    f"longer waives this; owner {w.owner})" for w in expired)
        return outcome
    outcome.events = [e for e, _ in kept]
    if aligned:
        outcome.subjects = [s for _, s in kept]
    if not kept:
        outcome.status = "waived"
        outcome.text = waived_text(outcome.waived)
        return outcome
    header = outcome.text.splitlines()[0] if outcome.text else ""
    lines = [header, *(f"  {e.resource}: {e.message}" if e.message else f"  {e.resource}"
                       for e in outcome.events[:10])]
    if len(outcome.events) > 10:
        lines.append(f"  ... and {len(outcome.events) - 10} more (see drift-report.json)")
    lines.append(f"  ({len(outcome.waived)} more waived: "
                 f"{', '.join(sorted({str((e.waiver or {}).get('id')) for e in outcome.waived}))})")
    outcome.text = "\n".join(lines)
    return outcome


def waived_text(events: Sequence[DriftEvent]) -> str:
    """``waived by W until 2027-01-15T00:00:00Z: reason (owner: O)``, one line per waiver."""
    seen: dict[str, tuple[Mapping[str, Any], int]] = {}
    for event in events:
        ref = event.waiver or {}
        ident = str(ref.get("id"))
        seen[ident] = (ref, seen.get(ident, (ref, 0))[1] + 1)
    return "; ".join(f"waived by {ident} until {ref.get('expires')}: {ref.get('reason')} "
                     f"(owner: {ref.get('owner')}; {n} event(s))"
                     for ident, (ref, n) in seen.items())


def _first(active: Sequence[Waiver], event: DriftEvent, subject: Any, target_id: str,
           labels: LabelLookup | None) -> Waiver | None:
    if not active:
        return None
    namespace, name, policy, obj = _identity(event, subject, target_id)
    found: Mapping[str, str] | None = None
    for waiver in active:
        if waiver.labels and found is None:
            found = _labels(obj, subject, labels)
        if waiver.selects(namespace, name, found or {}, policy):
            return waiver
    return None


def _identity(event: DriftEvent, subject: Any,
              target_id: str) -> tuple[str | None, str, str | None, Mapping[str, Any] | None]:
    """Namespace, name, policy name (policy targets) and live object (when known)."""
    if isinstance(subject, Violation):
        return subject.namespace, subject.name, None, None
    if isinstance(subject, Mapping):  # a live policy
        name = str((subject.get("metadata") or {}).get("name") or "")
        return None, name, name, subject
    parts = event.resource.split("/")
    name = parts[-1]
    if event.type == "policy":
        return None, name, name if target_id == "extra" else target_id, None
    return (parts[1] if len(parts) == 3 else None), name, None, None


def _labels(obj: Mapping[str, Any] | None, subject: Any,
            labels: LabelLookup | None) -> Mapping[str, str]:
    if obj is not None:
        return dict((obj.get("metadata") or {}).get("labels") or {})
    if isinstance(subject, Violation) and labels is not None and subject.kind:
        return labels(subject.api_version or "v1", subject.kind, subject.name, subject.namespace)
    return {}
