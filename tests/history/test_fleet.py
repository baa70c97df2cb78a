"""``kspec drift history --fleet`` and ``--cluster`` over a history shared by two clusters, on
both backends: per-cluster rows (last run, pass %, open drift, oldest open, trend), worst first;
filters; an unknown cluster is one clear line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_kspec.cli import main
from pytest_kspec.history import ItemResult, Location, RunHistory, RunInput, Scope, iso
from tests.history.conftest import Backend

T0 = 1_736_899_200
ALPHA = Scope("shop", "https://alpha:6443", "uid-alpha", name="alpha")
BETA = Scope("shop", "https://beta:6443", "uid-beta", name="beta")


def violation(resource: str) -> dict[str, Any]:
    return {"type": "compliance", "resource": resource, "drift": "violation",
            "severity": "high", "message": "privileged"}


@pytest.fixture
def fleet_db(backend: Backend) -> Backend:
    """alpha: clean for 4 runs; beta: passing, then two pods drift from run 2 on."""
    with backend.open() as store:
        for n in range(4):
            at = T0 + n * 300
            store.append(RunInput(f"a{n}", ALPHA, "1", "h" * 64, at, at + 5, [
                ItemResult(f"compliance::c{i}", "passed") for i in range(4)]))
            drifting = n >= 2
            store.append(RunInput(f"b{n}", BETA, "1", "h" * 64, at, at + 5, [
                ItemResult("compliance::privileged", "failed" if drifting else "passed",
                           [violation("Pod/shop/web"), violation("Pod/shop/api")]
                           if drifting else []),
                *(ItemResult(f"compliance::c{i}", "passed") for i in range(3))]))
    return backend


def test_fleet_lists_each_cluster_worst_first(fleet_db: Backend,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["drift", "history", *fleet_db.cli(), "--fleet", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)["clusters"]
    assert [r["name"] for r in rows] == ["beta", "alpha"]
    beta, alpha = rows
    assert beta["open_drift"] == 2 and beta["oldest_open_drift"] == iso(T0 + 600)
    assert beta["pass_rate"] == 75.0 and beta["last_run"] == "b3" and beta["runs"] == 4
    assert beta["trend"] == "degrading" and beta["change_pp"] < 0
    assert alpha["open_drift"] == 0 and alpha["oldest_open_drift"] is None
    assert alpha["pass_rate"] == 100.0 and alpha["trend"] == "stable"
    assert main(["drift", "history", *fleet_db.cli(), "--fleet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("beta ") and "degrading" in lines[1] and lines[2].startswith(
        "alpha ")
    assert lines[-1] == "2 cluster(s); 1 with open drift"


def test_cluster_filters_runs_drift_and_verification(fleet_db: Backend,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["drift", "history", *fleet_db.cli(), "--cluster", "alpha", "--format",
                 "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {r["cluster_name"] for r in data["runs"]} == {"alpha"} and data["events"] == []
    assert main(["drift", "history", *fleet_db.cli()]) == 0  # all: a CLUSTER column
    out = capsys.readouterr().out
    assert "CLUSTER" in out and "beta" in out and "Pod/shop/web" in out
    assert main(["drift", "history", *fleet_db.cli(), "--cluster", "uid:uid-beta",
                 "--verify"]) == 0
    assert "in 1 chain(s)" in capsys.readouterr().out


def test_an_unknown_cluster_is_one_clear_line(fleet_db: Backend,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["drift", "history", *fleet_db.cli(), "--cluster", "gamma"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no cluster 'gamma'" in err and "known: alpha, beta" in err
    assert len(err.splitlines()) == 1



def test_a_database_failing_mid_run_leaves_the_run_without_history(fleet_db: Backend) -> None:
    """Reads after the store opened (a server gone away, a dropped table) become the run's
    history error, never an exception out of detection."""
    target = fleet_db.target if fleet_db.name == "postgres" else Path(fleet_db.target)
    history = RunHistory(Location(target), retention=86_400, keep_runs=1)
    store = history.store()
    assert store is not None
    store.db.execute("DROP TABLE episodes")
    assert history.baseline(BETA).run_id is None  # an empty baseline, not an exception
    assert history.error is not None and "could not read the previous run" in history.error
    history.close()


def test_a_cluster_whose_latest_runs_all_errored_shows_error_not_a_pass(
        backend: Backend, capsys: pytest.CaptureFixture[str]) -> None:
    gamma = Scope("shop", "https://gamma:6443", "uid-gamma", name="gamma")
    with backend.open() as store:
        store.append(RunInput("g0", gamma, "1", "h" * 64, T0, T0 + 5, [
            ItemResult(f"compliance::c{i}", "passed") for i in range(3)]))
        store.append(RunInput("g1", gamma, "1", "h" * 64, T0 + 300, T0 + 305, [
            ItemResult(f"compliance::c{i}", "error") for i in range(3)]))
        store.append(RunInput("a0", ALPHA, "1", "h" * 64, T0, T0 + 5, [
            ItemResult("compliance::c0", "passed")]))
    assert main(["drift", "history", *backend.cli(), "--fleet", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)["clusters"]
    assert [r["name"] for r in rows] == ["gamma", "alpha"]  # unreadable first
    assert rows[0]["pass_rate"] is None and rows[0]["status"] == "error"
    assert rows[0]["errors"] == 3
    assert rows[1]["pass_rate"] == 100.0 and rows[1]["status"] == "ok"
    assert main(["drift", "history", *backend.cli(), "--fleet"]) == 0
    gamma_line = capsys.readouterr().out.splitlines()[1]
    assert gamma_line.startswith("gamma ") and "error (3 checks)" in gamma_line
    assert "100.0" not in gamma_line
