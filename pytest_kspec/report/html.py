"""HTML pieces for the pytest-html report: per-item extras and the pass % trend chart.

Everything is plain, escaped HTML and inline SVG: no script, no stylesheet or font from a
CDN, so the self-contained report opens offline. Extras are pytest-html's ``extras.html``
dicts (``name``, ``format_type``, ``content``, ``mime_type``, ``extension``), built here
without importing pytest-html so the module stays usable on its own.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

import yaml

CHART_WIDTH, CHART_HEIGHT, CHART_PAD = 640, 180, 32
_CELL = 'style="border:1px solid #ccc;padding:2px 6px;vertical-align:top"'
_PRE = 'style="margin:0;white-space:pre-wrap;font-size:12px"'
_UL = '<ul style="margin:0;padding-left:16px">'


def html_extra(content: str, name: str = "kspec") -> dict[str, str | None]:
    """A pytest-html ``html`` extra."""
    return {"name": name, "format_type": "html", "content": content, "mime_type": None,
            "extension": None}


def _value(value: Any) -> str:
    if value is None:
        return "<em>absent</em>"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return escape(text if len(text) <= 200 else text[:197] + "...")


def _yaml(value: Any) -> str:
    if value is None:
        return "(absent)\n"
    return yaml.safe_dump(value, sort_keys=False, default_flow_style=False)


def diff_table(changes: Sequence[Mapping[str, Any]]) -> str:
    """The field diff of a modified policy: path, expected, actual, weakening, who changed it."""
    rows = []
    for c in changes:
        who = escape(str(c.get("manager") or ""))
        if c.get("time"):
            who += f" at {escape(str(c['time']))}"
        weak = "weakens" if c.get("weakening") else ""
        rows.append(f"<tr><td {_CELL}><code>{escape(str(c.get('path', '')))}</code></td>"
                    f"<td {_CELL}>{_value(c.get('expected'))}</td>"
                    f"<td {_CELL}>{_value(c.get('actual'))}</td>"
                    f"<td {_CELL}>{weak}</td><td {_CELL}>{who}</td></tr>")
    head = "".join(f"<th {_CELL}>{h}</th>" for h in
                   ("field", "expected", "actual", "enforcement", "changed by"))
    return (f'<table class="kspec-diff" style="border-collapse:collapse;margin:4px 0">'
            f"<tr>{head}</tr>{''.join(rows)}</table>")


def expected_actual(event: Mapping[str, Any]) -> str:
    """Expected and actual side by side, as YAML."""
    return (f'<table class="kspec-yaml" style="border-collapse:collapse;margin:4px 0"><tr>'
            f"<th {_CELL}>expected</th><th {_CELL}>actual</th></tr><tr>"
            f"<td {_CELL}><pre {_PRE}>{escape(_yaml(event.get('expected')))}</pre></td>"
            f"<td {_CELL}><pre {_PRE}>{escape(_yaml(event.get('actual')))}</pre></td></tr>"
            "</table>")


def remediation_block(events: Sequence[Mapping[str, Any]]) -> str:
    """What remediation did per resource: action, status, when, why not."""
    rows = []
    for e in events:
        rem = e.get("remediation")
        if not isinstance(rem, Mapping):
            continue
        why = escape(str(rem.get("error") or ""))
        dry = " (dry run)" if rem.get("dry_run") else ""
        rows.append(f"<tr><td {_CELL}>{escape(str(e.get('resource', '')))}</td>"
                    f"<td {_CELL}>{escape(str(rem.get('action', '')))}{dry}</td>"
                    f'<td {_CELL} class="kspec-remediation-{escape(str(rem.get("status")))}">'
                    f"{escape(str(rem.get('status', '')))}</td>"
                    f"<td {_CELL}>{escape(str(rem.get('timestamp') or ''))}</td>"
                    f"<td {_CELL}>{why}</td></tr>")
    if not rows:
        return ""
    head = "".join(f"<th {_CELL}>{h}</th>" for h in
                   ("resource", "action", "status", "time", "note"))
    return (f'<div class="kspec-remediation"><h4>Remediation</h4><table style="border-collapse:'
            f'collapse">{"<tr>" + head + "</tr>"}{"".join(rows)}</table></div>')


def item_extras(record: Mapping[str, Any], *, phase: str = "call") -> list[dict[str, str | None]]:
    """pytest-html extras for one item's report record: per drift event a header, the field
    diff table and expected/actual YAML (call/setup); the remediation result (teardown)."""
    events = [e for e in record.get("events") or [] if isinstance(e, Mapping)]
    if phase == "teardown":
        block = remediation_block(events)
        return [html_extra(block, "kspec remediation")] if block else []
    parts = []
    for event in events[:20]:
        head = (f"<h4>{escape(str(event.get('resource', '')))}: "
                f"{escape(str(event.get('drift', '')))} ({escape(str(event.get('severity')))})"
                "</h4>")
        body = escape(str(event.get("message") or ""))
        if event.get("first_seen"):
            body += f" <small>first seen {escape(str(event['first_seen']))}</small>"
        waiver = event.get("waiver")
        if isinstance(waiver, Mapping):
            body += (f" <strong>waived</strong> by {escape(str(waiver.get('id')))} until "
                     f"{escape(str(waiver.get('expires')))}: {escape(str(waiver.get('reason')))}"
                     f" (owner {escape(str(waiver.get('owner')))})")
        piece = head + (f"<p>{body}</p>" if body else "")
        if event.get("changes"):
            piece += diff_table(event["changes"])
        if event.get("expected") is not None or event.get("actual") is not None:
            piece += expected_actual(event)
        parts.append(f'<div class="kspec-event">{piece}</div>')
    if len(events) > 20:
        parts.append(f"<p>... and {len(events) - 20} more events (see drift-report.json)</p>")
    return [html_extra("".join(parts), "kspec drift")] if parts else []


def trend_svg(rates: Sequence[float], *, width: int = CHART_WIDTH,
              height: int = CHART_HEIGHT) -> str:
    """Pass % of the last runs (oldest left) as an inline SVG line chart with 0-100 % axes."""
    pad = CHART_PAD
    inner_w, inner_h = width - 2 * pad, height - 2 * pad
    n = len(rates)

    def xy(i: int, v: float) -> tuple[float, float]:
        x = pad + (inner_w * i / (n - 1) if n > 1 else inner_w / 2)
        return round(x, 1), round(pad + inner_h * (1 - max(0.0, min(v, 100.0)) / 100), 1)

    grid = []
    for pct in (0, 50, 100):
        y = pad + inner_h * (1 - pct / 100)
        grid.append(f'<line x1="{pad}" y1="{y}" x2="{width - pad}" y2="{y}" stroke="#ddd"/>'
                    f'<text x="{pad - 4}" y="{y + 4}" font-size="10" text-anchor="end">'
                    f"{pct}%</text>")
    points = [xy(i, v) for i, v in enumerate(rates)]
    line = (f'<polyline fill="none" stroke="#2a7ae2" stroke-width="2" points="'
            f'{" ".join(f"{x},{y}" for x, y in points)}"/>') if n > 1 else ""
    dots = "".join(f'<circle cx="{x}" cy="{y}" r="3" fill="#2a7ae2"><title>run {i + 1}: '
                   f"{v:.1f}%</title></circle>" for i, ((x, y), v) in enumerate(zip(
                       points, rates, strict=True)))
    label = (f'<text x="{width / 2}" y="{height - 6}" font-size="11" text-anchor="middle">'
             f"pass % over the last {n} run(s), oldest left</text>")
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="kspec-trend" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="pass % trend">{"".join(grid)}{line}{dots}{label}</svg>')


def summary_html(trend: Mapping[str, Any] | None) -> str:
    """The report's summary section: trend direction, its rule, the chart, pass % per day."""
    if not trend:
        return ""
    rates = [float(v) for v in trend.get("pass_rates") or []]
    days = "".join(f"<tr><td {_CELL}>{escape(str(d['day']))}</td><td {_CELL}>{d['runs']}</td>"
                   f"<td {_CELL}>{_percent(d.get('pass_rate'))}</td>"
                   f"<td {_CELL}>{int(d.get('errors') or 0)}</td></tr>"
                   for d in trend.get("daily") or [])
    change = float(trend.get("change_pp") or 0.0)
    return (f'<div class="kspec-trend-summary"><h3>kspec trend: '
            f"{escape(str(trend.get('direction')))} ({change:+.1f} pp)</h3>"
            f"<p><small>{escape(str(trend.get('rule', '')))}</small></p>{trend_svg(rates)}"
            f'<table style="border-collapse:collapse"><tr><th {_CELL}>day (UTC)</th>'
            f"<th {_CELL}>runs</th><th {_CELL}>pass %</th><th {_CELL}>not evaluated</th></tr>"
            f"{days}</table></div>")


