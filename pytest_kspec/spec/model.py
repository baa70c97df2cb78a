"""The ClusterSpecification model and its strict loader (schema plus the rules a schema cannot say).

``load_spec`` either returns a :class:`ClusterSpec` whose ``body`` every other module can trust,
or raises :class:`~pytest_kspec.errors.SpecError` listing every problem as
``FILE:LINE:COL: spec.path: what is wrong (what to write instead)``.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_kspec.desired import catalog
from pytest_kspec.spec.validation import document_problems, show, suggest
from pytest_kspec.spec.yamlsafe import (
    FieldPath,
    Locator,
    Problem,
    YamlDocument,
    dotted,
    raise_problems,
    read_document,
    read_file,
)

API_VERSION = "kspec.dev/v1"
KIND = "ClusterSpecification"

_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
_KUBE_VERSION = re.compile(r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@dataclass(frozen=True)
class ClusterSpec:
    """A validated ``kspec.dev/v1 ClusterSpecification``.

    ``body`` is the ``spec`` section as plain dicts/lists (Kubernetes versions always as text),
    ``document`` the whole document, ``content_hash`` the sha256 of the file's bytes.
    """

    path: Path
    name: str
    version: str
    description: str
    labels: Mapping[str, str] = field(compare=False, hash=False)
    body: Mapping[str, Any] = field(compare=False, hash=False)
    document: Mapping[str, Any] = field(compare=False, hash=False)
    content_hash: str = ""

    @property
    def label(self) -> str:
        """``name@version``, e.g. ``production-cluster@1.2.0``."""
        return f"{self.name}@{self.version}"


def load_spec(path: str | os.PathLike[str], *, flag: str = "--kspec-spec") -> ClusterSpec:
    """Read and validate the spec file at ``path``; raise SpecError listing every problem.

    ``flag`` is the option that named the file (``--spec`` for the CLI), for the hint.
    """
    return parse_spec(read_file(path, flag), os.fspath(path))


def parse_spec(data: bytes, source: str) -> ClusterSpec:
    """Validate the bytes of a spec file; ``source`` names it in messages and becomes ``path``."""
    doc = read_document(data, source)
    problems = document_problems(doc, KIND, "cluster-specification")
    if not (problems and any(p.path[:1] == ("kind",) for p in problems)):
        _normalize_versions(doc)
        problems += _semantic_problems(doc, checks_known=not _outside_compliance(problems))
    raise_problems(source, problems)
    document: dict[str, Any] = doc.data
    metadata = document["metadata"]
    return ClusterSpec(
        path=Path(source),
        name=metadata["name"],
        version=metadata["version"],
        description=metadata.get("description", ""),
        labels=dict(metadata.get("labels") or {}),
        body=document.get("spec") or {},
        document=document,
        content_hash=hashlib.sha256(data).hexdigest(),
    )


def parse_kube_version(text: str) -> tuple[int, int, int | None]:
    """``"v1.29.4"`` → ``(1, 29, 4)``, ``"1.29"`` → ``(1, 29, None)``; ValueError otherwise."""
    match = _KUBE_VERSION.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a Kubernetes version (write e.g. 1.29 or 1.29.4)")
    major, minor, patch = match.groups()
    return int(major), int(minor), None if patch is None else int(patch)


def _outside_compliance(problems: list[Problem]) -> bool:
    return any(p.path[:2] != ("spec", "compliance") for p in problems)


def _normalize_versions(doc: YamlDocument) -> None:
    """Kubernetes versions written as YAML numbers (``1.30``) become their source text."""
    kube = _dict(_dict(doc.data).get("spec")).get("kubernetes")
    if not isinstance(kube, dict):
        return
    base: FieldPath = ("spec", "kubernetes")
    for key in ("minVersion", "maxVersion"):
        if isinstance(kube.get(key), (int, float)) and not isinstance(kube[key], bool):
            kube[key] = doc.locator.raw((*base, key)) or str(kube[key])
    excluded = kube.get("excludedVersions")
    if isinstance(excluded, list):
        for i, item in enumerate(excluded):
            if isinstance(item, (int, float)) and not isinstance(item, bool):
                excluded[i] = doc.locator.raw((*base, "excludedVersions", i)) or str(item)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _semantic_problems(doc: YamlDocument, checks_known: bool) -> list[Problem]:
    data = _dict(doc.data)
    body = _dict(data.get("spec"))
    loc = doc.locator
    problems = list(_metadata(_dict(data.get("metadata")), loc))
    problems += _kubernetes(_dict(body.get("kubernetes")), loc)
    problems += _pod_security(_dict(body.get("podSecurity")), loc)
    network = _dict(body.get("network"))
    problems += _names(_list(network.get("requiredPolicies")),
                       ("spec", "network", "requiredPolicies"), "NetworkPolicy", loc)
    problems += _containers(_dict(_dict(body.get("workloads")).get("containers")), loc)
    problems += _admission(_dict(body.get("admission")), loc)
    problems += _compliance(body, loc, checks_known)
    return problems


def _metadata(meta: dict[str, Any], loc: Locator) -> Iterator[Problem]:
    version = meta.get("version")
    if isinstance(version, str) and version and not _SEMVER.match(version):
        path: FieldPath = ("metadata", "version")
        yield Problem(loc.value(path), path, f"{show(version)} is not a semantic version "
                      '(write MAJOR.MINOR.PATCH, e.g. "1.0.0")')


def _kubernetes(kube: dict[str, Any], loc: Locator) -> Iterator[Problem]:
    base: FieldPath = ("spec", "kubernetes")
    parsed: dict[str, tuple[int, int, int | None]] = {}
    entries: list[tuple[FieldPath, Any]] = [((*base, k), kube[k])
                                            for k in ("minVersion", "maxVersion") if k in kube]
    entries += [((*base, "excludedVersions", i), v)
                for i, v in enumerate(_list(kube.get("excludedVersions")))]
    for path, value in entries:
        if not isinstance(value, str):
            continue
        try:
            version = parse_kube_version(value)
        except ValueError:
            yield Problem(loc.value(path), path, f"{show(value)} is not a Kubernetes version "
                          '(write MAJOR.MINOR or MAJOR.MINOR.PATCH, e.g. "1.29" or "1.29.4")')
            continue
        parsed[str(path[-1])] = version
    low, high = parsed.get("minVersion"), parsed.get("maxVersion")
    if low and high:
        width = 3 if low[2] is not None and high[2] is not None else 2
        if high[:width] < low[:width]:
            path = (*base, "maxVersion")
            yield Problem(loc.value(path), path, f"{kube['maxVersion']} is lower than "
                          f"minVersion {kube['minVersion']} (swap them or raise maxVersion)")


def _pod_security(pss: dict[str, Any], loc: Locator) -> Iterator[Problem]:
    base: FieldPath = ("spec", "podSecurity", "exemptions")
    seen: dict[str, int] = {}
    for i, item in enumerate(_list(pss.get("exemptions"))):
        namespace = _dict(item).get("namespace")
        if not isinstance(namespace, str) or not namespace:
            continue
        path: FieldPath = (*base, i, "namespace")
        if len(namespace) > 63 or not _DNS_LABEL.match(namespace):
            yield Problem(loc.value(path), path, f"{show(namespace)} is not a valid namespace "
                          "name (lowercase letters, digits and '-', at most 63, starting and "
                          f'ending with a letter or digit, e.g. "{_dns_fix(namespace, False)}")')
        elif namespace in seen:
            yield Problem(loc.value(path), path, f"namespace {show(namespace)} is exempted "
                          f"twice (also at {_dotted_index(base, seen[namespace])}; keep one)")
        seen.setdefault(namespace, i)


def _names(items: list[Any], base: FieldPath, what: str, loc: Locator) -> Iterator[Problem]:
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        name = _dict(item).get("name")
        if not isinstance(name, str) or not name:
            continue
        path: FieldPath = (*base, i, "name")
        if len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
            yield Problem(loc.value(path), path, f"{show(name)} is not a valid {what} name "
                          "(lowercase letters, digits, '-' and '.', starting and ending with a "
                          f'letter or digit, e.g. "{_dns_fix(name, True)}")')
        elif name in seen:
            yield Problem(loc.value(path), path, f"duplicate name {show(name)} (also at "
                          f"{_dotted_index(base, seen[name])}; keep one)")
        seen.setdefault(name, i)


def _dns_fix(name: str, dots: bool) -> str:
    allowed = "a-z0-9.-" if dots else "a-z0-9-"
    fixed = re.sub(f"[^{allowed}]+", "-", name.lower()).strip("-.")[:63]
    return fixed.strip("-.") or "my-name"


def _dotted_index(base: FieldPath, i: int) -> str:
    return dotted((*base, i))


def _containers(containers: dict[str, Any], loc: Locator) -> Iterator[Problem]:
    for which in ("required", "forbidden"):
        base: FieldPath = ("spec", "workloads", "containers", which)
        seen: dict[tuple[str, str, Any], int] = {}
        for i, rule in enumerate(_list(containers.get(which))):
            if not isinstance(rule, dict) or not isinstance(rule.get("key"), str):
                continue
            path: FieldPath = (*base, i)
            if "value" not in rule and "exists" not in rule:
                yield Problem(loc.value(path), path, f"rule for {show(rule['key'])} needs "
                              "value or exists (add value: true, or exists: true)")
                continue
            value = rule.get("value")
            as_bool = catalog.as_bool(value)
            ident = (rule["key"], repr(as_bool if as_bool is not None else value),
                     rule.get("exists"))
            if ident in seen:
                yield Problem(loc.value(path), path, f"duplicate rule for {show(rule['key'])} "
                              f"(same as {_dotted_index(base, seen[ident])}; remove one)")
            seen.setdefault(ident, i)


def _admission(admission: dict[str, Any], loc: Locator) -> Iterator[Problem]:
    base: FieldPath = ("spec", "admission", "required")
    for i, req in enumerate(_list(admission.get("required"))):
        pattern = _dict(req).get("namePattern")
        if not isinstance(pattern, str):
            continue
        try:
            re.compile(pattern)
        except re.error as e:
            path: FieldPath = (*base, i, "namePattern")
            yield Problem(loc.value(path), path, f"invalid regular expression {show(pattern)}: "
                          f"{e.msg} at position {e.pos} (fix the pattern; in YAML, single "
                          "quotes keep backslashes as written)")
    policies = _dict(admission.get("policies"))
    yield from _names(_list(policies.get("requiredPolicies")),
                      ("spec", "admission", "policies", "requiredPolicies"), "policy", loc)


def _compliance(body: dict[str, Any], loc: Locator, checks_known: bool) -> Iterator[Problem]:
    base: FieldPath = ("spec", "compliance", "frameworks")
    known: list[str] = []
    if checks_known:
        known = (catalog.check_ids(body) + list(catalog.LEGACY_GROUPS)
                 + catalog.expected_policy_names(body))
    seen: dict[str, int] = {}
    for f, framework in enumerate(_list(_dict(body.get("compliance")).get("frameworks"))):
        framework = _dict(framework)
        name = framework.get("name")
        if isinstance(name, str) and name:
            path: FieldPath = (*base, f, "name")
            if name in seen:
                yield Problem(loc.value(path), path, f"duplicate framework {show(name)} (also "
                              f"at {_dotted_index(base, seen[name])}; merge their controls)")
            seen.setdefault(name, f)
        ids: dict[str, int] = {}
        for c, control in enumerate(_list(framework.get("controls"))):
            control = _dict(control)
            cbase: FieldPath = (*base, f, "controls")
            cid = control.get("id")
            if isinstance(cid, str) and cid:
                if cid in ids:
                    path = (*cbase, c, "id")
                    yield Problem(loc.value(path), path, f"duplicate control id {show(cid)} "
                                  f"(also at {_dotted_index(cbase, ids[cid])}; keep one)")
                ids.setdefault(cid, c)
            if not checks_known:
                continue
            for m, mapping in enumerate(_list(control.get("mappings"))):
                check = _dict(mapping).get("check")
                if isinstance(check, str) and check and check not in known:
                    path = (*cbase, c, "mappings", m, "check")
                    hint = suggest(check, known).rstrip() or (
                        "use a check id of this spec, a generated policy name or a group "
                        "such as workload.security")
                    yield Problem(loc.value(path), path, f"unknown check {show(check)} ({hint})")
