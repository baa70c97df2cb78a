"""Where a run writes and how it names its items, wherever the spec and pytest's rootdir fall.

pytest derives rootdir from the paths on the command line, option values included: a spec in
``/etc/kspec`` makes it ``/``, a ``--kspec-sim`` file in another checkout makes it that
checkout. Reports and history must still land under ``./reports`` of the directory the run
was started in, node ids must still start with the spec's file name, and nothing may be
written beside the spec (in a pod it sits on a read-only ConfigMap mount).
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import Cluster, write_state

KSPEC = [sys.executable, "-m", "pytest_kspec.cli"]


def _env(cwd: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["KUBECONFIG"] = str(cwd / "no-such-kubeconfig")  # never the developer's cluster
    return env


def _pytest(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", *args],
        cwd=cwd, env=_env(cwd), capture_output=True, text=True, timeout=180, check=False)


def _kspec(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KSPEC, *args], cwd=cwd, env=_env(cwd), capture_output=True,
                          text=True, timeout=180, check=False)


def _read_only_spec_dir(cluster: Cluster, where: Path) -> Path:
    """The spec in its own directory, read-only as a ConfigMap mount is."""
    where.mkdir()
    spec = where / "cluster-spec.yaml"
    spec.write_text(cluster.spec_path.read_text())
    where.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP)
    return spec


def _tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def _node_ids(report_dir: Path) -> list[str]:
    report = json.loads((report_dir / "drift-report.json").read_text())
    return [r["node_id"] for r in report["kspec"]["results"]]


@pytest.fixture
def layout(tmp_path: Path, cluster: Cluster) -> tuple[Path, Path, Path]:
    """(spec on a read-only directory, simulator state, working directory): three places."""
    spec = _read_only_spec_dir(cluster, tmp_path / "etc-kspec")
    state = write_state(cluster, tmp_path / "state.yaml")
    cwd = tmp_path / "app"
    cwd.mkdir()
    yield spec, state, cwd
    spec.parent.chmod(0o755)


def test_spec_elsewhere_reports_under_the_working_directory(
        layout: tuple[Path, Path, Path]) -> None:
    spec, state, cwd = layout
    before = _tree(spec.parent)
    proc = _pytest(cwd, "--kspec-spec", str(spec), "--kspec-sim", str(state))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    reports = cwd / "reports"
    for name in ("drift-report.json", "junit.xml", "report.html", "history.db"):
        assert (reports / name).is_file(), name
    assert _tree(spec.parent) == before  # nothing beside the spec
    ids = _node_ids(reports)
    assert ids and all(i.startswith("cluster-spec.yaml::") for i in ids), ids
    junit = (reports / "junit.xml").read_text()
    assert ('classname="cluster-spec.yaml.compliance" '
            'name="workloads.containers.forbidden.privileged"') in junit
    assert "../" not in junit
    # pytest's own progress line prints node ids relative to its rootdir; --rootdir . (as
    # the CronJob passes) makes the terminal agree with the reports.
    again = _pytest(cwd, "--kspec-spec", str(spec), "--kspec-sim", str(state), "--rootdir", ".")
    assert "\ncluster-spec.yaml ...." in again.stdout and "../" not in again.stdout


def test_relative_reports_and_history_follow_the_working_directory(
        layout: tuple[Path, Path, Path]) -> None:
    spec, state, cwd = layout
    proc = _pytest(cwd, "--kspec-spec", str(spec), "--kspec-sim", str(state),
                   "--kspec-reports", "out/r", "--kspec-history", "state/h.db")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (cwd / "out/r/drift-report.json").is_file()
    assert (cwd / "state/h.db").is_file()
    assert not (cwd / "reports").exists()


def test_sim_state_inside_another_repository_does_not_move_the_reports(
        tmp_path: Path, cluster: Cluster) -> None:
    other = tmp_path / "other-checkout"
    (other / "demo").mkdir(parents=True)
    (other / "pyproject.toml").write_text("[tool.pytest.ini_options]\naddopts = ''\n")
    state = write_state(cluster, other / "demo" / "m.yaml")
    cwd = tmp_path / "work"
    cwd.mkdir()
    spec = cwd / "cluster-spec.yaml"
    spec.write_text(cluster.spec_path.read_text())
    before = _tree(other)
    proc = _pytest(cwd, "--kspec-spec", str(spec), "--kspec-sim", str(state))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "rootdir: " + str(other) in proc.stdout  # the situation this test is about
    assert (cwd / "reports" / "drift-report.json").is_file()
    assert _tree(other) == before
    ids = _node_ids(cwd / "reports")
    assert all(i.startswith("cluster-spec.yaml::") for i in ids), ids


def test_spec_below_the_working_directory_keeps_its_relative_path(
        tmp_path: Path, cluster: Cluster) -> None:
    (tmp_path / "specs").mkdir()
    spec = tmp_path / "specs" / "prod.yaml"
    spec.write_text(cluster.spec_path.read_text())
    state = write_state(cluster, tmp_path / "state.yaml")
    proc = _pytest(tmp_path, "--kspec-spec", "specs/prod.yaml", "--kspec-sim", str(state),
                   "--collect-only", "-q")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "specs/prod.yaml::policy::require-run-as-non-root" in proc.stdout


def test_cli_node_ids_and_reports_with_the_spec_elsewhere(
        layout: tuple[Path, Path, Path]) -> None:
    spec, state, cwd = layout
    before = _tree(spec.parent)
    proc = _kspec(cwd, "drift", "detect", "--spec", str(spec), "--sim", str(state))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "../" not in proc.stdout
    assert "PASSED  cluster-spec.yaml::policy::require-run-as-non-root" in proc.stdout
    assert (cwd / "reports" / "drift-report.json").is_file()
    assert (cwd / "reports" / "history.db").is_file()
    assert _tree(spec.parent) == before


def test_cli_missing_spec_names_the_cli_flag(tmp_path: Path) -> None:
    proc = _kspec(tmp_path, "drift", "detect", "--spec", "missing.yaml")
    assert proc.returncode == 2
    assert "missing.yaml: cannot read" in proc.stderr and "(check --spec)" in proc.stderr
    assert "--kspec-" not in proc.stderr


def test_cli_missing_kubeconfig_names_the_cli_flags(tmp_path: Path, cluster: Cluster) -> None:
    proc = _kspec(tmp_path, "drift", "detect", "--spec", str(cluster.spec_path),
                  "--kubeconfig", "nope.kubeconfig")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "nope.kubeconfig: kubeconfig not found (pass --kubeconfig PATH or --sim STATE" in (
        lines[0])
    assert not (tmp_path / "reports").exists()


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _kubeconfig(path: Path, server: str, context: str = "ctx") -> Path:
    path.write_text(f"""\
apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "{server}"}}}}]
users: [{{name: u, user: {{token: t}}}}]
contexts: [{{name: {context}, context: {{cluster: c, user: u}}}}]
current-context: {context}
""")
    return path


@pytest.mark.parametrize("case", ["unreachable", "missing-kubeconfig", "unknown-context"])
def test_a_cluster_that_cannot_be_used_is_one_line_exit_2(
        tmp_path: Path, cluster: Cluster, case: str) -> None:
    kubeconfig = _kubeconfig(tmp_path / "kc", f"http://127.0.0.1:{_closed_port()}")
    args = {"unreachable": ["--kspec-kubeconfig", str(kubeconfig)],
            "missing-kubeconfig": ["--kspec-kubeconfig", str(tmp_path / "absent")],
            "unknown-context": ["--kspec-kubeconfig", str(kubeconfig),
                                "--kspec-context", "prod"]}[case]
    proc = _pytest(tmp_path, "--kspec-spec", str(cluster.spec_path), *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "no check ran" in lines[0]
    assert {"unreachable": "connection failed", "missing-kubeconfig": "kubeconfig not found",
            "unknown-context": "prod"}[case] in lines[0]
    assert not (tmp_path / "reports" / "drift-report.json").exists()
    assert not (tmp_path / "reports" / "history.db").exists()


def _runs(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        count: int = conn.execute("SELECT count(*) FROM runs").fetchone()[0]
    return count


def test_an_unreachable_cluster_leaves_the_history_and_trend_untouched(
        tmp_path: Path, cluster: Cluster) -> None:
    cluster.remove("ClusterPolicy", "disallow-privileged-containers")  # some drift: pass < 100 %
    state = write_state(cluster, tmp_path / "state.yaml")
    db = tmp_path / "history.db"
    first = _pytest(tmp_path, "--kspec-spec", str(cluster.spec_path), "--kspec-sim", str(state),
                    "--kspec-history", str(db))
    assert first.returncode == 1, first.stdout
    report = json.loads((tmp_path / "reports" / "drift-report.json").read_text())
    rate = report["kspec"]["pass_rate"]
    assert 0 < rate < 100
    down = _kubeconfig(tmp_path / "kc", f"http://127.0.0.1:{_closed_port()}")
    for args in (["--kspec-spec", str(cluster.spec_path), "--kspec-kubeconfig", str(down),
                  "--kspec-history", str(db)],):
        assert _pytest(tmp_path, *args).returncode == 2
        proc = _kspec(tmp_path, "drift", "detect", "--spec", str(cluster.spec_path),
                      "--kubeconfig", str(down), "--history", str(db))
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert "connection failed" in proc.stderr and proc.stdout == ""
    assert _runs(db) == 1
    # The report of the last good run is still the latest one.
    assert json.loads((tmp_path / "reports" / "drift-report.json").read_text()) == report
