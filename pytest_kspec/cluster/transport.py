"""HTTP(S) to one API server on urllib3: TLS as the kubeconfig says, credentials per request.

What the engine sends is small (GET, paginated LIST, watch streams, and the POST, PUT, PATCH
and DELETE of remediation), so this is a thin layer over a urllib3 pool rather than the
official client's ``ApiClient``, whose import alone costs more than a small run's detection.

TLS: the context's CA (file or PEM data) and nothing else is trusted, as in kubectl; with
none, the system's roots; ``insecure-skip-tls-verify`` turns verification off;
``tls-server-name`` is the name sent (SNI) and checked. A client certificate and key given
as data are written to a private temporary file only while OpenSSL loads them.

Credentials are asked for on every request (:data:`Auth`), so a token file that rotates
(in-cluster, ``tokenFile``) or an exec plugin's expiring token is always current.

Proxies: ``proxy-url`` of the cluster, else ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY``
with ``NO_PROXY`` (hosts, domain suffixes, ``host:port``, CIDR ranges, ``*``), as client-go
reads them; localhost and loopback addresses are never proxied. ``socks5://`` proxies need
the PySocks package.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import ssl
import tempfile
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit

import urllib3

from pytest_kspec.errors import ClusterError

Auth = Callable[[], Mapping[str, str]]
"""Returns the request headers that authenticate (``Authorization``), asked per request."""

USER_AGENT = "pytest-kspec"


def no_auth() -> Mapping[str, str]:
    return {}


class Transport:
    """A connection pool to ``server`` that adds ``auth()`` and ``headers`` to every request."""

    def __init__(self, server: str, *, tls: ssl.SSLContext | None = None,
                 auth: Auth = no_auth,
                 headers: Iterable[tuple[str, str]] = (),
                 proxy: str | None = None, tls_server_name: str = "",
                 maxsize: int = 16) -> None:
        self.server = server.rstrip("/")
        self.auth = auth
        self.headers = urllib3.HTTPHeaderDict({"User-Agent": USER_AGENT})
        for name, value in headers:  # repeated names stay repeated (Impersonate-Group)
            self.headers.add(name, value)
        pool_kw: dict[str, Any] = {"maxsize": maxsize, "block": False, "retries": False}
        if self.server.startswith("https://"):
            pool_kw["ssl_context"] = tls or ssl.create_default_context()
            if tls_server_name:
                pool_kw["server_hostname"] = tls_server_name
            if tls is not None and tls.verify_mode == ssl.CERT_NONE:
                pool_kw["cert_reqs"] = ssl.CERT_NONE
                pool_kw["assert_hostname"] = False
        self.pool = _pool(proxy, pool_kw)
        if pool_kw.get("cert_reqs") == ssl.CERT_NONE:
            self.pool.pool_classes_by_scheme = {**self.pool.pool_classes_by_scheme,
                                                "https": _UnverifiedPool}

    def open(self, method: str, path: str, *, query: Mapping[str, str] | None = None,
             body: bytes | None = None, headers: Mapping[str, str] | None = None,
             timeout: tuple[float, float] = (5.0, 60.0),
             stream: bool = False) -> urllib3.BaseHTTPResponse:
        """Send one request; the response is read whole unless ``stream`` (then release it).

        Raises urllib3's exceptions (connection, timeout, protocol, TLS) as they come: the
        caller decides what is worth a retry."""
        url = self.server + path
        if query:
            url += "?" + urlencode(query)
        merged = self.headers.copy()
        merged.update(headers or {})
        merged.update(self.auth())
        return self.pool.request(method, url, body=body, headers=merged,
                                 timeout=urllib3.Timeout(connect=timeout[0], read=timeout[1]),
                                 preload_content=not stream, redirect=False, retries=False)

    def close(self) -> None:
        self.pool.clear()


class _UnverifiedPool(urllib3.HTTPSConnectionPool):
    """A pool for ``insecure-skip-tls-verify``: the kubeconfig asked for no verification, so
    urllib3's warning on every request (an error under ``-W error``) is not repeated;
    :mod:`.connect` logs it once."""

    def _validate_conn(self, conn: Any) -> None:
        urllib3.HTTPConnectionPool._validate_conn(self, conn)
        if conn.is_closed:
            conn.connect()


def tls_context(*, ca_file: str | None = None, ca_data: str | None = None,
                insecure: bool = False, cert_file: str | None = None,
                cert_data: str | None = None, key_file: str | None = None,
                key_data: str | None = None, where: str = "") -> ssl.SSLContext:
    """The client's TLS context; :class:`ClusterError` naming ``where`` when a certificate or
    key cannot be used."""
    try:
        if insecure:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        else:
            ctx = ssl.create_default_context(cafile=None if ca_data else ca_file,
                                             cadata=ca_data)
    except (ssl.SSLError, OSError, ValueError) as e:
        raise ClusterError(f"{where}: the certificate authority cannot be used: "
                           f"{_reason(e)}") from e
    if cert_file or cert_data:
        try:
            _load_client_cert(ctx, cert_file, cert_data, key_file, key_data)
        except (ssl.SSLError, OSError, ValueError) as e:
            raise ClusterError(f"{where}: the client certificate and key cannot be used: "
                               f"{_reason(e)} (an encrypted key is not supported)") from e
    return ctx


def _load_client_cert(ctx: ssl.SSLContext, cert_file: str | None, cert_data: str | None,
                      key_file: str | None, key_data: str | None) -> None:
    with contextlib.ExitStack() as stack:
        def materialise(path: str | None, data: str | None) -> str | None:
            if not data:
                return path
            fd, tmp = tempfile.mkstemp(prefix="kspec-", suffix=".pem")  # mode 0600
            stack.callback(os.unlink, tmp)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(data)
            return tmp

        cert = materialise(cert_file, cert_data)
        key = materialise(key_file, key_data)
        assert cert is not None

        def no_password() -> bytes:
            raise ValueError("the client key is encrypted")

        ctx.load_cert_chain(cert, key, password=no_password)


def proxy_for(server: str, proxy_url: str = "",
              environ: Mapping[str, str] = os.environ) -> str | None:
    """The proxy to reach ``server`` through: ``proxy_url``, else the environment's."""
    if proxy_url:
        return proxy_url
    env = {k.lower(): v for k, v in environ.items() if k.lower().endswith("_proxy") and v}
    if not env:
        return None
    parts = urlsplit(server)
    proxy = env.get(f"{parts.scheme}_proxy") or env.get("all_proxy")
    host = (parts.hostname or "").lower()
    port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
    if not proxy or _loopback(host) or _bypassed(host, port, env.get("no_proxy", "")):
        return None
    return proxy


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bypassed(host: str, port: int | None, no_proxy: str) -> bool:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    for raw in no_proxy.split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        if ip is not None and "/" in entry:
            with contextlib.suppress(ValueError):
                if ip in ipaddress.ip_network(entry, strict=False):
                    return True
            continue
        name, _, entry_port = entry.partition(":") if entry.count(":") == 1 else (entry, "", "")
        if entry_port and str(port or "") != entry_port:
            continue
        name = name.lstrip("*").lstrip(".")
        if host == name or host.endswith("." + name):
            return True
    return False


