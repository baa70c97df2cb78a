"""The simulator's Kyverno validating webhook: the hook API writes call before storing.

Only API requests are reviewed (``POST``, ``PUT``, ``PATCH``, server-side apply, dry-run
included, as the API server calls webhooks for them); loading state and the Simulator's
direct ``create``/``update`` write the store as etcd would, without admission. Admission is
active while ``enabled`` is true and Kyverno's ClusterPolicy CRD is served.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_kspec.sim.admission import REVIEWED_KINDS, denial_message, review
from pytest_kspec.sim.resources import Registry, ResourceType
from pytest_kspec.sim.status import StatusError
from pytest_kspec.sim.store import Store

POLICY_TYPE = ("kyverno.io/v1", "ClusterPolicy")


class KyvernoWebhook:
    """Reviews Pods and workload controllers against the stored Enforce ClusterPolicies."""

    def __init__(self, store: Store, registry: Registry, *, enabled: bool = True) -> None:
        self.store = store
        self.registry = registry
        self.enabled = enabled

    def __call__(self, rt: ResourceType, obj: Any, namespace: str | None, *,
                 operation: str, old: Mapping[str, Any] | None = None) -> None:
        """Raise a 400 ``StatusError`` with Kyverno's message when ``obj`` is refused."""
        if not self.enabled or rt.kind not in REVIEWED_KINDS or not isinstance(obj, Mapping):
            return
        policy_rt = self.registry.by_kind(*POLICY_TYPE)
        if policy_rt is None or not policy_rt.stored:
            return
        policies = [e.obj for e in self.store.entries(policy_rt.key)]
        if not policies:
            return
        meta = dict(obj.get("metadata") or {})
        if rt.namespaced:
            meta["namespace"] = meta.get("namespace") or namespace or "default"
        candidate = dict(obj, metadata=meta, kind=rt.kind, apiVersion=rt.api_version)
        failures = review(policies, candidate, operation=operation, old=old)
        if failures:
            raise StatusError(400, "BadRequest", denial_message(candidate, failures), {})
