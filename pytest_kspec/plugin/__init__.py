"""The pytest side: hooks and wiring, items, options (pytest11 entry point ``pytest_kspec.plugin``).

pytest registers this module as the plugin, so the hooks and fixtures are re-exported here;
the work they wire up lives in the engine packages, which never import pytest.
"""

from __future__ import annotations

from pytest_kspec.plugin import engine_import

engine_import.install()  # before anything imports the engine: see engine_import's docstring

from pytest_kspec.plugin.hooks import (  # noqa: E402
    kspec_cluster,
    kspec_spec,
    kspec_violations,
    pytest_addoption,
    pytest_collect_file,
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_generate_tests,
    pytest_report_header,
    pytest_runtest_call,
    pytest_runtest_makereport,
    pytest_runtest_teardown,
    pytest_sessionstart,
    pytest_unconfigure,
)
from pytest_kspec.sim.pytest_fixtures import kspec_sim  # noqa: E402

__all__ = [
    "kspec_cluster",
    "kspec_sim",
    "kspec_spec",
    "kspec_violations",
    "pytest_addoption",
    "pytest_collect_file",
    "pytest_collection_modifyitems",
    "pytest_configure",
    "pytest_generate_tests",
    "pytest_report_header",
    "pytest_runtest_call",
    "pytest_runtest_makereport",
    "pytest_runtest_teardown",
    "pytest_sessionstart",
    "pytest_unconfigure",
]
