"""A loopback HTTPS server that asks for client certificates and records who called: the
certificate's subject, the Authorization and Impersonate-* headers. kubectl and our client
are pointed at it with the same kubeconfig and must present the same identity. And a
loopback CONNECT proxy, for a kubeconfig's ``proxy-url``."""

from __future__ import annotations

import json
import select
import socket
import ssl
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).parent
REPO = HERE.parents[1]
CLIENT_TLS: dict[str, str] = yaml.safe_load((HERE / "data" / "client-tls.yaml").read_text())
SERVER_TLS: dict[str, str] = yaml.safe_load(
    (REPO / "pytest_kspec" / "sim" / "data" / "tls.yaml").read_text())


@dataclass
class Call:
    path: str
    subject: dict[str, str]  # commonName, organizationName of the client certificate
    headers: list[tuple[str, str]] = field(default_factory=list)

    def header(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        cert = self.connection.getpeercert() if hasattr(self.connection, "getpeercert") else None
        subject = {k: v for rdn in (cert or {}).get("subject", ()) for k, v in rdn}
        self.server.calls.append(Call(self.path, subject, list(self.headers.items())))
        body = json.dumps({"major": "1", "minor": "29", "gitVersion": "v1.29.4"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    calls: list[Call]


@contextmanager
def serving(server: ThreadingHTTPServer) -> Iterator[None]:
    """Serve ``server`` from a thread until the block ends, then shut it down and close it."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextmanager
def tls_server(*, require_client_cert: bool = True) -> Iterator[_Server]:
    """Serve on 127.0.0.1 with the simulator's certificate (valid for 127.0.0.1 and
    localhost); client certificates signed by the test CA are verified."""
    with tempfile.TemporaryDirectory() as tmp:
        cert, key, ca = Path(tmp, "tls.crt"), Path(tmp, "tls.key"), Path(tmp, "ca.crt")
        cert.write_text(SERVER_TLS["certificate"])
        key.write_text(SERVER_TLS["key"])
        ca.write_text(CLIENT_TLS["ca"])
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        ctx.load_verify_locations(ca)
        ctx.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
        server = _Server(("127.0.0.1", 0), _Handler)
        server.calls = []
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        with serving(server):
            yield server


class _Tunnel(BaseHTTPRequestHandler):
    """``CONNECT host:port``: answer 200 and pipe bytes both ways (an HTTPS proxy)."""

    server: _ProxyServer

    def do_CONNECT(self) -> None:
        host, _, port = self.path.rpartition(":")
        self.server.targets.append(self.path)
        self.server.auth.append(self.headers.get("Proxy-Authorization", ""))
        try:
            upstream = socket.create_connection((host, int(port)), timeout=10)
        except OSError:
            self.send_error(502)
            return
        self.send_response(200, "Connection established")
        self.end_headers()
        sockets = [self.connection, upstream]
        try:
            while True:
                readable, _, _ = select.select(sockets, [], [], 10)
                if not readable:
                    return
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (upstream if sock is self.connection else self.connection).sendall(data)
        finally:
            upstream.close()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    targets: list[str]
    auth: list[str]


@contextmanager
def connect_proxy() -> Iterator[_ProxyServer]:
    """An HTTP proxy on 127.0.0.1 that tunnels CONNECT requests and records their targets."""
    server = _ProxyServer(("127.0.0.1", 0), _Tunnel)
    server.targets, server.auth = [], []
    with serving(server):
        yield server
