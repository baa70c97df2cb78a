"""pytest hooks and wiring for pytest-kspec (the work lives in modules that never import pytest)."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kspec", "cluster specification drift (pytest-kspec)")
    group.addoption("--kspec-spec", dest="kspec_spec", metavar="PATH", default=None,
                    help="ClusterSpecification to check the cluster against (turns kspec on).")
