"""``kspec drift remediate`` and ``drift detect --no-auto-remediate`` in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytest_kspec.detect import compare_policy
from pytest_kspec.sim import Simulator

from .conftest import POLICY, Cluster, drift_config, expected_policy

SimFor = Callable[..., Simulator]
NAME = "require-run-as-non-root"


def kspec(cluster: Cluster, sim: Simulator, *args: str) -> tuple[int, str, dict[str, Any]]:
    cwd = cluster.spec_path.parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["KUBECONFIG"] = str(cwd / "no-such-kubeconfig")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_kspec.cli", "drift", *args, "--spec", "cluster-spec.yaml",
         "--kubeconfig", sim.kubeconfig_path],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False)
    report_path = cwd / "reports" / "drift-report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    return proc.returncode, proc.stdout + proc.stderr, report


def _policy_blocks(report: dict[str, Any]) -> list[Any]:
    return [e["remediation"] for e in report["events"] if e["type"] == "policy"]


def test_remediate_restores_and_still_exits_1(cluster: Cluster, sim_for: SimFor) -> None:
    cluster.remove("ClusterPolicy", NAME)
    sim = sim_for()
    code, out, report = kspec(cluster, sim, "remediate")
    assert code == 1, out
    (block,) = _policy_blocks(report)
    assert (block["action"], block["status"]) == ("create", "verified")
    assert compare_policy(expected_policy(cluster, NAME), sim.get(*POLICY, NAME)) is None
    assert f"fix: ClusterPolicy/{NAME}: create → verified" in out
    assert "kspec: remediation: 1 drifted, 1 fixed (verified)" in out
    code, out, report = kspec(cluster, sim, "remediate")
    assert code == 0, out
    assert len(sim.writes()) == 1


def test_remediate_dry_run_changes_nothing(cluster: Cluster, sim_for: SimFor) -> None:
    cluster.remove("ClusterPolicy", NAME)
    sim = sim_for()
    before = sim.dump()
    code, out, report = kspec(cluster, sim, "remediate", "--dry-run", "--types", "policies")
    assert code == 1, out
    assert sim.dump() == before
    (block,) = _policy_blocks(report)
    assert (block["status"], block["dry_run"]) == ("dry-run", True)
    assert all(e["type"] == "policy" for e in report["events"])


def test_detect_auto_remediates_unless_told_not_to(cluster: Cluster, sim_for: SimFor,
                                                   tmp_path: Path) -> None:
    cluster.remove("ClusterPolicy", NAME)
    sim = sim_for()
    config = str(drift_config(tmp_path / "drift.yaml", {"auto": True}))
    code, out, report = kspec(cluster, sim, "detect", "--config", config, "--no-auto-remediate")
    assert code == 1, out
    assert _policy_blocks(report) == [None]
    assert sim.writes() == []
    code, out, report = kspec(cluster, sim, "detect", "--config", config)
    assert [b["status"] for b in _policy_blocks(report)] == ["verified"]
    assert sim.get(*POLICY, NAME) is not None


def test_bad_max_deletions_is_a_usage_error(cluster: Cluster, sim_for: SimFor) -> None:
    sim = sim_for()
    code, out, _ = kspec(cluster, sim, "remediate", "--max-deletions", "-1")
    assert code == 2
    assert "--max-deletions" in out and "whole number" in out
