"""What an xdist controller hands its workers in a kspec session, and how it schedules them."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

from pytest_kspec.plugin.keys import WORKER_BUDGET, WORKER_KUBECONFIG, WORKER_UNUSABLE, get_fleet
from pytest_kspec.plugin.settings import WORKER_BASE


class XdistHooks:
    """Hand the controller's cluster (the simulator it started), each cluster's deletion
    budget and the clusters found unusable to every worker; keep each cluster of a fleet run
    on one worker."""

    @pytest.hookimpl
    def pytest_configure_node(self, node: Any) -> None:
        from pytest_kspec.remediate import DeletionBudget

        fleet = get_fleet(node.config)
        node.workerinput[WORKER_BASE] = str(node.config.invocation_params.dir)
        if not fleet.multi and fleet.first.access.kubeconfig:
            node.workerinput[WORKER_KUBECONFIG] = fleet.first.access.kubeconfig
        budgets = {}
        for name, run in fleet.runs.items():
            if run.remediation.active:
                if run.budget.path is None:  # one deletion cap for all workers of the run
                    fd, path = tempfile.mkstemp(prefix="kspec-deletions-")
                    os.close(fd)
                    run.budget = DeletionBudget(run.remediation.max_deletions, Path(path))
                budgets[name] = str(run.budget.path)
        if budgets:
            node.workerinput[WORKER_BUDGET] = budgets
        node.workerinput[WORKER_UNUSABLE] = fleet.unusable()

    @pytest.hookimpl
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        """A fleet run under ``-n``: each cluster's items go to one worker, so each
        cluster's kinds are listed once (see :mod:`pytest_kspec.plugin.scheduling`)."""
        from pytest_kspec.plugin.scheduling import make_scheduler

        return make_scheduler(config, log, get_fleet(config))
