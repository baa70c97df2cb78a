"""State files are read fast but as YAML 1.1 says: the values Kubernetes objects hold survive."""

from __future__ import annotations

import datetime
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from sim_helpers import raw

from pytest_kspec.errors import SimulatorError
from pytest_kspec.sim import Simulator, load_objects
from pytest_kspec.sim.yamlstate import load_documents

# Scalars whose type YAML 1.1 decides from their spelling, unquoted and quoted.
TRICKY = """apiVersion: v1
kind: ConfigMap
metadata:
  name: tricky
  namespace: prod
  annotations:
    quoted-on: "on"
    quoted-true: "true"
    quoted-yes: 'yes'
    quoted-08: "08"
    quoted-null: "null"
    quoted-int: "8080"
    quoted-float: "1.5"
    quoted-tilde: "~"
    quoted-empty: ""
data:
  on: on
  off: off
  yes: yes
  no: no
  y: y
  n: n
  True: True
  FALSE: FALSE
  octal: 017
  not-octal: 08
  nine: 09
  hex: 0x1F
  binary: 0b101
  underscores: 1_000
  sexagesimal: 1:30
  negative: -42
  plus: +7
  float: 1.5
  exp: 1e3
  exp-float: 1.0e+3
  inf: .inf
  neg-inf: -.Inf
  nan: .NaN
  null-word: null
  tilde: ~
  empty:
  version: 1.10
  ip: 10.0.0.1
  digest: sha256:0123abcd
  colon-time: 12:30
  leading-zero-float: 01.5
  equals: "="
  bang: "!important"
  star: "*.example.com"
  block: |
    line one
      indented: not a key
  folded: >
    folded
    text
  key with spaces: value with spaces
  "quoted key": x
  unicode: héllo wörld ✓
"""


def reference(text: str) -> list[Any]:
    """What PyYAML's pure-Python safe loader makes of ``text`` (the behaviour users know)."""
    return list(yaml.load_all(text, Loader=yaml.SafeLoader))


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and bool(a == b)


def test_tricky_scalars_load_as_the_safe_loader_reads_them() -> None:
    ours = list(load_documents(TRICKY))
    assert same(ours, reference(TRICKY))
    data = ours[0]["data"]
    annotations = ours[0]["metadata"]["annotations"]
    # what users rely on, spelled out
    assert annotations == {
        "quoted-on": "on", "quoted-true": "true", "quoted-yes": "yes", "quoted-08": "08",
        "quoted-null": "null", "quoted-int": "8080", "quoted-float": "1.5",
        "quoted-tilde": "~", "quoted-empty": ""}
    assert data[True] is True and data[False] is False  # on/off/yes/no as keys too
    assert (data["y"], data["n"]) == ("y", "n")  # YAML 1.1 bools are words, not letters
    assert data["octal"] == 15 and data["not-octal"] == "08" and data["nine"] == "09"
    assert (data["hex"], data["binary"], data["underscores"]) == (31, 5, 1000)
    assert data["sexagesimal"] == 90 and data["colon-time"] == 750
    assert data["version"] == 1.1 and data["ip"] == "10.0.0.1"
    assert data["exp"] == "1e3" and data["exp-float"] == 1000.0  # 1.1: a dot and a sign
    assert data["null-word"] is None and data["tilde"] is None and data["empty"] is None
    assert data["block"] == "line one\n  indented: not a key\n"
    assert data["folded"] == "folded text\n"
    assert data["unicode"] == "héllo wörld ✓"


def test_anchors_aliases_merge_keys_and_explicit_tags() -> None:
    text = """base: &base {cpu: 100m, memory: 64Mi}
pods:
- resources: {requests: *base, limits: *base}
- resources:
    requests:
      <<: *base
      memory: 128Mi
tagged: !!str 123
number: !!int "42"
flow: {a: [1, "2", three, {b: null}]}
set: !!set {x, y}
---
---
last: document
"""
    ours = list(load_documents(text))
    assert same(ours, reference(text))
    requests = ours[0]["pods"][0]["resources"]["requests"]
    assert requests is ours[0]["pods"][0]["resources"]["limits"]  # an alias is shared
    assert ours[0]["pods"][1]["resources"]["requests"] == {"cpu": "100m", "memory": "128Mi"}
    assert ours[0]["tagged"] == "123" and ours[0]["number"] == 42
    assert ours[1] is None and ours[2] == {"last": "document"}


def test_unquoted_timestamps_stay_the_string_written() -> None:
    """As the API server's YAML reader keeps them; a datetime could not be served as JSON."""
    text = "creationTimestamp: 2024-01-02T03:04:05Z\nday: 2024-01-02\nquoted: '2024-01-02'\n"
    assert isinstance(reference(text)[0]["day"], datetime.date)
    assert list(load_documents(text)) == [{"creationTimestamp": "2024-01-02T03:04:05Z",
                                           "day": "2024-01-02", "quoted": "2024-01-02"}]


