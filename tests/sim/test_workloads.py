"""Controllers reconcile: Deployment → ReplicaSet → Pods (rollouts), StatefulSet, DaemonSet,
Job, CronJob on a clock the test drives, and the garbage collector's three propagation
policies; loaded state is taken as it is."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException
from sim_helpers import api_client

from pytest_kspec.sim import Simulator


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(nodes=2) as s:
        yield s


@pytest.fixture
def api(sim: Simulator) -> Iterator[client.ApiClient]:
    c = api_client(sim)
    yield c
    c.close()


def _template(app: str, image: str = "nginx:1.27") -> dict[str, Any]:
    return {"metadata": {"labels": {"app": app}},
            "spec": {"containers": [{"name": "app", "image": image}]}}


def _deployment(name: str, replicas: int = 3, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": _template(name), **spec}}


def _phases(core: client.CoreV1Api, selector: str, ns: str = "default") -> list[str]:
    return sorted(p.status.phase for p in core.list_namespaced_pod(
        ns, label_selector=selector).items)


def test_deployment_creates_a_replicaset_and_running_pods(api: client.ApiClient) -> None:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    created = apps.create_namespaced_deployment("default", _deployment("web"))
    (rs,) = apps.list_namespaced_replica_set("default").items
    hash_ = rs.metadata.labels["pod-template-hash"]
    assert rs.metadata.name == f"web-{hash_}"
    assert rs.metadata.owner_references[0].uid == created.metadata.uid
    assert rs.metadata.annotations["deployment.kubernetes.io/revision"] == "1"
    assert rs.spec.selector.match_labels == {"app": "web", "pod-template-hash": hash_}
    pods = core.list_namespaced_pod("default").items
    assert sorted(p.status.phase for p in pods) == ["Running"] * 3
    assert {p.metadata.owner_references[0].name for p in pods} == {rs.metadata.name}
    assert all(p.metadata.name.startswith(f"web-{hash_}-") for p in pods)
    d = apps.read_namespaced_deployment("web", "default")
    assert d.metadata.generation == 1 and d.status.observed_generation == 1
    assert (d.status.replicas, d.status.ready_replicas, d.status.available_replicas,
            d.status.updated_replicas, d.status.unavailable_replicas) == (3, 3, 3, 3, None)
    conditions = {c.type: (c.status, c.reason) for c in d.status.conditions}
    assert conditions == {"Available": ("True", "MinimumReplicasAvailable"),
                          "Progressing": ("True", "NewReplicaSetAvailable")}
    assert d.metadata.annotations["deployment.kubernetes.io/revision"] == "1"
    events = core.list_namespaced_event(
        "default", field_selector="involvedObject.name=web").items
    assert [e.message for e in events] == [f"Scaled up replica set web-{hash_} from 0 to 3"]


def test_template_change_rolls_a_new_replicaset(api: client.ApiClient) -> None:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    apps.create_namespaced_deployment("default", _deployment("web", 4))
    (first,) = apps.list_namespaced_replica_set("default").items
    apps.patch_namespaced_deployment("web", "default", {"spec": {"template": {"spec": {
        "containers": [{"name": "app", "image": "nginx:1.28"}]}}}})
    rses = {rs.metadata.name: rs for rs in apps.list_namespaced_replica_set("default").items}
    assert len(rses) == 2
    old = rses.pop(first.metadata.name)
    (new,) = rses.values()
    assert (old.spec.replicas, new.spec.replicas) == (0, 4)
    assert new.metadata.annotations["deployment.kubernetes.io/revision"] == "2"
    images = {p.spec.containers[0].image for p in core.list_namespaced_pod("default").items
              if p.metadata.deletion_timestamp is None}
    assert images == {"nginx:1.28"}
    d = apps.read_namespaced_deployment("web", "default")
    assert (d.metadata.generation, d.status.observed_generation) == (2, 2)
    assert (d.status.updated_replicas, d.status.replicas, d.status.available_replicas) == (
        4, 4, 4)
    scaled = [e.message for e in core.list_namespaced_event(
        "default", field_selector="involvedObject.name=web").items][1:]
    # a rolling update within maxSurge 25% (1) and maxUnavailable 25% (1) of 4
    assert scaled[0] == f"Scaled up replica set {new.metadata.name} from 0 to 1"
    assert scaled[-1] == f"Scaled down replica set {old.metadata.name} from 1 to 0"
    assert len(scaled) > 2


def test_recreate_scales_the_old_replicaset_down_first(api: client.ApiClient) -> None:
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment("default", _deployment(
        "db", 2, strategy={"type": "Recreate"}))
    apps.patch_namespaced_deployment("db", "default", {"spec": {"template": {"spec": {
        "containers": [{"name": "app", "image": "postgres:16"}]}}}})
    messages = [e.message for e in client.CoreV1Api(api).list_namespaced_event(
        "default", field_selector="involvedObject.name=db").items]
    assert [m.split(" replica set ")[0] for m in messages] == [
        "Scaled up", "Scaled down", "Scaled up"]
    assert messages[1].endswith("from 2 to 0") and messages[2].endswith("from 0 to 2")


def test_deleted_owned_pod_is_recreated(api: client.ApiClient) -> None:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    apps.create_namespaced_deployment("default", _deployment("web", 2))
    victim = core.list_namespaced_pod("default").items[0].metadata.name
    core.delete_namespaced_pod(victim, "default")
    names = [p.metadata.name for p in core.list_namespaced_pod("default").items]
    assert len(names) == 2 and victim not in names
    assert _phases(core, "app=web") == ["Running", "Running"]


def test_scaling_changes_the_pod_count(api: client.ApiClient) -> None:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    apps.create_namespaced_deployment("default", _deployment("web", 1))
    apps.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 3}})
    assert _phases(core, "app=web") == ["Running"] * 3
    apps.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 0}})
    live = [p for p in core.list_namespaced_pod("default").items]
    assert live == []
    assert apps.read_namespaced_deployment("web", "default").status.replicas is None


def test_daemonset_runs_a_pod_per_node(api: client.ApiClient) -> None:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    apps.create_namespaced_daemon_set("default", {
        "metadata": {"name": "agent", "labels": {"app": "agent"}},
        "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": _template("agent"),
                 "updateStrategy": {"type": "RollingUpdate"}}})
    nodes = sorted(p.spec.node_name for p in core.list_namespaced_pod("default").items)
    assert nodes == ["kspec-sim-node-1", "kspec-sim-node-2"]
    core.create_node({"metadata": {"name": "kspec-sim-node-3"}})
    assert len(core.list_namespaced_pod("default").items) == 3
    ds = apps.read_namespaced_daemon_set("agent", "default")
    assert (ds.status.desired_number_scheduled, ds.status.current_number_scheduled,
            ds.status.number_ready, ds.status.updated_number_scheduled) == (3, 3, 3, 3)
    apps.patch_namespaced_daemon_set("agent", "default", {"spec": {"template": {"spec": {
        "containers": [{"name": "app", "image": "nginx:1.28"}]}}}})
    assert {p.spec.containers[0].image for p in core.list_namespaced_pod("default").items
            if p.metadata.deletion_timestamp is None} == {"nginx:1.28"}


def test_statefulset_pods_are_ordered_and_stable(api: client.ApiClient) -> None:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    apps.create_namespaced_stateful_set("default", {
        "metadata": {"name": "db"},
        "spec": {"replicas": 3, "serviceName": "db",
                 "selector": {"matchLabels": {"app": "db"}}, "template": _template("db")}})
    pods = core.list_namespaced_pod("default").items
    assert [p.metadata.name for p in pods] == ["db-0", "db-1", "db-2"]
    assert [p.spec.hostname for p in pods] == ["db-0", "db-1", "db-2"]
    assert {p.spec.subdomain for p in pods} == {"db"}
    sts = apps.read_namespaced_stateful_set("db", "default")
    assert (sts.status.replicas, sts.status.ready_replicas, sts.status.updated_replicas) == (
        3, 3, 3)
    assert sts.status.current_revision == sts.status.update_revision
    apps.patch_namespaced_stateful_set_scale("db", "default", {"spec": {"replicas": 1}})
    assert [p.metadata.name for p in core.list_namespaced_pod("default").items
            if p.metadata.deletion_timestamp is None] == ["db-0"]


def test_job_pods_run_to_completion(api: client.ApiClient) -> None:
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    batch.create_namespaced_job("default", {
        "metadata": {"name": "once"},
        "spec": {"completions": 2, "template": {"spec": {
            "containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c", "true"]}],
            "restartPolicy": "Never"}}}})
    assert _phases(core, "job-name=once") == ["Succeeded", "Succeeded"]
    job = batch.read_namespaced_job("once", "default")
    assert job.status.succeeded == 2 and job.status.completion_time is not None
    assert {c.type for c in job.status.conditions} == {"Complete", "SuccessCriteriaMet"}
    deleted = batch.delete_namespaced_job("once", "default",
                                          body={"propagationPolicy": "Background"})
    assert deleted["metadata"]["name"] == "once"  # the client hands deletes back as dicts
    assert core.list_namespaced_pod("default").items == []


def test_cronjob_creates_jobs_when_the_clock_says(sim: Simulator,
                                                  api: client.ApiClient) -> None:
    batch = client.BatchV1Api(api)
    batch.create_namespaced_cron_job("default", {
        "metadata": {"name": "tick"},
        "spec": {"schedule": "*/10 * * * *", "successfulJobsHistoryLimit": 2,
                 "jobTemplate": {"spec": {"template": {"spec": {
                     "containers": [{"name": "c", "image": "busybox"}],
                     "restartPolicy": "OnFailure"}}}}}})
    assert batch.list_namespaced_job("default").items == []
    runs = []
    for _ in range(3):
        sim.advance(600)
        runs.append(sorted(j.metadata.name for j in batch.list_namespaced_job("default").items))
    assert [len(r) for r in runs] == [1, 2, 2]  # history limit 2 drops the oldest
    cj = batch.read_namespaced_cron_job("tick", "default")
    assert cj.status.last_schedule_time is not None
    assert cj.status.last_successful_time is not None and not cj.status.active
    newest = runs[-1][-1]
    assert int(newest.split("-")[1]) * 60 == int(cj.status.last_schedule_time.timestamp())
    job = batch.read_namespaced_job(newest, "default")
    assert job.metadata.owner_references[0].name == "tick"


def test_orphan_keeps_dependents_without_the_reference(api: client.ApiClient) -> None:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    apps.create_namespaced_deployment("default", _deployment("web", 2))
    apps.delete_namespaced_deployment("web", "default", propagation_policy="Orphan")
    (rs,) = apps.list_namespaced_replica_set("default").items
    assert rs.metadata.owner_references is None
    assert len(core.list_namespaced_pod("default").items) == 2


def test_foreground_deletes_dependents_before_the_owner(api: client.ApiClient) -> None:
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment("default", _deployment("web", 1))
    rv = apps.read_namespaced_deployment("web", "default").metadata.resource_version
    answer = apps.delete_namespaced_deployment("web", "default",
                                               propagation_policy="Foreground")
    assert answer["metadata"]["finalizers"] == ["foregroundDeletion"]
    assert answer["metadata"]["deletionTimestamp"]
    with pytest.raises(ApiException):
        apps.read_namespaced_deployment("web", "default")
    kinds = []
    for kind, lister in (("Deployment", apps.list_namespaced_deployment),
                         ("ReplicaSet", apps.list_namespaced_replica_set)):
        for e in watch.Watch().stream(lister, "default", resource_version=rv,
                                      timeout_seconds=1):
            kinds.append((int(e["object"].metadata.resource_version), kind, e["type"]))
    deletions = [k for _rv, k, t in sorted(kinds) if t == "DELETED"]
    assert deletions == ["ReplicaSet", "Deployment"]


def test_namespace_terminates_then_goes_with_its_contents(api: client.ApiClient) -> None:
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    core.create_namespace({"metadata": {"name": "tmp"}})
    apps.create_namespaced_deployment("tmp", _deployment("web", 2))
    answer = core.delete_namespace("tmp")
    assert answer["status"]["phase"] == "Terminating"
    assert answer["metadata"]["deletionTimestamp"]
    with pytest.raises(ApiException) as e:
        core.read_namespace("tmp")
    assert e.value.status == 404
    assert core.list_pod_for_all_namespaces().items == []
    core.create_namespace({"metadata": {"name": "tmp"}})  # the name is free again


def test_loaded_state_is_kept_until_reconciled() -> None:
    deployment = dict(_deployment("web", 2), metadata={"name": "web", "namespace": "default"})
    with Simulator([deployment], nodes=1) as sim:
        assert sim.list("v1", "Pod") == []
        assert sim.list("apps/v1", "ReplicaSet") == []
        sim.create(dict(_deployment("other", 1),
                        metadata={"name": "other", "namespace": "default"}))
        assert sim.list("v1", "Pod") == []  # direct writes are state too
        sim.reconcile()
        pods = sim.list("v1", "Pod")
        assert len(pods) == 3 and {p["status"]["phase"] for p in pods} == {"Running"}
