"""docs/configuration.md is generated from the option definitions and JSON Schemas: it must
match what the code would generate now, and every field must be described."""

from __future__ import annotations

from pathlib import Path

from pytest_kspec.plugin.reference import drift_config_fields, render, report_fields

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
REGENERATE = "python -m pytest_kspec.plugin.reference > docs/configuration.md"


def test_configuration_reference_matches_the_code() -> None:
    assert DOC.read_text() == render(), f"docs/configuration.md is stale: run {REGENERATE}"


def test_every_drift_config_field_is_described() -> None:
    _, missing = drift_config_fields()
    assert missing == [], f"describe these DriftConfig fields in plugin/reference.py: {missing}"


def test_every_report_field_is_described() -> None:
    _, missing = report_fields()
    assert missing == [], f"describe these report fields in plugin/reference.py: {missing}"


def test_reference_lists_every_option_flag_and_field() -> None:
    text = render()
    for needle in ("`--kspec-spec PATH`", "`--kspec-reports DIR`", "### `kspec drift detect`",
                   "`--no-auto-remediate`", "`spec.storage.path`", "`spec.remediation.auto`",
                   "`drift.detected`", "`kspec.pass_rate`", "| 2 | interrupted"):
        assert needle in text, needle
