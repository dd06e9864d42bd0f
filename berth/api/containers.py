"""``/containers/...`` routes of the Engine API."""

from __future__ import annotations

import asyncio
import contextlib
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
            data = await src.read(65536)
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
        result = await asyncio.to_thread(
            containers.list, request.flag("all"), request.int_arg("limit"),
            parse_filters(request))
        return json_response(result)

    async def inspect(request: Request) -> Response:
        record = await asyncio.to_thread(containers.inspect, request.params["id"])
        return json_response(record)

    async def start(request: Request) -> Response:
        started = await containers.start(request.params["id"])
        return Response(status=204 if started else 304)

    async def stop(request: Request) -> Response:
        stopped = await containers.stop(request.params["id"], request.int_arg("t"),
                                        request.arg("signal"))
        return Response(status=204 if stopped else 304)

    async def restart(request: Request) -> Response:
        cid = request.params["id"]
        await containers.stop(cid, request.int_arg("t"), request.arg("signal"))
        await containers.start(cid)
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

    router.add("POST", "/containers/{id}/attach", attach)
    router.add("POST", "/containers/{id}/resize", resize)
