"""In-cluster configuration: the pod's service account, read the way client-go reads it.

``KUBERNETES_SERVICE_HOST`` and ``KUBERNETES_SERVICE_PORT`` name the API server (always
HTTPS); the mounted service account's ``token``, ``ca.crt`` and ``namespace`` files
authenticate and verify it. They live in ``/var/run/secrets/kubernetes.io/serviceaccount``
unless ``$KSPEC_SERVICE_ACCOUNT_DIR`` names another directory (a projected token mounted
elsewhere, with ``automountServiceAccountToken: false``).

Bound service-account tokens expire (about an hour) and the kubelet writes a fresh one
into the file before then, by swapping a symlink. The token is re-read whenever the file
changes — a ``stat`` per request, following the symlink — so a long-running watch keeps
working across every rotation instead of failing with 401 at the first.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pytest_kspec.errors import ClusterError

log = logging.getLogger("pytest_kspec.cluster.incluster")

DEFAULT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
DIR_ENV = "KSPEC_SERVICE_ACCOUNT_DIR"
HOST_ENV, PORT_ENV = "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"


def account_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """The service-account directory: ``$KSPEC_SERVICE_ACCOUNT_DIR`` or the standard mount."""
    return Path(environ.get(DIR_ENV) or DEFAULT_DIR)


def detected(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether this process runs in a pod: the service variables are set and a token is
    mounted (either alone is a misconfiguration :func:`load` explains)."""
    return bool(environ.get(HOST_ENV)) or (account_dir(environ) / "token").is_file()


class TokenFile:
    """A bearer token file, re-read whenever it changes (inode, mtime or size).

    ``what`` names it in messages (a kubeconfig's ``tokenFile`` is not a service account's)."""

    def __init__(self, path: Path, what: str = "service-account token",
                 hint: str = "is the token mounted?") -> None:
        self.path = path
        self.what = what
        self.hint = hint
        self._stamp: tuple[int, int, int] | None = None
        self._token = ""
        self._lock = threading.Lock()
        self.reads = 0

    def token(self) -> str:
        """The current token; raises :class:`ClusterError` when the file is gone or empty."""
        try:
            st = os.stat(self.path)
        except OSError as e:
            raise ClusterError(f"{self.path}: {self.what} unreadable: "
                               f"{e.strerror or e} ({self.hint})") from e
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        with self._lock:
            if stamp != self._stamp:
                try:
                    text = self.path.read_text(encoding="utf-8").strip()
                except OSError as e:
                    raise ClusterError(f"{self.path}: {self.what} unreadable: "
                                       f"{e.strerror or e}") from e
                if not text:
                    raise ClusterError(f"{self.path}: {self.what} file is empty")
                if self._stamp is not None and text != self._token:
                    log.info("%s rotated; using the new one", self.what)
                self._token, self._stamp = text, stamp
                self.reads += 1
            return self._token

    def auth(self) -> dict[str, str]:
        """The ``Authorization`` header with the current token (a transport's ``auth``)."""
        return {"Authorization": f"Bearer {self.token()}"}


@dataclass(frozen=True)
class InClusterConfig:
    """Where the API server is and how to trust and authenticate to it."""

    server: str
    ca_file: Path
    token: TokenFile
    namespace: str


def load(environ: Mapping[str, str] = os.environ) -> InClusterConfig:
    """The in-cluster configuration; :class:`ClusterError` naming what is missing."""
    host, port = environ.get(HOST_ENV, ""), environ.get(PORT_ENV, "")
    directory = account_dir(environ)
    if not host or not port:
        raise ClusterError(f"in-cluster config: {HOST_ENV} and {PORT_ENV} must both be set "
                           "(they are in every pod; outside one, pass a kubeconfig)")
    if not port.isdigit():
        raise ClusterError(f"in-cluster config: {PORT_ENV}={port!r} is not a port number")
    ca_file = directory / "ca.crt"
    if not ca_file.is_file():
        raise ClusterError(f"{ca_file}: in-cluster CA certificate not found (mount the "
                           f"service account, or set {DIR_ENV} to where it is mounted)")
    token = TokenFile(directory / "token")
    token.token()  # fail now, with the path, rather than at the first request
    namespace = ""
    try:
        namespace = (directory / "namespace").read_text(encoding="utf-8").strip()
    except OSError:
        log.info("no %s: namespace unknown", directory / "namespace")
    bracketed = f"[{host}]" if ":" in host else host  # an IPv6 address
    return InClusterConfig(f"https://{bracketed}:{port}", ca_file, token, namespace)
