"""Whatever bytes or YAML reach the loaders, the only exception is SpecError."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_kspec.errors import SpecError
from pytest_kspec.spec.driftconfig import parse_drift_config
from pytest_kspec.spec.model import parse_spec

FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

HEADER = ("apiVersion: kspec.dev/v1\nkind: ClusterSpecification\n"
          "metadata: {name: fuzz, version: 1.0.0}\n")
KEYS = ["spec", "kubernetes", "minVersion", "maxVersion", "podSecurity", "enforce", "network",
        "requiredPolicies", "name", "workloads", "containers", "forbidden", "key", "value",
        "exists", "compliance", "frameworks", "controls", "id", "mappings", "check", "admission",
        "required", "namePattern", "interval", "remediation", "types", "alerts", "webhook",
        "url", "storage", "retention"]
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 70000), st.floats(allow_nan=True),
                    st.sampled_from(["1.29", "v1.30.1", "restricted", "(", "5m", "x_Y",
                                     "!!python/object:os.system", "*a", "&a", "http://x"]),
                    st.text(max_size=12))
TREES = st.recursive(
    SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.sampled_from(KEYS), children, max_size=4)),
    max_leaves=25,
)


def _only_spec_errors(data: bytes) -> None:
    for parse in (parse_spec, parse_drift_config):
        try:
            parse(data, "fuzz.yaml")
        except SpecError as e:
            assert e.problems
            assert all(line.startswith("fuzz.yaml:") for line in e.problems)


@FUZZ
@given(st.binary(max_size=300))
def test_arbitrary_bytes(data: bytes) -> None:
    _only_spec_errors(data)


@FUZZ
@given(st.text(alphabet=st.sampled_from(list("ab:- \n\t[]{},&*!?|>'\"#%@`~0.1\\")), max_size=120))
def test_yaml_like_text(text: str) -> None:
    _only_spec_errors(text.encode())


def _dump(value: Any) -> str:
    return json.dumps(value, default=str)


@FUZZ
@given(TREES)
def test_structured_documents(tree: Any) -> None:
    # JSON is YAML: structured, mostly well-formed documents reach the schema and rule checks
    _only_spec_errors((HEADER + "spec: " + _dump(tree) + "\n").encode())
    _only_spec_errors(_dump({"apiVersion": "kspec.dev/v1", "kind": "DriftConfig",
                             "spec": tree}).encode())


@FUZZ
@given(st.lists(st.text(max_size=30), min_size=1, max_size=4),
       st.lists(st.sampled_from(["securityContext.privileged", "hostPID", "resources.limits.cpu",
                                 "a.b", "x"]), max_size=4),
       st.booleans())
def test_check_mappings_of_well_formed_specs(checks: list[str], keys: list[str],
                                             exists: bool) -> None:
    # a schema-valid body reaches the catalog; unknown mappings must be reported, not crash
    body = {
        "workloads": {"containers": {"forbidden": [
            {"key": k, "exists": exists} for k in keys]}},
        "compliance": {"frameworks": [{"name": "F", "controls": [
            {"id": "1", "mappings": [{"check": c} for c in checks]}]}]},
    }
    _only_spec_errors((HEADER + "spec: " + _dump(body) + "\n").encode())
