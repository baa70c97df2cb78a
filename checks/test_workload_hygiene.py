"""Example custom checks: plain pytest tests on the session's cluster snapshot.

Run them with kspec's own items: ``pytest checks/ --kspec-spec cluster-spec.yaml``. The
``kspec_cluster`` fixture lists each kind once per session (shared with kspec's items) and
hands back the API server's raw JSON; ``kspec_spec`` is the loaded ClusterSpecification.
Copy this file, keep what fits your cluster, and add your own.
"""

from __future__ import annotations

from typing import Any

SYSTEM_NAMESPACES = {"kube-system", "kube-public", "kube-node-lease"}


def _app(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if o["metadata"].get("namespace") not in SYSTEM_NAMESPACES]


def _name(obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    return f"{obj['kind']}/{meta.get('namespace', '')}/{meta['name']}".replace("//", "/")


def test_deployments_run_more_than_one_replica(kspec_cluster: Any) -> None:
    """A single replica means downtime on every node drain."""
    single = [_name(d) for d in _app(kspec_cluster.list("apps/v1", "Deployment"))
              if d.get("spec", {}).get("replicas", 1) < 2]
    assert not single, f"Deployments with fewer than 2 replicas: {', '.join(single)}"


def test_no_image_uses_the_latest_tag(kspec_cluster: Any) -> None:
    """``:latest`` (or no tag at all) makes rollbacks and audits guesswork."""
    offenders = []
    for pod in _app(kspec_cluster.list("v1", "Pod")):
        spec = pod.get("spec", {})
        for container in spec.get("containers", []) + spec.get("initContainers", []):
            image = container.get("image", "")
            last = image.rsplit("/", 1)[-1]
            if "@" not in image and (":" not in last or last.endswith(":latest")):
                offenders.append(f"{_name(pod)} ({container['name']}: {image})")
    assert not offenders, "images without a pinned tag: " + ", ".join(offenders)


def test_application_namespaces_name_an_owner(kspec_cluster: Any, kspec_spec: Any) -> None:
    """Every team namespace says who to call: a ``team`` or ``owner`` label."""
    unowned = [ns["metadata"]["name"] for ns in kspec_cluster.list("v1", "Namespace")
               if ns["metadata"]["name"] not in SYSTEM_NAMESPACES | {"default"}
               and not {"team", "owner"} & set(ns["metadata"].get("labels") or {})]
    assert not unowned, (f"namespaces without a team/owner label "
                         f"(spec {kspec_spec.name}): {', '.join(unowned)}")
