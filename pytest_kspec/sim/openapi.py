"""Minimal /openapi/v3 documents: enough for kubectl to see server-side field validation.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pytest_kspec.sim.resources import Registry, ResourceType


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _doc_hash(doc: dict[str, Any]) -> str:
    return hashlib.sha512(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:64].upper()


def root(registry: Registry) -> dict[str, Any]:
    paths = {}
    gvs = sorted({(rt.group, rt.version) for rt in registry.all()})
    for group, version in gvs:
        doc = gv_document(registry, group, version) or {}
        path = _gv_path(group, version)
        paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={_doc_hash(doc)}"}
    return {"paths": paths}


def _param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}


def _operation(rt: ResourceType, action: str, op_id: str) -> dict[str, Any]:
    params = [_param("dryRun"), _param("fieldManager")]
    if action in ("post", "put", "patch"):
        params.append(_param("fieldValidation"))
    if action == "patch":
        params.append({"name": "force", "in": "query", "schema": {"type": "boolean"}})
    return {
        "operationId": op_id,
        "parameters": params,
        "responses": {"200": {"description": "OK", "content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/{_schema_name(rt)}"}}}}},
        "x-kubernetes-action": {"post": "post", "put": "put", "patch": "patch", "get": "get",
                                "delete": "delete"}[action],
        "x-kubernetes-group-version-kind": {"group": rt.group, "version": rt.version,
                                            "kind": rt.kind},
    }


def _schema_name(rt: ResourceType) -> str:
    return f"{rt.group or 'core'}.{rt.version}.{rt.kind}"


def gv_document(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    types = [rt for rt in registry.all() if rt.group == group and rt.version == version]
    if not types:
        return None
    base = f"/{_gv_path(group, version)}"
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for rt in sorted(types, key=lambda t: t.plural):
        ns = "/namespaces/{namespace}" if rt.namespaced else ""
        name = rt.kind
        paths[f"{base}{ns}/{rt.plural}"] = {"post": _operation(rt, "post", f"create{name}")}
        if rt.stored:
            paths[f"{base}{ns}/{rt.plural}/{{name}}"] = {
                "get": _operation(rt, "get", f"read{name}"),
                "put": _operation(rt, "put", f"replace{name}"),
                "patch": _operation(rt, "patch", f"patch{name}"),
                "delete": _operation(rt, "delete", f"delete{name}"),
            }
        schemas[_schema_name(rt)] = {
            "type": "object",
            "x-kubernetes-group-version-kind": [{"group": rt.group, "version": rt.version,
                                                 "kind": rt.kind}],
            "x-kubernetes-preserve-unknown-fields": True,
        }
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "unversioned"},
            "paths": paths, "components": {"schemas": schemas}}
