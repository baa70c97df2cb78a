"""``kspec drift detect|remediate``: the pytest items' checks (and fixes) from the command line.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import TextIO

from pytest_kspec.alerts import host_of
from pytest_kspec.cluster import (
    DEFAULT_SIM_VERSION,
    AccessOptions,
    ClusterAccess,
    ClusterRef,
    select_clusters,
    sim_paths,
)
from pytest_kspec.detect import Plan, drift_properties, make_plan
from pytest_kspec.errors import ClusterError, SpecError, UsageError
from pytest_kspec.history import history_location
from pytest_kspec.paths import spec_node_id, under
from pytest_kspec.remediate import (
    RemediationOptions,
    remediation_properties,
    remediation_text,
)
from pytest_kspec.report import write_fleet_junit, write_json_atomic, write_junit
from pytest_kspec.run import Run
from pytest_kspec.spec import DriftConfig, load_drift_config, parse_duration, parse_types

EXIT_OK, EXIT_DRIFT, EXIT_INCOMPLETE = 0, 1, 2


def add_detect_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--spec", required=True, metavar="FILE",
                        help="ClusterSpecification (kspec.dev/v1) to check against")
    parser.add_argument("--config", metavar="FILE", help="DriftConfig (kspec.dev/v1)")
    parser.add_argument("--kubeconfig", metavar="FILE",
                        help="kubeconfig (default $KUBECONFIG, ~/.kube/config, in-cluster)")
    parser.add_argument("--context", metavar="NAME[,NAME...]|all",
                        help="kubeconfig context; several (a,b) or all check each cluster "
                             "(reports under <reports>/clusters/<context>/ plus "
                             "fleet-report.json; overrides the DriftConfig's clusters:)")
    parser.add_argument("--sim", metavar="PATH", action="append",
                        help="run against the embedded simulator preloaded from PATH")
    parser.add_argument("--sim-version", metavar="VERSION", default=DEFAULT_SIM_VERSION,
                        help="Kubernetes version the simulator reports")
    parser.add_argument("--output", metavar="FILE",
                        help="also write the JSON drift report to FILE")
    parser.add_argument("--types", metavar="LIST", default=None,
                        help="policy,compliance,configuration,resource (default: as the "
                             "DriftConfig's detection section says, else all)")
    parser.add_argument("--reports", metavar="DIR", default="reports",
                        help="where drift-report.json and junit.xml go (default reports)")
    parser.add_argument("--watch", action="store_true",
                        help="keep watching: re-judge what each cluster change affects, "
                             "until SIGINT/SIGTERM (exit 0)")
    parser.add_argument("--interval", metavar="DURATION", default=None,
                        help="full resync period with --watch (30s, 5m, 1h; default: the "
                             "DriftConfig's interval, else 5m)")
    parser.add_argument("--quiet", "-q", action="store_true", help="print only the summary")
    parser.add_argument("--metrics-port", dest="metrics_port", metavar="PORT", type=_port,
                        default=None, help="with --watch: serve Prometheus /metrics on PORT")
    parser.add_argument("--metrics-file", dest="metrics_file", metavar="FILE", default=None,
                        help="write the run's Prometheus metrics to FILE (node-exporter "
                             "textfile format, e.g. /var/lib/node_exporter/kspec.prom)")
    parser.add_argument("--pushgateway", metavar="URL", default=None,
                        help="push the run's Prometheus metrics to a Pushgateway (job kspec)")
    parser.add_argument("--history", metavar="FILE|URL", default=None,
                        help="history database: a SQLite file or a postgresql:// URL (default: "
                             "the DriftConfig's storage, else <reports>/history.db)")
    parser.add_argument("--no-history", dest="no_history", action="store_true",
                        help="neither read nor write the history")
    parser.add_argument("--probe", action="store_true",
                        help="efficacy probes: dry-run create a pod that breaks each expected "
                             "Enforce policy; admitted is not-enforcing drift (needs create "
                             "pods: the kspec-probe ClusterRole)")
    parser.add_argument("--no-auto-remediate", dest="no_auto_remediate", action="store_true",
                        help="do not remediate even when the DriftConfig says remediation.auto")


def add_remediate_arguments(parser: argparse.ArgumentParser) -> None:
    """``kspec drift remediate``: detect, then fix what can be fixed (as --kspec-remediate)."""
    add_detect_arguments(parser)
    parser.add_argument("--dry-run", dest="dry_run", action="store_true",
                        help="send the fixes with dryRun=All (the API server validates them) "
                             "and print what would change; change nothing")
    parser.add_argument("--prune", action="store_true",
                        help="delete kspec-managed ClusterPolicies the spec no longer asks for")
    parser.add_argument("--max-deletions", dest="max_deletions", metavar="N", type=_count,
                        default=None, help="most objects to delete in one run (default: the "
                                           "DriftConfig's remediation.maxDeletions, else 5)")
    parser.add_argument("--plan", metavar="FILE", default=None,
                        help="dry run that writes every write it would make (target, planned "
                             "resourceVersion, field diff, digest) to FILE for a person to "
                             "review (kspec drift plan show FILE) and approve")
    parser.add_argument("--apply", metavar="FILE", default=None,
                        help="perform exactly the writes of the approved plan FILE, each "
                             "guarded by its planned resourceVersion; needs --approved-by")
    parser.add_argument("--approved-by", dest="approved_by", metavar="NAME", default=None,
                        help="who approved the plan (recorded in the audit trail)")
    parser.add_argument("--max-age", dest="max_age", metavar="DURATION", default="1h",
                        help="refuse to --apply a plan older than this (default 1h)")
    parser.set_defaults(remediate=True)


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 0 or more")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)")
    return value


def _types(text: str) -> frozenset[str]:
    try:
        return parse_types(text)
    except ValueError as e:
        raise UsageError(f"--types: {e}") from None


def _interval(text: str) -> float:
    try:
        return float(parse_duration(text))
    except ValueError as e:
        raise UsageError(f"--interval: {e}") from None


def run_detect(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    from pytest_kspec.spec import load_spec

    if getattr(args, "apply", None):
        from pytest_kspec.cli.plan import run_apply

        return run_apply(args, out)
    if getattr(args, "approved_by", None):
        raise UsageError("--approved-by goes with --apply FILE (the plan that was approved)")
    planning = bool(getattr(args, "plan", None))
    if planning and args.watch:
        raise UsageError("--plan writes one plan: drop --watch")
    types = _types(args.types) if args.types else None
    try:
        spec = load_spec(args.spec, flag="--spec")
        config = (load_drift_config(args.config, flag="--config") if args.config
                  else DriftConfig.default())
    except SpecError as e:
        print(f"kspec: invalid input:\n{e}", file=sys.stderr)
        return EXIT_INCOMPLETE
    interval = (_interval(args.interval) if args.interval else float(config.interval)
                ) if args.watch else 0.0
    plan = make_plan(spec, types or config.detection.types,
                     resources=config.remediation.resources, waivers=config.waivers)
    remediation = RemediationOptions.resolve(
        config, remediate=getattr(args, "remediate", False),
        dry_run=getattr(args, "dry_run", False) or planning, prune=getattr(args, "prune", False),
        max_deletions=getattr(args, "max_deletions", None),
        allow_auto=not args.no_auto_remediate)
    options = AccessOptions(kubeconfig=args.kubeconfig, context=args.context,
                            sim_state=sim_paths(args.sim, flag="--sim"),
                            sim_version=args.sim_version,
                            kubeconfig_flag="--kubeconfig", sim_flag="--sim")
    if not args.sim:
        try:
            refs = select_clusters(args.context, kubeconfig=args.kubeconfig,
                                   configured=config.clusters, base=Path.cwd(), flag="--context",
                                   kubeconfig_flag="--kubeconfig")
        except ClusterError as e:
            raise UsageError(str(e)) from None
        if len(refs) > 1:
            if args.watch:
                raise UsageError("--watch follows one cluster: run one watch per cluster "
                                 "(--context NAME)")
            return _detect_fleet(refs, plan, options, config, args, out, remediation)
        options = AccessOptions(kubeconfig=refs[0].kubeconfig, context=refs[0].context,
                                kubeconfig_flag="--kubeconfig", sim_flag="--sim")
    elif args.context and ("," in args.context or args.context.strip() == "all"):
        raise UsageError(f"--sim runs one embedded cluster: drop --context {args.context}")
    access = ClusterAccess(options)
    stop = threading.Event()
    if args.watch:
        _stop_on_signals(stop)
    try:
        access.start_simulator()
        if args.watch:
            return _watch(plan, access, config, args, out, remediation, interval, stop)
        return _detect_once(plan, access, config, args, out, remediation)
    finally:
        access.close()


def _watch(plan: Plan, access: ClusterAccess, config: DriftConfig, args: argparse.Namespace,
           out: TextIO, remediation: RemediationOptions, interval: float,
           stop: threading.Event) -> int:
    """Event-driven watch until SIGINT/SIGTERM (exit 0); ``interval`` is the full resync."""
    from pytest_kspec.watch import WatchLoop, WatchOptions

    base = Path.cwd()
    reports = under(base, args.reports)
    history = history_location(getattr(args, "history", None), config.storage, reports,
                               base=base, off=getattr(args, "no_history", False))
    options = WatchOptions(spec_node=spec_node_id(plan.spec.path, base), reports=reports,
                           history=history,
                           interval=interval, quiet=args.quiet,
                           output=Path(args.output) if args.output else None)
    metrics = None
    if getattr(args, "metrics_port", None) is not None:
        from pytest_kspec.metrics import Metrics

        metrics = Metrics()
        try:
            port = metrics.serve(args.metrics_port)
        except OSError as e:
            raise UsageError(f"--metrics-port {args.metrics_port}: cannot listen ({e.strerror})"
                             ) from None
        print(f"kspec: metrics at http://0.0.0.0:{port}/metrics", file=out, flush=True)
    try:
        return WatchLoop(plan, access, config, remediation, options, out, stop,
                         metrics=metrics).run()
    finally:
        if metrics is not None:
            metrics.close()


def _detect_once(plan: Plan, access: ClusterAccess, config: DriftConfig,
                 args: argparse.Namespace, out: TextIO,
                 remediation: RemediationOptions | None = None) -> int:
    # A cluster that cannot be used ends here with one line (exit 2): no per-check errors,
    # no report, no history entry that would read as a 0 % run.
    access.check()
    base = Path.cwd()
    reports = under(base, args.reports)
    history = history_location(getattr(args, "history", None), config.storage, reports,
                               base=base, off=getattr(args, "no_history", False))
    plan_file = getattr(args, "plan", None)
    started = time.monotonic()
    run = Run(plan.spec, plan, access, spec_node=spec_node_id(plan.spec.path, base),
              reports=reports, config=config, remediation=remediation, history=history,
              source="cli", plan_path=Path(plan_file) if plan_file else None,
              probe=getattr(args, "probe", False))
    properties: dict[str, dict[str, str]] = {}
    _evaluate(run, plan, args, out, properties)
    path = run.finish()
    junit = reports / "junit.xml"
    write_junit(run.report, junit, properties)
    if args.output:
        write_json_atomic(Path(args.output), run.report.to_json())
    run.history.archive(reports, [path, junit])
    run.history.close()
    for line in run.summary(path):
        print(line, file=out)
    _export_metrics([run], args, time.monotonic() - started, out)
    counts = run.report.counts()
    if counts.get("error"):
        return EXIT_INCOMPLETE
    return EXIT_DRIFT if counts.get("failed") else EXIT_OK


def _detect_fleet(refs: list[ClusterRef], plan: Plan, options: AccessOptions,
                  config: DriftConfig, args: argparse.Namespace, out: TextIO,
                  remediation: RemediationOptions) -> int:
    """Several clusters (``--context a,b|all``, DriftConfig ``clusters:``): each its own run
    and report, then the fleet report; a cluster that cannot be used errors its own checks.
    Exit 2 when any check errored (or a cluster could not be used), else 1 on any drift."""
    from pytest_kspec.fleet import Fleet, RunSettings

    base = Path.cwd()
    reports = under(base, args.reports)
    plan_file = getattr(args, "plan", None)
    fleet = Fleet(refs, RunSettings(
        plan=plan, spec_node=spec_node_id(plan.spec.path, base), reports=reports,
        config=config, remediation=remediation, source="cli", access=options,
        history=history_location(getattr(args, "history", None), config.storage, reports,
                                 base=base, off=getattr(args, "no_history", False)),
        plan_path=Path(plan_file) if plan_file else None, probe=getattr(args, "probe", False)))
    started = time.monotonic()
    try:
        fleet.check()
        properties: dict[str, dict[str, str]] = {}
        for name, run in fleet.runs.items():
            if run.access.unusable is not None:
                print(f"ERROR   {run.access.unusable}", file=out)
            _evaluate(run, plan, args, out, properties, cluster=name)
        path = fleet.finish()
        assert path is not None
        write_fleet_junit({n: r.report for n, r in fleet.runs.items()},
                          reports / "junit.xml", properties)
        if args.output:
            write_json_atomic(Path(args.output), fleet.to_json())
        fleet.archive([reports / "junit.xml"])
        for run in fleet:
            run.history.close()
        for line in fleet.summary():
            print(line, file=out)
        _export_metrics(list(fleet), args, time.monotonic() - started, out)
    finally:
        for run in fleet:
            run.access.close()
    totals = fleet.to_json()["kspec"]["items"]
    if totals.get("error"):
        return EXIT_INCOMPLETE
    return EXIT_DRIFT if totals.get("failed") else EXIT_OK


def _evaluate(run: Run, plan: Plan, args: argparse.Namespace, out: TextIO,
              properties: dict[str, dict[str, str]], cluster: str = "") -> None:
    """Judge (and fix, when asked) every target of ``plan`` in ``run``, printing each."""
    quiet_errors = run.access.unusable is not None  # said once above, not per check
    for target in plan.targets:
        outcome = run.evaluate(target)
        run.remediate(outcome)  # only when asked for this type; records every attempt
        record = run.record(outcome)
        run.report.add(record)
        properties[record.node_id] = dict(
            ([("kspec.cluster", cluster)] if cluster else []) + target.properties()
            + drift_properties(outcome.events) + remediation_properties(outcome.events))
        if quiet_errors or (args.quiet and outcome.status == "passed"):
            continue
        print(f"{outcome.status.upper():7} {record.node_id}", file=out)
        if outcome.status != "passed" and not args.quiet:
            for line in outcome.text.splitlines():
                print(f"        {line}", file=out)
            for line in remediation_text(outcome.events).splitlines():
                print(f"        fix: {line}", file=out)


def _export_metrics(runs: list[Run], args: argparse.Namespace, seconds: float,
                    out: TextIO) -> None:
    """``--metrics-file`` / ``--pushgateway``: the run's metrics; a failure is a line, not an
    exit code (detection already succeeded)."""
    target = getattr(args, "metrics_file", None)
    gateway = getattr(args, "pushgateway", None)
    if not target and not gateway:
        return
    from pytest_kspec.metrics import Metrics

    metrics = Metrics(clusters=len(runs) > 1)  # several clusters: a cluster label
    for run in runs:
        if run.report.items:
            metrics.record_run(run, seconds)
    if target:
        try:
            metrics.write_textfile(Path(target))
            print(f"kspec: metrics written to {target}", file=out)
        except OSError as e:
            print(f"kspec: metrics not written to {target}: {e.strerror}", file=out)
    if gateway:
        try:
            metrics.push(gateway, grouping={"spec": runs[0].spec.name})
            print(f"kspec: metrics pushed to {host_of(gateway)}", file=out)
        except OSError as e:
            print(f"kspec: metrics not pushed to {host_of(gateway)}: {e}", file=out)


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
