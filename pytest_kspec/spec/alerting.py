"""DriftConfig ``alerts``: the channels alerts go to, checked when the file is loaded.

A channel names *where* its secrets are (``urlEnv``, ``routingKeyFile``, ``passwordEnv``, ...),
never the secrets themselves: a DriftConfig lives in git and in a ConfigMap. The values are
read when an alert is sent, so a missing variable is a failed delivery (recorded, shown in the
summary), never a failed detection. The plan's single ``webhook`` and ``email`` entries still
work: they become channels named ``webhook`` and ``email``.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from pytest_kspec.spec.yamlsafe import FieldPath, Locator, Problem

CHANNEL_TYPES: tuple[str, ...] = ("webhook", "slack", "pagerduty", "email")
PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"
DEFAULT_TIMEOUT = 10
DEFAULT_RETRIES = 3


@dataclass(frozen=True)
class Channel:
    """One alert destination. ``url`` is kept out of ``repr`` (webhook URLs carry tokens).

    ``min_interval`` (seconds) is the per-channel rate limit, ``reminder`` (seconds, None:
    never) re-sends drift that is still open. Secrets come from ``*_env`` / ``*_file``.
    """

    name: str
    type: str
    severity: str = "warning"
    url: str = field(default="", repr=False)
    url_env: str = ""
    url_file: str = ""
    routing_key_env: str = ""
    routing_key_file: str = ""
    allow_insecure: bool = False
    min_interval: int = 300
    reminder: int | None = None
    timeout: int = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    host: str = ""
    port: int = 587
    starttls: bool = True
    sender: str = ""
    to: tuple[str, ...] = ()
    username: str = ""
    password_env: str = ""
    password_file: str = ""


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _seconds(value: Any, default: int | None) -> int | None:
    from pytest_kspec.spec.driftconfig import parse_duration

    return parse_duration(value) if isinstance(value, str) and value else default


def build_channels(alerts: Mapping[str, Any]) -> tuple[Channel, ...]:
    """The channels of a validated ``alerts`` section (legacy webhook/email included)."""
    min_interval = _seconds(alerts.get("minInterval"), 300) or 0
    reminder = _seconds(alerts.get("reminder"), None)
    timeout = _seconds(alerts.get("timeout"), DEFAULT_TIMEOUT) or DEFAULT_TIMEOUT
    retries = int(alerts.get("retries", DEFAULT_RETRIES))
    docs: list[dict[str, Any]] = []
    webhook = alerts.get("webhook")
    if isinstance(webhook, dict):
        docs.append({**webhook, "name": "webhook", "type": _webhook_type(webhook)})
    email = _dict(alerts.get("email"))
    if email.get("enabled") is True:
        docs.append({**email, "name": "email", "type": "email"})
    docs += [_dict(c) for c in alerts.get("channels") or []]
    out = []
    for doc in docs:
        out.append(Channel(
            name=str(doc["name"]), type=str(doc["type"]),
            severity=str(doc.get("severity", "warning")),
            url=str(doc.get("url", "")).strip(), url_env=str(doc.get("urlEnv", "")),
            url_file=str(doc.get("urlFile", "")),
            routing_key_env=str(doc.get("routingKeyEnv", "")),
            routing_key_file=str(doc.get("routingKeyFile", "")),
            allow_insecure=bool(doc.get("allowInsecure", False)),
            min_interval=_seconds(doc.get("minInterval"), min_interval) or 0,
            reminder=_seconds(doc.get("reminder"), reminder),
            timeout=_seconds(doc.get("timeout"), timeout) or timeout,
            retries=int(doc.get("retries", retries)),
            host=str(doc.get("host", "")), port=int(doc.get("port", 587)),
            starttls=bool(doc.get("starttls", True)), sender=str(doc.get("from", "")),
            to=tuple(str(t) for t in doc.get("to") or ()), username=str(doc.get("username", "")),
            password_env=str(doc.get("passwordEnv", "")),
            password_file=str(doc.get("passwordFile", "")),
        ))
    return tuple(out)


def _webhook_type(webhook: Mapping[str, Any]) -> str:
    fmt = webhook.get("format", "auto")
    if fmt == "auto":
        host = _host(str(webhook.get("url", "")))
        return "slack" if host == "hooks.slack.com" else "webhook"
    return "slack" if fmt == "slack" else "webhook"


def _host(url: str) -> str:
    try:
        return (urlsplit(url.strip()).hostname or "").lower()
    except ValueError:
        return ""


def is_loopback(host: str) -> bool:
    """``localhost``, 127.0.0.0/8 and ``::1``: the only hosts plain http is allowed to."""
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def url_problem(url: str, *, allow_insecure: bool) -> str | None:
    """Why ``url`` may not receive alerts (never quoting it: it may carry a token), or None."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
    except ValueError:
        return "not a valid URL"
    if parts.scheme not in ("http", "https") or not host:
        return ("not an http(s) URL (write the full address, e.g. "
                "https://hooks.example.com/services/...)")
    if parts.scheme == "http" and not allow_insecure and not is_loopback(host):
        return ("plain http to a non-loopback host: alerts would cross the network "
                "unencrypted (use https://, or set allowInsecure: true)")
    return None


