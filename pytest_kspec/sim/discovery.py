"""Legacy discovery documents (/version, /api, /apis, APIResourceLists) built from the registry.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

from typing import Any

from pytest_kspec.sim.resources import SUBRESOURCE_KIND, SUBRESOURCE_VERBS, Registry, ResourceType


def version_info(version: str) -> dict[str, str]:
    major, minor = [*version.split("."), "0"][:2]
    return {
        "major": major, "minor": minor, "gitVersion": f"v{version}",
        "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
        "buildDate": "2024-01-01T00:00:00Z", "goVersion": "go1.22.2", "compiler": "gc",
        "platform": "linux/amd64",
    }


def api_versions() -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                            "serverAddress": "127.0.0.1:6443"}]}


def _group(name: str, versions: list[str]) -> dict[str, Any]:
    gvs = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": gvs, "preferredVersion": dict(gvs[0])}


def api_group_list(registry: Registry) -> dict[str, Any]:
    groups = [_group(g, vs) for g, vs in sorted(registry.group_versions().items()) if g]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(registry: Registry, group: str) -> dict[str, Any] | None:
    versions = registry.group_versions().get(group)
    if not group or not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(group, versions)}


def _entry(rt: ResourceType) -> dict[str, Any]:
    out: dict[str, Any] = {"name": rt.plural, "singularName": rt.singular,
                           "namespaced": rt.namespaced, "kind": rt.kind, "verbs": list(rt.verbs)}
    if rt.short_names:
        out["shortNames"] = list(rt.short_names)
    if rt.categories:
        out["categories"] = list(rt.categories)
    if rt.stored:
        out["storageVersionHash"] = rt.storage_version_hash()
    return out


def _sub_entry(rt: ResourceType, sub: str) -> dict[str, Any]:
    out: dict[str, Any] = {"name": f"{rt.plural}/{sub}", "singularName": "",
                           "namespaced": rt.namespaced, "kind": rt.kind,
                           "verbs": list(SUBRESOURCE_VERBS.get(sub, ("get",)))}
    if sub in SUBRESOURCE_KIND:
        group, version, kind = SUBRESOURCE_KIND[sub]
        out.update(group=group, version=version, kind=kind)
    return out


def resource_list(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    types = sorted((rt for rt in registry.all() if rt.group == group and rt.version == version),
                   key=lambda rt: rt.plural)
    if not types:
        return None
    resources: list[dict[str, Any]] = []
    for rt in types:
        resources.append(_entry(rt))
        resources.extend(_sub_entry(rt, s) for s in rt.subresources)
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
            "resources": resources}
