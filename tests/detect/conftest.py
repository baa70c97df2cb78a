"""Fixtures for the drift tests (the policies themselves are in drift_policies.py)."""

from __future__ import annotations

from typing import Any

import pytest
from drift_policies import defaulted, expected_policy, live_copy


@pytest.fixture
def expected() -> dict[str, Any]:
    return expected_policy()


@pytest.fixture
def live(expected: dict[str, Any]) -> dict[str, Any]:
    return defaulted(live_copy(expected))
