"""Report stage: the run's model (what happened) apart from its renderers (JSON, JUnit, HTML).

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

from pytest_kspec.report.html import (
    fleet_matrix_html,
    item_extras,
    plan_html,
    summary_html,
    waivers_html,
)
from pytest_kspec.report.json_report import write_json_atomic
from pytest_kspec.report.junit import split_junit_by_cluster, write_fleet_junit, write_junit
from pytest_kspec.report.model import (
    REMEDIATION_STATUSES,
    ItemRecord,
    RunReport,
    active_drift,
    max_severity,
    remediation_counts,
    summary_line,
    utc_now,
)

__all__ = [
    "REMEDIATION_STATUSES",
    "ItemRecord",
    "RunReport",
    "active_drift",
    "fleet_matrix_html",
    "item_extras",
    "max_severity",
    "plan_html",
    "remediation_counts",
    "split_junit_by_cluster",
    "summary_html",
    "summary_line",
    "utc_now",
    "waivers_html",
    "write_fleet_junit",
    "write_json_atomic",
    "write_junit",
]
