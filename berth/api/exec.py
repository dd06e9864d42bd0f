"""``/containers/{id}/exec`` and ``/exec/...`` routes: a process run inside a running
container, attached through a hijacked connection like ``attach``."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from berth import errors
from berth.api.containers import MULTIPLEXED, RAW, splice
from berth.http.frames import encode_frame
from berth.http.server import Hijack, Request, Response, Router, json_response
from berth.util.detach import DEFAULT_DETACH_KEYS, EscapeFilter, detach_key_bytes

__all__ = ["register"]


def register(router: Router, services: Any) -> None:
    containers = services.containers

    async def create(request: Request) -> Response:
        body = await request.json(required=True)
        return json_response(await containers.exec_create(request.params["id"], body),
                             status=201)

    async def start(request: Request) -> Response | Hijack:
        body = await request.json() or {}
        exec_id = request.params["id"]
        detach = bool(body.get("Detach"))
        info = containers.exec_check(exec_id)
        tty = bool(body.get("Tty", info["ProcessConfig"]["tty"]))
        if detach:
            await containers.exec_start(exec_id, detach=True)
            return Response(status=200)
        escape = None
        if tty and info["OpenStdin"]:  # dockerd watches a TTY's input for the detach keys
            keys = info.get("DetachKeys") or ""
            escape = EscapeFilter(detach_key_bytes(keys) if keys else DEFAULT_DETACH_KEYS)

        async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            # Docker opens the stream first: a process that cannot start is reported on it
            # (stderr) and through the exec's exit code, which the client inspects next.
            try:
                streams = await containers.exec_start(exec_id, detach=False)
            except errors.BerthError as exc:
                code = exc.exit_code if isinstance(exc, errors.RuntimeFailure) else 126
                containers.exec_failed(exec_id, code)
                text = (f"OCI runtime exec failed: exec failed: {exc.message}: unknown\r\n"
                        .encode())
                writer.write(text if tty else encode_frame(2, text))
                await writer.drain()
                return
            assert streams is not None
            if await splice(reader, writer, streams[0], streams[1], info["OpenStdin"], escape):
                return  # detached: the process runs on
            # The client inspects the exit code as soon as the stream ends: have it first.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(containers.wait_exec(exec_id), 10)

        return Hijack(run, content_type=RAW if tty else MULTIPLEXED)

    async def resize(request: Request) -> Response:
        await containers.exec_resize(request.params["id"], request.int_arg("h", 0) or 0,
                                     request.int_arg("w", 0) or 0)
        return Response(status=201)

    async def inspect(request: Request) -> Response:
        return json_response(containers.exec_inspect(request.params["id"]))

    router.add("POST", "/containers/{id}/exec", create)
    router.add("POST", "/exec/{id}/start", start)
    router.add("POST", "/exec/{id}/resize", resize)
    router.add("GET", "/exec/{id}/json", inspect)
