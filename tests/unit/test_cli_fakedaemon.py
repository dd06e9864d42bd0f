"""A fake Engine API at the HTTP seam, for testing the client and the CLI without a daemon.

It speaks HTTP through h11 (strict about framing, so it also checks what the client sends),
serves canned answers from handlers registered per method and path pattern, supports streamed
answers and hijacked connections, and records every request in order.

Other test modules import it: ``from test_cli_fakedaemon import FakeDaemon, Reply``.
"""

from __future__ import annotations

import json
import re
import socket
import socketserver
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import h11
import pytest


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes = b""
    groups: tuple[str, ...] = ()

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Reply:
    status: int = 200
    body: bytes | Iterable[bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)
    # Called with (socket, already-buffered bytes) after a 101 answer: the handler owns the
    # connection from there on.
    hijack: Callable[[socket.socket, bytes], None] | None = None


def json_reply(obj: Any, status: int = 200) -> Reply:
    return Reply(status, json.dumps(obj).encode(), {"Content-Type": "application/json"})


def error_reply(status: int, message: str) -> Reply:
    return json_reply({"message": message}, status)


Handler = Callable[[Request], Reply]


class FakeDaemon:
    """Routes ``(method, regex)`` → handler; unmatched requests get a 404 with a message."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.host = f"unix://{path}"
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        daemon = self

        class _Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                daemon._serve(self.request)

        class _Server(socketserver.ThreadingUnixStreamServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client hanging up mid-answer is part of what tests exercise

        self._server = _Server(path, _Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,),
                                        daemon=True)

    def start(self) -> FakeDaemon:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def route(self, method: str, pattern: str, handler: Handler | Reply) -> None:
        """Serve ``handler`` for ``method`` on paths (without /v1.xx) matching ``pattern``."""
        fn = handler if callable(handler) else (lambda _req, r=handler: r)
        self.routes.insert(0, (method, re.compile(pattern + r"\Z"), fn))

    def calls(self, method: str | None = None) -> list[str]:
        """``"METHOD /path"`` of every request so far, in arrival order."""
        with self._lock:
            return [f"{r.method} {r.path}" for r in self.requests
                    if method is None or r.method == method]

    def last(self, method: str, pattern: str) -> Request:
        with self._lock:
            for r in reversed(self.requests):
                if r.method == method and re.fullmatch(pattern, r.path):
                    return r
        raise AssertionError(f"no {method} {pattern} among {self.calls()}")

    # -- serving --------------------------------------------------------------------------------

    def _dispatch(self, req: Request) -> Reply:
        for method, pattern, handler in self.routes:
            m = pattern.match(req.path)
            if m and method == req.method:
                req.groups = m.groups()
                return handler(req)
        return error_reply(404, f"page not found: {req.method} {req.path}")

    def _serve(self, sock: socket.socket) -> None:
        conn = h11.Connection(h11.SERVER)
        while True:
            head = None
            body = bytearray()
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = sock.recv(65536)
                    conn.receive_data(data)
                    if not data and head is None:
                        return
                    continue
                if event is h11.PAUSED or isinstance(event, h11.EndOfMessage):
                    break
                if isinstance(event, h11.ConnectionClosed):
                    return
                if isinstance(event, h11.Request):
                    head = event
                elif isinstance(event, h11.Data):
                    body += event.data
            assert head is not None
            target = urlsplit(head.target.decode())
            path = re.sub(r"^/v1\.\d+", "", target.path)
            headers = {k.decode().lower(): v.decode() for k, v in head.headers}
            req = Request(head.method.decode(), path, parse_qs(target.query), headers,
                          bytes(body))
            with self._lock:
                self.requests.append(req)
            reply = self._dispatch(req)
            if reply.hijack is not None:
                while conn.next_event() is not h11.PAUSED and conn.their_state is not h11.DONE:
                    pass
                trailing, _ = conn.trailing_data
                sock.sendall(b"HTTP/1.1 101 UPGRADED\r\n"
                             b"Content-Type: application/vnd.docker.raw-stream\r\n"
                             b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
                reply.hijack(sock, bytes(trailing))
                return
            hdrs = list(reply.headers.items())
            if isinstance(reply.body, bytes):
                hdrs.append(("Content-Length", str(len(reply.body))))
                sock.sendall(conn.send(h11.Response(status_code=reply.status, headers=hdrs)))
                if reply.body:
                    sock.sendall(conn.send(h11.Data(data=reply.body)))
            else:
                sock.sendall(conn.send(h11.Response(status_code=reply.status, headers=hdrs)))
                for chunk in reply.body:
                    if chunk:
                        sock.sendall(conn.send(h11.Data(data=chunk)))
            sock.sendall(conn.send(h11.EndOfMessage()))
            if conn.our_state is h11.MUST_CLOSE:
                return
            try:
                conn.start_next_cycle()
            except h11.LocalProtocolError:
                return


@pytest.fixture
def fake_daemon() -> Iterator[FakeDaemon]:
    with tempfile.TemporaryDirectory(prefix="berth-fake-") as tmp:
        daemon = FakeDaemon(str(Path(tmp) / "api.sock")).start()
        daemon.route("GET", "/_ping", Reply(200, b"OK", {"API-Version": "1.44"}))
        try:
            yield daemon
        finally:
            daemon.stop()


# -- the fake's own checks -------------------------------------------------------------------

def test_fake_daemon_answers_and_records(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("GET", "/containers/json", json_reply([]))
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(fake_daemon.path)
    sock.sendall(b"GET /v1.44/containers/json?all=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    while not data.endswith(b"[]"):
        data += sock.recv(4096)
    sock.close()
    assert data.startswith(b"HTTP/1.1 200")
    assert fake_daemon.calls() == ["GET /containers/json"]
    assert fake_daemon.last("GET", "/containers/json").arg("all") == "1"


def test_fake_daemon_unknown_route_is_404(fake_daemon: FakeDaemon) -> None:
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(fake_daemon.path)
    sock.sendall(b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    assert data.startswith(b"HTTP/1.1 404")
    assert b"page not found" in data
