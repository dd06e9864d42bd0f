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
import json
import os
import selectors
import shutil
import signal
import socket
import sys
import tempfile
from typing import Any

from berth import runtime
from berth.errors import BerthError, InvalidArgument
from berth.shim import jsonlog, monitor, protocol
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
