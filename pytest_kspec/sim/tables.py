"""Server-side Table output (``Accept: application/json;as=Table;g=meta.k8s.io;v=v1``).

``kubectl get`` asks for a ``meta.k8s.io`` Table and prints its columns; without one it falls
back to NAME and AGE. The simulator answers with the columns the API server prints for Pods
(READY, STATUS, RESTARTS), Deployments, Namespaces, Services and Nodes, and a CRD's
``additionalPrinterColumns``; other kinds get plain JSON, which kubectl prints itself.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import calendar
import functools
import json
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

Column = tuple[str, str, str, int]  # name, type, format, priority
Row = Callable[[Mapping[str, Any]], list[Any]]


def table_version(accept: str) -> str | None:
    """``v1`` / ``v1beta1`` when ``accept`` asks for a meta.k8s.io Table first, else None."""
    for part in accept.split(","):
        params = dict(p.strip().split("=", 1) for p in part.split(";")[1:] if "=" in p)
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io":
            return params.get("v", "v1")
        if part.strip().split(";")[0] in ("application/json", "*/*") and "as" not in params:
            return None
    return None


def human_duration(seconds: float) -> str:
    """Kubernetes' HumanDuration: ``45s``, ``5m3s``, ``47m``, ``5h8m``, ``3d4h``, ``2y3d``."""
    s = int(max(seconds, 0))
    m, h, d = s // 60, s // 3600, s // 86400
    if s < 120:
        return f"{s}s"
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    if h < 192:
        return f"{d}d{h % 24}h" if h % 24 else f"{d}d"
    if h < 24 * 365 * 2:
        return f"{d}d"
    y = d // 365
    if y < 8:
        return f"{y}y{d % 365}d" if d % 365 else f"{y}y"
    return f"{y}y"


