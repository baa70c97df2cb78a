"""Simulator throughput: paginated LIST of 10k pods (raw HTTP and official client), watch latency.

Run: .venv/bin/python bench/sim_bench.py [--pods 10000] [--total 50000]. Prints figures only.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from typing import Any

import requests
from kubernetes import client, config

from pytest_kspec.sim import Simulator


def _pod(i: int, namespace: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"pod-{i:06d}", "namespace": namespace,
                         "labels": {"app": f"app-{i % 50}", "tier": "web"}},
            "spec": {"nodeName": f"node-{i % 20}",
                     "containers": [{"name": "app", "image": "registry.example/app:1.0",
                                     "resources": {"requests": {"cpu": "100m"}}}]},
            "status": {"phase": "Running", "podIP": f"10.0.{i // 250 % 256}.{i % 250}"}}


def list_raw(sim: Simulator, namespace: str) -> int:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {sim.admin_token}"
    count, token = 0, ""
    while True:
        url = f"{sim.url}/api/v1/namespaces/{namespace}/pods?limit=500"
        if token:
            url += f"&continue={token}"
        page = session.get(url, timeout=60, verify=sim.ca_path).json()
        count += len(page["items"])
        token = page["metadata"].get("continue", "")
        if not token:
            return count


def list_client(api: client.ApiClient, namespace: str) -> int:
    v1 = client.CoreV1Api(api)
    count, token = 0, None
    while True:
        page = v1.list_namespaced_pod(namespace, limit=500, _continue=token)
        count += len(page.items)
        token = page.metadata._continue
        if not token:
            return count


def watch_latency(sim: Simulator, samples: int) -> list[float]:
    session = requests.Session()
    rv = str(sim.resource_version)
    resp = session.get(f"{sim.url}/api/v1/namespaces/bench/configmaps?watch=true"
                       f"&resourceVersion={rv}&timeoutSeconds=60",
                       headers={"Authorization": f"Bearer {sim.admin_token}"},
                       verify=sim.ca_path, stream=True, timeout=60)
    sent: dict[str, float] = {}
    latencies: list[float] = []
    done = threading.Event()

    def reader() -> None:
        for line in resp.iter_lines():
            if not line:
                continue
            name = json.loads(line)["object"]["metadata"]["name"]
            latencies.append((time.perf_counter() - sent[name]) * 1000)
            if len(latencies) >= samples:
                done.set()
                return

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    time.sleep(0.2)
    for i in range(samples):
        name = f"cm-{i}"
        sent[name] = time.perf_counter()
        sim.create({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": name, "namespace": "bench"}})
        time.sleep(0.005)
    done.wait(30)
    resp.close()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pods", type=int, default=10_000, help="pods in the listed namespace")
    parser.add_argument("--total", type=int, default=50_000, help="pods stored in all")
    parser.add_argument("--samples", type=int, default=200, help="watch latency samples")
    args = parser.parse_args()
    sim = Simulator()
    sim.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}})
    sim.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}})
    started = time.perf_counter()
    for i in range(args.total):
        sim.create(_pod(i, "bench" if i < args.pods else "other"))
    load_s = time.perf_counter() - started
    print(f"stored {args.total} pods in {load_s:.1f} s ({args.total / load_s:,.0f} creates/s)")
    with sim:
        api = config.new_client_from_config(sim.kubeconfig_path)
        for label, fn in (("raw HTTP (requests)", lambda: list_raw(sim, "bench")),
                          ("official client", lambda: list_client(api, "bench"))):
            fn()  # warm the JSON caches
            t0 = time.perf_counter()
            n = fn()
            dt = time.perf_counter() - t0
            print(f"LIST {n} pods, limit=500, {label}: {dt:.2f} s = {n / dt:,.0f} objects/s")
        lat = sorted(watch_latency(sim, args.samples))
        if lat:
            p95 = lat[max(0, int(len(lat) * 0.95) - 1)]
            print(f"watch event latency over {len(lat)} writes: median "
                  f"{statistics.median(lat):.2f} ms, p95 {p95:.2f} ms")
        api.close()


if __name__ == "__main__":
    main()
