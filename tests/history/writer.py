"""Helper for the crash test: appends runs to a history forever, printing each committed id."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from pytest_kspec.history import HistoryStore, ItemResult, RunInput, Scope

SCOPE = Scope("crash-spec", "https://10.0.0.1:6443", "uid-crash")


def main(path: str, prefix: str) -> None:
    with HistoryStore(Path(path)) as store:
        n = 0
        while True:
            now = time.time()
            items = []
            for i in range(200):
                failing = (i + n) % 17 == 0
                events = [{"type": "compliance", "resource": f"Pod/ns/p{i}-{n % 3}",
                           "drift": "violation", "severity": "high", "message": "m" * 200}
                          ] if failing else []
                items.append(ItemResult(f"compliance::c{i}", "failed" if failing else "passed",
                                        events))
            run_id = f"{prefix}-{n}"
            store.append(RunInput(run_id, SCOPE, "1", "h" * 64, now, now, items))
            store.prune(30 * 86_400)
            print(run_id, flush=True)
            n += 1


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
