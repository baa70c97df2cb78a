"""E-mail alerts through a real SMTP server on loopback: STARTTLS, AUTH, refusal."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import yaml

import pytest_kspec.sim
from pytest_kspec.alerts import Alerter, MemoryState
from pytest_kspec.spec.alerting import Channel
from tests.alerts.conftest import batch, drift
from tests.alerts.receivers import smtp_receiver

PASSWORD = "s3cret-Sm7p-pa55word"


@pytest.fixture
def tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ssl.SSLContext:
    """The simulator's localhost certificate: the server's identity and the client's CA."""
    data = yaml.safe_load((Path(pytest_kspec.sim.__file__).parent / "data" / "tls.yaml")
                          .read_text())
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_text(data["certificate"])
    key.write_text(data["key"])
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


def test_starttls_login_and_message(tls: ssl.SSLContext, tmp_path: Path) -> None:
    secret = tmp_path / "smtp-password"
    secret.write_text(PASSWORD + "\n")
    with smtp_receiver(tls=tls, password=PASSWORD) as server:
        channel = Channel(name="mail", type="email", host="localhost", port=server.port,
                          sender="kspec@example.com", to=("ops@example.com", "sec@example.com"),
                          username="kspec", password_file=str(secret), min_interval=0)
        [d] = Alerter([channel], MemoryState()).deliver(
            batch(drift("p1", "critical", "deleted"), drift("p2", "low")))
    assert d.result == "sent"
    [mail] = server.mails
    assert mail.tls and (mail.user, mail.password) == ("kspec", PASSWORD)
    assert mail.recipients == ["ops@example.com", "sec@example.com"]
    assert mail.message["Subject"] == "kspec: 1 new drift (highest critical) on prod-ctx"
    body = mail.message.get_payload()
    assert "[new] critical ClusterPolicy/p1" in body.replace("policy ", "")
    assert PASSWORD not in "\n".join(server.transcript)


def test_wrong_password_is_a_failed_delivery(tls: ssl.SSLContext,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_PASSWORD", "not-the-password")
    with smtp_receiver(tls=tls, password=PASSWORD) as server:
        channel = Channel(name="mail", type="email", host="localhost", port=server.port,
                          sender="kspec@example.com", to=("ops@example.com",),
                          username="kspec", password_env="SMTP_PASSWORD", min_interval=0)
        [d] = Alerter([channel], MemoryState()).deliver(batch(drift("p1")))
    assert d.result == "failed"
    assert d.error == f"smtp://localhost:{server.port}: login as kspec refused (535)"
    assert server.mails == []


def test_server_without_starttls_is_refused(tls: ssl.SSLContext) -> None:
    with smtp_receiver(tls=None) as server:
        channel = Channel(name="mail", type="email", host="127.0.0.1", port=server.port,
                          sender="kspec@example.com", to=("ops@example.com",), min_interval=0,
                          retries=0)
        [d] = Alerter([channel], MemoryState()).deliver(batch(drift("p1")))
    assert d.result == "failed" and "offers no STARTTLS" in d.error
    assert server.mails == []


def test_plain_smtp_to_a_loopback_relay(tls: ssl.SSLContext) -> None:
    with smtp_receiver(tls=None) as server:
        channel = Channel(name="mail", type="email", host="127.0.0.1", port=server.port,
                          starttls=False, sender="kspec@example.com", to=("ops@example.com",),
                          min_interval=0)
        [d] = Alerter([channel], MemoryState()).deliver(batch(drift("p1")))
    assert d.result == "sent" and not server.mails[0].tls
