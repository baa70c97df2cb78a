"""Policy drift: compare expected and live Kyverno policies and describe what differs.

The comparison runs on normalized objects (:mod:`pytest_kspec.detect.normalize`) with deepdiff;
each difference becomes a :class:`FieldChange` classified by :mod:`pytest_kspec.detect.posture`
and attributed through ``managedFields`` (:mod:`pytest_kspec.detect.managed`). :class:`DriftEvent`
is the model the JSON drift report is built from (field names as in the plan's report).

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_kspec.desired import is_kspec_managed
from pytest_kspec.detect.managed import managed_by
from pytest_kspec.detect.normalize import format_path, normalize_policy, policy_action
from pytest_kspec.detect.posture import is_weakening

SEVERITIES: tuple[str, ...] = ("info", "low", "medium", "high", "critical")
DRIFT_TYPES: tuple[str, ...] = ("policy", "compliance", "configuration", "resource")

_DIFF_KINDS = (
    "values_changed", "type_changes", "dictionary_item_added", "dictionary_item_removed",
    "iterable_item_added", "iterable_item_removed",
)
_SHORT = 80


def _severity_rank(severity: str) -> int:
    try:
        return SEVERITIES.index(severity)
    except ValueError:
        raise ValueError(
            f"unknown severity {severity!r}: use one of {', '.join(SEVERITIES)}") from None


def max_severity(severities: Iterable[str]) -> str:
    """The highest of ``severities`` (``critical`` > ``high`` > ... > ``info``); ``info``
    when there are none."""
    return max(severities, key=_severity_rank, default="info")


def severity_at_least(severity: str, threshold: str) -> bool:
    """Whether ``severity`` reaches ``threshold`` (both from :data:`SEVERITIES`)."""
    return _severity_rank(severity) >= _severity_rank(threshold)


@dataclass(frozen=True)
class FieldChange:
    """One changed field of a policy: ``path`` uses rule names (``spec.rules[r1]...``),
    ``None`` stands for absent; ``manager``/``time`` from ``managedFields`` when known."""

    path: str
    expected: Any
    actual: Any
    weakening: bool
    manager: str | None = None
    time: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form; ``manager`` and ``time`` only when known."""
        out = {"path": self.path, "expected": self.expected, "actual": self.actual,
               "weakening": self.weakening}
        if self.manager is not None:
            out["manager"] = self.manager
        if self.time is not None:
            out["time"] = self.time
        return out


@dataclass
class DriftEvent:
    """One drift finding; :meth:`to_report` gives the plan's report event."""

    type: str
    severity: str
    resource: str
    drift: str
    expected: Any = None
    actual: Any = None
    check: str | None = None
    message: str = ""
    node_id: str = ""
    changes: list[FieldChange] = field(default_factory=list)
    remediation: dict[str, Any] | None = None
    first_seen: str | None = None
    controls: list[str] = field(default_factory=list)
    waiver: dict[str, Any] | None = None  # the waiver that accepted it (id, reason, owner, ...)

    def to_report(self) -> dict[str, Any]:
        """The event as the JSON drift report holds it.

        Policy/configuration/resource events: ``type, severity, resource, drift, expected,
        actual, remediation``; compliance events: ``type, severity, check, drift, resource,
        message, remediation`` (plus expected/actual when set); ``custom`` events (users' own
        checks) have the compliance shape. Extras follow only when set:
        ``check``, ``message``, ``node_id``, ``changes``, ``controls``, ``first_seen``, and for
        an event a waiver accepted ``waived: true`` and ``waiver`` (id, reason, owner, expires,
        source).
        """
        out: dict[str, Any]
        if self.type in ("compliance", "custom"):
            out = {"type": self.type, "severity": self.severity, "check": self.check,
                   "drift": self.drift, "resource": self.resource, "message": self.message}
            if self.expected is not None or self.actual is not None:
                out["expected"] = self.expected
                out["actual"] = self.actual
            out["remediation"] = self.remediation
        else:
            out = {"type": self.type, "severity": self.severity, "resource": self.resource,
                   "drift": self.drift, "expected": self.expected, "actual": self.actual,
                   "remediation": self.remediation}
            if self.check is not None:
                out["check"] = self.check
            if self.message:
                out["message"] = self.message
        if self.node_id:
            out["node_id"] = self.node_id
        if self.changes:
            out["changes"] = [c.to_dict() for c in self.changes]
        if self.controls:
            out["controls"] = list(self.controls)
        if self.first_seen is not None:
            out["first_seen"] = self.first_seen
        if self.waiver is not None:
            out["waived"] = True
            out["waiver"] = dict(self.waiver)
        return out


