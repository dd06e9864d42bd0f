"""The container service: create, start, attach, wait, logs, stop, kill, remove, restore.

A container is two things kept apart: a *record* (its config and last known state, a row in the
metadata store, shaped as ``docker inspect`` shows it) and, while it runs, a *task* owned by its
shim (a separate process that outlives the daemon). The service is the shim's client: it asks
the launcher for a shim at start, watches it with a ``wait`` call, and on restart reconnects.

Lifecycle of the state kept here::

    created --start--> running --exit--> exited --start--> running ...
       \\________________________ remove ________________________/--> (gone)
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import json
import logging
import os
import shutil
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from berth import errors
from berth.container import spec as specs
from berth.container.names import random_name, validate_name
from berth.container.shim_client import LauncherClient, ShimClient, ShimGone
from berth.container.signals import parse_signal
from berth.http.frames import encode_frame
from berth.util import atomic_write, new_id, read_json, rfc3339_nano
from berth.util.humanize import human_duration

__all__ = ["ContainerService"]

log = logging.getLogger("berth.container")

ZERO_TIME = "0001-01-01T00:00:00Z"


def _parse_time(text: str) -> float:
    """RFC 3339 (nanoseconds allowed) to a unix time; the zero time is 0."""
    if not text or text.startswith("0001-"):
        return 0.0
    main, _, frac = text.rstrip("Z").partition(".")
    base = dt.datetime.strptime(main, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.UTC).timestamp()
    return base + (float("0." + frac) if frac else 0.0)


def _check_types(body: dict[str, Any]) -> None:
    """Refuse wrongly typed fields with a message naming them, as Docker's decoder does."""
    expected: dict[str, tuple[type, ...]] = {
        "Hostname": (str,), "Domainname": (str,), "User": (str,), "AttachStdin": (bool,),
        "AttachStdout": (bool,), "AttachStderr": (bool,), "Tty": (bool,), "OpenStdin": (bool,),
        "StdinOnce": (bool,), "Env": (list, type(None)), "Cmd": (list, str, type(None)),
        "Entrypoint": (list, str, type(None)), "Image": (str,), "WorkingDir": (str,),
        "Labels": (dict, type(None)), "HostConfig": (dict, type(None)),
        "StopSignal": (str,), "StopTimeout": (int, type(None)),
        "ExposedPorts": (dict, type(None)), "Volumes": (dict, type(None)),
        "NetworkingConfig": (dict, type(None)),
    }
    for key, types in expected.items():
        if key in body and not isinstance(body[key], types):
            raise errors.InvalidArgument(
                f"json: cannot unmarshal {type(body[key]).__name__} into Go struct field "
                f"ContainerConfig.{key}")
        if key in ("Env", "Cmd", "Entrypoint") and isinstance(body.get(key), list) and not all(
                isinstance(v, str) for v in body[key]):
            raise errors.InvalidArgument(f"json: cannot unmarshal non-string into Go struct "
                                         f"field ContainerConfig.{key} of type string")
    for key, value in (body.get("Labels") or {}).items():
        if not isinstance(value, str):
            raise errors.InvalidArgument(f"json: label {key!r} must be a string")


