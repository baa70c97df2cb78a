"""History stage: the run store (SQLite or PostgreSQL), each run's link to it, the audit chains
and the trend.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

from pytest_kspec.history import audit
from pytest_kspec.history.alertstate import AlertStateStore, deliveries
from pytest_kspec.history.audit import KEY_ENV, audit_key
from pytest_kspec.history.db import HistoryError
from pytest_kspec.history.fleet import FleetRow, fleet
from pytest_kspec.history.records import (
    Baseline,
    EventRow,
    ItemResult,
    RunInput,
    Scope,
    fingerprint,
    iso,
    parse_iso,
)
from pytest_kspec.history.runlink import (
    DB_NAME,
    HistoryRecorder,
    Location,
    RunHistory,
    history_location,
    run_input,
)
from pytest_kspec.history.store import HistoryStore
from pytest_kspec.history.trend import RunPoint, Trend

__all__ = [
    "DB_NAME",
    "KEY_ENV",
    "AlertStateStore",
    "Baseline",
    "EventRow",
    "FleetRow",
    "HistoryError",
    "HistoryRecorder",
    "HistoryStore",
    "ItemResult",
    "Location",
    "RunHistory",
    "RunInput",
    "RunPoint",
    "Scope",
    "Trend",
    "audit",
    "audit_key",
    "deliveries",
    "fingerprint",
    "fleet",
    "history_location",
    "iso",
    "parse_iso",
    "run_input",
]
