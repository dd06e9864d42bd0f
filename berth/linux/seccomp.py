"""Seccomp filters: compiled with libseccomp (ctypes), loaded with prctl.

Compiling and loading are apart on purpose: the creator compiles the spec's profile to a
classic BPF program before anything forks (so a bad profile is a clear error with nothing
started), and init only hands the bytes to the kernel, with no library call between fork
and exec.
"""

from __future__ import annotations

import ctypes
import os
from typing import NamedTuple

from berth.linux._libc import libc

SCMP_ACT_KILL_PROCESS = 0x80000000
SCMP_ACT_KILL_THREAD = 0x00000000
SCMP_ACT_TRAP = 0x00030000
SCMP_ACT_ERRNO = 0x00050000
SCMP_ACT_TRACE = 0x7FF00000
SCMP_ACT_LOG = 0x7FFC0000
SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_ACT_NOTIFY = 0x7FC00000

CMP_OPS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
           "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}
# OCI architecture names -> libseccomp's.
ARCHES = {"SCMP_ARCH_X86": "x86", "SCMP_ARCH_X86_64": "x86_64", "SCMP_ARCH_X32": "x32",
          "SCMP_ARCH_ARM": "arm", "SCMP_ARCH_AARCH64": "aarch64", "SCMP_ARCH_MIPS": "mips",
          "SCMP_ARCH_MIPS64": "mips64", "SCMP_ARCH_MIPSEL": "mipsel",
          "SCMP_ARCH_MIPSEL64": "mipsel64", "SCMP_ARCH_PPC": "ppc", "SCMP_ARCH_PPC64": "ppc64",
          "SCMP_ARCH_PPC64LE": "ppc64le", "SCMP_ARCH_S390": "s390",
          "SCMP_ARCH_S390X": "s390x", "SCMP_ARCH_RISCV64": "riscv64"}
_FLTATR_CTL_NNP = 3
_FLTATR_CTL_OPTIMIZE = 8
_OPTIMIZE_BINARY_TREE = 2
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


_lib: ctypes.CDLL | None = None


def _libseccomp() -> ctypes.CDLL:
    global _lib
    if _lib is None:
        try:
            # The soname itself: ctypes.util.find_library would run ldconfig (and import
            # subprocess) on every start.
            lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
        except OSError as e:
            raise OSError(0, f"seccomp: cannot load libseccomp ({e})") from None
        lib.seccomp_init.restype = ctypes.c_void_p
        lib.seccomp_init.argtypes = [ctypes.c_uint32]
        lib.seccomp_release.argtypes = [ctypes.c_void_p]
        lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
        lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_arch_native.restype = ctypes.c_uint32
        lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
        lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                               ctypes.c_uint, ctypes.POINTER(_ArgCmp)]
        lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
        _lib = lib
    return _lib


class Rule(NamedTuple):
    """One rule: ``action`` for ``syscall`` when every (arg, op, a, b) holds."""

    syscall: str
    action: int
    args: tuple[tuple[int, int, int, int], ...] = ()


def syscall_known(name: str) -> bool:
    return _libseccomp().seccomp_syscall_resolve_name(name.encode()) >= 0


def compile_bpf(default_action: int, arches: list[str], rules: list[Rule]) -> bytes:
    """The BPF program (``struct sock_filter`` array) for the filter; raises ``OSError``
    naming the rule libseccomp refused."""
    lib = _libseccomp()
    ctx = lib.seccomp_init(default_action)
    if not ctx:
        raise OSError(0, f"seccomp: bad default action {default_action:#x}")
    try:
        lib.seccomp_attr_set(ctx, _FLTATR_CTL_NNP, 0)
        # Syscalls found by binary search instead of one comparison after another: the
        # same filter, and the kernel loads it in half the time (it emulates the program
        # for every syscall number to build its cache of always-allowed ones). Older
        # libseccomp refuses the attribute and keeps the linear form.
        lib.seccomp_attr_set(ctx, _FLTATR_CTL_OPTIMIZE, _OPTIMIZE_BINARY_TREE)
        native = lib.seccomp_arch_native()
        for arch in arches:
            token = lib.seccomp_arch_resolve_name(arch.encode())
            if token == 0:
                raise OSError(0, f"seccomp: unknown architecture {arch!r}")
            if token == native:
                continue
            ret = lib.seccomp_arch_add(ctx, token)
            if ret < 0 and ret != -17:  # EEXIST
                raise OSError(-ret, f"seccomp: adding architecture {arch}: {os.strerror(-ret)}")
        for rule in rules:
            nr = lib.seccomp_syscall_resolve_name(rule.syscall.encode())
            if nr < 0:
                continue
            cmps = (_ArgCmp * max(1, len(rule.args)))()
            for i, (arg, op, a, b) in enumerate(rule.args):
                cmps[i] = _ArgCmp(arg, op, a, b)
            ret = lib.seccomp_rule_add_array(ctx, rule.action, nr, len(rule.args), cmps)
            if ret < 0:
                raise OSError(-ret, f"seccomp: rule for {rule.syscall}: {os.strerror(-ret)}")
        r, w = os.pipe2(os.O_CLOEXEC)
        try:
            ret = lib.seccomp_export_bpf(ctx, w)
            os.close(w)
            w = -1
            if ret < 0:
                raise OSError(-ret, f"seccomp: exporting the filter: {os.strerror(-ret)}")
            chunks = []
            while chunk := os.read(r, 65536):
                chunks.append(chunk)
        finally:
            os.close(r)
            if w >= 0:
                os.close(w)
        return b"".join(chunks)
    finally:
        lib.seccomp_release(ctx)


def load_bpf(program: bytes) -> None:
    """Install ``program`` on the calling thread. Needs no_new_privs or CAP_SYS_ADMIN."""
    if len(program) % 8 or not program:
        raise OSError(22, "seccomp: malformed BPF program")
    buf = ctypes.create_string_buffer(program, len(program))
    prog = _SockFprog(len(program) // 8, ctypes.addressof(buf))
    if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.addressof(prog), 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"seccomp: loading the filter: {os.strerror(err)}")
