"""DriftConfig (``kspec.dev/v1``): what to detect, how often, what to remediate, alerts, storage.

Loaded with the same strict machinery as the ClusterSpecification (schema, ``file:line``
errors). ``parse_duration`` and ``parse_types`` are shared with the CLI and plugin options
(``--interval``, ``--kspec-types``), so a value means the same in a file and on a command line.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pytest_kspec.spec.alerting import Channel, alerts_problems, build_channels
from pytest_kspec.spec.validation import document_problems, show
from pytest_kspec.spec.waivers import Waiver, build_waivers, waiver_problems
from pytest_kspec.spec.yamlsafe import (
    FieldPath,
    Locator,
    Problem,
    raise_problems,
    read_document,
    read_file,
)

KIND = "DriftConfig"

DRIFT_TYPES: tuple[str, ...] = ("policy", "compliance", "configuration", "resource")
"""Drift types in report order (singular: the names used in node ids and reports)."""

SEVERITIES: tuple[str, ...] = ("info", "low", "warning", "medium", "high", "critical")
"""Alert severities, least to most severe."""

MIN_INTERVAL = 10
"""Shortest watch interval in seconds (anything faster only loads the API server)."""

_TYPE_ALIASES: Mapping[str, str] = {
    "policy": "policy", "policies": "policy",
    "compliance": "compliance", "compliances": "compliance",
    "configuration": "configuration", "configurations": "configuration",
    "resource": "resource", "resources": "resource",
}
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_DAY = 86_400


def parse_duration(text: str) -> int:
    """``"30s"``, ``"5m"``, ``"1h30m"``, ``"30d"`` → seconds; ValueError saying what to write."""
    cleaned = str(text).strip().lower()
    match = _DURATION.match(cleaned)
    if not cleaned or not match:
        raise ValueError(f"invalid duration {str(text)!r}: write whole numbers with units "
                         "d, h, m, s, e.g. 30s, 5m, 1h30m or 7d")
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return days * _DAY + hours * 3600 + minutes * 60 + seconds


def parse_types(value: str | Iterable[str]) -> frozenset[str]:
    """Drift types from ``"policy,compliance"``, a list, plural forms or ``all`` (singular out).

    Raises ValueError naming the bad value and the allowed ones.
    """
    items = [value] if isinstance(value, str) else list(value)
    out: set[str] = set()
    for item in items:
        for part in str(item).split(","):
            word = part.strip().lower()
            if not word:
                continue
            if word == "all":
                out.update(DRIFT_TYPES)
            elif word in _TYPE_ALIASES:
                out.add(_TYPE_ALIASES[word])
            else:
                raise ValueError(f"unknown drift type {part.strip()!r} (allowed: "
                                 f"{', '.join(DRIFT_TYPES)} or all; plural forms accepted)")
    if not out:
        raise ValueError(f"no drift type given (allowed: {', '.join(DRIFT_TYPES)} or all)")
    return frozenset(out)


@dataclass(frozen=True)
class Detection:
    """Which drift types are detected (``spec.detection``); all on by default. ``efficacy``
    probes each expected Enforce policy with a dry-run pod in ``probe_namespace``."""

    policies: bool = True
    compliance: bool = True
    configuration: bool = True
    resources: bool = True
    efficacy: bool = False
    probe_namespace: str = "default"

    @property
    def types(self) -> frozenset[str]:
        """The enabled types, singular (``policy``, ``compliance``, ...)."""
        flags = (self.policies, self.compliance, self.configuration, self.resources)
        return frozenset(t for t, on in zip(DRIFT_TYPES, flags, strict=True) if on)


@dataclass(frozen=True)
class Remediation:
    """``spec.remediation``: off unless asked; only policy drift by default.

    ``resources`` maps a check id to ``report`` or ``delete`` (resource drift);
    ``max_deletions`` caps deletions per run; ``prune`` removes extra kspec policies.
    """

    auto: bool = False
    dry_run: bool = False
    types: frozenset[str] = frozenset({"policy"})
    prune: bool = False
    max_deletions: int = 5
    resources: Mapping[str, str] = field(default_factory=dict, hash=False)
    loop_restores: int = 3
    loop_window: int = 600
    """Watch mode's loop breaker: a resource restored ``loop_restores`` times within
    ``loop_window`` seconds is no longer fixed (``loopBreaker: {restores, window}``)."""


@dataclass(frozen=True)
class Webhook:
    """Where alerts go; the URL is kept out of ``repr`` (it often carries a token)."""

    url: str = field(repr=False)
    severity: str = "warning"


@dataclass(frozen=True)
class Alerts:
    """``spec.alerts``; ``min_interval`` (seconds) rate-limits repeated alerts.

    ``channels`` is every destination (the plan's ``webhook``/``email`` entries included),
    see :mod:`pytest_kspec.spec.alerting`; alerts go out only when ``enabled``.
    """

    enabled: bool = False
    webhook: Webhook | None = None
    email_enabled: bool = False
    min_interval: int = 300
    channels: tuple[Channel, ...] = ()
    reminder: int | None = None


@dataclass(frozen=True)
class Storage:
    """``spec.storage``: where the history lives.

    ``sqlite``: a file at ``path`` (None: ``<reports>/history.db``). ``postgres``: the
    database at ``url`` (no password in it), the password read at run time from the
    environment variable ``password_env`` or the file ``password_file`` (a mounted Secret);
    with neither, libpq's own ``PGPASSWORD`` / ``~/.pgpass`` apply.
    """

    type: str = "sqlite"
    path: str | None = None
    retention: int = 30 * _DAY
    keep_runs: int = 20
    url: str | None = None
    password_env: str | None = None
    password_file: str | None = None


@dataclass(frozen=True)
class ClusterEntry:
    """One cluster of ``spec.clusters``: ``name`` (node ids, reports, history) and where it is:
    a ``context`` of the run's kubeconfig, a ``kubeconfig`` of its own (its current context),
    or both. ``kubeconfig`` is relative to the directory the run was started in."""

    name: str
    context: str | None = None
    kubeconfig: str | None = None


CLUSTER_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$")
"""A cluster name as node ids and report folders take it: letters, digits, ``.``, ``_``, ``-``."""

RESERVED_CLUSTER_NAMES = frozenset({*DRIFT_TYPES, "custom", "all"})
"""Names a cluster cannot take: they would read as a drift type in a node id, or as
``--kspec-context all``."""


@dataclass(frozen=True)
class DriftConfig:
    """A validated DriftConfig; ``interval`` and durations are seconds. ``clusters`` (empty:
    the one cluster the options name) is every cluster one run checks."""

    name: str = "default"
    path: Path | None = None
    detection: Detection = Detection()
    interval: int = 300
    remediation: Remediation = Remediation()
    alerts: Alerts = Alerts()
    storage: Storage = Storage()
    waivers: tuple[Waiver, ...] = ()
    clusters: tuple[ClusterEntry, ...] = ()

    @classmethod
    def default(cls) -> DriftConfig:
        """The configuration used when no ``--kspec-config`` / ``--config`` is given."""
        return cls()


def load_drift_config(path: str | os.PathLike[str], *,
                      flag: str = "--kspec-config") -> DriftConfig:
    """Read and validate a DriftConfig file; raise SpecError listing every problem.

    ``flag`` is the option that named the file (``--config`` for the CLI), for the hint.
    """
    return parse_drift_config(read_file(path, flag), os.fspath(path))


def parse_drift_config(data: bytes, source: str, *, now: float | None = None) -> DriftConfig:
    """Validate the bytes of a DriftConfig file; ``source`` names it in messages; ``now``
    (default: the current time) is what waiver expiry dates are checked against."""
    doc = read_document(data, source)
    problems = document_problems(doc, KIND, "drift-config")
    if not any(p.path[:1] == ("kind",) for p in problems):
        spec = _dict(_dict(doc.data).get("spec"))
        problems += _semantic_problems(spec, doc.locator)
        problems += waiver_problems(spec, doc.locator, time.time() if now is None else now)
    raise_problems(source, problems)
    document: dict[str, Any] = doc.data
    config = _build(document, Path(source))
    waivers = build_waivers(_dict(document.get("spec")), doc.locator, source)
    return dataclasses.replace(config, waivers=waivers) if waivers else config


def _clusters(entries: Any) -> tuple[ClusterEntry, ...]:
    return tuple(ClusterEntry(name=str(e["name"]), context=e.get("context"),
                              kubeconfig=e.get("kubeconfig"))
                 for e in entries or () if isinstance(e, dict))


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _semantic_problems(spec: dict[str, Any], loc: Locator) -> list[Problem]:
    problems: list[Problem] = []
    alerts = _dict(spec.get("alerts"))
    storage = _dict(spec.get("storage"))
    durations: tuple[tuple[FieldPath, Any, int], ...] = (
        (("spec", "interval"), spec.get("interval"), MIN_INTERVAL),
        (("spec", "alerts", "minInterval"), alerts.get("minInterval"), 0),
        (("spec", "remediation", "loopBreaker", "window"),
         _dict(_dict(spec.get("remediation")).get("loopBreaker")).get("window"), 1),
        (("spec", "alerts", "reminder"), alerts.get("reminder"), 60),
        (("spec", "alerts", "timeout"), alerts.get("timeout"), 1),
        (("spec", "storage", "retention"), storage.get("retention"), 3600),
    )
    for i, channel in enumerate(alerts.get("channels") or []):
        where: FieldPath = ("spec", "alerts", "channels", i)
        for key, minimum in (("minInterval", 0), ("reminder", 60), ("timeout", 1)):
            problems += _duration((*where, key), _dict(channel).get(key), minimum, loc)
    for where, value, minimum in durations:
        problems += _duration(where, value, minimum, loc)
    problems += _storage_problems(storage, loc)
    problems += alerts_problems(alerts, loc)
    problems += _cluster_problems(spec.get("clusters"), loc)
    return problems


def _cluster_problems(entries: Any, loc: Locator) -> list[Problem]:
    """``spec.clusters`` beyond the schema: names fit node ids and folders and are unique,
    each entry says where its cluster is."""
    problems: list[Problem] = []
    if not isinstance(entries, list):
        return problems
    seen: dict[str, int] = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            continue
        path: FieldPath = ("spec", "clusters", i)
        name = entry.get("name")
        if isinstance(name, str) and name:
            where: FieldPath = (*path, "name")
            if not CLUSTER_NAME.match(name):
                problems.append(Problem(loc.value(where), where, f"{show(name)} is not a "
                                        "cluster name: use letters, digits, '.', '_' and '-' "
                                        "(at most 63, starting and ending with a letter or "
                                        "digit), e.g. prod-eu"))
            elif name.lower() in RESERVED_CLUSTER_NAMES:
                problems.append(Problem(loc.value(where), where, f"{show(name)} is reserved "
                                        "(a drift type or 'all'): name the cluster otherwise"))
            elif name in seen:
                problems.append(Problem(loc.value(where), where, f"{show(name)} is already "
                                        f"the name of clusters[{seen[name]}]: give each "
                                        "cluster its own name"))
            seen.setdefault(name, i)
        if "context" not in entry and "kubeconfig" not in entry:
            problems.append(Problem(loc.key(path), path, "say where the cluster is: context: "
                                    "<kubeconfig context> and/or kubeconfig: <file>"))
    return problems


def _storage_problems(storage: dict[str, Any], loc: Locator) -> list[Problem]:
    problems: list[Problem] = []
    kind = storage.get("type", "sqlite")
    where: FieldPath = ("spec", "storage")

    def problem(field: str, text: str) -> None:
        path: FieldPath = (*where, field)
        problems.append(Problem(loc.value(path) if field in storage else loc.key(where),
                                path, text))

    if kind == "postgres":
        url = storage.get("url")
        if "path" in storage:
            problem("path", "path is for type sqlite (remove it: a postgres history lives at "
                           "url)")
        if not isinstance(url, str) or not url:
            if "url" not in storage:
                problem("url", "type postgres needs a url (e.g. "
                               "postgresql://kspec@db.example:5432/kspec)")
        elif urlsplit(url).scheme not in ("postgresql", "postgres"):
            problem("url", f"{show(url)} is not a PostgreSQL URL (write "
                           "postgresql://USER@HOST:5432/DATABASE)")
        else:
            try:
                has_password = urlsplit(url).password is not None
            except ValueError:
                has_password = False
            if has_password:
                problem("url", "the url carries a password: remove it and set passwordEnv "
                               "(an environment variable) or passwordFile (a mounted Secret)")
        if "passwordEnv" in storage and "passwordFile" in storage:
            problem("passwordFile", "give passwordEnv or passwordFile, not both (remove one)")
        env = storage.get("passwordEnv")
        if isinstance(env, str) and env and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", env):
            problem("passwordEnv", f"{show(env)} is not an environment variable name (write "
                                   "e.g. KSPEC_HISTORY_PASSWORD)")
    else:
        for field in ("url", "passwordEnv", "passwordFile"):
            if field in storage:
                problem(field, f"{field} is for type postgres (set type: postgres, or "
                               "remove it)")
    return problems


def _duration(path: FieldPath, value: Any, minimum: int, loc: Locator) -> Iterator[Problem]:
    if not isinstance(value, str) or not value:
        return
    try:
        seconds = parse_duration(value)
    except ValueError:
        yield Problem(loc.value(path), path, f"{show(value)} is not a duration (write whole "
                      "numbers with units d, h, m, s, e.g. 30s, 5m, 1h30m or 7d)")
        return
    if seconds < minimum:
        shown = f"{minimum}s" if minimum < 3600 else f"{minimum // 3600}h"
        yield Problem(loc.value(path), path, f"{show(value)} is shorter than the minimum "
                      f"{shown} (write {shown} or more)")


def _types(value: list[str]) -> frozenset[str]:
    return parse_types(value) if value else frozenset()


def _build(document: dict[str, Any], path: Path) -> DriftConfig:
    spec = _dict(document.get("spec"))
    det = _dict(spec.get("detection"))
    rem = _dict(spec.get("remediation"))
    alerts = _dict(spec.get("alerts"))
    storage = _dict(spec.get("storage"))
    defaults = DriftConfig.default()
    webhook_doc = alerts.get("webhook")
    webhook = None
    if isinstance(webhook_doc, dict):
        webhook = Webhook(url=webhook_doc["url"].strip(),
                          severity=webhook_doc.get("severity", "warning"))
    return DriftConfig(
        name=str(_dict(document.get("metadata")).get("name", defaults.name)),
        path=path,
        detection=Detection(**{k: bool(det[k]) for k in
                               ("policies", "compliance", "configuration", "resources",
                                "efficacy") if k in det},
                            probe_namespace=str(det.get("probeNamespace") or "default")),
        interval=parse_duration(spec["interval"]) if "interval" in spec else defaults.interval,
        remediation=Remediation(
            auto=rem.get("auto", False),
            dry_run=rem.get("dryRun", False),
            types=_types(rem["types"]) if "types" in rem else Remediation().types,
            prune=rem.get("prune", False),
            max_deletions=int(rem.get("maxDeletions", 5)),
            resources=dict(rem.get("resources") or {}),
            loop_restores=int(_dict(rem.get("loopBreaker")).get("restores", 3)),
            loop_window=(parse_duration(_dict(rem.get("loopBreaker"))["window"])
                         if "window" in _dict(rem.get("loopBreaker")) else 600),
        ),
        alerts=Alerts(
            enabled=alerts.get("enabled", False),
            webhook=webhook,
            email_enabled=_dict(alerts.get("email")).get("enabled", False),
            min_interval=(parse_duration(alerts["minInterval"]) if "minInterval" in alerts
                          else Alerts().min_interval),
            channels=build_channels(alerts),
            reminder=parse_duration(alerts["reminder"]) if "reminder" in alerts else None,
        ),
        storage=Storage(
            type=storage.get("type", "sqlite"),
            path=storage.get("path"),
            retention=(parse_duration(storage["retention"]) if "retention" in storage
                       else Storage().retention),
            keep_runs=int(storage.get("keepRuns", 20)),
            url=storage.get("url"),
            password_env=storage.get("passwordEnv"),
            password_file=storage.get("passwordFile"),
        ),
        clusters=_clusters(spec.get("clusters")),
    )
