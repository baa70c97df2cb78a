"""A run's link to its history: the baseline it reads, the run it appends, its kept reports.

:class:`RunHistory` is what :class:`pytest_kspec.run.Run` holds: workers and the CLI read the
baseline through it, the controller (or the CLI) appends the finished run, prunes by
retention and copies the run's report files under ``<reports>/runs/<run-id>/``. A history
that cannot be opened never fails the run: the problem is kept in ``error`` and shown once.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pytest_kspec.history.audit import audit_key
from pytest_kspec.history.db import HistoryError, first_line, is_postgres_url, redact
from pytest_kspec.history.records import (
    Baseline,
    ItemResult,
    RunInput,
    Scope,
    new_run_id,
    parse_iso,
)
from pytest_kspec.history.store import HistoryStore
from pytest_kspec.history.trend import RunPoint, Trend
from pytest_kspec.paths import under

if TYPE_CHECKING:
    from pytest_kspec.spec import Storage

log = logging.getLogger("pytest_kspec.history.store")

DB_NAME = "history.db"
T = TypeVar("T")


@dataclass(frozen=True)
class Location:
    """Where a history lives: a SQLite file or a ``postgresql://`` URL, and where the
    PostgreSQL password comes from (an environment variable or a file; read when opened)."""

    target: Path | str
    password_env: str | None = None
    password_file: str | None = None

    def __str__(self) -> str:
        return redact(self.target) if isinstance(self.target, str) else str(self.target)

    @property
    def is_postgres(self) -> bool:
        return is_postgres_url(self.target)

    def password(self) -> str | None:
        """The password from ``password_env`` / ``password_file``; HistoryError naming the
        variable or file when it is not there (never showing a value)."""
        if self.password_env:
            value = os.environ.get(self.password_env)
            if not value:
                raise HistoryError(f"{self}: storage.passwordEnv names {self.password_env}, "
                                   "which is not set (export it, or mount the Secret as "
                                   "passwordFile)")
            return value
        if self.password_file:
            try:
                return Path(self.password_file).read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as e:
                raise HistoryError(f"{self}: cannot read storage.passwordFile "
                                   f"{self.password_file} ({e.strerror or e})") from e
        return None

    def open(self, *, key: bytes | None = None,
             clock: Callable[[], float] = time.time) -> HistoryStore:
        return HistoryStore(self.target, key=key, clock=clock, password=self.password())


def history_location(explicit: str | Path | None, storage: Storage, reports: Path, *,
                     base: Path | None = None, off: bool = False) -> Location | None:
    """Where a run's history lives: the flag (a path or a ``postgresql://`` URL), else the
    DriftConfig's ``storage`` (postgres ``url``, or sqlite ``path``), else
    ``<reports>/history.db``; None when history is turned off. A relative SQLite path
    starts in ``base``, the directory the run was started in (default: the current one)."""
    if off:
        return None
    if explicit:
        text = str(explicit)
        return Location(text if is_postgres_url(text) else under(base or Path.cwd(), text))
    if storage.type == "postgres" and storage.url:
        return Location(storage.url, storage.password_env, storage.password_file)
    return Location(under(base or Path.cwd(), storage.path or reports / DB_NAME))


class RunHistory:
    """History for one run; ``location`` None turns it off (baseline empty, nothing written)."""

    def __init__(self, location: Location | None, *, retention: float, keep_runs: int,
                 clock: Callable[[], float] = time.time) -> None:
        self.location = location
        self.retention = retention
        self.keep_runs = keep_runs
        self.clock = clock
        self.run_id = new_run_id(clock())
        self.error: str | None = None
        self.trend: Trend | None = None
        self._store: HistoryStore | None = None
        self._baselines: dict[Scope, Baseline] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.location is not None

    def store(self) -> HistoryStore | None:
        """The open store, or None when history is off or cannot be opened (see ``error``)."""
        if self.location is None or self.error is not None:
            return None
        if self._store is None:
            try:
                self._store = self.location.open(key=audit_key(), clock=self.clock)
            except HistoryError as e:
                self.error = str(e)
                log.warning("history disabled for this run: %s", e)
                return None
        return self._store

    def baseline(self, scope: Scope) -> Baseline:
        """What the previous run of ``scope`` saw (read once per process)."""
        with self._lock:
            if scope not in self._baselines:
                store = self.store()
                found = None if store is None else self._read(
                    store, "read the previous run", lambda: store.baseline(scope))
                self._baselines[scope] = found or Baseline()
            return self._baselines[scope]

    def known_scope(self, spec_name: str, name: str) -> Scope | None:
        """The scope the history knows for ``spec_name`` on the cluster called ``name``."""
        store = self.store()
        if store is None:
            return None
        return self._read(store, "look up the cluster", lambda: store.scope_named(spec_name,
                                                                                  name))

    def compute_trend(self, scope: Scope, current: RunPoint) -> Trend | None:
        store = self.store()
        if store is None:
            return None
        self.trend = self._read(store, "read the trend", lambda: store.trend(scope, current))
        return self.trend

    def _read(self, store: HistoryStore, what: str, read: Callable[[], T]) -> T | None:
        """``read()``, or None (and ``error``) when the database fails mid-run (a
        PostgreSQL server gone away): the run goes on without its history."""
        try:
            return read()
        except store.db.errors as e:
            self.error = f"{store.where}: could not {what} ({first_line(e)})"
            log.warning("%s", self.error)
            return None

    def append(self, run: RunInput) -> bool:
        """Append the run and prune its cluster by retention; False (and ``error``) when it
        failed."""
        store = self.store()
        if store is None:
            return False
        try:
            store.append(run)
            result = store.prune(self.retention, cluster=run.scope.cluster)
        except HistoryError as e:
            self.error = str(e)
            log.warning("%s", e)
            return False
        if result.runs or result.vacuumed:
            log.info("history: pruned %d run(s), %d episode(s), %d audit record(s)%s",
                     result.runs, result.episodes, result.audit,
                     "; vacuumed" if result.vacuumed else "")
        return True

    def record_remediation(self, scope: Scope, attempt: Mapping[str, Any]) -> None:
        store = self.store()
        if store is None:
            return
        try:
            store.record_remediation(self.run_id, scope, attempt)
        except HistoryError as e:
            log.warning("%s", e)

    def archive(self, reports: Path, files: Sequence[Path]) -> Path | None:
        """Keep copies of this run's report ``files`` under ``<reports>/runs/<run-id>/``."""
        if not self.enabled:
            return None
        try:
            return archive_reports(reports, self.run_id, files, keep=self.keep_runs,
                                   retention=self.retention, now=self.clock())
        except OSError as e:
            log.warning("could not keep this run's reports under %s: %s", reports / "runs", e)
            return None

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


