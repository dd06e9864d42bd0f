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
import calendar
import collections
import contextlib
import copy
import datetime as dt
import functools
import json
import logging
import marshal
import os
import shutil
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from berth import errors
from berth.container import fs
from berth.container import spec as specs
from berth.container.names import random_name, validate_name
from berth.container.shim_client import LauncherClient, ShimClient, ShimGone
from berth.container.signals import parse_signal
from berth.http.frames import encode_frame
from berth.util import atomic_write, new_id, read_json, rfc3339_nano
from berth.util.detach import detach_key_bytes
from berth.util.humanize import human_duration

__all__ = ["ContainerService"]

log = logging.getLogger("berth.container")

ZERO_TIME = "0001-01-01T00:00:00Z"
_MANUAL_STOP = "HasBeenManuallyStopped"  # kept in the record, left out of inspect
KILL_EXIT_WAIT = 10.0  # how long a SIGKILL answer waits for the exit


@functools.lru_cache(maxsize=8192)
def _parse_time(text: str) -> float:
    """RFC 3339 (nanoseconds allowed, UTC) to a unix time; the zero time is 0. Cached: the
    same Created/StartedAt stamps are parsed at every ``ps``."""
    if not text or text.startswith("0001-"):
        return 0.0
    main, _, frac = text.rstrip("Z").partition(".")
    try:
        base = calendar.timegm((int(main[0:4]), int(main[5:7]), int(main[8:10]),
                                int(main[11:13]), int(main[14:16]), int(main[17:19])))
    except ValueError:
        base = dt.datetime.strptime(main, "%Y-%m-%dT%H:%M:%S").replace(
            tzinfo=dt.UTC).timestamp()
    return base + (float("0." + frac) if frac else 0.0)


# What dockerd stores for a HostConfig field the client left out, so inspect has every key.
_HOST_CONFIG_DEFAULTS: dict[str, Any] = {
    "Binds": None, "ContainerIDFile": "", "NetworkMode": "default", "PortBindings": {},
    "AutoRemove": False, "VolumeDriver": "", "VolumesFrom": None, "ConsoleSize": [0, 0],
    "CapAdd": None, "CapDrop": None, "CgroupnsMode": "private", "Dns": [], "DnsOptions": [],
    "DnsSearch": [], "ExtraHosts": None, "GroupAdd": None, "IpcMode": "private",
    "Cgroup": "", "Links": None, "OomScoreAdj": 0, "PidMode": "", "Privileged": False,
    "PublishAllPorts": False, "ReadonlyRootfs": False, "SecurityOpt": None, "UTSMode": "",
    "UsernsMode": "", "ShmSize": 67108864, "Runtime": "runc", "Isolation": "",
    "CpuShares": 0, "Memory": 0, "NanoCpus": 0, "CgroupParent": "", "BlkioWeight": 0,
    "BlkioWeightDevice": [], "BlkioDeviceReadBps": [], "BlkioDeviceWriteBps": [],
    "BlkioDeviceReadIOps": [], "BlkioDeviceWriteIOps": [], "CpuPeriod": 0, "CpuQuota": 0,
    "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "CpusetCpus": "", "CpusetMems": "",
    "Devices": [], "DeviceCgroupRules": None, "DeviceRequests": None,
    "MemoryReservation": 0, "MemorySwap": 0, "MemorySwappiness": None,
    "OomKillDisable": None, "PidsLimit": None, "Ulimits": None, "CpuCount": 0,
    "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0,
    "MaskedPaths": None, "ReadonlyPaths": None,
}


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
    health: asyncio.Task[None] | None = None
    restarter: asyncio.Task[None] | None = None
    stopping: bool = False
    manual_stop: bool = False
    started_mono: float = 0.0
    backoff: float = 0.0
    exec_ids: list[str] = field(default_factory=list)
    last_status: dict[str, Any] = field(default_factory=lambda: {"StatusCode": 0,
                                                                  "Error": None})


