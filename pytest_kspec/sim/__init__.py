"""In-memory Kubernetes API server for tests, demos and users' own checks."""

from __future__ import annotations

from pytest_kspec.sim.faults import Fault
from pytest_kspec.sim.loader import dump_objects, load_objects
from pytest_kspec.sim.simulator import Simulator

__all__ = ["Fault", "Simulator", "dump_objects", "load_objects"]
