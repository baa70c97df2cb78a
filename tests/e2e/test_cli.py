"""``kspec drift detect`` and ``kspec policies`` end to end, in a subprocess as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

from .conftest import Cluster, _pod, write_state


def kspec(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["KUBECONFIG"] = str(cwd / "no-such-kubeconfig")
    return subprocess.run([sys.executable, "-m", "pytest_kspec.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def detect(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    cwd = cluster.spec_path.parent
    state = write_state(cluster, cwd / "state.yaml")
    return kspec(cwd, "drift", "detect", "--spec", "cluster-spec.yaml", "--sim", str(state),
                 *args)


def test_no_drift_exits_0(cluster: Cluster) -> None:
    proc = detect(cluster, "--quiet")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 drifted, 0 error(s)" in proc.stdout
    report = json.loads((cluster.spec_path.parent / "reports/drift-report.json").read_text())
    assert report["drift"]["detected"] is False


def test_drift_exits_1_and_writes_json_and_junit(cluster: Cluster) -> None:
    cluster.remove("ClusterPolicy", "disallow-privileged-containers")
    cluster.add(_pod("debug-shell", "payments", privileged=True))
    proc = detect(cluster, "--output", "out/drift.json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAILED  cluster-spec.yaml::policy::disallow-privileged-containers" in proc.stdout
    assert "Pod/payments/debug-shell" in proc.stdout
    cwd = cluster.spec_path.parent
    report = json.loads((cwd / "out/drift.json").read_text())
    assert report == json.loads((cwd / "reports/drift-report.json").read_text())
    assert report["drift"]["types"] == ["policy", "compliance"]
    assert report["drift"]["summary"]["policies"] == 1
    kinds = {(e["resource"], e["drift"]) for e in report["events"]}
    assert kinds == {("ClusterPolicy/disallow-privileged-containers", "missing"),
                     ("Pod/payments/debug-shell", "violation")}
    cases = {c.get("name"): c for c in ET.parse(cwd / "reports/junit.xml").getroot().iter(
        "testcase")}
    assert cases["disallow-privileged-containers"].find("failure") is not None
    props = {p.get("name"): p.get("value")
             for p in cases["disallow-privileged-containers"].iter("property")}
    assert props["kspec.drift"] == "missing"


def test_bad_spec_exits_2_with_file_and_line(cluster: Cluster) -> None:
    cluster.spec_path.write_text(cluster.spec_path.read_text().replace("minVersion", "minVersio"))
    proc = detect(cluster)
    assert proc.returncode == 2
    assert "cluster-spec.yaml:" in proc.stderr and "minVersio" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (cluster.spec_path.parent / "reports").exists()


def test_unknown_type_exits_2(cluster: Cluster) -> None:
    proc = detect(cluster, "--types", "policy,widget")
    assert proc.returncode == 2
    assert "--types: unknown drift type 'widget'" in proc.stderr


def test_policies_prints_the_generated_policies(cluster: Cluster) -> None:
    proc = kspec(cluster.spec_path.parent, "policies", "--spec", "cluster-spec.yaml")
    assert proc.returncode == 0, proc.stderr
    names = [d["metadata"]["name"] for d in yaml.safe_load_all(proc.stdout)]
    assert names == ["require-run-as-non-root", "disallow-privileged-containers",
                     "block-image-registries"]


def test_output_into_a_closed_pipe_is_not_an_error(cluster: Cluster) -> None:
    # `true` exits long before kspec starts writing: every write meets a closed pipe, as
    # with `kspec drift history | head` on a long history.
    cmd = (f"{sys.executable} -m pytest_kspec.cli.main policies --spec cluster-spec.yaml | true; "
           "exit ${PIPESTATUS[0]}")
    proc = subprocess.run(["bash", "-c", cmd], cwd=cluster.spec_path.parent, capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr
