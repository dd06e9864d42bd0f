"""Attach streams over time: a terminal's stdin outlives the client that leaves it, a slow
client holds the output back rather than losing it, and finished execs do not pile up.
Needs root."""

from __future__ import annotations

import os
import signal
import socket
import time
from typing import Any

import pytest

from berth.errors import NotFound
from berth.shim import client
from tests.integration import test_runtime_support as support
from tests.integration import test_shim_ops as ops
from tests.integration.test_shim_ops import Shims

harness = support.harness
subreaper = support.subreaper
shims = ops.shims
pytestmark = pytest.mark.root


def read_until(sock: socket.socket, marker: bytes, timeout: float = 15) -> bytes:
    sock.settimeout(timeout)
    data = bytearray()
    while marker not in data:
        chunk = sock.recv(65536)
        assert chunk, bytes(data)
        data += chunk
    return bytes(data)


def finish(shim: client.ShimClient) -> dict[str, Any]:
    result = shim.wait(timeout=30)
    shim.shutdown()
    return result


def test_tty_stdin_outlives_a_client_that_leaves(shims: Shims) -> None:
    """The first client attached with stdin_once (as `docker run -it`) and left (its detach
    keys half-close, then close); the next client's input still reaches the shell."""
    shim, _ = shims.spawn(["sh"], tty=True, stdin=True)
    first = shim.attach(stdin=True, stdin_once=True)
    shim.start()
    first.sendall(b"echo one-$((1+1))\n")
    read_until(first, b"one-2")
    first.shutdown(socket.SHUT_WR)
    first.close()
    time.sleep(0.2)  # the shim has seen the first client go
    second = shim.attach(stdin=True)
    second.sendall(b"echo two-$((2+2))\n")
    read_until(second, b"two-4")
    second.sendall(b"exit 7\n")
    second.close()
    assert finish(shim)["exit_code"] == 7


def test_stdin_once_without_tty_still_ends_input(shims: Shims) -> None:
    shim, log = shims.spawn(["cat"], stdin=True)
    sock = shim.attach(stdin=True, stdin_once=True)
    shim.start()
    sock.sendall(b"piped\n")
    sock.shutdown(socket.SHUT_WR)
    frames = client.read_frames(sock)
    sock.close()
    assert b"".join(p for s, p in frames if s == 1) == b"piped\n"
    assert finish(shim)["exit_code"] == 0


def test_stdin_once_ends_input_when_output_meets_a_closed_client(shims: Shims) -> None:
    """The client half-closes and hangs up while output is on its way: when the shim sends
    that output before it reads the end of input, the send fails and the client is dropped.
    That attach has ended all the same, so stdin closes (the container would wait forever)."""
    script = "(while :; do echo tick; sleep 0.01; done) & cat >/dev/null; kill $!; echo bye"
    shim, log = shims.spawn(["sh", "-c", script], stdin=True)
    sock = shim.attach(stdin=True, stdin_once=True)
    shim.start()
    read_until(sock, b"tick")
    shim_pid = shim.state()["shim_pid"]
    os.kill(shim_pid, signal.SIGSTOP)
    try:
        time.sleep(0.1)  # output is waiting in the pipe before the hang-up
        sock.shutdown(socket.SHUT_WR)
        sock.close()
    finally:
        os.kill(shim_pid, signal.SIGCONT)
    assert finish(shim)["exit_code"] == 0
    with open(log) as f:
        assert '"bye\\n"' in f.read()


def test_a_slow_client_gets_every_byte(shims: Shims) -> None:
    """Output comes faster than the client reads: the container waits for it, nothing is
    dropped, and the log has it all."""
    line = b"0123456789abcdef" * 4 + b"\n"
    count = 120_000  # ~7.8 MB: several times what the shim buffers for a client
    shim, log = shims.spawn(["sh", "-c", f"yes {line[:-1].decode()} | head -n {count}"])
    sock = shim.attach()
    shim.start()
    time.sleep(1.5)  # not reading: the shim stops reading the container's output
    assert shim.state()["status"] == "running"
    payload = b"".join(p for s, p in client.read_frames(sock) if s == 1)
    sock.close()
    assert len(payload) == len(line) * count and payload == line * count
    assert finish(shim)["exit_code"] == 0
    with open(log) as f:
        assert sum(1 for _ in f) == count


def test_finished_execs_are_forgotten_past_a_bound(shims: Shims) -> None:
    shim, _ = shims.spawn(["sleep", "100"])
    shim.start()
    process = {"args": ["true"], "env": ["PATH=/bin"]}
    total = 70
    for n in range(total):
        shim.exec(f"e{n}", process, detach=True)
        assert shim.exec_wait(f"e{n}", timeout=20) == 0
    assert shim.exec_state(f"e{total - 1}")["exit_code"] == 0
    with pytest.raises(NotFound):
        shim.exec_state("e0")
    shim.kill(signal.SIGKILL)
    assert finish(shim)["exit_code"] == 137
