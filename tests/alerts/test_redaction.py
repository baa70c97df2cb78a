"""Nothing secret leaves: property tests over payloads and log lines."""

from __future__ import annotations

import base64
import json
import logging
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pytest_kspec.alerts import Alerter, AlertEvent, MemoryState, Redactor
from pytest_kspec.cluster import AccessOptions, ClusterAccess
from pytest_kspec.detect import make_plan
from pytest_kspec.run import Run
from pytest_kspec.sim import Simulator
from pytest_kspec.spec import DriftConfig, load_spec
from pytest_kspec.spec.alerting import Channel
from pytest_kspec.spec.driftconfig import Alerts
from tests.alerts.conftest import batch, drift
from tests.alerts.receivers import HttpReceiver, http_receiver

SPEC = """\
apiVersion: kspec.dev/v1
kind: ClusterSpecification
metadata: {name: shop, version: 1.0.0}
spec:
  workloads:
    containers:
      forbidden:
        - key: securityContext.privileged
          value: true
"""
ALPHABET = string.ascii_letters + string.digits + "-_+/=.:@"
secret_values = st.text(ALPHABET, min_size=16, max_size=48)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Simulator, Path,
                                                                        HttpReceiver]]:
    tmp = tmp_path_factory.mktemp("redaction")
    spec = tmp / "cluster-spec.yaml"
    spec.write_text(SPEC)
    with Simulator(kyverno=True) as sim, http_receiver() as rec:
        yield sim, spec, rec


def _run(sim: Simulator, spec_path: Path, rec: HttpReceiver) -> None:
    spec = load_spec(spec_path)
    plan = make_plan(spec, ["compliance"])
    channel = Channel(name="hook", type="webhook", url=f"{rec.url}/h", severity="info",
                      min_interval=0)
    config = DriftConfig(alerts=Alerts(enabled=True, channels=(channel,)))
    access = ClusterAccess(AccessOptions(kubeconfig=sim.kubeconfig_path))
    try:
        run = Run(spec, plan, access, spec_node="cluster-spec.yaml", reports=spec_path.parent,
                  config=config, history=None, source="cli",
                  alerter=Alerter([channel], MemoryState()))
        for target in plan.targets:
            run.report.add(run.record(run.evaluate(target)))
        run.finish()
    finally:
        access.close()


def _leaky_objects(n: int, secret: str, env_value: str, token: str) -> list[dict[str, Any]]:
    applied = json.dumps({"kind": "Pod", "spec": {"env": env_value, "token": token}})
    return [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"creds-{n}",
                                                            "namespace": "default"},
         "data": {"password": base64.b64encode(secret.encode()).decode()}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": f"leaky-{n}", "namespace": "default",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": applied,
                            "note": f"token {token}"}},
         "spec": {"containers": [{
             "name": "app", "image": "registry.example.com/app:1",
             "securityContext": {"privileged": True},
             "env": [{"name": "DB_PASSWORD", "value": env_value},
                     {"name": "API_TOKEN", "value": token},
                     {"name": "PLAIN", "value": secret}]}]}},
    ]


@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(secret=secret_values, env_value=secret_values, token=secret_values)
def test_cluster_secrets_never_reach_a_payload_or_log(
        world: tuple[Simulator, Path, HttpReceiver], secret: str, env_value: str, token: str,
        caplog: pytest.LogCaptureFixture) -> None:
    sim, spec, rec = world
    for value in (secret, env_value, token):
        assume(value not in "kspec shop ClusterPolicy registry.example.com/app:1 default")
        assume(not any(value in r.raw.decode() for r in rec.requests))
    n = len(rec.requests)
    objects = _leaky_objects(n, secret, env_value, token)
    for obj in objects:
        sim.create(obj)
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        _run(sim, spec, rec)
    for obj in objects:
        sim.delete(obj["apiVersion"], obj["kind"], obj["metadata"]["name"], "default")
    sent = [r.raw.decode() for r in rec.requests[n:]]
    assert sent and f"leaky-{n}" in sent[-1]  # the violation was alerted, by name only
    encoded = base64.b64encode(secret.encode()).decode()
    for value in (secret, env_value, token, encoded):
        for body in sent:
            assert value not in body
        assert value not in caplog.text


