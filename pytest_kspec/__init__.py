"""pytest-kspec: prove that a Kubernetes cluster still matches its kspec ClusterSpecification.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

from pytest_kspec.errors import ClusterError, KspecError, SpecError

__all__ = ["ClusterError", "KspecError", "SpecError", "__version__"]

__version__ = "0.1.0"
