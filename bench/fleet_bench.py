"""Fleet history on PostgreSQL: size and insert time for many clusters writing every 5 minutes,
and how long ``kspec drift history --fleet`` takes over it.

The target is 50 clusters x 288 runs a day x 30 days (432,000 runs). Writing that takes hours
on a small machine, so by default the bench writes ``--days 1`` (14,400 runs, each cluster a
200-item spec with the churn of ``history_bench.py``: ~6% failing, a few flips per run,
flapping checks, a remediation per policy drift), measures bytes per run over the first and
the second half separately (so you can see whether growth is linear), and extrapolates to 30
days: rows per run are constant once retention holds the window steady, so size scales with
the number of runs kept. Insert time is per run, as one CronJob sees it (append + prune of its
cluster in one process). The fleet query is timed in-process (``fleet()``) and as the CLI
(``kspec drift history --fleet``, Python start-up included).

Needs a PostgreSQL server: ``--url postgresql://USER@HOST/DB`` (password from ``PGPASSWORD``),
or, by default, a throwaway one started like the tests start theirs (``tests/pgserver.py``:
Debian's postgresql package). Prints figures, asserts nothing.

    .venv/bin/python bench/fleet_bench.py [--clusters 50] [--days 1] [--items 200] [--url URL]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytest_kspec.history import HistoryStore, ItemResult, RunInput, Scope, fleet, iso  # noqa: E402

T0 = 1_736_899_200.0
INTERVAL = 300
TABLES = ("runs", "outcomes", "events", "episodes", "audit", "chains", "remediations",
          "current", "present", "scopes", "nodes", "specs")


class Cluster:
    """One cluster's drift churn (the model of ``history_bench.py``)."""

    def __init__(self, index: int, items: int, rng: random.Random) -> None:
        self.rng = rng
        self.scope = Scope("fleet-baseline", f"https://cluster-{index:02d}.example:6443",
                           f"c1a5e700-0000-4000-8000-{index:012d}", name=f"cluster-{index:02d}")
        self.keys = ([f"policy::policy-{i:02d}" for i in range(40)]
                     + [f"compliance::check.{i:03d}" for i in range(items - 41)]
                     + ["policy::extra"])
        self.failing: dict[str, set[str]] = {}
        self.flappers = set(rng.sample(self.keys, 5))

    def run_items(self, n: int) -> list[ItemResult]:
        rng = self.rng
        for _ in range(rng.choice((0, 0, 1, 1, 2, 3))):
            key = rng.choice(self.keys)
            if key in self.failing and rng.random() < 0.6:
                self.failing.pop(key)
            else:
                self.failing.setdefault(key, set()).add(
                    f"Pod/ns-{rng.randrange(20)}/app-{rng.randrange(1000)}"
                    if key.startswith("compliance") else f"ClusterPolicy/{key[8:]}")
        while len(self.failing) > len(self.keys) * 0.08:
            self.failing.pop(next(iter(self.failing)))
        for key in self.flappers:
            if n % 7 < 3:
                self.failing.setdefault(key, {f"Pod/flap/{key[-3:]}"})
            else:
                self.failing.pop(key, None)
        out = []
        for key in self.keys:
            if key in self.failing:
                events: list[dict[str, Any]] = [
                    {"type": key.split("::")[0], "resource": res,
                     "drift": "modified" if key.startswith("policy") else "violation",
                     "severity": rng.choice(("high", "medium", "low")),
                     "message": f"{res}: container sets securityContext.privileged=true"}
                    for res in sorted(self.failing[key])]
                out.append(ItemResult(key, "failed", events))
            else:
                out.append(ItemResult(key, "error" if rng.random() < 0.001 else "passed"))
        return out


def database_bytes(store: HistoryStore) -> int:
    return int(store.db.one("SELECT pg_database_size(current_database())"))


