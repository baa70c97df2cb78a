"""Helper for the crash and concurrency tests: appends runs to a history, printing each
committed run id.

``writer.py TARGET PREFIX`` appends forever (the crash test kills it);
``writer.py TARGET PREFIX --runs N --clusters A,B,C`` appends N runs spread over those clusters
and exits. A PostgreSQL TARGET reads its password from ``PGPASSWORD``.
"""

from __future__ import annotations

import argparse
import time

from pytest_kspec.history import HistoryStore, ItemResult, RunInput, Scope

SCOPE = Scope("crash-spec", "https://10.0.0.1:6443", "uid-crash")


def items(n: int, count: int = 200) -> list[ItemResult]:
    out = []
    for i in range(count):
        failing = (i + n) % 17 == 0
        events = [{"type": "compliance", "resource": f"Pod/ns/p{i}-{n % 3}",
                   "drift": "violation", "severity": "high", "message": "m" * 200}
                  ] if failing else []
        out.append(ItemResult(f"compliance::c{i}", "failed" if failing else "passed", events))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("target")
    parser.add_argument("prefix")
    parser.add_argument("--runs", type=int, default=0)
    parser.add_argument("--clusters", default="")
    args = parser.parse_args()
    scopes = [Scope("fleet-spec", f"https://{c}:6443", f"uid-{c}", name=c)
              for c in args.clusters.split(",") if c] or [SCOPE]
    with HistoryStore(args.target) as store:
        print("ready", flush=True)  # open and migrated: the crash test's clock starts here
        n = 0
        while not args.runs or n < args.runs:
            now = time.time()
            scope = scopes[n % len(scopes)]
            run_id = f"{args.prefix}-{n}"
            store.append(RunInput(run_id, scope, "1", "h" * 64, now, now,
                                  items(n, 200 if not args.runs else 40)))
            store.prune(30 * 86_400, cluster=scope.cluster)
            if args.runs:  # also what a remediating run writes
                store.record_remediation(run_id, scope, {
                    "node_id": "spec.yaml::policy::p", "resource": "ClusterPolicy/p",
                    "action": "create", "status": "verified", "dry_run": False})
            print(run_id, flush=True)
            n += 1


if __name__ == "__main__":
    main()
