"""Crash safety: a writer killed with SIGKILL at random moments, 20 times, never corrupts the
history or loses a committed run; a reader works while the writer writes."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from pytest_kspec.history import HistoryStore

WRITER = Path(__file__).with_name("writer.py")
ROOT = Path(__file__).resolve().parents[2]


def test_sigkill_mid_write_twenty_times_loses_nothing_committed(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    rng = random.Random(6)
    committed: list[str] = []
    killed_alive = 0
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for attempt in range(20):
        proc = subprocess.Popen([sys.executable, str(WRITER), str(db), f"k{attempt}"],
                                stdout=subprocess.PIPE, text=True, env=env)
        time.sleep(rng.uniform(0.25, 0.6))
        if db.exists():  # a reader while the writer writes: WAL + busy timeout
            with HistoryStore(db, busy_timeout=10) as reader:
                assert len(reader.runs()) >= len(committed)
        if proc.poll() is None:
            killed_alive += 1
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
        committed += out.split()
        with HistoryStore(db) as store:
            assert store.integrity() == "ok"
            stored = {r["run"] for r in store.runs()}
            missing = [r for r in committed if r not in stored]
            assert not missing, f"committed runs lost after kill {attempt}: {missing}"
            assert store.verify().ok, store.verify().problem
    assert killed_alive == 20  # every kill hit a live writer
    assert len(committed) >= 20  # and the writers did commit runs between kills
