"""Turn a request path and method into a resource target and the verb RBAC and records use.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_kspec.sim import status
from pytest_kspec.sim.resources import Registry, ResourceType


@dataclass(frozen=True)
class Target:
    rt: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None
    verb: str


def split_gv(path: str) -> tuple[str, str, list[str]] | None:
    """(group, version, rest) of a resource path, or None for non-resource paths."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 3 and parts[0] == "api" and parts[1] == "v1":
        return "", "v1", parts[2:]
    if len(parts) >= 4 and parts[0] == "apis":
        return parts[1], parts[2], parts[3:]
    return None


def resolve(registry: Registry, method: str, path: str, watch_param: bool) -> Target | None:
    """The target of a resource request; None when the path is not a resource path."""
    gv = split_gv(path)
    if gv is None:
        return None
    group, version, parts = gv
    legacy_watch = False
    if parts and parts[0] == "watch":
        legacy_watch, parts = True, parts[1:]
    namespace = None
    if len(parts) >= 3 and parts[0] == "namespaces" and not (
            len(parts) == 3 and parts[2] in ("status", "finalize")):
        namespace, parts = parts[1], parts[2:]
    if not parts or len(parts) > 3:
        raise status.path_not_found(path)
    rt = registry.lookup(group, version, parts[0])
    if rt is None or (namespace is not None and not rt.namespaced):
        raise status.path_not_found(path)
    name = parts[1] if len(parts) > 1 else None
    sub = parts[2] if len(parts) > 2 else None
    if sub is not None and sub not in rt.subresources:
        raise status.path_not_found(path)
    verb = _verb(method, name, sub, watch_param or legacy_watch)
    if verb is None:
        raise status.StatusError(405, "MethodNotAllowed",
                                 "the server does not allow this method on the requested "
                                 "resource", {})
    base_verb = verb if verb not in ("watch",) else "watch"
    if sub is None and base_verb not in rt.verbs and not (
            base_verb == "watch" and "list" in rt.verbs and rt.stored):
        raise status.method_not_allowed(base_verb, rt.plural)
    if rt.namespaced and namespace is None and verb in ("create", "deletecollection") \
            and rt.stored:
        raise status.path_not_found(path)
    return Target(rt, namespace, name, sub, verb)


def _verb(method: str, name: str | None, sub: str | None, watch: bool) -> str | None:
    if method in ("GET", "HEAD"):
        if name is None:
            return "watch" if watch else "list"
        return "watch" if watch and sub is None else "get"
    if method == "POST":
        return "create" if name is None else None
    if method == "PUT":
        return "update" if name is not None else None
    if method == "PATCH":
        return "patch" if name is not None else None
    if method == "DELETE":
        return "delete" if name is not None else "deletecollection"
    return None
