"""Each malformed spec or DriftConfig in invalid/ gives exactly the lines in its .err file."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_kspec.errors import SpecError
from pytest_kspec.spec import load_drift_config, load_spec

INVALID = Path(__file__).parent / "invalid"
CASES = sorted(INVALID.glob("*.yaml"))


def test_corpus_is_large_and_complete() -> None:
    assert len(CASES) >= 45
    missing = [case.name for case in CASES if not case.with_suffix(".err").is_file()]
    assert missing == []
    orphans = [err.name for err in INVALID.glob("*.err") if not err.with_suffix(".yaml").is_file()]
    assert orphans == []


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_invalid_file_reports_exact_lines(case: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = case.with_suffix(".err").read_text("utf-8").splitlines()
    monkeypatch.chdir(INVALID)
    load = load_drift_config if case.name.startswith("config-") else load_spec
    with pytest.raises(SpecError) as info:
        load(case.name)
    assert info.value.problems == expected
    assert str(info.value) == "\n".join(expected)


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_every_line_has_the_one_line_format(case: Path) -> None:
    for line in case.with_suffix(".err").read_text("utf-8").splitlines():
        file, row, col, rest = line.split(":", 3)
        assert file == case.name
        assert int(row) >= 1 and int(col) >= 1
        field, _, message = rest.strip().partition(": ")
        assert field and message
        assert message.endswith(")"), "every message says what to write instead"
        assert "Traceback" not in line


def test_problems_are_sorted_by_position() -> None:
    lines = (INVALID / "many-problems.err").read_text("utf-8").splitlines()
    positions = [tuple(int(n) for n in line.split(":")[1:3]) for line in lines]
    assert len(lines) == 5
    assert positions == sorted(positions)