def _percent(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.1f}%"


def plan_html(plan: Mapping[str, Any] | None) -> str:
    """The remediation plan written this run, as a table a reviewer reads: each write, the
    resourceVersion that guards it, and its field diff; the digest and what it is bound to."""
    if not plan:
        return ""
    rows = []
    for w in plan.get("writes") or []:
        guard = w.get("resourceVersion") or ("(absent)" if w.get("action") == "create" else "")
        changes = "".join(f"<li><code>{escape(str(c.get('path')))}</code>: "
                          f"{_value(c.get('from'))} &rarr; {_value(c.get('to'))}</li>"
                          for c in w.get("changes") or [])
        rows.append(f"<tr><td {_CELL}>{escape(str(w.get('id', '')))}</td>"
                    f"<td {_CELL}>{escape(str(w.get('action', '')))}</td>"
                    f"<td {_CELL}>{escape(str(w.get('resource', '')))}</td>"
                    f"<td {_CELL}>{escape(str(guard))}</td>"
                    f"<td {_CELL}>{_UL + changes + '</ul>' if changes else ''}</td></tr>")
    head = "".join(f"<th {_CELL}>{h}</th>" for h in
                   ("#", "action", "resource", "planned resourceVersion", "changes"))
    spec, cluster = plan.get("spec") or {}, plan.get("cluster") or {}
    others = "".join(f"<li>{escape(str(m.get('resource')))}: needs a person "
                     f"({escape(str(m.get('reason') or ''))})</li>"
                     for m in plan.get("manual") or [])
    others += "".join(f"<li>{escape(str(u.get('resource')))}: could not be planned "
                      f"({escape(str(u.get('error') or ''))})</li>"
                      for u in plan.get("unplanned") or [])
    table = (f'<table style="border-collapse:collapse"><tr>{head}</tr>{"".join(rows)}</table>'
             if rows else "<p>no writes: nothing to apply</p>")
    return (f'<div class="kspec-plan"><h3>kspec remediation plan: '
            f"{len(plan.get('writes') or [])} write(s)</h3>"
            f"<p><small>{escape(str(plan.get('path', '')))} &middot; digest "
            f"<code>{escape(str(plan.get('digest', '')))}</code> &middot; created "
            f"{escape(str(plan.get('created', '')))} &middot; spec "
            f"{escape(str(spec.get('name')))} {escape(str(spec.get('version')))} &middot; "
            f"cluster {escape(str(cluster.get('server')))}</small></p>{table}"
            f"{'<ul>' + others + '</ul>' if others else ''}"
            f"<p><small>apply with <code>kspec drift remediate --apply "
            f"{escape(str(plan.get('path', '')))} --approved-by NAME</code></small></p></div>")


