"""Compliance trend: pass % per run and per day, and whether it is improving or degrading.

Pass % is over the checks actually evaluated (passed + drifted): a check that could not be
evaluated (API error, 403, timeout) is counted apart, in ``errors``, so an API server that was
down for a while never reads as compliance collapsing; a run in which nothing could be
evaluated has no pass % and is left out of the rule and the chart.

The rule (also in the README): fit a least-squares line to the pass % of the last
:data:`WINDOW` runs (x = run index 0..n-1). The fitted change across the window,
``slope * (n - 1)`` in percentage points, is **improving** when >= +:data:`THRESHOLD_PP`,
**degrading** when <= -:data:`THRESHOLD_PP`, otherwise **stable**. Fewer than
:data:`MIN_RUNS` runs: **stable** (not enough history to say).

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

WINDOW = 10
THRESHOLD_PP = 2.0
MIN_RUNS = 3
CHART_RUNS = 50
"""How many recent runs the JSON report and the HTML chart carry."""
RULE = (f"least-squares slope of pass % over the last {WINDOW} runs: a fitted change of "
        f">= +{THRESHOLD_PP:g} pp is improving, <= -{THRESHOLD_PP:g} pp degrading, otherwise "
        f"stable (fewer than {MIN_RUNS} runs: stable)")


@dataclass(frozen=True)
class RunPoint:
    """One run's counts: ``finished`` is epoch seconds."""

    run_id: str
    finished: float
    passed: int
    failed: int
    error: int

    @property
    def evaluated(self) -> int:
        """Checks that reached a verdict (passed or drifted); errors are not among them."""
        return self.passed + self.failed

    @property
    def pass_rate(self) -> float | None:
        """Passed checks as a percentage of those evaluated; None when none was."""
        return round(100.0 * self.passed / self.evaluated, 1) if self.evaluated else None


def slope(values: Sequence[float]) -> float:
    """Least-squares slope of ``values`` against their index (0 for fewer than 2 values)."""
    n = len(values)
    if n < 2:
        return 0.0
    mean_x = (n - 1) / 2
    mean_y = sum(values) / n
    num = sum((i - mean_x) * (v - mean_y) for i, v in enumerate(values))
    den = sum((i - mean_x) ** 2 for i in range(n))
    return num / den


def direction(rates: Sequence[float], *, window: int = WINDOW,
              threshold: float = THRESHOLD_PP) -> tuple[str, float]:
    """``(improving|degrading|stable, fitted change in pp)`` for pass rates, oldest first."""
    recent = list(rates)[-window:]
    if len(recent) < MIN_RUNS:
        return "stable", 0.0
    change = round(slope(recent) * (len(recent) - 1), 2)
    if change >= threshold:
        return "improving", change
    if change <= -threshold:
        return "degrading", change
    return "stable", change


def daily(points: Sequence[RunPoint]) -> list[dict[str, Any]]:
    """Pass % per UTC day: the checks evaluated that day, passed ones as a percentage
    (None when none was); ``errors`` counts the checks that could not be evaluated."""
    days: dict[str, list[int]] = {}
    for p in points:
        day = dt.datetime.fromtimestamp(p.finished, dt.UTC).strftime("%Y-%m-%d")
        acc = days.setdefault(day, [0, 0, 0, 0])
        acc[0] += 1
        acc[1] += p.passed
        acc[2] += p.evaluated
        acc[3] += p.error
    return [{"day": day, "runs": runs,
             "pass_rate": round(100.0 * passed / evaluated, 1) if evaluated else None,
             "errors": errors}
            for day, (runs, passed, evaluated, errors) in sorted(days.items())]


@dataclass(frozen=True)
class Trend:
    """The trend over ``points`` (oldest first, the current run last)."""

    points: tuple[RunPoint, ...]

    @property
    def rates(self) -> list[float]:
        """Pass % of the runs that evaluated something, oldest first."""
        return [p.pass_rate for p in self.points if p.pass_rate is not None]

    @property
    def errors(self) -> list[int]:
        """Checks that could not be evaluated, per run (the runs of ``rates``)."""
        return [p.error for p in self.points if p.pass_rate is not None]

    @property
    def direction(self) -> str:
        return direction(self.rates)[0]

    @property
    def change(self) -> float:
        return direction(self.rates)[1]

    def to_json(self) -> dict[str, Any]:
        """The ``kspec.trend`` extra of the JSON report."""
        window = min(len(self.points), WINDOW)
        return {"direction": self.direction, "change_pp": self.change, "window": window,
                "pass_rates": self.rates[-CHART_RUNS:], "errors": self.errors[-CHART_RUNS:],
                "daily": daily(self.points)[-7:],
                "rule": RULE}

    def line(self) -> str:
        """One terminal line: ``trend improving (+3.1 pp over 10 runs; 90.0% -> 97.5%)``."""
        recent = self.rates[-WINDOW:]
        if not recent:
            return "trend: no runs yet"
        last = self.points[-1] if self.points else None
        apart = (f"; {last.error} check(s) not evaluated, not counted"
                 if last is not None and last.error else "")
        if len(recent) < MIN_RUNS:
            return (f"trend: stable (only {len(recent)} run(s) in the history; "
                    f"pass {recent[-1]:.1f}%{apart})")
        return (f"trend: {self.direction} ({self.change:+.1f} pp over {len(recent)} runs; "
                f"pass {recent[0]:.1f}% -> {recent[-1]:.1f}%{apart})")


def from_json(data: Mapping[str, Any]) -> list[float]:
    """The pass rates of a report's ``kspec.trend`` (for renderers given only the JSON)."""
    return [float(v) for v in data.get("pass_rates") or []]