@dataclass
class _Live:
    """What the daemon keeps in memory for one container, beside its record."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    next_exit: list[asyncio.Future[dict[str, Any]]] = field(default_factory=list)
    removed: list[asyncio.Future[dict[str, Any]]] = field(default_factory=list)
    pending_attach: list[tuple[dict[str, bool], asyncio.Future[Any]]] = field(
        default_factory=list)
    monitor: asyncio.Task[None] | None = None
    last_status: dict[str, Any] = field(default_factory=lambda: {"StatusCode": 0,
                                                                  "Error": None})


class ContainerService:
    def __init__(self, data_root: str, exec_root: str, db: Any, images: Any) -> None:
        self.data_root = data_root
        self.exec_root = exec_root
        self.db = db
        self.images = images
        self.launcher = LauncherClient(exec_root)
        self._live: dict[str, _Live] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- records ---------------------------------------------------------------------------

    def _live_for(self, cid: str) -> _Live:
        live = self._live.get(cid)
        if live is None:
            live = self._live[cid] = _Live()
        return live

    def _record(self, ref: str) -> dict[str, Any]:
        row = self.db.find_container(ref)
        return _record_of(row)

    async def _save(self, record: dict[str, Any]) -> None:
        await asyncio.to_thread(self.db.update_container, record["Id"], record)

    def _container_dir(self, cid: str) -> str:
        return os.path.join(self.data_root, "containers", cid)

    def _state_dir(self, cid: str) -> str:
        return os.path.join(self.exec_root, "containers", cid)

    def _spawn_task(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- create ------------------------------------------------------------------------------

    async def create(self, body: Any, name: str | None) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise errors.InvalidArgument("config cannot be empty in order to create a container")
        _check_types(body)
        image_ref = body.get("Image") or ""
        if not image_ref:
            raise errors.InvalidArgument("No image specified")
        image = await asyncio.to_thread(self.images.resolve, image_ref)
        host_config = dict(body.get("HostConfig") or {})
        config = {k: v for k, v in body.items() if k not in ("HostConfig", "NetworkingConfig")}
        merged = specs.merge_image_config(config, image.config.get("config") or {})
        cid = new_id()
        merged.setdefault("Hostname", "")
        if not merged["Hostname"]:
            merged["Hostname"] = cid[:12]
        merged["Image"] = image_ref
        for key, default in (("Domainname", ""), ("AttachStdin", False), ("AttachStdout", False),
                             ("AttachStderr", False), ("Tty", False), ("OpenStdin", False),
                             ("StdinOnce", False), ("OnBuild", None)):
            merged.setdefault(key, default)
        argv = specs.command_line(merged)
        container_dir = self._container_dir(cid)
        host_config.setdefault("NetworkMode", "default")
        host_config.setdefault("LogConfig", {"Type": "json-file", "Config": {}})
        host_config.setdefault("RestartPolicy", {"Name": "no", "MaximumRetryCount": 0})
        host_config.setdefault("AutoRemove", False)
        record: dict[str, Any] = {
            "Id": cid,
            "Created": rfc3339_nano(),
            "Path": argv[0],
            "Args": argv[1:],
            "State": {"Status": "created", "Running": False, "Paused": False,
                      "Restarting": False, "OOMKilled": False, "Dead": False, "Pid": 0,
                      "ExitCode": 0, "Error": "", "StartedAt": ZERO_TIME,
                      "FinishedAt": ZERO_TIME},
            "Image": image.id,
            "ResolvConfPath": os.path.join(container_dir, "resolv.conf"),
            "HostnamePath": os.path.join(container_dir, "hostname"),
            "HostsPath": os.path.join(container_dir, "hosts"),
            "LogPath": os.path.join(container_dir, f"{cid}-json.log"),
            "Name": "",
            "RestartCount": 0,
            "Driver": "overlay2",
            "Platform": "linux",
            "MountLabel": "",
            "ProcessLabel": "",
            "AppArmorProfile": "",
            "ExecIDs": None,
            "HostConfig": host_config,
            "GraphDriver": {"Name": "overlay2", "Data": None},
            "Mounts": [],
            "Config": merged,
            "NetworkSettings": {"Bridge": "", "SandboxID": "", "HairpinMode": False,
                                "Ports": {}, "SandboxKey": "", "Networks": {}},
        }
        os.makedirs(container_dir, mode=0o710, exist_ok=True)
        try:
            mounts = await asyncio.to_thread(self.images.prepare_rootfs, cid, image.id)
            record["GraphDriver"]["Data"] = _graph_data(mounts)
            await self._insert(record, name)
        except BaseException:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.images.remove_rootfs, cid)
            shutil.rmtree(container_dir, ignore_errors=True)
            raise
        return {"Id": cid, "Warnings": []}

    async def _insert(self, record: dict[str, Any], name: str | None) -> None:
        if name:
            record["Name"] = "/" + validate_name(name)
            await asyncio.to_thread(self.db.put_container, record["Id"], record["Name"][1:],
                                    record["Image"], record["Id"], record["Created"], record)
            return
        for attempt in range(20):
            record["Name"] = "/" + random_name(attempt)
            try:
                await asyncio.to_thread(self.db.put_container, record["Id"], record["Name"][1:],
                                        record["Image"], record["Id"], record["Created"], record)
                return
            except errors.AlreadyExists:
                continue
        raise errors.Conflict("could not find a free container name")

    # -- start ---------------------------------------------------------------------------------

    async def start(self, ref: str) -> bool:
        """Start the container; False when it was running already (HTTP 304)."""
        record = self._record(ref)
        cid = record["Id"]
        live = self._live_for(cid)
        async with live.lock:
            record = self._record(cid)
            if record["State"]["Running"]:
                return False
            try:
                await self._start_locked(record, live)
            except errors.BerthError as exc:
                record["State"]["Error"] = exc.message
                if isinstance(exc, errors.RuntimeFailure):
                    record["State"]["ExitCode"] = exc.exit_code
                await self._save(record)
                self._fail_pending_attaches(live)
                if record["HostConfig"].get("AutoRemove"):
                    self._spawn_task(self._auto_remove(cid))
                raise
        return True

    async def _start_locked(self, record: dict[str, Any], live: _Live) -> None:
        cid = record["Id"]
        config = record["Config"]
        began = time.perf_counter()
        mounts = await asyncio.to_thread(self.images.rootfs_mounts, cid)
        self._write_container_files(record)
        state_dir = self._state_dir(cid)
        shutil.rmtree(state_dir, ignore_errors=True)
        os.makedirs(os.path.join(state_dir, "rootfs"), mode=0o711)
        spec = specs.build_spec(record, rootfs=os.path.join(state_dir, "rootfs"),
                                hostname_path=record["HostnamePath"],
                                hosts_path=record["HostsPath"],
                                resolv_path=record["ResolvConfPath"])
        atomic_write(os.path.join(state_dir, "config.json"), json.dumps(spec).encode(),
                     durable=False)
        prepared = time.perf_counter()
        try:
            reply = await self.launcher.spawn({
                "id": cid, "bundle": state_dir, "state_dir": state_dir,
                "log_path": record["LogPath"], "stdin": bool(config.get("OpenStdin")),
                "tty": bool(config.get("Tty")), "rootfs_mounts": mounts,
            })
        except errors.RuntimeFailure as exc:
            shutil.rmtree(state_dir, ignore_errors=True)
            raise errors.RuntimeFailure(
                "failed to create task for container: OCI runtime create failed: "
                f"{exc.message}: unknown", exc.exit_code) from None
        spawned = time.perf_counter()
        shim = ShimClient(state_dir)
        try:
            await self._connect_pending_attaches(shim, live)
            await shim.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await shim.kill(9)
                await shim.wait()
            await shim.shutdown()
            shutil.rmtree(state_dir, ignore_errors=True)
            raise
        state = record["State"]
        state.update({"Status": "running", "Running": True, "Paused": False,
                      "Restarting": False, "OOMKilled": False, "Dead": False,
                      "Pid": int(reply.get("init_pid") or 0), "ExitCode": 0, "Error": "",
                      "StartedAt": rfc3339_nano(), "FinishedAt": ZERO_TIME})
        await self._save(record)
        live.monitor = self._spawn_task(self._monitor(cid, shim))
        log.debug("started %s: prepare %.1f ms, spawn %.1f ms, start+save %.1f ms", cid[:12],
                  (prepared - began) * 1000, (spawned - prepared) * 1000,
                  (time.perf_counter() - spawned) * 1000)

    def _write_container_files(self, record: dict[str, Any]) -> None:
        config = record["Config"]
        hostname = config.get("Hostname") or record["Id"][:12]
        atomic_write(record["HostnamePath"], f"{hostname}\n".encode(), durable=False)
        hosts = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                 "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n"
                 "ff02::2\tip6-allrouters\n")
        atomic_write(record["HostsPath"], hosts.encode(), durable=False)
        atomic_write(record["ResolvConfPath"], _resolv_conf().encode(), durable=False)

    # -- attach ---------------------------------------------------------------------------------

    def attach_target(self, ref: str) -> dict[str, Any]:
        """The record to attach to. A container that is not running is attached at its next
        start, as Docker does (``docker start -a`` attaches first, then starts)."""
        return self._record(ref)

    async def resize(self, ref: str, height: int, width: int) -> None:
        record = self._record(ref)
        if not record["State"]["Running"]:
            raise errors.Conflict(f"Container {record['Id']} is not running")
        if height < 0 or width < 0 or height > 65535 or width > 65535:
            raise errors.InvalidArgument(f"invalid terminal size {height}x{width}")
        await ShimClient(self._state_dir(record["Id"])).request("resize", height=height,
                                                                width=width)

    async def open_attach(self, cid: str, stdin: bool, stdout: bool,
                          stderr: bool) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """The shim's attach stream, waiting for the start if the container is only created."""
        record = self._record(cid)
        options = {"stdin": stdin and bool(record["Config"].get("OpenStdin")),
                   "stdout": stdout, "stderr": stderr,
                   "stdin_once": bool(record["Config"].get("StdinOnce"))}
        live = self._live_for(cid)
        if record["State"]["Running"]:
            with contextlib.suppress(ShimGone):
                return await ShimClient(self._state_dir(cid)).attach(**options)
            return None
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        live.pending_attach.append((options, future))
        try:
            return await future
        finally:
            with contextlib.suppress(ValueError):
                live.pending_attach.remove((options, future))

    async def _connect_pending_attaches(self, shim: ShimClient, live: _Live) -> None:
        for options, future in list(live.pending_attach):
            if future.done():
                continue
            streams = await shim.attach(**options)
            if future.done():
                streams[1].close()
            else:
                future.set_result(streams)
        live.pending_attach.clear()

    def _fail_pending_attaches(self, live: _Live) -> None:
        for _, future in live.pending_attach:
            if not future.done():
                future.set_result(None)
        live.pending_attach.clear()

    # -- exit, wait ------------------------------------------------------------------------------

    async def _monitor(self, cid: str, shim: ShimClient) -> None:
        try:
            result = await shim.wait()
        except ShimGone:
            result = _read_exit_file(shim.state_dir) or {"exit_code": 255,
                                                          "error": "the shim is gone"}
        except asyncio.CancelledError:
            return
        await self._on_exit(cid, result)

    async def _on_exit(self, cid: str, result: dict[str, Any]) -> None:
        live = self._live_for(cid)
        async with live.lock:
            try:
                record = self._record(cid)
            except errors.NotFound:
                return
            code = int(result.get("exit_code") if result.get("exit_code") is not None else 255)
            state = record["State"]
            state.update({"Status": "exited", "Running": False, "Paused": False, "Pid": 0,
                          "ExitCode": code, "OOMKilled": bool(result.get("oom_killed")),
                          "FinishedAt": result.get("finished_at") or rfc3339_nano(),
                          "Error": result.get("error") or ""})
            await self._save(record)
            live.monitor = None
            status = {"StatusCode": code, "Error": None}
            live.last_status = status
            for future in live.next_exit:
                if not future.done():
                    future.set_result(status)
            live.next_exit.clear()
            state_dir = self._state_dir(cid)
            await ShimClient(state_dir).shutdown()
            shutil.rmtree(state_dir, ignore_errors=True)
        if record["HostConfig"].get("AutoRemove"):
            await self._auto_remove(cid)

    async def _auto_remove(self, cid: str) -> None:
        with contextlib.suppress(errors.NotFound, errors.Conflict):
            await self.remove(cid, force=True)

    async def wait(self, ref: str, condition: str = "not-running") -> Callable[[], Any]:
        """Resolve the container now (so a missing one is a 404 before headers go out) and
        return the coroutine function that waits for the condition."""
        if condition not in ("not-running", "next-exit", "removed", ""):
            raise errors.InvalidArgument(f"invalid condition: {condition!r}")
        record = self._record(ref)
        cid = record["Id"]
        live = self._live_for(cid)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[dict[str, Any]] = loop.create_future()
        if condition == "removed":
            live.removed.append(future)
        elif condition == "next-exit" or record["State"]["Running"]:
            live.next_exit.append(future)
        else:
            future.set_result({"StatusCode": record["State"]["ExitCode"], "Error": None})

        async def wait_result() -> dict[str, Any]:
            try:
                return await future
            finally:
                for waiters in (live.next_exit, live.removed):
                    with contextlib.suppress(ValueError):
                        waiters.remove(future)

        return wait_result

    # -- stop, kill ------------------------------------------------------------------------------

    async def kill(self, ref: str, signal: str | None = None) -> None:
        record = self._record(ref)
        sig = parse_signal(signal, default=9)
        if not record["State"]["Running"]:
            raise errors.Conflict(f"Cannot kill container: {ref}: Container {record['Id']} is "
                                  "not running")
        try:
            await ShimClient(self._state_dir(record["Id"])).kill(sig)
        except ShimGone:
            raise errors.Conflict(f"Cannot kill container: {ref}: Container {record['Id']} is "
                                  "not running") from None

    async def stop(self, ref: str, timeout: int | None = None, signal: str | None = None) -> bool:
        """Stop signal, then SIGKILL after the timeout; False when it was not running (304)."""
        record = self._record(ref)
        cid = record["Id"]
        if not record["State"]["Running"]:
            return False
        config = record["Config"]
        sig = parse_signal(signal or config.get("StopSignal") or "SIGTERM")
        if timeout is None:
            timeout = config.get("StopTimeout")
        if timeout is None:
            timeout = 10
        live = self._live_for(cid)
        exited: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        live.next_exit.append(exited)
        shim = ShimClient(self._state_dir(cid))
        try:
            with contextlib.suppress(ShimGone, errors.Conflict):
                await shim.kill(sig)
            if timeout < 0:
                await exited
                return True
            try:
                await asyncio.wait_for(asyncio.shield(exited), timeout)
            except TimeoutError:
                with contextlib.suppress(ShimGone, errors.Conflict):
                    await shim.kill(9, all_processes=True)
                await exited
        finally:
            with contextlib.suppress(ValueError):
                live.next_exit.remove(exited)
        return True

    # -- remove ------------------------------------------------------------------------------

    async def remove(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        record = self._record(ref)
        cid = record["Id"]
        live = self._live_for(cid)
        if record["State"]["Running"]:
            if not force:
                raise errors.Conflict(
                    f'cannot remove container "{record["Name"]}": container is running: stop '
                    "the container before removing or force remove")
            await self.stop(cid, timeout=0, signal="SIGKILL")
        async with live.lock:
            try:
                record = self._record(cid)
            except errors.NotFound:
                return
            if record["State"]["Running"]:
                raise errors.Conflict(f"container {cid} is still running")
            state_dir = self._state_dir(cid)
            await ShimClient(state_dir).shutdown()
            shutil.rmtree(state_dir, ignore_errors=True)
            await asyncio.to_thread(self.images.remove_rootfs, cid)
            await asyncio.to_thread(self.db.delete_container, cid)
            shutil.rmtree(self._container_dir(cid), ignore_errors=True)
            self._fail_pending_attaches(live)
            for future in live.removed + live.next_exit:
                if not future.done():
                    future.set_result(live.last_status)
            self._live.pop(cid, None)

    # -- inspect, list ------------------------------------------------------------------------

    def inspect(self, ref: str) -> dict[str, Any]:
        return self._record(ref)

    def list(self, all: bool = False, limit: int | None = None,
             filters: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
        records = [_record_of(row) for row in self.db.list_containers()]
        records.sort(key=lambda r: r["Created"], reverse=True)
        if not all and not limit:
            records = [r for r in records if r["State"]["Running"]]
        records = [r for r in records if _matches(r, filters or {})]
        if limit and limit > 0:
            records = records[:limit]
        return [_summary(r) for r in records]

    # -- logs -----------------------------------------------------------------------------------

    async def logs(self, ref: str, *, stdout: bool, stderr: bool, follow: bool = False,
                   tail: str | None = None, timestamps: bool = False, since: float = 0,
                   until: float = 0) -> tuple[bool, AsyncIterator[bytes]]:
        """(tty, chunks): raw bytes for a TTY container, multiplexed frames otherwise."""
        record = self._record(ref)
        if not (stdout or stderr):
            raise errors.InvalidArgument("You must choose at least one stream")
        tty = bool(record["Config"].get("Tty"))
        cid = record["Id"]
        path = record["LogPath"]
        tail_n = -1
        if tail not in (None, "", "all"):
            try:
                tail_n = int(tail)
            except ValueError:
                raise errors.InvalidArgument(f"invalid tail value: {tail!r}") from None

        def render(entry: dict[str, Any]) -> bytes | None:
            stream = entry.get("stream")
            if (stream == "stdout" and not stdout) or (stream == "stderr" and not stderr):
                return None
            when = entry.get("time", "")
            if since or until:
                t = _parse_time(when)
                if (since and t < since) or (until and t > until):
                    return None
            text = entry.get("log", "").encode("utf-8", "surrogateescape")
            if timestamps:
                text = when.encode() + b" " + text
            if tty:
                return text
            return encode_frame(2 if stream == "stderr" else 1, text)

        async def chunks() -> AsyncIterator[bytes]:
            try:
                f = open(path, "rb")
            except FileNotFoundError:
                if not follow:
                    return
                f = None
            try:
                if f is not None:
                    lines = f.readlines() if tail_n < 0 else collections.deque(f, maxlen=tail_n)
                    if tail_n == 0:
                        lines = []
                    out = [r for r in (render(_decode_log(line)) for line in lines) if r]
                    if out:
                        yield b"".join(out)
                if not follow:
                    return
                pending = b""
                while True:
                    if f is None:
                        try:
                            f = open(path, "rb")
                        except FileNotFoundError:
                            f = None
                    data = f.read() if f is not None else b""
                    if data:
                        pending += data
                        *complete, pending = pending.split(b"\n")
                        out = [r for r in (render(_decode_log(line)) for line in complete
                                           if line) if r]
                        if out:
                            yield b"".join(out)
                        continue
                    try:
                        running = self._record(cid)["State"]["Running"]
                    except errors.NotFound:
                        running = False
                    if not running:
                        # One last read: the shim drains output before it reports the exit.
                        data = f.read() if f is not None else b""
                        if data:
                            pending += data
                            continue
                        return
                    await asyncio.sleep(0.05)
            finally:
                if f is not None:
                    f.close()

        return tty, chunks()

    # -- daemon lifecycle ----------------------------------------------------------------------

    async def restore(self) -> None:
        """Reconnect to the shims of containers that ran before the daemon (re)started."""
        for row in await asyncio.to_thread(self.db.list_containers):
            record = _record_of(row)
            cid = record["Id"]
            if not record["State"]["Running"]:
                continue
            shim = ShimClient(self._state_dir(cid))
            try:
                state = await shim.state()
            except (ShimGone, errors.BerthError, OSError):
                result = _read_exit_file(shim.state_dir) or {
                    "exit_code": 255, "error": "container's monitor was lost while the daemon "
                    "was down"}
                self._spawn_task(self._on_exit(cid, result))
                continue
            live = self._live_for(cid)
            if state.get("status") == "stopped":
                self._spawn_task(self._on_exit(cid, {
                    "exit_code": state.get("exit_code"), "finished_at": state.get("finished_at"),
                    "oom_killed": state.get("oom_killed")}))
            else:
                live.monitor = self._spawn_task(self._monitor(cid, shim))

    async def shutdown(self, stop_containers: bool) -> None:
        """Leave (live restore) or stop every running container, then end our own tasks."""
        if stop_containers:
            running = [r for r in (_record_of(row) for row in self.db.list_containers())
                       if r["State"]["Running"]]
            await asyncio.gather(*(self.stop(r["Id"], timeout=10) for r in running),
                                 return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def counts(self) -> dict[str, int]:
        records = [_record_of(row) for row in self.db.list_containers()]
        running = sum(1 for r in records if r["State"]["Running"] and not r["State"]["Paused"])
        paused = sum(1 for r in records if r["State"]["Paused"])
        return {"Containers": len(records), "ContainersRunning": running,
                "ContainersPaused": paused, "ContainersStopped": len(records) - running - paused}


def _record_of(row: Any) -> dict[str, Any]:
    """The stored record, whatever row shape the metadata store hands back."""
    if isinstance(row, dict) and "State" in row:
        return row
    record = row["record"] if not hasattr(row, "record") else row.record
    if isinstance(record, str | bytes):
        record = json.loads(record)
    return record


def _decode_log(line: bytes) -> dict[str, Any]:
    try:
        entry = json.loads(line)
    except ValueError:
        return {}
    return entry if isinstance(entry, dict) else {}


def _read_exit_file(state_dir: str) -> dict[str, Any] | None:
    try:
        return read_json(os.path.join(state_dir, "exit.json"))
    except (FileNotFoundError, ValueError):
        return None


def _graph_data(mounts: list[dict[str, Any]]) -> dict[str, str]:
    data: dict[str, str] = {}
    for mount in mounts:
        for option in mount.get("options") or []:
            key, _, value = option.partition("=")
            if key == "lowerdir":
                data["LowerDir"] = value
            elif key == "upperdir":
                data["UpperDir"] = value
                data["MergedDir"] = os.path.join(os.path.dirname(value), "merged")
            elif key == "workdir":
                data["WorkDir"] = value
    return data


def _resolv_conf() -> str:
    """The host's resolv.conf without loopback servers, which mean nothing in a container."""
    try:
        with open("/etc/resolv.conf") as f:
            lines = f.read().splitlines()
    except OSError:
        lines = []
    kept = []
    for line in lines:
        parts = line.split()
        if parts[:1] == ["nameserver"] and len(parts) > 1 and (
                parts[1].startswith("127.") or parts[1] == "::1"):
            continue
        kept.append(line)
    return "\n".join(kept) + "\n"


def _status_text(state: dict[str, Any]) -> str:
    now = time.time()
    status = state["Status"]
    if status == "running":
        text = f"Up {human_duration(now - _parse_time(state['StartedAt']))}"
        return text + " (Paused)" if state.get("Paused") else text
    if status == "exited":
        finished = _parse_time(state["FinishedAt"])
        if not finished:
            return "Created"
        return f"Exited ({state['ExitCode']}) {human_duration(now - finished)} ago"
    if status == "created":
        return "Created"
    if status == "removing":
        return "Removal In Progress"
    if status == "dead":
        return "Dead"
    return status.capitalize()


def _summary(record: dict[str, Any]) -> dict[str, Any]:
    """A record in the shape of one ``/containers/json`` entry."""
    config = record["Config"]
    command = " ".join([record["Path"], *record["Args"]])
    return {
        "Id": record["Id"],
        "Names": [record["Name"]],
        "Image": config.get("Image") or record["Image"],
        "ImageID": record["Image"],
        "Command": command,
        "Created": int(_parse_time(record["Created"])),
        "Ports": [],
        "Labels": config.get("Labels") or {},
        "State": record["State"]["Status"],
        "Status": _status_text(record["State"]),
        "HostConfig": {"NetworkMode": record["HostConfig"].get("NetworkMode", "default")},
        "NetworkSettings": {"Networks": record["NetworkSettings"].get("Networks") or {}},
        "Mounts": record.get("Mounts") or [],
    }


def _matches(record: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    for key, values in filters.items():
        if not values:
            continue
        if key == "id":
            if not any(record["Id"].startswith(v) for v in values):
                return False
        elif key == "name":
            if not any(v.lstrip("/") in record["Name"][1:] for v in values):
                return False
        elif key == "status":
            if record["State"]["Status"] not in values:
                return False
        elif key == "exited":
            state = record["State"]
            if state["Status"] != "exited" or str(state["ExitCode"]) not in values:
                return False
        elif key == "label":
            labels = record["Config"].get("Labels") or {}
            for v in values:
                k, eq, want = v.partition("=")
                if k not in labels or (eq and labels[k] != want):
                    return False
        elif key == "ancestor":
            if not any(v in (record["Config"].get("Image"), record["Image"]) or
                       record["Image"].split(":")[-1].startswith(v) for v in values):
                return False
        else:
            raise errors.InvalidArgument(f"invalid filter '{key}'")
    return True

