"""Remediation options of the plugin, with pytester (no cluster)."""

from __future__ import annotations

from pathlib import Path

import pytest

SPEC = """\
apiVersion: kspec.dev/v1
kind: ClusterSpecification
metadata: {name: team-a, version: 1.0.0}
spec:
  workloads:
    containers:
      forbidden:
        - {key: securityContext.privileged, value: true}
"""


@pytest.fixture
def spec(pytester: pytest.Pytester) -> Path:
    path: Path = pytester.makefile(".yaml", **{"cluster-spec": SPEC})
    return path


def test_bad_max_deletions_is_a_usage_error(pytester: pytest.Pytester, spec: Path) -> None:
    result = pytester.runpytest("--kspec-spec", str(spec), "--kspec-max-deletions", "many")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--kspec-max-deletions: 'many' is not a whole number*"])


def test_help_lists_the_remediation_options(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*--kspec-prune*", "*--kspec-max-deletions=N*"])


def test_resource_items_come_from_the_drift_config(pytester: pytest.Pytester,
                                                   spec: Path) -> None:
    config = pytester.makefile(".yaml", drift="""\
apiVersion: kspec.dev/v1
kind: DriftConfig
metadata: {name: d}
spec:
  remediation:
    resources:
      workloads.containers.forbidden.privileged: delete
""")
    result = pytester.runpytest("--kspec-spec", str(spec), "--kspec-config", str(config),
                                "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*::resource::workloads.containers.forbidden.privileged"])
    result = pytester.runpytest("--kspec-spec", str(spec), "--kspec-config", str(config),
                                "--kspec-types", "policy,compliance", "--collect-only", "-q")
    assert "::resource::" not in result.stdout.str()


def test_unknown_resource_check_is_a_usage_error(pytester: pytest.Pytester, spec: Path) -> None:
    config = pytester.makefile(".yaml", drift="""\
apiVersion: kspec.dev/v1
kind: DriftConfig
metadata: {name: d}
spec:
  remediation:
    resources: {workloads.nope: delete}
""")
    result = pytester.runpytest("--kspec-spec", str(spec), "--kspec-config", str(config))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*remediation.resources: 'workloads.nope' is not a compliance "
                                 "check of *cluster-spec.yaml*"])
