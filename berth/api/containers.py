"""``/containers/...`` routes of the Engine API."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from berth import errors
from berth.api import websocket
from berth.http.frames import FrameDecoder
from berth.http.server import Hijack, Request, Response, Router, StreamResponse, json_response
from berth.util.detach import DEFAULT_DETACH_KEYS, EscapeFilter, detach_key_bytes

__all__ = ["register"]

MULTIPLEXED = "application/vnd.docker.multiplexed-stream"
RAW = "application/vnd.docker.raw-stream"


def parse_filters(request: Request) -> dict[str, list[str]]:
    """``filters`` as Docker sends it: ``{"key": ["v"]}`` or the older ``{"key": {"v": true}}``."""
    raw = request.arg("filters")
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise errors.InvalidArgument(f"invalid filter: {raw!r}") from None
    if not isinstance(data, dict):
        raise errors.InvalidArgument("invalid filter: expected an object")
    result: dict[str, list[str]] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            result[key] = [k for k, v in value.items() if v]
        elif isinstance(value, list):
            result[key] = [str(v) for v in value]
        else:
            raise errors.InvalidArgument(f"invalid filter value for {key!r}")
    return result


async def _pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, half_close: bool) -> None:
    try:
        while True:
            data = await src.read(1 << 20)
            if not data:
                break
            dst.write(data)
            await dst.drain()
    except (ConnectionError, OSError):
        return
    if half_close:
        with contextlib.suppress(OSError, RuntimeError):
            if dst.can_write_eof():
                dst.write_eof()


async def _pump_stdin(src: asyncio.StreamReader, dst: asyncio.StreamWriter,
                      escape: EscapeFilter | None) -> bool:
    """Client input to the container, then its half-close; True when the client typed the
    detach keys instead (what preceded them is passed on, the keys are not)."""
    try:
        while True:
            data = await src.read(1 << 20)
            if not data:
                break
            detached = False
            if escape is not None:
                data, detached = escape.feed(data)
            if data:
                dst.write(data)
                await dst.drain()
            if detached:
                return True
    except (ConnectionError, OSError):
        return False
    with contextlib.suppress(OSError, RuntimeError):
        if dst.can_write_eof():
            dst.write_eof()
    return False


async def splice(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter,
                 shim_reader: asyncio.StreamReader, shim_writer: asyncio.StreamWriter,
                 stdin: bool, escape: EscapeFilter | None = None) -> bool:
    """Join a hijacked client to a shim stream until the output ends, the client leaves or
    it types the detach keys (``escape``: a TTY attach or exec, as dockerd watches for
    them); True in that last case.

    The client's half-close travels on to the shim (that is how a piped stdin reaches EOF);
    without stdin the client's side is not read, so a client that half-closes early still
    gets all the output.
    """
    outbound = asyncio.ensure_future(_pump(shim_reader, client_writer, half_close=False))
    inbound = (asyncio.ensure_future(_pump_stdin(client_reader, shim_writer, escape))
               if stdin else None)
    detached = False
    try:
        pending = {outbound} if inbound is None else {outbound, inbound}
        while outbound in pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if inbound in done and inbound.exception() is None and inbound.result():
                detached = True  # the process keeps running, its stdin stays open
                break
    finally:
        for task in (outbound, inbound):
            if task is not None:
                task.cancel()
        shim_writer.close()
        with contextlib.suppress(Exception):
            await client_writer.drain()
    return detached


def detach_escape(request: Request, tty: bool) -> EscapeFilter | None:
    """The ``detachKeys`` of an attach (ctrl-p,ctrl-q unless given), watched for only with a
    TTY, as dockerd does; a bad value is a 400 before anything is hijacked."""
    text = request.arg("detachKeys")
    keys = DEFAULT_DETACH_KEYS
    if text:
        try:
            keys = detach_key_bytes(text)
        except ValueError:
            raise errors.InvalidArgument(f"Invalid detach keys ({text}) provided") from None
    return EscapeFilter(keys) if tty else None


def register(router: Router, services: Any) -> None:
    containers = services.containers

    async def create(request: Request) -> Response:
        body = await request.json(required=True)
        result = await containers.create(body, request.arg("name"))
        return json_response(result, status=201)

    async def list_(request: Request) -> Response:
        args = (request.flag("all"), request.int_arg("limit"), parse_filters(request),
                request.flag("size"))
        if args[3] or "before" in args[2] or "since" in args[2]:
            result = await asyncio.to_thread(containers.list, *args)  # disk or database
        else:
            result = containers.list(*args)  # the in-memory records only: no thread hop
        return json_response(result)

    async def inspect(request: Request) -> Response:
        record = await asyncio.to_thread(containers.inspect, request.params["id"],
                                         request.flag("size"))
        return json_response(record)

    async def start(request: Request) -> Response:
        started = await containers.start(request.params["id"])
        return Response(status=204 if started else 304)

    async def stop(request: Request) -> Response:
        stopped = await containers.stop(request.params["id"], request.int_arg("t"),
                                        request.arg("signal"))
        return Response(status=204 if stopped else 304)

    async def restart(request: Request) -> Response:
        await containers.restart(request.params["id"], request.int_arg("t"),
                                 request.arg("signal"))
        return Response(status=204)

    async def kill(request: Request) -> Response:
        await containers.kill(request.params["id"], request.arg("signal"))
        return Response(status=204)

    async def delete(request: Request) -> Response:
        await containers.remove(request.params["id"], force=request.flag("force"),
                                volumes=request.flag("v"))
        return Response(status=204)

    async def wait(request: Request) -> StreamResponse:
        wait_result = await containers.wait(request.params["id"],
                                            request.arg("condition") or "not-running")

        async def body() -> AsyncIterator[bytes]:
            result = await wait_result()
            yield json.dumps(result).encode() + b"\n"

        return StreamResponse(body())

    async def logs(request: Request) -> StreamResponse:
        tty, chunks = await containers.logs(
            request.params["id"], stdout=request.flag("stdout"), stderr=request.flag("stderr"),
            follow=request.flag("follow"), tail=request.arg("tail"),
            timestamps=request.flag("timestamps"),
            since=float(request.arg("since") or 0), until=float(request.arg("until") or 0))
        return StreamResponse(chunks, content_type=RAW if tty else MULTIPLEXED)

    async def attach(request: Request) -> Hijack:
        record = await asyncio.to_thread(containers.attach_target, request.params["id"])
        cid = record["Id"]
        tty = bool(record["Config"].get("Tty"))
        stdin, stdout, stderr = (request.flag("stdin"), request.flag("stdout"),
                                 request.flag("stderr"))
        want_logs = request.flag("logs")
        want_stream = request.flag("stream")
        escape = detach_escape(request, tty)

        async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if want_logs:
                _, chunks = await containers.logs(cid, stdout=stdout, stderr=stderr)
                async for chunk in chunks:
                    writer.write(chunk)
                await writer.drain()
            if not want_stream:
                return
            streams = await containers.open_attach(cid, stdin, stdout, stderr)
            if streams is None:
                return
            await splice(reader, writer, streams[0], streams[1], stdin, escape)

        return Hijack(run, content_type=RAW if tty else MULTIPLEXED)

    router.add("POST", "/containers/create", create)
    router.add("GET", "/containers/json", list_)
    router.add("GET", "/containers/{id}/json", inspect)
    router.add("POST", "/containers/{id}/start", start)
    router.add("POST", "/containers/{id}/stop", stop)
    router.add("POST", "/containers/{id}/restart", restart)
    router.add("POST", "/containers/{id}/kill", kill)
    router.add("DELETE", "/containers/{id}", delete)
    router.add("POST", "/containers/{id}/wait", wait)
    router.add("GET", "/containers/{id}/logs", logs)
    async def resize(request: Request) -> Response:
        await containers.resize(request.params["id"], request.int_arg("h", 0) or 0,
                                request.int_arg("w", 0) or 0)
        return Response(status=200)

    async def attach_ws(request: Request) -> Response | Hijack:
        """The websocket form: an RFC 6455 handshake, then the container's output as binary
        frames (text before API 1.28) of the raw stream, never multiplexed, and the client's
        data frames as stdin. Query flags as dockerd reads them: absent means false."""
        # The container first, as dockerd: a missing one is a 404 whatever the handshake.
        record = await asyncio.to_thread(containers.attach_target, request.params["id"])
        problem = websocket.handshake_error(request.headers)
        if problem is not None:
            bad_version = "version" in problem
            return Response(status=400, body=json.dumps({"message": problem}).encode() + b"\n",
                            headers=[("Sec-WebSocket-Version", websocket.VERSION)]
                            if bad_version else [])
        accept = websocket.accept_key(request.headers["sec-websocket-key"].strip())
        session = _WebsocketAttach(
            containers, record, stdin=_docker_bool(request, "stdin"),
            stdout=_docker_bool(request, "stdout"), stderr=_docker_bool(request, "stderr"),
            logs=_docker_bool(request, "logs"), stream=_docker_bool(request, "stream"),
            binary=request.api_version is None or _version(request.api_version) >= (1, 28),
            escape=detach_escape(request, bool(record["Config"].get("Tty"))))
        return Hijack(session.run, headers=[("Sec-WebSocket-Accept", accept)],
                      switch_to="websocket")

    async def top(request: Request) -> Response:
        return json_response(await containers.top(request.params["id"],
                                                  request.arg("ps_args")))

    async def stats(request: Request) -> StreamResponse:
        stream = request.arg("stream") is None or request.flag("stream")
        chunks = await containers.stats(request.params["id"], stream,
                                        request.flag("one-shot"))
        return StreamResponse(chunks, content_type="application/json")

    async def pause(request: Request) -> Response:
        await containers.pause(request.params["id"])
        return Response(status=204)

    async def unpause(request: Request) -> Response:
        await containers.unpause(request.params["id"])
        return Response(status=204)

    async def update(request: Request) -> Response:
        body = await request.json(required=True)
        return json_response(await containers.update(request.params["id"], body))

    async def rename(request: Request) -> Response:
        await containers.rename(request.params["id"], request.arg("name") or "")
        return Response(status=204)

    async def prune(request: Request) -> Response:
        return json_response(await containers.prune(parse_filters(request)))

    router.add("POST", "/containers/{id}/attach", attach)
    router.add("GET", "/containers/{id}/attach/ws", attach_ws)
    router.add("POST", "/containers/{id}/resize", resize)
    router.add("GET", "/containers/{id}/top", top)
    router.add("GET", "/containers/{id}/stats", stats)
    router.add("POST", "/containers/{id}/pause", pause)
    router.add("POST", "/containers/{id}/unpause", unpause)
    router.add("POST", "/containers/{id}/update", update)
    router.add("POST", "/containers/{id}/rename", rename)
    router.add("POST", "/containers/prune", prune)


async def _read_until_eof(reader: asyncio.StreamReader) -> None:
    while await reader.read(1 << 16):
        pass


def _docker_bool(request: Request, name: str) -> bool:
    """dockerd's ``BoolValue``: absent, empty, 0, no, false and none are false."""
    value = (request.arg(name) or "").strip().lower()
    return value not in ("", "0", "no", "false", "none")


