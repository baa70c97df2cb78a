"""Detection engine: the checks a spec asks for (targets) and how each is judged on a snapshot.

The pytest items and the ``kspec drift`` CLI both run these same targets through the same
:class:`Detector`, so a node id, its verdict and its report event mean the same everywhere.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_kspec.desired import ExpectedPolicy, catalog, expected_policies, kyverno_versions
from pytest_kspec.detect.compliance import CheckResult, ComplianceOptions, evaluate
from pytest_kspec.detect.efficacy import ENFORCES, NOT_ENFORCING, Prober
from pytest_kspec.detect.policydrift import (
    DriftEvent,
    compare_policy,
    compare_presence,
    extra_event,
    find_extra,
    render_policy_drift,
)
from pytest_kspec.detect.stream import PassResult, run_pass, streamed_kind
from pytest_kspec.detect.versions import check_version
from pytest_kspec.detect.waivers import apply_waivers
from pytest_kspec.errors import ApiError, KspecError, UsageError
from pytest_kspec.history import Baseline, fingerprint, iso, parse_iso

if TYPE_CHECKING:
    from pytest_kspec.cluster import Snapshot
    from pytest_kspec.spec import ClusterSpec, Waiver

log = logging.getLogger("pytest_kspec.detect.engine")

POLICY = "policy"
COMPLIANCE = "compliance"
CONFIGURATION = "configuration"
RESOURCE = "resource"
TYPES: tuple[str, ...] = (POLICY, COMPLIANCE, CONFIGURATION, RESOURCE)
CUSTOM = "custom"
"""Users' own checks (tests beside the spec's items); see :mod:`pytest_kspec.detect.custom`."""
TRACKED: tuple[str, ...] = (COMPLIANCE, CUSTOM)
"""Types whose violations are compared with the previous run: new, persisting, resolved."""
EXTRA = "extra"
POLICY_API = ("kyverno.io/v1", "ClusterPolicy")
CRD_API = ("apiextensions.k8s.io/v1", "CustomResourceDefinition")
SHOWN_VIOLATIONS = 10


@dataclass(frozen=True)
class Target:
    """One thing to check: becomes the node ``<spec>::<type>::<id>``."""

    type: str
    id: str
    title: str
    severity: str
    controls: tuple[str, ...] = ()
    policy: ExpectedPolicy | None = field(default=None, compare=False)
    check: catalog.CheckRef | None = field(default=None, compare=False)

    @property
    def key(self) -> str:
        return f"{self.type}::{self.id}"

    def properties(self) -> list[tuple[str, str]]:
        """JUnit ``<property>`` pairs that CI dashboards show for this item."""
        return [("kspec.type", self.type), ("kspec.id", self.id),
                ("kspec.severity", self.severity), ("kspec.resource", self.resource),
                ("kspec.controls", ",".join(self.controls))]

    @property
    def resource(self) -> str:
        if self.type == POLICY:
            return "ClusterPolicy/*" if self.id == EXTRA else f"ClusterPolicy/{self.id}"
        if self.type == CONFIGURATION:
            return "Cluster/kubernetes"
        if self.type == CUSTOM:
            return f"Check/{self.id}"
        return self.check.spec_path if self.check else self.id


@dataclass(frozen=True)
class Plan:
    """Everything a run will check, derived from the spec alone (no cluster traffic)."""

    spec: ClusterSpec
    targets: tuple[Target, ...]
    expected: tuple[ExpectedPolicy, ...]

    def of_type(self, kind: str) -> list[Target]:
        return [t for t in self.targets if t.type == kind]


@dataclass
class Outcome:
    """The verdict on one target: ``passed``, ``failed`` (drift) or ``error`` (not evaluated).

    ``subjects`` keeps what remediation needs, index-aligned with ``events`` where there is
    one per event: the live policy as seen at detection (None when absent; its
    ``metadata.resourceVersion`` guards the update) for a policy target, the live extra
    policies for ``policy::extra``, the :class:`~pytest_kspec.detect.compliance.Violation` of each
    event for compliance and resource targets. It stays in the process (never reported).
    """

    target: Target
    status: str
    events: list[DriftEvent] = field(default_factory=list)
    text: str = ""
    subjects: list[Any] = field(default_factory=list)
    resolved: list[DriftEvent] = field(default_factory=list)
    """Compliance violations of the previous run that are gone now (``drift: resolved``);
    reported, never remediated."""
    waived: list[DriftEvent] = field(default_factory=list)
    """Drift a waiver in force accepts (each names its waiver); reported, never remediated.
    All events waived: the status is ``waived``."""
    expected: dict[str, Any] | None = None
    """For a generated policy: the manifest as written for the cluster's Kyverno version
    (where its Enforce action goes), which remediation writes."""

    @property
    def failed(self) -> bool:
        return self.status == "failed"


def make_plan(spec: ClusterSpec, types: Iterable[str] = TYPES, *,
              resources: Mapping[str, str] | None = None,
              waivers: Sequence[Waiver] = ()) -> Plan:
    """The targets for ``spec``, limited to ``types`` (``policy``, ``compliance``, ...).

    ``resources`` is the DriftConfig's ``remediation.resources`` (compliance check id →
    ``report``/``delete``): each listed check also becomes a ``resource`` target, whose
    events are the non-compliant resources themselves. An id that is not a compliance
    check of the spec raises :class:`UsageError`, as does a DriftConfig waiver naming a check
    or policy the spec does not have (a waiver that can never match is a typo).
    """
    wanted = set(types)
    expected = tuple(expected_policies(spec))
    refs = catalog.enumerate_checks(spec.body)
    controls = catalog.controls_by_check(spec.body, [p.name for p in expected])
    labels = {key: tuple(c.label() for c in ctl) for key, ctl in controls.items()}
    targets: list[Target] = []
    if POLICY in wanted and (expected or _admission_policies(spec)):
        for pol in expected:
            title = ("present" if pol.presence_only else "matches the spec")
            targets.append(Target(POLICY, pol.name, f"ClusterPolicy {pol.name} {title}",
                                  pol.severity, labels.get(pol.name, ()), policy=pol))
        targets.append(Target(POLICY, EXTRA, "no kspec-managed ClusterPolicy outside the spec",
                              "low"))
    for ref in refs:
        if ref.type in wanted:
            targets.append(Target(ref.type, ref.id, ref.title, ref.severity,
                                  labels.get(ref.id, ()), check=ref))
    by_id = {ref.id: ref for ref in refs if ref.type == COMPLIANCE}
    for check_id in resources or {}:
        found = by_id.get(check_id)
        if found is None:
            known = ", ".join(sorted(by_id)) or "none"
            raise UsageError(f"DriftConfig remediation.resources: {check_id!r} is not a "
                             f"compliance check of {spec.path} (its checks: {known})")
        if RESOURCE in wanted:
            targets.append(Target(RESOURCE, found.id, f"resources breaking {found.title}",
                                  found.severity, labels.get(found.id, ()), check=found))
    _check_waivers(spec, waivers, {ref.id for ref in refs}, {p.name for p in expected})
    return Plan(spec, tuple(targets), expected)


def _check_waivers(spec: ClusterSpec, waivers: Sequence[Waiver], checks: set[str],
                   policies: set[str]) -> None:
    for waiver in waivers:
        if waiver.check is not None and waiver.check not in checks:
            known = ", ".join(sorted(checks)) or "none"
            raise UsageError(f"{waiver.source}: waiver {waiver.id}: check {waiver.check!r} is "
                             f"not a check of {spec.path} (its checks: {known})")
        if waiver.policy is not None and waiver.policy not in policies:
            known = ", ".join(sorted(policies)) or "none"
            raise UsageError(f"{waiver.source}: waiver {waiver.id}: policy {waiver.policy!r} "
                             f"is not a policy {spec.path} expects (its policies: {known})")


def _admission_policies(spec: ClusterSpec) -> bool:
    return bool(((spec.body.get("admission") or {}).get("policies") or {}).get("requiredPolicies"))


class Detector:
    """Judges targets against one snapshot; safe to call for targets in any order.

    ``baseline`` is what the previous run of the same spec on the same cluster saw (see
    :mod:`pytest_kspec.history.store`): an absent policy seen before is ``deleted``, else
    ``missing``; with a previous run, a compliance violation is ``new-violation`` or
    ``violation`` (persisting) and one that went away is reported ``resolved``. Without a
    previous run violations are plain ``violation`` (nothing to compare with). Every event
    gets ``first_seen``: the start of its current streak of runs, else ``now``. Events that
    a DriftConfig waiver in force at ``now`` accepts are set aside (:mod:`.waivers`). With a
    ``prober``, a policy that matches the spec is also probed (:mod:`.efficacy`): admitted is
    ``not-enforcing`` drift, no verdict an error.
    """

    def __init__(self, plan: Plan, snapshot: Snapshot,
                 compliance: ComplianceOptions | None = None, *,
                 baseline: Baseline | None = None, now: str = "",
                 waivers: Sequence[Waiver] = (), prober: Prober | None = None) -> None:
        self.plan = plan
        self.snapshot = snapshot
        self.compliance = compliance or ComplianceOptions.for_spec(plan.spec.body)
        self.baseline = baseline or Baseline()
        self.now = now
        self.waivers = tuple(waivers)
        self._kyverno: tuple[int, int] | None
        self._passed = PassResult()  # verdicts of the page-by-page pass, by check id
        self.prober = prober

    def evaluate(self, target: Target) -> Outcome:
        outcome = self._judge(target)
        if outcome.status == "error":
            return outcome
        outcome = self._with_history(outcome)
        if self.waivers:
            now = parse_iso(self.now) if self.now else time.time()
            outcome = apply_waivers(outcome, self.waivers, now, self._labels)
        return outcome

    def _labels(self, api_version: str, kind: str, name: str,
                namespace: str | None) -> dict[str, str]:
        known = self._passed.labels.get((kind, namespace, name))
        if known is not None:  # an object the page-by-page pass judged (not held)
            return known
        obj = self.snapshot.get(api_version, kind, name, namespace)
        return dict(((obj or {}).get("metadata") or {}).get("labels") or {})

    def _with_history(self, outcome: Outcome) -> Outcome:
        return with_history(outcome, self.baseline, self.now)

    def _judge(self, target: Target) -> Outcome:
        try:
            if target.type == POLICY:
                return self._extra(target) if target.id == EXTRA else self._policy(target)
            if target.type == CONFIGURATION:
                return self._configuration(target)
            if target.type == RESOURCE:
                return self._resource(target)
            return self._compliance(target)
        except KspecError as e:  # API errors, and rules the cluster's data cannot judge
            return Outcome(target, "error", text=str(e))

    # -- policies -----------------------------------------------------------------------

    def _live_policies(self) -> list[dict[str, Any]] | None:
        """Live ClusterPolicies, or None when the cluster does not serve them (no Kyverno)."""
        try:
            return self.snapshot.list(*POLICY_API)
        except ApiError as e:
            if e.status == 404 and e.verb == "discover":
                return None
            raise

    def _policy(self, target: Target) -> Outcome:
        assert target.policy is not None
        pol = target.policy
        live_all = self._live_policies()
        live = None
        for obj in live_all or []:
            if (obj.get("metadata") or {}).get("name") == pol.name:
                live = obj
                break
        manifest = None
        if pol.presence_only or pol.manifest is None:
            cmp = compare_presence(pol.name, live, seen_before=self.baseline.seen(target.key))
        else:
            manifest = kyverno_versions.for_kyverno(pol.manifest, self._kyverno_version())
            cmp = compare_policy(manifest, live, seen_before=self.baseline.seen(target.key))
        if cmp is None:
            return self._probe(target, pol, manifest)
        text = render_policy_drift(pol.name, cmp)
        if live_all is None:
            text += ("\n  (the cluster does not serve kyverno.io/v1 ClusterPolicy: "
                     "is Kyverno installed?)")
        event = cmp.to_event(pol.name, controls=target.controls)
        return Outcome(target, "failed", [event], text, subjects=[live], expected=manifest)

    def _kyverno_version(self) -> tuple[int, int] | None:
        """The installed Kyverno generation, read once from the ClusterPolicy CRD (None when
        the CRD cannot be read: the policy is then expected with both action fields)."""
        if not hasattr(self, "_kyverno"):
            crd = None
            try:
                crd = self.snapshot.get(*CRD_API, kyverno_versions.POLICY_CRD)
            except ApiError as e:
                log.info("cannot read the Kyverno CRD to learn its version: %s", e)
            self._kyverno = kyverno_versions.installed_version(crd)
        return self._kyverno

    def _probe(self, target: Target, pol: ExpectedPolicy,
               manifest: dict[str, Any] | None) -> Outcome:
        """Passed, unless the efficacy probe shows the policy blocks nothing (or cannot tell)."""
        result = self.prober.probe(pol) if self.prober is not None else None
        if result is None or result.verdict == ENFORCES:
            return Outcome(target, "passed", text=result.text() if result else "",
                           expected=manifest)
        if result.verdict == NOT_ENFORCING:
            live = self.snapshot.get(*POLICY_API, pol.name)
            return Outcome(target, "failed", [result.event(list(target.controls))],
                           result.text(), subjects=[live], expected=manifest)
        return Outcome(target, "error", text=result.text())

    def _extra(self, target: Target) -> Outcome:
        live = self._live_policies() or []
        extras = find_extra([p.name for p in self.plan.expected], live)
        if not extras:
            return Outcome(target, "passed")
        events = [extra_event(obj) for obj in extras]
        lines = [f"{len(events)} kspec-managed ClusterPolicy object(s) not in the spec:"]
        lines += [f"  {e.resource}" for e in events]
        return Outcome(target, "failed", events, "\n".join(lines), subjects=list(extras))

    # -- configuration ------------------------------------------------------------------

    def _configuration(self, target: Target) -> Outcome:
        assert target.check is not None
        event = check_version(target.check.rule, self.snapshot.server_version())
        if event is None:
            return Outcome(target, "passed")
        event.controls = list(target.controls)
        return Outcome(target, "failed", [event], event.message)

    # -- compliance ---------------------------------------------------------------------

    def _compliance(self, target: Target) -> Outcome:
        return self._violations(target, drift="violation", name_owner=False)

    # -- resources ----------------------------------------------------------------------

    def _resource(self, target: Target) -> Outcome:
        """The compliance check's violators as resource drift (one event per violation)."""
        return self._violations(target, drift="non-compliant", name_owner=True)

    def _violations(self, target: Target, *, drift: str, name_owner: bool) -> Outcome:
        """One event per resource that breaks the target's compliance rule."""
        assert target.check is not None
        result = self._check_result(target.check)
        if result.passed:
            return Outcome(target, "passed")
        events = [
            DriftEvent(type=target.type, severity=target.severity, resource=v.resource,
                       drift=drift, check=target.id,
                       message=v.message + (f" (owned by {v.owner})"
                                            if name_owner and v.owner else ""),
                       controls=list(target.controls))
            for v in result.violations
        ]
        return Outcome(target, "failed", events, violation_text(result.summary, events),
                       subjects=list(result.violations))

    def _check_result(self, ref: catalog.CheckRef) -> CheckResult:
        """The check's result. Checks that read Pods or workload controllers (see
        :mod:`pytest_kspec.detect.stream`) are judged together, in one page-by-page pass, the
        first time any of them is asked for; their verdicts stay for this detector (a changed
        cluster needs a new one). Other checks read the snapshot's whole lists."""
        if streamed_kind(ref) is None or not hasattr(self.snapshot, "pages") or not hasattr(
                self.snapshot, "note_reads"):
            return evaluate(ref, self.snapshot, self.compliance)
        if ref.id not in self._passed.verdicts:
            refs: dict[str, catalog.CheckRef] = {}
            for target in self.plan.targets:
                check = target.check
                if (check is not None and target.type in (COMPLIANCE, RESOURCE)
                        and check.id not in self._passed.verdicts
                        and streamed_kind(check) is not None):
                    refs.setdefault(check.id, check)
            refs.setdefault(ref.id, ref)
            done = run_pass(list(refs.values()), self.snapshot, self.compliance,
                            keep_labels=any(w.labels for w in self.waivers))
            self._passed.verdicts.update(done.verdicts)
            self._passed.reads.update(done.reads)
            self._passed.labels.update(done.labels)
        # Watch mode asks which kinds each target read: what the pass read for this check.
        self.snapshot.note_reads(self._passed.reads.get(ref.id, ()))
        verdict = self._passed.verdicts[ref.id]
        if isinstance(verdict, KspecError):
            raise verdict
        return verdict


