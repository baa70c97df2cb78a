"""Alert state in the history database: what each channel was told, and every delivery.

Kept beside the runs so a CronJob (a new process each run) alerts a drift once per state
change, and so "did anyone get told?" has an answer: each delivery is a row in
``alert_deliveries`` and, when it failed, an ``alert`` record in the cluster's audit chain.
The tables are schema 3 (:mod:`pytest_kspec.history.schema`), on SQLite and PostgreSQL alike.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from pytest_kspec.history import audit
from pytest_kspec.history.db import HistoryError
from pytest_kspec.history.records import Scope, iso
from pytest_kspec.history.store import HistoryStore

log = logging.getLogger("pytest_kspec.history.alertstate")


class _Sent(Protocol):
    @property
    def key(self) -> str: ...
    @property
    def resource(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def at(self) -> float: ...
    @property
    def severity(self) -> str: ...


class _Delivery(Protocol):
    channel: str
    type: str
    result: str
    counts: dict[str, int]
    attempts: int
    error: str

    def to_json(self) -> dict[str, Any]: ...


class AlertStateStore:
    """The alert state of one scope (wrapped by :class:`pytest_kspec.alerts.StoredState`)."""

    def __init__(self, store: HistoryStore, scope: Scope) -> None:
        self.store = store
        self.scope = scope
        self._sid_cache: int | None = None

    def _sid(self) -> int:
        if self._sid_cache is None:
            sid = self.store.db.one("SELECT id FROM scopes WHERE spec_name = ? AND cluster = ?",
                                    (self.scope.spec_name, self.scope.cluster))
            if sid is None:
                sid = self.store.write("record the cluster", lambda: self.store._scope_id(
                    self.scope, create=True))
            assert sid is not None
            self._sid_cache = int(sid)
        return self._sid_cache

    def load(self, channel: str) -> tuple[dict[str, tuple[str, str, str, float, str]],
                                          float | None]:
        """``{fingerprint: (key, resource, state, at, severity)}`` and the last send time."""
        try:
            sid = self._sid()
            rows = self.store.db.execute(
                "SELECT fingerprint, key, resource, state, at, severity FROM alert_sent WHERE"
                " scope = ? AND channel = ?", (sid, channel)).fetchall()
            last = self.store.db.execute(
                "SELECT last_sent FROM alert_channels WHERE scope = ? AND channel = ?",
                (sid, channel)).fetchone()
        except self.store.db.errors as e:
            raise HistoryError(f"{self.store.where}: cannot read the alert state ({e})") from e
        sent = {str(r[0]): (str(r[1]), str(r[2]), str(r[3]), float(r[4]), str(r[5]))
                for r in rows}
        return sent, float(last[0]) if last else None

    def save(self, channel: str, sent: Mapping[str, _Sent], removed: Iterable[str],
             last_sent: float) -> None:
        sid = self._sid()

        def work() -> None:
            db = self.store.db
            db.executemany(
                "INSERT INTO alert_sent(scope, channel, fingerprint, key, resource, state,"
                " severity, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(scope, channel,"
                " fingerprint) DO UPDATE SET key = excluded.key, resource = excluded.resource,"
                " state = excluded.state, severity = excluded.severity, at = excluded.at",
                [(sid, channel, fp, s.key, s.resource, s.state, s.severity, s.at)
                 for fp, s in sorted(sent.items())])
            db.executemany("DELETE FROM alert_sent WHERE scope = ? AND channel = ? AND "
                           "fingerprint = ?", [(sid, channel, fp) for fp in sorted(removed)])
            db.execute("INSERT INTO alert_channels(scope, channel, last_sent) VALUES (?, ?, ?)"
                       " ON CONFLICT(scope, channel) DO UPDATE SET last_sent ="
                       " excluded.last_sent", (sid, channel, last_sent))

        self.store.write("save the alert state", work)

    def record(self, delivery: _Delivery, run_id: str, at: float) -> None:
        """One row per delivery; a failed one also goes into the audit chain."""
        counts = delivery.counts
        sid = self._sid()

        def work() -> None:
            trail = audit.AuditLog(self.store.db, self.scope.cluster, self.store.key)
            if delivery.result == "failed":
                trail.lock()  # the cluster's chain first, as every writer of it does
            self.store.db.execute(
                "INSERT INTO alert_deliveries(run_id, scope, ts, channel, type, result, new,"
                " resolved, reminder, attempts, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
                " ?)", (run_id, sid, at, delivery.channel, delivery.type, delivery.result,
                        counts.get("new", 0), counts.get("resolved", 0),
                        counts.get("reminder", 0), delivery.attempts, delivery.error))
            if delivery.result == "failed":
                trail.append("alert", int(at), {**delivery.to_json(), "run": run_id})

        self.store.write("record an alert delivery", work)


def deliveries(store: HistoryStore, *, since: float | None = None) -> list[dict[str, Any]]:
    """Recorded deliveries, oldest first (empty when nothing was ever alerted)."""
    rows = store.db.execute(
        "SELECT run_id, ts, channel, type, result, new, resolved, reminder, attempts, error"
        " FROM alert_deliveries WHERE ts >= ? ORDER BY ts, id", (since or 0,)).fetchall()
    return [{"run": r[0], "time": iso(r[1]), "channel": r[2], "type": r[3], "result": r[4],
             "new": r[5], "resolved": r[6], "reminder": r[7], "attempts": r[8], "error": r[9]}
            for r in rows]