def _version(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    return int(major), int(minor or 0)


class _WebsocketAttach:
    """One attach over a websocket: output frames out, client frames read all along (pings
    answered, stdin forwarded when asked for, a close echoed), a close frame at the end."""

    def __init__(self, containers: Any, record: dict[str, Any], *, stdin: bool, stdout: bool,
                 stderr: bool, logs: bool, stream: bool, binary: bool,
                 escape: EscapeFilter | None = None) -> None:
        self.containers = containers
        self.cid = record["Id"]
        self.tty = bool(record["Config"].get("Tty"))
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        self.logs, self.stream = logs, stream
        self.opcode = websocket.BINARY if binary else websocket.TEXT
        self.closed = asyncio.Event()    # the client sent a close frame or went away
        self.streaming_over = asyncio.Event()  # closed, or the client typed the detach keys
        self.close_sent = False
        self.shim_writer: asyncio.StreamWriter | None = None
        self.stdin_pending: list[bytes] = []
        self.stdin_ended = False
        self.escape = escape

    async def run(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        inbound = asyncio.ensure_future(self._read_client(reader, writer))
        try:
            if self.logs:
                _, chunks = await self.containers.logs(self.cid, stdout=self.stdout,
                                                       stderr=self.stderr)
                decoder = None if self.tty else FrameDecoder()
                async for chunk in chunks:
                    await self._send_output(writer, decoder, chunk)
            if self.stream and not self.streaming_over.is_set():
                await self._attach(writer)
            self._send_close(writer, websocket.CLOSE_NORMAL)
            with contextlib.suppress(ConnectionError, OSError):
                await writer.drain()
            # Give the client a moment to answer our close, as the RFC asks.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.closed.wait(), 1.0)
        except (ConnectionError, OSError):
            pass
        finally:
            inbound.cancel()
            with contextlib.suppress(BaseException):
                await inbound
            if self.shim_writer is not None:
                self.shim_writer.close()

    async def _attach(self, writer: asyncio.StreamWriter) -> None:
        opening = asyncio.ensure_future(self.containers.open_attach(
            self.cid, self.stdin, self.stdout, self.stderr))
        closed = asyncio.ensure_future(self.streaming_over.wait())
        await asyncio.wait({opening, closed}, return_when=asyncio.FIRST_COMPLETED)
        closed.cancel()
        if not opening.done():
            opening.cancel()
            with contextlib.suppress(BaseException):
                streams = await opening
                if streams is not None:
                    streams[1].close()
            return
        streams = opening.result()
        if streams is None:
            return
        shim_reader, self.shim_writer = streams
        for data in self.stdin_pending:
            self.shim_writer.write(data)
        self.stdin_pending.clear()
        if self.stdin_ended:
            self._end_stdin()
        decoder = None if self.tty else FrameDecoder()
        while True:
            reading = asyncio.ensure_future(shim_reader.read(1 << 16))
            closed = asyncio.ensure_future(self.streaming_over.wait())
            await asyncio.wait({reading, closed}, return_when=asyncio.FIRST_COMPLETED)
            closed.cancel()
            if not reading.done():
                reading.cancel()
                return
            data = reading.result()
            if not data:
                return
            await self._send_output(writer, decoder, data)

    async def _send_output(self, writer: asyncio.StreamWriter, decoder: FrameDecoder | None,
                           data: bytes) -> None:
        if decoder is not None:
            data = b"".join(payload for _, payload in decoder.feed(data))
        if data and not self.close_sent:
            writer.write(websocket.encode_frame(self.opcode, data))
            await writer.drain()

    def _send_close(self, writer: asyncio.StreamWriter, code: int, reason: str = "") -> None:
        if not self.close_sent:
            self.close_sent = True
            with contextlib.suppress(ConnectionError, OSError, RuntimeError):
                writer.write(websocket.encode_frame(websocket.CLOSE,
                                                    websocket.close_payload(code, reason)))

    def _end_stdin(self) -> None:
        self.stdin_ended = True
        if self.shim_writer is not None:
            with contextlib.suppress(OSError, RuntimeError):
                if self.shim_writer.can_write_eof():
                    self.shim_writer.write_eof()

    async def _read_client(self, reader: asyncio.StreamReader,
                           writer: asyncio.StreamWriter) -> None:
        frames = websocket.FrameReader()
        try:
            while True:
                data = await reader.read(1 << 16)
                if not data:
                    break
                try:
                    batch = frames.feed(data)
                except websocket.ProtocolError as exc:
                    self._send_close(writer, exc.code, str(exc))
                    await writer.drain()
                    # The frames cannot be trusted any more: let the client answer the
                    # close (or hang up) before the connection goes, ignoring what it sends.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(_read_until_eof(reader), 1.0)
                    break
                for frame in batch:
                    if frame.opcode == websocket.PING:
                        writer.write(websocket.encode_frame(websocket.PONG, frame.payload))
                    elif frame.opcode == websocket.CLOSE:
                        code = (int.from_bytes(frame.payload[:2], "big")
                                if len(frame.payload) >= 2 else websocket.CLOSE_NORMAL)
                        self._send_close(writer, code)
                        return
                    elif frame.opcode != websocket.PONG and self.stdin and frame.payload:
                        payload, detached = frame.payload, False
                        if self.escape is not None:
                            payload, detached = self.escape.feed(payload)
                        if self.shim_writer is None:
                            self.stdin_pending.append(payload)
                        elif payload:
                            self.shim_writer.write(payload)
                            await self.shim_writer.drain()
                        if detached:
                            # The attach ends (a TTY's stdin stays open); frames are still
                            # read, so the client's answer to our close is seen.
                            self.stdin = False
                            self._end_stdin()
                            self.streaming_over.set()
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._end_stdin()
            self.closed.set()
            self.streaming_over.set()
