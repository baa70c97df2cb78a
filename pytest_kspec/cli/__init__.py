"""The ``kspec`` command: drift detect/remediate/history, policies, ``sim serve``; no pytest.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

from pytest_kspec.cli.main import main

__all__ = ["main"]
