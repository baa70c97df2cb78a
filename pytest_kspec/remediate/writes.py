"""A planned write: the exact request a remediation would send, and what guards it.

A dry run of remediation validates each write with the API server (``dryRun=All``); the
write it validated is described here as plain JSON so a plan file can carry it to a person
for approval and back (:mod:`pytest_kspec.remediate.plan`), and so applying the plan sends
that very request (:mod:`pytest_kspec.remediate.apply`). The guard is the object's
``resourceVersion`` as it was planned against (for a create: that the object is absent; for a
delete also its ``uid``): if the object changed since, the API server refuses the write.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["planned_write", "target_of"]


def target_of(obj: Mapping[str, Any]) -> dict[str, Any]:
    """``{"apiVersion", "kind", "name", "namespace"}`` of ``obj`` (namespace None when
    cluster-scoped)."""
    meta = obj.get("metadata") or {}
    return {"apiVersion": str(obj.get("apiVersion") or ""), "kind": str(obj.get("kind") or ""),
            "name": str(meta.get("name") or ""),
            "namespace": (str(meta["namespace"]) if meta.get("namespace") else None)}


def planned_write(action: str, resource: str, obj: Mapping[str, Any], *,
                  body: Mapping[str, Any] | None = None, resource_version: str | None = None,
                  uid: str | None = None,
                  changes: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """One write as a plan holds it.

    - ``action``: ``create``, ``update`` or ``delete``; ``resource``: ``ClusterPolicy/x``
    - ``target``: what is written (see :func:`target_of`)
    - ``resourceVersion``: the version the write was planned against (None for a create:
      the object was absent); an update's ``body`` carries it as its precondition
    - ``uid``: a deletion's uid precondition
    - ``changes``: the field diff an update restores (``path``, ``from``, ``to``)
    - ``body``: the object sent by a create or update (None for a delete)
    """
    sent = None
    if body is not None:
        sent = copy.deepcopy(dict(body))
        meta = dict(sent.get("metadata") or {})
        if resource_version:
            meta["resourceVersion"] = resource_version
        sent["metadata"] = meta
    return {"action": action, "resource": resource, "target": target_of(obj),
            "resourceVersion": resource_version or None, "uid": uid or None,
            "changes": [dict(c) for c in changes or ()], "body": sent}
