"""The launcher: a warm, single-threaded fork server for shims.

``python -m berth.shim.launcher --exec-root DIR`` imports the runtime and the shim up front,
listens on ``DIR/launcher.sock`` and writes ``DIR/launcher.pid``. For each ``spawn`` request it
forks a shim, hands it the client's connection (the shim answers on it once the container is
created) and goes straight back to ``accept``: it never waits on a shim. The daemon starts it
before it has threads, in a session of its own, so it survives daemon restarts; shims survive
the launcher. Forking this small process costs about a millisecond; starting an interpreter
would cost tens.

It reaps its shims on SIGCHLD and exits on SIGTERM, leaving shims running.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import selectors
import signal
import socket
import sys
from typing import Any

from berth.errors import BerthError, InvalidArgument
from berth.shim import monitor, protocol
from berth.util import atomic_write

REQUEST_TIMEOUT = 10.0
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


class Launcher:
    def __init__(self, exec_root: str, listener: socket.socket) -> None:
        self.exec_root = exec_root
        self.listener = listener
        self.sel = selectors.DefaultSelector()
        self.pending: dict[int, tuple[socket.socket, bytearray]] = {}

    def serve(self) -> None:
        self.listener.setblocking(False)
        self.sel.register(self.listener, selectors.EVENT_READ, None)
        while True:
            for key, _ in self.sel.select():
                if key.fileobj is self.listener:
                    self.accept()
                else:
                    self.read(key.fd)

    def accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            sock.setblocking(False)
            self.pending[sock.fileno()] = (sock, bytearray())
            self.sel.register(sock, selectors.EVENT_READ, sock)

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
                self.spawn(req, sock)
            else:
                raise InvalidArgument(f"unknown op {op!r}")
        except (BerthError, ValueError) as e:
            err = e if isinstance(e, BerthError) else InvalidArgument(f"bad request: {e}")
            self._reply(sock, protocol.error_response(err))

    def spawn(self, req: dict[str, Any], sock: socket.socket) -> None:
        pid = os.fork()
        if pid == 0:
            try:
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                for other, _ in list(self.pending.values()):
                    other.close()
                self.sel.close()
                self.listener.close()
                monitor.run(req, sock)
            finally:
                os._exit(1)
        sock.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m berth.shim.launcher",
                                     description="berth's fork server for shims")
    parser.add_argument("--exec-root", required=True)
    parser.add_argument("--detach", action="store_true",
                        help="fork into the background once listening; the parent exits 0")
    args = parser.parse_args(argv)
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
    signal.signal(signal.SIGCHLD, _reap)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    # Everything imported so far stays out of the collector's sight: a collection in a
    # forked shim would otherwise touch (and so copy) every page of the launcher's heap.
    gc.freeze()
    try:
        Launcher(exec_root, listener).serve()
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