def alerts_problems(alerts: Mapping[str, Any], loc: Locator) -> Iterator[Problem]:
    """Problems JSON Schema cannot see: URLs, missing secrets' sources, duplicate names."""
    base: FieldPath = ("spec", "alerts")
    webhook = _dict(alerts.get("webhook"))
    if webhook:
        yield from _url(webhook, (*base, "webhook"), loc)
    email = _dict(alerts.get("email"))
    if email.get("enabled") is True:
        yield from _email(email, (*base, "email"), loc)
    seen: set[str] = set()
    for i, doc in enumerate(alerts.get("channels") or []):
        doc = _dict(doc)
        where: FieldPath = (*base, "channels", i)
        name = str(doc.get("name", ""))
        if name in seen or (name in ("webhook", "email") and (
                (name == "webhook" and webhook) or (name == "email" and email.get("enabled")))):
            yield Problem(loc.value((*where, "name")), (*where, "name"),
                          f"channel name {name!r} is used twice (give each channel its own name)")
        seen.add(name)
        kind = doc.get("type")
        if kind in ("webhook", "slack"):
            if not any(doc.get(k) for k in ("url", "urlEnv", "urlFile")):
                yield Problem(loc.value(where), where, f"a {kind} channel needs url, urlEnv "
                              "or urlFile")
            yield from _url(doc, where, loc)
        elif kind == "pagerduty":
            if not (doc.get("routingKeyEnv") or doc.get("routingKeyFile")):
                yield Problem(loc.value(where), where, "a pagerduty channel needs routingKeyEnv "
                              "or routingKeyFile (the integration key never goes in this file)")
            yield from _url(doc, where, loc)
        elif kind == "email":
            yield from _email(doc, where, loc)
    has_channel = bool(webhook) or email.get("enabled") is True or bool(alerts.get("channels"))
    if alerts.get("enabled") is True and not has_channel:
        path: FieldPath = (*base, "enabled")
        yield Problem(loc.value(path), path, "alerts are enabled but have nowhere to go (add "
                      "webhook.url or channels, or set enabled: false)")


def _url(doc: Mapping[str, Any], where: FieldPath, loc: Locator) -> Iterator[Problem]:
    url = doc.get("url")
    if isinstance(url, str) and url:
        problem = url_problem(url, allow_insecure=bool(doc.get("allowInsecure")))
        if problem:
            yield Problem(loc.value((*where, "url")), (*where, "url"), problem)


def _email(doc: Mapping[str, Any], where: FieldPath, loc: Locator) -> Iterator[Problem]:
    missing = [k for k in ("host", "from", "to") if not doc.get(k)]
    if missing:
        yield Problem(loc.value(where), where, f"e-mail alerts need {', '.join(missing)} "
                      "(the SMTP server, the sender and at least one recipient)")
    if doc.get("username") and not (doc.get("passwordEnv") or doc.get("passwordFile")):
        yield Problem(loc.value((*where, "username")), (*where, "username"),
                      "a username needs passwordEnv or passwordFile (the password never goes "
                      "in this file)")
    host = str(doc.get("host", ""))
    insecure = doc.get("starttls") is False and not doc.get("allowInsecure")
    if host and insecure and not is_loopback(host):
        yield Problem(loc.value((*where, "starttls")), (*where, "starttls"),
                      "starttls: false to a non-loopback server sends alerts unencrypted "
                      "(keep starttls, or set allowInsecure: true)")
