"""Where the plugin keeps its per-session state on pytest's objects (``config.stash``).

Kept apart from the items so the plugin's hooks can be loaded without importing the engine:
a pytest session without ``--kspec-spec`` imports none of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_kspec.detect import Outcome
    from pytest_kspec.run import Run

RUN_KEY: pytest.StashKey[Run] = pytest.StashKey()
OUTCOME_KEY: pytest.StashKey[Outcome] = pytest.StashKey()
ATTEMPTS_KEY: pytest.StashKey[list[dict[str, Any]]] = pytest.StashKey()


def get_run(config: pytest.Config) -> Run:
    return config.stash[RUN_KEY]
