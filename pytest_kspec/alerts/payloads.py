"""The messages each channel type receives, built from a :class:`Notice` and nothing else.

Generic webhook payload (``kspec.dev/v1 DriftAlert``, documented in docs/monitoring.md)::

    {"apiVersion": "kspec.dev/v1", "kind": "DriftAlert", "title": "...",
     "spec": {"name", "version"}, "cluster": {"server", "context"},
     "run": {"id", "source", "time"},
     "counts": {"new", "reminder", "resolved", "open", "bySeverity": {...}},
     "events": [{"status": "new|reminder|resolved", "type", "severity", "resource", "drift",
                 "check", "node_id", "message", "first_seen", "remediation"}],
     "notices": ["remediation loop: ..."], "truncated": 0}

Every string goes through the channel's :class:`~pytest_kspec.alerts.redact.Redactor`.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from email.message import EmailMessage
from typing import Any

from pytest_kspec.alerts.model import AlertEvent, Batch, Notice, severity_rank
from pytest_kspec.alerts.redact import Redactor

MAX_EVENTS = 100
"""Most events listed in one generic payload or e-mail (counts always cover all)."""
SLACK_LINES = 10
_PD_SEVERITY = {"critical": "critical", "high": "error", "medium": "warning",
                "warning": "warning", "low": "info", "info": "info"}


def _listed(notice: Notice) -> list[tuple[str, AlertEvent]]:
    rows = [("new", e) for e in notice.new] + [("reminder", e) for e in notice.reminders]
    rows.sort(key=lambda r: -severity_rank(r[1].severity))
    return rows + [("resolved", e) for e in notice.resolved]


def event_json(status: str, event: AlertEvent) -> dict[str, Any]:
    return {"status": status, "type": event.type, "severity": event.severity,
            "resource": event.resource, "drift": event.drift, "check": event.check or None,
            "node_id": event.node_id, "message": event.message,
            "first_seen": event.first_seen, "remediation": event.remediation}


def cluster_name(batch: Batch) -> str:
    return batch.cluster.get("context") or batch.cluster.get("server") or "the cluster"


def generic(notice: Notice, batch: Batch, redactor: Redactor) -> dict[str, Any]:
    rows = _listed(notice)
    severities = Counter(e.severity for e in (*notice.new, *notice.reminders))
    body = {
        "apiVersion": "kspec.dev/v1", "kind": "DriftAlert",
        "title": notice.title(cluster_name(batch)),
        "spec": dict(batch.spec), "cluster": dict(batch.cluster), "run": dict(batch.run),
        "counts": {**notice.counts(), "bySeverity": dict(severities)},
        "events": [event_json(status, e) for status, e in rows[:MAX_EVENTS]],
        "notices": list(notice.notices),
        "truncated": max(len(rows) - MAX_EVENTS, 0),
    }
    redacted: dict[str, Any] = redactor.deep(body)
    return redacted


def slack(notice: Notice, batch: Batch, redactor: Redactor) -> dict[str, Any]:
    """Slack incoming-webhook message: a header, counts, the first lines, a context line."""
    title = notice.title(cluster_name(batch))
    counts = notice.counts()
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        {"type": "section", "fields": [
            {"type": "mrkdwn", "text": f"*{name.capitalize()}*\n{counts[name]}"}
            for name in ("new", "reminder", "resolved", "open")]},
    ]
    for text in notice.notices:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f":warning: {text}"}})
    rows = _listed(notice)
    if rows:
        lines = [f"• `{status}` *{e.severity}* {e.type} `{e.resource}` {e.drift}"
                 + (f" — {e.message}" if e.message else "") for status, e in rows[:SLACK_LINES]]
        if len(rows) > SLACK_LINES:
            lines.append(f"… and {len(rows) - SLACK_LINES} more")
        blocks.append({"type": "section", "text": {"type": "mrkdwn",
                                                   "text": "\n".join(lines)[:2900]}})
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": (
        f"spec {batch.spec.get('name', '')} {batch.spec.get('version', '')} · run "
        f"{batch.run.get('id', '')} · {batch.run.get('source', '')}")}]})
    message: dict[str, Any] = redactor.deep({"text": title, "blocks": blocks})
    return message


def dedup_key(batch: Batch, event: AlertEvent) -> str:
    """One PagerDuty incident per drift per cluster: stable across runs and restarts."""
    return "kspec-" + hashlib.sha256(f"{batch.scope}\0{event.fingerprint}".encode()
                                     ).hexdigest()[:32]


def pagerduty(notice: Notice, batch: Batch, routing_key: str,
              redactor: Redactor) -> list[tuple[AlertEvent | None, dict[str, Any]]]:
    """PagerDuty Events API v2 events: trigger per new/reminded drift, resolve per resolved."""
    out: list[tuple[AlertEvent | None, dict[str, Any]]] = []
    source = cluster_name(batch)
    for status, event in _listed(notice):
        body: dict[str, Any] = {"routing_key": routing_key, "dedup_key": dedup_key(batch, event)}
        if status == "resolved":
            body["event_action"] = "resolve"
        else:
            body["event_action"] = "trigger"
            body["payload"] = redactor.deep({
                "summary": f"kspec: {event.type} drift {event.drift} on {event.resource}"[:1024],
                "source": source, "severity": _PD_SEVERITY.get(event.severity, "warning"),
                "component": event.resource, "group": event.type, "class": event.drift,
                "custom_details": {**event_json(status, event), "spec": dict(batch.spec),
                                   "run": dict(batch.run)}})
        out.append((event, body))
    for text in notice.notices:
        out.append((None, {"routing_key": routing_key, "event_action": "trigger",
                           "dedup_key": "kspec-notice-" + hashlib.sha256(
                               f"{batch.scope}\0{text}".encode()).hexdigest()[:24],
                           "payload": redactor.deep({"summary": text[:1024], "source": source,
                                                     "severity": "error"})}))
    return out


def email(notice: Notice, batch: Batch, sender: str, to: tuple[str, ...],
          redactor: Redactor) -> EmailMessage:
    """A plain-text e-mail: the title as subject, counts, one line per listed drift."""
    msg = EmailMessage()
    msg["Subject"] = redactor.text(notice.title(cluster_name(batch)))
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    counts = notice.counts()
    lines = [notice.title(cluster_name(batch)), "",
             "  ".join(f"{k}: {v}" for k, v in counts.items()), ""]
    lines += [f"! {text}" for text in notice.notices]
    rows = _listed(notice)
    for status, e in rows[:MAX_EVENTS]:
        lines.append(f"[{status}] {e.severity:8} {e.type} {e.resource}: {e.drift}"
                     + (f" - {e.message}" if e.message else "")
                     + (f" (since {e.first_seen})" if e.first_seen and status != "resolved"
                        else ""))
    if len(rows) > MAX_EVENTS:
        lines.append(f"... and {len(rows) - MAX_EVENTS} more (see drift-report.json)")
    lines += ["", f"spec {batch.spec.get('name', '')} {batch.spec.get('version', '')}, "
              f"run {batch.run.get('id', '')} ({batch.run.get('source', '')}), "
              f"cluster {batch.cluster.get('server', '')}"]
    msg.set_content(redactor.text("\n".join(lines)) + "\n")
    return msg
