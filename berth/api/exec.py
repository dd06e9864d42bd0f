"""``/containers/{id}/exec`` and ``/exec/...`` routes: a process run inside a running
container, attached through a hijacked connection like ``attach``."""

from __future__ import annotations

import asyncio
from typing import Any

from berth.api.containers import MULTIPLEXED, RAW, splice
from berth.http.server import Hijack, Request, Response, Router, json_response

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
        info = containers.exec_inspect(exec_id)
        tty = bool(body.get("Tty", info["ProcessConfig"]["tty"]))
        if detach:
            await containers.exec_start(exec_id, detach=True)
            return Response(status=200)
        streams = await containers.exec_start(exec_id, detach=False)
        assert streams is not None

        async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await splice(reader, writer, streams[0], streams[1], info["OpenStdin"])

        return Hijack(run, content_type=RAW if tty else MULTIPLEXED)

    async def resize(request: Request) -> Response:
        await containers.exec_resize(request.params["id"], request.int_arg("h", 0) or 0,
                                     request.int_arg("w", 0) or 0)
        return Response(status=201)

    async def inspect(request: Request) -> Response:
        info = containers.exec_inspect(request.params["id"])
        if info["Running"] is False and info["ExitCode"] is None and info["Pid"]:
            await containers.wait_exec(request.params["id"])
            info = containers.exec_inspect(request.params["id"])
        return json_response(info)

    router.add("POST", "/containers/{id}/exec", create)
    router.add("POST", "/exec/{id}/start", start)
    router.add("POST", "/exec/{id}/resize", resize)
    router.add("GET", "/exec/{id}/json", inspect)
