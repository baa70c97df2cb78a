"""``kspec drift detect --watch`` against the simulator: targeted re-evaluation, history
without noise, outages, signals."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from pathlib import Path

import yaml
from e2e.conftest import Cluster

from pytest_kspec.detect import make_plan
from pytest_kspec.sim import Simulator
from pytest_kspec.spec import load_spec
from tests.alerts.receivers import HttpReceiver
from tests.watch.conftest import WatchProcess

NAME = "require-run-as-non-root"
POLICY = ("kyverno.io/v1", "ClusterPolicy")
STARTED = r"kspec: watching (\d+) kind\(s\)"


def start(watcher: list[WatchProcess], cluster: Cluster, sim: Simulator,
          *args: str) -> WatchProcess:
    w = WatchProcess(cluster.spec_path.parent, sim.kubeconfig_path, "-q", *args)
    watcher.append(w)
    w.wait_for(STARTED)
    return w


def runs(cluster: Cluster) -> int:
    db = sqlite3.connect(cluster.spec_path.parent / "reports" / "history.db")
    try:
        return int(db.execute("SELECT count(*) FROM runs").fetchone()[0])
    finally:
        db.close()


def report(cluster: Cluster) -> dict[str, object]:
    data: dict[str, object] = json.loads(
        (cluster.spec_path.parent / "reports" / "drift-report.json").read_text())
    return data


def test_deleted_policy_reevaluates_only_the_policy_targets(
        watcher: list[WatchProcess], cluster: Cluster, sim: Simulator) -> None:
    plan = make_plan(load_spec(cluster.spec_path))
    policy_targets = len(plan.of_type("policy"))
    assert 0 < policy_targets < len(plan.targets)
    w = start(watcher, cluster, sim)
    mark = w.mark()
    sim.delete(*POLICY, NAME)
    found = w.wait_for(r"event\(s\) on ClusterPolicy: re-evaluating (\d+) of (\d+) target",
                       after=mark)
    assert (int(found[1]), int(found[2])) == (policy_targets, len(plan.targets))
    w.wait_for(rf"FAILED  cluster-spec.yaml::policy::{NAME}", after=mark)
    w.wait_for(r"kspec: .*drift report written", after=mark)
    events = report(cluster)["events"]
    assert isinstance(events, list)
    assert [(e["resource"], e["drift"]) for e in events if e["type"] == "policy"] == [
        (f"ClusterPolicy/{NAME}", "deleted")]
    assert w.terminate() == 0


def test_quiet_cluster_adds_no_history_rows(watcher: list[WatchProcess], cluster: Cluster,
                                            sim: Simulator) -> None:
    w = start(watcher, cluster, sim)
    before = runs(cluster)
    assert before == 1  # the first full detection
    time.sleep(3)  # bookmarks flow; nothing changes
    mark = w.mark()
    # a change that does not change the drift state: re-evaluated, not written
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "web-2", "namespace": "shop", "labels": {"app": "web"}},
           "spec": {"containers": [{"name": "app", "image": "registry.example.com/shop/web@"
                                    "sha256:" + "a" * 64,
                                    "securityContext": {"runAsNonRoot": True}}]}}
    sim.create(pod)
    w.wait_for(r"event\(s\) on Pod: re-evaluating", after=mark)
    time.sleep(1)
    assert runs(cluster) == before
    assert "drift state changed" not in "\n".join(w.lines[mark:])
    assert w.terminate() == 0


def test_outage_and_restart_on_the_same_port(watcher: list[WatchProcess], cluster: Cluster,
                                             sim: Simulator, receiver: HttpReceiver) -> None:
    config = _webhook_config(cluster, receiver)
    w = start(watcher, cluster, sim, "--config", str(config))
    mark = w.mark()
    sim.stop()
    w.wait_for(r"watch ClusterPolicy: connection lost", after=mark)
    sim.delete(*POLICY, NAME)  # changed while the API server is away
    sim.start()
    w.wait_for(r"re-listed .* after a reconnect", after=mark)
    w.wait_for(rf"FAILED  cluster-spec.yaml::policy::{NAME}", after=mark)
    # one line on what changed while disconnected, once every kind is back
    line = w.wait_for(r"kspec: watch: (API server unreachable for [\d.]+s; while "
                      r"disconnected: (.*); drift appeared: (.*); drift resolved: (.*))$",
                      after=mark)
    assert "ClusterPolicy 1 deleted" in line[2].split("; ")
    assert line[3] == f"ClusterPolicy/{NAME} (deleted)"
    assert line[4] == "none"
    assert len([x for x in w.lines[mark:] if "API server unreachable" in x]) == 1
    # ... kept in that cycle's report, archived with its history run ...
    at = next(i for i, x in enumerate(w.lines) if "API server unreachable" in x)
    w.wait_for(r"drift report written", after=at)
    archived = [json.loads(p.read_text()) for p in
                (cluster.spec_path.parent / "reports" / "runs").glob("*/drift-report.json")]
    assert [r["kspec"]["notices"] for r in archived if "notices" in r["kspec"]] == [[line[1]]]
    # ... and sent with that cycle's alert
    deadline = time.monotonic() + 30
    while not any(line[1] in (b.get("notices") or []) for b in receiver.bodies("/hook")):
        assert time.monotonic() < deadline, receiver.bodies("/hook")
        time.sleep(0.2)
    # and it keeps watching after the outage
    mark = w.mark()
    sim.create(_expected(cluster))
    w.wait_for(r"kspec: 10 checks, 10 passed", after=mark)
    assert w.terminate() == 0


def test_410_gone_relists_and_finds_a_drift_made_around_the_expiry(
        watcher: list[WatchProcess], cluster: Cluster, sim: Simulator) -> None:
    w = start(watcher, cluster, sim)
    mark = w.mark()
    lists = len(sim.requests)
    # a write the watch does not see moves the store past every watcher's position, so a
    # stream opened before or after the compaction alike gets 410 Expired
    sim.create({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "unwatched", "namespace": "default"}})
    sim.expire_watches()  # the API server compacted its watch history
    sim.delete(*POLICY, NAME)
    w.wait_for(r"re-listed (.*, )?ClusterPolicy(, .*)? after 410 Gone: re-evaluating",
               after=mark)
    w.wait_for(rf"FAILED  cluster-spec.yaml::policy::{NAME}", after=mark)
    relisted = [r for r in sim.requests[lists:]
                if r.verb == "list" and r.path.endswith("/clusterpolicies")]
    assert relisted  # re-listed, not resumed
    later = "\n".join(w.lines[mark:])
    assert "connection lost" not in later and "unreachable" not in later
    # and it keeps watching from the new list
    mark = w.mark()
    sim.create(_expected(cluster))
    w.wait_for(r"kspec: 10 checks, 10 passed", after=mark)
    assert w.terminate() == 0


def test_the_full_resync_runs_on_time_on_a_quiet_cluster(
        watcher: list[WatchProcess], cluster: Cluster, sim: Simulator) -> None:
    sim.bookmark_interval = 3600.0  # no bookmark or event wakes the streams up
    w = start(watcher, cluster, sim, "--interval", "2s")
    mark = w.mark()
    lists = len(sim.requests)
    for _ in range(2):
        w.wait_for(r"kspec: watch: full resync", after=w.mark(), timeout=30)
    relisted = [r for r in sim.requests[lists:]
                if r.verb == "list" and r.path.endswith("/clusterpolicies")]
    assert len(relisted) >= 2
    assert not [x for x in w.lines[mark:] if "event(s) on" in x]  # nothing happened
    assert runs(cluster) == 1  # and a resync that changes nothing writes nothing
    assert w.terminate() == 0


def test_a_resync_during_an_outage_waits_for_the_api_server(
        watcher: list[WatchProcess], cluster: Cluster, sim: Simulator) -> None:
    w = start(watcher, cluster, sim, "--interval", "2s")
    mark = w.mark()
    sim.stop()
    w.wait_for(r"full resync postponed: the API server is unreachable", after=mark, timeout=30)
    sim.start()
    w.wait_for(r"API server unreachable for [\d.]+s; while disconnected: no object changed; "
               r"drift appeared: none; drift resolved: none", after=mark)
    at = next(i for i, x in enumerate(w.lines) if "API server unreachable" in x)
    w.wait_for(r"drift report written", after=at)
    later = w.lines[mark:]
    assert not [x for x in later if x.startswith(("ERROR", "FAILED"))], later
    assert runs(cluster) == 2  # the first detection, then the outage's notice: no run of
    # errors while the API server was away
    assert w.terminate() == 0


def _webhook_config(cluster: Cluster, receiver: HttpReceiver) -> Path:
    config = cluster.spec_path.parent / "drift.yaml"
    config.write_text(yaml.safe_dump({
        "apiVersion": "kspec.dev/v1", "kind": "DriftConfig", "metadata": {"name": "t"},
        "spec": {"alerts": {"enabled": True, "minInterval": "0s", "channels": [
            {"name": "hook", "type": "webhook", "url": f"{receiver.url}/hook",
             "severity": "info"}]}}}))
    return config


def _expected(cluster: Cluster) -> dict[str, object]:
    from pytest_kspec.desired import generate_policies

    for policy in generate_policies(load_spec(cluster.spec_path)):
        if policy["metadata"]["name"] == NAME:
            return dict(policy)
    raise KeyError(NAME)


def test_sigterm_and_sigint_exit_0_with_the_history_intact(
        watcher: list[WatchProcess], cluster: Cluster, sim: Simulator) -> None:
    w = start(watcher, cluster, sim)
    mark = w.mark()
    sim.delete(*POLICY, NAME)
    w.wait_for(r"drift report written", after=mark)
    assert w.terminate(signal.SIGTERM) == 0
    assert "watch stopped" in w.text()
    assert runs(cluster) == 2
    kept = sorted((cluster.spec_path.parent / "reports" / "runs").iterdir())
    assert len(kept) == 2 and all((k / "drift-report.json").is_file() for k in kept)
    db = sqlite3.connect(cluster.spec_path.parent / "reports" / "history.db")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    w2 = start(watcher, cluster, sim)
    assert w2.terminate(signal.SIGINT) == 0
    assert json.loads(Path(cluster.spec_path.parent / "reports" / "drift-report.json")
                      .read_text())["drift"]["detected"] is True


def test_a_slow_receiver_never_delays_detection(watcher: list[WatchProcess], cluster: Cluster,
                                                sim: Simulator, receiver: HttpReceiver) -> None:
    receiver.delay = 3.0  # each attempt times out after 1s; three attempts
    config = cluster.spec_path.parent / "drift.yaml"
    config.write_text(yaml.safe_dump({
        "apiVersion": "kspec.dev/v1", "kind": "DriftConfig", "metadata": {"name": "t"},
        "spec": {"alerts": {"enabled": True, "minInterval": "0s", "channels": [
            {"name": "slow", "type": "webhook", "url": f"{receiver.url}/hook",
             "severity": "info", "timeout": "1s", "retries": 2}]}}}))
    w = start(watcher, cluster, sim, "--config", str(config))
    mark = w.mark()
    sim.delete(*POLICY, NAME)
    w.wait_for(rf"FAILED  cluster-spec.yaml::policy::{NAME}", after=mark)
    sim.create(_expected(cluster))
    w.wait_for(r"kspec: 10 checks, 10 passed", after=mark)
    later = w.text().split("\n")[mark:]
    judged = next(i for i, line in enumerate(later) if "10 checks, 10 passed" in line)
    assert not any("kspec: alert slow" in line for line in later[:judged]), later
    w.wait_for(r"kspec: alert slow \(webhook\) failed", after=mark)
    assert w.terminate() == 0


def test_unreachable_at_start_then_up(watcher: list[WatchProcess], cluster: Cluster,
                                      sim: Simulator) -> None:
    sim.stop()
    w = WatchProcess(cluster.spec_path.parent, sim.kubeconfig_path, "-q", "--interval", "2s")
    watcher.append(w)
    w.wait_for(r"kspec: watch: cannot watch: .*trying again at the next resync", timeout=120)
    assert "ERROR" in w.text()  # checks that could not be evaluated are errors, not passes
    sim.delete(*POLICY, NAME)
    sim.start()
    w.wait_for(STARTED, timeout=120)
    w.wait_for(rf"FAILED  cluster-spec.yaml::policy::{NAME}")
    assert w.terminate() == 0
