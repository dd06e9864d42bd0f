"""A container's filesystem as an image or an archive: ``/commit``,
``/containers/{id}/changes``, ``/containers/{id}/export``, and ``/system/df``.

The container service knows the container (its record, its state, pausing it); the image
service knows its layers (the snapshot key of a container is its ID). These handlers join
the two, so neither service has to import the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from berth import errors
from berth.api.images import stream_from_thread
from berth.http.server import Request, Response, StreamResponse, json_response
from berth.image.config import apply_changes

__all__ = ["merge_config", "register"]


def merge_config(user: dict[str, Any], container: dict[str, Any]) -> dict[str, Any]:
    """Docker's commit ``merge``: what the request (and its changes) set wins; the rest comes
    from the container's config (env by key, ports, labels and volumes as unions)."""
    out = dict(user)
    if not out.get("User"):
        out["User"] = container.get("User") or ""
    ports = dict(container.get("ExposedPorts") or {})
    ports.update(out.get("ExposedPorts") or {})
    out["ExposedPorts"] = ports or None
    env = list(out.get("Env") or [])
    keys = {e.split("=", 1)[0] for e in env}
    env += [e for e in container.get("Env") or [] if e.split("=", 1)[0] not in keys]
    out["Env"] = env or None
    labels = dict(container.get("Labels") or {})
    labels.update(out.get("Labels") or {})
    out["Labels"] = labels
    if not out.get("Entrypoint"):
        if not out.get("Cmd"):
            out["Cmd"] = container.get("Cmd")
            if container.get("ArgsEscaped") is not None:
                out["ArgsEscaped"] = container.get("ArgsEscaped")
        if out.get("Entrypoint") is None:
            out["Entrypoint"] = container.get("Entrypoint")
    if out.get("Healthcheck") is None and container.get("Healthcheck") is not None:
        out["Healthcheck"] = container["Healthcheck"]
    if not out.get("WorkingDir"):
        out["WorkingDir"] = container.get("WorkingDir") or ""
    volumes = dict(container.get("Volumes") or {})
    volumes.update(out.get("Volumes") or {})
    out["Volumes"] = volumes or None
    if not out.get("StopSignal") and container.get("StopSignal"):
        out["StopSignal"] = container["StopSignal"]
    if not out.get("OnBuild") and container.get("OnBuild"):
        out["OnBuild"] = container["OnBuild"]
    return out


def _volume_usage(volumes: Any) -> list[dict[str, Any]]:
    """Each volume with Docker's ``UsageData``: bytes under it and how many containers
    mount it."""
    out = []
    for v in volumes.list():
        v = dict(v)
        v["UsageData"] = {"Size": volumes.usage(v["Name"]),
                          "RefCount": len(volumes.in_use(v["Name"]))}
        out.append(v)
    return out


def _changes_arg(request: Request) -> list[str]:
    out: list[str] = []
    for value in request.query.get("changes", []):
        out.extend(line for line in value.split("\n") if line.strip())
    return out


def register(router: Any, services: Any) -> None:
    images = services.images
    containers = services.containers

    async def record_of(ref: str) -> dict[str, Any]:
        return await asyncio.to_thread(containers.inspect, ref)

    async def changes(request: Request) -> Response:
        record = await record_of(request.params["id"])
        return json_response(await asyncio.to_thread(images.container_changes, record["Id"]))

    async def export(request: Request) -> StreamResponse:
        record = await record_of(request.params["id"])
        key = record["Id"]
        await asyncio.to_thread(images.rootfs_mounts, key)  # a missing snapshot fails now
        return StreamResponse(stream_from_thread(lambda out: images.export_container(key, out)),
                              content_type="application/x-tar")

    async def commit(request: Request) -> Response:
        ref = request.arg("container") or ""
        body = await request.body()
        user: dict[str, Any] = {}
        if body and body.strip() not in (b"", b"null"):
            try:
                parsed = json.loads(body)
            except ValueError:
                raise errors.InvalidArgument("invalid JSON in the commit config") from None
            if isinstance(parsed, dict):
                user = parsed
        record = await record_of(ref)
        user = apply_changes(user, _changes_arg(request))
        container_cfg = record.get("Config") or {}
        config = merge_config(user, container_cfg)
        repo = request.arg("repo") or ""
        tag = request.arg("tag") or ""
        reference = None
        if repo:
            reference = f"{repo}:{tag}" if tag else repo
        elif tag:
            raise errors.InvalidArgument("tag is specified without a repository")
        state = record.get("State") or {}
        pause = request.flag("pause", True) and state.get("Running") and not state.get("Paused")
        paused = False
        if pause and hasattr(containers, "pause"):
            with contextlib.suppress(errors.BerthError):
                await containers.pause(record["Id"])
                paused = True
        try:
            image_id = await asyncio.to_thread(
                images.commit, record["Id"], record["Image"], config,
                container_id=record["Id"], run_config=container_cfg,
                author=request.arg("author") or "", comment=request.arg("comment") or "",
                reference=reference)
        finally:
            if paused:
                with contextlib.suppress(errors.BerthError):
                    await containers.unpause(record["Id"])
        return json_response({"Id": image_id}, status=201)

    async def df(request: Request) -> Response:
        types = request.query.get("type") or None
        listed = await asyncio.to_thread(containers.list, True)
        usage = await asyncio.to_thread(images.disk_usage, listed, types)
        volumes = getattr(services, "volumes", None)
        if "Volumes" in usage and volumes is not None:
            usage["Volumes"] = await asyncio.to_thread(_volume_usage, volumes)
        return json_response(usage)

    router.add("GET", "/containers/{id}/changes", changes)
    router.add("GET", "/containers/{id}/export", export)
    router.add("POST", "/commit", commit)
    router.add("GET", "/system/df", df)
