"""The OCI ``linux.seccomp`` section, validated and compiled once in the creator.

``compile_section`` checks every field (naming the bad one) and returns the BPF program
init loads (``load``), last before exec, or before dropping capabilities when the process
does not set no_new_privs (the kernel then wants CAP_SYS_ADMIN to load it), as runc does.

Syscall names libseccomp does not know are skipped, as runc and crun do, when they are real
syscalls of some architecture (Docker's profile names 32-bit and newer calls); any other
name is an error.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
import zlib

from berth.errors import InvalidArgument, NotImplementedYet
from berth.linux._libc import libc
from berth.util import suppress
from berth.util.jsonlite import dumps, loads

TYPE_CHECKING = False  # importing typing costs milliseconds on the start path
if TYPE_CHECKING:
    from typing import Any

# libseccomp's action values (seccomp.h); the binding itself (berth.linux.seccomp) is only
# imported when a profile has to be compiled, which the cache below makes rare.
_ERRNO = 0x00050000
_TRACE = 0x7FF00000
_ACTIONS = {
    "SCMP_ACT_KILL": 0x00000000,
    "SCMP_ACT_KILL_THREAD": 0x00000000,
    "SCMP_ACT_KILL_PROCESS": 0x80000000,
    "SCMP_ACT_TRAP": 0x00030000,
    "SCMP_ACT_ERRNO": _ERRNO,
    "SCMP_ACT_TRACE": _TRACE,
    "SCMP_ACT_ALLOW": 0x7FFF0000,
    "SCMP_ACT_LOG": 0x7FFC0000,
}
# Compiled programs are kept on a tmpfs, root's only, keyed by the section's canonical JSON
# (stored in the file and compared in full): compiling Docker's profile takes longer than
# the rest of ``berth-runtime run``.
CACHE_DIR = "/run/berth-seccomp-cache"
# Part of every key: a program compiled differently (the binary-tree form) is a new entry.
_PROGRAM_FORM = "tree:"
_cache: dict[str, bytes] = {}
_known_elsewhere: set[str] = set()


def _real_syscall_names() -> set[str]:
    if not _known_elsewhere:
        from berth.runtime.seccomp_profile import PROFILE_JSON

        for entry in loads(PROFILE_JSON)["syscalls"]:
            _known_elsewhere.update(entry["names"])
    return _known_elsewhere


def _action(name: Any, errno_ret: Any, where: str) -> int:
    if name == "SCMP_ACT_NOTIFY":
        raise NotImplementedYet(f"{where}: SCMP_ACT_NOTIFY is not supported")
    if name not in _ACTIONS:
        raise InvalidArgument(f"{where}: unknown action {name!r}")
    act = _ACTIONS[name]
    if act in (_ERRNO, _TRACE):
        ret = errno.EPERM if errno_ret is None else errno_ret
        if not isinstance(ret, int) or not 0 <= ret <= 0xFFFF:
            raise InvalidArgument(f"{where}: bad errnoRet {errno_ret!r}")
        act |= ret
    return act


def _rules(entry: dict[str, Any], default: int, where: str) -> list[Any]:
    from berth.linux import seccomp as _sc

    names = entry.get("names") or ([entry["name"]] if entry.get("name") else [])
    if not isinstance(names, list) or not names:
        raise InvalidArgument(f"{where}: names must be a non-empty list")
    action = _action(entry.get("action"), entry.get("errnoRet"), where)
    if action == default:
        return []  # libseccomp refuses rules that repeat the default, and they are no-ops
    conds: list[tuple[int, int, int, int]] = []
    for j, arg in enumerate(entry.get("args") or ()):
        try:
            op = _sc.CMP_OPS[arg["op"]]
            conds.append((int(arg["index"]), op, int(arg.get("value", 0)),
                          int(arg.get("valueTwo", 0))))
        except (KeyError, TypeError, ValueError):
            raise InvalidArgument(f"{where}.args[{j}]: bad argument condition {arg!r}") from None
        if not 0 <= conds[-1][0] < 6:
            raise InvalidArgument(f"{where}.args[{j}]: index must be 0..5")
    # Conditions on one argument twice cannot be one libseccomp rule: one rule each.
    indexes = [c[0] for c in conds]
    groups = [(c,) for c in conds] if len(set(indexes)) < len(indexes) else [tuple(conds)]
    out = []
    for name in names:
        if not isinstance(name, str) or not name:
            raise InvalidArgument(f"{where}: bad syscall name {name!r}")
        if not _sc.syscall_known(name):
            if name in _real_syscall_names():
                continue
            raise InvalidArgument(f"{where}: unknown syscall {name!r}")
        out.extend(_sc.Rule(name, action, g) for g in groups)
    return out


def compile_section(section: dict[str, Any] | None) -> bytes | None:
    """The BPF program for ``linux.seccomp`` (None when there is none)."""
    if not section:
        return None
    if not isinstance(section, dict):
        raise InvalidArgument("linux.seccomp: must be an object")
    key = _PROGRAM_FORM + os.uname().machine + dumps(section, sort_keys=True)
    cached = _cache.get(key) or _cache_read(key)
    if cached is not None:
        _cache[key] = cached
        return cached
    from berth.linux import seccomp as _sc

    default = _action(section.get("defaultAction"), section.get("defaultErrnoRet"),
                      "linux.seccomp.defaultAction")
    arches = []
    for arch in section.get("architectures") or ():
        if arch not in _sc.ARCHES:
            raise InvalidArgument(f"linux.seccomp.architectures: unknown {arch!r}")
        arches.append(_sc.ARCHES[arch])
    rules: list[Any] = []
    for i, entry in enumerate(section.get("syscalls") or ()):
        if not isinstance(entry, dict):
            raise InvalidArgument(f"linux.seccomp.syscalls[{i}]: must be an object")
        rules.extend(_rules(entry, default, f"linux.seccomp.syscalls[{i}]"))
    try:
        program = _sc.compile_bpf(default, arches, rules)
    except OSError as e:
        raise InvalidArgument(f"linux.seccomp: {e.strerror or e}") from None
    _cache[key] = program
    _cache_write(key, program)
    return program


def _cache_path(key: bytes) -> str:
    return os.path.join(CACHE_DIR, f"{zlib.crc32(key):08x}-{len(key)}.bpf")


def _cache_read(key_text: str) -> bytes | None:
    key = key_text.encode()
    try:
        st = os.stat(CACHE_DIR)
        if st.st_uid != os.geteuid() or st.st_mode & 0o077:
            return None
        with open(_cache_path(key), "rb") as f:
            data = f.read()
    except OSError:
        return None
    if data[:len(key)] != key or data[len(key):len(key) + 1] != b"\0":
        return None
    return data[len(key) + 1:] or None


def _cache_write(key_text: str, program: bytes) -> None:
    key = key_text.encode()
    with suppress(OSError):
        os.makedirs(CACHE_DIR, 0o700, exist_ok=True)
        if os.stat(CACHE_DIR).st_mode & 0o077:
            return
        path = _cache_path(key)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            f.write(key + b"\0" + program)
        os.replace(tmp, path)


_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2


def load(program: bytes) -> None:
    """Install ``program`` (``struct sock_filter`` array) on the calling thread.

    Runs in init after ``pivot_root``, where no module can be imported any more: it needs
    only what is loaded already."""
    if not program or len(program) % 8:
        raise OSError(errno.EINVAL, "seccomp: malformed BPF program")
    buf = ctypes.create_string_buffer(program, len(program))
    fprog = ctypes.create_string_buffer(struct.pack("@H6xP", len(program) // 8,
                                                    ctypes.addressof(buf)))
    if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.addressof(fprog), 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"seccomp: loading the filter: {os.strerror(err)}")
