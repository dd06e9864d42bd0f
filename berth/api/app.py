"""The Engine API v1.44 application: routes over the services, and the one error → status map.

Handlers live in one module per resource (``system``, ``containers``, ``images``); each exposes
``register(router, services)``. They parse the request, call a service, and shape the answer;
they hold no state. Errors raised anywhere below arrive here as ``berth.errors`` kinds and are
translated once, in :func:`error_response`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from berth import API_VERSION, MIN_API_VERSION, errors
from berth.http.server import Request, Response, Router

__all__ = ["Services", "build_router", "error_response"]

log = logging.getLogger("berth.api")

_STATUS: list[tuple[type[BaseException], int]] = [
    (errors.NotFound, 404),
    (errors.AlreadyExists, 409),
    (errors.Conflict, 409),
    (errors.InvalidArgument, 400),
    (errors.FailedPrecondition, 409),
    (errors.PermissionDenied, 403),
    (errors.Unavailable, 503),
    (errors.NotImplementedYet, 501),
    (errors.RuntimeFailure, 500),
]


@dataclass
class Services:
    """What the handlers may use; the daemon builds it and nothing else wires services."""

    containers: Any
    images: Any
    info: Any
    volumes: Any = None
    events: Any = None


def error_response(exc: BaseException) -> Response:
    status = getattr(exc, "status", None)
    if status is None:
        status = 500
        for kind, code in _STATUS:
            if isinstance(exc, kind):
                status = code
                break
    if isinstance(exc, errors.RuntimeFailure) and exc.exit_code in (126, 127):
        status = 400
    if isinstance(exc, errors.BerthError):
        message = exc.message
    else:
        log.error("internal error", exc_info=exc)
        message = f"internal error: {type(exc).__name__}: {exc}"
    return Response(status=status, body=json.dumps({"message": message}).encode() + b"\n")


def _version_tuple(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    return int(major), int(minor)


def check_api_version(request: Request) -> None:
    if request.api_version is None:
        return
    version = _version_tuple(request.api_version)
    if version > _version_tuple(API_VERSION):
        raise errors.InvalidArgument(
            f"client version {request.api_version} is too new. Maximum supported API version "
            f"is {API_VERSION}")
    if version < _version_tuple(MIN_API_VERSION):
        raise errors.InvalidArgument(
            f"client version {request.api_version} is too old. Minimum supported API version "
            f"is {MIN_API_VERSION}, please upgrade your client to a newer version")


class VersionedRouter(Router):
    """Checks the ``/vX.Y`` prefix once, before any handler runs."""

    def add(self, method: str, template: str, handler: Any) -> None:
        async def checked(request: Request) -> Any:
            check_api_version(request)
            return await handler(request)

        super().add(method, template, checked)


def build_router(services: Services) -> Router:
    from berth.api import archive, commit, containers, events, images, system, volumes
    from berth.api import exec as exec_routes

    router = VersionedRouter()
    system.register(router, services)
    containers.register(router, services)
    exec_routes.register(router, services)
    archive.register(router, services)
    images.register(router, services)
    commit.register(router, services)
    if services.volumes is not None:
        volumes.register(router, services)
    if services.events is not None:
        events.register(router, services)
    return router
