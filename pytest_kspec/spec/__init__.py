"""Spec stage: load and check a ClusterSpecification and a DriftConfig, with `file:line` errors.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

from pytest_kspec.spec.alerting import PAGERDUTY_URL, Channel, url_problem
from pytest_kspec.spec.driftconfig import (
    CLUSTER_NAME,
    RESERVED_CLUSTER_NAMES,
    ClusterEntry,
    DriftConfig,
    Storage,
    load_drift_config,
    parse_duration,
    parse_types,
)
from pytest_kspec.spec.model import ClusterSpec, load_spec
from pytest_kspec.spec.waivers import WARN_DAYS, Waiver

__all__ = [
    "CLUSTER_NAME",
    "PAGERDUTY_URL",
    "RESERVED_CLUSTER_NAMES",
    "WARN_DAYS",
    "Channel",
    "ClusterEntry",
    "ClusterSpec",
    "DriftConfig",
    "Storage",
    "Waiver",
    "load_drift_config",
    "load_spec",
    "parse_duration",
    "parse_types",
    "url_problem",
]
