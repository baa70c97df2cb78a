"""Audit trail: edit a byte, delete a row, swap two rows -> ``kspec drift history --verify``
names the record and exits 1; HMAC with KSPEC_AUDIT_KEY."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_kspec.cli import main
from pytest_kspec.history import KEY_ENV, ItemResult, RunInput, Scope, audit_key
from tests.history.conftest import Backend

T0 = 1_736_899_200
SCOPE = Scope("shop-prod", "https://10.0.0.1:6443", "uid-a")


def build(backend: Backend, key: bytes | None = None) -> None:
    """Five runs: a policy deleted, a pod violating then fixed, remediation attempts."""
    with backend.open(key=key) as store:
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


def verify(db: Backend, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["drift", "history", *db.cli(), "--verify"])
    return code, capsys.readouterr().out


def edit(db: Backend, *statements: tuple[str, tuple[Any, ...]]) -> None:
    """What someone with write access to the database could do, in one transaction."""
    with db.open() as store, store.db.transaction():
        for sql, args in statements:
            store.db.execute(sql, args)


def records(db: Backend) -> list[tuple[int, str]]:
    with db.open() as store:
        rows = store.db.execute("SELECT seq, record FROM audit ORDER BY seq").fetchall()
    return [(int(s), str(r)) for s, r in rows]


@pytest.fixture
def db(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> Backend:
    monkeypatch.delenv(KEY_ENV, raising=False)
    build(backend)
    return backend


def test_an_untouched_trail_verifies(db: Backend, capsys: pytest.CaptureFixture[str]) -> None:
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


def test_editing_one_byte_names_the_record(db: Backend, capsys: pytest.CaptureFixture[str]) -> None:
    seq, text = records(db)[3]
    pos = text.index('"ts":') + 6
    changed = text[:pos] + ("1" if text[pos] != "1" else "2") + text[pos + 1:]
    edit(db, ("UPDATE audit SET record = ? WHERE seq = ?", (changed, seq)))
    code, out = verify(db, capsys)
    assert code == 1
    assert f"audit record {seq} was edited" in out


def test_deleting_a_row_names_the_missing_record(db: Backend,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    edit(db, ("DELETE FROM audit WHERE seq = 6", ()))
    code, out = verify(db, capsys)
    assert code == 1
    assert "audit record 6 was removed" in out


def test_deleting_the_newest_row_is_caught_too(db: Backend,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    last = records(db)[-1][0]
    edit(db, ("DELETE FROM audit WHERE seq = ?", (last,)))
    code, out = verify(db, capsys)
    assert code == 1
    assert f"audit record {last} was removed" in out


def test_swapping_two_rows_names_the_reordered_record(
        db: Backend, capsys: pytest.CaptureFixture[str]) -> None:
    with db.open() as store:
        a = tuple(store.db.execute("SELECT ts, record, hash FROM audit WHERE seq = 4").fetchone())
        b = tuple(store.db.execute("SELECT ts, record, hash FROM audit WHERE seq = 5").fetchone())
    edit(db, ("UPDATE audit SET ts = ?, record = ?, hash = ? WHERE seq = 4", b),
         ("UPDATE audit SET ts = ?, record = ?, hash = ? WHERE seq = 5", a))
    code, out = verify(db, capsys)
    assert code == 1
    assert "audit record 4 holds record 5's content: records were reordered" in out


def test_a_recomputed_plain_chain_cannot_pass_an_hmac_check(
        backend: Backend, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    path = backend
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


def test_retention_keeps_the_trail_verifiable(db: Backend,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    with db.open() as store:
        store.prune(60, now=T0 + 4 * 300 + 30)
    assert verify(db, capsys)[0] == 0
    first = records(db)[0][0]
    with db.open() as store:
        digest = bytes(store.db.one("SELECT hash FROM audit WHERE seq = ?", (first,)))
    # Hide a record past the retention boundary, moving the anchor along: the chain links
    # up, but the chained prune record says where retention really stopped.
    edit(db, ("DELETE FROM audit WHERE seq = ?", (first,)),
         ("UPDATE chains SET anchor_seq = ?, anchor_hash = ?", (first, digest)))
    code, out = verify(db, capsys)
    assert code == 1 and f"audit record {first} was removed" in out


def test_history_table_and_json(db: Backend, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["drift", "history", *db.cli(), "--resource", "pod/shop/web-1"]) == 0
    out = capsys.readouterr().out
    assert "Pod/shop/web-1" in out and "Pod/shop/web-2" not in out
    assert "resolved after 5m2s" in out
    assert main(["drift", "history", *db.cli(), "--type", "policies",
                 "--format", "json"]) == 0
    assert '"events": []' in capsys.readouterr().out


def test_no_history_there_is_one_clear_line(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["drift", "history", "--history", str(tmp_path / "nope.db")]) == 2
    assert "no history there" in capsys.readouterr().err
