"""Remediate stage: guarded writes that fix drift, dry-run, verification, deletion budgets,
plans a person approves and their guarded application.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

from pytest_kspec.remediate.apply import PlanApplier, apply_line
from pytest_kspec.remediate.custom import FixClient
from pytest_kspec.remediate.options import (
    DeletionBudget,
    MemoryRecorder,
    RemediationOptions,
    RemediationRecorder,
)
from pytest_kspec.remediate.plan import (
    DEFAULT_MAX_AGE,
    PlanBuilder,
    PlanError,
    RemediationPlan,
    check_plan,
    load_plan,
    plan_age,
    write_plan,
)
from pytest_kspec.remediate.remediator import Remediator
from pytest_kspec.remediate.render import (
    remediation_line,
    remediation_properties,
    remediation_text,
)

__all__ = [
    "DEFAULT_MAX_AGE",
    "DeletionBudget",
    "FixClient",
    "MemoryRecorder",
    "PlanApplier",
    "PlanBuilder",
    "PlanError",
    "RemediationOptions",
    "RemediationPlan",
    "RemediationRecorder",
    "Remediator",
    "apply_line",
    "check_plan",
    "load_plan",
    "plan_age",
    "remediation_line",
    "remediation_properties",
    "remediation_text",
    "write_plan",
]
