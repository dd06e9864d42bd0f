"""``/images/...`` routes of the Engine API."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import tempfile
import threading
from collections.abc import AsyncIterator, Callable
from typing import IO, Any

from berth import errors
from berth.api.containers import parse_filters
from berth.http.server import Request, Response, Router, StreamResponse, json_response

__all__ = ["register"]

SPOOL_CHUNK = 1 << 20


async def spool_body(request: Request, directory: str) -> IO[bytes]:
    """The request body in an unlinked temp file, so a sync service can read it at its pace.

    Writes happen in a worker thread; the file is gone from the directory from the start, so
    nothing is left behind whatever happens to the request.
    """
    os.makedirs(directory, exist_ok=True)
    spool = tempfile.TemporaryFile(dir=directory)
    try:
        buffered: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            buffered.append(chunk)
            size += len(chunk)
            if size >= SPOOL_CHUNK:
                await asyncio.to_thread(spool.write, b"".join(buffered))
                buffered, size = [], 0
        if buffered:
            await asyncio.to_thread(spool.write, b"".join(buffered))
        spool.seek(0)
        return spool
    except BaseException:
        spool.close()
        raise


class _QueueWriter:
    """A file-like ``write`` for a worker thread: coalesces into big chunks and hands them to
    the event loop through a bounded queue (backpressure); fails once the reader is gone."""

    def __init__(self, q: queue.Queue[Any], gone: threading.Event) -> None:
        self._q = q
        self._gone = gone
        self._buf: list[bytes] = []
        self._size = 0

    def write(self, data: bytes) -> int:
        self._buf.append(bytes(data))
        self._size += len(data)
        if self._size >= SPOOL_CHUNK:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if not self._buf:
            return
        chunk = b"".join(self._buf)
        self._buf, self._size = [], 0
        self.put(chunk)

    def put(self, item: Any) -> None:
        while True:
            if self._gone.is_set():
                raise BrokenPipeError("the client went away")
            try:
                self._q.put(item, timeout=0.2)
                return
            except queue.Full:
                continue


_END = object()


def stream_from_thread(produce: Callable[[Any], None]) -> AsyncIterator[bytes]:
    """Run ``produce(writer)`` in a worker thread and yield what it writes, so a sync service
    can stream a big body (save, export) without holding it in memory."""
    q: queue.Queue[Any] = queue.Queue(maxsize=8)
    gone = threading.Event()
    writer = _QueueWriter(q, gone)

    def run() -> None:
        try:
            produce(writer)
            writer.flush()
            writer.put(_END)
        except BaseException as e:  # handed to the reader, which raises it
            if not gone.is_set():
                try:
                    writer.put(e)
                except BrokenPipeError:
                    pass

    async def chunks() -> AsyncIterator[bytes]:
        worker = asyncio.ensure_future(asyncio.to_thread(run))
        try:
            while True:
                item = await asyncio.to_thread(q.get)
                if item is _END:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            gone.set()
            while True:  # unblock a producer waiting on a full queue
                try:
                    q.get_nowait()
                except queue.Empty:
                    break
            await asyncio.shield(worker)

    return chunks()


def _messages(items: list[dict[str, Any]]) -> AsyncIterator[bytes]:
    async def chunks() -> AsyncIterator[bytes]:
        for item in items:
            yield json.dumps(item).encode() + b"\r\n"

    return chunks()


def register(router: Router, services: Any) -> None:
    images = services.images
    spool_dir = os.path.join(services.info["data_root"], "tmp")

    async def list_(request: Request) -> Response:
        result = await asyncio.to_thread(images.list, request.flag("all"),
                                         parse_filters(request), request.flag("shared-size"))
        return json_response(result)

    async def inspect(request: Request) -> Response:
        return json_response(await asyncio.to_thread(images.inspect, request.params["name"]))

    async def history(request: Request) -> Response:
        return json_response(await asyncio.to_thread(images.history, request.params["name"]))

    async def load(request: Request) -> StreamResponse:
        quiet = request.flag("quiet")
        spool = await spool_body(request, spool_dir)
        try:
            messages = await asyncio.to_thread(lambda: list(images.load(spool, quiet)))
        finally:
            spool.close()
        return StreamResponse(_messages(messages))

    async def create(request: Request) -> StreamResponse:
        source = request.arg("fromSrc")
        if source is None:
            image = request.arg("fromImage") or ""
            tag = request.arg("tag") or ""
            await request.drain()
            name = f"{image}:{tag}" if tag and ":" not in image.rsplit("/", 1)[-1] else image
            raise errors.NotImplementedYet(
                f"cannot pull {name}: this berthd has no registry client yet; load images with "
                "`docker load` or `docker import`")
        if source != "-":
            raise errors.NotImplementedYet("import from a URL is not supported; send the "
                                           "archive in the request body (fromSrc=-)")
        repo = request.arg("repo") or ""
        tag = request.arg("tag") or ""
        reference = None
        if repo:
            reference = f"{repo}:{tag}" if tag else repo
        changes = request.query.get("changes", [])
        message = request.arg("message") or ""
        spool = await spool_body(request, spool_dir)
        try:
            image_id = await asyncio.to_thread(images.import_rootfs, spool, reference, changes,
                                               message)
        finally:
            spool.close()
        return StreamResponse(_messages([{"status": image_id}]))

    async def tag(request: Request) -> Response:
        await asyncio.to_thread(images.tag, request.params["name"], request.arg("repo") or "",
                                request.arg("tag") or "")
        return Response(status=201)

    async def delete(request: Request) -> Response:
        result = await asyncio.to_thread(images.delete, request.params["name"],
                                         request.flag("force"), not request.flag("noprune"))
        return json_response(result)

    async def save_one(request: Request) -> StreamResponse:
        return await _save([request.params["name"]])

    async def save_many(request: Request) -> StreamResponse:
        return await _save(request.query.get("names", []))

    async def _save(names: list[str]) -> StreamResponse:
        plan = await asyncio.to_thread(images.save_plan, names)
        return StreamResponse(stream_from_thread(lambda out: images.save(plan, out)),
                              content_type="application/x-tar")

    async def prune(request: Request) -> Response:
        filters = parse_filters(request)
        return json_response(await asyncio.to_thread(images.prune, filters))

    router.add("GET", "/images/json", list_)
    router.add("POST", "/images/prune", prune)
    router.add("GET", "/images/get", save_many)
    router.add("GET", "/images/{name*}/get", save_one)
    router.add("POST", "/images/load", load)
    router.add("POST", "/images/create", create)
    router.add("GET", "/images/{name*}/json", inspect)
    router.add("GET", "/images/{name*}/history", history)
    router.add("POST", "/images/{name*}/tag", tag)
    router.add("DELETE", "/images/{name*}", delete)

