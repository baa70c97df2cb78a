"""The HTTP side: request parsing, faults, authentication, dispatch, chunked watch streams.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qs, urlsplit

from pytest_kspec.sim import auth, discovery, listing, openapi, status
from pytest_kspec.sim.api import Request, Response, json_response
from pytest_kspec.sim.routing import resolve
from pytest_kspec.sim.status import StatusError
from pytest_kspec.sim.store import dumps

if TYPE_CHECKING:
    from pytest_kspec.sim.api import Verbs
    from pytest_kspec.sim.auth import Authenticator
    from pytest_kspec.sim.controllers import Manager
    from pytest_kspec.sim.faults import Fault, Faults, Hooks
    from pytest_kspec.sim.resources import Registry
    from pytest_kspec.sim.store import Store

log = logging.getLogger("pytest_kspec.sim")
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")


@dataclass
class RequestRecord:
    """One request the simulator received (``sim.requests``)."""

    method: str
    path: str
    query: dict[str, str]
    user: str = ""
    status: int = 0
    verb: str = ""
    dry_run: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_write(self) -> bool:
        return self.verb in WRITE_VERBS and not self.dry_run


class Served(Protocol):
    """What the HTTP side serves: the simulator's state, as :class:`Simulator` holds it.

    The server depends on this shape, not on the ``Simulator`` class, so the simulator can
    own the server without the two modules importing each other.
    """

    version: str
    rbac: bool
    bookmark_interval: float
    faults: Faults
    requests: list[RequestRecord]
    _records_lock: threading.Lock
    _hooks: Hooks
    _store: Store
    _registry: Registry
    _verbs: Verbs
    _auth: Authenticator
    _stopping: threading.Event
    _controllers: Manager


class _Cut(Exception):
    """Raised to drop a connection mid-response (fault injection)."""


class HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], sim: Served,
                 tls: tuple[str, str] | None = None) -> None:
        self.sim = sim
        self.connections: set[socket.socket] = set()
        self.conn_lock = threading.Lock()
        super().__init__(addr, _Handler)
        if tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            # handshakes happen in the handler threads, not in the accept loop
            self.socket = ctx.wrap_socket(self.socket, server_side=True,
                                          do_handshake_on_connect=False)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("simulator connection from %s ended abruptly", client_address, exc_info=True)

    def close_connections(self) -> None:
        with self.conn_lock:
            conns = list(self.connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: HttpServer

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(10)
            try:
                self.request.do_handshake()
            except (OSError, ssl.SSLError):
                self.request.close()
                raise
            self.request.settimeout(None)
        super().setup()
        with self.server.conn_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.conn_lock:
            self.server.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("sim %s", format % args)

    def _serve(self) -> None:
        try:
            serve(self.server.sim, self)
        except (OSError, _Cut):  # client went away (or a fault cut the connection)
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve


def _query(raw: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, values in parse_qs(raw, keep_blank_values=True).items():
        out[k] = ",".join(values) if k == "dryRun" else values[-1]
    return out


def serve(sim: Served, h: _Handler) -> None:
    parts = urlsplit(h.path)
    path, query = parts.path.rstrip("/") or "/", _query(parts.query)
    length = int(h.headers.get("Content-Length") or 0)
    body = h.rfile.read(length) if length else b""
    headers = {k.lower(): v for k, v in h.headers.items()}
    method = h.command
    record = RequestRecord(method, path, query)
    with sim._records_lock:
        sim.requests.append(record)
    fault = sim.faults.take(method, path)
    if fault is not None and fault.delay:
        time.sleep(fault.delay)
    req = Request(method, path, query, headers, body)
    try:
        if fault is not None and fault.status is not None:
            raise status.from_code(fault.status, fault.retry_after)
        for hook in sim._hooks.take(method, path):
            hook.callback(sim, method, path, dict(query))
        req.user = sim._auth.user(headers.get("authorization"))
        record.user = req.user.name
        resp = dispatch(sim, req, record)
        if resp.stream is None and method != "GET":
            sim._controllers.drain()  # what the write set in motion, before the client hears
    except StatusError as e:  # the API server's encoder ends the body with a newline
        resp = Response(e.code, dumps(e.body()) + b"\n", headers=e.headers)
    except Exception as e:  # a bug in the simulator must still answer like a server
        log.exception("simulator failed on %s %s", method, path)
        err = StatusError(500, "InternalError", f"Internal error occurred: {e}", {})
        resp = Response(500, dumps(err.body()))
    record.status = resp.code
    _write(h, resp, fault, method)


def _write(h: _Handler, resp: Response, fault: Fault | None, method: str) -> None:
    h.send_response(resp.code)
    h.send_header("Content-Type", resp.content_type)
    h.send_header("Cache-Control", "no-cache, private")
    for k, v in resp.headers.items():
        h.send_header(k, v)
    if resp.stream is not None:
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        h.wfile.flush()
        if fault is not None and (fault.cut or fault.truncate):
            h.wfile.write(b"40\r\n{\"type\":\"ADD")
            h.wfile.flush()
            h.close_connection = True
            raise _Cut()

        def send(data: bytes) -> None:
            h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            h.wfile.flush()

        resp.stream(send)
        h.wfile.write(b"0\r\n\r\n")
        h.wfile.flush()
        return
    body = resp.body
    if fault is not None and fault.truncate:
        body = body[: len(body) // 2]
    h.send_header("Content-Length", str(len(resp.body) if fault and fault.cut else len(body)))
    h.end_headers()
    if method == "HEAD":
        return
    if fault is not None and fault.cut:
        h.wfile.write(body[: len(body) // 2])
        h.wfile.flush()
        h.close_connection = True
        raise _Cut()
    h.wfile.write(body)


def dispatch(sim: Served, req: Request, record: RequestRecord) -> Response:
    from pytest_kspec.sim.rbac import Attributes

    target = resolve(sim._registry, req.method, req.path, req.query.get("watch") in ("true", "1"))
    if target is None:
        verb = {"GET": "get", "HEAD": "get", "POST": "post", "PUT": "put", "PATCH": "patch",
                "DELETE": "delete"}.get(req.method, req.method.lower())
        record.verb = verb
        attrs = Attributes(verb=verb, path=req.path, resource_request=False)
        allowed, _ = auth.check(req.user, attrs, sim._store, sim.rbac)
        if not allowed:
            raise auth.deny(req.user, attrs)
        return non_resource(sim, req)
    record.verb = target.verb
    rt = target.rt
    record.dry_run = "dryRun" in req.query and target.verb in ("create", "update", "patch",
                                                               "delete", "deletecollection")
    if rt.stored:  # SelfSubjectAccessReviews are open to every authenticated user
        attrs = Attributes(verb=target.verb, api_group=rt.group, resource=rt.plural,
                           subresource=target.subresource or "", name=target.name or "",
                           namespace=target.namespace or "")
        allowed, _ = auth.check(req.user, attrs, sim._store, sim.rbac)
        if not allowed:
            raise auth.deny(req.user, attrs)
    if target.verb == "watch":
        matcher = sim._verbs.watch_matcher(target, req)
        ns = target.namespace
        stopping = sim._stopping
        interval = sim.bookmark_interval

        def stream(send: Any) -> None:
            listing.watch(sim._store, rt, ns, matcher, req.query, send, stopping, interval)

        return Response(200, b"", stream=stream)
    return sim._verbs.handle(target, req)


def non_resource(sim: Served, req: Request) -> Response:
    path = req.path
    if req.method not in ("GET", "HEAD"):
        raise status.StatusError(405, "MethodNotAllowed", "the server does not allow this "
                                 "method on the requested resource", {})
    if path == "/version":
        return json_response(200, discovery.version_info(sim.version))
    if path == "/api":
        return json_response(200, discovery.api_versions())
    if path == "/apis":
        return json_response(200, discovery.api_group_list(sim._registry))
    if path in ("/healthz", "/livez", "/readyz"):
        return Response(200, b"ok", "text/plain; charset=utf-8")
    if path == "/openapi/v3":
        return json_response(200, openapi.root(sim._registry))
    if path.startswith("/openapi/v3/"):
        segs = path[len("/openapi/v3/"):].split("/")
        doc = None
        if len(segs) == 2 and segs[0] == "api":
            doc = openapi.gv_document(sim._registry, "", segs[1])
        elif len(segs) == 3 and segs[0] == "apis":
            doc = openapi.gv_document(sim._registry, segs[1], segs[2])
        if doc is not None:
            return json_response(200, doc)
    segs = [s for s in path.split("/") if s]
    if segs == ["api", "v1"]:
        found = discovery.resource_list(sim._registry, "", "v1")
        if found is not None:
            return json_response(200, found)
    if len(segs) == 2 and segs[0] == "apis":
        group = discovery.api_group(sim._registry, segs[1])
        if group is not None:
            return json_response(200, group)
    if len(segs) == 3 and segs[0] == "apis":
        found = discovery.resource_list(sim._registry, segs[1], segs[2])
        if found is not None:
            return json_response(200, found)
    return Response(404, b"404 page not found\n", "text/plain; charset=utf-8")
