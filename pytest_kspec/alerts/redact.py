"""Nothing secret leaves: every string an alert or its log line carries passes through here.

Alert payloads are built from an allow-list of event fields (never raw objects, never
expected/actual values), so Secret data, env values and ``last-applied-configuration``
cannot get in by construction. This module is the second line: it masks the known secret
values of this process (channel URLs, routing keys, passwords, the cluster token) and
anything that looks like a credential (bearer tokens, JWTs, ``password=...``, private keys,
long base64/hex runs, URL userinfo and query strings). URLs in logs show only their host.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

MASK = "[redacted]"
MIN_SECRET = 6
"""Shorter known values are not masked one by one (they would mangle ordinary words)."""

_PATTERNS = (
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)",
               re.S),
    re.compile(r"(?i)\bbearer\s+[^\s\"']+"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"),
    re.compile(r"(?i)\b([\w.-]*(?:password|passwd|secret|token|apikey|api[_-]key|"
               r"access[_-]?key|private[_-]?key|credential|auth)[\w.-]*)(\"?\s*[:=]\s*\"?)"
               r"(?!(?:true|false|null|none)\b)[^\s\"',;}]+"),
    re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{8,}"),
    re.compile(r"(?<!sha256:)(?<!sha512:)\b[0-9a-fA-F]{32,}\b"),
    re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@"),
)


_RUN = re.compile(r"(?<![A-Za-z0-9+/_=-])[A-Za-z0-9+/_-]{32,}={0,2}(?![A-Za-z0-9+/_=-])")


def _random_looking(run: str) -> bool:
    """A long run with upper case, lower case and several digits: base64 or a token, not a
    Kubernetes name (those are lower case) nor a ``Kind/name`` path."""
    digits = sum(c.isdigit() for c in run)
    return (digits >= 3 and any(c.isupper() for c in run) and any(c.islower() for c in run)
            and max(len(part) for part in run.split("/")) >= 24)


def _sub(pattern: re.Pattern[str], text: str) -> str:
    if pattern.groups == 2:
        return pattern.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    if pattern.groups == 1:
        return pattern.sub(lambda m: f"{m.group(1)}{MASK}@", text)
    return pattern.sub(MASK, text)


def host_of(url: str) -> str:
    """``https://hooks.slack.com/services/T/B/X`` → ``https://hooks.slack.com/…``."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid URL>"
    return f"{parts.scheme}://{host}{port}/…"


class Redactor:
    """Masks known secret values and credential-shaped text; thread-safe, add as you learn."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._lock = threading.Lock()
        for value in secrets:
            self.add(value)

    def add(self, value: str | None) -> None:
        """Remember a secret value (and, for URLs, their path and query) to mask it anywhere."""
        if not value or len(value) < MIN_SECRET:
            return
        with self._lock:
            self._secrets.add(value)
            try:
                parts = urlsplit(value)
            except ValueError:
                return
            for piece in (parts.path, parts.query, parts.password or ""):
                if len(piece) >= MIN_SECRET and piece.strip("/"):
                    self._secrets.add(piece)

    def text(self, value: str) -> str:
        """``value`` with every known secret and credential-shaped run masked."""
        with self._lock:
            known = sorted(self._secrets, key=len, reverse=True)
        for secret in known:
            if secret in value:
                value = value.replace(secret, MASK)
        for pattern in _PATTERNS:
            value = _sub(pattern, value)
        return _RUN.sub(lambda m: MASK if _random_looking(m.group(0)) else m.group(0), value)

    def deep(self, value: Any) -> Any:
        """A JSON-like structure with every string passed through :meth:`text`."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {str(k): self.deep(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.deep(v) for v in value]
        return value