def history_bytes(store: HistoryStore) -> int:
    """Tables plus their indexes and TOAST, of the history's own schema."""
    return int(store.db.one(
        "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c JOIN"
        " pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname ="
        " current_schema()"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clusters", type=int, default=50)
    parser.add_argument("--days", type=float, default=1.0)
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--url", default=None, help="an existing PostgreSQL database")
    parser.add_argument("--fleet-repeats", type=int, default=20)
    args = parser.parse_args()
    server = None
    password = None
    if args.url:
        url = args.url
    else:
        from tests.pgserver import PostgresServer

        server = PostgresServer().start()
        url, password = server.url("bench"), server.password
        print(f"throwaway PostgreSQL at 127.0.0.1:{server.port} ({server.bin})")
    try:
        run(args, url, password)
    finally:
        if server is not None:
            server.stop()


def run(args: argparse.Namespace, url: str, password: str | None) -> None:
    rng = random.Random(42)
    clusters = [Cluster(i, args.items, rng) for i in range(args.clusters)]
    ticks = int(args.days * 86_400 // INTERVAL)
    now = [T0]
    times: list[float] = []
    half_bytes = 0
    with HistoryStore(url, password=password, clock=lambda: now[0]) as store:
        start_bytes = history_bytes(store)
        began = time.perf_counter()
        for n in range(ticks):
            started = T0 + n * INTERVAL
            now[0] = started + 20
            for cluster in clusters:
                items = cluster.run_items(n)
                run_id = f"{iso(started).replace(':', '').replace('-', '')}-{cluster.scope.name}"
                t = time.perf_counter()
                store.append(RunInput(run_id, cluster.scope, "2.1.0", "ab" * 32, started,
                                      started + 20, items))
                for key in [k for k in cluster.failing if k.startswith("policy::")][:1]:
                    store.record_remediation(run_id, cluster.scope, {
                        "node_id": f"cluster-spec.yaml::{key}",
                        "resource": f"ClusterPolicy/{key[8:]}", "action": "update",
                        "status": "verified", "timestamp": iso(started + 15), "dry_run": False})
                    cluster.failing.pop(key)
                if n % 288 == 287:
                    store.prune(30 * 86_400, cluster=cluster.scope.cluster)
                times.append(time.perf_counter() - t)
            if n == ticks // 2 - 1:
                half_bytes = history_bytes(store)
            if (n + 1) % max(1, ticks // 10) == 0:
                print(f"  {n + 1}/{ticks} ticks, {len(times)} runs, "
                      f"{time.perf_counter() - began:.0f}s", flush=True)
        store.db.execute("ANALYZE")
        end_bytes = history_bytes(store)
        counts = {t: int(store.db.one(f"SELECT COUNT(*) FROM {t}")) for t in TABLES}
        verified = store.verify()
        fleet_times = []
        for _ in range(args.fleet_repeats):
            t = time.perf_counter()
            rows = fleet(store)
            fleet_times.append(time.perf_counter() - t)
    env = {**os.environ, "PYTHONPATH": str(ROOT), **({"PGPASSWORD": password} if password
                                                      else {})}
    t = time.perf_counter()
    cli = subprocess.run([sys.executable, "-m", "pytest_kspec.cli", "drift", "history",
                          "--history", url, "--fleet"], capture_output=True, text=True,
                         env=env, check=False, timeout=600)
    cli_time = time.perf_counter() - t

    runs = len(times)
    target_runs = args.clusters * 288 * 30
    first_half = ticks // 2 * args.clusters
    per_run_first = (half_bytes - start_bytes) / max(1, first_half)
    per_run_second = (end_bytes - half_bytes) / max(1, runs - first_half)
    per_run = (end_bytes - start_bytes) / max(1, runs)
    times.sort()
    print(f"\nwrote {runs} runs: {args.clusters} clusters x {ticks} runs ({args.days:g} day(s) "
          f"every {INTERVAL}s), {args.items} items per run")
    print(f"rows: {counts}")
    print(f"history size: {end_bytes / 1e6:.1f} MB (tables + indexes + TOAST); "
          f"{per_run:.0f} bytes/run overall, {per_run_first:.0f} in the first half, "
          f"{per_run_second:.0f} in the second")
    print(f"extrapolated to {args.clusters} clusters x 288 runs/day x 30 days "
          f"({target_runs} runs kept by 30d retention): ~{per_run_second * target_runs / 1e9:.2f}"
          f" GB at the second half's steady {per_run_second:.0f} bytes/run (the first half "
          f"also holds each cluster's first keyframe and first drift); at most "
          f"~{per_run * target_runs / 1e9:.2f} GB at the overall {per_run:.0f} bytes/run")
    print(f"insert time per run (append + remediation record + daily prune): mean "
          f"{statistics.mean(times) * 1000:.1f} ms, p50 {times[len(times) // 2] * 1000:.1f} ms,"
          f" p95 {times[int(len(times) * 0.95)] * 1000:.1f} ms, max {times[-1] * 1000:.1f} ms")
    print(f"  -> one writer does {1 / statistics.mean(times):.0f} runs/s; the fleet needs "
          f"{args.clusters * 288 / 86_400:.2f} runs/s")
    print(f"fleet query over {len(rows)} clusters: median "
          f"{statistics.median(fleet_times) * 1000:.1f} ms in-process, "
          f"{cli_time * 1000:.0f} ms as `kspec drift history --fleet` (exit {cli.returncode})")
    print(f"audit chains: {'ok' if verified.ok else 'BROKEN: ' + verified.problem} "
          f"({verified.chains} chains, {verified.checked} records)")


if __name__ == "__main__":
    main()
