"""Detect stage: judge the cluster against the spec (policy drift, compliance, versions).

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

from pytest_kspec.detect.compliance import Violation, evaluate
from pytest_kspec.detect.efficacy import NOT_ENFORCING, Prober, ProbeResult
from pytest_kspec.detect.engine import (
    COMPLIANCE,
    CONFIGURATION,
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
)
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
    "EXTRA",
    "NOT_ENFORCING",
    "POLICY",
    "RESOURCE",
    "TYPES",
    "Detector",
    "DriftEvent",
    "Outcome",
    "Plan",
    "PolicyComparison",
    "ProbeResult",
    "Prober",
    "Target",
    "Violation",
    "compare_policy",
    "drift_properties",
    "evaluate",
    "make_plan",
    "max_severity",
    "summarize",
]
