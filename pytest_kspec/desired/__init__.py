"""Desired stage: the check catalog a spec asks for and the Kyverno ClusterPolicies it expects.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

from pytest_kspec.desired import catalog
from pytest_kspec.desired.catalog import CheckRef, enumerate_checks
from pytest_kspec.desired.expected import (
    ExpectedPolicy,
    expected_policies,
    generate_policies,
    is_kspec_managed,
    render_yaml,
)

__all__ = [
    "CheckRef",
    "ExpectedPolicy",
    "catalog",
    "enumerate_checks",
    "expected_policies",
    "generate_policies",
    "is_kspec_managed",
    "render_yaml",
]
