"""The daemon's asyncio client for the launcher and the per-container shims.

The wire format (one JSON object per line on a unix stream socket, then raw streams for
attach) is written down in ``berth.shim.protocol``; this module only speaks it from asyncio, so
the daemon never blocks its event loop on a shim. Every call opens its own connection: a shim
serves each connection independently, and a restarted daemon simply connects again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
from typing import Any

from berth import errors

__all__ = ["LauncherClient", "ShimClient", "ShimGone"]

_LINE_LIMIT = 1024 * 1024


class ShimGone(errors.Unavailable):
    """The shim's socket is gone: the shim exited (or the host rebooted)."""


# Operations a shim started by an older build may not know; it closes the connection on them.
_NEW_OPS = frozenset({"stats", "pids", "pause", "resume", "update", "exec", "exec_wait",
                      "exec_state", "exec_resize"})


def _raise_for(reply: dict[str, Any]) -> dict[str, Any]:
    if reply.get("ok"):
        return reply
    message = reply.get("error") or "shim request failed"
    kind = reply.get("kind") or "BerthError"
    if "unknown op" in message or "unknown operation" in message:
        raise errors.NotImplementedYet(f"the container's monitor: {message}")
    if kind == "RuntimeFailure":
        raise errors.RuntimeFailure(message, int(reply.get("exit_code") or 125))
    cls = getattr(errors, kind, None)
    if isinstance(cls, type) and issubclass(cls, errors.BerthError):
        raise cls(message)
    raise errors.BerthError(message)


_SUN_PATH_MAX = 107  # bytes of sun_path usable for a NUL-terminated path


async def _connect(path: str) -> socket.socket:
    """A connected, non-blocking unix socket to ``path``, whatever its length.

    ``sun_path`` holds 108 bytes and a shim socket lives at
    ``EXEC_ROOT/containers/<64 hex>/shim.sock``, so a deep exec root overflows it. A long path
    is reached through an ``O_PATH`` descriptor of its directory, as
    ``/proc/self/fd/N/shim.sock``; the descriptor only lives for the connect.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    sock.setblocking(False)
    dir_fd: int | None = None
    try:
        target = path
        if len(os.fsencode(path)) > _SUN_PATH_MAX:
            dir_fd = os.open(os.path.dirname(path) or ".",
                             os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            target = f"/proc/self/fd/{dir_fd}/{os.path.basename(path)}"
        await asyncio.get_running_loop().sock_connect(sock, target)
    except BaseException:
        sock.close()
        raise
    finally:
        if dir_fd is not None:
            os.close(dir_fd)
    return sock


async def _open(path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    try:
        sock = await _connect(path)
    except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError) as exc:
        raise ShimGone(f"cannot reach {path}: {exc.strerror}") from None
    return await asyncio.open_unix_connection(sock=sock, limit=_LINE_LIMIT)


async def _call(path: str, request: dict[str, Any],
                keep: bool = False) -> tuple[dict[str, Any], asyncio.StreamReader | None,
                                             asyncio.StreamWriter | None]:
    reader, writer = await _open(path)
    try:
        writer.write(json.dumps(request).encode() + b"\n")
        await writer.drain()
        line = await reader.readline()
    except ConnectionError as exc:
        # The shim went away mid-request (its container exited and it shut down).
        writer.close()
        raise ShimGone(f"{path} dropped {request.get('op')}: {exc}") from None
    except BaseException:
        writer.close()
        raise
    if not line:
        writer.close()
        if request.get("op") in _NEW_OPS:
            raise errors.NotImplementedYet(
                f"the container's monitor does not support {request.get('op')!r} yet")
        raise ShimGone(f"{path} closed the connection during {request.get('op')}")
    try:
        reply = json.loads(line)
    except ValueError:
        writer.close()
        raise errors.Unavailable(f"bad reply from {path}: {line[:200]!r}") from None
    if not keep or not reply.get("ok"):
        writer.close()
        return _raise_for(reply), None, None
    return reply, reader, writer


class LauncherClient:
    """Asks the warm launcher to fork a shim (and with it a container, blocked before exec)."""

    def __init__(self, exec_root: str) -> None:
        self.socket_path = os.path.join(exec_root, "launcher.sock")

    async def ping(self) -> dict[str, Any]:
        reply, _, _ = await _call(self.socket_path, {"op": "ping"})
        return reply

    async def spawn(self, request: dict[str, Any]) -> dict[str, Any]:
        reply, _, _ = await _call(self.socket_path, {"op": "spawn", **request})
        return reply


class ShimClient:
    def __init__(self, state_dir: str) -> None:
        self.state_dir = state_dir
        self.socket_path = os.path.join(state_dir, "shim.sock")

    async def request(self, op: str, **fields: Any) -> dict[str, Any]:
        reply, _, _ = await _call(self.socket_path, {"op": op, **fields})
        return reply

    async def state(self) -> dict[str, Any]:
        return await self.request("state")

    async def start(self) -> dict[str, Any]:
        return await self.request("start")

    async def kill(self, signal: int, all_processes: bool = False) -> None:
        await self.request("kill", signal=signal, all=all_processes)

    async def wait(self) -> dict[str, Any]:
        """Blocks until the container exited and its output is drained into the log."""
        return await self.request("wait")

    async def close_stdin(self) -> None:
        await self.request("close_stdin")

    async def shutdown(self) -> None:
        with contextlib.suppress(ShimGone, ConnectionError):
            await self.request("shutdown")

    async def attach(self, stdin: bool, stdout: bool, stderr: bool,
                     stdin_once: bool) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A live stream: multiplexed frames (raw bytes with a TTY) out, stdin bytes in."""
        _, reader, writer = await _call(
            self.socket_path,
            {"op": "attach", "stdin": stdin, "stdout": stdout, "stderr": stderr,
             "stdin_once": stdin_once},
            keep=True)
        assert reader is not None and writer is not None
        return reader, writer

    async def exec(self, exec_id: str, process: dict[str, Any], stdin: bool,
                   detach: bool) -> tuple[int, asyncio.StreamReader, asyncio.StreamWriter]:
        """Start a process in the container; the connection then streams like attach."""
        reply, reader, writer = await _call(
            self.socket_path,
            {"op": "exec", "exec_id": exec_id, "process": process, "stdin": stdin,
             "detach": detach},
            keep=True)
        assert reader is not None and writer is not None
        return int(reply.get("pid") or 0), reader, writer
