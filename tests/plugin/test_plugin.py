"""Plugin behaviour with pytester: options, collection, errors, markers (no real cluster)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

SPEC = """\
apiVersion: kspec.dev/v1
kind: ClusterSpecification
metadata: {name: team-a, version: 1.0.0}
spec:
  kubernetes: {minVersion: "1.28", maxVersion: "1.31"}
  workloads:
    containers:
      forbidden:
        - {key: securityContext.privileged, value: true}
      required:
        - {key: securityContext.runAsNonRoot, value: true}
"""

# One pod that breaks SPEC's forbidden rule and keeps its required one.
PRIVILEGED_POD = """\
apiVersion: v1
kind: Pod
metadata: {name: debug, namespace: default}
spec:
  containers:
    - name: shell
      image: registry.example.com/tools/shell:1.0
      securityContext: {privileged: true, runAsNonRoot: true}
"""


@pytest.fixture
def spec(pytester: pytest.Pytester) -> Path:
    path: Path = pytester.makefile(".yaml", **{"cluster-spec": SPEC})
    return path


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_collect_only_lists_items_without_a_cluster(pytester: pytest.Pytester, spec: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(pytester.path / "absent"))
    result = pytester.runpytest("--kspec-spec", str(spec), "--collect-only", "-q")
    assert result.ret == 0
    result.stdout.fnmatch_lines([
        "cluster-spec.yaml::policy::require-run-as-non-root",
        "cluster-spec.yaml::policy::disallow-privileged-containers",
        "cluster-spec.yaml::policy::extra",
        "cluster-spec.yaml::compliance::workloads.containers.required.runAsNonRoot",
        "cluster-spec.yaml::compliance::workloads.containers.forbidden.privileged",
        "cluster-spec.yaml::configuration::kubernetes.version",
        "6 tests collected*",
    ])
    assert not (pytester.path / "reports" / "drift-report.json").exists()


def test_types_option_limits_items(pytester: pytest.Pytester, spec: Path) -> None:
    result = pytester.runpytest("--kspec-spec", str(spec), "--kspec-types", "policies",
                                "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*::policy::extra", "3 tests collected*"])
    assert "compliance::" not in result.stdout.str()


def test_bad_types_value_is_a_usage_error(pytester: pytest.Pytester, spec: Path) -> None:
    result = pytester.runpytest("--kspec-spec", str(spec), "--kspec-types", "policy,widgets")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--kspec-types: unknown drift type 'widgets'*"])


def test_markers_select_items(pytester: pytest.Pytester, spec: Path) -> None:
    result = pytester.runpytest("--kspec-spec", str(spec), "-m", "kspec_configuration",
                                "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*::configuration::kubernetes.version", "1/6 tests collected*"])


def test_invalid_spec_is_one_line_per_problem_and_nothing_is_written(
        pytester: pytest.Pytester) -> None:
    bad = pytester.makefile(".yaml", bad=SPEC.replace("value: true}\n      required",
                                                      "valeu: true}\n      required"))
    result = pytester.runpytest("--kspec-spec", str(bad))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "bad.yaml:9:" in err and "spec.workloads.containers.forbidden[0]" in err
    assert "Traceback" not in err
    assert not (pytester.path / "reports").exists()


def test_missing_sim_state_is_a_usage_error(pytester: pytest.Pytester, spec: Path) -> None:
    result = pytester.runpytest("--kspec-spec", str(spec), "--kspec-sim", "nope.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*nope.yaml: simulator state not found*"])


def test_unreachable_cluster_is_one_line_exit_2_and_no_report(
        pytester: pytest.Pytester, spec: Path) -> None:
    kubeconfig = pytester.makefile(".kubeconfig", cfg=f"""\
apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "http://127.0.0.1:{_closed_port()}"}}}}]
users: [{{name: u, user: {{token: t}}}}]
contexts: [{{name: ctx, context: {{cluster: c, user: u}}}}]
current-context: ctx
""")
    result = pytester.runpytest_subprocess("--kspec-spec", str(spec),
                                           "--kspec-kubeconfig", str(kubeconfig))
    assert result.ret == 2
    lines = [line for line in result.outlines + result.errlines if line.strip()]
    assert len(lines) == 1, lines
    assert "no check ran" in lines[0] and "connection failed" in lines[0]
    assert not (pytester.path / "reports" / "drift-report.json").exists()
    assert not (pytester.path / "reports" / "history.db").exists()


def test_help_shows_the_kspec_group(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*cluster specification drift (pytest-kspec)*",
                                 "*--kspec-spec=PATH*", "*--kspec-remediate*"])


def test_plain_test_runs_are_untouched(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_ok():\n    assert True\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert not (pytester.path / "reports").exists()


DRIFT_CONFIG = """\
apiVersion: kspec.dev/v1
kind: DriftConfig
metadata: {name: nightly}
spec:
  detection: {policies: true, compliance: false, configuration: false}
"""


def test_drift_config_detection_switches_and_flags_override_them(
        pytester: pytest.Pytester, spec: Path) -> None:
    cfg = pytester.makefile(".yaml", **{"drift-config": DRIFT_CONFIG})
    result = pytester.runpytest("--kspec-spec", str(spec), "--kspec-config", str(cfg),
                                "--collect-only", "-q")
    result.stdout.fnmatch_lines(["3 tests collected*"])
    assert "compliance::" not in result.stdout.str()
    result = pytester.runpytest("--kspec-spec", str(spec), "--kspec-config", str(cfg),
                                "--kspec-types", "configuration", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*::configuration::kubernetes.version", "1 test collected*"])


def test_invalid_drift_config_is_a_usage_error(pytester: pytest.Pytester, spec: Path) -> None:
    cfg = pytester.makefile(".yaml", bad=DRIFT_CONFIG.replace("compliance: false",
                                                              "compliance: maybe"))
    result = pytester.runpytest("--kspec-spec", str(spec), "--kspec-config", str(cfg))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*bad.yaml:5:*spec.detection.compliance*"])


def test_last_failed_reruns_only_the_drifted_items(pytester: pytest.Pytester,
                                                   spec: Path) -> None:
    state = pytester.makefile(".yaml", state=PRIVILEGED_POD)
    args = ["-p", "cacheprovider", "--kspec-spec", str(spec), "--kspec-sim", str(state)]
    first = pytester.runpytest(*args)
    first.assert_outcomes(passed=3, failed=3)
    again = pytester.runpytest(*args, "--lf", "-q")
    again.assert_outcomes(failed=3)
    assert "compliance::workloads.containers.required.runAsNonRoot" not in again.stdout.str()
