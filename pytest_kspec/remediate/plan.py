"""Remediation plans: every write a remediation would make, for a person to approve.

``kspec drift remediate --plan plan.json`` (``--kspec-plan`` in pytest) runs remediation as a
dry run and writes each write the API server validated: its target, the resourceVersion it
was planned against, the field diff, and the exact object to send
(:func:`~pytest_kspec.remediate.writes.planned_write`), with what needs a person and what could
not be planned. The plan names the spec (name, version, sha256 of the file) and the cluster
(server and kube-system namespace uid) it was made for, and when; its ``digest`` is the
sha256 of the canonical JSON of everything else, so any edit after kspec wrote it shows.

Applying (:mod:`pytest_kspec.remediate.apply`) is refused for a plan whose digest does not
match, made for another spec or cluster, older than the allowed age, or dated in the future.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_kspec import __version__
from pytest_kspec.atomic import write_text
from pytest_kspec.errors import KspecError

__all__ = [
    "DEFAULT_MAX_AGE",
    "PlanBuilder",
    "PlanError",
    "RemediationPlan",
    "check_plan",
    "load_plan",
    "plan_age",
    "write_plan",
]

API_VERSION, KIND = "kspec.dev/v1", "RemediationPlan"
DEFAULT_MAX_AGE = 3600
"""Seconds a plan may be old when applied (``--max-age``, default 1h)."""
FUTURE_SKEW = 300
"""A plan dated further in the future than this (clock skew) is refused."""


class PlanError(KspecError):
    """A plan file is unreadable, was edited, or may not be applied here and now.

    ``str()`` names the plan file and says what to do (usually: make a new plan)."""


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str).encode("utf-8")


def _epoch(stamp: str) -> float:
    return float(calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")))


def _age(seconds: float) -> str:
    seconds = int(abs(seconds))
    if seconds >= 86_400:
        return f"{seconds // 86_400}d{(seconds % 86_400) // 3600}h"
    if seconds >= 3600:
        return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


@dataclass
class RemediationPlan:
    """A plan as written to and read from its JSON file (``kind: RemediationPlan``)."""

    created: str
    spec: dict[str, str]
    cluster: dict[str, str]
    writes: list[dict[str, Any]] = field(default_factory=list)
    manual: list[dict[str, Any]] = field(default_factory=list)
    unplanned: list[dict[str, Any]] = field(default_factory=list)
    kspec_version: str = __version__
    digest: str = ""

    def content(self) -> dict[str, Any]:
        """Everything the digest covers (the file without ``digest``)."""
        return {"apiVersion": API_VERSION, "kind": KIND, "created": self.created,
                "kspecVersion": self.kspec_version, "spec": dict(self.spec),
                "cluster": dict(self.cluster), "writes": self.writes, "manual": self.manual,
                "unplanned": self.unplanned}

    def compute_digest(self) -> str:
        return "sha256:" + hashlib.sha256(_canonical(self.content())).hexdigest()

    def seal(self) -> RemediationPlan:
        self.digest = self.compute_digest()
        return self

    def to_json(self) -> dict[str, Any]:
        return {**self.content(), "digest": self.digest}

    def summary(self, path: str = "") -> dict[str, Any]:
        """What reports show: identity, digest and each write without its object body."""
        return {"path": path, "digest": self.digest, "created": self.created,
                "spec": dict(self.spec), "cluster": dict(self.cluster),
                "writes": [{k: v for k, v in w.items() if k != "body"} for w in self.writes],
                "manual": list(self.manual), "unplanned": list(self.unplanned)}

    @classmethod
    def from_json(cls, data: Any, source: str) -> RemediationPlan:
        if not isinstance(data, dict) or data.get("kind") != KIND:
            raise PlanError(f"{source}: not a kspec RemediationPlan (write one with kspec drift "
                            "remediate --plan FILE or pytest --kspec-plan FILE)")
        if data.get("apiVersion") != API_VERSION:
            raise PlanError(f"{source}: apiVersion {data.get('apiVersion')!r} is not "
                            f"{API_VERSION}: make a new plan with this kspec")
        try:
            plan = cls(created=str(data["created"]), spec=dict(data["spec"]),
                       cluster=dict(data["cluster"]), writes=list(data["writes"]),
                       manual=list(data.get("manual") or []),
                       unplanned=list(data.get("unplanned") or []),
                       kspec_version=str(data.get("kspecVersion", "")),
                       digest=str(data.get("digest") or ""))
            _epoch(plan.created)
            for write in plan.writes:
                if not isinstance(write, dict) or write.get("action") not in (
                        "create", "update", "delete") or not isinstance(write.get("target"), dict):
                    raise ValueError("a write without action and target")
        except (KeyError, TypeError, ValueError) as e:
            raise PlanError(f"{source}: not a complete RemediationPlan ({e}); make a new "
                            "plan") from None
        return plan


def write_plan(path: Path, plan: RemediationPlan) -> None:
    """Seal ``plan`` (its digest) and write it atomically to ``path``."""
    plan.seal()
    write_text(path, json.dumps(plan.to_json(), indent=2, sort_keys=False, default=str) + "\n")


def load_plan(path: str | os.PathLike[str]) -> RemediationPlan:
    """Read a plan; raises :class:`PlanError` when unreadable or edited since written."""
    source = os.fspath(path)
    try:
        data = json.loads(Path(source).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PlanError(f"{source}: no such plan file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise PlanError(f"{source}: cannot read the plan ({e})") from None
    except json.JSONDecodeError as e:
        raise PlanError(f"{source}: not JSON (line {e.lineno}: {e.msg}); was it edited?") from None
    plan = RemediationPlan.from_json(data, source)
    actual = plan.compute_digest()
    if plan.digest != actual:
        raise PlanError(f"{source}: does not match its digest (recorded {plan.digest or 'none'},"
                        f" content {actual}): it was changed after kspec wrote it; refused — "
                        "make a new plan and have it approved")
    return plan


def check_plan(plan: RemediationPlan, *, source: str, spec: Mapping[str, str],
               cluster: Mapping[str, str], now: float, max_age: float) -> None:
    """Refuse (:class:`PlanError`) a plan made for another spec or cluster, or too old."""
    if (plan.spec.get("name"), plan.spec.get("hash")) != (spec.get("name"), spec.get("hash")):
        raise PlanError(
            f"{source} was made for spec {plan.spec.get('name')} {plan.spec.get('version')} "
            f"(sha256 {str(plan.spec.get('hash'))[:12]}), not {spec.get('name')} "
            f"{spec.get('version')} (sha256 {str(spec.get('hash'))[:12]}) from "
            f"{spec.get('path')}: refused — make a new plan with this spec")
    if plan.cluster.get("uid") and cluster.get("uid"):
        same = plan.cluster["uid"] == cluster["uid"]
        what = f"kube-system uid {plan.cluster['uid']}, this one is {cluster['uid']}"
    else:
        same = plan.cluster.get("server") == cluster.get("server")
        what = f"server {plan.cluster.get('server')}, this one is {cluster.get('server')}"
    if not same:
        raise PlanError(f"{source} was made for another cluster ({what}): refused — make a "
                        "new plan against this cluster")
    age = now - _epoch(plan.created)
    if age < -FUTURE_SKEW:
        raise PlanError(f"{source} is dated {plan.created}, {_age(age)} in the future: check "
                        "the clocks; refused")
    if age > max_age:
        raise PlanError(f"{source} was made {_age(age)} ago ({plan.created}), more than "
                        f"--max-age {_age(max_age)}: the cluster may have moved on; refused — "
                        "make a new plan (or pass a longer --max-age)")


class PlanBuilder:
    """Collects the writes of a dry-run remediation's attempts into a plan."""

    def __init__(self) -> None:
        self.writes: list[tuple[tuple[int, str, str], dict[str, Any]]] = []
        self.manual: list[tuple[tuple[int, str, str], dict[str, Any]]] = []
        self.unplanned: list[tuple[tuple[int, str, str], dict[str, Any]]] = []

    def add(self, attempt: Mapping[str, Any], order: int = 0) -> None:
        """Take one attempt (see :class:`~pytest_kspec.remediate.RemediationRecorder`), with
        the ``write`` a dry run attaches; ``order`` sorts the plan as the report."""
        node_id, resource = str(attempt.get("node_id", "")), str(attempt.get("resource", ""))
        key = (order, node_id, resource)
        write = attempt.get("write")
        status = attempt.get("status")
        if isinstance(write, Mapping):
            self.writes.append((key, {"node_id": node_id, **write}))
        elif status == "manual-required":
            reason = (attempt.get("details") or {}).get("reason") or ""
            self.manual.append((key, {"node_id": node_id, "resource": resource,
                                      "reason": reason}))
        elif status == "failed" or (status == "skipped" and attempt.get("error")):
            self.unplanned.append((key, {"node_id": node_id, "resource": resource,
                                         "action": attempt.get("action"),
                                         "error": attempt.get("error")}))

    def build(self, *, created: str, spec: Mapping[str, str],
              cluster: Mapping[str, str]) -> RemediationPlan:
        writes = [w for _, w in sorted(self.writes, key=lambda kw: kw[0])]
        for number, write in enumerate(writes, 1):
            write["id"] = number
        return RemediationPlan(created=created, spec=dict(spec), cluster=dict(cluster),
                               writes=writes, manual=_sorted(self.manual),
                               unplanned=_sorted(self.unplanned)).seal()


def _sorted(rows: Iterable[tuple[tuple[int, str, str], dict[str, Any]]]) -> list[dict[str, Any]]:
    return [row for _, row in sorted(rows, key=lambda kr: kr[0])]


def plan_age(plan: RemediationPlan, now: float | None = None) -> str:
    """How old the plan is, e.g. ``12m05s``."""
    return _age((time.time() if now is None else now) - _epoch(plan.created))