@dataclass
class PolicyComparison:
    """How a live policy differs from the expected one (``missing``/``deleted``/``modified``)."""

    drift: str
    severity: str
    changes: list[FieldChange] = field(default_factory=list)
    expected_summary: dict[str, Any] | None = None
    actual_summary: dict[str, Any] | None = None
    kind: str = "ClusterPolicy"

    @property
    def weakening(self) -> bool:
        """Whether any change (or the policy's absence) weakens enforcement."""
        return self.drift != "modified" or any(c.weakening for c in self.changes)

    def to_event(self, name: str, *, node_id: str = "",
                 controls: Iterable[str] = ()) -> DriftEvent:
        """The report event for policy ``name``."""
        return DriftEvent(
            type="policy", severity=self.severity, resource=f"{self.kind}/{name}",
            drift=self.drift, expected=self.expected_summary, actual=self.actual_summary,
            message=render_policy_drift(name, self).splitlines()[0], node_id=node_id,
            changes=list(self.changes), controls=list(controls))


def summarize(policy: Mapping[str, Any]) -> dict[str, Any]:
    """The small report view of a policy: name, policy-wide effective action, rule names."""
    norm = normalize_policy(policy)
    out: dict[str, Any] = {"name": str(norm["metadata"].get("name", ""))}
    action = policy_action(norm)
    if action is not None:
        out["validationFailureAction"] = action
    out["rules"] = list(norm["spec"]["rules"])
    return out


def compare_policy(expected: Mapping[str, Any], live: Mapping[str, Any] | None, *,
                   seen_before: bool = False) -> PolicyComparison | None:
    """Compare the expected policy with the live one; None when equal after normalization.

    ``live`` None: ``deleted`` when ``seen_before`` (the history saw it), else ``missing``;
    both high. ``modified``: high when any change weakens enforcement, else low. Live
    labels and annotations that the expected policy does not set are not drift (other
    tools add their own); list order inside rules is not drift either.
    """
    kind = str(expected.get("kind") or "ClusterPolicy")
    if live is None:
        return PolicyComparison("deleted" if seen_before else "missing", "high", [],
                                 summarize(expected), None, kind)
    exp_norm = normalize_policy(expected)
    live_norm = normalize_policy(live)
    for key in ("labels", "annotations"):
        wanted = exp_norm["metadata"].get(key) or {}
        have = live_norm["metadata"].get(key) or {}
        live_norm["metadata"][key] = {k: v for k, v in have.items() if k in wanted}
    if _same(exp_norm, live_norm):  # the usual case: nothing to describe, no DeepDiff
        return None
    changes = _changes(exp_norm, live_norm, live)
    if not changes:
        return None
    severity = "high" if any(c.weakening for c in changes) else "low"
    exp_sum, live_sum = summarize(expected), summarize(live)
    return PolicyComparison("modified", severity, changes, exp_sum, live_sum, kind)


