"""Resource verbs over HTTP semantics: get, list, create, update, patch, delete, SSAR, scale.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import yaml

from pytest_kspec.sim import auth, status
from pytest_kspec.sim.listing import Lister, served_obj, served_raw
from pytest_kspec.sim.resources import ResourceType
from pytest_kspec.sim.routing import Target
from pytest_kspec.sim.selectors import combine, field_matcher, label_matcher
from pytest_kspec.sim.status import StatusError
from pytest_kspec.sim.store import Entry, Store, dumps, gc_paused
from pytest_kspec.sim.writes import Writer, now

# Registries that answer DELETE with the deleted object rather than a Status.
RETURN_DELETED = {("", "pods"), ("", "services"), ("", "namespaces"), ("apps", "deployments"),
                  ("apps", "replicasets"), ("apps", "daemonsets"), ("apps", "statefulsets"),
                  ("batch", "jobs"), ("batch", "cronjobs"),
                  ("apiextensions.k8s.io", "customresourcedefinitions")}
PATCH_TYPES = {"application/json-patch+json": "json", "application/merge-patch+json": "merge",
               "application/strategic-merge-patch+json": "strategic",
               "application/apply-patch+yaml": "apply"}


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    user: Any = None


@dataclass
class Response:
    code: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    stream: Callable[[Callable[[bytes], None]], None] | None = None


def json_response(code: int, obj: Any) -> Response:
    return Response(code, dumps(obj))


def _body(req: Request) -> Any:
    if not req.body:
        return None
    try:
        return json.loads(req.body)
    except ValueError as e:
        raise status.bad_request(f"the body of the request could not be decoded: {e}") from None


def dry_run(query: dict[str, str], body: Any = None) -> bool:
    values = [v for v in query.get("dryRun", "").split(",") if v]
    if isinstance(body, dict) and isinstance(body.get("dryRun"), list):
        values += [str(v) for v in body["dryRun"]]
    for v in values:
        if v != "All":
            raise StatusError(422, "Invalid",
                              f'DryRun: Unsupported value: "{v}": supported values: "All"', {})
    return bool(values)


def manager_of(req: Request) -> str:
    manager = req.query.get("fieldManager")
    if manager:
        if len(manager) > 128:
            raise StatusError(422, "Invalid", "fieldManager: Too long: may not be more than "
                              "128 bytes", {})
        return manager
    agent = req.headers.get("user-agent", "")
    return agent.split("/", 1)[0] if agent else "unknown"


def _field_validation(query: dict[str, str]) -> None:
    value = query.get("fieldValidation")
    if value not in (None, "", "Ignore", "Warn", "Strict"):
        raise status.bad_request(f"fieldValidation parameter unsupported: {value}")


class Admit(Protocol):
    """An admission hook: raises ``StatusError`` to refuse a write (see sim/admission)."""

    def __call__(self, rt: ResourceType, obj: Any, namespace: str | None, *,
                 operation: str, old: dict[str, Any] | None = None) -> None: ...


def _admit_all(rt: ResourceType, obj: Any, namespace: str | None, *, operation: str,
               old: dict[str, Any] | None = None) -> None:
    return None


class Verbs:
    """Resource verb handlers bound to one simulator's store."""

    def __init__(self, store: Store, writer: Writer, rbac_on: Callable[[], bool],
                 admit: Admit | None = None) -> None:
        from pytest_kspec.sim.schemas import Decoder

        self.store = store
        self.writer = writer
        self.lister = Lister(store)
        self.rbac_on = rbac_on
        self.admit: Admit = admit or _admit_all
        self.decode = Decoder(store)  # CRD schemas: pruning, strict field validation

    def handle(self, t: Target, req: Request) -> Response:
        rt = t.rt
        if rt.key == ("authorization.k8s.io", "selfsubjectaccessreviews"):
            return self.ssar(req)
        if t.subresource == "log":
            self.writer.get_entry(rt, t.namespace, str(t.name))
            return Response(200, b"", "text/plain")
        if t.subresource == "scale":
            return self.scale(t, req)
        if t.verb == "get":
            entry = self.writer.get_entry(rt, t.namespace, str(t.name))
            return self._serve(t, req, None, [entry])
        if t.verb == "list":
            meta, entries = self.lister.page_entries(rt, t.namespace, self._matcher(t, req),
                                                     req.query)
            return self._serve(t, req, meta, entries)
        if t.verb == "create":
            return self.create(t, req)
        if t.verb == "update":
            return self.update(t, req)
        if t.verb == "patch":
            return self.patch(t, req)
        if t.verb == "delete":
            return self.delete(t, req)
        if t.verb == "deletecollection":
            return self.delete_collection(t, req)
        raise status.method_not_allowed(t.verb, rt.plural)

    def _serve(self, t: Target, req: Request, meta: dict[str, Any] | None,
               entries: list[Entry]) -> Response:
        """One object (``meta`` None) or a LIST page, as JSON, or as a meta.k8s.io Table when
        the client asks for one (``kubectl get``) and the kind has printer columns (see
        sim/tables.py). The Table is made from the stored objects, not from their JSON
        parsed back (that cost a 10,000-pod ``kubectl get`` most of its time)."""
        from pytest_kspec.sim import tables

        rt = t.rt
        api = tables.table_version(req.headers.get("accept", ""))
        if api is not None:
            crd = self.store.get(("apiextensions.k8s.io", "customresourcedefinitions"), "",
                                 f"{rt.plural}.{rt.group}") if rt.custom else None
            with gc_paused():
                table = tables.to_table([served_obj(rt, e) for e in entries], meta or {},
                                        rt.group, rt.plural, rt.version, table_api=api,
                                        include=req.query.get("includeObject", "Metadata"),
                                        crd=crd.obj if crd is not None else None)
            if table is not None:
                return json_response(200, table)
        if meta is None:
            return Response(200, served_raw(rt, entries[0]))
        return Response(200, self.lister.encode(rt, meta, entries))

    def _matcher(self, t: Target, req: Request) -> Any:
        fields = req.query.get("fieldSelector")
        if t.name is not None:
            fields = f"metadata.name={t.name}" + (f",{fields}" if fields else "")
        return combine(label_matcher(req.query.get("labelSelector")),
                       field_matcher(fields, t.rt.group, t.rt.plural))

    def watch_matcher(self, t: Target, req: Request) -> Any:
        return self._matcher(t, req)

    # --- writes ------------------------------------------------------------------------------
    def create(self, t: Target, req: Request) -> Response:
        body = _body(req)
        _field_validation(req.query)
        dry = dry_run(req.query)
        self.decode(t.rt, body, req.query)
        if t.rt.namespaced and t.namespace:  # NamespaceLifecycle admits before any webhook
            self.writer.require_namespace(t.namespace)
        self.admit(t.rt, body, t.namespace, operation="CREATE")
        obj = self.writer.create(t.rt, body, t.namespace, manager=manager_of(req), dry_run=dry)
        return json_response(201, obj)

    def update(self, t: Target, req: Request) -> Response:
        body = _body(req)
        _field_validation(req.query)
        dry = dry_run(req.query)
        if t.subresource is None:
            self.decode(t.rt, body, req.query)
            live = self.store.get(t.rt.key, t.namespace or "", str(t.name))
            self.admit(t.rt, body, t.namespace, operation="UPDATE",
                       old=live.obj if live is not None else None)
        obj = self.writer.update(t.rt, body, t.namespace, str(t.name), manager=manager_of(req),
                                 dry_run=dry, subresource=t.subresource)
        return json_response(200, obj)

    def patch(self, t: Target, req: Request) -> Response:
        from pytest_kspec.sim import apply as ssa
        from pytest_kspec.sim import patching

        rt, name = t.rt, str(t.name)
        ctype = req.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        kind = PATCH_TYPES.get(ctype)
        if kind is None or (kind == "strategic" and rt.custom):
            raise status.unsupported_media_type(ctype)
        _field_validation(req.query)
        dry = dry_run(req.query)
        force = req.query.get("force")
        if kind != "apply" and force is not None:
            raise StatusError(422, "Invalid", "force: Forbidden: may not be specified for "
                              "non-apply patch", {})
        try:
            if kind == "apply":
                return self._apply(t, req, dry, force in ("true", "1"))
            try:
                patch = json.loads(req.body or b"null")
            except ValueError as e:
                raise status.bad_request(f"error decoding patch: {e}") from None
            with self.store.cond:
                live = self.writer.get_entry(rt, t.namespace, name)
                current = live.copy()
                if kind == "json":
                    new = patching.json_patch(current, patch)
                elif kind == "merge":
                    new = patching.json_merge_patch(current, patch)
                else:
                    new = patching.strategic_merge_patch(current, patch, rt.api_version, rt.kind)
                if not isinstance(new, dict):
                    raise status.bad_request("the patch did not produce an object")
                sent_rv = str((new.get("metadata") or {}).get("resourceVersion") or "")
                if sent_rv and sent_rv != str(live.rv):
                    raise status.conflict(rt.group, rt.plural, name)
                if t.subresource is None:
                    self.decode(rt, new, req.query)
                    self.admit(rt, new, t.namespace, operation="UPDATE", old=live.obj)
                obj = self.writer.commit(rt, live, new, manager=manager_of(req),
                                         operation="Update", dry_run=dry,
                                         subresource=t.subresource)
            return json_response(200, obj)
        except patching.PatchError as e:
            details: dict[str, Any] = {}
            if e.cause:
                details["causes"] = [{"message": e.cause}]
            raise StatusError(e.code, e.reason, str(e), details) from None
        except ssa.ApplyConflict as e:
            raise StatusError(409, "Conflict", e.message, {"causes": e.causes}) from None
        except ssa.ApplyError as e:
            raise StatusError(e.code, e.reason, e.message, {}) from None

    def _apply(self, t: Target, req: Request, dry: bool, force: bool) -> Response:
        from pytest_kspec.sim import apply as ssa

        rt, name = t.rt, str(t.name)
        manager = req.query.get("fieldManager")
        if not manager:
            raise StatusError(422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: '
                              "fieldManager: Required value: is required for apply patch", {})
        try:
            applied = yaml.safe_load(req.body or b"")
        except yaml.YAMLError as e:
            raise status.bad_request(f"error decoding YAML: {e}") from None
        if not isinstance(applied, dict):
            raise status.bad_request("the applied configuration must be an object")
        raw_meta = applied.get("metadata")
        meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
        if meta.get("name") not in (None, name):
            raise status.bad_request(f"the name of the object ({meta.get('name')}) does not "
                                     f"match the name on the URL ({name})")
        applied = dict(applied, metadata=dict(meta, name=name))
        if t.subresource is None:
            self.decode(rt, applied, req.query)
        with self.store.cond:
            ns = t.namespace if rt.namespaced else ""
            live = self.store.get(rt.key, ns or "", name)
            result = ssa.server_side_apply(
                live.copy() if live is not None else None, applied, manager=manager,
                force=force, api_version=rt.api_version, kind=rt.kind, time=now(),
                status_is_subresource="status" in rt.subresources)
            managed = list(result.get("metadata", {}).get("managedFields") or [])
            if t.subresource is None:
                self.admit(rt, result, t.namespace, operation="UPDATE" if live else "CREATE",
                           old=live.obj if live is not None else None)
            if live is None:
                obj = self.writer.create(rt, result, t.namespace, manager=manager, dry_run=dry,
                                         managed=managed)
                return json_response(201, obj)
            obj = self.writer.commit(rt, live, result, manager=manager, operation="Apply",
                                     dry_run=dry, subresource=t.subresource, managed=managed)
            return json_response(200, obj)

    def delete(self, t: Target, req: Request) -> Response:
        body = _body(req) or {}
        if not isinstance(body, dict):
            raise status.bad_request("DeleteOptions must be an object")
        dry = dry_run(req.query, body)
        policy = req.query.get("propagationPolicy") or body.get("propagationPolicy")
        if policy not in (None, "Orphan", "Background", "Foreground"):
            raise StatusError(422, "Invalid", f'DeleteOptions.meta.k8s.io "" is invalid: '
                              f'propagationPolicy: Unsupported value: "{policy}": supported '
                              'values: "Foreground", "Background", "Orphan", "nil"', {})
        sent = req.query.get("gracePeriodSeconds", body.get("gracePeriodSeconds"))
        try:
            grace = None if sent in (None, "") else int(sent)
        except (TypeError, ValueError):
            raise status.bad_request(f"gracePeriodSeconds: invalid value {sent!r}") from None
        obj, gone = self.writer.delete(t.rt, t.namespace, str(t.name), dry_run=dry,
                                       propagation=policy,
                                       preconditions=body.get("preconditions"),
                                       grace_period=grace)
        if not gone or t.rt.key in RETURN_DELETED:
            return json_response(200, obj)
        return json_response(200, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                   "status": "Success",
                                   "details": {"name": t.name, "group": t.rt.group,
                                               "kind": t.rt.plural,
                                               "uid": obj["metadata"].get("uid")}})

    def delete_collection(self, t: Target, req: Request) -> Response:
        body = _body(req) or {}
        dry = dry_run(req.query, body if isinstance(body, dict) else None)
        policy = req.query.get("propagationPolicy") or (
            body.get("propagationPolicy") if isinstance(body, dict) else None)
        _rv, entries = self.lister.select(t.rt, t.namespace, self._matcher(t, req))
        items = []
        with self.store.cond:
            for e in entries:
                try:
                    obj, _gone = self.writer.delete(t.rt, e.namespace or None, e.name,
                                                    dry_run=dry, propagation=policy)
                except StatusError as err:
                    if err.code == 404:
                        continue
                    raise
                items.append(obj)
        return json_response(200, {"kind": t.rt.list_kind, "apiVersion": t.rt.api_version,
                                   "metadata": {"resourceVersion": str(self.store.rv)},
                                   "items": items})

    # --- special resources -------------------------------------------------------------------
    def ssar(self, req: Request) -> Response:
        from pytest_kspec.sim.rbac import Attributes

        body = _body(req)
        spec = body.get("spec") if isinstance(body, dict) else None
        if not isinstance(spec, dict):
            raise StatusError(422, "Invalid", 'SelfSubjectAccessReview.authorization.k8s.io '
                              '"" is invalid: spec.resourceAttributes: Invalid value: "null": '
                              "exactly one of nonResourceAttributes or resourceAttributes must "
                              "be specified", {})
        ra, nra = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
        if isinstance(ra, dict):
            attrs = Attributes(verb=str(ra.get("verb") or ""), api_group=str(ra.get("group") or ""),
                               resource=str(ra.get("resource") or ""),
                               subresource=str(ra.get("subresource") or ""),
                               name=str(ra.get("name") or ""),
                               namespace=str(ra.get("namespace") or ""))
        elif isinstance(nra, dict):
            attrs = Attributes(verb=str(nra.get("verb") or ""), path=str(nra.get("path") or ""),
                               resource_request=False)
        else:
            raise status.bad_request("spec.resourceAttributes or nonResourceAttributes required")
        allowed, reason = auth.check(req.user, attrs, self.store, self.rbac_on())
        out_status: dict[str, Any] = {"allowed": allowed}
        if reason:
            out_status["reason"] = reason
        return json_response(201, {"kind": "SelfSubjectAccessReview",
                                   "apiVersion": "authorization.k8s.io/v1",
                                   "metadata": {"creationTimestamp": None}, "spec": spec,
                                   "status": out_status})

    def scale(self, t: Target, req: Request) -> Response:
        rt, name = t.rt, str(t.name)
        with self.store.cond:
            live = self.writer.get_entry(rt, t.namespace, name)
            if t.verb == "get":
                return json_response(200, _scale_of(live))
            if t.verb == "update":
                wanted = _body(req)
            else:
                from pytest_kspec.sim import patching

                ctype = req.headers.get("content-type", "").split(";", 1)[0].strip().lower()
                patch = json.loads(req.body or b"null")
                scale = _scale_of(live)
                try:
                    if ctype == "application/json-patch+json":
                        wanted = patching.json_patch(scale, patch)
                    else:
                        wanted = patching.json_merge_patch(scale, patch)
                except patching.PatchError as e:
                    raise StatusError(e.code, e.reason, str(e), {}) from None
            replicas = ((wanted or {}).get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or replicas < 0:
                raise status.invalid("autoscaling", "Scale", name, [(
                    "FieldValueInvalid", f"Invalid value: {replicas}: must be greater than or "
                    "equal to 0", "spec.replicas")])
            new = live.copy()
            new.setdefault("spec", {})["replicas"] = replicas
            self.writer.commit(rt, live, new, manager=manager_of(req), operation="Update",
                               dry_run=dry_run(req.query), subresource="scale")
            entry = self.store.get(rt.key, live.namespace, name) or live
            return json_response(200, _scale_of(entry))


def _scale_of(entry: Entry) -> dict[str, Any]:
    obj = entry.obj
    meta = obj["metadata"]
    selector = (obj.get("spec") or {}).get("selector") or {}
    if "matchLabels" in selector or "matchExpressions" in selector:
        selector = selector.get("matchLabels") or {}  # a ReplicationController's is a plain map
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                              "creationTimestamp") if k in meta},
            "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 1)},
            "status": {"replicas": (obj.get("status") or {}).get("replicas", 0),
                       "selector": ",".join(f"{k}={v}" for k, v in sorted(selector.items()))}}

