"""Kubeconfig files read the way kubectl reads them, without importing the official client.

Which files: an explicit path (``--kspec-kubeconfig``) alone, and it must exist; else every
file ``$KUBECONFIG`` lists (``os.pathsep``-separated; missing ones skipped, a repeated one
read once), merged as kubectl merges them: the first file to define a cluster, user or
context name wins (the whole entry, never field by field) and the first non-empty
``current-context`` wins; else ``~/.kube/config``. Paths inside a file
(``certificate-authority``, ``client-certificate``, ``client-key``, ``tokenFile``) are
relative to that file's directory. A name defined twice in one file is an error, as in
kubectl.

A context resolves to a :class:`ContextConfig`: the server and how to trust it (CA file or
data, ``insecure-skip-tls-verify``, ``tls-server-name``, ``proxy-url``), who we are (bearer
token, token file re-read whenever it changes, client certificate and key as files or
data, basic auth, impersonation) and the namespace. Data wins over the file of the same
thing, as in client-go. Users with an ``exec`` plugin or an ``auth-provider`` are marked
``delegated``: :mod:`.connect` hands them to the official client's loader, which runs the
plugin and refreshes its credentials. Nothing here sends a request.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pytest_kspec.errors import ClusterError

ENV = "KUBECONFIG"
DEFAULT_PATH = "~/.kube/config"
SECTIONS = (("clusters", "cluster"), ("users", "user"), ("contexts", "context"))


@dataclass(frozen=True)
class ContextInfo:
    """One context as ``kubectl config get-contexts`` lists it."""

    name: str
    cluster: str
    user: str
    namespace: str
    server: str
    current: bool


@dataclass(frozen=True)
class ContextConfig:
    """Everything needed to talk to the API server of one context (credentials included:
    never print one)."""

    name: str
    source: str  # the kubeconfig file(s), for messages
    cluster: str
    user: str
    namespace: str
    server: str
    ca_file: str | None = None
    ca_data: str | None = None  # PEM text
    insecure: bool = False
    tls_server_name: str = ""
    proxy_url: str = ""
    cert_file: str | None = None
    cert_data: str | None = None
    key_file: str | None = None
    key_data: str | None = field(default=None, repr=False)
    token: str = field(default="", repr=False)
    token_file: str | None = None
    username: str = ""
    password: str = field(default="", repr=False)
    impersonate: str = ""
    impersonate_uid: str = ""
    impersonate_groups: tuple[str, ...] = ()
    impersonate_extra: tuple[tuple[str, tuple[str, ...]], ...] = ()
    delegated: str = ""  # "exec" or "auth-provider": the official loader reads this user


class Kubeconfig:
    """One or more kubeconfig files, merged; :meth:`context` resolves a context."""

    def __init__(self, files: list[Path], docs: list[dict[str, Any]]) -> None:
        self.files = files
        self.current_context = ""
        self._entries: dict[str, dict[str, tuple[dict[str, Any], Path]]] = {
            section: {} for section, _ in SECTIONS}
        for path, doc in zip(files, docs, strict=True):
            if not self.current_context:
                self.current_context = str(doc.get("current-context") or "")
            for section, key in SECTIONS:
                seen: set[str] = set()
                for entry in _list(doc, section, path):
                    name = str(entry.get("name") or "")
                    if not name:
                        raise self._error(f"{section}: an entry without a name", path)
                    if name in seen:
                        raise self._error(f'duplicate name "{name}" in {section}', path)
                    seen.add(name)
                    body = entry.get(key) or {}
                    if not isinstance(body, dict):
                        raise self._error(f'{section} "{name}": {key} must be a mapping', path)
                    self._entries[section].setdefault(name, (body, path))

    @property
    def source(self) -> str:
        """How messages name the configuration: the file, or ``$KUBECONFIG`` with its files."""
        if len(self.files) == 1:
            return str(self.files[0])
        return f"{ENV}={os.pathsep.join(str(p) for p in self.files)}"

    def context_names(self) -> list[str]:
        """Context names, in the order the files define them."""
        return list(self._entries["contexts"])

    def contexts(self) -> list[ContextInfo]:
        """Every context, with its cluster's server (empty when the cluster is missing)."""
        out = []
        for name, (body, _) in self._entries["contexts"].items():
            cluster = str(body.get("cluster") or "")
            server = str(self._entries["clusters"].get(cluster, ({}, None))[0].get("server")
                         or "")
            out.append(ContextInfo(name, cluster, str(body.get("user") or ""),
                                   str(body.get("namespace") or ""), server,
                                   name == self.current_context))
        return out

    def context(self, name: str | None = None) -> ContextConfig:
        """The context ``name`` (the current context when None), resolved; a
        :class:`ClusterError` naming the file and what is wrong otherwise."""
        name = name or self.current_context
        if not name:
            raise self._error("no current-context set; choose a context by name "
                              f"(it has: {self._names()})")
        if name not in self._entries["contexts"]:
            raise self._error(f'context "{name}" not found (it has: {self._names()})')
        ctx, ctx_path = self._entries["contexts"][name]
        cluster_name, user_name = str(ctx.get("cluster") or ""), str(ctx.get("user") or "")
        if cluster_name not in self._entries["clusters"]:
            raise self._error(f'context "{name}" names cluster "{cluster_name}", which is '
                              "not defined", ctx_path)
        cluster, cluster_path = self._entries["clusters"][cluster_name]
        user: dict[str, Any] = {}
        user_path = ctx_path
        if user_name:
            if user_name not in self._entries["users"]:
                raise self._error(f'context "{name}" names user "{user_name}", which is '
                                  "not defined", ctx_path)
            user, user_path = self._entries["users"][user_name]
        where_c, where_u = f'cluster "{cluster_name}"', f'user "{user_name}"'
        server = str(cluster.get("server") or "")
        if not server:
            raise self._error(f"{where_c} has no server", cluster_path)
        ca_file = _path(cluster.get("certificate-authority"), cluster_path)
        ca_data = _pem(cluster.get("certificate-authority-data"), where_c,
                       "certificate-authority-data", cluster_path)
        insecure = _bool(cluster.get("insecure-skip-tls-verify"))
        if insecure and (ca_file or ca_data):
            raise self._error(f"{where_c}: insecure-skip-tls-verify and a certificate "
                              "authority are both set (kubectl refuses this too); keep one",
                              cluster_path)
        if ca_file and not Path(ca_file).is_file():  # kubectl checks it even beside data
            raise self._error(f"{where_c}: certificate-authority {ca_file} not found",
                              cluster_path)
        cert_file = _path(user.get("client-certificate"), user_path)
        key_file = _path(user.get("client-key"), user_path)
        cert_data = _pem(user.get("client-certificate-data"), where_u,
                         "client-certificate-data", user_path)
        key_data = _pem(user.get("client-key-data"), where_u, "client-key-data", user_path)
        has_cert, has_key = bool(cert_file or cert_data), bool(key_file or key_data)
        if has_cert != has_key:
            missing = "client-key" if has_cert else "client-certificate"
            raise self._error(f"{where_u}: {missing} (or {missing}-data) missing: a client "
                              "certificate needs its key", user_path)
        for label, value in (("client-certificate", cert_file), ("client-key", key_file)):
            if value and not Path(value).is_file():
                raise self._error(f"{where_u}: {label} {value} not found", user_path)
        delegated = "exec" if user.get("exec") else (
            "auth-provider" if user.get("auth-provider") else "")
        extra = user.get("as-user-extra") or {}
        return ContextConfig(
            name=name, source=self.source, cluster=cluster_name, user=user_name,
            namespace=str(ctx.get("namespace") or ""), server=_server(server, insecure or bool(
                ca_file or ca_data or has_cert)),
            ca_file=ca_file, ca_data=ca_data, insecure=insecure,
            tls_server_name=str(cluster.get("tls-server-name") or ""),
            proxy_url=str(cluster.get("proxy-url") or ""),
            cert_file=cert_file, cert_data=cert_data, key_file=key_file, key_data=key_data,
            token=str(user.get("token") or ""),
            token_file=_path(user.get("tokenFile"), user_path),
            username=str(user.get("username") or ""), password=str(user.get("password") or ""),
            impersonate=str(user.get("as") or ""), impersonate_uid=str(user.get("as-uid") or ""),
            impersonate_groups=_strings(user.get("as-groups")),
            impersonate_extra=tuple((str(k), _strings(vs)) for k, vs in
                                    (extra.items() if isinstance(extra, dict) else ())),
            delegated=delegated)

    def _names(self) -> str:
        return ", ".join(self.context_names()) or "no contexts"

    def _error(self, problem: str, path: Path | None = None) -> ClusterError:
        return ClusterError(f"{path or self.source}: cannot load cluster credentials: {problem}")


