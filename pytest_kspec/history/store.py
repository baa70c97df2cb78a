"""Local drift history in SQLite: runs, item outcomes, drift episodes and the audit trail.

Compact by storing what changed: an item's outcome is written only when it differs from the
previous run of the same scope (a full *keyframe* every :data:`KEYFRAME_EVERY` runs and after
retention), and a drift event is one row per fingerprint plus one row per *episode* (a stretch
of consecutive runs in which it was present), not one row per run. A *scope* is a spec name on
one cluster (the kube-system namespace uid when readable, else the server URL), so histories of
different specs or clusters never inform each other's ``deleted``/``new-violation`` verdicts.

Crash safety: WAL journal, ``synchronous=NORMAL`` (committed runs survive a killed process;
a power loss may roll back the newest commits but never corrupts), one ``BEGIN IMMEDIATE``
transaction per run that also holds its audit records, a busy timeout so readers and a
concurrent writer wait instead of failing.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_kspec.errors import KspecError
from pytest_kspec.history import audit
from pytest_kspec.history.trend import RunPoint, Trend

log = logging.getLogger("pytest_kspec.history.store")

SCHEMA_VERSION = 1
KEYFRAME_EVERY = 288
"""A full outcome set every this many runs of a scope (a day at one run every 5 minutes)."""
VACUUM_MIN_FREE_PAGES = 256
VACUUM_MIN_FREE_SHARE = 0.25
"""VACUUM after pruning when at least this many pages (1 MiB at 4 KiB pages) and this share
of the file are free: smaller gaps are reused by the next runs anyway."""
STATUS = {"absent": 0, "passed": 1, "failed": 2, "error": 3, "skipped": 4, "waived": 5}
STATUS_NAME = {v: k for k, v in STATUS.items()}

MIGRATIONS: Mapping[int, Sequence[str]] = {
    1: (
        *audit.DDL,
        "CREATE TABLE scopes (id INTEGER PRIMARY KEY, spec_name TEXT NOT NULL, cluster TEXT "
        "NOT NULL, server TEXT NOT NULL, uid TEXT NOT NULL, UNIQUE(spec_name, cluster))",
        "CREATE TABLE specs (id INTEGER PRIMARY KEY, version TEXT NOT NULL, hash TEXT NOT NULL,"
        " UNIQUE(version, hash))",
        "CREATE TABLE nodes (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE)",
        "CREATE TABLE runs (id INTEGER PRIMARY KEY, run_id TEXT NOT NULL UNIQUE, scope INTEGER"
        " NOT NULL, spec INTEGER NOT NULL, source TEXT NOT NULL, started INTEGER NOT NULL,"
        " finished INTEGER NOT NULL, passed INTEGER NOT NULL, failed INTEGER NOT NULL,"
        " error INTEGER NOT NULL, skipped INTEGER NOT NULL, base INTEGER NOT NULL)",
        "CREATE INDEX runs_scope ON runs(scope, id)",
        "CREATE INDEX runs_finished ON runs(finished)",
        "CREATE TABLE outcomes (run INTEGER NOT NULL, node INTEGER NOT NULL, status INTEGER NOT"
        " NULL, PRIMARY KEY(run, node)) WITHOUT ROWID",
        "CREATE TABLE current (scope INTEGER NOT NULL, node INTEGER NOT NULL, status INTEGER NOT"
        " NULL, PRIMARY KEY(scope, node)) WITHOUT ROWID",
        "CREATE TABLE present (scope INTEGER NOT NULL, node INTEGER NOT NULL, last_seen INTEGER"
        " NOT NULL, PRIMARY KEY(scope, node)) WITHOUT ROWID",
        "CREATE TABLE events (id INTEGER PRIMARY KEY, scope INTEGER NOT NULL, fingerprint TEXT"
        " NOT NULL, node INTEGER NOT NULL, type TEXT NOT NULL, resource TEXT NOT NULL, drift"
        " TEXT NOT NULL, severity TEXT NOT NULL, message TEXT NOT NULL, first_seen INTEGER NOT"
        " NULL, last_seen INTEGER NOT NULL, last_run INTEGER NOT NULL, UNIQUE(scope,"
        " fingerprint))",
        # primary key columns first: SQLite 3.40's integrity_check misreads WITHOUT ROWID
        # tables whose key columns come after others
        "CREATE TABLE episodes (event INTEGER NOT NULL, start_run INTEGER NOT NULL, start"
        " INTEGER NOT NULL, end INTEGER, PRIMARY KEY(event, start_run)) WITHOUT ROWID",
        "CREATE TABLE remediations (id INTEGER PRIMARY KEY, run_id TEXT NOT NULL, scope INTEGER"
        " NOT NULL, event INTEGER, ts INTEGER NOT NULL, resource TEXT NOT NULL, action TEXT NOT"
        " NULL, status TEXT NOT NULL)",
    ),
}


class HistoryError(KspecError):
    """The history database cannot be opened or written (path, permissions, newer schema)."""


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
    """Whose history: a spec name on one cluster (uid wins over server URL when known)."""

    spec_name: str
    server: str = ""
    uid: str = ""

    @property
    def cluster(self) -> str:
        return f"uid:{self.uid}" if self.uid else f"server:{self.server}"


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

    @property
    def flapping(self) -> bool:
        """Came and went at least twice in the retained history."""
        return self.episodes >= 3

    def to_json(self) -> dict[str, Any]:
        return {"spec": self.spec_name, "cluster": self.cluster, "item": self.key,
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


class HistoryStore:
    """The SQLite history at ``path``: open, migrate, read baselines, append runs, prune."""

    def __init__(self, path: Path, *, key: bytes | None = None,
                 clock: Callable[[], float] = time.time, busy_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.key = key
        self.clock = clock
        conn: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=busy_timeout, isolation_level=None)
            self.conn = conn
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._migrate()
        except BaseException as e:
            if conn is not None:
                conn.close()
            if not isinstance(e, OSError | sqlite3.Error):
                raise
            raise HistoryError(f"{self.path}: cannot open the history database ({e}); check "
                               "the path and its permissions, or run with --kspec-no-history"
                               ) from e

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``; rolled back on any error."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def _migrate(self) -> None:
        """Apply forward migrations; a reader of an up-to-date file takes no write lock."""
        (version,) = self.conn.execute("PRAGMA user_version").fetchone()
        if version == SCHEMA_VERSION:
            return
        with self.transaction() as conn:
            (version,) = conn.execute("PRAGMA user_version").fetchone()
            if version > SCHEMA_VERSION:
                raise HistoryError(f"{self.path}: written by a newer pytest-kspec (schema "
                                   f"{version}, this one reads {SCHEMA_VERSION}); upgrade it")
            for step in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[step]:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {step}")

    # -- reading ----------------------------------------------------------------------------

    def _scope_id(self, scope: Scope, *, create: bool = False) -> int | None:
        row = self.conn.execute("SELECT id FROM scopes WHERE spec_name = ? AND cluster = ?",
                                (scope.spec_name, scope.cluster)).fetchone()
        if row is not None:
            return int(row[0])
        if not create:
            return None
        cur = self.conn.execute(
            "INSERT INTO scopes(spec_name, cluster, server, uid) VALUES (?, ?, ?, ?)",
            (scope.spec_name, scope.cluster, scope.server, scope.uid))
        return int(cur.lastrowid or 0)

    def _node_id(self, key: str) -> int:
        row = self.conn.execute("SELECT id FROM nodes WHERE key = ?", (key,)).fetchone()
        if row is not None:
            return int(row[0])
        return int(self.conn.execute("INSERT INTO nodes(key) VALUES (?)", (key,)).lastrowid or 0)

    def baseline(self, scope: Scope) -> Baseline:
        """The previous run of ``scope``: objects ever seen present, drift active in it."""
        sid = self._scope_id(scope)
        if sid is None:
            return Baseline()
        last = self.conn.execute("SELECT id, run_id FROM runs WHERE scope = ? ORDER BY id DESC "
                                 "LIMIT 1", (sid,)).fetchone()
        if last is None:
            return Baseline()
        present = frozenset(r[0] for r in self.conn.execute(
            "SELECT n.key FROM present p JOIN nodes n ON n.id = p.node WHERE p.scope = ?",
            (sid,)))
        active: dict[str, ActiveEvent] = {}
        for row in self.conn.execute(
                "SELECT e.fingerprint, n.key, e.type, e.resource, e.drift, e.severity, "
                "e.message, ep.start, (SELECT COUNT(*) FROM episodes x WHERE x.event = e.id) "
                "FROM events e JOIN nodes n ON n.id = e.node JOIN episodes ep ON "
                "ep.event = e.id AND ep.end IS NULL WHERE e.scope = ?", (sid,)):
            active[row[0]] = ActiveEvent(row[0], row[1], row[2], row[3], row[4], row[5],
                                         row[6], float(row[7]), int(row[8]))
        return Baseline(str(last[1]), present, active)

    def points(self, scope: Scope, limit: int = 500) -> list[RunPoint]:
        """The scope's last ``limit`` runs, oldest first."""
        sid = self._scope_id(scope)
        if sid is None:
            return []
        rows = self.conn.execute(
            "SELECT run_id, finished, passed, failed, error FROM runs WHERE scope = ? "
            "ORDER BY id DESC LIMIT ?", (sid, limit)).fetchall()
        return [RunPoint(str(r[0]), float(r[1]), int(r[2]), int(r[3]), int(r[4]))
                for r in reversed(rows)]

    def trend(self, scope: Scope, current: RunPoint | None = None) -> Trend:
        """The scope's trend, with ``current`` (a run not appended yet) as the last point."""
        points = [p for p in self.points(scope) if current is None or p.run_id != current.run_id]
        return Trend(tuple([*points, current] if current else points))

    def outcomes_at(self, run_id: str) -> dict[str, str]:
        """Every item's status in run ``run_id``, rebuilt from its keyframe and the deltas."""
        row = self.conn.execute("SELECT id, scope, base FROM runs WHERE run_id = ?",
                                (run_id,)).fetchone()
        if row is None:
            raise HistoryError(f"no run {run_id!r} in {self.path}")
        rid, sid, base = row
        state: dict[str, int] = {}
        for key, status in self.conn.execute(
                "SELECT n.key, o.status FROM runs r JOIN outcomes o ON o.run = r.id JOIN nodes n"
                " ON n.id = o.node WHERE r.scope = ? AND r.id BETWEEN ? AND ? ORDER BY r.id",
                (sid, base, rid)):
            state[key] = int(status)
        return {k: STATUS_NAME[v] for k, v in sorted(state.items()) if v}

    def runs(self, *, since: float | None = None) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT r.run_id, s.spec_name, s.cluster, r.source, r.started, r.finished, r.passed,"
            " r.failed, r.error, r.skipped FROM runs r JOIN scopes s ON s.id = r.scope WHERE"
            " r.finished >= ? ORDER BY r.id", (since or 0,)).fetchall()
        return [{"run": r[0], "spec": r[1], "cluster": r[2], "source": r[3],
                 "started": iso(r[4]), "finished": iso(r[5]), "passed": r[6], "failed": r[7],
                 "error": r[8], "skipped": r[9]} for r in rows]

    def events(self, *, resource: str | None = None, type: str | None = None,
               since: float | None = None) -> list[EventRow]:
        """Drift events (one per fingerprint) seen since ``since``, newest first."""
        sql = ("SELECT s.spec_name, s.cluster, n.key, e.type, e.resource, e.drift, e.severity,"
               " e.message, e.first_seen, e.last_seen, EXISTS(SELECT 1 FROM episodes o WHERE"
               " o.event = e.id AND o.end IS NULL), (SELECT COUNT(*) FROM episodes x WHERE"
               " x.event = e.id), (SELECT ep.end - ep.start FROM episodes ep WHERE"
               " ep.event = e.id AND ep.end IS NOT NULL ORDER BY ep.start_run DESC LIMIT 1)"
               " FROM events e JOIN scopes s ON s.id = e.scope JOIN nodes n ON n.id = e.node"
               " WHERE e.last_seen >= ?")
        args: list[Any] = [since or 0]
        if resource:
            sql += " AND lower(e.resource) LIKE ?"
            args.append(resource.lower() + "%" if resource.count("/") else f"%/{resource}%")
        if type:
            sql += " AND e.type = ?"
            args.append(type)
        sql += " ORDER BY e.last_seen DESC, e.resource"
        return [EventRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], float(r[8]),
                         float(r[9]), bool(r[10]), int(r[11]),
                         float(r[12]) if r[12] is not None else None)
                for r in self.conn.execute(sql, args)]

    def verify(self) -> audit.Verification:
        return audit.verify(self.conn, self.key)

    def integrity(self) -> str:
        return str(self.conn.execute("PRAGMA integrity_check").fetchone()[0])

    # -- writing ----------------------------------------------------------------------------

    def append(self, run: RunInput) -> None:
        """Append ``run`` in one transaction (with its audit records)."""
        try:
            with self.transaction():
                self._append(run)
        except sqlite3.Error as e:
            raise HistoryError(f"{self.path}: could not record run {run.run_id} ({e})") from e

    def _append(self, run: RunInput) -> None:
        conn = self.conn
        sid = self._scope_id(run.scope, create=True)
        assert sid is not None
        spec = conn.execute("SELECT id FROM specs WHERE version = ? AND hash = ?",
                            (run.spec_version, run.spec_hash)).fetchone()
        spec_id = int(spec[0]) if spec else int(conn.execute(
            "INSERT INTO specs(version, hash) VALUES (?, ?)",
            (run.spec_version, run.spec_hash)).lastrowid or 0)
        prev = conn.execute("SELECT id, base, passed, failed, error, skipped FROM runs WHERE "
                            "scope = ? ORDER BY id DESC LIMIT 1", (sid,)).fetchone()
        counts = run.counts()
        started, finished = int(run.started), int(run.finished)
        cur = conn.execute(
            "INSERT INTO runs(run_id, scope, spec, source, started, finished, passed, failed,"
            " error, skipped, base) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
            (run.run_id, sid, spec_id, run.source, started, finished, counts["passed"],
             counts["failed"], counts["error"], counts["skipped"]))
        rid = int(cur.lastrowid or 0)
        keyframe = prev is None or rid - int(prev[1]) >= KEYFRAME_EVERY
        conn.execute("UPDATE runs SET base = ? WHERE id = ?", (rid if keyframe else prev[1], rid))
        nodes = {item.key: self._node_id(item.key) for item in run.items}
        self._outcomes(sid, rid, nodes, run.items, keyframe)
        appeared: list[list[str]] = []
        resolved: list[str] = []
        active_fps = self._events(sid, rid, finished, nodes, run, appeared, resolved)
        tally = [counts["passed"], counts["failed"], counts["error"], counts["skipped"]]
        if prev is not None and not appeared and not resolved and list(prev[2:]) == tally:
            return  # nothing changed since the previous run's record: persisting drift is
            # covered by the record that saw it appear (and its active-set digest)
        # One audit record per run that changed something: the drift that appeared
        # ([item, resource, drift, severity]), the fingerprints that were resolved, counts
        # (passed, failed, error, skipped) and a digest of every drift still active.
        audit.AuditLog(conn, self.key).append("run", finished, {
            "run": run.run_id, "scope": hashlib.sha256(
                f"{run.scope.spec_name}\0{run.scope.cluster}".encode()).hexdigest()[:12],
            "spec": f"{run.spec_version}@{run.spec_hash[:12]}", "started": started,
            "counts": tally, "active": len(active_fps), "appeared": appeared,
            "resolved": resolved,
            "digest": hashlib.sha256("\n".join(sorted(active_fps)).encode()).hexdigest()[:16]})

    def _outcomes(self, sid: int, rid: int, nodes: Mapping[str, int],
                  items: Sequence[ItemResult], keyframe: bool) -> None:
        """Write the items whose status changed since the scope's previous run (0 = gone),
        or all of them on a keyframe."""
        conn = self.conn
        current = {int(n): int(s) for n, s in conn.execute(
            "SELECT node, status FROM current WHERE scope = ?", (sid,))}
        new = {nodes[i.key]: STATUS.get(i.status, STATUS["error"]) for i in items}
        rows: list[tuple[int, int, int]] = []
        for node in set(current) | set(new):
            status = new.get(node, 0)
            changed = status != current.get(node, 0)
            if (keyframe and status) or (not keyframe and changed):
                rows.append((rid, node, status))
        conn.executemany("INSERT INTO outcomes(run, node, status) VALUES (?, ?, ?)", rows)
        conn.execute("DELETE FROM current WHERE scope = ?", (sid,))
        conn.executemany("INSERT INTO current(scope, node, status) VALUES (?, ?, ?)",
                         [(sid, n, s) for n, s in new.items()])

    def _events(self, sid: int, rid: int, now: int, nodes: Mapping[str, int], run: RunInput,
                appeared: list[list[str]], resolved: list[str]) -> set[str]:
        conn = self.conn
        begun = int(run.started)  # a drift's first_seen: the start of the run that saw it
        judged = {i.key for i in run.items if i.status in ("passed", "failed", "waived")}
        seen: dict[str, tuple[ItemResult, Mapping[str, Any]]] = {}
        for item in run.items:
            if item.key.startswith("policy::") and item.status == "passed":
                self._present(sid, nodes[item.key], now)
            for event in item.events:
                if event.get("drift") == "resolved":
                    continue
                if event.get("drift") == "modified":
                    self._present(sid, nodes[item.key], now)
                seen[fingerprint(item.key, str(event.get("resource")))] = (item, event)
        active = {str(r[0]): (int(r[1]), str(r[2]), str(r[3]), int(r[4])) for r in conn.execute(
            "SELECT e.fingerprint, e.id, n.key, e.resource, ep.start FROM events e JOIN nodes n "
            "ON n.id = e.node JOIN episodes ep ON ep.event = e.id AND ep.end IS NULL "
            "WHERE e.scope = ?", (sid,))}
        for fp, (eid, key, _resource, _start) in sorted(active.items()):
            if fp not in seen and key in judged:
                conn.execute("UPDATE episodes SET end = ? WHERE event = ? AND end IS NULL",
                             (now, eid))
                resolved.append(fp)
        for fp, (item, event) in sorted(seen.items()):
            fields = (str(event.get("drift", "")), str(event.get("severity", "")),
                      str(event.get("message", ""))[:500])
            row = conn.execute("SELECT id FROM events WHERE scope = ? AND fingerprint = ?",
                               (sid, fp)).fetchone()
            if row is None:
                eid = int(conn.execute(
                    "INSERT INTO events(scope, fingerprint, node, type, resource, drift, "
                    "severity, message, first_seen, last_seen, last_run) VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (sid, fp, nodes[item.key], str(event.get("type", "")),
                     str(event.get("resource", "")), *fields, begun, now, rid)).lastrowid or 0)
            else:
                eid = int(row[0])
                conn.execute("UPDATE events SET drift = ?, severity = ?, message = ?, "
                             "last_seen = ?, last_run = ? WHERE id = ?", (*fields, now, rid, eid))
            if fp not in active:
                conn.execute("INSERT INTO episodes(event, start, end, start_run) VALUES "
                             "(?, ?, NULL, ?)", (eid, begun, rid))
                appeared.append([item.key, str(event.get("resource", "")), *fields[:2]])
        return set(seen) | {fp for fp, v in active.items() if fp not in seen and
                            v[1] not in judged}

    def _present(self, sid: int, node: int, now: int) -> None:
        self.conn.execute("INSERT INTO present(scope, node, last_seen) VALUES (?, ?, ?) ON "
                          "CONFLICT(scope, node) DO UPDATE SET last_seen = excluded.last_seen",
                          (sid, node, now))

    def record_remediation(self, run_id: str, scope: Scope,
                           attempt: Mapping[str, Any]) -> None:
        """Record one remediation attempt at once, in its own transaction: what a run changed
        in the cluster is on record even if the run is killed before it ends."""
        ts = attempt.get("timestamp")
        when = int(parse_iso(ts)) if isinstance(ts, str) and ts.endswith("Z") else int(
            self.clock())
        resource = str(attempt.get("resource", ""))
        key = "::".join(str(attempt.get("node_id", "")).split("::")[-2:])
        try:
            with self.transaction() as conn:
                sid = self._scope_id(scope, create=True)
                row = conn.execute("SELECT id FROM events WHERE scope = ? AND fingerprint = ?",
                                   (sid, fingerprint(key, resource))).fetchone()
                conn.execute(
                    "INSERT INTO remediations(run_id, scope, event, ts, resource, action, status)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (run_id, sid, row[0] if row else None, when, resource,
                     str(attempt.get("action", "")), str(attempt.get("status", ""))))
                body = {k: v for k, v in attempt.items() if v not in (None, {}, [], "")}
                audit.AuditLog(conn, self.key).append("remediation", when,
                                                      {**body, "run": run_id})
        except sqlite3.Error as e:
            raise HistoryError(f"{self.path}: could not record a remediation of {resource} "
                               f"({e})") from e

    def remediations(self, *, since: float | None = None) -> list[dict[str, Any]]:
        return [{"run": r[0], "time": iso(r[1]), "resource": r[2], "action": r[3],
                 "status": r[4]} for r in self.conn.execute(
            "SELECT run_id, ts, resource, action, status FROM remediations WHERE ts >= ? "
            "ORDER BY ts, id", (since or 0,))]

    # -- retention --------------------------------------------------------------------------

    def prune(self, retention: float, *, now: float | None = None) -> PruneResult:
        """Forget runs, episodes and audit records older than ``retention`` seconds."""
        now = self.clock() if now is None else now
        cutoff = int(now - retention)
        with self.transaction() as conn:
            for (sid,) in conn.execute("SELECT DISTINCT scope FROM runs").fetchall():
                self._rebase(int(sid), cutoff)
            old = "SELECT id FROM runs WHERE finished < ?"
            conn.execute(f"DELETE FROM outcomes WHERE run IN ({old})", (cutoff,))
            conn.execute("DELETE FROM remediations WHERE ts < ?", (cutoff,))
            runs = conn.execute("DELETE FROM runs WHERE finished < ?", (cutoff,)).rowcount
            episodes = conn.execute("DELETE FROM episodes WHERE end IS NOT NULL AND end < ?",
                                    (cutoff,)).rowcount
            conn.execute("DELETE FROM events WHERE id NOT IN (SELECT event FROM episodes)")
            conn.execute("DELETE FROM present WHERE last_seen < ?", (cutoff,))
            pruned = audit.AuditLog(conn, self.key).prune(cutoff, int(now))
        return PruneResult(runs, episodes, pruned, self._maybe_vacuum())

    def _rebase(self, sid: int, cutoff: int) -> None:
        """Make the first run kept in scope ``sid`` a keyframe before older ones go."""
        row = self.conn.execute("SELECT id, run_id, base FROM runs WHERE scope = ? AND finished"
                                " >= ? ORDER BY id LIMIT 1", (sid, cutoff)).fetchone()
        if row is None or int(row[0]) == int(row[2]):
            return
        rid, run_id, _ = row
        state = self.outcomes_at(str(run_id))
        self.conn.execute("DELETE FROM outcomes WHERE run = ?", (rid,))
        self.conn.executemany("INSERT INTO outcomes(run, node, status) VALUES (?, ?, ?)",
                              [(rid, self._node_id(k), STATUS[s]) for k, s in state.items()])
        self.conn.execute("UPDATE runs SET base = ? WHERE scope = ? AND id >= ? AND base < ?",
                          (rid, sid, rid, rid))

    def _maybe_vacuum(self) -> bool:
        free = int(self.conn.execute("PRAGMA freelist_count").fetchone()[0])
        pages = int(self.conn.execute("PRAGMA page_count").fetchone()[0])
        if free < VACUUM_MIN_FREE_PAGES or free < VACUUM_MIN_FREE_SHARE * pages:
            return False
        self.conn.execute("VACUUM")
        return True

