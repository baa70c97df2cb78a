"""pytest nodes: the spec file, one collector per drift type, one item per target."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pytest_kspec.detect import TYPES, Outcome, Target, drift_properties
from pytest_kspec.plugin.keys import ATTEMPTS_KEY, OUTCOME_KEY, RUN_KEY, get_run
from pytest_kspec.remediate import remediation_properties, remediation_text

__all__ = ["ATTEMPTS_KEY", "OUTCOME_KEY", "RUN_KEY", "DriftFound", "KspecItem", "SpecFile",
           "TypeGroup", "get_run"]


class DriftFound(Exception):
    """Raised by an item whose target drifted; its text is the readable diff."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome
        super().__init__(outcome.text)


class SpecFile(pytest.File):
    """The ClusterSpecification: collects one :class:`TypeGroup` per drift type it asks for."""

    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        run = get_run(self.config)
        for kind in TYPES:
            targets = run.plan.of_type(kind)
            if targets:
                yield TypeGroup.from_parent(self, name=kind, targets=targets)


class TypeGroup(pytest.Collector):
    """``<spec>::policy``: the items of one drift type."""

    def __init__(self, *, targets: list[Target], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.targets = targets

    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        for target in self.targets:
            yield KspecItem.from_parent(self, name=target.id, target=target)


class KspecItem(pytest.Item):
    """One expected policy or compliance check, judged against the live cluster.

    Evaluation happens in ``setup`` so a check that could not be evaluated (API error,
    403, timeout) is reported as an *error*; drift is a failure of the call phase. With
    remediation on, ``teardown`` fixes the drift: the item still fails (drift happened),
    and its teardown report carries the record with each event's remediation.
    """

    def __init__(self, *, target: Target, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target = target
        self.add_marker(f"kspec_{target.type}")
        self.add_marker(f"kspec_severity_{target.severity}" if target.severity else "kspec")
        self.user_properties.extend(target.properties())

    def setup(self) -> None:
        outcome = get_run(self.config).evaluate(self.target)
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
        run = get_run(self.config)
        if outcome is None or not run.remediates(outcome):
            return
        # Recorded on the controller, from the teardown report (see plugin._Reporter).
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
        return self.path, None, f"{self.target.key}: {self.target.title}"
