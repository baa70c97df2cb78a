"""Example custom checks: plain pytest tests on the session's cluster snapshot.

Run them with kspec's own items: ``pytest checks/ --kspec-spec cluster-spec.yaml``. Each test
here is a kspec check like the spec's: it is in the drift report, JUnit, HTML, history and
trend as type ``custom``. ``kspec_cluster`` lists each kind once per session (shared with
kspec's items) and hands back the API server's raw JSON; ``kspec_violations.add(...)`` reports
one violating resource (each is tracked on its own: new, persisting, resolved);
``@pytest.mark.kspec`` says how severe a failure is and which controls it proves.
Copy this file, keep what fits your cluster, and add your own (see README.md here).
"""

from __future__ import annotations

from typing import Any

import pytest

SYSTEM_NAMESPACES = {"kube-system", "kube-public", "kube-node-lease"}
MIN_REPLICAS = 2


def _app(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if o["metadata"].get("namespace") not in SYSTEM_NAMESPACES]


def _name(obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    return f"{obj['kind']}/{meta.get('namespace', '')}/{meta['name']}".replace("//", "/")


def _scale_up(deployment: dict[str, Any]) -> Any:
    """A fix for one Deployment: scale it to MIN_REPLICAS (run only with --kspec-remediate)."""
    meta = deployment["metadata"]

    def fix(client: Any) -> None:
        client.patch("apps/v1", "Deployment", meta["name"],
                     {"spec": {"replicas": MIN_REPLICAS}}, namespace=meta["namespace"])
    return fix


@pytest.mark.kspec(severity="high", controls=["availability.replicas"],
                   id="deployments.replicas")
def test_deployments_run_more_than_one_replica(kspec_cluster: Any,
                                               kspec_violations: Any) -> None:
    """Deployments run at least two replicas: one means downtime on every node drain."""
    for deployment in _app(kspec_cluster.list("apps/v1", "Deployment")):
        replicas = deployment.get("spec", {}).get("replicas", 1)
        if replicas < MIN_REPLICAS:
            kspec_violations.add(_name(deployment),
                                 f"runs {replicas} replica(s), want >= {MIN_REPLICAS}",
                                 fix=_scale_up(deployment))


@pytest.mark.kspec(severity="medium", id="images.pinned-tag")
def test_no_image_uses_the_latest_tag(kspec_cluster: Any, kspec_violations: Any) -> None:
    """No image uses ``:latest`` or no tag: rollbacks and audits become guesswork."""
    for pod in _app(kspec_cluster.list("v1", "Pod")):
        spec = pod.get("spec", {})
        for container in spec.get("containers", []) + spec.get("initContainers", []):
            image = container.get("image", "")
            last = image.rsplit("/", 1)[-1]
            if "@" not in image and (":" not in last or last.endswith(":latest")):
                kspec_violations.add(_name(pod), f"container {container['name']} runs "
                                                 f"{image}: pin a version tag or a digest")


@pytest.mark.kspec(severity="low", id="namespaces.owner")
def test_application_namespaces_name_an_owner(kspec_cluster: Any,
                                              kspec_violations: Any) -> None:
    """Every team namespace says who to call: a ``team`` or ``owner`` label."""
    for ns in kspec_cluster.list("v1", "Namespace"):
        name = ns["metadata"]["name"]
        labels = ns["metadata"].get("labels") or {}
        if name not in SYSTEM_NAMESPACES | {"default"} and not {"team", "owner"} & set(labels):
            kspec_violations.add(f"Namespace/{name}", "has no team or owner label")


def test_spec_names_a_version(kspec_spec: Any) -> None:
    """A plain assert works too (severity medium, id = the test's name): one event if false."""
    assert kspec_spec.version, f"spec {kspec_spec.name} has no metadata.version"
