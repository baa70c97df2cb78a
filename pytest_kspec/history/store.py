"""Drift history in SQLite or PostgreSQL: runs, item outcomes, drift episodes and the audit trail.

Compact by storing what changed: an item's outcome is written only when it differs from the
previous run of the same scope (a full *keyframe* every :data:`KEYFRAME_EVERY` runs of the
scope and after retention), and a drift event is one row per fingerprint plus one row per
*episode* (a stretch of consecutive runs in which it was present), not one row per run. A
*scope* is a spec name on one cluster (the kube-system namespace uid when readable, else the
server URL), so histories of different specs or clusters never inform each other's
``deleted``/``new-violation`` verdicts.

One code path for both databases (:mod:`pytest_kspec.history.db` holds the few differences).
Each run is one transaction that also holds its audit records. It begins by locking its
cluster's audit chain, so writers of one cluster (many CronJobs, or a CronJob and a person)
queue while other clusters' writers go on in parallel; shared rows (specs, item keys) are
inserted in one global order and a deadlock the server reports anyway is retried. Retention
prunes one cluster at a time, with that cluster's retention.

Crash safety. SQLite: WAL journal, ``synchronous=NORMAL`` (committed runs survive a killed
process; a power loss may roll back the newest commits but never corrupts), ``BEGIN IMMEDIATE``,
a busy timeout so readers and a concurrent writer wait instead of failing. PostgreSQL: a
writer that dies mid-run leaves an aborted transaction the server rolls back.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from pytest_kspec.history import audit
from pytest_kspec.history.db import Database, HistoryError, first_line, open_database
from pytest_kspec.history.records import (
    STATUS,
    STATUS_NAME,
    ActiveEvent,
    Baseline,
    EventRow,
    ItemResult,
    PruneResult,
    RunInput,
    Scope,
    fingerprint,
    iso,
    parse_iso,
)
from pytest_kspec.history.schema import SCHEMA_VERSION, migrate
from pytest_kspec.history.trend import RunPoint, Trend

__all__ = ["KEYFRAME_EVERY", "SCHEMA_VERSION", "HistoryError", "HistoryStore"]

log = logging.getLogger("pytest_kspec.history.store")

KEYFRAME_EVERY = 288
"""A full outcome set every this many runs of a scope (a day at one run every 5 minutes)."""
RETRIES = 5
T = TypeVar("T")


class HistoryStore:
    """The history at ``target`` (a SQLite path or a ``postgresql://`` URL): open, migrate,
    read baselines, append runs, prune."""

    def __init__(self, target: Path | str, *, key: bytes | None = None,
                 clock: Callable[[], float] = time.time, busy_timeout: float = 30.0,
                 password: str | None = None) -> None:
        self.key = key
        self.clock = clock
        self.db: Database = open_database(target, password=password, busy_timeout=busy_timeout)
        self.where = self.db.where
        self._nodes: dict[str, int] | None = None
        self._new_nodes: dict[str, int] = {}
        try:
            migrate(self.db)
        except BaseException as e:
            self.db.close()
            if isinstance(e, self.db.errors):
                raise HistoryError(f"{self.where}: cannot prepare the history database "
                                   f"({first_line(e)})") from e
            raise

    @property
    def dialect(self) -> str:
        return self.db.dialect

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write(self, what: str, work: Callable[[], T]) -> T:
        """Run ``work`` in one transaction, retried when the server broke a deadlock; errors
        become :class:`HistoryError` saying what could not be done."""
        for attempt in range(RETRIES):
            try:
                with self.db.transaction():
                    result = work()
            except self.db.retryable:
                self._new_nodes.clear()
                if attempt == RETRIES - 1:
                    raise HistoryError(f"{self.where}: could not {what}: the database kept "
                                       "reporting conflicts; try again") from None
                time.sleep(0.05 * (attempt + 1))
                continue
            except self.db.errors as e:
                self._new_nodes.clear()
                raise HistoryError(f"{self.where}: could not {what} ({first_line(e)})") from e
            except BaseException:
                self._new_nodes.clear()
                raise
            if self._nodes is not None:
                self._nodes.update(self._new_nodes)
            self._new_nodes.clear()
            return result
        raise AssertionError("unreachable")

    # -- ids ----------------------------------------------------------------------------------

    def scopes(self, cluster: str | None) -> list[tuple[int, str, str, str]]:
        """``(id, spec_name, cluster, name)`` of every scope, or of the cluster given by its
        name or identity."""
        rows = self.db.execute("SELECT id, spec_name, cluster, name FROM scopes ORDER BY id"
                               ).fetchall()
        out = [(int(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in rows]
        if cluster is None or cluster == "all":
            return out
        return [r for r in out if cluster in (r[2], r[3])]

    def scope_named(self, spec_name: str, name: str) -> Scope | None:
        """The latest scope of ``spec_name`` on the cluster called ``name`` (how a run that
        could not reach its cluster, so not learn its identity, still extends its history)."""
        row = self.db.execute("SELECT server, uid, name FROM scopes WHERE spec_name = ? AND "
                              "name = ? ORDER BY id DESC LIMIT 1", (spec_name, name)).fetchone()
        return None if row is None else Scope(spec_name, str(row[0] or ""), str(row[1] or ""),
                                              name=str(row[2] or ""))

    def _scope_id(self, scope: Scope, *, create: bool = False) -> int | None:
        row = self.db.execute("SELECT id, name FROM scopes WHERE spec_name = ? AND cluster = ?",
                              (scope.spec_name, scope.cluster)).fetchone()
        if row is not None:
            if create and scope.name and scope.name != row[1]:
                self.db.execute("UPDATE scopes SET name = ? WHERE id = ?", (scope.name, row[0]))
            return int(row[0])
        if not create:
            return None
        return self.db.insert(
            "INSERT INTO scopes(spec_name, cluster, server, uid, name) VALUES (?, ?, ?, ?, ?)"
            " RETURNING id", (scope.spec_name, scope.cluster, scope.server, scope.uid,
                              scope.name))

    def _node_ids(self, keys: Iterable[str]) -> dict[str, int]:
        """Ids of item keys, inserting new ones in sorted order (one global lock order)."""
        if self._nodes is None:
            self._nodes = {str(k): int(i) for k, i in self.db.execute(
                "SELECT key, id FROM nodes")}
        out: dict[str, int] = {}
        for key in sorted(set(keys)):
            known = self._nodes.get(key) or self._new_nodes.get(key)
            if known is None:
                row = self.db.execute("INSERT INTO nodes(key) VALUES (?) ON CONFLICT(key) DO "
                                      "NOTHING RETURNING id", (key,)).fetchone()
                known = int(row[0]) if row else int(self.db.one(
                    "SELECT id FROM nodes WHERE key = ?", (key,)))
                self._new_nodes[key] = known
            out[key] = known
        return out

    # -- reading ------------------------------------------------------------------------------

    def baseline(self, scope: Scope) -> Baseline:
        """The previous run of ``scope``: objects ever seen present, drift active in it."""
        sid = self._scope_id(scope)
        if sid is None:
            return Baseline()
        last = self.db.execute("SELECT id, run_id FROM runs WHERE scope = ? ORDER BY id DESC "
                               "LIMIT 1", (sid,)).fetchone()
        if last is None:
            return Baseline()
        present = frozenset(str(r[0]) for r in self.db.execute(
            "SELECT n.key FROM present p JOIN nodes n ON n.id = p.node WHERE p.scope = ?",
            (sid,)))
        active: dict[str, ActiveEvent] = {}
        for row in self.db.execute(
                "SELECT e.fingerprint, n.key, e.type, e.resource, e.drift, e.severity, "
                "e.message, ep.start, (SELECT COUNT(*) FROM episodes x WHERE x.event = e.id) "
                "FROM events e JOIN nodes n ON n.id = e.node JOIN episodes ep ON "
                'ep.event = e.id AND ep."end" IS NULL WHERE e.scope = ?', (sid,)):
            active[row[0]] = ActiveEvent(row[0], row[1], row[2], row[3], row[4], row[5],
                                         row[6], float(row[7]), int(row[8]))
        return Baseline(str(last[1]), present, active)

    def points(self, scope: Scope, limit: int = 500) -> list[RunPoint]:
        """The scope's last ``limit`` runs, oldest first."""
        sid = self._scope_id(scope)
        return [] if sid is None else self.recent_points([sid], limit)

    def recent_points(self, sids: Sequence[int], limit: int) -> list[RunPoint]:
        points: list[tuple[int, RunPoint]] = []
        for sid in sids:
            rows = self.db.execute(
                "SELECT id, run_id, finished, passed, failed, error FROM runs WHERE scope = ? "
                "ORDER BY id DESC LIMIT ?", (sid, limit)).fetchall()
            points += [(int(r[0]), RunPoint(str(r[1]), float(r[2]), int(r[3]), int(r[4]),
                                            int(r[5]))) for r in rows]
        points.sort(key=lambda p: (p[1].finished, p[0]))
        return [p for _, p in points[-limit:]]

    def trend(self, scope: Scope, current: RunPoint | None = None) -> Trend:
        """The scope's trend, with ``current`` (a run not appended yet) as the last point."""
        points = [p for p in self.points(scope) if current is None or p.run_id != current.run_id]
        return Trend(tuple([*points, current] if current else points))

    def outcomes_at(self, run_id: str) -> dict[str, str]:
        """Every item's status in run ``run_id``, rebuilt from its keyframe and the deltas."""
        row = self.db.execute("SELECT id, scope, base FROM runs WHERE run_id = ?",
                              (run_id,)).fetchone()
        if row is None:
            raise HistoryError(f"no run {run_id!r} in {self.where}")
        rid, sid, base = row
        state: dict[str, int] = {}
        for key, status in self.db.execute(
                "SELECT n.key, o.status FROM runs r JOIN outcomes o ON o.run = r.id JOIN nodes n"
                " ON n.id = o.node WHERE r.scope = ? AND r.id BETWEEN ? AND ? ORDER BY r.id",
                (sid, base, rid)):
            state[key] = int(status)
        return {k: STATUS_NAME[v] for k, v in sorted(state.items()) if v}

    def runs(self, *, since: float | None = None,
             cluster: str | None = None) -> list[dict[str, Any]]:
        """Runs (oldest first), of every cluster or of ``cluster`` (name or identity)."""
        sids = {s[0] for s in self.scopes(cluster)}
        rows = self.db.execute(
            "SELECT r.run_id, s.spec_name, s.cluster, r.source, r.started, r.finished, r.passed,"
            " r.failed, r.error, r.skipped, s.name, s.id FROM runs r JOIN scopes s ON"
            " s.id = r.scope WHERE r.finished >= ? ORDER BY r.finished, r.id",
            (since or 0,)).fetchall()
        return [{"run": r[0], "spec": r[1], "cluster": r[2], "cluster_name": r[10],
                 "source": r[3], "started": iso(r[4]), "finished": iso(r[5]), "passed": r[6],
                 "failed": r[7], "error": r[8], "skipped": r[9]} for r in rows if r[11] in sids]

    def events(self, *, resource: str | None = None, type: str | None = None,
               since: float | None = None, cluster: str | None = None) -> list[EventRow]:
        """Drift events (one per fingerprint) seen since ``since``, newest first."""
        sql = ("SELECT s.spec_name, s.cluster, n.key, e.type, e.resource, e.drift, e.severity,"
               " e.message, e.first_seen, e.last_seen, EXISTS(SELECT 1 FROM episodes o WHERE"
               ' o.event = e.id AND o."end" IS NULL), (SELECT COUNT(*) FROM episodes x WHERE'
               ' x.event = e.id), (SELECT ep."end" - ep.start FROM episodes ep WHERE'
               ' ep.event = e.id AND ep."end" IS NOT NULL ORDER BY ep.start_run DESC LIMIT 1),'
               " s.name, s.id FROM events e JOIN scopes s ON s.id = e.scope JOIN nodes n ON"
               " n.id = e.node WHERE e.last_seen >= ?")
        args: list[Any] = [since or 0]
        if resource:
            sql += " AND lower(e.resource) LIKE ?"
            args.append(resource.lower() + "%" if resource.count("/") else f"%/{resource}%")
        if type:
            sql += " AND e.type = ?"
            args.append(type)
        sql += " ORDER BY e.last_seen DESC, e.resource"
        sids = {s[0] for s in self.scopes(cluster)}
        return [EventRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], float(r[8]),
                         float(r[9]), bool(r[10]), int(r[11]),
                         float(r[12]) if r[12] is not None else None, str(r[13]))
                for r in self.db.execute(sql, args) if r[14] in sids]

    def remediations(self, *, since: float | None = None,
                     cluster: str | None = None) -> list[dict[str, Any]]:
        sids = {s[0] for s in self.scopes(cluster)}
        return [{"run": r[0], "time": iso(r[1]), "resource": r[2], "action": r[3],
                 "status": r[4]} for r in self.db.execute(
            "SELECT run_id, ts, resource, action, status, scope FROM remediations WHERE ts >= ?"
            " ORDER BY ts, id", (since or 0,)) if r[5] in sids]

    def clusters(self) -> list[tuple[str, str]]:
        """``(identity, name)`` of every cluster with history."""
        seen: dict[str, str] = {}
        for _, _, cluster, name in self.scopes(None):
            seen[cluster] = name or seen.get(cluster, "")
        return sorted(seen.items(), key=lambda c: (c[1] or c[0], c[0]))

    def verify(self, cluster: str | None = None) -> audit.Verification:
        """Verify every audit chain, or the chain of ``cluster`` (name or identity)."""
        if cluster is None or cluster == "all":
            return audit.verify(self.db, self.key)
        chains = sorted({s[2] for s in self.scopes(cluster)})
        if not chains:
            raise HistoryError(f"{self.where}: no cluster {cluster!r} in the history")
        checked = 0
        for chain in chains:
            result = audit.verify(self.db, self.key, only=chain)
            checked += result.checked
            if not result.ok:
                return result
        return audit.Verification(True, checked, chains=len(chains))

    def integrity(self) -> str:
        """"ok", or the first problem the engine or the history's own cross-checks find."""
        engine = self.db.integrity()
        if engine != "ok":
            return engine
        checks = (
            ("outcomes of runs that are gone",
             "SELECT COUNT(*) FROM outcomes o WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE"
             " r.id = o.run)"),
            ("episodes of events that are gone",
             "SELECT COUNT(*) FROM episodes p WHERE NOT EXISTS (SELECT 1 FROM events e WHERE"
             " e.id = p.event)"),
            ("audit records past their chain's head",
             "SELECT COUNT(*) FROM audit a JOIN chains c ON c.chain = a.chain WHERE"
             " a.seq > c.head_seq"),
            ("runs whose keyframe is missing",
             "SELECT COUNT(*) FROM runs r WHERE NOT EXISTS (SELECT 1 FROM runs b WHERE"
             " b.id = r.base AND b.scope = r.scope)"),
        )
        for what, sql in checks:
            count = int(self.db.one(sql))
            if count:
                return f"{count} {what}"
        return "ok"

    # -- writing ------------------------------------------------------------------------------

    def append(self, run: RunInput) -> None:
        """Append ``run`` in one transaction (with its audit records)."""
        self.write(f"record run {run.run_id}", lambda: self._append(run))

    def _append(self, run: RunInput) -> None:
        db = self.db
        trail = audit.AuditLog(db, run.scope.cluster, self.key)
        trail.lock()  # first: one writer per cluster from here to COMMIT
        sid = self._scope_id(run.scope, create=True)
        assert sid is not None
        spec_id = db.one("SELECT id FROM specs WHERE version = ? AND hash = ?",
                         (run.spec_version, run.spec_hash))
        if spec_id is None:
            row = db.execute("INSERT INTO specs(version, hash) VALUES (?, ?) ON CONFLICT"
                             "(version, hash) DO NOTHING RETURNING id",
                             (run.spec_version, run.spec_hash)).fetchone()
            spec_id = row[0] if row else db.one(
                "SELECT id FROM specs WHERE version = ? AND hash = ?",
                (run.spec_version, run.spec_hash))
        prev = db.execute("SELECT id, base, passed, failed, error, skipped FROM runs WHERE "
                          "scope = ? ORDER BY id DESC LIMIT 1", (sid,)).fetchone()
        since_keyframe = 0 if prev is None else int(db.one(
            "SELECT COUNT(*) FROM runs WHERE scope = ? AND id >= ?", (sid, prev[1])))
        counts = run.counts()
        started, finished = int(run.started), int(run.finished)
        rid = db.insert(
            "INSERT INTO runs(run_id, scope, spec, source, started, finished, passed, failed,"
            " error, skipped, base) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0) RETURNING id",
            (run.run_id, sid, spec_id, run.source, started, finished, counts["passed"],
             counts["failed"], counts["error"], counts["skipped"]))
        keyframe = prev is None or since_keyframe >= KEYFRAME_EVERY
        db.execute("UPDATE runs SET base = ? WHERE id = ?", (rid if keyframe else prev[1], rid))
        nodes = self._node_ids(item.key for item in run.items)
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
        trail.append("run", finished, {
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
        db = self.db
        current = {int(n): int(s) for n, s in db.execute(
            "SELECT node, status FROM current WHERE scope = ?", (sid,))}
        new = {nodes[i.key]: STATUS.get(i.status, STATUS["error"]) for i in items}
        rows: list[tuple[int, int, int]] = []
        for node in sorted(set(current) | set(new)):
            status = new.get(node, 0)
            changed = status != current.get(node, 0)
            if (keyframe and status) or (not keyframe and changed):
                rows.append((rid, node, status))
        db.executemany("INSERT INTO outcomes(run, node, status) VALUES (?, ?, ?)", rows)
        if current != new:
            db.execute("DELETE FROM current WHERE scope = ?", (sid,))
            db.executemany("INSERT INTO current(scope, node, status) VALUES (?, ?, ?)",
                           [(sid, n, s) for n, s in sorted(new.items())])

    def _events(self, sid: int, rid: int, now: int, nodes: Mapping[str, int], run: RunInput,
                appeared: list[list[str]], resolved: list[str]) -> set[str]:
        db = self.db
        begun = int(run.started)  # a drift's first_seen: the start of the run that saw it
        judged = {i.key for i in run.items if i.status in ("passed", "failed", "waived")}
        seen: dict[str, tuple[ItemResult, Mapping[str, Any]]] = {}
        present: set[int] = set()
        for item in run.items:
            if item.key.startswith("policy::") and item.status == "passed":
                present.add(nodes[item.key])
            for event in item.events:
                if event.get("drift") == "resolved":
                    continue
                if event.get("drift") == "modified":
                    present.add(nodes[item.key])
                seen[fingerprint(item.key, str(event.get("resource")))] = (item, event)
        db.executemany("INSERT INTO present(scope, node, last_seen) VALUES (?, ?, ?) ON "
                       "CONFLICT(scope, node) DO UPDATE SET last_seen = excluded.last_seen",
                       [(sid, node, now) for node in sorted(present)])
        active = {str(r[0]): (int(r[1]), str(r[2]), str(r[3]), int(r[4])) for r in db.execute(
            "SELECT e.fingerprint, e.id, n.key, e.resource, ep.start FROM events e JOIN nodes n "
            'ON n.id = e.node JOIN episodes ep ON ep.event = e.id AND ep."end" IS NULL '
            "WHERE e.scope = ?", (sid,))}
        for fp, (eid, key, _resource, _start) in sorted(active.items()):
            if fp not in seen and key in judged:
                db.execute('UPDATE episodes SET "end" = ? WHERE event = ? AND "end" IS NULL',
                           (now, eid))
                resolved.append(fp)
        for fp, (item, event) in sorted(seen.items()):
            fields = (str(event.get("drift", "")), str(event.get("severity", "")),
                      str(event.get("message", ""))[:500])
            known = db.one("SELECT id FROM events WHERE scope = ? AND fingerprint = ?",
                           (sid, fp))
            if known is None:
                eid = db.insert(
                    "INSERT INTO events(scope, fingerprint, node, type, resource, drift, "
                    "severity, message, first_seen, last_seen, last_run) VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                    (sid, fp, nodes[item.key], str(event.get("type", "")),
                     str(event.get("resource", "")), *fields, begun, now, rid))
            else:
                eid = int(known)
                db.execute("UPDATE events SET drift = ?, severity = ?, message = ?, "
                           "last_seen = ?, last_run = ? WHERE id = ?", (*fields, now, rid, eid))
            if fp not in active:
                db.execute('INSERT INTO episodes(event, start, "end", start_run) VALUES '
                           "(?, ?, NULL, ?)", (eid, begun, rid))
                appeared.append([item.key, str(event.get("resource", "")), *fields[:2]])
        return set(seen) | {fp for fp, v in active.items() if fp not in seen and
                            v[1] not in judged}

    def record_remediation(self, run_id: str, scope: Scope,
                           attempt: Mapping[str, Any]) -> None:
        """Record one remediation attempt at once, in its own transaction: what a run changed
        in the cluster is on record even if the run is killed before it ends."""
        ts = attempt.get("timestamp")
        when = int(parse_iso(ts)) if isinstance(ts, str) and ts.endswith("Z") else int(
            self.clock())
        resource = str(attempt.get("resource", ""))
        key = "::".join(str(attempt.get("node_id", "")).split("::")[-2:])

        def work() -> None:
            trail = audit.AuditLog(self.db, scope.cluster, self.key)
            trail.lock()
            sid = self._scope_id(scope, create=True)
            event = self.db.one("SELECT id FROM events WHERE scope = ? AND fingerprint = ?",
                                (sid, fingerprint(key, resource)))
            self.db.execute(
                "INSERT INTO remediations(run_id, scope, event, ts, resource, action, status)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (run_id, sid, event, when, resource, str(attempt.get("action", "")),
                 str(attempt.get("status", ""))))
            body = {k: v for k, v in attempt.items() if v not in (None, {}, [], "")}
            trail.append("remediation", when, {**body, "run": run_id})

        self.write(f"record a remediation of {resource}", work)

    # -- retention ----------------------------------------------------------------------------

    def prune(self, retention: float, *, now: float | None = None,
              cluster: str | None = None) -> PruneResult:
        """Forget runs, episodes and audit records older than ``retention`` seconds, of
        ``cluster`` (its identity; a CronJob prunes its own cluster) or of every cluster."""
        now = self.clock() if now is None else now
        cutoff = int(now - retention)
        if cluster is not None:
            chains = [cluster]
        else:
            chains = audit.chains(self.db)
            chains += sorted({s[2] for s in self.scopes(None)} - set(chains))
        totals = [0, 0, 0]
        for chain in sorted(chains):
            counts = self.write("apply retention", partial(self._prune, chain, cutoff, now))
            totals = [a + b for a, b in zip(totals, counts, strict=True)]
        return PruneResult(totals[0], totals[1], totals[2],
                           vacuumed=self.db.maintain() if totals[0] else False)

    def _prune(self, chain: str, cutoff: int, now: float) -> list[int]:
        db = self.db
        trail = audit.AuditLog(db, chain, self.key)
        trail.lock()
        sids = [s[0] for s in self.scopes(chain) if s[2] == chain]
        runs = episodes = 0
        for sid in sids:
            self._rebase(sid, cutoff)
            old = "SELECT id FROM runs WHERE scope = ? AND finished < ?"
            db.execute(f"DELETE FROM outcomes WHERE run IN ({old})", (sid, cutoff))
            db.execute("DELETE FROM remediations WHERE scope = ? AND ts < ?", (sid, cutoff))
            runs += db.execute("DELETE FROM runs WHERE scope = ? AND finished < ?",
                               (sid, cutoff)).rowcount
            episodes += db.execute(
                'DELETE FROM episodes WHERE "end" IS NOT NULL AND "end" < ? AND event IN '
                "(SELECT id FROM events WHERE scope = ?)", (cutoff, sid)).rowcount
            db.execute("DELETE FROM events WHERE scope = ? AND NOT EXISTS (SELECT 1 FROM "
                       "episodes p WHERE p.event = events.id)", (sid,))
            db.execute("DELETE FROM present WHERE scope = ? AND last_seen < ?", (sid, cutoff))
        pruned = trail.prune(cutoff, int(now))
        return [runs, episodes, pruned]

    def _rebase(self, sid: int, cutoff: int) -> None:
        """Make the first run kept in scope ``sid`` a keyframe before older ones go."""
        row = self.db.execute("SELECT id, run_id, base FROM runs WHERE scope = ? AND finished"
                              " >= ? ORDER BY id LIMIT 1", (sid, cutoff)).fetchone()
        if row is None or int(row[0]) == int(row[2]):
            return
        rid, run_id, _ = row
        state = self.outcomes_at(str(run_id))
        nodes = self._node_ids(state)
        self.db.execute("DELETE FROM outcomes WHERE run = ?", (rid,))
        self.db.executemany("INSERT INTO outcomes(run, node, status) VALUES (?, ?, ?)",
                            [(rid, nodes[k], STATUS[s]) for k, s in state.items()])
        self.db.execute("UPDATE runs SET base = ? WHERE scope = ? AND id >= ? AND base < ?",
                        (rid, sid, rid, rid))
