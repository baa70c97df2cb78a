"""Watch mode budgets: drift→detection and drift→alert latency, idle CPU, RSS after churn.

Starts a simulator with --pods pods and the spec's policies, runs ``kspec drift detect
--watch`` as a subprocess (as the watch Deployment runs it) with alerts to a loopback
webhook, then:

1. makes --drifts drifts, one at a time: deletes a policy, then restores it (each is a drift
   state change and an alert: new, then resolved); drift→detection is from the API write
   to the watch printing "drift state changed", drift→alert to the webhook receiving it;
2. stays idle for --idle seconds: CPU of the watch process (utime+stime from /proc) and
   the requests the simulator received meanwhile (the watch streams are long-lived and not
   counted; a reconnect or a LIST would be);
3. churns pods (--churn creates and deletes) and prints the watch process's RSS.

Prints figures; asserts nothing. Run:
    .venv/bin/python bench/watch_bench.py [--pods 10000] [--drifts 100] [--idle 60]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from pytest_kspec.desired import generate_policies
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
POLICY = ("kyverno.io/v1", "ClusterPolicy")
TICK = os.sysconf("SC_CLK_TCK")


def pod(i: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"app-{i}", "namespace": "default", "labels": {"app": "a"}},
            "spec": {"containers": [{"name": "c", "image": "registry.example.com/a:1",
                                     "securityContext": {"runAsNonRoot": True}}]}}


class Receiver:
    """Loopback webhook: records the arrival time of each alert."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, dict[str, Any]]] = []
        self.cond = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer.cond:
                    outer.arrivals.append((time.monotonic(), body))
                    outer.cond.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def wait(self, count: int, timeout: float = 30) -> float:
        with self.cond:
            self.cond.wait_for(lambda: len(self.arrivals) >= count, timeout)
            return self.arrivals[count - 1][0] if len(self.arrivals) >= count else float("nan")


class Watch:
    def __init__(self, cwd: Path, kubeconfig: str, config: Path) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pytest_kspec.cli", "drift", "detect", "--watch", "-q",
             "--spec", "cluster-spec.yaml", "--kubeconfig", kubeconfig, "--config",
             str(config)], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True)
        self.lines: list[tuple[float, str]] = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append((time.monotonic(), line.rstrip()))
                self.cond.notify_all()

    def wait(self, text: str, after: int, timeout: float = 60) -> float:
        with self.cond:
            def found() -> float | None:
                for at, line in self.lines[after:]:
                    if text in line:
                        return at
                return None
            self.cond.wait_for(lambda: found() is not None or self.proc.poll() is not None,
                               timeout)
            at = found()
            if at is None:
                tail = "\n".join(line for _, line in self.lines[-40:])
                raise SystemExit(f"watch did not print {text!r}:\n{tail}")
            return at

    def mark(self) -> int:
        with self.cond:
            return len(self.lines)

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pods", type=int, default=10000)
    ap.add_argument("--drifts", type=int, default=100)
    ap.add_argument("--idle", type=float, default=60.0)
    ap.add_argument("--churn", type=int, default=2000)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="kspec-watch-bench-"))
    (tmp / "cluster-spec.yaml").write_text(SPEC)
    policies = generate_policies(load_spec(tmp / "cluster-spec.yaml"))
    name = policies[0]["metadata"]["name"]
    receiver = Receiver()
    config = tmp / "drift.yaml"
    config.write_text(yaml.safe_dump({
        "apiVersion": "kspec.dev/v1", "kind": "DriftConfig", "metadata": {"name": "bench"},
        "spec": {"interval": "1h", "alerts": {"enabled": True, "minInterval": "0s",
                                              "channels": [{"name": "hook", "type": "webhook",
                                                            "url": receiver.url,
                                                            "severity": "info"}]}}}))
    objects = [copy.deepcopy(p) for p in policies] + [pod(i) for i in range(args.pods)]
    with Simulator(objects=objects, kyverno=True) as sim:
        sim.bookmark_interval = 60.0  # as a real API server: about one a minute
        t0 = time.monotonic()
        watch = Watch(tmp, sim.kubeconfig_path, config)
        watch.wait("kspec: watching", 0, timeout=600)
        print(f"pods: {args.pods}; first detection + watch start: "
              f"{time.monotonic() - t0:.1f}s; RSS {watch.rss_mb():.0f} MB")
        detect: list[float] = []
        alert: list[float] = []
        for i in range(args.drifts):
            mark = watch.mark()
            sent = len(receiver.arrivals)
            start = time.monotonic()
            if i % 2 == 0:
                sim.delete(*POLICY, name)
            else:
                sim.create(copy.deepcopy(policies[0]))
            detect.append(watch.wait("drift state changed", mark) - start)
            alert.append(receiver.wait(sent + 1) - start)
        for label, values in (("drift→detection", detect), ("drift→alert", alert)):
            print(f"{label} over {len(values)} drifts: p50 {pct(values, 50) * 1000:.0f} ms, "
                  f"p95 {pct(values, 95) * 1000:.0f} ms, p99 {pct(values, 99) * 1000:.0f} ms")
        time.sleep(2)
        before_requests = len(sim.requests)
        cpu0, wall0 = watch.cpu_seconds(), time.monotonic()
        time.sleep(args.idle)
        cpu = watch.cpu_seconds() - cpu0
        wall = time.monotonic() - wall0
        idle_requests = sim.requests[before_requests:]
        print(f"idle {wall:.0f}s: CPU {cpu:.2f}s = {100 * cpu / wall:.2f}% of one core; "
              f"requests while idle: {len(idle_requests)}"
              + (f" ({sorted({r.verb for r in idle_requests})})" if idle_requests else ""))
        for i in range(args.churn):
            sim.create({**pod(args.pods + i), "metadata": {
                "name": f"churn-{i}", "namespace": "default"}})
            if i >= 100:
                sim.delete("v1", "Pod", f"churn-{i - 100}", "default")
        mark = watch.mark()
        sim.delete(*POLICY, name)  # one last change: the watch has consumed the churn
        watch.wait("drift state changed", mark, timeout=120)
        print(f"RSS after {args.drifts} drifts and {args.churn} pod creates/deletes: "
              f"{watch.rss_mb():.0f} MB")
        watch.proc.terminate()
        code = watch.proc.wait(timeout=60)
        print(f"SIGTERM: exit {code}")


if __name__ == "__main__":
    main()
