"""Tamper-evident audit trail: hash-chained records over canonical JSON, optionally HMAC-signed.

Each record is the canonical JSON of ``{"seq", "kind", "ts", ...body}`` (sorted keys, no
spaces, UTF-8) and its hash is ``SHA-256(previous hash || record)``, or
``HMAC-SHA-256(key, previous hash || record)`` when ``KSPEC_AUDIT_KEY`` is set. Editing a
record breaks its hash, removing one leaves a gap in ``seq`` (or a head behind the recorded
one), swapping two puts a record at another record's ``seq``; :func:`verify` names the first
such record. Without a key anyone who can write the file can recompute the whole chain; with a
key they cannot.

Retention removes the oldest records: the hash of the last removed one becomes the *anchor*
(kept in ``meta``) and a ``prune`` record, itself chained, states it, so removing more records
afterwards is still caught.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

KEY_ENV = "KSPEC_AUDIT_KEY"
GENESIS = bytes(32)

DDL = (
    "CREATE TABLE audit (seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL, record TEXT NOT NULL,"
    " hash BLOB NOT NULL, signed INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)


def canonical(obj: Any) -> bytes:
    """Canonical JSON bytes: sorted keys, no insignificant spaces, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str).encode("utf-8")


def audit_key(environ: Mapping[str, str] | None = None) -> bytes | None:
    """The HMAC key from ``KSPEC_AUDIT_KEY`` (None when unset or empty)."""
    value = (os.environ if environ is None else environ).get(KEY_ENV, "")
    return value.encode("utf-8") if value else None


def chain_hash(prev: bytes, record: bytes, key: bytes | None) -> bytes:
    data = prev + record
    if key is not None:
        return hmac.new(key, data, hashlib.sha256).digest()
    return hashlib.sha256(data).digest()


def _meta(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def _set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE "
                 "SET value = excluded.value", (key, value))


def _anchor(conn: sqlite3.Connection) -> tuple[int, bytes]:
    seq = _meta(conn, "audit_anchor_seq")
    digest = _meta(conn, "audit_anchor_hash")
    if seq is None or digest is None:
        return 0, GENESIS
    return int(seq), bytes.fromhex(digest)


class AuditLog:
    """Appends records inside the caller's transaction (the run's), so a run and its audit
    records are committed together or not at all."""

    def __init__(self, conn: sqlite3.Connection, key: bytes | None = None) -> None:
        self.conn = conn
        self.key = key

    def head(self) -> tuple[int, bytes]:
        row = self.conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        return (int(row[0]), bytes(row[1])) if row else _anchor(self.conn)

    def append(self, kind: str, ts: int, body: Mapping[str, Any]) -> int:
        """Append one record of ``kind`` at epoch second ``ts``; returns its ``seq``."""
        seq, prev = self.head()
        seq += 1
        record = canonical({**body, "seq": seq, "kind": kind, "ts": ts})
        digest = chain_hash(prev, record, self.key)
        self.conn.execute("INSERT INTO audit(seq, ts, record, hash, signed) VALUES (?, ?, ?, ?, ?)",
                          (seq, ts, record.decode("utf-8"), digest, int(self.key is not None)))
        _set_meta(self.conn, "audit_head_seq", str(seq))
        return seq

    def prune(self, cutoff: int, now: int) -> int:
        """Remove records older than ``cutoff`` (never the newest); returns how many."""
        head_seq, _ = self.head()
        row = self.conn.execute("SELECT MAX(seq) FROM audit WHERE ts < ? AND seq < ?",
                                (cutoff, head_seq)).fetchone()
        last = row[0] if row else None
        if last is None:
            return 0
        (digest,) = self.conn.execute("SELECT hash FROM audit WHERE seq = ?", (last,)).fetchone()
        removed = self.conn.execute("DELETE FROM audit WHERE seq <= ?", (last,)).rowcount
        _set_meta(self.conn, "audit_anchor_seq", str(last))
        _set_meta(self.conn, "audit_anchor_hash", bytes(digest).hex())
        self.append("prune", now, {"pruned_through": last, "anchor": bytes(digest).hex()})
        return int(removed)


@dataclass(frozen=True)
class Verification:
    """The result of :func:`verify`: ``ok``, records checked, and the first problem."""

    ok: bool
    checked: int
    problem: str = ""
    seq: int | None = None


def verify(conn: sqlite3.Connection, key: bytes | None = None) -> Verification:
    """Walk the chain in ``seq`` order and name the first edited, removed or reordered record."""
    anchor_seq, prev = _anchor(conn)
    rows = conn.execute("SELECT seq, record, hash, signed FROM audit ORDER BY seq").fetchall()
    present = {int(r[0]) for r in rows}
    expected = anchor_seq + 1
    claimed_anchor: int | None = None
    seen_signed = False
    checked = 0

    def broken(seq: int, text: str) -> Verification:
        return Verification(False, checked, text, seq)

    for seq, text, digest, signed in rows:
        seq = int(seq)
        if seq != expected:
            return broken(expected, f"audit record {expected} was removed "
                                    f"(the chain jumps from {expected - 1} to {seq})")
        try:
            body = json.loads(text)
            body_seq = int(body["seq"])
        except (ValueError, KeyError, TypeError):
            return broken(seq, f"audit record {seq} was edited (its content is not the "
                               "JSON that was recorded)")
        if body_seq != seq:
            if body_seq in present:
                return broken(seq, f"audit record {seq} holds record {body_seq}'s content: "
                                   "records were reordered")
            return broken(seq, f"audit record {seq} was edited (it claims to be record "
                               f"{body_seq})")
        if signed:
            seen_signed = True
            if key is None:
                return broken(seq, f"audit record {seq} is HMAC-signed: set {KEY_ENV} to "
                                   "the key it was written with to verify it")
        elif seen_signed and key is not None:
            return broken(seq, f"audit record {seq} is not signed although earlier records "
                               "are: it was rewritten")
        if chain_hash(prev, text.encode("utf-8"), key if signed else None) != bytes(digest):
            return broken(seq, f"audit record {seq} was edited (its hash does not match its "
                               "content and the previous record)")
        if body.get("kind") == "prune":
            claimed_anchor = int(body.get("pruned_through", 0))
        prev = bytes(digest)
        expected = seq + 1
        checked += 1
    if claimed_anchor is not None and claimed_anchor != anchor_seq:
        return broken(claimed_anchor + 1, f"audit record {claimed_anchor + 1} was removed "
                                          f"(retention pruned through {claimed_anchor} only)")
    head = _meta(conn, "audit_head_seq")
    if head is not None and int(head) >= expected:
        return broken(expected, f"audit record {expected} was removed (the chain's head is "
                                f"record {head})")
    return Verification(True, checked)
