"""``kspec drift detect --watch``: one full detection, then watch streams and re-judge only
what an event can have changed.

The first cycle evaluates every target and records, through
:meth:`pytest_kspec.cluster.Snapshot.tracking`, which kinds each target read. Watch streams
(:mod:`pytest_kspec.cluster.watch`) then keep the snapshot current; a burst of events
(debounced) re-evaluates only the targets that read a changed kind. Each watched kind is held
as a :class:`~pytest_kspec.watch.projection.Projection` (the fields the plan's checks read),
never as raw JSON. The DriftConfig ``interval`` is the full-resync period: every kind is
re-listed (on time, the watch streams end then) and every target judged.

When the API server goes away, each kind's watcher reconnects and re-lists; once every kind
is back, one line says how long the outage lasted, what changed meanwhile (objects added,
deleted, changed per kind) and which drift appeared or was resolved while disconnected. The
line is a notice of that cycle's run: in its report (``kspec.notices``, archived with the
history run) and sent with its alerts.

A cycle whose drift state (each item's status and drift events) differs from the last one
written is a run: reports rewritten atomically, a history run, alerts. A quiet cluster
writes nothing. Remediation (when asked) goes through the same guarded path as one-shot runs,
behind a :class:`~pytest_kspec.watch.breaker.LoopBreaker`. SIGINT/SIGTERM only set a flag:
the write in progress completes, then the loop returns 0.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from pytest_kspec.alerts import (
    BackgroundAlerter,
    Deliverer,
    Delivery,
    MemoryState,
    Sent,
    StoredState,
    make_alerter,
)
from pytest_kspec.cluster import SLACK, Change, ClusterAccess, KindWatcher
from pytest_kspec.detect import Outcome, Plan, Target, drift_properties
from pytest_kspec.errors import KspecError
from pytest_kspec.history import AlertStateStore, Location, Scope, audit_key
from pytest_kspec.remediate import RemediationOptions, remediation_properties
from pytest_kspec.report import ItemRecord, active_drift, write_json_atomic, write_junit
from pytest_kspec.run import Run
from pytest_kspec.spec import DriftConfig
from pytest_kspec.watch.breaker import LoopBreaker, other_manager
from pytest_kspec.watch.projection import Projection

if TYPE_CHECKING:  # prometheus_client is imported only when metrics are served
    from pytest_kspec.metrics import Metrics

log = logging.getLogger("pytest_kspec.watch")

DEBOUNCE = 0.1
"""Seconds to gather a burst of events into one cycle."""
RELIST_WAIT = 30.0
"""Seconds to wait for the watchers' re-lists (at start and at each full resync)."""
CAUSES = {"start": "start", "410": "410 Gone", "reconnect": "a reconnect",
          "resync": "the periodic resync", "requested": "a remediation write"}
OBJECT_WORDS = ("added", "deleted", "changed")
SHOWN = 5
"""Drifts named in the outage line (the rest are counted)."""
VERSION = ("", "version")
RESTORED = ("applied", "verified")


@dataclass
class WatchOptions:
    spec_node: str
    reports: Path
    history: Location | None
    interval: float
    output: Path | None = None
    quiet: bool = False
    debounce: float = DEBOUNCE


@dataclass
class Stats:
    """What the loop did (tests and metrics read it)."""

    cycles: int = 0
    writes: int = 0
    evaluations: dict[str, int] = field(default_factory=dict)
    last_change: float | None = None
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))
    outages: list[str] = field(default_factory=list)


