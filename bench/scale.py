"""Scale: a full pytest-kspec run against the floor (a bare paginated LIST + json parse).

For each cluster size the bench writes a simulator state file, loads it the way
``kspec sim serve --state`` / ``--kspec-sim`` does (timed: "sim load"), serves it from this
process, and runs as child processes, one after the other:

- ``first LIST``: the bare client below, once, against the freshly loaded simulator: its
  one-time cost (each object's JSON, and the managedFields of loaded state, are made when
  first read), reported with the load, so that every run after it meets a warm simulator;
- ``bare``: a minimal client that LISTs (limit=500, every page) each kind the spec's checks
  read and ``json``-parses every page, keeping nothing: the floor any detection pays;
- ``full -n 0`` and ``full -n 2``: ``pytest --kspec-spec <spec>`` as a user runs it
  (JUnit, HTML and JSON reports, history on), serially and with two xdist workers.

Figures per run: wall time (process start to exit), peak RSS (the largest single process,
from ``wait4``; with ``-n 2`` also the sampled sum of the whole process tree), and the
number of API requests the simulator served. Then the figures the targets are stated in:
fixed cost (full at the smallest size minus bare), marginal cost per pod as a ratio to the
bare LIST's, and the RSS growth between the two largest sizes. Prints figures, asserts
nothing.

Run from a clean checkout: ``.venv/bin/python bench/scale.py`` (1k, 10k and 50k pods,
several minutes); ``--pods 1000,10000`` for a quicker look.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import itertools
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

DEFAULT_SPEC = ROOT / "examples" / "moderate.yaml"
NAMESPACES = 50
PODS_PER_REPLICASET = 5


# -- the cluster ----------------------------------------------------------------------------

def _uid(kind: str, i: int) -> str:
    return f"{kind.lower()[:8]:0<8}-0000-4000-8000-{i:012d}"


def _container(image: str, *, privileged: bool) -> dict[str, Any]:
    return {"name": "app", "image": image,
            "ports": [{"containerPort": 8080, "protocol": "TCP"}],
            "env": [{"name": "LOG_LEVEL", "value": "info"}],
            "securityContext": {"privileged": privileged, "runAsNonRoot": True,
                                "allowPrivilegeEscalation": False},
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                          "limits": {"cpu": "500m", "memory": "256Mi"}}}


def cluster_objects(pods: int) -> Iterator[dict[str, Any]]:
    """A cluster of ``pods`` pods in 50 namespaces, owned by ReplicaSets of Deployments.

    One pod in 500 breaks a rule (privileged, or an image from docker.io), so the checks
    have violations to report and owners to resolve, as in a real cluster.
    """
    for n in range(NAMESPACES):
        yield {"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": f"team-{n:02d}",
                            "labels": {"pod-security.kubernetes.io/enforce": "baseline",
                                       "pod-security.kubernetes.io/warn": "restricted"}}}
        yield {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
               "metadata": {"name": "default-deny-all", "namespace": f"team-{n:02d}"},
               "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}
        yield {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "web", "namespace": f"team-{n:02d}"},
               "spec": {"type": "ClusterIP", "selector": {"app": "web"},
                        "ports": [{"port": 80, "targetPort": 8080}]}}
    for r in range((pods + PODS_PER_REPLICASET - 1) // PODS_PER_REPLICASET):
        ns = f"team-{r % NAMESPACES:02d}"
        # the template the pods were made from: compliant, as most workloads are, so the
        # drift found (and reported) is the one pod in 500, not every Deployment
        template = {"metadata": {"labels": {"app": f"app-{r:05d}"}},
                    "spec": {"containers": [_container(
                        "registry.example.com/app@sha256:" + f"{r:064x}", privileged=False)]}}
        yield {"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": f"app-{r:05d}", "namespace": ns, "uid": _uid("Deploy", r)},
               "spec": {"replicas": PODS_PER_REPLICASET,
                        "selector": {"matchLabels": {"app": f"app-{r:05d}"}},
                        "template": template}}
        yield {"apiVersion": "apps/v1", "kind": "ReplicaSet",
               "metadata": {"name": f"app-{r:05d}-7d4b9c", "namespace": ns,
                            "uid": _uid("Replica", r),
                            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                                 "name": f"app-{r:05d}", "controller": True,
                                                 "uid": _uid("Deploy", r)}]},
               "spec": {"replicas": PODS_PER_REPLICASET,
                        "selector": {"matchLabels": {"app": f"app-{r:05d}"}},
                        "template": template}}
    for i in range(pods):
        r = i // PODS_PER_REPLICASET
        bad = i % 500 == 7
        image = ("docker.io/library/nginx:1.27" if i % 500 == 3 else
                 "registry.example.com/app@sha256:" + f"{i:064x}")
        yield {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": f"app-{r:05d}-7d4b9c-{i:06d}",
                            "namespace": f"team-{r % NAMESPACES:02d}",
                            "uid": _uid("Pod", i),
                            "labels": {"app": f"app-{r:05d}", "pod-template-hash": "7d4b9c"},
                            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                                 "name": f"app-{r:05d}-7d4b9c",
                                                 "controller": True,
                                                 "uid": _uid("Replica", r)}]},
               "spec": {"nodeName": f"node-{i % 40:02d}",
                        "serviceAccountName": "default",
                        "containers": [_container(image, privileged=bad)]},
               "status": {"phase": "Running",
                          "podIP": f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}",
                          "hostIP": f"192.168.0.{i % 40}"}}


def write_state(pods: int, path: Path) -> None:
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    with path.open("w", encoding="utf-8") as out:
        yaml.dump_all(cluster_objects(pods), out, Dumper=dumper, sort_keys=False)


# -- measuring a child process -------------------------------------------------------------

@dataclass
class Figures:
    seconds: float
    cpu: float           # user + system CPU seconds of the whole tree (steadier than wall
                         # time on a shared machine)
    rss_mb: float        # largest single process (wait4 for the main one, sampled for workers)
    tree_mb: float       # sampled sum over the process tree
    requests: int
    lists: int
    status: int
    output: str


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return out


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


# A small launcher between this (large) process and the measured one: a child forked from a
# large process inherits its peak RSS in the kernel's accounting; one forked from the
# launcher does not. RUSAGE_CHILDREN then holds the largest process of the measured tree.
LAUNCHER = r'''
import json, os, resource, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.Popen(sys.argv[2:])
proc.wait()
seconds = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(sys.argv[1], "w") as f:
    json.dump({"seconds": seconds, "maxrss_kb": usage.ru_maxrss, "status": proc.returncode,
               "cpu": usage.ru_utime + usage.ru_stime}, f)
'''


def run_child(cmd: list[str], sim: Any, cwd: Path, env: dict[str, str]) -> Figures:
    """Run ``cmd``; wall time, peak RSS and the requests the simulator saw meanwhile."""
    before = len(sim.requests)
    peak = {"tree": 0}
    result = cwd / "child.json"
    proc = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(result), *cmd], cwd=cwd,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            pids, todo = [], _children(proc.pid)
            while todo:
                pid = todo.pop()
                pids.append(pid)
                todo += _children(pid)
            peak["tree"] = max(peak["tree"], sum(_rss_kb(p) for p in pids))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = proc.communicate()
    done.set()
    sampler.join()
    measured = json.loads(result.read_text(encoding="utf-8"))
    records = sim.requests[before:]
    lists = sum(1 for r in records if r.method == "GET" and "limit" in r.query)
    rss = measured["maxrss_kb"] / 1024
    return Figures(measured["seconds"], measured["cpu"], rss, max(rss, peak["tree"] / 1024),
                   len(records), lists, measured["status"], output.decode("utf-8", "replace"))


# -- the floor: a bare paginated LIST ------------------------------------------------------

BARE = r'''
import json, sys, urllib3
url, token, ca, paths = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
http = urllib3.PoolManager(ca_certs=ca, cert_reqs="CERT_REQUIRED", assert_hostname=False)
headers = {"Authorization": "Bearer " + token, "Accept": "application/json"}
items = 0
for path in paths:
    token_ = ""
    while True:
        fields = {"limit": "500"}
        if token_:
            fields["continue"] = token_
        resp = http.request("GET", url + path, fields=fields, headers=headers)
        page = json.loads(resp.data)
        items += len(page.get("items") or [])
        token_ = (page.get("metadata") or {}).get("continue") or ""
        if not token_:
            break
print(items)
'''


def kinds_read(spec: Path) -> list[tuple[str, str]]:
    """The (apiVersion, kind) pairs a run of ``spec`` lists (its checks' kinds, policies)."""
    from pytest_kspec.detect import make_plan
    from pytest_kspec.detect.compliance import OWNER_RESOURCES, resources_needed
    from pytest_kspec.spec import load_spec

    plan = make_plan(load_spec(spec))
    kinds: list[tuple[str, str]] = []
    for target in plan.targets:
        needed = ([("kyverno.io/v1", "ClusterPolicy")] if target.type == "policy" else
                  resources_needed(target.check) if target.check and target.type != "configuration"
                  else [])
        kinds += [k for k in needed if k not in kinds]
    kinds += [k for k in OWNER_RESOURCES if k not in kinds]
    return kinds


def list_paths(sim: Any, kinds: list[tuple[str, str]]) -> list[str]:
    """The collection paths of ``kinds`` as the simulator serves them (discovery)."""
    from pytest_kspec.cluster import Cluster
    from pytest_kspec.errors import ApiError

    cluster = Cluster.connect(sim.kubeconfig_path)
    paths = []
    try:
        for api_version, kind in kinds:
            # not served: the full run gets the same 404 from discovery
            with contextlib.suppress(ApiError):
                paths.append(cluster.resource(api_version, kind).path())
    finally:
        cluster.close()
    return paths


# -- the table ------------------------------------------------------------------------------

def _row(label: str, pods: int, f: Figures, bare: Figures) -> str:
    ratio = f.seconds / bare.seconds if bare.seconds else 0.0
    return (f"| {pods:>6,} | {label:<10} | {f.seconds:7.2f} s | {f.cpu:7.2f} s | {ratio:5.1f}x | "
            f"{f.rss_mb:6.0f} MB | {f.tree_mb:6.0f} MB | {f.requests:5d} | {f.lists:5d} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", default="1000,10000,50000",
                        help="comma-separated cluster sizes (default 1000,10000,50000)")
    parser.add_argument("--workers", default="0,2", help="xdist -n values (default 0,2)")
    parser.add_argument("--spec", type=Path, default=DEFAULT_SPEC)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--compare", type=Path, metavar="DIR",
                        help="also run the pytest-kspec of another checkout (e.g. "
                             "`git archive REF | tar -x -C DIR`) with the same interpreter, "
                             "right after this one's, for before/after rows in one run")
    args = parser.parse_args(argv)
    sizes = [int(p) for p in args.pods.split(",")]
    workers = [int(w) for w in args.workers.split(",")]

    from pytest_kspec.sim import Simulator, load_objects

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
          f"Python {platform.python_version()}, {platform.system()} {platform.release()}")
    print(f"spec: {args.spec} ({len(kinds_read(args.spec))} kinds read)")
    tmp = Path(tempfile.mkdtemp(prefix="kspec-scale-"))
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE", "")}
    env.pop("PYTEST_ADDOPTS", None)
    spec = tmp / args.spec.name
    spec.write_text(args.spec.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    rows: list[str] = []
    results: dict[tuple[int, str], Figures] = {}
    loads: dict[int, tuple[float, float, Figures]] = {}
    for pods in sizes:
        state = tmp / f"state-{pods}.yaml"
        write_state(pods, state)
        start, cpu = time.perf_counter(), time.process_time()
        sim = Simulator(load_objects(state), kyverno=True)
        load_wall, load_cpu = time.perf_counter() - start, time.process_time() - cpu
        gc.freeze()  # as `kspec sim serve` does once it has loaded its state
        sim.start()
        try:
            paths = list_paths(sim, kinds_read(args.spec))
            bare_cmd = [sys.executable, "-c", BARE, sim.url, sim.admin_token, sim.ca_path, *paths]
            # the first LIST of each object makes its JSON (and the managedFields of loaded
            # state): a one-time cost of the simulator, measured here so that the bare LIST
            # and the full runs below all meet a warm simulator
            first = run_child(bare_cmd, sim, tmp, env)
            loads[pods] = (load_wall, load_cpu, first)
            bare = run_child(bare_cmd, sim, tmp, env)
            if bare.status != 0:
                print(bare.output)
                return 2
            results[(pods, "bare")] = bare
            rows.append(_row("bare LIST", pods, bare, bare))
            for n, (label, pythonpath) in itertools.product(workers, _variants(args.compare)):
                cmd = [sys.executable, "-m", "pytest", "--kspec-spec", str(spec),
                       "--kspec-kubeconfig", sim.kubeconfig_path, "-q", "-p", "no:randomly",
                       "--kspec-reports", str(tmp / "reports"), "-n", str(n),
                       # hypothesis (our test extra, not a dependency) imports itself at
                       # every session end (~1.4 s): not what a pytest-kspec user pays
                       "-p", "no:hypothesispytest"]
                full = run_child(cmd, sim, tmp, {**env, **pythonpath})
                if full.status not in (0, 1):
                    print(full.output[-3000:])
                    return 2
                results[(pods, f"n{n}{label}")] = full
                rows.append(_row(f"full -n {n}{label}", pods, full, bare))
        finally:
            sim.stop()
        print(f"  {pods:,} pods: state file {state.stat().st_size / 2**20:.1f} MB, "
              f"sim load {load_wall:.2f} s ({load_cpu:.2f} s CPU)", flush=True)
        del sim
        gc.unfreeze()  # the stopped simulator may be collected again
    print()
    print("| pods | run | wall | CPU | vs bare (wall) | peak RSS (largest process) "
          "| peak RSS (tree) | requests | LISTs |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(row)
    print()
    print("| pods | simulator load of the state file (wall) | (CPU) "
          "| first LIST of every kind (wall, cold simulator) |")
    print("|---|---|---|---|")
    for pods, (wall, cpu, first) in loads.items():
        print(f"| {pods:,} | {wall:.2f} s | {cpu:.2f} s | {first.seconds:.2f} s |")
    _targets(sizes, workers, results, args.compare)
    if args.keep:
        print(f"kept {tmp}")
    else:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def _variants(compare: Path | None) -> list[tuple[str, dict[str, str]]]:
    """(row suffix, environment) of each pytest-kspec measured: this checkout, and with
    ``--compare`` the other one, both imported from their folders (PYTHONPATH), so the
    two are loaded the same way."""
    if compare is None:
        return [("", {})]
    return [("", {"PYTHONPATH": str(ROOT)}), (" (cmp)", {"PYTHONPATH": str(compare.resolve())})]


def _targets(sizes: list[int], workers: list[int], results: dict[tuple[int, str], Figures],
             compare: Path | None = None) -> None:
    """The figures the targets are stated in."""
    print()
    small = sizes[0]
    for n, (label, _) in itertools.product(workers, _variants(compare)):
        key = f"n{n}{label}"
        fixed = results[(small, key)].seconds - results[(small, "bare")].seconds
        fixed_cpu = results[(small, key)].cpu - results[(small, "bare")].cpu
        print(f"-n {n}{label}: fixed cost (full - bare at {small:,} pods): {fixed:.2f} s wall, "
              f"{fixed_cpu:.2f} s CPU (target <= 0.6 s)")
        for lo, hi in itertools.pairwise(sizes):
            full = results[(hi, key)].seconds - results[(lo, key)].seconds
            bare = results[(hi, "bare")].seconds - results[(lo, "bare")].seconds
            per_pod = full / (hi - lo) * 1e6
            ratio = full / bare if bare > 0 else float("inf")
            cpu_full = results[(hi, key)].cpu - results[(lo, key)].cpu
            cpu_bare = results[(hi, "bare")].cpu - results[(lo, "bare")].cpu
            cpu_ratio = cpu_full / cpu_bare if cpu_bare > 0 else float("inf")
            print(f"-n {n}{label}: marginal cost {lo:,}->{hi:,} pods: {per_pod:.1f} us/pod, "
                  f"{ratio:.2f}x the bare LIST's wall time, {cpu_ratio:.2f}x its CPU "
                  "(target <= 1.5x)")
        for size in sizes:
            print(f"-n {n}{label}: peak RSS at {size:,} pods: {results[(size, key)].rss_mb:.0f} MB "
                  f"(largest process; target <= 100 MB at 10k, +15 MB at 50k)")
    print(json.dumps({f"{p}/{k}": round(f.seconds, 3) for (p, k), f in results.items()}))


if __name__ == "__main__":
    sys.exit(main())
