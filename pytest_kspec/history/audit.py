"""Tamper-evident audit trail: a hash chain per cluster over canonical JSON, HMAC-signed or not.

Each record is the canonical JSON of ``{"seq", "kind", "ts", ...body}`` (sorted keys, no
spaces, UTF-8) and its hash is ``SHA-256(previous hash || record)``, or
``HMAC-SHA-256(key, previous hash || record)`` when ``KSPEC_AUDIT_KEY`` is set. Editing a
record breaks its hash, removing one leaves a gap in ``seq`` (or a head behind the recorded
one), swapping two puts a record at another record's ``seq``; :func:`verify` names the first
such record. Without a key anyone who can write the database can recompute a whole chain;
with a key they cannot.

Each cluster has a chain of its own (``chain`` is the cluster's identity, ``uid:...`` or
``server:...``), with its head (last ``seq`` and hash) and anchor in a ``chains`` row. A writer
first locks that row (:meth:`AuditLog.lock`: SQLite's write lock, PostgreSQL's ``SELECT ...
FOR UPDATE``) and holds it until its transaction ends, so concurrent writers of one cluster
queue and every record links to the one before it (``(chain, seq)`` is the primary key: a
forked link cannot even be stored), while writers of other clusters go on in parallel.

Retention removes a chain's oldest records: the hash of the last removed one becomes the
chain's *anchor* and a ``prune`` record, itself chained, states it, so removing more records
afterwards is still caught. Records written before chains were per cluster (schema 1) form the
chain ``legacy``.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_kspec.history.db import Database

KEY_ENV = "KSPEC_AUDIT_KEY"
GENESIS = bytes(32)
LEGACY_CHAIN = "legacy"


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


@dataclass(frozen=True)
class Head:
    """A chain's ``chains`` row: its newest record and its retention anchor."""

    seq: int
    hash: bytes
    anchor_seq: int
    anchor_hash: bytes


def read_head(db: Database, chain: str, *, lock: bool = False) -> Head | None:
    sql = "SELECT head_seq, head_hash, anchor_seq, anchor_hash FROM chains WHERE chain = ?"
    row = db.execute(db.lock_row_sql(sql) if lock else sql, (chain,)).fetchone()
    if row is None:
        return None
    return Head(int(row[0]), bytes(row[1]), int(row[2]), bytes(row[3]))


class AuditLog:
    """Appends records to ``chain`` inside the caller's transaction (the run's), so a run and
    its audit records are committed together or not at all."""

    def __init__(self, db: Database, chain: str, key: bytes | None = None) -> None:
        self.db = db
        self.chain = chain
        self.key = key
        self._head: Head | None = None

    def lock(self) -> Head:
        """Create the chain's row if needed and lock it until the transaction ends."""
        if self._head is None:
            self.db.execute("INSERT INTO chains(chain, head_seq, head_hash, anchor_seq, "
                            "anchor_hash) VALUES (?, 0, ?, 0, ?) ON CONFLICT(chain) DO NOTHING",
                            (self.chain, GENESIS, GENESIS))
            head = read_head(self.db, self.chain, lock=True)
            assert head is not None
            self._head = head
        return self._head

    def append(self, kind: str, ts: int, body: Mapping[str, Any]) -> int:
        """Append one record of ``kind`` at epoch second ``ts``; returns its ``seq``."""
        head = self.lock()
        seq = head.seq + 1
        record = canonical({**body, "seq": seq, "kind": kind, "ts": ts})
        digest = chain_hash(head.hash, record, self.key)
        self.db.execute("INSERT INTO audit(chain, seq, ts, record, hash, signed) VALUES "
                        "(?, ?, ?, ?, ?, ?)", (self.chain, seq, ts, record.decode("utf-8"),
                                               digest, int(self.key is not None)))
        self.db.execute("UPDATE chains SET head_seq = ?, head_hash = ? WHERE chain = ?",
                        (seq, digest, self.chain))
        self._head = Head(seq, digest, head.anchor_seq, head.anchor_hash)
        return seq

    def prune(self, cutoff: int, now: int) -> int:
        """Remove records older than ``cutoff`` (never the newest); returns how many."""
        head = self.lock()
        last = self.db.one("SELECT MAX(seq) FROM audit WHERE chain = ? AND ts < ? AND seq < ?",
                           (self.chain, cutoff, head.seq))
        if last is None:
            return 0
        digest = bytes(self.db.one("SELECT hash FROM audit WHERE chain = ? AND seq = ?",
                                   (self.chain, last)))
        removed = self.db.execute("DELETE FROM audit WHERE chain = ? AND seq <= ?",
                                  (self.chain, last)).rowcount
        self.db.execute("UPDATE chains SET anchor_seq = ?, anchor_hash = ? WHERE chain = ?",
                        (last, digest, self.chain))
        self._head = Head(head.seq, head.hash, int(last), digest)
        self.append("prune", now, {"pruned_through": last, "anchor": digest.hex()})
        return int(removed)


@dataclass(frozen=True)
class Verification:
    """The result of :func:`verify`: ``ok``, records checked, and the first problem (and the
    chain it is in)."""

    ok: bool
    checked: int
    problem: str = ""
    seq: int | None = None
    chain: str | None = None
    chains: int = 0


def chains(db: Database) -> list[str]:
    return [str(r[0]) for r in db.execute("SELECT chain FROM chains ORDER BY chain")]


def verify(db: Database, key: bytes | None = None,
           only: str | None = None) -> Verification:
    """Walk every chain (or ``only`` that one) in ``seq`` order and name the first edited,
    removed or reordered record."""
    names = [only] if only is not None else chains(db)
    checked = 0
    for name in names:
        result = verify_chain(db, name, key)
        checked += result.checked
        if not result.ok:
            return Verification(False, checked, f"{result.problem} (chain {name})",
                                result.seq, name, len(names))
    return Verification(True, checked, chains=len(names))


def verify_chain(db: Database, chain: str, key: bytes | None = None) -> Verification:
    head = read_head(db, chain)
    if head is None:
        return Verification(False, 0, f"no audit chain {chain!r}", None, chain)
    prev = head.anchor_hash
    rows = db.execute("SELECT seq, record, hash, signed FROM audit WHERE chain = ? ORDER BY seq",
                      (chain,)).fetchall()
    present = {int(r[0]) for r in rows}
    expected = head.anchor_seq + 1
    claimed_anchor: int | None = None
    seen_signed = False
    checked = 0

    def broken(seq: int, text: str) -> Verification:
        return Verification(False, checked, text, seq, chain)

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
    if claimed_anchor is not None and claimed_anchor != head.anchor_seq:
        return broken(claimed_anchor + 1, f"audit record {claimed_anchor + 1} was removed "
                                          f"(retention pruned through {claimed_anchor} only)")
    if head.seq >= expected:
        return broken(expected, f"audit record {expected} was removed (the chain's head is "
                                f"record {head.seq})")
    return Verification(True, checked, chain=chain, chains=1)
