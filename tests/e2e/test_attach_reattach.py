"""`docker run -it`, detach with the keys, `docker attach` again: the shell still takes
input, through the real docker CLI on a real pty."""

from __future__ import annotations

import time

import pytest

from tests.daemon_fixture import Berthd
from tests.e2e.test_docker_cli import DOCKER, docker, run_ok
from tests.pty_terminal import PtyTerminal

pytestmark = pytest.mark.root


def terminal(daemon: Berthd, *args: str) -> PtyTerminal:
    """The docker CLI on a pty of its own."""
    return PtyTerminal([DOCKER, *args], daemon.env())


def leave(term: PtyTerminal) -> int:
    """Wait for the CLI to leave (killing it after a while); its exit code."""
    try:
        return term.wait()
    finally:
        term.close()


def test_detach_then_attach_again_keeps_stdin(berthd: Berthd) -> None:
    first = terminal(berthd, "run", "-it", "--name", "again", "busybox", "sh")
    try:
        first.read_until(b"# ")
        first.write(b"echo one-$((1+1))\r")
        first.read_until(b"one-2")
        first.write(b"\x10\x11")  # ctrl-p ctrl-q
    finally:
        leave(first)
    assert run_ok(berthd, "inspect", "-f", "{{.State.Running}}", "again").strip() == "true"

    second = terminal(berthd, "attach", "again")
    try:
        time.sleep(0.3)  # attached before typing: input before that has no reader
        second.write(b"echo two-$((2+2))\r")
        second.read_until(b"two-4")
        second.write(b"exit 3\r")
    finally:
        code = leave(second)
    assert code == 3
    assert run_ok(berthd, "inspect", "-f", "{{.State.ExitCode}}", "again").strip() == "3"
    assert docker(berthd, "rm", "again").returncode == 0
