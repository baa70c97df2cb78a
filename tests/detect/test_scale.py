"""Requests do not grow with the cluster: one paginated LIST per kind per run, whatever the size.

Every check of ``examples/moderate.yaml`` (policies, compliance, configuration) is judged
against a simulator holding 10 and then 1,000 pods; the simulator's request log shows what
the run asked the API server for. Figures of time and memory are in ``bench/scale.py``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pytest_kspec.cluster import Cluster, Snapshot
from pytest_kspec.detect import Detector, make_plan
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
