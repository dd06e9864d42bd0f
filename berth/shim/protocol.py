"""The launcher and shim wire protocol, written down once for both ends and the daemon.

Transport: a unix stream socket; requests and responses are one JSON object per line
(UTF-8, ``\\n``-terminated). One request per connection, except that ``attach`` turns its
connection into a raw stream after the response line.

Responses: ``{"ok": true, ...}`` on success; on failure
``{"ok": false, "error": MESSAGE, "kind": KIND, "exit_code": N}`` where KIND is the name of a
class in ``berth.errors`` (``NotFound``, ``Conflict``, ``InvalidArgument``, ``RuntimeFailure``,
...) and ``exit_code`` is present for ``RuntimeFailure`` (127: command not found, 126: not
executable, 125: anything else).

Launcher (``EXEC_ROOT/launcher.sock``):

=====================================================  ========================================
request                                                response
=====================================================  ========================================
``{"op": "ping"}``                                     ``{"ok": true, "pid": N}``
``{"op": "spawn", "id": ID, "bundle": DIR,             sent by the monitor process that took
"state_dir": DIR, "log_path": PATH|null,               the container, on the same connection,
"stdin": BOOL, "tty": BOOL, "rootfs_mounts": [...]}`` once it is created (init blocked
                                                       before exec): ``{"ok": true, "shim_pid":
                                                       N, "init_pid": N}`` (N: the monitor's
                                                       pid), or the error
=====================================================  ========================================

Shim (``STATE_DIR/shim.sock``):

=====================================================  ========================================
request                                                response
=====================================================  ========================================
``{"op": "state"}``                                    ``{"ok": true, "status": "created|running|
                                                       stopped", "init_pid": N, "shim_pid": N,
                                                       "exit_code": N|null, "signal": N|null,
                                                       "started_at": T|null,
                                                       "finished_at": T|null}``
``{"op": "start"}``                                    ``{"ok": true}`` once init has exec'd;
                                                       ``Conflict`` if not in created state
``{"op": "kill", "signal": N, "all": BOOL}``           ``{"ok": true}``; ``Conflict`` if stopped
``{"op": "wait"}``                                     sent when the container has exited and its
                                                       output is drained and logged:
                                                       ``{"ok": true, "exit_code": N, "signal":
                                                       N|null, "finished_at": T,
                                                       "oom_killed": false}``
``{"op": "attach", "stdin": B, "stdout": B,            ``{"ok": true}``, then a raw stream (below)
"stderr": B, "stdin_once": B}``
``{"op": "close_stdin"}``                              ``{"ok": true}``
``{"op": "resize", "height": H, "width": W}``          ``{"ok": true}``; ``Conflict`` without tty
``{"op": "shutdown"}``                                 ``{"ok": true}``; the shim removes its
                                                       socket and exits once the container has
                                                       stopped
``{"op": "stats"}``                                    ``{"ok": true, "stats": {"cpu_stats",
                                                       "memory_stats", "pids_stats",
                                                       "blkio_stats"}}`` (Docker's Engine API
                                                       sub-objects, cgroup v1 names)
``{"op": "pids"}``                                     ``{"ok": true, "pids": [host pids]}``
``{"op": "pause"}`` / ``{"op": "resume"}``             ``{"ok": true}``; ``state`` says
                                                       ``"paused"`` in between
``{"op": "update", "resources": {OCI resources}}``     ``{"ok": true}`` once applied
``{"op": "exec", "exec_id": ID, "process": {OCI        ``{"ok": true, "pid": N}``, then (unless
process}, "stdin": B, "detach": B}``                   detached) a stream as for attach, closed
                                                       once the process exited and its output
                                                       is drained; 127/126 as for create
``{"op": "exec_wait", "exec_id": ID}``                 ``{"ok": true, "exit_code": N}`` once it
                                                       has exited (at once if it has)
``{"op": "exec_state", "exec_id": ID}``                ``{"ok": true, "running": B, "pid": N,
                                                       "exit_code": N|null}``
``{"op": "exec_resize", "exec_id": ID, "height": H,    ``{"ok": true}``; ``Conflict`` without tty
"width": W}``
=====================================================  ========================================

The ``spawn`` request may also carry ``"log_driver": "json-file"|"none"`` and ``"log_opts":
{"max-size": "10m", "max-file": "3"}`` (Docker's units: k, m, g): the log is rotated to
``<log>.1`` … keeping ``max-file`` files; ``none`` writes no log.

Exec stream: as attach's, for the exec'd process only (frames without tty, raw with); the
client's half-close closes the process's stdin (with a tty: an end-of-file character).

Attach stream: shim → client, Docker's multiplexed frames of live output from the moment of
attach: ``[stream, 0, 0, 0, length: uint32 big-endian] + payload`` (stream 1 stdout, 2 stderr);
client → shim, raw stdin bytes. The client's half-close (``SHUT_WR``) closes the container's
stdin when ``stdin_once``, unless the container has a tty: a client leaving a terminal (its
detach keys) leaves it open for the next one, as dockerd does. When the container has exited
and its output is drained, the shim sends what is left and closes the connection. A client
far behind holds the output back (the container waits, as under dockerd); one that takes
nothing for seconds is dropped. The log always gets everything.

With ``"tty": true`` the container's stdio is a pty (the bundle must set ``process.terminal``):
its output is one stream, sent to attach clients raw, without frames (as Docker does), and
logged as ``stdout``; ``resize`` sets the window size.

Times are RFC 3339 with nanoseconds, UTC (``2024-01-02T03:04:05.123456789Z``).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import struct
from typing import Any

from berth import errors

LAUNCHER_SOCKET = "launcher.sock"
LAUNCHER_PID = "launcher.pid"
SHIM_SOCKET = "shim.sock"
SHIM_STATE = "shim.json"
EXIT_FILE = "exit.json"

STDIN, STDOUT, STDERR = 0, 1, 2
_FRAME = struct.Struct(">BxxxI")
FRAME_HEADER_SIZE = _FRAME.size
MAX_LINE = 1 << 20


def encode(obj: dict[str, Any]) -> bytes:
    """One message on the wire: compact JSON and a newline."""
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes | str) -> dict[str, Any]:
    obj = json.loads(line)
    if not isinstance(obj, dict):
        raise errors.InvalidArgument("protocol: a message must be a JSON object")
    return obj


def ok(**fields: Any) -> dict[str, Any]:
    return {"ok": True, **fields}


def error_response(exc: BaseException) -> dict[str, Any]:
    """The wire form of ``exc``; anything not a ``BerthError`` travels as ``RuntimeFailure``."""
    if isinstance(exc, errors.BerthError):
        resp: dict[str, Any] = {"ok": False, "error": exc.message, "kind": type(exc).__name__}
        if isinstance(exc, errors.RuntimeFailure):
            resp["exit_code"] = exc.exit_code
        return resp
    return {"ok": False, "error": f"{type(exc).__name__}: {exc}", "kind": "RuntimeFailure",
            "exit_code": 125}


def raise_for_error(resp: dict[str, Any]) -> dict[str, Any]:
    """Return ``resp`` if it is a success, else raise the ``berth.errors`` class it names."""
    if resp.get("ok"):
        return resp
    message = str(resp.get("error") or "unknown error")
    cls = getattr(errors, str(resp.get("kind") or ""), None)
    if not (isinstance(cls, type) and issubclass(cls, errors.BerthError)):
        cls = errors.BerthError
    if issubclass(cls, errors.RuntimeFailure):
        raise cls(message, int(resp.get("exit_code") or 125))
    raise cls(message)


def frame(stream: int, payload: bytes) -> bytes:
    """A Docker stream frame: 8-byte header, then ``payload``."""
    return _FRAME.pack(stream, len(payload)) + payload


def parse_frame_header(header: bytes) -> tuple[int, int]:
    """(stream, length) from an 8-byte frame header."""
    return _FRAME.unpack(header)


def _short_path(path: str) -> tuple[str, int | None]:
    """``sun_path`` holds 108 bytes; longer paths go through ``/proc/self/fd/N/name``."""
    if len(os.fsencode(path)) < 100:
        return path, None
    fd = os.open(os.path.dirname(path) or ".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    return f"/proc/self/fd/{fd}/{os.path.basename(path)}", fd


def connect_unix(path: str, timeout: float | None = None) -> socket.socket:
    """Connect to a unix socket at ``path``, however long the path is."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    short, fd = _short_path(path)
    try:
        sock.connect(short)
    except BaseException:
        sock.close()
        raise
    finally:
        if fd is not None:
            os.close(fd)
    return sock


def listen_unix(path: str, backlog: int = 64) -> socket.socket:
    """Bind and listen at ``path`` (replacing a stale socket file), mode 0600."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    short, fd = _short_path(path)
    try:
        sock.bind(short)
        os.chmod(path, 0o600)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    finally:
        if fd is not None:
            os.close(fd)
    return sock


def read_line(sock: socket.socket, limit: int = MAX_LINE) -> bytes:
    """Read one line byte by byte, so nothing after it (an attach stream) is consumed."""
    buf = bytearray()
    while True:
        b = sock.recv(1)
        if not b:
            raise errors.Unavailable("connection closed before a complete response")
        if b == b"\n":
            return bytes(buf)
        buf += b
        if len(buf) > limit:
            raise errors.InvalidArgument("protocol: line too long")
