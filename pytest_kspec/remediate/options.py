"""What a remediation run may do and what it keeps: options, statuses, audit trail, deletion cap.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pytest_kspec.detect import POLICY
from pytest_kspec.report import REMEDIATION_STATUSES

__all__ = [
    "ACTIONS",
    "STATUSES",
    "DeletionBudget",
    "MemoryRecorder",
    "RemediationOptions",
    "RemediationRecorder",
]

if TYPE_CHECKING:
    from pytest_kspec.spec import DriftConfig

APPLIED, VERIFIED, FAILED = "applied", "verified", "failed"
DRY_RUN, MANUAL, SKIPPED = "dry-run", "manual-required", "skipped"
STATUSES: tuple[str, ...] = REMEDIATION_STATUSES  # applied, verified, failed, dry-run, ...
CREATE, UPDATE, DELETE, REPORT, FIX = "create", "update", "delete", "report", "fix"
ACTIONS: tuple[str, ...] = (CREATE, UPDATE, DELETE, REPORT, FIX)
"""``fix``: a user's check ran its registered fix (see :mod:`pytest_kspec.remediate.custom`)."""
RESOURCE_SETTINGS = ("report", "delete")


class RemediationRecorder(Protocol):
    """Where remediation attempts go (the audit trail); the history store implements it.

    ``record`` is called once per attempt — dry-run, skipped and manual-required included —
    with a plain JSON-ready mapping:

    - ``node_id``: the item (``cluster-spec.yaml::policy::require-run-as-non-root``)
    - ``resource``: what was acted on (``ClusterPolicy/x``, ``Pod/ns/name``)
    - ``action``: ``create``, ``update``, ``delete`` or ``report``
    - ``status``: ``applied``, ``verified``, ``failed``, ``dry-run``, ``manual-required``
      or ``skipped``
    - ``dry_run``: whether the requests were sent with ``dryRun=All``
    - ``timestamp``: RFC 3339 UTC (``2025-01-15T10:30:05Z``)
    - ``error``: one line saying why it failed or was skipped, else None
    - ``details``: a mapping — the field diff of an update (``changes``: path, from, to),
      the resourceVersion or uid the write was guarded by, the owner of a pod, a reason
    """

    def record(self, attempt: Mapping[str, Any]) -> None: ...


class MemoryRecorder:
    """The default recorder: keeps every attempt in ``attempts`` (thread-safe)."""

    def __init__(self) -> None:
        self.attempts: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def record(self, attempt: Mapping[str, Any]) -> None:
        with self._lock:
            self.attempts.append(dict(attempt))


@dataclass(frozen=True)
class RemediationOptions:
    """What may be fixed and how.

    ``explicit`` (``--kspec-remediate`` / ``--kspec-dry-run`` / ``kspec drift remediate``)
    covers every type the run checks; ``auto`` (DriftConfig ``remediation.auto``) only the
    types in ``auto_types``. ``resources`` maps a compliance check id to ``report`` or
    ``delete``; ``prune`` allows deleting extra kspec policies; ``max_deletions`` caps
    destructive actions per run.
    """

    explicit: bool = False
    auto: bool = False
    dry_run: bool = False
    auto_types: frozenset[str] = frozenset({POLICY})
    prune: bool = False
    max_deletions: int = 5
    resources: Mapping[str, str] = field(default_factory=dict, hash=False)

    @property
    def active(self) -> bool:
        return self.explicit or self.auto

    def applies_to(self, kind: str) -> bool:
        """Whether drift of type ``kind`` is remediated in this run."""
        return self.explicit or (self.auto and kind in self.auto_types)

    @classmethod
    def resolve(cls, config: DriftConfig, *, remediate: bool = False, dry_run: bool = False,
                prune: bool = False, max_deletions: int | None = None,
                allow_auto: bool = True) -> RemediationOptions:
        """Command-line flags over the DriftConfig; ``allow_auto`` False is
        ``--no-auto-remediate``. A dry run alone already plans the fixes."""
        rem = config.remediation
        return cls(explicit=remediate or dry_run, auto=rem.auto and allow_auto,
                   dry_run=dry_run or rem.dry_run, auto_types=rem.types,
                   prune=prune or rem.prune,
                   max_deletions=rem.max_deletions if max_deletions is None else max_deletions,
                   resources=dict(rem.resources))


class DeletionBudget:
    """How many destructive actions the run may still take.

    In memory by default; with ``path`` the count lives in that file under an exclusive lock,
    so every xdist worker of one run draws from the same budget.
    """

    def __init__(self, limit: int, path: Path | None = None) -> None:
        self.limit = max(int(limit), 0)
        self.path = path
        self._used = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        """Reserve one deletion; False once ``limit`` deletions were taken this run."""
        with self._lock:
            if self.path is None:
                if self._used >= self.limit:
                    return False
                self._used += 1
                return True
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                raw = os.read(fd, 64).decode("ascii", "replace").strip()
                used = int(raw) if raw.isdigit() else 0
                if used >= self.limit:
                    return False
                os.lseek(fd, 0, os.SEEK_SET)
                os.ftruncate(fd, 0)
                os.write(fd, str(used + 1).encode("ascii"))
                return True
            finally:
                os.close(fd)  # closing releases the lock

    @property
    def used(self) -> int:
        if self.path is None:
            return self._used
        try:
            raw = self.path.read_text(encoding="ascii").strip()
        except OSError:
            return 0
        return int(raw) if raw.isdigit() else 0
