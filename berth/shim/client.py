"""A blocking client for the launcher and the shims: for tests, tools and ``berth-runtime``-like
commands. The daemon, being asyncio, speaks the same ``protocol`` with its own client.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from typing import Any

from berth.errors import Unavailable
from berth.shim import protocol

DEFAULT_TIMEOUT = 30.0


def _call(path: str, request: dict[str, Any], timeout: float | None = DEFAULT_TIMEOUT
          ) -> dict[str, Any]:
    try:
        sock = protocol.connect_unix(path, timeout=timeout)
    except (FileNotFoundError, ConnectionRefusedError) as e:
        raise Unavailable(f"cannot connect to {path}: {e.strerror}") from None
    with sock:
        sock.sendall(protocol.encode(request))
        with sock.makefile("rb") as f:
            line = f.readline(protocol.MAX_LINE)
    if not line.endswith(b"\n"):
        raise Unavailable(f"{path}: connection closed before a complete response")
    return protocol.raise_for_error(protocol.decode(line))


class ShimClient:
    """Talks to the shim of the container whose state directory is ``state_dir``."""

    def __init__(self, state_dir: str, timeout: float | None = DEFAULT_TIMEOUT) -> None:
        self.state_dir = state_dir
        self.path = os.path.join(state_dir, protocol.SHIM_SOCKET)
        self.timeout = timeout

    def call(self, request: dict[str, Any], timeout: float | None = -1.0) -> dict[str, Any]:
        return _call(self.path, request, self.timeout if timeout == -1.0 else timeout)

    def state(self) -> dict[str, Any]:
        return self.call({"op": "state"})

    def start(self) -> None:
        self.call({"op": "start"})

    def kill(self, sig: int, all: bool = False) -> None:  # noqa: A002
        self.call({"op": "kill", "signal": int(sig), "all": all})

    def wait(self, timeout: float | None = None) -> dict[str, Any]:
        """Block until the container has exited and its output is logged."""
        return self.call({"op": "wait"}, timeout=timeout)

    def close_stdin(self) -> None:
        self.call({"op": "close_stdin"})

    def shutdown(self) -> None:
        self.call({"op": "shutdown"})

    def stats(self) -> dict[str, Any]:
        return self.call({"op": "stats"})["stats"]

    def pids(self) -> list[int]:
        return list(self.call({"op": "pids"})["pids"])

    def pause(self) -> None:
        self.call({"op": "pause"})

    def resume(self) -> None:
        self.call({"op": "resume"})

    def update(self, resources: dict[str, Any]) -> None:
        self.call({"op": "update", "resources": resources})

    def exec(self, exec_id: str, process: dict[str, Any], *, stdin: bool = False,
             detach: bool = False) -> tuple[int, socket.socket | None]:
        """Start ``process``; (pid, the stream socket, or None when detached)."""
        try:
            sock = protocol.connect_unix(self.path, timeout=self.timeout)
        except (FileNotFoundError, ConnectionRefusedError) as e:
            raise Unavailable(f"cannot connect to {self.path}: {e.strerror}") from None
        try:
            sock.sendall(protocol.encode({"op": "exec", "exec_id": exec_id,
                                          "process": process, "stdin": stdin,
                                          "detach": detach}))
            resp = protocol.raise_for_error(protocol.decode(protocol.read_line(sock)))
        except BaseException:
            sock.close()
            raise
        if detach:
            sock.close()
            return int(resp["pid"]), None
        sock.settimeout(None)
        return int(resp["pid"]), sock

    def exec_wait(self, exec_id: str, timeout: float | None = None) -> int:
        return int(self.call({"op": "exec_wait", "exec_id": exec_id}, timeout=timeout)
                   ["exit_code"])

    def exec_state(self, exec_id: str) -> dict[str, Any]:
        return self.call({"op": "exec_state", "exec_id": exec_id})

    def exec_resize(self, exec_id: str, height: int, width: int) -> None:
        self.call({"op": "exec_resize", "exec_id": exec_id, "height": height,
                   "width": width})

    def attach(self, *, stdin: bool = False, stdout: bool = True, stderr: bool = True,
               stdin_once: bool = False) -> socket.socket:
        """A connected socket carrying the attach stream (see ``protocol``)."""
        try:
            sock = protocol.connect_unix(self.path, timeout=self.timeout)
        except (FileNotFoundError, ConnectionRefusedError) as e:
            raise Unavailable(f"cannot connect to {self.path}: {e.strerror}") from None
        try:
            sock.sendall(protocol.encode({"op": "attach", "stdin": stdin, "stdout": stdout,
                                          "stderr": stderr, "stdin_once": stdin_once}))
            protocol.raise_for_error(protocol.decode(protocol.read_line(sock)))
        except BaseException:
            sock.close()
            raise
        sock.settimeout(None)
        return sock


def read_frames(sock: socket.socket) -> list[tuple[int, bytes]]:
    """Read an attach stream to its end: the (stream, payload) frames, in order."""
    data = bytearray()
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    frames = []
    pos = 0
    while pos + protocol.FRAME_HEADER_SIZE <= len(data):
        stream, size = protocol.parse_frame_header(bytes(data[pos:pos + 8]))
        pos += protocol.FRAME_HEADER_SIZE
        frames.append((stream, bytes(data[pos:pos + size])))
        pos += size
    return frames


def spawn_via_launcher(exec_root: str, request: dict[str, Any],
                       timeout: float | None = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """Ask the launcher for a shim; returns ``{"ok": True, "shim_pid", "init_pid"}``."""
    return _call(os.path.join(exec_root, protocol.LAUNCHER_SOCKET),
                 {"op": "spawn", **request}, timeout)


def ping_launcher(exec_root: str, timeout: float = 5.0) -> int:
    return int(_call(os.path.join(exec_root, protocol.LAUNCHER_SOCKET), {"op": "ping"},
                     timeout)["pid"])


def start_launcher(exec_root: str, python: str = sys.executable, timeout: float = 10.0,
                   log_path: str | None = None, containers_per_monitor: int | None = None
                   ) -> int:
    """Start a detached launcher for ``exec_root`` and return its pid once it answers.

    The launcher forks into the background (``--detach``) in a new session, so it is not
    our child and outlives us. Call this before starting threads.
    """
    os.makedirs(exec_root, 0o711, exist_ok=True)
    log = log_path or os.path.join(exec_root, "launcher.log")
    extra = [] if containers_per_monitor is None else [
        "--containers-per-monitor", str(containers_per_monitor)]
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [python, "-m", "berth.shim.launcher", "--exec-root", exec_root, "--detach", *extra],
            stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True,
            close_fds=True)
    code = proc.wait(timeout)
    if code != 0:
        raise Unavailable(f"launcher exited with {code}; see {log}")
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Unavailable, OSError):
            return ping_launcher(exec_root)
        if time.monotonic() > deadline:
            raise Unavailable(f"launcher for {exec_root} did not answer; see {log}")
        time.sleep(0.01)