def compare_presence(name: str, live: Mapping[str, Any] | None, *,
                     seen_before: bool = False) -> PolicyComparison | None:
    """For policies required by name only: drift when ``live`` is None, else None."""
    if live is not None:
        return None
    return PolicyComparison("deleted" if seen_before else "missing", "high", [],
                            {"name": name}, None)


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Equal as JSON documents: the same keys, values and types (``True`` is not ``1``,
    ``1`` is not ``1.0``, as DeepDiff's ``type_changes`` sees them), lists in the same order.
    Different order is left to DeepDiff, which ignores it."""
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True,
                                                                    default=str)


def _changes(exp_norm: dict[str, Any], live_norm: dict[str, Any],
             live: Mapping[str, Any]) -> list[FieldChange]:
    from deepdiff import DeepDiff  # only when a live policy is compared (0.3-0.5 s to import)

    diff = DeepDiff(exp_norm, live_norm, view="tree", ignore_order=True)
    out: list[FieldChange] = []
    for kind in _DIFF_KINDS:
        for level in diff.get(kind, []):
            segments = level.path(output_format="list")
            expected = None if kind.endswith(("_added",)) else level.t1
            actual = None if kind.endswith(("_removed",)) else level.t2
            path = format_path(segments)
            owner = managed_by(live, path)
            out.append(FieldChange(
                path=path, expected=expected, actual=actual,
                weakening=is_weakening(segments, expected, actual, exp_norm, live_norm),
                manager=owner[0] if owner else None, time=owner[1] if owner else None))
    return sorted(out, key=lambda c: (not c.weakening, c.path))


def find_extra(expected_names: Collection[str],
               live_policies: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Live policies that carry kspec's marker but are not expected; unmarked ones never."""
    wanted = set(expected_names)
    return [p for p in live_policies
            if is_kspec_managed(p) and (p.get("metadata") or {}).get("name") not in wanted]


def extra_event(policy: Mapping[str, Any], *, node_id: str = "") -> DriftEvent:
    """The ``extra`` event for a kspec-marked policy the spec no longer asks for (low: an
    extra policy does not weaken enforcement)."""
    summary = summarize(policy)
    kind = str(policy.get("kind") or "ClusterPolicy")
    return DriftEvent(
        type="policy", severity="low", resource=f"{kind}/{summary['name']}", drift="extra",
        expected=None, actual=summary, node_id=node_id,
        message=f"{kind}/{summary['name']} carries kspec's marker but the spec does not "
                "ask for it")


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= _SHORT else text[: _SHORT - 3] + "..."


def _describe(summary: Mapping[str, Any] | None) -> str:
    if not summary:
        return "policy"
    rules = list(summary.get("rules") or [])
    if "rules" not in summary:
        return "by name (admission.policies.requiredPolicies)"
    action = summary.get("validationFailureAction")
    head = f"{action} policy" if action else "policy"
    return f"{head} with {len(rules)} rule(s) ({', '.join(rules)})"


def render_policy_drift(name: str, cmp: PolicyComparison) -> str:
    """The failure text: a header line, then one line per changed field."""
    resource = f"{cmp.kind}/{name}"
    if cmp.drift in ("missing", "deleted"):
        verb = "is missing" if cmp.drift == "missing" else "was deleted"
        what = _describe(cmp.expected_summary)
        lead = "required " if what.startswith("by name") else "expected "
        return f"{resource} {verb}: {lead}{what}"
    why = "weakens enforcement" if cmp.weakening else "does not weaken enforcement"
    lines = [f"{resource} {cmp.drift} ({cmp.severity}: {why})"]
    for change in cmp.changes:
        if change.expected is None:
            text = f"added {_short(change.actual)}"
        elif change.actual is None:
            text = f"removed (expected {_short(change.expected)})"
        else:
            text = f"expected {_short(change.expected)}, got {_short(change.actual)}"
        who = ""
        if change.manager:
            who = f"  (changed by {change.manager}" + (
                f" at {change.time})" if change.time else ")")
        lines.append(f"  {change.path}: {text}{who}")
    return "\n".join(lines)

