"""The quick schema check agrees with jsonschema: it never passes a document jsonschema
rejects (the run would then miss problems), and it passes the valid documents we ship (or
every run would pay for importing jsonschema)."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from pytest_kspec.spec.validation import quick_valid, schema

HERE = Path(__file__).parent
REPO = HERE.parents[1]
SCHEMAS = ("cluster-specification", "drift-config")
DOCS = sorted([*HERE.glob("valid/*.yaml"), *HERE.glob("invalid/*.yaml"),
               *REPO.glob("examples/*.yaml")])


def _load(path: Path) -> list[Any]:
    try:
        return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError):
        return []


def _jsonschema_valid(name: str, data: Any) -> bool:
    return not any(Draft202012Validator(schema(name)).iter_errors(data))


@pytest.mark.parametrize("name", SCHEMAS)
def test_bundled_schemas_are_valid_2020_12(name: str) -> None:
    Draft202012Validator.check_schema(schema(name))


@pytest.mark.parametrize("path", DOCS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_corpus_document_gets_the_same_verdict(path: Path) -> None:
    for data in _load(path):
        for name in SCHEMAS:
            assert quick_valid(schema(name), data) is _jsonschema_valid(name, data), name


def test_shipped_examples_take_the_quick_path() -> None:
    examples = [d for p in REPO.glob("examples/*.yaml") for d in _load(p)
                if isinstance(d, dict) and d.get("kind") == "ClusterSpecification"]
    assert examples
    assert all(quick_valid(schema("cluster-specification"), d) for d in examples)


SEEDS = [d for p in DOCS for d in _load(p) if isinstance(d, dict)
         and d.get("kind") in ("ClusterSpecification", "DriftConfig")
         and _jsonschema_valid("cluster-specification" if d["kind"] == "ClusterSpecification"
                               else "drift-config", d)]
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 70000),
                    st.floats(allow_nan=False), st.sampled_from(
                        ["1.29", "v1.30.1", "restricted", "baseline", "Enforce", "5m", "",
                         "kspec.dev/v1", "ClusterSpecification", "x_Y", "http://x"]),
                    st.text(max_size=8))
VALUES = st.recursive(SCALARS, lambda c: st.one_of(
    st.lists(c, max_size=3), st.dictionaries(st.sampled_from(
        ["name", "enforce", "minVersion", "required", "policies", "x", "key", "value"]),
        c, max_size=3)), max_leaves=8)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_valid_documents_get_the_same_verdict(data: st.DataObject) -> None:
    doc = copy.deepcopy(data.draw(st.sampled_from(SEEDS)))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(doc)))
        if not path:
            continue
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        action = data.draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = data.draw(VALUES)
        elif action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif isinstance(parent[path[-1]], dict):
            parent[path[-1]][data.draw(st.sampled_from(["extra", "name", "x"]))] = \
                data.draw(VALUES)
    name = "cluster-specification" if doc.get("kind") == "ClusterSpecification" \
        else "drift-config"
    assert quick_valid(schema(name), doc) is _jsonschema_valid(name, doc)


def test_a_valid_spec_loads_without_importing_jsonschema() -> None:
    code = ("import sys; from pytest_kspec.spec import load_spec; "
            f"load_spec({str(REPO / 'examples' / 'moderate.yaml')!r}); "
            "print('jsonschema' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"
