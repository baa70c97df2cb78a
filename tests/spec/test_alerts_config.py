"""DriftConfig ``alerts``: channels, the plan's webhook/email entries, and the checks that
keep secrets out of the file and alerts off plain http."""

from __future__ import annotations

import pytest

from pytest_kspec.errors import SpecError
from pytest_kspec.spec.alerting import Channel
from pytest_kspec.spec.driftconfig import parse_drift_config

HEADER = "apiVersion: kspec.dev/v1\nkind: DriftConfig\nspec:\n  alerts:\n"


def load(body: str) -> tuple[Channel, ...]:
    return parse_drift_config((HEADER + body).encode(), "d.yaml").alerts.channels


def problems(body: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_drift_config((HEADER + body).encode(), "d.yaml")
    return info.value.problems


def test_every_channel_type_loads() -> None:
    channels = load("""\
    enabled: true
    minInterval: 2m
    reminder: 4h
    retries: 2
    channels:
      - {name: hooks, type: webhook, url: "https://hooks.example.com/x", severity: high}
      - {name: chat, type: slack, urlEnv: SLACK_URL, minInterval: 30s}
      - {name: pager, type: pagerduty, routingKeyFile: /etc/kspec/pd-key, severity: critical}
      - name: mail
        type: email
        host: smtp.example.com
        port: 2525
        from: kspec@example.com
        to: [ops@example.com]
        username: kspec
        passwordEnv: SMTP_PASSWORD
""")
    assert [(c.name, c.type, c.severity) for c in channels] == [
        ("hooks", "webhook", "high"), ("chat", "slack", "warning"),
        ("pager", "pagerduty", "critical"), ("mail", "email", "warning")]
    hooks, chat, pager, mail = channels
    assert (hooks.min_interval, hooks.reminder, hooks.retries) == (120, 4 * 3600, 2)
    assert chat.min_interval == 30 and chat.url_env == "SLACK_URL"
    assert pager.routing_key_file == "/etc/kspec/pd-key"
    assert (mail.host, mail.port, mail.starttls, mail.to) == ("smtp.example.com", 2525, True,
                                                              ("ops@example.com",))
    assert "hooks.example.com" not in repr(hooks)


def test_plan_webhook_becomes_a_channel_slack_detected_by_host() -> None:
    [slack] = load("""\
    enabled: true
    webhook: {url: "https://hooks.slack.com/services/T/B/X", severity: high}
""")
    assert (slack.name, slack.type, slack.severity) == ("webhook", "slack", "high")
    [generic] = load("    webhook: {url: \"https://alerts.example.com/in\"}\n")
    assert generic.type == "webhook"


def test_plain_http_needs_loopback_or_allow_insecure() -> None:
    assert problems("    webhook: {url: \"http://alerts.example.com/in\"}\n") == [
        "d.yaml:5:20: spec.alerts.webhook.url: plain http to a non-loopback host: alerts would "
        "cross the network unencrypted (use https://, or set allowInsecure: true)"]
    assert load("    webhook: {url: \"http://127.0.0.1:9000/in\"}\n")[0].url.startswith("http:")
    assert load("    webhook: {url: \"http://alerts.example.com/in\", allowInsecure: true}\n")


def test_secrets_must_come_from_env_or_file() -> None:
    found = problems("""\
    channels:
      - {name: pager, type: pagerduty}
      - {name: mail, type: email, host: smtp.example.com, from: a@b.c, to: [d@e.f], username: u}
      - {name: chat, type: slack}
""")
    assert [p.split(": ", 2)[2] for p in found] == [
        "a pagerduty channel needs routingKeyEnv or routingKeyFile (the integration key never "
        "goes in this file)",
        "a username needs passwordEnv or passwordFile (the password never goes in this file)",
        "a slack channel needs url, urlEnv or urlFile"]
    assert problems("    channels:\n      - {name: p, type: pagerduty, routingKey: abc}\n")


def test_duplicate_names_and_incomplete_email() -> None:
    found = problems("""\
    channels:
      - {name: a, type: webhook, url: "https://x.example.com"}
      - {name: a, type: email, host: smtp.example.com}
""")
    assert any("channel name 'a' is used twice" in p for p in found)
    assert any("e-mail alerts need from, to" in p for p in found)


def test_enabled_without_destination() -> None:
    assert problems("    enabled: true\n") == [
        "d.yaml:5:14: spec.alerts.enabled: alerts are enabled but have nowhere to go (add "
        "webhook.url or channels, or set enabled: false)"]
