"""Real receivers on loopback: an HTTP endpoint that records POSTs, an SMTP server (STARTTLS,
AUTH PLAIN) that records mails. Both speak the wire protocol the alerts code uses."""

from __future__ import annotations

import base64
import json
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any
    raw: bytes


@dataclass
class HttpReceiver:
    """Answers each POST with the next queued status (then 200), records every request."""

    requests: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    retry_after: str | None = None
    delay: float = 0.0
    url: str = ""
    event: threading.Event = field(default_factory=threading.Event)

    def bodies(self, path: str | None = None) -> list[Any]:
        return [r.body for r in self.requests if path is None or r.path == path]


@contextmanager
def http_receiver() -> Iterator[HttpReceiver]:
    rec = HttpReceiver()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if rec.delay:
                time.sleep(rec.delay)
            with lock:
                status = rec.statuses.pop(0) if rec.statuses else 200
                is_json = "json" in (self.headers.get("Content-Type") or "")
                rec.requests.append(Received(self.path, dict(self.headers.items()),
                                             json.loads(raw) if raw and is_json else None,
                                             raw))
            body = b'{"status":"success"}' if status < 300 else b'{"error":"nope"}'
            try:
                self.send_response(status)
                if status == 429 and rec.retry_after:
                    self.send_header("Retry-After", rec.retry_after)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (its timeout): as a real receiver would see it
            rec.event.set()

        do_PUT = do_POST  # a Pushgateway takes PUT

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    rec.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    message: Message
    tls: bool
    user: str
    password: str


@dataclass
class SmtpReceiver:
    host: str = "127.0.0.1"
    port: int = 0
    mails: list[Mail] = field(default_factory=list)
    transcript: list[str] = field(default_factory=list)


@contextmanager
def smtp_receiver(tls: ssl.SSLContext | None = None,
                  password: str | None = None) -> Iterator[SmtpReceiver]:
    """A minimal SMTP server: EHLO, STARTTLS (when ``tls``), AUTH PLAIN (when ``password``),
    MAIL, RCPT, DATA, RSET, NOOP, QUIT."""
    rec = SmtpReceiver()

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            self.conns: list[Any] = []
            try:
                self._serve()
            finally:
                for item in reversed(self.conns):
                    item.close()

        def _serve(self) -> None:
            conn: socket.socket = self.connection
            reader = conn.makefile("rb")
            self.conns.append(reader)
            secure, user, pw = False, "", ""
            sender, rcpts = "", []

            def say(line: str) -> None:
                conn.sendall(line.encode() + b"\r\n")

            say("220 kspec-test ESMTP")
            while True:
                raw = reader.readline()
                if not raw:
                    return
                line = raw.decode().rstrip("\r\n")
                verb = line.split(" ", 1)[0].upper()
                rec.transcript.append(line if verb != "AUTH" else "AUTH ***")
                if verb in ("EHLO", "HELO"):
                    caps = ["250-kspec-test"]
                    if tls is not None and not secure:
                        caps.append("250-STARTTLS")
                    if password is not None:
                        caps.append("250-AUTH PLAIN")
                    caps.append("250 8BITMIME")
                    for cap in caps:
                        say(cap)
                elif verb == "STARTTLS" and tls is not None:
                    say("220 go ahead")
                    self.conns.append(reader)
                    conn = tls.wrap_socket(conn, server_side=True)
                    reader = conn.makefile("rb")
                    self.conns += [conn, reader]
                    secure = True
                elif verb == "AUTH" and password is not None:
                    parts = line.split(" ")
                    blob = parts[2] if len(parts) > 2 else ""
                    decoded = base64.b64decode(blob).split(b"\0")
                    user, pw = decoded[1].decode(), decoded[2].decode()
                    say("235 ok" if pw == password else "535 authentication failed")
                elif verb == "MAIL":
                    if password is not None and pw != password:
                        say("530 authentication required")
                        continue
                    sender, rcpts = line.split(":", 1)[1].strip().split()[0].strip("<>"), []
                    say("250 ok")
                elif verb == "RCPT":
                    rcpts.append(line.split(":", 1)[1].strip().strip("<>"))
                    say("250 ok")
                elif verb == "DATA":
                    say("354 end with .")
                    data = b""
                    while True:
                        chunk = reader.readline()
                        if chunk in (b".\r\n", b""):
                            break
                        data += chunk[1:] if chunk.startswith(b"..") else chunk
                    rec.mails.append(Mail(sender, rcpts, message_from_bytes(data), secure,
                                          user, pw))
                    say("250 queued")
                elif verb == "QUIT":
                    say("221 bye")
                    return
                else:
                    say("250 ok")

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    rec.port = server.server_address[1]
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()