def kubeconfig_files(path: str | None = None,
                     environ: Mapping[str, str] = os.environ) -> list[Path] | None:
    """The files a run reads, in precedence order; None when there is no kubeconfig at all
    (no ``path``, no existing ``$KUBECONFIG`` file, no ``~/.kube/config``)."""
    if path:
        return [Path(path)]
    listed = environ.get(ENV, "")
    if listed:
        files: list[Path] = []
        for item in listed.split(os.pathsep):
            if item and Path(item).is_file() and Path(item) not in files:
                files.append(Path(item))
        return files or None
    default = Path(DEFAULT_PATH).expanduser()
    return [default] if default.is_file() else None


def read_kubeconfig(path: str | None = None, *, hint: str = "",
                    environ: Mapping[str, str] = os.environ) -> Kubeconfig | None:
    """The kubeconfig a run uses (see the module's docstring); None when there is none.

    An explicit ``path`` that does not exist raises :class:`ClusterError` (``hint`` says how
    to pass another one)."""
    files = kubeconfig_files(path, environ)
    if files is None:
        return None
    docs = []
    for file in files:
        if not file.is_file():
            raise ClusterError(f"{file}: kubeconfig not found ({hint or 'pass another path'}"
                               f", or set {ENV})")
        docs.append(_read(file))
    return Kubeconfig(files, docs)


