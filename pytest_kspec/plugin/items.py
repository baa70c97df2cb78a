"""pytest nodes: the spec file, one collector per drift type, one item per target.

With several clusters (a fleet run) the spec file collects one :class:`ClusterGroup` per
cluster first: ``<spec>::<cluster>::<type>::<id>``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pytest_kspec.detect import TYPES, Outcome, Target, drift_properties
from pytest_kspec.plugin.keys import (
    ATTEMPTS_KEY,
    CLUSTER_KEY,
    OUTCOME_KEY,
    RUN_KEY,
    get_fleet,
    get_run,
    run_of,
)
from pytest_kspec.remediate import remediation_properties, remediation_text

__all__ = ["ATTEMPTS_KEY", "OUTCOME_KEY", "RUN_KEY", "ClusterGroup", "DriftFound", "KspecItem",
           "SpecFile", "TypeGroup", "get_run"]


class DriftFound(Exception):
    """Raised by an item whose target drifted; its text is the readable diff."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome
        super().__init__(outcome.text)


class SpecFile(pytest.File):
    """The ClusterSpecification: collects one :class:`TypeGroup` per drift type it asks for."""

    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        fleet = get_fleet(self.config)
        if fleet.multi:
            for name in fleet.runs:
                yield ClusterGroup.from_parent(self, name=name)
            return
        yield from _type_groups(self, "")


def _type_groups(parent: pytest.Collector, cluster: str) -> Iterator[TypeGroup]:
    plan = get_run(parent.config, cluster).plan
    for kind in TYPES:
        targets = plan.of_type(kind)
        if targets:
            yield TypeGroup.from_parent(parent, name=kind, targets=targets, cluster=cluster)


class ClusterGroup(pytest.Collector):
    """``<spec>::<cluster>``: one cluster's items in a fleet run."""

    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        yield from _type_groups(self, self.name)


class TypeGroup(pytest.Collector):
    """``<spec>::policy``: the items of one drift type."""

    def __init__(self, *, targets: list[Target], cluster: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.targets = targets
        self.cluster = cluster

    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        for target in self.targets:
            yield KspecItem.from_parent(self, name=target.id, target=target,
                                        cluster=self.cluster)


class KspecItem(pytest.Item):
    """One expected policy or compliance check, judged against the live cluster.

    Evaluation happens in ``setup`` so a check that could not be evaluated (API error,
    403, timeout) is reported as an *error*; drift is a failure of the call phase. With
    remediation on, ``teardown`` fixes the drift: the item still fails (drift happened),
    and its teardown report carries the record with each event's remediation.
    """

    def __init__(self, *, target: Target, cluster: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target = target
        self.add_marker(f"kspec_{target.type}")
        self.add_marker(f"kspec_severity_{target.severity}" if target.severity else "kspec")
        if cluster:
            self.stash[CLUSTER_KEY] = cluster
            self.user_properties.append(("kspec.cluster", cluster))
        self.user_properties.extend(target.properties())

    def setup(self) -> None:
        outcome = run_of(self).evaluate(self.target)
        self.stash[OUTCOME_KEY] = outcome
        if outcome.status == "error":
            pytest.fail(f"could not evaluate {self.target.key}: {outcome.text}", pytrace=False)

    def runtest(self) -> None:
        outcome = self.stash[OUTCOME_KEY]
        if outcome.status == "waived":  # an expected failure: the reason and owner show
            self.user_properties.extend(drift_properties(outcome.waived))
            pytest.xfail(outcome.text)
        if outcome.failed:
            self.user_properties.extend(drift_properties(outcome.events))
            raise DriftFound(outcome)

    def teardown(self) -> None:
        outcome = self.stash.get(OUTCOME_KEY, None)
        run = run_of(self)
        if outcome is None or not run.remediates(outcome):
            return
        # Recorded on the controller, from the teardown report (see plugin.reporter.Reporter).
        self.stash[ATTEMPTS_KEY] = run.remediate(outcome, record=False)
        self.user_properties.extend(remediation_properties(outcome.events))
        text = remediation_text(outcome.events)
        if text:
            self.add_report_section("teardown", "kspec remediation", text)

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str | Any:
        if isinstance(excinfo.value, DriftFound):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        cluster = self.stash.get(CLUSTER_KEY, "")
        where = f"{cluster}::{self.target.key}" if cluster else self.target.key
        return self.path, None, f"{where}: {self.target.title}"
