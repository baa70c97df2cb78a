"""History stage: the run store (SQLite), each run's link to it, the audit chain and the trend.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

from pytest_kspec.history import audit
from pytest_kspec.history.alertstate import AlertStateStore, deliveries
from pytest_kspec.history.audit import KEY_ENV, audit_key
from pytest_kspec.history.runlink import (
    DB_NAME,
    HistoryRecorder,
    RunHistory,
    history_path,
    run_input,
)
from pytest_kspec.history.store import (
    Baseline,
    EventRow,
    HistoryStore,
    ItemResult,
    RunInput,
    Scope,
    fingerprint,
    iso,
    parse_iso,
)
from pytest_kspec.history.trend import RunPoint, Trend

__all__ = [
    "DB_NAME",
    "KEY_ENV",
    "AlertStateStore",
    "Baseline",
    "EventRow",
    "HistoryRecorder",
    "HistoryStore",
    "ItemResult",
    "RunHistory",
    "RunInput",
    "RunPoint",
    "Scope",
    "Trend",
    "audit",
    "audit_key",
    "deliveries",
    "fingerprint",
    "history_path",
    "iso",
    "parse_iso",
    "run_input",
]
