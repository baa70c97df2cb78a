"""The ``kspec`` command: drift detect/remediate/history, policies, ``sim serve``; no pytest."""

from __future__ import annotations

from pytest_kspec.cli.main import main

__all__ = ["main"]