def waivers_html(waivers: Sequence[Mapping[str, Any]] | None) -> str:
    """The DriftConfig's waivers: what each covers, why, who owns it, until when, its state
    (in force, expiring within 7 days, expired) and how many events it waived this run."""
    if not waivers:
        return ""
    rows = []
    for w in waivers:
        covers = f"check {w['check']}" if w.get("check") else f"policy {w.get('policy')}"
        selector = ", ".join(f"{k}={v}" for k, v in (w.get("resources") or {}).items())
        state = str(w.get("state", ""))
        if state == "expiring":
            state += f" (in {w.get('days_left')} day(s))"
        rows.append("<tr>" + "".join(f"<td {_CELL}>{escape(str(v))}</td>" for v in (
            w.get("id"), covers, selector or "all", w.get("reason"), w.get("owner"),
            w.get("expires"), state, w.get("waived_events", 0))) + "</tr>")
    head = "".join(f"<th {_CELL}>{h}</th>" for h in (
        "waiver", "covers", "resources", "reason", "owner", "expires", "state", "waived"))
    return (f'<div class="kspec-waivers"><h3>kspec waivers</h3><table style="border-collapse:'
            f'collapse"><tr>{head}</tr>{"".join(rows)}</table></div>')


_STATUS_COLOUR = {"passed": "#d7f5dd", "failed": "#f8d0d0", "error": "#f5e0b8",
                  "waived": "#e4e4f7", "skipped": "#eeeeee"}


def fleet_matrix_html(fleet: Mapping[str, Any], reports: Mapping[str, Any]) -> str:
    """A fleet run's cluster-by-check matrix: one column per cluster (its standing, pass % and
    highest drift severity on top), one row per check, each cell that check's result there
    (with its first line on hover). ``fleet`` is the fleet report, ``reports`` each cluster's
    :class:`~pytest_kspec.report.model.RunReport`."""
    clusters = [c for c in fleet.get("clusters") or [] if c.get("name") in reports]
    if not clusters:
        return ""
    rows: dict[str, dict[str, Any]] = {}
    for cluster in clusters:
        for record in reports[cluster["name"]].ordered():
            key = f"{record.type}::{record.id}"
            rows.setdefault(key, {})[cluster["name"]] = record
    head = f"<th {_CELL}>check</th>" + "".join(
        f"<th {_CELL}>{escape(str(c['name']))}<br><small>{escape(str(c.get('status')))}, "
        f"{_percent(c.get('pass_rate'))} passed"
        + (f", {escape(str(c['drift']['severity']))} drift" if c["drift"].get("detected")
           else "") + "</small></th>" for c in clusters)
    body = []
    for key, cells in rows.items():
        tds = []
        for cluster in clusters:
            record = cells.get(cluster["name"])
            if record is None:
                tds.append(f"<td {_CELL}>&ndash;</td>")
                continue
            colour = _STATUS_COLOUR.get(record.status, "#ffffff")
            tds.append(f'<td {_CELL[:-1]};background:{colour}" class="kspec-{record.status}" '
                       f'title="{escape(record.message)}">{escape(record.status)}</td>')
        body.append(f"<tr><td {_CELL}><code>{escape(key)}</code></td>{''.join(tds)}</tr>")
    errors = "".join(f"<li>{escape(str(c['name']))}: {escape(str(c['error']))}</li>"
                     for c in clusters if c.get("error"))
    return (f'<div class="kspec-fleet"><h3>kspec fleet: {len(clusters)} clusters, '
            f"{len(fleet.get('drift', {}).get('clusters') or [])} with drift</h3>"
            + (f"<ul>{errors}</ul>" if errors else "")
            + f'<table class="kspec-matrix" style="border-collapse:collapse"><tr>{head}</tr>'
            f"{''.join(body)}</table></div>")
