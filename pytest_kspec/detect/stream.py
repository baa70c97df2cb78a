"""One pass per kind, page by page: the container checks read each Pod LIST page as it arrives.

The container, image-registry and digest checks (``compliance.PER_OBJECT``) judge "units":
workload controllers on their pod templates, then pods, a pod's violation folded into its
failing controller's (see :mod:`pytest_kspec.detect.compliance.podspecs`). Run one after the
other on cached lists, each would walk every pod of the cluster, and the snapshot would hold
them all for the session. Instead one pass LISTs Pods once and, for every such check of the
plan:

1. judges the controllers once (the check run with no pods);
2. judges each Pod page as it arrives (the check run with that page and only the ReplicaSets
   and Jobs that owner lookups need; ReplicaSets and Jobs without an owner are judged again
   with every page, so their count, taken with an empty page, is subtracted);
3. keeps only the pods' violations and counts, and drops the page.

At the end each check's result is what the whole-list run gives: the controllers'
violations, then the pods' in list order, less the pods whose top-level controller fails;
``evaluated`` adds up. tests/detect/test_scale.py pins the equality over three pages and
that the traced peak does not grow from 2,000 to 20,000 pods.

Failures keep their meaning: a LIST that fails makes every check of the pass an error with
the same message; a rule that cannot be evaluated makes that check an error and leaves the
others; a continue token that expires mid-way starts the pass again, once.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pytest_kspec.desired import CheckRef
from pytest_kspec.detect.compliance import (
    PER_OBJECT,
    CheckResult,
    ComplianceOptions,
    Violation,
    evaluate,
)
from pytest_kspec.detect.compliance.base import OWNER_RESOURCES, result
from pytest_kspec.detect.compliance.podspecs import CONTROLLERS
from pytest_kspec.errors import ApiError, KspecError

log = logging.getLogger("pytest_kspec.detect.stream")

Verdict = CheckResult | KspecError


class PagedSnapshot(Protocol):
    """What the pass reads: the run's snapshot (``pytest_kspec.cluster.Snapshot``)."""

    def list(self, api_version: str, kind: str,
             namespace: str | None = None) -> builtins.list[dict[str, Any]]: ...

    def pages(self, api_version: str, kind: str) -> Iterator[builtins.list[dict[str, Any]]]:
        ...

    def server_version(self) -> Mapping[str, Any]: ...


def streamed_kind(ref: CheckRef) -> tuple[str, str] | None:
    """The kind the pass feeds ``ref`` page by page, or None when it reads whole lists."""
    return PER_OBJECT.get(ref.kind)


_CONTROLLERS = frozenset(CONTROLLERS)
_OWNER_KINDS = frozenset(OWNER_RESOURCES)


@dataclass
class _PhaseView:
    """The snapshot as a check sees it during the pass: the streamed kind is the current page;
    controllers are all there while they are judged, and afterwards only the owner kinds
    (for owner lookups); every other kind comes from the run's snapshot."""

    snapshot: PagedSnapshot
    kind: tuple[str, str]
    controllers: bool = True
    page: builtins.list[dict[str, Any]] = field(default_factory=builtins.list)
    owner_indexes: dict[str, Any] = field(default_factory=dict)

    def list(self, api_version: str, kind: str,
             namespace: str | None = None) -> builtins.list[dict[str, Any]]:
        key = (api_version, kind)
        if key == self.kind:
            items = self.page
        elif key in _CONTROLLERS and not self.controllers and key not in _OWNER_KINDS:
            items = []
        else:
            return self.snapshot.list(api_version, kind, namespace)
        if namespace is None:
            return items
        return [o for o in items if (o.get("metadata") or {}).get("namespace") == namespace]

    def server_version(self) -> Mapping[str, Any]:
        return self.snapshot.server_version()


@dataclass
class _Tally:
    """What one check concluded so far."""

    ref: CheckRef
    controllers: CheckResult | None = None  # step 1
    repeated: int = 0  # units judged with every page (unowned ReplicaSets and Jobs)
    pod_violations: builtins.list[Violation] = field(default_factory=builtins.list)
    pods: int = 0
    error: KspecError | None = None

    def add_page(self, part: CheckResult, kind: str) -> None:
        self.pod_violations.extend(v for v in part.violations if v.kind == kind)
        self.pods += part.evaluated - self.repeated

    def verdict(self) -> Verdict:
        if self.error is not None:
            return self.error
        base = self.controllers
        assert base is not None
        failing = {v.resource for v in base.violations}
        pods = [v for v in self.pod_violations if v.owner is None or v.owner not in failing]
        violations = [*base.violations, *pods]
        if base.noun:
            return result(self.ref, violations, base.evaluated + self.pods, base.noun,
                          base.what)
        return CheckResult(ref=self.ref, violations=tuple(violations),
                           evaluated=base.evaluated + self.pods, summary=base.summary)


def run_pass(kind: tuple[str, str], refs: Sequence[CheckRef], snapshot: PagedSnapshot,
             options: ComplianceOptions) -> dict[str, Verdict]:
    """Judge every check of ``refs`` (all fed ``kind``) in one LIST of ``kind``; returns
    each check's result, or the error that kept it from one, by check id."""
    for attempt in (1, 2):
        tallies = {ref.id: _Tally(ref) for ref in refs}
        view = _PhaseView(snapshot, kind)
        for tally in tallies.values():  # 1. controllers, once
            _step(tally, view, options, first=True)
        view.controllers = False
        for tally in tallies.values():  # what every page judges again
            _step(tally, view, options, first=False, count_only=True)
        try:
            for page in snapshot.pages(*kind):
                view.page = page
                for tally in tallies.values():  # 2. this page
                    _step(tally, view, options, first=False)
                view.page = []  # 3. dropped
        except ApiError as e:
            if e.status == 410 and attempt == 1:
                log.info("list of %s expired mid-way; starting the pass again", kind[1])
                continue
            return {ref.id: e for ref in refs}
        break
    return {ref_id: tally.verdict() for ref_id, tally in tallies.items()}


def _step(tally: _Tally, view: _PhaseView, options: ComplianceOptions, *, first: bool,
          count_only: bool = False) -> None:
    if tally.error is not None:
        return
    try:
        part = evaluate(tally.ref, view, options)
    except KspecError as e:
        tally.error = e
        return
    if first:
        tally.controllers = part
    elif count_only:
        tally.repeated = part.evaluated
    else:
        tally.add_page(part, view.kind[1])
