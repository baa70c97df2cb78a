"""The ``kspec`` command: drift detect/remediate/history, policies, ``sim serve``; no pytest.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

from pytest_kspec.cli.main import EXIT_DRIFT, EXIT_INCOMPLETE, EXIT_OK, build_parser, main

__all__ = ["EXIT_DRIFT", "EXIT_INCOMPLETE", "EXIT_OK", "build_parser", "main"]