def list_contexts(path: str | None = None) -> list[ContextInfo]:
    """The contexts of the kubeconfig at ``path`` (or ``$KUBECONFIG``, ``~/.kube/config``);
    empty when there is no kubeconfig."""
    config = read_kubeconfig(path)
    return config.contexts() if config is not None else []


def load_context(path: str | None = None, name: str | None = None) -> ContextConfig:
    """Context ``name`` (the current one when None) of the kubeconfig at ``path``."""
    config = read_kubeconfig(path)
    if config is None:
        raise ClusterError(f"no kubeconfig found (${ENV}, {DEFAULT_PATH})")
    return config.context(name)


# -- parsing ------------------------------------------------------------------------------

def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ClusterError(f"{path}: cannot read the kubeconfig: {e}") from e
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        doc = yaml.load(text, Loader=loader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(e, "problem", None) or "invalid YAML"
        raise ClusterError(f"{path}: not a valid kubeconfig{where}: {problem}") from e
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ClusterError(f"{path}: not a valid kubeconfig: expected a mapping with "
                           "clusters, users and contexts")
    return doc


def _list(doc: dict[str, Any], section: str, path: Path) -> list[dict[str, Any]]:
    entries = doc.get(section) or []
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ClusterError(f"{path}: cannot load cluster credentials: {section} must be a "
                           "list of named entries")
    return entries


def _path(value: Any, origin: Path) -> str | None:
    """A file path of the kubeconfig at ``origin``, made absolute against its directory."""
    if not value:
        return None
    path = Path(str(value))
    return str(path if path.is_absolute() else origin.resolve().parent / path)


def _pem(value: Any, where: str, key: str, origin: Path) -> str | None:
    if not value:
        return None
    try:
        return base64.b64decode(str(value), validate=False).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError) as e:
        raise ClusterError(f"{origin}: cannot load cluster credentials: {where}: {key} is "
                           "not base64-encoded PEM") from e


def _strings(value: Any) -> tuple[str, ...]:
    """A list of strings (one string alone counts as a list of one)."""
    if value is None:
        return ()
    if isinstance(value, (str, int, float, bool)):
        return (str(value),)
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def _bool(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _server(server: str, tls: bool) -> str:
    """client-go's default scheme: ``https://`` when TLS is configured, else ``http://``."""
    if "://" in server:
        return server.rstrip("/")
    return f"{'https' if tls else 'http'}://{server}".rstrip("/")