def with_history(outcome: Outcome, baseline: Baseline, now: str = "") -> Outcome:
    """Give ``outcome``'s events their ``first_seen`` and, for :data:`TRACKED` types with a
    previous run, ``new-violation`` / ``violation`` and the ``resolved`` events of the
    violations that went away (see :class:`Detector`)."""
    key = outcome.target.key
    tracked = outcome.target.type in TRACKED and baseline.run_id is not None
    current: set[str] = set()
    for event in outcome.events:
        fp = fingerprint(key, event.resource)
        current.add(fp)
        active = baseline.active.get(fp)
        event.first_seen = iso(active.first_seen) if active else (now or None)
        if tracked:
            event.drift = "violation" if active else "new-violation"
    if tracked:
        for gone in baseline.active_for(key):
            if gone.fingerprint not in current:
                outcome.resolved.append(DriftEvent(
                    type=outcome.target.type, severity="info", resource=gone.resource,
                    drift="resolved", check=outcome.target.id,
                    message=f"no longer violates {outcome.target.id} (was: "
                            f"{gone.message})", first_seen=iso(gone.first_seen),
                    controls=list(outcome.target.controls)))
    return outcome


def drift_properties(events: Sequence[DriftEvent]) -> list[tuple[str, str]]:
    """JUnit properties naming what drifted: the drift kinds and the resources."""
    if not events:
        return []
    return [("kspec.drift", ",".join(sorted({e.drift for e in events}))),
            ("kspec.resources", ",".join(sorted({e.resource for e in events})[:50]))]


def violation_text(summary: str, events: Sequence[DriftEvent]) -> str:
    """The failure text: the summary, the first few violators, and how many more."""
    lines = [summary]
    lines += [f"  {e.resource}: {e.message}" for e in events[:SHOWN_VIOLATIONS]]
    if len(events) > SHOWN_VIOLATIONS:
        lines.append(f"  ... and {len(events) - SHOWN_VIOLATIONS} more (see drift-report.json)")
    return "\n".join(lines)
