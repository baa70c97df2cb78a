"""Report stage: the run's model (what happened) apart from its renderers (JSON, JUnit, HTML).

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

from pytest_kspec.report.html import item_extras, plan_html, summary_html, waivers_html
from pytest_kspec.report.json_report import write_json_atomic
from pytest_kspec.report.junit import write_junit
from pytest_kspec.report.model import (
    REMEDIATION_STATUSES,
    ItemRecord,
    RunReport,
    remediation_counts,
    summary_line,
    utc_now,
)

__all__ = [
    "REMEDIATION_STATUSES",
    "ItemRecord",
    "RunReport",
    "item_extras",
    "plan_html",
    "remediation_counts",
    "summary_html",
    "summary_line",
    "utc_now",
    "waivers_html",
    "write_json_atomic",
    "write_junit",
]
