"""`docker run -it`, detach with the keys, `docker attach` again: the shell still takes
input, through the real docker CLI on a real pty."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time

import pytest

from tests.daemon_fixture import Berthd
from tests.e2e.test_docker_cli import DOCKER, docker, run_ok

pytestmark = pytest.mark.root


class Terminal:
    """A docker CLI process on the slave side of a pty of its own."""

    def __init__(self, daemon: Berthd, *args: str) -> None:
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen([DOCKER, *args], env=daemon.env(), stdin=slave,
                                     stdout=slave, stderr=slave, close_fds=True,
                                     start_new_session=True)
        os.close(slave)
        self.seen = b""

    def read_until(self, marker: bytes, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while marker not in self.seen and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                try:
                    self.seen += os.read(self.master, 4096)
                except OSError:
                    break
        assert marker in self.seen, self.seen

    def type(self, text: bytes) -> None:
        os.write(self.master, text)

    def close(self) -> int:
        """Wait for the CLI to leave (killing it after a while); its exit code."""
        try:
            return self.proc.wait(timeout=20)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            if self.master >= 0:
                os.close(self.master)
                self.master = -1


def test_detach_then_attach_again_keeps_stdin(berthd: Berthd) -> None:
    first = Terminal(berthd, "run", "-it", "--name", "again", "busybox", "sh")
    try:
        first.read_until(b"# ")
        first.type(b"echo one-$((1+1))\r")
        first.read_until(b"one-2")
        first.type(b"\x10\x11")  # ctrl-p ctrl-q
    finally:
        first.close()
    assert run_ok(berthd, "inspect", "-f", "{{.State.Running}}", "again").strip() == "true"

    second = Terminal(berthd, "attach", "again")
    try:
        time.sleep(0.3)  # attached before typing: input before that has no reader
        second.type(b"echo two-$((2+2))\r")
        second.read_until(b"two-4")
        second.type(b"exit 3\r")
    finally:
        code = second.close()
    assert code == 3
    assert run_ok(berthd, "inspect", "-f", "{{.State.ExitCode}}", "again").strip() == "3"
    assert docker(berthd, "rm", "again").returncode == 0
