"""The alerter against real HTTP receivers on loopback: shapes, threshold, aggregation,
duplicate suppression, reminders, rate limit, retries and failures."""

from __future__ import annotations

import logging

import pytest

from pytest_kspec.alerts import Alerter, MemoryState
from pytest_kspec.spec.alerting import Channel
from tests.alerts.conftest import batch, drift
from tests.alerts.receivers import HttpReceiver


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def alerter(*channels: Channel, clock: Clock | None = None,
            state: MemoryState | None = None) -> Alerter:
    return Alerter(channels, state or MemoryState(), clock=clock or Clock(), backoff=0.01)


def hook(rec: HttpReceiver, kind: str = "webhook", **kw: object) -> Channel:
    kw.setdefault("min_interval", 0)
    kw.setdefault("name", kind)
    return Channel(type=kind, url=f"{rec.url}/{kind}", **kw)  # type: ignore[arg-type]


def test_generic_payload_shape(receiver: HttpReceiver) -> None:
    a = alerter(hook(receiver))
    [d] = a.deliver(batch(drift("p1", "high"), drift("p2", "critical", "deleted")))
    assert d.result == "sent" and d.counts == {"new": 2, "reminder": 0, "resolved": 0,
                                                "open": 2}
    [body] = receiver.bodies("/webhook")
    assert body["apiVersion"] == "kspec.dev/v1" and body["kind"] == "DriftAlert"
    assert body["spec"] == {"name": "prod", "version": "1.0.0"}
    assert body["cluster"]["context"] == "prod-ctx"
    assert body["run"]["id"] == "r1"
    assert body["counts"]["bySeverity"] == {"high": 1, "critical": 1}
    assert [e["resource"] for e in body["events"]] == ["ClusterPolicy/p2", "ClusterPolicy/p1"]
    first = body["events"][0]
    assert set(first) == {"status", "type", "severity", "resource", "drift", "check", "node_id",
                          "message", "first_seen", "remediation"}
    assert first["status"] == "new" and first["drift"] == "deleted"
    assert body["title"] == "kspec: 2 new drift (highest critical) on prod-ctx"
    assert receiver.requests[0].headers["Content-Type"] == "application/json"


def test_slack_blocks(receiver: HttpReceiver) -> None:
    a = alerter(hook(receiver, "slack"))
    events = [drift(f"p{i}", "medium") for i in range(12)]
    a.deliver(batch(*events))
    [body] = receiver.bodies("/slack")
    assert body["text"].startswith("kspec: 12 new drift")
    types = [b["type"] for b in body["blocks"]]
    assert types == ["header", "section", "section", "context"]
    listing = body["blocks"][2]["text"]["text"]
    assert listing.count("\n•") == 9 and listing.endswith("… and 2 more")
    assert "*New*\n12" in [f["text"] for f in body["blocks"][1]["fields"]]