class WatchLoop:
    def __init__(self, plan: Plan, access: ClusterAccess, config: DriftConfig,
                 remediation: RemediationOptions, options: WatchOptions, out: TextIO,
                 stop: threading.Event, *, alerter: Deliverer | None = None,
                 on_cycle: Callable[[WatchLoop], None] | None = None,
                 metrics: Metrics | None = None) -> None:
        self.plan = plan
        self.access = access
        self.config = config
        self.remediation = remediation
        self.options = options
        self.out = out
        self.stop = stop
        self.stats = Stats()
        self.on_cycle = on_cycle
        self.metrics = metrics
        if metrics is not None:
            metrics.reconnects_from(
                lambda: {k: w.reconnects for (_, k), w in list(self.watchers.items())})
        self.records: dict[str, ItemRecord] = {}
        self.properties: dict[str, dict[str, str]] = {}
        self.reads: dict[str, set[tuple[str, str]]] = {}
        self.changes: queue.Queue[Change] = queue.Queue()
        self.watchers: dict[tuple[str, str], KindWatcher] = {}
        self.breaker = LoopBreaker(config.remediation.loop_restores,
                                   config.remediation.loop_window)
        self.notices: list[str] = []
        self._alerter: Deliverer | None = alerter
        self._alerts_ready = alerter is not None
        self._written: str | None = None
        self._scope: Scope | None = None
        self.projection = Projection(plan)
        self.next_resync = time.monotonic() + options.interval
        self._outage: dict[tuple[str, str], float] = {}
        """Kinds disconnected now, with when each connection broke."""
        self._outage_start: float | None = None
        self._outage_drift: dict[tuple[str, str], str] = {}
        self._outage_objects: dict[str, tuple[int, int, int]] = {}
        self._outage_over = False

    # -- the loop ---------------------------------------------------------------------------

    def run(self) -> int:
        self._cycle(self.plan.targets, reason="full detection")
        self.next_resync = time.monotonic() + self.options.interval
        self._start_watchers()
        while not self.stop.is_set():
            timeout = min(1.0, max(self.next_resync - time.monotonic(), 0.0))
            try:
                first = self.changes.get(timeout=timeout)
            except queue.Empty:
                first = None
            if self.stop.is_set():
                break
            if first is not None:
                burst = [first, *self._drain(self.options.debounce)]
                self._on_changes(burst)
            if time.monotonic() >= self.next_resync:
                self._resync()
            self._flush_alerts()
        if isinstance(self._alerter, BackgroundAlerter):
            self._alerter.close()
        self._print("kspec: watch stopped")
        return 0

    def _drain(self, debounce: float) -> list[Change]:
        out: list[Change] = []
        deadline = time.monotonic() + debounce
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return out
            try:
                out.append(self.changes.get(timeout=remaining))
            except queue.Empty:
                return out

    def _on_changes(self, burst: list[Change]) -> None:
        for change in burst:
            self._track_outage(change)
        burst = [c for c in burst if c.event != "LOST"]
        if not burst:
            return
        kinds = {c.key for c in burst}
        relisted = [c for c in burst if c.event == "RELIST"]
        targets = [t for t in self.plan.targets if self.reads.get(t.key, set()) & kinds]
        names = ", ".join(sorted({c.kind for c in burst}))
        causes = sorted({CAUSES.get(c.cause, c.cause) for c in relisted})
        reason = (f"{len(burst)} event(s) on {names}" if not relisted
                  else f"re-listed {', '.join(sorted({c.kind for c in relisted}))} after "
                       + " and ".join(causes))
        self._print(f"kspec: watch: {reason}: re-evaluating {len(targets)} of "
                    f"{len(self.plan.targets)} target(s)", quiet_ok=True)
        self.stats.last_change = min(c.at for c in burst)
        if targets:
            self._cycle(targets, reason=reason, since=self.stats.last_change)
        elif self._outage_over:
            self._outage_line()

    def _resync(self) -> None:
        due = self.next_resync
        self.next_resync += self.options.interval * max(
            1, int((time.monotonic() - due) // self.options.interval) + 1)
        if not self.watchers:  # the cluster was unreachable at start: try again from scratch
            self._print("kspec: watch: connecting again", quiet_ok=True)
            self.access.refresh()
            self._cycle(self.plan.targets, reason="full resync")
            self._start_watchers()
            return
        if self._outage or any(w.outage_since is not None for w in self.watchers.values()):
            # judging now would read what the API server said before it went away (and fail
            # on /version): the re-lists after the reconnect judge what they change
            self._print("kspec: watch: full resync postponed: the API server is unreachable",
                        quiet_ok=True)
            return
        # each watcher re-lists on its own now (its stream ended on time)
        self._await_relists(set(self.watchers), since=due - SLACK)
        self._print("kspec: watch: full resync", quiet_ok=True)
        with contextlib.suppress(KspecError):
            self.access.snapshot().forget_version()
        self._cycle(self.plan.targets, reason="full resync")

    # -- outages ----------------------------------------------------------------------------

    def _track_outage(self, change: Change) -> None:
        """Note when kinds lose and regain their connection; when the last one is back,
        the next cycle reports the outage (:meth:`_outage_line`)."""
        if change.event == "LOST":
            if not self._outage:
                self._outage_start = change.at
                self._outage_drift = self._open_drift()
                self._outage_objects = {}
            self._outage.setdefault(change.key, change.at)
        elif (change.event == "RELIST" and change.outage is not None
              and self._outage.pop(change.key, None) is not None):
            self._outage_objects[change.kind] = change.diff
            self._outage_over = not self._outage

    def _open_drift(self) -> dict[tuple[str, str], str]:
        """(node, resource) → drift of every open drift event judged so far."""
        return {(r.node_id, str(e.get("resource"))): str(e.get("drift"))
                for r in self.records.values() if r.status == "failed"
                for e in active_drift(r.events)}

    def _outage_line(self) -> None:
        """The one line (and notice) on what changed while the API server was away."""
        self._outage_over = False
        started = self._outage_start if self._outage_start is not None else time.monotonic()
        seconds = time.monotonic() - started
        objects = [f"{kind} " + ", ".join(f"{n} {w}" for n, w in zip(diff, OBJECT_WORDS,
                                                                       strict=True) if n)
                   for kind, diff in sorted(self._outage_objects.items()) if any(diff)]
        now = self._open_drift()
        before = self._outage_drift
        appeared = [f"{res} ({drift})" for key, drift in sorted(now.items())
                    for res in [key[1]] if before.get(key) != drift]
        resolved = [f"{key[1]} ({drift})" for key, drift in sorted(before.items())
                    if key not in now]
        text = (f"API server unreachable for {seconds:.1f}s; while disconnected: "
                f"{'; '.join(objects) or 'no object changed'}; drift appeared: "
                f"{_names(appeared)}; drift resolved: {_names(resolved)}")
        self.stats.outages.append(text)
        self.notices.append(text)
        self._print(f"kspec: watch: {text}", quiet_ok=True)

    def _start_watchers(self) -> None:
        kinds = set().union(*self.reads.values()) - {VERSION} if self.reads else set()
        try:
            cluster = self.access.cluster()
            snapshot = self.access.snapshot()
        except KspecError as e:
            self._print(f"kspec: watch: cannot watch: {e}; trying again at the next resync")
            return
        for api_version, kind in sorted(kinds):
            watcher = KindWatcher(cluster, snapshot, api_version, kind, "", self.changes.put,
                                  self.stop,
                                  project=self.projection.for_kind(api_version, kind),
                                  resync_at=self.next_resync,
                                  resync_every=self.options.interval)
            self.watchers[(api_version, kind)] = watcher
        # Each watcher's first LIST replaces what detection listed; what changed in between
        # is judged by one more pass (written only if the drift state differs).
        for watcher in self.watchers.values():
            watcher.start()
        self._await_relists(set(self.watchers))
        self._print(f"kspec: watching {len(self.watchers)} kind(s): "
                    + ", ".join(k for _, k in sorted(self.watchers)), quiet_ok=True)
        self._cycle(self.plan.targets, reason="watch started")

    def _await_relists(self, pending: set[tuple[str, str]], since: float = 0.0) -> None:
        """Wait until each kind of ``pending`` has re-listed (at ``since`` or later: what the
        next cycle judges); other changes are put back for the loop."""
        deadline = time.monotonic() + RELIST_WAIT
        kept: list[Change] = []
        while pending and time.monotonic() < deadline and not self.stop.is_set():
            pending = {k for k in pending if self.watchers[k].relisted_at < since or not since}
            try:
                change = self.changes.get(timeout=0.5)
            except queue.Empty:
                continue
            self._track_outage(change)
            if change.event == "RELIST" and change.key in pending:
                pending.discard(change.key)
            elif change.event != "LOST":
                kept.append(change)
        for change in kept:
            self.changes.put(change)

    # -- one cycle --------------------------------------------------------------------------

    def _cycle(self, targets: Iterable[Target], *, reason: str,
               since: float | None = None) -> None:
        started = time.monotonic()
        run = Run(self.plan.spec, self.plan, self.access, spec_node=self.options.spec_node,
                  reports=self.options.reports, config=self.config,
                  remediation=self.remediation, history=self.options.history,
                  source="watch", alerter=self.alerter_for(), scope=self._scope)
        try:
            self._judge(run, targets, started, since, reason)
        except BaseException:
            self._record_metrics(run)
            raise

    def _record_metrics(self, run: Run) -> None:
        """Bring /metrics up to this cycle: before its summary is printed, so whoever reads
        the summary (a person, a test, a log-based alert) and then scrapes sees the same."""
        if self.metrics is not None:
            self.metrics.record_items(self.records.values())
            self.metrics.record_deliveries(run.deliveries)
            self.metrics.record_remediations(getattr(run.recorder, "attempts", []))

    def _judge(self, run: Run, targets: Iterable[Target], started: float,
               since: float | None, reason: str) -> None:
        snapshot = None
        with contextlib.suppress(KspecError):
            snapshot = self.access.snapshot()
        for target in targets:
            if snapshot is not None:
                with snapshot.tracking() as reads:
                    outcome = run.evaluate(target)
                self.reads[target.key] = set(reads)
            else:
                outcome = run.evaluate(target)
            self.stats.evaluations[target.key] = self.stats.evaluations.get(target.key, 0) + 1
            self._remediate(run, outcome)
            record = run.record(outcome)
            self.records[target.key] = record
            self.properties[record.node_id] = dict(
                target.properties() + drift_properties(outcome.events)
                + remediation_properties(outcome.events))
        self.stats.cycles += 1
        if self._outage_over:
            self._outage_line()
        digest = self._digest()
        self._judged(digest, run, started, since, reason)

    def _judged(self, digest: str, run: Run, started: float, since: float | None,
                reason: str) -> None:
        if digest == self._written and not self.notices:
            run.history.close()
            self._record_metrics(run)
            self._timing(started, since)
            return
        for record in self.records.values():
            run.report.add(record)
        run.notices = list(self.notices)
        run.report.notices = list(self.notices) or None  # kept with the run's archived report
        self.notices.clear()
        path = run.finish()  # JSON atomically, the history run, alerts
        if self._scope is None and run.history.enabled:
            self._scope = run.scope()
        junit = self.options.reports / "junit.xml"
        write_junit(run.report, junit, self.properties)
        if self.options.output is not None:
            write_json_atomic(self.options.output, run.report.to_json())
        run.history.archive(self.options.reports, [path, junit])  # reports/runs/<run-id>/
        run.history.close()
        self._written = digest
        self.stats.writes += 1
        self._record_metrics(run)
        self._timing(started, since)
        self._print(f"kspec: watch: drift state changed ({reason})", quiet_ok=True)
        for record in sorted(self.records.values(), key=lambda r: r.order):
            if record.status != "passed":
                self._print(f"{record.status.upper():7} {record.node_id}", quiet_ok=True)
        for line in run.summary(path):
            self._print(line)
        if self.on_cycle is not None:
            self.on_cycle(self)

    def _timing(self, started: float, since: float | None) -> None:
        now = time.monotonic()
        latency = now - since if since is not None else None
        if latency is not None:
            self.stats.latencies.append(latency)
        if self.metrics is not None:
            self.metrics.record_cycle(now - started, latency)

    def _digest(self) -> str:
        state = sorted(
            (key, r.status, sorted((str(e.get("resource")), str(e.get("drift")),
                                    str(e.get("severity"))) for e in r.events))
            for key, r in self.records.items())
        return hashlib.sha256(json.dumps(state).encode()).hexdigest()

    def _remediate(self, run: Run, outcome: Outcome) -> None:
        if not run.remediates(outcome):
            return
        blocked = [i for i, e in enumerate(outcome.events) if not self.breaker.allows(e.resource)]
        if blocked:
            aligned = len(outcome.subjects) == len(outcome.events)
            keep = [i for i in range(len(outcome.events)) if i not in blocked]
            outcome = Outcome(outcome.target, outcome.status,
                              [outcome.events[i] for i in keep], outcome.text,
                              [outcome.subjects[i] for i in keep] if aligned
                              else outcome.subjects, outcome.resolved)
            if not outcome.events:
                return
        # who changed it, as detection attributed the drifted fields (managedFields)
        changed_by = {e.resource: m for e in outcome.events for m in
                      [c.manager for c in e.changes if c.manager and c.manager != "kspec"][-1:]}
        for attempt in run.remediate(outcome):
            resource = str(attempt.get("resource", ""))
            self._rewatch(resource.partition("/")[0])
            if attempt.get("status") in RESTORED and self.breaker.restored(resource):
                manager = changed_by.get(resource) or other_manager(self._live(resource))
                text = f"remediation loop: {manager} keeps changing {resource}"
                self.notices.append(text)
                self._print(f"kspec: {text}; no longer fixing it (restored "
                            f"{self.breaker.restores} times within "
                            f"{int(self.breaker.window)}s)")

    def _rewatch(self, kind: str) -> None:
        """A remediation write makes the snapshot forget ``kind`` (the next read lists it
        afresh, whole): its watcher re-lists it as a projection at its next event."""
        for (api_version, watched), watcher in self.watchers.items():
            if watched == kind and self.projection.for_kind(api_version, kind) is not None:
                watcher.resync()

    def _live(self, resource: str) -> dict[str, Any] | None:
        kind, _, name = resource.partition("/")
        try:
            snapshot = self.access.snapshot()
            if kind == "ClusterPolicy":
                return snapshot.get("kyverno.io/v1", "ClusterPolicy", name)
        except KspecError:
            return None
        return None

    # -- alerts -----------------------------------------------------------------------------

    def alerter_for(self) -> Deliverer | None:
        """One alerter for the whole watch (its rate limits and held drift span cycles),
        delivering on its own thread so a slow receiver never delays detection."""
        if not self._alerts_ready:
            self._alerts_ready = True
            state: MemoryState | StoredState = MemoryState()
            if self.options.history is not None:
                # opened by the delivery thread (SQLite connections stay in their thread)
                state = StoredState(_LazyAlertStore(self.options.history,
                                                    self._scope or self._first_scope()))
            alerter = make_alerter(self.config.alerts, state)
            if alerter is not None:
                self._alerter = BackgroundAlerter(alerter, self._delivered)
        return self._alerter

    def _delivered(self, deliveries: list[Delivery]) -> None:
        for delivery in deliveries:
            self._print(f"kspec: alert {delivery.line()}")
        if self.metrics is not None:
            self.metrics.record_deliveries(deliveries)

    def _first_scope(self) -> Scope:
        probe = Run(self.plan.spec, self.plan, self.access, spec_node=self.options.spec_node,
                    reports=self.options.reports, config=self.config, history=None)
        self._scope = probe.scope()
        return self._scope

    def _flush_alerts(self) -> None:
        """Send what a rate limit held back once its window has passed."""
        alerter = self._alerter
        due = alerter.due() if alerter is not None else None
        if alerter is None or due is None or time.time() < due:
            return
        run = Run(self.plan.spec, self.plan, self.access, spec_node=self.options.spec_node,
                  reports=self.options.reports, config=self.config, history=None,
                  source="watch", alerter=alerter, scope=self._scope)
        for record in self.records.values():
            run.report.add(record)
        self._delivered(alerter.deliver(run.batch()))

    def _print(self, line: str, *, quiet_ok: bool = False) -> None:
        if self.options.quiet and not quiet_ok and not line.startswith("kspec:"):
            return
        print(line, file=self.out, flush=True)


def _names(items: list[str]) -> str:
    if not items:
        return "none"
    more = len(items) - SHOWN
    return ", ".join(items[:SHOWN]) + (f" and {more} more" if more > 0 else "")


class _LazyAlertStore:
    """The history's alert state, opened on first use by the thread that uses it."""

    def __init__(self, path: Location, scope: Scope) -> None:
        self.path = path
        self.scope = scope
        self._store: AlertStateStore | None = None

    def _get(self) -> AlertStateStore:
        if self._store is None:
            self._store = AlertStateStore(self.path.open(key=audit_key()), self.scope)
        return self._store

    def load(self, channel: str) -> tuple[dict[str, tuple[str, str, str, float, str]],
                                          float | None]:
        return self._get().load(channel)

    def save(self, channel: str, sent: Mapping[str, Sent], removed: Iterable[str],
             last_sent: float) -> None:
        self._get().save(channel, sent, removed, last_sent)

    def record(self, delivery: Delivery, run_id: str, at: float) -> None:
        self._get().record(delivery, run_id, at)
