"""Desired stage: the check catalog a spec asks for and the Kyverno ClusterPolicies it expects.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

from pytest_kspec.desired import catalog, imagerefs, kyverno_versions
from pytest_kspec.desired.catalog import CheckRef, enumerate_checks
from pytest_kspec.desired.coverage import audit_only, coverage_json, coverage_lines
from pytest_kspec.desired.expected import (
    ExpectedPolicy,
    expected_policies,
    generate_policies,
    is_kspec_managed,
    render_yaml,
)
from pytest_kspec.desired.probes import PROBE_LABEL, probe_pod
from pytest_kspec.desired.quantity import parse_quantity, same_quantity

__all__ = [
    "PROBE_LABEL",
    "CheckRef",
    "ExpectedPolicy",
    "audit_only",
    "catalog",
    "coverage_json",
    "coverage_lines",
    "enumerate_checks",
    "expected_policies",
    "generate_policies",
    "imagerefs",
    "is_kspec_managed",
    "kyverno_versions",
    "parse_quantity",
    "probe_pod",
    "render_yaml",
    "same_quantity",
]
