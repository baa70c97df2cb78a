"""Requests do not grow with the cluster: one paginated LIST per kind per run, whatever the size.

Every check of ``examples/moderate.yaml`` (policies, compliance, configuration) is judged
against a simulator holding 10 and then 1,000 pods; the simulator's request log shows what
the run asked the API server for. Figures of time and memory are in ``bench/scale.py``.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pytest_kspec.cluster import Cluster, Snapshot
from pytest_kspec.detect import Detector, evaluate, make_plan
from pytest_kspec.detect.compliance.podspecs import POD_RESOURCES
from pytest_kspec.detect.stream import streamed_kind
from pytest_kspec.sim import Simulator
from pytest_kspec.spec import load_spec

SPEC = Path(__file__).resolve().parents[2] / "examples" / "moderate.yaml"
PAGE = 500  # the page size kspec asks for (Cluster.list's limit)


def _objects(pods: int) -> list[dict[str, Any]]:
    """``pods`` pods in 5 namespaces, each owned by a ReplicaSet of a Deployment; every
    tenth pod is privileged, so checks find violations and resolve owners."""
    out: list[dict[str, Any]] = []
    for n in range(5):
        out.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"team-{n}"}})
    for i in range(pods):
        ns = f"team-{i % 5}"
        rs = f"web-{i % 5}-6f7d"
        if i < 5:
            template = {"metadata": {"labels": {"app": "web"}},
                        "spec": {"containers": [{"name": "app", "image": "nginx"}]}}
            out.append({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                        "metadata": {"name": rs, "namespace": ns, "ownerReferences": [
                            {"apiVersion": "apps/v1", "kind": "Deployment",
                             "name": f"web-{i % 5}", "uid": f"d-{i}", "controller": True}]},
                        "spec": {"selector": {"matchLabels": {"app": "web"}},
                                 "template": template}})
        out.append({"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": f"web-{i:05d}", "namespace": ns,
                                 "ownerReferences": [{"apiVersion": "apps/v1",
                                                      "kind": "ReplicaSet", "name": rs,
                                                      "uid": f"rs-{i % 5}",
                                                      "controller": True}]},
                    "spec": {"containers": [{
                        "name": "app", "image": "docker.io/library/nginx:1.27",
                        "securityContext": {"privileged": i % 10 == 0}}]}})
    return out


def _requests_of_a_run(pods: int) -> list[Any]:
    plan = make_plan(load_spec(SPEC))
    with Simulator(_objects(pods), kyverno=True) as sim:
        cluster = Cluster.connect(sim.kubeconfig_path)
        try:
            start = len(sim.requests)
            detector = Detector(plan, Snapshot(cluster))
            outcomes = [detector.evaluate(t) for t in plan.targets]
            assert all(o.status != "error" for o in outcomes), [
                o.text for o in outcomes if o.status == "error"]
            assert any(o.failed for o in outcomes if o.target.type == "compliance")
            return list(sim.requests[start:])
        finally:
            cluster.close()


@pytest.fixture(scope="module")
def runs() -> dict[int, list[Any]]:
    return {pods: _requests_of_a_run(pods) for pods in (10, 1000)}


def _lists(records: list[Any]) -> Counter[str]:
    """First pages per collection path: how many times the run started a LIST of it."""
    return Counter(r.path for r in records
                   if r.method == "GET" and "limit" in r.query and "continue" not in r.query)


def test_each_kind_is_listed_once_per_run(runs: dict[int, list[Any]]) -> None:
    for pods, records in runs.items():
        lists = _lists(records)
        assert lists, f"{pods} pods: no LIST requests recorded"
        assert set(lists.values()) == {1}, f"{pods} pods: kinds listed more than once: {lists}"
        assert "/api/v1/pods" in lists


def test_requests_do_not_grow_with_the_cluster(runs: dict[int, list[Any]]) -> None:
    small, large = runs[10], runs[1000]
    assert _lists(small) == _lists(large)
    # Besides LIST pages, the same requests (discovery, /version) at any size: no per-object GET.
    others = [Counter(r.path for r in rs if "limit" not in r.query) for rs in (small, large)]
    assert others[0] == others[1]
    # 1,000 pods take two pages of 500, 10 pods one: the only growth is pages.
    pages = [sum(1 for r in rs if r.path == "/api/v1/pods") for rs in (small, large)]
    assert pages == [1, -(-1000 // PAGE)]
    assert len(large) - len(small) == pages[1] - pages[0]


# -- one pass per kind, page by page ----------------------------------------------------------

STREAM_SPEC = """\
apiVersion: kspec.dev/v1
kind: ClusterSpecification
metadata: {name: paged, version: 1.0.0}
spec:
  podSecurity:
    enforce: baseline
    exemptions:
      - {namespace: team-3, level: privileged, reason: node agents}
  network:
    disallowedPorts: [22, 3389]
  workloads:
    containers:
      required:
        - {key: securityContext.runAsNonRoot, value: true}
        - {key: resources.limits.memory, exists: true}
      forbidden:
        - {key: securityContext.privileged, value: true}
        - {key: hostNetwork, value: true}
    images:
      blockedRegistries: ["docker.io/*"]
      requireDigests: true
      requireSignatures: true
  observability:
    metrics: {required: true, providers: [prometheus]}
    logging:
      auditLog: {required: true, minRetentionDays: 30}
