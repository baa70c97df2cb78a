"""One meaning for images: the Python matcher the compliance check uses and the JMESPath the
generated policy runs (evaluated by the simulator's Kyverno functions) agree on every image."""

from __future__ import annotations

import pytest

from pytest_kspec.desired import imagerefs
from pytest_kspec.sim.admission.jmes import image_normalize, search

DIGEST = "sha256:" + "0123456789abcdef" * 4

IMAGES = [
    "nginx", "nginx:1.25", "library/nginx", "docker.io/nginx", "docker.io/library/nginx:1",
    "index.docker.io/library/nginx", "registry-1.docker.io/nginx:1", "Docker.IO/nginx",
    "myorg/app:2", "docker.io/myorg/app", "quay.io/prometheus/node-exporter:v1",
    "registry.example.com/app", "registry.example.com/team/app:1.0", "eu.example.com/app",
    "evil.io/x.example.com/app:1", "evil.io:5000/a.example.com/app:1", "localhost/x",
    "localhost:5000/x:2", "gcr.io/project/app", "gcr.io/projectx/app", "GHCR.io/org/app:v1",
    f"gcr.io/a/b@{DIGEST}", f"registry.example.com/app:1.0@{DIGEST}",
]


def kyverno_name(image: str) -> str:
    return str(search(imagerefs.KYVERNO_IMAGE_NAME, {"element": {"image": image}}))


@pytest.mark.parametrize("image", IMAGES)
def test_policy_and_check_compute_the_same_canonical_name(image: str) -> None:
    assert kyverno_name(image).lower() == imagerefs.parse_image(image).name.lower()


@pytest.mark.parametrize(("image", "normalized"), [
    ("nginx", "docker.io/nginx:latest"),  # no library/, as Kyverno writes it
    ("index.docker.io/library/nginx", "index.docker.io/library/nginx:latest"),
    (f"gcr.io/a/b:1@{DIGEST}", f"gcr.io/a/b@{DIGEST}"),
    ("localhost:5000/x", "localhost:5000/x:latest"),
])
def test_image_normalize_is_kyvernos(image: str, normalized: str) -> None:
    assert image_normalize(image) == normalized


ENTRIES = ["*.example.com/*", "docker.io/*", "docker.io/library/*", "quay.io",
           "registry.example.com", "gcr.io/project", "docker.io/nginx", "docker.io/myorg",
           "localhost:5000/*", "*"]


@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize("image", IMAGES)
def test_registry_regex_gives_the_same_verdict_both_ways(image: str, entry: str) -> None:
    regex = imagerefs.registry_regex([entry])
    expression = f"regex_match('{regex}', {imagerefs.KYVERNO_IMAGE_NAME})"
    in_policy = search(expression, {"element": {"image": image}})
    in_check = imagerefs.matches_registry(imagerefs.parse_image(image), entry)
    assert in_policy is in_check


@pytest.mark.parametrize(("image", "entry", "covered"), [
    # a glob's host part never reaches into the path
    ("evil.io/x.example.com/app:1", "*.example.com/*", False),
    ("evil.io:5000/a.example.com/app:1", "*.example.com/*", False),
    ("eu.example.com/app", "*.example.com/*", True),
    # Docker Hub aliases and library/ fold into docker.io
    ("index.docker.io/library/nginx", "docker.io/*", True),
    ("nginx:1.25", "docker.io/library/*", True),
    ("nginx", "docker.io/nginx", True),
    ("myorg/api", "docker.io/myorg", True),
    # a bare host or host/path is everything under it
    ("quay.io/prometheus/node-exporter", "quay.io", True),
    ("registry.example.com/app", "registry.example.com", True),
    ("gcr.io/project/app", "gcr.io/project", True),
    ("gcr.io/projectx/app", "gcr.io/project", False),
    ("gcr.io/proj/app", "docker.io/*", False),
])
def test_registry_meaning(image: str, entry: str, covered: bool) -> None:
    assert imagerefs.matches_registry(imagerefs.parse_image(image), entry) is covered


def test_default_registry_is_where_short_names_resolve() -> None:
    ref = imagerefs.parse_image("nginx:1", default_registry="mirror.corp.example")
    assert (ref.host, ref.path, ref.tag) == ("mirror.corp.example", "nginx", "1")
    assert imagerefs.matches_registry(ref, "mirror.corp.example")


@pytest.mark.parametrize(("image", "pinned"), [
    (f"app@{DIGEST}", True), (f"registry.example.com/app:1@{DIGEST}", True),
    ("app@sha256:x", False), (f"app@{DIGEST[:-1]}", False), ("app:1", False),
    (f"app@{DIGEST.upper().replace('SHA256', 'sha256')}", False),
])
def test_digest_is_64_hex(image: str, pinned: bool) -> None:
    assert imagerefs.is_pinned(image) is pinned
