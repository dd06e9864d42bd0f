"""``/volumes`` routes of the Engine API (local driver)."""

from __future__ import annotations

import asyncio
from typing import Any

from berth import errors
from berth.api.containers import parse_filters
from berth.http.server import Request, Response, Router, json_response

__all__ = ["register"]


def register(router: Router, services: Any) -> None:
    volumes = services.volumes

    async def list_(request: Request) -> Response:
        found = await asyncio.to_thread(volumes.list, parse_filters(request))
        return json_response({"Volumes": found, "Warnings": None})

    async def create(request: Request) -> Response:
        body = await request.json() or {}
        if not isinstance(body, dict):
            raise errors.InvalidArgument("invalid volume create request")
        for key, kind in (("Name", str), ("Driver", str), ("Labels", dict),
                          ("DriverOpts", dict)):
            if body.get(key) is not None and not isinstance(body[key], kind):
                raise errors.InvalidArgument(f"json: cannot unmarshal {type(body[key]).__name__}"
                                             f" into Go struct field CreateOptions.{key}")
        volume, _ = await asyncio.to_thread(volumes.create, body.get("Name") or None,
                                            body.get("Labels"), body.get("DriverOpts"),
                                            body.get("Driver"))
        return json_response(volume, status=201)

    async def inspect(request: Request) -> Response:
        return json_response(await asyncio.to_thread(volumes.inspect, request.params["name"]))

    async def delete(request: Request) -> Response:
        await asyncio.to_thread(volumes.remove, request.params["name"], request.flag("force"))
        return Response(status=204)

    async def prune(request: Request) -> Response:
        return json_response(await asyncio.to_thread(volumes.prune, parse_filters(request)))

    router.add("GET", "/volumes", list_)
    router.add("POST", "/volumes/create", create)
    router.add("POST", "/volumes/prune", prune)
    router.add("GET", "/volumes/{name}", inspect)
    router.add("DELETE", "/volumes/{name}", delete)
