"""Cluster stage: API access (kubeconfig, in-cluster, simulator), raw-JSON requests, snapshot.

A kubeconfig's contexts: ``list_contexts(path)`` lists them (``ContextInfo``: name, cluster,
user, namespace, server, current); ``Cluster.connect(path, name)`` opens one by name and
``load_context(path, name)`` resolves one without connecting (``ContextConfig``).

Names are imported on first use (PEP 562): the plugin reads ``DEFAULT_SIM_VERSION`` when it
declares its options, and a pytest session without ``--kspec-spec`` should not pay for the
HTTP stack.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_kspec.lazy import lazy_getattr

if TYPE_CHECKING:
    from pytest_kspec.cluster.access import (
        AccessOptions,
        ClusterAccess,
        sim_paths,
    )
    from pytest_kspec.cluster.client import Cluster, RetryPolicy
    from pytest_kspec.cluster.kubeconfig import (
        ContextConfig,
        ContextInfo,
        Kubeconfig,
        list_contexts,
        load_context,
        read_kubeconfig,
    )
    from pytest_kspec.cluster.selection import ClusterRef, select_clusters
    from pytest_kspec.cluster.snapshot import Snapshot
    from pytest_kspec.cluster.watch import SLACK, Backoff, Change, KindWatcher

DEFAULT_SIM_VERSION = "1.29.4"

_LAZY = {
    "AccessOptions": "pytest_kspec.cluster.access",
    "ClusterAccess": "pytest_kspec.cluster.access",
    "sim_paths": "pytest_kspec.cluster.access",
    "Cluster": "pytest_kspec.cluster.client",
    "RetryPolicy": "pytest_kspec.cluster.client",
    "ContextConfig": "pytest_kspec.cluster.kubeconfig",
    "ContextInfo": "pytest_kspec.cluster.kubeconfig",
    "Kubeconfig": "pytest_kspec.cluster.kubeconfig",
    "list_contexts": "pytest_kspec.cluster.kubeconfig",
    "load_context": "pytest_kspec.cluster.kubeconfig",
    "read_kubeconfig": "pytest_kspec.cluster.kubeconfig",
    "ClusterRef": "pytest_kspec.cluster.selection",
    "select_clusters": "pytest_kspec.cluster.selection",
    "Snapshot": "pytest_kspec.cluster.snapshot",
    "SLACK": "pytest_kspec.cluster.watch",
    "Backoff": "pytest_kspec.cluster.watch",
    "Change": "pytest_kspec.cluster.watch",
    "KindWatcher": "pytest_kspec.cluster.watch",
}


__getattr__ = lazy_getattr(__name__, _LAZY, globals())


__all__ = [
    "DEFAULT_SIM_VERSION",
    "SLACK",
    "AccessOptions",
    "Backoff",
    "Change",
    "Cluster",
    "ClusterAccess",
    "ClusterRef",
    "ContextConfig",
    "ContextInfo",
    "KindWatcher",
    "Kubeconfig",
    "RetryPolicy",
    "Snapshot",
    "list_contexts",
    "load_context",
    "read_kubeconfig",
    "select_clusters",
    "sim_paths",
]
