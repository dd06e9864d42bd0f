"""``berthd``: wires the services together and serves the Engine API.

Order matters at start: the launcher (a warm, single-threaded fork server that makes shims and
containers) must be started before this process has any thread, because forking a threaded
process is unsafe; it is started with ``subprocess`` in its own session so it outlives us.
Then the store is opened, running containers are reconnected, and the sockets are served.
On SIGTERM/SIGINT the daemon stops serving, stops its containers unless ``--live-restore`` is
set (as dockerd does), and exits; kill -9 leaves every container running for the next start.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from typing import Any

from berth import __version__

__all__ = ["main"]

log = logging.getLogger("berthd")

DEFAULT_HOST = "unix:///run/berth/berth.sock"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="berthd", description="The berth container daemon.")
    parser.add_argument("-H", "--host", action="append", default=[],
                        help="daemon socket(s) to listen on (unix://PATH or tcp://HOST:PORT)")
    parser.add_argument("--data-root", default="/var/lib/berth",
                        help="root of persistent state (default /var/lib/berth)")
    parser.add_argument("--exec-root", default="/run/berth",
                        help="root of runtime state (default /run/berth)")
    parser.add_argument("-p", "--pidfile", default=None,
                        help="path to the daemon's pid file (default EXEC_ROOT/berthd.pid)")
    parser.add_argument("-l", "--log-level", default="info",
                        choices=["debug", "info", "warn", "error", "fatal"])
    parser.add_argument("-D", "--debug", action="store_true", help="debug logging")
    parser.add_argument("--live-restore", action="store_true",
                        help="keep containers running when the daemon stops")
    parser.add_argument("--group", default=None, help="group that owns the unix socket")
    parser.add_argument("--containers-per-monitor", type=int, default=None, metavar="N",
                        help="containers one monitor process serves at most (default 16; "
                        "1: a monitor process per container); read when the launcher starts")
    parser.add_argument("-v", "--version", action="version", version=f"berthd {__version__}")
    args = parser.parse_args(argv)
    if args.containers_per_monitor is not None and args.containers_per_monitor < 1:
        parser.error("--containers-per-monitor must be at least 1")
    return args


def ensure_launcher(exec_root: str, containers_per_monitor: int | None = None) -> None:
    """Reuse a running launcher (after a daemon restart) or start one, detached."""
    from berth.errors import Unavailable
    from berth.shim.client import ping_launcher, start_launcher

    try:
        ping_launcher(exec_root, timeout=2)
    except (Unavailable, OSError, ValueError):
        start_launcher(exec_root, containers_per_monitor=containers_per_monitor)


def stop_launcher(exec_root: str) -> None:
    try:
        with open(os.path.join(exec_root, "launcher.pid")) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)


class Daemon:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.data_root = os.path.abspath(args.data_root)
        self.exec_root = os.path.abspath(args.exec_root)
        self.hosts = args.host or [DEFAULT_HOST]
        self.pidfile = args.pidfile or os.path.join(self.exec_root, "berthd.pid")
        self._stop = asyncio.Event()

    def _write_pidfile(self) -> None:
        from berth.util import atomic_write

        os.makedirs(os.path.dirname(self.pidfile) or ".", exist_ok=True)
        try:
            with open(self.pidfile) as f:
                old = int(f.read().strip() or 0)
            if old and old != os.getpid() and os.path.exists(f"/proc/{old}"):
                with open(f"/proc/{old}/cmdline", "rb") as f:
                    if b"berthd" in f.read():
                        sys.exit(f"berthd: pid file {self.pidfile} names a running daemon "
                                 f"({old})")
        except (OSError, ValueError):
            pass
        atomic_write(self.pidfile, f"{os.getpid()}\n".encode(), durable=False)

    async def run(self) -> None:
        from berth.api.app import Services, build_router, error_response
        from berth.container.service import ContainerService
        from berth.events.bus import EventBus
        from berth.http.server import Server
        from berth.image.service import ImageService
        from berth.metadata.store import MetadataStore
        from berth.volume import VolumeService

        db = await asyncio.to_thread(MetadataStore, os.path.join(self.data_root, "berth.db"))
        events = await asyncio.to_thread(EventBus, self.data_root)
        events.bind(asyncio.get_running_loop())
        images = ImageService(
            self.data_root, db,
            emit=lambda action, image, attrs: events.emit("image", action, image, attrs))
        volumes = VolumeService(
            self.data_root,
            emit=lambda action, name, attrs: events.emit("volume", action, name, attrs))
        containers = ContainerService(self.data_root, self.exec_root, db, images,
                                      volumes=volumes, events=events)
        volumes.in_use = containers.volume_users
        await containers.restore()
        info = {"data_root": self.data_root, "exec_root": self.exec_root,
                "debug": self.args.debug, "live_restore": self.args.live_restore,
                "id": _daemon_id(self.data_root)}
        router = build_router(Services(containers=containers, images=images, info=info,
                                       volumes=volumes, events=events))
        server = Server(router, error_response, server_header=f"berth/{__version__} (linux)")
        for host in self.hosts:
            await self._listen(server, host)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        log.info("berthd %s serving %s", __version__, ", ".join(self.hosts))
        try:
            await self._stop.wait()
        finally:
            log.info("shutting down")
            await server.close()
            await containers.shutdown(stop_containers=not self.args.live_restore)
            events.close()
            db.close()
            for host in self.hosts:
                if host.startswith("unix://"):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(host[len("unix://"):])
            if not self.args.live_restore and containers.counts()["ContainersRunning"] == 0:
                stop_launcher(self.exec_root)

    async def _listen(self, server: Any, host: str) -> None:
        if host.startswith("unix://"):
            path = host[len("unix://"):]
            await server.listen_unix(path)
            if self.args.group:
                import grp

                with contextlib.suppress(KeyError, OSError):
                    os.chown(path, 0, grp.getgrnam(self.args.group).gr_gid)
        elif host.startswith("tcp://"):
            hostport = host[len("tcp://"):]
            address, _, port = hostport.rpartition(":")
            await server.listen_tcp(address or "127.0.0.1", int(port or 2375))
        elif host.startswith("fd://"):
            raise SystemExit("berthd: fd:// sockets are not supported")
        else:
            raise SystemExit(f"berthd: invalid host {host!r}")


def _daemon_id(data_root: str) -> str:
    import uuid

    path = os.path.join(data_root, "engine-id")
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        value = str(uuid.uuid4())
        with contextlib.suppress(OSError), open(path, "w") as f:
            f.write(value)
        return value


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    level = "debug" if args.debug else args.log_level
    logging.basicConfig(
        level={"warn": logging.WARNING, "fatal": logging.CRITICAL}.get(
            level, getattr(logging, level.upper(), logging.INFO)),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if os.geteuid() != 0:
        sys.exit("berthd: must run as root")
    daemon = Daemon(args)
    for directory in (daemon.data_root, daemon.exec_root):
        os.makedirs(directory, mode=0o711, exist_ok=True)
    daemon._write_pidfile()
    started = time.monotonic()
    ensure_launcher(daemon.exec_root, args.containers_per_monitor)
    log.debug("launcher ready in %.1f ms", (time.monotonic() - started) * 1000)
    try:
        asyncio.run(daemon.run())
    finally:
        with contextlib.suppress(OSError), open(daemon.pidfile) as f:
            if int(f.read().strip() or 0) == os.getpid():
                os.unlink(daemon.pidfile)


if __name__ == "__main__":
    main()

