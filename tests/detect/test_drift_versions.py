"""Kubernetes version drift: parsing vendor versions and comparing them as people mean."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_kspec.detect.versions import check_version, parse_k8s_version
from pytest_kspec.errors import ClusterError, SpecError


@pytest.mark.parametrize(("text", "parsed"), [
    ("v1.30.1", (1, 30, 1)),
    ("1.30", (1, 30, None)),
    ("1.30.1+k3s1", (1, 30, 1)),
    ("v1.29.4-eks-a1b2c3", (1, 29, 4)),
    ("v1.28.3-gke.1286000", (1, 28, 3)),
    ("1.27.10+rke2r1", (1, 27, 10)),
    (" v1.31.0 ", (1, 31, 0)),
    ("v1.30.0-rc.1", (1, 30, 0)),
])
def test_parse(text: str, parsed: tuple[int, int, int | None]) -> None:
    assert parse_k8s_version(text) == parsed


@pytest.mark.parametrize("bad", ["", "abc", "1", "v1", "1.x", "1.30.1.2", "v1..3", "latest"])
def test_parse_rejects(bad: str) -> None:
    with pytest.raises(ValueError, match="is not a Kubernetes version"):
        parse_k8s_version(bad)


RULE = {"minVersion": "1.28", "maxVersion": "1.30", "excludedVersions": ["1.29.2", "1.27"]}

CASES: list[tuple[dict[str, Any], str, str | None]] = [
    (RULE, "v1.30.1", None),                       # max without patch: any 1.30.x
    (RULE, "v1.30.14+k3s1", None),
    (RULE, "v1.31.0", "out-of-range"),
    (RULE, "v1.28.0-gke.100", None),               # min 1.28 means >= 1.28.0
    (RULE, "v1.27.16-eks-a1b2c3", "out-of-range"),  # below min wins over excluded
    (RULE, "v1.29.2", "excluded-version"),         # exact patch excluded
    (RULE, "v1.29.2+rke2r1", "excluded-version"),
    (RULE, "v1.29.3", None),
    ({"excludedVersions": ["1.28"]}, "v1.28.9", "excluded-version"),  # whole minor
    ({"excludedVersions": ["1.28"]}, "v1.29.0", None),
    ({"minVersion": "1.29.4"}, "v1.29.3", "out-of-range"),
    ({"minVersion": "1.29.4"}, "v1.29.4-eks-1", None),
    ({"maxVersion": "1.30.2"}, "v1.30.3", "out-of-range"),
    ({"maxVersion": "1.30.2"}, "v1.30.2", None),
    ({"minVersion": "v1.29.0", "maxVersion": "v1.29.9"}, "1.29.5", None),
    ({}, "v1.18.0", None),
]


@pytest.mark.parametrize(("rule", "version", "drift"), CASES)
def test_version_table(rule: dict[str, Any], version: str, drift: str | None) -> None:
    event = check_version(rule, {"gitVersion": version, "major": "1", "minor": "0"})
    assert (event.drift if event else None) == drift
    if event is not None:
        assert (event.type, event.resource, event.severity) == (
            "configuration", "Cluster/kubernetes", "high")
        assert event.actual == {"version": version}
        assert set(event.expected) == {"minVersion", "maxVersion", "excludedVersions"}
        assert "\n" not in event.message and version in event.message


def test_major_minor_fallback_with_gke_plus() -> None:
    info = {"major": "1", "minor": "27+"}
    event = check_version({"minVersion": "1.28"}, info)
    assert event is not None and event.drift == "out-of-range"
    assert check_version({"minVersion": "1.27.3", "excludedVersions": ["1.27.1"]}, info) is None
    assert check_version({"excludedVersions": ["1.27"]}, info) is not None


def test_message_names_the_bound() -> None:
    event = check_version({"maxVersion": "1.30"}, {"gitVersion": "v1.31.2"})
    assert event is not None
    assert event.message == "Kubernetes v1.31.2 is above maxVersion 1.30"


def test_bad_spec_version_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match=r"spec\.kubernetes\.excludedVersions\[1\]: 'one-two'"):
        check_version({"excludedVersions": ["1.28", "one-two"]}, {"gitVersion": "v1.30.0"})


def test_unusable_version_answer_is_a_cluster_error() -> None:
    with pytest.raises(ClusterError, match="no usable version"):
        check_version({"minVersion": "1.28"}, {"gitVersion": "weird", "major": "", "minor": ""})
