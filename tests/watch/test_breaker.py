"""Remediation in watch mode and its loop breaker, against a manager that keeps fighting."""

from __future__ import annotations

import subprocess

import yaml
from e2e.conftest import Cluster

from pytest_kspec.sim import Simulator
from pytest_kspec.watch import LoopBreaker, other_manager
from tests.alerts.receivers import HttpReceiver
from tests.watch.conftest import WatchProcess

NAME = "require-run-as-non-root"


def test_breaker_counts_within_the_window() -> None:
    now = [0.0]
    breaker = LoopBreaker(3, 80, clock=lambda: now[0])
    assert not breaker.restored("ClusterPolicy/a")
    now[0] = 30
    assert not breaker.restored("ClusterPolicy/a")
    now[0] = 100  # the first restore left the window
    assert not breaker.restored("ClusterPolicy/a")
    assert breaker.allows("ClusterPolicy/a")
    now[0] = 110
    assert breaker.restored("ClusterPolicy/a")
    assert not breaker.allows("ClusterPolicy/a") and breaker.allows("ClusterPolicy/b")


def test_other_manager_is_the_latest_non_kspec_one() -> None:
    obj = {"metadata": {"managedFields": [
        {"manager": "argocd", "time": "2026-01-01T00:00:00Z"},
        {"manager": "kspec", "time": "2026-01-01T00:05:00Z"},
        {"manager": "gitops-bot", "time": "2026-01-01T00:03:00Z"}]}}
    assert other_manager(obj) == "gitops-bot"
    assert other_manager({"metadata": {}}) == "an unknown manager"


def _weaken(sim: Simulator, n: int) -> None:
    patch = '{"spec":{"validationFailureAction":"Audit","background":false}}'
    subprocess.run(["kubectl", "--kubeconfig", sim.kubeconfig_path, "patch", "clusterpolicy",
                    NAME, "--type", "merge", "-p", patch, "--field-manager", "gitops-bot"],
                   check=True, capture_output=True, timeout=60)


def test_loop_breaker_stops_fixing_and_alerts(watcher: list[WatchProcess], cluster: Cluster,
                                              sim: Simulator, receiver: HttpReceiver) -> None:
    config = cluster.spec_path.parent / "drift.yaml"
    config.write_text(yaml.safe_dump({
        "apiVersion": "kspec.dev/v1", "kind": "DriftConfig", "metadata": {"name": "t"},
        "spec": {"remediation": {"auto": True, "types": ["policies"],
                                 "loopBreaker": {"restores": 2, "window": "10m"}},
                 "alerts": {"enabled": True, "minInterval": "0s", "channels": [
                     {"name": "ops", "type": "webhook", "url": f"{receiver.url}/hook",
                      "severity": "critical"}]}}}))
    w = WatchProcess(cluster.spec_path.parent, sim.kubeconfig_path, "-q", "--config",
                     str(config), "--types", "policy")
    watcher.append(w)
    w.wait_for(r"kspec: watching")
    for n in (1, 2):
        mark = w.mark()
        _weaken(sim, n)
        w.wait_for(r"kspec: remediation: .*1 fixed", after=mark)
        w.wait_for(r"kspec: 4 checks, 4 passed", after=mark)  # the restore, seen by the watch
    loop_line = w.wait_for(r"kspec: remediation loop: (\S+) keeps changing (\S+); no longer")
    assert (loop_line[1], loop_line[2]) == ("gitops-bot", f"ClusterPolicy/{NAME}")
    mark = w.mark()
    _weaken(sim, 3)
    w.wait_for(rf"FAILED  cluster-spec.yaml::policy::{NAME}", after=mark)
    w.wait_for(r"drift report written", after=mark)
    live = sim.get("kyverno.io/v1", "ClusterPolicy", NAME)
    assert live is not None and live["spec"]["validationFailureAction"] == "Audit"
    notices = [n for body in receiver.bodies() for n in body["notices"]]
    assert notices == [f"remediation loop: gitops-bot keeps changing ClusterPolicy/{NAME}"]
    assert w.terminate() == 0
