"""Interface flags through ioctl: enough to bring ``lo`` up in a fresh network namespace.

A new network namespace starts with ``lo`` down; containers expect 127.0.0.1 to work. One ioctl
pair costs microseconds, where spawning ``ip link set lo up`` would cost milliseconds.
"""

from __future__ import annotations

import _socket  # socket.py's enums cost milliseconds at start-up
import fcntl
import struct

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def link_up(name: str = "lo") -> None:
    """Set IFF_UP on interface ``name`` in the caller's network namespace."""
    raw = name.encode()
    if len(raw) >= 16:
        raise OSError(22, f"interface name too long: {name!r}")
    s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC)
    try:
        try:
            req = fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, struct.pack("16sH22x", raw, 0))
            flags = struct.unpack("16sH22x", req)[1]
            if not flags & IFF_UP:
                fcntl.ioctl(s.fileno(), SIOCSIFFLAGS,
                            struct.pack("16sH22x", raw, (flags | IFF_UP) & 0xFFFF))
        except OSError as e:
            raise OSError(e.errno, f"ioctl SIOCSIFFLAGS up: {e.strerror}", name) from None
    finally:
        s.close()