"""

MANAGED = [{"manager": "kubectl", "operation": "Update", "apiVersion": "v1",
            "time": "2024-01-01T00:00:00Z", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": {"f:containers": {}}}}]
GOOD_IMAGE = "registry.example.com/app@sha256:" + "a" * 64


def _pod(i: int, owner: int, *, bad: bool) -> dict[str, Any]:
    ns = "kube-system" if i % 7 == 0 and not bad else f"team-{owner % 5}"
    container: dict[str, Any] = {
        "name": "app", "image": "docker.io/library/nginx:1" if bad else GOOD_IMAGE,
        "securityContext": {"runAsNonRoot": not bad, "privileged": bad}}
    if not bad:
        container["resources"] = {"limits": {"memory": "64Mi"}}
    if bad and i % 3 == 0:
        container["ports"] = [{"containerPort": 22}]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"p-{i:06d}", "namespace": ns, "managedFields": MANAGED,
                         "labels": {"app": "web", "tier": "bad" if bad else "good"},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                              "name": f"rs-{owner}", "controller": True,
                                              "uid": f"rs-{owner}"}]},
            "spec": {"hostNetwork": bad and i % 2 == 0, "containers": [container]}}


def _template(privileged: bool) -> dict[str, Any]:
    return {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{
        "name": "app", "image": GOOD_IMAGE, "resources": {"limits": {"memory": "64Mi"}},
        "securityContext": {"runAsNonRoot": True, "privileged": privileged}}]}}


def _cluster(pods: int, bad_every: int, per_controller: int = 5) -> list[dict[str, Any]]:
    """``pods`` pods, one Deployment and ReplicaSet per ``per_controller`` of them; one pod
    in ``bad_every`` breaks every rule. web-1's template is privileged, so the privileged
    pods of rs-1 fold into it; one ReplicaSet has no owner; a kube-apiserver pod, a
    prometheus Deployment and a ClusterPolicy verifying the company registry's images."""
    controllers = max(5, pods // per_controller)
    out: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"team-{n}"}}
        for n in range(5)]
    out += [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
             "metadata": {"name": f"rs-{n}", "namespace": f"team-{n % 5}", "uid": f"rs-{n}",
                          "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                               "name": f"web-{n}", "uid": f"d-{n}",
                                               "controller": True}]},
             "spec": {"selector": {"matchLabels": {"app": "web"}},
                      "template": _template(n == 1)}}
            for n in range(controllers)]
    out += [{"apiVersion": "apps/v1", "kind": "Deployment",
             "metadata": {"name": f"web-{n}", "namespace": f"team-{n % 5}", "uid": f"d-{n}"},
             "spec": {"selector": {"matchLabels": {"app": "web"}},
                      "template": _template(n == 1)}}
            for n in range(controllers)]
    out.append({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "kube-prometheus-stack", "namespace": "team-0"},
                "spec": {"selector": {"matchLabels": {"app": "prom"}},
                         "template": _template(False)}})
    out.append({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": "lonely", "namespace": "team-2"},
                "spec": {"selector": {"matchLabels": {"app": "lonely"}},
                         "template": {"metadata": {"labels": {"app": "lonely"}}, "spec": {
                             "containers": [{"name": "app",
                                             "image": "docker.io/library/busybox"}]}}}})
    out.append({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "ssh", "namespace": "team-0"},
                "spec": {"ports": [{"port": 22}]}})
    out.append({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "kube-apiserver-cp", "namespace": "kube-system",
                             "labels": {"component": "kube-apiserver"}},
                "spec": {"containers": [{"name": "kube-apiserver", "image": GOOD_IMAGE,
                                         "command": ["kube-apiserver",
                                                     "--audit-log-path=/var/log/audit.log",
                                                     "--audit-log-maxage=7"]}]}})
    out.append({"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy",
                "metadata": {"name": "verify-images"},
                "spec": {"validationFailureAction": "Enforce", "rules": [{
                    "name": "verify", "verifyImages": [
                        {"imageReferences": ["registry.example.com/*"]}]}]}})
    out += [_pod(i, i % controllers, bad=i % bad_every == 3) for i in range(pods)]
    return out


