from __future__ import annotations

from collections.abc import Iterator

import pytest
from e2e.conftest import cluster  # noqa: F401  (the e2e cluster fixture)

from pytest_kspec.alerts import AlertEvent, Batch
from tests.alerts.receivers import HttpReceiver, http_receiver


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with http_receiver() as rec:
        yield rec


def drift(name: str, severity: str = "high", drift: str = "modified",
          kind: str = "policy") -> AlertEvent:
    return AlertEvent(key=f"{kind}::{name}", type=kind, severity=severity,
                      resource=f"ClusterPolicy/{name}", drift=drift, check=name,
                      node_id=f"spec.yaml::{kind}::{name}", message=f"{name} changed",
                      first_seen="2026-01-01T00:00:00Z")


def batch(*events: AlertEvent, judged: set[str] | None = None, run: str = "r1",
          notices: tuple[str, ...] = ()) -> Batch:
    keys = judged if judged is not None else {e.key for e in events}
    return Batch(spec={"name": "prod", "version": "1.0.0"},
                 cluster={"server": "https://10.0.0.1:6443", "context": "prod-ctx"},
                 run={"id": run, "source": "cli", "time": "2026-01-01T00:00:00Z"},
                 scope="prod\0uid:abc", events=tuple(events), judged=frozenset(keys),
                 notices=notices)
