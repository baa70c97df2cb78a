"""``--kspec-metrics-file``: the pytest plugin writes the node-exporter textfile a CronJob's
node-exporter picks up, once per session (on the xdist controller), parsed here with
prometheus-client's own parser."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.plugin.test_plugin import PRIVILEGED_POD, SPEC

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


@pytest.fixture
def project(pytester: pytest.Pytester) -> tuple[Path, Path]:
    spec = pytester.makefile(".yaml", **{"cluster-spec": SPEC})
    state = pytester.makefile(".yaml", state=PRIVILEGED_POD)
    return spec, state


def _matches_report(found: Samples, report: dict[str, object]) -> int:
    """Every item of the drift report has its current result set to 1 (and the others 0);
    returns how many items there were."""
    results = report["kspec"]["results"]  # type: ignore[index]
    for record in results:
        base = {("type", record["type"]), ("id", record["id"]),
                ("severity", record["severity"] or "info")}
        for result in ("passed", "failed", "error", "waived"):
            key = ("kspec_check_result", frozenset(base | {("result", result)}))
            assert found[key] == (1 if record["status"] == result else 0), (key, record)
    return len(results)


def test_metrics_file_relative_to_the_invocation_directory(
        pytester: pytest.Pytester, project: tuple[Path, Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    spec, state = project
    elsewhere = pytester.mkdir("cron")
    monkeypatch.chdir(elsewhere)
    result = pytester.runpytest("--rootdir", str(pytester.path), "--kspec-spec", str(spec),
                                "--kspec-sim", str(state), "--kspec-reports",
                                str(pytester.path / "reports"),
                                "--kspec-metrics-file", "textfile/kspec.prom")
    result.assert_outcomes(passed=3, failed=3)
    target = elsewhere / "textfile" / "kspec.prom"
    result.stdout.fnmatch_lines([f"kspec: metrics written to {target}"])
    assert not (pytester.path / "textfile").exists()
    found = samples(target.read_text())
    report = json.loads((pytester.path / "reports" / "drift-report.json").read_text())
    assert _matches_report(found, report) == 6
    assert sum(v for (name, _), v in found.items() if name == "kspec_drift_open") == len(
        [e for e in report["events"] if e.get("drift") != "resolved" and not e.get("waived")])
    assert found[("kspec_cycle_duration_seconds_count", frozenset())] == 1
    assert found[("kspec_last_successful_cycle_timestamp_seconds", frozenset())] > 1.7e9
    assert [p.name for p in target.parent.iterdir()] == ["kspec.prom"]  # no temp file left


def test_metrics_file_written_once_by_the_xdist_controller(
        pytester: pytest.Pytester, project: tuple[Path, Path]) -> None:
    spec, state = project
    target = pytester.path / "kspec.prom"
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:randomly", "--kspec-spec",
                                           str(spec), "--kspec-sim", str(state),
                                           "--kspec-metrics-file", "kspec.prom")
    result.assert_outcomes(passed=3, failed=3)
    assert result.stdout.str().count("kspec: metrics written to") == 1
    found = samples(target.read_text())
    report = json.loads((pytester.path / "reports" / "drift-report.json").read_text())
    # the controller's file holds both workers' items, not one worker's share
    assert _matches_report(found, report) == 6
    assert len({labels for name, labels in found if name == "kspec_check_result"}
               ) == 6 * 4


def test_unwritable_metrics_file_is_a_line_not_a_failure(
        pytester: pytest.Pytester, project: tuple[Path, Path]) -> None:
    spec, state = project
    pytester.makefile(".txt", blocker="a file where a directory is needed")
    result = pytester.runpytest("--kspec-spec", str(spec), "--kspec-sim", str(state),
                                "--kspec-metrics-file", "blocker.txt/kspec.prom")
    result.assert_outcomes(passed=3, failed=3)
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # as without the option
    result.stdout.fnmatch_lines(["kspec: metrics not written to */blocker.txt/kspec.prom: *"])
    assert "Traceback" not in result.stdout.str()
    assert (pytester.path / "reports" / "drift-report.json").is_file()


def test_collect_only_writes_no_metrics(pytester: pytest.Pytester,
                                        project: tuple[Path, Path]) -> None:
    spec, state = project
    result = pytester.runpytest("--kspec-spec", str(spec), "--kspec-sim", str(state),
                                "--kspec-metrics-file", "kspec.prom", "--collect-only", "-q")
    assert result.ret == 0
    assert not (pytester.path / "kspec.prom").exists()


def test_help_lists_the_option(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*kspec*", "*--kspec-metrics-file=PATH*"])
