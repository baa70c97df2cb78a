"""Kyverno admission in the simulator: what reviewing a write costs.

Creates pods over the API in a simulator holding examples/strict.yaml's generated Enforce
policies, with admission on and off, and prints the median request time of each and the time
the engine alone spends judging one pod against every policy (registry regexes, patterns,
foreach + deny). Prints figures, asserts nothing.

Run: .venv/bin/python bench/admission_bench.py [--pods 200]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import requests

from pytest_kspec.desired.expected import generate_policies
from pytest_kspec.sim import Simulator
from pytest_kspec.sim.admission import review
from pytest_kspec.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
DIGEST = "sha256:" + "0123456789abcdef" * 4


def _pod(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "shop"},
            "spec": {"securityContext": {"runAsNonRoot": True}, "containers": [{
                "name": "app", "image": f"registry.example.com/team/app@{DIGEST}",
                "securityContext": {"allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True},
                "resources": {"limits": {"cpu": "1", "memory": "512Mi",
                                         "ephemeral-storage": "1Gi"},
                              "requests": {"cpu": "100m", "memory": "128Mi"}}}]}}


def _requests(sim: Simulator, pods: int, prefix: str) -> list[float]:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {sim.admin_token}"
    times = []
    for i in range(pods):
        start = time.perf_counter()
        resp = session.post(f"{sim.url}/api/v1/namespaces/shop/pods", json=_pod(f"{prefix}{i}"),
                            verify=sim.ca_path, timeout=10)
        times.append(time.perf_counter() - start)
        assert resp.status_code == 201, resp.text
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pods", type=int, default=200)
    args = parser.parse_args()
    policies = generate_policies(load_spec(ROOT / "examples" / "strict.yaml"))
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}
    with Simulator([*policies, namespace], kyverno=True) as sim:
        on = _requests(sim, args.pods, "on-")
        sim.admission_enabled = False
        off = _requests(sim, args.pods, "off-")
    start = time.perf_counter()
    for _ in range(args.pods):
        assert review(policies, _pod("x"), operation="CREATE") == []
    engine = (time.perf_counter() - start) / args.pods
    print(f"policies: {len(policies)} ({sum(len(p['spec']['rules']) for p in policies)} rules)")
    print(f"pod create, admission on:  median {statistics.median(on) * 1000:.2f} ms")
    print(f"pod create, admission off: median {statistics.median(off) * 1000:.2f} ms")
    print(f"engine alone, one pod against every policy: {engine * 1000:.2f} ms")


if __name__ == "__main__":
    main()
