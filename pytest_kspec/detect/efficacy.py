"""Efficacy probes: does an expected Enforce policy actually block what it should?

A policy can be present and unchanged yet block nothing: Kyverno is down and its webhook
says ``failurePolicy: Ignore``, the probe's namespace is excluded, a mutating tool set Audit.
For each expected Enforce policy the prober sends a pod built to break it
(:func:`pytest_kspec.desired.probes.probe_pod`) as a server-side dry run (``dryRun=All``:
admission runs, nothing is persisted) into the probe namespace:

- refused with the policy named in the message → it **enforces** (the item passes);
- admitted → drift ``not-enforcing``, critical;
- refused for another reason — RBAC (probing needs ``create pods``; dry runs are authorized
  like real writes), a missing namespace, Pod Security admission, another webhook — or not
  answered → an **error** saying why: no verdict is ever a silent pass.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_kspec.desired import probe_pod
from pytest_kspec.detect.policydrift import DriftEvent
from pytest_kspec.errors import RBAC_FILE, ApiError

if TYPE_CHECKING:
    from pytest_kspec.cluster import Cluster
    from pytest_kspec.desired import ExpectedPolicy

__all__ = ["ENFORCES", "ERROR", "NOT_ENFORCING", "PROBE_ROLE", "ProbeResult", "Prober"]

log = logging.getLogger("pytest_kspec.detect.efficacy")

ENFORCES, NOT_ENFORCING, ERROR = "enforces", "not-enforcing", "error"
PROBE_ROLE = "kspec-probe"
DEFAULT_NAMESPACE = "default"
_SHORT = 300


@dataclass(frozen=True)
class ProbeResult:
    """One probe: ``verdict`` (``enforces``, ``not-enforcing``, ``error``), what the pod broke,
    and ``detail``: the API server's answer (the denial, or why there is no verdict)."""

    policy: str
    verdict: str
    breaks: str
    namespace: str
    detail: str = ""

    def event(self, controls: list[str]) -> DriftEvent:
        """The ``not-enforcing`` drift event (critical)."""
        return DriftEvent(
            type="policy", severity="critical", resource=f"ClusterPolicy/{self.policy}",
            drift=NOT_ENFORCING, expected="Enforce: the probe pod is refused",
            actual="admitted (server-side dry run)", check="efficacy", controls=controls,
            message=(f"a pod with {self.breaks} was admitted in namespace {self.namespace} "
                     f"(dry run): {self.policy} is there but blocks nothing — is Kyverno "
                     "running, its webhook failurePolicy Ignore, the namespace excluded, or "
                     "the policy switched to Audit?"))

    def text(self) -> str:
        if self.verdict == ENFORCES:
            return f"probe: a pod with {self.breaks} was refused by {self.policy}"
        if self.verdict == NOT_ENFORCING:
            return (f"ClusterPolicy/{self.policy}: not enforcing (critical)\n  a pod with "
                    f"{self.breaks} was admitted in namespace {self.namespace} (server-side dry "
                    "run, nothing persisted): the policy blocks nothing")
        return f"efficacy probe of {self.policy} gave no verdict: {self.detail}"


def enforcing(manifest: Mapping[str, Any] | None) -> bool:
    """Whether the expected policy is meant to enforce (any rule's action is Enforce)."""
    if not manifest:
        return False
    spec = manifest.get("spec") or {}
    default = str(spec.get("validationFailureAction") or "Audit").lower()
    for rule in spec.get("rules") or []:
        validate = (rule or {}).get("validate") or {}
        if str(validate.get("failureAction") or default).lower() == "enforce":
            return True
    return False


class Prober:
    """Probes expected policies against ``cluster``; ``body`` is the spec's ``spec`` section
    (registries, limits) and ``namespace`` where the probe pods are (never) created."""

    def __init__(self, cluster: Cluster, body: Mapping[str, Any],
                 namespace: str = DEFAULT_NAMESPACE) -> None:
        self.cluster = cluster
        self.body = body
        self.namespace = namespace

    def probe(self, policy: ExpectedPolicy) -> ProbeResult | None:
        """The probe of ``policy``; None when it is not an Enforce policy kspec can break."""
        if not enforcing(policy.manifest):
            return None
        built = probe_pod(policy.name, self.body, self.namespace)
        if built is None:
            return None
        breaks, pod = built
        excluded = _excluded(policy.manifest, self.namespace)
        if excluded:
            return ProbeResult(policy.name, ERROR, breaks, self.namespace, (
                f"the probe namespace {self.namespace} is excluded from {policy.name} by the "
                "spec, so a probe there proves nothing: set DriftConfig "
                "detection.probeNamespace to a namespace the policy covers"))
        try:
            self.cluster.create(pod, dry_run=True)
        except ApiError as e:
            return self._refused(policy.name, breaks, e)
        log.warning("efficacy probe: %s admitted a pod with %s in %s", policy.name, breaks,
                    self.namespace)
        return ProbeResult(policy.name, NOT_ENFORCING, breaks, self.namespace,
                           "admitted (server-side dry run)")

    def _refused(self, name: str, breaks: str, e: ApiError) -> ProbeResult:
        text = str(e)
        if e.status == 403 and "cannot create" in text.lower():
            detail = (f"forbidden: cannot create pods in namespace {self.namespace} (403); a "
                      "probe is a server-side dry run, which Kubernetes authorizes like a real "
                      f"create: bind the {PROBE_ROLE} ClusterRole from {RBAC_FILE}")
            return ProbeResult(name, ERROR, breaks, self.namespace, detail)
        if e.status in (400, 403, 422) and name in text:
            return ProbeResult(name, ENFORCES, breaks, self.namespace, _short(text))
        if e.status == 404:
            detail = (f"the probe namespace {self.namespace} does not exist: create it or set "
                      "DriftConfig detection.probeNamespace")
        elif e.status in (400, 403, 422):
            detail = (f"refused, but not by {name} ({_short(text)}); cannot tell whether "
                      f"{name} enforces: probe in a namespace where nothing else (Pod Security "
                      "admission enforce, other webhooks) refuses the pod")
        else:
            detail = _short(text)
        return ProbeResult(name, ERROR, breaks, self.namespace, detail)


def _excluded(manifest: Mapping[str, Any] | None, namespace: str) -> bool:
    """Whether every rule of the policy excludes ``namespace`` by name."""
    rules = ((manifest or {}).get("spec") or {}).get("rules") or []
    if not rules:
        return False
    for rule in rules:
        names: set[str] = set()
        for block in ((rule or {}).get("exclude") or {}).get("any") or []:
            names.update((block.get("resources") or {}).get("namespaces") or [])
        if namespace not in names:
            return False
    return True


def _short(text: str) -> str:
    one = " ".join(text.split())
    return one if len(one) <= _SHORT else one[: _SHORT - 3] + "..."