def test_pagerduty_trigger_then_resolve_with_stable_dedup_key(receiver: HttpReceiver,
                                                              monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    monkeypatch.setenv("PD_KEY", "R0UTINGKEY0123456789abcdef")
    channel = hook(receiver, "pagerduty", routing_key_env="PD_KEY")
    a = alerter(channel)
    a.deliver(batch(drift("p1"), drift("p2", "critical")))
    triggers = receiver.bodies("/pagerduty")
    assert [t["event_action"] for t in triggers] == ["trigger", "trigger"]
    assert all(t["routing_key"] == "R0UTINGKEY0123456789abcdef" for t in triggers)
    assert triggers[0]["payload"]["severity"] == "critical"
    assert triggers[1]["payload"]["severity"] == "error"
    assert triggers[1]["payload"]["component"] == "ClusterPolicy/p1"
    keys = {t["payload"]["component"]: t["dedup_key"] for t in triggers}
    # p1 is fixed: one resolve with p1's dedup_key, nothing for the still-open p2
    a.deliver(batch(drift("p2", "critical"), judged={"policy::p1", "policy::p2"}))
    resolve = receiver.bodies("/pagerduty")[2:]
    assert resolve == [{"routing_key": "R0UTINGKEY0123456789abcdef",
                        "dedup_key": keys["ClusterPolicy/p1"], "event_action": "resolve"}]


def test_threshold_per_channel(receiver: HttpReceiver) -> None:
    a = alerter(hook(receiver, name="all", severity="info"),
                hook(receiver, name="pager", severity="high"))
    deliveries = a.deliver(batch(drift("low1", "low"), drift("med", "medium")))
    assert [d.channel for d in deliveries] == ["all"]
    assert len(receiver.requests) == 1
    deliveries = a.deliver(batch(drift("low1", "low"), drift("med", "medium"),
                                 drift("crit", "critical")))
    assert {d.channel: d.counts["new"] for d in deliveries} == {"all": 1, "pager": 1}


def test_one_message_per_cycle_and_no_duplicates(receiver: HttpReceiver) -> None:
    a = alerter(hook(receiver))
    events = [drift(f"p{i}") for i in range(30)]
    a.deliver(batch(*events))
    assert len(receiver.requests) == 1
    assert a.deliver(batch(*events)) == []  # the same drift again: nothing sent
    assert len(receiver.requests) == 1
    # a state change (modified -> deleted) is new; the rest stays quiet
    changed = [drift("p0", drift="deleted"), *events[1:]]
    [d] = a.deliver(batch(*changed))
    assert d.counts["new"] == 1
    assert [e["resource"] for e in receiver.bodies()[1]["events"]] == ["ClusterPolicy/p0"]


def test_resolved_and_back_is_new(receiver: HttpReceiver) -> None:
    a = alerter(hook(receiver))
    a.deliver(batch(drift("p1")))
    [d] = a.deliver(batch(judged={"policy::p1"}))
    assert d.counts["resolved"] == 1
    assert receiver.bodies()[1]["events"][0]["status"] == "resolved"
    [d] = a.deliver(batch(drift("p1")))
    assert d.counts["new"] == 1


def test_unjudged_item_is_not_resolved(receiver: HttpReceiver) -> None:
    a = alerter(hook(receiver))
    a.deliver(batch(drift("p1")))
    assert a.deliver(batch(judged=set())) == []  # p1 errored this cycle: keep its state


def test_reminder_interval(receiver: HttpReceiver) -> None:
    clock = Clock()
    a = alerter(hook(receiver, reminder=3600), clock=clock)
    a.deliver(batch(drift("p1")))
    clock.now += 1800
    assert a.deliver(batch(drift("p1"))) == []
    clock.now += 1801
    [d] = a.deliver(batch(drift("p1")))
    assert d.counts["reminder"] == 1
    assert receiver.bodies()[1]["events"][0]["status"] == "reminder"


def test_rate_limit_holds_then_sends_aggregated(receiver: HttpReceiver) -> None:
    clock = Clock()
    a = alerter(hook(receiver, min_interval=300), clock=clock)
    a.deliver(batch(drift("p1")))
    clock.now += 10
    [d] = a.deliver(batch(drift("p1"), drift("p2")))
    assert d.result == "rate-limited" and d.counts["new"] == 1
    assert a.due() == pytest.approx(clock.now - 10 + 300)
    clock.now += 20
    a.deliver(batch(drift("p1"), drift("p2"), drift("p3")))
    assert len(receiver.requests) == 1
    clock.now += 300
    [d] = a.deliver(batch(drift("p1"), drift("p2"), drift("p3")))
    assert d.result == "sent" and d.counts["new"] == 2
    assert a.due() is None
    assert len(receiver.requests) == 2


def test_retry_then_success(receiver: HttpReceiver) -> None:
    receiver.statuses = [503, 500, 200]
    a = alerter(hook(receiver, retries=3))
    [d] = a.deliver(batch(drift("p1")))
    assert (d.result, d.attempts) == ("sent", 3)
    assert len(receiver.requests) == 3


def test_retry_after_is_honoured(receiver: HttpReceiver) -> None:
    receiver.statuses, receiver.retry_after = [429], "0"
    [d] = alerter(hook(receiver, retries=1)).deliver(batch(drift("p1")))
    assert (d.result, d.attempts) == ("sent", 2)


def test_permanent_failure_is_recorded_and_retried_next_cycle(
        receiver: HttpReceiver, caplog: pytest.LogCaptureFixture) -> None:
    receiver.statuses = [400]
    state = MemoryState()
    a = alerter(hook(receiver, retries=3), state=state)
    with caplog.at_level(logging.INFO, "pytest_kspec"):
        [d] = a.deliver(batch(drift("p1")))
    assert d.result == "failed" and d.attempts == 1  # 4xx: no retry
    assert "answered HTTP 400" in d.error and "/webhook" not in d.error
    assert state.deliveries == [d]
    assert "/webhook" not in caplog.text  # logs name the host, never the URL's path
    [d] = a.deliver(batch(drift("p1")))  # not marked as sent: tried again
    assert d.result == "sent"


def test_unreachable_endpoint_fails_after_retries() -> None:
    channel = Channel(name="gone", type="webhook", url="http://127.0.0.1:9/x", retries=2,
                      timeout=1, min_interval=0)
    [d] = alerter(channel).deliver(batch(drift("p1")))
    assert (d.result, d.attempts) == ("failed", 3)
    assert d.error == "http://127.0.0.1:9/…: connection failed (ConnectionRefusedError)"


def test_missing_secret_is_a_failed_delivery(receiver: HttpReceiver,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    channel = hook(receiver, "pagerduty", routing_key_env="NO_SUCH_KEY")
    [d] = alerter(channel).deliver(batch(drift("p1")))
    assert d.result == "failed"
    assert d.error == "channel pagerduty routing key: environment variable NO_SUCH_KEY is not set"
    assert receiver.requests == []


def test_plain_http_to_remote_host_refused_unless_allowed() -> None:
    channel = Channel(name="far", type="webhook", url="http://alerts.example.com/hook",
                      min_interval=0)
    [d] = alerter(channel).deliver(batch(drift("p1")))
    assert d.result == "failed" and "plain http to a non-loopback host" in d.error


def test_notice_goes_to_every_channel_once(receiver: HttpReceiver) -> None:
    a = alerter(hook(receiver, severity="critical"))
    text = "remediation loop: kubectl-edit keeps changing ClusterPolicy/p1"
    [d] = a.deliver(batch(drift("p1", "low"), notices=(text,)))
    assert d.result == "sent"
    assert receiver.bodies()[0]["notices"] == [text]
    assert a.deliver(batch(drift("p1", "low"), notices=(text,))) == []
