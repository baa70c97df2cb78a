"""Write semantics of API and direct writes: metadata, rv, generation, finalizers, cascades.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any

from pytest_kspec.sim import crds, defaults, status
from pytest_kspec.sim.fieldtree import created_managed
from pytest_kspec.sim.resources import Registry, ResourceType
from pytest_kspec.sim.status import StatusError
from pytest_kspec.sim.store import Entry, Store
from pytest_kspec.sim.validate import validate

_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"
_SERVER_META = ("uid", "resourceVersion", "generation", "creationTimestamp",
                "deletionTimestamp", "deletionGracePeriodSeconds", "managedFields")
CRD_KEY = ("apiextensions.k8s.io", "customresourcedefinitions")
NS_KEY = ("", "namespaces")
# /status writes of these keep the annotations sent (the deployment controller records
# deployment.kubernetes.io/revision that way, without bumping generation)
STATUS_KEEPS_ANNOTATIONS = {("apps", "deployments")}


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _strip(obj: dict[str, Any], *, status_too: bool) -> dict[str, Any]:
    """The object without server-populated metadata (for no-op and generation checks)."""
    out = {k: v for k, v in obj.items() if k != "metadata" and (k != "status" or not status_too)}
    meta = {k: v for k, v in (obj.get("metadata") or {}).items()
            if k not in ("resourceVersion", "managedFields")}
    out["metadata"] = meta
    return out


def _record(managed: list[dict[str, Any]], old: dict[str, Any] | None, new: dict[str, Any], *,
            manager: str, operation: str, rt: ResourceType, subresource: str | None,
            when: str) -> list[dict[str, Any]]:
    from pytest_kspec.sim import apply as ssa  # written alongside; imported late on purpose

    def bare(o: dict[str, Any] | None) -> dict[str, Any] | None:
        if o is None:
            return None
        return dict(o, metadata={k: v for k, v in o["metadata"].items() if k != "managedFields"})

    return ssa.record_update(managed, bare(old), bare(new) or {}, manager=manager,
                             operation=operation, api_version=rt.api_version, time=when,
                             subresource=subresource, kind=rt.kind,
                             status_is_subresource="status" in rt.subresources)


def _created(obj: dict[str, Any], *, manager: str, rt: ResourceType,
             when: str) -> list[dict[str, Any]]:
    """What a create records: ``manager`` owns every field set (as ``_record`` finds it)."""
    return created_managed(obj, manager=manager, api_version=rt.api_version, kind=rt.kind,
                           time=when, status_is_subresource="status" in rt.subresources)


def _untimed(managed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in m.items() if k != "time"} for m in managed]


class Writer:
    """Creates, updates and deletes objects in a Store, the way the API server's registry does."""

    def __init__(self, store: Store, registry: Registry) -> None:
        self.store = store
        self.registry = registry
        # defer(rt, live, propagation, grace) -> the object marked for deletion to store instead
        # of removing it (graceful pod deletion, Terminating namespaces, foreground deletion),
        # or None to remove it now; set by the controller manager
        self.defer: Callable[[ResourceType, dict[str, Any], str | None, int | None],
                             dict[str, Any] | None] | None = None

    # --- create ------------------------------------------------------------------------------
    def create(self, rt: ResourceType, obj: dict[str, Any], namespace: str | None, *,
               manager: str, dry_run: bool = False,
               managed: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Create ``obj`` (``managed``: its managedFields, else ``manager`` owns every field)."""
        return self._create(rt, obj, namespace, manager=manager, dry_run=dry_run,
                            managed=managed, keep_meta=False)[0]

    def load(self, rt: ResourceType, obj: dict[str, Any], namespace: str | None, *,
             manager: str) -> Entry:
        """Store ``obj`` as saved state: the uid, creationTimestamp, generation and
        managedFields it carries are kept, no defaults are applied, and the managedFields of
        an object without them are made when it is first read whole (see
        :class:`~pytest_kspec.sim.store.Entry`)."""
        entry = self._create(rt, obj, namespace, manager=manager, dry_run=False, managed=None,
                             keep_meta=True)[1]
        assert entry is not None  # not a dry run: stored
        return entry

    def _create(self, rt: ResourceType, obj: dict[str, Any], namespace: str | None, *,
                manager: str, dry_run: bool, managed: list[dict[str, Any]] | None,
                keep_meta: bool) -> tuple[dict[str, Any], Entry | None]:
        obj = self._check_identity(rt, obj, namespace)
        kept = {k: obj["metadata"][k] for k in ("uid", "creationTimestamp", "managedFields",
                                                "generation")
                if keep_meta and obj["metadata"].get(k)}
        meta = obj["metadata"]
        with self.store.cond:
            if rt.namespaced:
                self._require_namespace(meta["namespace"])
            if not meta.get("name"):
                prefix = meta.get("generateName")
                if not prefix:
                    raise status.invalid(rt.group, rt.kind, "", [(
                        "FieldValueRequired", "Required value: name or generateName is required",
                        "metadata.name")])
                meta["name"] = str(prefix)[:58] + "".join(
                    random.choice(_NAME_CHARS) for _ in range(5))
                if self.store.get(rt.key, meta.get("namespace") or "", meta["name"]):
                    raise status.name_generation_failed(rt.group, rt.plural, meta["name"])
            self._validate(rt, obj)
            if self.store.get(rt.key, meta.get("namespace") or "", meta["name"]) is not None:
                raise status.already_exists(rt.group, rt.plural, meta["name"])
            when = now()
            for k in _SERVER_META:
                meta.pop(k, None)
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = when
            meta["generation"] = 1
            if managed is None and "managedFields" in kept:
                managed = kept["managedFields"]  # saved state says who manages what
            # loaded state stored as it is (no defaults, no status added): its fields can be
            # recorded when first needed, from the object as stored
            later = (managed is None and keep_meta and not dry_run
                     and rt.key not in (CRD_KEY, NS_KEY))
            pending = partial(_created, manager=manager, rt=rt, when=when) if later else None
            meta["managedFields"] = (managed if managed is not None else [] if later else
                                     _created(obj, manager=manager, rt=rt, when=when))
            meta.update(kept)
            if not keep_meta:
                defaults.on_create(rt.key, obj, self.store)
            if rt.key == CRD_KEY:
                crds.with_status(obj, when)
            if rt.key == NS_KEY:
                obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
                obj.setdefault("status", {})["phase"] = "Active"
            if dry_run:
                return obj, None
            entry = self.store.put(rt.key, obj, "ADDED", pending=pending)
            if rt.key == CRD_KEY:
                self.registry.set_custom(meta["name"], crds.served_types(obj))
            return obj, entry

    # --- update ------------------------------------------------------------------------------
    def update(self, rt: ResourceType, obj: dict[str, Any], namespace: str | None, name: str, *,
               manager: str, dry_run: bool = False, subresource: str | None = None,
               operation: str = "Update") -> dict[str, Any]:
        obj = self._check_identity(rt, obj, namespace)
        if obj["metadata"].get("name") != name:
            raise status.bad_request(f"the name of the object ({obj['metadata'].get('name')}) "
                                     f"does not match the name on the URL ({name})")
        with self.store.cond:
            live = self.get_entry(rt, namespace, name)
            sent_rv = str(obj["metadata"].get("resourceVersion") or "")
            if not sent_rv and rt.custom:
                raise status.invalid(rt.group, rt.kind, name, [(
                    "FieldValueInvalid", "Invalid value: 0: must be specified for an update",
                    "metadata.resourceVersion")])
            if sent_rv and sent_rv != str(live.rv):
                raise status.conflict(rt.group, rt.plural, name)
            return self.commit(rt, live, obj, manager=manager, operation=operation,
                               dry_run=dry_run, subresource=subresource)

    def get_entry(self, rt: ResourceType, namespace: str | None, name: str) -> Entry:
        entry = self.store.get(rt.key, namespace or "" if rt.namespaced else "", name)
        if entry is None:
            raise status.not_found(rt.group, rt.plural, name)
        return entry

    def commit(self, rt: ResourceType, live: Entry, new: dict[str, Any], *, manager: str,
               operation: str, dry_run: bool, subresource: str | None = None,
               managed: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Store ``new`` as the next version of ``live`` (caller holds the store lock)."""
        old = live.obj
        if subresource == "status":
            sent = new
            new = dict(old, status=new.get("status")) if "status" in new else dict(old)
            if new.get("status") is None:
                new.pop("status", None)
            if rt.key in STATUS_KEEPS_ANNOTATIONS:  # the revision annotation rides on /status
                new["metadata"] = dict(old["metadata"])
                annotations = (sent.get("metadata") or {}).get("annotations")
                if annotations:
                    new["metadata"]["annotations"] = annotations
                else:
                    new["metadata"].pop("annotations", None)
        elif "status" in rt.subresources:
            new = {k: v for k, v in new.items() if k != "status"}
            if "status" in old:
                new["status"] = old["status"]
        meta = dict(new.get("metadata") or {})
        new["metadata"] = meta
        for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                  "namespace", "name"):
            if k in old["metadata"]:
                meta[k] = old["metadata"][k]
            else:
                meta.pop(k, None)
        meta["generation"] = old["metadata"].get("generation", 1)
        new["apiVersion"], new["kind"] = old.get("apiVersion", rt.api_version), rt.kind
        if subresource is None:
            self._validate(rt, new)
        if subresource in (None, "scale") and self._spec_changed(rt, old, new):
            meta["generation"] = int(meta["generation"]) + 1
        meta["resourceVersion"] = old["metadata"].get("resourceVersion")
        meta["managedFields"] = old["metadata"].get("managedFields", [])
        if _strip(new, status_too=False) == _strip(old, status_too=False) and (
                managed is None or _untimed(managed) == _untimed(meta["managedFields"])):
            return live.copy()  # no-op: nothing written, no new resourceVersion
        meta["managedFields"] = managed if managed is not None else _record(
            list(old["metadata"].get("managedFields") or []), old, new, manager=manager,
            operation=operation, rt=rt, subresource=subresource, when=now())
        if rt.key == CRD_KEY:
            crds.with_status(new, now())
        if dry_run:
            return new
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            self._remove(rt, live, "Background")
            return new
        self.store.put(rt.key, new, "MODIFIED")
        if rt.key == CRD_KEY:
            self.registry.set_custom(meta["name"], crds.served_types(new))
        return new

    @staticmethod
    def _spec_changed(rt: ResourceType, old: dict[str, Any], new: dict[str, Any]) -> bool:
        if rt.custom:
            return any(old.get(k) != new.get(k) for k in set(old) | set(new)
                       if k not in ("metadata", "status", "apiVersion", "kind"))
        if old.get("spec") != new.get("spec"):
            return True
        if rt.key == ("apps", "deployments"):
            return bool(old["metadata"].get("annotations") != new["metadata"].get("annotations"))
        return False

    # --- delete ------------------------------------------------------------------------------
    def delete(self, rt: ResourceType, namespace: str | None, name: str, *,
               dry_run: bool = False, propagation: str | None = None,
               preconditions: dict[str, Any] | None = None,
               grace_period: int | None = None) -> tuple[dict[str, Any], bool]:
        """Delete (or mark for deletion); returns (object, gone)."""
        with self.store.cond:
            live = self.get_entry(rt, namespace, name)
            pre = preconditions or {}
            if pre.get("uid") and pre["uid"] != live.obj["metadata"].get("uid"):
                raise StatusError(409, "Conflict", (
                    f"Precondition failed: UID in precondition: {pre['uid']}, UID in object "
                    f"meta: {live.obj['metadata'].get('uid')}"),
                    {"name": name, "group": rt.group, "kind": rt.plural})
            if pre.get("resourceVersion") and str(pre["resourceVersion"]) != str(live.rv):
                raise StatusError(409, "Conflict", (
                    f"Precondition failed: ResourceVersion in precondition: "
                    f"{pre['resourceVersion']}, ResourceVersion in object meta: {live.rv}"),
                    {"name": name, "group": rt.group, "kind": rt.plural})
            if live.obj["metadata"].get("finalizers"):
                obj = live.copy()
                if not obj["metadata"].get("deletionTimestamp"):
                    obj["metadata"]["deletionTimestamp"] = now()
                    obj["metadata"]["deletionGracePeriodSeconds"] = 0
                    if not dry_run:
                        self.store.put(rt.key, obj, "MODIFIED")
                return obj, False
            marked = None if dry_run or self.defer is None else self.defer(
                rt, live.copy(), propagation, grace_period)
            if marked is not None:
                if marked != live.obj:
                    self.store.put(rt.key, marked, "MODIFIED")
                return marked, False
            if dry_run:
                return live.copy(), True
            gone = self._remove(rt, live, propagation or "Background")
            return gone, True

    def remove_now(self, rt: ResourceType, namespace: str | None, name: str) -> None:
        """Remove an object marked for deletion once what held it back is done."""
        with self.store.cond:
            live = self.store.get(rt.key, namespace or "", name)
            if live is not None:
                self._remove(rt, live, "Background")

    def _remove(self, rt: ResourceType, live: Entry, propagation: str) -> dict[str, Any]:
        entry = self.store.remove(rt.key, live.namespace, live.name)
        obj = entry.obj if entry is not None else live.obj
        if rt.key == NS_KEY:
            for rtype in self.registry.all():
                if rtype.namespaced and rtype.stored:
                    for e in self.store.entries(rtype.key, live.name):
                        self.store.remove(rtype.key, e.namespace, e.name)
        elif rt.key == CRD_KEY:
            for rtype in self.registry.remove_custom(live.name)[:1]:
                self.store.drop_resource(rtype.key)
        uid = str(live.obj["metadata"].get("uid") or "")
        for key, ns, name in self.store.dependents(uid) if uid else []:
            dep = self.store.get(key, ns, name)
            dep_rt = self._type_for(dep.obj) if dep is not None else None
            if dep is None or dep_rt is None:
                continue
            if propagation != "Orphan":
                self._remove(dep_rt, dep, propagation)
                continue
            orphan = dep.copy()  # the garbage collector drops the reference to the owner
            refs = [r for r in orphan["metadata"].get("ownerReferences") or []
                    if not (isinstance(r, dict) and r.get("uid") == uid)]
            if refs:
                orphan["metadata"]["ownerReferences"] = refs
            else:
                orphan["metadata"].pop("ownerReferences", None)
            self.store.put(key, orphan, "MODIFIED")
        return obj

    def _type_for(self, obj: dict[str, Any]) -> ResourceType | None:
        return self.registry.by_kind(str(obj.get("apiVersion")), str(obj.get("kind")))

    # --- helpers -----------------------------------------------------------------------------
    def _check_identity(self, rt: ResourceType, obj: Any, namespace: str | None) -> dict[str, Any]:
        if not isinstance(obj, dict):
            raise status.bad_request("the body of the request must be a JSON object")
        obj = dict(obj)
        kind, api_version = obj.get("kind"), obj.get("apiVersion")
        if kind not in (None, "", rt.kind):
            raise status.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API "
                f"version ({rt.api_version})" if api_version not in (None, "", rt.api_version)
                else f'Object kind "{kind}" does not match the resource kind "{rt.kind}"')
        if api_version not in (None, "", rt.api_version):
            raise status.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API "
                f"version ({rt.api_version})")
        obj["kind"], obj["apiVersion"] = rt.kind, rt.api_version
        meta = obj.get("metadata")
        meta = dict(meta) if isinstance(meta, dict) else {}
        obj["metadata"] = meta
        if rt.namespaced:
            body_ns = meta.get("namespace")
            ns = namespace or body_ns or "default"
            if body_ns and namespace and body_ns != namespace:
                raise status.bad_request("the namespace of the provided object does not match "
                                         "the namespace sent on the request")
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        result: dict[str, Any] = obj
        return result

    def require_namespace(self, namespace: str) -> None:
        """404 for a missing namespace, 403 for one being deleted, as NamespaceLifecycle
        admission answers before any webhook runs."""
        with self.store.cond:
            self._require_namespace(namespace)

    def _require_namespace(self, namespace: str) -> None:
        ns = self.store.get(NS_KEY, "", namespace)
        if ns is None:
            raise status.namespace_not_found(namespace)
        if ns.obj["metadata"].get("deletionTimestamp"):
            raise status.forbidden(
                f"unable to create new content in namespace {namespace} because it is being "
                "terminated", "", "namespaces", namespace)

    def _validate(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        causes = validate(rt, obj)
        if rt.key == CRD_KEY:
            causes += crds.validate(obj)
        if causes:
            kind = rt.kind
            raise status.invalid(rt.group, kind, str(obj["metadata"].get("name") or ""), causes)
