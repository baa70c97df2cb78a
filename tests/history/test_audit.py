"""Audit trail: edit a byte, delete a row, swap two rows -> ``kspec drift history --verify``
names the record and exits 1; HMAC with KSPEC_AUDIT_KEY."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from pytest_kspec.cli import main
from pytest_kspec.history import KEY_ENV, HistoryStore, ItemResult, RunInput, Scope, audit_key

T0 = 1_736_899_200
SCOPE = Scope("shop-prod", "https://10.0.0.1:6443", "uid-a")


def build(path: Path, key: bytes | None = None) -> None:
    """Five runs: a policy deleted, a pod violating then fixed, remediation attempts."""
    with HistoryStore(path, key=key) as store:
        for n in range(5):
            events: list[dict[str, Any]] = []
            if n in (1, 2):
                events.append({"type": "compliance", "resource": f"Pod/shop/web-{n}",
                               "drift": "violation", "severity": "high", "message": "privileged"})
            store.append(RunInput(f"run-{n}", SCOPE, "1.0", "h" * 64, T0 + n * 300,
                                  T0 + n * 300 + 2,
                                  [ItemResult("compliance::privileged",
                                              "failed" if events else "passed", events)]))
            store.record_remediation(f"run-{n}", SCOPE, {
                "node_id": "spec.yaml::policy::p", "resource": "ClusterPolicy/p",
                "action": "create", "status": "verified", "timestamp": "2025-01-15T00:00:05Z",
                "dry_run": False, "error": None, "details": {}})


def verify(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["drift", "history", "--history", str(path), "--verify"])
    return code, capsys.readouterr().out


def edit(path: Path, sql: str, *args: Any) -> None:
    conn = sqlite3.connect(path)
    conn.execute(sql, args)
    conn.commit()
    conn.close()


def records(path: Path) -> list[tuple[int, str]]:
    conn = sqlite3.connect(path)
    rows = conn.execute("SELECT seq, record FROM audit ORDER BY seq").fetchall()
    conn.close()
    return [(int(s), str(r)) for s, r in rows]


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(KEY_ENV, raising=False)
    path = tmp_path / "history.db"
    build(path)
    return path


def test_an_untouched_trail_verifies(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = verify(db, capsys)
    assert code == 0
    assert out.startswith("audit trail intact:")
    bodies = [json.loads(r) for _, r in records(db)]
    runs = [b for b in bodies if b["kind"] == "run"]
    assert [b["kind"] for b in bodies].count("remediation") == 5
    # run 4 changed nothing since run 3: no record; the others say what appeared/resolved
    assert [b["run"] for b in runs] == ["run-0", "run-1", "run-2", "run-3"]
    assert runs[1]["appeared"] == [["compliance::privileged", "Pod/shop/web-1", "violation",
                                    "high"]]
    assert len(runs[2]["resolved"]) == 1 and len(runs[2]["appeared"]) == 1
    assert runs[3]["active"] == 0 and len(runs[3]["resolved"]) == 1


def test_editing_one_byte_names_the_record(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seq, text = records(db)[3]
    pos = text.index('"ts":') + 6
    changed = text[:pos] + ("1" if text[pos] != "1" else "2") + text[pos + 1:]
    edit(db, "UPDATE audit SET record = ? WHERE seq = ?", changed, seq)
    code, out = verify(db, capsys)
    assert code == 1
    assert f"audit record {seq} was edited" in out


def test_deleting_a_row_names_the_missing_record(db: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    edit(db, "DELETE FROM audit WHERE seq = 6")
    code, out = verify(db, capsys)
    assert code == 1
    assert "audit record 6 was removed" in out


def test_deleting_the_newest_row_is_caught_too(db: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    last = records(db)[-1][0]
    edit(db, "DELETE FROM audit WHERE seq = ?", last)
    code, out = verify(db, capsys)
    assert code == 1
    assert f"audit record {last} was removed" in out


def test_swapping_two_rows_names_the_reordered_record(
        db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conn = sqlite3.connect(db)
    a = conn.execute("SELECT ts, record, hash FROM audit WHERE seq = 4").fetchone()
    b = conn.execute("SELECT ts, record, hash FROM audit WHERE seq = 5").fetchone()
    conn.execute("UPDATE audit SET ts = ?, record = ?, hash = ? WHERE seq = 4", b)
    conn.execute("UPDATE audit SET ts = ?, record = ?, hash = ? WHERE seq = 5", a)
    conn.commit()
    conn.close()
    code, out = verify(db, capsys)
    assert code == 1
    assert "audit record 4 holds record 5's content: records were reordered" in out


def test_a_recomputed_plain_chain_cannot_pass_an_hmac_check(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "history.db"
    build(path, key=b"s3cret")
    monkeypatch.setenv(KEY_ENV, "s3cret")
    assert audit_key() == b"s3cret"
    assert verify(path, capsys)[0] == 0
    monkeypatch.setenv(KEY_ENV, "wrong")
    code, out = verify(path, capsys)
    assert code == 1 and "audit record 1 was edited" in out
    monkeypatch.delenv(KEY_ENV)
    code, out = verify(path, capsys)
    assert code == 1 and f"set {KEY_ENV}" in out


def test_retention_keeps_the_trail_verifiable(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with HistoryStore(db) as store:
        store.prune(60, now=T0 + 4 * 300 + 30)
    assert verify(db, capsys)[0] == 0
    first = records(db)[0][0]
    conn = sqlite3.connect(db)
    (digest,) = conn.execute("SELECT hash FROM audit WHERE seq = ?", (first,)).fetchone()
    conn.close()
    # Hide a record past the retention boundary, moving the anchor along: the chain links
    # up, but the chained prune record says where retention really stopped.
    edit(db, "DELETE FROM audit WHERE seq = ?", first)
    edit(db, "UPDATE meta SET value = ? WHERE key = 'audit_anchor_seq'", str(first))
    edit(db, "UPDATE meta SET value = ? WHERE key = 'audit_anchor_hash'", bytes(digest).hex())
    code, out = verify(db, capsys)
    assert code == 1 and f"audit record {first} was removed" in out


def test_history_table_and_json(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["drift", "history", "--history", str(db), "--resource", "pod/shop/web-1"]) == 0
    out = capsys.readouterr().out
    assert "Pod/shop/web-1" in out and "Pod/shop/web-2" not in out
    assert "resolved after 5m2s" in out
    assert main(["drift", "history", "--history", str(db), "--type", "policies",
                 "--format", "json"]) == 0
    assert '"events": []' in capsys.readouterr().out
    assert main(["drift", "history", "--history", str(db.parent / "nope.db")]) == 2
    assert "no history there" in capsys.readouterr().err