class ContainerService:
    def __init__(self, data_root: str, exec_root: str, db: Any, images: Any,
                 volumes: Any = None, events: Any = None) -> None:
        self.data_root = data_root
        self.exec_root = exec_root
        self.db = db
        self.images = images
        self.volumes = volumes
        self.events = events
        self.launcher = LauncherClient(exec_root)
        self._live: dict[str, _Live] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._execs: dict[str, dict[str, Any]] = {}
        # A copy of every record as last written, so ``ps`` (frequent, and run in a worker
        # thread) reads no database; this service is the only writer of container rows.
        self._cache: dict[str, dict[str, Any]] = {}
        self._cache_ready = False

    def _emit(self, action: str, record: dict[str, Any], **extra: str) -> None:
        """A container event with Docker's attributes (image, name, labels)."""
        if self.events is None:
            return
        attrs = dict(record["Config"].get("Labels") or {})
        attrs.update({"image": record["Config"].get("Image") or record["Image"],
                      "name": record["Name"].lstrip("/")})
        attrs.update(extra)
        self.events.emit("container", action, record["Id"], attrs)

    # -- records ---------------------------------------------------------------------------

    def _live_for(self, cid: str) -> _Live:
        live = self._live.get(cid)
        if live is None:
            live = self._live[cid] = _Live()
        return live

    def _record(self, ref: str) -> dict[str, Any]:
        row = self.db.find_container(ref)
        return _record_of(row)

    async def _save(self, record: dict[str, Any], durable: bool = True) -> None:
        """Write the record through. ``durable=False`` for run state (started, exited,
        paused, health): a power loss may lose the last such change, never the row, and
        the containers did not survive it either; a daemon crash loses nothing."""
        await asyncio.to_thread(self.db.update_container, record["Id"], record, durable)
        self._remember(record)

    def _remember(self, record: dict[str, Any]) -> None:
        self._cache[record["Id"]] = _copy_record(record)

    def _all_records(self) -> list[dict[str, Any]]:
        """Every record, from the cache (read-only: never mutate what this returns)."""
        if not self._cache_ready:
            for row in self.db.list_containers():
                record = _record_of(row)
                self._cache.setdefault(record["Id"], record)
            self._cache_ready = True
        return list(self._cache.values())

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
        record = await asyncio.to_thread(self._create_sync, body, name, image_ref)
        self._remember(record)
        self._emit("create", record)
        return {"Id": record["Id"], "Warnings": []}

    def _create_sync(self, body: dict[str, Any], name: str | None,
                     image_ref: str) -> dict[str, Any]:
        """The record, its directory, snapshot, volumes and row, in one worker hop: each step
        touches the disk (file creation is slow on some), none may hold the event loop."""
        image = self.images.resolve(image_ref)
        host_config = dict(body.get("HostConfig") or {})
        specs.validate_host_config(host_config)
        specs.capabilities(host_config)
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
        mount_points = specs.plan_mounts(merged, host_config)
        container_dir = self._container_dir(cid)
        for key, default in _HOST_CONFIG_DEFAULTS.items():
            if host_config.get(key) is None:
                host_config[key] = default
        if not host_config.get("ShmSize"):
            host_config["ShmSize"] = _HOST_CONFIG_DEFAULTS["ShmSize"]
        log_config = dict(host_config.get("LogConfig") or {})
        log_config["Type"] = log_config.get("Type") or "json-file"
        log_config["Config"] = log_config.get("Config") or {}
        host_config["LogConfig"] = log_config
        _check_log_config(host_config["LogConfig"])
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
            "Mounts": mount_points,
            "Config": merged,
            "NetworkSettings": {"Bridge": "", "SandboxID": "", "HairpinMode": False,
                                "Ports": {}, "SandboxKey": "", "Networks": {}},
        }
        try:
            os.makedirs(container_dir, mode=0o710, exist_ok=True)
            mounts = self.images.prepare_rootfs(cid, image.id)
            record["GraphDriver"]["Data"] = _graph_data(mounts)
            self._create_volumes(record)
            self._insert_sync(record, name)
        except BaseException:
            with contextlib.suppress(Exception):
                self.images.remove_rootfs(cid)
            shutil.rmtree(container_dir, ignore_errors=True)
            raise
        return record

    def _create_volumes(self, record: dict[str, Any]) -> None:
        """Give every volume mount a volume (anonymous ones a fresh name) and its path."""
        for point in record["Mounts"]:
            if point["Type"] != "volume":
                continue
            if self.volumes is None:
                raise errors.NotImplementedYet("volumes are not available")
            volume, created = self.volumes.create(point.get("Name") or None,
                                                  labels=point.pop("Labels", None))
            point["Name"] = volume["Name"]
            point["Source"] = volume["Mountpoint"]
            point["Fresh"] = created and not point.get("NoCopy")

    def volume_users(self, name: str) -> list[str]:
        """Ids of the containers that mount volume ``name`` (the volume service asks)."""
        return [r["Id"] for r in self._all_records()
                if any(p.get("Name") == name for p in r.get("Mounts") or [])]

    def _insert_sync(self, record: dict[str, Any], name: str | None) -> None:
        """Write the new row; without a name, draw random ones until one is free."""
        if name:
            record["Name"] = "/" + validate_name(name)
            self.db.put_container(record["Id"], record["Name"][1:], record["Image"],
                                  record["Id"], record["Created"], record)
            return
        for attempt in range(20):
            record["Name"] = "/" + random_name(attempt)
            try:
                self.db.put_container(record["Id"], record["Name"][1:], record["Image"],
                                      record["Id"], record["Created"], record)
                return
            except errors.AlreadyExists:
                continue
        raise errors.Conflict("could not find a free container name")

    # -- start ---------------------------------------------------------------------------------

    async def start(self, ref: str, by_policy: bool = False) -> bool:
        """Start the container; False when it was running already (HTTP 304), or when a
        restart policy's start (``by_policy``) finds the container stopped by the user."""
        record = self._record(ref)
        cid = record["Id"]
        live = self._live_for(cid)
        async with live.lock:
            record = self._record(cid)
            if record["State"]["Running"] or (by_policy and live.stopping):
                return False
            live.stopping = False
            live.manual_stop = False
            if not by_policy:
                record.pop(_MANUAL_STOP, None)
            try:
                await self._start_locked(record, live)
            except errors.BerthError as exc:
                record["State"]["Error"] = exc.message
                if isinstance(exc, errors.RuntimeFailure):
                    record["State"]["ExitCode"] = exc.exit_code
                await self._save(record, durable=False)
                self._fail_pending_attaches(live)
                if record["HostConfig"].get("AutoRemove"):
                    self._spawn_task(self._auto_remove(cid))
                raise
        return True

    async def _start_locked(self, record: dict[str, Any], live: _Live) -> None:
        cid = record["Id"]
        config = record["Config"]
        began = time.perf_counter()
        state_dir = self._state_dir(cid)
        mounts = await asyncio.to_thread(self._prepare_bundle, record, state_dir)
        prepared = time.perf_counter()
        try:
            log_driver, log_opts = _log_settings(record["HostConfig"])
            reply = await self.launcher.spawn({
                "id": cid, "bundle": state_dir, "state_dir": state_dir,
                "log_path": record["LogPath"] if log_driver != "none" else None,
                "log_driver": log_driver, "log_opts": log_opts,
                "stdin": bool(config.get("OpenStdin")),
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
        state.pop("Health", None)
        state.update({"Status": "running", "Running": True, "Paused": False,
                      "Restarting": False, "OOMKilled": False, "Dead": False,
                      "Pid": int(reply.get("init_pid") or 0), "ExitCode": 0, "Error": "",
                      "StartedAt": rfc3339_nano(), "FinishedAt": ZERO_TIME})
        await self._save(record, durable=False)
        live.started_mono = time.monotonic()
        live.monitor = self._spawn_task(self._monitor(cid, shim))
        self._emit("start", record)
        if (config.get("Healthcheck") or {}).get("Test") not in (None, [], ["NONE"]):
            live.health = self._spawn_task(self._health_loop(cid))
        log.debug("started %s: prepare %.1f ms, spawn %.1f ms, start+save %.1f ms", cid[:12],
                  (prepared - began) * 1000, (spawned - prepared) * 1000,
                  (time.perf_counter() - spawned) * 1000)

    def _prepare_bundle(self, record: dict[str, Any], state_dir: str) -> list[Any]:
        """Everything a start writes before the shim runs, in one worker hop: the files
        bind-mounted into the container, a fresh bundle directory with its config.json, and
        the copy-up of image content into new volumes. Returns the rootfs mounts."""
        mounts = self.images.rootfs_mounts(record["Id"])
        self._write_container_files(record)
        shutil.rmtree(state_dir, ignore_errors=True)
        os.makedirs(os.path.join(state_dir, "rootfs"), mode=0o711)
        if any(p.get("Fresh") for p in record["Mounts"]):
            self._copy_up_volumes(record, mounts)
        spec = specs.build_spec(record, rootfs=os.path.join(state_dir, "rootfs"),
                                hostname_path=record["HostnamePath"],
                                hosts_path=record["HostsPath"],
                                resolv_path=record["ResolvConfPath"],
                                mounts=record["Mounts"])
        atomic_write(os.path.join(state_dir, "config.json"), json.dumps(spec).encode(),
                     durable=False)
        return mounts

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
            stopped_by_user = live.stopping
            if stopped_by_user and live.manual_stop:
                record[_MANUAL_STOP] = True
            await self._save(record, durable=False)
            live.monitor = None
            if live.health is not None:
                live.health.cancel()
                live.health = None
            status = {"StatusCode": code, "Error": None}
            live.last_status = status
            for future in live.next_exit:
                if not future.done():
                    future.set_result(status)
            live.next_exit.clear()
            state_dir = self._state_dir(cid)
            await ShimClient(state_dir).shutdown()
            shutil.rmtree(state_dir, ignore_errors=True)
            await asyncio.to_thread(_remove_leftover_cgroup, cid)
            self._emit("die", record, exitCode=str(code))
        if record["HostConfig"].get("AutoRemove"):
            await self._auto_remove(cid)
        elif not stopped_by_user and self._should_restart(record, code):
            live.restarter = self._spawn_task(self._restart_later(cid, live))

    def _should_restart(self, record: dict[str, Any], code: int, manual: bool = False) -> bool:
        """Docker's rule: always; unless-stopped unless stopped by the user; on-failure for a
        non-zero code within the retry count."""
        policy = record["HostConfig"].get("RestartPolicy") or {}
        name = policy.get("Name") or "no"
        if name == "always" or (name == "unless-stopped" and not manual):
            return True
        if name == "on-failure" and code != 0:
            limit = policy.get("MaximumRetryCount") or 0
            return not limit or record.get("RestartCount", 0) < limit
        return False

    async def _restart_later(self, cid: str, live: _Live) -> None:
        """Docker's back-off: 100 ms doubling to a minute, reset after 10 s of running."""
        ran = time.monotonic() - live.started_mono if live.started_mono else 0.0
        live.backoff = 0.1 if (ran >= 10 or not live.backoff) else min(live.backoff * 2, 60.0)
        try:
            record = self._record(cid)
        except errors.NotFound:
            return
        record["State"].update({"Status": "restarting", "Restarting": True})
        await self._save(record, durable=False)
        try:
            await asyncio.sleep(live.backoff)
        except asyncio.CancelledError:
            return
        try:
            record = self._record(cid)
            if not record["State"].get("Restarting"):
                return
            record["RestartCount"] = record.get("RestartCount", 0) + 1
            record["State"].update({"Restarting": False, "Status": "exited"})
            await self._save(record, durable=False)
            live.restarter = None
            await self.start(cid, by_policy=True)
        except errors.NotFound:
            return
        except errors.BerthError as exc:
            log.warning("restart of %s failed: %s", cid[:12], exc.message)

    async def _auto_remove(self, cid: str) -> None:
        """``--rm``: the container and its anonymous volumes go, as with Docker."""
        with contextlib.suppress(errors.NotFound, errors.Conflict):
            await self.remove(cid, force=True, volumes=True)

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
        live = self._live_for(record["Id"])
        exited: asyncio.Future[dict[str, Any]] | None = None
        if sig == 9:
            # As dockerd: a SIGKILL from the user is a stop no restart policy undoes, and the
            # answer waits for the exit, so `docker kill C; docker ps` no longer lists C.
            live.stopping = live.manual_stop = True
            exited = asyncio.get_running_loop().create_future()
            live.next_exit.append(exited)
        try:
            await ShimClient(self._state_dir(record["Id"])).kill(sig)
            self._emit("kill", record, signal=str(sig))
            if exited is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(exited), KILL_EXIT_WAIT)
        except ShimGone:
            raise errors.Conflict(f"Cannot kill container: {ref}: Container {record['Id']} is "
                                  "not running") from None
        finally:
            if exited is not None:
                with contextlib.suppress(ValueError):
                    live.next_exit.remove(exited)

    async def stop(self, ref: str, timeout: int | None = None, signal: str | None = None,
                   manual: bool = True) -> bool:
        """Stop signal, then SIGKILL after the timeout; False when it was not running (304).
        ``manual`` is a user's stop, which ``unless-stopped`` remembers across restarts."""
        record = self._record(ref)
        cid = record["Id"]
        live = self._live_for(cid)
        live.stopping = True
        live.manual_stop = manual
        if live.restarter is not None:
            live.restarter.cancel()
            live.restarter = None
            record["State"].update({"Restarting": False, "Status": "exited"})
            await self._save(record, durable=False)
            return True
        if not record["State"]["Running"]:
            return False
        config = record["Config"]
        sig = parse_signal(signal or config.get("StopSignal") or "SIGTERM")
        if timeout is None:
            timeout = config.get("StopTimeout")
        if timeout is None:
            timeout = 10
        exited: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        live.next_exit.append(exited)
        shim = ShimClient(self._state_dir(cid))
        try:
            with contextlib.suppress(ShimGone, errors.Conflict):
                await shim.kill(sig)
                self._emit("kill", record, signal=str(sig))
            if record["State"].get("Paused"):
                # A frozen process gets its stop signal only once thawed, as with dockerd.
                with contextlib.suppress(ShimGone, errors.Conflict, errors.NotImplementedYet):
                    await shim.request("resume")
                    await self._set_paused(cid, False)
            if timeout < 0:
                await exited
            else:
                try:
                    await asyncio.wait_for(asyncio.shield(exited), timeout)
                except TimeoutError:
                    with contextlib.suppress(ShimGone, errors.Conflict):
                        await shim.kill(9, all_processes=True)
                        self._emit("kill", record, signal="9")
                    await exited
        finally:
            with contextlib.suppress(ValueError):
                live.next_exit.remove(exited)
        self._emit("stop", record)
        return True

    # -- remove ------------------------------------------------------------------------------

    async def remove(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        record = self._record(ref)
        cid = record["Id"]
        live = self._live_for(cid)
        if live.restarter is not None:
            await self.stop(cid)
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
            self._cache.pop(cid, None)
            shutil.rmtree(self._container_dir(cid), ignore_errors=True)
            if volumes and self.volumes is not None:
                for point in record.get("Mounts") or []:
                    if point.get("Type") == "volume" and self.volumes.is_anonymous(
                            point["Name"]):
                        with contextlib.suppress(errors.BerthError):
                            await asyncio.to_thread(self.volumes.remove, point["Name"])
            self._forget_execs(live)
            self._emit("destroy", record)
            self._fail_pending_attaches(live)
            for future in live.removed + live.next_exit:
                if not future.done():
                    future.set_result(live.last_status)
            self._live.pop(cid, None)

    # -- inspect, list ------------------------------------------------------------------------

    def inspect(self, ref: str, size: bool = False) -> dict[str, Any]:
        record = self._record(ref)
        record.pop(_MANUAL_STOP, None)
        if size:
            upper = (record["GraphDriver"].get("Data") or {}).get("UpperDir")
            record["SizeRw"] = _du(upper) if upper else 0
            record["SizeRootFs"] = record["SizeRw"]
        record["Mounts"] = [_mount_view(p) for p in record.get("Mounts") or []]
        record["ExecIDs"] = list(self._live.get(record["Id"], _Live()).exec_ids) or None
        return record

    def list(self, all: bool = False, limit: int | None = None,
             filters: dict[str, list[str]] | None = None,
             size: bool = False) -> list[dict[str, Any]]:
        records = self._all_records()
        records.sort(key=lambda r: r["Created"], reverse=True)
        filters = dict(filters or {})
        for key in ("before", "since"):
            if filters.get(key):
                anchor = self._record(filters[key][0])
                created = anchor["Created"]
                records = [r for r in records if (r["Created"] < created if key == "before"
                                                  else r["Created"] > created)]
                filters.pop(key)
        if not all and not limit and not filters.get("status") and not filters.get("exited"):
            records = [r for r in records if r["State"]["Running"]]
        records = [r for r in records if _matches(r, filters)]
        if limit and limit > 0:
            records = records[:limit]
        out = [_summary(r) for r in records]
        if size:
            for summary, record in zip(out, records, strict=True):
                upper = (record["GraphDriver"].get("Data") or {}).get("UpperDir")
                summary["SizeRw"] = _du(upper) if upper else 0
                summary["SizeRootFs"] = summary["SizeRw"]
        return out

    # -- logs -----------------------------------------------------------------------------------

    async def logs(self, ref: str, *, stdout: bool, stderr: bool, follow: bool = False,
                   tail: str | None = None, timestamps: bool = False, since: float = 0,
                   until: float = 0) -> tuple[bool, AsyncIterator[bytes]]:
        """(tty, chunks): raw bytes for a TTY container, multiplexed frames otherwise.

        The json-file log is read and rendered in worker threads, a few megabytes at a
        time, so a large log neither blocks the event loop nor holds it all in memory."""
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
        renderer = _LogRenderer(stdout, stderr, tty, timestamps, since, until)

        async def chunks() -> AsyncIterator[bytes]:
            rotated = await asyncio.to_thread(_rotated_logs, path)
            f = await asyncio.to_thread(_open_or_none, path)
            if f is None and not follow and not rotated:
                return
            try:
                pending = b""
                if tail_n >= 0:
                    out = await asyncio.to_thread(renderer.tail, [*rotated, f], tail_n)
                    if out:
                        yield out
                else:
                    for older in rotated:
                        try:
                            while data := await asyncio.to_thread(older.read, _LOG_READ):
                                block, _, rest = (pending + data).rpartition(b"\n")
                                pending = rest
                                if block:
                                    out = await asyncio.to_thread(renderer.render, block)
                                    if out:
                                        yield out
                        finally:
                            older.close()
                    pending = b""
                while True:
                    if f is None:
                        f = await asyncio.to_thread(_open_or_none, path)
                    data = await asyncio.to_thread(f.read, _LOG_READ) if f is not None else b""
                    if not data and f is not None and follow and await asyncio.to_thread(
                            _replaced, f, path):
                        # The shim rotated the log: what is left of the old file is read,
                        # then the new one.
                        f.close()
                        f = await asyncio.to_thread(_open_or_none, path)
                        continue
                    if data:
                        pending += data
                        complete, _, pending = pending.rpartition(b"\n")
                        if complete:
                            out = await asyncio.to_thread(renderer.render, complete)
                            if out:
                                yield out
                        continue
                    if not follow:
                        return
                    try:
                        running = self._record(cid)["State"]["Running"]
                    except errors.NotFound:
                        running = False
                    if not running:
                        # One last read: the shim drains output before it reports the exit.
                        data = await asyncio.to_thread(f.read) if f is not None else b""
                        if data:
                            pending += data
                            continue
                        return
                    await asyncio.sleep(0.05)
            finally:
                if f is not None:
                    f.close()

        return tty, chunks()

    # -- volumes' first content ------------------------------------------------------------

    def _copy_up_volumes(self, record: dict[str, Any], mounts: list[dict[str, Any]]) -> None:
        """Fill a new, empty volume with what the image has at its mount point (Docker's
        copy-up), through the container's rootfs mounted privately for the copy."""
        with _mounted_rootfs(self.exec_root, record["Id"], mounts) as root:
            for point in record["Mounts"]:
                if not point.pop("Fresh", False):
                    continue
                data = point["Source"]
                if os.listdir(data):
                    continue
                try:
                    res = fs.resolve(root, point["Destination"] + "/")
                except errors.BerthError:
                    continue
                src = res.host_path
                if not os.path.isdir(src) or os.path.islink(src):
                    continue
                shutil.copytree(src, data, symlinks=True, dirs_exist_ok=True)
                st = os.stat(src)
                os.chown(data, st.st_uid, st.st_gid)
                os.chmod(data, st.st_mode & 0o7777)
        self.db.update_container(record["Id"], record)

    # -- healthcheck ----------------------------------------------------------------------------

    async def _health_loop(self, cid: str) -> None:
        """Run the image's or container's healthcheck by exec, as Docker does."""
        config = self._record(cid)["Config"]["Healthcheck"]
        test = list(config.get("Test") or [])
        if test[:1] == ["CMD-SHELL"]:
            argv = ["/bin/sh", "-c", " ".join(test[1:])]
        elif test[:1] == ["CMD"]:
            argv = test[1:]
        else:
            return
        ns = 1_000_000_000
        interval = (config.get("Interval") or 30 * ns) / ns
        timeout = (config.get("Timeout") or 30 * ns) / ns
        retries = config.get("Retries") or 3
        start_period = (config.get("StartPeriod") or 0) / ns
        started = time.monotonic()
        if "Health" not in self._record(cid)["State"]:  # kept across a daemon restart
            await self._set_health(cid, "starting", None)
        while True:
            await asyncio.sleep(interval)
            began = rfc3339_nano()
            try:
                code, output = await asyncio.wait_for(self._run_probe(cid, argv), timeout)
            except TimeoutError:
                code, output = -1, f"Health check exceeded timeout ({timeout:g}s)"
            except errors.BerthError as exc:
                code, output = -1, exc.message
            in_grace = time.monotonic() - started < start_period
            await self._set_health(cid, None, {"Start": began, "End": rfc3339_nano(),
                                               "ExitCode": code, "Output": output[-4096:]},
                                   retries=retries, grace=in_grace)

    async def _run_probe(self, cid: str, argv: list[str]) -> tuple[int, str]:
        record = self._record(cid)
        exec_id = new_id()
        process = self._exec_process(record, {"Cmd": argv})
        shim = ShimClient(self._state_dir(cid))
        _, reader, writer = await shim.exec(exec_id, process, stdin=False, detach=False)
        out = bytearray()
        try:
            while True:
                header = await reader.read(8)
                if len(header) < 8:
                    break
                size = int.from_bytes(header[4:8], "big")
                out += await reader.readexactly(size)
        except asyncio.IncompleteReadError:
            pass
        finally:
            writer.close()
        reply = await shim.request("exec_wait", exec_id=exec_id)
        return int(reply.get("exit_code") or 0), out.decode("utf-8", "replace")

    async def _set_health(self, cid: str, status: str | None, result: dict[str, Any] | None,
                          retries: int = 3, grace: bool = False) -> None:
        live = self._live_for(cid)
        async with live.lock:
            try:
                record = self._record(cid)
            except errors.NotFound:
                return
            if not record["State"]["Running"]:
                return
            health = record["State"].setdefault(
                "Health", {"Status": "starting", "FailingStreak": 0, "Log": []})
            old = health["Status"]
            if status is not None:
                health["Status"] = status
            if result is not None:
                health["Log"] = (health["Log"] + [result])[-5:]
                if result["ExitCode"] == 0:
                    health["Status"] = "healthy"
                    health["FailingStreak"] = 0
                elif not grace:
                    health["FailingStreak"] += 1
                    if health["FailingStreak"] >= retries:
                        health["Status"] = "unhealthy"
            await self._save(record, durable=False)
        if health["Status"] != old:
            self._emit(f"health_status: {health['Status']}", record)

    # -- exec -----------------------------------------------------------------------------------

    def _exec_process(self, record: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        """The OCI process of an exec; what it leaves out (capabilities, rlimits, seccomp,
        no_new_privs) the runtime takes from the container's own process, as Docker does."""
        config = record["Config"]
        env = specs.merge_env(config.get("Env") or [], body.get("Env") or [])
        user = body.get("User") or config.get("User") or "0"
        process: dict[str, Any] = {
            "args": list(body["Cmd"]), "env": env,
            "cwd": body.get("WorkingDir") or config.get("WorkingDir") or "/",
            "terminal": bool(body.get("Tty")),
            # Names (and uid:gid) are resolved inside the container, against its files.
            "user": {"uid": 0, "gid": 0, "username": user},
        }
        if body.get("Tty") and not any(e.startswith("TERM=") for e in env):
            env.append("TERM=xterm")
        if body.get("ConsoleSize"):
            height, width = body["ConsoleSize"]
            process["consoleSize"] = {"height": height, "width": width}
        if body.get("Privileged"):
            caps = specs.capabilities({"Privileged": True})
            process["capabilities"] = {"bounding": caps, "effective": caps,
                                       "permitted": caps}
        return process

    async def exec_create(self, ref: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise errors.InvalidArgument("exec config cannot be empty")
        record = self._record(ref)
        cid = record["Id"]
        cmd = body.get("Cmd")
        if isinstance(cmd, str):
            cmd = [cmd]
        if not cmd or not isinstance(cmd, list) or not all(isinstance(c, str) for c in cmd):
            raise errors.InvalidArgument("No exec command specified")
        if not record["State"]["Running"]:
            raise errors.Conflict(f"Container {cid} is not running")
        if record["State"].get("Paused"):
            raise errors.Conflict(f"Container {cid} is paused, unpause the container before "
                                  "exec")
        keys = body.get("DetachKeys") or ""
        try:
            if keys:
                detach_key_bytes(keys)
        except (ValueError, TypeError):
            raise errors.InvalidArgument(f"Invalid escape keys ({keys}) provided") from None
        exec_id = new_id()
        self._execs[exec_id] = {
            "ID": exec_id, "Running": False, "ExitCode": None,
            "ProcessConfig": {"tty": bool(body.get("Tty")), "entrypoint": cmd[0],
                              "arguments": cmd[1:], "privileged": bool(body.get("Privileged")),
                              "user": body.get("User") or ""},
            "OpenStdin": bool(body.get("AttachStdin")),
            "OpenStderr": bool(body.get("AttachStderr")),
            "OpenStdout": bool(body.get("AttachStdout")),
            "CanRemove": False, "ContainerID": cid, "DetachKeys": body.get("DetachKeys") or "",
            "Pid": 0, "_body": {**body, "Cmd": cmd},
        }
        live = self._live_for(cid)
        live.exec_ids.append(exec_id)
        self._emit(f"exec_create: {' '.join(cmd)}", record, execID=exec_id)
        return {"Id": exec_id}

    def exec_inspect(self, exec_id: str) -> dict[str, Any]:
        entry = self._execs.get(exec_id)
        if entry is None:
            raise errors.NotFound(f"No such exec instance: {exec_id}")
        return {k: v for k, v in entry.items() if not k.startswith("_")}

    def exec_check(self, exec_id: str) -> dict[str, Any]:
        """What makes a start fail before any stream is opened (Docker's 404/409s)."""
        entry = self._execs.get(exec_id)
        if entry is None:
            raise errors.NotFound(f"No such exec instance: {exec_id}")
        if entry["Running"] or entry["ExitCode"] is not None:
            raise errors.Conflict(f"Exec command {exec_id} has already run")
        cid = entry["ContainerID"]
        record = self._record(cid)
        if not record["State"]["Running"]:
            raise errors.Conflict(f"Container {cid} is not running")
        if record["State"].get("Paused"):
            raise errors.Conflict(f"Container {cid} is paused, unpause the container before "
                                  "exec")
        return self.exec_inspect(exec_id)

    def exec_failed(self, exec_id: str, exit_code: int) -> None:
        """A start that failed once the stream was open: the code the client will inspect."""
        entry = self._execs.get(exec_id)
        if entry is not None:
            entry.update({"Running": False, "ExitCode": exit_code})

    async def exec_start(self, exec_id: str, detach: bool, tty: bool | None = None
                         ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """Start an exec; unless detached, the shim's stream for the caller to splice."""
        self.exec_check(exec_id)
        entry = self._execs[exec_id]
        cid = entry["ContainerID"]
        record = self._record(cid)
        body = entry["_body"]
        process = self._exec_process(record, body)
        shim = ShimClient(self._state_dir(cid))
        entry["Running"] = True
        try:
            pid, reader, writer = await shim.exec(exec_id, process,
                                                  stdin=entry["OpenStdin"] and not detach,
                                                  detach=detach)
        except BaseException:
            entry["Running"] = False
            raise
        entry["Pid"] = pid
        self._emit(f"exec_start: {' '.join(body['Cmd'])}", record, execID=exec_id)
        entry["_waiter"] = self._spawn_task(self._exec_wait(cid, exec_id))
        if detach:
            writer.close()
            return None
        return reader, writer

    async def _exec_wait(self, cid: str, exec_id: str) -> None:
        entry = self._execs.get(exec_id)
        if entry is None:
            return
        try:
            reply = await ShimClient(self._state_dir(cid)).request("exec_wait", exec_id=exec_id)
            code = int(reply.get("exit_code") if reply.get("exit_code") is not None else 126)
        except (errors.BerthError, OSError):
            code = 126
        entry.update({"Running": False, "ExitCode": code})
        with contextlib.suppress(errors.NotFound):
            self._emit("exec_die", self._record(cid), execID=exec_id, exitCode=str(code))

    async def wait_exec(self, exec_id: str) -> None:
        """Until the exec's exit code is known (after its stream ended)."""
        entry = self._execs.get(exec_id)
        waiter = entry.get("_waiter") if entry else None
        if waiter is not None:
            await asyncio.shield(waiter)

    async def exec_resize(self, exec_id: str, height: int, width: int) -> None:
        entry = self._execs.get(exec_id)
        if entry is None:
            raise errors.NotFound(f"No such exec instance: {exec_id}")
        if not entry["Running"]:
            raise errors.Conflict(f"Exec {exec_id} is not running")
        await ShimClient(self._state_dir(entry["ContainerID"])).request(
            "exec_resize", exec_id=exec_id, height=height, width=width)

    def _forget_execs(self, live: _Live) -> None:
        for exec_id in live.exec_ids:
            self._execs.pop(exec_id, None)
        live.exec_ids.clear()

    # -- top, stats, pause, update, rename ------------------------------------------------

    def _running(self, ref: str) -> dict[str, Any]:
        record = self._record(ref)
        if not record["State"]["Running"]:
            raise errors.Conflict(f"Container {record['Id']} is not running")
        return record

    async def _pids(self, record: dict[str, Any]) -> list[int]:
        """The container's host pids: from the shim, else every process in init's pid
        namespace (the same set, found by /proc)."""
        try:
            reply = await ShimClient(self._state_dir(record["Id"])).request("pids")
            return [int(p) for p in reply.get("pids") or []]
        except errors.NotImplementedYet:
            return await asyncio.to_thread(_pids_in_namespace, record["State"]["Pid"])

    async def top(self, ref: str, ps_args: str | None) -> dict[str, Any]:
        record = self._running(ref)
        pids = set(await self._pids(record))
        args = (ps_args or "-ef").split()
        proc = await asyncio.create_subprocess_exec(
            "ps", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        if proc.returncode:
            raise errors.InvalidArgument(f"ps: {err.decode(errors='replace').strip()}")
        lines = out.decode(errors="replace").splitlines()
        if not lines:
            return {"Titles": [], "Processes": []}
        titles = lines[0].split()
        try:
            pid_col = titles.index("PID")
        except ValueError:
            raise errors.InvalidArgument("Couldn't find PID field in ps output") from None
        processes = []
        for line in lines[1:]:
            fields = line.split(None, len(titles) - 1)
            if len(fields) > pid_col and fields[pid_col].isdigit() and int(
                    fields[pid_col]) in pids:
                processes.append(fields)
        return {"Titles": titles, "Processes": processes}

    async def stats_once(self, ref: str, previous: dict[str, Any] | None) -> dict[str, Any]:
        """One sample in Docker's stats JSON; ``previous`` fills precpu_stats."""
        record = self._record(ref)
        now = rfc3339_nano()
        empty = {"cpu_stats": {"cpu_usage": {"total_usage": 0}, "throttling_data": {}},
                 "memory_stats": {}, "pids_stats": {}, "blkio_stats": {}}
        if record["State"]["Running"]:
            reply = await ShimClient(self._state_dir(record["Id"])).request("stats")
            sample = reply.get("stats") or empty
        else:
            sample = empty
        out = {"read": now, "preread": previous["read"] if previous else ZERO_TIME,
               **sample, "num_procs": 0, "storage_stats": {},
               "precpu_stats": (previous or {}).get("cpu_stats") or {
                   "cpu_usage": {"total_usage": 0}, "throttling_data": {}},
               "name": record["Name"], "id": record["Id"], "networks": {}}
        return out

    async def stats(self, ref: str, stream: bool, one_shot: bool) -> AsyncIterator[bytes]:
        record = self._record(ref)
        cid = record["Id"]
        first = await self.stats_once(cid, None)

        async def samples() -> AsyncIterator[bytes]:
            previous = first
            if not stream:
                if not one_shot and record["State"]["Running"]:
                    await asyncio.sleep(1)
                    previous = await self.stats_once(cid, previous)
                yield json.dumps(previous).encode() + b"\n"
                return
            yield json.dumps(previous).encode() + b"\n"
            while True:
                await asyncio.sleep(1)
                try:
                    previous = await self.stats_once(cid, previous)
                except (errors.NotFound, ShimGone):
                    return
                yield json.dumps(previous).encode() + b"\n"

        return samples()

    async def pause(self, ref: str) -> None:
        record = self._running(ref)
        if record["State"]["Paused"]:
            raise errors.Conflict(f"Container {record['Id']} is already paused")
        await ShimClient(self._state_dir(record["Id"])).request("pause")
        await self._set_paused(record["Id"], True)
        self._emit("pause", record)

    async def unpause(self, ref: str) -> None:
        record = self._running(ref)
        if not record["State"]["Paused"]:
            raise errors.Conflict(f"Container {record['Id']} is not paused")
        await ShimClient(self._state_dir(record["Id"])).request("resume")
        await self._set_paused(record["Id"], False)
        self._emit("unpause", record)

    async def _set_paused(self, cid: str, paused: bool) -> None:
        async with self._live_for(cid).lock:
            record = self._record(cid)
            record["State"]["Paused"] = paused
            record["State"]["Status"] = "paused" if paused else "running"
            await self._save(record, durable=False)

    async def update(self, ref: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise errors.InvalidArgument("update config cannot be empty")
        record = self._record(ref)
        cid = record["Id"]
        async with self._live_for(cid).lock:
            record = self._record(cid)
            host_config = dict(record["HostConfig"])
            for key, value in body.items():
                if key == "RestartPolicy" and value or value not in (None, 0, "", []):
                    host_config[key] = value
            if body.get("Memory") and not body.get("MemorySwap") and host_config.get(
                    "MemorySwap", 0) and host_config["MemorySwap"] < body["Memory"]:
                host_config["MemorySwap"] = 0
            specs.validate_host_config(host_config)
            if record["State"]["Running"]:
                await ShimClient(self._state_dir(cid)).request(
                    "update", resources=specs.resources(host_config))
            record["HostConfig"] = host_config
            await self._save(record)
        self._emit("update", record)
        return {"Warnings": []}

    async def rename(self, ref: str, new_name: str) -> None:
        if not new_name:
            raise errors.InvalidArgument("Neither old nor new names may be empty")
        name = validate_name(new_name)
        record = self._record(ref)
        cid = record["Id"]
        old = record["Name"]
        if old.lstrip("/") == name:
            raise errors.InvalidArgument("Renaming a container with the same name as its "
                                         "current name")
        async with self._live_for(cid).lock:
            await asyncio.to_thread(self.db.rename_container, cid, name)
            record = self._record(cid)
            record["Name"] = "/" + name
            await self._save(record)
        self._emit("rename", record, oldName=old)

    async def restart(self, ref: str, timeout: int | None, signal: str | None) -> None:
        record = self._record(ref)
        await self.stop(record["Id"], timeout, signal)
        await self.start(record["Id"])
        record = self._record(record["Id"])
        self._emit("restart", record)

    async def prune(self, filters: dict[str, list[str]]) -> dict[str, Any]:
        until = filters.get("until") or []
        labels = {k: v for k, v in filters.items() if k in ("label", "label!")}
        deleted: list[str] = []
        reclaimed = 0
        for row in await asyncio.to_thread(self.db.list_containers):
            record = _record_of(row)
            if record["State"]["Running"] or record["State"].get("Restarting"):
                continue
            if until and _parse_time(record["Created"]) >= _until_time(until[0]):
                continue
            if labels and not _label_filters(record, labels):
                continue
            upper = (record["GraphDriver"].get("Data") or {}).get("UpperDir")
            if upper:
                reclaimed += await asyncio.to_thread(_du, upper)
            with contextlib.suppress(errors.NotFound, errors.Conflict):
                await self.remove(record["Id"])
                deleted.append(record["Id"])
        return {"ContainersDeleted": deleted or None, "SpaceReclaimed": reclaimed}

    # -- filesystem: archive ---------------------------------------------

    @contextlib.asynccontextmanager
    async def _rootfs(self, ref: str) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """The container's root as the daemon can reach it: a running one's through
        /proc/<init>/root (its own mounts, volumes included), a stopped one's overlay
        mounted privately for the duration (under the container's lock, so it cannot
        start meanwhile)."""
        record = self._record(ref)
        cid = record["Id"]
        if record["State"]["Running"] and record["State"]["Pid"]:
            root = f"/proc/{record['State']['Pid']}/root"
            if os.path.isdir(root):
                yield root, record
                return
        live = self._live_for(cid)
        async with live.lock:
            record = self._record(cid)
            mounts = await asyncio.to_thread(self.images.rootfs_mounts, cid)
            cm = _mounted_rootfs(self.exec_root, cid, mounts)
            root = await asyncio.to_thread(cm.__enter__)
            try:
                yield root, record
            finally:
                await asyncio.to_thread(cm.__exit__, None, None, None)

    async def archive_stat(self, ref: str, path: str) -> dict[str, Any]:
        async with self._rootfs(ref) as (root, _):
            res = await asyncio.to_thread(fs.resolve, root, path)
            return await asyncio.to_thread(fs.stat_of, res, path)

    async def archive_get(self, ref: str, path: str
                          ) -> tuple[dict[str, Any], AsyncIterator[bytes]]:
        """(path stat, tar chunks) of ``path``; the tar's top entry is the path's base name.
        The root is reached again when the body is read, so nothing stays mounted or locked
        if the client leaves before it."""
        path_stat = await self.archive_stat(ref, path)
        rebase = os.path.basename(path.rstrip("/")) if not path.endswith("/.") else "."
        rebase = rebase or path_stat["name"].strip("/") or "."

        async def chunks() -> AsyncIterator[bytes]:
            async with self._rootfs(ref) as (root, _):
                res = await asyncio.to_thread(fs.resolve, root, path)
                async for chunk in _threaded_tar(lambda out: fs.write_tree_tar(res, rebase,
                                                                               out)):
                    yield chunk

        return path_stat, chunks()

    async def archive_put(self, ref: str, path: str, body: AsyncIterator[bytes],
                          no_overwrite_dir_non_dir: bool = False,
                          copy_uid_gid: bool = False) -> None:
        """Unpack a tar into the directory ``path`` of the container, never outside it.

        Ownership as dockerd sets it: the tar's owners; with ``copy_uid_gid`` (``cp -a``) and
        a ``User`` in the container's config, that user's uid and gid (resolved in the
        container's own /etc/passwd and /etc/group) for every member. With
        ``no_overwrite_dir_non_dir`` (what the docker CLI always asks), a member that would
        replace a directory by a non-directory, or the reverse, fails the copy there, with
        the members before it unpacked, as dockerd's untar does."""
        from berth.archive import WhiteoutMode, apply_layer

        async with self._rootfs(ref) as (root, record):
            res = await asyncio.to_thread(fs.resolve, root, path.rstrip("/") + "/")
            target = res.host_path
            if not os.path.isdir(target) or os.path.islink(target):
                raise errors.InvalidArgument("extraction point is not a directory")
            if record["HostConfig"].get("ReadonlyRootfs") and not any(
                    (p.get("RW") and path.startswith(p["Destination"]))
                    for p in record.get("Mounts") or []):
                raise errors.PermissionDenied("container rootfs is marked read-only")
            owner = None
            user = (record["Config"].get("User") or "").strip()
            if copy_uid_gid and user:
                owner = await asyncio.to_thread(_resolve_user_in_root, root, user)
            directory = "/" + "/".join((*res.parent, res.name)) if res.name else "/"
            scanner = fs.TarHeaderScanner()
            members: list[str] = []
            conflict: str | None = None
            read_fd, write_fd = os.pipe()
            reader = os.fdopen(read_fd, "rb")

            def apply() -> None:
                with reader:
                    apply_layer(reader, target, whiteouts=WhiteoutMode.REMOVE)

            def check(chunk: bytes, offset: int) -> int | None:
                """Where in ``chunk`` the first refused member starts, or None."""
                nonlocal conflict
                for entry in scanner.feed(chunk):
                    if owner is not None:
                        members.append(entry.name)
                    if no_overwrite_dir_non_dir:
                        conflict = fs.overwrite_conflict(root, directory, entry)
                        if conflict is not None:
                            return max(entry.offset - offset, 0)  # may start in an earlier chunk
                return None

            applying = asyncio.ensure_future(asyncio.to_thread(apply))
            offset = 0
            try:
                with os.fdopen(write_fd, "wb", buffering=0) as writer:
                    async for chunk in body:
                        if applying.done():
                            break
                        stop = (await asyncio.to_thread(check, chunk, offset)
                                if no_overwrite_dir_non_dir or owner is not None else None)
                        offset += len(chunk)
                        await asyncio.to_thread(writer.write, chunk[:stop] if stop is not None
                                                else chunk)
                        if stop is not None:
                            break
            except BrokenPipeError:
                pass
            finally:
                if conflict is not None:
                    with contextlib.suppress(errors.BerthError, OSError):
                        await applying
                else:
                    await applying
            if conflict is not None:
                raise _ArchiveConflict(conflict)
            if owner is not None:
                uid, gid = owner
                await asyncio.to_thread(_chown_members, root, directory, members, uid, gid)

    # -- daemon lifecycle ----------------------------------------------------------------------

    async def restore(self) -> None:
        """Reconnect to the shims of containers that ran before the daemon (re)started."""
        for record in await asyncio.to_thread(self._all_records):
            record = copy.deepcopy(record)
            cid = record["Id"]
            if not record["State"]["Running"]:
                state = record["State"]
                if state.get("Restarting") or (
                        state.get("StartedAt", ZERO_TIME) != ZERO_TIME and self._should_restart(
                            record, state.get("ExitCode", 0), bool(record.get(_MANUAL_STOP)))):
                    self._live_for(cid).restarter = self._spawn_task(
                        self._restart_later(cid, self._live_for(cid)))
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
                live.started_mono = time.monotonic()
                healthcheck = record["Config"].get("Healthcheck") or {}
                if healthcheck.get("Test") not in (None, [], ["NONE"]):
                    live.health = self._spawn_task(self._health_loop(cid))

    async def shutdown(self, stop_containers: bool) -> None:
        """Leave (live restore) or stop every running container, then end our own tasks."""
        if stop_containers:
            running = [r for r in self._all_records()
                       if r["State"]["Running"]]
            await asyncio.gather(*(self.stop(r["Id"], timeout=10, manual=False)
                                   for r in running), return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def counts(self) -> dict[str, int]:
        records = self._all_records()
        running = sum(1 for r in records if r["State"]["Running"] and not r["State"]["Paused"])
        paused = sum(1 for r in records if r["State"]["Paused"])
        return {"Containers": len(records), "ContainersRunning": running,
                "ContainersPaused": paused, "ContainersStopped": len(records) - running - paused}


def _copy_record(record: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of a record (JSON data only), through marshal: several times faster than
    ``copy.deepcopy``, which the start path paid on the event loop at every save."""
    try:
        return marshal.loads(marshal.dumps(record))  # type: ignore[no-any-return]
    except ValueError:  # a value marshal does not know: copy it the slow way
        return copy.deepcopy(record)


def _record_of(row: Any) -> dict[str, Any]:
    """The stored record, whatever row shape the metadata store hands back."""
    if isinstance(row, dict) and "State" in row:
        return row
    record = row["record"] if not hasattr(row, "record") else row.record
    if isinstance(record, str | bytes):
        record = json.loads(record)
    return record


_LOG_READ = 4 << 20
_MAX_FRAME = 1 << 20


# Logs must not fill the disk: without options, json-file and local rotate at these sizes
# (the local driver's own defaults in Docker).
_DEFAULT_LOG_OPTS = {"max-size": "20m", "max-file": "5"}


def _check_log_config(log_config: dict[str, Any]) -> None:
    from berth.shim.jsonlog import parse_size

    driver = log_config["Type"]
    if driver not in ("json-file", "none", "local"):
        raise errors.InvalidArgument(f"failed to create task for container: logger: no log "
                                     f"driver named '{driver}' is registered")
    for key, value in (log_config.get("Config") or {}).items():
        if key not in ("max-size", "max-file", "compress", "labels", "env", "tag",
                       "labels-regex", "env-regex", "mode", "max-buffer-size"):
            raise errors.InvalidArgument(f"unknown log opt '{key}' for {driver} log driver")
        try:
            if key == "max-size" and value not in ("", "-1"):
                parse_size(str(value))
            if key == "max-file" and int(value) < 1:
                raise ValueError
        except ValueError:
            raise errors.InvalidArgument(f"invalid value for log opt {key}: {value!r}"
                                         ) from None


def _log_settings(host_config: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """(shim log driver, rotation options): ``local`` is kept as rotated json-file."""
    log_config = host_config.get("LogConfig") or {}
    driver = log_config.get("Type") or "json-file"
    if driver == "none":
        return "none", {}
    opts = {k: str(v) for k, v in (log_config.get("Config") or {}).items()
            if k in ("max-size", "max-file")}
    if not opts.get("max-size"):
        opts = dict(_DEFAULT_LOG_OPTS, **{k: v for k, v in opts.items() if v})
    return "json-file", opts


def _rotated_logs(path: str) -> list[Any]:
    """The rotated json-file logs (``path.N`` … ``path.1``), oldest first, opened."""
    directory, base = os.path.split(path)
    numbers = []
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(directory):
            suffix = name[len(base) + 1:]
            if name.startswith(base + ".") and suffix.isdigit():
                numbers.append(int(suffix))
    files = []
    for n in sorted(numbers, reverse=True):
        f = _open_or_none(f"{path}.{n}")
        if f is not None:
            files.append(f)
    return files


def _replaced(f: Any, path: str) -> bool:
    try:
        return os.stat(path).st_ino != os.fstat(f.fileno()).st_ino
    except FileNotFoundError:
        return False


def _open_or_none(path: str) -> Any:
    try:
        return open(path, "rb")
    except FileNotFoundError:
        return None


class _LogRenderer:
    """json-file lines to what the client reads: raw text for a TTY, else frames, one per
    run of lines from the same stream (up to 1 MiB), which Docker's clients accept."""

    def __init__(self, stdout: bool, stderr: bool, tty: bool, timestamps: bool,
                 since: float, until: float) -> None:
        self.want = {"stdout": stdout, "stderr": stderr}
        self.tty = tty
        self.timestamps = timestamps
        self.since = since
        self.until = until

    def tail(self, files: list[Any], n: int) -> bytes:
        """The last ``n`` lines across the rotated files (oldest first) and the current
        one, which is left at its end for a follow. Rotated files are closed."""
        lines: collections.deque[bytes] = collections.deque(maxlen=max(n, 0))
        for f in files:
            if f is None:
                continue
            if n == 0:
                f.seek(0, os.SEEK_END)
            else:
                lines.extend(f)
            if f is not files[-1]:
                f.close()
        return self.render(b"".join(lines).rstrip(b"\n")) if lines else b""

    def render(self, block: bytes) -> bytes:
        lines = block.split(b"\n")
        try:
            entries = json.loads(b"[" + b",".join(line for line in lines if line) + b"]")
        except ValueError:
            entries = [_decode_log(line) for line in lines if line]
        out: list[bytes] = []
        run: list[bytes] = []
        run_stream = ""
        run_size = 0
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            stream = entry.get("stream", "stdout")
            if not self.want.get(stream, False):
                continue
            when = entry.get("time", "")
            if self.since or self.until:
                t = _parse_time(when)
                if (self.since and t < self.since) or (self.until and t > self.until):
                    continue
            text = entry.get("log", "").encode("utf-8", "surrogateescape")
            if self.timestamps:
                text = when.encode() + b" " + text
            if self.tty:
                out.append(text)
                continue
            if run and (stream != run_stream or run_size + len(text) > _MAX_FRAME):
                out.append(encode_frame(2 if run_stream == "stderr" else 1, b"".join(run)))
                run, run_size = [], 0
            run.append(text)
            run_stream = stream
            run_size += len(text)
        if run:
            out.append(encode_frame(2 if run_stream == "stderr" else 1, b"".join(run)))
        return b"".join(out)


def _decode_log(line: bytes) -> dict[str, Any]:
    try:
        entry = json.loads(line)
    except ValueError:
        return {}
    return entry if isinstance(entry, dict) else {}


def _remove_leftover_cgroup(cid: str) -> None:
    """The shim removes its container's cgroup at exit; when the shim itself died (or the host
    rebooted under it), the daemon does: what still runs there is killed, the directories go."""
    from berth.runtime.cgroups import Cgroup

    try:
        cgroup = Cgroup.for_path(f"berth/{cid}")
        for pid in cgroup.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
        cgroup.destroy(timeout=2)
    except (OSError, errors.BerthError) as exc:
        log.warning("could not remove the cgroup of %s: %s", cid[:12], exc)


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
    if status in ("running", "paused"):
        text = f"Up {human_duration(now - _parse_time(state['StartedAt']))}"
        if state.get("Paused"):
            return text + " (Paused)"
        health = (state.get("Health") or {}).get("Status")
        if health == "starting":
            return text + " (health: starting)"
        if health in ("healthy", "unhealthy"):
            return f"{text} ({health})"
        return text
    if status == "restarting":
        finished = _parse_time(state["FinishedAt"])
        return f"Restarting ({state['ExitCode']}) {human_duration(now - finished)} ago"
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
        "Mounts": [_mount_view(p) for p in record.get("Mounts") or []],
    }


_MOUNT_KEYS = ("Type", "Name", "Source", "Destination", "Driver", "Mode", "RW", "Propagation")


def _mount_view(point: dict[str, Any]) -> dict[str, Any]:
    """A stored mount point as Docker shows it (bookkeeping fields left out)."""
    view = {k: point[k] for k in _MOUNT_KEYS if k in point}
    if point.get("Type") != "volume":
        view.pop("Name", None)
        view.pop("Driver", None)
    return view


def _matches(record: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    for key, values in filters.items():
        if not values:
            continue
        if key == "id":
            if not any(record["Id"].startswith(v) for v in values):
                return False
        elif key == "name":
            import re

            if not any(re.search(v.lstrip("/") if not v.startswith("^/") else "^" + v[2:],
                                 record["Name"][1:]) for v in values):
                return False
        elif key == "status":
            for v in values:
                if v not in ("created", "restarting", "running", "removing", "paused",
                             "exited", "dead"):
                    raise errors.InvalidArgument(
                        f"invalid filter 'status={v}': Invalid filter 'status={v}'")
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
        elif key == "volume":
            mounts = record.get("Mounts") or []
            if not any(p.get("Name") in values or p.get("Source") in values or
                       p.get("Destination") in values for p in mounts):
                return False
        elif key == "network":
            networks = record["NetworkSettings"].get("Networks") or {}
            mode = record["HostConfig"].get("NetworkMode", "default")
            if not any(v in networks or v == mode or
                       any(n.get("NetworkID", "").startswith(v) for n in networks.values()
                           if isinstance(n, dict)) for v in values):
                return False
        elif key == "health":
            health = (record["State"].get("Health") or {}).get("Status", "none")
            if health not in values:
                return False
        elif key == "is-task":
            if "true" in values:
                return False
        elif key in ("label!",):
            if not _label_filters(record, {key: values}):
                return False
        elif key == "ancestor":
            if not any(v in (record["Config"].get("Image"), record["Image"]) or
                       record["Image"].split(":")[-1].startswith(v) for v in values):
                return False
        else:
            raise errors.InvalidArgument(f"invalid filter '{key}'")
    return True



def _pids_in_namespace(init_pid: int) -> list[int]:
    try:
        target = os.readlink(f"/proc/{init_pid}/ns/pid")
    except OSError:
        return []
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/ns/pid") == target:
                pids.append(int(entry))
        except OSError:
            continue
    return pids


def _du(path: str) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
    return total


def _until_time(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return _parse_time(text)


def _label_filters(record: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    labels = record["Config"].get("Labels") or {}
    for v in filters.get("label") or []:
        k, eq, want = v.partition("=")
        if k not in labels or (eq and labels[k] != want):
            return False
    for v in filters.get("label!") or []:
        k, eq, want = v.partition("=")
        if k in labels and (not eq or labels[k] == want):
            return False
    return True


@contextlib.contextmanager
def _mounted_rootfs(exec_root: str, cid: str, mounts: list[dict[str, Any]]) -> Any:
    """Mount a stopped container's rootfs at a private mount point of the daemon's own."""
    from berth import linux

    target = os.path.join(exec_root, "rootfs-access", f"{cid}-{new_id()[:8]}")
    os.makedirs(target, mode=0o700)
    mounted = False
    try:
        for mount in mounts:
            options = ",".join(mount.get("options") or [])
            flags = linux.MS_BIND if mount.get("type") == "bind" else 0
            linux.mount(mount.get("source"), target, mount.get("type"), flags, options or None)
            mounted = True
        linux.mount(None, target, None, linux.MS_PRIVATE)
        yield target
    finally:
        if mounted:
            with contextlib.suppress(OSError):
                linux.umount2(target, linux.MNT_DETACH)
        with contextlib.suppress(OSError):
            os.rmdir(target)


async def _threaded_tar(write: Callable[[Any], None]) -> AsyncIterator[bytes]:
    """Run a blocking tar writer in a thread and yield its output as it comes."""
    read_fd, write_fd = os.pipe()

    def produce() -> None:
        with os.fdopen(write_fd, "wb") as out, contextlib.suppress(BrokenPipeError):
            write(out)

    producing = asyncio.ensure_future(asyncio.to_thread(produce))
    reader = os.fdopen(read_fd, "rb", buffering=0)
    try:
        while True:
            chunk = await asyncio.to_thread(reader.read, 1 << 20)
            if not chunk:
                break
            yield chunk
    finally:
        reader.close()
        await producing


class _ArchiveConflict(errors.Conflict):
    """dockerd answers a refused overwrite during ``docker cp`` with a plain 500."""

    status = 500


def _resolve_user_in_root(root: str, user: str) -> tuple[int, int]:
    """``Config.User`` as uid and gid, from the container's own account files."""
    from berth.runtime.user import resolve as resolve_user

    fds = [fs.open_file_in_root(root, "/etc/passwd"), fs.open_file_in_root(root, "/etc/group")]
    try:
        paths = [f"/proc/self/fd/{fd}" if fd is not None else "/nonexistent" for fd in fds]
        resolved = resolve_user(user, passwd=paths[0], group=paths[1])
    finally:
        for fd in fds:
            if fd is not None:
                os.close(fd)
    return resolved.uid, resolved.gid


def _chown_members(root: str, directory: str, members: list[str], uid: int, gid: int) -> None:
    for name in members:
        target = fs.member_path(directory, name)
        if target is None:
            continue
        with contextlib.suppress(errors.BerthError, OSError):
            fs.lchown_in_root(root, target, uid, gid)
