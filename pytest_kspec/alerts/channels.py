"""Sending: HTTP POST for webhook, Slack and PagerDuty, SMTP for e-mail; secrets read late.

HTTP goes through the standard library's ``http.client`` (``HTTPS_PROXY``/``NO_PROXY`` honoured
via CONNECT), not ``requests``/``urllib3``: their debug logging prints request paths, and a
webhook URL's path is its secret. Each send has a timeout; transient failures (connection
errors, timeouts, 429 and 5xx) are retried with capped exponential backoff and jitter
(``Retry-After`` honoured up to a cap); other answers fail at once. Errors say what failed
without the URL's path or any secret.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import ssl
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pytest_kspec.alerts import payloads
from pytest_kspec.alerts.model import AlertEvent, Batch, Notice
from pytest_kspec.alerts.redact import Redactor, host_of
from pytest_kspec.spec import PAGERDUTY_URL, Channel, url_problem

BACKOFF_BASE = 0.5
BACKOFF_CAP = 8.0
RETRY_AFTER_CAP = 30.0
USER_AGENT = "pytest-kspec-alerts"


class DeliveryError(Exception):
    """A send failed; ``str()`` is safe to show (no URL path, no secret); ``retry`` says
    whether trying again may help; ``delivered`` lists events sent before the failure."""

    def __init__(self, message: str, *, retry: bool = False, retry_after: float | None = None,
                 delivered: tuple[AlertEvent, ...] = ()) -> None:
        super().__init__(message)
        self.retry = retry
        self.retry_after = retry_after
        self.delivered = delivered


def read_secret(env: str, file: str, what: str) -> str:
    """A secret from the environment variable ``env`` or the file ``file`` (stripped)."""
    if env:
        value = os.environ.get(env, "").strip()
        if not value:
            raise DeliveryError(f"{what}: environment variable {env} is not set")
        return value
    if file:
        try:
            value = Path(file).read_text("utf-8").strip()
        except OSError as e:
            raise DeliveryError(f"{what}: cannot read {file} ({e.strerror})") from None
        if not value:
            raise DeliveryError(f"{what}: {file} is empty")
        return value
    return ""


@dataclass
class Sender:
    """Sends one channel's notices; ``redactor`` learns the channel's secrets as it reads them."""

    channel: Channel
    redactor: Redactor
    sleep: Callable[[float], None] = time.sleep
    backoff: float = BACKOFF_BASE
    rng: random.Random = random.Random()  # noqa: RUF009 - jitter only, sharing is fine
    attempts: int = 0

    def send(self, notice: Notice, batch: Batch) -> None:
        """Deliver ``notice`` with retries; raise :class:`DeliveryError` when it cannot."""
        self.attempts = 0
        kind = self.channel.type
        if kind == "email":
            message = payloads.email(notice, batch, self.channel.sender, self.channel.to,
                                     self.redactor)
            self._retrying(lambda: self._smtp(message))
            return
        url = self._url()
        if kind == "pagerduty":
            key = read_secret(self.channel.routing_key_env, self.channel.routing_key_file,
                              f"channel {self.channel.name} routing key")
            self.redactor.add(key)
            done: list[AlertEvent] = []
            for event, body in payloads.pagerduty(notice, batch, key, self.redactor):
                try:
                    self._retrying(lambda body=body: self._post(url, body))  # type: ignore[misc]
                except DeliveryError as e:
                    e.delivered = tuple(done)
                    raise
                if event is not None:
                    done.append(event)
            return
        body = (payloads.slack if kind == "slack" else payloads.generic)(
            notice, batch, self.redactor)
        self._retrying(lambda: self._post(url, body))

    def _url(self) -> str:
        ch = self.channel
        url = ch.url or read_secret(ch.url_env, ch.url_file, f"channel {ch.name} URL") or (
            PAGERDUTY_URL if ch.type == "pagerduty" else "")
        self.redactor.add(url)
        problem = url_problem(url, allow_insecure=ch.allow_insecure)
        if problem:
            raise DeliveryError(f"channel {ch.name} URL: {problem}")
        return url

    def _retrying(self, action: Callable[[], None]) -> None:
        tries = 1 + max(self.channel.retries, 0)
        for n in range(tries):
            self.attempts += 1
            try:
                action()
                return
            except DeliveryError as e:
                if not e.retry or n + 1 == tries:
                    raise
                wait = (min(e.retry_after, RETRY_AFTER_CAP) if e.retry_after is not None
                        else self.rng.uniform(0, min(BACKOFF_CAP, self.backoff * 2 ** n)))
                self.sleep(wait)

    def _post(self, url: str, body: Any) -> None:
        where = host_of(url)
        data = json.dumps(body).encode("utf-8")
        try:
            status, headers, text = _http_post(url, data, self.channel.timeout)
        except TimeoutError:
            raise DeliveryError(f"{where} timed out after {self.channel.timeout}s",
                                retry=True) from None
        except ssl.SSLError as e:
            raise DeliveryError(f"{where}: TLS failed ({e.reason or type(e).__name__})",
                                retry=False) from None
        except (OSError, http.client.HTTPException) as e:
            raise DeliveryError(f"{where}: connection failed ({type(e).__name__})",
                                retry=True) from None
        if 200 <= status < 300:
            return
        transient = status == 429 or status >= 500
        retry_after = None
        header = headers.get("retry-after")
        if header:
            try:
                retry_after = max(float(header), 0.0)
            except ValueError:
                retry_after = None
        detail = " ".join(text.split())[:120]
        raise DeliveryError(self.redactor.text(f"{where} answered HTTP {status}"
                                               + (f": {detail}" if detail else "")),
                            retry=transient, retry_after=retry_after)

    def _smtp(self, message: Any) -> None:
        import smtplib  # only e-mail channels need it (watch mode's memory)

        ch = self.channel
        password = read_secret(ch.password_env, ch.password_file,
                               f"channel {ch.name} SMTP password") if ch.username else ""
        self.redactor.add(password)
        where = f"smtp://{ch.host}:{ch.port}"
        try:
            with smtplib.SMTP(ch.host, ch.port, timeout=ch.timeout) as smtp:
                smtp.ehlo()
                if ch.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                    smtp.ehlo()
                if ch.username:
                    smtp.login(ch.username, password)
                smtp.send_message(message)
        except smtplib.SMTPAuthenticationError as e:
            raise DeliveryError(f"{where}: login as {ch.username} refused ({e.smtp_code})"
                                ) from None
        except smtplib.SMTPResponseException as e:
            raise DeliveryError(f"{where}: answered {e.smtp_code}",
                                retry=400 <= e.smtp_code < 500) from None
        except smtplib.SMTPNotSupportedError:
            raise DeliveryError(f"{where}: the server offers no STARTTLS (set starttls: false "
                                "only for a loopback relay)") from None
        except (smtplib.SMTPException, OSError, ssl.SSLError) as e:
            reason = self.redactor.text(" ".join(str(e).split())[:160]) or type(e).__name__
            raise DeliveryError(f"{where}: {reason}", retry=True) from None


def _http_post(url: str, data: bytes, timeout: float) -> tuple[int, dict[str, str], str]:
    """POST ``data`` as JSON; redirects are not followed (a moved webhook is an error)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and urllib.request.proxy_bypass(host):
        proxy = None
    conn: http.client.HTTPConnection
    if proxy:
        p = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        proxy_host, proxy_port = p.hostname or "", p.port or 3128
        if parts.scheme == "https":  # CONNECT through the proxy, TLS to the receiver
            conn = http.client.HTTPSConnection(proxy_host, proxy_port, timeout=timeout,
                                               context=ssl.create_default_context())
            conn.set_tunnel(host, port)
        else:
            conn = http.client.HTTPConnection(proxy_host, proxy_port, timeout=timeout)
            path = url
    elif parts.scheme == "https":
        conn = http.client.HTTPSConnection(host, port, timeout=timeout,
                                           context=ssl.create_default_context())
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("POST", path, body=data, headers={
            "Content-Type": "application/json", "User-Agent": USER_AGENT,
            "Content-Length": str(len(data))})
        resp = conn.getresponse()
        text = resp.read(4096).decode("utf-8", "replace")
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, text
    finally:
        conn.close()