class HistoryRecorder:
    """A :class:`pytest_kspec.remediate.RemediationRecorder` that writes each attempt to the
    history's audit trail at once (and keeps it in ``attempts``, as the default recorder)."""

    def __init__(self, history: RunHistory, scope: Callable[[], Scope]) -> None:
        self.history = history
        self.scope = scope
        self.attempts: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def record(self, attempt: Mapping[str, Any]) -> None:
        with self._lock:
            self.attempts.append(dict(attempt))
            self.history.record_remediation(self.scope(), attempt)


def run_input(run_id: str, scope: Scope, report: Any, *, source: str) -> RunInput:
    """The history record of a finished :class:`~pytest_kspec.report.model.RunReport`."""
    items = [ItemResult(f"{r.type}::{r.id}", r.status, list(r.events)) for r in report.items]
    started = parse_iso(report.started)
    finished = parse_iso(report.finished) if report.finished else started
    return RunInput(run_id=run_id, scope=scope, spec_version=report.spec_version,
                    spec_hash=report.spec_hash, started=started, finished=finished,
                    items=items, source=source)


def archive_reports(reports: Path, run_id: str, files: Sequence[Path], *, keep: int,
                    retention: float, now: float | None = None) -> Path | None:
    """Copy ``files`` to ``<reports>/runs/<run-id>/``; keep the newest ``keep`` run folders
    (run ids sort by time) and none older than ``retention`` seconds."""
    existing = [f for f in files if f.is_file()]
    if keep <= 0 or not existing:
        return None
    runs = reports / "runs"
    target = runs / run_id
    target.mkdir(parents=True, exist_ok=True)
    for f in existing:
        shutil.copy2(f, target / f.name)
    cutoff = (time.time() if now is None else now) - retention
    folders = sorted((p for p in runs.iterdir() if p.is_dir()), key=lambda p: p.name)
    doomed = folders[:-keep] + [p for p in folders[-keep:]
                                if p != target and p.stat().st_mtime < cutoff]
    for old in doomed:
        shutil.rmtree(old, ignore_errors=True)
    return target
