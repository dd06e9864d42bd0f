"""``/containers/{id}/archive``: ``docker cp`` both ways, with the path's stat in
``X-Docker-Container-Path-Stat`` (base64 JSON), as the CLI expects."""

from __future__ import annotations

from typing import Any

from berth import errors
from berth.container.fs import path_stat_header
from berth.http.server import Request, Response, Router, StreamResponse

__all__ = ["register"]

STAT_HEADER = "X-Docker-Container-Path-Stat"


def register(router: Router, services: Any) -> None:
    containers = services.containers

    def path_of(request: Request) -> str:
        path = request.arg("path")
        if not path:
            raise errors.InvalidArgument("path is required")
        return path

    async def head(request: Request) -> Response:
        stat = await containers.archive_stat(request.params["id"], path_of(request))
        return Response(status=200, headers=[(STAT_HEADER, path_stat_header(stat))])

    async def get(request: Request) -> StreamResponse:
        stat, chunks = await containers.archive_get(request.params["id"], path_of(request))
        return StreamResponse(chunks, content_type="application/x-tar",
                              headers=[(STAT_HEADER, path_stat_header(stat))])

    async def put(request: Request) -> Response:
        await containers.archive_put(request.params["id"], path_of(request), request.stream(),
                                     request.flag("noOverwriteDirNonDir"),
                                     request.flag("copyUIDGID"))
        return Response(status=200)

    router.add("HEAD", "/containers/{id}/archive", head)
    router.add("GET", "/containers/{id}/archive", get)
    router.add("PUT", "/containers/{id}/archive", put)
