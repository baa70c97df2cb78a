"""Waivers (DriftConfig ``spec.waivers``): exceptions a person accepted, with a reason, an
owner and an expiry date, so "who accepted this, and until when?" has an answer.

A waiver names one compliance check (``check: <id>``) or one expected policy (``policy:
<name>``), optionally narrowed to some resources (``resources.namespace`` and ``.name`` globs,
``.labels`` that must all match). ``expires`` is required — a date (``2027-01-15``: the waiver
ends at 00:00 UTC that day) or an RFC 3339 time — and at most :data:`MAX_DAYS` days ahead
unless ``spec.allowLongWaivers: true``: exceptions are renewed on purpose, never forgotten.
An expired waiver waives nothing (its violations are drift again); one that ends within
:data:`WARN_DAYS` days is warned about.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_kspec.spec.validation import show
from pytest_kspec.spec.yamlsafe import FieldPath, Locator, Problem

__all__ = ["MAX_DAYS", "WARN_DAYS", "Waiver", "build_waivers", "parse_expiry", "waiver_problems"]

MAX_DAYS = 90
"""Furthest a waiver may expire ahead of today, unless ``allowLongWaivers: true``."""
WARN_DAYS = 7
"""A waiver ending within this many days is warned about in summaries and alerts."""
_DAY = 86_400


def parse_expiry(text: str) -> float:
    """``2027-01-15`` (00:00 UTC that day) or ``2027-01-15T12:00:00Z`` → epoch seconds;
    ValueError otherwise."""
    value = str(text).strip()
    try:
        if len(value) == 10:
            day = dt.date.fromisoformat(value)
            return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{show(text)} is not a date: write YYYY-MM-DD (e.g. 2027-01-15) or "
                         "an RFC 3339 time (2027-01-15T12:00:00Z)") from None
    if when.tzinfo is None:
        raise ValueError(f"{show(text)} has no time zone: end it with Z (UTC)")
    return when.timestamp()


def _stamp(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Waiver:
    """One accepted exception; ``id`` is its ``name`` or ``waivers[N]``, ``source``
    ``FILE:LINE`` of its entry."""

    id: str
    reason: str
    owner: str
    expires: str
    expires_at: float
    check: str | None = None
    policy: str | None = None
    namespace: str | None = None
    name: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    source: str = ""

    @property
    def subject(self) -> str:
        """``check <id>`` or ``policy <name>``."""
        return f"check {self.check}" if self.check else f"policy {self.policy}"

    def covers(self, target_type: str, target_id: str) -> bool:
        """Whether the waiver is about the item ``<type>::<id>``."""
        if self.policy is not None:
            return target_type == "policy" and target_id in (self.policy, "extra")
        return target_type != "policy" and target_id == self.check

    def selects(self, namespace: str | None, name: str, labels: Mapping[str, str],
                policy: str | None = None) -> bool:
        """Whether one resource (and, for ``policy::extra``, which policy) is waived."""
        if policy is not None and self.policy is not None and policy != self.policy:
            return False
        if self.namespace is not None and not fnmatch.fnmatchcase(namespace or "",
                                                                  self.namespace):
            return False
        if self.name is not None and not fnmatch.fnmatchcase(name, self.name):
            return False
        return all(labels.get(k) == v for k, v in self.labels.items())

    def in_force(self, now: float) -> bool:
        return now < self.expires_at

    def days_left(self, now: float) -> int:
        """Whole days until it ends, rounded up (0 once ended)."""
        return max(0, math.ceil((self.expires_at - now) / _DAY))

    def state(self, now: float) -> str:
        """``in-force``, ``expiring`` (within :data:`WARN_DAYS` days) or ``expired``."""
        if not self.in_force(now):
            return "expired"
        return "expiring" if self.expires_at - now <= WARN_DAYS * _DAY else "in-force"

    def ref(self) -> dict[str, Any]:
        """What a waived event records about its waiver."""
        return {"id": self.id, "reason": self.reason, "owner": self.owner,
                "expires": _stamp(self.expires_at), "source": self.source}

    def to_json(self, now: float) -> dict[str, Any]:
        """The waiver as reports list it, with its state at ``now``."""
        selector: dict[str, Any] = {}
        if self.namespace is not None:
            selector["namespace"] = self.namespace
        if self.name is not None:
            selector["name"] = self.name
        if self.labels:
            selector["labels"] = dict(self.labels)
        return {**self.ref(), **({"check": self.check} if self.check else
                                 {"policy": self.policy}),
                "resources": selector, "state": self.state(now),
                "days_left": self.days_left(now)}

    def warning(self, now: float) -> str | None:
        """The summary line for an expiring or expired waiver; None while comfortably valid."""
        state = self.state(now)
        head = f"waiver {self.id} ({self.subject}, owner {self.owner})"
        if state == "expired":
            return (f"{head} expired {_stamp(self.expires_at)}: what it waived is drift again "
                    f"— fix it or renew the waiver ({self.source})")
        if state == "expiring":
            return (f"{head} expires in {self.days_left(now)} day(s), "
                    f"{_stamp(self.expires_at)}: fix what it waives or renew it ({self.source})")
        return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def waiver_problems(spec: Mapping[str, Any], loc: Locator, now: float) -> list[Problem]:
    """What is wrong with ``spec.waivers`` beyond the schema: subject, expiry, names."""
    problems: list[Problem] = []
    entries = spec.get("waivers")
    if not isinstance(entries, list):
        return problems
    allow_long = spec.get("allowLongWaivers") is True
    names: dict[str, int] = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            continue
        path: FieldPath = ("spec", "waivers", i)
        if ("check" in entry) == ("policy" in entry):
            both = ", not both" if "check" in entry else ""
            problems.append(Problem(loc.key(path), path, "name what is waived: check: "
                                    f"<compliance check id> or policy: <policy name>{both}"))
        name = entry.get("name")
        if isinstance(name, str):
            if name in names:
                problems.append(Problem(loc.value((*path, "name")), (*path, "name"),
                                        f"{show(name)} is already the name of waivers"
                                        f"[{names[name]}]: give each waiver its own name"))
            names.setdefault(name, i)
        expires = entry.get("expires")
        if not isinstance(expires, str) or not expires:
            continue
        where: FieldPath = (*path, "expires")
        try:
            ends = parse_expiry(expires)
        except ValueError as e:
            problems.append(Problem(loc.value(where), where, str(e)))
            continue
        ahead = (ends - now) / _DAY
        if ahead > MAX_DAYS and not allow_long:
            problems.append(Problem(loc.value(where), where, (
                f"{show(expires)} is {math.ceil(ahead)} days ahead, more than {MAX_DAYS}: "
                f"waivers are renewed at least every {MAX_DAYS} days (pick an earlier date, or "
                "set spec.allowLongWaivers: true)")))
    return problems


def build_waivers(spec: Mapping[str, Any], loc: Locator, source: str) -> tuple[Waiver, ...]:
    """The validated ``spec.waivers`` as :class:`Waiver` objects."""
    out = []
    for i, entry in enumerate(spec.get("waivers") or []):
        selector = _dict(entry.get("resources"))
        line = loc.key(("spec", "waivers", i)).line
        out.append(Waiver(
            id=str(entry.get("name") or f"waivers[{i}]"), reason=str(entry["reason"]),
            owner=str(entry["owner"]), expires=str(entry["expires"]),
            expires_at=parse_expiry(entry["expires"]), check=entry.get("check"),
            policy=entry.get("policy"), namespace=selector.get("namespace"),
            name=selector.get("name"), labels=dict(selector.get("labels") or {}),
            source=f"{source}:{line}"))
    return tuple(out)
