"""Remediate stage: guarded writes that fix drift, dry-run, verification, deletion budgets."""

from __future__ import annotations

from pytest_kspec.remediate.remediation import (
    DeletionBudget,
    MemoryRecorder,
    RemediationOptions,
    RemediationRecorder,
    Remediator,
    remediation_line,
    remediation_properties,
    remediation_text,
)

__all__ = [
    "DeletionBudget",
    "MemoryRecorder",
    "RemediationOptions",
    "RemediationRecorder",
    "Remediator",
    "remediation_line",
    "remediation_properties",
    "remediation_text",
]
