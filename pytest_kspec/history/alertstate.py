"""Alert state in the history database: what each channel was told, and every delivery.

Kept beside the runs so a CronJob (a new process each run) alerts a drift once per state
change, and so "did anyone get told?" has an answer: each delivery is a row in
``alert_deliveries`` and, when it failed, an ``alert`` record in the audit chain. The tables
are created on first use (``IF NOT EXISTS``): databases of earlier versions gain them
without a schema step, and readers that do not alert never touch them.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from pytest_kspec.history import audit
from pytest_kspec.history.store import HistoryError, HistoryStore, Scope, iso

log = logging.getLogger("pytest_kspec.history.alertstate")

DDL = (
    "CREATE TABLE IF NOT EXISTS alert_sent (scope INTEGER NOT NULL, channel TEXT NOT NULL,"
    " fingerprint TEXT NOT NULL, key TEXT NOT NULL, resource TEXT NOT NULL, state TEXT NOT"
    " NULL, severity TEXT NOT NULL, at REAL NOT NULL, PRIMARY KEY(scope, channel, fingerprint))"
    " WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS alert_channels (scope INTEGER NOT NULL, channel TEXT NOT NULL,"
    " last_sent REAL NOT NULL, PRIMARY KEY(scope, channel)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS alert_deliveries (id INTEGER PRIMARY KEY, run_id TEXT NOT NULL,"
    " scope INTEGER NOT NULL, ts REAL NOT NULL, channel TEXT NOT NULL, type TEXT NOT NULL,"
    " result TEXT NOT NULL, new INTEGER NOT NULL, resolved INTEGER NOT NULL, reminder INTEGER"
    " NOT NULL, attempts INTEGER NOT NULL, error TEXT NOT NULL)",
)


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
            with self.store.transaction() as conn:
                for statement in DDL:
                    conn.execute(statement)
                sid = self.store._scope_id(self.scope, create=True)
            assert sid is not None
            self._sid_cache = sid
        return self._sid_cache

    def load(self, channel: str) -> tuple[dict[str, tuple[str, str, str, float, str]],
                                          float | None]:
        """``{fingerprint: (key, resource, state, at, severity)}`` and the last send time."""
        try:
            sid = self._sid()
            rows = self.store.conn.execute(
                "SELECT fingerprint, key, resource, state, at, severity FROM alert_sent WHERE"
                " scope = ? AND channel = ?", (sid, channel)).fetchall()
            last = self.store.conn.execute(
                "SELECT last_sent FROM alert_channels WHERE scope = ? AND channel = ?",
                (sid, channel)).fetchone()
        except sqlite3.Error as e:
            raise HistoryError(f"{self.store.path}: cannot read the alert state ({e})") from e
        sent = {str(r[0]): (str(r[1]), str(r[2]), str(r[3]), float(r[4]), str(r[5]))
                for r in rows}
        return sent, float(last[0]) if last else None

    def save(self, channel: str, sent: Mapping[str, _Sent], removed: Iterable[str],
             last_sent: float) -> None:
        try:
            sid = self._sid()
            with self.store.transaction() as conn:
                conn.executemany(
                    "INSERT OR REPLACE INTO alert_sent(scope, channel, fingerprint, key, "
                    "resource, state, severity, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [(sid, channel, fp, s.key, s.resource, s.state, s.severity, s.at)
                     for fp, s in sent.items()])
                conn.executemany("DELETE FROM alert_sent WHERE scope = ? AND channel = ? AND "
                                 "fingerprint = ?", [(sid, channel, fp) for fp in removed])
                conn.execute("INSERT OR REPLACE INTO alert_channels(scope, channel, last_sent)"
                             " VALUES (?, ?, ?)", (sid, channel, last_sent))
        except sqlite3.Error as e:
            raise HistoryError(f"{self.store.path}: cannot save the alert state ({e})") from e

    def record(self, delivery: _Delivery, run_id: str, at: float) -> None:
        """One row per delivery; a failed one also goes into the audit chain."""
        counts = delivery.counts
        try:
            sid = self._sid()
            with self.store.transaction() as conn:
                conn.execute(
                    "INSERT INTO alert_deliveries(run_id, scope, ts, channel, type, result, new,"
                    " resolved, reminder, attempts, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
                    " ?)", (run_id, sid, at, delivery.channel, delivery.type, delivery.result,
                            counts.get("new", 0), counts.get("resolved", 0),
                            counts.get("reminder", 0), delivery.attempts, delivery.error))
                if delivery.result == "failed":
                    audit.AuditLog(conn, self.store.key).append(
                        "alert", int(at), {**delivery.to_json(), "run": run_id})
        except sqlite3.Error as e:
            raise HistoryError(f"{self.store.path}: cannot record an alert delivery ({e})"
                               ) from e


def deliveries(store: HistoryStore, *, since: float | None = None) -> list[dict[str, Any]]:
    """Recorded deliveries, oldest first (empty when nothing was ever alerted)."""
    try:
        rows = store.conn.execute(
            "SELECT run_id, ts, channel, type, result, new, resolved, reminder, attempts, error"
            " FROM alert_deliveries WHERE ts >= ? ORDER BY ts, id", (since or 0,)).fetchall()
    except sqlite3.OperationalError:
        return []
    return [{"run": r[0], "time": iso(r[1]), "channel": r[2], "type": r[3], "result": r[4],
             "new": r[5], "resolved": r[6], "reminder": r[7], "attempts": r[8], "error": r[9]}
            for r in rows]
