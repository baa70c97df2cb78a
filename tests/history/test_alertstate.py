"""The alert state kept in the history (what each channel was told, every delivery), on both
backends: saved and read back, replaced, forgotten, and a failed delivery in the cluster's
audit chain."""

from __future__ import annotations

from pytest_kspec.alerts import Delivery, Sent
from pytest_kspec.history import AlertStateStore, Scope, deliveries
from tests.history.conftest import Backend

SCOPE = Scope("shop-prod", "https://10.0.0.1:6443", "uid-a", name="prod")
T0 = 1_736_899_200.5


def test_alert_state_round_trips_and_failed_deliveries_are_audited(backend: Backend) -> None:
    with backend.open() as store:
        state = AlertStateStore(store, SCOPE)
        assert state.load("ops") == ({}, None)
        state.save("ops", {"fp1": Sent("policy::p", "ClusterPolicy/p", "new", T0, "high"),
                           "fp2": Sent("compliance::c", "Pod/a/b", "new", T0, "low")}, [], T0)
        state.save("ops", {"fp1": Sent("policy::p", "ClusterPolicy/p", "reminder", T0 + 60,
                                       "high")}, ["fp2"], T0 + 60)
        sent, last = state.load("ops")
        assert sent == {"fp1": ("policy::p", "ClusterPolicy/p", "reminder", T0 + 60, "high")}
        assert last == T0 + 60  # fractional seconds kept (DOUBLE PRECISION on PostgreSQL)
        state.record(Delivery("ops", "webhook", "sent", {"new": 2}, 1), "run-1", T0)
        state.record(Delivery("ops", "webhook", "failed", {"new": 1}, 3, "HTTP 502"), "run-2",
                     T0 + 300)
        assert [(d["result"], d["new"], d["attempts"]) for d in deliveries(store)] == [
            ("sent", 2, 1), ("failed", 1, 3)]
        result = store.verify("prod")
        assert result.ok and result.checked == 1  # only the failed delivery is audited
        record = store.db.one("SELECT record FROM audit WHERE chain = ?", (SCOPE.cluster,))
        assert '"kind":"alert"' in record and '"error":"HTTP 502"' in record
