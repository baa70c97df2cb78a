"""In-memory Kubernetes API server for tests, demos and users' own checks.

Names are imported on first use (PEP 562): pytest loads the ``kspec_sim`` fixture's module
in every session, and only sessions that start a simulator should pay for it.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_kspec.lazy import lazy_getattr

if TYPE_CHECKING:
    from pytest_kspec.sim.faults import Fault
    from pytest_kspec.sim.loader import dump_objects, load_objects
    from pytest_kspec.sim.simulator import Simulator

_LAZY = {
    "Fault": "pytest_kspec.sim.faults",
    "dump_objects": "pytest_kspec.sim.loader",
    "load_objects": "pytest_kspec.sim.loader",
    "Simulator": "pytest_kspec.sim.simulator",
}


__getattr__ = lazy_getattr(__name__, _LAZY, globals())


__all__ = ["Fault", "Simulator", "dump_objects", "load_objects"]
