"""Trend math: least-squares slope, the improving/degrading/stable rule, pass % per day."""

from __future__ import annotations

import pytest

from pytest_kspec.history.trend import (
    MIN_RUNS,
    THRESHOLD_PP,
    WINDOW,
    RunPoint,
    Trend,
    daily,
    direction,
    slope,
)

DAY = 86_400.0
T0 = 1_736_899_200.0  # 2025-01-15T00:00:00Z


def test_slope_is_the_least_squares_fit() -> None:
    assert slope([10, 20, 30, 40]) == pytest.approx(10.0)
    assert slope([50.0]) == 0.0
    # y = 1, 3, 2: mean x 1, mean y 2, slope = ((-1)(-1) + 0 + (1)(0)) / 2 = 0.5
    assert slope([1, 3, 2]) == pytest.approx(0.5)


def test_direction_uses_the_fitted_change_over_the_window() -> None:
    assert direction([90, 92, 94]) == ("improving", 4.0)
    assert direction([94, 92, 90]) == ("degrading", -4.0)
    assert direction([90, 91, 90, 91]) == ("stable", pytest.approx(0.6))
    # exactly at the threshold counts
    assert direction([90, 90 + THRESHOLD_PP / 2, 90 + THRESHOLD_PP])[0] == "improving"


def test_too_few_runs_are_stable() -> None:
    assert direction([10, 90][: MIN_RUNS - 1]) == ("stable", 0.0)


def test_only_the_last_window_runs_count() -> None:
    falling_then_flat = [100 - i for i in range(20)] + [80.0] * WINDOW
    assert direction(falling_then_flat)[0] == "stable"


def test_pass_rate_is_over_evaluated_checks_and_counts_errors_apart() -> None:
    assert RunPoint("r", T0, passed=3, failed=1, error=5).pass_rate == 75.0
    assert RunPoint("r", T0, passed=0, failed=0, error=6).pass_rate is None
    assert RunPoint("r", T0, passed=0, failed=0, error=0).pass_rate is None


def test_a_run_that_evaluated_nothing_leaves_the_trend_untouched() -> None:
    healthy = [RunPoint(f"r{i}", T0 + i * 300, 9, 1, 0) for i in range(4)]
    api_down = RunPoint("down", T0 + 4 * 300, 0, 0, 10)
    partly = RunPoint("partly", T0 + 5 * 300, 9, 1, 3)
    trend = Trend((*healthy, api_down, partly))
    assert trend.rates == [90.0] * 5
    assert trend.errors == [0, 0, 0, 0, 3]
    assert trend.direction == "stable" and trend.change == 0.0
    assert trend.line().endswith("pass 90.0% -> 90.0%; 3 check(s) not evaluated, not counted)")


def test_daily_pass_rate_pools_the_items_of_each_utc_day() -> None:
    points = [RunPoint("a", T0 + 60, 9, 1, 0), RunPoint("b", T0 + 3600, 7, 3, 2),
              RunPoint("c", T0 + DAY + 1, 10, 0, 0), RunPoint("d", T0 + 2 * DAY, 0, 0, 4)]
    assert daily(points) == [{"day": "2025-01-15", "runs": 2, "pass_rate": 80.0, "errors": 2},
                             {"day": "2025-01-16", "runs": 1, "pass_rate": 100.0, "errors": 0},
                             {"day": "2025-01-17", "runs": 1, "pass_rate": None, "errors": 4}]


def test_trend_json_and_line() -> None:
    points = tuple(RunPoint(f"r{i}", T0 + i * 300, 80 + 5 * i, 20 - 5 * i, 0) for i in range(4))
    trend = Trend(points)
    data = trend.to_json()
    assert data["direction"] == "improving"
    assert data["pass_rates"] == [80.0, 85.0, 90.0, 95.0]
    assert data["change_pp"] == 15.0
    assert "least-squares" in data["rule"]
    assert trend.line() == "trend: improving (+15.0 pp over 4 runs; pass 80.0% -> 95.0%)"
