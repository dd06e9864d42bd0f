"""An asyncio HTTP/1.1 server on h11, with what the Engine API needs beyond plain requests.

Why our own: the Engine API hijacks connections (``101 UPGRADED`` for attach and exec, or a
raw ``200`` stream for old clients), streams long-lived chunked bodies (logs, events, wait with
headers flushed at once) and serves a unix socket; a thin layer over h11 does all of that with
no framework. Routing knows nothing of Docker: the API layer registers handlers and maps errors.

A handler takes a :class:`Request` and returns one of
- :class:`Response`: a complete body with Content-Length;
- :class:`StreamResponse`: headers at once, then each chunk of an async iterator as it comes;
- :class:`Hijack`: the status line and headers, then the raw connection is the handler's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import h11

from berth.errors import InvalidArgument

__all__ = [
    "Hijack",
    "Request",
    "Response",
    "Router",
    "Server",
    "StreamResponse",
    "json_response",
]

log = logging.getLogger("berth.http")

MAX_HEADER_BYTES = 64 * 1024
READ_SIZE = 64 * 1024
_VERSION_PREFIX = re.compile(r"^/v(\d+\.\d+)(/.*)$")


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str | None = "application/json"


@dataclass
class StreamResponse:
    """Headers are sent at once; then each chunk of ``chunks`` is written and flushed."""

    chunks: AsyncIterator[bytes]
    status: int = 200
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Hijack:
    """Take the raw connection over after the status line and headers.

    When the client asked for ``Upgrade: tcp`` the server answers ``101 UPGRADED``; else a
    ``200`` with no length, as the Engine API does for old clients. With ``switch_to`` set
    (``websocket``), the answer is ``101 Switching Protocols`` with ``Upgrade: switch_to`` and
    ``headers``, nothing else: the handler has checked the handshake. ``run`` owns the
    streams until it returns, and the connection is closed then.
    """

    run: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
    content_type: str = "application/vnd.docker.raw-stream"
    headers: list[tuple[str, str]] = field(default_factory=list)
    switch_to: str | None = None


Result = Response | StreamResponse | Hijack
Handler = Callable[["Request"], Awaitable[Result]]


def json_response(obj: Any, status: int = 200) -> Response:
    return Response(status=status, body=json.dumps(obj).encode() + b"\n")


class Request:
    """One parsed request; the body is read on demand so handlers may stream it."""

    def __init__(self, conn: _Connection, method: str, target: str,
                 headers: list[tuple[bytes, bytes]]) -> None:
        self._conn = conn
        self.method = method
        parsed = urllib.parse.urlsplit(target)
        path = urllib.parse.unquote(parsed.path)
        match = _VERSION_PREFIX.match(path)
        self.api_version: str | None = match.group(1) if match else None
        self.path = match.group(2) if match else path
        self.query: dict[str, list[str]] = urllib.parse.parse_qs(parsed.query,
                                                                  keep_blank_values=True)
        self.headers: dict[str, str] = {}
        for name, value in headers:
            key = name.decode("latin-1").lower()
            text = value.decode("latin-1")
            self.headers[key] = f"{self.headers[key]}, {text}" if key in self.headers else text
        self.params: dict[str, str] = {}
        self._body_done = False

    @property
    def wants_upgrade(self) -> bool:
        return "upgrade" in self.headers.get("connection", "").lower()

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def flag(self, name: str, default: bool = False) -> bool:
        """A boolean query parameter as the Engine API reads them: 1/true/yes, or presence."""
        value = self.arg(name)
        if value is None:
            return default
        return value.lower() in ("1", "true", "yes", "on", "")

    def int_arg(self, name: str, default: int | None = None) -> int | None:
        value = self.arg(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except ValueError:
            raise InvalidArgument(f"invalid value for {name}: {value!r}") from None

    async def stream(self) -> AsyncIterator[bytes]:
        """The body, chunk by chunk as it arrives."""
        while not self._body_done:
            event = await self._conn.next_event()
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                self._body_done = True
            else:
                raise InvalidArgument("malformed request body")

    async def body(self, limit: int = 64 * 1024 * 1024) -> bytes:
        parts: list[bytes] = []
        size = 0
        async for chunk in self.stream():
            size += len(chunk)
            if size > limit:
                raise InvalidArgument("request body too large")
            parts.append(chunk)
        return b"".join(parts)

    async def json(self, required: bool = False) -> Any:
        """The body parsed as JSON; an empty body is ``None`` unless ``required``."""
        raw = await self.body()
        if not raw.strip():
            if required:
                raise InvalidArgument("request body is required")
            return None
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidArgument(f"invalid JSON: {exc}") from None

    async def drain(self) -> None:
        async for _ in self.stream():
            pass


class Router:
    """Path templates like ``/containers/{id}/json`` to handlers, per method."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, template: str, handler: Handler) -> None:
        pattern = re.sub(r"\{(\w+)\*\}", r"(?P<\1>.+)", template)
        pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern)
        self._routes.append((method.upper(), re.compile(f"^{pattern}$"), handler))

    def route(self, method: str, template: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.add(method, template, handler)
            return handler

        return register

    def match(self, method: str, path: str) -> tuple[Handler | None, dict[str, str], bool]:
        """The handler, its path parameters, and whether the path exists for another method."""
        path_known = False
        for route_method, pattern, handler in self._routes:
            m = pattern.match(path)
            if m is None:
                continue
            path_known = True
            if route_method == method or (method == "HEAD" and route_method == "GET"):
                return handler, {k: urllib.parse.unquote(v) for k, v in m.groupdict().items()}, True
        return None, {}, path_known


class _Connection:
    """One client connection: h11 state plus the asyncio streams under it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 server_header: str) -> None:
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
        self.server_header = server_header

    async def next_event(self) -> Any:
        while True:
            event = self.h11.next_event()
            if event is h11.NEED_DATA:
                data = await self.reader.read(READ_SIZE)
                self.h11.receive_data(data)
                continue
            return event

    async def send(self, *events: Any) -> None:
        chunks = [self.h11.send(event) for event in events]
        data = b"".join(c for c in chunks if c)
        if data:
            self.writer.write(data)
        await self.writer.drain()

    def base_headers(self) -> list[tuple[str, str]]:
        return [("Server", self.server_header), ("Api-Version", "1.44"),
                ("Docker-Experimental", "false"), ("Ostype", "linux")]


ErrorMapper = Callable[[BaseException], Response]


class Server:
    """Serves a router on unix sockets (and TCP) until closed."""

    def __init__(self, router: Router, error_mapper: ErrorMapper,
                 server_header: str = "berth") -> None:
        self.router = router
        self.error_mapper = error_mapper
        self.server_header = server_header
        self._servers: list[asyncio.base_events.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def listen_unix(self, path: str, mode: int = 0o660) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        server = await asyncio.start_unix_server(self._serve, path=path, limit=READ_SIZE)
        os.chmod(path, mode)
        self._servers.append(server)

    async def listen_tcp(self, host: str, port: int, ssl: Any = None) -> None:
        server = await asyncio.start_server(self._serve, host=host, port=port, ssl=ssl)
        self._servers.append(server)

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for task in list(self._tasks):
            task.cancel()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        conn = _Connection(reader, writer, self.server_header)
        try:
            await self._serve_requests(conn)
        except (ConnectionError, asyncio.IncompleteReadError, h11.RemoteProtocolError):
            pass
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("connection failed")
        finally:
            self._tasks.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    async def _serve_requests(self, conn: _Connection) -> None:
        while True:
            event = await conn.next_event()
            if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                return
            if not isinstance(event, h11.Request):
                return
            request = Request(conn, event.method.decode(), event.target.decode("latin-1"),
                              list(event.headers))
            hijacked = await self._handle(conn, request)
            if hijacked:
                return
            if conn.h11.our_state is h11.MUST_CLOSE or conn.h11.their_state is h11.MUST_CLOSE:
                return
            if conn.h11.states[h11.CLIENT] is not h11.DONE:
                # The handler did not read the whole body: read it now so the next request parses.
                try:
                    await request.drain()
                except Exception:
                    return
            try:
                conn.h11.start_next_cycle()
            except h11.LocalProtocolError:
                return

    async def _handle(self, conn: _Connection, request: Request) -> bool:
        handler, params, path_known = self.router.match(request.method, request.path)
        request.params = params
        try:
            if handler is None:
                from berth.errors import NotFound

                if path_known:
                    raise _MethodNotAllowed(f"method {request.method} not allowed for "
                                            f"{request.path}")
                raise NotFound(f"page not found: {request.path}")
            result = await handler(request)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - every failure becomes an HTTP error
            result = self.error_mapper(exc)
        if isinstance(result, Hijack):
            await self._hijack(conn, request, result)
            return True
        if isinstance(result, StreamResponse):
            await self._stream(conn, request, result)
            return False
        await self._respond(conn, request, result)
        return False

    async def _respond(self, conn: _Connection, request: Request, response: Response) -> None:
        headers = conn.base_headers() + list(response.headers)
        if response.content_type and response.body:
            headers.append(("Content-Type", response.content_type))
        body = b"" if request.method == "HEAD" else response.body
        headers.append(("Content-Length", str(len(response.body))))
        if conn.h11.their_state is not h11.DONE and conn.h11.their_state is not h11.SEND_BODY:
            pass
        # Head, body and end in one write: one send() per response, not three.
        events: list[Any] = [h11.Response(status_code=response.status, headers=headers,
                                          reason=_reason(response.status))]
        if body:
            events.append(h11.Data(data=body))
        events.append(h11.EndOfMessage())
        await conn.send(*events)

    async def _stream(self, conn: _Connection, request: Request, response: StreamResponse) -> None:
        headers = conn.base_headers() + list(response.headers)
        headers.append(("Content-Type", response.content_type))
        await conn.send(h11.Response(status_code=response.status, headers=headers,
                                     reason=_reason(response.status)))
        closed = asyncio.ensure_future(_wait_closed(conn))
        try:
            async for chunk in _until_closed(response.chunks, closed):
                if chunk:
                    await conn.send(h11.Data(data=chunk))
        finally:
            # Wait for the watcher to be gone: the next request on this connection reads the
            # same stream, and two readers at once is an error.
            closed.cancel()
            await asyncio.wait({closed})
            aclose = getattr(response.chunks, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()
        await conn.send(h11.EndOfMessage())

    async def _hijack(self, conn: _Connection, request: Request, hijack: Hijack) -> None:
        if conn.h11.their_state is h11.SEND_BODY:
            await request.drain()
        headers = conn.base_headers() + list(hijack.headers)
        if hijack.switch_to is not None:
            head = "HTTP/1.1 101 Switching Protocols\r\n"
            headers = [("Upgrade", hijack.switch_to), ("Connection", "Upgrade"),
                       *hijack.headers]
        elif request.wants_upgrade:
            headers.append(("Content-Type", hijack.content_type))
            head = "HTTP/1.1 101 UPGRADED\r\n"
            headers += [("Connection", "Upgrade"), ("Upgrade", "tcp")]
        else:
            headers.append(("Content-Type", hijack.content_type))
            head = "HTTP/1.1 200 OK\r\n"
        conn.writer.write((head + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n")
                          .encode("latin-1"))
        await conn.writer.drain()
        leftover, _closed = conn.h11.trailing_data
        reader = conn.reader
        if leftover:
            reader = _prepend(leftover, conn.reader)
        await hijack.run(reader, conn.writer)


class _MethodNotAllowed(InvalidArgument):
    status = 405


async def _wait_closed(conn: _Connection) -> None:
    """Resolve when the client closes its side while a stream response is running."""
    while True:
        data = await conn.reader.read(READ_SIZE)
        if not data:
            return
        conn.h11.receive_data(data)


async def _until_closed(chunks: AsyncIterator[bytes],
                        closed: asyncio.Future[None]) -> AsyncIterator[bytes]:
    """Yield from ``chunks`` but stop as soon as the client went away (``docker logs -f`` ^C)."""
    iterator = chunks.__aiter__()
    while True:
        nxt = asyncio.ensure_future(iterator.__anext__())
        done, _ = await asyncio.wait({nxt, closed}, return_when=asyncio.FIRST_COMPLETED)
        if nxt in done:
            try:
                yield nxt.result()
            except StopAsyncIteration:
                return
        else:
            nxt.cancel()
            with contextlib.suppress(BaseException):
                await nxt
            raise ConnectionResetError("client closed the connection")


def _prepend(data: bytes, reader: asyncio.StreamReader) -> asyncio.StreamReader:
    """Put bytes the HTTP parser already read back in front of the raw stream."""
    reader._buffer[:0] = data  # type: ignore[attr-defined]
    return reader


_REASONS = {200: "OK", 201: "Created", 204: "No Content", 304: "Not Modified",
            400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            405: "Method Not Allowed", 409: "Conflict", 500: "Internal Server Error",
            501: "Not Implemented", 503: "Service Unavailable"}


def _reason(status: int) -> str:
    return _REASONS.get(status, "")
