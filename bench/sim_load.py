"""Simulator load: parse, store and first read of a state file, in CPU seconds.

Writes ``bench/scale.py``'s state file for ``--pods`` pods, then, in a fresh interpreter
each time, loads it as ``kspec sim serve --state`` does (``load_objects`` then
``Simulator(objects)``) and reads every object whole once, 500 per page, as the first LIST
does (JSON and, for loaded state, managedFields are made on first read); then starts
``kspec sim serve --state`` and times it until it prints that it serves. With
``--against COMMIT`` the same runs alternate with that commit's package (``git archive``
into a temporary folder), so both sides meet the same machine load; CPU time is steadier
than wall time on a shared machine. Prints figures, asserts nothing.

Run: ``.venv/bin/python bench/sim_load.py --pods 10000 --against 157a05b``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

MEASURE = r'''
import contextlib, json, sys, time
from pathlib import Path
from pytest_kspec.sim import Simulator, load_objects
Simulator()  # imports and bundled data files: not timed
c0 = time.process_time()
objects = load_objects(Path(sys.argv[1]))
c1 = time.process_time()
sim = Simulator(objects, kyverno=True)
c2 = time.process_time()
try:
    from pytest_kspec.sim.store import gc_paused  # what a LIST page does around its items
except ImportError:
    gc_paused = contextlib.nullcontext
store = sim._store
for key in store.resource_keys():
    entries = store.entries(key)
    for i in range(0, len(entries), 500):
        with gc_paused():
            b",".join(e.raw for e in entries[i:i + 500])
c3 = time.process_time()
print(json.dumps({"parse": c1 - c0, "store": c2 - c1, "load": c2 - c0,
                  "first read": c3 - c2, "total": c3 - c0}))
'''
COLUMNS = ("parse", "store", "load", "first read", "total", "serve ready", "(wall)")


def measure(package_root: Path, state: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(package_root)}
    done = subprocess.run([sys.executable, "-c", MEASURE, str(state)], env=env, check=True,
                          capture_output=True, text=True, cwd=package_root)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    result["serve ready"], result["(wall)"] = serve_ready(package_root, state)
    return result


def serve_ready(package_root: Path, state: Path) -> tuple[float, float]:
    """CPU and wall seconds from starting ``kspec sim serve --state`` to its "serving at"
    line (the whole process: interpreter, imports, load, listening)."""
    env = {**os.environ, "PYTHONPATH": str(package_root)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "pytest_kspec.cli", "sim", "serve",
                             "--state", str(state), "--port", "0"], env=env,
                            cwd=package_root, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "serving at" in line:
            break
    wall = time.perf_counter() - start
    proc.terminate()  # stops serving at once: counts little CPU after the line
    proc.communicate()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return cpu, wall


def _span(values: list[float]) -> str:
    lo, hi = min(values), max(values)
    return f"{lo:.2f} s" if round(lo, 2) == round(hi, 2) else f"{lo:.2f} to {hi:.2f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=10000)
    parser.add_argument("--against", metavar="COMMIT", help="alternate with this commit")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)

    from scale import write_state

    with tempfile.TemporaryDirectory(prefix="kspec-simload-") as tmp:
        state = Path(tmp) / f"state-{args.pods}.yaml"
        write_state(args.pods, state)
        sides = {"here": ROOT}
        if args.against:
            other = Path(tmp) / "against"
            other.mkdir()
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.against,
                                      "pytest_kspec"], check=True, capture_output=True)
            subprocess.run(["tar", "-x", "-C", str(other)], input=archive.stdout, check=True)
            sides = {args.against: other, "here": ROOT}
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in sides}
        for _ in range(args.rounds):
            for name, root in sides.items():
                runs[name].append(measure(root, state))
        print(f"{args.pods:,} pods, state file {state.stat().st_size / 2**20:.1f} MB, "
              f"CPU seconds over {args.rounds} rounds (min to max)")
        print("| side | " + " | ".join(COLUMNS) + " |")
        print("|---" * (len(COLUMNS) + 1) + "|")
        for name, results in runs.items():
            cells = [_span([r[c] for r in results]) for c in COLUMNS]
            print(f"| {name} | " + " | ".join(cells) + " |")
        if args.against:
            ratios = [min(r[c] for r in runs[args.against]) / max(min(r[c] for r in
                                                                       runs["here"]), 1e-9)
                      for c in COLUMNS]
            print(f"| {args.against} / here | " + " | ".join(f"{x:.1f}x" for x in ratios)
                  + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
