"""Detection at scale: kspec's raw-JSON snapshot vs the official client's typed models.

Both read the same 10,000 pods from the simulator with paginated LISTs (limit=500) and run
the same "no privileged container" check; the figures are wall time and peak Python memory
(tracemalloc) of each path, side by side, and their ratio. Prints figures, asserts nothing.

Run: .venv/bin/python bench/detect_bench.py [--pods 10000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from kubernetes import client, config

from pytest_kspec.cluster import Cluster, Snapshot
from pytest_kspec.desired import enumerate_checks
from pytest_kspec.detect import evaluate
from pytest_kspec.sim import Simulator

BODY = {"workloads": {"containers": {"forbidden": [
    {"key": "securityContext.privileged", "value": True}]}}}


def _pod(i: int) -> dict[str, Any]:
    ctx = {"privileged": True} if i % 1000 == 0 else {"runAsNonRoot": True}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"web-{i:06d}", "namespace": f"team-{i % 20}",
                         "labels": {"app": f"app-{i % 50}"}},
            "spec": {"containers": [{"name": "app", "image": "registry.example.com/app:1.0",
                                     "securityContext": ctx,
                                     "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]},
            "status": {"phase": "Running"}}


def kspec_path(kubeconfig: str) -> int:
    cluster = Cluster.connect(kubeconfig)
    try:
        (ref,) = enumerate_checks(BODY)
        return len(evaluate(ref, Snapshot(cluster)).violations)
    finally:
        cluster.close()


def typed_client_path(kubeconfig: str) -> int:
    api = client.CoreV1Api(config.new_client_from_config(config_file=kubeconfig))
    pods, token = [], None
    while True:
        page = api.list_pod_for_all_namespaces(limit=500, _continue=token)
        pods.extend(page.items)
        token = page.metadata._continue
        if not token:
            break
    bad = 0
    for pod in pods:
        if pod.metadata.namespace in ("kube-system", "kube-public", "kube-node-lease"):
            continue
        for c in pod.spec.containers or []:
            if c.security_context is not None and c.security_context.privileged:
                bad += 1
    api.api_client.close()
    return bad


def measure(fn: Callable[[str], int], kubeconfig: str, rounds: int) -> tuple[float, float, int]:
    times, peaks, result = [], [], 0
    for _ in range(rounds):
        gc.collect()
        tracemalloc.start()
        start = time.perf_counter()
        result = fn(kubeconfig)
        times.append(time.perf_counter() - start)
        peaks.append(tracemalloc.get_traced_memory()[1] / 2**20)
        tracemalloc.stop()
    return statistics.median(times), statistics.median(peaks), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with Simulator(objects=[_pod(i) for i in range(args.pods)]) as sim:
        ours = measure(kspec_path, str(sim.kubeconfig_path), args.rounds)
        base = measure(typed_client_path, str(sim.kubeconfig_path), args.rounds)
    assert ours[2] == base[2], (ours, base)
    print(f"pods: {args.pods}, privileged found: {ours[2]} (both paths agree)")
    print(f"{'path':<28}{'time (s)':>10}{'peak MiB':>10}")
    print(f"{'kspec raw-JSON snapshot':<28}{ours[0]:>10.2f}{ours[1]:>10.1f}")
    print(f"{'official client models':<28}{base[0]:>10.2f}{base[1]:>10.1f}")
    print(f"ratio (models / kspec): time {base[0] / ours[0]:.1f}x, "
          f"memory {base[1] / ours[1]:.1f}x")


if __name__ == "__main__":
    main()
