"""Deployment → ReplicaSets → Pods, with rolling updates as ``kubectl rollout`` expects.

The ReplicaSet whose template equals the Deployment's (the ``pod-template-hash`` label aside)
is the new one; if none does, one named ``<deployment>-<hash>`` is created with the next
``deployment.kubernetes.io/revision``. RollingUpdate scales it up within ``maxSurge`` and the
others down within ``maxUnavailable`` as pods become ready; Recreate scales the old ones to 0
first. Status (replicas, updatedReplicas, readyReplicas, availableReplicas,
unavailableReplicas, observedGeneration, the Available and Progressing conditions) follows
the ReplicaSets, so ``kubectl rollout status`` completes when the rollout has.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import copy
import math
from typing import Any

from pytest_kspec.sim.controllers.base import (
    DEPLOYMENTS,
    REPLICASETS,
    Base,
    deleting,
    owned_by,
    owner_ref,
    owner_triggers,
    template_hash,
)
from pytest_kspec.sim.store import Key

HASH = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"


def _without_hash(template: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(template or {})
    labels = (out.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH, None)
    return out


def _resolve(value: Any, replicas: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        share = replicas * int(value[:-1] or 0) / 100
        return math.ceil(share) if round_up else math.floor(share)
    return int(value or 0)


def _revision(rs: dict[str, Any]) -> int:
    try:
        return int((rs["metadata"].get("annotations") or {}).get(REVISION, 0))
    except ValueError:
        return 0


def _replicas(obj: dict[str, Any]) -> int:
    value = (obj.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def _stat(obj: dict[str, Any], field: str) -> int:
    return int((obj.get("status") or {}).get(field) or 0)


class DeploymentController(Base):
    name = "deployment"
    component = "deployment-controller"
    primary: Key = DEPLOYMENTS

    def triggers(self, key: Key, obj: dict[str, Any], event_type: str) -> list[tuple[str, str]]:
        if key in (DEPLOYMENTS, REPLICASETS):
            return owner_triggers(key, obj, "Deployment", DEPLOYMENTS)
        return []

    def reconcile(self, namespace: str, name: str) -> float | None:
        with self.store.cond:
            d = self.get(DEPLOYMENTS, namespace, name)
            if d is None or deleting(d):
                return None
            spec = d.get("spec") or {}
            replicas = _replicas(d)
            rses = [rs for rs in self.objects(REPLICASETS, namespace) if owned_by(rs, d)]
            wanted = _without_hash(spec.get("template") or {})
            new = next((rs for rs in rses if _without_hash(
                (rs.get("spec") or {}).get("template") or {}) == wanted), None)
            old = [rs for rs in rses if rs is not new]
            if spec.get("paused"):
                self._status(d, new, old)
                return None
            if new is None:
                new = self._new_rs(d, old)
                if new is None:
                    return None
            elif _revision(new) <= max((_revision(rs) for rs in old), default=0):
                new = self._annotate(new, max(_revision(rs) for rs in old) + 1, replicas)
            strategy = spec.get("strategy") or {}
            if strategy.get("type") == "Recreate":
                self._recreate(d, new, old, replicas)
            else:
                self._rolling(d, new, old, replicas, strategy.get("rollingUpdate") or {})
            self._cleanup(d, old)
            d = self.get(DEPLOYMENTS, namespace, name) or d
            rses = [rs for rs in self.objects(REPLICASETS, namespace) if owned_by(rs, d)]
            new = next((rs for rs in rses if rs["metadata"]["name"] == new["metadata"]["name"]),
                       None)
            self._status(d, new, [rs for rs in rses if rs is not new])
        return None

    # --- ReplicaSets -------------------------------------------------------------------------
    def _new_rs(self, d: dict[str, Any], old: list[dict[str, Any]]) -> dict[str, Any] | None:
        spec = d.get("spec") or {}
        collisions = int((d.get("status") or {}).get("collisionCount") or 0)
        h = template_hash(_without_hash(spec.get("template") or {}), collisions)
        template = copy.deepcopy(spec.get("template") or {})
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH] = h
        selector = copy.deepcopy(spec.get("selector") or {})
        selector.setdefault("matchLabels", {})[HASH] = h
        replicas = _replicas(d)
        active_old = any(_replicas(rs) > 0 or _stat(rs, "replicas") > 0 for rs in old)
        strategy = spec.get("strategy") or {}
        if active_old:
            start = 0
            if strategy.get("type") != "Recreate":
                surge = _resolve((strategy.get("rollingUpdate") or {}).get("maxSurge", "25%"),
                                 replicas, True)
                total = sum(_replicas(rs) for rs in old)
                start = max(0, min(replicas, replicas + surge - total))
        else:
            start = replicas
        revision = max((_revision(rs) for rs in old), default=0) + 1
        rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
              "metadata": {"name": f"{d['metadata']['name']}-{h}",
                           "namespace": d["metadata"].get("namespace"),
                           "labels": dict(template["metadata"]["labels"]),
                           "annotations": {REVISION: str(revision),
                                           "deployment.kubernetes.io/desired-replicas":
                                               str(replicas),
                                           "deployment.kubernetes.io/max-replicas":
                                               str(replicas + _resolve(
                                                   (strategy.get("rollingUpdate") or {}).get(
                                                       "maxSurge", "25%"), replicas, True))},
                           "ownerReferences": [owner_ref(d)]},
              "spec": {"replicas": start, "minReadySeconds": spec.get("minReadySeconds", 0),
                       "selector": selector, "template": template}}
        created = self.create(REPLICASETS, rs)
        if created is not None and start:
            self.event(d, "ScalingReplicaSet", f"Scaled up replica set "
                       f"{created['metadata']['name']} from 0 to {start}")
        return created

    def _annotate(self, rs: dict[str, Any], revision: int, replicas: int) -> dict[str, Any]:
        new = copy.deepcopy(rs)
        ann = new["metadata"].setdefault("annotations", {})
        ann[REVISION] = str(revision)
        ann["deployment.kubernetes.io/desired-replicas"] = str(replicas)
        return self.update(REPLICASETS, new) or rs

    def _scale(self, d: dict[str, Any], rs: dict[str, Any], to: int) -> None:
        now = _replicas(rs)
        if now == to:
            return
        fresh = self.get(REPLICASETS, rs["metadata"].get("namespace") or "",
                         rs["metadata"]["name"])
        if fresh is None:
            return
        fresh["spec"]["replicas"] = to
        ann = fresh["metadata"].setdefault("annotations", {})
        ann["deployment.kubernetes.io/desired-replicas"] = str(_replicas(d))
        if self.update(REPLICASETS, fresh) is not None:
            way = "up" if to > now else "down"
            self.event(d, "ScalingReplicaSet", f"Scaled {way} replica set "
                       f"{rs['metadata']['name']} from {now} to {to}")
        rs["spec"]["replicas"] = to

    def _recreate(self, d: dict[str, Any], new: dict[str, Any], old: list[dict[str, Any]],
                  replicas: int) -> None:
        for rs in old:
            self._scale(d, rs, 0)
        if any(_stat(rs, "replicas") > 0 for rs in old):
            return  # old pods still running: the RS status events bring us back
        self._scale(d, new, replicas)

    def _rolling(self, d: dict[str, Any], new: dict[str, Any], old: list[dict[str, Any]],
                 replicas: int, rolling: dict[str, Any]) -> None:
        surge = _resolve(rolling.get("maxSurge", "25%"), replicas, True)
        unavailable = _resolve(rolling.get("maxUnavailable", "25%"), replicas, False)
        if surge == 0 and unavailable == 0:
            unavailable = 1
        if not any(_replicas(rs) > 0 for rs in old):
            self._scale(d, new, replicas)
            return
        total = _replicas(new) + sum(_replicas(rs) for rs in old)
        room = replicas + surge - total
        if room > 0 and _replicas(new) < replicas:
            self._scale(d, new, min(replicas, _replicas(new) + room))
        min_available = replicas - unavailable
        available = _stat(new, "availableReplicas") + sum(
            _stat(rs, "availableReplicas") for rs in old)
        for rs in sorted(old, key=lambda r: (_revision(r), r["metadata"]["name"])):
            unhealthy = max(0, _replicas(rs) - _stat(rs, "availableReplicas"))
            if unhealthy:  # pods that are not serving anyway go first, whatever the budget
                self._scale(d, rs, _replicas(rs) - unhealthy)
        removable = available - min_available
        for rs in sorted(old, key=lambda r: (_revision(r), r["metadata"]["name"])):
            if removable <= 0:
                break
            cut = min(_replicas(rs), removable)
            if cut:
                self._scale(d, rs, _replicas(rs) - cut)
                removable -= cut

    def _cleanup(self, d: dict[str, Any], old: list[dict[str, Any]]) -> None:
        limit = (d.get("spec") or {}).get("revisionHistoryLimit", 10)
        idle = [rs for rs in old if _replicas(rs) == 0 and _stat(rs, "replicas") == 0]
        idle.sort(key=lambda r: (_revision(r), r["metadata"]["name"]))
        for rs in idle[: max(0, len(idle) - int(limit))]:
            self.delete(REPLICASETS, rs["metadata"].get("namespace") or "",
                        rs["metadata"]["name"])

    # --- status ------------------------------------------------------------------------------
    def _status(self, d: dict[str, Any], new: dict[str, Any] | None,
                old: list[dict[str, Any]]) -> None:
        rses = ([new] if new is not None else []) + old
        replicas = _replicas(d)
        rolling = ((d.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {}
        unavailable = _resolve(rolling.get("maxUnavailable", "25%"), replicas, False)
        if ((d.get("spec") or {}).get("strategy") or {}).get("type") == "Recreate":
            unavailable = 0
        total = sum(_stat(rs, "replicas") for rs in rses)
        available = sum(_stat(rs, "availableReplicas") for rs in rses)
        updated = _stat(new, "replicas") if new is not None else 0
        status: dict[str, Any] = {
            "observedGeneration": d["metadata"].get("generation", 1), "replicas": total,
            "updatedReplicas": updated,
            "readyReplicas": sum(_stat(rs, "readyReplicas") for rs in rses),
            "availableReplicas": available,
            "unavailableReplicas": max(0, max(replicas, total) - available)}
        for key in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas",
                    "unavailableReplicas"):
            if not status[key]:
                del status[key]
        old_conditions = {c.get("type"): c for c in (d.get("status") or {}).get("conditions")
                          or []}
        when = self.clock.stamp()
        ok = available >= replicas - unavailable
        conditions = [self._cond(old_conditions, "Available", ok, when,
                                 "MinimumReplicasAvailable" if ok else
                                 "MinimumReplicasUnavailable",
                                 "Deployment has minimum availability." if ok else
                                 "Deployment does not have minimum availability.")]
        if new is not None:
            done = (updated == replicas and total == updated and available >= replicas)
            rs_name = new["metadata"]["name"]
            conditions.append(self._cond(
                old_conditions, "Progressing", True, when,
                "NewReplicaSetAvailable" if done else "ReplicaSetUpdated",
                f'ReplicaSet "{rs_name}" has successfully progressed.' if done
                else f'ReplicaSet "{rs_name}" is progressing.'))
        status["conditions"] = conditions
        revision = (new["metadata"].get("annotations") or {}).get(REVISION) if new else None
        annotations = dict(d["metadata"].get("annotations") or {})
        if revision:
            annotations[REVISION] = revision
        if d.get("status") == status and (d["metadata"].get("annotations") or {}) == annotations:
            return
        fresh = copy.deepcopy(d)
        fresh["status"] = status
        fresh["metadata"]["annotations"] = annotations
        self.update(DEPLOYMENTS, fresh, subresource="status")

    @staticmethod
    def _cond(old: dict[str, dict[str, Any]], kind: str, value: bool, when: str, reason: str,
              message: str) -> dict[str, Any]:
        text = "True" if value else "False"
        prev = old.get(kind) or {}
        same = prev.get("status") == text and prev.get("reason") == reason
        return {"type": kind, "status": text,
                "lastUpdateTime": prev.get("lastUpdateTime", when) if same else when,
                "lastTransitionTime": prev.get("lastTransitionTime", when)
                if prev.get("status") == text else when,
                "reason": reason, "message": message}
