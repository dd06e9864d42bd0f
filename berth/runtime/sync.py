"""The messages between the creator and the init stages, written down in one place.

``create`` (the *creator*) forks stage 1 (C1). C1 joins or unshares the namespaces and forks
stage 2 (C2), which is PID 1 of the new PID namespace and becomes the container's process. They
talk over one ``AF_UNIX``/``SOCK_SEQPACKET`` socketpair (both ends close-on-exec), one JSON
object per packet:

====================  ===================================================  =====================
from → to             message                                              meaning
====================  ===================================================  =====================
C1 → creator          ``{"type": "pid", "pid": N}``                        C2 forked; N is its pid
                                                                           in the creator's view
C2 → creator          ``{"type": "ready"}``                                setup done, command
                                                                           resolved; C2 now waits
                                                                           on ``exec.fifo``
C2 → creator          ``{"type": "console", "name": "/dev/pts/N"}``       with ``process.terminal``:
                      with the pty master as SCM_RIGHTS                    the pty made in the
                                                                           container's devpts; the
                                                                           creator owns the master
C2 → creator          ``{"type": "hooks"}``                               mounts are done, before
                                                                           pivot_root: run the
                                                                           prestart/createRuntime
                                                                           hooks; C2 waits
creator → C2          ``{"type": "continue", "state": {...}}``            hooks done; the state
                                                                           the container's own
                                                                           hooks get on stdin
C1/C2 → creator       ``{"type": "error", "stage": S, "message": M,        setup failed at step S;
                      "exit_code": N}``                                    the sender exits
====================  ===================================================  =====================

End of stream before ``ready`` means C2 died without a word (killed, crashed).

After ``ready`` the creator has nothing more to say; ``start`` talks to C2 through
``state_dir/exec.fifo`` (as runc does, so ``create`` and ``start`` may be different processes):

* C2 opens the fifo for writing, which blocks until ``start`` opens it for reading;
* C2 writes ``b"0"`` and calls ``execve``; the write end is close-on-exec, so end of file after
  the ``0`` tells ``start`` that the exec happened;
* if ``execve`` fails, C2 writes the error as JSON after the ``0`` (``{"message": M,
  "exit_code": N}``) and exits with N.

Later features slot in as new message types (hooks, user-namespace id maps), each added to
this table.
"""

from __future__ import annotations

import _socket  # socket.py's enums and selectors cost milliseconds at start-up
import os
import struct  # not array: importing it loads collections

from berth.util.jsonlite import dumps, loads

TYPE_CHECKING = False  # importing typing costs milliseconds on the start path
if TYPE_CHECKING:
    import socket
    from typing import Any

MSG_PID = "pid"
MSG_READY = "ready"
MSG_ERROR = "error"
MSG_CONSOLE = "console"
MSG_HOOKS = "hooks"
MSG_CONTINUE = "continue"

EXEC_RELEASE = b"0"
_MAX_PACKET = 65536
_INT = struct.calcsize("i")
_MSG_CMSG_CLOEXEC = 0x40000000


def socketpair() -> tuple[socket.socket, socket.socket]:
    """(creator end, child end); Python makes both close-on-exec."""
    return _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)  # type: ignore[return-value]


def send(sock: socket.socket, msg_type: str, **fields: Any) -> None:
    sock.send(dumps({"type": msg_type, **fields}).encode())


def send_fd(sock: socket.socket, msg_type: str, fd: int, **fields: Any) -> None:
    """A message carrying one file descriptor (SCM_RIGHTS)."""
    data = dumps({"type": msg_type, **fields}).encode()
    sock.sendmsg([data], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, struct.pack("i", fd))])


def recv_with_fds(sock: socket.socket, size: int) -> tuple[bytes, list[int]]:
    """``recvmsg`` with descriptors made close-on-exec as they arrive."""
    raw, anc, _flags, _addr = sock.recvmsg(size, _socket.CMSG_SPACE(4 * _INT), _MSG_CMSG_CLOEXEC)
    fds: list[int] = []
    for level, kind, data in anc:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            usable = len(data) - len(data) % _INT
            fds.extend(struct.unpack(f"{usable // _INT}i", data[:usable]))
    return raw, fds


def recv(sock: socket.socket) -> dict[str, Any] | None:
    """The next message, or None at end of stream. Timeouts come from ``sock.settimeout``.

    A file descriptor that came with the message is in ``msg["fd"]``; the receiver owns it.
    """
    raw, fds = recv_with_fds(sock, _MAX_PACKET)
    if not raw:
        for fd in fds:
            os.close(fd)
        return None
    msg = loads(raw)
    if not isinstance(msg, dict) or "type" not in msg:
        for fd in fds:
            os.close(fd)
        raise ValueError(f"malformed init message: {raw[:200]!r}")
    if fds:
        msg["fd"] = fds[0]
        for fd in fds[1:]:
            os.close(fd)
    return msg
