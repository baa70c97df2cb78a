"""Detection alone against the floor, in one process: CPU seconds of judging every check of
a spec vs. LISTing the same kinds with the same client, at several cluster sizes.

``bench/scale.py`` times whole pytest runs (start-up, reports, history included); this
bench isolates what the checks cost per pod. The simulator serves the cluster of
``bench/scale.py`` from its own process (``kspec sim serve``), so only the client side is
measured: for each size, ``bare`` pages every kind the spec's checks read with
:meth:`Cluster.pages` and keeps nothing; ``detect`` runs a :class:`Detector` over every
target of the plan (what one pytest-kspec run evaluates). CPU time (``process_time``) is
steadier than wall time on a shared machine; ``--trace`` adds tracemalloc's peak (slower),
``--profile`` prints cProfile's top functions of the largest ``detect``. Prints figures,
asserts nothing.

Run: .venv/bin/python bench/pass_bench.py [--pods 1000,10000] [--spec examples/moderate.yaml]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import itertools
import json
import pstats
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from bench.scale import DEFAULT_SPEC, cluster_objects, kinds_read  # noqa: E402


def bare(cluster: Any, kinds: list[tuple[str, str]]) -> None:
    """Page every kind, keeping nothing: the floor."""
    from pytest_kspec.errors import ApiError

    for api_version, kind in kinds:
        try:
            for _page in cluster.pages(api_version, kind):
                pass
        except ApiError:
            pass  # not served: the detection gets the same answer


def detect(cluster: Any, plan: Any) -> None:
    """Every target of the plan, as one run evaluates them."""
    from pytest_kspec.cluster import Snapshot
    from pytest_kspec.detect import Detector

    detector = Detector(plan, Snapshot(cluster))
    for target in plan.targets:
        detector.evaluate(target)


def _measure(fn: Callable[..., object], trace: bool, *args: Any) -> tuple[float, float]:
    gc.collect()
    if trace:
        tracemalloc.start()
    start = time.process_time()
    fn(*args)
    cpu = time.process_time() - start
    peak = tracemalloc.get_traced_memory()[1] / 2**20 if trace else 0.0
    if trace:
        tracemalloc.stop()
    return cpu, peak


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", default="1000,10000")
    parser.add_argument("--spec", type=Path, default=DEFAULT_SPEC)
    parser.add_argument("--trace", action="store_true", help="also tracemalloc's peak")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile the largest size's detection")
    args = parser.parse_args(argv)
    sizes = [int(p) for p in args.pods.split(",")]

    from pytest_kspec.cluster import Cluster, Snapshot
    from pytest_kspec.detect import make_plan
    from pytest_kspec.spec import load_spec

    plan = make_plan(load_spec(args.spec))
    kinds = kinds_read(args.spec)
    rows: dict[int, dict[str, tuple[float, float]]] = {}
    tmp = Path(tempfile.mkdtemp(prefix="kspec-pass-"))
    for pods in sizes:
        state = tmp / f"state-{pods}.json"
        state.write_text(json.dumps({"apiVersion": "v1", "kind": "List",
                                     "items": list(cluster_objects(pods))}), encoding="utf-8")
        kubeconfig = tmp / f"kubeconfig-{pods}"
        server = subprocess.Popen(
            [sys.executable, "-m", "pytest_kspec.cli", "sim", "serve", "--state", str(state),
             "--kubeconfig-out", str(kubeconfig)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            assert server.stdout is not None
            for line in server.stdout:
                if line.startswith("kubeconfig:"):
                    break
            cluster = Cluster.connect(str(kubeconfig))
            try:
                Snapshot(cluster).server_version()  # connection warm
                bare(cluster, kinds)  # discovery of every kind, once, outside the figures
                rows[pods] = {"bare": _measure(bare, args.trace, cluster, kinds),
                              "detect": _measure(detect, args.trace, cluster, plan)}
                if args.profile and pods == sizes[-1]:
                    profile = cProfile.Profile()
                    profile.runcall(detect, cluster, plan)
                    pstats.Stats(profile).sort_stats("tottime").print_stats(20)
            finally:
                cluster.close()
        finally:
            server.terminate()
            server.communicate(timeout=60)
    print(f"spec: {args.spec} ({len(plan.targets)} targets, {len(kinds)} kinds read)")
    print("| pods | bare LIST CPU | detection CPU | ratio |"
          + (" bare peak | detection peak |" if args.trace else ""))
    print("|---|---|---|---|" + ("---|---|" if args.trace else ""))
    for pods, row in rows.items():
        (bare_cpu, bare_peak), (det_cpu, det_peak) = row["bare"], row["detect"]
        extra = f" {bare_peak:.1f} MB | {det_peak:.1f} MB |" if args.trace else ""
        print(f"| {pods:,} | {bare_cpu:.2f} s | {det_cpu:.2f} s | "
              f"{det_cpu / bare_cpu:.2f}x |{extra}")
    for lo, hi in itertools.pairwise(sizes):
        bare_cpu = rows[hi]["bare"][0] - rows[lo]["bare"][0]
        det_cpu = rows[hi]["detect"][0] - rows[lo]["detect"][0]
        print(f"marginal {lo:,}->{hi:,} pods: detection {det_cpu:.2f} s CPU, bare LIST "
              f"{bare_cpu:.2f} s: {det_cpu / bare_cpu:.2f}x (target <= 1.5x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