@functools.lru_cache(maxsize=1024)  # objects made together share a timestamp
def _epoch(created: str) -> float | None:
    try:
        return float(calendar.timegm(time.strptime(created, "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        return None


def _age(obj: Mapping[str, Any]) -> str:
    created = (obj.get("metadata") or {}).get("creationTimestamp")
    then = _epoch(str(created)) if created else None
    if then is None:
        return "<unknown>"
    return human_duration(time.time() - then)


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _pod_row(pod: Mapping[str, Any]) -> list[Any]:
    spec, st = pod.get("spec") or {}, pod.get("status") or {}
    statuses = st.get("containerStatuses") or []
    total = len(spec.get("containers") or [])
    ready = sum(1 for c in statuses if c.get("ready"))
    restarts = sum(int(c.get("restartCount") or 0) for c in statuses)
    reason = str(st.get("reason") or st.get("phase") or "Pending")
    for c in statuses:
        state = c.get("state") or {}
        if state.get("waiting", {}).get("reason"):
            reason = str(state["waiting"]["reason"])
        elif state.get("terminated", {}).get("reason"):
            reason = str(state["terminated"]["reason"])
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        reason = "Terminating"
    return [_name(pod), f"{ready}/{total}", reason, restarts, _age(pod),
            st.get("podIP") or "<none>", spec.get("nodeName") or "<none>",
            st.get("nominatedNodeName") or "<none>", "<none>"]


def _deployment_row(dep: Mapping[str, Any]) -> list[Any]:
    spec, st = dep.get("spec") or {}, dep.get("status") or {}
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    selector = (spec.get("selector") or {}).get("matchLabels") or {}
    return [_name(dep), f"{int(st.get('readyReplicas') or 0)}/{int(spec.get('replicas', 1))}",
            int(st.get("updatedReplicas") or 0), int(st.get("availableReplicas") or 0),
            _age(dep), ",".join(str(c.get("name")) for c in containers),
            ",".join(str(c.get("image")) for c in containers),
            ",".join(f"{k}={v}" for k, v in selector.items()) or "<none>"]


def _namespace_row(ns: Mapping[str, Any]) -> list[Any]:
    return [_name(ns), (ns.get("status") or {}).get("phase", "Active"), _age(ns)]


def _service_row(svc: Mapping[str, Any]) -> list[Any]:
    spec = svc.get("spec") or {}
    kind = spec.get("type") or "ClusterIP"
    ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    external = ",".join(str(i.get("ip") or i.get("hostname")) for i in ingress) or (
        ",".join(spec.get("externalIPs") or []) or
        (spec.get("externalName") if kind == "ExternalName" else
         "<pending>" if kind == "LoadBalancer" else "<none>"))
    ports = ",".join(
        f"{p.get('port')}" + (f":{p['nodePort']}" if p.get("nodePort") else "")
        + f"/{p.get('protocol', 'TCP')}" for p in spec.get("ports") or []) or "<none>"
    selector = ",".join(f"{k}={v}" for k, v in (spec.get("selector") or {}).items())
    return [_name(svc), kind, spec.get("clusterIP") or "<none>", external, ports, _age(svc),
            selector or "<none>"]


def _node_row(node: Mapping[str, Any]) -> list[Any]:
    st = node.get("status") or {}
    ready = next((c for c in st.get("conditions") or [] if c.get("type") == "Ready"), None)
    state = "Ready" if ready and ready.get("status") == "True" else "NotReady"
    if (node.get("spec") or {}).get("unschedulable"):
        state += ",SchedulingDisabled"
    labels = (node.get("metadata") or {}).get("labels") or {}
    roles = sorted(k.split("/", 1)[1] for k in labels
                   if k.startswith("node-role.kubernetes.io/") and "/" in k)
    info = st.get("nodeInfo") or {}
    internal = next((a.get("address") for a in st.get("addresses") or []
                     if a.get("type") == "InternalIP"), "<none>")
    return [_name(node), state, ",".join(roles) or "<none>", _age(node),
            info.get("kubeletVersion", ""), internal, info.get("osImage", "<unknown>"),
            info.get("kernelVersion", "<unknown>"), info.get("containerRuntimeVersion", "")]


_NAME: Column = ("Name", "string", "name", 0)
_AGE: Column = ("Age", "string", "", 0)
BUILTIN: Mapping[tuple[str, str], tuple[list[Column], Row]] = {
    ("", "pods"): ([_NAME, ("Ready", "string", "", 0), ("Status", "string", "", 0),
                    ("Restarts", "string", "", 0), _AGE, ("IP", "string", "", 1),
                    ("Node", "string", "", 1), ("Nominated Node", "string", "", 1),
                    ("Readiness Gates", "string", "", 1)], _pod_row),
    ("apps", "deployments"): ([_NAME, ("Ready", "string", "", 0),
                               ("Up-to-date", "integer", "", 0),
                               ("Available", "integer", "", 0), _AGE,
                               ("Containers", "string", "", 1), ("Images", "string", "", 1),
                               ("Selector", "string", "", 1)], _deployment_row),
    ("", "namespaces"): ([_NAME, ("Status", "string", "", 0), _AGE], _namespace_row),
    ("", "services"): ([_NAME, ("Type", "string", "", 0), ("Cluster-IP", "string", "", 0),
                        ("External-IP", "string", "", 0), ("Port(s)", "string", "", 0), _AGE,
                        ("Selector", "string", "", 1)], _service_row),
    ("", "nodes"): ([_NAME, ("Status", "string", "", 0), ("Roles", "string", "", 0), _AGE,
                     ("Version", "string", "", 0), ("Internal-IP", "string", "", 1),
                     ("OS-Image", "string", "", 1), ("Kernel-Version", "string", "", 1),
                     ("Container-Runtime", "string", "", 1)], _node_row),
}

_STEP = re.compile(r"\.([^.\[]+)|\[\?\(@\.([\w.-]+)\s*==\s*[\"']([^\"']*)[\"']\)\]|\[(\d+)\]")


def json_path(obj: Any, path: str) -> Any:
    """A printer column's JSONPath (``.spec.x``, ``[0]``, ``[?(@.type == "Ready")]``)."""
    values = [obj]
    for match in _STEP.finditer(path.strip().lstrip("$")):
        key, fkey, fval, index = match.groups()
        out: list[Any] = []
        for value in values:
            if key is not None and isinstance(value, Mapping) and key in value:
                out.append(value[key])
            elif fkey is not None and isinstance(value, list):
                out += [v for v in value if isinstance(v, Mapping) and str(v.get(fkey)) == fval]
            elif index is not None and isinstance(value, list) and int(index) < len(value):
                out.append(value[int(index)])
        values = out
    return values[0] if len(values) == 1 else (values or None)


def _cell(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "date":
        return _age({"metadata": {"creationTimestamp": value}})
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return value


def _crd_columns(crd: Mapping[str, Any] | None,
                 version: str) -> tuple[list[Column], Row] | None:
    if crd is None:
        return None
    served = next((v for v in (crd.get("spec") or {}).get("versions") or []
                   if v.get("name") == version), None)
    printer = (served or {}).get("additionalPrinterColumns")
    if not printer:
        return None
    columns: list[Column] = [_NAME] + [
        (str(c.get("name")), str(c.get("type", "string")), str(c.get("format", "")),
         int(c.get("priority", 0))) for c in printer]

    def row(obj: Mapping[str, Any]) -> list[Any]:
        return [_name(obj)] + [_cell(json_path(obj, str(c.get("jsonPath", ""))),
                                     str(c.get("type", "string"))) for c in printer]
    return columns, row


def to_table(objs: list[dict[str, Any]], list_meta: Mapping[str, Any], group: str,
             plural: str, version: str, *, table_api: str, include: str,
             crd: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """The Table for ``objs`` of group/plural, or None when the kind has no columns here."""
    found = BUILTIN.get((group, plural)) or _crd_columns(crd, version)
    if found is None:
        return None
    columns, row = found
    rows = []
    for obj in objs:
        entry: dict[str, Any] = {"cells": row(obj)}
        if include == "Object":
            entry["object"] = obj
        elif include != "None":
            entry["object"] = {"kind": "PartialObjectMetadata",
                               "apiVersion": f"meta.k8s.io/{table_api}",
                               "metadata": obj.get("metadata") or {}}
        rows.append(entry)
    return {"kind": "Table", "apiVersion": f"meta.k8s.io/{table_api}",
            "metadata": {k: v for k, v in list_meta.items()
                         if k in ("resourceVersion", "continue", "remainingItemCount")},
            "columnDefinitions": [{"name": n, "type": t, "format": f, "priority": p,
                                   "description": ""} for n, t, f, p in columns],
            "rows": rows}
