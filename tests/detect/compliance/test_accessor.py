"""A container rule's compiled accessor answers as the generic ``lookup`` does, dotted keys
and list indexes included (the page-by-page pass judges every pod with it)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_kspec.detect.compliance.workloads import Accessor, lookup

SEGMENTS = ["a", "b", "c", "0", "1"]
KEYS = st.sampled_from(["a", "b", "c", "0", "1", "a.b", "b.c", "a.b.c", "0.a"])
LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-2, 2), st.sampled_from(["", "x"]))
TREES = st.recursive(LEAVES, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=4)), max_leaves=12)
PATHS = st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=4).map(tuple)


@settings(max_examples=500, deadline=None)
@given(obj=TREES, parts=PATHS)
def test_compiled_accessor_equals_lookup(obj: Any, parts: tuple[str, ...]) -> None:
    got, want = Accessor(parts)(obj), lookup(obj, parts)
    assert got is want or (type(got) is type(want) and got == want)


def test_longer_dotted_key_first_then_falls_back() -> None:
    obj = {"a.b": {"c": None}, "a": {"b": {"c": 1}}}
    assert Accessor(("a", "b", "c"))(obj) == 1 == lookup(obj, ("a", "b", "c"))
    obj2 = {"a.b": {"c": 2}, "a": {"b": {"c": 1}}}
    assert Accessor(("a", "b", "c"))(obj2) == 2