def _stream_plan(tmp_path: Path) -> Any:
    path = tmp_path / "paged.yaml"
    path.write_text(STREAM_SPEC, encoding="utf-8")
    plan = make_plan(load_spec(path), ("compliance", "resource"))
    assert sum(1 for t in plan.targets if t.check and streamed_kind(t.check)) >= 10
    return plan


def test_page_by_page_gives_the_whole_list_verdicts(tmp_path: Path) -> None:
    plan = _stream_plan(tmp_path)
    # three pages of Pods, two of Deployments and of ReplicaSets (500 a page)
    with Simulator(_cluster(1234, 17, per_controller=2), kyverno=True) as sim:
        cluster = Cluster.connect(sim.kubeconfig_path)
        try:
            start = len(sim.requests)
            snapshot = Snapshot(cluster)
            detector = Detector(plan, snapshot)
            streamed = {t.key: detector.evaluate(t) for t in plan.targets}
            # Pods and workload controllers were judged page by page: none is held
            held = {kind: snapshot.held(*kind) for kind in POD_RESOURCES}
            assert held == dict.fromkeys(POD_RESOURCES), {k: len(v or []) for k, v in held.items()}
            lists = Counter(r.path for r in sim.requests[start:]
                            if "limit" in r.query and "continue" not in r.query)
            whole = Snapshot(cluster)
            for target in plan.targets:
                assert target.check is not None
                expected = evaluate(target.check, whole, detector.compliance)
                got = streamed[target.key]
                assert got.status == ("passed" if expected.passed else "failed"), target.key
                assert [e.resource for e in got.events] == [
                    v.resource for v in expected.violations], target.key
                assert [e.message for e in got.events if target.type == "compliance"] == [
                    v.message for v in expected.violations if target.type == "compliance"]
                assert got.text.splitlines()[:1] == ([expected.summary] if got.failed else [
                    ]), target.key
                assert [v.owner for v in got.subjects] == [
                    v.owner for v in expected.violations], target.key
        finally:
            cluster.close()
    assert sum(1 for o in streamed.values() if o.failed) >= 10
    assert set(lists.values()) == {1}, lists  # every kind the pass reads: one LIST
    for path in ("/api/v1/pods", "/apis/apps/v1/deployments", "/apis/apps/v1/replicasets"):
        assert path in lists


