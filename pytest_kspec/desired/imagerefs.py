"""What an image reference and a registry entry mean: one definition for policies and checks.

The generated Kyverno policy (:mod:`pytest_kspec.desired.rules`) and the compliance check
(:mod:`pytest_kspec.detect.compliance.images`) both judge images with what this module
defines, so admission and audit cannot part.

**Image references** resolve the way the container runtime and Kyverno's ``image_normalize``
resolve them: a first path segment is a registry host when it contains ``.`` or ``:``, is
``localhost`` or has upper-case letters; otherwise the image lives on the *default registry*
(``docker.io`` unless Kyverno's ``defaultRegistry`` says otherwise). Docker Hub's aliases
``index.docker.io`` and ``registry-1.docker.io`` read ``docker.io``, and a one-segment Docker
Hub path reads ``library/<name>`` (``nginx`` → ``docker.io/library/nginx``). Hosts compare
case-insensitively. Tags and digests are not part of a registry match.

**Registry entries** (``allowedRegistries`` / ``blockedRegistries``) are split at the first
``/`` into a host glob and an optional path glob. ``*`` matches any run of characters and ``?``
one character (Kyverno's wildcard), but the host glob is matched against the host alone, so
``*`` never crosses from the path into the host: ``*.example.com/*`` does not cover
``evil.io/x.example.com/app``. An entry covers everything under it: a bare host (``quay.io``)
every image on that registry, ``gcr.io/project`` every image below ``gcr.io/project/``. On
Docker Hub a one-segment entry (``docker.io/nginx``) covers both the library image and an
organisation of that name.

Both sides compile the entries to one regular expression in the syntax Go's RE2 and Python's
``re`` read alike (:func:`registry_regex`); the policy applies it with Kyverno's
``regex_match`` to the canonical name it computes from ``image_normalize``
(:data:`KYVERNO_IMAGE_NAME`), this module with :func:`re.fullmatch` to :func:`parse_image`'s.

**Digests**: an image is pinned when it ends in ``@sha256:`` and 64 lower-case hex digits
(:data:`DIGEST_REGEX`).

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

DOCKER_HUB = "docker.io"
HUB_ALIASES: frozenset[str] = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})

# An image pinned by digest: any reference, then @sha256: and exactly 64 hex digits.
DIGEST_REGEX = "^[^@]+@sha256:[0-9a-f]{64}$"

# The canonical ``host/path`` of ``element.image`` in Kyverno's JMESPath, step by step:
# image_normalize adds the default registry and a tag; strip tag and digest; a host-less
# result (Kyverno's enableDefaultRegistryMutation off) reads docker.io, as the runtime pulls
# it; fold Docker Hub's aliases; add library/ to one-segment Docker Hub paths.
_STEPS: tuple[tuple[str, str], ...] = (
    ("^([^@]*/[^/:@]+|[^/:@]+)(:[^/@]*)?(@.*)?$", "$1"),
    ("^([^/.:A-Z]+/|[^/.:A-Z]+$)", "docker.io/$1"),
    ("^docker\\.io/localhost(/|$)", "localhost$1"),
    ("(?i)^(index\\.|registry-1\\.)?docker\\.io/", "docker.io/"),
    ("^docker\\.io/([^/]+)$", "docker.io/library/$1"),
)


def kyverno_image_name(operand: str = "element.image") -> str:
    """JMESPath giving the canonical ``host/path`` of the image at ``operand``."""
    expr = f"image_normalize({operand})"
    for regex, replacement in _STEPS:
        expr = f"regex_replace_all('{regex}', {expr}, '{replacement}')"
    return expr


KYVERNO_IMAGE_NAME = kyverno_image_name()


@dataclass(frozen=True)
class ImageRef:
    """A parsed image reference: registry host, repository path, tag and digest."""

    host: str
    path: str
    tag: str
    digest: str

    @property
    def name(self) -> str:
        """``host/path`` without tag or digest (what registry entries match)."""
        return f"{self.host}/{self.path}"

    @property
    def normalized(self) -> str:
        """The full reference, ``:latest`` added when neither tag nor digest is given."""
        tag = f":{self.tag}" if self.tag else ("" if self.digest else ":latest")
        digest = f"@{self.digest}" if self.digest else ""
        return f"{self.name}{tag}{digest}"


def _is_host(segment: str) -> bool:
    return "." in segment or ":" in segment or segment == "localhost" or \
        segment != segment.lower()


def parse_image(image: str, default_registry: str = DOCKER_HUB) -> ImageRef:
    """Resolve an image reference (see the module docs); short names go to
    ``default_registry``."""
    rest, _, digest = image.strip().partition("@")
    first, sep, remainder = rest.partition("/")
    if sep and _is_host(first):
        host, path = first.lower(), remainder
    else:
        registry, _, prefix = (default_registry.strip().lower() or DOCKER_HUB).partition("/")
        host, path = registry, f"{prefix}/{rest}" if prefix else rest
    tag = ""
    colon = path.rfind(":")
    if colon > path.rfind("/"):
        path, tag = path[:colon], path[colon + 1:]
    if host in HUB_ALIASES:
        host = DOCKER_HUB
        if "/" not in path:
            path = f"library/{path}"
    return ImageRef(host=host, path=path, tag=tag, digest=digest)


def is_pinned(image: str) -> bool:
    """True when ``image`` carries a sha256 digest of 64 hex digits."""
    return re.fullmatch(DIGEST_REGEX, image.strip()) is not None


def _glob(text: str, star: str, one: str) -> str:
    out = []
    for char in text:
        if char == "*":
            out.append(star)
        elif char == "?":
            out.append(one)
        elif char.isalnum() or char in "_-/":
            out.append(char)
        else:
            out.append("\\" + char)  # punctuation: a literal in RE2 and in Python alike
    return "".join(out)


def entry_regex(entry: str) -> str:
    """One registry entry as an unanchored alternative over canonical ``host/path`` names."""
    host_glob, _, path_glob = entry.strip().partition("/")
    host_glob = host_glob.lower()
    host = "docker\\.io" if host_glob in HUB_ALIASES else _glob(host_glob, "[^/]*", "[^/]")
    path_glob = path_glob.strip("/")
    if not path_glob:
        return f"(?i:{host})/.+"
    candidates = [path_glob]
    if host_glob in HUB_ALIASES and "/" not in path_glob and not any(c in path_glob for c in "*?"):
        candidates.append(f"library/{path_glob}")  # docker.io/nginx is library/nginx too
    paths = "|".join(_glob(p, ".*", ".") for p in candidates)
    return f"(?i:{host})/(?:{paths})(?:/.*)?"


def registry_regex(entries: Sequence[str]) -> str:
    """All ``entries`` as one anchored regular expression (RE2 and Python syntax)."""
    return "^(?:" + "|".join(entry_regex(e) for e in entries) + ")$"


def matches_registry(image: ImageRef, entry: str) -> bool:
    """True when ``image`` falls under the registry ``entry`` (see the module docs)."""
    return re.fullmatch(entry_regex(entry), image.name) is not None


def matching_entry(image: ImageRef, entries: Sequence[str]) -> str | None:
    """The first of ``entries`` that covers ``image``, or None."""
    return next((e for e in entries if matches_registry(image, e)), None)
