"""Detect stage: judge the cluster against the spec (policy drift, compliance, versions).

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

from pytest_kspec.detect.compliance import Violation, evaluate
from pytest_kspec.detect.custom import (
    CustomCheck,
    CustomViolation,
    Violations,
    judge_custom,
    parse_marker,
    unique_ids,
)
from pytest_kspec.detect.efficacy import NOT_ENFORCING, Prober, ProbeResult
from pytest_kspec.detect.engine import (
    COMPLIANCE,
    CONFIGURATION,
    CUSTOM,
    EXTRA,
    POLICY,
    RESOURCE,
    TYPES,
    Detector,
    Outcome,
    Plan,
    Target,
    drift_properties,
    make_plan,
    with_history,
)
from pytest_kspec.detect.normalize import LAST_APPLIED
from pytest_kspec.detect.policydrift import (
    DriftEvent,
    PolicyComparison,
    compare_policy,
    max_severity,
    summarize,
)

__all__ = [
    "COMPLIANCE",
    "CONFIGURATION",
    "CUSTOM",
    "EXTRA",
    "LAST_APPLIED",
    "NOT_ENFORCING",
    "POLICY",
    "RESOURCE",
    "TYPES",
    "CustomCheck",
    "CustomViolation",
    "Detector",
    "DriftEvent",
    "Outcome",
    "Plan",
    "PolicyComparison",
    "ProbeResult",
    "Prober",
    "Target",
    "Violation",
    "Violations",
    "compare_policy",
    "drift_properties",
    "evaluate",
    "judge_custom",
    "make_plan",
    "max_severity",
    "parse_marker",
    "summarize",
    "unique_ids",
    "with_history",
]
