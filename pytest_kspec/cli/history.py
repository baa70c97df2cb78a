"""``kspec drift history``: what drifted when, for how long, what was fixed; ``--verify`` the
audit trail.

Exit codes: 0 shown (or the audit trail is intact), 1 ``--verify`` found the chain broken,
2 no history there or bad options.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from pytest_kspec.detect import CUSTOM
from pytest_kspec.errors import KspecError, UsageError
from pytest_kspec.history import (
    KEY_ENV,
    EventRow,
    FleetRow,
    HistoryStore,
    Location,
    audit_key,
    fleet,
    history_location,
    iso,
)
from pytest_kspec.spec import DriftConfig, load_drift_config, parse_duration, parse_types

EXIT_OK, EXIT_BROKEN = 0, 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reports", metavar="DIR", default="reports",
                        help="reports folder holding history.db (default reports)")
    parser.add_argument("--history", metavar="FILE|URL", default=None,
                        help="history database: a SQLite file or a postgresql:// URL (default: "
                             "the --config DriftConfig's storage, else <reports>/history.db)")
    parser.add_argument("--config", metavar="FILE", default=None,
                        help="DriftConfig whose storage holds the history (e.g. a shared "
                             "PostgreSQL database with its passwordEnv or passwordFile)")
    parser.add_argument("--cluster", metavar="NAME|all", default=None,
                        help="only this cluster (its context or clusters: name, or its "
                             "uid:/server: identity); all (the default) shows every cluster")
    parser.add_argument("--fleet", action="store_true",
                        help="one line per cluster: last run, pass %%, open drift, oldest "
                             "open drift, trend")
    parser.add_argument("--resource", metavar="KIND/NAME", default=None,
                        help="only this resource, e.g. clusterpolicy/require-run-as-non-root "
                             "or Pod/shop/web (case-insensitive prefix)")
    parser.add_argument("--type", metavar="TYPE", default=None,
                        help="only these drift types: policy,compliance,configuration,resource,"
                             "custom (users' own checks)")
    parser.add_argument("--since", metavar="DURATION", default=None,
                        help="only what was seen in the last DURATION (30m, 12h, 7d)")
    parser.add_argument("--format", choices=("table", "json"), default="table",
                        help="readable table (default) or JSON")
    parser.add_argument("--verify", action="store_true",
                        help=f"check the hash-chained audit trail of every cluster (or of "
                             f"--cluster; HMAC with ${KEY_ENV} when set); exit 1 naming the "
                             "first edited, removed or reordered record")


def _location(args: argparse.Namespace) -> Location:
    config = load_drift_config(args.config) if args.config else DriftConfig.default()
    location = history_location(args.history, config.storage, Path(args.reports))
    assert location is not None
    if not location.is_postgres and not Path(location.target).is_file():
        raise UsageError(f"{location}: no history there (runs of pytest --kspec-spec or kspec "
                         "drift detect write it; pass --reports DIR, --history FILE|URL or "
                         "--config FILE)")
    return location


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    since = None
    if args.since:
        try:
            since = time.time() - parse_duration(args.since)
        except ValueError as e:
            raise UsageError(f"--since: {e}") from None
    try:
        types = _types(args.type) if args.type else None
    except ValueError as e:
        raise UsageError(f"--type: {e}") from None
    cluster = None if args.cluster in (None, "all") else args.cluster
    with _location(args).open(key=audit_key()) as store:
        if cluster is not None and not store.scopes(cluster):
            known = ", ".join(n or i for i, n in store.clusters()) or "none yet"
            raise UsageError(f"--cluster: no cluster {cluster!r} in {store.where} (known: "
                             f"{known}; or pass all)")
        if args.verify:
            return _verify(store, cluster, args.format, out)
        if args.fleet:
            rows = fleet(store, cluster)
            if args.format == "json":
                print(json.dumps({"clusters": [r.to_json() for r in rows]}, indent=2),
                      file=out)
            else:
                _fleet_table(rows, out)
            return EXIT_OK
        events = [e for e in store.events(resource=args.resource, since=since, cluster=cluster)
                  if types is None or e.type in types]
        runs = store.runs(since=since, cluster=cluster)
        fixes = [r for r in store.remediations(since=since, cluster=cluster)
                 if not args.resource or str(r["resource"]).lower().startswith(
                     args.resource.lower())]
        many = len(store.clusters()) > 1 and cluster is None
    if args.format == "json":
        print(json.dumps({"runs": runs, "events": [e.to_json() for e in events],
                          "remediations": fixes}, indent=2), file=out)
        return EXIT_OK
    _table(runs, events, fixes, out, clusters=many)
    return EXIT_OK


def _verify(store: HistoryStore, cluster: str | None, fmt: str, out: TextIO) -> int:
    try:
        result = store.verify(cluster)
    except KspecError as e:
        raise UsageError(str(e)) from None
    if fmt == "json":
        print(json.dumps({"ok": result.ok, "checked": result.checked,
                          "chains": result.chains, "chain": result.chain,
                          "problem": result.problem or None, "record": result.seq}),
              file=out)
    elif result.ok:
        print(f"audit trail intact: {result.checked} record(s) verified in "
              f"{result.chains} chain(s)", file=out)
    else:
        print(f"audit trail broken: {result.problem}", file=out)
    return EXIT_OK if result.ok else EXIT_BROKEN


def _fleet_table(rows: list[FleetRow], out: TextIO) -> None:
    if not rows:
        print("no runs recorded", file=out)
        return
    now = time.time()
    header = ("CLUSTER", "LAST RUN", "PASS %", "OPEN DRIFT", "OLDEST OPEN", "TREND", "RUNS")
    lines = [(r.name or r.cluster, iso(r.last_finished), _rate(r),
              str(r.open_drift),
              f"{iso(r.oldest_open)} ({_duration(now - r.oldest_open)} ago)"
              if r.oldest_open else "-",
              f"{r.trend} ({r.change_pp:+.1f} pp)", str(r.runs)) for r in rows]
    _print_rows(header, lines, out)
    print(f"{len(rows)} cluster(s); {sum(r.open_drift > 0 for r in rows)} with open drift",
          file=out)


def _rate(row: FleetRow) -> str:
    """Pass % of the latest runs; ``error`` when they could evaluate no check."""
    if row.pass_rate is not None:
        return f"{row.pass_rate:.1f}"
    return f"error ({row.errors} checks)" if row.errors else "-"


def _print_rows(header: Sequence[str], rows: Sequence[Sequence[str]], out: TextIO) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(),
              file=out)


def _types(text: str) -> frozenset[str]:
    """``--type`` value: the drift types, plus ``custom`` for users' own checks."""
    words = {w.strip().lower() for w in text.split(",") if w.strip()}
    custom = frozenset({CUSTOM}) if CUSTOM in words else frozenset()
    rest = ",".join(sorted(words - {CUSTOM}))
    return (parse_types(rest) if rest else frozenset()) | custom


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 86_400:
        return f"{seconds // 86_400}d{(seconds % 86_400) // 3600}h"
    if seconds >= 3600:
        return f"{seconds // 3600}h{(seconds % 3600) // 60}m"
    return f"{seconds // 60}m{seconds % 60}s"