# Strings that YAML would read as something else unless the dumper quotes them.
_WORDS = st.sampled_from([
    "on", "off", "yes", "no", "y", "n", "true", "False", "null", "~", "", "08", "0x1F",
    "017", "1_000", "1:30", "1e3", "1.0", ".inf", ".nan", "-", "=", "<<", "*a", "&a", "!t",
    "2024-01-02", "a: b", "- x", "#c", "  lead", "trail ", "multi\nline", "tab\there",
    "quote'\"", "100m", "nginx:1.27", "ünï", "🚀"])
# (no control characters or Unicode line separators: PyYAML's emitter mangles those)
_TEXT = st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"),
                      blacklist_characters="\x85\ufeff")
_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-2**63, max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=True), _WORDS,
    st.text(_TEXT, max_size=12))
_KEYS = st.one_of(_WORDS, st.text(_TEXT, min_size=1, max_size=10))
_VALUES = st.recursive(
    _SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(_KEYS, children, max_size=4)),
    max_leaves=25)


@settings(max_examples=150, deadline=None)
@given(docs=st.lists(st.dictionaries(_KEYS, _VALUES, max_size=5), min_size=1, max_size=3),
       flow=st.booleans())
def test_what_a_yaml_dumper_writes_loads_back_unchanged(docs: list[dict[str, Any]],
                                                        flow: bool) -> None:
    text = yaml.safe_dump_all(docs, default_flow_style=flow, allow_unicode=True,
                              sort_keys=False)
    assert same(list(load_documents(text)), docs)
    assert same(list(load_documents(text)), reference(text))


def test_a_recursive_alias_is_one_clear_line(tmp_path: Path) -> None:
    state = tmp_path / "state.yaml"
    state.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: loop}\n"
                     "data: &d\n  self: *d\n")
    with pytest.raises(SimulatorError) as err:
        load_objects(state)
    message = str(err.value)
    assert message.startswith(f"{state}:4: invalid YAML: found a recursive alias")  # the anchor
    assert "\n" not in message


def test_bad_yaml_names_file_and_line(tmp_path: Path) -> None:
    state = tmp_path / "state.yaml"
    state.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x\ndata: {}\n")
    with pytest.raises(SimulatorError, match=rf"^{state}:\d+: invalid YAML: "):
        load_objects(state)


def test_state_round_trip_keeps_tricky_scalars(tmp_path: Path) -> None:
    """Load, serve, dump and load again: what the state file says is what clients read."""
    state = tmp_path / "state.yaml"
    metadata = TRICKY.split("\ndata:")[0]  # the annotations: quoted look-alikes
    state.write_text(metadata + """
data:
  flags: 'on'
  zip: '08'
  truth: 'true'
  count: '3'
  stamp: 2024-01-02T03:04:05Z
  empty: ''
""")
    with Simulator(load_objects(state)) as sim:
        served = raw(sim, "GET", "/api/v1/namespaces/prod/configmaps/tricky").json()
        dumped = sim.dump()
    expected = {"flags": "on", "zip": "08", "truth": "true", "count": "3",
                "stamp": "2024-01-02T03:04:05Z", "empty": ""}
    assert served["data"] == expected
    assert served["metadata"]["annotations"]["quoted-08"] == "08"
    again = tmp_path / "again.yaml"
    again.write_text(dumped)
    reloaded = Simulator(load_objects(again)).get("v1", "ConfigMap", "tricky", "prod")
    assert reloaded is not None and reloaded["data"] == expected
    assert reloaded["metadata"]["annotations"] == served["metadata"]["annotations"]
    assert reloaded["metadata"]["uid"] == served["metadata"]["uid"]


def test_without_libyaml_the_same_values_come_out(tmp_path: Path) -> None:
    """PyYAML built without libyaml: the pure-Python parser under the same walk."""
    script = tmp_path / "check.py"
    script.write_text(
        "import sys, yaml\n"
        "del yaml.CSafeLoader\n"
        "from pytest_kspec.sim import yamlstate\n"
        "assert yamlstate._Base is yaml.SafeLoader\n"
        "text = sys.stdin.read()\n"
        "ours = list(yamlstate.load_documents(text))\n"
        "print(repr(ours) == repr(list(yaml.load_all(text, Loader=yaml.SafeLoader))))\n")
    done = subprocess.run([sys.executable, str(script)], input=TRICKY, capture_output=True,
                          text=True, timeout=60)
    assert (done.returncode, done.stdout.strip()) == (0, "True"), done.stderr
