"""``berth.linux`` wrappers: the parts that need no root, and the shape of their errors."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from berth import linux


def test_capget_reads_our_own_sets() -> None:
    eff, perm, inh = linux.capget()
    with open("/proc/self/status") as f:
        status = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    assert eff == int(status["CapEff"], 16)
    assert perm == int(status["CapPrm"], 16)
    assert inh == int(status["CapInh"], 16)


def test_cap_last_cap_matches_the_kernel() -> None:
    with open("/proc/sys/kernel/cap_last_cap") as f:
        assert int(f.read()) == linux.CAP_LAST_CAP


def test_errors_name_the_call_and_the_path(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing")
    with pytest.raises(OSError) as info:
        linux.mount("tmpfs", missing, "tmpfs")
    assert info.value.errno in (errno.ENOENT, errno.EPERM)
    assert info.value.filename == missing
    assert "mount tmpfs" in str(info.value)
    with pytest.raises(OSError) as info:
        linux.umount2(missing)
    assert info.value.filename == missing and "umount2" in str(info.value)


def test_setns_on_a_bad_fd_says_so() -> None:
    with pytest.raises(OSError) as info:
        linux.setns(-1, linux.CLONE_NEWNET)
    assert info.value.errno == errno.EBADF and "setns" in str(info.value)


def test_subreaper_flag_round_trips() -> None:
    pid = os.fork()
    if pid == 0:
        try:
            linux.set_child_subreaper(True)
            ok = linux.get_child_subreaper()
            linux.set_child_subreaper(False)
            os._exit(0 if ok and not linux.get_child_subreaper() else 1)
        finally:
            os._exit(2)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0


def test_clone_without_namespaces_is_a_fork() -> None:
    r, w = os.pipe()
    pid = linux.clone(0)
    if pid == 0:
        os.write(w, str(os.getppid()).encode())
        os._exit(7)
    os.close(w)
    assert int(os.read(r, 32)) == os.getpid()
    os.close(r)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 7


def _in_child(fn) -> int:  # noqa: ANN001 - a callable run in a forked child, exit code back
    pid = os.fork()
    if pid == 0:
        code = 3
        try:
            code = fn()
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_cloexec_from_marks_every_later_fd() -> None:
    def child() -> int:
        fds = [os.open(os.devnull, os.O_RDONLY) for _ in range(3)]
        for fd in fds:
            os.set_inheritable(fd, True)
        if not linux.set_cloexec_from(fds[1]):
            return 4  # no close_range here
        return 0 if [os.get_inheritable(fd) for fd in fds] == [True, False, False] else 1

    assert _in_child(child) in (0, 4)

