"""Engine modules load through Python's own path finder, not pytest's assertion rewriting.

pytest marks every module of a pytest11 plugin's distribution for assertion rewriting, so,
installed from a wheel, each engine module a run imports goes through pytest's import hook:
read, parsed into a syntax tree and compiled at every run, unless pytest may write its own
cached copy next to it (it may not with ``PYTHONDONTWRITEBYTECODE=1`` or on a read-only image,
our own container's case), while the bytecode pip compiled at install goes unused. The engine
modules carry ``PYTEST_DONT_REWRITE``, which pytest honours only after parsing. Measured on an
installed package, that was about 0.4 s of CPU per run (docs/performance.md).

:class:`EngineFinder`, placed before pytest's hook in ``sys.meta_path`` when the plugin loads,
answers for the engine's modules with Python's standard spec, so they load exactly as they
would without pytest; the pytest side (``plugin/``, ``sim/pytest_fixtures.py``) is left to
pytest's hook and keeps its rewritten asserts.
"""

from __future__ import annotations

import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType

PACKAGE = "pytest_kspec"
PYTEST_SIDE = ("pytest_kspec.plugin", "pytest_kspec.sim.pytest_fixtures")


class EngineFinder:
    """A meta path finder for ``pytest_kspec.*`` engine modules: the standard path finder's
    spec (source or cached bytecode, as Python loads it), nothing else."""

    @classmethod
    def find_spec(cls, name: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if not name.startswith(PACKAGE + ".") or is_pytest_side(name):
            return None
        return importlib.machinery.PathFinder.find_spec(name, path)


def is_pytest_side(name: str) -> bool:
    """Whether module ``name`` is one of ours that imports pytest (rewritten by pytest)."""
    return any(name == side or name.startswith(side + ".") for side in PYTEST_SIDE)


def install() -> None:
    """Put :class:`EngineFinder` first in ``sys.meta_path`` (once)."""
    if EngineFinder not in sys.meta_path:
        sys.meta_path.insert(0, EngineFinder)
