"""Remediation cost: requests and wall time per fix (create, update, dry-run, pod delete).

Each round builds a simulator where the spec's policies are deleted or weakened and some
unowned privileged pods run, detects, then remediates every drifted target with the real
engine (guarded write + read-back verification). Prints requests per fix and the median
time per fix for each kind of action. Asserts nothing.

Run: .venv/bin/python bench/remediate_bench.py [--rounds 5] [--pods 20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from pytest_kspec.cluster import Cluster, Snapshot
from pytest_kspec.desired import generate_policies
from pytest_kspec.detect import Detector, make_plan
from pytest_kspec.remediate import RemediationOptions, Remediator
from pytest_kspec.sim import Simulator
from pytest_kspec.spec import load_spec

SPEC = """\
apiVersion: kspec.dev/v1
kind: ClusterSpecification
metadata: {name: bench, version: 1.0.0}
spec:
  workloads:
    containers:
      forbidden:
        - {key: securityContext.privileged, value: true}
      required:
        - {key: securityContext.runAsNonRoot, value: true}
    images:
      blockedRegistries: ["docker.io/*"]
"""
CHECK = "workloads.containers.forbidden.privileged"


def _objects(spec_path: Path, pods: int, mode: str) -> list[dict[str, Any]]:
    policies = generate_policies(load_spec(spec_path))
    if mode == "update":
        for policy in policies:
            policy["spec"]["validationFailureAction"] = "Audit"
            for rule in policy["spec"]["rules"]:
                rule["validate"].pop("failureAction", None)
    objects = [] if mode in ("create", "dry-run") else policies
    for i in range(pods if mode == "delete" else 0):
        objects.append({"apiVersion": "v1", "kind": "Pod",
                        "metadata": {"name": f"debug-{i}", "namespace": "shop"},
                        "spec": {"containers": [{"name": "c", "image": "registry.example.com/x",
                                                 "securityContext": {"privileged": True,
                                                                     "runAsNonRoot": True}}]}})
    return objects


def one_round(spec_path: Path, pods: int, mode: str) -> tuple[int, float, Counter[str]]:
    objects = _objects(spec_path, pods, mode)
    resources = {CHECK: "delete"}
    plan = make_plan(load_spec(spec_path), ["policy", "resource"], resources=resources)
    with Simulator(objects=objects, kyverno=True) as sim:
        cluster = Cluster.connect(sim.kubeconfig_path)
        try:
            detector = Detector(plan, Snapshot(cluster))
            outcomes = [detector.evaluate(t) for t in plan.targets]
            remediator = Remediator(cluster, RemediationOptions(
                explicit=True, dry_run=mode == "dry-run", resources=resources,
                max_deletions=pods), snapshot=detector.snapshot)
            before = len(sim.requests)
            start = time.perf_counter()
            attempts = [a for o in outcomes for a in remediator.remediate(o)]
            elapsed = time.perf_counter() - start
            statuses = Counter(str(a["status"]) for a in attempts)
            requests = len(sim.requests) - before
        finally:
            cluster.close()
    fixes = sum(statuses.values())
    return requests, elapsed / max(fixes, 1), statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pods", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        spec_path = Path(tmp) / "cluster-spec.yaml"
        spec_path.write_text(SPEC)
        print(f"{'action':8} {'fixes':>5} {'requests/fix':>12} {'ms/fix (median)':>16}  statuses")
        for mode in ("create", "update", "dry-run", "delete"):
            times, reqs, statuses = [], 0, Counter[str]()
            for _ in range(args.rounds):
                requests, per_fix, st = one_round(spec_path, args.pods, mode)
                times.append(per_fix)
                reqs, statuses = requests, st
            fixes = sum(statuses.values())
            print(f"{mode:8} {fixes:5d} {reqs / max(fixes, 1):12.1f} "
                  f"{1000 * statistics.median(times):16.2f}  {dict(statuses)}")


if __name__ == "__main__":
    main()
