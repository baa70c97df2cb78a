"""Users' own checks (the tests beside the spec's items, e.g. ``checks/``) judged as drift.

A custom check is a plain pytest test. What it declares (``@pytest.mark.kspec(severity=...,
controls=[...], id=...)``; an unmarked test is severity ``medium`` and its id is its name)
becomes a :class:`CustomCheck`; what it finds becomes events of type ``custom``, exactly as a
built-in compliance check's:

- each resource added with ``kspec_violations.add(resource, message)`` is one event, so the
  history tracks ``new-violation`` / ``violation`` / ``resolved`` and ``first_seen`` per
  resource (the fingerprint is the check's key and the resource);
- a plain ``assert`` (or ``pytest.fail``) that fails is one event whose resource names the
  check itself (``Check/<id>``);
- anything else the test raises (an API error, a 403, a bug in the check) means the check
  could not be evaluated: an *error*, never a pass and never drift.

Nothing here imports pytest: the plugin turns a test's phases into :func:`judge_custom` calls.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_kspec.detect.engine import CUSTOM, Outcome, Target, violation_text
from pytest_kspec.detect.policydrift import SEVERITIES, DriftEvent
from pytest_kspec.errors import UsageError

DEFAULT_SEVERITY = "medium"
MARKER_ARGS = ("severity", "controls", "id", "title")
_ID = re.compile(r"^[A-Za-z0-9_.\-/\[\]]+$")
_MESSAGE_LIMIT = 500

Fix = Callable[[Any], object]
"""A check's fix: called with a :class:`pytest_kspec.remediate.FixClient`; see
:mod:`pytest_kspec.remediate.custom`."""


@dataclass(frozen=True)
class CustomCheck:
    """What one test declares: its id (unique in the run), severity, controls and title.

    ``node_id`` is the test's pytest node id; ``order`` its place in the collection, after
    every spec item, so reports list custom checks in the order they were collected.
    """

    id: str
    node_id: str
    severity: str = DEFAULT_SEVERITY
    controls: tuple[str, ...] = ()
    title: str = ""
    order: int = 0

    @property
    def target(self) -> Target:
        return Target(CUSTOM, self.id, self.title or self.id, self.severity, self.controls)

    @property
    def resource(self) -> str:
        """The resource a check-level failure (a plain assert) is reported against."""
        return self.target.resource


def parse_marker(node_id: str, name: str, args: Sequence[Any], kwargs: Mapping[str, Any], *,
                 doc: str | None = None, order: int = 0) -> CustomCheck:
    """The :class:`CustomCheck` of test ``name`` from its ``kspec`` marker arguments.

    Raises :class:`UsageError` naming the test and the bad argument.
    """
    where = f"{node_id}: @pytest.mark.kspec"
    if args:
        raise UsageError(f"{where} takes keyword arguments only ({', '.join(MARKER_ARGS)}), "
                         f"got {args!r}")
    unknown = sorted(set(kwargs) - set(MARKER_ARGS))
    if unknown:
        raise UsageError(f"{where}: unknown argument(s) {', '.join(unknown)} (allowed: "
                         f"{', '.join(MARKER_ARGS)})")
    severity = kwargs.get("severity", DEFAULT_SEVERITY)
    if severity not in SEVERITIES:
        raise UsageError(f"{where}(severity={severity!r}): use one of "
                         f"{', '.join(reversed(SEVERITIES))}")
    controls = kwargs.get("controls", ())
    if isinstance(controls, str):
        controls = (controls,)
    if not isinstance(controls, list | tuple) or not all(
            isinstance(c, str) and c.strip() for c in controls):
        raise UsageError(f"{where}(controls={controls!r}): give a list of control ids, "
                         "e.g. controls=[\"CIS-5.2.1\"]")
    check_id = kwargs.get("id", name)
    if not isinstance(check_id, str) or not _ID.match(check_id):
        raise UsageError(f"{where}(id={check_id!r}): an id is letters, digits and . _ - / "
                         "(e.g. id=\"deployments.replicas\"); it keys the history, keep it "
                         "stable")
    title = kwargs.get("title") or _first_line(doc) or name
    if not isinstance(title, str):
        raise UsageError(f"{where}(title={title!r}): give a string")
    return CustomCheck(id=check_id, node_id=node_id, severity=severity,
                       controls=tuple(c.strip() for c in controls), title=title, order=order)


def unique_ids(checks: Iterable[CustomCheck]) -> None:
    """Raise :class:`UsageError` when two checks share an id (their history would merge)."""
    seen: dict[str, str] = {}
    for check in checks:
        other = seen.setdefault(check.id, check.node_id)
        if other != check.node_id:
            raise UsageError(f"two checks share the kspec id {check.id!r}: {other} and "
                             f"{check.node_id}; give one @pytest.mark.kspec(id=\"...\") "
                             "(the id keys the history, keep it stable)")


def _first_line(doc: str | None) -> str:
    for line in (doc or "").strip().splitlines():
        if line.strip():
            return line.strip()
    return ""


@dataclass(frozen=True)
class CustomViolation:
    """One resource a check found breaking its rule; ``fix`` (optional) repairs it."""

    resource: str
    message: str
    fix: Fix | None = field(default=None, compare=False)
    severity: str | None = None


class Violations:
    """What the ``kspec_violations`` fixture hands a check: ``add`` one entry per resource.

    ``kspec_violations.add("Deployment/shop/web", "runs 1 replica, want >= 2")`` records a
    violation; after the test body the check fails with the list of every resource added
    (the same readable list as kspec's own items), each its own drift event.
    ``fix=callable`` registers a repair run only under ``--kspec-remediate`` (see
    :mod:`pytest_kspec.remediate.custom`); ``severity=`` overrides the check's for this one.
    """

    def __init__(self) -> None:
        self.items: list[CustomViolation] = []

    def add(self, resource: str, message: str = "", *, fix: Fix | None = None,
            severity: str | None = None) -> None:
        if not isinstance(resource, str) or not resource.strip():
            raise UsageError(f"kspec_violations.add: the resource must name what breaks the "
                             f"rule, as Kind/namespace/name (got {resource!r})")
        if fix is not None and not callable(fix):
            raise UsageError(f"kspec_violations.add({resource!r}): fix must be callable, "
                             f"got {type(fix).__name__}")
        if severity is not None and severity not in SEVERITIES:
            raise UsageError(f"kspec_violations.add({resource!r}, severity={severity!r}): use "
                             f"one of {', '.join(reversed(SEVERITIES))}")
        self.items.append(CustomViolation(resource.strip(), str(message), fix, severity))

    def __len__(self) -> int:
        return len(self.items)

    def __bool__(self) -> bool:
        return bool(self.items)

    def __iter__(self) -> Any:
        return iter(self.items)

    def text(self, check: CustomCheck | None = None, name: str = "") -> str:
        """The failure text: a summary line and one line per resource."""
        events = merged(self.items, check or CustomCheck(id=name or "check", node_id=""))[0]
        return violation_text(_summary(check, name, len(events)), events)


def _summary(check: CustomCheck | None, name: str, count: int) -> str:
    label = check.id if check else name
    title = f": {check.title}" if check and check.title and check.title != check.id else ""
    return f"{count} resource(s) break {label}{title}"


def merged(violations: Sequence[CustomViolation],
           check: CustomCheck) -> tuple[list[DriftEvent], list[CustomViolation]]:
    """One event per resource (messages of repeated adds joined), and its subject."""
    order: list[str] = []
    by_resource: dict[str, list[CustomViolation]] = {}
    for v in violations:
        if v.resource not in by_resource:
            order.append(v.resource)
        by_resource.setdefault(v.resource, []).append(v)
    events, subjects = [], []
    for resource in order:
        group = by_resource[resource]
        message = "; ".join(dict.fromkeys(v.message for v in group if v.message))
        severity = max((v.severity for v in group if v.severity),
                       key=SEVERITIES.index, default=check.severity)
        events.append(DriftEvent(type=CUSTOM, severity=severity, resource=resource,
                                 drift="violation", check=check.id,
                                 message=_clip(message) or f"breaks {check.id}",
                                 controls=list(check.controls)))
        fixes = [v.fix for v in group if v.fix is not None]
        subjects.append(CustomViolation(resource, message, fixes[0] if fixes else None,
                                        severity))
    return events, subjects


def judge_custom(check: CustomCheck, violations: Sequence[CustomViolation], *,
          failure: str | None = None, error: str | None = None) -> Outcome:
    """The verdict on one run of a custom check.

    ``error``: the test raised something other than an assertion (the check could not be
    evaluated). ``failure``: a plain assertion failed (one event naming the check).
    ``violations``: what it added to ``kspec_violations`` (one event per resource).
    """
    target = check.target
    if error is not None:
        return Outcome(target, "error", text=error)
    events, subjects = merged(violations, check)
    if failure is not None:
        line = _first_line(failure) or "assertion failed"
        events.append(DriftEvent(type=CUSTOM, severity=check.severity, resource=check.resource,
                                 drift="violation", check=check.id, message=_clip(line),
                                 controls=list(check.controls)))
        subjects.append(CustomViolation(check.resource, line))
    if not events:
        return Outcome(target, "passed")
    text = violation_text(_summary(check, "", len(events)), events)
    if failure is not None and not violations:
        text = failure
    return Outcome(target, "failed", events, text, subjects=subjects)


def _clip(text: str) -> str:
    return text if len(text) <= _MESSAGE_LIMIT else text[:_MESSAGE_LIMIT - 3] + "..."
