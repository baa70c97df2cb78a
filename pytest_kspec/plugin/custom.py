"""The pytest side of users' own checks: the ``kspec`` marker, ``kspec_violations``, wiring.

**Which tests count.** With ``--kspec-spec`` on, every test the session collects that is not
one of the spec's own items is a custom check: the command line says what the suite is
(``pytest checks/ --kspec-spec cluster-spec.yaml`` makes ``checks/`` the suite). Each one
is an item of type ``custom`` in the drift report, JUnit, HTML, history and trend. Without
``--kspec-spec`` nothing is tracked (``kspec_violations`` still fails a test with its list).

The judging (events, history verdicts) and the fixes live in
:mod:`pytest_kspec.detect.custom` and :mod:`pytest_kspec.remediate.custom`.

Loading this module imports no engine: a session without ``--kspec-spec`` pays nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from pytest_kspec.errors import KspecError
from pytest_kspec.plugin.keys import CLUSTER_KEY, RUN_KEY, get_fleet, run_of

if TYPE_CHECKING:
    from pytest_kspec.detect import CustomCheck, Outcome, Violations

CHECK_KEY: pytest.StashKey[CustomCheck] = pytest.StashKey()
VIOLATIONS_KEY: pytest.StashKey[Violations] = pytest.StashKey()
RAISED_KEY = pytest.StashKey[bool]()
CUSTOM_OUTCOME_KEY: pytest.StashKey[Outcome] = pytest.StashKey()
CUSTOM_ATTEMPTS_KEY = pytest.StashKey[list[dict[str, Any]]]()

MARKER = ("kspec(severity='medium', controls=[], id=<test name>, title=<docstring>): declare "
          "what a custom check is: severity (critical, high, medium, low, info), the "
          "controls it maps to, a stable id (keys the history) and a title. Unmarked tests "
          "in a --kspec-spec session are custom checks too (severity medium, id = test name).")


def collect_checks(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Declare every collected test that is not a spec item as a custom check."""
    if RUN_KEY not in config.stash:
        return
    from pytest_kspec.detect import parse_marker, unique_ids
    from pytest_kspec.plugin.items import KspecItem

    checks: dict[str, list[CustomCheck]] = {}
    multi = get_fleet(config).multi
    for index, item in enumerate(i for i in items if not isinstance(i, KspecItem)):
        callspec = getattr(item, "callspec", None)
        cluster, name = "", item.name
        if multi and callspec is not None and "kspec_cluster" in callspec.params:
            cluster = str(callspec.params["kspec_cluster"])
            item.stash[CLUSTER_KEY] = cluster  # reports to that cluster's run
            item.user_properties.append(("kspec.cluster", cluster))
            # the same check on every cluster: one id (it keys each cluster's history)
            name = name.replace(f"[{cluster}]", "").replace(f"-{cluster}]", "]")
        marker = item.get_closest_marker("kspec")
        obj = getattr(item, "obj", None)
        try:
            check = parse_marker(item.nodeid, name, marker.args if marker else (),
                                 marker.kwargs if marker else {},
                                 doc=getattr(obj, "__doc__", None), order=index)
        except KspecError as e:
            raise pytest.UsageError(str(e)) from None
        item.stash[CHECK_KEY] = check
        item.user_properties.extend(check.target.properties())
        checks.setdefault(cluster, []).append(check)
    try:
        for group in checks.values():
            unique_ids(group)
    except KspecError as e:
        raise pytest.UsageError(str(e)) from None


def fail_on_violations(item: pytest.Item) -> None:
    """After a test body that returned: fail it with the list of what it added."""
    violations = item.stash.get(VIOLATIONS_KEY, None)
    if violations:
        item.stash[RAISED_KEY] = True
        pytest.fail(violations.text(item.stash.get(CHECK_KEY, None), item.name),
                    pytrace=False)


def judge(item: pytest.Item, call: pytest.CallInfo[None],
          report: pytest.TestReport) -> Outcome | None:
    """The custom check's outcome after phase ``call.when``; None when the phase says
    nothing new (a passed setup, a teardown without remediation)."""
    check = item.stash.get(CHECK_KEY, None)
    if check is None:
        return None
    from pytest_kspec.detect import Outcome, drift_properties

    run = run_of(item)
    if call.when == "teardown":
        return item.stash.get(CUSTOM_OUTCOME_KEY, None) if (
            CUSTOM_ATTEMPTS_KEY in item.stash) else None
    if report.skipped:
        outcome = Outcome(check.target, "skipped", text=_skip_reason(report))
    elif call.when == "setup" and not report.failed:
        return None
    elif report.failed and call.when == "setup":
        outcome = run.judge_custom(check, [], error=_error_text(call, report))
    else:
        violations = list(item.stash.get(VIOLATIONS_KEY, None) or [])
        failure = error = None
        exc = call.excinfo.value if call.excinfo is not None else None
        if report.failed and not item.stash.get(RAISED_KEY, False):
            if exc is None or isinstance(exc, AssertionError | pytest.fail.Exception):
                failure = _failure_text(exc, report)
            else:
                error = _error_text(call, report)
        outcome = run.judge_custom(check, violations, failure=failure, error=error)
    if outcome.status == "error":
        outcome.text = f"could not evaluate {check.id}: {outcome.text}"
        if call.excinfo is not None and isinstance(call.excinfo.value, KspecError):
            report.longrepr = f"{_where(item, call)}{outcome.text}"  # one line, as kspec's own
    if outcome.failed:
        item.user_properties.extend(drift_properties(outcome.events))
    item.stash[CUSTOM_OUTCOME_KEY] = outcome
    return outcome


