"""Cluster stage: API access (kubeconfig, in-cluster, simulator), raw-JSON requests, snapshot."""

from __future__ import annotations

from pytest_kspec.cluster.access import (
    DEFAULT_SIM_VERSION,
    AccessOptions,
    ClusterAccess,
    sim_paths,
)
from pytest_kspec.cluster.client import Cluster, RetryPolicy
from pytest_kspec.cluster.snapshot import Snapshot

__all__ = [
    "DEFAULT_SIM_VERSION",
    "AccessOptions",
    "Cluster",
    "ClusterAccess",
    "RetryPolicy",
    "Snapshot",
    "sim_paths",
]
