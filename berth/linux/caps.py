"""Capability names, and the calls that set the five capability sets of a process.

Sets are handled as 64-bit integer masks (bit N = capability N), the form ``/proc/PID/status``
prints (``CapEff: 00000000a80425fb``), so they compare and print without a translation step.
"""

from __future__ import annotations

import ctypes

from berth.linux._libc import check, libc

# Capability numbers from <linux/capability.h>; OCI specs name them with the CAP_ prefix.
CAPABILITIES: dict[str, int] = {
    "CAP_CHOWN": 0,
    "CAP_DAC_OVERRIDE": 1,
    "CAP_DAC_READ_SEARCH": 2,
    "CAP_FOWNER": 3,
    "CAP_FSETID": 4,
    "CAP_KILL": 5,
    "CAP_SETGID": 6,
    "CAP_SETUID": 7,
    "CAP_SETPCAP": 8,
    "CAP_LINUX_IMMUTABLE": 9,
    "CAP_NET_BIND_SERVICE": 10,
    "CAP_NET_BROADCAST": 11,
    "CAP_NET_ADMIN": 12,
    "CAP_NET_RAW": 13,
    "CAP_IPC_LOCK": 14,
    "CAP_IPC_OWNER": 15,
    "CAP_SYS_MODULE": 16,
    "CAP_SYS_RAWIO": 17,
    "CAP_SYS_CHROOT": 18,
    "CAP_SYS_PTRACE": 19,
    "CAP_SYS_PACCT": 20,
    "CAP_SYS_ADMIN": 21,
    "CAP_SYS_BOOT": 22,
    "CAP_SYS_NICE": 23,
    "CAP_SYS_RESOURCE": 24,
    "CAP_SYS_TIME": 25,
    "CAP_SYS_TTY_CONFIG": 26,
    "CAP_MKNOD": 27,
    "CAP_LEASE": 28,
    "CAP_AUDIT_WRITE": 29,
    "CAP_AUDIT_CONTROL": 30,
    "CAP_SETFCAP": 31,
    "CAP_MAC_OVERRIDE": 32,
    "CAP_MAC_ADMIN": 33,
    "CAP_SYSLOG": 34,
    "CAP_WAKE_ALARM": 35,
    "CAP_BLOCK_SUSPEND": 36,
    "CAP_AUDIT_READ": 37,
    "CAP_PERFMON": 38,
    "CAP_BPF": 39,
    "CAP_CHECKPOINT_RESTORE": 40,
}


def _read_last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return max(CAPABILITIES.values())


# The highest capability the running kernel knows; bits above it cannot be set.
CAP_LAST_CAP = _read_last_cap()

_VERSION_3 = 0x20080522
PR_CAPBSET_DROP = 24
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4


class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _Data(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


libc.capget.argtypes = [ctypes.POINTER(_Header), ctypes.POINTER(_Data)]
libc.capset.argtypes = [ctypes.POINTER(_Header), ctypes.POINTER(_Data)]


def cap_mask(names: list[str] | tuple[str, ...] | None, *, strict: bool = True) -> int:
    """The mask of capability ``names`` (``CAP_`` prefix optional, any case).

    Unknown names raise ``ValueError`` when ``strict``; names the running kernel does not know
    (above ``CAP_LAST_CAP``) are left out, as runc does, so one spec runs on older kernels.
    """
    mask = 0
    for name in names or ():
        key = name.upper()
        if not key.startswith("CAP_"):
            key = "CAP_" + key
        num = CAPABILITIES.get(key)
        if num is None:
            if strict:
                raise ValueError(f"unknown capability {name!r}")
            continue
        if num <= CAP_LAST_CAP:
            mask |= 1 << num
    return mask


def capget(pid: int = 0) -> tuple[int, int, int]:
    """(effective, permitted, inheritable) masks of ``pid`` (0: the calling thread)."""
    hdr = _Header(_VERSION_3, pid)
    data = (_Data * 2)()
    check(libc.capget(ctypes.byref(hdr), data), f"capget(pid {pid})")
    eff = data[0].effective | data[1].effective << 32
    perm = data[0].permitted | data[1].permitted << 32
    inh = data[0].inheritable | data[1].inheritable << 32
    return eff, perm, inh


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """Set the calling thread's effective, permitted and inheritable sets."""
    hdr = _Header(_VERSION_3, 0)
    data = (_Data * 2)()
    for i in range(2):
        shift = 32 * i
        data[i].effective = (effective >> shift) & 0xFFFFFFFF
        data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    check(libc.capset(ctypes.byref(hdr), data),
          f"capset(eff {effective:#x}, perm {permitted:#x}, inh {inheritable:#x})")


def capbset_drop(cap: int) -> None:
    """Remove ``cap`` from the bounding set (needs CAP_SETPCAP); no execve can regain it."""
    check(libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), f"prctl(PR_CAPBSET_DROP, {cap})")


def ambient_raise(cap: int) -> None:
    """Add ``cap`` to the ambient set: kept across execve of an unprivileged program."""
    check(libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0),
          f"prctl(PR_CAP_AMBIENT_RAISE, {cap})")


def ambient_clear_all() -> None:
    check(libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0),
          "prctl(PR_CAP_AMBIENT_CLEAR_ALL)")
