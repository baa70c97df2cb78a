"""DriftConfig loading, defaults, and the duration / drift-type parsers the CLI shares."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_kspec.errors import SpecError
from pytest_kspec.spec.driftconfig import (
    DRIFT_TYPES,
    Alerts,
    ClusterEntry,
    Detection,
    DriftConfig,
    Remediation,
    Storage,
    load_drift_config,
    parse_drift_config,
    parse_duration,
    parse_types,
)

VALID = Path(__file__).parent / "valid"
HEADER = "apiVersion: kspec.dev/v1\nkind: DriftConfig\n"


def test_defaults() -> None:
    config = DriftConfig.default()
    assert config.detection == Detection(True, True, True, True)
    assert config.detection.types == frozenset(DRIFT_TYPES)
    assert config.interval == 300
    assert config.remediation == Remediation(auto=False, dry_run=False,
                                             types=frozenset({"policy"}), prune=False,
                                             max_deletions=5)
    assert config.remediation.resources == {}
    assert config.alerts == Alerts(enabled=False, webhook=None, email_enabled=False,
                                   min_interval=300)
    assert config.storage == Storage(type="sqlite", path=None, retention=30 * 86400,
                                     keep_runs=20)
    assert config.path is None


def test_header_only_config_is_the_default() -> None:
    config = parse_drift_config(HEADER.encode(), "drift.yaml")
    assert config == DriftConfig(path=Path("drift.yaml"))


def test_plan_example_loads() -> None:
    config = load_drift_config(VALID / "drift-config-plan.yaml")
    assert config.name == "production-drift-detection"
    assert config.detection.types == {"policy", "compliance", "resource"}
    assert config.interval == 300
    assert config.remediation.auto is True
    assert config.remediation.dry_run is False
    assert config.remediation.types == {"policy"}
    assert config.alerts.enabled is True
    assert config.alerts.webhook is not None
    assert config.alerts.webhook.url == "https://hooks.slack.com/services/XXX"
    assert config.alerts.webhook.severity == "warning"
    assert config.storage.path == "/var/lib/kspec/drift.db"
    assert config.storage.retention == 30 * 86400


def test_full_config_loads_every_field() -> None:
    config = load_drift_config(VALID / "drift-config-full.yaml")
    assert config.detection == Detection(policies=True, compliance=True, configuration=False,
                                         resources=True)
    assert config.interval == 5400
    assert config.remediation == Remediation(
        auto=True, dry_run=True, types=frozenset({"policy", "resource"}), prune=True,
        max_deletions=3,
        resources={"workloads.containers.forbidden.privileged": "delete",
                   "workloads.images.blockedRegistries": "report"})
    assert config.alerts.min_interval == 900
    assert config.alerts.webhook is not None and config.alerts.webhook.severity == "high"
    assert config.storage == Storage(type="sqlite", path="/var/lib/kspec/drift.db",
                                     retention=7 * 86400, keep_runs=50)


def test_webhook_url_stays_out_of_repr() -> None:
    config = load_drift_config(VALID / "drift-config-full.yaml")
    assert "hooks.slack.com" not in repr(config)


def test_empty_types_list_means_none() -> None:
    text = HEADER + "spec:\n  remediation:\n    types: []\n"
    assert parse_drift_config(text.encode(), "d.yaml").remediation.types == frozenset()


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_drift_config(tmp_path / "drift.yaml")
    assert info.value.problems == [
        f"{tmp_path / 'drift.yaml'}: cannot read: No such file or directory "
        "(check --kspec-config)"]


def test_invalid_url_message_does_not_echo_the_secret() -> None:
    text = HEADER + "spec:\n  alerts:\n    webhook:\n      url: hooks.example/T0/SECRET\n"
    with pytest.raises(SpecError) as info:
        parse_drift_config(text.encode(), "d.yaml")
    assert "SECRET" not in str(info.value)
    assert str(info.value).startswith("d.yaml:6:12: spec.alerts.webhook.url: not an http(s) URL")


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30), ("5m", 300), ("1h", 3600), ("1h30m", 5400), ("30d", 2592000),
    ("1d2h3m4s", 93784), (" 10S ", 10), ("0s", 0),
])
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "5 m", "1m1h", "-5m", "1.5h", "5min", "h"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(text)
    assert str(info.value) == (f"invalid duration {text!r}: write whole numbers with units "
                               "d, h, m, s, e.g. 30s, 5m, 1h30m or 7d")


@pytest.mark.parametrize(("value", "types"), [
    ("policy", {"policy"}),
    ("policies,compliance", {"policy", "compliance"}),
    ("Resources, configuration", {"resource", "configuration"}),
    ("all", set(DRIFT_TYPES)),
    (["policies", "resource,compliance"], {"policy", "resource", "compliance"}),
    ("policy,policies", {"policy"}),
])
def test_parse_types(value: str | list[str], types: set[str]) -> None:
    assert parse_types(value) == types


def test_parse_types_names_the_bad_value() -> None:
    with pytest.raises(ValueError) as info:
        parse_types("policy,polcy")
    assert str(info.value) == ("unknown drift type 'polcy' (allowed: policy, compliance, "
                               "configuration, resource or all; plural forms accepted)")


def test_parse_types_empty() -> None:
    with pytest.raises(ValueError, match="no drift type given"):
        parse_types(" , ")


def test_a_postgres_storage_loads_with_where_its_password_comes_from(tmp_path: Path) -> None:
    path = tmp_path / "drift.yaml"
    path.write_text(HEADER + "spec:\n  storage:\n    type: postgres\n"
                    "    url: postgresql://kspec@db.example:5432/kspec\n"
                    "    passwordFile: /run/secrets/kspec-history/password\n"
                    "    retention: 14d\n")
    storage = load_drift_config(path).storage
    assert storage == Storage(type="postgres", url="postgresql://kspec@db.example:5432/kspec",
                              password_file="/run/secrets/kspec-history/password",
                              retention=14 * 86400)
    assert storage.path is None and storage.password_env is None


def test_clusters_load_in_order_with_where_each_cluster_is() -> None:
    config = parse_drift_config((HEADER + """spec:
  clusters:
    - name: prod-eu
      context: gke_shop_eu
    - name: prod-us
      kubeconfig: /etc/kspec/us.kubeconfig
    - name: staging
      context: stage
      kubeconfig: stage.kubeconfig
""").encode(), "drift.yaml")
    assert config.clusters == (
        ClusterEntry("prod-eu", context="gke_shop_eu"),
        ClusterEntry("prod-us", kubeconfig="/etc/kspec/us.kubeconfig"),
        ClusterEntry("staging", context="stage", kubeconfig="stage.kubeconfig"))
    assert DriftConfig.default().clusters == ()


def test_bad_clusters_name_file_line_and_fix() -> None:
    with pytest.raises(SpecError) as info:
        parse_drift_config((HEADER + """spec:
  clusters:
    - name: prod-eu
      context: a
    - name: prod-eu
      context: b
    - name: "eu/prod"
      context: c
    - name: policy
      context: d
    - name: nowhere
    - context: e
""").encode(), "drift.yaml")
    text = str(info.value)
    assert ('drift.yaml:7:13: spec.clusters[1].name: "prod-eu" is already the name of '
            "clusters[0]") in text
    assert 'drift.yaml:9:13: spec.clusters[2].name: "eu/prod" is not a cluster name' in text
    assert 'spec.clusters[3].name: "policy" is reserved' in text
    assert "drift.yaml:13:7: spec.clusters[4]: say where the cluster is: context:" in text
    assert "spec.clusters[5]" in text and "name" in text.split("spec.clusters[5]")[1]
