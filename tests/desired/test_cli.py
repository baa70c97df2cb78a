"""`kspec policies`: stdout, atomic --output, and one clear line per problem with exit 2."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from pytest_kspec.cli import policies as desired_cli

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).resolve().parent / "golden"


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="kspec policies")
    desired_cli.add_arguments(parser)
    return desired_cli.run(parser.parse_args(list(argv)))


def test_prints_the_golden_yaml(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("--spec", str(ROOT / "examples" / "moderate.yaml")) == 0
    out, err = capsys.readouterr()
    assert out == (GOLDEN / "moderate.yaml").read_text(encoding="utf-8")
    # Coverage goes to stderr, so the YAML on stdout pipes into kubectl unchanged.
    assert err.startswith("admission coverage: ")
    assert "workload rules are enforced at admission" in err


def test_names_the_audit_only_rules(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("--spec", str(ROOT / "examples" / "strict.yaml")) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0] == ("admission coverage: 12 of 14 workload rules are enforced at admission "
                      "by a generated policy")
    assert [line.split(" (")[0] for line in err[1:]] == [
        "  audit-only: spec.workloads.containers.required[2]",
        "  audit-only: spec.workloads.images.requireSignatures"]


def test_output_file_is_written_whole(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "policies.yaml"
    target.write_text("old content\n")
    assert _run("--spec", str(ROOT / "examples" / "minimal.yaml"), "--output", str(target)) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert "wrote 2 policies" in err
    assert target.read_bytes() == (GOLDEN / "minimal.yaml").read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["policies.yaml"]


def test_unwritable_output_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the output folder should be\n")
    target = blocker / "policies.yaml"
    assert _run("--spec", str(ROOT / "examples" / "minimal.yaml"), "--output", str(target)) == 2
    _, err = capsys.readouterr()
    assert err.count("\n") == 1
    assert str(target) in err and "--output" in err
    assert blocker.read_text() == "a file where the output folder should be\n"


def test_output_folder_is_created(tmp_path: Path) -> None:
    target = tmp_path / "gitops" / "policies.yaml"
    assert _run("--spec", str(ROOT / "examples" / "minimal.yaml"), "--output", str(target)) == 0
    assert target.read_text().startswith("---\napiVersion: kyverno.io/v1\n")


def test_bad_spec_prints_its_problems_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: kspec.dev/v1\nkind: ClusterSpecification\n"
        "metadata: {name: bad, version: 1.0.0}\n"
        "spec:\n  workloads:\n    images:\n      requireDigests: maybe\n"
        "  surprise: 1\n"
    )
    target = tmp_path / "out.yaml"
    assert _run("--spec", str(bad), "--output", str(target)) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 2
    assert all(line.startswith(f"{bad}:") for line in lines)
    assert any("requireDigests" in line for line in lines)
    assert any("surprise" in line for line in lines)
    assert not target.exists()


def test_missing_spec_file_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("--spec", str(tmp_path / "nope.yaml")) == 2
    _, err = capsys.readouterr()
    assert "nope.yaml" in err and err.count("\n") == 1


def test_spec_is_required() -> None:
    with pytest.raises(SystemExit):
        _run()
