"""Start fast: what loading the plugin costs a pytest session, measured in modules not seconds.

pytest loads the plugin in every session; without ``--kspec-spec`` it must not import the
engine, the HTTP stack, the simulator or the heavy libraries, and pytest's assertion
rewriting (applied to every module of a plugin's distribution) must stay off the engine:
the engine loads through Python's own finder (plugin/engine_import.py).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "pytest_kspec"
PYTEST_SIDE = ("plugin/", "sim/pytest_fixtures.py")  # modules that import pytest


def _loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, timeout=120)
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_loading_the_plugin_imports_no_engine() -> None:
    loaded = _loaded_after("import pytest_kspec.plugin")
    heavy = {"kubernetes", "deepdiff", "jsonschema", "urllib3", "pytest_kspec.detect",
             "pytest_kspec.cluster.client", "pytest_kspec.sim.simulator", "pytest_kspec.run",
             "pytest_kspec.spec", "pytest_kspec.history", "pytest_kspec.report"}
    assert not heavy & loaded, sorted(heavy & loaded)


def test_a_kspec_run_imports_deepdiff_only_to_compare_live_policies() -> None:
    loaded = _loaded_after("import pytest_kspec.run, pytest_kspec.detect")
    assert "deepdiff" not in loaded
    assert "pytest_kspec.sim.simulator" not in loaded


def test_engine_modules_are_kept_out_of_assertion_rewriting() -> None:
    unmarked = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith(PYTEST_SIDE):
            continue
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        if "PYTEST_DONT_REWRITE" not in doc:
            unmarked.append(rel)
    assert not unmarked, ("engine modules without PYTEST_DONT_REWRITE in their docstring "
                          f"(see docs/performance.md): {unmarked}")


def test_pytest_imports_the_engine_without_its_rewriting_hook(tmp_path: Path) -> None:
    # Installed normally (found on sys.path), the package is marked for rewriting as the
    # pytest11 entry point's distribution. The engine must still load through Python's own
    # finder (its pip-compiled bytecode, no parsing at every run), the plugin through
    # pytest's hook. A module whose asserts pytest rewrote carries "@py_builtins".
    (tmp_path / "test_probe.py").write_text(
        "import pytest_kspec.detect.engine as engine\n"
        "import pytest_kspec.cluster.client as client\n"
        "import pytest_kspec.plugin.hooks as hooks\n"
        "def test_probe():\n"
        "    for m in (engine, client, hooks):\n"
        "        print('PROBE', m.__name__, type(m.__loader__).__name__)\n",
        encoding="utf-8")
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(PACKAGE.parent)}
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
                          "test_probe.py"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=300)
    probe = [line.split()[1:] for line in out.stdout.splitlines() if line.startswith("PROBE")]
    assert probe == [["pytest_kspec.detect.engine", "SourceFileLoader"],
                     ["pytest_kspec.cluster.client", "SourceFileLoader"],
                     ["pytest_kspec.plugin.hooks", "AssertionRewritingHook"]], (
        out.stdout + out.stderr)
