"""Where a run's requests go: a kubeconfig context, the pod's service account, or a user only
the official client can authenticate.

kubectl's order: an explicit kubeconfig, else ``$KUBECONFIG``'s files, else
``~/.kube/config`` (:mod:`.kubeconfig`), else the service account when running in a pod
(:mod:`.incluster`). Every plain case (tokens, token files, client certificates, basic auth,
CA and TLS settings, proxies) is served by our own :mod:`.transport`. A user with an
``exec`` plugin or an ``auth-provider`` (cloud logins) is read by the official client's
``load_kube_config``, which runs the plugin and refreshes what it returns; only then is the
``kubernetes`` package imported, and the requests still go through the same transport.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pytest_kspec.cluster import incluster
from pytest_kspec.cluster.kubeconfig import ENV, ContextConfig, Kubeconfig, read_kubeconfig
from pytest_kspec.cluster.transport import Auth, Transport, no_auth, proxy_for, tls_context
from pytest_kspec.errors import ClusterError

log = logging.getLogger("pytest_kspec.cluster.connect")

IN_CLUSTER = "in-cluster"


@dataclass(frozen=True)
class Connection:
    """An open transport and what reports say about it (never credentials)."""

    transport: Transport
    server: str
    context: str
    namespace: str = ""  # set in a pod: the service account's namespace


def connect(kubeconfig: str | None = None, context: str | None = None, *,
            hint: str = "pass --kspec-kubeconfig PATH or --kspec-sim STATE") -> Connection:
    """Connect as kubectl would; :class:`ClusterError` (one line, naming the file) when the
    kubeconfig, the context or its credentials cannot be used. ``hint`` names the options
    that choose a cluster, in the caller's words."""
    config = read_kubeconfig(kubeconfig, hint=hint)
    if config is not None:
        return open_context(config, context)
    if incluster.detected():
        pod = incluster.load()
        tls = tls_context(ca_file=str(pod.ca_file), where=str(pod.ca_file))
        return Connection(Transport(pod.server, tls=tls, auth=pod.token.auth,
                                    proxy=proxy_for(pod.server)),
                          pod.server, IN_CLUSTER, pod.namespace)
    listed = os.environ.get(ENV, "")
    where = (f"${ENV}={listed} names no existing file" if listed
             else f"${ENV}, ~/.kube/config")
    raise ClusterError(f"no kubeconfig found ({where}) and not running in a pod: {hint}")


def open_context(config: Kubeconfig, context: str | None = None) -> Connection:
    """A connection to ``context`` of ``config`` (its current context when None)."""
    ctx = config.context(context)
    if ctx.delegated:
        return _delegated(config, ctx)
    where = f'{ctx.source}: context "{ctx.name}"'
    tls = None
    if ctx.server.startswith("https://"):
        tls = tls_context(ca_file=ctx.ca_file, ca_data=ctx.ca_data, insecure=ctx.insecure,
                          cert_file=ctx.cert_file, cert_data=ctx.cert_data,
                          key_file=ctx.key_file, key_data=ctx.key_data, where=where)
    if ctx.insecure:
        log.info("%s: TLS verification is off (insecure-skip-tls-verify)", where)
    transport = Transport(ctx.server, tls=tls, auth=_auth(ctx), headers=impersonation(ctx),
                          proxy=proxy_for(ctx.server, ctx.proxy_url),
                          tls_server_name=ctx.tls_server_name)
    return Connection(transport, ctx.server, ctx.name)


def _auth(ctx: ContextConfig) -> Auth:
    """kubectl's precedence: a token file (re-read when it changes), else the token, else
    basic auth; a client certificate authenticates in TLS itself."""
    if ctx.token_file:
        token = incluster.TokenFile(Path(ctx.token_file), what="kubeconfig tokenFile",
                                    hint=f"user \"{ctx.user}\" in {ctx.source}")
        token.token()  # fail now, naming the file, rather than at the first request
        return token.auth
    if ctx.token:
        header = {"Authorization": f"Bearer {ctx.token}"}
        return lambda: header
    if ctx.username:
        import base64

        basic = base64.b64encode(f"{ctx.username}:{ctx.password}".encode()).decode()
        header = {"Authorization": f"Basic {basic}"}
        return lambda: header
    return no_auth


def impersonation(ctx: ContextConfig) -> list[tuple[str, str]]:
    """The ``Impersonate-*`` headers of the user's ``as``, ``as-uid``, ``as-groups`` and
    ``as-user-extra`` (a header per group and per extra value, as kubectl sends them)."""
    headers: list[tuple[str, str]] = []
    if ctx.impersonate:
        headers.append(("Impersonate-User", ctx.impersonate))
    if ctx.impersonate_uid:
        headers.append(("Impersonate-Uid", ctx.impersonate_uid))
    headers += [("Impersonate-Group", g) for g in ctx.impersonate_groups]
    for key, values in ctx.impersonate_extra:
        name = "Impersonate-Extra-" + quote(key, safe="-!#$&'*+.^_`|~")
        headers += [(name, v) for v in values]
    return headers


def _delegated(config: Kubeconfig, ctx: ContextConfig) -> Connection:
    """An ``exec`` or ``auth-provider`` user: the official client's loader authenticates."""
    try:
        from kubernetes import client
        from kubernetes import config as loader

        cfg = client.Configuration()
        loader.load_kube_config(config_file=os.pathsep.join(str(f) for f in config.files),
                                context=ctx.name, client_configuration=cfg,
                                persist_config=False)
    except ClusterError:
        raise
    except Exception as e:  # the loader raises ConfigException, ValueError, OSError, ...
        raise ClusterError(f"{ctx.source}: cannot load cluster credentials: context "
                           f'"{ctx.name}", user "{ctx.user}" ({ctx.delegated}): '
                           f"{' '.join(str(e).split())[:300]}") from e
    where = f'{ctx.source}: context "{ctx.name}"'
    server = str(cfg.host).rstrip("/")
    tls = None
    if server.startswith("https://"):
        tls = tls_context(ca_file=cfg.ssl_ca_cert, insecure=not cfg.verify_ssl,
                          cert_file=cfg.cert_file, key_file=cfg.key_file, where=where)

    def auth() -> dict[str, str]:
        value = _official_token(cfg)
        return {"Authorization": value} if value else {}

    transport = Transport(server, tls=tls, auth=auth, headers=impersonation(ctx),
                          proxy=proxy_for(server, ctx.proxy_url),
                          tls_server_name=str(cfg.tls_server_name or ""))
    return Connection(transport, server, ctx.name)


def _official_token(cfg: Any) -> str:
    """The loader's ``Authorization`` value; asking runs its refresh hook, which renews an
    expired exec or auth-provider token."""
    bearer = cfg.auth_settings().get("BearerToken") or {}
    return str(bearer.get("value") or "")