def _pool(proxy: str | None, pool_kw: dict[str, Any]) -> urllib3.PoolManager:
    if not proxy:
        return urllib3.PoolManager(num_pools=4, **pool_kw)
    parts = urlsplit(proxy)
    if parts.scheme.startswith("socks"):
        try:
            from urllib3.contrib.socks import SOCKSProxyManager
        except ImportError as e:  # urllib3 warns and raises without PySocks
            raise ClusterError(f"proxy {parts.scheme}://{parts.hostname}:{parts.port}: "
                               "SOCKS proxies need the PySocks package "
                               "(pip install pysocks)") from e
        return SOCKSProxyManager(proxy, num_pools=4, **pool_kw)
    proxy_headers = None
    if parts.username:
        userinfo = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        proxy_headers = urllib3.make_headers(proxy_basic_auth=userinfo)
        netloc = parts.netloc.rpartition("@")[2]
        proxy = parts._replace(netloc=netloc).geturl()
    return urllib3.ProxyManager(proxy, num_pools=4, proxy_headers=proxy_headers, **pool_kw)


def _reason(e: BaseException) -> str:
    if isinstance(e, ssl.SSLError) and e.reason:
        return str(e.reason).replace("_", " ").lower()
    if isinstance(e, OSError) and e.strerror:
        return f"{e.strerror} ({e.filename})" if e.filename else e.strerror
    return " ".join(str(e).split())[:200]
