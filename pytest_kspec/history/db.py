"""One connection interface over SQLite and PostgreSQL, so the history's SQL is written once.

The store writes portable SQL: ``?`` placeholders, ``INSERT ... RETURNING id``,
``ON CONFLICT ... DO NOTHING|UPDATE`` and the reserved word ``end`` quoted. What differs is
kept here and nowhere else:

- placeholders (``?`` becomes ``%s`` for psycopg) and DDL types (``INTEGER PRIMARY KEY`` is an
  identity column, ``BLOB`` is ``BYTEA``, ``REAL`` is ``DOUBLE PRECISION``, ``WITHOUT
  ROWID`` is dropped);
- how a write transaction starts: SQLite ``BEGIN IMMEDIATE`` takes the file's one write lock;
  PostgreSQL transactions run side by side and :meth:`Database.lock_row_sql` adds
  ``FOR UPDATE`` so writers of one audit chain queue on that chain's row;
- where the schema version lives (``PRAGMA user_version`` / a row in ``meta``) and how the
  first migration is serialized (the write lock / a transaction-scoped advisory lock);
- maintenance: SQLite VACUUMs after large prunes, PostgreSQL leaves it to autovacuum.

Passwords never appear in :attr:`Database.where` (what messages name): PostgreSQL URLs are
shown without their password.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from pytest_kspec.errors import KspecError

POSTGRES_SCHEMES = ("postgresql", "postgres")
MIGRATION_LOCK = 0x6B73_7065_6301
"""PostgreSQL advisory lock key that serializes concurrent first migrations."""
VACUUM_MIN_FREE_PAGES = 256
VACUUM_MIN_FREE_SHARE = 0.25
"""VACUUM after pruning when at least this many pages (1 MiB at 4 KiB pages) and this share
of the file are free: smaller gaps are reused by the next runs anyway."""


class HistoryError(KspecError):
    """The history database cannot be opened or written (path, URL, permissions, newer
    schema); never shows a password."""


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


def is_postgres_url(target: str | Path) -> bool:
    return isinstance(target, str) and target.split(":", 1)[0].lower() in POSTGRES_SCHEMES


def redact(url: str) -> str:
    """``url`` without a password (``postgresql://kspec:***@db/kspec``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{netloc[-1]}"))


def first_line(e: BaseException) -> str:
    """The first line of an error's text (its type's name when it has none): what a one-line
    message quotes of a driver's error."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


class Database:
    """A connection in autocommit mode; :meth:`transaction` groups writes."""

    dialect = ""
    errors: tuple[type[BaseException], ...] = ()
    """The driver's exceptions (caught and reported as :class:`HistoryError`)."""
    retryable: tuple[type[BaseException], ...] = ()
    """Errors after which the whole transaction can simply be run again (deadlocks)."""
    where = ""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        raise NotImplementedError

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        raise NotImplementedError

    @contextmanager
    def transaction(self) -> Iterator[Database]:
        raise NotImplementedError
        yield self

    def close(self) -> None:
        raise NotImplementedError

    def ddl(self, statement: str) -> str:
        return statement

    def lock_row_sql(self, select: str) -> str:
        """``select`` taking a row lock until the transaction ends (where one is needed)."""
        return select

    def schema_version(self) -> int:
        raise NotImplementedError

    def set_schema_version(self, version: int) -> None:
        raise NotImplementedError

    def lock_migrations(self) -> None:
        """Inside a transaction: wait until no other process is migrating."""

    def maintain(self) -> bool:
        """Give freed space back after a prune when worth it; True when it did."""
        return False

    def integrity(self) -> str:
        """The engine's own check of its files ("ok" when there is none to run)."""
        return "ok"

    def insert(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run an ``INSERT ... RETURNING id`` and return the id."""
        row = self.execute(sql, params).fetchone()
        return int(row[0])

    def one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self.execute(sql, params).fetchone()
        return None if row is None else row[0]


class SQLiteDatabase(Database):
    """A SQLite file in WAL mode (``synchronous=NORMAL``), one writer at a time."""

    dialect = "sqlite"
    errors = (sqlite3.Error, OSError)

    def __init__(self, path: Path, *, busy_timeout: float = 30.0) -> None:
        self.path = path
        self.where = str(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)
        try:
            if self.conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
        except BaseException:
            self.conn.close()
            raise

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        return self.conn.execute(sql, tuple(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.conn.executemany(sql, rows)

    @contextmanager
    def transaction(self) -> Iterator[Database]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()

    def schema_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def set_schema_version(self, version: int) -> None:
        self.conn.execute(f"PRAGMA user_version = {int(version)}")

    def maintain(self) -> bool:
        free = int(self.conn.execute("PRAGMA freelist_count").fetchone()[0])
        pages = int(self.conn.execute("PRAGMA page_count").fetchone()[0])
        if free < VACUUM_MIN_FREE_PAGES or free < VACUUM_MIN_FREE_SHARE * pages:
            return False
        self.conn.execute("VACUUM")
        return True

    def integrity(self) -> str:
        return str(self.conn.execute("PRAGMA integrity_check").fetchone()[0])


_DDL_TYPES = ((re.compile(r"\bINTEGER PRIMARY KEY\b"),
               "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
              (re.compile(r"\bINTEGER\b"), "BIGINT"),
              (re.compile(r"\bBLOB\b"), "BYTEA"),
              (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
              (re.compile(r"\s+WITHOUT ROWID\b"), ""))


class PostgresDatabase(Database):
    """A PostgreSQL database through psycopg 3; writers of different chains run in parallel."""

    dialect = "postgres"

    def __init__(self, url: str, *, password: str | None = None,
                 connect_timeout: float = 10.0) -> None:
        import psycopg  # the SQLite-only path never needs the driver

        self.where = redact(url)
        self.errors = (psycopg.Error,)
        self.retryable = (psycopg.errors.DeadlockDetected,
                          psycopg.errors.SerializationFailure)
        kwargs: dict[str, Any] = {"autocommit": True,
                                  "connect_timeout": max(1, int(connect_timeout)),
                                  "application_name": "pytest-kspec"}
        if password is not None:
            kwargs["password"] = password
        self.conn = psycopg.connect(url, **kwargs)
        self._sql: dict[str, str] = {}

    def _translate(self, sql: str) -> str:
        out = self._sql.get(sql)
        if out is None:
            out = self._sql[sql] = sql.replace("%", "%%").replace("?", "%s")
        return out

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        return self.conn.execute(self._translate(sql), tuple(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            with self.conn.cursor() as cur:
                cur.executemany(self._translate(sql), rows)

    @contextmanager
    def transaction(self) -> Iterator[Database]:
        with self.conn.transaction():
            yield self

    def close(self) -> None:
        self.conn.close()

    def ddl(self, statement: str) -> str:
        for pattern, replacement in _DDL_TYPES:
            statement = pattern.sub(replacement, statement)
        return statement

    def lock_row_sql(self, select: str) -> str:
        return f"{select} FOR UPDATE"

    def schema_version(self) -> int:
        # pg_tables, not to_regclass(): a plain query sees a table another process created
        # while this transaction waited for the migration lock; the catalog cache may not
        if self.one("SELECT COUNT(*) FROM pg_tables WHERE schemaname = current_schema() AND "
                    "tablename = 'meta'") == 0:
            return 0
        value = self.one("SELECT value FROM meta WHERE key = 'schema_version'")
        return int(value) if value is not None else 0

    def set_schema_version(self, version: int) -> None:
        self.execute("INSERT INTO meta(key, value) VALUES ('schema_version', ?) ON CONFLICT(key)"
                     " DO UPDATE SET value = excluded.value", (str(int(version)),))

    def lock_migrations(self) -> None:
        self.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))


def open_database(target: str | Path, *, password: str | None = None,
                  busy_timeout: float = 30.0) -> Database:
    """A SQLite file (a path) or a PostgreSQL database (a ``postgresql://`` URL)."""
    if is_postgres_url(target):
        url = str(target)
        try:
            return PostgresDatabase(url, password=password, connect_timeout=busy_timeout)
        except ImportError as e:
            raise HistoryError(f"{redact(url)}: PostgreSQL history needs psycopg 3 "
                               "(pip install 'psycopg[binary]')") from e
        except Exception as e:
            if type(e).__module__.split(".")[0] != "psycopg":
                raise
            raise HistoryError(f"{redact(url)}: cannot connect to the history database "
                               f"({first_line(e)}); check the URL, the password (passwordEnv or "
                               "passwordFile) and that the server accepts connections") from e
    path = Path(target)
    try:
        return SQLiteDatabase(path, busy_timeout=busy_timeout)
    except (OSError, sqlite3.Error) as e:
        raise HistoryError(f"{path}: cannot open the history database ({e}); check the path "
                           "and its permissions, or run with --kspec-no-history") from e
