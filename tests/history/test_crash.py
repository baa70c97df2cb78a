"""Crash safety and concurrency, on both backends: a writer killed with SIGKILL at random
moments, 20 times, never corrupts the history or loses a committed run, and a reader works
while the writer writes; ten writers for three clusters at once lose nothing and every
cluster's audit chain verifies."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_kspec.cli import main
from pytest_kspec.history import fleet
from tests.history.conftest import Backend

WRITER = Path(__file__).with_name("writer.py")
ROOT = Path(__file__).resolve().parents[2]


def test_sigkill_mid_write_twenty_times_loses_nothing_committed(backend: Backend) -> None:
    rng = random.Random(6)
    committed: list[str] = []
    killed_alive = 0
    env = {**os.environ, "PYTHONPATH": str(ROOT), **backend.env()}
    for attempt in range(20):
        proc = subprocess.Popen([sys.executable, str(WRITER), backend.target, f"k{attempt}"],
                                stdout=subprocess.PIPE, text=True, env=env)
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        time.sleep(rng.uniform(0.05, 0.4))
        if backend.name != "sqlite" or Path(backend.target).exists():
            # a reader while the writer writes: WAL + busy timeout / MVCC
            with backend.open(busy_timeout=10) as reader:
                assert len(reader.runs()) >= len(committed)
        if proc.poll() is None:
            killed_alive += 1
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
        committed += out.split()
        with backend.open() as store:
            assert store.integrity() == "ok"
            stored = {r["run"] for r in store.runs()}
            missing = [r for r in committed if r not in stored]
            assert not missing, f"committed runs lost after kill {attempt}: {missing}"
            assert store.verify().ok, store.verify().problem
    assert killed_alive == 20  # every kill hit a live writer
    assert len(committed) >= 20  # and the writers did commit runs between kills


def test_ten_writers_three_clusters_lose_nothing_and_every_chain_verifies(
        backend: Backend, capsys: pytest.CaptureFixture[str]) -> None:
    clusters = ["alpha", "beta", "gamma"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), **backend.env()}
    procs = [subprocess.Popen([sys.executable, str(WRITER), backend.target, f"w{i}", "--runs",
                               "12", "--clusters", ",".join(clusters[i % 3:] + clusters[:i % 3])],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for i in range(10)]
    committed: list[str] = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        committed += out.split()[1:]
    assert len(committed) == 120
    with backend.open() as store:
        runs = store.runs()
        assert sorted(r["run"] for r in runs) == sorted(committed)
        assert {r["cluster_name"] for r in runs} == set(clusters)
        result = store.verify()
        assert result.ok, result.problem
        assert result.chains == 3
        for name in clusters:  # each chain: one record per remediation plus the run records
            per = store.verify(name)
            assert per.ok and per.checked >= 40, per
            chain = store.runs(cluster=name)[0]["cluster"]
            seqs = [int(r[0]) for r in store.db.execute(
                "SELECT seq FROM audit WHERE chain = ? ORDER BY seq", (chain,))]
            assert seqs == list(range(1, len(seqs) + 1))  # no lost or forked links
        assert store.integrity() == "ok"
        rows = {r.name: r for r in fleet(store)}
        assert set(rows) == set(clusters) and all(r.runs == 40 for r in rows.values())
    assert main(["drift", "history", *backend.cli(), "--fleet"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["CLUSTER", "LAST", "RUN", "PASS", "%", "OPEN",
                                           "DRIFT", "OLDEST", "OPEN", "TREND", "RUNS"]
    assert all(any(line.startswith(c) for line in out.splitlines()) for c in clusters)
    assert "3 cluster(s)" in out
