"""One pytest session over many clusters: wall time and API traffic per cluster.

Starts ``--clusters`` simulators (each the demo cluster of ``examples/``), serves them as the
contexts of one kubeconfig, and runs ``pytest --kspec-spec examples/moderate.yaml
--kspec-context all`` in a subprocess with ``-n 0`` and with ``-n --workers``. For each run it
prints the wall time (Python start-up and xdist start included) and, per cluster, how many LIST
requests it served and whether any kind was listed twice: with several clusters kspec keeps
each cluster's items on one worker, so a kind is listed once per cluster whatever ``-n`` is.
Prints figures, asserts nothing.

    .venv/bin/python bench/fleet_run_bench.py [--clusters 4] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytest_kspec.sim import Simulator, load_objects  # noqa: E402


def kubeconfig(path: Path, sims: dict[str, Simulator]) -> None:
    merged: dict[str, Any] = {"apiVersion": "v1", "kind": "Config",
                              "current-context": next(iter(sims)), "clusters": [],
                              "users": [], "contexts": []}
    for name, sim in sims.items():
        own = yaml.safe_load(Path(sim.kubeconfig_path).read_text())
        merged["clusters"].append({"name": name, "cluster": own["clusters"][0]["cluster"]})
        merged["users"].append({"name": name, "user": own["users"][0]["user"]})
        merged["contexts"].append({"name": name, "context": {"cluster": name, "user": name}})
    path.write_text(yaml.safe_dump(merged))


def run(workdir: Path, kube: Path, workers: int, sims: dict[str, Simulator]) -> None:
    for sim in sims.values():
        sim.requests.clear()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", "-q",
         "--kspec-spec", "moderate.yaml", "--kspec-kubeconfig", str(kube),
         "--kspec-context", "all", "--kspec-no-history", "-n", str(workers)],
        cwd=workdir, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr
    print(f"-n {workers}: {seconds:.1f} s wall, exit {proc.returncode}: {last}")
    for name, sim in sims.items():
        lists = Counter(r.path for r in sim.requests if r.method == "GET" and "limit" in r.query)
        twice = sum(1 for n in lists.values() if n > 1)
        print(f"  {name}: {len(sim.requests)} requests, {sum(lists.values())} LISTs of "
              f"{len(lists)} kinds, {twice} kind(s) listed more than once")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    objects = load_objects([ROOT / "examples" / "demo-cluster.yaml"])
    sims = {f"cluster-{i:02d}": Simulator(objects=objects, kyverno=True)
            for i in range(args.clusters)}
    for sim in sims.values():
        sim.start()
    try:
        with tempfile.TemporaryDirectory(prefix="kspec-fleet-run-") as tmp:
            workdir = Path(tmp)
            (workdir / "moderate.yaml").write_text(
                (ROOT / "examples" / "moderate.yaml").read_text())
            kube = workdir / "kubeconfig"
            kubeconfig(kube, sims)
            print(f"{args.clusters} simulated clusters, spec examples/moderate.yaml")
            run(workdir, kube, 0, sims)
            run(workdir, kube, args.workers, sims)
    finally:
        for sim in sims.values():
            sim.stop()


if __name__ == "__main__":
    main()
