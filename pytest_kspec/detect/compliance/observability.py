"""Observability checks: a metrics provider runs; the API server writes an audit log long enough.

``observability.metrics``: a provider runs when a Deployment, DaemonSet or StatefulSet (any
namespace, system ones included; not scaled to 0) is named after it or labelled with it
(``app.kubernetes.io/name``, ``app``, ``k8s-app``). Names match by dash-separated words, so
``prometheus`` finds ``kube-prometheus-stack-operator`` but not ``prometheusx``. Only apps/v1
kinds are looked at; with no ``providers`` listed, ``metrics-server`` and ``prometheus`` are.

``observability.auditLog``: reads the flags of the kube-apiserver static Pods in
``kube-system`` (label ``component=kube-apiserver``): ``--audit-policy-file`` and
``--audit-log-path`` must be set, and ``--audit-log-maxage`` must be 0/unset (no age limit)
or at least ``minRetentionDays``; ``--audit-log-path=-`` (stdout) cannot prove a retention.
Managed control planes (EKS, GKE, AKS) show no apiserver pod: that is reported as a violation
saying audit logging cannot be verified from the API, so the provider's settings get checked.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pytest_kspec.desired import CheckRef

from .base import (
    CheckResult,
    ComplianceOptions,
    Obj,
    Snapshot,
    Violation,
    cluster_violation,
    labels_of,
    name_of,
    resource_name,
    violation,
)
from .base import result as make_result

RESOURCES: Mapping[str, list[tuple[str, str]]] = {
    "observability.metrics": [("apps/v1", "Deployment"), ("apps/v1", "DaemonSet"),
                              ("apps/v1", "StatefulSet")],
    "observability.auditLog": [("v1", "Pod")],
}

DEFAULT_PROVIDERS: tuple[str, ...] = ("metrics-server", "prometheus")
NAME_LABELS: tuple[str, ...] = ("app.kubernetes.io/name", "app", "k8s-app")


def _words_contain(text: str, provider: str) -> bool:
    words, want = text.lower().split("-"), provider.lower().split("-")
    return any(words[i:i + len(want)] == want for i in range(len(words) - len(want) + 1))


def provides(workload: Obj, provider: str) -> bool:
    """True when the workload is named or labelled after ``provider`` and not scaled to 0."""
    if (workload.get("spec") or {}).get("replicas") == 0:
        return False
    labels = labels_of(workload)
    names = [name_of(workload)] + [str(labels[k]) for k in NAME_LABELS if k in labels]
    return any(_words_contain(n, provider) for n in names)


METRICS_KINDS: tuple[str, ...] = ("Deployment", "DaemonSet", "StatefulSet")


class MetricsJudge:
    """``observability.metrics`` fed workloads one at a time, in any order of kinds: keeps
    only the first provider match per provider and kind, and the count."""

    def __init__(self, ref: CheckRef) -> None:
        self.ref = ref
        self.providers = ([str(p) for p in ref.rule.get("providers") or []]
                          or list(DEFAULT_PROVIDERS))
        self.evaluated = 0
        self._first: dict[tuple[str, str], str] = {}

    def feed(self, kind: str, workload: Obj) -> None:
        self.evaluated += 1
        for provider in self.providers:
            if (provider, kind) not in self._first and provides(workload, provider):
                self._first[(provider, kind)] = resource_name(workload)

    def finish(self) -> CheckResult:
        for provider in self.providers:
            for kind in METRICS_KINDS:
                found = self._first.get((provider, kind))
                if found is not None:
                    return CheckResult(ref=self.ref, violations=(), evaluated=self.evaluated,
                                       summary=f"metrics provider {provider} runs: {found}")
        text = f"no metrics provider found (looked for {', '.join(self.providers)})"
        return CheckResult(ref=self.ref, violations=(cluster_violation("Cluster", text),),
                           evaluated=self.evaluated, summary=text)


def check_metrics(ref: CheckRef, snapshot: Snapshot, options: ComplianceOptions) -> CheckResult:
    """Some workload runs one of the listed metrics providers."""
    judge = MetricsJudge(ref)
    for kind in METRICS_KINDS:
        for workload in snapshot.list("apps/v1", kind):
            judge.feed(kind, workload)
    return judge.finish()


def parse_flags(args: Sequence[str]) -> dict[str, str]:
    """``--name=value`` and ``--name value`` flags of a command line (last one wins)."""
    flags: dict[str, str] = {}
    for i, arg in enumerate(args):
        if not arg.startswith("--"):
            continue
        name, eq, value = arg[2:].partition("=")
        if not eq:
            nxt = args[i + 1] if i + 1 < len(args) else ""
            value = "" if nxt.startswith("--") else nxt
        flags[name] = value
    return flags


def _is_apiserver(pod: Obj) -> bool:
    if labels_of(pod).get("component") == "kube-apiserver":
        return True
    containers = (pod.get("spec") or {}).get("containers") or []
    return any(c.get("name") == "kube-apiserver" for c in containers)


def _apiserver_flags(pod: Obj) -> dict[str, str]:
    containers = (pod.get("spec") or {}).get("containers") or []
    chosen = next((c for c in containers if c.get("name") == "kube-apiserver"),
                  containers[0] if containers else {})
    words = [str(w) for w in (chosen.get("command") or []) + (chosen.get("args") or [])]
    return parse_flags(words)


def audit_problems(flags: Mapping[str, str], min_days: int) -> list[str]:
    """What keeps these kube-apiserver flags from meeting the audit-log rule."""
    problems: list[str] = []
    if not flags.get("audit-policy-file"):
        problems.append("--audit-policy-file is not set (no audit events are recorded)")
    path = flags.get("audit-log-path", "")
    if not path:
        problems.append("--audit-log-path is not set (audit log is off)")
    elif path == "-" and min_days > 0:
        problems.append(f"audit log goes to stdout (--audit-log-path=-): a retention of "
                        f"{min_days} days cannot be verified")
    elif min_days > 0:
        raw = flags.get("audit-log-maxage", "0") or "0"
        try:
            days = int(raw)
        except ValueError:
            problems.append(f"--audit-log-maxage={raw} is not a number of days")
        else:
            if 0 < days < min_days:
                problems.append(f"--audit-log-maxage={days} is below the required "
                                f"{min_days} days")
    return problems


AUDIT_NAMESPACE = "kube-system"


class AuditJudge:
    """``observability.auditLog`` fed Pods one at a time: keeps the kube-apiservers' verdicts."""

    def __init__(self, ref: CheckRef) -> None:
        self.ref = ref
        self.min_days = int(ref.rule.get("minRetentionDays") or 0)
        self.apiservers = 0
        self.violations: list[Violation] = []

    def feed(self, pod: Obj) -> None:
        """One Pod of any namespace (only kube-system's are looked at)."""
        if (pod.get("metadata") or {}).get("namespace") != AUDIT_NAMESPACE:
            return
        if not _is_apiserver(pod):
            return
        self.apiservers += 1
        problems = audit_problems(_apiserver_flags(pod), self.min_days)
        if problems:
            self.violations.append(violation(pod, "; ".join(problems),
                                             container="kube-apiserver"))

    def finish(self) -> CheckResult:
        if not self.apiservers:
            text = ("no kube-apiserver pod visible in kube-system (managed control plane?): "
                    "audit logging cannot be verified from the API; check the provider's "
                    "audit settings")
            return CheckResult(ref=self.ref, violations=(cluster_violation("Cluster", text),),
                               evaluated=0, summary=text)
        return make_result(self.ref, self.violations, self.apiservers, "kube-apiserver pods")


def check_audit_log(ref: CheckRef, snapshot: Snapshot,
                    options: ComplianceOptions) -> CheckResult:
    """Every visible kube-apiserver writes an audit log kept at least ``minRetentionDays``."""
    judge = AuditJudge(ref)
    for pod in snapshot.list("v1", "Pod", AUDIT_NAMESPACE):
        judge.feed(pod)
    return judge.finish()
