"""Benchmark: history size and insert time for 30 days of runs every 5 minutes, 200 items.

Drift churn modelled on a busy cluster: ~6% of items failing at any time, each run a few
items flip (a pod violation appears or is fixed, a policy edited and restored), a handful of
flapping checks, and a remediation attempt for each policy drift. Prints the database size
(after a WAL checkpoint), the insert time per run, and the size after retention pruning.

    .venv/bin/python bench/history_bench.py [--days 30] [--items 200] [--interval 300]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from pytest_kspec.history import HistoryStore, ItemResult, RunInput, Scope, iso

T0 = 1_736_899_200.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--interval", type=int, default=300, help="seconds between runs")
    parser.add_argument("--keep", metavar="DIR", default=None, help="write the database here")
    args = parser.parse_args()
    rng = random.Random(42)
    scope = Scope("shop-prod", "https://10.0.0.1:6443", "c0ffee00-0000-4000-8000-000000000001")
    keys = ([f"policy::policy-{i:02d}" for i in range(40)]
            + [f"compliance::check.{i:03d}" for i in range(args.items - 41)] + ["policy::extra"])
    failing: dict[str, set[str]] = {}  # key -> violating resources
    flappers = set(rng.sample(keys, 5))
    runs = args.days * 86_400 // args.interval
    now = [T0]
    times: list[float] = []
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = args.keep or tmp_dir
        path = Path(tmp) / "history.db"
        with HistoryStore(path, clock=lambda: now[0]) as store:
            for n in range(runs):
                started = T0 + n * args.interval
                now[0] = started + 20
                for _ in range(rng.choice((0, 0, 1, 1, 2, 3))):  # a few changes per run
                    key = rng.choice(keys)
                    if key in failing and rng.random() < 0.6:
                        failing.pop(key)
                    else:
                        failing.setdefault(key, set()).add(
                            f"Pod/ns-{rng.randrange(20)}/app-{rng.randrange(1000)}"
                            if key.startswith("compliance") else f"ClusterPolicy/{key[8:]}")
                while len(failing) > len(keys) * 0.08:
                    failing.pop(next(iter(failing)))
                for key in flappers:  # comes and goes
                    if n % 7 < 3:
                        failing.setdefault(key, {f"Pod/flap/{key[-3:]}"})
                    else:
                        failing.pop(key, None)
                items = []
                for key in keys:
                    if key in failing:
                        events: list[dict[str, Any]] = [
                            {"type": key.split("::")[0], "resource": res,
                             "drift": "modified" if key.startswith("policy") else "violation",
                             "severity": rng.choice(("high", "medium", "low")),
                             "message": f"{res}: container sets securityContext.privileged=true"}
                            for res in sorted(failing[key])]
                        items.append(ItemResult(key, "failed", events))
                    else:
                        items.append(ItemResult(key, "error" if rng.random() < 0.001
                                                else "passed"))
                run_id = f"{iso(started).replace(':', '').replace('-', '')}-{n:06x}"
                begin = time.perf_counter()
                store.append(RunInput(run_id, scope, "2.1.0", "ab" * 32, started, started + 20,
                                      items))
                for key in [k for k in failing if k.startswith("policy::")][:1]:
                    store.record_remediation(run_id, scope, {
                        "node_id": f"cluster-spec.yaml::{key}", "resource": f"ClusterPolicy/"
                        f"{key[8:]}", "action": "update", "status": "verified",
                        "timestamp": iso(started + 15), "dry_run": False, "error": None,
                        "details": {}})
                    failing.pop(key)
                if n % 288 == 287:  # prune once a "day", as each run would
                    store.prune(30 * 86_400)
                times.append(time.perf_counter() - begin)
            store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            size = path.stat().st_size
            counts = {t: store.db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                      for t in ("runs", "outcomes", "events", "episodes", "audit",
                                "remediations")}
            ok = store.verify().ok and store.integrity() == "ok"
    times.sort()
    print(f"runs: {runs} ({args.days} days every {args.interval}s), items per run: {len(keys)}")
    print(f"rows: {counts}")
    print(f"database size: {size / 1_000_000:.2f} MB ({size} bytes; limit 10 MB) - "
          f"{'within' if size < 10_000_000 else 'OVER'} the limit")
    print(f"insert time per run: mean {statistics.mean(times) * 1000:.2f} ms, "
          f"p95 {times[int(len(times) * 0.95)] * 1000:.2f} ms, max {times[-1] * 1000:.2f} ms")
    print(f"integrity and audit chain: {'ok' if ok else 'BROKEN'}")


if __name__ == "__main__":
    main()
