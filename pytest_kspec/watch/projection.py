"""What watch mode keeps of each watched object: the fields the plan's checks read, no more.

A one-shot run reads each LIST once and lets it go (pods page by page, see
:mod:`pytest_kspec.detect.stream`); watch mode holds every watched object for hours, so at
10,000 pods the raw JSON (``managedFields``, ``status``, defaulted pod-spec fields, volumes,
env) would be most of its memory. :class:`Projection` keeps instead, per object:

- ``apiVersion``, ``kind`` and every top-level field but ``status`` (no check reads status;
  RBAC ``rules``, webhook ``webhooks``, CRD schemas stay as they are);
- from ``metadata``: name, namespace, uid, resourceVersion, generation, labels, annotations
  (without ``last-applied-configuration``) and ownerReferences (owner lookups);
- of a pod spec (a Pod's, or a controller's ``template`` / CronJob ``jobTemplate``): the
  containers, init and ephemeral containers, the pod ``securityContext``, and the pod-level
  fields the plan's container rules name (``hostNetwork``…); of each container: name,
  image, securityContext, command, args, ports, and the fields the rules name
  (``resources``…).

Kyverno policies (``kyverno.io``) are kept whole, ``managedFields`` included: policy drift
diffs them and names who changed them. Strings are interned, so the thousands of copies of
``"v1"``, ``"default"`` or an image name are one object.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pytest_kspec.detect import LAST_APPLIED, Plan

Project = Callable[[dict[str, Any]], dict[str, Any]]

CONTAINER_RULES = ("workloads.containers.required", "workloads.containers.forbidden")
CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
META_KEPT = frozenset({"name", "namespace", "uid", "resourceVersion", "generation", "labels",
                       "annotations", "ownerReferences"})
OWNER_KEPT = frozenset({"apiVersion", "kind", "name", "uid", "controller"})
POD_SPEC_KEPT = frozenset({*CONTAINER_LISTS, "securityContext"})
CONTAINER_KEPT = frozenset({"name", "image", "securityContext", "command", "args", "ports"})
WHOLE_GROUPS = ("kyverno.io/",)
_INTERN_UP_TO = 100


def rule_roots(keys: Iterable[str]) -> set[str]:
    """Every field name a dotted rule key can start with: ``resources.limits.memory`` gives
    ``resources``, ``resources.limits``… (a key may itself contain dots, as annotation keys
    do; the check tries each prefix, so each is kept)."""
    roots: set[str] = set()
    for key in keys:
        parts = key.split(".")
        roots.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return roots


class Projection:
    """The per-kind projection for one plan (see the module docs)."""

    def __init__(self, plan: Plan) -> None:
        keys = [str((t.check.rule or {}).get("key", "")) for t in plan.targets
                if t.check is not None and t.check.kind in CONTAINER_RULES]
        keys = [k.strip() for k in keys if k.strip()]
        under = {scope: rule_roots(k.split(".", 1)[1] for k in keys
                                   if k.startswith(scope + ".") and "." in k)
                 for scope in ("spec", "metadata")}
        plain = rule_roots(k for k in keys if not k.startswith(("spec.", "metadata.")))
        self.container_kept = CONTAINER_KEPT | plain
        self.pod_spec_kept = POD_SPEC_KEPT | plain | under["spec"]
        self.meta_kept = META_KEPT | under["metadata"]

    def for_kind(self, api_version: str, kind: str) -> Project | None:
        """The projection for objects of ``kind``; None keeps them whole (policies)."""
        if api_version.startswith(WHOLE_GROUPS):
            return None
        pod = api_version == "v1" and kind == "Pod"
        return lambda obj: self.project(obj, pod=pod)

    def project(self, obj: dict[str, Any], *, pod: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in obj.items():
            if key == "status":
                continue
            if key == "metadata":
                value = self._meta(value, self.meta_kept)
            elif key == "spec" and isinstance(value, dict):
                value = self._pod_spec(value) if pod else self._controller_spec(value)
            out[_key(key)] = _compact(value)
        return out

    def _meta(self, meta: Any, kept: frozenset[str]) -> Any:
        if not isinstance(meta, dict):
            return meta
        out = {k: v for k, v in meta.items() if k in kept}
        annotations = out.get("annotations")
        if isinstance(annotations, dict) and LAST_APPLIED in annotations:
            out["annotations"] = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
        owners = out.get("ownerReferences")
        if isinstance(owners, list):
            out["ownerReferences"] = [
                {k: v for k, v in o.items() if k in OWNER_KEPT} if isinstance(o, dict) else o
                for o in owners]
        return out

    def _pod_spec(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in spec.items() if k in self.pod_spec_kept}
        for name in CONTAINER_LISTS:
            containers = out.get(name)
            if isinstance(containers, list):
                out[name] = [{k: v for k, v in c.items() if k in self.container_kept}
                             if isinstance(c, dict) else c for c in containers]
        return out

    def _controller_spec(self, spec: dict[str, Any]) -> dict[str, Any]:
        """A workload controller's spec with its pod template projected (other kinds'
        specs have no template and are kept as they are)."""
        out = dict(spec)
        template = out.get("template")
        if isinstance(template, dict) and isinstance(template.get("spec"), dict):
            out["template"] = {"metadata": self._meta(template.get("metadata") or {},
                                                      self.meta_kept),
                               "spec": self._pod_spec(template["spec"])}
        job = out.get("jobTemplate")
        if isinstance(job, dict) and isinstance(job.get("spec"), dict):
            out["jobTemplate"] = {**job, "spec": self._controller_spec(job["spec"])}
        return out


def _key(key: str) -> str:
    return sys.intern(key)


def _compact(value: Any) -> Any:
    """``value`` rebuilt with interned keys and short strings."""
    if isinstance(value, dict):
        return {_key(k): _compact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_compact(v) for v in value]
    if isinstance(value, str) and len(value) <= _INTERN_UP_TO:
        return sys.intern(value)
    return value
