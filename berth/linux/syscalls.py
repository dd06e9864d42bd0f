"""Namespaces, mounts, pivot_root, hostname and the prctl switches the container init uses."""

from __future__ import annotations

import ctypes
import os

from berth.linux._libc import check, libc, syscall_number

CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25

MNT_FORCE = 1
MNT_DETACH = 2

PR_SET_PDEATHSIG = 1
PR_SET_KEEPCAPS = 8
PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37
PR_SET_NO_NEW_PRIVS = 38

libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                       ctypes.c_char_p]
libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
libc.unshare.argtypes = [ctypes.c_int]
libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                       ctypes.c_ulong]
libc.syscall.restype = ctypes.c_long


def _b(s: str | None) -> bytes | None:
    return None if s is None else os.fsencode(s)


def unshare(flags: int) -> None:
    """Move the caller into new namespaces (CLONE_NEW* flags); a new PID namespace applies
    only to children forked afterwards."""
    check(libc.unshare(flags), f"unshare({flags:#x})")


def setns(fd: int, nstype: int = 0) -> None:
    """Join the namespace ``fd`` refers to (an open ``/proc/PID/ns/*`` file)."""
    check(libc.setns(fd, nstype), f"setns(fd {fd}, {nstype:#x})")


def mount(source: str | None, target: str, fstype: str | None = None, flags: int = 0,
          data: str | None = None) -> None:
    ret = libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data))
    if ret == -1:
        check(ret, f"mount {fstype or ''} {source or ''} (flags {flags:#x}"
                   f"{', ' + data if data else ''})".replace("  ", " "), target)


def umount2(target: str, flags: int = 0) -> None:
    check(libc.umount2(_b(target), flags), "umount2", target)


def pivot_root(new_root: str, put_old: str) -> None:
    nr = syscall_number("pivot_root")
    check(libc.syscall(nr, _b(new_root), _b(put_old)), f"pivot_root (put_old {put_old})",
          new_root)


def sethostname(name: str) -> None:
    raw = name.encode()
    check(libc.sethostname(raw, len(raw)), f"sethostname {name!r}")


def _prctl(option: int, arg2: int = 0, arg3: int = 0, what: str = "prctl") -> int:
    return check(libc.prctl(option, arg2, arg3, 0, 0), what)


def set_no_new_privs() -> None:
    """Forbid execve from granting privileges (setuid bits, file capabilities) ever again."""
    _prctl(PR_SET_NO_NEW_PRIVS, 1, what="prctl(PR_SET_NO_NEW_PRIVS)")


def set_child_subreaper(on: bool = True) -> None:
    """Orphaned descendants get reparented to us instead of init, so we can reap them."""
    _prctl(PR_SET_CHILD_SUBREAPER, int(on), what="prctl(PR_SET_CHILD_SUBREAPER)")


def get_child_subreaper() -> bool:
    val = ctypes.c_int(0)
    ret = libc.prctl(PR_GET_CHILD_SUBREAPER, ctypes.addressof(val), 0, 0, 0)
    check(ret, "prctl(PR_GET_CHILD_SUBREAPER)")
    return bool(val.value)


_CLOSE_RANGE_CLOEXEC = 4
_close_range = getattr(libc, "close_range", None)  # glibc 2.34 and later
if _close_range is not None:
    _close_range.argtypes = [ctypes.c_uint, ctypes.c_uint, ctypes.c_int]


def set_cloexec_from(first: int) -> bool:
    """Mark every fd from ``first`` up close-on-exec in one call (``close_range``, Linux
    5.11); False where that is not available, and the caller must walk its fds."""
    if _close_range is None:
        return False
    return _close_range(first, 0xFFFFFFFF, _CLOSE_RANGE_CLOEXEC) == 0


def set_pdeathsig(sig: int) -> None:
    """Have the kernel send ``sig`` to us when the thread that forked us exits."""
    _prctl(PR_SET_PDEATHSIG, sig, what="prctl(PR_SET_PDEATHSIG)")


def set_keepcaps(on: bool) -> None:
    """Keep permitted capabilities across a setuid away from root."""
    _prctl(PR_SET_KEEPCAPS, int(on), what="prctl(PR_SET_KEEPCAPS)")


_SIGCHLD = 17
_pylibc = ctypes.PyDLL(None, use_errno=True)  # calls keep the GIL held, as os.fork does
_pylibc.syscall.restype = ctypes.c_long
_pylibc.syscall.argtypes = [ctypes.c_long, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                            ctypes.c_ulong, ctypes.c_ulong]


def clone(flags: int) -> int:
    """``fork`` that creates the namespaces in ``flags`` (CLONE_NEW*) at the same time.

    The child is already inside them, PID 1 if CLONE_NEWPID is given: one process instead of
    runc's unshare-then-fork pair. Python's own fork bookkeeping runs around the raw system
    call (``PyOS_BeforeFork``/``AfterFork``), but glibc's fork handlers do not: call this only
    from a single-threaded process. The child must only ever ``execve`` or ``os._exit``.
    Returns the child's pid in the parent, 0 in the child.
    """
    api = ctypes.pythonapi
    api.PyOS_BeforeFork()
    pid = _pylibc.syscall(syscall_number("clone"), flags | _SIGCHLD, 0, 0, 0, 0)
    if pid == 0:
        api.PyOS_AfterFork_Child()
        return 0
    err = ctypes.get_errno()
    api.PyOS_AfterFork_Parent()
    if pid == -1:
        raise OSError(err, f"clone({flags:#x}): {os.strerror(err)}")
    return pid


def mknod(path: str, mode: int, major: int = 0, minor: int = 0) -> None:
    """``os.mknod`` taking major/minor, with an error that names the node and the path."""
    try:
        os.mknod(path, mode, os.makedev(major, minor))
    except OSError as e:
        raise OSError(e.errno, f"mknod {major}:{minor}: {e.strerror}", path) from None
