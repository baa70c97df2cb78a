"""History store: outcome deltas, drift episodes, scopes, retention with an injected clock."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from pytest_kspec.history import HistoryError, HistoryStore, ItemResult, RunInput, Scope
from pytest_kspec.history.runlink import archive_reports
from pytest_kspec.history.schema import SCHEMA_VERSION
from tests.history.conftest import Backend

T0 = 1_736_899_200  # 2025-01-15T00:00:00Z
DAY = 86_400
SCOPE = Scope("shop-prod", "https://10.0.0.1:6443", "uid-a")


def violation(resource: str) -> dict[str, Any]:
    return {"type": "compliance", "resource": resource, "drift": "violation",
            "severity": "high", "message": "privileged"}


def items(statuses: Mapping[str, str],
          events: Mapping[str, Sequence[dict[str, Any]]] | None = None) -> list[ItemResult]:
    return [ItemResult(k, s, list((events or {}).get(k, ()))) for k, s in statuses.items()]


def append(store: HistoryStore, n: int, when: float, run_items: list[ItemResult],
           scope: Scope = SCOPE) -> str:
    run_id = f"run-{n:05d}"
    store.append(RunInput(run_id, scope, "1.0", "h" * 64, when, when + 3, run_items))
    return run_id


@pytest.fixture
def store(backend: Backend) -> Iterator[HistoryStore]:
    with backend.open() as s:
        yield s


def test_only_changed_outcomes_are_stored_and_every_run_rebuilds(store: HistoryStore) -> None:
    base = {f"compliance::c{i}": "passed" for i in range(50)}
    ids = [append(store, 0, T0, items(base))]
    second = {**base, "compliance::c7": "failed"}
    ids.append(append(store, 1, T0 + 300, items(second)))
    ids.append(append(store, 2, T0 + 600, items(second)))
    third = {k: v for k, v in base.items() if k != "compliance::c9"}
    ids.append(append(store, 3, T0 + 900, items(third)))
    rows = dict(store.db.execute(
        "SELECT r.run_id, COUNT(o.node) FROM runs r LEFT JOIN outcomes o ON o.run = r.id "
        "GROUP BY r.id").fetchall())
    assert rows == {ids[0]: 50, ids[1]: 1, ids[2]: 0, ids[3]: 2}  # c7 back, c9 gone
    assert store.outcomes_at(ids[0]) == base
    assert store.outcomes_at(ids[2]) == second
    assert store.outcomes_at(ids[3]) == third


def test_drift_is_one_event_with_episodes_not_a_row_per_run(store: HistoryStore) -> None:
    key = "compliance::privileged"
    on = items({key: "failed"}, {key: [violation("Pod/shop/web")]})
    off = items({key: "passed"})
    for n, run_items in enumerate([on, on, off, on, off, on]):
        append(store, n, T0 + n * 300, run_items)
    (event,) = store.events()
    assert event.episodes == 3 and event.flapping and event.active
    assert event.first_seen == T0  # the start of the run that first saw it
    assert event.time_to_resolve == 303  # last closed episode: run 3 start to run 4 end
    assert store.db.execute("SELECT COUNT(*) FROM events").fetchone() == (1,)
    assert store.db.execute("SELECT COUNT(*) FROM episodes").fetchone() == (3,)


def test_baseline_is_the_previous_run_of_the_same_scope(store: HistoryStore) -> None:
    key = "compliance::privileged"
    append(store, 0, T0, items({"policy::p": "passed", key: "failed"},
                               {key: [violation("Pod/shop/web")]}))
    other = Scope("shop-prod", "https://other:6443", "uid-b")
    append(store, 1, T0 + 300, items({"policy::p": "failed", key: "passed"}), scope=other)
    mine = store.baseline(SCOPE)
    assert mine.run_id == "run-00000" and mine.seen("policy::p")
    assert [a.resource for a in mine.active_for(key)] == ["Pod/shop/web"]
    theirs = store.baseline(other)
    assert theirs.run_id == "run-00001"
    assert not theirs.seen("policy::p") and not theirs.active
    assert store.baseline(Scope("another-spec", "https://10.0.0.1:6443", "uid-a")).run_id is None


def test_the_uid_identifies_the_cluster_whatever_url_reaches_it() -> None:
    assert Scope("s", "https://a", "u").cluster == Scope("s", "https://b", "u").cluster
    assert Scope("s", "https://a", "").cluster != Scope("s", "https://b", "").cluster


def test_an_item_that_errored_keeps_its_drift_open(store: HistoryStore) -> None:
    key = "compliance::privileged"
    append(store, 0, T0, items({key: "failed"}, {key: [violation("Pod/shop/web")]}))
    append(store, 1, T0 + 300, items({key: "error"}))
    assert [a.resource for a in store.baseline(SCOPE).active_for(key)] == ["Pod/shop/web"]


def test_retention_prunes_old_runs_and_keeps_newer_ones_whole(backend: Backend) -> None:
    now = [float(T0)]
    with backend.open(clock=lambda: now[0]) as store:
        key = "compliance::privileged"
        statuses = {f"compliance::c{i}": "passed" for i in range(20)}
        for day in range(40):
            changed = {**statuses, f"compliance::c{day % 20}": "failed"}
            run_items = items({**changed, key: "failed" if day < 5 else "passed"},
                              {key: [violation("Pod/shop/old")]} if day < 5 else None)
            append(store, day, T0 + day * DAY, run_items)
        kept_before = store.outcomes_at("run-00020")
        now[0] = T0 + 39 * DAY + 10
        result = store.prune(30 * DAY)
        assert result.runs == 10  # days 0..9 finished more than 30 days ago
        assert next(r["run"] for r in store.runs()) == "run-00010"
        assert store.outcomes_at("run-00020") == kept_before  # rebased onto a keyframe
        assert store.outcomes_at("run-00010")["compliance::c10"] == "failed"
        assert store.events() == []  # the Pod/shop/old drift ended on day 5
        assert store.verify().ok
        with pytest.raises(HistoryError, match="no run 'run-00003'"):
            store.outcomes_at("run-00003")
        assert store.integrity() == "ok"


def test_vacuum_happens_when_much_of_the_file_is_free(tmp_path: Path) -> None:
    # SQLite only: PostgreSQL's autovacuum gives space back on its own
    with HistoryStore(tmp_path / "history.db") as store:
        keys = [f"compliance::c{i:04d}" for i in range(2000)]
        drifted = [ItemResult(k, "failed", [{**violation(f"Pod/ns/p{i}"), "message": "x" * 400}])
                   for i, k in enumerate(keys)]
        append(store, 0, T0, drifted)
        append(store, 1, T0 + 300, items(dict.fromkeys(keys, "passed")))
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = (tmp_path / "history.db").stat().st_size
        result = store.prune(DAY, now=T0 + 10 * DAY)
        assert result.runs == 2 and result.vacuumed
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert (tmp_path / "history.db").stat().st_size < size / 2
        assert store.prune(DAY, now=T0 + 10 * DAY).vacuumed is False  # nothing left to free


def test_a_newer_schema_is_refused_with_a_clear_message(backend: Backend) -> None:
    with backend.open() as store:
        store.db.set_schema_version(SCHEMA_VERSION + 1)
    with pytest.raises(HistoryError, match="newer pytest-kspec"):
        backend.open()


def test_migrations_run_once_and_record_the_version(backend: Backend) -> None:
    backend.open().close()
    with backend.open() as again:
        assert again.db.schema_version() == SCHEMA_VERSION
        if backend.name == "sqlite":
            assert again.db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        else:  # the schema's tables, in the test's own schema
            tables = {r[0] for r in again.db.execute(
                "SELECT table_name FROM information_schema.tables WHERE "
                "table_schema = current_schema()")}
            assert {"runs", "events", "episodes", "audit", "chains", "meta"} <= tables


def test_a_schema_1_sqlite_file_migrates_and_its_chain_still_verifies(tmp_path: Path) -> None:
    """A history written before chains were per cluster keeps its records as the legacy
    chain; new runs start their cluster's own chain."""
    from pytest_kspec.history import audit
    from pytest_kspec.history.schema import MIGRATIONS

    path = tmp_path / "history.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in MIGRATIONS[1]:
        conn.execute(str(statement))
    conn.execute("PRAGMA user_version = 1")
    prev = bytes(32)
    for seq in (1, 2):
        record = audit.canonical({"seq": seq, "kind": "run", "ts": T0 + seq, "run": f"r{seq}"})
        prev = audit.chain_hash(prev, record, None)
        conn.execute("INSERT INTO audit(seq, ts, record, hash, signed) VALUES (?, ?, ?, ?, 0)",
                     (seq, T0 + seq, record.decode(), prev))
    conn.execute("INSERT INTO meta(key, value) VALUES ('audit_head_seq', '2')")
    conn.close()
    with HistoryStore(path) as store:
        assert store.db.schema_version() == SCHEMA_VERSION
        append(store, 0, T0 + 100, items({"compliance::c": "passed"}))
        result = store.verify()
        assert result.ok and result.chains == 2 and result.checked == 3, result
        assert [r[0] for r in store.db.execute("SELECT chain FROM chains ORDER BY chain")] == [
            "legacy", SCOPE.cluster]
        store.db.execute("DELETE FROM audit WHERE chain = 'legacy' AND seq = 2")
        assert "audit record 2 was removed (the chain's head is record 2) (chain legacy)" in \
            store.verify().problem


def test_report_folders_are_kept_for_the_last_n_runs(tmp_path: Path) -> None:
    report = tmp_path / "drift-report.json"
    report.write_text("{}")
    for n in range(5):
        archive_reports(tmp_path, f"2025011{n}T000000Z-abc", [report, tmp_path / "absent.xml"],
                        keep=3, retention=30 * DAY)
    kept = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert kept == ["20250112T000000Z-abc", "20250113T000000Z-abc", "20250114T000000Z-abc"]
    assert (tmp_path / "runs" / kept[-1] / "drift-report.json").read_text() == "{}"
