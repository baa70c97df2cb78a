"""The history's records: whose history (scope), what a run appends, what readers get back.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

STATUS = {"absent": 0, "passed": 1, "failed": 2, "error": 3, "skipped": 4, "waived": 5}
STATUS_NAME = {v: k for k, v in STATUS.items()}


def fingerprint(key: str, resource: str) -> str:
    """Identity of a drift across runs: the item (``type::id``) and the resource."""
    return hashlib.sha256(f"{key}\0{resource}".encode()).hexdigest()[:16]


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> float:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp()


def new_run_id(started: float) -> str:
    """Sortable run id: ``20250115T103000Z-1a2b3c``."""
    stamp = dt.datetime.fromtimestamp(started, dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{hashlib.sha256(f'{time.time_ns()}'.encode()).hexdigest()[:6]}"


@dataclass(frozen=True)
class Scope:
    """Whose history: a spec name on one cluster (uid wins over server URL when known).

    ``name`` is how people call the cluster (its kubeconfig context or its DriftConfig
    ``clusters:`` name): shown and filtered on (``--cluster``), never part of the identity.
    """

    spec_name: str
    server: str = ""
    uid: str = ""
    name: str = field(default="", compare=False)

    @property
    def cluster(self) -> str:
        """The cluster's identity, which also names its audit chain."""
        return f"uid:{self.uid}" if self.uid else f"server:{self.server}"

    @property
    def label(self) -> str:
        return self.name or urlsplit(self.server).hostname or self.cluster


@dataclass(frozen=True)
class ActiveEvent:
    """A drift present in the scope's previous run; ``first_seen`` starts its episode."""

    fingerprint: str
    key: str
    type: str
    resource: str
    drift: str
    severity: str
    message: str
    first_seen: float
    episodes: int


@dataclass(frozen=True)
class Baseline:
    """What the previous run of a scope saw; empty when there was none."""

    run_id: str | None = None
    present: frozenset[str] = frozenset()
    active: Mapping[str, ActiveEvent] = field(default_factory=dict)

    def seen(self, key: str) -> bool:
        """Whether the item's object (a policy) was ever seen present in this scope."""
        return key in self.present

    def active_for(self, key: str) -> list[ActiveEvent]:
        return sorted((a for a in self.active.values() if a.key == key),
                      key=lambda a: a.resource)


@dataclass
class ItemResult:
    """One item of a run: ``key`` is ``type::id``; events are report event dicts."""

    key: str
    status: str
    events: Sequence[Mapping[str, Any]] = ()


@dataclass
class RunInput:
    """Everything one run appends."""

    run_id: str
    scope: Scope
    spec_version: str
    spec_hash: str
    started: float
    finished: float
    items: Sequence[ItemResult]
    source: str = "pytest"

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(("passed", "failed", "error", "skipped"), 0)
        for item in self.items:
            out[item.status] = out.get(item.status, 0) + 1
        return out


@dataclass(frozen=True)
class EventRow:
    """A drift's history in one scope, for ``kspec drift history``."""

    spec_name: str
    cluster: str
    key: str
    type: str
    resource: str
    drift: str
    severity: str
    message: str
    first_seen: float
    last_seen: float
    active: bool
    episodes: int
    time_to_resolve: float | None
    cluster_name: str = ""

    @property
    def flapping(self) -> bool:
        """Came and went at least twice in the retained history."""
        return self.episodes >= 3

    def to_json(self) -> dict[str, Any]:
        return {"spec": self.spec_name, "cluster": self.cluster,
                "cluster_name": self.cluster_name, "item": self.key,
                "type": self.type, "resource": self.resource, "drift": self.drift,
                "severity": self.severity, "message": self.message,
                "first_seen": iso(self.first_seen), "last_seen": iso(self.last_seen),
                "active": self.active, "episodes": self.episodes, "flapping": self.flapping,
                "time_to_resolve_s": self.time_to_resolve}


@dataclass(frozen=True)
class PruneResult:
    runs: int
    episodes: int
    audit: int
    vacuumed: bool
