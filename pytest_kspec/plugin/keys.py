"""Where the plugin keeps its per-session state on pytest's objects (``config.stash``).

Kept apart from the items so the plugin's hooks can be loaded without importing the engine:
a pytest session without ``--kspec-spec`` imports none of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_kspec.detect import Outcome
    from pytest_kspec.fleet import Fleet
    from pytest_kspec.run import Run

FLEET_KEY: pytest.StashKey[Fleet] = pytest.StashKey()
OUTCOME_KEY: pytest.StashKey[Outcome] = pytest.StashKey()
ATTEMPTS_KEY: pytest.StashKey[list[dict[str, Any]]] = pytest.StashKey()
CLUSTER_KEY = pytest.StashKey[str]()
"""On an item of a fleet run (several clusters): the name of the cluster it checks."""

WORKER_KUBECONFIG = "kspec_kubeconfig"
"""workerinput: the kubeconfig of the controller's embedded simulator."""
WORKER_BUDGET = "kspec_deletion_budgets"
"""workerinput: cluster name -> the file that shares its deletion budget across workers."""
WORKER_UNUSABLE = "kspec_unusable_clusters"
"""workerinput: cluster name -> why it cannot be used (found by the controller)."""

RUN_KEY = FLEET_KEY
"""``RUN_KEY in config.stash``: whether this session is a kspec session."""


def get_fleet(config: pytest.Config) -> Fleet:
    return config.stash[FLEET_KEY]


def get_run(config: pytest.Config, cluster: str = "") -> Run:
    """The run of ``cluster``; without one, the first cluster's (a one-cluster session's
    only run)."""
    return config.stash[FLEET_KEY].run(cluster)


def runs_of(item: pytest.Item) -> list[Run]:
    """The runs ``item`` reports to: its cluster's; in a fleet run, a user's check that
    reads no cluster (no ``kspec_cluster``) reports to every cluster's."""
    fleet = item.config.stash[FLEET_KEY]
    cluster = item.stash.get(CLUSTER_KEY, "")
    if cluster or not fleet.multi:
        return [fleet.run(cluster)]
    return list(fleet)


def run_of(item: pytest.Item) -> Run:
    """The run ``item`` is judged (and remediated) in: its cluster's; a fleet run's check
    that reads no cluster is judged against the first cluster's history."""
    return get_run(item.config, item.stash.get(CLUSTER_KEY, ""))
