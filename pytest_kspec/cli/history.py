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
from pathlib import Path
from typing import Any, TextIO

from pytest_kspec.errors import UsageError
from pytest_kspec.history import DB_NAME, KEY_ENV, EventRow, HistoryStore, audit_key, iso
from pytest_kspec.spec import parse_duration, parse_types

EXIT_OK, EXIT_BROKEN = 0, 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reports", metavar="DIR", default="reports",
                        help="reports folder holding history.db (default reports)")
    parser.add_argument("--history", metavar="FILE", default=None,
                        help="history database (default <reports>/history.db)")
    parser.add_argument("--resource", metavar="KIND/NAME", default=None,
                        help="only this resource, e.g. clusterpolicy/require-run-as-non-root "
                             "or Pod/shop/web (case-insensitive prefix)")
    parser.add_argument("--type", metavar="TYPE", default=None,
                        help="only these drift types: policy,compliance,configuration,resource")
    parser.add_argument("--since", metavar="DURATION", default=None,
                        help="only what was seen in the last DURATION (30m, 12h, 7d)")
    parser.add_argument("--format", choices=("table", "json"), default="table",
                        help="readable table (default) or JSON")
    parser.add_argument("--verify", action="store_true",
                        help=f"check the hash-chained audit trail (HMAC with ${KEY_ENV} when "
                             "set); exit 1 naming the first edited, removed or reordered record")


def _path(args: argparse.Namespace) -> Path:
    path = Path(args.history) if args.history else Path(args.reports) / DB_NAME
    if not path.is_file():
        raise UsageError(f"{path}: no history there (runs of pytest --kspec-spec or kspec drift "
                         "detect write it; pass --reports DIR or --history FILE)")
    return path


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    since = None
    if args.since:
        try:
            since = time.time() - parse_duration(args.since)
        except ValueError as e:
            raise UsageError(f"--since: {e}") from None
    try:
        types = parse_types(args.type) if args.type else None
    except ValueError as e:
        raise UsageError(f"--type: {e}") from None
    with HistoryStore(_path(args), key=audit_key()) as store:
        if args.verify:
            result = store.verify()
            if args.format == "json":
                print(json.dumps({"ok": result.ok, "checked": result.checked,
                                  "problem": result.problem or None, "record": result.seq}),
                      file=out)
            elif result.ok:
                print(f"audit trail intact: {result.checked} record(s) verified", file=out)
            else:
                print(f"audit trail broken: {result.problem}", file=out)
            return EXIT_OK if result.ok else EXIT_BROKEN
        events = [e for e in store.events(resource=args.resource, since=since)
                  if types is None or e.type in types]
        runs = store.runs(since=since)
        fixes = [r for r in store.remediations(since=since)
                 if not args.resource or str(r["resource"]).lower().startswith(
                     args.resource.lower())]
    if args.format == "json":
        print(json.dumps({"runs": runs, "events": [e.to_json() for e in events],
                          "remediations": fixes}, indent=2), file=out)
        return EXIT_OK
    _table(runs, events, fixes, out)
    return EXIT_OK


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 86_400:
        return f"{seconds // 86_400}d{(seconds % 86_400) // 3600}h"
    if seconds >= 3600:
        return f"{seconds // 3600}h{(seconds % 3600) // 60}m"
    return f"{seconds // 60}m{seconds % 60}s"


def _table(runs: list[dict[str, Any]], events: list[EventRow], fixes: list[dict[str, Any]],
           out: TextIO) -> None:
    if runs:
        print(f"{len(runs)} run(s) from {runs[0]['finished']} to {runs[-1]['finished']}; "
              f"latest: {runs[-1]['passed']} passed, {runs[-1]['failed']} drifted, "
              f"{runs[-1]['error']} error(s)", file=out)
    else:
        print("no runs in that window", file=out)
    if not events:
        print("no drift recorded", file=out)
    else:
        header = ("FIRST SEEN", "LAST SEEN", "STATE", "SEVERITY", "DRIFT", "ITEM", "RESOURCE",
                  "EPISODES")
        rows = []
        for e in events:
            state = "active" if e.active else (
                f"resolved after {_duration(e.time_to_resolve)}" if e.time_to_resolve
                is not None else "resolved")
            seen = f"{e.episodes}x" + (" flapping" if e.flapping else "")
            rows.append((iso(e.first_seen), iso(e.last_seen), state, e.severity, e.drift,
                         e.key, e.resource, seen))
        widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(),
                  file=out)
    if fixes:
        print(f"\n{len(fixes)} remediation attempt(s):", file=out)
        for f in fixes:
            print(f"  {f['time']}  {f['action']:<7} {f['status']:<16} {f['resource']}", file=out)
