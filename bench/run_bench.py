"""Peak memory of one in-cluster run, to size the CronJob's requests and limits.

Runs what the CronJob runs — ``pytest checks/ --kspec-spec <strict spec> ...`` in a fresh
process — against a simulator holding N pods, and prints the child's peak resident set size
(``ru_maxrss``) and wall time per N. Prints figures, asserts nothing.

Run: .venv/bin/python bench/run_bench.py [--pods 1000 5000 10000]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pytest_kspec.sim import Simulator

REPO = Path(__file__).resolve().parents[1]


def _pod(i: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"web-{i:06d}", "namespace": f"team-{i % 20}",
                         "labels": {"app": f"app-{i % 50}"}},
            "spec": {"containers": [{"name": "app",
                                     "image": "registry.example.com/app@sha256:" + "a" * 64,
                                     "securityContext": {"runAsNonRoot": True},
                                     "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]},
            "status": {"phase": "Running"}}


def run_once(pods: int) -> tuple[float, float]:
    """(peak RSS MiB, seconds) of one suite run over ``pods`` pods."""
    with Simulator(objects=[_pod(i) for i in range(pods)], kyverno=True) as sim, \
            tempfile.TemporaryDirectory() as tmp:
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "pytest", str(REPO / "checks"), "-q", "-p", "no:randomly",
             "-p", "no:cacheprovider", "--rootdir", tmp,
             "--kspec-spec", str(REPO / "examples/strict.yaml"),
             "--kspec-kubeconfig", sim.kubeconfig_path, "--kspec-reports", tmp],
            cwd=tmp, capture_output=True, check=False,
            env={k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")})
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the largest child so far: measure ascending sizes.
    return max(peak, before) / 1024, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, nargs="+", default=[1000, 5000, 10000])
    args = parser.parse_args()
    print(f"{'pods':>8}{'peak RSS MiB':>14}{'seconds':>10}")
    for pods in sorted(args.pods):
        rss, seconds = run_once(pods)
        print(f"{pods:>8}{rss:>14.0f}{seconds:>10.1f}")


if __name__ == "__main__":
    main()
