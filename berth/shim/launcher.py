"""The launcher: a warm, single-threaded fork server for container monitors.

``python -m berth.shim.launcher --exec-root DIR`` imports the runtime and the shim up front,
listens on ``DIR/launcher.sock`` and writes ``DIR/launcher.pid``. Each ``spawn`` request goes,
with the client's connection, to a monitor process with room (one that serves fewer than
``--containers-per-monitor`` containers), forked when none has: the monitor answers on the
connection once the container is created. The launcher never waits on a monitor. The daemon
starts it before it has threads, in a session of its own, so it survives daemon restarts;
monitors survive the launcher. Forking this small process costs about a millisecond;
starting an interpreter would cost tens.

Why several containers per monitor: a forked Python process owns 0.7 MB or more of pages of
its own however little it does, and a monitor that works for its container 1.5 MB more; one
process per container would make the monitors most of the engine's memory. Sixteen
containers share one by default (0.3–0.4 MB each, measured with 50 running); ``1`` gives
each its own, for those who want a monitor's failure to reach only its container.

It reaps its monitors on SIGCHLD and exits on SIGTERM, leaving them running.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import selectors
import shutil
import signal
import socket
import struct
import sys
import tempfile
from typing import Any

from berth import runtime
from berth.errors import BerthError, InvalidArgument, Unavailable
from berth.runtime import sync
from berth.shim import jsonlog, monitor, protocol
from berth.util import atomic_write

MONITOR_LOG = "monitor.log"  # the monitors' own diagnostics
REQUEST_TIMEOUT = 10.0
CONTAINERS_PER_MONITOR = 16
SPAWN_ATTEMPTS = 3  # monitors that vanish between our choice and their answer
_SPAWN_FIELDS = ("id", "bundle", "state_dir")


class _Stop(Exception):
    pass


def _reap(_sig: int = 0, _frame: object = None) -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _stop(_sig: int, _frame: object) -> None:
    raise _Stop


def validate_spawn(req: dict[str, Any]) -> None:
    for name in _SPAWN_FIELDS:
        if not isinstance(req.get(name), str) or not req[name]:
            raise InvalidArgument(f"spawn: {name} is required")
    for name in ("bundle", "state_dir"):
        if not os.path.isabs(req[name]):
            raise InvalidArgument(f"spawn: {name} must be an absolute path")
    if req.get("log_path") is not None and not isinstance(req["log_path"], str):
        raise InvalidArgument("spawn: log_path must be a string or null")
    if not isinstance(req.get("rootfs_mounts") or [], list):
        raise InvalidArgument("spawn: rootfs_mounts must be a list")
    if req.get("log_driver") not in (None, "json-file", "none"):
        raise InvalidArgument(f"spawn: unknown log_driver {req['log_driver']!r}")
    opts = req.get("log_opts") or {}
    if not isinstance(opts, dict):
        raise InvalidArgument("spawn: log_opts must be an object")
    try:
        if opts.get("max-size") not in (None, "", "-1"):
            jsonlog.parse_size(str(opts["max-size"]))
        if opts.get("max-file") not in (None, "") and int(opts["max-file"]) < 1:
            raise ValueError("max-file must be at least 1")
    except ValueError as e:
        raise InvalidArgument(f"spawn: log_opts: {e}") from None


class _MonitorRef:
    """A monitor we forked: its control socket, how many containers it said it serves, and
    the spawns sent to it that it has not yet acknowledged (ours to send elsewhere should
    it exit first)."""

    __slots__ = ("pid", "control", "count", "unacked")

    def __init__(self, pid: int, control: socket.socket) -> None:
        self.pid = pid
        self.control = control
        self.count = 0
        self.unacked: dict[int, tuple[bytes, socket.socket, int]] = {}  # (line, client, tries)


class Launcher:
    def __init__(self, exec_root: str, listener: socket.socket,
                 per_monitor: int = CONTAINERS_PER_MONITOR) -> None:
        self.exec_root = exec_root
        self.listener = listener
        self.per_monitor = per_monitor
        self.sel = selectors.DefaultSelector()
        self.pending: dict[int, tuple[socket.socket, bytearray]] = {}
        self.monitors: dict[int, _MonitorRef] = {}  # by control fd
        self.seq = 0

    def serve(self) -> None:
        self.listener.setblocking(False)
        self.sel.register(self.listener, selectors.EVENT_READ, None)
        while True:
            for key, _ in self.sel.select():
                if key.fileobj is self.listener:
                    self.accept()
                elif key.data is None:
                    self.read(key.fd)
                else:
                    self.on_monitor(key.data)

    def accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            sock.setblocking(False)
            self.pending[sock.fileno()] = (sock, bytearray())
            self.sel.register(sock, selectors.EVENT_READ, None)

    def _forget(self, fd: int) -> socket.socket:
        sock, _ = self.pending.pop(fd)
        self.sel.unregister(sock)
        return sock

    def _reply(self, sock: socket.socket, resp: dict[str, Any]) -> None:
        sock.settimeout(REQUEST_TIMEOUT)
        with contextlib.suppress(OSError):
            sock.sendall(protocol.encode(resp))
        sock.close()

    def read(self, fd: int) -> None:
        sock, buf = self.pending[fd]
        try:
            data = sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._forget(fd).close()
            return
        buf += data
        nl = buf.find(b"\n")
        if nl < 0:
            if len(buf) > protocol.MAX_LINE:
                self._reply(self._forget(fd), protocol.error_response(
                    InvalidArgument("request too long")))
            return
        sock = self._forget(fd)
        try:
            req = protocol.decode(bytes(buf[:nl]))
            op = req.get("op")
            if op == "ping":
                self._reply(sock, protocol.ok(pid=os.getpid()))
            elif op == "spawn":
                validate_spawn(req)
                self.spawn(bytes(buf[:nl]), sock)
            else:
                raise InvalidArgument(f"unknown op {op!r}")
        except (BerthError, ValueError) as e:
            err = e if isinstance(e, BerthError) else InvalidArgument(f"bad request: {e}")
            self._reply(sock, protocol.error_response(err))

    def spawn(self, line: bytes, sock: socket.socket, tries: int = 0) -> None:
        """Hand the request (its JSON line) and the client's connection to a monitor;
        ``tries``: how many monitors already vanished with it."""
        self.seq += 1
        msg = b'{"seq":%d,"request":%s}' % (self.seq, line)
        if len(msg) > monitor.CONTROL_MAX:
            self._reply(sock, protocol.error_response(
                InvalidArgument("spawn: request too large")))
            return
        while tries < SPAWN_ATTEMPTS:
            tries += 1
            ref = self.monitor_with_room() or self.start_monitor()
            try:
                ref.control.sendmsg([msg], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                             struct.pack("i", sock.fileno()))])
            except OSError as e:  # gone, or too far behind to take more now
                print(f"launcher: monitor {ref.pid}: {e}", file=sys.stderr)
                ref.count = self.per_monitor
                continue
            ref.unacked[self.seq] = (line, sock, tries)
            return
        self._reply(sock, protocol.error_response(
            Unavailable("no container monitor took the spawn; see launcher.log")))

    def monitor_with_room(self) -> _MonitorRef | None:
        """The fullest monitor that still has room: containers gather in few processes."""
        best = None
        for ref in self.monitors.values():
            load = ref.count + len(ref.unacked)
            if load < self.per_monitor and (best is None
                                            or load > best.count + len(best.unacked)):
                best = ref
        return best

    def start_monitor(self) -> _MonitorRef:
        ours, theirs = sync.socketpair()
        with contextlib.suppress(OSError):  # a big spawn must not wait for the monitor
            ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, monitor.CONTROL_MAX * 2)
        log_path = os.path.join(self.exec_root, MONITOR_LOG)
        pid = os.fork()
        if pid == 0:
            try:
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                ours.close()
                for other, _ in list(self.pending.values()):
                    other.close()
                for ref in self.monitors.values():
                    ref.control.close()
                    for _, client, _ in ref.unacked.values():
                        client.close()
                self.sel.close()
                self.listener.close()
                monitor.serve(theirs, log_path)
            finally:
                os._exit(1)
        theirs.close()
        ours.setblocking(False)
        ref = _MonitorRef(pid, ours)
        self.monitors[ours.fileno()] = ref
        self.sel.register(ours, selectors.EVENT_READ, ref)
        return ref

    def on_monitor(self, ref: _MonitorRef) -> None:
        try:
            msg = sync.recv(ref.control)
        except BlockingIOError:
            return
        except (OSError, ValueError):
            msg = None
        if msg is None:
            # It exited (it had no container left, or it failed): what it never took goes
            # to another.
            self.monitors.pop(ref.control.fileno(), None)
            self.sel.unregister(ref.control)
            ref.control.close()
            for line, sock, tries in ref.unacked.values():
                self.spawn(line, sock, tries)
            ref.unacked.clear()
            return
        if msg["type"] == "took":
            taken = ref.unacked.pop(msg.get("seq"), None)
            if taken is not None:
                taken[1].close()
        ref.count = int(msg.get("count") or 0)


def warm_up(exec_root: str) -> None:
    """Run one throwaway container through create, start and delete, in this process.

    A shim forked from a launcher that never ran the path takes about twice as long to
    create its container: every lazily built cache, specialised bytecode and first-use
    initialisation would be redone, and copied page by page, in each shim. Done once here,
    the shims inherit it. The container runs the host's ``true`` from read-only binds of the
    host's /usr, /bin and /lib*, made inside its own mount namespace: no image is needed and
    nothing touches the host's mounts.
    """
    true = shutil.which("true")
    if true is None:
        return
    work = tempfile.mkdtemp(prefix=".warmup-", dir=exec_root)
    try:
        rootfs = os.path.join(work, "rootfs")
        os.mkdir(rootfs)
        spec = runtime.default_spec([true])
        spec["root"]["readonly"] = True
        for name in ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            host = "/" + name
            if os.path.islink(host):
                os.symlink(os.readlink(host), os.path.join(rootfs, name))
            elif os.path.isdir(host):
                spec["mounts"].append({"destination": host, "type": "bind", "source": host,
                                       "options": ["rbind", "ro", "rprivate"]})
        with open(os.path.join(work, "config.json"), "w") as f:
            json.dump(spec, f)
        state_dir = os.path.join(work, "state")
        pid = runtime.create(f"warmup-{os.getpid()}", work, state_dir)
        runtime.start(state_dir)
        os.waitpid(pid, 0)
        runtime.delete(state_dir)
    except Exception as e:  # noqa: BLE001 - a failed warm-up only costs speed
        print(f"launcher: warm-up failed (shims start slower): {e}", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m berth.shim.launcher",
                                     description="berth's fork server for shims")
    parser.add_argument("--exec-root", required=True)
    parser.add_argument("--detach", action="store_true",
                        help="fork into the background once listening; the parent exits 0")
    parser.add_argument("--no-warm-up", action="store_true",
                        help="skip the throwaway container run at start")
    parser.add_argument("--containers-per-monitor", type=int, default=CONTAINERS_PER_MONITOR,
                        metavar="N", help="containers one monitor process serves at most "
                        f"(default {CONTAINERS_PER_MONITOR}; 1: a process per container)")
    args = parser.parse_args(argv)
    if args.containers_per_monitor < 1:
        parser.error("--containers-per-monitor must be at least 1")
    exec_root = os.path.abspath(args.exec_root)
    os.makedirs(exec_root, 0o711, exist_ok=True)
    sock_path = os.path.join(exec_root, protocol.LAUNCHER_SOCKET)
    pid_path = os.path.join(exec_root, protocol.LAUNCHER_PID)
    listener = protocol.listen_unix(sock_path)
    if args.detach:
        pid = os.fork()
        if pid:
            atomic_write(pid_path, f"{pid}\n".encode(), durable=False)
            os._exit(0)
    else:
        atomic_write(pid_path, f"{os.getpid()}\n".encode(), durable=False)
    if not args.no_warm_up:
        warm_up(exec_root)
    signal.signal(signal.SIGCHLD, _reap)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    # Everything imported so far stays out of the collector's sight: a collection in a
    # forked shim would otherwise touch (and so copy) every page of the launcher's heap.
    gc.freeze()
    try:
        Launcher(exec_root, listener, args.containers_per_monitor).serve()
    except _Stop:
        pass
    finally:
        listener.close()
        with contextlib.suppress(OSError):
            with open(pid_path) as f:
                mine = f.read().strip() == str(os.getpid())
            if mine:
                os.unlink(pid_path)
                os.unlink(sock_path)
    sys.exit(0)


if __name__ == "__main__":
    main()
