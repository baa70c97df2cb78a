"""The package layout's promises: the engine runs without pytest, stages meet at their packages.

``kspec drift``, watch mode and users' own scripts import the engine without pytest installed
(or without wanting its import cost), so only ``plugin/`` and ``sim/pytest_fixtures.py`` may
import it. Each stage re-exports in its ``__init__`` what other stages use, so a stage's inner
modules can be split or renamed without touching its neighbours.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pytest_kspec"
STAGES = ("plugin", "cli", "spec", "desired", "cluster", "detect", "remediate", "history",
          "report", "alerts", "watch", "sim")
PYTEST_SIDE = ("pytest_kspec.plugin", "pytest_kspec.sim.pytest_fixtures")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _engine_modules() -> list[str]:
    names = sorted(_module_name(p) for p in PACKAGE.rglob("*.py"))
    return [n for n in names
            if not n.endswith(".__main__")
            and not any(n == side or n.startswith(side + ".") for side in PYTEST_SIDE)]


BLOCK_PYTEST = """
import importlib, importlib.abc, sys

class NoPytest(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("pytest", "_pytest", "xdist", "pytest_html"):
            raise ImportError(f"the engine imported {name}")
        return None

sys.meta_path.insert(0, NoPytest())
for name in sys.argv[1:]:
    importlib.import_module(name)
print(len(sys.argv) - 1, "modules imported without pytest")
"""


def test_engine_imports_without_pytest() -> None:
    modules = _engine_modules()
    assert "pytest_kspec.detect.engine" in modules and "pytest_kspec.cli.main" in modules
    proc = subprocess.run([sys.executable, "-c", BLOCK_PYTEST, *modules],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert f"{len(modules)} modules imported without pytest" in proc.stdout


def test_the_blocker_would_catch_pytest() -> None:
    proc = subprocess.run([sys.executable, "-c", BLOCK_PYTEST, "pytest_kspec.plugin"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode != 0
    assert "the engine imported pytest" in proc.stderr


def _stage_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in STAGES else None


def _cross_stage_imports() -> list[str]:
    found = []
    for path in PACKAGE.rglob("*.py"):
        here = _module_name(path)
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
                continue
            stage = _stage_of(node.module)
            if stage is None or stage == _stage_of(here):
                continue
            if node.module.count(".") > 1 and node.module not in PYTEST_SIDE:
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: "
                             f"from {node.module} import ...")
    return found


def test_stages_import_each_other_through_their_packages() -> None:
    assert _cross_stage_imports() == []


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_says_what_it_does(stage: str) -> None:
    init = PACKAGE / stage / "__init__.py"
    doc = ast.get_docstring(ast.parse(init.read_text("utf-8")))
    assert doc, f"{init} has no docstring"
    assert len(doc.splitlines()[0]) > 20
