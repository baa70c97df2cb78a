"""Image rules: reference normalization, registry globs, digests, signature policies."""

from __future__ import annotations

import pytest

from pytest_kspec.detect.compliance import evaluate, parse_image
from pytest_kspec.detect.compliance.images import matches_registry
from pytest_kspec.errors import ApiError

from .fakes import MemorySnapshot, cluster_policy, container, pod, ref_for

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("image", "name", "normalized"),
    [
        ("nginx", "docker.io/library/nginx", "docker.io/library/nginx:latest"),
        ("nginx:1.25", "docker.io/library/nginx", "docker.io/library/nginx:1.25"),
        ("docker.io/library/nginx", "docker.io/library/nginx", "docker.io/library/nginx:latest"),
        ("index.docker.io/nginx", "docker.io/library/nginx", "docker.io/library/nginx:latest"),
        ("user/app", "docker.io/user/app", "docker.io/user/app:latest"),
        ("registry:5000/x", "registry:5000/x", "registry:5000/x:latest"),
        ("registry:5000/x:2", "registry:5000/x", "registry:5000/x:2"),
        ("localhost/x", "localhost/x", "localhost/x:latest"),
        (f"gcr.io/a/b@{DIGEST}", "gcr.io/a/b", f"gcr.io/a/b@{DIGEST}"),
        (f"GHCR.io/org/app:v1@{DIGEST}", "ghcr.io/org/app", f"ghcr.io/org/app:v1@{DIGEST}"),
    ],
)
def test_parse_image(image: str, name: str, normalized: str) -> None:
    ref = parse_image(image)
    assert (ref.name, ref.normalized) == (name, normalized)


@pytest.mark.parametrize(
    ("image", "pattern", "matches"),
    [
        ("nginx", "docker.io/*", True),
        ("nginx", "docker.io", True),
        ("nginx", "docker.io/nginx", True),
        ("myorg/api", "docker.io/myorg", True),
        ("registry.example.com/team/app:1", "registry.example.com/*", True),
        ("registry.example.com/team/app:1", "registry.example.com/team", True),
        ("registry.example.com/teamx/app", "registry.example.com/team", False),
        ("evil.io/registry.example.com/app", "registry.example.com/*", False),
        ("evil.io/x.example.com/app", "*.example.com/*", False),
        ("eu.example.com/app", "*.example.com/*", True),
        ("myacr.azurecr.io/app", "*.azurecr.io", True),
        ("gcr.io/proj/app", "docker.io/*", False),
        ("localhost:5000/x", "localhost:5000/*", True),
        (f"gcr.io/a/b@{DIGEST}", "gcr.io/a/*", True),
    ],
)
def test_registry_patterns(image: str, pattern: str, matches: bool) -> None:
    assert matches_registry(parse_image(image), pattern) is matches


def images_body(**rule: object) -> dict[str, object]:
    return {"workloads": {"images": rule}}


def test_allowed_registries_cover_all_container_kinds() -> None:
    snap = MemorySnapshot(
        pod("web", containers=[container(image="registry.example.com/team/web:1")],
            initContainers=[container("setup", image="busybox")]),
        pod("sys", ns="kube-system", containers=[container(image="k8s.gcr.io/pause")]),
    )
    res = evaluate(ref_for(images_body(allowedRegistries=["registry.example.com/*"])), snap)
    assert [str(v) for v in res.violations] == [
        'Pod/payments/web: initContainer "setup" image "busybox" (docker.io/library/busybox) '
        "is not from an allowed registry"]


def test_blocked_registries() -> None:
    snap = MemorySnapshot(pod("web", containers=[
        container(image="nginx:1.25"), container("side", image="quay.io/org/side")]))
    res = evaluate(ref_for(images_body(blockedRegistries=["docker.io/*"])), snap)
    assert [v.message for v in res.violations] == [
        'container "app" image "nginx:1.25" (docker.io/library/nginx) matches blocked registry '
        '"docker.io/*"']


def test_require_digests() -> None:
    snap = MemorySnapshot(pod("web", containers=[
        container(image=f"gcr.io/a/b@{DIGEST}"), container("tag", image="gcr.io/a/b:1"),
        container("short", image="gcr.io/a/b@sha256:abc")]))
    res = evaluate(ref_for(images_body(requireDigests=True)), snap)
    assert [v.message for v in res.violations] == [
        'container "tag" image "gcr.io/a/b:1" is not pinned by digest',
        'container "short" image "gcr.io/a/b@sha256:abc" is not pinned by digest']


def verify_policy(refs: list[str], action: str = "Enforce") -> dict[str, object]:
    return cluster_policy("verify-signatures", validationFailureAction=action, rules=[{
        "name": "verify", "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
        "verifyImages": [{"imageReferences": refs, "attestors": []}]}])


def test_require_signatures() -> None:
    pods = [pod("web", containers=[container(image="ghcr.io/org/web:1"),
                                   container("side", image="nginx")])]
    body = images_body(requireSignatures=True)
    none = evaluate(ref_for(body), MemorySnapshot(*pods, cluster_policy("other")))
    assert [str(v) for v in none.violations] == [
        "ClusterPolicy/*: no verifyImages policy enforces signatures"]
    audit = evaluate(ref_for(body), MemorySnapshot(*pods, verify_policy(["*"], "Audit")))
    assert [v.message for v in audit.violations] == [
        "no verifyImages policy enforces signatures"]
    partial = evaluate(ref_for(body), MemorySnapshot(*pods, verify_policy(["ghcr.io/org/*"])))
    assert [v.message for v in partial.violations] == [
        'container "side" image "nginx" is not covered by an enforcing verifyImages policy']
    assert evaluate(ref_for(body), MemorySnapshot(*pods, verify_policy(["*"]))).passed


def test_require_signatures_without_kyverno_is_an_error() -> None:
    snap = MemorySnapshot(pod("web"), fail={("kyverno.io/v1", "ClusterPolicy"): 404})
    with pytest.raises(ApiError):
        evaluate(ref_for(images_body(requireSignatures=True)), snap)
