"""History tests reuse the end-to-end helpers (a simulated cluster built from a spec)."""

from __future__ import annotations

from tests.e2e.conftest import cluster

__all__ = ["cluster"]