def test_label_waivers_read_the_labels_the_pass_kept(tmp_path: Path) -> None:
    """A waiver selecting by label waives the labelled pods' violations without listing
    Pods a second time."""
    from pytest_kspec.spec import Waiver

    plan = _stream_plan(tmp_path)
    waiver = Waiver(id="bad-tier", reason="known", owner="team", expires="2999-01-01",
                    expires_at=32503680000.0,
                    check="workloads.containers.forbidden.privileged",
                    labels={"tier": "bad"})
    assert any(t.id == waiver.check for t in plan.targets), [t.id for t in plan.targets]
    with Simulator(_cluster(600, 17), kyverno=True) as sim:
        cluster = Cluster.connect(sim.kubeconfig_path)
        try:
            start = len(sim.requests)
            detector = Detector(plan, Snapshot(cluster), waivers=[waiver])
            outcomes = {t.key: detector.evaluate(t) for t in plan.targets}
            pod_lists = [r for r in sim.requests[start:] if r.path == "/api/v1/pods"
                         and "continue" not in r.query]
        finally:
            cluster.close()
    privileged = outcomes[f"compliance::{waiver.check}"]
    assert privileged.waived and all(e.resource.startswith("Pod/") for e in privileged.waived)
    assert [e.resource for e in privileged.events] == ["Deployment/team-1/web-1"]
    assert len(pod_lists) == 1


def _pass_peak(plan: Any, pods: int, tmp_path: Path) -> tuple[int, int]:
    """Peak traced memory (bytes) of judging every check of ``plan``, and the number of
    violations, against a cluster of ``pods`` pods (and a Deployment and a ReplicaSet per
    5 pods) with 10 violators. The simulator runs in its own process (``kspec sim serve``),
    so only the run's own allocations are traced."""
    state = tmp_path / f"state-{pods}.json"
    state.write_text(json.dumps({"apiVersion": "v1", "kind": "List",
                                 "items": _cluster(pods, pods // 10)}), encoding="utf-8")
    kubeconfig = tmp_path / f"kubeconfig-{pods}"
    server = subprocess.Popen(
        [sys.executable, "-m", "pytest_kspec.cli", "sim", "serve",
         "--state", str(state), "--kubeconfig-out", str(kubeconfig)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert server.stdout is not None
        for line in server.stdout:
            if line.startswith("kubeconfig:"):
                break
        else:
            raise AssertionError(f"kspec sim serve did not start (exit {server.wait()})")
        cluster = Cluster.connect(str(kubeconfig))
        try:
            snapshot = Snapshot(cluster)
            snapshot.server_version()
            gc.collect()
            tracemalloc.start()
            try:
                detector = Detector(plan, snapshot)
                outcomes = [detector.evaluate(t) for t in plan.targets]
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
        finally:
            cluster.close()
    finally:
        server.terminate()
        server.communicate(timeout=60)  # drains and closes the pipe
    assert all(o.status != "error" for o in outcomes), [o.text for o in outcomes]
    return peak, sum(len(o.events) for o in outcomes)


def test_memory_does_not_grow_with_the_cluster(tmp_path: Path) -> None:
    plan = _stream_plan(tmp_path)
    small, small_events = _pass_peak(plan, 2000, tmp_path)
    large, large_events = _pass_peak(plan, 20000, tmp_path)
    assert small_events == large_events > 0  # the same violations, ten times the pods
    # Holding 20,000 pods, or their 4,000 Deployments and ReplicaSets, would take tens of MB
    # more; a page costs the same at any size, the owner index a few strings per
    # ReplicaSet (about 1 MB for 4,000).
    assert large - small < 4 * 2**20, (small, large)
    assert large < 16 * 2**20, large  # a few pages' worth, nowhere near 20,000 pods
