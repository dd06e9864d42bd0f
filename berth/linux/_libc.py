"""The one handle on libc every wrapper shares, and the errno-to-OSError helper."""

from __future__ import annotations

import ctypes
import os

libc = ctypes.CDLL(None, use_errno=True)

# System calls glibc has no wrapper for, by machine.
_SYSCALLS: dict[str, dict[str, int]] = {
    "x86_64": {"pivot_root": 155, "clone": 56},
    "aarch64": {"pivot_root": 41, "clone": 220},
}


def syscall_number(name: str) -> int:
    machine = os.uname().machine
    try:
        return _SYSCALLS[machine][name]
    except KeyError:
        raise OSError(0, f"{name}: no system call number known for {machine}") from None


def check(ret: int, call: str, path: str | None = None) -> int:
    """Turn a ``-1`` return into ``OSError(errno, "call: strerror", path)``."""
    if ret == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"{call}: {os.strerror(err)}", path)
    return ret
