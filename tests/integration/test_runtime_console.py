"""The container's terminal: a pty from the container's own devpts, handed over by
SCM_RIGHTS (the library's ``console`` and runc's ``--console-socket``). Needs root."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from berth import runtime
from berth.runtime import console
from tests.integration import test_runtime_support as support
from tests.integration.test_runtime_support import Harness

harness = support.harness
subreaper = support.subreaper
pytestmark = pytest.mark.root

SCRIPT = ("tty; stty size; ls -l /dev/console | cut -c1; "
          "grep -c ' /dev/console ' /proc/self/mountinfo; id -u; ls -n /dev/pts/0 | "
          "awk '{print $3}'")


def read_all(fd: int, timeout: float = 20.0) -> bytes:
    data = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: every slave closed
            break
        if not chunk:
            break
        data += chunk
    return bytes(data)


def test_pty_is_the_containers_own(harness: Harness) -> None:
    b = harness.bundle(["sh", "-c", SCRIPT], terminal=True,
                       consoleSize={"height": 33, "width": 77})
    state_dir = harness.state_dir()
    masters: list[int] = []
    pid = runtime.create("tty", str(b), state_dir, console=masters.append)
    assert len(masters) == 1
    try:
        runtime.start(state_dir)
        out = read_all(masters[0]).decode().replace("\r\n", "\n").splitlines()
        assert support.wait_exit(pid) == 0
    finally:
        os.close(masters[0])
    assert out == ["/dev/pts/0", "33 77", "c", "1", "0", "0"]
    runtime.delete(state_dir)


def test_non_root_user_owns_its_terminal(harness: Harness) -> None:
    b = harness.bundle(["sh", "-c", "tty; id -u; ls -n /dev/pts/0 | awk '{print $3}'"],
                       terminal=True, user={"uid": 1000, "gid": 1000})
    state_dir = harness.state_dir()
    masters: list[int] = []
    pid = runtime.create("tty", str(b), state_dir, console=masters.append)
    try:
        runtime.start(state_dir)
        out = read_all(masters[0]).decode().split()
        assert support.wait_exit(pid) == 0
    finally:
        os.close(masters[0])
    assert out == ["/dev/pts/0", "1000", "1000"]
    runtime.delete(state_dir)


def test_terminal_without_console_is_refused(harness: Harness) -> None:
    from berth.errors import InvalidArgument

    b = harness.bundle(["true"], terminal=True)
    state_dir = harness.state_dir()
    with pytest.raises(InvalidArgument, match="console"):
        runtime.create("tty", str(b), state_dir)
    assert not os.path.exists(state_dir)


def test_cli_console_socket(harness: Harness, tmp_path: Path) -> None:
    b = harness.bundle(["sh", "-c", "tty; read x; echo got $x"], terminal=True)
    sock_path = str(tmp_path / "console.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(sock_path)
    listener.listen(1)
    root = str(tmp_path / "root")
    base = [sys.executable, "-m", "berth.runtime.cli", "--root", root]
    proc = subprocess.Popen([*base, "create", "--bundle", str(b), "--console-socket",
                             sock_path, "c1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        master = console.receive_from_socket(listener)
    finally:
        listener.close()
    try:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        subprocess.run([*base, "start", "c1"], check=True, timeout=60)
        os.write(master, b"hello\n")
        out = read_all(master).decode().replace("\r\n", "\n")
    finally:
        os.close(master)
        subprocess.run([*base, "delete", "--force", "c1"], timeout=60)
    assert out.splitlines()[0] == "/dev/pts/0"
    assert "got hello" in out
