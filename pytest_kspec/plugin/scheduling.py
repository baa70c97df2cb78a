"""xdist scheduling of a kspec session: each cluster's items on one worker.

Each worker lists what its items need from a cluster once (the snapshot is per process), so
spreading one cluster's items over every worker would list each of its kinds once per
worker. ``-n N`` hands out whole clusters instead: xdist's scope scheduling with the cluster
as the scope (``<spec>::<cluster>`` for kspec's items of a fleet run, every item under
``<spec>::`` for a one-cluster run, the ``[cluster]`` parameter for users' checks that read
``kspec_cluster`` in a fleet run). Other tests stay one scope each, spread as ``--dist load``
spreads them: a one-cluster session's own slow checks still run beside the spec's items.

This replaces ``--dist load`` (what ``-n`` uses), ``loadscope``, ``loadgroup`` and
``worksteal``; ``loadfile`` already keeps the spec's items together, ``each`` runs
everything everywhere by request. Node ids are left as they are (no ``@group`` suffix, so
reports read the same as with ``-n 0``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from xdist.scheduler import LoadScopeScheduling

if TYPE_CHECKING:
    import pytest

    from pytest_kspec.fleet import Fleet

REPLACED = frozenset({"load", "loadscope", "loadgroup", "worksteal"})


class ClusterScheduling(LoadScopeScheduling):  # type: ignore[misc]
    """Scope scheduling where a scope is one cluster of the fleet."""

    def __init__(self, config: pytest.Config, log: Any, spec_node: str,
                 clusters: list[str], multi: bool = True) -> None:
        super().__init__(config, log)
        self.prefix = spec_node + "::"
        self.clusters = set(clusters)
        self.multi = multi

    def _split_scope(self, nodeid: str) -> str:
        if not self.multi:  # one cluster: the spec's items are its items
            return "kspec-cluster" if nodeid.startswith(self.prefix) else nodeid
        if nodeid.startswith(self.prefix):
            cluster = nodeid[len(self.prefix):].split("::", 1)[0]
            if cluster in self.clusters:
                return f"kspec-cluster:{cluster}"
        if nodeid.endswith("]") and "[" in nodeid:
            for part in nodeid[nodeid.rindex("[") + 1:-1].split("-"):
                if part in self.clusters:
                    return f"kspec-cluster:{part}"
            whole = nodeid[nodeid.rindex("[") + 1:-1]
            for cluster in self.clusters:  # a cluster name with '-' in it
                if whole == cluster or whole.startswith(cluster + "-") or whole.endswith(
                        "-" + cluster) or f"-{cluster}-" in whole:
                    return f"kspec-cluster:{cluster}"
        return nodeid


def make_scheduler(config: pytest.Config, log: Any, fleet: Fleet) -> Any:
    """The scheduler of a kspec session under ``-n`` (one cluster or several); None
    (xdist's own) for the other dist modes."""
    if config.getvalue("dist") not in REPLACED:
        return None
    return ClusterScheduling(config, log, fleet.settings.spec_node, list(fleet.runs),
                             multi=fleet.multi)