jwt = st.builds(lambda a, b, c: f"eyJ{a}.{b}.{c}", *(st.text(string.ascii_letters
                                                             + string.digits, min_size=8,
                                                             max_size=30),) * 3)
shaped = st.one_of(
    jwt,
    st.builds(lambda t: f"Bearer {t}", st.text(ALPHABET, min_size=8, max_size=40)),
    st.builds(lambda k, v: f"{k}={v}", st.sampled_from(["password", "api_key", "TOKEN",
                                                         "clientSecret", "db.passwd"]),
              st.text(string.ascii_letters + string.digits, min_size=6, max_size=30)),
    st.builds(lambda t: "AKIA" + t, st.text(string.ascii_uppercase + string.digits,
                                             min_size=16, max_size=16)),
    st.builds(lambda t: f"-----BEGIN RSA PRIVATE KEY-----\n{t}\n-----END RSA PRIVATE KEY-----",
              st.text(ALPHABET, min_size=10, max_size=60)),
)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(token=shaped, before=st.text(max_size=20), after=st.text(max_size=20))
def test_credential_shaped_text_is_masked_in_every_channel_shape(
        token: str, before: str, after: str) -> None:
    """A message that quotes a credential (a buggy check, a custom check) is masked."""
    value = token.split("=", 1)[1] if "=" in token and not token.startswith("-") else token
    value = value.removeprefix("Bearer ")
    assume(len(value) >= 6 and value not in before + after)
    baseline = "".join(_rendered(""))
    assume(value not in baseline)  # e.g. "Resolv": in every Slack message's "Resolved" field
    for text in _rendered(f"{before} {token} {after}"):
        assert value not in text


def _rendered(message: str) -> list[str]:
    from pytest_kspec.alerts import payloads

    event = AlertEvent(key="policy::p", type="policy", severity="high",
                       resource="ClusterPolicy/p", drift="modified", message=message)
    notice_batch = batch(event)
    alerter = Alerter([], MemoryState())
    notice, _, _ = alerter.notice_for(Channel(name="x", type="webhook", severity="info"),
                                      notice_batch, 0.0)
    red = Redactor()
    return [json.dumps(payloads.generic(notice, notice_batch, red)),
            json.dumps(payloads.slack(notice, notice_batch, red)),
            json.dumps(payloads.pagerduty(notice, notice_batch, "k" * 32, red)[0][1]),
            payloads.email(notice, notice_batch, "a@b.c", ("d@e.f",), red).as_string()]


def test_known_channel_secrets_are_masked_anywhere(receiver: HttpReceiver,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    key = "pd-routing-Key-7f3a"
    monkeypatch.setenv("PD", key)
    receiver.statuses = [400]
    url = f"{receiver.url}/services/T0/B0/hook-secret-part"
    quoting = AlertEvent(key="policy::p", type="policy", severity="high",
                         resource="ClusterPolicy/p", drift="modified",
                         message=f"sent to {url} with {key}")
    channels = [Channel(name="hook", type="webhook", url=url, min_interval=0, retries=0),
                Channel(name="pd", type="pagerduty", url=f"{receiver.url}/pd",
                        routing_key_env="PD", min_interval=0)]
    with caplog.at_level(logging.DEBUG):
        deliveries = Alerter(channels, MemoryState()).deliver(batch(quoting, drift("q")))
    assert [d.result for d in deliveries] == ["failed", "sent"]
    assert "hook-secret-part" not in caplog.text and key not in caplog.text
    assert "hook-secret-part" not in deliveries[0].error
    pd_bodies = [r.raw.decode() for r in receiver.requests if r.path == "/pd"]
    assert pd_bodies and all(b.count(key) == 1 for b in pd_bodies)  # only as routing_key
    assert all("hook-secret-part" not in r.raw.decode() for r in receiver.requests)
