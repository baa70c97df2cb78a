"""The history's one schema, as forward migrations run alike on SQLite and PostgreSQL.

Statements are portable SQL; :meth:`pytest_kspec.history.db.Database.ddl` maps the few types
that differ. A migration is a list of statements or functions of the open database, applied in
one transaction with the new version recorded in it, so a database is at one version or the
next, never between. Schema 1 is the original single-file layout; schema 2 gives each cluster
its own audit chain (``chains`` rows hold head and anchor) and scopes a display name; schema 3
adds the alert state and deliveries.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from pytest_kspec.history.audit import LEGACY_CHAIN
from pytest_kspec.history.db import Database, HistoryError

Step = str | Callable[[Database], None]

SCHEMA_VERSION = 3


def _chains_from_meta(db: Database) -> None:
    """Schema 1 kept one chain's head and anchor in ``meta``: make them the legacy chain's."""
    values = {str(k): str(v) for k, v in db.execute(
        "SELECT key, value FROM meta WHERE key LIKE 'audit_%'")}
    head = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    if head is None and not values:
        return
    anchor_seq = int(values.get("audit_anchor_seq", 0))
    anchor_hash = bytes.fromhex(values["audit_anchor_hash"]) if "audit_anchor_hash" in values \
        else bytes(32)
    head_seq = max(int(head[0]) if head else anchor_seq, int(values.get("audit_head_seq", 0)))
    head_hash = bytes(head[1]) if head else anchor_hash
    db.execute("INSERT INTO chains(chain, head_seq, head_hash, anchor_seq, anchor_hash) "
               "VALUES (?, ?, ?, ?, ?)", (LEGACY_CHAIN, head_seq, head_hash, anchor_seq,
                                          anchor_hash))
    db.execute("DELETE FROM meta WHERE key LIKE 'audit_%'")


MIGRATIONS: Mapping[int, Sequence[Step]] = {
    1: (
        "CREATE TABLE audit (seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL, record TEXT NOT NULL,"
        " hash BLOB NOT NULL, signed INTEGER NOT NULL DEFAULT 0)",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
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
        ' INTEGER NOT NULL, "end" INTEGER, PRIMARY KEY(event, start_run)) WITHOUT ROWID',
        "CREATE TABLE remediations (id INTEGER PRIMARY KEY, run_id TEXT NOT NULL, scope INTEGER"
        " NOT NULL, event INTEGER, ts INTEGER NOT NULL, resource TEXT NOT NULL, action TEXT NOT"
        " NULL, status TEXT NOT NULL)",
    ),
    2: (
        "CREATE TABLE chains (chain TEXT PRIMARY KEY, head_seq INTEGER NOT NULL, head_hash BLOB"
        " NOT NULL, anchor_seq INTEGER NOT NULL, anchor_hash BLOB NOT NULL)",
        _chains_from_meta,
        "CREATE TABLE audit_chained (chain TEXT NOT NULL, seq INTEGER NOT NULL, ts INTEGER NOT"
        " NULL, record TEXT NOT NULL, hash BLOB NOT NULL, signed INTEGER NOT NULL DEFAULT 0,"
        " PRIMARY KEY(chain, seq))",
        f"INSERT INTO audit_chained(chain, seq, ts, record, hash, signed) SELECT '{LEGACY_CHAIN}',"
        " seq, ts, record, hash, signed FROM audit",
        "DROP TABLE audit",
        "ALTER TABLE audit_chained RENAME TO audit",
        "ALTER TABLE scopes ADD COLUMN name TEXT NOT NULL DEFAULT ''",
        "CREATE INDEX scopes_cluster ON scopes(cluster)",
        "CREATE INDEX remediations_scope ON remediations(scope, ts)",
    ),
    3: (  # the alert state (``IF NOT EXISTS``: SQLite files that gained these tables on
        # first use, before they were a schema step, keep them)
        "CREATE TABLE IF NOT EXISTS alert_sent (scope INTEGER NOT NULL, channel TEXT NOT NULL,"
        " fingerprint TEXT NOT NULL, key TEXT NOT NULL, resource TEXT NOT NULL, state TEXT NOT"
        " NULL, severity TEXT NOT NULL, at REAL NOT NULL, PRIMARY KEY(scope, channel,"
        " fingerprint)) WITHOUT ROWID",
        "CREATE TABLE IF NOT EXISTS alert_channels (scope INTEGER NOT NULL, channel TEXT NOT"
        " NULL, last_sent REAL NOT NULL, PRIMARY KEY(scope, channel)) WITHOUT ROWID",
        "CREATE TABLE IF NOT EXISTS alert_deliveries (id INTEGER PRIMARY KEY, run_id TEXT NOT"
        " NULL, scope INTEGER NOT NULL, ts REAL NOT NULL, channel TEXT NOT NULL, type TEXT NOT"
        " NULL, result TEXT NOT NULL, new INTEGER NOT NULL, resolved INTEGER NOT NULL, reminder"
        " INTEGER NOT NULL, attempts INTEGER NOT NULL, error TEXT NOT NULL)",
    ),
}


def migrate(db: Database) -> None:
    """Bring ``db`` to :data:`SCHEMA_VERSION`; an up-to-date database takes no write lock."""
    if db.schema_version() == SCHEMA_VERSION:
        return
    with db.transaction():
        db.lock_migrations()
        version = db.schema_version()
        if version > SCHEMA_VERSION:
            raise HistoryError(f"{db.where}: written by a newer pytest-kspec (schema "
                               f"{version}, this one reads {SCHEMA_VERSION}); upgrade it")
        for step in range(version + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[step]:
                if isinstance(statement, str):
                    db.execute(db.ddl(statement))
                else:
                    statement(db)
            db.set_schema_version(step)
