"""The container's terminal: a pty made in the container's own devpts, as runc makes it.

Init opens ``/dev/ptmx`` after ``pivot_root``, so the pty belongs to the devpts instance
mounted at the container's /dev/pts: inside, ``ttyname`` says ``/dev/pts/0`` and ``tty``
works, where a pty from the host's devpts would have no name in the container. The slave
becomes init's stdio and controlling terminal and is bind-mounted on /dev/console; the
master travels to whoever holds the other end (the creator over the sync socket, then
possibly a ``--console-socket``) with SCM_RIGHTS.
"""

from __future__ import annotations

import fcntl
import os
import struct

from berth import linux
from berth.util import suppress

TYPE_CHECKING = False  # importing typing costs milliseconds on the start path
if TYPE_CHECKING:
    import socket

# Linux's generic tty ioctls, as hard-coded numbers: the termios module alone costs
# about a millisecond of every ``berth-runtime`` start, terminal or not.
TIOCGPTN = 0x80045430
TIOCSPTLCK = 0x40045431
TIOCSWINSZ = 0x5414
TIOCSCTTY = 0x540E


def open_pty(ptmx: str = "/dev/ptmx") -> tuple[int, int, str]:
    """(master, slave, slave path) of a new pty from the devpts behind ``ptmx``."""
    master = os.open(ptmx, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
        num = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, struct.pack("I", 0)))[0]
        name = os.path.join(os.path.dirname(os.path.realpath(ptmx)), str(num))
        if not name.startswith("/dev/pts/"):
            name = f"/dev/pts/{num}"
        slave = os.open(name, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except BaseException:
        os.close(master)
        raise
    return master, slave, name


def set_size(fd: int, height: int, width: int) -> None:
    fcntl.ioctl(fd, TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


def mount_console(slave_path: str) -> None:
    """Bind the slave on /dev/console (created as an empty file if missing)."""
    with suppress(FileExistsError):
        os.close(os.open("/dev/console", os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC,
                         0o600))
    linux.mount(slave_path, "/dev/console", None, linux.MS_BIND)


def make_controlling(slave: int) -> None:
    """Make ``slave`` fds 0, 1, 2 and the controlling terminal of a new session."""
    for fd in (0, 1, 2):
        os.dup2(slave, fd, inheritable=True)
    if slave > 2:
        os.close(slave)
    os.setsid()
    fcntl.ioctl(0, TIOCSCTTY, 0)


def send_to_socket(path: str, master: int, name: str = "/dev/ptmx") -> None:
    """Hand ``master`` to the listener at ``path`` (runc's ``--console-socket`` contract)."""
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(path)
        socket.send_fds(sock, [name.encode()], [master])


def receive_from_socket(listener: socket.socket, timeout: float = 30.0) -> int:
    """Accept one connection on ``listener`` and return the fd it carries (the other end
    of ``send_to_socket``: for tests and tools standing in for a console-socket server)."""
    import socket

    listener.settimeout(timeout)
    conn, _ = listener.accept()
    with conn:
        _msg, fds, _flags, _addr = socket.recv_fds(conn, 4096, 1)
    if not fds:
        raise OSError(0, "console socket: no file descriptor received")
    os.set_inheritable(fds[0], False)
    return fds[0]