def _table(runs: list[dict[str, Any]], events: list[EventRow], fixes: list[dict[str, Any]],
           out: TextIO, *, clusters: bool = False) -> None:
    if runs:
        print(f"{len(runs)} run(s) from {runs[0]['finished']} to {runs[-1]['finished']}; "
              f"latest: {runs[-1]['passed']} passed, {runs[-1]['failed']} drifted, "
              f"{runs[-1]['error']} error(s)", file=out)
    else:
        print("no runs in that window", file=out)
    if not events:
        print("no drift recorded", file=out)
    else:
        header = ["FIRST SEEN", "LAST SEEN", "STATE", "SEVERITY", "DRIFT", "ITEM", "RESOURCE",
                  "EPISODES"]
        if clusters:
            header.insert(0, "CLUSTER")
        rows: list[list[str]] = []
        for e in events:
            state = "active" if e.active else (
                f"resolved after {_duration(e.time_to_resolve)}" if e.time_to_resolve
                is not None else "resolved")
            seen = f"{e.episodes}x" + (" flapping" if e.flapping else "")
            row = [iso(e.first_seen), iso(e.last_seen), state, e.severity, e.drift,
                   e.key, e.resource, seen]
            rows.append([e.cluster_name or e.cluster, *row] if clusters else row)
        _print_rows(header, rows, out)
    if fixes:
        print(f"\n{len(fixes)} remediation attempt(s):", file=out)
        for f in fixes:
            print(f"  {f['time']}  {f['action']:<7} {f['status']:<16} {f['resource']}", file=out)
