"""The fleet view: one row per cluster in a shared history (``kspec drift history --fleet``).

Per cluster (every spec checked on it together): its last run, that run's pass %, the drift
open now and since when the oldest of it has been open, and the trend over its recent runs
(the rule of :mod:`pytest_kspec.history.trend`). One query per cluster for its recent runs and
one grouped query for open drift, so the view stays fast on a history of many clusters.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_kspec.history.records import iso
from pytest_kspec.history.trend import WINDOW, direction

if TYPE_CHECKING:
    from pytest_kspec.history.store import HistoryStore


@dataclass(frozen=True)
class FleetRow:
    """One cluster's standing; times are epoch seconds. ``pass_rate`` is None when the
    latest runs evaluated nothing (``errors`` says whether every check errored: a cluster
    that could not be reached, never a 100 % pass)."""

    cluster: str
    name: str
    specs: tuple[str, ...]
    runs: int
    last_run: str
    last_finished: float
    pass_rate: float | None
    open_drift: int
    oldest_open: float | None
    trend: str
    change_pp: float
    errors: int = 0

    @property
    def status(self) -> str:
        """``error`` when the latest runs could evaluate no check, else ``ok``."""
        return "error" if self.pass_rate is None and self.errors else "ok"

    def to_json(self) -> dict[str, Any]:
        return {"cluster": self.cluster, "name": self.name, "specs": list(self.specs),
                "runs": self.runs, "last_run": self.last_run,
                "last_finished": iso(self.last_finished), "pass_rate": self.pass_rate,
                "open_drift": self.open_drift,
                "oldest_open_drift": iso(self.oldest_open) if self.oldest_open else None,
                "trend": self.trend, "change_pp": self.change_pp, "errors": self.errors,
                "status": self.status}


def fleet(store: HistoryStore, cluster: str | None = None) -> list[FleetRow]:
    """Every cluster's row (or ``cluster``'s), worst first: most open drift, then lowest
    pass %, then name."""
    db = store.db
    by_cluster: dict[str, list[tuple[int, str, str]]] = {}
    for sid, spec, ident, name in store.scopes(cluster):
        by_cluster.setdefault(ident, []).append((sid, spec, name))
    open_drift: dict[int, tuple[int, float]] = {
        int(r[0]): (int(r[1]), float(r[2])) for r in db.execute(
            "SELECT e.scope, COUNT(*), MIN(p.start) FROM events e JOIN episodes p ON"
            ' p.event = e.id AND p."end" IS NULL GROUP BY e.scope')}
    run_counts = {int(r[0]): int(r[1]) for r in db.execute(
        "SELECT scope, COUNT(*) FROM runs GROUP BY scope")}
    rows: list[FleetRow] = []
    for ident, scopes in by_cluster.items():
        sids = [s[0] for s in scopes]
        points = store.recent_points(sids, WINDOW)
        if not points:
            continue
        last = points[-1]
        # the cluster's latest standing: each spec's most recent run, taken together
        latest = [p for p in (store.recent_points([sid], 1) for sid in sids) if p]
        ran = sum(p[0].evaluated for p in latest)  # errors are counted apart (trend.py)
        passed = sum(p[0].passed for p in latest)
        errors = sum(p[0].error for p in latest)
        rate = round(100.0 * passed / ran, 1) if ran else None
        opened = [open_drift[s] for s in sids if s in open_drift]
        trend, change = direction([p.pass_rate for p in points if p.pass_rate is not None])
        rows.append(FleetRow(
            cluster=ident, name=next((s[2] for s in scopes if s[2]), ""),
            specs=tuple(sorted({s[1] for s in scopes})),
            runs=sum(run_counts.get(s, 0) for s in sids), last_run=last.run_id,
            last_finished=last.finished, pass_rate=rate,
            open_drift=sum(o[0] for o in opened),
            oldest_open=min((o[1] for o in opened), default=None),
            trend=trend, change_pp=change, errors=errors))
    # worst first: unreadable clusters, then most open drift, lowest pass %, name
    rows.sort(key=lambda r: (r.status != "error", -r.open_drift,
                             -1.0 if r.pass_rate is None else r.pass_rate, r.name or r.cluster))
    return rows