def remediate(item: pytest.Item) -> None:
    """Teardown: under ``--kspec-remediate``, run the fixes the check registered."""
    outcome = item.stash.get(CUSTOM_OUTCOME_KEY, None)
    check = item.stash.get(CHECK_KEY, None)
    if outcome is None or check is None or RUN_KEY not in item.config.stash:
        return
    from pytest_kspec.remediate import remediation_properties, remediation_text

    if get_fleet(item.config).multi and CLUSTER_KEY not in item.stash:
        return  # a fleet run's check that reads no cluster has no cluster to fix
    run = run_of(item)
    if not run.remediates(outcome):
        return
    # Recorded on the controller, from the teardown report (see plugin.reporter.Reporter).
    item.stash[CUSTOM_ATTEMPTS_KEY] = run.remediate(outcome, record=False,
                                                    node_id=check.node_id)
    item.user_properties.extend(remediation_properties(outcome.events))
    text = remediation_text(outcome.events)
    if text:
        item.add_report_section("teardown", "kspec remediation", text)


def attempts(item: pytest.Item) -> list[dict[str, Any]] | None:
    return item.stash.get(CUSTOM_ATTEMPTS_KEY, None)


def check_of(item: pytest.Item) -> CustomCheck | None:
    return item.stash.get(CHECK_KEY, None)


def _skip_reason(report: pytest.TestReport) -> str:
    if hasattr(report, "wasxfail"):
        return f"xfail: {report.wasxfail}".rstrip(": ")
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr or "")


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _failure_text(exc: BaseException | None, report: pytest.TestReport) -> str:
    """What a failed assertion says: its message (pytest's rewritten explanation), else the
    report's last line."""
    text = str(exc) if exc is not None else ""
    if not text.strip():
        lines = [ln for ln in report.longreprtext.splitlines() if ln.startswith("E ")]
        text = lines[0][1:].strip() if lines else "assertion failed"
    return text


def _where(item: pytest.Item, call: pytest.CallInfo[None]) -> str:
    """``test_checks.py:18: ``, the last line of the test's own file the error passed."""
    assert call.excinfo is not None
    for entry in reversed(call.excinfo.traceback):
        if entry.path == item.path:
            return f"{item.path.name}:{entry.lineno + 1}: "
    return ""


def _error_text(call: pytest.CallInfo[None], report: pytest.TestReport) -> str:
    exc = call.excinfo.value if call.excinfo is not None else None
    if isinstance(exc, KspecError):
        return _first_line(str(exc))
    if exc is not None:
        line = _first_line(str(exc))
        return f"{type(exc).__name__}: {line}" if line else type(exc).__name__
    return _first_line(report.longreprtext) or "error"


@pytest.fixture
def kspec_violations(request: pytest.FixtureRequest) -> Violations:
    """Report every resource that breaks your check, as kspec's own checks do.

    ``kspec_violations.add("Deployment/shop/web", "runs 1 replica, want >= 2")`` records one
    violation (name resources ``Kind/namespace/name``, or ``Kind/name`` when cluster-wide).
    When the test body returns, the test fails with the list of everything added; in the
    drift report, history and trend each resource is its own ``custom`` event, so it is
    ``new-violation``, ``violation`` (persisting, with ``first_seen``) or ``resolved``.

    ``add(..., fix=callable)`` registers a repair, run only under ``--kspec-remediate``
    (``--kspec-dry-run`` sends its writes with ``dryRun=All``): ``callable(client)`` gets a
    ``pytest_kspec.remediate.FixClient`` (``get``, ``list``, ``patch``, ``replace``,
    ``create``, ``delete``; deletions count against ``--kspec-max-deletions``). Without a
    fix the event is ``manual-required``. ``add(..., severity="high")`` overrides the
    check's severity for one resource.
    """
    from pytest_kspec.detect import Violations

    violations = Violations()
    request.node.stash[VIOLATIONS_KEY] = violations
    return violations
