"""``kspec drift plan show`` and ``kspec drift remediate --apply``: review and apply a plan.

Exit codes: ``plan show`` 0 (plan intact) or 2 (unreadable or edited); ``--apply`` 0 every
write verified, 1 some write skipped (changed since planned) or failed, 2 refused (edited,
another spec or cluster, too old) or could not start.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from pytest_kspec.cluster import AccessOptions, ClusterAccess, sim_paths
from pytest_kspec.detect import make_plan
from pytest_kspec.errors import SpecError, UsageError
from pytest_kspec.history import history_location
from pytest_kspec.paths import spec_node_id
from pytest_kspec.remediate import (
    PlanApplier,
    RemediationPlan,
    apply_line,
    check_plan,
    load_plan,
    plan_age,
)
from pytest_kspec.run import Run
from pytest_kspec.spec import DriftConfig, load_drift_config, load_spec, parse_duration

EXIT_OK, EXIT_CHANGED, EXIT_INCOMPLETE = 0, 1, 2
_SHORT = 60


def add_show_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("plan", metavar="FILE", help="plan written by kspec drift remediate "
                                                      "--plan FILE or pytest --kspec-plan FILE")
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="readable text (default) or the plan's JSON without object bodies")


def run_show(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    plan = load_plan(args.plan)  # PlanError (edited, unreadable): one line, exit 2
    if args.format == "json":
        print(json.dumps(plan.summary(args.plan), indent=2), file=out)
        return EXIT_OK
    print(plan_text(plan, args.plan), file=out)
    return EXIT_OK


def _short(value: Any) -> str:
    if value is None:
        return "(absent)"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= _SHORT else text[: _SHORT - 3] + "..."


def plan_text(plan: RemediationPlan, source: str, now: float | None = None) -> str:
    """The plan for a reviewer: identity, digest, each write with its guard and field diff."""
    spec, cluster = plan.spec, plan.cluster
    lines = [f"remediation plan {source}",
             f"  digest   {plan.digest} (matches its content)",
             f"  created  {plan.created} ({plan_age(plan, now)} ago) by kspec "
             f"{plan.kspec_version}",
             f"  spec     {spec.get('name')} {spec.get('version')} (sha256 "
             f"{str(spec.get('hash'))[:12]}) from {spec.get('path')}",
             f"  cluster  {cluster.get('server')} (context {cluster.get('context') or '-'}, "
             f"kube-system uid {cluster.get('uid') or 'unknown'})",
             f"  {len(plan.writes)} write(s), {len(plan.manual)} need a person, "
             f"{len(plan.unplanned)} could not be planned", ""]
    if plan.writes:
        rows = [("#", "ACTION", "RESOURCE", "PLANNED RV", "ITEM")]
        for w in plan.writes:
            guard = w.get("resourceVersion") or ("(absent)" if w["action"] == "create" else "-")
            rows.append((str(w.get("id", "")), str(w["action"]), str(w.get("resource", "")),
                         str(guard), "::".join(str(w.get("node_id", "")).split("::")[-2:])))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for n, row in enumerate(rows):
            lines.append("  " + "  ".join(c.ljust(wd) for c, wd in zip(row, widths,
                                                                         strict=True)).rstrip())
            write = plan.writes[n - 1] if n else None
            for change in (write or {}).get("changes") or []:
                lines.append(f"      {change['path']}: {_short(change.get('from'))} → "
                             f"{_short(change.get('to'))}")
    else:
        lines.append("  no writes: nothing to apply")
    if plan.manual:
        lines += ["", "needs a person (not in the plan):"]
        lines += [f"  {m['resource']}: {m.get('reason', '')}" for m in plan.manual]
    if plan.unplanned:
        lines += ["", "could not be planned:"]
        lines += [f"  {u['resource']}: {u.get('error', '')}" for u in plan.unplanned]
    lines += ["", f"apply with: kspec drift remediate --apply {source} --approved-by NAME "
                  f"--spec {spec.get('path')} (refused after --max-age, default 1h)"]
    return "\n".join(lines)


def _max_age(text: str) -> float:
    try:
        return float(parse_duration(text))
    except ValueError as e:
        raise UsageError(f"--max-age: {e}") from None


def run_apply(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Apply the approved plan ``args.apply``: refusals raise (exit 2), else 0 or 1."""
    out = out or sys.stdout
    if not (args.approved_by or "").strip():
        raise UsageError("--apply needs --approved-by NAME: who reviewed and approved the "
                         "plan (recorded in the audit trail with the plan's digest)")
    if args.plan or args.dry_run:
        raise UsageError("--apply performs an approved plan: drop --plan/--dry-run")
    max_age = _max_age(args.max_age)
    try:
        spec = load_spec(args.spec)
        config = load_drift_config(args.config) if args.config else DriftConfig.default()
    except SpecError as e:
        print(f"kspec: invalid input:\n{e}", file=sys.stderr)
        return EXIT_INCOMPLETE
    plan = load_plan(args.apply)
    access = ClusterAccess(AccessOptions(kubeconfig=args.kubeconfig, context=args.context,
                                         sim_state=sim_paths(args.sim),
                                         sim_version=args.sim_version))
    history = history_location(args.history, config.storage, Path(args.reports),
                               off=args.no_history)
    spec_node = spec_node_id(spec.path, Path.cwd())
    try:
        access.start_simulator()
        run = Run(spec, make_plan(spec, ()), access, spec_node=spec_node,
                  reports=Path(args.reports), config=config, history=history, source="cli")
        try:
            spec_id, cluster_id = run.identity()
            check_plan(plan, source=args.apply, spec=spec_id, cluster=cluster_id,
                       now=time.time(), max_age=max_age)
            attempts = PlanApplier(access.cluster(), plan,
                                   approved_by=args.approved_by.strip()).apply()
            for attempt in attempts:
                run.recorder.record(attempt)
                print(_attempt_line(attempt), file=out)
        finally:
            run.history.close()
    finally:
        access.close()
    print(f"kspec: {apply_line(attempts, plan, args.approved_by.strip())}", file=out)
    if run.history.error:
        print(f"kspec: audit trail not updated: {run.history.error}", file=out)
    if any(a["status"] != "verified" for a in attempts):
        print("kspec: not every write was made as planned: run kspec drift remediate --plan "
              "again to plan the rest", file=out)
        return EXIT_CHANGED
    return EXIT_OK


def _attempt_line(attempt: Mapping[str, Any]) -> str:
    head = (f"{str(attempt['status']).upper():8} #{attempt.get('plan_write')} "
            f"{attempt['action']} {attempt['resource']}")
    return f"{head}: {attempt['error']}" if attempt.get("error") else head
