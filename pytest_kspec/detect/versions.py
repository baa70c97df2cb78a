"""Configuration drift: is the cluster's Kubernetes version within what the spec allows?

Versions are compared the way people mean them: ``maxVersion: 1.30`` allows every 1.30.x,
``minVersion: 1.29`` means 1.29.0 or later, ``excludedVersions: [1.28]`` excludes every
1.28.x while ``1.29.2`` excludes exactly that patch. Vendor suffixes (``+k3s1``,
``-eks-a1b2c3``, ``-gke.1286000``, ``+rke2r1``) are not part of the version.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_kspec.detect.policydrift import DriftEvent
from pytest_kspec.errors import ClusterError, SpecError

Version = tuple[int, int, int | None]

_VERSION = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?(?:[-+][0-9A-Za-z.+-]*)?")
RESOURCE = "Cluster/kubernetes"


def parse_k8s_version(text: str) -> Version:
    """``v1.30.1``/``1.30``/``1.30.1+k3s1``/``v1.29.4-eks-a1b2c3`` -> ``(1, 30, 1)``;
    the patch is None when not given. Raises ValueError naming the bad text."""
    match = _VERSION.fullmatch(str(text).strip())
    if match is None:
        raise ValueError(
            f"{text!r} is not a Kubernetes version (expected MAJOR.MINOR[.PATCH], "
            "e.g. 1.30 or v1.30.1, optionally with a vendor suffix like +k3s1)")
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch) if patch is not None else None


def cluster_version(version_info: Mapping[str, Any]) -> tuple[str, Version]:
    """The cluster's version from a ``/version`` body: ``gitVersion``, or else
    ``major``/``minor`` (a trailing ``+`` as in GKE's ``"27+"`` dropped).
    Raises ClusterError when neither gives a version."""
    git = str(version_info.get("gitVersion") or "").strip()
    if git:
        try:
            return git, parse_k8s_version(git)
        except ValueError:
            pass
    major = str(version_info.get("major") or "").strip().rstrip("+")
    minor = str(version_info.get("minor") or "").strip().rstrip("+")
    if major.isdigit() and minor.isdigit():
        text = git or f"v{int(major)}.{int(minor)}"
        return text, (int(major), int(minor), None)
    raise ClusterError(
        f"the cluster's /version answer has no usable version (gitVersion={git!r}, "
        f"major={version_info.get('major')!r}, minor={version_info.get('minor')!r}); "
        "check that the API server is a Kubernetes API server")


def _spec_version(field: str, value: Any) -> Version | None:
    if value is None:
        return None
    try:
        return parse_k8s_version(str(value))
    except ValueError as e:
        raise SpecError([f"spec.kubernetes.{field}: {e}"]) from e


def _below_min(v: Version, floor: Version) -> bool:
    if v[2] is None or floor[2] is None:
        return v[:2] < floor[:2]
    return v < floor


def _above_max(v: Version, ceiling: Version) -> bool:
    if v[2] is None or ceiling[2] is None:
        return v[:2] > ceiling[:2]
    return v > ceiling


def _excluded(v: Version, excluded: Version) -> bool:
    if v[:2] != excluded[:2]:
        return False
    if excluded[2] is None:
        return True
    return v[2] == excluded[2]


def _text(value: Any) -> str:
    return str(value).strip()


def check_version(rule: Mapping[str, Any],
                  version_info: Mapping[str, Any]) -> DriftEvent | None:
    """Drift when the cluster's version is outside ``[minVersion, maxVersion]`` or in
    ``excludedVersions`` (``rule`` is the spec's ``kubernetes`` section); None when fine.

    A cluster that reports no patch (``major``/``minor`` only) is judged at minor level:
    it is not counted as below ``1.29.2`` when it runs 1.29, nor as an excluded patch.
    Raises SpecError for a bad spec version, ClusterError for an unusable ``/version``.
    """
    git, version = cluster_version(version_info)
    excluded_raw: Sequence[Any] = list(rule.get("excludedVersions") or [])
    expected = {"minVersion": rule.get("minVersion"), "maxVersion": rule.get("maxVersion"),
                "excludedVersions": [_text(x) for x in excluded_raw]}
    floor = _spec_version("minVersion", rule.get("minVersion"))
    ceiling = _spec_version("maxVersion", rule.get("maxVersion"))
    excluded = [_spec_version(f"excludedVersions[{i}]", raw) for i, raw in enumerate(excluded_raw)]
    drift, message = None, ""
    if floor is not None and _below_min(version, floor):
        drift = "out-of-range"
        message = f"Kubernetes {git} is below minVersion {_text(rule['minVersion'])}"
    elif ceiling is not None and _above_max(version, ceiling):
        drift = "out-of-range"
        message = f"Kubernetes {git} is above maxVersion {_text(rule['maxVersion'])}"
    else:
        for raw, ex in zip(excluded_raw, excluded, strict=True):
            if ex is not None and _excluded(version, ex):
                drift = "excluded-version"
                message = f"Kubernetes {git} is excluded by excludedVersions entry {_text(raw)}"
                break
    if drift is None:
        return None
    return DriftEvent(type="configuration", severity="high", resource=RESOURCE, drift=drift,
                      expected=expected, actual={"version": git}, check="kubernetes.version",
                      message=message)
