"""DriftConfig waivers: what they accept, their expiry rules, and `file:line` errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from pytest_kspec.detect import make_plan
from pytest_kspec.errors import SpecError, UsageError
from pytest_kspec.spec import load_spec
from pytest_kspec.spec.driftconfig import parse_drift_config
from pytest_kspec.spec.waivers import Waiver, parse_expiry

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC).timestamp()
HEAD = "apiVersion: kspec.dev/v1\nkind: DriftConfig\nmetadata: {name: w}\nspec:\n"


def _load(body: str) -> tuple[Waiver, ...]:
    return parse_drift_config((HEAD + body).encode(), "drift.yaml", now=NOW).waivers


def _problems(body: str) -> str:
    with pytest.raises(SpecError) as err:
        parse_drift_config((HEAD + body).encode(), "drift.yaml", now=NOW)
    return str(err.value)


def test_a_waiver_with_selector_reason_owner_expiry() -> None:
    (waiver,) = _load("""\
  waivers:
    - name: node-exporter
      check: workloads.containers.forbidden.privileged
      resources: {namespace: "monitor*", name: "node-exporter-*", labels: {app: exporter}}
      reason: node exporters need host access
      owner: platform@example.com
      expires: 2027-01-15
""")
    assert (waiver.id, waiver.check, waiver.policy) == (
        "node-exporter", "workloads.containers.forbidden.privileged", None)
    assert waiver.source == "drift.yaml:6"
    assert waiver.expires_at == parse_expiry("2027-01-15T00:00:00Z")
    assert waiver.selects("monitoring", "node-exporter-x1", {"app": "exporter", "x": "y"})
    assert not waiver.selects("monitoring", "node-exporter-x1", {"app": "other"})
    assert not waiver.selects("shop", "node-exporter-x1", {"app": "exporter"})
    assert not waiver.selects("monitoring", "web", {"app": "exporter"})
    assert waiver.covers("compliance", "workloads.containers.forbidden.privileged")
    assert waiver.covers("resource", "workloads.containers.forbidden.privileged")
    assert not waiver.covers("policy", "workloads.containers.forbidden.privileged")


def test_states_and_warnings_over_time() -> None:
    (waiver,) = _load("""\
  waivers:
    - policy: disallow-privileged-containers
      reason: migration
      owner: alice
      expires: "2026-12-20T00:00:00Z"
""")
    assert waiver.id == "waivers[0]"
    day = 86_400
    assert waiver.state(NOW) == "in-force" and waiver.warning(NOW) is None
    soon = parse_expiry("2026-12-13T00:00:00Z")  # 7 days before
    assert waiver.state(soon) == "expiring" and waiver.days_left(soon) == 7
    assert "expires in 7 day(s), 2026-12-20T00:00:00Z" in str(waiver.warning(soon))
    assert waiver.state(soon - 1) == "in-force"
    late = parse_expiry("2026-12-20T00:00:00Z")
    assert waiver.state(late) == "expired" and not waiver.in_force(late)
    assert "expired 2026-12-20T00:00:00Z: what it waived is drift again" in str(
        waiver.warning(late + day))
    assert waiver.covers("policy", "disallow-privileged-containers")
    assert waiver.covers("policy", "extra")
    assert not waiver.selects(None, "x", {}, policy="other-policy")


@pytest.mark.parametrize(("body", "message"), [
    ("  waivers:\n    - check: x\n      reason: r\n      owner: o\n",
     "drift.yaml:6:7: spec.waivers[0]: missing required field \"expires\""),
    ("  waivers:\n    - check: x\n      reason: r\n      owner: o\n      expires: soon\n",
     'drift.yaml:9:16: spec.waivers[0].expires: "soon" is not a date: write YYYY-MM-DD'),
    ("  waivers:\n    - check: x\n      reason: r\n      owner: o\n      expires: 2027-06-01\n",
     'drift.yaml:9:16: spec.waivers[0].expires: "2027-06-01" is 182 days ahead, more than 90'),
    ("  waivers:\n    - reason: r\n      owner: o\n      expires: 2027-01-01\n",
     "drift.yaml:6:7: spec.waivers[0]: name what is waived: check: <compliance check id> or "
     "policy: <policy name>"),
    ("  waivers:\n    - {check: x, policy: y, reason: r, owner: o, expires: 2027-01-01}\n",
     "or policy: <policy name>, not both"),
    ("  waivers:\n    - {name: a, check: x, reason: r, owner: o, expires: 2027-01-01}\n"
     "    - {name: a, check: y, reason: r, owner: o, expires: 2027-01-01}\n",
     'drift.yaml:7:14: spec.waivers[1].name: "a" is already the name of waivers[0]'),
    ("  waivers:\n    - {check: x, reason: '', owner: o, expires: 2027-01-01}\n",
     "spec.waivers[0].reason"),
    ("  waivers:\n    - {check: x, reason: r, owner: o, expires: 2027-01-01T10:00:00}\n",
     "has no time zone"),
])
def test_bad_waivers_name_file_line_and_field(body: str, message: str) -> None:
    assert message in _problems(body)


def test_long_waivers_need_allow_long_waivers() -> None:
    body = ("  allowLongWaivers: true\n  waivers:\n"
            "    - {check: x, reason: r, owner: o, expires: 2028-01-01}\n")
    (waiver,) = _load(body)
    assert waiver.days_left(NOW) == 396


def test_an_expired_waiver_loads(tmp_path: Path) -> None:
    (waiver,) = _load("  waivers:\n    - {check: x, reason: r, owner: o, expires: 2020-01-01}\n")
    assert waiver.state(NOW) == "expired"


def test_waiver_naming_what_the_spec_lacks_is_a_usage_error(tmp_path: Path) -> None:
    spec_path = Path(__file__).parents[2] / "examples" / "moderate.yaml"
    spec = load_spec(spec_path)
    waivers = _load("  waivers:\n    - {check: workloads.containers.forbiden.privileged, "
                    "reason: r, owner: o, expires: 2027-01-01}\n")
    with pytest.raises(UsageError, match=r"drift.yaml:6: waiver waivers\[0\]: check "
                                         r"'workloads.containers.forbiden.privileged' is not a "
                                         "check of"):
        make_plan(spec, waivers=waivers)
    waivers = _load("  waivers:\n    - {policy: nope, reason: r, owner: o, "
                    "expires: 2027-01-01}\n")
    with pytest.raises(UsageError, match="policy 'nope' is not a policy"):
        make_plan(spec, waivers=waivers)
