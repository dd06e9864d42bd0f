"""``/containers/...`` routes of the Engine API."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

from berth import errors
from berth.http.server import Hijack, Request, Response, Router, StreamResponse, json_response

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


async def splice(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter,
                 shim_reader: asyncio.StreamReader, shim_writer: asyncio.StreamWriter,
                 stdin: bool) -> None:
    """Join a hijacked client to a shim stream until the output ends or the client leaves.

    The client's half-close travels on to the shim (that is how a piped stdin reaches EOF);
    without stdin the client's side is not read, so a client that half-closes early still
    gets all the output.
    """
    inbound = (asyncio.ensure_future(_pump(client_reader, shim_writer, half_close=True))
               if stdin else None)
    try:
        await _pump(shim_reader, client_writer, half_close=False)
    finally:
        if inbound is not None:
            inbound.cancel()
        shim_writer.close()
        with contextlib.suppress(Exception):
            await client_writer.drain()


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
            await splice(reader, writer, streams[0], streams[1], stdin)

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

    async def attach_ws(request: Request) -> Hijack:
        """The websocket form: a handshake, then raw bytes in binary frames both ways."""
        record = await asyncio.to_thread(containers.attach_target, request.params["id"])
        cid = record["Id"]
        key = request.headers.get("sec-websocket-key", "")
        accept = base64.b64encode(hashlib.sha1(
            (key + "258EAFA5-E914-47DA-95CA-C5AB0DC11B85").encode()).digest()).decode()
        stdin = request.flag("stdin")
        stdout = request.arg("stdout") is None or request.flag("stdout")
        stderr = request.arg("stderr") is None or request.flag("stderr")

        async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if request.flag("logs"):
                _, chunks = await containers.logs(cid, stdout=stdout, stderr=stderr)
                async for chunk in chunks:
                    writer.write(_ws_frame(_strip_frames(chunk, record)))
            if request.arg("stream") is not None and not request.flag("stream"):
                return
            streams = await containers.open_attach(cid, stdin, stdout, stderr)
            if streams is None:
                return
            shim_reader, shim_writer = streams
            tty = bool(record["Config"].get("Tty"))

            async def inbound() -> None:
                with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
                    while True:
                        payload = await _ws_read(reader)
                        if payload is None:
                            break
                        shim_writer.write(payload)
                        await shim_writer.drain()

            task = asyncio.ensure_future(inbound()) if stdin else None
            try:
                while True:
                    data = await shim_reader.read(65536)
                    if not data:
                        break
                    writer.write(_ws_frame(data if tty else _strip_frames(data, record)))
                    await writer.drain()
            except ConnectionError:
                pass
            finally:
                if task is not None:
                    task.cancel()
                shim_writer.close()

        return Hijack(run, headers=[("Sec-WebSocket-Accept", accept)])

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


def _strip_frames(data: bytes, record: dict[str, Any]) -> bytes:
    """Multiplexed frames to their payloads (websocket clients get raw output)."""
    if record["Config"].get("Tty"):
        return data
    out = bytearray()
    view = memoryview(data)
    while len(view) >= 8:
        size = int.from_bytes(view[4:8], "big")
        out += view[8:8 + size]
        view = view[8 + size:]
    return bytes(out)


def _ws_frame(payload: bytes) -> bytes:
    """One unmasked binary websocket frame (server to client)."""
    size = len(payload)
    if size < 126:
        header = bytes([0x82, size])
    elif size < 1 << 16:
        header = bytes([0x82, 126]) + size.to_bytes(2, "big")
    else:
        header = bytes([0x82, 127]) + size.to_bytes(8, "big")
    return header + payload


async def _ws_read(reader: asyncio.StreamReader) -> bytes | None:
    """The payload of the client's next data frame; None on a close frame."""
    head = await reader.readexactly(2)
    opcode = head[0] & 0x0F
    size = head[1] & 0x7F
    if size == 126:
        size = int.from_bytes(await reader.readexactly(2), "big")
    elif size == 127:
        size = int.from_bytes(await reader.readexactly(8), "big")
    mask = await reader.readexactly(4) if head[1] & 0x80 else b"\0\0\0\0"
    payload = bytearray(await reader.readexactly(size))
    for i in range(size):
        payload[i] ^= mask[i % 4]
    if opcode == 0x8:
        return None
    return bytes(payload)
